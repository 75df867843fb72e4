/* Listings: ListObjects (v1), ListObjectsV2 and ListMultipartUploads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"
#include "s3api/encode.h"
#include "s3api/httpdate.h"
#include "s3api/request.h"
#include "s3api/xml.h"

#define MAX_LIST_KEYS 1000

struct list_args {
    const char *prefix;
    const char *delimiter;
    char *start; /* decoded continuation token, marker or start-after */
    unsigned max_keys;
    bool url;
};

static enum s3_err parse_max(const char *v, unsigned *out)
{
    unsigned long long n;
    if (v == NULL) {
        *out = MAX_LIST_KEYS;
        return S3_OK;
    }
    if (span_to_u64(span_from(v), &n) != 0)
        return S3_ERR_INVALID_ARGUMENT;
    *out = n > MAX_LIST_KEYS ? MAX_LIST_KEYS : (unsigned)n;
    return S3_OK;
}

/* Continuation tokens are the base64 of the key to continue after. */
static char *token_encode(const char *key)
{
    size_t n = strlen(key);
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *out = xmalloc(cap);
    s3_base64_encode((const unsigned char *)key, n, out, cap);
    return out;
}

static char *token_decode(const char *tok)
{
    size_t n = strlen(tok);
    unsigned char *buf = xmalloc(n + 1);
    long len = s3_base64_decode(span_from(tok), buf, n);
    if (len < 0 || memchr(buf, 0, (size_t)len) != NULL) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return (char *)buf;
}

static void write_common(struct evbuffer *b, const struct list_args *a, unsigned max_keys,
                         bool truncated)
{
    s3_xml_elem_key(b, "Prefix", a->prefix, a->url);
    if (a->delimiter[0] != '\0')
        s3_xml_elem_key(b, "Delimiter", a->delimiter, a->url);
    s3_xml_elem_u64(b, "MaxKeys", max_keys);
    if (a->url)
        s3_xml_elem(b, "EncodingType", "url");
    s3_xml_elem_bool(b, "IsTruncated", truncated);
}

static void write_prefixes(struct evbuffer *b, char **prefixes, size_t n, bool url)
{
    for (size_t i = 0; i < n; i++) {
        evbuffer_add_printf(b, "<CommonPrefixes>");
        s3_xml_elem_key(b, "Prefix", prefixes[i], url);
        evbuffer_add_printf(b, "</CommonPrefixes>");
    }
}

static void on_objects(enum s3_err err, struct s3_list_result *res, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    bool v2 = r->op == S3_OP_LIST_OBJECTS_V2;
    const char *enc = s3_req_param(r, "encoding-type");
    struct list_args a = {
        .prefix = s3_req_param(r, "prefix") ? s3_req_param(r, "prefix") : "",
        .delimiter = s3_req_param(r, "delimiter") ? s3_req_param(r, "delimiter") : "",
        .url = enc != NULL && strcmp(enc, "url") == 0,
    };
    unsigned max_keys = 1000;
    parse_max(s3_req_param(r, "max-keys"), &max_keys);
    const char *fo = s3_req_param(r, "fetch-owner");
    bool owner = !v2 || (fo != NULL && strcmp(fo, "true") == 0);

    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<ListBucketResult xmlns=\"%s\">", S3_XML_NS);
    s3_xml_elem(b, "Name", r->bucket);
    write_common(b, &a, max_keys, res->truncated);
    if (v2) {
        s3_xml_elem_u64(b, "KeyCount", res->n_entries + res->n_prefixes);
        const char *tok = s3_req_param(r, "continuation-token");
        if (tok != NULL)
            s3_xml_elem(b, "ContinuationToken", tok);
        const char *sa = s3_req_param(r, "start-after");
        if (sa != NULL)
            s3_xml_elem_key(b, "StartAfter", sa, a.url);
        if (res->truncated && res->next_marker != NULL) {
            char *next = token_encode(res->next_marker);
            s3_xml_elem(b, "NextContinuationToken", next);
            free(next);
        }
    } else {
        const char *marker = s3_req_param(r, "marker");
        s3_xml_elem_key(b, "Marker", marker ? marker : "", a.url);
        /* S3 gives NextMarker only with a delimiter; clients use the last key otherwise. */
        if (res->truncated && res->next_marker != NULL && a.delimiter[0] != '\0')
            s3_xml_elem_key(b, "NextMarker", res->next_marker, a.url);
    }
    for (size_t i = 0; i < res->n_entries; i++) {
        const struct s3_list_entry *e = &res->entries[i];
        char date[25];
        s3_date_iso8601(e->mtime_ms, date);
        evbuffer_add_printf(b, "<Contents>");
        s3_xml_elem_key(b, "Key", e->key, a.url);
        s3_xml_elem(b, "LastModified", date);
        evbuffer_add_printf(b, "<ETag>&quot;%s&quot;</ETag>", e->etag);
        s3_xml_elem_u64(b, "Size", e->size);
        if (owner)
            s3_req_write_owner(r, b, "Owner");
        s3_xml_elem(b, "StorageClass", "STANDARD");
        evbuffer_add_printf(b, "</Contents>");
    }
    write_prefixes(b, res->prefixes, res->n_prefixes, a.url);
    evbuffer_add_printf(b, "</ListBucketResult>");
    s3_req_reply_xml(r, 200, b);
}

static void on_uploads(enum s3_err err, struct s3_uploads_result *res, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    const char *enc = s3_req_param(r, "encoding-type");
    bool url = enc != NULL && strcmp(enc, "url") == 0;
    const char *prefix = s3_req_param(r, "prefix");
    const char *delim = s3_req_param(r, "delimiter");
    const char *km = s3_req_param(r, "key-marker");
    const char *um = s3_req_param(r, "upload-id-marker");
    unsigned max = 1000;
    parse_max(s3_req_param(r, "max-uploads"), &max);

    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<ListMultipartUploadsResult xmlns=\"%s\">", S3_XML_NS);
    s3_xml_elem(b, "Bucket", r->bucket);
    s3_xml_elem_key(b, "KeyMarker", km ? km : "", url);
    s3_xml_elem(b, "UploadIdMarker", um ? um : "");
    if (res->truncated) {
        s3_xml_elem_key(b, "NextKeyMarker", res->next_key_marker ? res->next_key_marker : "", url);
        s3_xml_elem(b, "NextUploadIdMarker", res->next_upload_id_marker);
    }
    s3_xml_elem_key(b, "Prefix", prefix ? prefix : "", url);
    if (delim != NULL && delim[0] != '\0')
        s3_xml_elem_key(b, "Delimiter", delim, url);
    s3_xml_elem_u64(b, "MaxUploads", max);
    if (url)
        s3_xml_elem(b, "EncodingType", "url");
    s3_xml_elem_bool(b, "IsTruncated", res->truncated);
    for (size_t i = 0; i < res->n; i++) {
        char date[25];
        s3_date_iso8601(res->uploads[i].initiated_ms, date);
        evbuffer_add_printf(b, "<Upload>");
        s3_xml_elem_key(b, "Key", res->uploads[i].key, url);
        s3_xml_elem(b, "UploadId", res->uploads[i].upload_id);
        s3_req_write_owner(r, b, "Initiator");
        s3_req_write_owner(r, b, "Owner");
        s3_xml_elem(b, "StorageClass", "STANDARD");
        s3_xml_elem(b, "Initiated", date);
        evbuffer_add_printf(b, "</Upload>");
    }
    write_prefixes(b, res->prefixes, res->n_prefixes, url);
    evbuffer_add_printf(b, "</ListMultipartUploadsResult>");
    s3_req_reply_xml(r, 200, b);
}

void s3_op_list(struct s3_req *r)
{
    struct s3_list_params p = {0};
    unsigned max;
    const char *max_name = r->op == S3_OP_LIST_UPLOADS ? "max-uploads" : "max-keys";
    if (parse_max(s3_req_param(r, max_name), &max) != S3_OK) {
        s3_req_fail(r, S3_ERR_INVALID_ARGUMENT,
                    "Provided max-keys not an integer or within "
                    "integer range");
        return;
    }
    const char *enc = s3_req_param(r, "encoding-type");
    if (enc != NULL && strcmp(enc, "url") != 0) {
        s3_req_fail(r, S3_ERR_INVALID_ARGUMENT, "Invalid Encoding Method specified in Request");
        return;
    }
    const char *prefix = s3_req_param(r, "prefix");
    const char *delim = s3_req_param(r, "delimiter");
    if (r->op == S3_OP_LIST_UPLOADS) {
        s3_req_hold(r);
        s3_store_mpu_list(r->api->store, r->bucket, prefix ? prefix : "", delim,
                          s3_req_param(r, "key-marker"), s3_req_param(r, "upload-id-marker"), max,
                          on_uploads, r);
        return;
    }
    char *start = NULL;
    if (r->op == S3_OP_LIST_OBJECTS_V2) {
        const char *tok = s3_req_param(r, "continuation-token");
        if (tok != NULL) {
            start = token_decode(tok);
            if (start == NULL) {
                s3_req_fail(r, S3_ERR_INVALID_ARGUMENT,
                            "The continuation token provided is incorrect");
                return;
            }
        } else if (s3_req_param(r, "start-after") != NULL) {
            start = xstrdup(s3_req_param(r, "start-after"));
        }
    } else if (s3_req_param(r, "marker") != NULL) {
        start = xstrdup(s3_req_param(r, "marker"));
    }
    p.prefix = prefix ? prefix : "";
    p.delimiter = delim;
    p.start_after = start;
    p.max_keys = max;
    s3_req_hold(r);
    s3_store_list(r->api->store, r->bucket, &p, on_objects, r);
    free(start);
}

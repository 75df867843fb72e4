/* Object operations besides GET/PUT: DeleteObject, DeleteObjects, CopyObject,
 * Get/PutObjectAcl. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"
#include "s3api/cond.h"
#include "s3api/encode.h"
#include "s3api/httpdate.h"
#include "s3api/names.h"
#include "s3api/request.h"
#include "s3api/xml.h"

/* ---- DeleteObject ---- */

static void on_deleted(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    s3_req_reply_empty(r, 204);
}

/* ---- DeleteObjects ---- */

static void on_deleted_many(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<DeleteResult xmlns=\"%s\">", S3_XML_NS);
    for (size_t i = 0; i < r->n_del_keys; i++) {
        /* A key no object can have (too long, control characters) is reported, not sent. */
        enum s3_err kerr = s3_key_check(r->del_keys[i], strlen(r->del_keys[i]));
        if (kerr != S3_OK)
            r->del_errs[i] = kerr;
        if (r->del_errs[i] == S3_OK) {
            if (r->del_quiet)
                continue;
            evbuffer_add_printf(b, "<Deleted>");
            s3_xml_elem(b, "Key", r->del_keys[i]);
            evbuffer_add_printf(b, "</Deleted>");
        } else {
            evbuffer_add_printf(b, "<Error>");
            s3_xml_elem(b, "Key", r->del_keys[i]);
            s3_xml_elem(b, "Code", s3_err_code(r->del_errs[i]));
            s3_xml_elem(b, "Message", s3_err_message(r->del_errs[i]));
            evbuffer_add_printf(b, "</Error>");
        }
    }
    evbuffer_add_printf(b, "</DeleteResult>");
    s3_req_reply_xml(r, 200, b);
}

static void delete_body(struct s3_req *r)
{
    struct span body = s3_req_collected(r);
    enum s3_err err = s3_xml_parse_delete(body, &r->del_keys, &r->n_del_keys, &r->del_quiet);
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    r->del_errs = xcalloc(r->n_del_keys, sizeof(*r->del_errs));
    struct s3_event_origin origin;
    s3_req_origin(r, &origin);
    s3_req_hold(r);
    s3_store_delete_many(r->api->store, r->bucket, (const char *const *)r->del_keys, r->n_del_keys,
                         r->del_errs, &origin, on_deleted_many, r);
}

/* ---- CopyObject ---- */

void s3_req_reply_copy_result(struct s3_req *r, const char *elem, int64_t mtime_ms,
                              const char *etag)
{
    char date[25];
    s3_date_iso8601(mtime_ms, date);
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<%s xmlns=\"%s\">", elem, S3_XML_NS);
    s3_xml_elem(b, "LastModified", date);
    evbuffer_add_printf(b, "<ETag>&quot;%s&quot;</ETag></%s>", etag, elem);
    s3_req_reply_xml(r, 200, b);
}

static void on_copied(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (s3_req_resume_ok(r, err))
        s3_req_reply_copy_result(r, "CopyObjectResult", r->result.mtime_ms, r->result.etag);
}

/* The x-amz-copy-source-if-* conditions, evaluated against the source. */
enum s3_err s3_copy_conds(struct s3_req *r, const struct s3_obj_meta *src)
{
    struct s3_conds c = {
        .if_match = s3_req_header(r, "x-amz-copy-source-if-match"),
        .if_none_match = s3_req_header(r, "x-amz-copy-source-if-none-match"),
        .if_modified_since = s3_req_header(r, "x-amz-copy-source-if-modified-since"),
        .if_unmodified_since = s3_req_header(r, "x-amz-copy-source-if-unmodified-since"),
    };
    return s3_conds_check(&c, src->etag, src->mtime_ms, false);
}

static void on_copy_source(enum s3_err err, struct s3_obj *obj, void *arg)
{
    struct s3_req *r = arg;
    if (s3_req_resume(r)) {
        s3_obj_free(obj);
        return;
    }
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    const struct s3_obj_meta *src = s3_obj_meta(obj);
    err = s3_copy_conds(r, src);
    struct s3_obj_meta *m = xmalloc(sizeof(*m));
    s3_obj_meta_init(m);
    struct span dir = s3_req_header(r, "x-amz-metadata-directive");
    bool replace = dir.ptr != NULL && span_eq_ci(span_trim(dir), "REPLACE");
    if (err == S3_OK && replace) {
        err = s3_req_collect_meta(r, m);
    } else if (err == S3_OK) {
        s3_obj_meta_copy(m, src);
    }
    s3_obj_free(obj);
    if (err != S3_OK) {
        s3_obj_meta_cleanup(m);
        free(m);
        s3_req_fail(r, err, NULL);
        return;
    }
    struct s3_event_origin origin;
    s3_req_origin(r, &origin);
    s3_req_hold(r);
    s3_store_copy(r->api->store, r->src_bucket, r->src_key, r->bucket, r->key, m, &r->result,
                  &origin, on_copied, r);
    free(m);
}

enum s3_err s3_parse_copy_source(struct s3_req *r)
{
    struct span v = span_trim(s3_req_header(r, "x-amz-copy-source"));
    struct span path, bucket;
    span_cut(v, '?', &path); /* a versionId: there is only one version */
    if (path.len > 0 && path.ptr[0] == '/')
        path = span_make(path.ptr + 1, path.len - 1);
    size_t n;
    char *decoded = s3_uri_decode(path, false, &n);
    if (decoded == NULL || strlen(decoded) != n) {
        free(decoded);
        return S3_ERR_INVALID_ARGUMENT;
    }
    struct span key = span_cut(span_make(decoded, n), '/', &bucket);
    if (bucket.len == 0 || key.len == 0) {
        free(decoded);
        return S3_ERR_INVALID_ARGUMENT;
    }
    r->src_bucket = span_dup(bucket);
    r->src_key = span_dup(key);
    free(decoded);
    if (!s3_bucket_name_valid(r->src_bucket))
        return S3_ERR_NO_SUCH_BUCKET;
    return s3_key_check(r->src_key, strlen(r->src_key));
}

static void copy_object(struct s3_req *r)
{
    enum s3_err err = s3_parse_copy_source(r);
    if (err != S3_OK) {
        s3_req_fail(r, err,
                    "Copy Source must mention the source bucket and key: "
                    "sourcebucket/sourcekey");
        return;
    }
    struct span dir = s3_req_header(r, "x-amz-metadata-directive");
    bool replace = dir.ptr != NULL && span_eq_ci(span_trim(dir), "REPLACE");
    if (dir.ptr != NULL && !replace && !span_eq_ci(span_trim(dir), "COPY")) {
        s3_req_fail(r, S3_ERR_INVALID_ARGUMENT, "Unknown metadata directive.");
        return;
    }
    if (!replace && strcmp(r->src_bucket, r->bucket) == 0 && strcmp(r->src_key, r->key) == 0) {
        s3_req_fail(r, S3_ERR_INVALID_REQUEST,
                    "This copy request is illegal because it is trying to copy an object to "
                    "itself without changing the object's metadata, storage class, website "
                    "redirect location or encryption attributes.");
        return;
    }
    if (s3_req_refuse_acl(r))
        return;
    s3_req_hold(r);
    s3_store_get(r->api->store, r->src_bucket, r->src_key, false, on_copy_source, r);
}

/* ---- object ACLs and tags ---- */

static void on_acl_object(enum s3_err err, struct s3_obj *obj, void *arg)
{
    struct s3_req *r = arg;
    s3_obj_free(obj);
    if (s3_req_resume(r))
        return;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    if (r->op == S3_OP_PUT_OBJECT_ACL) {
        s3_req_reply_empty(r, 200);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (r->op == S3_OP_GET_OBJECT_TAGGING) {
        s3_xml_declaration(b);
        evbuffer_add_printf(b, "<Tagging xmlns=\"%s\"><TagSet></TagSet></Tagging>", S3_XML_NS);
    } else {
        s3_write_acl(r, b);
    }
    s3_req_reply_xml(r, 200, b);
}

static void put_acl_body(struct s3_req *r)
{
    struct span body = s3_req_collected(r);
    enum s3_err err = body.len > 0 ? s3_xml_parse_acl(body) : S3_OK;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    s3_req_hold(r);
    s3_store_get(r->api->store, r->bucket, r->key, false, on_acl_object, r);
}

void s3_op_object(struct s3_req *r)
{
    struct s3_event_origin origin;
    switch (r->op) {
    case S3_OP_DELETE_OBJECT:
        s3_req_origin(r, &origin);
        s3_req_hold(r);
        s3_store_delete(r->api->store, r->bucket, r->key, &origin, on_deleted, r);
        return;
    case S3_OP_DELETE_OBJECTS:
        s3_req_collect_body(r, S3_XML_MAX_BODY, delete_body);
        return;
    case S3_OP_COPY_OBJECT:
        copy_object(r);
        return;
    case S3_OP_PUT_OBJECT_ACL:
        if (s3_req_refuse_acl(r))
            return;
        s3_req_collect_body(r, S3_XML_MAX_BODY, put_acl_body);
        return;
    default:
        s3_req_hold(r);
        s3_store_get(r->api->store, r->bucket, r->key, false, on_acl_object, r);
        return;
    }
}

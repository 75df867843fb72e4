/* The S3 front end on the HTTP layer: turns each request into a struct s3_req (route,
 * authenticate), runs the body pipeline (aws-chunked decoding, bounded collection, digest
 * checks) and answers errors. The operations live in op_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "gateway/h1.h"
#include "gateway/log.h"
#include "gateway/pool.h"
#include "gateway/xmalloc.h"
#include "s3api/chunked.h"
#include "s3api/encode.h"
#include "s3api/names.h"
#include "s3api/request.h"
#include "s3api/route.h"
#include "s3api/s3api.h"
#include "s3api/xml.h"

#define MAX_TRAILER_BYTES   (16u << 10)
#define MAX_USER_META_BYTES 2048

static const char *const op_names[] = {
#define S3_OP_NAME(name, str) str,
    S3_OP_TABLE(S3_OP_NAME)
#undef S3_OP_NAME
};

const char *s3_op_name(enum s3_op op)
{
    return op_names[op];
}

/* ---- request lifetime ---- */

static void req_free(struct s3_req *r)
{
    free(r->params); /* the parameters' strings live in the same block */
    free(r->bucket);
    free(r->key);
    free(r->resource);
    s3_chunked_free(r->chunked);
    if (r->decoded != NULL)
        evbuffer_free(r->decoded);
    if (r->collected != NULL)
        evbuffer_free(r->collected);
    if (r->readbuf != NULL)
        evbuffer_free(r->readbuf);
    ASSERT(r->put == NULL || r->put_committing);
    s3_obj_meta_cleanup(&r->meta);
    s3_obj_meta_cleanup(&r->result);
    s3_obj_free(r->obj);
    free(r->parts);
    s3_xml_free_keys(r->del_keys, r->n_del_keys);
    free(r->del_errs);
    free(r->src_bucket);
    free(r->src_key);
    free(r);
}

static void req_unref(struct s3_req *r)
{
    ASSERT(r->refs > 0);
    if (--r->refs == 0)
        req_free(r);
}

void s3_req_hold(struct s3_req *r)
{
    r->refs++;
}

bool s3_req_resume(struct s3_req *r)
{
    if (r->h1 == NULL) {
        req_unref(r);
        return true;
    }
    r->refs--;
    ASSERT(r->refs > 0);
    return false;
}

/* The response is complete: hand the request back to the HTTP layer. */
static void req_end(struct s3_req *r)
{
    struct h1_req *h = r->h1;
    r->h1 = NULL;
    h1_req_set_data(h, NULL);
    h1_resp_end(h);
    req_unref(r);
}

/* ---- accessors ---- */

const char *s3_req_param(const struct s3_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

bool s3_req_has_param(const struct s3_req *r, const char *name)
{
    return s3_req_param(r, name) != NULL;
}

struct span s3_req_header(const struct s3_req *r, const char *lname)
{
    return h1_req_header(r->h1, lname);
}

char *s3_req_header_dup(const struct s3_req *r, const char *lname)
{
    struct span v = h1_req_header(r->h1, lname);
    return v.ptr != NULL ? span_dup(v) : NULL;
}

/* ---- responses ---- */

void s3_req_end(struct s3_req *r)
{
    req_end(r);
}

void s3_req_common_headers(struct s3_req *r)
{
    const char *id = h1_req_log(r->h1)->request_id;
    h1_resp_header(r->h1, "x-amz-request-id", id);
    h1_resp_header(r->h1, "x-amz-id-2", id);
    h1_resp_header(r->h1, "Server", "floodgate");
}

void s3_req_header_out(struct s3_req *r, const char *name, const char *value)
{
    h1_resp_header(r->h1, name, value);
}

void s3_req_fail(struct s3_req *r, enum s3_err err, const char *msg)
{
    s3_req_fail_arg(r, err, msg, NULL, NULL);
}

void s3_req_fail_arg(struct s3_req *r, enum s3_err err, const char *msg, const char *arg_name,
                     const char *arg_value)
{
    struct log_ctx *lc = h1_req_log(r->h1);
    int status = s3_err_status(err);
    if (status >= 500)
        log_error(lc, "%s %s: %s", s3_op_name(r->op), s3_err_code(err), msg ? msg : "");
    else
        log_debug(lc, "%s %s: %s", s3_op_name(r->op), s3_err_code(err), msg ? msg : "");
    s3_put_cancel(r);
    s3_req_common_headers(r);
    if (err == S3_ERR_NOT_MODIFIED) {
        h1_resp_start(r->h1, 304, 0);
        req_end(r);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (r->resource == NULL) /* only error bodies need it */
        r->resource = xasprintf("/%s%s%s", r->bucket ? r->bucket : "", r->key ? "/" : "",
                                r->key ? r->key : "");
    s3_err_write_xml_arg(body, err, msg, r->resource, lc->request_id, arg_name, arg_value);
    h1_resp_header(r->h1, "Content-Type", "application/xml");
    h1_resp_start(r->h1, status, (int64_t)evbuffer_get_length(body));
    if (!h1_req_is_head(r->h1))
        h1_resp_write_buf(r->h1, body);
    evbuffer_free(body);
    req_end(r);
}

void s3_req_reply_xml(struct s3_req *r, int status, struct evbuffer *body)
{
    s3_req_common_headers(r);
    h1_resp_header(r->h1, "Content-Type", "application/xml");
    h1_resp_start(r->h1, status, (int64_t)evbuffer_get_length(body));
    h1_resp_write_buf(r->h1, body);
    evbuffer_free(body);
    req_end(r);
}

void s3_req_reply_empty(struct s3_req *r, int status)
{
    s3_req_common_headers(r);
    h1_resp_start(r->h1, status, 0);
    req_end(r);
}

void s3_req_write_owner(struct s3_req *r, struct evbuffer *out, const char *elem)
{
    const char *name = r->auth.user != NULL ? r->auth.user->name : "anonymous";
    char id[65];
    s3_sha256_hex(name, strlen(name), id);
    evbuffer_add_printf(out, "<%s>", elem);
    s3_xml_elem(out, "ID", id);
    s3_xml_elem(out, "DisplayName", name);
    evbuffer_add_printf(out, "</%s>", elem);
}

/* ---- metadata and digests ---- */

static const char *const stored_headers[] = {
    "content-type",     "content-disposition",
    "content-language", "cache-control",
    "expires",          "x-amz-website-redirect-location",
};

enum s3_err s3_req_collect_meta(struct s3_req *r, struct s3_obj_meta *m)
{
    size_t n;
    const struct gw_header *h = h1_req_headers(r->h1, &n);
    size_t user_bytes = 0;
    for (size_t i = 0; i < sizeof(stored_headers) / sizeof(stored_headers[0]); i++) {
        struct span v = h1_req_header(r->h1, stored_headers[i]);
        if (v.ptr != NULL) {
            char *s = span_dup(v);
            s3_obj_meta_add(m, stored_headers[i], s);
            free(s);
        }
    }
    if (s3_obj_meta_get(m, "content-type") == NULL)
        s3_obj_meta_add(m, "content-type", "binary/octet-stream");
    /* Content-Encoding without the aws-chunked transfer coding (SigV4 streaming). */
    struct span ce = h1_req_header(r->h1, "content-encoding");
    if (ce.ptr != NULL) {
        struct evbuffer *b = evbuffer_new();
        struct span rest = ce, item;
        while (rest.ptr != NULL) {
            rest = span_cut(rest, ',', &item);
            item = span_trim(item);
            if (item.len == 0 || span_eq_ci(item, "aws-chunked"))
                continue;
            if (evbuffer_get_length(b) > 0)
                evbuffer_add(b, ",", 1);
            evbuffer_add(b, item.ptr, item.len);
        }
        if (evbuffer_get_length(b) > 0) {
            evbuffer_add(b, "", 1);
            s3_obj_meta_add(m, "content-encoding", (const char *)evbuffer_pullup(b, -1));
        }
        evbuffer_free(b);
    }
    for (size_t i = 0; i < n; i++) {
        if (!span_starts_with(h[i].name, "x-amz-meta-"))
            continue;
        user_bytes += h[i].name.len - 11 + h[i].value.len;
        if (user_bytes > MAX_USER_META_BYTES)
            return S3_ERR_METADATA_TOO_LARGE;
        char *name = span_dup(h[i].name);
        char *value = span_dup(span_trim(h[i].value));
        s3_obj_meta_add(m, name, value);
        free(name);
        free(value);
    }
    return S3_OK;
}

/* Whether any header could announce a checksum: most requests have none, and one pass over
 * the headers is cheaper than looking each candidate up. */
static bool has_checksum_header(const struct s3_req *r)
{
    size_t n;
    const struct gw_header *h = h1_req_headers(r->h1, &n);
    for (size_t i = 0; i < n; i++) {
        struct span name = h[i].name;
        if (name.len >= 13 && memcmp(name.ptr, "x-amz-", 6) == 0 &&
            (span_eq_str(name, "x-amz-trailer") || span_starts_with(name, "x-amz-checksum-")))
            return true;
    }
    return false;
}

enum s3_cksum_alg s3_req_cksum_alg(const struct s3_req *r)
{
    if (!has_checksum_header(r))
        return S3_CKSUM_NONE;
    struct span t = h1_req_header(r->h1, "x-amz-trailer");
    if (t.ptr != NULL && span_starts_with(span_trim(t), "x-amz-checksum-")) {
        t = span_trim(t);
        return s3_cksum_from_name(span_make(t.ptr + 15, t.len - 15));
    }
    static const enum s3_cksum_alg algs[] = {S3_CKSUM_CRC32, S3_CKSUM_CRC32C, S3_CKSUM_CRC64NVME,
                                             S3_CKSUM_SHA1, S3_CKSUM_SHA256};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (h1_req_header(r->h1, s3_cksum_header(algs[i])).ptr != NULL)
            return algs[i];
    return S3_CKSUM_NONE;
}

static enum s3_err check_b64(struct span want, const unsigned char *got, size_t got_len)
{
    unsigned char buf[64];
    long n = s3_base64_decode(span_trim(want), buf, sizeof(buf));
    if (n < 0 || (size_t)n != got_len)
        return S3_ERR_INVALID_DIGEST;
    return CRYPTO_memcmp(buf, got, got_len) == 0 ? S3_OK : S3_ERR_BAD_DIGEST;
}

enum s3_err s3_req_check_digests(struct s3_req *r, const struct s3_digests *d,
                                 const struct gw_header *trailers, size_t n_trailers)
{
    enum s3_err err;
    if (r->auth.payload == S3_PAYLOAD_SHA256 &&
        CRYPTO_memcmp(d->sha256, r->auth.content_sha256, 32) != 0)
        return S3_ERR_X_AMZ_CONTENT_SHA256_MISMATCH;
    struct span md5 = h1_req_header(r->h1, "content-md5");
    if (md5.ptr != NULL && (err = check_b64(md5, d->md5, 16)) != S3_OK)
        return err;
    if (d->alg != S3_CKSUM_NONE) {
        const char *hn = s3_cksum_header(d->alg);
        struct span want = h1_req_header(r->h1, hn);
        const struct gw_header *t = gw_header_find(trailers, n_trailers, hn);
        if (t != NULL)
            want = t->value;
        if (want.ptr == NULL)
            return S3_ERR_INVALID_REQUEST; /* announced in x-amz-trailer but never sent */
        if ((err = check_b64(want, d->cksum, d->cksum_len)) != S3_OK)
            return err;
    }
    return S3_OK;
}

/* ---- the body pipeline ---- */

void s3_req_collect_body(struct s3_req *r, size_t max, void (*on_collected)(struct s3_req *r))
{
    r->sink = S3_SINK_COLLECT;
    r->collect_max = max;
    r->collected = evbuffer_new();
    r->on_collected = on_collected;
    int64_t cl = h1_req_content_length(r->h1);
    if (r->chunked == NULL && cl > (int64_t)max) {
        s3_req_fail(r, S3_ERR_MALFORMED_XML, "The request body is too large.");
        return;
    }
    h1_req_read_body(r->h1);
}

static void collect_done(struct s3_req *r)
{
    size_t len = evbuffer_get_length(r->collected);
    const unsigned char *p = evbuffer_pullup(r->collected, -1);
    struct s3_hashes *h = s3_hashes_new(r->auth.payload == S3_PAYLOAD_SHA256, r->cksum_alg);
    struct s3_digests d;
    s3_hashes_update(h, p, len);
    s3_hashes_final(h, &d);
    s3_hashes_free(h);
    size_t n_tr = 0;
    const struct gw_header *tr = r->chunked ? s3_chunked_trailers(r->chunked, &n_tr) : NULL;
    enum s3_err err = s3_req_check_digests(r, &d, tr, n_tr);
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    r->on_collected(r);
}

static void on_body(struct h1_req *h, struct evbuffer *data, void *arg)
{
    struct s3_req *r = h1_req_data(h);
    (void)arg;
    if (r == NULL) {
        evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    if (r->decoded == NULL)
        r->decoded = evbuffer_new();
    size_t before = evbuffer_get_length(r->decoded);
    if (r->chunked != NULL) {
        enum s3_err err = s3_chunked_feed(r->chunked, data, r->decoded);
        if (err != S3_OK) {
            s3_req_fail(r, err, NULL);
            return;
        }
    } else {
        evbuffer_add_buffer(r->decoded, data);
    }
    r->body_bytes += evbuffer_get_length(r->decoded) - before;
    if (r->expect_bytes >= 0 && r->body_bytes > (uint64_t)r->expect_bytes) {
        s3_req_fail(r, S3_ERR_INVALID_REQUEST, "The body is longer than announced.");
        return;
    }
    if (r->sink == S3_SINK_COLLECT) {
        evbuffer_add_buffer(r->collected, r->decoded);
        if (evbuffer_get_length(r->collected) > r->collect_max)
            s3_req_fail(r, S3_ERR_MALFORMED_XML, "The request body is too large.");
    } else if (r->sink == S3_SINK_PUT) {
        s3_put_on_body(r);
    } else {
        evbuffer_drain(r->decoded, evbuffer_get_length(r->decoded));
    }
}

static void on_body_end(struct h1_req *h, void *arg)
{
    struct s3_req *r = h1_req_data(h);
    (void)arg;
    if (r == NULL)
        return;
    if (r->chunked != NULL) {
        enum s3_err err = s3_chunked_finish(r->chunked);
        if (err != S3_OK) {
            s3_req_fail(r, err, NULL);
            return;
        }
    }
    if (r->expect_bytes >= 0 && r->body_bytes != (uint64_t)r->expect_bytes) {
        s3_req_fail(r, S3_ERR_INCOMPLETE_BODY, NULL);
        return;
    }
    if (r->sink == S3_SINK_COLLECT)
        collect_done(r);
    else if (r->sink == S3_SINK_PUT)
        s3_put_on_body_end(r);
    else
        s3_req_fail(r, S3_ERR_INTERNAL_ERROR, "body without a sink");
}

static void on_abort(struct h1_req *h, void *arg)
{
    struct s3_req *r = h1_req_data(h);
    (void)arg;
    if (r == NULL)
        return;
    r->h1 = NULL;
    if (r->sink == S3_SINK_PUT)
        s3_put_on_abort(r);
    req_unref(r);
}

/* ---- classification and authentication ---- */

#define MAX_PARAMS 256

/* Decodes the query into r->params: one allocation holds the array and every name and value
 * (a decoded part is never longer than its raw form; each gets a NUL). */
static void parse_query(struct s3_req *r, struct span q)
{
    size_t max = 1;

    if (q.ptr == NULL || q.len == 0)
        return;
    for (size_t i = 0; i < q.len; i++)
        max += q.ptr[i] == '&';
    if (max > MAX_PARAMS)
        max = MAX_PARAMS;
    r->params = xmalloc(max * sizeof(*r->params) + q.len + 2 * max);
    char *strs = (char *)(r->params + max);
    while (q.ptr != NULL && q.len > 0) {
        struct span item, name, value;
        q = span_cut(q, '&', &item);
        if (item.len == 0)
            continue;
        value = span_cut(item, '=', &name);
        long nl = s3_uri_decode_buf(name, true, strs, name.len);
        long vl = nl >= 0 ? s3_uri_decode_buf(value, true, strs + nl + 1, value.len) : -1;
        if (vl < 0)
            continue;
        strs[nl] = '\0';
        strs[nl + 1 + vl] = '\0';
        r->params[r->n_params++] =
            (struct s3_param){.name = strs, .value = strs + nl + 1, .has_value = value.ptr != NULL};
        strs += nl + 1 + vl + 1;
        if (r->n_params >= MAX_PARAMS)
            break;
    }
}

static void dispatch(struct s3_req *r)
{
    switch (r->op) {
    case S3_OP_LIST_BUCKETS:
        s3_op_service(r);
        return;
    case S3_OP_LIST_OBJECTS:
    case S3_OP_LIST_OBJECTS_V2:
    case S3_OP_LIST_UPLOADS:
        s3_op_list(r);
        return;
    case S3_OP_CREATE_BUCKET:
    case S3_OP_DELETE_BUCKET:
    case S3_OP_HEAD_BUCKET:
    case S3_OP_GET_BUCKET_LOCATION:
    case S3_OP_GET_BUCKET_VERSIONING:
    case S3_OP_GET_BUCKET_ACL:
    case S3_OP_PUT_BUCKET_ACL:
    case S3_OP_GET_BUCKET_NOTIFICATION:
    case S3_OP_PUT_BUCKET_NOTIFICATION:
        s3_op_bucket(r);
        return;
    case S3_OP_GET_OBJECT:
    case S3_OP_HEAD_OBJECT:
        s3_op_get(r);
        return;
    case S3_OP_PUT_OBJECT:
    case S3_OP_UPLOAD_PART:
        s3_op_put(r);
        return;
    case S3_OP_CREATE_UPLOAD:
    case S3_OP_COMPLETE_UPLOAD:
    case S3_OP_ABORT_UPLOAD:
    case S3_OP_LIST_PARTS:
    case S3_OP_UPLOAD_PART_COPY:
        s3_op_multipart(r);
        return;
    case S3_OP_DELETE_OBJECT:
    case S3_OP_DELETE_OBJECTS:
    case S3_OP_COPY_OBJECT:
    case S3_OP_GET_OBJECT_ACL:
    case S3_OP_PUT_OBJECT_ACL:
    case S3_OP_GET_OBJECT_TAGGING:
        s3_op_object(r);
        return;
    case S3_OP_UNKNOWN:
    case S3_OP_NOT_IMPLEMENTED:
        break;
    }
    s3_req_fail(r, S3_ERR_NOT_IMPLEMENTED, NULL);
}

/* snprintf(dst, cap, "%s", src) without the format parsing. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void s3_req_origin(const struct s3_req *r, struct s3_event_origin *out)
{
    struct log_ctx *lc = h1_req_log(r->h1);
    memset(out, 0, sizeof(*out));
    if (r->auth.user != NULL && r->auth.user->access_key != NULL)
        copy_str(out->principal, sizeof(out->principal), r->auth.user->access_key);
    copy_str(out->request_id, sizeof(out->request_id), lc->request_id);
    /* the peer is "addr:port" or "[v6addr]:port": the address alone */
    const char *peer = lc->peer;
    size_t n = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (peer[0] == '[' && strchr(peer, ']') != NULL) {
        peer++;
        n = (size_t)(strchr(peer, ']') - peer);
    } else if (colon != NULL && strchr(peer, ':') == colon) {
        n = (size_t)(colon - peer);
    }
    if (n >= sizeof(out->source_ip))
        n = sizeof(out->source_ip) - 1;
    memcpy(out->source_ip, peer, n);
    out->source_ip[n] = '\0';
}

static void fill_access(struct s3_req *r)
{
    struct log_access *a = h1_req_access(r->h1);
    copy_str(a->op, sizeof(a->op), s3_op_name(r->op));
    if (r->bucket != NULL)
        copy_str(a->bucket, sizeof(a->bucket), r->bucket);
    if (r->key != NULL) {
        /* URL-encoded so spaces and odd bytes keep the line's fields apart. */
        size_t n =
            s3_uri_encode_to(a->key, sizeof(a->key) - 1, span_make(r->key, r->key_len), true);
        a->key[n] = '\0';
    }
    if (r->auth.user != NULL)
        copy_str(a->user, sizeof(a->user), r->auth.user->name);
}

static enum s3_err setup_body(struct s3_req *r)
{
    /* the decoded-body buffer only for requests that have a body or read one anyway (an
     * empty PUT still ends through the body pipeline); on_body makes it for any other */
    if (h1_req_has_body(r->h1) || r->op == S3_OP_PUT_OBJECT || r->op == S3_OP_UPLOAD_PART)
        r->decoded = evbuffer_new();
    r->expect_bytes = h1_req_is_chunked(r->h1) ? -1 : h1_req_content_length(r->h1);
    r->cksum_alg = s3_req_cksum_alg(r);
    switch (r->auth.payload) {
    case S3_PAYLOAD_STREAMING_SIGNED:
    case S3_PAYLOAD_STREAMING_SIGNED_TRAILER:
    case S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER: {
        struct span dl = h1_req_header(r->h1, "x-amz-decoded-content-length");
        unsigned long long n;
        if (dl.ptr != NULL) {
            if (span_to_u64(span_trim(dl), &n) != 0)
                return S3_ERR_INVALID_ARGUMENT;
            r->expect_bytes = (int64_t)n;
        } else if (r->auth.payload == S3_PAYLOAD_STREAMING_SIGNED) {
            return S3_ERR_MISSING_CONTENT_LENGTH;
        } else {
            r->expect_bytes = -1;
        }
        r->chunked = s3_chunked_new(&r->auth, MAX_TRAILER_BYTES);
        break;
    }
    case S3_PAYLOAD_UNSIGNED:
    case S3_PAYLOAD_SHA256:
        break;
    }
    return S3_OK;
}

/* RFC 9112 3.2.2: a server accepts the absolute form ("http://host/path") as well; the
 * path is what S3 signs and routes, Host still names the bucket in virtual-hosted style. */
struct span s3_target_origin_form(struct span t)
{
    size_t skip;
    if (span_starts_with(t, "http://"))
        skip = 7;
    else if (span_starts_with(t, "https://"))
        skip = 8;
    else
        return t;
    const char *slash = memchr(t.ptr + skip, '/', t.len - skip);
    if (slash == NULL)
        return SPAN_LIT("/");
    return span_make(slash, t.len - (size_t)(slash - t.ptr));
}

static void on_request(struct h1_req *h, void *arg)
{
    struct s3_api *api = arg;
    struct s3_req *r = xcalloc(1, sizeof(*r));
    r->api = api;
    r->h1 = h;
    r->refs = 1;
    s3_obj_meta_init(&r->meta);
    s3_obj_meta_init(&r->result);
    h1_req_set_data(h, r);

    struct span target = s3_target_origin_form(h1_req_target(h)), path;
    struct span query = span_cut(target, '?', &path);
    parse_query(r, query);

    struct s3_route_in in = {
        .method = h1_req_method(h),
        .path = path,
        .host = h1_req_header(h, "host"),
        .domain = api->cfg->domain,
        .params = r->params,
        .n_params = r->n_params,
        .has_copy_source = h1_req_header(h, "x-amz-copy-source").ptr != NULL,
    };
    struct s3_route_out out;
    enum s3_err err = s3_route(&in, &out);
    r->op = out.op;
    r->bucket = out.bucket;
    r->key = out.key;
    r->key_len = out.key_len;
    out.bucket = out.key = NULL;
    struct s3_auth_req areq = {
        .method = in.method,
        .path = path,
        .query = query,
        .vhost_bucket = out.vhost_bucket,
        .now = time(NULL),
    };
    areq.headers = h1_req_headers(h, &areq.n_headers);
    char msg[256] = "";
    if (err == S3_OK)
        err = s3_auth_verify(&api->auth_cfg, &areq, &r->auth, msg, sizeof(msg));
    s3_route_cleanup(&out);
    fill_access(r);
    if (err == S3_OK && r->auth.kind == S3_AUTH_ANONYMOUS)
        err = S3_ERR_ACCESS_DENIED;
    if (err == S3_OK && r->bucket != NULL && r->op != S3_OP_CREATE_BUCKET &&
        !s3_bucket_name_valid(r->bucket) && r->op != S3_OP_NOT_IMPLEMENTED)
        err = S3_ERR_NO_SUCH_BUCKET;
    if (err == S3_OK && r->key != NULL)
        err = s3_key_check(r->key, r->key_len);
    if (err == S3_OK)
        err = setup_body(r);
    if (err != S3_OK) {
        s3_req_fail(r, err, msg[0] ? msg : NULL);
        return;
    }
    dispatch(r);
}

static const char *error_body(int status, const char *request_id, struct evbuffer *out, void *arg)
{
    (void)arg;
    s3_err_write_xml(out, s3_err_from_status(status), NULL, NULL, request_id);
    return "application/xml";
}

/* ---- construction ---- */

struct s3_api *s3_api_new(struct event_base *base, const struct s3_config *cfg, char *err,
                          size_t err_cap)
{
    struct s3_api *api = xcalloc(1, sizeof(*api));
    api->base = base;
    api->cfg = cfg;
    api->n_users = cfg->n_users;
    api->users = xcalloc(cfg->n_users ? cfg->n_users : 1, sizeof(*api->users));
    for (size_t i = 0; i < cfg->n_users; i++) {
        api->users[i].name = cfg->users[i].name;
        api->users[i].access_key = cfg->users[i].access_key;
        api->users[i].secret_key = cfg->users[i].secret_key;
    }
    api->auth_cfg = (struct s3_auth_config){
        .region = cfg->region,
        .users = api->users,
        .n_users = api->n_users,
        .sigv2 = cfg->sigv2,
        .max_skew_s = cfg->max_skew_s,
        .max_presign_s = 604800,
    };
    api->pool = gw_pool_new(base, (int)(cfg->disk_threads ? cfg->disk_threads : 4), "disk");
    struct s3_store_config sc = {
        .data_dir = cfg->data_dir,
        .inline_max_bytes = cfg->inline_max_bytes,
        .upload_max_age_s = cfg->upload_max_age_s,
    };
    api->store = s3_store_open(base, api->pool, &sc, err, err_cap);
    if (api->store == NULL) {
        s3_api_free(api);
        return NULL;
    }
    return api;
}

void s3_api_handler(struct s3_api *api, struct h1_handler *out)
{
    *out = (struct h1_handler){
        .on_request = on_request,
        .on_body = on_body,
        .on_body_end = on_body_end,
        .on_abort = on_abort,
        .error_body = error_body,
        .arg = api,
    };
}

/* ---- events and the outbox: the store does the work ---- */

void s3_api_set_event_hook(struct s3_api *api, s3_event_hook_fn *fn, void *arg)
{
    s3_store_set_event_hook(api->store, fn, arg);
}

void s3_api_set_outbox_map(struct s3_api *api, s3_outbox_map_fn *fn, void *arg)
{
    s3_store_set_outbox_map(api->store, fn, arg);
}

void s3_api_set_arn_check(struct s3_api *api, s3_arn_check_fn *fn, void *arg)
{
    api->arn_check = fn;
    api->arn_check_arg = arg;
}

void s3_api_on_outbox(struct s3_api *api, void (*fn)(void *arg), void *arg)
{
    s3_store_on_outbox(api->store, fn, arg);
}

void s3_outbox_read(struct s3_api *api, uint64_t after_id, size_t max_n, size_t max_bytes,
                    s3_outbox_read_cb *cb, void *arg)
{
    s3_store_outbox_read(api->store, after_id, max_n, max_bytes, cb, arg);
}

void s3_outbox_remove(struct s3_api *api, const uint64_t *ids, size_t n,
                      void (*cb)(int err, void *arg), void *arg)
{
    s3_store_outbox_remove(api->store, ids, n, cb, arg);
}

uint64_t s3_outbox_count(const struct s3_api *api)
{
    return s3_store_outbox_count(api->store);
}

void s3_outbox_identity(const struct s3_api *api, char source[33], uint64_t *first_id)
{
    s3_store_outbox_identity(api->store, source, first_id);
}

void s3_api_free(struct s3_api *api)
{
    if (api == NULL)
        return;
    s3_store_close(api->store);
    gw_pool_free(api->pool);
    free(api->users);
    free(api);
}

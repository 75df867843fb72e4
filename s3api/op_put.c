/* PutObject and UploadPart: the body streams (through the aws-chunked decoder when signed in
 * chunks) into a store upload whose writer thread also computes the digests; the socket is
 * paused while the store is behind. Nothing is visible before every digest has checked out
 * and the store has committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/h1.h"
#include "gateway/xmalloc.h"
#include "s3api/chunked.h"
#include "s3api/encode.h"
#include "s3api/request.h"

#define MAX_PART_BYTES (5ull << 30)

/* The digests of one upload, owned by the store's writer until it releases them with a
 * final tap(arg, NULL, 0) call. */
struct put_hashes {
    struct s3_hashes *h;
};

static void on_tap(void *arg, const void *data, size_t len)
{
    struct put_hashes *ph = arg;
    if (data == NULL && len == 0) {
        s3_hashes_free(ph->h);
        free(ph);
        return;
    }
    s3_hashes_update(ph->h, data, len);
}

/* Drops the upload and any reference its pending callback held. */
void s3_put_cancel(struct s3_req *r)
{
    if (r->put == NULL || r->put_committing)
        return;
    s3_put_abort(r->put);
    r->put = NULL;
    r->hashes = NULL; /* released by the store through the tap */
    if (r->put_waiting) {
        r->put_waiting = false;
        r->refs--;
    }
}

static void on_drained(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    r->put_waiting = false;
    if (s3_req_resume(r))
        return;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    h1_req_resume_body(r->h1);
}

static uint64_t max_bytes(const struct s3_req *r)
{
    return r->op == S3_OP_UPLOAD_PART ? MAX_PART_BYTES : r->api->cfg->max_object_bytes;
}

void s3_put_on_body(struct s3_req *r)
{
    if (r->put == NULL)
        return;
    /* A chunked body announces no length: the ceiling is checked as bytes arrive. */
    if (r->body_bytes > max_bytes(r)) {
        s3_req_fail(r, S3_ERR_ENTITY_TOO_LARGE, NULL);
        return;
    }
    size_t queued = s3_put_write(r->put, r->decoded);
    if (queued > S3_PUT_HIGH_WATER && !r->put_waiting) {
        h1_req_pause_body(r->h1);
        r->put_waiting = true;
        s3_req_hold(r);
        s3_put_on_drain(r->put, on_drained, r);
    }
}

static void on_committed(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    r->put = NULL;
    if (s3_req_resume(r))
        return;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof(etag), "\"%s\"", r->result.etag);
    s3_req_header_out(r, "ETag", etag);
    if (r->cksum_alg != S3_CKSUM_NONE) {
        const char *hn = s3_cksum_header(r->cksum_alg);
        const char *v = s3_obj_meta_get(&r->result, hn);
        if (v != NULL)
            s3_req_header_out(r, hn, v);
    }
    s3_req_reply_empty(r, 200);
}

static void on_flushed(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    r->put_waiting = false;
    if (s3_req_resume(r))
        return;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    struct s3_digests d;
    s3_hashes_final(r->hashes, &d);
    r->hashes = NULL; /* the store releases it */
    size_t n_tr = 0;
    const struct gw_header *tr = r->chunked ? s3_chunked_trailers(r->chunked, &n_tr) : NULL;
    err = s3_req_check_digests(r, &d, tr, n_tr);
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    r->meta.size = r->body_bytes;
    s3_hex(d.md5, 16, r->meta.etag);
    if (d.alg != S3_CKSUM_NONE) {
        char b64[64];
        s3_base64_encode(d.cksum, d.cksum_len, b64, sizeof(b64));
        s3_obj_meta_add(&r->meta, s3_cksum_header(d.alg), b64);
    }
    /* What the response needs, kept before the meta goes to the store. */
    snprintf(r->result.etag, sizeof(r->result.etag), "%s", r->meta.etag);
    if (d.alg != S3_CKSUM_NONE)
        s3_obj_meta_add(&r->result, s3_cksum_header(d.alg),
                        s3_obj_meta_get(&r->meta, s3_cksum_header(d.alg)));
    struct s3_obj_meta *m = xmalloc(sizeof(*m));
    *m = r->meta;
    s3_obj_meta_init(&r->meta);
    struct s3_event_origin origin;
    s3_req_origin(r, &origin);
    r->put_committing = true;
    s3_req_hold(r);
    s3_put_commit(r->put, m, &origin, on_committed, r);
    free(m);
}

void s3_put_on_body_end(struct s3_req *r)
{
    if (r->put == NULL)
        return;
    s3_put_write(r->put, r->decoded);
    r->put_waiting = true;
    s3_req_hold(r);
    s3_put_flush(r->put, on_flushed, r);
}

void s3_put_on_abort(struct s3_req *r)
{
    s3_put_cancel(r);
}

static void start_upload(struct s3_req *r)
{
    struct put_hashes *ph = xmalloc(sizeof(*ph));
    ph->h = s3_hashes_new(r->auth.payload == S3_PAYLOAD_SHA256, r->cksum_alg);
    r->hashes = ph->h;
    if (r->op == S3_OP_UPLOAD_PART)
        r->put = s3_put_new_part(r->api->store, r->bucket, r->key, s3_req_param(r, "uploadId"),
                                 r->part_number, on_tap, ph);
    else
        r->put = s3_put_new(r->api->store, r->bucket, r->key, on_tap, ph);
    r->sink = S3_SINK_PUT;
    h1_req_read_body(r->h1);
}

static void on_bucket(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    start_upload(r);
}

void s3_op_put(struct s3_req *r)
{
    bool part = r->op == S3_OP_UPLOAD_PART;
    uint64_t max = max_bytes(r);
    if (h1_req_header(r->h1, "content-length").ptr == NULL && !h1_req_is_chunked(r->h1)) {
        s3_req_fail(r, S3_ERR_MISSING_CONTENT_LENGTH, NULL);
        return;
    }
    if (r->expect_bytes > (int64_t)max) {
        s3_req_fail(r, S3_ERR_ENTITY_TOO_LARGE, NULL);
        return;
    }
    if (part) {
        const char *pn = s3_req_param(r, "partNumber");
        unsigned long long n = 0;
        if (pn == NULL || span_to_u64(span_from(pn), &n) != 0 || n < 1 || n > 10000) {
            s3_req_fail(r, S3_ERR_INVALID_ARGUMENT,
                        "Part number must be an integer between 1 and 10000, inclusive");
            return;
        }
        if (s3_req_param(r, "uploadId") == NULL) {
            s3_req_fail(r, S3_ERR_INVALID_ARGUMENT, "This operation needs an uploadId.");
            return;
        }
        r->part_number = (unsigned)n;
    } else {
        if (s3_req_refuse_acl(r))
            return;
        enum s3_err err = s3_req_collect_meta(r, &r->meta);
        if (err != S3_OK) {
            s3_req_fail(r, err, NULL);
            return;
        }
    }
    /* The bucket is checked before the body is asked for, so a PUT to a missing bucket
     * costs the client no upload. */
    s3_req_hold(r);
    s3_store_bucket_head(r->api->store, r->bucket, on_bucket, r);
}

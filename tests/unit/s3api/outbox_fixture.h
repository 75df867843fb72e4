/* What the outbox's store tests share, on top of store_fixture.h: an origin, a bucket, small
 * puts (or parts), and reading, removing and clearing the outbox. Included by one test file
 * each (the definitions are static). */
#ifndef FG_TESTS_UNIT_S3API_OUTBOX_FIXTURE_H
#define FG_TESTS_UNIT_S3API_OUTBOX_FIXTURE_H

#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "tests/unit/s3api/store_fixture.h"

static const struct s3_event_origin origin = {
    .principal = "AKIDTEST",
    .source_ip = "192.0.2.7",
    .request_id = "REQ0001",
};

static inline enum s3_err bucket_create(const char *b)
{
    struct res r = {0};
    s3_store_bucket_create(st, b, on_res, &r);
    return wait_res(&r);
}

static inline void md5_hex(const void *p, size_t n, char out[33])
{
    unsigned char d[16];
    EVP_Digest(p, n, d, NULL, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A put (upload_id NULL) or part of `text`, written and flushed, ready for its commit with
 * *m (its size and MD5 ETag); NULL with *err when the flush failed (the put aborted). */
static inline struct s3_put *put_flushed(const char *b, const char *key, const char *upload_id,
                                         const char *text, struct s3_obj_meta *m, enum s3_err *err)
{
    size_t len = strlen(text);
    struct s3_put *put = upload_id ? s3_put_new_part(st, b, key, upload_id, 1, NULL, NULL)
                                   : s3_put_new(st, b, key, NULL, NULL);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, text, len);
    s3_put_write(put, buf);
    evbuffer_free(buf);
    struct res r = {0};
    s3_put_flush(put, on_res, &r);
    *err = wait_res(&r);
    if (*err != S3_OK) {
        s3_put_abort(put);
        return NULL;
    }
    s3_obj_meta_init(m);
    m->size = len;
    md5_hex(text, len, m->etag);
    return put;
}

/* PutObject (upload_id NULL) or UploadPart of `text`, committed; the store settled after. */
static inline enum s3_err put_text(const char *b, const char *key, const char *upload_id,
                                   const char *text)
{
    struct s3_obj_meta m;
    enum s3_err err;
    struct s3_put *put = put_flushed(b, key, upload_id, text, &m, &err);
    if (put == NULL)
        return err;
    struct res r = {0};
    s3_put_commit(put, &m, &origin, on_res, &r);
    err = wait_res(&r);
    s3_obj_meta_cleanup(&m);
    settle();
    return err;
}

struct read_res {
    bool done;
    int err;
    size_t n;
    uint64_t ids[32];
    char data[32][160];
};

static inline void on_read(int err, const struct s3_outbox_rec *recs, size_t n, void *arg)
{
    struct read_res *r = arg;
    r->done = true;
    r->err = err;
    r->n = n;
    for (size_t i = 0; i < n && i < 32; i++) {
        r->ids[i] = recs[i].id;
        snprintf(r->data[i], sizeof(r->data[i]), "%.*s", (int)recs[i].len,
                 (const char *)recs[i].data);
    }
}

static inline void outbox_read(uint64_t after, size_t max_n, size_t max_bytes, struct read_res *r)
{
    memset(r, 0, sizeof(*r));
    s3_store_outbox_read(st, after, max_n, max_bytes, on_read, r);
    run_until(&r->done);
}

struct rm_res {
    bool done;
    int err;
};

static inline void on_removed(int err, void *arg)
{
    struct rm_res *r = arg;
    r->done = true;
    r->err = err;
}

static inline int outbox_remove(const uint64_t *ids, size_t n)
{
    struct rm_res r = {0};
    s3_store_outbox_remove(st, ids, n, on_removed, &r);
    run_until(&r.done);
    settle();
    return r.err;
}

static inline void outbox_clear(void)
{
    struct read_res r;
    outbox_read(0, 32, 1u << 20, &r);
    outbox_remove(r.ids, r.n);
}

#endif

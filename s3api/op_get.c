/* GetObject and HeadObject: conditions, ranges, response-* overrides, and a body streamed
 * from the store in blocks paced by the socket (memory stays flat for any object size; data
 * files go out with sendfile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "gateway/h1.h"
#include "gateway/xmalloc.h"
#include "s3api/cond.h"
#include "s3api/httpdate.h"
#include "s3api/range.h"
#include "s3api/request.h"

/* Data files go out with sendfile, so a block costs no memory: the store's limit per read. */
#define READ_BLOCK (1u << 20)

static const struct {
    const char *param;
    const char *header;
} overrides[] = {
    {"response-content-type", "Content-Type"},
    {"response-content-language", "Content-Language"},
    {"response-expires", "Expires"},
    {"response-cache-control", "Cache-Control"},
    {"response-content-disposition", "Content-Disposition"},
    {"response-content-encoding", "Content-Encoding"},
};

static const char *override_for(struct s3_req *r, const char *stored_name)
{
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++)
        if (strcasecmp(overrides[i].header, stored_name) == 0)
            return s3_req_param(r, overrides[i].param);
    return NULL;
}

void s3_write_object_headers(struct s3_req *r, const struct s3_obj_meta *m)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "\"%s\"", m->etag);
    s3_req_header_out(r, "ETag", buf);
    char date[30];
    s3_date_rfc1123(m->mtime_ms, date);
    s3_req_header_out(r, "Last-Modified", date);
    struct span mode = s3_req_header(r, "x-amz-checksum-mode");
    bool cksum = mode.ptr != NULL && span_eq_ci(span_trim(mode), "enabled");
    bool seen[sizeof(overrides) / sizeof(overrides[0])] = {false};
    for (size_t i = 0; i < m->n_headers; i++) {
        const char *name = m->headers[i].name;
        if (strncmp(name, "x-amz-checksum-", 15) == 0 && !cksum)
            continue;
        const char *ov = override_for(r, name);
        for (size_t j = 0; j < sizeof(overrides) / sizeof(overrides[0]); j++)
            if (strcasecmp(overrides[j].header, name) == 0)
                seen[j] = true;
        s3_req_header_out(r, name, ov != NULL ? ov : m->headers[i].value);
    }
    for (size_t j = 0; j < sizeof(overrides) / sizeof(overrides[0]); j++) {
        const char *ov = s3_req_param(r, overrides[j].param);
        if (!seen[j] && ov != NULL)
            s3_req_header_out(r, overrides[j].header, ov);
    }
    if (m->parts_count > 0) {
        snprintf(buf, sizeof(buf), "%u", m->parts_count);
        s3_req_header_out(r, "x-amz-mp-parts-count", buf);
    }
}

static void read_next(struct s3_req *r);

static void on_drain(struct h1_req *h, void *arg)
{
    (void)h;
    read_next(arg);
}

/* The next block is in readbuf: send it, then wait for the socket to drain. */
static void write_block(struct s3_req *r)
{
    r->get_off += evbuffer_get_length(r->readbuf);
    h1_resp_write_buf(r->h1, r->readbuf);
    if (r->get_off >= r->get_end) {
        s3_req_end(r);
        return;
    }
    h1_resp_on_drain(r->h1, on_drain, r);
}

static void on_read(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (s3_req_resume(r))
        return;
    if (err != S3_OK) {
        /* The headers are out already: all that is left is to cut the response short. */
        log_error(h1_req_log(r->h1), "read failed mid-response: %s", s3_err_code(err));
        h1_resp_close(r->h1);
        s3_req_end(r);
        return;
    }
    write_block(r);
}

static void read_next(struct s3_req *r)
{
    uint64_t left = r->get_end - r->get_off;
    size_t n = left < READ_BLOCK ? (size_t)left : READ_BLOCK;
    /* Cached small objects and hot files: no pool job, no deferral. */
    if (s3_obj_send_now(r->obj, r->get_off, n, r->readbuf)) {
        write_block(r);
        return;
    }
    s3_req_hold(r);
    s3_obj_send(r->obj, r->get_off, n, r->readbuf, on_read, r);
}

static void on_obj(enum s3_err err, struct s3_obj *obj, void *arg)
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
    r->obj = obj;
    const struct s3_obj_meta *m = s3_obj_meta(obj);
    struct s3_conds c = {
        .if_match = s3_req_header(r, "if-match"),
        .if_none_match = s3_req_header(r, "if-none-match"),
        .if_modified_since = s3_req_header(r, "if-modified-since"),
        .if_unmodified_since = s3_req_header(r, "if-unmodified-since"),
    };
    err = s3_conds_check(&c, m->etag, m->mtime_ms, true);
    if (err == S3_ERR_NOT_MODIFIED) {
        s3_write_object_headers(r, m);
    }
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    bool has_range = false;
    uint64_t off = 0, len = m->size;
    err = s3_range_parse(s3_req_header(r, "range"), m->size, &has_range, &off, &len);
    if (err != S3_OK) {
        char cr[48];
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)m->size);
        s3_req_header_out(r, "Content-Range", cr);
        s3_req_fail(r, err, NULL);
        return;
    }
    s3_write_object_headers(r, m);
    s3_req_header_out(r, "Accept-Ranges", "bytes");
    if (has_range) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)m->size);
        s3_req_header_out(r, "Content-Range", cr);
    }
    s3_req_common_headers(r);
    h1_resp_start(r->h1, has_range ? 206 : 200, (int64_t)len);
    if (r->op == S3_OP_HEAD_OBJECT || len == 0) {
        s3_req_end(r);
        return;
    }
    r->get_off = off;
    r->get_end = off + len;
    r->readbuf = evbuffer_new();
    read_next(r);
}

void s3_op_get(struct s3_req *r)
{
    s3_req_hold(r);
    s3_store_get(r->api->store, r->bucket, r->key, r->op == S3_OP_GET_OBJECT, on_obj, r);
}

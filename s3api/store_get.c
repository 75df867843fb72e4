/* Reading objects from the fs store (GetObject, HeadObject) and CopyObject. A reader pins the
 * files of the record it found, so an overwrite or delete committed meanwhile unlinks them
 * only after the reader lets go: what a GET started with is what it returns. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "gateway/log.h"
#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define OPEN_ATTEMPTS 100

static struct log_ctx get_log = {.module = "store"};

static bool same_files(const struct s3_fs_loc *a, const struct s3_fs_loc *b)
{
    if (a->kind != b->kind || a->n_segs != b->n_segs)
        return false;
    for (size_t i = 0; i < a->n_segs; i++) {
        if (a->segs[i].file_id != b->segs[i].file_id)
            return false;
    }
    return true;
}

/* One lookup in a fresh read txn. */
static int lookup(struct s3_store *st, const char *bucket, const char *key, struct s3_fs_rec *out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    rc = s3_fs_bucket_exists(st, txn, bucket);
    if (rc == MDB_NOTFOUND)
        rc = -1; /* no bucket */
    else if (rc == 0)
        rc = s3_fs_obj_get(st, txn, bucket, key, out);
    mdb_txn_abort(txn);
    return rc;
}

/* Pinning after the lookup leaves a window in which the record could be dropped and its
 * files unlinked. So the lookup is repeated after pinning: if the record still names the same
 * files, whatever drops it commits after the pin, and its unlink waits for the unpin. */
enum s3_err s3_fs_obj_open(struct s3_store *st, const char *bucket, const char *key, bool pin,
                           struct s3_fs_rec *out)
{
    memset(out, 0, sizeof(*out));
    if (s3_fs_check_bucket_name(bucket) != S3_OK)
        return S3_ERR_NO_SUCH_BUCKET;
    enum s3_err err = s3_fs_check_key(key);
    if (err != S3_OK)
        return err == S3_ERR_KEY_TOO_LONG ? err : S3_ERR_NO_SUCH_KEY;
    for (int attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
        int rc = lookup(st, bucket, key, out);
        if (rc == -1)
            return S3_ERR_NO_SUCH_BUCKET;
        if (rc == MDB_NOTFOUND)
            return S3_ERR_NO_SUCH_KEY;
        if (rc != 0) {
            log_error(&get_log, "index lookup: %s", mdb_strerror(rc));
            return S3_ERR_INTERNAL_ERROR;
        }
        if (!pin || out->loc.kind != S3_FS_LOC_SEGS)
            return S3_OK;
        s3_fs_pins_add(st, &out->loc);
        struct s3_fs_rec again;
        memset(&again, 0, sizeof(again));
        rc = lookup(st, bucket, key, &again);
        bool same = rc == 0 && same_files(&out->loc, &again.loc);
        s3_fs_rec_cleanup(&again);
        if (same)
            return S3_OK;
        s3_fs_pins_release(st, &out->loc);
        s3_fs_rec_cleanup(out);
    }
    return S3_ERR_SERVICE_UNAVAILABLE; /* overwritten faster than we can look */
}

/* ---- reading segments ---- */

void s3_fs_reader_init(struct s3_fs_reader *rd, struct s3_store *st, const struct s3_fs_loc *loc)
{
    *rd = (struct s3_fs_reader){.st = st, .loc = loc, .fd = -1};
}

void s3_fs_reader_cleanup(struct s3_fs_reader *rd)
{
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
}

static void reader_seek(struct s3_fs_reader *rd, uint64_t off)
{
    if (off < rd->cur_start) {
        s3_fs_reader_cleanup(rd);
        rd->cur_seg = 0;
        rd->cur_start = 0;
    }
    const struct s3_fs_loc *loc = rd->loc;
    while (rd->cur_seg < loc->n_segs && off >= rd->cur_start + loc->segs[rd->cur_seg].size) {
        s3_fs_reader_cleanup(rd);
        rd->cur_start += loc->segs[rd->cur_seg].size;
        rd->cur_seg++;
    }
}

int s3_fs_reader_pread(struct s3_fs_reader *rd, void *buf, size_t len, uint64_t off)
{
    const struct s3_fs_loc *loc = rd->loc;
    char *p = buf;
    if (loc->kind == S3_FS_LOC_INLINE) {
        if (off > loc->data_len || len > loc->data_len - off) {
            errno = EIO;
            return -1;
        }
        memcpy(buf, loc->data + off, len);
        return 0;
    }
    while (len > 0) {
        reader_seek(rd, off);
        if (rd->cur_seg >= loc->n_segs) {
            errno = EIO; /* past the end of the record's segments */
            return -1;
        }
        const struct s3_fs_seg *seg = &loc->segs[rd->cur_seg];
        if (rd->fd < 0) {
            rd->fd = s3_fs_file_open(rd->st, seg->file_id);
            if (rd->fd < 0)
                return -1;
            posix_fadvise(rd->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        }
        uint64_t in_seg = off - rd->cur_start;
        size_t n = seg->size - in_seg < len ? (size_t)(seg->size - in_seg) : len;
        ssize_t r = pread(rd->fd, p, n, (off_t)in_seg);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* shorter than its record says */
            return -1;
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

/* ---- GetObject / HeadObject ---- */

/* The first block of a file-backed object is read by the lookup job itself, and when that is
 * the whole object the files are let go there too: a small GET costs one pool round trip, and
 * reads of inline or prefetched bytes need none. */
#define PREFETCH_MAX (256u << 10)

struct s3_obj {
    struct s3_store *st;
    struct s3_fs_rec rec;
    bool pinned;
    struct s3_fs_reader rd; /* used by one read job at a time */
    unsigned char *pre;     /* bytes [0, pre_len) read ahead by the lookup */
    size_t pre_len;
};

struct get_job {
    struct s3_store *st;
    char *bucket;
    char *key;
    bool open_data;
    s3_obj_cb *cb;
    void *arg;
    enum s3_err err;
    struct s3_obj *obj;
};

static void on_get_work(void *arg)
{
    struct get_job *g = arg;
    struct s3_obj *obj = xcalloc(1, sizeof(*obj));
    obj->st = g->st;
    g->err = s3_fs_obj_open(g->st, g->bucket, g->key, g->open_data, &obj->rec);
    obj->pinned = g->err == S3_OK && g->open_data;
    s3_fs_reader_init(&obj->rd, g->st, &obj->rec.loc);
    /* Open the first segment now: a missing file is an error of the GET, not mid-body. */
    if (obj->pinned && obj->rec.loc.kind == S3_FS_LOC_SEGS && obj->rec.loc.n_segs > 0 &&
        obj->rec.meta.size > 0) {
        uint64_t size = obj->rec.meta.size;
        obj->pre_len = size < PREFETCH_MAX ? (size_t)size : PREFETCH_MAX;
        obj->pre = xmalloc(obj->pre_len);
        if (s3_fs_reader_pread(&obj->rd, obj->pre, obj->pre_len, 0) != 0) {
            log_error(&get_log, "opening the data of %s/%s: %s", g->bucket, g->key,
                      strerror(errno));
            g->err = S3_ERR_INTERNAL_ERROR;
        } else if (obj->pre_len == size) {
            /* All of it is in memory: nothing left to hold on to. */
            s3_fs_reader_cleanup(&obj->rd);
            s3_fs_reader_init(&obj->rd, g->st, &obj->rec.loc);
            s3_fs_pins_release(g->st, &obj->rec.loc);
            obj->pinned = false;
        }
    } else if (obj->pinned && obj->rec.loc.kind == S3_FS_LOC_INLINE) {
        s3_fs_pins_release(g->st, &obj->rec.loc);
        obj->pinned = false;
    }
    if (g->err != S3_OK) {
        s3_fs_reader_cleanup(&obj->rd);
        if (obj->pinned)
            s3_fs_pins_release(g->st, &obj->rec.loc);
        s3_fs_rec_cleanup(&obj->rec);
        free(obj->pre);
        free(obj);
        obj = NULL;
    }
    g->obj = obj;
}

static void on_get_done(void *arg)
{
    struct get_job *g = arg;
    g->cb(g->err, g->obj, g->arg);
    free(g->bucket);
    free(g->key);
    free(g);
}

void s3_store_get(struct s3_store *st, const char *bucket, const char *key, bool open_data,
                  s3_obj_cb *cb, void *arg)
{
    struct get_job *g = xcalloc(1, sizeof(*g));
    g->st = st;
    g->bucket = xstrdup(bucket);
    g->key = xstrdup(key);
    g->open_data = open_data;
    g->cb = cb;
    g->arg = arg;
    s3_fs_submit_fast(st, on_get_work, on_get_done, g);
}

const struct s3_obj_meta *s3_obj_meta(const struct s3_obj *obj)
{
    return &obj->rec.meta;
}

struct read_job {
    struct s3_obj *obj;
    uint64_t off;
    size_t len;
    struct evbuffer *out;
    s3_store_cb *cb;
    void *arg;
    char *buf;
    enum s3_err err;
};

static void on_read_work(void *arg)
{
    struct read_job *r = arg;
    r->buf = xmalloc(r->len ? r->len : 1);
    if (s3_fs_reader_pread(&r->obj->rd, r->buf, r->len, r->off) != 0) {
        log_error(&get_log, "reading object data: %s", strerror(errno));
        r->err = S3_ERR_INTERNAL_ERROR;
    }
}

static void free_buf(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)(uintptr_t)data);
}

static void on_read_done(void *arg)
{
    struct read_job *r = arg;
    if (r->err == S3_OK && r->len > 0) {
        if (evbuffer_add_reference(r->out, r->buf, r->len, free_buf, NULL) != 0)
            r->err = S3_ERR_INTERNAL_ERROR;
        else
            r->buf = NULL;
    }
    free(r->buf);
    r->cb(r->err, r->arg);
    free(r);
}

static void on_read_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_read_done(arg);
}

void s3_obj_read(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out,
                 s3_store_cb *cb, void *arg)
{
    struct read_job *r = xcalloc(1, sizeof(*r));
    uint64_t size = obj->rec.meta.size;
    if (len > S3_FS_READ_MAX)
        len = S3_FS_READ_MAX;
    if (off >= size)
        len = 0;
    else if (len > size - off)
        len = (size_t)(size - off);
    *r = (struct read_job){.obj = obj, .off = off, .len = len, .out = out, .cb = cb, .arg = arg};
    const unsigned char *mem = NULL;
    if (obj->rec.loc.kind == S3_FS_LOC_INLINE)
        mem = obj->rec.loc.data;
    else if (obj->pre != NULL && off + len <= obj->pre_len)
        mem = obj->pre;
    if (mem != NULL || len == 0) {
        /* Bytes already in memory: no pool round trip, only the deferral the contract asks. */
        if (len > 0)
            evbuffer_add(out, mem + off, len);
        r->len = 0;
        event_base_once(obj->st->base, -1, EV_TIMEOUT, on_read_now, r, NULL);
        return;
    }
    s3_fs_submit(obj->st, on_read_work, on_read_done, r);
}

static void on_obj_close_work(void *arg)
{
    struct s3_obj *obj = arg;
    s3_fs_reader_cleanup(&obj->rd);
    if (obj->pinned)
        s3_fs_pins_release(obj->st, &obj->rec.loc);
}

static void on_obj_close_done(void *arg)
{
    struct s3_obj *obj = arg;
    free(obj->pre);
    s3_fs_rec_cleanup(&obj->rec);
    free(obj);
}

void s3_obj_free(struct s3_obj *obj)
{
    if (obj == NULL)
        return;
    if (obj->rd.fd < 0 && !obj->pinned) {
        on_obj_close_done(obj);
        return;
    }
    s3_fs_submit(obj->st, on_obj_close_work, on_obj_close_done, obj);
}

/* ---- CopyObject ---- */

struct copy_op {
    struct s3_fs_op op;
    struct s3_store *st;
    char *src_bucket, *src_key, *dst_bucket, *dst_key;
    struct s3_obj_meta meta; /* the destination's headers */
    struct s3_obj_meta *out;
    s3_store_cb *cb;
    void *arg;
    bool self;
    enum s3_err err;
    struct s3_fs_rec src;   /* the source's record, read on the pool */
    uint64_t file_id;       /* the new data file (tmp/), 0 when inline */
    struct s3_obj_meta res; /* the committed destination's meta */
};

static void copy_free(struct copy_op *c)
{
    free(c->src_bucket);
    free(c->src_key);
    free(c->dst_bucket);
    free(c->dst_key);
    s3_obj_meta_cleanup(&c->meta);
    s3_obj_meta_cleanup(&c->res);
    s3_fs_rec_cleanup(&c->src);
    free(c);
}

static void finish_copy(struct s3_fs_op *op)
{
    struct copy_op *c = (struct copy_op *)op;
    enum s3_err err = c->err != S3_OK ? c->err : op->err;
    if (err == S3_OK && c->out != NULL)
        s3_obj_meta_copy(c->out, &c->res);
    if (err != S3_OK)
        s3_fs_discard_tmp(c->st, c->file_id);
    c->cb(err, c->arg);
    copy_free(c);
}

/* The destination record: the source's size, etag and data, the new headers. Borrowed
 * pointers only, so apply can run again if the batch is retried. */
static enum s3_err apply_copy(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct copy_op *c = (struct copy_op *)op;
    int rc = s3_fs_bucket_exists(w->st, w->txn, c->dst_bucket);
    if (rc == MDB_NOTFOUND)
        return S3_ERR_NO_SUCH_BUCKET;
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    struct s3_fs_rec cur = {0};
    const struct s3_fs_rec *src = &c->src;
    if (c->self) {
        /* Onto itself: only the metadata changes; the data stays where it is. */
        rc = s3_fs_obj_get(w->st, w->txn, c->dst_bucket, c->dst_key, &cur);
        if (rc == MDB_NOTFOUND)
            return S3_ERR_NO_SUCH_KEY;
        if (rc != 0)
            return s3_fs_wtxn_fail(w, rc);
        src = &cur;
    }
    struct s3_fs_seg seg = {c->file_id, src->meta.size};
    struct s3_fs_rec dst = {.meta = src->meta, .loc = src->loc};
    dst.meta.headers = c->meta.headers;
    dst.meta.n_headers = c->meta.n_headers;
    dst.meta.mtime_ms = w->now_ms;
    if (!c->self && c->file_id != 0)
        dst.loc = (struct s3_fs_loc){.kind = S3_FS_LOC_SEGS, .segs = &seg, .n_segs = 1};
    enum s3_err err = s3_fs_obj_put(w, c->dst_bucket, c->dst_key, &dst, !c->self);
    if (err == S3_OK && !c->self && c->file_id != 0)
        err = s3_fs_wtxn_publish(w, c->file_id);
    if (err == S3_OK) {
        s3_obj_meta_cleanup(&c->res);
        s3_obj_meta_copy(&c->res, &dst.meta);
    }
    s3_fs_rec_cleanup(&cur);
    return err;
}

/* Reads the source and writes its bytes into a new file in tmp/ (fdatasync'd). */
static void on_copy_work(void *arg)
{
    struct copy_op *c = arg;
    int fd = -1;
    c->err = s3_fs_obj_open(c->st, c->src_bucket, c->src_key, true, &c->src);
    if (c->err != S3_OK || c->src.loc.kind == S3_FS_LOC_INLINE)
        return;
    fd = s3_fs_tmp_create(c->st, &c->file_id);
    if (fd < 0) {
        c->file_id = 0;
        goto fail;
    }
    for (size_t i = 0; i < c->src.loc.n_segs; i++) {
        const struct s3_fs_seg *seg = &c->src.loc.segs[i];
        if (seg->size == 0)
            continue;
        int in = s3_fs_file_open(c->st, seg->file_id);
        int rc = in < 0 ? -1 : s3_fs_copy_range(in, 0, fd, seg->size);
        if (in >= 0)
            close(in);
        if (rc != 0)
            goto fail;
    }
    if (fdatasync(fd) != 0)
        goto fail;
    close(fd);
    s3_fs_pins_release(c->st, &c->src.loc);
    return;

fail:
    log_error(&get_log, "copying %s/%s: %s", c->src_bucket, c->src_key, strerror(errno));
    if (fd >= 0)
        close(fd);
    s3_fs_pins_release(c->st, &c->src.loc);
    c->err = S3_ERR_INTERNAL_ERROR;
}

static void on_copy_done(void *arg)
{
    struct copy_op *c = arg;
    if (c->err != S3_OK) {
        finish_copy(&c->op);
        return;
    }
    s3_fs_commit(c->st, &c->op);
}

static void on_no_work(void *arg)
{
    (void)arg;
}

void s3_store_copy(struct s3_store *st, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, struct s3_obj_meta *meta,
                   struct s3_obj_meta *out, s3_store_cb *cb, void *arg)
{
    struct copy_op *c = xcalloc(1, sizeof(*c));
    c->op.apply = apply_copy;
    c->op.finish = finish_copy;
    c->st = st;
    c->src_bucket = xstrdup(src_bucket);
    c->src_key = xstrdup(src_key);
    c->dst_bucket = xstrdup(dst_bucket);
    c->dst_key = xstrdup(dst_key);
    c->meta = *meta; /* taken over: the caller keeps an empty meta */
    s3_obj_meta_init(meta);
    c->out = out;
    c->cb = cb;
    c->arg = arg;
    c->self = strcmp(src_bucket, dst_bucket) == 0 && strcmp(src_key, dst_key) == 0;
    c->err = s3_fs_check_bucket_name(dst_bucket);
    if (c->err == S3_OK)
        c->err = s3_fs_check_key(dst_key);
    if (c->err != S3_OK)
        s3_fs_submit(st, on_no_work, on_copy_done, c);
    else if (c->self)
        s3_fs_commit(st, &c->op);
    else
        s3_fs_submit(st, on_copy_work, on_copy_done, c);
}

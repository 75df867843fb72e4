/* Uploads into the fs store (PutObject, UploadPart). Bytes queue on the loop and one pool job
 * at a time writes them in order, running the tap on each block; small objects stay in memory
 * and end up inline in the index, bigger ones go to tmp/<id>. Commit = fdatasync and close on
 * the pool, then the group committer (store_fs.c) publishes the record.
 *
 * Lifetime: callbacks run from a job's completion or from `ev` (deferred), never from the call
 * that asked for them. s3_put_abort() may come at any time, also from inside one of the put's
 * callbacks: it marks the put, and whoever holds it (a running job, the committer, the frame
 * that called the callback) ends it once it lets go. */
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

#define JOB_MAX_BYTES (1u << 20) /* bytes per write job: drain is reported at this grain */

static struct log_ctx put_log = {.module = "store"};

enum put_state {
    PUT_OPEN,    /* taking data */
    PUT_SYNCING, /* fdatasync job on the pool */
    PUT_QUEUED,  /* with the group committer */
    PUT_DONE,    /* committed or failed; being released */
};

struct s3_put {
    struct s3_fs_op op; /* first: the committer hands it back */
    struct s3_store *st;
    char *bucket;
    char *key;
    char *upload_id; /* NULL for PutObject */
    unsigned part_number;
    s3_put_tap_cb *tap;
    void *tap_arg;
    size_t inline_max; /* 0 for parts: a part is always a file */
    struct {
        struct evbuffer *pending; /* given, not yet handed to a job */
        size_t queued;            /* pending + the job in flight */
        size_t job_bytes;         /* in the job in flight */
        uint64_t total;           /* bytes given */
        bool busy;                /* a pool job owns `io` */
        bool aborted;
        bool in_cb;     /* one of our callbacks is running */
        bool committed; /* the record is in the index: its file must stay */
        enum put_state state;
        enum s3_err err; /* first failure */
        s3_store_cb *drain_cb;
        void *drain_arg;
        s3_store_cb *flush_cb;
        void *flush_arg;
        s3_store_cb *commit_cb;
        void *commit_arg;
        struct s3_obj_meta meta; /* for the commit; read by apply while queued */
        struct event *ev;        /* deferred dispatch */
    } loop;
    struct {
        struct evbuffer *job; /* the bytes of the job in flight */
        struct evbuffer *mem; /* everything so far while it fits inline */
        int fd;
        uint64_t file_id; /* tmp/<id>, 0 until the data outgrows inline */
        uint64_t written;
        uint64_t synced; /* sync_file_range() issued up to here */
        enum s3_err err;
    } io;
};

static void pump(struct s3_put *put);
static void abort_continue(struct s3_put *put);

/* ---- ending ---- */

static void put_free(struct s3_put *put)
{
    if (put->tap != NULL)
        put->tap(put->tap_arg, NULL, 0); /* lets the tap free its state */
    event_free(put->loop.ev);
    evbuffer_free(put->loop.pending);
    evbuffer_free(put->io.job);
    evbuffer_free(put->io.mem);
    s3_obj_meta_cleanup(&put->loop.meta);
    free(put->bucket);
    free(put->key);
    free(put->upload_id);
    free(put);
}

static void on_cleanup_work(void *arg)
{
    struct s3_put *put = arg;
    if (put->io.fd >= 0)
        close(put->io.fd);
    put->io.fd = -1;
    if (put->io.file_id != 0 && !put->loop.committed) {
        char name[S3_FS_NAME_LEN];
        s3_fs_file_name(name, put->io.file_id, true);
        if (unlinkat(put->st->tmp_fd, name, 0) != 0 && errno != ENOENT)
            log_error(&put_log, "removing tmp/%s: %s", name, strerror(errno));
    }
}

static void on_cleanup_done(void *arg)
{
    put_free(arg);
}

/* Removes what the put left in tmp/ (unless committed) and frees it. No job may be running. */
static void put_release(struct s3_put *put)
{
    ASSERT(!put->loop.busy);
    put->loop.busy = true; /* nothing else starts */
    put->loop.state = PUT_DONE;
    event_del(put->loop.ev);
    if (put->io.fd >= 0 || (put->io.file_id != 0 && !put->loop.committed))
        s3_fs_submit(put->st, on_cleanup_work, on_cleanup_done, put);
    else
        put_free(put);
}

/* Runs one of the put's callbacks. False when the put was aborted meanwhile: the caller must
 * not touch it any more. */
static bool call_cb(struct s3_put *put, s3_store_cb *cb, void *arg, enum s3_err err)
{
    put->loop.in_cb = true;
    cb(err, arg);
    put->loop.in_cb = false;
    if (put->loop.aborted) {
        abort_continue(put);
        return false;
    }
    return true;
}

/* The commit's callback, then the end. */
static void end_commit(struct s3_put *put, enum s3_err err)
{
    s3_store_cb *cb = put->loop.commit_cb;
    put->loop.commit_cb = NULL;
    put->loop.state = PUT_DONE;
    put->loop.in_cb = true;
    cb(err, put->loop.commit_arg);
    put->loop.in_cb = false;
    put_release(put);
}

/* Runs the callbacks whose conditions hold. False when the put is gone or going. */
static bool dispatch(struct s3_put *put)
{
    enum s3_err err = put->loop.err;
    if (put->loop.drain_cb != NULL && (err != S3_OK || put->loop.queued <= S3_PUT_LOW_WATER)) {
        s3_store_cb *cb = put->loop.drain_cb;
        put->loop.drain_cb = NULL;
        if (!call_cb(put, cb, put->loop.drain_arg, err))
            return false;
    }
    if (put->loop.flush_cb != NULL && (err != S3_OK || put->loop.queued == 0)) {
        s3_store_cb *cb = put->loop.flush_cb;
        put->loop.flush_cb = NULL;
        if (!call_cb(put, cb, put->loop.flush_arg, err))
            return false;
    }
    if (put->loop.commit_cb != NULL && err != S3_OK && put->loop.state == PUT_OPEN &&
        !put->loop.busy) {
        end_commit(put, err);
        return false;
    }
    return true;
}

static void on_put_ev(evutil_socket_t fd, short what, void *arg)
{
    struct s3_put *put = arg;
    (void)fd;
    (void)what;
    if (!put->loop.aborted && dispatch(put))
        pump(put);
}

static void defer_dispatch(struct s3_put *put)
{
    event_active(put->loop.ev, 0, 0);
}

/* Continues an abort once no callback of the put is running. */
static void abort_continue(struct s3_put *put)
{
    if (put->loop.busy || put->loop.in_cb)
        return; /* the job's completion or the callback's caller comes back here */
    if (put->loop.state == PUT_QUEUED && !s3_fs_commit_cancel(put->st, &put->op))
        return; /* in a batch already: finish_put() ends it (the commit may take effect) */
    put_release(put);
}

void s3_put_abort(struct s3_put *put)
{
    if (put == NULL)
        return;
    ASSERT(!put->loop.aborted);
    put->loop.aborted = true;
    put->loop.drain_cb = put->loop.flush_cb = put->loop.commit_cb = NULL;
    event_del(put->loop.ev);
    abort_continue(put);
}

/* ---- writing (pool) ---- */

static int store_block(struct s3_put *put, const void *p, size_t n)
{
    if (put->io.fd < 0 && put->io.written + n <= put->inline_max) {
        evbuffer_add(put->io.mem, p, n);
        put->io.written += n;
        return 0;
    }
    if (put->io.fd < 0) {
        put->io.fd = s3_fs_tmp_create(put->st, &put->io.file_id);
        if (put->io.fd < 0) {
            put->io.file_id = 0;
            return -1;
        }
        size_t m = evbuffer_get_length(put->io.mem);
        if (m > 0 && s3_fs_write_all(put->io.fd, evbuffer_pullup(put->io.mem, -1), m) != 0)
            return -1;
        evbuffer_drain(put->io.mem, m);
    }
    if (s3_fs_write_all(put->io.fd, p, n) != 0)
        return -1;
    put->io.written += n;
    /* Start writeback as we go, so the final fdatasync has little left to wait for. */
    if (put->io.written - put->io.synced >= S3_FS_SYNC_RANGE) {
        sync_file_range(put->io.fd, (off64_t)put->io.synced,
                        (off64_t)(put->io.written - put->io.synced), SYNC_FILE_RANGE_WRITE);
        put->io.synced = put->io.written;
    }
    return 0;
}

static void on_write_work(void *arg)
{
    struct s3_put *put = arg;
    struct evbuffer *b = put->io.job;
    while (evbuffer_get_length(b) > 0) {
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(b, -1, NULL, v, 16);
        size_t done = 0;
        for (int i = 0; i < n && i < 16; i++) {
            if (put->io.err == S3_OK) {
                if (put->tap != NULL)
                    put->tap(put->tap_arg, v[i].iov_base, v[i].iov_len);
                if (store_block(put, v[i].iov_base, v[i].iov_len) != 0) {
                    log_error(&put_log, "writing %s/%s: %s", put->bucket, put->key,
                              strerror(errno));
                    put->io.err = S3_ERR_INTERNAL_ERROR;
                }
            }
            done += v[i].iov_len;
        }
        evbuffer_drain(b, done);
    }
}

static void on_write_done(void *arg)
{
    struct s3_put *put = arg;
    put->loop.busy = false;
    put->loop.queued -= put->loop.job_bytes;
    put->loop.job_bytes = 0;
    if (put->loop.aborted) {
        abort_continue(put);
        return;
    }
    if (put->io.err != S3_OK && put->loop.err == S3_OK) {
        put->loop.err = put->io.err;
        put->loop.queued -= evbuffer_get_length(put->loop.pending);
        evbuffer_drain(put->loop.pending, evbuffer_get_length(put->loop.pending));
    }
    if (dispatch(put))
        pump(put);
}

/* ---- committing ---- */

static void on_sync_work(void *arg)
{
    struct s3_put *put = arg;
    if (put->io.fd < 0)
        return;
    if (fdatasync(put->io.fd) != 0) {
        log_error(&put_log, "fdatasync of %s/%s: %s", put->bucket, put->key, strerror(errno));
        put->io.err = S3_ERR_INTERNAL_ERROR;
    }
    close(put->io.fd);
    put->io.fd = -1;
}

static void on_sync_done(void *arg)
{
    struct s3_put *put = arg;
    put->loop.busy = false;
    if (put->loop.aborted) {
        abort_continue(put);
        return;
    }
    if (put->io.err != S3_OK) {
        end_commit(put, put->io.err);
        return;
    }
    put->loop.state = PUT_QUEUED;
    s3_fs_commit(put->st, &put->op);
}

static void start_commit(struct s3_put *put)
{
    if (put->loop.total != put->loop.meta.size) {
        put->loop.err = S3_ERR_INCOMPLETE_BODY;
        defer_dispatch(put);
        return;
    }
    if (put->io.fd < 0) { /* inline (or an empty part): nothing to sync but the index */
        put->loop.state = PUT_QUEUED;
        s3_fs_commit(put->st, &put->op);
        return;
    }
    put->loop.state = PUT_SYNCING;
    put->loop.busy = true;
    s3_fs_submit(put->st, on_sync_work, on_sync_done, put);
}

static enum s3_err apply_put(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct s3_put *put = (struct s3_put *)op;
    if (put->upload_id != NULL) {
        struct s3_fs_part part = {
            .part_number = put->part_number,
            .size = put->io.written,
            .file_id = put->io.file_id,
        };
        snprintf(part.etag, sizeof(part.etag), "%s", put->loop.meta.etag);
        return s3_fs_part_commit(w, put->bucket, put->key, put->upload_id, &part);
    }
    int rc = s3_fs_bucket_exists(w->st, w->txn, put->bucket);
    if (rc == MDB_NOTFOUND)
        return S3_ERR_NO_SUCH_BUCKET;
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    struct s3_fs_seg seg = {put->io.file_id, put->io.written};
    struct s3_fs_rec rec = {.meta = put->loop.meta};
    rec.meta.mtime_ms = w->now_ms;
    rec.meta.size = put->io.written;
    rec.meta.parts_count = 0;
    if (put->io.file_id != 0) {
        rec.loc = (struct s3_fs_loc){.kind = S3_FS_LOC_SEGS, .segs = &seg, .n_segs = 1};
    } else {
        rec.loc.kind = S3_FS_LOC_INLINE;
        rec.loc.data_len = evbuffer_get_length(put->io.mem);
        rec.loc.data = evbuffer_pullup(put->io.mem, -1);
    }
    enum s3_err err = s3_fs_obj_put(w, put->bucket, put->key, &rec, true);
    if (err == S3_OK && put->io.file_id != 0)
        err = s3_fs_wtxn_publish(w, put->io.file_id);
    if (err == S3_OK)
        err = s3_fs_wtxn_event(w, S3_EV_PUT, put->bucket, put->key, rec.meta.size, rec.meta.etag);
    return err;
}

static void finish_put(struct s3_fs_op *op)
{
    struct s3_put *put = (struct s3_put *)op;
    put->loop.committed = op->err == S3_OK;
    put->loop.state = PUT_DONE;
    if (put->loop.aborted) {
        put_release(put);
        return;
    }
    end_commit(put, op->err);
}

/* ---- the interface ---- */

static void pump(struct s3_put *put)
{
    if (put->loop.busy || put->loop.aborted || put->loop.state != PUT_OPEN)
        return;
    if (put->loop.err == S3_OK && evbuffer_get_length(put->loop.pending) > 0) {
        int n = evbuffer_remove_buffer(put->loop.pending, put->io.job, JOB_MAX_BYTES);
        ASSERT(n > 0);
        put->loop.job_bytes = (size_t)n;
        put->loop.busy = true;
        s3_fs_submit(put->st, on_write_work, on_write_done, put);
        return;
    }
    if (put->loop.commit_cb != NULL && put->loop.err == S3_OK && put->loop.queued == 0)
        start_commit(put);
}

static struct s3_put *put_new(struct s3_store *st, const char *bucket, const char *key,
                              s3_put_tap_cb *tap, void *tap_arg)
{
    struct s3_put *put = xcalloc(1, sizeof(*put));
    put->op.apply = apply_put;
    put->op.finish = finish_put;
    put->st = st;
    put->bucket = xstrdup(bucket);
    put->key = xstrdup(key);
    put->tap = tap;
    put->tap_arg = tap_arg;
    put->inline_max = st->inline_max_bytes;
    put->loop.pending = evbuffer_new();
    put->loop.ev = event_new(st->base, -1, 0, on_put_ev, put);
    s3_obj_meta_init(&put->loop.meta);
    put->io.job = evbuffer_new();
    put->io.mem = evbuffer_new();
    put->io.fd = -1;
    put->loop.err = s3_fs_check_bucket_name(bucket);
    if (put->loop.err != S3_OK)
        put->loop.err = S3_ERR_NO_SUCH_BUCKET;
    else
        put->loop.err = s3_fs_check_key(key);
    return put;
}

struct s3_put *s3_put_new(struct s3_store *st, const char *bucket, const char *key,
                          s3_put_tap_cb *tap, void *tap_arg)
{
    return put_new(st, bucket, key, tap, tap_arg);
}

struct s3_put *s3_put_new_part(struct s3_store *st, const char *bucket, const char *key,
                               const char *upload_id, unsigned part_number, s3_put_tap_cb *tap,
                               void *tap_arg)
{
    struct s3_put *put = put_new(st, bucket, key, tap, tap_arg);
    put->upload_id = xstrdup(upload_id != NULL ? upload_id : "");
    put->part_number = part_number;
    put->inline_max = 0;
    if (put->loop.err == S3_OK && (part_number < 1 || part_number > S3_FS_PART_MAX))
        put->loop.err = S3_ERR_INVALID_ARGUMENT;
    if (put->loop.err == S3_OK && !s3_fs_upload_id_valid(put->upload_id))
        put->loop.err = S3_ERR_NO_SUCH_UPLOAD;
    return put;
}

size_t s3_put_write(struct s3_put *put, struct evbuffer *data)
{
    size_t n = evbuffer_get_length(data);
    if (put->loop.aborted || put->loop.err != S3_OK || put->loop.state != PUT_OPEN ||
        put->loop.commit_cb != NULL) {
        evbuffer_drain(data, n);
        return put->loop.queued;
    }
    evbuffer_add_buffer(put->loop.pending, data);
    put->loop.queued += n;
    put->loop.total += n;
    pump(put);
    return put->loop.queued;
}

void s3_put_on_drain(struct s3_put *put, s3_store_cb *cb, void *arg)
{
    ASSERT(put->loop.drain_cb == NULL && !put->loop.aborted);
    put->loop.drain_cb = cb;
    put->loop.drain_arg = arg;
    if (put->loop.err != S3_OK || put->loop.queued <= S3_PUT_LOW_WATER)
        defer_dispatch(put);
}

void s3_put_flush(struct s3_put *put, s3_store_cb *cb, void *arg)
{
    ASSERT(put->loop.flush_cb == NULL && !put->loop.aborted);
    put->loop.flush_cb = cb;
    put->loop.flush_arg = arg;
    if (put->loop.err != S3_OK || put->loop.queued == 0)
        defer_dispatch(put);
}

void s3_put_commit(struct s3_put *put, struct s3_obj_meta *meta,
                   const struct s3_event_origin *origin, s3_store_cb *cb, void *arg)
{
    ASSERT(put->loop.commit_cb == NULL && !put->loop.aborted && put->loop.state == PUT_OPEN);
    s3_fs_op_set_origin(&put->op, origin);
    s3_obj_meta_cleanup(&put->loop.meta);
    put->loop.meta = *meta; /* taken over: the caller keeps an empty meta */
    s3_obj_meta_init(meta);
    put->loop.commit_cb = cb;
    put->loop.commit_arg = arg;
    if (put->loop.err != S3_OK)
        defer_dispatch(put);
    else
        pump(put);
}

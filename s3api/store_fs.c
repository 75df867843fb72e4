/* The embedded fs store: open (with crash recovery) and close, the group committer through
 * which every index mutation goes, the hourly sweep of abandoned uploads, buckets and deletes.
 * Uploads are in store_put.c, reads and copies in store_get.c, multipart in store_mpu.c,
 * listings in store_list.c; the on-disk picture is in store_fs_internal.h.
 *
 * Group commit: mutations are ops queued on the loop. One batch at a time runs on the pool as a
 * single LMDB write txn (one sync for all of them); ops arriving meanwhile wait for the next.
 * After the commit every op's callback runs, then a post-commit job moves the batch's new
 * files from tmp/ into objects/ and unlinks the files the batch dropped.
 *
 * Crash safety: a data file is fdatasync'd in tmp/ before its op is queued, tmp/ is fsync'd
 * before the txn commits, and the txn records the id in `pending` with the record, so a
 * committed file survives wherever the crash leaves it (tmp/ or objects/). Dropped files are
 * recorded in `trash` in the txn that drops them. Only after the mover's and unlinker's
 * directory fsyncs are those ids removed from `pending`/`trash` (in the next txn). At open:
 * trash is unlinked, pending files still in tmp/ are moved, and tmp/ is emptied: what is left
 * there was never committed. File ids come from a counter persisted in every txn, so no
 * committed id is ever handed out again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/log.h"
#include "gateway/pool.h"
#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define DEFAULT_INLINE_MAX (64u * 1024)
#define DEFAULT_MAP_SIZE   (64ull << 30)
#define DEFAULT_UPLOAD_AGE (7u * 24 * 3600)
#define SWEEP_INTERVAL_S   3600
#define BATCH_MAX_OPS      512
#define BUCKET_REC_VERSION 1u

static struct log_ctx store_log = {.module = "store"};

int64_t s3_fs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum s3_err s3_fs_check_bucket_name(const char *bucket)
{
    size_t n = bucket != NULL ? strlen(bucket) : 0;
    return n == 0 || n > S3_FS_BUCKET_MAX ? S3_ERR_INVALID_BUCKET_NAME : S3_OK;
}

enum s3_err s3_fs_check_key(const char *key)
{
    size_t n = key != NULL ? strlen(key) : 0;
    if (n == 0)
        return S3_ERR_INVALID_ARGUMENT;
    return n > S3_FS_KEY_MAX ? S3_ERR_KEY_TOO_LONG : S3_OK;
}

const struct s3_fs_stats *s3_fs_store_stats(const struct s3_store *st)
{
    return &st->stats;
}

/* ---- pool jobs, counted so close can wait for them ---- */

struct job {
    struct s3_store *st;
    void (*work)(void *);
    void (*done)(void *);
    void *arg;
};

static void on_job_work(void *arg)
{
    struct job *j = arg;
    j->work(j->arg);
}

static void on_job_done(void *arg)
{
    struct job *j = arg;
    j->st->loop.inflight--;
    if (j->done != NULL)
        j->done(j->arg);
    free(j);
}

void s3_fs_submit(struct s3_store *st, void (*work)(void *), void (*done)(void *), void *arg)
{
    struct job *j = xmalloc(sizeof(*j));
    *j = (struct job){st, work, done, arg};
    st->loop.inflight++;
    gw_pool_submit(st->pool, on_job_work, on_job_done, j);
}

void s3_fs_submit_fast(struct s3_store *st, void (*work)(void *), void (*done)(void *), void *arg)
{
    struct job *j = xmalloc(sizeof(*j));
    *j = (struct job){st, work, done, arg};
    st->loop.inflight++;
    gw_pool_submit(st->fast_pool, on_job_work, on_job_done, j);
}

struct deferred {
    struct s3_store *st;
    s3_store_cb *cb;
    enum s3_err err;
    void *arg;
};

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct deferred *d = arg;
    (void)fd;
    (void)what;
    d->st->loop.inflight--;
    d->cb(d->err, d->arg);
    free(d);
}

struct deferred_fn {
    struct s3_store *st;
    void (*fn)(void *);
    void *arg;
};

static void on_deferred_fn(evutil_socket_t fd, short what, void *arg)
{
    struct deferred_fn *d = arg;
    (void)fd;
    (void)what;
    d->st->loop.inflight--;
    d->fn(d->arg);
    free(d);
}

void s3_fs_defer(struct s3_store *st, void (*fn)(void *), void *arg)
{
    struct deferred_fn *d = xmalloc(sizeof(*d));
    *d = (struct deferred_fn){st, fn, arg};
    st->loop.inflight++;
    if (event_base_once(st->base, -1, EV_TIMEOUT, on_deferred_fn, d, NULL) != 0)
        ASSERT(!"event_base_once failed");
}

/* A callback deferred to the next loop turn: no pool round trip for an answer known now. */
void s3_fs_defer_err(struct s3_store *st, s3_store_cb *cb, enum s3_err err, void *arg)
{
    struct deferred *d = xmalloc(sizeof(*d));
    *d = (struct deferred){st, cb, err, arg};
    st->loop.inflight++;
    if (event_base_once(st->base, -1, EV_TIMEOUT, on_deferred, d, NULL) != 0)
        ASSERT(!"event_base_once failed");
}

/* ---- write-txn helpers for ops ---- */

enum s3_err s3_fs_wtxn_fail(struct s3_fs_wtxn *w, int rc)
{
    if (w->rc == 0)
        w->rc = rc;
    return S3_ERR_INTERNAL_ERROR;
}

static int put_id(MDB_txn *txn, MDB_dbi dbi, uint64_t id)
{
    unsigned char k[8];
    s3_fs_put_be64(k, id);
    MDB_val key = {8, k}, val = {0, ""};
    return mdb_put(txn, dbi, &key, &val, 0);
}

static int del_id(MDB_txn *txn, MDB_dbi dbi, uint64_t id)
{
    unsigned char k[8];
    s3_fs_put_be64(k, id);
    MDB_val key = {8, k};
    int rc = mdb_del(txn, dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

enum s3_err s3_fs_wtxn_publish(struct s3_fs_wtxn *w, uint64_t id)
{
    int rc = put_id(w->txn, w->st->db_pending, id);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    w->op->publish_id = id;
    return S3_OK;
}

enum s3_err s3_fs_wtxn_trash(struct s3_fs_wtxn *w, uint64_t id)
{
    int rc = put_id(w->txn, w->st->db_trash, id);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    s3_fs_ids_push(&w->op->trash, id);
    return S3_OK;
}

enum s3_err s3_fs_wtxn_trash_loc(struct s3_fs_wtxn *w, const struct s3_fs_loc *loc)
{
    enum s3_err err = S3_OK;
    for (size_t i = 0; loc->kind == S3_FS_LOC_SEGS && i < loc->n_segs && err == S3_OK; i++) {
        if (loc->segs[i].file_id != 0)
            err = s3_fs_wtxn_trash(w, loc->segs[i].file_id);
    }
    return err;
}

/* ---- the group committer ---- */

struct batch {
    struct s3_store *st;
    struct s3_fs_op *ops;
    struct s3_fs_ids clear_pending; /* moved since the last txn */
    struct s3_fs_ids clear_trash;   /* unlinked since the last txn */
    size_t outbox_added;            /* records committed by the batch's txns */
};

struct post {
    struct s3_store *st;
    struct s3_fs_ids publish;
    struct s3_fs_ids trash;
    struct s3_fs_ids moved;    /* results, back to the loop */
    struct s3_fs_ids unlinked; /* results, back to the loop */
};

static void start_batch(struct s3_store *st);

/* One write txn over `ops` (or just `only`). Returns 0 or the LMDB error that aborted it. */
static int run_txn(struct batch *b, struct s3_fs_op *only)
{
    struct s3_store *st = b->st;
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    struct s3_fs_wtxn w = {.st = st, .txn = txn, .now_ms = s3_fs_now_ms()};
    uint64_t seq0 = atomic_load(&st->next_seq);
    for (size_t i = 0; i < b->clear_pending.n && rc == 0; i++)
        rc = del_id(txn, st->db_pending, b->clear_pending.v[i]);
    for (size_t i = 0; i < b->clear_trash.n && rc == 0; i++)
        rc = del_id(txn, st->db_trash, b->clear_trash.v[i]);
    w.rc = rc;
    bool sync_tmp = false;
    size_t n_ops = 0;
    for (struct s3_fs_op *op = only ? only : b->ops; op != NULL && w.rc == 0;
         op = only ? NULL : op->next) {
        op->trash.n = 0;
        op->touched.len = 0;
        op->publish_id = 0;
        w.op = op;
        op->err = op->apply(op, &w);
        sync_tmp = sync_tmp || (op->err == S3_OK && op->publish_id != 0);
        n_ops++;
    }
    if (w.rc == 0 && only == NULL && n_ops > 1 && st->test.fail_batch) {
        st->test.fail_batch = false;
        w.rc = MDB_PANIC; /* as if LMDB had failed: tests of the retry path */
    }
    if (w.rc == 0) {
        unsigned char v8[8];
        s3_fs_put_be64(v8, atomic_load(&st->next_id));
        MDB_val k = {7, "next_id"}, v = {8, v8};
        w.rc = mdb_put(txn, st->db_meta, &k, &v, 0);
    }
    /* Seqs handed out in a txn that aborts are skipped, never reused. */
    uint64_t seq = atomic_load(&st->next_seq);
    if (w.rc == 0 && seq != seq0) {
        unsigned char v8[8];
        s3_fs_put_be64(v8, seq);
        MDB_val k = {8, "next_seq"}, v = {8, v8};
        w.rc = mdb_put(txn, st->db_meta, &k, &v, 0);
    }
    /* The new files' names in tmp/ must be durable before the records that need them. */
    if (w.rc == 0 && sync_tmp && fsync(st->tmp_fd) != 0)
        w.rc = errno;
    if (w.rc != 0) {
        mdb_txn_abort(txn);
        return w.rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc == 0) {
        atomic_fetch_add(&st->stats.commits, 1);
        atomic_fetch_add(&st->stats.ops_committed, n_ops);
        atomic_fetch_add(&st->outbox_n, w.outbox_added);
        atomic_fetch_sub(&st->outbox_n, w.outbox_removed);
        b->outbox_added += w.outbox_added;
    }
    return rc;
}

static void on_batch_work(void *arg)
{
    struct batch *b = arg;
    int rc = run_txn(b, NULL);
    if (rc == 0)
        return;
    log_error(&store_log, "index commit failed: %s; retrying its ops one by one", mdb_strerror(rc));
    /* The failed txn's outbox records vanished with it; each retry runs the hook again. */
    for (struct s3_fs_op *op = b->ops; op != NULL; op = op->next) {
        rc = run_txn(b, op);
        if (rc != 0) {
            log_error(&store_log, "index commit failed: %s", mdb_strerror(rc));
            op->err = S3_ERR_INTERNAL_ERROR;
            op->trash.n = 0;
            op->publish_id = 0;
        }
    }
}

/* Each tmp/ move and unlink is made durable (its directory fsync'd) before its id leaves
 * `pending`/`trash`; a failure keeps the id there for the next open to finish. */
static void on_post_work(void *arg)
{
    struct post *p = arg;
    struct s3_store *st = p->st;
    bool dirs[256] = {false};
    struct s3_fs_ids moved = {0}, unlinked = {0};
    for (size_t i = 0; i < p->publish.n && !st->test.skip_publish; i++) {
        if (s3_fs_file_publish(st, p->publish.v[i]) == 0) {
            dirs[p->publish.v[i] & 0xff] = true;
            s3_fs_ids_push(&moved, p->publish.v[i]);
        } else {
            log_error(&store_log, "moving a data file into objects/: %s", strerror(errno));
        }
    }
    for (size_t i = 0; i < p->trash.n; i++) {
        if (s3_fs_unlink_when_unpinned(st, p->trash.v[i])) {
            dirs[p->trash.v[i] & 0xff] = true;
            s3_fs_ids_push(&unlinked, p->trash.v[i]);
        }
    }
    bool synced = true;
    for (unsigned d = 0; d < 256; d++) {
        if (dirs[d] && s3_fs_fsync_obj_dir(st, d) != 0)
            synced = false;
    }
    /* Unlinks of files still in tmp/ need tmp/ synced too. */
    if (unlinked.n > 0 && fsync(st->tmp_fd) != 0)
        synced = false;
    if (synced) {
        p->moved = moved;
        p->unlinked = unlinked;
    } else {
        s3_fs_ids_cleanup(&moved);
        s3_fs_ids_cleanup(&unlinked);
    }
}

static void on_post_done(void *arg)
{
    struct post *p = arg;
    s3_fs_ids_append(&p->st->loop.cleared_pending, &p->moved);
    s3_fs_ids_append(&p->st->loop.cleared_trash, &p->unlinked);
    s3_fs_ids_cleanup(&p->publish);
    s3_fs_ids_cleanup(&p->trash);
    s3_fs_ids_cleanup(&p->moved);
    s3_fs_ids_cleanup(&p->unlinked);
    free(p);
}

static void on_batch_done(void *arg)
{
    struct batch *b = arg;
    struct s3_store *st = b->st;
    struct post *p = xcalloc(1, sizeof(*p));
    p->st = st;
    for (struct s3_fs_op *op = b->ops; op != NULL; op = op->next) {
        if (op->err != S3_OK)
            continue;
        if (op->publish_id != 0)
            s3_fs_ids_push(&p->publish, op->publish_id);
        s3_fs_ids_append(&p->trash, &op->trash);
    }
    st->loop.committing = false;
    /* Before any callback: a client told of this batch must not read the cache's old view. */
    s3_fs_cache_batch_done(st, b->ops);
    struct s3_fs_op *op = b->ops, *next;
    for (; op != NULL; op = next) {
        next = op->next;
        s3_fs_ids_cleanup(&op->trash);
        op->finish(op); /* may free op */
    }
    s3_fs_ids_cleanup(&b->clear_pending);
    s3_fs_ids_cleanup(&b->clear_trash);
    bool outbox_added = b->outbox_added > 0;
    free(b);
    if (outbox_added && st->loop.on_outbox != NULL)
        st->loop.on_outbox(st->loop.on_outbox_arg);
    if (p->publish.n > 0 || p->trash.n > 0)
        s3_fs_submit(st, on_post_work, on_post_done, p);
    else
        on_post_done(p);
    start_batch(st);
}

static void start_batch(struct s3_store *st)
{
    if (st->loop.committing || st->loop.queue == NULL)
        return;
    struct batch *b = xcalloc(1, sizeof(*b));
    b->st = st;
    b->ops = st->loop.queue;
    struct s3_fs_op *last = b->ops;
    for (int n = 1; n < BATCH_MAX_OPS && last->next != NULL; n++)
        last = last->next;
    st->loop.queue = last->next;
    if (st->loop.queue == NULL)
        st->loop.queue_tail = &st->loop.queue;
    last->next = NULL;
    b->clear_pending = st->loop.cleared_pending;
    b->clear_trash = st->loop.cleared_trash;
    memset(&st->loop.cleared_pending, 0, sizeof(st->loop.cleared_pending));
    memset(&st->loop.cleared_trash, 0, sizeof(st->loop.cleared_trash));
    st->loop.committing = true;
    s3_fs_submit(st, on_batch_work, on_batch_done, b);
}

void s3_fs_commit(struct s3_store *st, struct s3_fs_op *op)
{
    op->next = NULL;
    op->err = S3_OK;
    *st->loop.queue_tail = op;
    st->loop.queue_tail = &op->next;
    start_batch(st);
}

bool s3_fs_commit_cancel(struct s3_store *st, struct s3_fs_op *op)
{
    for (struct s3_fs_op **p = &st->loop.queue; *p != NULL; p = &(*p)->next) {
        if (*p != op)
            continue;
        *p = op->next;
        if (*p == NULL)
            st->loop.queue_tail = p;
        return true;
    }
    return false;
}

/* ---- sweeping abandoned uploads ---- */

struct sweep_op {
    struct s3_fs_op op;
    struct s3_store *st;
    size_t n_removed;
};

static enum s3_err apply_sweep(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct sweep_op *s = (struct sweep_op *)op;
    return s3_fs_uploads_expire(w, w->now_ms - w->st->upload_max_age_ms, &s->n_removed);
}

static void finish_sweep(struct s3_fs_op *op)
{
    struct sweep_op *s = (struct sweep_op *)op;
    s->st->loop.sweep_queued = false;
    if (s->n_removed > 0)
        log_info(&store_log, "removed %zu abandoned multipart uploads", s->n_removed);
    free(s);
}

void s3_fs_sweep(struct s3_store *st)
{
    if (st->loop.sweep_queued)
        return;
    struct sweep_op *s = xcalloc(1, sizeof(*s));
    s->op.apply = apply_sweep;
    s->op.finish = finish_sweep;
    s->st = st;
    st->loop.sweep_queued = true;
    s3_fs_commit(st, &s->op);
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s3_fs_sweep(arg);
}

/* ---- open and close ---- */

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int make_dirs(struct s3_store *st, char *err, size_t err_cap)
{
    const char *subs[] = {"", "/index", "/objects", "/tmp"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char *p = xasprintf("%s%s", st->data_dir, subs[i]);
        int rc = make_dir(p);
        if (rc != 0)
            snprintf(err, err_cap, "store: mkdir %s: %s", p, strerror(errno));
        free(p);
        if (rc != 0)
            return -1;
    }
    char *lock = xasprintf("%s/LOCK", st->data_dir);
    st->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, err_cap, "store: %s: %s", lock,
                 errno == EWOULDBLOCK ? "in use by another process" : strerror(errno));
        free(lock);
        return -1;
    }
    free(lock);
    char *tmp = xasprintf("%s/tmp", st->data_dir);
    char *objects = xasprintf("%s/objects", st->data_dir);
    st->tmp_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    st->objects_fd = open(objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(tmp);
    free(objects);
    if (st->tmp_fd < 0 || st->objects_fd < 0) {
        snprintf(err, err_cap, "store: opening %s: %s", st->data_dir, strerror(errno));
        return -1;
    }
    for (unsigned d = 0; d < 256; d++) {
        char name[4];
        snprintf(name, sizeof(name), "%02x", d);
        if (mkdirat(st->objects_fd, name, 0755) != 0 && errno != EEXIST) {
            snprintf(err, err_cap, "store: mkdir objects/%s: %s", name, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int collect_ids(MDB_txn *txn, MDB_dbi dbi, struct s3_fs_ids *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size == 8)
            s3_fs_ids_push(out, s3_fs_get_be64(k.mv_data));
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Expired uploads go to trash; trash is unlinked; committed files left in tmp/ are moved;
 * then tmp/ is emptied. Synchronous: the loop is not serving yet. */
static int recover(struct s3_store *st, char *err, size_t err_cap)
{
    MDB_txn *txn;
    struct s3_fs_op op = {0};
    struct s3_fs_ids trash = {0}, pending = {0};
    size_t expired = 0;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc == 0) {
        struct s3_fs_wtxn w = {.st = st, .txn = txn, .now_ms = s3_fs_now_ms(), .op = &op};
        s3_fs_uploads_expire(&w, w.now_ms - st->upload_max_age_ms, &expired);
        rc = w.rc;
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    s3_fs_ids_cleanup(&op.trash);
    s3_fs_wbuf_cleanup(&op.touched);
    if (rc == 0)
        rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0)
        goto fail;
    rc = collect_ids(txn, st->db_trash, &trash);
    if (rc == 0)
        rc = collect_ids(txn, st->db_pending, &pending);
    for (size_t i = 0; i < trash.n && rc == 0; i++) {
        if (s3_fs_file_unlink(st, trash.v[i]) != 0)
            rc = errno;
    }
    for (size_t i = 0; i < pending.n && rc == 0; i++) {
        if (s3_fs_file_publish(st, pending.v[i]) != 0)
            rc = errno;
    }
    for (unsigned d = 0; d < 256 && rc == 0 && (trash.n > 0 || pending.n > 0); d++) {
        if (s3_fs_fsync_obj_dir(st, d) != 0)
            rc = errno;
    }
    if (rc == 0 && (rc = mdb_drop(txn, st->db_trash, 0)) == 0)
        rc = mdb_drop(txn, st->db_pending, 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        goto fail;
    if (s3_fs_tmp_clear(st) != 0) {
        snprintf(err, err_cap, "store: clearing %s/tmp: %s", st->data_dir, strerror(errno));
        goto out;
    }
    if (expired > 0 || trash.n > 0 || pending.n > 0)
        log_info(&store_log, "recovered: %zu expired uploads, %zu files unlinked, %zu moved",
                 expired, trash.n, pending.n);
    s3_fs_ids_cleanup(&trash);
    s3_fs_ids_cleanup(&pending);
    return 0;

fail:
    snprintf(err, err_cap, "store: recovery in %s: %s", st->data_dir,
             rc > 0 ? strerror(rc) : mdb_strerror(rc));
out:
    s3_fs_ids_cleanup(&trash);
    s3_fs_ids_cleanup(&pending);
    return -1;
}

static void store_free(struct s3_store *st)
{
    gw_pool_free(st->fast_pool);
    if (st->loop.sweep_timer != NULL)
        event_free(st->loop.sweep_timer);
    if (st->env != NULL)
        mdb_env_close(st->env);
    if (st->tmp_fd >= 0)
        close(st->tmp_fd);
    if (st->objects_fd >= 0)
        close(st->objects_fd);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    s3_fs_ids_cleanup(&st->loop.cleared_pending);
    s3_fs_ids_cleanup(&st->loop.cleared_trash);
    s3_fs_pins_cleanup(&st->pins);
    free(st->data_dir);
    free(st);
}

struct s3_store *s3_store_open(struct event_base *base, struct gw_pool *pool,
                               const struct s3_store_config *cfg, char *err, size_t err_cap)
{
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        snprintf(err, err_cap, "store: no data_dir");
        return NULL;
    }
    struct s3_store *st = xcalloc(1, sizeof(*st));
    st->base = base;
    st->pool = pool;
    st->fast_pool = gw_pool_new(base, 1, "read");
    st->data_dir = xstrdup(cfg->data_dir);
    st->inline_max_bytes = cfg->inline_max_bytes ? cfg->inline_max_bytes : DEFAULT_INLINE_MAX;
    unsigned age_s = cfg->upload_max_age_s ? cfg->upload_max_age_s : DEFAULT_UPLOAD_AGE;
    st->upload_max_age_ms = (int64_t)age_s * 1000;
    st->lock_fd = st->tmp_fd = st->objects_fd = -1;
    st->loop.queue_tail = &st->loop.queue;
    s3_fs_cache_init(st, cfg->cache_max_bytes);
    s3_fs_pins_init(&st->pins);
    if (make_dirs(st, err, err_cap) != 0 ||
        s3_fs_index_open(st, cfg->map_size_bytes ? cfg->map_size_bytes : DEFAULT_MAP_SIZE, err,
                         err_cap) != 0 ||
        recover(st, err, err_cap) != 0) {
        store_free(st);
        return NULL;
    }
    unsigned every_s = age_s < SWEEP_INTERVAL_S ? age_s : SWEEP_INTERVAL_S;
    struct timeval tv = {every_s, 0};
    st->loop.sweep_timer = event_new(base, -1, EV_PERSIST, on_sweep_timer, st);
    event_add(st->loop.sweep_timer, &tv);
    return st;
}

static void on_close_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void s3_store_close(struct s3_store *st)
{
    if (st == NULL)
        return;
    event_free(st->loop.sweep_timer);
    st->loop.sweep_timer = NULL;
    s3_fs_cache_cleanup(st); /* open files are closed by pool jobs, waited for below */
    /* Pool jobs end on the loop: run it until ours are done. Not from inside a loop
     * callback (libevent refuses re-entry): callers close after the loop has returned. The
     * timer keeps the loop blocking in the kernel rather than spinning when nothing else is
     * registered; completions from the pool wake it. */
    struct event *tick = event_new(st->base, -1, EV_PERSIST, on_close_tick, NULL);
    struct timeval tv = {0, 100 * 1000};
    event_add(tick, &tv);
    while (st->loop.inflight > 0 || st->loop.committing || st->loop.queue != NULL) {
        int rc = event_base_loop(st->base, EVLOOP_ONCE);
        ASSERT(rc >= 0);
    }
    event_free(tick);
    /* Drop the ids the post-commit jobs finished with; leaving them would only cost the next
     * open a few harmless unlinks. */
    MDB_txn *txn;
    if ((st->loop.cleared_pending.n > 0 || st->loop.cleared_trash.n > 0) &&
        mdb_txn_begin(st->env, NULL, 0, &txn) == 0) {
        int rc = 0;
        for (size_t i = 0; i < st->loop.cleared_pending.n && rc == 0; i++)
            rc = del_id(txn, st->db_pending, st->loop.cleared_pending.v[i]);
        for (size_t i = 0; i < st->loop.cleared_trash.n && rc == 0; i++)
            rc = del_id(txn, st->db_trash, st->loop.cleared_trash.v[i]);
        if (rc == 0)
            mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    store_free(st);
}

/* ---- buckets ---- */

struct bucket_op {
    struct s3_fs_op op;
    char bucket[S3_FS_BUCKET_MAX + 1];
    s3_store_cb *cb;
    void *arg;
};

static enum s3_err apply_bucket_create(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct bucket_op *b = (struct bucket_op *)op;
    int rc = s3_fs_bucket_exists(w->st, w->txn, b->bucket);
    if (rc == 0)
        return S3_ERR_BUCKET_ALREADY_OWNED_BY_YOU;
    if (rc != MDB_NOTFOUND)
        return s3_fs_wtxn_fail(w, rc);
    struct s3_fs_wbuf v = {0};
    s3_fs_wbuf_u8(&v, BUCKET_REC_VERSION);
    s3_fs_wbuf_u64(&v, (uint64_t)w->now_ms);
    MDB_val k = {strlen(b->bucket), b->bucket}, val = {v.len, v.p};
    rc = mdb_put(w->txn, w->st->db_buckets, &k, &val, 0);
    s3_fs_wbuf_cleanup(&v);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    s3_fs_wtxn_touch(w, b->bucket, NULL);
    return S3_OK;
}

static enum s3_err apply_bucket_delete(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct bucket_op *b = (struct bucket_op *)op;
    int rc = s3_fs_bucket_exists(w->st, w->txn, b->bucket);
    if (rc == MDB_NOTFOUND)
        return S3_ERR_NO_SUCH_BUCKET;
    bool objects = false, uploads = false;
    if (rc == 0)
        rc = s3_fs_bucket_has_entries(w->txn, w->st->db_objects, b->bucket, &objects);
    if (rc == 0)
        rc = s3_fs_bucket_has_entries(w->txn, w->st->db_uploads, b->bucket, &uploads);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    if (objects || uploads)
        return S3_ERR_BUCKET_NOT_EMPTY;
    MDB_val k = {strlen(b->bucket), b->bucket};
    rc = mdb_del(w->txn, w->st->db_buckets, &k, NULL);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    /* A bucket made again under the name starts without the old one's notifications. */
    if (s3_fs_notif_drop(w, b->bucket) != S3_OK)
        return S3_ERR_INTERNAL_ERROR;
    s3_fs_wtxn_touch(w, b->bucket, NULL);
    return S3_OK;
}

static void finish_bucket_op(struct s3_fs_op *op)
{
    struct bucket_op *b = (struct bucket_op *)op;
    b->cb(op->err, b->arg);
    free(b);
}

static void bucket_op(struct s3_store *st, const char *bucket, s3_fs_apply_fn *apply,
                      s3_store_cb *cb, void *arg)
{
    enum s3_err err = s3_fs_check_bucket_name(bucket);
    if (err != S3_OK) {
        s3_fs_defer_err(st, cb, err, arg);
        return;
    }
    struct bucket_op *b = xcalloc(1, sizeof(*b));
    b->op.apply = apply;
    b->op.finish = finish_bucket_op;
    snprintf(b->bucket, sizeof(b->bucket), "%s", bucket);
    b->cb = cb;
    b->arg = arg;
    s3_fs_commit(st, &b->op);
}

void s3_store_bucket_create(struct s3_store *st, const char *bucket, s3_store_cb *cb, void *arg)
{
    bucket_op(st, bucket, apply_bucket_create, cb, arg);
}

void s3_store_bucket_delete(struct s3_store *st, const char *bucket, s3_store_cb *cb, void *arg)
{
    bucket_op(st, bucket, apply_bucket_delete, cb, arg);
}

struct bucket_read {
    struct s3_store *st;
    char bucket[S3_FS_BUCKET_MAX + 1];
    s3_store_cb *cb;
    s3_bucket_list_cb *list_cb;
    void *arg;
    enum s3_err err;
    struct s3_bucket_info *v;
    size_t n;
};

static void on_bucket_head_work(void *arg)
{
    struct bucket_read *b = arg;
    MDB_txn *txn;
    int rc = mdb_txn_begin(b->st->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = s3_fs_bucket_exists(b->st, txn, b->bucket);
        mdb_txn_abort(txn);
    }
    b->err = rc == 0 ? S3_OK : rc == MDB_NOTFOUND ? S3_ERR_NO_SUCH_BUCKET : S3_ERR_INTERNAL_ERROR;
}

static void on_bucket_read_done(void *arg)
{
    struct bucket_read *b = arg;
    if (b->list_cb != NULL)
        b->list_cb(b->err, b->err == S3_OK ? b->v : NULL, b->err == S3_OK ? b->n : 0, b->arg);
    else
        b->cb(b->err, b->arg);
    free(b->v);
    free(b);
}

void s3_store_bucket_head(struct s3_store *st, const char *bucket, s3_store_cb *cb, void *arg)
{
    enum s3_err err = s3_fs_check_bucket_name(bucket);
    if (err != S3_OK) {
        s3_fs_defer_err(st, cb, S3_ERR_NO_SUCH_BUCKET, arg);
        return;
    }
    struct bucket_read *b = xcalloc(1, sizeof(*b));
    b->st = st;
    snprintf(b->bucket, sizeof(b->bucket), "%s", bucket);
    b->cb = cb;
    b->arg = arg;
    s3_fs_submit_fast(st, on_bucket_head_work, on_bucket_read_done, b);
}

static void on_bucket_list_work(void *arg)
{
    struct bucket_read *b = arg;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t cap = 0;
    int rc = mdb_txn_begin(b->st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_cursor_open(txn, b->st->db_buckets, &cur);
    if (rc != 0)
        cur = NULL;
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size == 0 || k.mv_size > S3_FS_BUCKET_MAX)
            continue;
        if (b->n == cap) {
            cap = cap ? cap * 2 : 16;
            b->v = xrealloc(b->v, cap * sizeof(*b->v));
        }
        struct s3_bucket_info *bi = &b->v[b->n++];
        memset(bi, 0, sizeof(*bi));
        memcpy(bi->name, k.mv_data, k.mv_size);
        struct s3_fs_rbuf r = {.p = v.mv_data, .len = v.mv_size};
        s3_fs_rbuf_u8(&r);
        bi->created_ms = (int64_t)s3_fs_rbuf_u64(&r);
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
out:
    b->err = rc == 0 || rc == MDB_NOTFOUND ? S3_OK : S3_ERR_INTERNAL_ERROR;
}

void s3_store_bucket_list(struct s3_store *st, s3_bucket_list_cb *cb, void *arg)
{
    struct bucket_read *b = xcalloc(1, sizeof(*b));
    b->st = st;
    b->list_cb = cb;
    b->arg = arg;
    s3_fs_submit_fast(st, on_bucket_list_work, on_bucket_read_done, b);
}

/* ---- deleting ---- */

struct del_op {
    struct s3_fs_op op;
    char bucket[S3_FS_BUCKET_MAX + 1];
    char **keys;
    size_t n;
    enum s3_err *errs; /* ours; copied out to the caller's at finish */
    enum s3_err *out_errs;
    s3_store_cb *cb;
    void *arg;
};

static enum s3_err apply_delete(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct del_op *d = (struct del_op *)op;
    int rc = s3_fs_bucket_exists(w->st, w->txn, d->bucket);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return s3_fs_wtxn_fail(w, rc);
    for (size_t i = 0; i < d->n; i++) {
        bool found = false;
        if (rc == MDB_NOTFOUND)
            d->errs[i] = S3_ERR_NO_SUCH_BUCKET;
        else if ((d->errs[i] = s3_fs_check_key(d->keys[i])) == S3_OK)
            d->errs[i] = s3_fs_obj_del(w, d->bucket, d->keys[i], &found);
        if (w->rc == 0 && found && d->errs[i] == S3_OK)
            s3_fs_wtxn_event(w, S3_EV_DELETE, d->bucket, d->keys[i], 0, "");
        if (w->rc != 0)
            return S3_ERR_INTERNAL_ERROR;
    }
    return rc == MDB_NOTFOUND ? S3_ERR_NO_SUCH_BUCKET : S3_OK;
}

static void finish_delete(struct s3_fs_op *op)
{
    struct del_op *d = (struct del_op *)op;
    for (size_t i = 0; d->out_errs != NULL && i < d->n; i++)
        d->out_errs[i] = op->err == S3_ERR_INTERNAL_ERROR ? op->err : d->errs[i];
    d->cb(op->err, d->arg);
    for (size_t i = 0; i < d->n; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d->errs);
    free(d);
}

void s3_store_delete_many(struct s3_store *st, const char *bucket, const char *const *keys,
                          size_t n, enum s3_err *errs, const struct s3_event_origin *origin,
                          s3_store_cb *cb, void *arg)
{
    enum s3_err err = s3_fs_check_bucket_name(bucket);
    if (err != S3_OK) {
        for (size_t i = 0; errs != NULL && i < n; i++)
            errs[i] = S3_ERR_NO_SUCH_BUCKET;
        s3_fs_defer_err(st, cb, S3_ERR_NO_SUCH_BUCKET, arg);
        return;
    }
    struct del_op *d = xcalloc(1, sizeof(*d));
    d->op.apply = apply_delete;
    d->op.finish = finish_delete;
    s3_fs_op_set_origin(&d->op, origin);
    snprintf(d->bucket, sizeof(d->bucket), "%s", bucket);
    d->keys = xcalloc(n ? n : 1, sizeof(*d->keys));
    d->errs = xcalloc(n ? n : 1, sizeof(*d->errs));
    for (size_t i = 0; i < n; i++)
        d->keys[i] = xstrdup(keys[i] != NULL ? keys[i] : "");
    d->n = n;
    d->out_errs = errs;
    d->cb = cb;
    d->arg = arg;
    s3_fs_commit(st, &d->op);
}

struct del_one {
    s3_store_cb *cb;
    void *arg;
    enum s3_err err;
};

static void on_deleted_one(enum s3_err err, void *arg)
{
    struct del_one *d = arg;
    d->cb(err != S3_OK ? err : d->err, d->arg);
    free(d);
}

void s3_store_delete(struct s3_store *st, const char *bucket, const char *key,
                     const struct s3_event_origin *origin, s3_store_cb *cb, void *arg)
{
    struct del_one *d = xmalloc(sizeof(*d));
    *d = (struct del_one){cb, arg, S3_OK};
    s3_store_delete_many(st, bucket, &key, 1, &d->err, origin, on_deleted_one, d);
}

struct discard {
    struct s3_store *st;
    uint64_t id;
};

static void on_discard_work(void *arg)
{
    struct discard *d = arg;
    char name[S3_FS_NAME_LEN];
    s3_fs_file_name(name, d->id, true);
    if (unlinkat(d->st->tmp_fd, name, 0) != 0 && errno != ENOENT)
        log_error(&store_log, "removing tmp/%s: %s", name, strerror(errno));
}

void s3_fs_discard_tmp(struct s3_store *st, uint64_t id)
{
    if (id == 0)
        return;
    struct discard *d = xmalloc(sizeof(*d));
    *d = (struct discard){st, id};
    s3_fs_submit(st, on_discard_work, free, d);
}

/* The transactional outbox of the fs store: events reported to the hook inside the write txn
 * of the mutation they describe, the records the hook adds in that txn, and reading and
 * removing those records. The contract is in s3api.h; the layout in store_fs_internal.h.
 *
 * Ids and seqs come from one counter (`next_seq`), advanced only inside the committer's write
 * txns, which LMDB runs one at a time: so an id handed out later is committed later, and the
 * order of ids is the order of commits. The counter is persisted in each txn that used it;
 * values taken by a txn that aborts are skipped, never reused. */
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

static struct log_ctx outbox_log = {.module = "store"};

struct s3_outbox_txn {
    struct s3_fs_wtxn *w;
};

void s3_fs_op_set_origin(struct s3_fs_op *op, const struct s3_event_origin *o)
{
    if (o != NULL)
        op->origin = *o;
    else
        memset(&op->origin, 0, sizeof(op->origin));
    /* NUL-terminated whatever the caller left in them */
    op->origin.principal[sizeof(op->origin.principal) - 1] = '\0';
    op->origin.source_ip[sizeof(op->origin.source_ip) - 1] = '\0';
    op->origin.request_id[sizeof(op->origin.request_id) - 1] = '\0';
}

static enum s3_err report(struct s3_fs_wtxn *w, enum s3_event_kind kind, const char *bucket,
                          const char *key, uint64_t size, const char *etag, const void *notif,
                          size_t notif_len)
{
    struct s3_store *st = w->st;
    struct s3_event ev = {
        .kind = kind,
        .bucket = bucket,
        .key = key,
        .size = size,
        .etag = etag != NULL ? etag : "",
        .time_ms = w->now_ms,
        .seq = atomic_fetch_add(&st->next_seq, 1),
        .origin = &w->op->origin,
        .notif = notif_len > 0 ? notif : NULL,
        .notif_len = notif_len,
    };
    struct s3_outbox_txn tx = {w};
    st->hook.fn(st->hook.arg, &ev, &tx);
    return w->rc != 0 ? S3_ERR_INTERNAL_ERROR : S3_OK;
}

enum s3_err s3_fs_wtxn_event(struct s3_fs_wtxn *w, enum s3_event_kind kind, const char *bucket,
                             const char *key, uint64_t size, const char *etag)
{
    if (w->st->hook.fn == NULL)
        return S3_OK;
    /* One lookup in a DB of a value per configured bucket. The value is copied: LMDB may move
     * a page of this write txn (spill) when the hook's records are written, and the hook reads
     * the configuration around its s3_outbox_add() calls. */
    MDB_val k = {strlen(bucket), (void *)(uintptr_t)bucket}, v;
    int rc = mdb_get(w->txn, w->st->db_notif, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size == 0))
        return report(w, kind, bucket, key, size, etag, NULL, 0);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    void *copy = xmalloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    enum s3_err err = report(w, kind, bucket, key, size, etag, copy, v.mv_size);
    free(copy);
    return err;
}

enum s3_err s3_fs_wtxn_test_event(struct s3_fs_wtxn *w, const char *bucket, const void *notif,
                                  size_t notif_len)
{
    if (w->st->hook.fn == NULL)
        return S3_OK;
    return report(w, S3_EV_TEST, bucket, NULL, 0, "", notif, notif_len);
}

int s3_outbox_add(struct s3_outbox_txn *tx, const void *data, size_t len)
{
    struct s3_fs_wtxn *w = tx->w;
    if (w->rc != 0)
        return -1;
    unsigned char k[8];
    s3_fs_put_be64(k, atomic_fetch_add(&w->st->next_seq, 1));
    MDB_val key = {8, k}, val = {len, (void *)(uintptr_t)data};
    /* MDB_APPEND: ids only grow, so every record goes after the last one. */
    int rc = mdb_put(w->txn, w->st->db_outbox, &key, &val, MDB_APPEND);
    if (rc != 0) {
        log_error(&outbox_log, "adding an outbox record: %s", mdb_strerror(rc));
        s3_fs_wtxn_fail(w, rc);
        return -1;
    }
    w->outbox_added++;
    return 0;
}

void s3_store_set_event_hook(struct s3_store *st, s3_event_hook_fn *fn, void *arg)
{
    st->hook.fn = fn;
    st->hook.arg = arg;
}

void s3_store_set_outbox_map(struct s3_store *st, s3_outbox_map_fn *fn, void *arg)
{
    st->outbox_map.fn = fn;
    st->outbox_map.arg = arg;
}

void s3_store_on_outbox(struct s3_store *st, void (*fn)(void *arg), void *arg)
{
    st->loop.on_outbox = fn;
    st->loop.on_outbox_arg = arg;
}

void s3_store_outbox_identity(const struct s3_store *st, char source[33], uint64_t *first_id)
{
    memcpy(source, st->source, 33);
    *first_id = st->seq_at_open;
}

uint64_t s3_store_outbox_count(const struct s3_store *st)
{
    return atomic_load(&st->outbox_n);
}

/* ---- reading ---- */

struct outbox_read {
    struct s3_store *st;
    uint64_t after_id;
    size_t max_n;
    size_t max_bytes;
    s3_outbox_read_cb *cb;
    void *arg;
    int err;
    struct s3_outbox_rec *recs; /* data: heap copies */
    size_t n;
};

static void on_read_work(void *arg)
{
    struct outbox_read *r = arg;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    unsigned char k[8];
    MDB_val key = {8, k}, val;
    size_t bytes = 0;

    if (r->max_n == 0 || r->after_id == UINT64_MAX)
        return;
    int rc = mdb_txn_begin(r->st->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_cursor_open(txn, r->st->db_outbox, &cur);
    s3_fs_put_be64(k, r->after_id + 1);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    r->recs = xcalloc(r->max_n < 64 ? r->max_n : 64, sizeof(*r->recs));
    size_t cap = r->max_n < 64 ? r->max_n : 64;
    for (; rc == 0 && r->n < r->max_n; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != 8)
            continue; /* not ours: skipped rather than failing every read */
        if (r->n > 0 && bytes + val.mv_size > r->max_bytes)
            break;
        if (r->n == cap) {
            cap = cap * 2 < r->max_n ? cap * 2 : r->max_n;
            r->recs = xrealloc(r->recs, cap * sizeof(*r->recs));
        }
        void *copy = NULL;
        size_t len = val.mv_size;
        if (r->st->outbox_map.fn == NULL || r->st->outbox_map.fn(r->st->outbox_map.arg, val.mv_data,
                                                                 val.mv_size, &copy, &len) != 0) {
            copy = xmalloc(val.mv_size ? val.mv_size : 1);
            memcpy(copy, val.mv_data, val.mv_size);
            len = val.mv_size;
        }
        r->recs[r->n++] =
            (struct s3_outbox_rec){.id = s3_fs_get_be64(key.mv_data), .data = copy, .len = len};
        bytes += val.mv_size;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        log_error(&outbox_log, "reading the outbox: %s", mdb_strerror(rc));
        r->err = -1;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
}

static void on_read_done(void *arg)
{
    struct outbox_read *r = arg;
    r->cb(r->err, r->err == 0 ? r->recs : NULL, r->err == 0 ? r->n : 0, r->arg);
    for (size_t i = 0; i < r->n; i++)
        free((void *)(uintptr_t)r->recs[i].data);
    free(r->recs);
    free(r);
}

void s3_store_outbox_read(struct s3_store *st, uint64_t after_id, size_t max_n, size_t max_bytes,
                          s3_outbox_read_cb *cb, void *arg)
{
    struct outbox_read *r = xcalloc(1, sizeof(*r));
    *r = (struct outbox_read){
        .st = st,
        .after_id = after_id,
        .max_n = max_n,
        .max_bytes = max_bytes,
        .cb = cb,
        .arg = arg,
    };
    s3_fs_submit_fast(st, on_read_work, on_read_done, r);
}

/* ---- removing: an op of the group committer ---- */

struct outbox_remove {
    struct s3_fs_op op;
    uint64_t *ids;
    size_t n;
    void (*cb)(int err, void *arg);
    void *arg;
};

static enum s3_err apply_remove(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct outbox_remove *o = (struct outbox_remove *)op;
    for (size_t i = 0; i < o->n; i++) {
        unsigned char k[8];
        s3_fs_put_be64(k, o->ids[i]);
        MDB_val key = {8, k};
        int rc = mdb_del(w->txn, w->st->db_outbox, &key, NULL);
        if (rc == 0)
            w->outbox_removed++;
        else if (rc != MDB_NOTFOUND)
            return s3_fs_wtxn_fail(w, rc);
    }
    return S3_OK;
}

static void finish_remove(struct s3_fs_op *op)
{
    struct outbox_remove *o = (struct outbox_remove *)op;
    if (o->cb != NULL)
        o->cb(op->err == S3_OK ? 0 : -1, o->arg);
    free(o->ids);
    free(o);
}

void s3_store_outbox_remove(struct s3_store *st, const uint64_t *ids, size_t n,
                            void (*cb)(int err, void *arg), void *arg)
{
    struct outbox_remove *o = xcalloc(1, sizeof(*o));
    o->op.apply = apply_remove;
    o->op.finish = finish_remove;
    o->ids = xcalloc(n ? n : 1, sizeof(*o->ids));
    if (n > 0)
        memcpy(o->ids, ids, n * sizeof(*ids));
    o->n = n;
    o->cb = cb;
    o->arg = arg;
    s3_fs_commit(st, &o->op);
}

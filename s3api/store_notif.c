/* Bucket notification configurations in the fs store: one value per configured bucket in the
 * `notif` DB (store_fs_internal.h), set and removed through the group committer with the
 * S3_EV_TEST event in the same txn, read on the read lane. Parsing and the encoding are
 * notif.c's; the events that carry the configuration are reported by store_outbox.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

enum s3_err s3_fs_notif_drop(struct s3_fs_wtxn *w, const char *bucket)
{
    MDB_val k = {strlen(bucket), (void *)(uintptr_t)bucket};
    int rc = mdb_del(w->txn, w->st->db_notif, &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return s3_fs_wtxn_fail(w, rc);
    return S3_OK;
}

/* ---- setting: an op of the group committer ---- */

struct notif_set {
    struct s3_fs_op op;
    char bucket[S3_FS_BUCKET_MAX + 1];
    unsigned char *data; /* NULL: remove */
    size_t len;
    s3_store_cb *cb;
    void *arg;
};

static enum s3_err apply_notif_set(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct notif_set *n = (struct notif_set *)op;
    int rc = s3_fs_bucket_exists(w->st, w->txn, n->bucket);
    if (rc == MDB_NOTFOUND)
        return S3_ERR_NO_SUCH_BUCKET;
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    if (n->len == 0)
        return s3_fs_notif_drop(w, n->bucket);
    MDB_val k = {strlen(n->bucket), n->bucket}, v = {n->len, n->data};
    rc = mdb_put(w->txn, w->st->db_notif, &k, &v, 0);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    /* S3 sends s3:TestEvent to the destinations of a configuration it accepted. */
    return s3_fs_wtxn_test_event(w, n->bucket, n->data, n->len);
}

static void finish_notif_set(struct s3_fs_op *op)
{
    struct notif_set *n = (struct notif_set *)op;
    n->cb(op->err, n->arg);
    free(n->data);
    free(n);
}

void s3_store_notif_set(struct s3_store *st, const char *bucket, const void *data, size_t len,
                        const struct s3_event_origin *origin, s3_store_cb *cb, void *arg)
{
    if (s3_fs_check_bucket_name(bucket) != S3_OK) {
        s3_fs_defer_err(st, cb, S3_ERR_NO_SUCH_BUCKET, arg);
        return;
    }
    struct notif_set *n = xcalloc(1, sizeof(*n));
    n->op.apply = apply_notif_set;
    n->op.finish = finish_notif_set;
    s3_fs_op_set_origin(&n->op, origin);
    snprintf(n->bucket, sizeof(n->bucket), "%s", bucket);
    if (len > 0) {
        n->data = xmalloc(len);
        memcpy(n->data, data, len);
        n->len = len;
    }
    n->cb = cb;
    n->arg = arg;
    s3_fs_commit(st, &n->op);
}

/* ---- reading ---- */

struct notif_get {
    struct s3_store *st;
    char bucket[S3_FS_BUCKET_MAX + 1];
    s3_notif_get_cb *cb;
    void *arg;
    enum s3_err err;
    unsigned char *data;
    size_t len;
};

static void on_get_work(void *arg)
{
    struct notif_get *g = arg;
    MDB_txn *txn;
    int rc = mdb_txn_begin(g->st->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = s3_fs_bucket_exists(g->st, txn, g->bucket);
        if (rc == 0) {
            MDB_val k = {strlen(g->bucket), g->bucket}, v;
            int grc = mdb_get(txn, g->st->db_notif, &k, &v);
            if (grc == 0 && v.mv_size > 0) {
                g->data = xmalloc(v.mv_size);
                memcpy(g->data, v.mv_data, v.mv_size);
                g->len = v.mv_size;
            } else if (grc != MDB_NOTFOUND && grc != 0) {
                rc = grc;
            }
        }
        mdb_txn_abort(txn);
    }
    g->err = rc == 0 ? S3_OK : rc == MDB_NOTFOUND ? S3_ERR_NO_SUCH_BUCKET : S3_ERR_INTERNAL_ERROR;
}

static void on_get_done(void *arg)
{
    struct notif_get *g = arg;
    g->cb(g->err, g->err == S3_OK ? g->data : NULL, g->err == S3_OK ? g->len : 0, g->arg);
    free(g->data);
    free(g);
}

static void on_get_refused(enum s3_err err, void *arg)
{
    struct notif_get *g = arg;
    g->cb(err, NULL, 0, g->arg);
    free(g);
}

void s3_store_notif_get(struct s3_store *st, const char *bucket, s3_notif_get_cb *cb, void *arg)
{
    struct notif_get *g = xcalloc(1, sizeof(*g));
    g->st = st;
    g->cb = cb;
    g->arg = arg;
    if (s3_fs_check_bucket_name(bucket) != S3_OK) {
        s3_fs_defer_err(st, on_get_refused, S3_ERR_NO_SUCH_BUCKET, g);
        return;
    }
    snprintf(g->bucket, sizeof(g->bucket), "%s", bucket);
    s3_fs_submit_fast(st, on_get_work, on_get_done, g);
}

/* Listings of the fs store: ListObjects (prefix, delimiter, start-after, max-keys) straight off
 * the ordered objects index, and ListMultipartUploads. Read txns on the pool.
 *
 * A common prefix is emitted once and then skipped whole: when it fits in an index key the
 * cursor jumps (MDB_SET_RANGE) to the prefix's successor instead of walking its keys. A common
 * prefix at or before start_after is not emitted again, so a continuation from a prefix
 * resumes after everything under it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define LIST_MAX 1000u

static struct log_ctx list_log = {.module = "store"};

/* ---- ListObjects ---- */

struct list_job {
    struct s3_store *st;
    char *bucket;
    char *prefix;
    char *delim;
    char *start_after; /* NULL when none */
    unsigned max;
    s3_list_cb *cb;
    void *arg;
    enum s3_err err;
    struct s3_list_result res;
    size_t cap_entries, cap_prefixes;
    /* the walk */
    size_t count;
    bool done;
    const char *last;             /* the last key or prefix emitted (owned by res) */
    char skip[S3_FS_KEY_MAX + 1]; /* the common prefix being skipped */
    size_t skip_len;
    bool reseek; /* jump past `skip` */
};

static bool has_room(struct list_job *j)
{
    if (j->count < j->max)
        return true;
    j->res.truncated = true;
    j->res.next_marker = xstrdup(j->last);
    j->done = true;
    return false;
}

static void emit_prefix(struct list_job *j, const char *k, size_t n)
{
    if (!has_room(j))
        return;
    if (j->res.n_prefixes == j->cap_prefixes) {
        j->cap_prefixes = j->cap_prefixes ? j->cap_prefixes * 2 : 16;
        j->res.prefixes = xrealloc(j->res.prefixes, j->cap_prefixes * sizeof(char *));
    }
    j->last = j->res.prefixes[j->res.n_prefixes++] = xstrndup(k, n);
    j->count++;
}

static void emit_key(struct list_job *j, const char *k, size_t n, const unsigned char *rec,
                     size_t rec_len)
{
    struct s3_list_entry e = {0};
    if (s3_fs_rec_peek(rec, rec_len, &e.size, &e.mtime_ms, e.etag) != 0) {
        log_error(&list_log, "corrupt record in %s", j->bucket);
        return;
    }
    if (!has_room(j))
        return;
    if (j->res.n_entries == j->cap_entries) {
        j->cap_entries = j->cap_entries ? j->cap_entries * 2 : 64;
        j->res.entries = xrealloc(j->res.entries, j->cap_entries * sizeof(e));
    }
    e.key = xstrndup(k, n);
    j->res.entries[j->res.n_entries++] = e;
    j->last = e.key;
    j->count++;
}

static void visit(struct list_job *j, const char *k, size_t n, const unsigned char *rec,
                  size_t rec_len)
{
    size_t plen = strlen(j->prefix), dlen = strlen(j->delim);
    if (j->skip_len > 0 && n >= j->skip_len && memcmp(k, j->skip, j->skip_len) == 0)
        return;
    if (j->start_after != NULL &&
        s3_fs_bytes_cmp(k, n, j->start_after, strlen(j->start_after)) <= 0)
        return;
    if (n < plen || memcmp(k, j->prefix, plen) != 0) {
        if (s3_fs_bytes_cmp(k, n, j->prefix, plen) > 0)
            j->done = true; /* past every key with the prefix */
        return;
    }
    const char *d = dlen > 0 ? memmem(k + plen, n - plen, j->delim, dlen) : NULL;
    if (d == NULL) {
        emit_key(j, k, n, rec, rec_len);
        return;
    }
    size_t cl = (size_t)(d - k) + dlen;
    memcpy(j->skip, k, cl);
    j->skip_len = cl;
    if (j->start_after == NULL ||
        s3_fs_bytes_cmp(k, cl, j->start_after, strlen(j->start_after)) > 0)
        emit_prefix(j, k, cl);
    /* Every key under the prefix shares its first `cl` bytes; when those fit in the index
     * key, no later group but the prefix's own range holds them: jump over it. */
    j->reseek = cl <= S3_FS_IDX_PREFIX;
}

/* The smallest byte string above every string starting with `p` (len 0: none). */
static size_t successor(unsigned char *p, size_t n)
{
    while (n > 0 && p[n - 1] == 0xff)
        n--;
    if (n > 0)
        p[n - 1]++;
    return n;
}

static int walk_group(struct list_job *j, const MDB_val *k, const MDB_val *v, size_t bl)
{
    struct s3_fs_grp_item *items;
    size_t n;
    if (s3_fs_grp_parse(v->mv_data, v->mv_size, &items, &n) != 0)
        return MDB_CORRUPTED;
    char key[S3_FS_KEY_MAX + 1];
    size_t gl = k->mv_size - bl;
    memcpy(key, (const char *)k->mv_data + bl, gl);
    for (size_t i = 0; i < n && !j->done && !j->reseek; i++) {
        if (gl + items[i].suffix_len > S3_FS_KEY_MAX)
            continue;
        memcpy(key + gl, items[i].suffix, items[i].suffix_len);
        visit(j, key, gl + items[i].suffix_len, items[i].rec, items[i].rec_len);
    }
    free(items);
    return 0;
}

static int walk(struct list_job *j, MDB_txn *txn)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, j->st->db_objects, &cur);
    if (rc != 0)
        return rc;
    unsigned char ik[S3_FS_IDX_KEY_MAX];
    size_t bl = s3_fs_obj_idx_key(ik, j->bucket, NULL, 0);
    const char *from = j->prefix;
    if (j->start_after != NULL && strcmp(j->start_after, j->prefix) > 0)
        from = j->start_after;
    MDB_val k = {s3_fs_obj_idx_key(ik, j->bucket, from, strlen(from)), ik}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && !j->done) {
        if (k.mv_size < bl || memcmp(k.mv_data, ik, bl) != 0)
            break; /* the next bucket */
        rc = walk_group(j, &k, &v, bl);
        if (rc != 0 || j->done)
            break;
        if (!j->reseek) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        j->reseek = false;
        unsigned char succ[S3_FS_IDX_PREFIX];
        memcpy(succ, j->skip, j->skip_len);
        size_t sl = successor(succ, j->skip_len);
        if (sl == 0)
            break; /* nothing sorts after the prefix */
        k = (MDB_val){s3_fs_obj_idx_key(ik, j->bucket, succ, sl), ik};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void on_list_work(void *arg)
{
    struct list_job *j = arg;
    MDB_txn *txn;
    int rc = mdb_txn_begin(j->st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = s3_fs_bucket_exists(j->st, txn, j->bucket);
    if (rc == MDB_NOTFOUND) {
        j->err = S3_ERR_NO_SUCH_BUCKET;
        rc = 0;
    } else if (rc == 0 && j->max > 0) {
        rc = walk(j, txn);
    }
    mdb_txn_abort(txn);
out:
    if (rc != 0) {
        log_error(&list_log, "listing %s: %s", j->bucket, mdb_strerror(rc));
        j->err = S3_ERR_INTERNAL_ERROR;
    }
}

static void on_list_done(void *arg)
{
    struct list_job *j = arg;
    j->cb(j->err, j->err == S3_OK ? &j->res : NULL, j->arg);
    for (size_t i = 0; i < j->res.n_entries; i++)
        free(j->res.entries[i].key);
    for (size_t i = 0; i < j->res.n_prefixes; i++)
        free(j->res.prefixes[i]);
    free(j->res.entries);
    free(j->res.prefixes);
    free(j->res.next_marker);
    free(j->bucket);
    free(j->prefix);
    free(j->delim);
    free(j->start_after);
    free(j);
}

static void on_no_work(void *arg)
{
    (void)arg;
}

void s3_store_list(struct s3_store *st, const char *bucket, const struct s3_list_params *p,
                   s3_list_cb *cb, void *arg)
{
    struct list_job *j = xcalloc(1, sizeof(*j));
    j->st = st;
    j->bucket = xstrdup(bucket);
    j->prefix = xstrdup(p->prefix != NULL ? p->prefix : "");
    j->delim = xstrdup(p->delimiter != NULL ? p->delimiter : "");
    if (p->start_after != NULL && p->start_after[0] != '\0')
        j->start_after = xstrdup(p->start_after);
    j->max = p->max_keys > LIST_MAX ? LIST_MAX : p->max_keys;
    j->cb = cb;
    j->arg = arg;
    if (s3_fs_check_bucket_name(bucket) != S3_OK) {
        j->err = S3_ERR_NO_SUCH_BUCKET;
        s3_fs_submit(st, on_no_work, on_list_done, j);
        return;
    }
    /* A prefix longer than any key matches nothing; keeps index keys in bounds. */
    if (strlen(j->prefix) > S3_FS_KEY_MAX)
        j->max = 0;
    if (j->start_after != NULL && strlen(j->start_after) > S3_FS_KEY_MAX)
        j->start_after[S3_FS_KEY_MAX] = '\0';
    s3_fs_submit_fast(st, on_list_work, on_list_done, j);
}

/* ---- ListMultipartUploads ---- */

struct up {
    char *key;
    char id[S3_FS_UPLOAD_ID_LEN + 1];
    int64_t initiated_ms;
};

struct uploads_job {
    struct s3_store *st;
    char *bucket;
    char *prefix;
    char *delim;
    char *key_marker;
    char *id_marker;
    unsigned max;
    s3_uploads_cb *cb;
    void *arg;
    enum s3_err err;
    struct s3_uploads_result res;
};

static int up_cmp(const void *a, const void *b)
{
    const struct up *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->id, y->id);
}

static int collect_uploads(struct uploads_job *j, MDB_txn *txn, struct up **out, size_t *n_out)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, j->st->db_uploads, &cur);
    if (rc != 0)
        return rc;
    unsigned char ik[S3_FS_IDX_KEY_MAX];
    size_t bl = s3_fs_obj_idx_key(ik, j->bucket, NULL, 0);
    size_t plen = strlen(j->prefix), n = 0, cap = 0;
    struct up *v = NULL;
    MDB_val k = {bl, ik}, val;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        if (k.mv_size != bl + S3_FS_UPLOAD_ID_LEN || memcmp(k.mv_data, ik, bl) != 0)
            break;
        struct s3_fs_upload u;
        if (s3_fs_upload_decode(val.mv_data, val.mv_size, &u) != 0)
            continue;
        if (strncmp(u.key, j->prefix, plen) != 0) {
            s3_fs_upload_cleanup(&u);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n].key = u.key;
        u.key = NULL;
        memcpy(v[n].id, (const char *)k.mv_data + bl, S3_FS_UPLOAD_ID_LEN);
        v[n].id[S3_FS_UPLOAD_ID_LEN] = '\0';
        v[n].initiated_ms = u.initiated_ms;
        n++;
        s3_fs_upload_cleanup(&u);
    }
    mdb_cursor_close(cur);
    if (n > 1)
        qsort(v, n, sizeof(*v), up_cmp);
    *out = v;
    *n_out = n;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static bool after_marker(const struct uploads_job *j, const struct up *u)
{
    if (j->key_marker == NULL)
        return true;
    int c = strcmp(u->key, j->key_marker);
    if (c != 0)
        return c > 0;
    return j->id_marker != NULL && strcmp(u->id, j->id_marker) > 0;
}

/* A common prefix is listed once, and not again on the page after a marker at or past it. */
static bool prefix_is_new(const struct uploads_job *j, const char *cp)
{
    const struct s3_uploads_result *r = &j->res;
    if (r->n_prefixes > 0 && strcmp(cp, r->prefixes[r->n_prefixes - 1]) == 0)
        return false;
    return j->key_marker == NULL || strcmp(cp, j->key_marker) > 0;
}

static void page_uploads(struct uploads_job *j, struct up *v, size_t n)
{
    size_t plen = strlen(j->prefix), dlen = strlen(j->delim), cap_u = 0, cap_p = 0, count = 0;
    const char *last_key = NULL, *last_id = "";
    struct s3_uploads_result *r = &j->res;
    for (size_t i = 0; i < n; i++) {
        if (!after_marker(j, &v[i]))
            continue;
        const char *d = dlen > 0 ? strstr(v[i].key + plen, j->delim) : NULL;
        char *cp = d != NULL ? xstrndup(v[i].key, (size_t)(d - v[i].key) + dlen) : NULL;
        if (cp != NULL && !prefix_is_new(j, cp)) {
            free(cp);
            continue;
        }
        if (count == j->max) {
            free(cp);
            r->truncated = true;
            r->next_key_marker = xstrdup(last_key);
            snprintf(r->next_upload_id_marker, sizeof(r->next_upload_id_marker), "%s", last_id);
            return;
        }
        count++;
        if (cp != NULL) {
            if (r->n_prefixes == cap_p) {
                cap_p = cap_p ? cap_p * 2 : 16;
                r->prefixes = xrealloc(r->prefixes, cap_p * sizeof(char *));
            }
            last_key = r->prefixes[r->n_prefixes++] = cp;
            last_id = "";
            continue;
        }
        if (r->n == cap_u) {
            cap_u = cap_u ? cap_u * 2 : 16;
            r->uploads = xrealloc(r->uploads, cap_u * sizeof(*r->uploads));
        }
        struct s3_upload_info *ui = &r->uploads[r->n++];
        memset(ui, 0, sizeof(*ui));
        ui->key = v[i].key;
        v[i].key = NULL;
        memcpy(ui->upload_id, v[i].id, sizeof(v[i].id));
        ui->initiated_ms = v[i].initiated_ms;
        last_key = ui->key;
        last_id = ui->upload_id;
    }
}

static void on_uploads_work(void *arg)
{
    struct uploads_job *j = arg;
    MDB_txn *txn;
    struct up *v = NULL;
    size_t n = 0;
    int rc = mdb_txn_begin(j->st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = s3_fs_bucket_exists(j->st, txn, j->bucket);
    if (rc == MDB_NOTFOUND) {
        j->err = S3_ERR_NO_SUCH_BUCKET;
        rc = 0;
    } else if (rc == 0 && j->max > 0) {
        rc = collect_uploads(j, txn, &v, &n);
    }
    mdb_txn_abort(txn);
    if (rc == 0 && j->err == S3_OK)
        page_uploads(j, v, n);
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
out:
    if (rc != 0) {
        log_error(&list_log, "listing uploads of %s: %s", j->bucket, mdb_strerror(rc));
        j->err = S3_ERR_INTERNAL_ERROR;
    }
}

static void on_uploads_done(void *arg)
{
    struct uploads_job *j = arg;
    j->cb(j->err, j->err == S3_OK ? &j->res : NULL, j->arg);
    for (size_t i = 0; i < j->res.n; i++)
        free(j->res.uploads[i].key);
    for (size_t i = 0; i < j->res.n_prefixes; i++)
        free(j->res.prefixes[i]);
    free(j->res.uploads);
    free(j->res.prefixes);
    free(j->res.next_key_marker);
    free(j->bucket);
    free(j->prefix);
    free(j->delim);
    free(j->key_marker);
    free(j->id_marker);
    free(j);
}

void s3_store_mpu_list(struct s3_store *st, const char *bucket, const char *prefix,
                       const char *delimiter, const char *key_marker, const char *upload_id_marker,
                       unsigned max_uploads, s3_uploads_cb *cb, void *arg)
{
    struct uploads_job *j = xcalloc(1, sizeof(*j));
    j->st = st;
    j->bucket = xstrdup(bucket);
    j->prefix = xstrdup(prefix != NULL ? prefix : "");
    j->delim = xstrdup(delimiter != NULL ? delimiter : "");
    if (key_marker != NULL && key_marker[0] != '\0') {
        j->key_marker = xstrdup(key_marker);
        if (upload_id_marker != NULL && upload_id_marker[0] != '\0')
            j->id_marker = xstrdup(upload_id_marker);
    }
    j->max = max_uploads > LIST_MAX ? LIST_MAX : max_uploads;
    j->cb = cb;
    j->arg = arg;
    if (s3_fs_check_bucket_name(bucket) != S3_OK) {
        j->err = S3_ERR_NO_SUCH_BUCKET;
        s3_fs_submit(st, on_no_work, on_uploads_done, j);
        return;
    }
    s3_fs_submit_fast(st, on_uploads_work, on_uploads_done, j);
}

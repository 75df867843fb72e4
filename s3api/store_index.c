/* The LMDB layout of the fs store: opening the env, index keys, and reading and writing
 * bucket, object, upload and part records inside a caller's txn. The on-disk picture is in
 * store_fs_internal.h; the record encoding in store_meta.c.
 *
 * Object keys are up to 1024 bytes but LMDB keys at most 511, so an objects index key is
 * bucket '\0' key[0..400): order-preserving, since a key's first 400 bytes never sort after
 * the key. Keys sharing their first 400 bytes (keys of 400 bytes or more) share one value: a
 * group of (suffix, record) pairs sorted by suffix, so iteration stays in exact byte order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define UPLOAD_VERSION 1u
#define PART_VERSION   1u

static void set_err(char *err, size_t cap, const char *what, int rc)
{
    snprintf(err, cap, "store: %s: %s", what, mdb_strerror(rc));
}

static int open_dbi(MDB_txn *txn, const char *name, MDB_dbi *out)
{
    return mdb_dbi_open(txn, name, MDB_CREATE, out);
}

int s3_fs_index_open(struct s3_store *st, size_t map_size, char *err, size_t err_cap)
{
    char *dir = xasprintf("%s/index", st->data_dir);
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&st->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(st->env, 16);
    if (rc == 0)
        rc = mdb_env_set_mapsize(st->env, map_size);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(st->env, 512);
    /* MDB_NOTLS: read txns are tied to the txn, not the thread, so any pool thread can run
     * one. Syncs stay on: a commit is durable when mdb_txn_commit() returns. */
    if (rc == 0)
        rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
    if (rc != 0) {
        set_err(err, err_cap, dir, rc);
        goto fail;
    }
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc == 0)
        rc = open_dbi(txn, "buckets", &st->db_buckets);
    if (rc == 0)
        rc = open_dbi(txn, "objects", &st->db_objects);
    if (rc == 0)
        rc = open_dbi(txn, "uploads", &st->db_uploads);
    if (rc == 0)
        rc = open_dbi(txn, "parts", &st->db_parts);
    if (rc == 0)
        rc = open_dbi(txn, "meta", &st->db_meta);
    if (rc == 0)
        rc = open_dbi(txn, "pending", &st->db_pending);
    if (rc == 0)
        rc = open_dbi(txn, "trash", &st->db_trash);
    /* Added after format 1 shipped (outbox, notif): created in an existing index on its first
     * open. 9 of the 16 named DBs mdb_env_set_maxdbs() allows. */
    if (rc == 0)
        rc = open_dbi(txn, "outbox", &st->db_outbox);
    if (rc == 0)
        rc = open_dbi(txn, "notif", &st->db_notif);
    if (rc != 0) {
        set_err(err, err_cap, "opening the index DBs", rc);
        goto fail;
    }

    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, st->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        unsigned char fmt[4];
        s3_fs_put_be32(fmt, S3_FS_FORMAT);
        v = (MDB_val){4, fmt};
        rc = mdb_put(txn, st->db_meta, &k, &v, 0);
    } else if (rc == 0 && (v.mv_size != 4 || s3_fs_get_be32(v.mv_data) != S3_FS_FORMAT)) {
        snprintf(err, err_cap, "store: %s has an unknown index format", st->data_dir);
        goto fail;
    }
    /* The outbox's identity: drawn once, when this index is created (or first opened by a
     * version that had none). */
    unsigned char src[16];
    MDB_val kso = {6, "source"};
    if (rc == 0 && mdb_get(txn, st->db_meta, &kso, &v) == 0 && v.mv_size == sizeof(src)) {
        memcpy(src, v.mv_data, sizeof(src));
    } else if (rc == 0) {
        ASSERT(getrandom(src, sizeof(src), 0) == (ssize_t)sizeof(src));
        v = (MDB_val){sizeof(src), src};
        rc = mdb_put(txn, st->db_meta, &kso, &v, 0);
    }
    for (size_t i = 0; i < sizeof(src); i++)
        snprintf(st->source + 2 * i, 3, "%02x", src[i]);
    uint64_t next_id = 1;
    MDB_val kn = {7, "next_id"};
    if (rc == 0 && mdb_get(txn, st->db_meta, &kn, &v) == 0 && v.mv_size == 8)
        next_id = s3_fs_get_be64(v.mv_data);
    uint64_t next_seq = 1;
    MDB_val ks = {8, "next_seq"};
    if (rc == 0 && mdb_get(txn, st->db_meta, &ks, &v) == 0 && v.mv_size == 8)
        next_seq = s3_fs_get_be64(v.mv_data);
    MDB_stat ms = {0};
    if (rc == 0)
        rc = mdb_stat(txn, st->db_outbox, &ms);
    /* Outbox ids come from next_seq too, so it is past the last record whatever the meta says. */
    MDB_cursor *cur = NULL;
    MDB_val lk, lv;
    if (rc == 0 && ms.ms_entries > 0 && mdb_cursor_open(txn, st->db_outbox, &cur) == 0) {
        if (mdb_cursor_get(cur, &lk, &lv, MDB_LAST) == 0 && lk.mv_size == 8 &&
            s3_fs_get_be64(lk.mv_data) >= next_seq)
            next_seq = s3_fs_get_be64(lk.mv_data) + 1;
        mdb_cursor_close(cur);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        set_err(err, err_cap, "initialising the index", rc);
        goto fail;
    }
    atomic_store(&st->next_id, next_id > 0 ? next_id : 1);
    atomic_store(&st->next_seq, next_seq > 0 ? next_seq : 1);
    st->seq_at_open = next_seq > 0 ? next_seq : 1;
    atomic_store(&st->outbox_n, (uint64_t)ms.ms_entries);
    free(dir);
    return 0;

fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    free(dir);
    return -1;
}

/* ---- objects ---- */

size_t s3_fs_obj_idx_key(unsigned char *out, const char *bucket, const void *key, size_t key_len)
{
    size_t bn = strlen(bucket);
    ASSERT(bn <= S3_FS_BUCKET_MAX);
    memcpy(out, bucket, bn);
    out[bn] = '\0';
    if (key == NULL)
        return bn + 1;
    size_t kn = key_len < S3_FS_IDX_PREFIX ? key_len : S3_FS_IDX_PREFIX;
    memcpy(out + bn + 1, key, kn);
    return bn + 1 + kn;
}

/* The group holding `key`: parsed items (pointing into the txn's memory) and the position
 * where `key` is or would go. 0, MDB_NOTFOUND (no group: *n is 0), or an error. */
static int grp_load(MDB_txn *txn, MDB_dbi dbi, const char *bucket, const char *key,
                    unsigned char *ik, MDB_val *k, struct s3_fs_grp_item **items, size_t *n,
                    size_t *pos, bool *found)
{
    size_t key_len = strlen(key);
    const unsigned char *suffix = (const unsigned char *)key + S3_FS_IDX_PREFIX;
    size_t suffix_len = key_len > S3_FS_IDX_PREFIX ? key_len - S3_FS_IDX_PREFIX : 0;
    *k = (MDB_val){s3_fs_obj_idx_key(ik, bucket, key, key_len), ik};
    *items = NULL;
    *n = 0;
    *pos = 0;
    *found = false;
    MDB_val v;
    int rc = mdb_get(txn, dbi, k, &v);
    if (rc != 0)
        return rc;
    if (s3_fs_grp_parse(v.mv_data, v.mv_size, items, n) != 0)
        return MDB_CORRUPTED;
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s3_fs_bytes_cmp((*items)[mid].suffix, (*items)[mid].suffix_len, suffix, suffix_len);
        if (c == 0) {
            *pos = mid;
            *found = true;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

int s3_fs_obj_get(struct s3_store *st, MDB_txn *txn, const char *bucket, const char *key,
                  struct s3_fs_rec *out)
{
    unsigned char ik[S3_FS_IDX_KEY_MAX];
    MDB_val k;
    struct s3_fs_grp_item *items;
    size_t n, pos;
    bool found;
    int rc = grp_load(txn, st->db_objects, bucket, key, ik, &k, &items, &n, &pos, &found);
    if (rc == 0 && !found)
        rc = MDB_NOTFOUND;
    if (rc == 0 && s3_fs_rec_decode(items[pos].rec, items[pos].rec_len, out) != 0)
        rc = MDB_CORRUPTED;
    free(items);
    return rc;
}

/* Trashes the files of a stored record. */
static enum s3_err trash_item(struct s3_fs_wtxn *w, const struct s3_fs_grp_item *it)
{
    struct s3_fs_rec old;
    if (s3_fs_rec_decode(it->rec, it->rec_len, &old) != 0)
        return s3_fs_wtxn_fail(w, MDB_CORRUPTED);
    enum s3_err err = s3_fs_wtxn_trash_loc(w, &old.loc);
    s3_fs_rec_cleanup(&old);
    return err;
}

static enum s3_err grp_store(struct s3_fs_wtxn *w, MDB_val *k, const struct s3_fs_grp_item *items,
                             size_t n)
{
    int rc;
    if (n == 0) {
        rc = mdb_del(w->txn, w->st->db_objects, k, NULL);
    } else {
        struct s3_fs_wbuf b = {0};
        s3_fs_grp_encode(&b, items, n);
        MDB_val v = {b.len, b.p};
        rc = mdb_put(w->txn, w->st->db_objects, k, &v, 0);
        s3_fs_wbuf_cleanup(&b);
    }
    return rc == 0 ? S3_OK : s3_fs_wtxn_fail(w, rc);
}

enum s3_err s3_fs_obj_put(struct s3_fs_wtxn *w, const char *bucket, const char *key,
                          const struct s3_fs_rec *rec, bool trash_old)
{
    unsigned char ik[S3_FS_IDX_KEY_MAX];
    MDB_val k;
    struct s3_fs_grp_item *items;
    size_t n, pos;
    bool found;
    int rc = grp_load(w->txn, w->st->db_objects, bucket, key, ik, &k, &items, &n, &pos, &found);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return s3_fs_wtxn_fail(w, rc);
    enum s3_err err = S3_OK;
    if (found && trash_old)
        err = trash_item(w, &items[pos]);
    struct s3_fs_wbuf rb = {0};
    s3_fs_rec_encode(&rb, rec);
    size_t key_len = strlen(key);
    struct s3_fs_grp_item it = {
        .suffix = (const unsigned char *)key + S3_FS_IDX_PREFIX,
        .suffix_len = key_len > S3_FS_IDX_PREFIX ? key_len - S3_FS_IDX_PREFIX : 0,
        .rec = rb.p,
        .rec_len = rb.len,
    };
    if (it.suffix_len == 0)
        it.suffix = (const unsigned char *)"";
    struct s3_fs_grp_item *nv = xcalloc(n + 1, sizeof(*nv));
    if (n > 0)
        memcpy(nv, items, pos * sizeof(*nv));
    nv[pos] = it;
    size_t rest = found ? pos + 1 : pos;
    if (n > rest)
        memcpy(nv + pos + 1, items + rest, (n - rest) * sizeof(*nv));
    size_t nn = found ? n : n + 1;
    if (err == S3_OK)
        err = grp_store(w, &k, nv, nn);
    if (err == S3_OK)
        s3_fs_wtxn_touch(w, bucket, key);
    free(nv);
    free(items);
    s3_fs_wbuf_cleanup(&rb);
    return err;
}

enum s3_err s3_fs_obj_del(struct s3_fs_wtxn *w, const char *bucket, const char *key, bool *found)
{
    unsigned char ik[S3_FS_IDX_KEY_MAX];
    MDB_val k;
    struct s3_fs_grp_item *items;
    size_t n, pos;
    int rc = grp_load(w->txn, w->st->db_objects, bucket, key, ik, &k, &items, &n, &pos, found);
    if (rc == MDB_NOTFOUND || (rc == 0 && !*found)) {
        free(items);
        return S3_OK;
    }
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    enum s3_err err = trash_item(w, &items[pos]);
    if (err == S3_OK) {
        memmove(items + pos, items + pos + 1, (n - pos - 1) * sizeof(*items));
        err = grp_store(w, &k, items, n - 1);
    }
    if (err == S3_OK)
        s3_fs_wtxn_touch(w, bucket, key);
    free(items);
    return err;
}

/* ---- buckets ---- */

int s3_fs_bucket_exists(struct s3_store *st, MDB_txn *txn, const char *bucket)
{
    MDB_val k = {strlen(bucket), (void *)(uintptr_t)bucket}, v;
    return mdb_get(txn, st->db_buckets, &k, &v);
}

int s3_fs_bucket_has_entries(MDB_txn *txn, MDB_dbi dbi, const char *bucket, bool *any)
{
    unsigned char ik[S3_FS_IDX_KEY_MAX];
    MDB_val k = {s3_fs_obj_idx_key(ik, bucket, NULL, 0), ik}, v;
    MDB_cursor *cur;
    *any = false;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    size_t plen = k.mv_size;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        *any = k.mv_size >= plen && memcmp(k.mv_data, ik, plen) == 0;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- multipart uploads ---- */

bool s3_fs_upload_id_valid(const char *upload_id)
{
    size_t n = 0;
    for (; upload_id[n] != '\0'; n++) {
        char c = upload_id[n];
        if (n >= S3_FS_UPLOAD_ID_LEN || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return n == S3_FS_UPLOAD_ID_LEN;
}

void s3_fs_upload_cleanup(struct s3_fs_upload *u)
{
    if (u == NULL)
        return;
    free(u->key);
    s3_obj_meta_cleanup(&u->meta);
    memset(u, 0, sizeof(*u));
}

size_t s3_fs_upload_idx_key(unsigned char *out, const char *bucket, const char *upload_id)
{
    size_t n = s3_fs_obj_idx_key(out, bucket, NULL, 0);
    memcpy(out + n, upload_id, S3_FS_UPLOAD_ID_LEN);
    return n + S3_FS_UPLOAD_ID_LEN;
}

/* version u8, initiated u64, key (u16 len + bytes), headers. */
void s3_fs_upload_encode(struct s3_fs_wbuf *b, const struct s3_fs_upload *u)
{
    size_t kn = strlen(u->key);
    s3_fs_wbuf_u8(b, UPLOAD_VERSION);
    s3_fs_wbuf_u64(b, (uint64_t)u->initiated_ms);
    s3_fs_wbuf_u16(b, (uint16_t)kn);
    s3_fs_wbuf_bytes(b, u->key, kn);
    s3_fs_headers_encode(b, &u->meta);
}

int s3_fs_upload_decode(const void *p, size_t len, struct s3_fs_upload *out)
{
    struct s3_fs_rbuf r = {.p = p, .len = len};
    memset(out, 0, sizeof(*out));
    if (s3_fs_rbuf_u8(&r) != UPLOAD_VERSION)
        return -1;
    out->initiated_ms = (int64_t)s3_fs_rbuf_u64(&r);
    uint16_t kn = s3_fs_rbuf_u16(&r);
    const unsigned char *key = s3_fs_rbuf_bytes(&r, kn);
    if (key != NULL)
        out->key = xstrndup((const char *)key, kn);
    s3_fs_headers_decode(&r, &out->meta);
    if (r.bad || out->key == NULL) {
        s3_fs_upload_cleanup(out);
        return -1;
    }
    return 0;
}

int s3_fs_upload_get(struct s3_store *st, MDB_txn *txn, const char *bucket, const char *upload_id,
                     struct s3_fs_upload *u)
{
    if (!s3_fs_upload_id_valid(upload_id))
        return MDB_NOTFOUND;
    unsigned char ik[S3_FS_IDX_KEY_MAX + S3_FS_UPLOAD_ID_LEN];
    MDB_val k = {s3_fs_upload_idx_key(ik, bucket, upload_id), ik}, v;
    int rc = mdb_get(txn, st->db_uploads, &k, &v);
    if (rc == 0 && u != NULL && s3_fs_upload_decode(v.mv_data, v.mv_size, u) != 0)
        rc = MDB_CORRUPTED;
    return rc;
}

void s3_fs_part_idx_key(unsigned char *out, const char *upload_id, unsigned part_number)
{
    memcpy(out, upload_id, S3_FS_UPLOAD_ID_LEN);
    s3_fs_put_be32(out + S3_FS_UPLOAD_ID_LEN, part_number);
}

/* version u8, size u64, mtime u64, etag (u8 len + bytes), file id u64. */
void s3_fs_part_encode(struct s3_fs_wbuf *b, const struct s3_fs_part *p)
{
    size_t etag_len = strnlen(p->etag, sizeof(p->etag) - 1);
    s3_fs_wbuf_u8(b, PART_VERSION);
    s3_fs_wbuf_u64(b, p->size);
    s3_fs_wbuf_u64(b, (uint64_t)p->mtime_ms);
    s3_fs_wbuf_u8(b, (uint8_t)etag_len);
    s3_fs_wbuf_bytes(b, p->etag, etag_len);
    s3_fs_wbuf_u64(b, p->file_id);
}

int s3_fs_part_decode(const void *p, size_t len, struct s3_fs_part *out)
{
    struct s3_fs_rbuf r = {.p = p, .len = len};
    memset(out, 0, sizeof(*out));
    if (s3_fs_rbuf_u8(&r) != PART_VERSION)
        return -1;
    out->size = s3_fs_rbuf_u64(&r);
    out->mtime_ms = (int64_t)s3_fs_rbuf_u64(&r);
    uint8_t etag_len = s3_fs_rbuf_u8(&r);
    const unsigned char *etag = s3_fs_rbuf_bytes(&r, etag_len);
    if (etag != NULL && etag_len < sizeof(out->etag))
        memcpy(out->etag, etag, etag_len);
    else
        r.bad = true;
    out->file_id = s3_fs_rbuf_u64(&r);
    return r.bad ? -1 : 0;
}

static bool ids_has(const struct s3_fs_ids *ids, uint64_t id)
{
    for (size_t i = 0; ids != NULL && i < ids->n; i++) {
        if (ids->v[i] == id)
            return true;
    }
    return false;
}

enum s3_err s3_fs_upload_remove(struct s3_fs_wtxn *w, const char *bucket, const char *upload_id,
                                const struct s3_fs_ids *keep)
{
    unsigned char ik[S3_FS_IDX_KEY_MAX + S3_FS_UPLOAD_ID_LEN];
    MDB_val k = {s3_fs_upload_idx_key(ik, bucket, upload_id), ik}, v;
    int rc = mdb_del(w->txn, w->st->db_uploads, &k, NULL);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    /* Collect the parts first, then delete: no cursor moves under deletion. */
    struct s3_fs_ids numbers = {0}, files = {0};
    MDB_cursor *cur;
    rc = mdb_cursor_open(w->txn, w->st->db_parts, &cur);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    unsigned char pk[S3_FS_PART_KEY_LEN];
    s3_fs_part_idx_key(pk, upload_id, 0);
    k = (MDB_val){sizeof(pk), pk};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != S3_FS_PART_KEY_LEN ||
            memcmp(k.mv_data, upload_id, S3_FS_UPLOAD_ID_LEN) != 0)
            break;
        struct s3_fs_part p;
        if (s3_fs_part_decode(v.mv_data, v.mv_size, &p) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        s3_fs_ids_push(&numbers,
                       s3_fs_get_be32((const unsigned char *)k.mv_data + S3_FS_UPLOAD_ID_LEN));
        if (p.file_id != 0 && !ids_has(keep, p.file_id))
            s3_fs_ids_push(&files, p.file_id);
    }
    mdb_cursor_close(cur);
    enum s3_err err = rc == 0 || rc == MDB_NOTFOUND ? S3_OK : s3_fs_wtxn_fail(w, rc);
    for (size_t i = 0; i < numbers.n && err == S3_OK; i++) {
        s3_fs_part_idx_key(pk, upload_id, (unsigned)numbers.v[i]);
        k = (MDB_val){sizeof(pk), pk};
        rc = mdb_del(w->txn, w->st->db_parts, &k, NULL);
        if (rc != 0)
            err = s3_fs_wtxn_fail(w, rc);
    }
    for (size_t i = 0; i < files.n && err == S3_OK; i++)
        err = s3_fs_wtxn_trash(w, files.v[i]);
    s3_fs_ids_cleanup(&numbers);
    s3_fs_ids_cleanup(&files);
    return err;
}

enum s3_err s3_fs_uploads_expire(struct s3_fs_wtxn *w, int64_t cutoff_ms, size_t *n_removed)
{
    /* Collect first: removing while iterating would move the cursor under us. */
    struct victim {
        char bucket[S3_FS_BUCKET_MAX + 1];
        char upload_id[S3_FS_UPLOAD_ID_LEN + 1];
    } *vs = NULL;
    size_t n = 0, cap = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    *n_removed = 0;
    int rc = mdb_cursor_open(w->txn, w->st->db_uploads, &cur);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct s3_fs_rbuf r = {.p = v.mv_data, .len = v.mv_size};
        s3_fs_rbuf_u8(&r);
        int64_t initiated = (int64_t)s3_fs_rbuf_u64(&r);
        const char *ks = k.mv_data;
        const char *nul = memchr(ks, '\0', k.mv_size);
        if (nul == NULL || (size_t)(nul - ks) > S3_FS_BUCKET_MAX ||
            k.mv_size - (size_t)(nul - ks) - 1 != S3_FS_UPLOAD_ID_LEN)
            continue; /* not ours; leave it */
        if (!r.bad && initiated >= cutoff_ms)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            vs = xrealloc(vs, cap * sizeof(*vs));
        }
        memcpy(vs[n].bucket, ks, (size_t)(nul - ks));
        vs[n].bucket[nul - ks] = '\0';
        memcpy(vs[n].upload_id, nul + 1, S3_FS_UPLOAD_ID_LEN);
        vs[n].upload_id[S3_FS_UPLOAD_ID_LEN] = '\0';
        n++;
    }
    mdb_cursor_close(cur);
    enum s3_err err = rc == MDB_NOTFOUND ? S3_OK : s3_fs_wtxn_fail(w, rc);
    for (size_t i = 0; i < n && err == S3_OK; i++)
        err = s3_fs_upload_remove(w, vs[i].bucket, vs[i].upload_id, NULL);
    if (err == S3_OK)
        *n_removed = n;
    free(vs);
    return err;
}

/* Multipart uploads in the fs store: create, complete, abort, list parts, part copy. Parts are
 * data files like any other (UploadPart itself is a put, store_put.c); completing an upload
 * copies nothing: the object's record lists the part files as its segments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gateway/log.h"
#include "gateway/span.h"
#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define COPY_BLOCK (256u * 1024)

static struct log_ctx mpu_log = {.module = "store"};

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A part's etag (32 hex digits) as its 16-byte MD5. */
static int md5_from_etag(const char *etag, unsigned char out[16])
{
    for (size_t i = 0; i < 16; i++) {
        int hi = gw_hex_digit(etag[2 * i]), lo = hi < 0 ? -1 : gw_hex_digit(etag[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return etag[32] == '\0' ? 0 : -1;
}

/* Compares a client's etag (maybe quoted, any case) with a stored one. */
static bool etag_matches(const char *given, const char *stored)
{
    size_t n = strlen(given);
    if (n >= 2 && given[0] == '"' && given[n - 1] == '"') {
        given++;
        n -= 2;
    }
    return n == strlen(stored) && strncasecmp(given, stored, n) == 0;
}

/* bucket/key's upload, or S3_ERR_NO_SUCH_UPLOAD. */
static enum s3_err find_upload(struct s3_store *st, MDB_txn *txn, const char *bucket,
                               const char *key, const char *upload_id, struct s3_fs_upload *u,
                               int *rc_out)
{
    memset(u, 0, sizeof(*u));
    int rc = s3_fs_upload_get(st, txn, bucket, upload_id, u);
    *rc_out = rc == MDB_NOTFOUND ? 0 : rc;
    if (rc != 0)
        return rc == MDB_NOTFOUND ? S3_ERR_NO_SUCH_UPLOAD : S3_ERR_INTERNAL_ERROR;
    if (strcmp(u->key, key) != 0) {
        s3_fs_upload_cleanup(u);
        return S3_ERR_NO_SUCH_UPLOAD;
    }
    return S3_OK;
}

static int part_get(struct s3_store *st, MDB_txn *txn, const char *upload_id, unsigned number,
                    struct s3_fs_part *out)
{
    unsigned char pk[S3_FS_PART_KEY_LEN];
    s3_fs_part_idx_key(pk, upload_id, number);
    MDB_val k = {sizeof(pk), pk}, v;
    int rc = mdb_get(txn, st->db_parts, &k, &v);
    if (rc == 0 && s3_fs_part_decode(v.mv_data, v.mv_size, out) != 0)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        out->part_number = number;
    return rc;
}

enum s3_err s3_fs_part_commit(struct s3_fs_wtxn *w, const char *bucket, const char *key,
                              const char *upload_id, struct s3_fs_part *part)
{
    struct s3_fs_upload u;
    int rc;
    enum s3_err err = find_upload(w->st, w->txn, bucket, key, upload_id, &u, &rc);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    if (err != S3_OK)
        return err;
    s3_fs_upload_cleanup(&u);
    struct s3_fs_part old;
    rc = part_get(w->st, w->txn, upload_id, part->part_number, &old);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return s3_fs_wtxn_fail(w, rc);
    if (rc == 0 && old.file_id != 0 && old.file_id != part->file_id &&
        s3_fs_wtxn_trash(w, old.file_id) != S3_OK)
        return S3_ERR_INTERNAL_ERROR;
    part->mtime_ms = w->now_ms;
    unsigned char pk[S3_FS_PART_KEY_LEN];
    s3_fs_part_idx_key(pk, upload_id, part->part_number);
    struct s3_fs_wbuf b = {0};
    s3_fs_part_encode(&b, part);
    MDB_val k = {sizeof(pk), pk}, v = {b.len, b.p};
    rc = mdb_put(w->txn, w->st->db_parts, &k, &v, 0);
    s3_fs_wbuf_cleanup(&b);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    return part->file_id != 0 ? s3_fs_wtxn_publish(w, part->file_id) : S3_OK;
}

/* ---- create, complete, abort: ops of the group committer ---- */

struct mpu_op {
    struct s3_fs_op op;
    struct s3_store *st;
    char *bucket;
    char *key;
    char upload_id[S3_FS_UPLOAD_ID_LEN + 1];
    struct s3_obj_meta meta; /* create: the final object's headers */
    struct s3_part_ref *parts;
    size_t n_parts;
    struct s3_obj_meta res; /* complete: the object's meta */
    struct s3_obj_meta *out;
    s3_upload_cb *upload_cb;
    s3_store_cb *cb;
    void *arg;
};

static void mpu_free(struct mpu_op *m)
{
    free(m->bucket);
    free(m->key);
    free(m->parts);
    s3_obj_meta_cleanup(&m->meta);
    s3_obj_meta_cleanup(&m->res);
    free(m);
}

static void finish_mpu(struct s3_fs_op *op)
{
    struct mpu_op *m = (struct mpu_op *)op;
    if (m->upload_cb != NULL) {
        m->upload_cb(op->err, op->err == S3_OK ? m->upload_id : NULL, m->arg);
    } else {
        if (op->err == S3_OK && m->out != NULL)
            s3_obj_meta_copy(m->out, &m->res);
        m->cb(op->err, m->arg);
    }
    mpu_free(m);
}

static struct mpu_op *mpu_new(struct s3_store *st, const char *bucket, const char *key,
                              const char *upload_id, s3_fs_apply_fn *apply, enum s3_err *err)
{
    struct mpu_op *m = xcalloc(1, sizeof(*m));
    m->op.apply = apply;
    m->op.finish = finish_mpu;
    m->st = st;
    m->bucket = xstrdup(bucket);
    m->key = xstrdup(key);
    snprintf(m->upload_id, sizeof(m->upload_id), "%s", upload_id != NULL ? upload_id : "");
    *err = s3_fs_check_bucket_name(bucket) != S3_OK ? S3_ERR_NO_SUCH_BUCKET : s3_fs_check_key(key);
    if (*err == S3_OK && upload_id != NULL && !s3_fs_upload_id_valid(upload_id))
        *err = S3_ERR_NO_SUCH_UPLOAD;
    return m;
}

static void on_no_work(void *arg)
{
    (void)arg;
}

static void on_refused(void *arg)
{
    struct mpu_op *m = arg;
    finish_mpu(&m->op);
}

/* Queues the op, or answers its argument error from a later loop iteration. */
static void mpu_submit(struct mpu_op *m, enum s3_err err)
{
    if (err == S3_OK) {
        s3_fs_commit(m->st, &m->op);
        return;
    }
    m->op.err = err;
    s3_fs_submit(m->st, on_no_work, on_refused, m);
}

static enum s3_err apply_create(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct mpu_op *m = (struct mpu_op *)op;
    int rc = s3_fs_bucket_exists(w->st, w->txn, m->bucket);
    if (rc == MDB_NOTFOUND)
        return S3_ERR_NO_SUCH_BUCKET;
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    do {
        unsigned char r[S3_FS_UPLOAD_ID_LEN / 2];
        ASSERT(getrandom(r, sizeof(r), 0) == (ssize_t)sizeof(r));
        hex(r, sizeof(r), m->upload_id);
        rc = s3_fs_upload_get(w->st, w->txn, m->bucket, m->upload_id, NULL);
    } while (rc == 0);
    if (rc != MDB_NOTFOUND)
        return s3_fs_wtxn_fail(w, rc);
    struct s3_fs_upload u = {.key = m->key, .initiated_ms = w->now_ms, .meta = m->meta};
    struct s3_fs_wbuf b = {0};
    s3_fs_upload_encode(&b, &u);
    unsigned char ik[S3_FS_IDX_KEY_MAX + S3_FS_UPLOAD_ID_LEN];
    MDB_val k = {s3_fs_upload_idx_key(ik, m->bucket, m->upload_id), ik}, v = {b.len, b.p};
    rc = mdb_put(w->txn, w->st->db_uploads, &k, &v, 0);
    s3_fs_wbuf_cleanup(&b);
    return rc == 0 ? S3_OK : s3_fs_wtxn_fail(w, rc);
}

void s3_store_mpu_create(struct s3_store *st, const char *bucket, const char *key,
                         struct s3_obj_meta *meta, s3_upload_cb *cb, void *arg)
{
    enum s3_err err;
    struct mpu_op *m = mpu_new(st, bucket, key, NULL, apply_create, &err);
    m->meta = *meta; /* taken over: the caller keeps an empty meta */
    s3_obj_meta_init(meta);
    m->upload_cb = cb;
    m->arg = arg;
    mpu_submit(m, err);
}

/* Validates the list against the stored parts, then publishes the object: its segments are
 * the listed parts' files, its etag hex(md5(md5_1 .. md5_n))-n. */
static enum s3_err apply_complete(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct mpu_op *m = (struct mpu_op *)op;
    struct s3_fs_upload u;
    int rc;
    enum s3_err err = find_upload(w->st, w->txn, m->bucket, m->key, m->upload_id, &u, &rc);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    if (err != S3_OK)
        return err;
    if (m->n_parts == 0 || m->n_parts > S3_FS_PART_MAX)
        err = S3_ERR_MALFORMED_XML;
    for (size_t i = 1; i < m->n_parts && err == S3_OK; i++) {
        if (m->parts[i].part_number <= m->parts[i - 1].part_number)
            err = S3_ERR_INVALID_PART_ORDER;
    }
    struct s3_fs_seg *segs = xcalloc(m->n_parts ? m->n_parts : 1, sizeof(*segs));
    unsigned char *md5s = xcalloc(m->n_parts ? m->n_parts : 1, 16);
    struct s3_fs_ids keep = {0};
    size_t n_segs = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < m->n_parts && err == S3_OK; i++) {
        struct s3_fs_part p = {0};
        rc = part_get(w->st, w->txn, m->upload_id, m->parts[i].part_number, &p);
        if (rc == MDB_NOTFOUND || (rc == 0 && (!etag_matches(m->parts[i].etag, p.etag) ||
                                               md5_from_etag(p.etag, md5s + 16 * i) != 0)))
            err = S3_ERR_INVALID_PART;
        else if (rc != 0)
            err = s3_fs_wtxn_fail(w, rc);
        else if (i + 1 < m->n_parts && p.size < S3_FS_MIN_PART_BYTES)
            err = S3_ERR_ENTITY_TOO_SMALL;
        if (err != S3_OK)
            break;
        size += p.size;
        if (p.file_id != 0) {
            segs[n_segs++] = (struct s3_fs_seg){p.file_id, p.size};
            s3_fs_ids_push(&keep, p.file_id);
        }
    }
    if (err == S3_OK) {
        unsigned char digest[16];
        char etag_hex[33];
        EVP_Digest(md5s, 16 * m->n_parts, digest, NULL, EVP_md5(), NULL);
        hex(digest, 16, etag_hex);
        struct s3_fs_rec rec = {.meta = u.meta};
        rec.meta.size = size;
        rec.meta.mtime_ms = w->now_ms;
        rec.meta.parts_count = (unsigned)m->n_parts;
        snprintf(rec.meta.etag, sizeof(rec.meta.etag), "%s-%zu", etag_hex, m->n_parts);
        rec.loc = (struct s3_fs_loc){.kind = S3_FS_LOC_SEGS, .segs = segs, .n_segs = n_segs};
        err = s3_fs_obj_put(w, m->bucket, m->key, &rec, true);
        if (err == S3_OK)
            err = s3_fs_upload_remove(w, m->bucket, m->upload_id, &keep);
        if (err == S3_OK)
            err = s3_fs_wtxn_event(w, S3_EV_COMPLETE_MPU, m->bucket, m->key, size, rec.meta.etag);
        if (err == S3_OK) {
            s3_obj_meta_cleanup(&m->res);
            s3_obj_meta_copy(&m->res, &rec.meta);
        }
    }
    s3_fs_ids_cleanup(&keep);
    free(segs);
    free(md5s);
    s3_fs_upload_cleanup(&u);
    return err;
}

void s3_store_mpu_complete(struct s3_store *st, const char *bucket, const char *key,
                           const char *upload_id, const struct s3_part_ref *parts, size_t n,
                           struct s3_obj_meta *out, const struct s3_event_origin *origin,
                           s3_store_cb *cb, void *arg)
{
    enum s3_err err;
    struct mpu_op *m = mpu_new(st, bucket, key, upload_id, apply_complete, &err);
    s3_fs_op_set_origin(&m->op, origin);
    m->parts = xcalloc(n ? n : 1, sizeof(*m->parts));
    if (n > 0)
        memcpy(m->parts, parts, n * sizeof(*parts));
    m->n_parts = n;
    m->out = out;
    m->cb = cb;
    m->arg = arg;
    mpu_submit(m, err);
}

static enum s3_err apply_abort(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct mpu_op *m = (struct mpu_op *)op;
    struct s3_fs_upload u;
    int rc;
    enum s3_err err = find_upload(w->st, w->txn, m->bucket, m->key, m->upload_id, &u, &rc);
    if (rc != 0)
        return s3_fs_wtxn_fail(w, rc);
    s3_fs_upload_cleanup(&u);
    return err == S3_OK ? s3_fs_upload_remove(w, m->bucket, m->upload_id, NULL) : err;
}

void s3_store_mpu_abort(struct s3_store *st, const char *bucket, const char *key,
                        const char *upload_id, s3_store_cb *cb, void *arg)
{
    enum s3_err err;
    struct mpu_op *m = mpu_new(st, bucket, key, upload_id, apply_abort, &err);
    m->cb = cb;
    m->arg = arg;
    mpu_submit(m, err);
}

/* ---- ListParts ---- */

struct parts_job {
    struct s3_store *st;
    char *bucket;
    char *key;
    char *upload_id;
    unsigned marker;
    unsigned max;
    s3_parts_cb *cb;
    void *arg;
    enum s3_err err;
    struct s3_parts_result res;
};

static void on_parts_work(void *arg)
{
    struct parts_job *j = arg;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct s3_fs_upload u;
    int rc = mdb_txn_begin(j->st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        txn = NULL;
        goto out;
    }
    j->err = find_upload(j->st, txn, j->bucket, j->key, j->upload_id, &u, &rc);
    s3_fs_upload_cleanup(&u);
    if (j->err != S3_OK || j->max == 0 || j->marker >= S3_FS_PART_MAX)
        goto out;
    rc = mdb_cursor_open(txn, j->st->db_parts, &cur);
    if (rc != 0)
        cur = NULL;
    unsigned char pk[S3_FS_PART_KEY_LEN];
    s3_fs_part_idx_key(pk, j->upload_id, j->marker + 1);
    MDB_val k = {sizeof(pk), pk}, v;
    size_t cap = 0;
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != S3_FS_PART_KEY_LEN ||
            memcmp(k.mv_data, j->upload_id, S3_FS_UPLOAD_ID_LEN) != 0)
            break;
        if (j->res.n == j->max) {
            j->res.truncated = true;
            j->res.next_marker = j->res.parts[j->res.n - 1].part_number;
            break;
        }
        struct s3_fs_part p;
        if (s3_fs_part_decode(v.mv_data, v.mv_size, &p) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (j->res.n == cap) {
            cap = cap ? cap * 2 : 64;
            j->res.parts = xrealloc(j->res.parts, cap * sizeof(*j->res.parts));
        }
        struct s3_part_info *pi = &j->res.parts[j->res.n++];
        memset(pi, 0, sizeof(*pi));
        pi->part_number = s3_fs_get_be32((const unsigned char *)k.mv_data + S3_FS_UPLOAD_ID_LEN);
        pi->size = p.size;
        pi->mtime_ms = p.mtime_ms;
        memcpy(pi->etag, p.etag, sizeof(pi->etag));
    }
    rc = rc == MDB_NOTFOUND ? 0 : rc;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc != 0) {
        log_error(&mpu_log, "listing parts: %s", mdb_strerror(rc));
        j->err = S3_ERR_INTERNAL_ERROR;
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
}

static void on_parts_done(void *arg)
{
    struct parts_job *j = arg;
    j->cb(j->err, j->err == S3_OK ? &j->res : NULL, j->arg);
    free(j->res.parts);
    free(j->bucket);
    free(j->key);
    free(j->upload_id);
    free(j);
}

void s3_store_mpu_list_parts(struct s3_store *st, const char *bucket, const char *key,
                             const char *upload_id, unsigned marker, unsigned max_parts,
                             s3_parts_cb *cb, void *arg)
{
    struct parts_job *j = xcalloc(1, sizeof(*j));
    j->st = st;
    j->bucket = xstrdup(bucket);
    j->key = xstrdup(key);
    j->upload_id = xstrdup(upload_id != NULL ? upload_id : "");
    j->marker = marker;
    j->max = max_parts > 1000 ? 1000 : max_parts;
    j->cb = cb;
    j->arg = arg;
    if (s3_fs_check_bucket_name(bucket) != S3_OK || s3_fs_check_key(key) != S3_OK ||
        !s3_fs_upload_id_valid(j->upload_id)) {
        j->err = S3_ERR_NO_SUCH_UPLOAD;
        s3_fs_submit(st, on_no_work, on_parts_done, j);
        return;
    }
    s3_fs_submit_fast(st, on_parts_work, on_parts_done, j);
}

/* ---- UploadPartCopy ---- */

struct pcopy_op {
    struct s3_fs_op op;
    struct s3_store *st;
    char *src_bucket, *src_key, *bucket, *key, *upload_id;
    uint64_t off, len;
    struct s3_part_info *out;
    s3_store_cb *cb;
    void *arg;
    enum s3_err err;
    struct s3_fs_part part;
};

static void finish_pcopy(struct s3_fs_op *op)
{
    struct pcopy_op *c = (struct pcopy_op *)op;
    enum s3_err err = c->err != S3_OK ? c->err : op->err;
    if (err == S3_OK && c->out != NULL) {
        memset(c->out, 0, sizeof(*c->out));
        c->out->part_number = c->part.part_number;
        c->out->size = c->part.size;
        c->out->mtime_ms = c->part.mtime_ms;
        memcpy(c->out->etag, c->part.etag, sizeof(c->out->etag));
    }
    if (err != S3_OK)
        s3_fs_discard_tmp(c->st, c->part.file_id);
    c->cb(err, c->arg);
    free(c->src_bucket);
    free(c->src_key);
    free(c->bucket);
    free(c->key);
    free(c->upload_id);
    free(c);
}

static enum s3_err apply_pcopy(struct s3_fs_op *op, struct s3_fs_wtxn *w)
{
    struct pcopy_op *c = (struct pcopy_op *)op;
    return s3_fs_part_commit(w, c->bucket, c->key, c->upload_id, &c->part);
}

static enum s3_err upload_exists(struct pcopy_op *c)
{
    MDB_txn *txn;
    struct s3_fs_upload u;
    int rc = mdb_txn_begin(c->st->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return S3_ERR_INTERNAL_ERROR;
    enum s3_err err = find_upload(c->st, txn, c->bucket, c->key, c->upload_id, &u, &rc);
    s3_fs_upload_cleanup(&u);
    mdb_txn_abort(txn);
    return err;
}

/* Copies the range into a new part file, hashing it for the part's etag. */
static void copy_range_hashed(struct pcopy_op *c, struct s3_fs_rec *src)
{
    struct s3_fs_reader rd;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = xmalloc(COPY_BLOCK);
    int fd = -1;
    ASSERT(md != NULL && EVP_DigestInit_ex(md, EVP_md5(), NULL) == 1);
    s3_fs_reader_init(&rd, c->st, &src->loc);
    if (c->len > 0) {
        fd = s3_fs_tmp_create(c->st, &c->part.file_id);
        if (fd < 0)
            c->part.file_id = 0;
    }
    int rc = c->len > 0 && fd < 0 ? -1 : 0;
    for (uint64_t done = 0; done < c->len && rc == 0;) {
        size_t n = c->len - done < COPY_BLOCK ? (size_t)(c->len - done) : COPY_BLOCK;
        rc = s3_fs_reader_pread(&rd, buf, n, c->off + done);
        if (rc == 0)
            rc = s3_fs_write_all(fd, buf, n);
        EVP_DigestUpdate(md, buf, n);
        done += n;
    }
    if (rc == 0 && fd >= 0)
        rc = fdatasync(fd);
    if (rc != 0) {
        log_error(&mpu_log, "copying a part from %s/%s: %s", c->src_bucket, c->src_key,
                  strerror(errno));
        c->err = S3_ERR_INTERNAL_ERROR;
    }
    unsigned char digest[16];
    EVP_DigestFinal_ex(md, digest, NULL);
    hex(digest, 16, c->part.etag);
    c->part.size = c->len;
    if (fd >= 0)
        close(fd);
    s3_fs_reader_cleanup(&rd);
    EVP_MD_CTX_free(md);
    free(buf);
}

static void on_pcopy_work(void *arg)
{
    struct pcopy_op *c = arg;
    c->err = upload_exists(c);
    if (c->err != S3_OK)
        return;
    struct s3_fs_rec src;
    c->err = s3_fs_obj_open(c->st, c->src_bucket, c->src_key, true, &src);
    if (c->err != S3_OK)
        return;
    uint64_t size = src.meta.size;
    if (c->off > size || (c->len != UINT64_MAX && c->len > size - c->off))
        c->err = S3_ERR_INVALID_RANGE;
    else if (c->len == UINT64_MAX)
        c->len = size - c->off;
    if (c->err == S3_OK)
        copy_range_hashed(c, &src);
    s3_fs_pins_release(c->st, &src.loc);
    s3_fs_rec_cleanup(&src);
}

static void on_pcopy_done(void *arg)
{
    struct pcopy_op *c = arg;
    if (c->err != S3_OK)
        finish_pcopy(&c->op);
    else
        s3_fs_commit(c->st, &c->op);
}

void s3_store_part_copy(struct s3_store *st, const char *src_bucket, const char *src_key,
                        uint64_t off, uint64_t len, const char *bucket, const char *key,
                        const char *upload_id, unsigned part_number, struct s3_part_info *out,
                        s3_store_cb *cb, void *arg)
{
    struct pcopy_op *c = xcalloc(1, sizeof(*c));
    c->op.apply = apply_pcopy;
    c->op.finish = finish_pcopy;
    c->st = st;
    c->src_bucket = xstrdup(src_bucket);
    c->src_key = xstrdup(src_key);
    c->bucket = xstrdup(bucket);
    c->key = xstrdup(key);
    c->upload_id = xstrdup(upload_id != NULL ? upload_id : "");
    c->off = off;
    c->len = len;
    c->part.part_number = part_number;
    c->out = out;
    c->cb = cb;
    c->arg = arg;
    if (s3_fs_check_bucket_name(bucket) != S3_OK || s3_fs_check_key(key) != S3_OK ||
        !s3_fs_upload_id_valid(c->upload_id))
        c->err = S3_ERR_NO_SUCH_UPLOAD;
    else if (part_number < 1 || part_number > S3_FS_PART_MAX)
        c->err = S3_ERR_INVALID_ARGUMENT;
    s3_fs_submit(st, c->err == S3_OK ? on_pcopy_work : on_no_work, on_pcopy_done, c);
}

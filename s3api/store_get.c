/* Reading objects from the fs store (GetObject, HeadObject) and CopyObject. A reader pins the
 * files of the record it found, so an overwrite or delete committed meanwhile unlinks them
 * only after the reader lets go: what a GET started with is what it returns. Records and open
 * files come from the loop's caches when they can (store_cache.c), and bodies bound for a
 * socket go out as sendfile segments of data files the store made sure are in memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* A GET of a cached record needs no pool job. Otherwise the lookup job also opens the first
 * data file, reads the object's first bytes (its head) into the record and brings the rest of
 * the first block into the page cache: a small GET costs one pool round trip, and a large one
 * starts at once. The head goes out in the same write as the response headers, so these never
 * travel alone in a small segment ahead of a sendfile'd body: measured on loopback, clients
 * then acknowledged that segment at once, their receive buffers stayed near 300 KiB (5-10 MiB
 * for nginx's corked responses), and the body trickled out window by window from the
 * client's CPU. HEAD_MAX fills the first segment even on loopback (MSS 64 KiB). If the HTTP
 * layer corks responses with file bodies, the head is no longer needed for this. */
#define HEAD_MAX (60u << 10)

/* Memory ranges at least this long go to a socket by reference rather than copied. */
#define REF_MIN 512

struct s3_obj {
    struct s3_store *st;
    struct s3_fs_crec *crec; /* shared with the record cache; immutable */
    bool pinned;             /* its files are pinned (open_data) */
    struct s3_fs_fh *fh;     /* the open file of segment fh_seg (a reference), or NULL */
    size_t fh_seg;
};

struct get_job {
    struct s3_store *st;
    char *bucket;
    char *key;
    bool open_data;
    s3_obj_cb *cb;
    void *arg;
    enum s3_err err;
    uint32_t stamp; /* record cache, when submitted */
    struct s3_fs_crec *crec;
    bool pinned;
    struct s3_fs_fh *fh;
    size_t fh_seg;
    struct s3_obj *obj;
};

static const struct s3_fs_loc *obj_loc(const struct s3_obj *obj)
{
    return &obj->crec->rec.loc;
}

static size_t first_data_seg(const struct s3_fs_loc *loc)
{
    size_t i = 0;
    while (i < loc->n_segs && loc->segs[i].size == 0)
        i++;
    return i;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than its record says */
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Opens the first data file, reads the head and makes the rest of the first block resident.
 * The empty segments before the first data segment hold no bytes, so its file starts at the
 * object's offset 0. */
static int open_first_block(struct get_job *g)
{
    struct s3_fs_crec *c = g->crec;
    size_t i = first_data_seg(&c->rec.loc);
    c->head_read = true;
    if (i == c->rec.loc.n_segs)
        return 0;
    const struct s3_fs_seg *seg = &c->rec.loc.segs[i];
    size_t block = seg->size < S3_FS_READ_MAX ? (size_t)seg->size : S3_FS_READ_MAX;
    g->fh = s3_fs_fh_open(g->st, seg->file_id);
    g->fh_seg = i;
    if (g->fh == NULL)
        return -1;
    c->head_len = block < HEAD_MAX ? block : HEAD_MAX;
    c->head = xmalloc(c->head_len);
    if (pread_all(g->fh->fd, c->head, c->head_len, 0) != 0)
        return -1;
    size_t rest = block - c->head_len;
    if (!s3_fs_fh_resident(g->fh, c->head_len, rest) &&
        s3_fs_fh_make_resident(g->fh, c->head_len, rest) != 0)
        return -1;
    return 0;
}

static void on_get_work(void *arg)
{
    struct get_job *g = arg;
    struct s3_fs_rec rec;
    g->err = s3_fs_obj_open(g->st, g->bucket, g->key, g->open_data, &rec);
    if (g->err != S3_OK)
        return;
    g->crec = s3_fs_crec_new(&rec); /* the loop sees it only once this job is done */
    g->pinned = g->open_data && g->crec->rec.loc.kind == S3_FS_LOC_SEGS;
    /* A missing file is an error of the GET, not one in the middle of its body. */
    if (g->pinned && open_first_block(g) != 0) {
        log_error(&get_log, "opening the data of %s/%s: %s", g->bucket, g->key, strerror(errno));
        g->err = S3_ERR_INTERNAL_ERROR;
        s3_fs_fh_close(g->fh); /* never seen by the loop */
        g->fh = NULL;
        s3_fs_pins_release(g->st, &g->crec->rec.loc);
        g->pinned = false;
    }
}

static struct s3_obj *obj_new(struct s3_store *st, struct s3_fs_crec *crec)
{
    struct s3_obj *obj = xcalloc(1, sizeof(*obj));
    obj->st = st;
    obj->crec = crec;
    return obj;
}

static void on_get_done(void *arg)
{
    struct get_job *g = arg;
    struct s3_obj *obj = g->obj;
    if (obj == NULL && g->err == S3_OK) {
        s3_fs_cache_put(g->st, g->bucket, g->key, g->stamp, g->crec);
        obj = obj_new(g->st, g->crec);
        obj->pinned = g->pinned;
        obj->fh = g->fh;
        obj->fh_seg = g->fh_seg;
        if (g->fh != NULL && g->crec->cached)
            s3_fs_fds_put(g->st, g->fh);
    } else if (obj == NULL) {
        s3_fs_crec_unref(g->crec);
    }
    g->cb(g->err, obj, g->arg);
    free(g->bucket);
    free(g->key);
    free(g);
}

/* A cached record serves a HEAD; a GET of a file-backed object also wants the head that only a
 * GET's lookup reads. */
static bool serves(const struct s3_fs_crec *c, bool open_data)
{
    return !open_data || c->rec.loc.kind != S3_FS_LOC_SEGS || c->head_read;
}

void s3_store_get(struct s3_store *st, const char *bucket, const char *key, bool open_data,
                  s3_obj_cb *cb, void *arg)
{
    struct get_job *g = xcalloc(1, sizeof(*g));
    g->st = st;
    g->cb = cb;
    g->arg = arg;
    struct s3_fs_crec *crec = s3_fs_cache_get(st, bucket, key);
    if (crec != NULL && serves(crec, open_data)) {
        /* Pinned now, on the loop: whatever drops this record commits before its batch is
         * done, and the unlink that follows waits for the pin. */
        g->obj = obj_new(st, crec);
        if (open_data && crec->rec.loc.kind == S3_FS_LOC_SEGS) {
            s3_fs_pins_add(st, &crec->rec.loc);
            g->obj->pinned = true;
        }
        s3_fs_defer(st, on_get_done, g);
        return;
    }
    s3_fs_crec_unref(crec);
    g->bucket = xstrdup(bucket);
    g->key = xstrdup(key);
    g->open_data = open_data;
    g->stamp = s3_fs_cache_stamp(st, bucket, key);
    s3_fs_submit_fast(st, on_get_work, on_get_done, g);
}

const struct s3_obj_meta *s3_obj_meta(const struct s3_obj *obj)
{
    return &obj->crec->rec.meta;
}

/* ---- reading ---- */

/* The part of a read that lies in one segment's file. */
struct piece {
    size_t seg;
    uint64_t in_off; /* offset in the segment's file */
    size_t len;
    struct s3_fs_fh *fh; /* a reference, or NULL until the job opens it */
    bool opened;         /* by the job */
    bool touched;        /* brought into the page cache by the job */
};

/* A read of [off, off+len): the part held in memory (inline bytes or the head) first, then
 * the pieces of files after it. */
struct read_job {
    struct s3_obj *obj;
    uint64_t off;
    size_t len;
    size_t mem_len; /* [off, off+mem_len) is in memory */
    struct evbuffer *out;
    bool send; /* file bytes go out as file segments */
    s3_store_cb *cb;
    void *arg;
    struct piece *pieces;
    size_t n_pieces;
    char *buf;     /* !send: the file bytes read */
    bool appended; /* by read_now(), on the loop */
    enum s3_err err;
};

static void plan_pieces(struct read_job *r)
{
    const struct s3_fs_loc *loc = obj_loc(r->obj);
    uint64_t start = 0, off = r->off + r->mem_len, end = r->off + r->len;
    size_t cap = 0;
    for (size_t i = 0; i < loc->n_segs && off < end; i++) {
        uint64_t seg_end = start + loc->segs[i].size;
        if (off < seg_end) {
            uint64_t n = (end < seg_end ? end : seg_end) - off;
            if (r->n_pieces == cap) {
                cap = cap ? cap * 2 : 2;
                r->pieces = xrealloc(r->pieces, cap * sizeof(*r->pieces));
            }
            r->pieces[r->n_pieces++] =
                (struct piece){.seg = i, .in_off = off - start, .len = (size_t)n};
            off += n;
        }
        start = seg_end;
    }
    if (off < end)
        r->err = S3_ERR_INTERNAL_ERROR; /* the record's segments are shorter than its size */
}

/* A reference to the open file of segment `seg`, from the obj or the fd cache; NULL if none. */
static struct s3_fs_fh *obj_fh(struct s3_obj *obj, size_t seg)
{
    if (obj->fh != NULL && obj->fh_seg == seg) {
        s3_fs_fh_ref(obj->fh);
        return obj->fh;
    }
    struct s3_fs_fh *fh = s3_fs_fds_get(obj->st, obj_loc(obj)->segs[seg].file_id);
    if (fh != NULL) {
        s3_fs_fh_unref(obj->fh);
        s3_fs_fh_ref(fh);
        obj->fh = fh;
        obj->fh_seg = seg;
    }
    return fh;
}

static void on_seg_free(const struct evbuffer_file_segment *seg, int flags, void *arg)
{
    (void)seg;
    (void)flags;
    s3_fs_fh_unref(arg);
}

/* Appends a piece as a file segment: libevent sends it with sendfile(2) (the buffer drains to
 * a socket), keeping the file open until it is sent. Allocation failures abort, as xmalloc's
 * do, so a range is appended whole or not at all. */
static void add_file_piece(struct evbuffer *out, struct piece *p)
{
    ASSERT(p->fh != NULL); /* opened by the loop's caches or by the job */
    struct evbuffer_file_segment *seg = evbuffer_file_segment_new(
        p->fh->fd, (ev_off_t)p->in_off, (ev_off_t)p->len, EVBUF_FS_DISABLE_LOCKING);
    ASSERT(seg != NULL);
    s3_fs_fh_ref(p->fh);
    evbuffer_file_segment_add_cleanup_cb(seg, on_seg_free, p->fh);
    int rc = evbuffer_add_file_segment(out, seg, 0, (ev_off_t)p->len);
    evbuffer_file_segment_free(seg); /* the chain holds it now */
    ASSERT(rc == 0);
    p->fh->st->loop.fds.sendfile_bytes += p->len;
}

static void on_crec_ref_free(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    s3_fs_crec_unref(arg);
}

/* How much of the read the record holds in memory: inline bytes, or the head. */
static size_t mem_part(const struct s3_obj *obj, uint64_t off, size_t len)
{
    const struct s3_fs_crec *c = obj->crec;
    size_t have = c->rec.loc.kind == S3_FS_LOC_INLINE ? c->rec.loc.data_len : c->head_len;
    if (off >= have)
        return 0;
    return len < have - off ? len : (size_t)(have - off);
}

/* Memory bytes are copied, or, on their way to a socket, referenced: the record then lives
 * until they are sent. */
static void add_mem(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out, bool send)
{
    const struct s3_fs_crec *c = obj->crec;
    const unsigned char *p = c->rec.loc.kind == S3_FS_LOC_INLINE ? c->rec.loc.data : c->head;
    int rc;
    if (len == 0)
        return;
    if (!send || len < REF_MIN) {
        rc = evbuffer_add(out, p + off, len);
    } else {
        obj->crec->refs++;
        rc = evbuffer_add_reference(out, p + off, len, on_crec_ref_free, obj->crec);
    }
    ASSERT(rc == 0);
}

static void free_buf(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)(uintptr_t)data);
}

static void read_job_free(struct read_job *r)
{
    for (size_t i = 0; i < r->n_pieces; i++)
        s3_fs_fh_unref(r->pieces[i].fh);
    free(r->pieces);
    free(r->buf);
    free(r);
}

/* Keeps the open file of the range's last piece for the next read. */
static void keep_last_fh(struct read_job *r)
{
    if (r->n_pieces == 0)
        return;
    struct piece *last = &r->pieces[r->n_pieces - 1];
    if (last->fh != NULL && last->fh != r->obj->fh) {
        s3_fs_fh_unref(r->obj->fh);
        s3_fs_fh_ref(last->fh);
        r->obj->fh = last->fh;
        r->obj->fh_seg = last->seg;
    }
}

/* Appends everything: the memory part, then the file pieces (as segments, or the bytes read). */
static void append_all(struct read_job *r)
{
    add_mem(r->obj, r->off, r->mem_len, r->out, r->send);
    if (r->send) {
        for (size_t i = 0; i < r->n_pieces; i++)
            add_file_piece(r->out, &r->pieces[i]);
    } else if (r->buf != NULL) {
        int rc = evbuffer_add_reference(r->out, r->buf, r->len - r->mem_len, free_buf, NULL);
        ASSERT(rc == 0);
        r->buf = NULL;
    }
    keep_last_fh(r);
}

static void on_read_done(void *arg)
{
    struct read_job *r = arg;
    struct s3_store *st = r->obj->st;
    for (size_t i = 0; i < r->n_pieces; i++) {
        struct piece *p = &r->pieces[i];
        if (p->opened && p->fh != NULL && r->obj->crec->cached)
            s3_fs_fds_put(st, p->fh);
        if (p->touched)
            st->loop.fds.touched_bytes += p->len;
    }
    if (r->err == S3_OK && !r->appended)
        append_all(r);
    r->cb(r->err, r->arg);
    read_job_free(r);
}

/* Opens what the loop had no open file for, then either brings the bytes into the page cache
 * (send: the loop's sendfile then copies from memory) or reads them into a buffer. */
static void on_read_work(void *arg)
{
    struct read_job *r = arg;
    const struct s3_fs_loc *loc = obj_loc(r->obj);
    if (!r->send)
        r->buf = xmalloc(r->len - r->mem_len + 1);
    size_t at = 0;
    for (size_t i = 0; i < r->n_pieces; i++) {
        struct piece *p = &r->pieces[i];
        if (p->fh == NULL) {
            p->fh = s3_fs_fh_open(r->obj->st, loc->segs[p->seg].file_id);
            p->opened = true;
            if (p->fh == NULL)
                goto fail;
        }
        if (!r->send) {
            if (pread_all(p->fh->fd, r->buf + at, p->len, p->in_off) != 0)
                goto fail;
            at += p->len;
        } else if (!s3_fs_fh_resident(p->fh, p->in_off, p->len)) {
            p->touched = true;
            if (s3_fs_fh_make_resident(p->fh, p->in_off, p->len) != 0)
                goto fail;
        }
    }
    return;

fail:
    log_error(&get_log, "reading object data: %s", strerror(errno));
    r->err = S3_ERR_INTERNAL_ERROR;
}

static struct read_job *read_job_new(struct s3_obj *obj, uint64_t off, size_t len,
                                     struct evbuffer *out, bool send)
{
    uint64_t size = obj->crec->rec.meta.size;
    if (len > S3_FS_READ_MAX)
        len = S3_FS_READ_MAX;
    if (off >= size)
        len = 0;
    else if (len > size - off)
        len = (size_t)(size - off);
    struct read_job *r = xcalloc(1, sizeof(*r));
    *r = (struct read_job){.obj = obj, .off = off, .len = len, .out = out, .send = send};
    r->mem_len = mem_part(obj, off, len);
    return r;
}

/* Appends the range at once when it needs no pool job (true, r->err set): bytes in memory,
 * and for a send, pieces of open files whose pages are all in the page cache. Otherwise
 * (false) the pieces are planned with whatever open files the loop has, for the job. */
static bool read_now(struct read_job *r)
{
    if (r->mem_len < r->len && obj_loc(r->obj)->kind == S3_FS_LOC_INLINE) {
        r->err = S3_ERR_INTERNAL_ERROR; /* the record's bytes are shorter than its size */
        return true;
    }
    plan_pieces(r);
    if (r->err != S3_OK)
        return true;
    bool ready = r->send || r->n_pieces == 0;
    for (size_t i = 0; i < r->n_pieces; i++) {
        struct piece *p = &r->pieces[i];
        p->fh = obj_fh(r->obj, p->seg);
        if (p->fh == NULL || !r->send || !s3_fs_fh_resident(p->fh, p->in_off, p->len))
            ready = false;
    }
    if (!ready)
        return false;
    append_all(r);
    return true;
}

static void obj_read(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out, bool send,
                     s3_store_cb *cb, void *arg)
{
    struct read_job *r = read_job_new(obj, off, len, out, send);
    r->cb = cb;
    r->arg = arg;
    if (read_now(r)) {
        r->appended = true;
        s3_fs_defer(obj->st, on_read_done, r); /* only the deferral the contract asks for */
        return;
    }
    s3_fs_submit(obj->st, on_read_work, on_read_done, r);
}

void s3_obj_read(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out,
                 s3_store_cb *cb, void *arg)
{
    obj_read(obj, off, len, out, false, cb, arg);
}

void s3_obj_send(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out,
                 s3_store_cb *cb, void *arg)
{
    evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
    obj_read(obj, off, len, out, true, cb, arg);
}

bool s3_obj_send_now(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out)
{
    evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
    struct read_job *r = read_job_new(obj, off, len, out, true);
    bool done = read_now(r) && r->err == S3_OK;
    read_job_free(r);
    return done;
}

struct unlink_job {
    struct s3_store *st;
    struct s3_fs_ids ids;
};

static void on_unlink_work(void *arg)
{
    struct unlink_job *u = arg;
    /* Trash entries stay until the next open clears them: harmless, ids are never reused. */
    for (size_t i = 0; i < u->ids.n; i++)
        s3_fs_file_unlink(u->st, u->ids.v[i]);
}

static void on_unlink_done(void *arg)
{
    struct unlink_job *u = arg;
    s3_fs_ids_cleanup(&u->ids);
    free(u);
}

/* Drops an obj's pins on the loop; the unlinks that waited for them go to the pool. */
static void unpin(struct s3_store *st, const struct s3_fs_loc *loc)
{
    struct s3_fs_ids doomed = {0};
    s3_fs_pins_drop(st, loc, &doomed);
    if (doomed.n == 0)
        return;
    struct unlink_job *u = xmalloc(sizeof(*u));
    *u = (struct unlink_job){st, doomed};
    s3_fs_submit(st, on_unlink_work, on_unlink_done, u);
}

void s3_obj_free(struct s3_obj *obj)
{
    if (obj == NULL)
        return;
    s3_fs_fh_unref(obj->fh);
    if (obj->pinned)
        unpin(obj->st, obj_loc(obj));
    s3_fs_crec_unref(obj->crec);
    free(obj);
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
    if (err == S3_OK)
        err = s3_fs_wtxn_event(w, S3_EV_COPY, c->dst_bucket, c->dst_key, dst.meta.size,
                               dst.meta.etag);
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
                   struct s3_obj_meta *out, const struct s3_event_origin *origin, s3_store_cb *cb,
                   void *arg)
{
    struct copy_op *c = xcalloc(1, sizeof(*c));
    c->op.apply = apply_copy;
    c->op.finish = finish_copy;
    s3_fs_op_set_origin(&c->op, origin);
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

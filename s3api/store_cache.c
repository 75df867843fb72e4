/* The fs store's caches on the loop thread: recently read object records (so a GET of a hot key
 * needs no pool job) and open data files (so its body can go out with sendfile without an open
 * on the pool). Why a cached record can never be stale when a client could tell is explained
 * in store_fs_internal.h; the committer calls s3_fs_cache_batch_done() for it. Reading and
 * sending bodies is in store_get.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define TOUCH_KEY    0u
#define TOUCH_BUCKET 1u
#define MIN_SLOTS    64u
#define TOUCH_CHUNK  (64u << 10)

/* ---- hashing ---- */

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME  1099511628211ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Keys are the clients' choice: the hash is seeded per store, and its bits mixed, so that
 * nobody can line up keys in one chain without seeing the seed. */
static uint64_t key_hash(const struct s3_fs_cache *c, const char *bucket, size_t blen,
                         const char *key, size_t klen)
{
    uint64_t h = fnv(FNV_OFFSET ^ c->seed, bucket, blen + 1); /* with its NUL, as in ckey */
    h = fnv(h, key, klen);
    h ^= h >> 33; /* MurmurHash3's finaliser */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static unsigned stripe_of(uint64_t hash)
{
    return (unsigned)(hash >> 56) % S3_FS_CACHE_STRIPES;
}

/* ---- records: an LRU bounded in bytes ---- */

void s3_fs_cache_init(struct s3_store *st, size_t max_bytes)
{
    struct s3_fs_cache *c = &st->loop.cache;
    memset(c, 0, sizeof(*c));
    c->max_bytes = max_bytes ? max_bytes : S3_FS_CACHE_DEFAULT_BYTES;
    if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)st ^ (uint64_t)s3_fs_now_ms(); /* better than none */
}

static size_t rec_cost(const struct s3_fs_crec *e)
{
    const struct s3_fs_rec *r = &e->rec;
    size_t cost = sizeof(*e) + e->ckey_len + 1 + e->head_len + r->loc.data_len +
                  r->loc.n_segs * sizeof(*r->loc.segs) + r->meta.n_headers * sizeof(struct s3_kv);
    for (size_t i = 0; i < r->meta.n_headers; i++)
        cost += strlen(r->meta.headers[i].name) + strlen(r->meta.headers[i].value) + 2;
    return cost;
}

static void crec_free(struct s3_fs_crec *e)
{
    s3_fs_rec_cleanup(&e->rec);
    free(e->head);
    free(e->ckey);
    free(e);
}

void s3_fs_crec_unref(struct s3_fs_crec *e)
{
    if (e == NULL)
        return;
    ASSERT(e->refs > 0);
    if (--e->refs == 0)
        crec_free(e);
}

static bool ckey_is(const struct s3_fs_crec *e, uint64_t hash, const char *bucket, size_t blen,
                    const char *key, size_t klen)
{
    return e->hash == hash && e->ckey_len == blen + 1 + klen &&
           memcmp(e->ckey, bucket, blen + 1) == 0 && memcmp(e->ckey + blen + 1, key, klen) == 0;
}

static struct s3_fs_crec **slot_of(struct s3_fs_cache *c, uint64_t hash)
{
    return &c->slots[hash & (c->n_slots - 1)];
}

static struct s3_fs_crec *find(struct s3_fs_cache *c, uint64_t hash, const char *bucket,
                               size_t blen, const char *key, size_t klen)
{
    if (c->n_slots == 0)
        return NULL;
    for (struct s3_fs_crec *e = *slot_of(c, hash); e != NULL; e = e->hnext) {
        if (ckey_is(e, hash, bucket, blen, key, klen))
            return e;
    }
    return NULL;
}

static void lru_unlink(struct s3_fs_cache *c, struct s3_fs_crec *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct s3_fs_cache *c, struct s3_fs_crec *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

/* Takes `e` out of the cache and drops the cache's reference. */
static void evict(struct s3_fs_cache *c, struct s3_fs_crec *e)
{
    struct s3_fs_crec **p = slot_of(c, e->hash);
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    e->hnext = NULL;
    lru_unlink(c, e);
    e->cached = false;
    c->bytes -= e->cost;
    c->n--;
    s3_fs_crec_unref(e);
}

static void grow(struct s3_fs_cache *c)
{
    size_t n = c->n_slots ? c->n_slots * 2 : MIN_SLOTS;
    struct s3_fs_crec **slots = xcalloc(n, sizeof(struct s3_fs_crec *));
    for (size_t i = 0; i < c->n_slots; i++) {
        struct s3_fs_crec *e = c->slots[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    }
    free(c->slots);
    c->slots = slots;
    c->n_slots = n;
}

void s3_fs_cache_cleanup(struct s3_store *st)
{
    struct s3_fs_cache *c = &st->loop.cache;
    while (c->tail != NULL)
        evict(c, c->tail);
    free(c->slots);
    c->slots = NULL;
    c->n_slots = 0;
    struct s3_fs_fds *f = &st->loop.fds;
    while (f->tail != NULL)
        s3_fs_fds_forget(st, f->tail->id);
}

struct s3_fs_crec *s3_fs_cache_get(struct s3_store *st, const char *bucket, const char *key)
{
    struct s3_fs_cache *c = &st->loop.cache;
    size_t blen = strlen(bucket), klen = strlen(key);
    struct s3_fs_crec *e = find(c, key_hash(c, bucket, blen, key, klen), bucket, blen, key, klen);
    if (e == NULL) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    lru_unlink(c, e);
    lru_push_front(c, e);
    e->refs++;
    return e;
}

uint32_t s3_fs_cache_stamp(struct s3_store *st, const char *bucket, const char *key)
{
    const struct s3_fs_cache *c = &st->loop.cache;
    return c->gens[stripe_of(key_hash(c, bucket, strlen(bucket), key, strlen(key)))];
}

struct s3_fs_crec *s3_fs_crec_new(struct s3_fs_rec *rec)
{
    struct s3_fs_crec *e = xcalloc(1, sizeof(*e));
    e->rec = *rec;
    memset(rec, 0, sizeof(*rec));
    e->refs = 1;
    return e;
}

void s3_fs_cache_put(struct s3_store *st, const char *bucket, const char *key, uint32_t stamp,
                     struct s3_fs_crec *e)
{
    struct s3_fs_cache *c = &st->loop.cache;
    ASSERT(!e->cached && e->ckey == NULL);
    size_t blen = strlen(bucket), klen = strlen(key);
    e->hash = key_hash(c, bucket, blen, key, klen);
    if (stamp != c->gens[stripe_of(e->hash)]) {
        c->stale++; /* a commit touching this stripe was done meanwhile: maybe stale */
        return;
    }
    e->ckey_len = blen + 1 + klen;
    e->cost = rec_cost(e);
    if (e->cost > c->max_bytes / 8)
        return;
    struct s3_fs_crec *old = find(c, e->hash, bucket, blen, key, klen);
    if (old != NULL)
        evict(c, old);
    e->ckey = xmalloc(e->ckey_len + 1);
    memcpy(e->ckey, bucket, blen + 1);
    memcpy(e->ckey + blen + 1, key, klen + 1);
    if (c->n + 1 > c->n_slots)
        grow(c);
    struct s3_fs_crec **slot = slot_of(c, e->hash);
    e->hnext = *slot;
    *slot = e;
    lru_push_front(c, e);
    e->cached = true;
    e->refs++;
    c->bytes += e->cost;
    c->n++;
    c->inserts++;
    while (c->bytes > c->max_bytes && c->tail != NULL)
        evict(c, c->tail);
}

void s3_fs_cache_forget(struct s3_store *st, const char *bucket, const char *key)
{
    struct s3_fs_cache *c = &st->loop.cache;
    size_t blen = strlen(bucket), klen = strlen(key);
    uint64_t h = key_hash(c, bucket, blen, key, klen);
    c->gens[stripe_of(h)]++;
    struct s3_fs_crec *e = find(c, h, bucket, blen, key, klen);
    if (e != NULL)
        evict(c, e);
}

void s3_fs_cache_forget_bucket(struct s3_store *st, const char *bucket)
{
    struct s3_fs_cache *c = &st->loop.cache;
    size_t blen = strlen(bucket);
    for (unsigned i = 0; i < S3_FS_CACHE_STRIPES; i++)
        c->gens[i]++;
    struct s3_fs_crec *e = c->head, *next;
    for (; e != NULL; e = next) {
        next = e->next;
        if (e->ckey_len > blen && memcmp(e->ckey, bucket, blen + 1) == 0)
            evict(c, e);
    }
}

/* ---- what a batch touched ---- */

void s3_fs_wtxn_touch(struct s3_fs_wtxn *w, const char *bucket, const char *key)
{
    if (w->op == NULL)
        return;
    struct s3_fs_wbuf *b = &w->op->touched;
    size_t blen = strlen(bucket), klen = key != NULL ? strlen(key) : 0;
    ASSERT(blen <= S3_FS_BUCKET_MAX && klen <= S3_FS_KEY_MAX);
    s3_fs_wbuf_u8(b, key != NULL ? TOUCH_KEY : TOUCH_BUCKET);
    s3_fs_wbuf_u16(b, (uint16_t)blen);
    s3_fs_wbuf_bytes(b, bucket, blen);
    s3_fs_wbuf_u16(b, (uint16_t)klen);
    s3_fs_wbuf_bytes(b, key != NULL ? key : "", klen);
}

static void forget_touched(struct s3_store *st, const struct s3_fs_wbuf *touched)
{
    struct s3_fs_rbuf r = {.p = touched->p, .len = touched->len};
    char bucket[S3_FS_BUCKET_MAX + 1], key[S3_FS_KEY_MAX + 1];
    while (r.off < r.len && !r.bad) {
        unsigned kind = s3_fs_rbuf_u8(&r);
        size_t blen = s3_fs_rbuf_u16(&r);
        const unsigned char *b = s3_fs_rbuf_bytes(&r, blen);
        size_t klen = s3_fs_rbuf_u16(&r);
        const unsigned char *k = s3_fs_rbuf_bytes(&r, klen);
        if (r.bad || blen > S3_FS_BUCKET_MAX || klen > S3_FS_KEY_MAX)
            break;
        memcpy(bucket, b, blen);
        bucket[blen] = '\0';
        memcpy(key, k, klen);
        key[klen] = '\0';
        if (kind == TOUCH_BUCKET)
            s3_fs_cache_forget_bucket(st, bucket);
        else
            s3_fs_cache_forget(st, bucket, key);
    }
    ASSERT(!r.bad);
}

void s3_fs_cache_batch_done(struct s3_store *st, struct s3_fs_op *ops)
{
    for (struct s3_fs_op *op = ops; op != NULL; op = op->next) {
        forget_touched(st, &op->touched);
        s3_fs_wbuf_cleanup(&op->touched);
        for (size_t i = 0; i < op->trash.n; i++)
            s3_fs_fds_forget(st, op->trash.v[i]);
    }
}

/* ---- open files ---- */

static unsigned fd_slot(uint64_t id)
{
    return (unsigned)((id * 0x9e3779b97f4a7c15ull) >> 57) % S3_FS_FDS_SLOTS;
}

/* Whether a range is in the page cache is asked with cachestat(2) (Linux 6.5): one call that
 * counts by folio. Older kernels (Debian 12 ships 6.1) answer ENOSYS; then each open file is
 * mapped (never touched, so it costs no RSS) and mincore(2) answers, page by page. */
#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same on every architecture */
#endif
struct fs_cachestat_range {
    uint64_t off;
    uint64_t len;
};
struct fs_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
static atomic_int cachestat_state; /* 0 not tried yet, 1 works, -1 missing */

/* Pages of [off, off+len) in the page cache, or -1. */
static int64_t cachestat_pages(int fd, uint64_t off, uint64_t len)
{
    struct fs_cachestat_range r = {off, len};
    struct fs_cachestat cs;
    if (syscall(__NR_cachestat, fd, &r, &cs, 0) != 0)
        return -1;
    return (int64_t)cs.nr_cache;
}

struct s3_fs_fh *s3_fs_fh_open(struct s3_store *st, uint64_t id)
{
    int fd = s3_fs_file_open(st, id);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    struct s3_fs_fh *fh = xcalloc(1, sizeof(*fh));
    fh->st = st;
    fh->id = id;
    fh->fd = fd;
    fh->size = (uint64_t)sb.st_size;
    fh->refs = 1;
    if (atomic_load(&cachestat_state) == 0)
        atomic_store(&cachestat_state, cachestat_pages(fd, 0, 1) >= 0 ? 1 : -1);
    if ((atomic_load(&cachestat_state) < 0 || st->test.no_cachestat) && sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            fh->map = m;
            fh->map_len = (size_t)sb.st_size;
        }
    }
    return fh;
}

static void on_fh_close_work(void *arg)
{
    struct s3_fs_fh *fh = arg;
    if (fh->map != NULL)
        munmap(fh->map, fh->map_len);
    close(fh->fd); /* the last close of an unlinked file frees it: file-system work */
}

void s3_fs_fh_close(struct s3_fs_fh *fh)
{
    if (fh == NULL)
        return;
    on_fh_close_work(fh);
    free(fh);
}

void s3_fs_fh_ref(struct s3_fs_fh *fh)
{
    fh->refs++;
}

void s3_fs_fh_unref(struct s3_fs_fh *fh)
{
    if (fh == NULL)
        return;
    ASSERT(fh->refs > 0);
    if (--fh->refs == 0)
        s3_fs_submit(fh->st, on_fh_close_work, free, fh);
}

bool s3_fs_fh_resident(const struct s3_fs_fh *fh, uint64_t off, size_t len)
{
    if (len == 0)
        return true;
    if (off > fh->size || len > fh->size - off)
        return false; /* shorter than its record says: the pool job reports it */
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t at = off & ~(pg - 1), end = off + len;
    if (fh->map == NULL) {
        int64_t n = cachestat_pages(fh->fd, off, len);
        return n >= 0 && (uint64_t)n == (end - at + pg - 1) / pg;
    }
    unsigned char vec[256];
    while (at < end) {
        uint64_t n = (end - at + pg - 1) / pg;
        if (n > sizeof(vec))
            n = sizeof(vec);
        if (mincore((char *)fh->map + at, n * pg, vec) != 0)
            return false;
        for (uint64_t i = 0; i < n; i++) {
            if ((vec[i] & 1) == 0)
                return false;
        }
        at += n * pg;
    }
    return true;
}

int s3_fs_fh_make_resident(struct s3_fs_fh *fh, uint64_t off, size_t len)
{
    if (len == 0)
        return 0;
    readahead(fh->fd, (off_t)off, len);
    size_t cap = len < TOUCH_CHUNK ? len : TOUCH_CHUNK;
    char *buf = xmalloc(cap);
    int rc = 0;
    while (len > 0) {
        size_t want = len < cap ? len : cap;
        ssize_t n = pread(fh->fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than its record says */
            rc = -1;
            break;
        }
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    free(buf);
    return rc;
}

static void lru_remove(struct s3_fs_fds *f, struct s3_fs_fh *fh)
{
    if (fh->prev != NULL)
        fh->prev->next = fh->next;
    else
        f->head = fh->next;
    if (fh->next != NULL)
        fh->next->prev = fh->prev;
    else
        f->tail = fh->prev;
    fh->prev = fh->next = NULL;
}

static void fds_unlink(struct s3_fs_fds *f, struct s3_fs_fh *fh)
{
    struct s3_fs_fh **p = &f->slots[fd_slot(fh->id)];
    while (*p != fh)
        p = &(*p)->hnext;
    *p = fh->hnext;
    fh->hnext = NULL;
    lru_remove(f, fh);
    fh->cached = false;
    f->n--;
}

static void fds_push_front(struct s3_fs_fds *f, struct s3_fs_fh *fh)
{
    fh->prev = NULL;
    fh->next = f->head;
    if (f->head != NULL)
        f->head->prev = fh;
    f->head = fh;
    if (f->tail == NULL)
        f->tail = fh;
}

static struct s3_fs_fh *fds_find(struct s3_fs_fds *f, uint64_t id)
{
    struct s3_fs_fh *fh = f->slots[fd_slot(id)];
    while (fh != NULL && fh->id != id)
        fh = fh->hnext;
    return fh;
}

struct s3_fs_fh *s3_fs_fds_get(struct s3_store *st, uint64_t id)
{
    struct s3_fs_fds *f = &st->loop.fds;
    struct s3_fs_fh *fh = fds_find(f, id);
    if (fh == NULL)
        return NULL;
    lru_remove(f, fh);
    fds_push_front(f, fh);
    fh->refs++;
    return fh;
}

void s3_fs_fds_put(struct s3_store *st, struct s3_fs_fh *fh)
{
    struct s3_fs_fds *f = &st->loop.fds;
    if (fh->cached || fds_find(f, fh->id) != NULL)
        return;
    unsigned s = fd_slot(fh->id);
    fh->hnext = f->slots[s];
    f->slots[s] = fh;
    fds_push_front(f, fh);
    fh->cached = true;
    fh->refs++;
    f->n++;
    if (f->n > S3_FS_FDS_MAX) {
        struct s3_fs_fh *old = f->tail;
        fds_unlink(f, old);
        s3_fs_fh_unref(old);
    }
}

void s3_fs_fds_forget(struct s3_store *st, uint64_t id)
{
    struct s3_fs_fds *f = &st->loop.fds;
    struct s3_fs_fh *fh = fds_find(f, id);
    if (fh == NULL)
        return;
    fds_unlink(f, fh);
    s3_fs_fh_unref(fh);
}

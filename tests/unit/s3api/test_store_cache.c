/* The fs store's loop caches (store_cache.c) and the sendfile read path (store_get.c) against a
 * real event loop and disk pool in a temp dir: cache hits without pool jobs, every mutation
 * forgetting what it touched, a lookup racing a commit, the byte bound, sendfile segments
 * byte-identical across part boundaries, and old bytes kept across an overwrite. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/pool.h"
#include "gateway/xmalloc.h"
#include "s3api/store.h"
#include "s3api/store_fs_internal.h"
#include "tests/unit/s3api/store_fixture.h"
#include "tests/unit/tap.h"

#define KIB (1u << 10)
#define MIB (1u << 20)

/* ---- plumbing ---- */

static void store_open(size_t cache_max_bytes)
{
    fixture_store_open((struct s3_store_config){
        .data_dir = data_dir,
        .inline_max_bytes = 64 * KIB,
        .cache_max_bytes = cache_max_bytes,
    });
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static unsigned char *make_data(size_t n, uint32_t seed)
{
    unsigned char *p = xmalloc(n ? n : 1);
    fill(p, n, seed);
    return p;
}

static size_t count_files(const char *sub)
{
    char *path = xasprintf("%s/%s", data_dir, sub);
    size_t n = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strcmp(sub, "objects") == 0) {
            char *s = xasprintf("objects/%s", e->d_name);
            n += count_files(s);
            free(s);
        } else {
            n++;
        }
    }
    if (d != NULL)
        closedir(d);
    free(path);
    return n;
}

static enum s3_err bucket_op(const char *b, bool create)
{
    struct res r = {0};
    if (create)
        s3_store_bucket_create(st, b, on_res, &r);
    else
        s3_store_bucket_delete(st, b, on_res, &r);
    return wait_res(&r);
}

static enum s3_err put_obj(const char *b, const char *key, const char *upload_id, unsigned pn,
                           const unsigned char *data, size_t len, const char *ctype)
{
    struct s3_put *put = upload_id ? s3_put_new_part(st, b, key, upload_id, pn, NULL, NULL)
                                   : s3_put_new(st, b, key, NULL, NULL);
    struct evbuffer *buf = evbuffer_new();
    enum s3_err err = S3_OK;
    for (size_t off = 0; off < len && err == S3_OK;) {
        size_t n = len - off < 256 * KIB ? len - off : 256 * KIB;
        evbuffer_add(buf, data + off, n);
        off += n;
        if (s3_put_write(put, buf) > S3_PUT_HIGH_WATER) {
            struct res r = {0};
            s3_put_on_drain(put, on_res, &r);
            err = wait_res(&r);
        }
    }
    evbuffer_free(buf);
    if (err == S3_OK) {
        struct res r = {0};
        s3_put_flush(put, on_res, &r);
        err = wait_res(&r);
    }
    if (err != S3_OK) {
        s3_put_abort(put);
        return err;
    }
    struct s3_obj_meta m;
    s3_obj_meta_init(&m);
    m.size = len;
    snprintf(m.etag, sizeof(m.etag), "%08x%024x", (unsigned)len, (unsigned)pn);
    s3_obj_meta_add(&m, "content-type", ctype != NULL ? ctype : "application/x-test");
    struct res r = {0};
    s3_put_commit(put, &m, NULL, on_res, &r);
    err = wait_res(&r);
    s3_obj_meta_cleanup(&m);
    return err;
}

static enum s3_err put_data(const char *b, const char *key, const unsigned char *data, size_t len)
{
    return put_obj(b, key, NULL, 0, data, len, NULL);
}

struct get_res {
    bool done;
    enum s3_err err;
    struct s3_obj *obj;
};

static void on_get(enum s3_err err, struct s3_obj *obj, void *arg)
{
    struct get_res *g = arg;
    g->done = true;
    g->err = err;
    g->obj = obj;
}

static enum s3_err get_obj(const char *b, const char *key, bool open_data, struct s3_obj **obj)
{
    struct get_res g = {0};
    s3_store_get(st, b, key, open_data, on_get, &g);
    run_until(&g.done);
    *obj = g.obj;
    return g.err;
}

/* Whether a GET (open_data) or HEAD of b/key is answered from the cache: no pool job, the
 * callback deferred. */
static bool hit(const char *b, const char *key, bool open_data)
{
    uint64_t hits = st->loop.cache.hits;
    unsigned fast = gw_pool_pending(st->fast_pool);
    struct get_res g = {0};
    s3_store_get(st, b, key, open_data, on_get, &g);
    bool no_job = gw_pool_pending(st->fast_pool) == fast;
    bool deferred = !g.done;
    run_until(&g.done);
    s3_obj_free(g.obj);
    return no_job && deferred && st->loop.cache.hits == hits + 1;
}

static bool get_is_hit(const char *b, const char *key)
{
    return hit(b, key, true);
}

static enum s3_err read_range(struct s3_obj *obj, uint64_t off, size_t len, unsigned char *out)
{
    struct evbuffer *b = evbuffer_new();
    enum s3_err err = S3_OK;
    for (size_t got = 0; got < len && err == S3_OK;) {
        size_t n = len - got < MIB ? len - got : MIB;
        struct res r = {0};
        s3_obj_read(obj, off + got, n, b, on_res, &r);
        err = wait_res(&r);
        if (err == S3_OK && evbuffer_get_length(b) != n)
            err = S3_ERR_INTERNAL_ERROR;
        evbuffer_remove(b, out + got, n);
        got += n;
    }
    evbuffer_free(b);
    return err;
}

static bool same_object(const char *b, const char *key, const unsigned char *data, size_t len)
{
    struct s3_obj *obj;
    if (get_obj(b, key, true, &obj) != S3_OK)
        return false;
    unsigned char *p = xmalloc(len ? len : 1);
    bool same = s3_obj_meta(obj)->size == len && read_range(obj, 0, len, p) == S3_OK &&
                memcmp(p, data, len) == 0;
    s3_obj_free(obj);
    free(p);
    return same;
}

static enum s3_err del_key(const char *b, const char *key)
{
    struct res r = {0};
    s3_store_delete(st, b, key, NULL, on_res, &r);
    return wait_res(&r);
}

static const char *ctype_of(const char *b, const char *key)
{
    static char ct[64];
    struct s3_obj *obj;
    if (get_obj(b, key, false, &obj) != S3_OK)
        return NULL;
    snprintf(ct, sizeof(ct), "%s", s3_obj_meta_get(s3_obj_meta(obj), "content-type"));
    s3_obj_free(obj);
    return ct;
}

/* Appends [off, off+len) to `out` with s3_obj_send (blocks of up to 1 MiB, as op_get does). */
static enum s3_err send_range(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out)
{
    enum s3_err err = S3_OK;
    for (size_t got = 0; got < len && err == S3_OK;) {
        size_t n = len - got < MIB ? len - got : MIB;
        size_t before = evbuffer_get_length(out);
        struct res r = {0};
        s3_obj_send(obj, off + got, n, out, on_res, &r);
        err = wait_res(&r);
        if (err == S3_OK && evbuffer_get_length(out) - before != n)
            err = S3_ERR_INTERNAL_ERROR;
        got += n;
    }
    return err;
}

/* Writes `b` to a socket as the HTTP layer does (file segments with sendfile) and returns what
 * comes out of the other end; `b` is left empty. */
static unsigned char *through_socket(struct evbuffer *b, size_t *n)
{
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    size_t want = evbuffer_get_length(b), got = 0;
    unsigned char *p = xmalloc(want + 1);
    bool failed = false;
    while (got < want && !failed) {
        if (evbuffer_get_length(b) > 0 && evbuffer_write(b, sv[0]) < 0 && errno != EAGAIN)
            failed = true;
        ssize_t r = read(sv[1], p + got, want - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || errno != EAGAIN)
            failed = true;
    }
    close(sv[0]);
    close(sv[1]);
    *n = got;
    return p;
}

static bool sends_as(struct s3_obj *obj, uint64_t off, size_t len, const unsigned char *want)
{
    struct evbuffer *b = evbuffer_new();
    size_t n = 0;
    unsigned char *got = NULL;
    bool same = send_range(obj, off, len, b) == S3_OK;
    if (same) {
        got = through_socket(b, &n);
        same = n == len && memcmp(got, want, len) == 0;
    }
    free(got);
    evbuffer_free(b);
    return same;
}

/* Caches a made-up inline record for b/key, as a lost invalidation would leave one. */
static void plant(const char *b, const char *key)
{
    struct s3_fs_rec rec = {0};
    rec.meta.size = 3;
    rec.loc.data = xmalloc(3);
    memcpy(rec.loc.data, "old", 3);
    rec.loc.data_len = 3;
    struct s3_fs_crec *c = s3_fs_crec_new(&rec);
    s3_fs_cache_put(st, b, key, s3_fs_cache_stamp(st, b, key), c);
    s3_fs_crec_unref(c);
}

static bool cache_holds_bucket(const char *b)
{
    size_t blen = strlen(b);
    for (struct s3_fs_crec *e = st->loop.cache.head; e != NULL; e = e->next) {
        if (e->ckey_len > blen && memcmp(e->ckey, b, blen + 1) == 0)
            return true;
    }
    return false;
}

/* The file id of bucket/key's first segment, read from the index as the store would. */
static uint64_t file_id_of(const char *b, const char *key)
{
    struct s3_fs_rec rec;
    uint64_t id = 0;
    if (s3_fs_obj_open(st, b, key, false, &rec) == S3_OK && rec.loc.kind == S3_FS_LOC_SEGS &&
        rec.loc.n_segs > 0)
        id = rec.loc.segs[0].file_id;
    s3_fs_rec_cleanup(&rec);
    return id;
}

static bool fd_cached(uint64_t id)
{
    struct s3_fs_fh *fh = s3_fs_fds_get(st, id);
    s3_fs_fh_unref(fh);
    return fh != NULL;
}

/* ---- tests ---- */

static void test_cache_answers_repeated_gets_on_the_loop(void)
{
    unsigned char *small = make_data(1000, 1), *big = make_data(300 * KIB, 2);
    is_int(put_data("b1", "small", small, 1000), S3_OK, "put an inline object");
    is_int(put_data("b1", "big", big, 300 * KIB), S3_OK, "put a file object");
    ok(!get_is_hit("b1", "small"), "the first GET looks the key up on the pool");
    ok(get_is_hit("b1", "small"), "the second is answered from the cache, deferred");
    ok(same_object("b1", "small", small, 1000), "and reads the same bytes");
    ok(!hit("b1", "big", false), "a file object: a HEAD looks it up");
    ok(hit("b1", "big", false), "the next HEAD is answered from the cache");
    ok(!get_is_hit("b1", "big"), "a GET looks it up again, to read its head");
    ok(get_is_hit("b1", "big"), "then GETs are answered from the cache");
    ok(hit("b1", "big", false), "and so are HEADs");
    ok(same_object("b1", "big", big, 300 * KIB), "and reads the same bytes");
    struct s3_obj *obj;
    is_int(get_obj("b1", "nothing", true, &obj), S3_ERR_NO_SUCH_KEY, "a missing key");
    is_int(get_obj("b1", "nothing", true, &obj), S3_ERR_NO_SUCH_KEY, "is missing again");
    free(small);
    free(big);
}

static void test_cache_forgets_overwrites_and_deletes(void)
{
    unsigned char *a = make_data(200 * KIB, 3), *b = make_data(200 * KIB, 4);
    is_int(put_data("b1", "ow", a, 100), S3_OK, "put an inline version");
    ok(same_object("b1", "ow", a, 100), "read it (cached)");
    is_int(put_data("b1", "ow", b, 200), S3_OK, "overwrite with another inline version");
    ok(same_object("b1", "ow", b, 200), "the new version is read");
    is_int(put_data("b1", "ow", a, 200 * KIB), S3_OK, "overwrite with a file version");
    ok(same_object("b1", "ow", a, 200 * KIB), "the file version is read");
    is_int(put_data("b1", "ow", b, 200 * KIB), S3_OK, "overwrite with another file version");
    ok(same_object("b1", "ow", b, 200 * KIB), "that one is read");

    is_int(del_key("b1", "ow"), S3_OK, "delete it");
    struct s3_obj *obj;
    is_int(get_obj("b1", "ow", true, &obj), S3_ERR_NO_SUCH_KEY, "a deleted key is gone");

    is_int(put_data("b1", "m1", a, 10), S3_OK, "put m1");
    is_int(put_data("b1", "m2", a, 70 * KIB), S3_OK, "put m2");
    ok(same_object("b1", "m1", a, 10) && same_object("b1", "m2", a, 70 * KIB), "both cached");
    const char *keys[] = {"m1", "m2"};
    enum s3_err errs[2];
    struct res r = {0};
    s3_store_delete_many(st, "b1", keys, 2, errs, NULL, on_res, &r);
    is_int(wait_res(&r), S3_OK, "delete both at once");
    is_int(get_obj("b1", "m1", true, &obj), S3_ERR_NO_SUCH_KEY, "m1 is gone");
    is_int(get_obj("b1", "m2", true, &obj), S3_ERR_NO_SUCH_KEY, "m2 is gone");
    free(a);
    free(b);
}

static enum s3_err copy(const char *sk, const char *dk, const char *ctype)
{
    struct s3_obj_meta m, out;
    s3_obj_meta_init(&m);
    s3_obj_meta_init(&out);
    s3_obj_meta_add(&m, "content-type", ctype);
    struct res r = {0};
    s3_store_copy(st, "b1", sk, "b1", dk, &m, &out, NULL, on_res, &r);
    enum s3_err err = wait_res(&r);
    s3_obj_meta_cleanup(&m);
    s3_obj_meta_cleanup(&out);
    return err;
}

struct upload_res {
    bool done;
    enum s3_err err;
    char id[64];
};

static void on_upload(enum s3_err err, const char *id, void *arg)
{
    struct upload_res *u = arg;
    u->done = true;
    u->err = err;
    if (id != NULL)
        snprintf(u->id, sizeof(u->id), "%s", id);
}

/* Uploads `data` as parts of the given sizes and completes them onto b/key. */
static enum s3_err multipart(const char *b, const char *key, const unsigned char *data,
                             const size_t *sizes, size_t n)
{
    struct s3_obj_meta *m = xmalloc(sizeof(*m));
    s3_obj_meta_init(m);
    s3_obj_meta_add(m, "content-type", "video/mp4");
    struct upload_res u = {0};
    s3_store_mpu_create(st, b, key, m, on_upload, &u);
    free(m); /* its contents were taken over */
    run_until(&u.done);
    if (u.err != S3_OK)
        return u.err;
    struct s3_part_ref *refs = xcalloc(n, sizeof(*refs));
    enum s3_err err = S3_OK;
    for (size_t i = 0, off = 0; i < n && err == S3_OK; off += sizes[i++]) {
        err = put_obj(b, key, u.id, (unsigned)i + 1, data + off, sizes[i], NULL);
        refs[i].part_number = (unsigned)i + 1;
        snprintf(refs[i].etag, sizeof(refs[i].etag), "%08x%024x", (unsigned)sizes[i],
                 (unsigned)i + 1);
    }
    if (err == S3_OK) {
        struct s3_obj_meta out;
        s3_obj_meta_init(&out);
        struct res r = {0};
        s3_store_mpu_complete(st, b, key, u.id, refs, n, &out, NULL, on_res, &r);
        err = wait_res(&r);
        s3_obj_meta_cleanup(&out);
    }
    free(refs);
    return err;
}

static void test_cache_forgets_copies_and_completions(void)
{
    unsigned char *a = make_data(100 * KIB, 5), *b = make_data(100 * KIB, 6);
    is_int(put_data("b1", "csrc", a, 100 * KIB), S3_OK, "put a source");
    is_int(put_data("b1", "cdst", b, 50), S3_OK, "put a destination");
    ok(same_object("b1", "cdst", b, 50), "the destination is cached");
    is_int(copy("csrc", "cdst", "text/copied"), S3_OK, "copy onto the destination");
    ok(same_object("b1", "cdst", a, 100 * KIB), "the copy's bytes are read");
    is_str(ctype_of("b1", "cdst"), "text/copied", "with the copy's headers");
    is_int(copy("cdst", "cdst", "text/again"), S3_OK, "copy onto itself");
    is_str(ctype_of("b1", "cdst"), "text/again", "the new headers are read");

    is_int(put_data("b1", "mpk", b, 20), S3_OK, "put a small object");
    ok(same_object("b1", "mpk", b, 20), "it is cached");
    size_t one = 100 * KIB;
    is_int(multipart("b1", "mpk", a, &one, 1), S3_OK, "complete an upload onto its key");
    ok(same_object("b1", "mpk", a, 100 * KIB), "the completed object is read");
    is_str(ctype_of("b1", "mpk"), "video/mp4", "with the upload's headers");
    free(a);
    free(b);
}

static void test_cache_forgets_buckets(void)
{
    unsigned char d[100];
    fill(d, sizeof(d), 7);
    is_int(bucket_op("gone", true), S3_OK, "create a bucket");
    is_int(put_data("gone", "k", d, sizeof(d)), S3_OK, "put a key");
    ok(same_object("gone", "k", d, sizeof(d)) && cache_holds_bucket("gone"), "cache it");
    is_int(del_key("gone", "k"), S3_OK, "delete the key");
    ok(!cache_holds_bucket("gone"), "the cache forgot it");
    is_int(bucket_op("gone", false), S3_OK, "delete the bucket");
    struct s3_obj *obj;
    is_int(get_obj("gone", "k", true, &obj), S3_ERR_NO_SUCH_BUCKET, "the bucket is gone");

    /* A record the cache should never hold, as a lost invalidation would leave it. */
    plant("gone", "k");
    ok(cache_holds_bucket("gone"), "(a planted record)");
    is_int(bucket_op("gone", true), S3_OK, "create the bucket again");
    ok(!cache_holds_bucket("gone"), "creating a bucket forgets its records");
    is_int(get_obj("gone", "k", true, &obj), S3_ERR_NO_SUCH_KEY, "the new bucket is empty");
    plant("gone", "k");
    is_int(bucket_op("gone", false), S3_OK, "delete it again");
    ok(!cache_holds_bucket("gone"), "deleting a bucket forgets its records");
}

static void test_cache_lookup_racing_a_commit_is_not_cached(void)
{
    unsigned char *a = make_data(1000, 8), *b = make_data(1000, 9);
    is_int(put_data("b1", "race", a, 1000), S3_OK, "put version A");

    /* A lookup takes its stamp and reads A; B commits before its result reaches the loop. */
    uint32_t stamp = s3_fs_cache_stamp(st, "b1", "race");
    struct s3_fs_rec old;
    is_int(s3_fs_obj_open(st, "b1", "race", false, &old), S3_OK, "the lookup reads A");
    is_int(put_data("b1", "race", b, 1000), S3_OK, "B commits meanwhile");
    uint64_t stale = st->loop.cache.stale;
    struct s3_fs_crec *c = s3_fs_crec_new(&old);
    s3_fs_cache_put(st, "b1", "race", stamp, c);
    ok(!c->cached && st->loop.cache.stale == stale + 1, "A's record is not cached");
    s3_fs_crec_unref(c);
    ok(same_object("b1", "race", b, 1000), "a later GET reads B");
    ok(get_is_hit("b1", "race"), "(from the cache)");

    /* The same race for real, both ways round, many times. */
    bool all = true;
    for (int i = 0; i < 100 && all; i++) {
        const unsigned char *want = i % 2 ? b : a;
        struct get_res g = {0};
        if (i % 3 == 0)
            is_int(put_data("b1", "race", i % 2 ? a : b, 1000), S3_OK, "(uncached again)");
        s3_store_get(st, "b1", "race", true, on_get, &g);
        all = put_data("b1", "race", want, 1000) == S3_OK;
        run_until(&g.done);
        s3_obj_free(g.obj);
        all = all && same_object("b1", "race", want, 1000);
    }
    ok(all, "a GET after each racing commit reads what it committed");
    free(a);
    free(b);
}

static void test_cache_is_bounded(void)
{
    s3_store_close(st);
    store_open(64 * KIB);
    unsigned char d[10 * KIB];
    fill(d, sizeof(d), 11);
    bool all = true;
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof(key), "bound/%02d", i);
        all = all && put_data("b1", key, d, 4 * KIB) == S3_OK && same_object("b1", key, d, 4 * KIB);
    }
    ok(all, "put and read 40 objects of 4 KiB");
    ok(st->loop.cache.bytes <= 64 * KIB, "the cache stays within its 64 KiB");
    ok(st->loop.cache.n > 0 && st->loop.cache.n < 40, "keeping only some of them");
    ok(get_is_hit("b1", "bound/39"), "the last one read is cached");
    ok(!get_is_hit("b1", "bound/00"), "the first one was evicted");
    ok(same_object("b1", "bound/00", d, 4 * KIB), "and still reads from the index");
    is_int(put_data("b1", "bound/big", d, sizeof(d)), S3_OK, "put a 10 KiB object");
    ok(same_object("b1", "bound/big", d, sizeof(d)), "read it");
    ok(!get_is_hit("b1", "bound/big"), "a record over an eighth of the cache is not kept");
    s3_store_close(st);
    store_open(0);
    is_int(st->loop.cache.n, 0, "a reopened store starts empty");
}

static void test_send_matches_across_part_boundaries(void)
{
    size_t sizes[3] = {5 * MIB, 5 * MIB + 17, 1000};
    size_t total = sizes[0] + sizes[1] + sizes[2];
    unsigned char *all = make_data(total, 12);
    is_int(multipart("b1", "movie", all, sizes, 3), S3_OK, "a three-part object");
    struct s3_obj *obj;
    is_int(get_obj("b1", "movie", true, &obj), S3_OK, "get it");
    uint64_t sent = st->loop.fds.sendfile_bytes;
    ok(sends_as(obj, 0, total, all), "sent whole, 1 MiB at a time, it arrives byte-identical");
    is_int(st->loop.fds.sendfile_bytes - sent, total - 60 * KIB,
           "all but the head, kept with the record, went out as file segments");
    ok(sends_as(obj, sizes[0] - 10, 20, all + sizes[0] - 10), "a range across the first boundary");
    ok(sends_as(obj, sizes[0] - 100, MIB, all + sizes[0] - 100), "a 1 MiB read across it");
    ok(sends_as(obj, sizes[0] + sizes[1] - 5, 1005, all + sizes[0] + sizes[1] - 5),
       "a range across the second boundary, to the end");
    ok(sends_as(obj, total - 1, 1, all + total - 1), "the last byte");
    s3_obj_free(obj);

    /* Hot now: open files cached, pages in memory, so every block goes out at once. */
    is_int(get_obj("b1", "movie", true, &obj), S3_OK, "get it again (cached)");
    uint64_t touched = st->loop.fds.touched_bytes;
    struct evbuffer *b = evbuffer_new();
    bool now = true;
    for (size_t off = 0; off < total && now; off += MIB)
        now = s3_obj_send_now(obj, off, MIB, b);
    ok(now, "every block is appended without a pool job");
    is_int(st->loop.fds.touched_bytes, touched, "none had to be read in");
    size_t n = 0;
    unsigned char *got = through_socket(b, &n);
    ok(n == total && memcmp(got, all, total) == 0, "and they arrive byte-identical");
    free(got);
    evbuffer_free(b);
    sent = st->loop.fds.sendfile_bytes;
    ok(sends_as(obj, 100, 1000, all + 100), "a range in the head arrives the same");
    is_int(st->loop.fds.sendfile_bytes, sent, "from memory");
    ok(sends_as(obj, 60 * KIB - 10, 20, all + 60 * KIB - 10), "a range across the head's end");
    is_int(st->loop.fds.sendfile_bytes - sent, 10, "half of it from the file");
    s3_obj_free(obj);

    unsigned char d[4000];
    fill(d, sizeof(d), 13);
    is_int(put_data("b1", "inl", d, sizeof(d)), S3_OK, "an inline object");
    is_int(get_obj("b1", "inl", true, &obj), S3_OK, "get it");
    ok(sends_as(obj, 0, sizeof(d), d), "sent by reference, it arrives the same");
    ok(sends_as(obj, 100, 10, d + 100), "a short range is copied, and arrives the same");
    b = evbuffer_new();
    ok(s3_obj_send_now(obj, 0, sizeof(d), b), "inline bytes need no callback");
    s3_obj_free(obj);
    got = through_socket(b, &n); /* the buffer outlives the obj: it holds the record */
    ok(n == sizeof(d) && memcmp(got, d, n) == 0, "and outlive the obj");
    free(got);
    evbuffer_free(b);
    free(all);
}

static void test_send_with_mincore(void)
{
    s3_store_close(st);
    store_open(0);
    st->test.no_cachestat = true;
    size_t n = 2 * MIB + 3;
    unsigned char *d = make_data(n, 16);
    is_int(put_data("b1", "mc", d, n), S3_OK, "a file object");
    struct s3_obj *obj;
    is_int(get_obj("b1", "mc", true, &obj), S3_OK, "get it, asking mincore rather than cachestat");
    struct s3_fs_fh *fh = s3_fs_fds_get(st, file_id_of("b1", "mc"));
    ok(fh != NULL && fh->map != NULL, "its open file is mapped for mincore");
    s3_fs_fh_unref(fh);
    ok(sends_as(obj, 0, n, d), "it is sent byte-identical");
    ok(sends_as(obj, MIB - 1, MIB + 4, d + MIB - 1), "and so is a range");
    struct evbuffer *b = evbuffer_new();
    ok(s3_obj_send_now(obj, MIB, MIB, b), "hot pages go out at once");
    evbuffer_free(b);
    s3_obj_free(obj);
    settle();
    s3_store_close(st);
    store_open(0);
    free(d);
}

static void test_send_keeps_old_bytes_across_an_overwrite(void)
{
    size_t n = 3 * MIB;
    unsigned char *a = make_data(n, 14), *b = make_data(n, 15);
    size_t files = count_files("objects");
    is_int(put_data("b1", "keep", a, n), S3_OK, "put version A");
    uint64_t id_a = file_id_of("b1", "keep");
    struct s3_obj *cold, *hot;
    is_int(get_obj("b1", "keep", true, &cold), S3_OK, "a reader looks A up");
    ok(get_is_hit("b1", "keep"), "A's record is cached");
    is_int(get_obj("b1", "keep", true, &hot), S3_OK, "a second reader gets it from the cache");
    ok(fd_cached(id_a), "A's file is open in the fd cache");
    struct evbuffer *early = evbuffer_new();
    is_int(send_range(cold, 0, MIB, early), S3_OK, "the first reader queues A's first MiB");

    is_int(put_data("b1", "keep", b, n), S3_OK, "overwrite with B");
    ok(!fd_cached(id_a), "the fd cache let A's file go");
    ok(same_object("b1", "keep", b, n), "new readers see B");
    is_int(del_key("b1", "keep"), S3_OK, "then delete the key");
    settle();
    is_int(count_files("objects"), files + 1, "A's file waits for its readers");

    ok(sends_as(cold, MIB, n - MIB, a + MIB), "the first reader sends the rest of A");
    ok(sends_as(hot, 0, n, a), "the cached reader sends all of A");
    ok(!fd_cached(id_a), "reopening A's file did not put it back in the fd cache");
    s3_obj_free(cold);
    s3_obj_free(hot);
    settle();
    is_int(count_files("objects"), files, "A's file is unlinked with its last reader");
    size_t got_n = 0;
    unsigned char *got = through_socket(early, &got_n);
    ok(got_n == MIB && memcmp(got, a, MIB) == 0, "bytes queued before still send A");
    free(got);
    evbuffer_free(early);
    settle();
    free(a);
    free(b);
}

int main(void)
{
    fixture_init("cache");
    store_open(0);
    is_int(bucket_op("b1", true), S3_OK, "create a bucket");

    subtest(test_cache_answers_repeated_gets_on_the_loop);
    subtest(test_cache_forgets_overwrites_and_deletes);
    subtest(test_cache_forgets_copies_and_completions);
    subtest(test_cache_forgets_buckets);
    subtest(test_cache_lookup_racing_a_commit_is_not_cached);
    subtest(test_cache_is_bounded);
    subtest(test_send_matches_across_part_boundaries);
    subtest(test_send_with_mincore);
    subtest(test_send_keeps_old_bytes_across_an_overwrite);

    fixture_fini();
    return done_testing();
}

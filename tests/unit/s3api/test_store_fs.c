/* The embedded fs store against a real event loop and disk pool in a temp dir: buckets,
 * inline and file objects, overwrite under a reader, deletes, copies, listings (long keys
 * included), multipart, reopening, aborts, crash recovery and group commit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>

#include "gateway/pool.h"
#include "gateway/xmalloc.h"
#include "s3api/store.h"
#include "s3api/store_fs_internal.h"
#include "tests/unit/s3api/store_fixture.h"
#include "tests/unit/tap.h"

#define MIB (1u << 20)

static unsigned upload_age_s;

/* ---- plumbing ---- */

static void store_open(void)
{
    fixture_store_open((struct s3_store_config){
        .data_dir = data_dir,
        .inline_max_bytes = 64 * 1024,
        .upload_max_age_s = upload_age_s,
    });
}

static void store_reopen(void)
{
    s3_store_close(st);
    store_open();
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

static void md5_hex(const void *p, size_t n, char out[33])
{
    unsigned char d[16];
    EVP_Digest(p, n, d, NULL, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
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

/* ---- synchronous wrappers ---- */

static enum s3_err bucket_create(const char *b)
{
    struct res r = {0};
    s3_store_bucket_create(st, b, on_res, &r);
    return wait_res(&r);
}

static enum s3_err bucket_delete(const char *b)
{
    struct res r = {0};
    s3_store_bucket_delete(st, b, on_res, &r);
    return wait_res(&r);
}

static enum s3_err bucket_head(const char *b)
{
    struct res r = {0};
    s3_store_bucket_head(st, b, on_res, &r);
    return wait_res(&r);
}

struct tap {
    uint64_t bytes;
    EVP_MD_CTX *md;
    bool released;
};

static void on_tap(void *arg, const void *data, size_t len)
{
    struct tap *t = arg;
    if (data == NULL && len == 0) {
        ASSERT(!t->released);
        t->released = true;
        return;
    }
    t->bytes += len;
    EVP_DigestUpdate(t->md, data, len);
}

/* Streams `data` into `put` as a client would: 256 KiB at a time, waiting for drain. */
static enum s3_err feed(struct s3_put *put, const unsigned char *data, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    enum s3_err err = S3_OK;
    for (size_t off = 0; off < len && err == S3_OK;) {
        size_t n = len - off < 256 * 1024 ? len - off : 256 * 1024;
        evbuffer_add(b, data + off, n);
        off += n;
        if (s3_put_write(put, b) > S3_PUT_HIGH_WATER) {
            struct res r = {0};
            s3_put_on_drain(put, on_res, &r);
            err = wait_res(&r);
        }
    }
    evbuffer_free(b);
    if (err == S3_OK) {
        struct res r = {0};
        s3_put_flush(put, on_res, &r);
        err = wait_res(&r);
    }
    return err;
}

/* PutObject or UploadPart (upload_id non-NULL); etag (33 bytes) receives the MD5 hex. */
static enum s3_err put_obj(const char *b, const char *key, const char *upload_id, unsigned pn,
                           const unsigned char *data, size_t len, char *etag)
{
    struct tap t = {.md = EVP_MD_CTX_new()};
    EVP_DigestInit_ex(t.md, EVP_md5(), NULL);
    struct s3_put *put = upload_id ? s3_put_new_part(st, b, key, upload_id, pn, on_tap, &t)
                                   : s3_put_new(st, b, key, on_tap, &t);
    enum s3_err err = feed(put, data, len);
    if (err == S3_OK && t.bytes != len)
        err = S3_ERR_BAD_DIGEST;
    struct s3_obj_meta m;
    s3_obj_meta_init(&m);
    m.size = len;
    unsigned char d[16];
    EVP_DigestFinal_ex(t.md, d, NULL);
    for (int i = 0; i < 16; i++)
        snprintf(m.etag + 2 * i, 3, "%02x", d[i]);
    if (etag != NULL)
        memcpy(etag, m.etag, 33);
    s3_obj_meta_add(&m, "content-type", "application/x-test");
    struct res r = {0};
    if (err == S3_OK) {
        s3_put_commit(put, &m, NULL, on_res, &r);
        ok(m.headers == NULL, "commit takes the meta over");
        err = wait_res(&r);
    } else {
        s3_put_abort(put);
    }
    settle();
    ok(t.released, "the tap is released once");
    s3_obj_meta_cleanup(&m);
    EVP_MD_CTX_free(t.md);
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
    ok((g.err == S3_OK) == (g.obj != NULL), "an object exactly on success");
    return g.err;
}

static enum s3_err read_range(struct s3_obj *obj, uint64_t off, size_t len, unsigned char *out)
{
    struct evbuffer *b = evbuffer_new();
    enum s3_err err = S3_OK;
    size_t got = 0;
    while (got < len && err == S3_OK) {
        size_t n = len - got < MIB ? len - got : MIB;
        struct res r = {0};
        s3_obj_read(obj, off + got, n, b, on_res, &r);
        err = wait_res(&r);
        size_t have = evbuffer_get_length(b);
        if (err == S3_OK && have != n)
            err = S3_ERR_INTERNAL_ERROR;
        evbuffer_remove(b, out + got, have);
        got += have;
    }
    evbuffer_free(b);
    return err;
}

/* Reads a whole object; NULL when missing. */
static unsigned char *read_all(const char *b, const char *key, size_t *len)
{
    struct s3_obj *obj;
    if (get_obj(b, key, true, &obj) != S3_OK)
        return NULL;
    *len = (size_t)s3_obj_meta(obj)->size;
    unsigned char *p = xmalloc(*len ? *len : 1);
    if (read_range(obj, 0, *len, p) != S3_OK) {
        free(p);
        p = NULL;
    }
    s3_obj_free(obj);
    return p;
}

static bool same_object(const char *b, const char *key, const unsigned char *data, size_t len)
{
    size_t n = 0;
    unsigned char *p = read_all(b, key, &n);
    bool same = p != NULL && n == len && memcmp(p, data, len) == 0;
    free(p);
    return same;
}

static enum s3_err del_key(const char *b, const char *key)
{
    struct res r = {0};
    s3_store_delete(st, b, key, NULL, on_res, &r);
    return wait_res(&r);
}

struct list_res {
    bool done;
    enum s3_err err;
    char **items; /* keys and "P:"-marked prefixes, in order */
    size_t n;
    size_t n_keys;
    bool truncated;
    char *next;
};

static void list_res_free(struct list_res *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    free(l->next);
    memset(l, 0, sizeof(*l));
}

static void push_item(struct list_res *l, char *s)
{
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(char *));
    l->items[l->n++] = s;
}

static void on_list(enum s3_err err, struct s3_list_result *res, void *arg)
{
    struct list_res *l = arg;
    l->done = true;
    l->err = err;
    if (err != S3_OK)
        return;
    /* Merge keys and prefixes back into one ordered stream. */
    size_t i = 0, j = 0;
    while (i < res->n_entries || j < res->n_prefixes) {
        bool key = j == res->n_prefixes ||
                   (i < res->n_entries && strcmp(res->entries[i].key, res->prefixes[j]) < 0);
        if (key) {
            push_item(l, xstrdup(res->entries[i++].key));
            l->n_keys++;
        } else {
            push_item(l, xasprintf("P:%s", res->prefixes[j++]));
        }
    }
    l->truncated = res->truncated;
    l->next = res->next_marker ? xstrdup(res->next_marker) : NULL;
}

static void list(const char *b, const char *prefix, const char *delim, const char *after,
                 unsigned max, struct list_res *l)
{
    struct s3_list_params p = {prefix, delim, after, max};
    memset(l, 0, sizeof(*l));
    s3_store_list(st, b, &p, on_list, l);
    run_until(&l->done);
}

static bool items_are(const struct list_res *l, const char *const *want, size_t n)
{
    if (l->n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l->items[i], want[i]) != 0) {
            printf("#   item %zu: got '%s', want '%s'\n", i, l->items[i], want[i]);
            return false;
        }
    }
    return true;
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

static enum s3_err mpu_create(const char *b, const char *key, char id[64])
{
    struct s3_obj_meta *m = xmalloc(sizeof(*m));
    s3_obj_meta_init(m);
    s3_obj_meta_add(m, "content-type", "video/mp4");
    s3_obj_meta_add(m, "x-amz-meta-origin", "edge");
    struct upload_res u = {0};
    s3_store_mpu_create(st, b, key, m, on_upload, &u);
    free(m); /* its contents were taken over */
    run_until(&u.done);
    memcpy(id, u.id, 64);
    return u.err;
}

static enum s3_err mpu_complete(const char *b, const char *key, const char *id,
                                const struct s3_part_ref *parts, size_t n, struct s3_obj_meta *out)
{
    struct res r = {0};
    s3_store_mpu_complete(st, b, key, id, parts, n, out, NULL, on_res, &r);
    return wait_res(&r);
}

static enum s3_err mpu_abort(const char *b, const char *key, const char *id)
{
    struct res r = {0};
    s3_store_mpu_abort(st, b, key, id, on_res, &r);
    return wait_res(&r);
}

struct parts_res {
    bool done;
    enum s3_err err;
    struct s3_part_info parts[16];
    size_t n;
    bool truncated;
    unsigned next;
};

static void on_parts(enum s3_err err, struct s3_parts_result *res, void *arg)
{
    struct parts_res *p = arg;
    p->done = true;
    p->err = err;
    if (err != S3_OK)
        return;
    for (size_t i = 0; i < res->n && i < 16; i++)
        p->parts[i] = res->parts[i];
    p->n = res->n;
    p->truncated = res->truncated;
    p->next = res->next_marker;
}

static enum s3_err list_parts(const char *b, const char *key, const char *id, unsigned marker,
                              unsigned max, struct parts_res *p)
{
    memset(p, 0, sizeof(*p));
    s3_store_mpu_list_parts(st, b, key, id, marker, max, on_parts, p);
    run_until(&p->done);
    return p->err;
}

/* ---- tests ---- */

struct bucket_list_res {
    bool done;
    enum s3_err err;
    char names[8][64];
    size_t n;
};

static void on_bucket_list(enum s3_err err, struct s3_bucket_info *v, size_t n, void *arg)
{
    struct bucket_list_res *l = arg;
    l->done = true;
    l->err = err;
    for (size_t i = 0; i < n && i < 8; i++)
        memcpy(l->names[i], v[i].name, 64);
    l->n = n;
}

static void test_store_buckets_create_list_delete(void)
{
    is_int(bucket_create("b1"), S3_OK, "create a bucket");
    is_int(bucket_create("b1"), S3_ERR_BUCKET_ALREADY_OWNED_BY_YOU, "creating it again");
    is_int(bucket_create("a0"), S3_OK, "create another");
    is_int(bucket_head("b1"), S3_OK, "head finds it");
    is_int(bucket_head("nope"), S3_ERR_NO_SUCH_BUCKET, "head of a missing bucket");

    struct bucket_list_res l = {0};
    s3_store_bucket_list(st, on_bucket_list, &l);
    run_until(&l.done);
    is_int(l.err, S3_OK, "list buckets");
    is_int(l.n, 2, "two buckets");
    is_str(l.names[0], "a0", "sorted by name (1)");
    is_str(l.names[1], "b1", "sorted by name (2)");

    unsigned char d[10] = "0123456789";
    is_int(put_data("a0", "k", d, sizeof(d)), S3_OK, "put into a0");
    is_int(bucket_delete("a0"), S3_ERR_BUCKET_NOT_EMPTY, "a bucket with an object is not empty");
    is_int(del_key("a0", "k"), S3_OK, "delete the object");
    char id[64];
    is_int(mpu_create("a0", "up", id), S3_OK, "start an upload");
    is_int(bucket_delete("a0"), S3_ERR_BUCKET_NOT_EMPTY, "a bucket with an upload is not empty");
    is_int(mpu_abort("a0", "up", id), S3_OK, "abort it");
    is_int(bucket_delete("a0"), S3_OK, "delete the empty bucket");
    is_int(bucket_delete("a0"), S3_ERR_NO_SUCH_BUCKET, "deleting it again");
    is_int(bucket_head("a0"), S3_ERR_NO_SUCH_BUCKET, "it is gone");
    is_int(put_data("a0", "k", d, sizeof(d)), S3_ERR_NO_SUCH_BUCKET, "put into a missing bucket");
    is_int(count_files("tmp"), 0, "a refused put leaves nothing in tmp/");
}

static void test_store_put_get_inline_and_file(void)
{
    size_t small_n = 1000, big_n = 4 * MIB + 123;
    unsigned char *small = make_data(small_n, 1), *big = make_data(big_n, 2);
    size_t files = count_files("objects");
    char etag[33], want[33];
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;

    is_int(put_obj("b1", "small", NULL, 0, small, small_n, etag), S3_OK, "put a small object");
    is_int(count_files("objects"), files, "a small object lives inline: no data file");
    is_int(put_obj("b1", "big", NULL, 0, big, big_n, etag), S3_OK, "put a 4 MiB object");
    md5_hex(big, big_n, want);
    is_str(etag, want, "the tap saw every byte in order");
    is_int(count_files("objects"), files + 1, "a big object has one data file in objects/");
    is_int(count_files("tmp"), 0, "and nothing stays in tmp/");

    struct s3_obj *obj;
    is_int(get_obj("b1", "big", true, &obj), S3_OK, "get it");
    const struct s3_obj_meta *m = s3_obj_meta(obj);
    is_int(m->size, big_n, "size");
    is_str(m->etag, want, "etag");
    ok(m->mtime_ms >= before && m->mtime_ms <= (int64_t)time(NULL) * 1000 + 1000,
       "mtime set at commit");
    is_str(s3_obj_meta_get(m, "content-type"), "application/x-test", "headers kept");
    unsigned char *buf = xmalloc(big_n);
    is_int(read_range(obj, 0, big_n, buf), S3_OK, "read all of it");
    ok(memcmp(buf, big, big_n) == 0, "byte-identical");
    is_int(read_range(obj, MIB - 7, 100, buf), S3_OK, "read a range");
    ok(memcmp(buf, big + MIB - 7, 100) == 0, "the range is right");
    is_int(read_range(obj, big_n - 5, 5, buf), S3_OK, "read the tail");
    ok(memcmp(buf, big + big_n - 5, 5) == 0, "the tail is right");
    s3_obj_free(obj);
    free(buf);

    ok(same_object("b1", "small", small, small_n), "the small object reads back");
    is_int(get_obj("b1", "small", false, &obj), S3_OK, "head the small object");
    md5_hex(small, small_n, want);
    is_str(s3_obj_meta(obj)->etag, want, "its etag");
    s3_obj_free(obj);
    is_int(get_obj("b1", "none", true, &obj), S3_ERR_NO_SUCH_KEY, "a missing key");
    is_int(get_obj("zz", "none", true, &obj), S3_ERR_NO_SUCH_BUCKET, "a missing bucket");
    is_int(put_data("b1", "empty", small, 0), S3_OK, "put an empty object");
    ok(same_object("b1", "empty", small, 0), "it reads back empty");
    free(small);
    free(big);
}

static void test_store_overwrite_keeps_readers_view(void)
{
    size_t n = 3 * MIB;
    unsigned char *a = make_data(n, 3), *b = make_data(n, 4);
    size_t files = count_files("objects");
    is_int(put_data("b1", "ow", a, n), S3_OK, "put version A");
    struct s3_obj *obj;
    is_int(get_obj("b1", "ow", true, &obj), S3_OK, "a reader opens A");
    is_int(put_data("b1", "ow", b, n), S3_OK, "overwrite with B");
    ok(same_object("b1", "ow", b, n), "new readers see B");
    unsigned char *buf = xmalloc(n);
    is_int(read_range(obj, 0, n, buf), S3_OK, "the old reader still reads");
    ok(memcmp(buf, a, n) == 0, "and still sees A");
    is_int(count_files("objects"), files + 2, "A's file waits for its reader");
    s3_obj_free(obj);
    settle();
    is_int(del_key("b1", "zzz-nothing"), S3_OK, "(a commit to flush the old file's bookkeeping)");
    is_int(count_files("objects"), files + 1, "A's file goes with its last reader");
    is_int(put_data("b1", "ow", a, 100), S3_OK, "overwrite with a small object");
    settle();
    is_int(count_files("objects"), files, "the big file is unlinked after the commit");
    ok(same_object("b1", "ow", a, 100), "the small one reads back");
    free(buf);
    free(a);
    free(b);
}

static void test_store_delete_and_delete_many(void)
{
    unsigned char d[2 * 65536];
    fill(d, sizeof(d), 5);
    size_t files = count_files("objects");
    is_int(put_data("b1", "d1", d, sizeof(d)), S3_OK, "put d1 (a file)");
    is_int(put_data("b1", "d2", d, 10), S3_OK, "put d2");
    is_int(put_data("b1", "d3", d, 10), S3_OK, "put d3");
    is_int(del_key("b1", "d1"), S3_OK, "delete d1");
    struct s3_obj *obj;
    is_int(get_obj("b1", "d1", false, &obj), S3_ERR_NO_SUCH_KEY, "d1 is gone");
    settle();
    is_int(count_files("objects"), files, "and so is its data file");
    is_int(del_key("b1", "d1"), S3_OK, "deleting a missing key succeeds");
    is_int(del_key("zz", "d1"), S3_ERR_NO_SUCH_BUCKET, "deleting in a missing bucket");

    const char *keys[] = {"d2", "nothing", "d3"};
    enum s3_err errs[3] = {S3_ERR_INTERNAL_ERROR, S3_ERR_INTERNAL_ERROR, S3_ERR_INTERNAL_ERROR};
    struct res r = {0};
    s3_store_delete_many(st, "b1", keys, 3, errs, NULL, on_res, &r);
    is_int(wait_res(&r), S3_OK, "delete many");
    ok(errs[0] == S3_OK && errs[1] == S3_OK && errs[2] == S3_OK, "every key answered OK");
    is_int(get_obj("b1", "d2", false, &obj), S3_ERR_NO_SUCH_KEY, "d2 is gone");
    is_int(get_obj("b1", "d3", false, &obj), S3_ERR_NO_SUCH_KEY, "d3 is gone");
}

static enum s3_err copy(const char *sb, const char *sk, const char *db, const char *dk,
                        const char *ctype, struct s3_obj_meta *out)
{
    struct s3_obj_meta m;
    s3_obj_meta_init(&m);
    s3_obj_meta_add(&m, "content-type", ctype);
    struct res r = {0};
    s3_store_copy(st, sb, sk, db, dk, &m, out, NULL, on_res, &r);
    ok(m.n_headers == 0, "copy takes the meta over");
    enum s3_err err = wait_res(&r);
    s3_obj_meta_cleanup(&m);
    settle();
    return err;
}

static void test_store_copy_and_copy_onto_self(void)
{
    size_t n = 2 * MIB + 5;
    unsigned char *big = make_data(n, 6);
    char etag[33];
    is_int(put_obj("b1", "src", NULL, 0, big, n, etag), S3_OK, "put the source");
    size_t files = count_files("objects");
    struct s3_obj_meta out;
    s3_obj_meta_init(&out);
    is_int(copy("b1", "src", "b1", "dst", "text/copied", &out), S3_OK, "copy it");
    is_str(out.etag, etag, "the copy has the source's etag");
    ok(out.mtime_ms > 0, "and a fresh mtime");
    is_int(count_files("objects"), files + 1, "a new data file");
    ok(same_object("b1", "dst", big, n), "the copy reads back the same");
    struct s3_obj *obj;
    get_obj("b1", "dst", false, &obj);
    is_str(s3_obj_meta_get(s3_obj_meta(obj), "content-type"), "text/copied", "with new headers");
    s3_obj_free(obj);

    is_int(copy("b1", "src", "b1", "src", "text/replaced", &out), S3_OK, "copy onto itself");
    is_int(count_files("objects"), files + 1, "only the metadata changed: no new file");
    get_obj("b1", "src", false, &obj);
    is_str(s3_obj_meta_get(s3_obj_meta(obj), "content-type"), "text/replaced",
           "its headers are replaced");
    is_str(s3_obj_meta(obj)->etag, etag, "its etag is the same");
    s3_obj_free(obj);
    ok(same_object("b1", "src", big, n), "and so is its data");

    is_int(put_data("b1", "tiny", big, 10), S3_OK, "put a small source");
    is_int(copy("b1", "tiny", "b1", "tiny2", "a/b", &out), S3_OK, "copy an inline object");
    ok(same_object("b1", "tiny2", big, 10), "it reads back");
    is_int(copy("b1", "missing", "b1", "x", "a/b", &out), S3_ERR_NO_SUCH_KEY, "missing source");
    is_int(copy("b1", "src", "zz", "x", "a/b", &out), S3_ERR_NO_SUCH_BUCKET, "missing target");
    is_int(count_files("tmp"), 0, "a failed copy leaves nothing in tmp/");
    s3_obj_meta_cleanup(&out);
    free(big);
}

static void put_keys(const char *b, const char *const *keys, size_t n)
{
    bool all = true;
    for (size_t i = 0; i < n; i++)
        all = all && put_data(b, keys[i], (const unsigned char *)keys[i], strlen(keys[i])) == S3_OK;
    ok(all, "put the keys");
}

static void test_store_list_prefix_delimiter_markers(void)
{
    is_int(bucket_create("ls"), S3_OK, "create a bucket to list");
    const char *keys[] = {"c", "b/2", "a", "b/3/x", "b/1", "d/e"};
    put_keys("ls", keys, 6);
    struct list_res l;

    list("ls", "", NULL, NULL, 1000, &l);
    const char *all[] = {"a", "b/1", "b/2", "b/3/x", "c", "d/e"};
    ok(items_are(&l, all, 6) && !l.truncated, "everything, in order");
    list_res_free(&l);

    list("ls", "b/", NULL, NULL, 1000, &l);
    const char *pre[] = {"b/1", "b/2", "b/3/x"};
    ok(items_are(&l, pre, 3), "a prefix");
    list_res_free(&l);

    list("ls", "", "/", NULL, 1000, &l);
    const char *rolled[] = {"a", "P:b/", "c", "P:d/"};
    ok(items_are(&l, rolled, 4), "a delimiter rolls keys up into common prefixes");
    list_res_free(&l);

    list("ls", "b/", "/", NULL, 1000, &l);
    const char *sub[] = {"b/1", "b/2", "P:b/3/"};
    ok(items_are(&l, sub, 3), "prefix and delimiter");
    list_res_free(&l);

    list("ls", "", NULL, "b/1", 1000, &l);
    const char *after[] = {"b/2", "b/3/x", "c", "d/e"};
    ok(items_are(&l, after, 4), "start after a key");
    list_res_free(&l);

    list("ls", "", "/", NULL, 2, &l);
    const char *page1[] = {"a", "P:b/"};
    ok(items_are(&l, page1, 2) && l.truncated, "max keys counts keys and prefixes");
    is_str(l.next, "b/", "next marker is the last prefix");
    char *next = xstrdup(l.next ? l.next : "");
    list_res_free(&l);
    list("ls", "", "/", next, 2, &l);
    const char *page2[] = {"c", "P:d/"};
    ok(items_are(&l, page2, 2) && !l.truncated, "the next page skips the whole prefix");
    free(next);
    list_res_free(&l);

    list("ls", "", NULL, NULL, 0, &l);
    ok(l.err == S3_OK && l.n == 0 && !l.truncated, "max keys 0 returns nothing");
    list_res_free(&l);

    /* Page one key at a time through everything. */
    char *marker = NULL;
    size_t seen = 0;
    bool in_order = true;
    for (;;) {
        list("ls", "", NULL, marker, 1, &l);
        if (l.n == 1)
            in_order = in_order && seen < 6 && strcmp(l.items[0], all[seen++]) == 0;
        free(marker);
        marker = l.truncated && l.next ? xstrdup(l.next) : NULL;
        list_res_free(&l);
        if (marker == NULL)
            break;
    }
    ok(in_order && seen == 6, "paging one by one visits every key once, in order");

    list("zz", "", NULL, NULL, 10, &l);
    is_int(l.err, S3_ERR_NO_SUCH_BUCKET, "listing a missing bucket");
    list_res_free(&l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_store_list_long_keys_exact_order(void)
{
    is_int(bucket_create("long"), S3_OK, "create a bucket for long keys");
    char *p400 = xmalloc(1025);
    memset(p400, 'x', 400);
    p400[400] = '\0';
    enum { N = 14 };
    char *keys[N];
    keys[0] = xasprintf("%s", p400);  /* exactly 400 */
    keys[1] = xasprintf("%sb", p400); /* shares 400 bytes */
    keys[2] = xasprintf("%sa", p400);
    keys[3] = xasprintf("%.399sy", p400);      /* differs at byte 400 */
    keys[4] = xasprintf("%.399s", p400);       /* 399 bytes */
    keys[5] = xasprintf("%sa%0623d", p400, 7); /* 1024 bytes */
    keys[6] = xasprintf("%sa%0623d", p400, 3); /* 1024 bytes */
    keys[7] = xasprintf("%sd/1", p400);        /* a common prefix past 400 bytes */
    keys[8] = xasprintf("%sd/2", p400);
    keys[9] = xasprintf("%se", p400);
    keys[10] = xasprintf("%s\xff", p400); /* high bytes sort last */
    keys[11] = xasprintf("%sa\x01", p400);
    keys[12] = xasprintf("%sa%0622dz", p400, 3);
    keys[13] = xasprintf("%.300sz", p400);
    put_keys("long", (const char *const *)keys, N);
    const char *k1024 = keys[5];
    qsort(keys, N, sizeof(char *), cmp_str);

    struct list_res l;
    list("long", "x", NULL, NULL, 1000, &l);
    ok(items_are(&l, (const char *const *)keys, N), "long keys list in exact byte order");
    list_res_free(&l);

    /* Paging through in threes gives the same order. */
    char *marker = NULL;
    size_t seen = 0;
    bool same = true;
    do {
        list("long", "", NULL, marker, 3, &l);
        for (size_t i = 0; i < l.n; i++)
            same = same && seen < N && strcmp(l.items[i], keys[seen++]) == 0;
        free(marker);
        marker = l.truncated && l.next ? xstrdup(l.next) : NULL;
        list_res_free(&l);
    } while (marker != NULL);
    ok(same && seen == N, "paging through long keys keeps the order");

    char *prefix = xasprintf("%s", p400);
    list("long", prefix, "/", NULL, 1000, &l);
    bool found_cp = false;
    for (size_t i = 0; i < l.n; i++) {
        char *want = xasprintf("P:%sd/", p400);
        found_cp = found_cp || strcmp(l.items[i], want) == 0;
        free(want);
    }
    ok(found_cp && l.n == 10 && l.n_keys == 9, "a common prefix longer than 400 bytes rolls up");
    list_res_free(&l);
    free(prefix);

    bool each = true;
    for (size_t i = 0; i < N; i++)
        each =
            each && same_object("long", keys[i], (const unsigned char *)keys[i], strlen(keys[i]));
    ok(each, "every long key reads back its own object");
    is_int(del_key("long", k1024), S3_OK, "delete one 1024-byte key of a shared group");
    list("long", "", NULL, NULL, 1000, &l);
    ok(l.n == N - 1, "only that one is gone");
    list_res_free(&l);
    char *too_long = xmalloc(1026);
    memset(too_long, 'k', 1025);
    too_long[1025] = '\0';
    is_int(put_data("long", too_long, (const unsigned char *)"abc", 3), S3_ERR_KEY_TOO_LONG,
           "a key over 1024 bytes is refused");
    free(too_long);
    for (size_t i = 0; i < N; i++)
        free(keys[i]);
    free(p400);
}

static void test_store_keys_never_reach_the_file_system(void)
{
    const char *keys[] = {"../x", "//a", "a/../../etc", "/etc/passwd", "..", ".", "tmp/../../y"};
    unsigned char big[70000];
    fill(big, sizeof(big), 9);
    bool all = true;
    for (size_t i = 0; i < 7; i++)
        all = all && put_data("b1", keys[i], big, sizeof(big)) == S3_OK;
    ok(all, "put odd keys (as data files)");
    bool each = true;
    for (size_t i = 0; i < 7; i++)
        each = each && same_object("b1", keys[i], big, sizeof(big));
    ok(each, "they read back");
    DIR *d = opendir(root);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    is_int(n, 1, "nothing appeared beside the data dir");
    char *x = xasprintf("%s/x", data_dir);
    ok(access(x, F_OK) != 0, "no file named by a key inside it either");
    free(x);
    for (size_t i = 0; i < 7; i++)
        del_key("b1", keys[i]);
}

static void test_store_multipart(void)
{
    is_int(bucket_create("mp"), S3_OK, "create a bucket for uploads");
    char id[64], e1[33], e2[33], e3[33];
    size_t n1 = 5 * MIB, n2 = 5 * MIB + 17, n3 = 1000, total = n1 + n2 + n3;
    unsigned char *all = make_data(total, 10);
    is_int(mpu_create("mp", "movie", id), S3_OK, "create an upload");
    is_int(strlen(id), 32, "its id is 32 hex digits");
    is_int(put_obj("mp", "movie", id, 1, all, n1, e1), S3_OK, "upload part 1");
    is_int(put_obj("mp", "movie", id, 2, all + n1, n2, e2), S3_OK, "upload part 2");
    is_int(put_obj("mp", "movie", id, 3, all + n1 + n2, n3, e3), S3_OK, "upload part 3");

    struct parts_res p;
    is_int(list_parts("mp", "movie", id, 0, 1000, &p), S3_OK, "list parts");
    ok(p.n == 3 && p.parts[0].size == n1 && p.parts[1].size == n2 && p.parts[2].size == n3,
       "three parts with their sizes");
    is_str(p.parts[1].etag, e2, "with their etags");
    is_int(list_parts("mp", "movie", id, 1, 1, &p), S3_OK, "list parts after 1, max 1");
    ok(p.n == 1 && p.parts[0].part_number == 2 && p.truncated && p.next == 2, "a page of parts");
    is_int(list_parts("mp", "other", id, 0, 10, &p), S3_ERR_NO_SUCH_UPLOAD,
           "the upload belongs to its key");

    struct s3_part_ref refs[3] = {{1, ""}, {2, ""}, {3, ""}};
    memcpy(refs[0].etag, e1, 33);
    memcpy(refs[1].etag, e2, 33);
    snprintf(refs[2].etag, sizeof(refs[2].etag), "\"%s\"", e3); /* quotes are tolerated */
    struct s3_obj_meta out;
    s3_obj_meta_init(&out);
    size_t files = count_files("objects");
    is_int(mpu_complete("mp", "movie", id, refs, 3, &out), S3_OK, "complete");
    unsigned char md5s[48];
    for (int i = 0; i < 3; i++) {
        const char *e = i == 0 ? e1 : i == 1 ? e2 : e3;
        for (int j = 0; j < 16; j++) {
            unsigned v;
            sscanf(e + 2 * j, "%2x", &v);
            md5s[16 * i + j] = (unsigned char)v;
        }
    }
    char want[48], hex3[33];
    md5_hex(md5s, 48, hex3);
    snprintf(want, sizeof(want), "%s-3", hex3);
    is_str(out.etag, want, "etag is md5 of the part md5s, -3");
    is_int(out.size, total, "size is the sum");
    is_int(out.parts_count, 3, "parts count");
    settle();
    is_int(count_files("objects"), files, "completion copies nothing: parts are the segments");

    struct s3_obj *obj;
    is_int(get_obj("mp", "movie", true, &obj), S3_OK, "get the object");
    is_str(s3_obj_meta_get(s3_obj_meta(obj), "x-amz-meta-origin"), "edge",
           "it has the upload's headers");
    unsigned char *buf = xmalloc(total);
    is_int(read_range(obj, n1 - 10, 20, buf), S3_OK, "read across the first boundary");
    ok(memcmp(buf, all + n1 - 10, 20) == 0, "right bytes");
    is_int(read_range(obj, n1 + n2 - 5, n3 + 5, buf), S3_OK, "read across the second boundary");
    ok(memcmp(buf, all + n1 + n2 - 5, n3 + 5) == 0, "right bytes");
    is_int(read_range(obj, 0, total, buf), S3_OK, "read it all");
    ok(memcmp(buf, all, total) == 0, "byte-identical");
    s3_obj_free(obj);
    is_int(list_parts("mp", "movie", id, 0, 10, &p), S3_ERR_NO_SUCH_UPLOAD, "the upload is gone");
    is_int(mpu_complete("mp", "movie", id, refs, 3, &out), S3_ERR_NO_SUCH_UPLOAD,
           "completing twice");

    /* Validation. */
    char id2[64], s1[33], s2[33];
    is_int(mpu_create("mp", "bad", id2), S3_OK, "another upload");
    is_int(put_obj("mp", "bad", id2, 1, all, MIB, s1), S3_OK, "a 1 MiB part 1");
    is_int(put_obj("mp", "bad", id2, 2, all, MIB, s2), S3_OK, "a 1 MiB part 2");
    struct s3_part_ref bad[2] = {{1, ""}, {2, ""}};
    memcpy(bad[0].etag, s1, 33);
    memcpy(bad[1].etag, s2, 33);
    is_int(mpu_complete("mp", "bad", id2, bad, 2, &out), S3_ERR_ENTITY_TOO_SMALL,
           "a part but the last under 5 MiB");
    struct s3_part_ref rev[2] = {bad[1], bad[0]};
    is_int(mpu_complete("mp", "bad", id2, rev, 2, &out), S3_ERR_INVALID_PART_ORDER,
           "parts out of order");
    struct s3_part_ref missing[1] = {{4, ""}};
    memcpy(missing[0].etag, s1, 33);
    is_int(mpu_complete("mp", "bad", id2, missing, 1, &out), S3_ERR_INVALID_PART,
           "an unknown part");
    struct s3_part_ref wrong[1] = {{2, "0123456789abcdef0123456789abcdef"}};
    is_int(mpu_complete("mp", "bad", id2, wrong, 1, &out), S3_ERR_INVALID_PART, "a wrong etag");
    files = count_files("objects");
    is_int(put_obj("mp", "bad", id2, 2, all, 100, s2), S3_OK, "upload part 2 again");
    settle();
    is_int(count_files("objects"), files, "the new part 2 replaced the old one's file");
    is_int(list_parts("mp", "bad", id2, 0, 10, &p), S3_OK, "list again");
    ok(p.n == 2 && p.parts[1].size == 100, "part 2 is the new one");
    is_int(put_obj("mp", "bad", "0123456789abcdef0123456789abcdef", 1, all, 10, NULL),
           S3_ERR_NO_SUCH_UPLOAD, "a part of an unknown upload");
    is_int(mpu_abort("mp", "bad", id2), S3_OK, "abort");
    settle();
    is_int(count_files("objects"), files - 2, "abort removed the part files");
    is_int(mpu_abort("mp", "bad", id2), S3_ERR_NO_SUCH_UPLOAD, "abort twice");
    is_int(list_parts("mp", "bad", id2, 0, 10, &p), S3_ERR_NO_SUCH_UPLOAD, "aborted: no parts");

    /* Part copy: rebuild "movie" from ranges of itself. */
    char id3[64];
    is_int(mpu_create("mp", "copy", id3), S3_OK, "an upload for part copies");
    struct s3_part_info pi[2];
    struct res r = {0};
    s3_store_part_copy(st, "mp", "movie", 0, n1 + 3, "mp", "copy", id3, 1, &pi[0], on_res, &r);
    is_int(wait_res(&r), S3_OK, "copy a range into part 1 (across a segment boundary)");
    memset(&r, 0, sizeof(r));
    s3_store_part_copy(st, "mp", "movie", n1 + 3, UINT64_MAX, "mp", "copy", id3, 2, &pi[1], on_res,
                       &r);
    is_int(wait_res(&r), S3_OK, "copy the rest into part 2");
    md5_hex(all, n1 + 3, want);
    is_str(pi[0].etag, want, "a copied part's etag is the md5 of its bytes");
    ok(pi[1].size == total - n1 - 3 && pi[1].mtime_ms > 0, "the rest's size and mtime");
    struct s3_part_ref cr[2] = {{1, ""}, {2, ""}};
    memcpy(cr[0].etag, pi[0].etag, 33);
    memcpy(cr[1].etag, pi[1].etag, 33);
    is_int(mpu_complete("mp", "copy", id3, cr, 2, &out), S3_OK, "complete the copied parts");
    ok(same_object("mp", "copy", all, total), "the rebuilt object is the same");
    memset(&r, 0, sizeof(r));
    s3_store_part_copy(st, "mp", "movie", total, 10, "mp", "copy", id3, 1, &pi[0], on_res, &r);
    is_int(wait_res(&r), S3_ERR_NO_SUCH_UPLOAD, "part copy into a finished upload");
    s3_obj_meta_cleanup(&out);
    free(buf);
    free(all);
}

struct uploads_res {
    bool done;
    enum s3_err err;
    char items[8][80];
    size_t n;
    bool truncated;
    char next_key[64];
    char next_id[64];
};

static void on_uploads(enum s3_err err, struct s3_uploads_result *res, void *arg)
{
    struct uploads_res *u = arg;
    u->done = true;
    u->err = err;
    if (err != S3_OK)
        return;
    for (size_t i = 0; i < res->n && u->n < 8; i++)
        snprintf(u->items[u->n++], 80, "%s", res->uploads[i].key);
    for (size_t i = 0; i < res->n_prefixes && u->n < 8; i++)
        snprintf(u->items[u->n++], 80, "P:%s", res->prefixes[i]);
    u->truncated = res->truncated;
    snprintf(u->next_key, 64, "%s", res->next_key_marker ? res->next_key_marker : "");
    snprintf(u->next_id, 64, "%s", res->next_upload_id_marker);
}

static void list_uploads(const char *prefix, const char *delim, const char *km, const char *im,
                         unsigned max, struct uploads_res *u)
{
    memset(u, 0, sizeof(*u));
    s3_store_mpu_list(st, "mp", prefix, delim, km, im, max, on_uploads, u);
    run_until(&u->done);
}

static void test_store_list_uploads(void)
{
    char ids[4][64];
    const char *keys[4] = {"u/b", "v", "u/a", "u/b"};
    for (int i = 0; i < 4; i++)
        mpu_create("mp", keys[i], ids[i]);
    struct uploads_res u;
    list_uploads("", NULL, NULL, NULL, 1000, &u);
    ok(u.err == S3_OK && u.n == 4, "four uploads in progress");
    ok(strcmp(u.items[0], "u/a") == 0 && strcmp(u.items[1], "u/b") == 0 &&
           strcmp(u.items[2], "u/b") == 0 && strcmp(u.items[3], "v") == 0,
       "ordered by key");
    list_uploads("u/", NULL, NULL, NULL, 1000, &u);
    is_int(u.n, 3, "filtered by prefix");
    list_uploads("", "/", NULL, NULL, 1000, &u);
    ok(u.n == 2 && strcmp(u.items[0], "v") == 0 && strcmp(u.items[1], "P:u/") == 0,
       "rolled up by delimiter");
    list_uploads("", NULL, NULL, NULL, 2, &u);
    ok(u.truncated && strcmp(u.next_key, "u/b") == 0 && strlen(u.next_id) == 32,
       "truncated with key and upload id markers");
    char km[64], im[64];
    memcpy(km, u.next_key, 64);
    memcpy(im, u.next_id, 64);
    list_uploads("", NULL, km, im, 2, &u);
    ok(!u.truncated && u.n == 2 && strcmp(u.items[0], "u/b") == 0 && strcmp(u.items[1], "v") == 0,
       "the next page continues after the markers");
    list_uploads("", NULL, "u/b", NULL, 10, &u);
    ok(u.n == 1 && strcmp(u.items[0], "v") == 0, "a key marker alone skips the whole key");
    for (int i = 0; i < 4; i++)
        mpu_abort("mp", keys[i], ids[i]);
}

static void test_store_reopen_keeps_everything(void)
{
    store_reopen();
    is_int(bucket_head("b1"), S3_OK, "the bucket is still there");
    size_t n = 4 * MIB + 123;
    unsigned char *big = make_data(n, 2);
    ok(same_object("b1", "big", big, n), "the file object is still there");
    unsigned char *small = make_data(1000, 1);
    ok(same_object("b1", "small", small, 1000), "the inline object is still there");
    unsigned char *all = make_data(10 * MIB + 1017, 10);
    ok(same_object("mp", "movie", all, 10 * MIB + 1017), "the multipart object is still there");
    struct list_res l;
    list("long", "", NULL, NULL, 1000, &l);
    is_int(l.n, 13, "the long keys are still there");
    list_res_free(&l);
    char id[64], e1[33];
    is_int(mpu_create("mp", "later", id), S3_OK, "an upload before closing");
    is_int(put_obj("mp", "later", id, 1, small, 1000, e1), S3_OK, "with a part");
    store_reopen();
    struct parts_res p;
    is_int(list_parts("mp", "later", id, 0, 10, &p), S3_OK, "the upload survives a reopen");
    is_int(p.n, 1, "with its part");
    mpu_abort("mp", "later", id);
    free(big);
    free(small);
    free(all);
}

static void test_store_abort_leaves_nothing(void)
{
    size_t n = 3 * MIB;
    unsigned char *d = make_data(n, 11);
    struct tap t = {.md = EVP_MD_CTX_new()};
    EVP_DigestInit_ex(t.md, EVP_md5(), NULL);
    struct s3_put *put = s3_put_new(st, "b1", "aborted", on_tap, &t);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, d, n);
    s3_put_write(put, b);
    s3_put_abort(put); /* with a write in flight */
    settle();
    ok(t.released, "the tap is released");
    is_int(count_files("tmp"), 0, "its temp file is removed");
    struct s3_obj *obj;
    is_int(get_obj("b1", "aborted", false, &obj), S3_ERR_NO_SUCH_KEY, "nothing visible");

    /* Abort after the data is written, from inside the flush callback. */
    struct tap t2 = {.md = EVP_MD_CTX_new()};
    EVP_DigestInit_ex(t2.md, EVP_md5(), NULL);
    put = s3_put_new(st, "b1", "aborted", on_tap, &t2);
    evbuffer_add(b, d, n);
    s3_put_write(put, b);
    struct res r = {0};
    s3_put_flush(put, on_res, &r);
    wait_res(&r);
    is_int(count_files("tmp"), 1, "the data sat in tmp/");
    s3_put_abort(put);
    settle();
    ok(t2.released, "released again");
    is_int(count_files("tmp"), 0, "and is removed");
    is_int(get_obj("b1", "aborted", false, &obj), S3_ERR_NO_SUCH_KEY, "still nothing visible");

    /* A short body fails its commit and leaves nothing. */
    struct tap t3 = {.md = EVP_MD_CTX_new()};
    EVP_DigestInit_ex(t3.md, EVP_md5(), NULL);
    put = s3_put_new(st, "b1", "short", on_tap, &t3);
    evbuffer_add(b, d, n);
    s3_put_write(put, b);
    struct s3_obj_meta m;
    s3_obj_meta_init(&m);
    m.size = n + 1;
    memset(&r, 0, sizeof(r));
    s3_put_commit(put, &m, NULL, on_res, &r);
    is_int(wait_res(&r), S3_ERR_INCOMPLETE_BODY, "a size mismatch fails the commit");
    settle();
    ok(t3.released, "the tap is released");
    is_int(count_files("tmp"), 0, "nothing left in tmp/");
    evbuffer_free(b);
    EVP_MD_CTX_free(t.md);
    EVP_MD_CTX_free(t2.md);
    EVP_MD_CTX_free(t3.md);
    free(d);
}

static void test_store_open_removes_uncommitted_temps(void)
{
    s3_store_close(st);
    char *p = xasprintf("%s/tmp/00000000deadbeef", data_dir);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    ok(fd >= 0 && write(fd, "partial", 7) == 7, "leave a temp file as a crash would");
    close(fd);
    store_open();
    ok(access(p, F_OK) != 0, "open removed it");
    free(p);
}

static void test_store_recovers_committed_files_left_in_tmp(void)
{
    size_t n = MIB;
    unsigned char *d = make_data(n, 12);
    st->test.skip_publish = true; /* as if killed right after the commit */
    is_int(put_data("b1", "crashed", d, n), S3_OK, "commit an object");
    is_int(count_files("tmp"), 1, "its file is still in tmp/");
    ok(same_object("b1", "crashed", d, n), "it reads from there");
    s3_store_close(st);
    store_open();
    is_int(count_files("tmp"), 0, "open moved it out of tmp/");
    ok(same_object("b1", "crashed", d, n), "and the object is intact");

    /* A file whose record was dropped but which was not unlinked yet. */
    uint64_t id = atomic_load(&st->next_id) + 1000;
    char name[S3_FS_NAME_LEN];
    s3_fs_file_name(name, id, false);
    char *path = xasprintf("%s/objects/%s", data_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    close(fd);
    MDB_txn *txn;
    unsigned char k[8];
    s3_fs_put_be64(k, id);
    MDB_val key = {8, k}, val = {0, ""};
    ok(mdb_txn_begin(st->env, NULL, 0, &txn) == 0 &&
           mdb_put(txn, st->db_trash, &key, &val, 0) == 0 && mdb_txn_commit(txn) == 0,
       "record a trashed file");
    s3_store_close(st);
    store_open();
    ok(access(path, F_OK) != 0, "open unlinked it");
    free(path);
    free(d);
}

static void test_store_expires_abandoned_uploads(void)
{
    char id[64], e[33];
    unsigned char d[100] = {0};
    is_int(mpu_create("mp", "old", id), S3_OK, "an upload");
    is_int(put_obj("mp", "old", id, 1, d, sizeof(d), e), S3_OK, "with a part file");
    size_t files = count_files("objects");
    s3_store_close(st);
    usleep(1100 * 1000);
    upload_age_s = 1;
    store_open();
    upload_age_s = 0;
    struct parts_res p;
    is_int(list_parts("mp", "old", id, 0, 10, &p), S3_ERR_NO_SUCH_UPLOAD,
           "an upload older than the limit is removed at open");
    is_int(count_files("objects"), files - 1, "with its part files");
    store_reopen();

    /* The periodic sweep, with a small age limit. */
    is_int(mpu_create("mp", "old2", id), S3_OK, "another upload");
    is_int(put_obj("mp", "old2", id, 1, d, sizeof(d), e), S3_OK, "with a part file");
    files = count_files("objects");
    usleep(400 * 1000);
    char young[64];
    is_int(mpu_create("mp", "young", young), S3_OK, "and a young one");
    int64_t age = st->upload_max_age_ms;
    st->upload_max_age_ms = 200;
    s3_fs_sweep(st);
    settle();
    st->upload_max_age_ms = age;
    is_int(list_parts("mp", "old2", id, 0, 10, &p), S3_ERR_NO_SUCH_UPLOAD,
           "the periodic sweep removes an old upload");
    is_int(count_files("objects"), files - 1, "and its part file");
    is_int(mpu_abort("mp", "young", young), S3_OK, "but not a young one");
}

struct conc {
    int n_done;
    int n_ok;
};

struct conc_put {
    struct conc *c;
    struct s3_put *put;
    size_t len;
};

static void on_conc_committed(enum s3_err err, void *arg)
{
    struct conc_put *cp = arg;
    cp->c->n_done++;
    cp->c->n_ok += err == S3_OK;
    free(cp);
}

static void on_conc_flushed(enum s3_err err, void *arg)
{
    struct conc_put *cp = arg;
    struct s3_obj_meta m;
    s3_obj_meta_init(&m);
    m.size = cp->len;
    snprintf(m.etag, sizeof(m.etag), "%s", "00000000000000000000000000000000");
    if (err != S3_OK) {
        s3_put_abort(cp->put);
        on_conc_committed(err, cp);
        return;
    }
    s3_put_commit(cp->put, &m, NULL, on_conc_committed, cp);
}

static void test_store_group_commit_batches_concurrent_puts(void)
{
    enum { N = 200 };
    struct conc c = {0};
    uint64_t commits = atomic_load(&s3_fs_store_stats(st)->commits);
    struct evbuffer *b = evbuffer_new();
    for (int i = 0; i < N; i++) {
        struct conc_put *cp = xcalloc(1, sizeof(*cp));
        char key[32];
        snprintf(key, sizeof(key), "many/%03d", i);
        cp->c = &c;
        cp->len = (size_t)(i % 2 ? 100 : 70000); /* inline and file objects */
        cp->put = s3_put_new(st, "b1", key, NULL, NULL);
        unsigned char d[70000];
        fill(d, cp->len, (uint32_t)i);
        evbuffer_add(b, d, cp->len);
        s3_put_write(cp->put, b);
        s3_put_flush(cp->put, on_conc_flushed, cp);
    }
    evbuffer_free(b);
    while (c.n_done < N)
        event_base_loop(base, EVLOOP_ONCE);
    is_int(c.n_ok, N, "200 concurrent puts all commit");
    uint64_t used = atomic_load(&s3_fs_store_stats(st)->commits) - commits;
    printf("# %d puts took %llu LMDB commits\n", N, (unsigned long long)used);
    ok(used < N, "group commit batched them into fewer LMDB commits");
    struct list_res l;
    list("b1", "many/", NULL, NULL, 1000, &l);
    is_int(l.n, N, "all of them are listed");
    list_res_free(&l);
    unsigned char d[70000];
    fill(d, 70000, 10);
    ok(same_object("b1", "many/010", d, 70000), "and read back");
}

int main(void)
{
    fixture_init("store");
    store_open();

    subtest(test_store_buckets_create_list_delete);
    subtest(test_store_put_get_inline_and_file);
    subtest(test_store_overwrite_keeps_readers_view);
    subtest(test_store_delete_and_delete_many);
    subtest(test_store_copy_and_copy_onto_self);
    subtest(test_store_list_prefix_delimiter_markers);
    subtest(test_store_list_long_keys_exact_order);
    subtest(test_store_keys_never_reach_the_file_system);
    subtest(test_store_multipart);
    subtest(test_store_list_uploads);
    subtest(test_store_reopen_keeps_everything);
    subtest(test_store_abort_leaves_nothing);
    subtest(test_store_open_removes_uncommitted_temps);
    subtest(test_store_recovers_committed_files_left_in_tmp);
    subtest(test_store_expires_abandoned_uploads);
    subtest(test_store_group_commit_batches_concurrent_puts);

    fixture_fini();
    return done_testing();
}

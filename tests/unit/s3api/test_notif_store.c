/* Notification configurations in the fs store (s3api/store_notif.c, store_outbox.c) against a
 * real loop and disk pool in a temp dir: set, read back and removed through the committer; the
 * S3_EV_TEST event and its outbox record in the same commit; every object event carrying its
 * bucket's configuration; DeleteBucket dropping it; all of it surviving a reopen. */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/pool.h"
#include "gateway/xmalloc.h"
#include "s3api/notif.h"
#include "s3api/store.h"
#include "s3api/store_fs_internal.h"
#include "tests/unit/s3api/outbox_fixture.h"
#include "tests/unit/s3api/store_fixture.h"
#include "tests/unit/tap.h"

/* ---- the hook: what it saw, and one outbox record per event ---- */

#define MAX_EVENTS 64

struct seen {
    enum s3_event_kind kind;
    char bucket[64];
    bool has_key;
    char key[64];
    unsigned char notif[512];
    size_t notif_len;
    bool notif_null;
    char origin_rid[40];
};

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static struct seen events[MAX_EVENTS]; /* under hook_mu */
static size_t n_events;                /* under hook_mu */

static void on_event(void *arg, const struct s3_event *ev, struct s3_outbox_txn *tx)
{
    (void)arg;
    pthread_mutex_lock(&hook_mu);
    if (n_events < MAX_EVENTS) {
        struct seen *s = &events[n_events++];
        memset(s, 0, sizeof(*s));
        s->kind = ev->kind;
        snprintf(s->bucket, sizeof(s->bucket), "%s", ev->bucket);
        s->has_key = ev->key != NULL;
        snprintf(s->key, sizeof(s->key), "%s", ev->key ? ev->key : "");
        s->notif_null = ev->notif == NULL;
        s->notif_len = ev->notif_len;
        if (ev->notif != NULL && ev->notif_len <= sizeof(s->notif))
            memcpy(s->notif, ev->notif, ev->notif_len);
        snprintf(s->origin_rid, sizeof(s->origin_rid), "%s", ev->origin->request_id);
    }
    pthread_mutex_unlock(&hook_mu);
    /* notify's way: one record per destination of the configuration, in the event's txn */
    struct s3_notif_config c;
    if (ev->notif != NULL && s3_notif_decode(ev->notif, ev->notif_len, &c) == 0) {
        for (size_t i = 0; i < c.n_rules; i++) {
            char *rec = xasprintf("%s %s %s", ev->kind == S3_EV_TEST ? "TEST" : "EV", ev->bucket,
                                  c.rules[i].arn);
            ASSERT(s3_outbox_add(tx, rec, strlen(rec)) == 0);
            free(rec);
        }
        s3_notif_config_free(&c);
    }
}

static size_t events_now(void)
{
    pthread_mutex_lock(&hook_mu);
    size_t n = n_events;
    pthread_mutex_unlock(&hook_mu);
    return n;
}

/* ---- plumbing ---- */

static void store_open(void)
{
    fixture_store_open((struct s3_store_config){.data_dir = data_dir});
    s3_store_set_event_hook(st, on_event, NULL);
}

/* wait_res, then no pool job or commit of the store left in flight. */
static enum s3_err wait_settled(struct res *r)
{
    enum s3_err e = wait_res(r);
    settle();
    return e;
}

static enum s3_err bucket_delete(const char *b)
{
    struct res r = {0};
    s3_store_bucket_delete(st, b, on_res, &r);
    return wait_settled(&r);
}

static enum s3_err notif_set(const char *b, const void *data, size_t len)
{
    struct res r = {0};
    s3_store_notif_set(st, b, data, len, &origin, on_res, &r);
    return wait_settled(&r);
}

struct get_res {
    bool done;
    enum s3_err err;
    unsigned char data[1024];
    size_t len;
    bool null;
};

static void on_get(enum s3_err err, const void *data, size_t len, void *arg)
{
    struct get_res *g = arg;
    g->done = true;
    g->err = err;
    g->null = data == NULL;
    g->len = len;
    if (data != NULL && len <= sizeof(g->data))
        memcpy(g->data, data, len);
}

static enum s3_err notif_get(const char *b, struct get_res *g)
{
    memset(g, 0, sizeof(*g));
    s3_store_notif_get(st, b, on_get, g);
    run_until(&g->done);
    return g->err;
}

/* An encoded configuration of `n` queue rules on distinct prefixes, ARNs "arn:q:<i>". */
static unsigned char *config(size_t n, size_t *len)
{
    struct s3_notif_config c = {0};
    c.rules = xcalloc(n, sizeof(*c.rules));
    c.n_rules = n;
    for (size_t i = 0; i < n; i++) {
        struct s3_notif_rule *r = &c.rules[i];
        r->kind = S3_NOTIF_QUEUE;
        r->id = xasprintf("id%zu", i);
        r->arn = xasprintf("arn:q:%zu", i);
        r->events = xcalloc(1, sizeof(*r->events));
        r->events[0] = xstrdup("s3:ObjectCreated:*");
        r->n_events = 1;
        r->prefix = xasprintf("p%zu/", i);
    }
    unsigned char *enc = s3_notif_encode(&c, len);
    s3_notif_config_free(&c);
    return enc;
}

/* ---- tests ---- */

static void test_notif_store_set_get_remove(void)
{
    struct get_res g;
    is_int(notif_get("nb", &g), S3_ERR_NO_SUCH_BUCKET, "get: no bucket");
    size_t len;
    unsigned char *enc = config(1, &len);
    size_t e0 = events_now();
    is_int(notif_set("nb", enc, len), S3_ERR_NO_SUCH_BUCKET, "set: no bucket");
    is_int(events_now(), e0, "and no event");
    is_int(s3_store_outbox_count(st), 0, "nor a record");

    is_int(bucket_create("nb"), S3_OK, "bucket");
    is_int(notif_get("nb", &g), S3_OK, "get of a bucket without a configuration");
    ok(g.null && g.len == 0, "is nothing");

    is_int(notif_set("nb", enc, len), S3_OK, "set");
    is_int(notif_get("nb", &g), S3_OK, "get");
    ok(g.len == len && memcmp(g.data, enc, len) == 0, "the bytes set come back");

    is_int(events_now(), e0 + 1, "one event for the set");
    struct seen *t = &events[e0];
    is_int(t->kind, S3_EV_TEST, "S3_EV_TEST");
    is_str(t->bucket, "nb", "its bucket");
    ok(!t->has_key, "no key");
    ok(t->notif_len == len && memcmp(t->notif, enc, len) == 0, "carrying the new configuration");
    is_str(t->origin_rid, "REQ0001", "with the request's origin");
    struct read_res r;
    outbox_read(0, 32, 1u << 20, &r);
    ok(r.n == 1 && strcmp(r.data[0], "TEST nb arn:q:0") == 0,
       "the hook's record committed with the configuration");
    free(enc);

    enc = config(3, &len);
    e0 = events_now();
    is_int(notif_set("nb", enc, len), S3_OK, "replace");
    is_int(notif_get("nb", &g), S3_OK, "get");
    ok(g.len == len && memcmp(g.data, enc, len) == 0, "the new configuration replaced the old");
    is_int(events_now(), e0 + 1, "one test event");
    outbox_read(0, 32, 1u << 20, &r);
    is_int(r.n, 4, "one record per destination of it");
    free(enc);

    e0 = events_now();
    uint64_t n0 = s3_store_outbox_count(st);
    is_int(notif_set("nb", NULL, 0), S3_OK, "set empty");
    is_int(notif_get("nb", &g), S3_OK, "get");
    ok(g.null && g.len == 0, "removed");
    is_int(events_now(), e0, "removing reports no test event");
    is_int(s3_store_outbox_count(st), n0, "and adds no record");
    is_int(notif_set("nb", NULL, 0), S3_OK, "removing what is not there is fine");
    outbox_clear();
}

static void test_notif_store_events_carry_config(void)
{
    is_int(bucket_create("plain"), S3_OK, "a bucket without configuration");
    size_t len;
    unsigned char *enc = config(2, &len);
    is_int(notif_set("nb", enc, len), S3_OK, "configure nb");
    outbox_clear();

    size_t e0 = events_now();
    is_int(put_text("nb", "k1", NULL, "one"), S3_OK, "put in nb");
    is_int(put_text("plain", "k1", NULL, "one"), S3_OK, "put in plain");
    struct res r = {0};
    s3_store_delete(st, "nb", "k1", &origin, on_res, &r);
    is_int(wait_settled(&r), S3_OK, "delete in nb");
    struct s3_obj_meta m, out;
    s3_obj_meta_init(&m);
    s3_obj_meta_init(&out);
    r = (struct res){0};
    s3_store_copy(st, "plain", "k1", "nb", "copied", &m, &out, &origin, on_res, &r);
    is_int(wait_settled(&r), S3_OK, "copy into nb");
    s3_obj_meta_cleanup(&m);
    s3_obj_meta_cleanup(&out);

    is_int(events_now(), e0 + 4, "four events");
    struct seen *put = &events[e0], *plain = &events[e0 + 1], *del = &events[e0 + 2],
                *copy = &events[e0 + 3];
    ok(put->kind == S3_EV_PUT && put->notif_len == len && memcmp(put->notif, enc, len) == 0,
       "the put carries nb's configuration");
    ok(plain->notif_null && plain->notif_len == 0, "a bucket without one: NULL/0");
    ok(del->kind == S3_EV_DELETE && del->notif_len == len && memcmp(del->notif, enc, len) == 0,
       "the delete carries it");
    ok(copy->kind == S3_EV_COPY && copy->notif_len == len && memcmp(copy->notif, enc, len) == 0,
       "the copy carries the destination bucket's");
    struct read_res rr;
    outbox_read(0, 32, 1u << 20, &rr);
    is_int(rr.n, 6, "two records for each of nb's events");
    outbox_clear();

    /* A configuration and an event in one batch: the event sees the configuration set before
     * it in the same txn. */
    unsigned char *one = config(1, &len);
    struct res rs = {0};
    e0 = events_now();
    s3_store_notif_set(st, "plain", one, len, &origin, on_res, &rs);
    struct s3_put *p = s3_put_new(st, "plain", "k2", NULL, NULL);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, "x", 1);
    s3_put_write(p, buf);
    evbuffer_free(buf);
    struct res rf = {0}, rc = {0};
    s3_put_flush(p, on_res, &rf);
    run_until(&rf.done);
    s3_obj_meta_init(&m);
    m.size = 1;
    s3_put_commit(p, &m, &origin, on_res, &rc);
    is_int(wait_settled(&rs), S3_OK, "configure plain");
    is_int(wait_settled(&rc), S3_OK, "and put into it");
    s3_obj_meta_cleanup(&m);
    ok(events_now() == e0 + 2 && events[e0 + 1].kind == S3_EV_PUT &&
           events[e0 + 1].notif_len == len,
       "the put after the set carries the new configuration");
    free(one);
    free(enc);
    outbox_clear();
}

static void test_notif_store_survives_reopen_and_bucket_delete(void)
{
    size_t len;
    unsigned char *enc = config(2, &len);
    is_int(bucket_create("gone"), S3_OK, "bucket");
    is_int(notif_set("gone", enc, len), S3_OK, "configure it");
    s3_store_close(st);
    store_open();
    struct get_res g;
    is_int(notif_get("gone", &g), S3_OK, "get after reopen");
    ok(g.len == len && memcmp(g.data, enc, len) == 0, "the configuration survived");

    is_int(put_text("gone", "k", NULL, "v"), S3_OK, "an object");
    is_int(bucket_delete("gone"), S3_ERR_BUCKET_NOT_EMPTY, "not deleted while not empty");
    is_int(notif_get("gone", &g), S3_OK, "configuration still there");
    ok(g.len == len, "unchanged");
    struct res r = {0};
    s3_store_delete(st, "gone", "k", &origin, on_res, &r);
    is_int(wait_settled(&r), S3_OK, "empty it");
    is_int(bucket_delete("gone"), S3_OK, "delete the bucket");
    is_int(notif_get("gone", &g), S3_ERR_NO_SUCH_BUCKET, "get: no bucket");
    is_int(bucket_create("gone"), S3_OK, "make it again");
    is_int(notif_get("gone", &g), S3_OK, "get");
    ok(g.null && g.len == 0, "the new bucket has no configuration");
    size_t e0 = events_now();
    is_int(put_text("gone", "k", NULL, "v"), S3_OK, "put");
    ok(events_now() == e0 + 1 && events[e0].notif_null, "its events carry none");
    free(enc);
    outbox_clear();
}

int main(void)
{
    fixture_init("notif");
    store_open();

    subtest(test_notif_store_set_get_remove);
    subtest(test_notif_store_events_carry_config);
    subtest(test_notif_store_survives_reopen_and_bucket_delete);

    fixture_fini();
    return done_testing();
}

/* The transactional outbox of the fs store against a real loop and disk pool in a temp dir:
 * the event hook runs for every committed mutation (and only those), its records commit with
 * them, come back in order, are removed through the committer, and survive a reopen; seqs and
 * ids keep increasing across reopens. */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/evp.h>

#include "gateway/pool.h"
#include "gateway/xmalloc.h"
#include "s3api/store.h"
#include "s3api/store_fs_internal.h"
#include "tests/unit/s3api/outbox_fixture.h"
#include "tests/unit/s3api/store_fixture.h"
#include "tests/unit/tap.h"

/* ---- the hook: records what it saw, adds one outbox record per event ---- */

#define MAX_EVENTS 64

struct seen {
    enum s3_event_kind kind;
    char bucket[64];
    char key[64];
    uint64_t size;
    char etag[48];
    uint64_t seq;
    int64_t time_ms;
    struct s3_event_origin origin;
};

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static struct seen events[MAX_EVENTS]; /* under hook_mu */
static size_t n_events;                /* under hook_mu */
static int hook_arg_tag;
static unsigned n_notified; /* s3_store_on_outbox calls (loop) */

static const char *kind_name(enum s3_event_kind k)
{
    switch (k) {
    case S3_EV_PUT:
        return "PUT";
    case S3_EV_POST:
        return "POST";
    case S3_EV_COPY:
        return "COPY";
    case S3_EV_COMPLETE_MPU:
        return "MPU";
    case S3_EV_DELETE:
        return "DELETE";
    case S3_EV_TEST:
        return "TEST";
    }
    return "?";
}

static void on_event(void *arg, const struct s3_event *ev, struct s3_outbox_txn *tx)
{
    ASSERT(arg == &hook_arg_tag);
    pthread_mutex_lock(&hook_mu);
    if (n_events < MAX_EVENTS) {
        struct seen *s = &events[n_events++];
        s->kind = ev->kind;
        snprintf(s->bucket, sizeof(s->bucket), "%s", ev->bucket);
        snprintf(s->key, sizeof(s->key), "%s", ev->key);
        s->size = ev->size;
        snprintf(s->etag, sizeof(s->etag), "%s", ev->etag);
        s->seq = ev->seq;
        s->time_ms = ev->time_ms;
        s->origin = *ev->origin;
    }
    pthread_mutex_unlock(&hook_mu);
    char rec[160];
    int n = snprintf(rec, sizeof(rec), "%s %s/%s", kind_name(ev->kind), ev->bucket, ev->key);
    ASSERT(s3_outbox_add(tx, rec, (size_t)n) == 0);
}

static size_t events_now(void)
{
    pthread_mutex_lock(&hook_mu);
    size_t n = n_events;
    pthread_mutex_unlock(&hook_mu);
    return n;
}

static void on_notified(void *arg)
{
    (void)arg;
    n_notified++;
}

/* ---- plumbing ---- */

static void store_open(void)
{
    fixture_store_open((struct s3_store_config){.data_dir = data_dir});
    s3_store_set_event_hook(st, on_event, &hook_arg_tag);
    s3_store_on_outbox(st, on_notified, NULL);
}

static void store_reopen(void)
{
    s3_store_close(st);
    store_open();
}

/* ---- tests ---- */

static void test_outbox_put_records_read_remove_reopen(void)
{
    unsigned notified = n_notified;
    size_t e0 = events_now();
    is_int(s3_store_outbox_count(st), 0, "the outbox starts empty");
    is_int(bucket_create("b1"), S3_OK, "bucket");
    is_int(events_now(), e0, "creating a bucket reports no event");
    is_int(put_text("b1", "k1", NULL, "hello"), S3_OK, "put k1");
    is_int(put_text("b1", "k2", NULL, "world!"), S3_OK, "put k2");
    is_int(events_now(), e0 + 2, "one event per put");
    struct seen *a = &events[e0], *b = &events[e0 + 1];
    is_int(a->kind, S3_EV_PUT, "kind PUT");
    is_str(a->bucket, "b1", "bucket");
    is_str(a->key, "k1", "key");
    is_int(a->size, 5, "size");
    is_str(a->etag, "5d41402abc4b2a76b9719d911017c592", "etag: hex md5, no quotes");
    ok(a->time_ms > 0, "a commit time");
    is_str(a->origin.principal, "AKIDTEST", "origin: principal");
    is_str(a->origin.source_ip, "192.0.2.7", "origin: source ip");
    is_str(a->origin.request_id, "REQ0001", "origin: request id");
    ok(b->seq > a->seq, "seq increases");
    is_int(s3_store_outbox_count(st), 2, "count: two records");
    ok(n_notified >= notified + 2, "on_outbox called after each batch that added records");

    struct read_res r;
    outbox_read(0, 16, 1u << 20, &r);
    is_int(r.err, 0, "read");
    is_int(r.n, 2, "both records");
    is_str(r.data[0], "PUT b1/k1", "first in commit order");
    is_str(r.data[1], "PUT b1/k2", "then the second");
    ok(r.ids[1] > r.ids[0] && r.ids[0] > 0, "ids increase with commit order");
    uint64_t id1 = r.ids[0], id2 = r.ids[1];

    outbox_read(0, 1, 1u << 20, &r);
    is_int(r.n, 1, "max_n limits the batch");
    outbox_read(0, 16, 1, &r);
    is_int(r.n, 1, "at least one record even above max_bytes");
    outbox_read(0, 16, 12, &r);
    is_int(r.n, 1, "max_bytes limits the batch");
    outbox_read(id1, 16, 1u << 20, &r);
    ok(r.n == 1 && r.ids[0] == id2, "after_id skips what was read");
    outbox_read(id2, 16, 1u << 20, &r);
    is_int(r.n, 0, "nothing after the last");
    outbox_read(UINT64_MAX, 16, 1u << 20, &r);
    is_int(r.n, 0, "nothing after UINT64_MAX");

    notified = n_notified;
    is_int(outbox_remove(&id1, 1), 0, "remove the first");
    is_int(n_notified, notified, "a removal is no reason to notify");
    is_int(s3_store_outbox_count(st), 1, "count follows the removal");
    uint64_t missing = id2 + 1000;
    is_int(outbox_remove(&missing, 1), 0, "removing a missing id is no error");
    is_int(s3_store_outbox_count(st), 1, "and changes no count");
    outbox_read(0, 16, 1u << 20, &r);
    ok(r.n == 1 && r.ids[0] == id2, "only the second is left");

    uint64_t last_seq = b->seq;
    char src0[33], src1[33];
    uint64_t first0, first1;
    s3_store_outbox_identity(st, src0, &first0);
    ok(strlen(src0) == 32 && strspn(src0, "0123456789abcdef") == 32, "source: 32 hex digits");
    ok(first0 <= id1, "first_id: at most the first id handed out since this open");
    store_reopen();
    s3_store_outbox_identity(st, src1, &first1);
    is_str(src1, src0, "the source is kept in the data dir");
    ok(first1 > id2 && first1 > last_seq, "first_id after a reopen: past every id handed out");
    is_int(s3_store_outbox_count(st), 1, "count after reopen (mdb_stat)");
    outbox_read(0, 16, 1u << 20, &r);
    ok(r.n == 1 && r.ids[0] == id2 && strcmp(r.data[0], "PUT b1/k2") == 0,
       "the record survives a reopen");
    size_t e1 = events_now();
    is_int(put_text("b1", "k3", NULL, "again"), S3_OK, "put after reopen");
    is_int(events_now(), e1 + 1, "one event");
    ok(events[e1].seq > last_seq, "seq keeps increasing across a reopen");
    outbox_read(id2, 16, 1u << 20, &r);
    ok(r.n == 1 && r.ids[0] > id2, "ids keep increasing across a reopen");
    outbox_clear();
    is_int(s3_store_outbox_count(st), 0, "all removed");
}

static void test_outbox_failed_commit_adds_nothing(void)
{
    size_t e0 = events_now();
    uint64_t n0 = s3_store_outbox_count(st);
    unsigned notified = n_notified;
    is_int(put_text("nobucket", "k", NULL, "data"), S3_ERR_NO_SUCH_BUCKET,
           "put to a missing bucket");
    is_int(events_now(), e0, "no event");
    is_int(s3_store_outbox_count(st), n0, "no record");
    is_int(n_notified, notified, "no notification");
    struct read_res r;
    outbox_read(0, 16, 1u << 20, &r);
    is_int(r.n, n0, "nothing stored");
    is_int(put_text("b1", "k", "0123456789abcdef0123456789abcdef", "x"), S3_ERR_NO_SUCH_UPLOAD,
           "a part of a missing upload");
    is_int(events_now(), e0, "still no event");
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

static void test_outbox_delete_copy_complete_kinds(void)
{
    outbox_clear();
    is_int(put_text("b1", "d1", NULL, "one"), S3_OK, "put d1");
    is_int(put_text("b1", "d2", NULL, "two"), S3_OK, "put d2");

    size_t e0 = events_now();
    struct res r = {0};
    s3_store_delete(st, "b1", "d1", &origin, on_res, &r);
    is_int(wait_res(&r), S3_OK, "delete d1");
    is_int(events_now(), e0 + 1, "one event");
    ok(events[e0].kind == S3_EV_DELETE && strcmp(events[e0].key, "d1") == 0, "DELETE of d1");
    ok(events[e0].size == 0 && events[e0].etag[0] == '\0', "no size, no etag");
    is_str(events[e0].origin.principal, "AKIDTEST", "the delete's origin");

    r = (struct res){0};
    s3_store_delete(st, "b1", "d1", &origin, on_res, &r);
    is_int(wait_res(&r), S3_OK, "deleting a missing key succeeds");
    is_int(events_now(), e0 + 1, "and reports nothing");

    e0 = events_now();
    const char *keys[] = {"d2", "nope", "k1"};
    enum s3_err errs[3];
    r = (struct res){0};
    s3_store_delete_many(st, "b1", keys, 3, errs, &origin, on_res, &r);
    is_int(wait_res(&r), S3_OK, "delete many");
    is_int(events_now(), e0 + 2, "one event per key removed");
    ok(strcmp(events[e0].key, "d2") == 0 && strcmp(events[e0 + 1].key, "k1") == 0,
       "the removed keys, in order");

    e0 = events_now();
    struct s3_obj_meta m, out;
    s3_obj_meta_init(&m);
    s3_obj_meta_init(&out);
    r = (struct res){0};
    s3_store_copy(st, "b1", "k2", "b1", "k2copy", &m, &out, &origin, on_res, &r);
    is_int(wait_res(&r), S3_OK, "copy");
    is_int(events_now(), e0 + 1, "one event");
    ok(events[e0].kind == S3_EV_COPY && strcmp(events[e0].key, "k2copy") == 0, "COPY of k2copy");
    is_int(events[e0].size, 6, "the copy's size");
    is_str(events[e0].etag, out.etag, "the copy's etag");
    s3_obj_meta_cleanup(&m);
    s3_obj_meta_cleanup(&out);

    e0 = events_now();
    r = (struct res){0};
    s3_obj_meta_init(&m);
    s3_store_copy(st, "b1", "gone", "b1", "x", &m, NULL, &origin, on_res, &r);
    is_int(wait_res(&r), S3_ERR_NO_SUCH_KEY, "copy of a missing key");
    is_int(events_now(), e0, "reports nothing");
    s3_obj_meta_cleanup(&m);

    struct upload_res u = {0};
    s3_obj_meta_init(&m);
    s3_store_mpu_create(st, "b1", "big", &m, on_upload, &u);
    run_until(&u.done);
    is_int(u.err, S3_OK, "create upload");
    e0 = events_now();
    is_int(put_text("b1", "big", u.id, "part one"), S3_OK, "upload part 1");
    is_int(events_now(), e0, "a part reports nothing");
    struct s3_part_ref part = {.part_number = 1};
    md5_hex("part one", 8, part.etag);
    s3_obj_meta_init(&out);
    r = (struct res){0};
    s3_store_mpu_complete(st, "b1", "big", u.id, &part, 1, &out, &origin, on_res, &r);
    is_int(wait_res(&r), S3_OK, "complete");
    is_int(events_now(), e0 + 1, "one event");
    ok(events[e0].kind == S3_EV_COMPLETE_MPU && strcmp(events[e0].key, "big") == 0,
       "COMPLETE_MPU of big");
    is_int(events[e0].size, 8, "its size");
    is_str(events[e0].etag, out.etag, "its etag (md5-N)");
    s3_obj_meta_cleanup(&out);
    settle();

    struct read_res rr;
    outbox_read(0, 16, 1u << 20, &rr);
    static const char *const want[] = {
        "PUT b1/d1",    "PUT b1/d2",      "DELETE b1/d1", "DELETE b1/d2",
        "DELETE b1/k1", "COPY b1/k2copy", "MPU b1/big",
    };
    size_t n_want = sizeof(want) / sizeof(want[0]);
    is_int(rr.n, n_want, "every event left its record");
    bool same = rr.n == n_want;
    for (size_t i = 0; same && i < n_want; i++)
        same = strcmp(rr.data[i], want[i]) == 0 && (i == 0 || rr.ids[i] > rr.ids[i - 1]);
    ok(same, "records in commit order with increasing ids");
    is_int(s3_store_outbox_count(st), n_want, "count");
}

/* An inline put, written and flushed, ready for its commit. */
static struct s3_put *put_ready(const char *b, const char *key, const char *text,
                                struct s3_obj_meta *m)
{
    enum s3_err err;
    struct s3_put *put = put_flushed(b, key, NULL, text, m, &err);
    ASSERT(put != NULL);
    return put;
}

static void test_outbox_failed_batch_retried_alone_adds_once(void)
{
    outbox_clear();
    struct s3_obj_meta m1, m2;
    struct s3_put *p1 = put_ready("b1", "r1", "first", &m1);
    struct s3_put *p2 = put_ready("b1", "r2", "second", &m2);
    size_t e0 = events_now();
    uint64_t commits0 = atomic_load(&st->stats.commits);
    /* The bucket op takes the committer; both puts then wait together for the next batch,
     * whose txn fails once: each op is retried alone. */
    struct res rb = {0}, r1 = {0}, r2 = {0};
    st->test.fail_batch = true;
    s3_store_bucket_create(st, "b2", on_res, &rb);
    s3_put_commit(p1, &m1, &origin, on_res, &r1);
    s3_put_commit(p2, &m2, &origin, on_res, &r2);
    is_int(wait_res(&rb), S3_OK, "the bucket");
    is_int(wait_res(&r1), S3_OK, "the first put commits on its retry");
    is_int(wait_res(&r2), S3_OK, "the second too");
    settle();
    s3_obj_meta_cleanup(&m1);
    s3_obj_meta_cleanup(&m2);
    ok(!st->test.fail_batch, "the batch did fail");
    is_int(atomic_load(&st->stats.commits) - commits0, 3, "bucket, then each put alone");
    is_int(events_now(), e0 + 4, "the hook ran in the failed txn and again in each retry");
    ok(events[e0 + 2].seq > events[e0 + 1].seq, "retries take new seqs");
    struct read_res r;
    outbox_read(0, 16, 1u << 20, &r);
    is_int(r.n, 2, "yet each put left one record: the failed txn's went with it");
    ok(r.n == 2 && strcmp(r.data[0], "PUT b1/r1") == 0 && strcmp(r.data[1], "PUT b1/r2") == 0,
       "in commit order");
    is_int(s3_store_outbox_count(st), 2, "the count agrees");
    outbox_clear();
}

static void test_outbox_no_hook_no_records(void)
{
    outbox_clear();
    s3_store_set_event_hook(st, NULL, NULL);
    size_t e0 = events_now();
    is_int(put_text("b1", "quiet", NULL, "q"), S3_OK, "put without a hook");
    is_int(events_now(), e0, "nothing reported");
    is_int(s3_store_outbox_count(st), 0, "nothing recorded");
    s3_store_set_event_hook(st, on_event, &hook_arg_tag);
}

/* Maps "PUT b1/m1" to "mapped b1/m1" and leaves every other record alone. */
static int map_puts(void *arg, const void *data, size_t len, void **out, size_t *out_len)
{
    if (arg != &hook_arg_tag) /* checked by the result: the record would stay as stored */
        return 1;
    if (len < 4 || memcmp(data, "PUT ", 4) != 0 || memcmp((const char *)data + len - 2, "m1", 2))
        return 1;
    char *m = malloc(len + 3);
    memcpy(m, "mapped", 6);
    memcpy(m + 6, (const char *)data + 3, len - 3);
    *out = m;
    *out_len = len + 3;
    return 0;
}

static void test_outbox_map_applies_on_read(void)
{
    struct read_res r;
    outbox_clear();
    is_int(put_text("b1", "m1", NULL, "a"), S3_OK, "put m1");
    is_int(put_text("b1", "m2", NULL, "b"), S3_OK, "put m2");
    s3_store_set_outbox_map(st, map_puts, &hook_arg_tag);
    outbox_read(0, 16, 1u << 20, &r);
    ok(r.n == 2 && strcmp(r.data[0], "mapped b1/m1") == 0, "a mapped record comes back mapped");
    ok(r.n == 2 && strcmp(r.data[1], "PUT b1/m2") == 0, "one the map leaves comes back as stored");
    s3_store_set_outbox_map(st, NULL, NULL);
    outbox_read(0, 16, 1u << 20, &r);
    ok(r.n == 2 && strcmp(r.data[0], "PUT b1/m1") == 0, "stored as written: the map only reads");
    outbox_clear();
}

int main(void)
{
    fixture_init("outbox");
    store_open();

    subtest(test_outbox_put_records_read_remove_reopen);
    subtest(test_outbox_failed_commit_adds_nothing);
    subtest(test_outbox_delete_copy_complete_kinds);
    subtest(test_outbox_failed_batch_retried_alone_adds_once);
    subtest(test_outbox_no_hook_no_records);
    subtest(test_outbox_map_applies_on_read);

    fixture_fini();
    return done_testing();
}

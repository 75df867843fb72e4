/* The relay against a real redis-server: binary records (queue.h) of an in-memory outbox
 * become stream entries that carry the job's fields and index entries, in order, once (and
 * the start script makes a job's record from its entry); notification records become
 * ntf:{target} entries (queue.h's example bytes; a compact one as it is); bad records are
 * dropped; a command that
 * fails inside the transaction loses nothing; a Redis killed and restarted on the same port is
 * reconnected to and the backlog drains; and the rate. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "queue/keys.h"
#include "queue/queue.h"
#include "tests/unit/outbox_example.h"
#include "tests/unit/queue/rec_build.h"
#include "tests/unit/queue/redis_fixture.h"
#include "tests/unit/tap.h"

/* ---- an outbox in memory, answering reads from the loop like the store does ---- */

struct rec {
    uint64_t id;
    char *data;
    size_t len;
    bool removed;
};

static struct {
    struct rec *recs;
    size_t n, cap;
    uint64_t next_id;
    size_t n_removed;
    size_t n_reads;
} fake;

static struct event_base *base;

static void fake_add_bytes(const void *data, size_t len)
{
    if (fake.n == fake.cap) {
        fake.cap = fake.cap ? fake.cap * 2 : 1024;
        fake.recs = xrealloc(fake.recs, fake.cap * sizeof(*fake.recs));
    }
    char *copy = xmalloc(len + 1);
    memcpy(copy, data, len);
    fake.recs[fake.n++] = (struct rec){.id = ++fake.next_id, .data = copy, .len = len};
}

/* "FR1" kind, then the NULL-terminated name, value list as length-prefixed fields. */
static void fake_add_rec(char kind, const char *const *kv)
{
    char buf[4096];
    fake_add_bytes(buf, rec_build(kind, kv, buf, sizeof(buf)));
}

static void fake_add_job(const char *id, const char *service, const char *pool)
{
    char key[128];
    snprintf(key, sizeof(key), "photos/%s.jpg", id);
    const char *kv[] = {"id",
                        id,
                        "service",
                        service,
                        "pool",
                        pool,
                        "bucket",
                        "in",
                        "key",
                        key,
                        "event",
                        "{\"Records\":[]}",
                        "max_attempts",
                        "3",
                        "rev",
                        "1",
                        "created_ms",
                        "1700000000000",
                        NULL};
    fake_add_rec('j', kv);
}

static void fake_reset(void)
{
    for (size_t i = 0; i < fake.n; i++)
        free(fake.recs[i].data);
    free(fake.recs);
    memset(&fake, 0, sizeof(fake));
}

static size_t fake_left(void)
{
    return fake.n - fake.n_removed;
}

/* Every record back in the outbox, ids unchanged: what a gateway finds after a crash between
 * Redis' replies and the removals. */
static void fake_unremove(void)
{
    for (size_t i = 0; i < fake.n; i++)
        fake.recs[i].removed = false;
    fake.n_removed = 0;
}

struct pending_read {
    uint64_t after;
    size_t max_n;
    queue_outbox_read_cb *cb;
    void *cb_arg;
};

static void on_fake_read(evutil_socket_t fd, short what, void *arg)
{
    struct pending_read *r = arg;
    (void)fd;
    (void)what;
    /* binary search for the first id after r->after */
    size_t lo = 0, hi = fake.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fake.recs[mid].id <= r->after)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct queue_outbox_rec *out = xcalloc(r->max_n + 1, sizeof(*out));
    size_t n = 0;
    for (size_t i = lo; i < fake.n && n < r->max_n; i++)
        if (!fake.recs[i].removed)
            out[n++] =
                (struct queue_outbox_rec){fake.recs[i].id, fake.recs[i].data, fake.recs[i].len};
    r->cb(0, out, n, r->cb_arg);
    free(out);
    free(r);
}

static void fake_read(void *arg, uint64_t after_id, size_t max_n, size_t max_bytes,
                      queue_outbox_read_cb *cb, void *cb_arg)
{
    (void)arg;
    (void)max_bytes;
    struct pending_read *r = xmalloc(sizeof(*r));
    *r = (struct pending_read){after_id, max_n, cb, cb_arg};
    fake.n_reads++;
    struct timeval zero = {0, 0};
    event_base_once(base, -1, EV_TIMEOUT, on_fake_read, r, &zero);
}

static void fake_remove(void *arg, const uint64_t *ids, size_t n)
{
    (void)arg;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < fake.n; i++) /* small tests; the rate test removes in order */
            if (fake.recs[i].id == ids[k]) {
                if (!fake.recs[i].removed)
                    fake.n_removed++;
                fake.recs[i].removed = true;
                break;
            }
}

static void fake_remove_fast(void *arg, const uint64_t *ids, size_t n)
{
    (void)arg;
    /* ids are ascending and the array is in id order: search from the first */
    size_t lo = 0, hi = fake.n;
    while (n > 0 && lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fake.recs[mid].id < ids[0])
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0, i = lo; k < n && i < fake.n; i++)
        if (fake.recs[i].id == ids[k]) {
            if (!fake.recs[i].removed)
                fake.n_removed++;
            fake.recs[i].removed = true;
            k++;
        }
}

static uint64_t fake_count(void *arg)
{
    (void)arg;
    return fake_left();
}

#define SOURCE "00112233445566778899aabbccddeeff"

/* A queue on the fake outbox, as a gateway that opened its store when the next id was
 * first_id. */
static struct queue *open_queue_at(unsigned batch, bool fast_remove, uint64_t first_id)
{
    struct queue_config cfg = {
        .redis_url = rfx.url,
        .prefix = "fg:",
        .job_ttl_s = 3600,
        .log_max_bytes = 1 << 20,
        .visibility_ms = 30000,
        .run_timeout_ms = 5000,
        .relay_batch = batch,
    };
    struct queue_outbox ob = {
        .read = fake_read,
        .remove = fast_remove ? fake_remove_fast : fake_remove,
        .count = fake_count,
        .source = SOURCE,
        .first_id = first_id,
    };
    char msg[128] = "";
    struct queue *q = queue_new(base, &cfg, &ob, msg, sizeof(msg));
    ok(q != NULL, "queue_new");
    return q;
}

static struct queue *open_queue(unsigned batch, bool fast_remove)
{
    return open_queue_at(batch, fast_remove, fake.next_id + 1);
}

static bool drained(void *arg)
{
    (void)arg;
    return fake_left() == 0;
}

static bool connected(void *arg)
{
    struct queue_stats st;
    queue_get_stats(arg, &st);
    return st.connected;
}

/* ---- tests ---- */

/* The id of the stream entry of job `id` in pool `pool` (a static copy, "" when none). */
static const char *entry_of(const char *pool, const char *id)
{
    static char buf[64];
    buf[0] = '\0';
    redisReply *r = rfx_cmd("XRANGE fg:inv:%s - +", pool);
    for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        if (f->elements >= 2 && strcmp(f->element[0]->str, "job") == 0 &&
            strcmp(f->element[1]->str, id) == 0)
            snprintf(buf, sizeof(buf), "%s", r->element[i]->element[0]->str);
    }
    freeReplyObject(r);
    return buf;
}

/* Plays a worker's start of job `id` from its entry (the start script). */
static redisReply *start_job(const char *pool, const char *id)
{
    char k_job[128], k_inv[128], entry[64];
    qk_init();
    snprintf(k_job, sizeof(k_job), "fg:job:%s", id);
    snprintf(k_inv, sizeof(k_inv), "fg:inv:%s", pool);
    snprintf(entry, sizeof(entry), "%s", entry_of(pool, id));
    return rfx_cmd("EVAL %s 2 %s %s w1 1700000009000 %s", qk_start.text, k_job, k_inv, entry);
}

static void test_relay_enqueues_records_in_order(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(64, false);
    for (int i = 0; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof(id), "job-%04d", i);
        fake_add_job(id, "thumbs", "edge");
    }
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 10000), "the outbox drains");
    is_int(rfx_int("XLEN fg:inv:edge"), 300, "300 stream entries");
    is_int(rfx_int("ZCARD fg:jobs:thumbs"), 300, "300 index entries");
    is_str(rfx_str("ZSCORE fg:jobs:thumbs job-0007"), "1700000000000", "indexed at created_ms");
    is_int(rfx_int("EXISTS fg:job:job-0007"), 0, "no record before a worker starts the job");
    is_str(rfx_str("GET fg:relayed:" SOURCE), "300", "the mark: the last outbox id taken");
    redisReply *keys = rfx_cmd("KEYS *");
    size_t other = 0;
    for (size_t i = 0; keys != NULL && i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        if (strcmp(k, "fg:inv:edge") != 0 && strcmp(k, "fg:jobs:thumbs") != 0 &&
            strcmp(k, "fg:relayed:" SOURCE) != 0 && strcmp(k, "fg:config") != 0)
            other++;
    }
    ok(keys != NULL && keys->elements == 4 && other == 0,
       "no key per event: the stream, the index, the mark and the config");
    freeReplyObject(keys);

    redisReply *r = rfx_cmd("XRANGE fg:inv:edge - +");
    bool in_order = r != NULL && r->elements == 300;
    for (size_t i = 0; in_order && i < r->elements; i++) {
        char want[32];
        snprintf(want, sizeof(want), "job-%04zu", i);
        const redisReply *f = r->element[i]->element[1];
        in_order = f->elements == 4 && strcmp(f->element[0]->str, "job") == 0 &&
                   strcmp(f->element[1]->str, want) == 0 &&
                   strcmp(f->element[2]->str, "rec") == 0 &&
                   f->element[3]->len == fake.recs[i].len &&
                   memcmp(f->element[3]->str, fake.recs[i].data, fake.recs[i].len) == 0;
    }
    ok(in_order, "stream entries in outbox order, each {job: id, rec: the record's bytes}");
    freeReplyObject(r);

    /* a worker's start makes the record from the entry */
    r = start_job("edge", "job-0007");
    ok(r != NULL && r->type == REDIS_REPLY_ARRAY, "the start script answers the record");
    freeReplyObject(r);
    is_str(rfx_str("HGET fg:job:job-0007 status"), "running", "record running");
    is_str(rfx_str("HGET fg:job:job-0007 attempts"), "1", "first attempt");
    is_str(rfx_str("HGET fg:job:job-0007 id"), "job-0007", "id field");
    is_int(rfx_int("HLEN fg:job:job-0007"), 9 + 4, "the record's 9 fields and 4 of the start's");
    is_str(rfx_str("HGET fg:job:job-0007 key"), "photos/job-0007.jpg", "key field");
    is_str(rfx_str("HGET fg:job:job-0007 event"), "{\"Records\":[]}", "event field");
    is_str(rfx_str("HGET fg:job:job-0007 created_ms"), "1700000000000", "created_ms field");
    is_str(rfx_str("HGET fg:job:job-0007 service"), "thumbs", "service field");
    is_int(rfx_int("HEXISTS fg:job:job-0007 kind"), 0, "kind is not stored");
    /* started again (a reclaim after a worker died): the record is kept, attempts counted */
    rfx_do("HSET fg:job:job-0007 key changed");
    freeReplyObject(start_job("edge", "job-0007"));
    is_str(rfx_str("HGET fg:job:job-0007 attempts"), "2", "second attempt");
    is_str(rfx_str("HGET fg:job:job-0007 key"), "changed", "the record is not made again");
    /* a tombstone (a DELETE before the start) stops it */
    rfx_do("HSET fg:job:job-0008 status deleted service thumbs");
    r = start_job("edge", "job-0008");
    ok(r != NULL && r->type == REDIS_REPLY_NIL, "a deleted job does not start");
    freeReplyObject(r);
    is_str(rfx_str("HGET fg:job:job-0008 status"), "deleted", "and stays deleted");

    /* an entry whose record does not parse: an error, no record */
    const char *bad[] = {"garbage", "FR1n\x02\x00\x00\x00id\x01\x00\x00\x00x",
                         "FR1j\x02\x00\x00\x00id\x09\x00\x00\x00x", "FR1j\x02\x00\x00\x00id",
                         "FR1j\x02\x00"};
    const size_t bad_len[] = {7, 15, 15, 10, 6};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rfx_do("DEL fg:job:bad fg:inv:bad");
        redisContext *c = rfx_connect();
        const char *argv[] = {"XADD", "fg:inv:bad", "*", "job", "bad", "rec", bad[i]};
        size_t lens[] = {4, 10, 1, 3, 3, 3, bad_len[i]};
        freeReplyObject(redisCommandArgv(c, 7, argv, lens));
        redisFree(c);
        r = start_job("bad", "bad");
        ok(r != NULL && r->type == REDIS_REPLY_ERROR, "a broken record is refused");
        freeReplyObject(r);
        is_int(rfx_int("EXISTS fg:job:bad"), 0, "and makes no record");
    }
    rfx_do("DEL fg:inv:bad");

    struct queue_stats st;
    queue_get_stats(q, &st);
    ok(st.configured && st.connected, "stats: configured and connected");
    is_int(st.relayed, 300, "stats: 300 relayed");
    is_int(st.backlog, 0, "stats: no backlog");
    queue_free(q);
}

/* A command that fails inside a batch's transaction (a key of ours holding another type):
 * the batch is not removed and is sent again until it goes through; the mark goes back, so a
 * restart in between would send it again too. Records may reach Redis twice, none is lost. */
static void test_relay_failed_command_loses_nothing(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    rfx_do("SET fg:jobs:broken not-a-sorted-set");
    struct queue *q = open_queue(16, false);
    fake_add_job("fine-1", "svc", "p6");
    fake_add_job("hurt-1", "broken", "p6");
    fake_add_job("fine-2", "svc", "p6");
    queue_kick(q);
    rfx_run_for(base, 400);
    is_int((long long)fake_left(), 3, "nothing removed while a command fails");
    is_str(rfx_str("GET fg:relayed:" SOURCE), "0", "the mark is back before the batch");
    rfx_do("DEL fg:jobs:broken");
    ok(rfx_run_until(base, drained, NULL, 10000), "drains once the key is fixed");
    is_int(rfx_int("ZCARD fg:jobs:broken"), 1, "the failed record made it");
    is_int(rfx_int("ZCARD fg:jobs:svc"), 2, "and the others, each in its service's index");
    ok(rfx_int("XLEN fg:inv:p6") >= 3, "every job has an entry (some twice)");
    is_str(rfx_str("GET fg:relayed:" SOURCE), "3", "the mark at the last record");
    queue_free(q);
}

/* After a batch the relay reads again only when kicked meanwhile (a commit added records) or
 * when the read was cut at relay_batch: no empty read per batch. */
static void test_relay_reads_only_when_kicked_or_cut(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(16, false);
    ok(rfx_run_until(base, connected, q, 5000), "connected");
    size_t reads0 = fake.n_reads;
    for (int i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof(id), "k-%d", i);
        fake_add_job(id, "svc", "p1");
    }
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "10 records drain");
    rfx_run_for(base, 50);
    is_int((long long)(fake.n_reads - reads0), 1, "one read, no empty one after it");

    /* a later commit's kick starts the next round */
    fake_add_job("k-late", "svc", "p1");
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "a record added right after drains");
    is_int((long long)(fake.n_reads - reads0), 2, "in a second read");

    /* a backlog over relay_batch: rounds go on without kicks */
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof(id), "b-%d", i);
        fake_add_job(id, "svc", "p1");
    }
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "40 records drain in batches of 16");
    is_int(rfx_int("XLEN fg:inv:p1"), 51, "every record enqueued");
    queue_free(q);
}

static void test_relay_dedupes_records_sent_twice(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(16, false);
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof(id), "dup-%d", i);
        fake_add_job(id, "svc", "p1");
    }
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "first pass drains");
    queue_free(q);
    /* the same records again, as after a crash between Redis' reply and the removal: a new
     * gateway on the same data dir, whose next id is past them */
    fake_unremove();
    for (int i = 40; i < 45; i++) {
        char id[32];
        snprintf(id, sizeof(id), "dup-%d", i);
        fake_add_job(id, "svc", "p1"); /* and five new ones */
    }
    q = open_queue_at(16, false, 41);
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "second pass drains");
    is_int(rfx_int("XLEN fg:inv:p1"), 45, "each job enqueued once");
    is_int(rfx_int("ZCARD fg:jobs:svc"), 45, "indexed once");
    is_str(rfx_str("GET fg:relayed:" SOURCE), "45", "the mark moved to the last new record");
    queue_free(q);
}

/* A relay started with the mark at `mark`, on an outbox of n jobs (ids 1..n) opened when the
 * next id was first_id; runs until the outbox is drained and returns how many jobs Redis got. */
static long long relay_with_mark(const char *mark, int n, uint64_t first_id)
{
    rfx_do("FLUSHALL");
    fake_reset();
    rfx_do("SET fg:relayed:" SOURCE " %s", mark);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "m%s-%d", mark, i);
        fake_add_job(id, "svc", "p1");
    }
    struct queue *q = open_queue_at(4, false, first_id);
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "drains");
    queue_free(q);
    return rfx_int("XLEN fg:inv:p1");
}

static void test_relay_restored_data_dir_is_not_taken_for_repeats(void)
{
    /* Redis took records up to 1000 from this outbox; the data dir now in use is an older copy
     * whose next id is 11 */
    is_int(relay_with_mark("1000", 10, 11), 10, "every record enqueued, none taken for a repeat");
    is_str(rfx_str("GET fg:relayed:" SOURCE), "10", "the mark starts over");
    /* a mark below the first id is an ordinary restart: kept */
    is_int(relay_with_mark("3", 5, 4), 2, "ids 1-3 were taken before the restart: skipped");
}

static void test_relay_drops_bad_records(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(8, false);
    fake_add_job("good-1", "svc", "p2");
    fake_add_bytes("{\"kind\":\"job\"}", 14); /* the old JSON form */
    const char *x[] = {"id", "x", "service", "s", "pool", "p2", "created_ms", "1", NULL};
    fake_add_rec('w', x); /* unknown kind */
    const char *no_pool[] = {"id", "no-pool", "service", "s", "created_ms", "1", NULL};
    fake_add_rec('j', no_pool);
    const char *bad_ms[] = {"id", "bad-ms", "service", "s", "pool", "p2", "created_ms", "1x", NULL};
    fake_add_rec('j', bad_ms);
    const char *two_ids[] = {"id",   "a",  "id",         "b", "service", "s",
                             "pool", "p2", "created_ms", "1", NULL};
    fake_add_rec('j', two_ids);
    const char *no_body[] = {"id", "n1", "target", "t", "created_ms", "1", NULL};
    fake_add_rec('n', no_body);
    const char *no_target[] = {"id", "n2", "bucket",     "b", "key", "k",
                               "ev", "x",  "created_ms", "1", NULL};
    fake_add_rec('N', no_target);
    /* truncated: a length past the end */
    fake_add_bytes("FR1j\x02\x00\x00\x00id\x09\x00\x00\x00"
                   "ab",
                   16);
    fake_add_bytes("FR1", 3);
    const char *good2[] = {"id",           "good-2", "service",    "svc",           "pool", "p2",
                           "max_attempts", "3",      "created_ms", "1700000000001", NULL};
    fake_add_rec('j', good2);
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "every record leaves the outbox");
    is_int(rfx_int("XLEN fg:inv:p2"), 2, "only the two job records enqueued");
    redisReply *r = rfx_cmd("XRANGE fg:inv:p2 - +");
    ok(r != NULL && r->elements == 2 &&
           strcmp(r->element[1]->element[1]->element[1]->str, "good-2") == 0,
       "the good ones, in order");
    freeReplyObject(r);
    is_int(rfx_int("EXISTS fg:job:x"), 0, "unknown kind not enqueued");
    is_int(rfx_int("EXISTS fg:ntf:t"), 0, "notification without body not enqueued");
    queue_free(q);
}

/* A compact notification record goes as it is: {rec: its bytes}, expanded at delivery. */
static void test_relay_adds_compact_notification_whole(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(8, false);
    const char *kv[] = {"id",  "c1", "target", "t2",         "bucket", "b", "key",
                        "k/1", "ev", "\x01",   "created_ms", "7",      NULL};
    char rec[512];
    size_t len = rec_build('N', kv, rec, sizeof(rec));
    fake_add_bytes(rec, len);
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "drains");
    redisReply *r = rfx_cmd("XRANGE fg:ntf:t2 - +");
    bool shape = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                 r->element[0]->element[1]->elements == 2;
    ok(shape, "one entry of one field in ntf:t2");
    if (shape) {
        redisReply *f = r->element[0]->element[1];
        is_str(f->element[0]->str, "rec", "the field is rec");
        ok(f->element[1]->len == len && memcmp(f->element[1]->str, rec, len) == 0,
           "its value is the record, byte for byte");
    }
    freeReplyObject(r);
    queue_free(q);
}

static void test_relay_adds_notification_of_the_example_bytes(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(8, false);
    /* queue.h's example, byte for byte */
    fake_add_bytes(outbox_example, sizeof(outbox_example) - 1);
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "drains");
    is_int(rfx_int("XLEN fg:ntf:t"), 1, "one entry in ntf:t");
    redisReply *r = rfx_cmd("XRANGE fg:ntf:t - +");
    bool shape = r != NULL && r->elements == 1 && r->element[0]->element[1]->elements == 8;
    ok(shape, "the entry has four fields");
    if (shape) {
        redisReply *f = r->element[0]->element[1];
        const char *want[] = {"id", "u1", "body", "{}", "created_ms", "5", "attempts", "0"};
        bool same = true;
        for (size_t i = 0; i < 8; i++)
            same = same && strcmp(f->element[i]->str, want[i]) == 0;
        ok(same, "{id u1, body {}, created_ms 5, attempts 0}");
    }
    freeReplyObject(r);
    struct queue_stats st;
    queue_get_stats(q, &st);
    is_int(st.relayed, 1, "stats: one record relayed");
    queue_free(q);
    /* relayed twice (a crash before the removal): added once */
    fake_unremove();
    q = open_queue_at(16, false, 2);
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "drains again");
    is_int(rfx_int("XLEN fg:ntf:t"), 1, "still one entry in ntf:t");
    queue_free(q);
}

static void test_relay_resumes_after_redis_restart(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(32, false);
    ok(rfx_run_until(base, connected, q, 5000), "connected");
    rfx_kill();
    for (int i = 0; i < 100; i++) {
        char id[32];
        snprintf(id, sizeof(id), "late-%d", i);
        fake_add_job(id, "svc", "p3");
    }
    queue_kick(q);
    rfx_run_for(base, 800); /* a few failed attempts, with backoff */
    is_int(fake_left(), 100, "nothing removed while Redis is down");
    struct queue_stats st;
    queue_get_stats(q, &st);
    ok(!st.connected, "stats: not connected");
    ok(st.last_error[0] != '\0', "stats: the last error is kept");
    is_int(st.backlog, 100, "stats: backlog 100");
    ok(rfx_restart(), "redis restarted on the same port");
    ok(rfx_run_until(base, drained, NULL, 10000), "the backlog drains after the restart");
    is_int(rfx_int("XLEN fg:inv:p3"), 100, "every record enqueued");
    queue_get_stats(q, &st);
    ok(st.reconnects > 0, "stats: reconnects counted");
    ok(st.connected, "stats: connected again");
    queue_free(q);
}

/* The relay's batches are plain commands: Redis losing its scripts changes nothing. */
static void test_relay_needs_no_scripts(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    struct queue *q = open_queue(16, false);
    ok(rfx_run_until(base, connected, q, 5000), "connected");
    rfx_do("SCRIPT FLUSH"); /* as a restart would, without dropping the connection */
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "flush-%d", i);
        fake_add_job(id, "svc", "p4");
    }
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "drains after SCRIPT FLUSH");
    is_int(rfx_int("XLEN fg:inv:p4"), 20, "every record enqueued");
    queue_free(q);
}

static void test_relay_selects_the_database_of_the_url(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    char url[80];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", rfx.port);
    struct queue_config cfg = {.redis_url = url, .prefix = "x:", .relay_batch = 8};
    struct queue_outbox ob = {.read = fake_read, .remove = fake_remove, .count = fake_count};
    char msg[128] = "";
    struct queue *q = queue_new(base, &cfg, &ob, msg, sizeof(msg));
    fake_add_job("db3-job", "svc", "p5");
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 5000), "drains");
    is_int(rfx_int("EXISTS x:job:db3-job"), 0, "not in db 0");
    redisContext *c = rfx_connect();
    redisReply *r = redisCommand(c, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(c, "XLEN x:inv:p5");
    is_int(r != NULL ? r->integer : -1, 1, "in db 3, with the configured prefix");
    freeReplyObject(r);
    redisFree(c);
    queue_free(q);

    cfg.redis_url = "http://nope";
    ok(queue_new(base, &cfg, &ob, msg, sizeof(msg)) == NULL, "a bad URL is refused");
    ok(msg[0] != '\0', "with a message");
}

/* CPU seconds (user + system) of this process: the relay's side, not redis-server's. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void test_relay_rate(void)
{
    rfx_do("FLUSHALL");
    fake_reset();
    const int n = 50000;
    for (int i = 0; i < n; i++) {
        char id[40];
        snprintf(id, sizeof(id), "rate-%d", i);
        fake_add_job(id, "bench", "edge");
    }
    struct queue *q = open_queue(256, true);
    ok(rfx_run_until(base, connected, q, 5000), "connected");
    long long t0 = rfx_now_ms();
    double cpu0 = cpu_s();
    queue_kick(q);
    ok(rfx_run_until(base, drained, NULL, 60000), "50000 records drain");
    long long ms = rfx_now_ms() - t0;
    double cpu = cpu_s() - cpu0;
    /* the rate is mostly redis-server's; the CPU is the gateway's side of it */
    printf("# relay rate: %d records in %lld ms = %.0f records/s (batch 256); "
           "relay CPU %.2f us/record\n",
           n, ms, ms > 0 ? n * 1000.0 / (double)ms : 0.0, cpu * 1e6 / n);
    is_int(rfx_int("XLEN fg:inv:edge"), n, "every record enqueued");
    queue_free(q);
}

int main(void)
{
    if (!rfx_available() || !rfx_start()) {
        /* tools/deps.sh installs it: its absence is a broken setup, not a skip */
        printf("not ok 1 - a redis-server starts (/usr/bin/redis-server)\n1..1\n");
        return 1;
    }
    base = event_base_new();
    subtest(test_relay_enqueues_records_in_order);
    subtest(test_relay_failed_command_loses_nothing);
    subtest(test_relay_dedupes_records_sent_twice);
    subtest(test_relay_restored_data_dir_is_not_taken_for_repeats);
    subtest(test_relay_reads_only_when_kicked_or_cut);
    subtest(test_relay_drops_bad_records);
    subtest(test_relay_adds_notification_of_the_example_bytes);
    subtest(test_relay_adds_compact_notification_whole);
    subtest(test_relay_resumes_after_redis_restart);
    subtest(test_relay_needs_no_scripts);
    subtest(test_relay_selects_the_database_of_the_url);
    subtest(test_relay_rate);
    fake_reset();
    event_base_free(base);
    rfx_stop();
    return done_testing();
}

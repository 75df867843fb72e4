/* The admin API's job calls against a real redis-server: submit, list, log, record, delete
 * (one job and every ended job), /run with a worker thread that finishes the job through the
 * finish script (success and failure), the run timeout, 503 without Redis and at queue_free,
 * services re-published after a reconnect, and /system/info. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "queue/keys.h"
#include "queue/queue.h"
#include "tests/unit/queue/redis_fixture.h"
#include "tests/unit/tap.h"

static struct event_base *base;

struct answer {
    bool done;
    int calls;
    int status;
    char body[8192];
    size_t len;
};

static void on_answer(int status, const char *body, size_t len, void *arg)
{
    struct answer *a = arg;
    a->calls++;
    a->done = true;
    a->status = status;
    a->len = len < sizeof(a->body) - 1 ? len : sizeof(a->body) - 1;
    if (body != NULL)
        memcpy(a->body, body, a->len);
    a->body[a->len] = '\0';
}

static bool answered(void *arg)
{
    return ((struct answer *)arg)->done;
}

static bool connected(void *arg)
{
    struct queue_stats st;
    queue_get_stats(arg, &st);
    return st.connected;
}

static struct queue *open_queue(unsigned run_timeout_ms, bool with_redis)
{
    struct queue_config cfg = {
        .redis_url = with_redis ? rfx.url : NULL,
        .prefix = "fg:",
        .job_ttl_s = 3600,
        .log_max_bytes = 1 << 20,
        .visibility_ms = 30000,
        .run_timeout_ms = run_timeout_ms,
        .relay_batch = 256,
    };
    struct queue_outbox ob = {0};
    char msg[128] = "";
    struct queue *q = queue_new(base, &cfg, &ob, msg, sizeof(msg));
    if (with_redis)
        ok(q != NULL && rfx_run_until(base, connected, q, 5000), "queue connected");
    return q;
}

static void wait_answer(struct answer *a, long long ms)
{
    rfx_run_until(base, answered, a, ms);
}

/* Submits a payload job; its id into id (37). */
static void submit(struct queue *q, const char *service, const char *pool, char *id)
{
    struct queue_job_spec spec = {
        .service = service,
        .pool = pool,
        .max_attempts = 2,
        .rev = "1",
        .event_json = "{\"Records\":[]}",
        .payload = "hello payload",
        .payload_len = 13,
    };
    struct answer a = {0};
    queue_job_submit(q, &spec, on_answer, &a);
    ok(!a.done, "no answer before the call returns");
    wait_answer(&a, 5000);
    is_int(a.status, 201, "submit: 201");
    json_t *j = json_loads(a.body, 0, NULL);
    const char *s = json_string_value(json_object_get(j, "job_id"));
    snprintf(id, 37, "%s", s != NULL ? s : "");
    json_decref(j);
    is_int(strlen(id), 36, "a uuid job id");
}

/* Plays the worker: ends job `id` through the finish script. */
static void finish(const char *id, const char *service, const char *pool, const char *status,
                   const char *exit_code, const char *reason, const char *log, const char *out)
{
    redisContext *c = rfx_connect();
    qk_init();
    char k[8][128];
    snprintf(k[0], 128, "fg:job:%s", id);
    snprintf(k[1], 128, "fg:inv:%s", pool);
    snprintf(k[2], 128, "fg:log:%s", id);
    snprintf(k[3], 128, "fg:delay");
    snprintf(k[4], 128, "fg:dlq:%s", service);
    snprintf(k[5], 128, "fg:done:%s", id);
    snprintf(k[6], 128, "fg:out:%s", id);
    snprintf(k[7], 128, "fg:in:%s", id);
    redisReply *r =
        redisCommand(c, "EVAL %s 8 %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s",
                     qk_finish.text, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], id, "", status,
                     "1700000005000", exit_code, reason, log, "3600", "0", out, "tail");
    ok(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "finish script ran");
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        printf("# %s\n", r->str);
    freeReplyObject(r);
    redisFree(c);
}

/* ---- tests ---- */

static void test_submit_writes_record_payload_and_entry(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    char id[37];
    submit(q, "resize", "edge", id);
    is_str(rfx_str("HGET fg:job:%s status", id), "pending", "record pending");
    is_str(rfx_str("HGET fg:job:%s service", id), "resize", "service field");
    is_str(rfx_str("HGET fg:job:%s payload", id), "1", "payload flag");
    is_int(rfx_int("HEXISTS fg:job:%s sync", id), 0, "not sync");
    is_str(rfx_str("GET fg:in:%s", id), "hello payload", "payload stored");
    is_int(rfx_int("XLEN fg:inv:edge"), 1, "stream entry");
    is_int(rfx_int("ZCARD fg:jobs:resize"), 1, "indexed");
    queue_free(q);
}

static void test_list_log_get_delete(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    char id1[37], id2[37];
    submit(q, "svc", "edge", id1);
    submit(q, "svc", "edge", id2);
    finish(id1, "svc", "edge", "succeeded", "0", "", "line 1\nline 2\n", "");

    struct answer a = {0};
    queue_jobs_list(q, "svc", on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 200, "list: 200");
    json_t *j = json_loads(a.body, 0, NULL);
    is_int(json_object_size(j), 2, "two jobs listed");
    json_t *j1 = json_object_get(j, id1);
    is_str(json_string_value(json_object_get(j1, "status")), "succeeded", "status");
    is_str(json_string_value(json_object_get(j1, "finish_time")), "2023-11-14T22:13:25Z",
           "finish time in ISO 8601");
    ok(json_is_string(json_object_get(j1, "creation_time")), "creation time");
    is_int(json_integer_value(json_object_get(j1, "exit_code")), 0, "exit code");
    is_str(json_string_value(json_object_get(json_object_get(j, id2), "status")), "pending",
           "the other pending");
    json_decref(j);

    /* an index entry whose record expired is dropped from the listing and the index */
    rfx_do("ZADD fg:jobs:svc 1 gone-job");
    memset(&a, 0, sizeof(a));
    queue_jobs_list(q, "svc", on_answer, &a);
    wait_answer(&a, 5000);
    j = json_loads(a.body, 0, NULL);
    is_int(json_object_size(j), 2, "expired record not listed");
    json_decref(j);
    is_int(rfx_int("ZSCORE fg:jobs:svc gone-job"), -1, "and removed from the index");

    memset(&a, 0, sizeof(a));
    queue_job_log(q, "svc", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 200, "log: 200");
    is_str(a.body, "line 1\nline 2\n", "log text");

    memset(&a, 0, sizeof(a));
    queue_job_log(q, "other", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 404, "log under another service: 404");
    memset(&a, 0, sizeof(a));
    queue_job_log(q, "svc", "no-such-job", on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 404, "log of an unknown job: 404");

    memset(&a, 0, sizeof(a));
    queue_job_get(q, "svc", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 200, "record: 200");
    j = json_loads(a.body, 0, NULL);
    is_str(json_string_value(json_object_get(j, "service")), "svc", "record service");
    is_str(json_string_value(json_object_get(j, "status")), "succeeded", "record status");
    json_decref(j);
    memset(&a, 0, sizeof(a));
    queue_job_get(q, "other", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 404, "record under another service: 404");

    memset(&a, 0, sizeof(a));
    queue_job_delete(q, "other", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 404, "delete under another service: 404");
    memset(&a, 0, sizeof(a));
    queue_job_delete(q, "svc", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 204, "delete: 204");
    is_int(a.len, 0, "no body");
    is_int(rfx_int("EXISTS fg:job:%s fg:log:%s", id1, id1), 0, "record and log gone");
    is_int(rfx_int("ZCARD fg:jobs:svc"), 1, "index entry gone");
    memset(&a, 0, sizeof(a));
    queue_job_get(q, "svc", id1, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 404, "deleted: 404");
    queue_free(q);
}

static void test_delete_all_removes_ended_jobs_only(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    char ok_id[37], dead_id[37], pending_id[37];
    submit(q, "batch", "edge", ok_id);
    submit(q, "batch", "edge", dead_id);
    submit(q, "batch", "edge", pending_id);
    finish(ok_id, "batch", "edge", "succeeded", "0", "", "ok", "");
    finish(dead_id, "batch", "edge", "dead", "1", "exit status 1", "boom", "");
    struct answer a = {0};
    queue_job_delete(q, "batch", NULL, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 204, "delete all: 204");
    is_int(rfx_int("ZCARD fg:jobs:batch"), 1, "one job left");
    is_int(rfx_int("EXISTS fg:job:%s", pending_id), 1, "the pending one");
    is_int(rfx_int("EXISTS fg:job:%s fg:job:%s", ok_id, dead_id), 0, "ended ones gone");
    queue_free(q);
}

typedef void job_call_fn(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                         void *arg);

/* Calls `fn` for service/job and waits for its answer (in *a); its status. */
static int call(job_call_fn *fn, struct queue *q, const char *service, const char *job,
                struct answer *a)
{
    memset(a, 0, sizeof(*a));
    fn(q, service, job, on_answer, a);
    wait_answer(a, 5000);
    return a->status;
}

/* A worker's start of job `id` from its entry in fg:inv:`pool` (the start script's reply). */
static redisReply *start_job(const char *pool, const char *id, const char *entry)
{
    qk_init();
    return rfx_cmd("EVAL %s 2 fg:job:%s fg:inv:%s w1 1700000009000 %s", qk_start.text, id, pool,
                   entry);
}

/* A relayed job: an entry with its outbox record and an index entry, no record until a worker
 * starts it (keys.h). It is listed, read and deleted as pending; a DELETE leaves a tombstone
 * that its start obeys. */
static void test_relayed_job_without_record(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    char now[32], entry[64];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL) * 1000);
    snprintf(entry, sizeof(entry), "%s", rfx_str("XADD fg:inv:edge * job r1 rec FR1j"));
    rfx_do("ZADD fg:jobs:svc %s r1", now);

    struct answer a = {0};
    queue_jobs_list(q, "svc", on_answer, &a);
    wait_answer(&a, 5000);
    json_t *j = json_loads(a.body, 0, NULL);
    json_t *r1 = json_object_get(j, "r1");
    is_str(json_string_value(json_object_get(r1, "status")), "pending", "listed as pending");
    ok(json_is_string(json_object_get(r1, "creation_time")), "with its creation time");
    json_decref(j);
    is_int(rfx_int("ZCARD fg:jobs:svc"), 1, "and left in the index");

    is_int(call(queue_job_get, q, "svc", "r1", &a), 200, "record: 200");
    j = json_loads(a.body, 0, NULL);
    is_str(json_string_value(json_object_get(j, "status")), "pending", "record status pending");
    is_str(json_string_value(json_object_get(j, "created_ms")), now, "record created_ms");
    json_decref(j);
    is_int(call(queue_job_get, q, "other", "r1", &a), 404, "under another service: 404");
    is_int(call(queue_job_log, q, "svc", "r1", &a), 200, "log: 200");
    is_int(a.len, 0, "empty: it has not run");

    is_int(call(queue_job_delete, q, "svc", NULL, &a), 204, "delete all: 204");
    is_int(rfx_int("ZCARD fg:jobs:svc"), 1, "a pending job is not an ended one: kept");

    is_int(call(queue_job_delete, q, "svc", "r1", &a), 204, "delete: 204");
    is_int(rfx_int("ZCARD fg:jobs:svc"), 0, "index entry gone");
    is_str(rfx_str("HGET fg:job:r1 status"), "deleted", "a tombstone");
    ok(rfx_int("TTL fg:job:r1") > 0, "kept for the retention time");
    redisReply *r = start_job("edge", "r1", entry);
    ok(r != NULL && r->type == REDIS_REPLY_NIL, "its start finds it gone");
    freeReplyObject(r);
    is_int(call(queue_job_get, q, "svc", "r1", &a), 404, "deleted: 404");
    is_int(call(queue_job_log, q, "svc", "r1", &a), 404, "its log: 404");
    is_int(call(queue_job_delete, q, "svc", "r1", &a), 404, "deleted again: 404");

    /* a pending API job (it has a record) is stopped the same way */
    char id[37];
    submit(q, "svc", "edge", id);
    is_int(call(queue_job_delete, q, "svc", id, &a), 204, "delete a pending API job: 204");
    is_str(rfx_str("HGET fg:job:%s status", id), "deleted", "a tombstone");
    is_int(rfx_int("EXISTS fg:in:%s", id), 0, "its payload gone");
    queue_free(q);
}

/* ---- /run ---- */

struct fake_worker {
    const char *status;
    const char *exit_code;
    const char *reason;
    const char *out;
    char id[64];
    bool saw_sync;
};

static void *worker_main(void *arg)
{
    struct fake_worker *w = arg;
    redisContext *c = rfx_connect();
    /* the first entry of an empty stream: no race with the enqueue */
    redisReply *r = redisCommand(c, "XREAD COUNT 1 BLOCK 5000 STREAMS fg:inv:runpool 0");
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *entry = r->element[0]->element[1]->element[0];
        snprintf(w->id, sizeof(w->id), "%s", entry->element[1]->element[1]->str);
        redisReply *s = redisCommand(c, "HGET fg:job:%s sync", w->id);
        w->saw_sync = s != NULL && s->type == REDIS_REPLY_STRING && strcmp(s->str, "1") == 0;
        freeReplyObject(s);
        usleep(100000); /* the gateway is already waiting, or not yet: both must work */
        finish(w->id, "runner", "runpool", w->status, w->exit_code, w->reason, "the log", w->out);
    }
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static void run_with_worker(struct fake_worker *w, struct answer *a)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    pthread_t t;
    pthread_create(&t, NULL, worker_main, w);
    struct queue_job_spec spec = {.service = "runner",
                                  .pool = "runpool",
                                  .max_attempts = 1,
                                  .payload = "x",
                                  .payload_len = 1};
    queue_job_run(q, &spec, on_answer, a);
    ok(!a->done, "no answer before the call returns");
    wait_answer(a, 8000);
    pthread_join(t, NULL);
    ok(w->saw_sync, "the record had sync = 1 when the worker saw it");
    is_int(a->calls, 1, "one answer");
    queue_free(q);
    is_int(a->calls, 1, "still one answer after queue_free");
}

static void test_run_answers_stdout(void)
{
    struct fake_worker w = {.status = "succeeded", .exit_code = "0", .reason = "", .out = "hi\n"};
    struct answer a = {0};
    run_with_worker(&w, &a);
    is_int(a.status, 200, "run: 200");
    is_str(a.body, "hi\n", "the script's stdout");
}

static void test_run_failure_is_502(void)
{
    struct fake_worker w = {
        .status = "dead", .exit_code = "3", .reason = "exit status 3", .out = ""};
    struct answer a = {0};
    run_with_worker(&w, &a);
    is_int(a.status, 502, "run of a failing job: 502");
    json_t *j = json_loads(a.body, 0, NULL);
    is_str(json_string_value(json_object_get(j, "job_id")), w.id, "job_id");
    is_str(json_string_value(json_object_get(j, "status")), "dead", "status");
    is_int(json_integer_value(json_object_get(j, "exit_code")), 3, "exit_code");
    is_str(json_string_value(json_object_get(j, "reason")), "exit status 3", "reason");
    json_decref(j);
}

static void test_run_timeout_is_504(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(300, true);
    struct queue_job_spec spec = {.service = "slow", .pool = "nobody", .bucket = "b", .key = "k"};
    struct answer a = {0};
    long long t0 = rfx_now_ms();
    queue_job_run(q, &spec, on_answer, &a);
    wait_answer(&a, 5000);
    long long ms = rfx_now_ms() - t0;
    is_int(a.status, 504, "run with no worker: 504");
    ok(ms >= 250 && ms < 2000, "after about run_timeout");
    ok(strstr(a.body, "job_id") != NULL, "the body names the job");
    rfx_run_for(base, 50);
    queue_free(q);
    is_int(a.calls, 1, "one answer");
}

/* ---- 503s ---- */

static void test_no_redis_is_503_deferred(void)
{
    struct queue *q = open_queue(5000, false);
    struct answer a = {0};
    queue_jobs_list(q, "svc", on_answer, &a);
    ok(!a.done, "not answered inside the call");
    wait_answer(&a, 1000);
    is_int(a.status, 503, "no Redis: 503");
    struct queue_stats st;
    queue_get_stats(q, &st);
    ok(!st.configured && !st.connected, "stats: not configured");
    queue_free(q);
    is_int(a.calls, 1, "one answer");
}

static void test_queue_free_answers_pending_calls(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(60000, true);
    struct queue_job_spec spec = {.service = "s", .pool = "nobody", .bucket = "b", .key = "k"};
    struct answer run = {0}, list = {0};
    queue_job_run(q, &spec, on_answer, &run);
    rfx_run_for(base, 200); /* enqueued, the waiter is blocked in BLPOP */
    queue_jobs_list(q, "s", on_answer, &list);
    queue_free(q);
    is_int(run.calls, 1, "the run is answered");
    is_int(run.status, 503, "with 503");
    is_int(list.calls, 1, "the list is answered");
    ok(list.status == 503 || list.status == 200, "with 503 (or its result)");
}

static struct queue *freed_in_cb;

static void on_answer_then_free(int status, const char *body, size_t len, void *arg)
{
    on_answer(status, body, len, arg);
    queue_free(freed_in_cb); /* the caller may free the queue from its callback */
}

static void test_queue_free_inside_a_callback(void)
{
    rfx_do("FLUSHALL");
    freed_in_cb = open_queue(60000, true);
    struct queue_job_spec spec = {.service = "s", .pool = "nobody", .bucket = "b", .key = "k"};
    struct answer first = {0}, other = {0};
    queue_job_submit(freed_in_cb, &spec, on_answer_then_free, &first);
    queue_job_run(freed_in_cb, &spec, on_answer, &other);
    wait_answer(&first, 5000);
    is_int(first.status, 201, "the first call answered");
    is_int(other.calls, 1, "the other answered at the free");
    is_int(other.status, 503, "with 503");
}

/* ---- services and info ---- */

static void test_services_republished_after_reconnect(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    queue_publish_service(q, "thumbs", "{\"name\":\"thumbs\",\"pool\":\"edge\"}");
    queue_publish_service(q, "gone", "{\"name\":\"gone\"}");
    queue_unpublish_service(q, "gone");
    rfx_run_for(base, 100);
    is_str(rfx_str("GET fg:svc:thumbs"), "{\"name\":\"thumbs\",\"pool\":\"edge\"}", "svc written");
    is_int(rfx_int("SISMEMBER fg:services thumbs"), 1, "in the set");
    is_int(rfx_int("EXISTS fg:svc:gone"), 0, "unpublished one deleted");
    is_str(rfx_str("HGET fg:config job_ttl_s"), "3600", "config hash: job_ttl_s");
    is_str(rfx_str("HGET fg:config visibility_ms"), "30000", "config hash: visibility_ms");

    /* Redis loses everything and drops the gateway's connection */
    rfx_do("FLUSHALL");
    rfx_do("CLIENT KILL TYPE normal SKIPME yes");
    rfx_run_for(base, 1000);
    ok(connected(q), "reconnected");
    is_str(rfx_str("GET fg:svc:thumbs"), "{\"name\":\"thumbs\",\"pool\":\"edge\"}",
           "svc written again");
    is_str(rfx_str("HGET fg:config log_max_bytes"), "1048576", "config written again");
    queue_free(q);
}

static void test_info_lists_workers_and_pools(void)
{
    rfx_do("FLUSHALL");
    struct queue *q = open_queue(5000, true);
    queue_publish_service(q, "thumbs", "{\"name\":\"thumbs\",\"pool\":\"edge\"}");
    char id[37];
    submit(q, "thumbs", "edge", id);
    submit(q, "thumbs", "edge", id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    rfx_do("ZADD fg:workers:edge %lld w1", now - 500);
    rfx_do("HSET fg:worker:w1 host node1 pid 42 pools edge,cloud concurrency 4 running 1");
    rfx_do("XADD fg:dlq:thumbs * job j1 reason r attempts 3 log_tail t time_ms 1");
    struct answer a = {0};
    queue_info(q, on_answer, &a);
    wait_answer(&a, 5000);
    is_int(a.status, 200, "info: 200");
    json_t *j = json_loads(a.body, 0, NULL);
    json_t *w = json_array_get(json_object_get(j, "workers"), 0);
    is_str(json_string_value(json_object_get(w, "id")), "w1", "worker id");
    is_str(json_string_value(json_object_get(w, "host")), "node1", "worker host");
    is_int(json_integer_value(json_object_get(w, "concurrency")), 4, "concurrency");
    is_int(json_array_size(json_object_get(w, "pools")), 2, "two pools");
    long long age = json_integer_value(json_object_get(w, "heartbeat_age_ms"));
    ok(age >= 400 && age < 5000, "heartbeat age");
    json_t *edge = json_object_get(json_object_get(j, "pools"), "edge");
    is_int(json_integer_value(json_object_get(edge, "pending")), 2, "two pending in edge");
    is_int(json_integer_value(json_object_get(edge, "dead")), 1, "one dead in edge");
    json_decref(j);
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
    subtest(test_submit_writes_record_payload_and_entry);
    subtest(test_list_log_get_delete);
    subtest(test_delete_all_removes_ended_jobs_only);
    subtest(test_relayed_job_without_record);
    subtest(test_run_answers_stdout);
    subtest(test_run_failure_is_502);
    subtest(test_run_timeout_is_504);
    subtest(test_no_redis_is_503_deferred);
    subtest(test_queue_free_answers_pending_calls);
    subtest(test_queue_free_inside_a_callback);
    subtest(test_services_republished_after_reconnect);
    subtest(test_info_lists_workers_and_pools);
    event_base_free(base);
    rfx_stop();
    return done_testing();
}

/* GET and DELETE /system/logs/{service}[/{job}]: job listings, logs, records and deletion,
 * read from the job records POST /job and the workers write and from the service's index. A
 * job belongs to the service named in its record; asking for it under another service is a
 * 404. A relayed job has no record until a worker starts it (keys.h): one in the index without
 * a record, created less than the retention ago, is pending; an older one has expired. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define LIST_MAX   1000  /* jobs in one listing, newest first */
#define DELETE_MAX 10000 /* jobs looked at by one DELETE of a whole service */

struct admin_ctx {
    char service[256];
    char job[64];
    redisReply *ids;  /* a copy of the job ids looked at, each followed by its score */
    json_t **entries; /* list: one per id, NULL when the record is gone */
    size_t left;      /* replies still awaited */
    bool owned;       /* the record belongs to the service */
    bool ended;       /* ... and the job ended (no tombstone needed) */
    bool exists;      /* the job has a record (maybe a tombstone, maybe another service's) */
    json_t *record;   /* get: the record's fields */
};

static void admin_cleanup(struct queue_op *op)
{
    struct admin_ctx *a = op->ctx;
    if (a == NULL)
        return;
    if (a->entries != NULL)
        for (size_t i = 0; a->ids != NULL && i < a->ids->elements / 2; i++)
            json_decref(a->entries[i]);
    json_decref(a->record);
    free(a->entries);
    queue_reply_free(a->ids);
    free(a);
    op->ctx = NULL;
}

/* Starts an op for {service}[/{job}]; NULL when it is already answered. */
static struct queue_op *start(struct queue *q, const char *service, const char *job,
                              queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = queue_op_start(q, cb, arg);
    if (op == NULL)
        return NULL;
    if (service == NULL || service[0] == '\0' || strlen(service) >= 256 ||
        (job != NULL && (job[0] == '\0' || strlen(job) >= 64))) {
        queue_op_fail(op, 404, "no such job");
        return NULL;
    }
    struct admin_ctx *a = xcalloc(1, sizeof(*a));
    snprintf(a->service, sizeof(a->service), "%s", service);
    if (job != NULL)
        snprintf(a->job, sizeof(a->job), "%s", job);
    op->ctx = a;
    op->cleanup = admin_cleanup;
    return op;
}

static void ignore(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)op;
    (void)reply;
    (void)tag;
}

/* An HMGET service status reply: the record belongs to the service (a tombstone does not);
 * sets a->owned and a->ended. False also when there is no record. */
static bool take_owner(struct admin_ctx *a, const redisReply *r)
{
    const char *svc = NULL, *status = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        svc = queue_reply_str(r->element[0]);
        status = queue_reply_str(r->element[1]);
    }
    a->exists = svc != NULL || status != NULL;
    a->owned = svc != NULL && strcmp(svc, a->service) == 0 &&
               (status == NULL || strcmp(status, "deleted") != 0);
    a->ended = status != NULL && (strcmp(status, "succeeded") == 0 || strcmp(status, "dead") == 0);
    return a->owned;
}

/* Whether a job of the index without a record, created at `created` (its score, ms), is
 * pending rather than expired. */
static bool pending_without_record(const struct queue *q, const char *created)
{
    char *end = NULL;
    unsigned long long ms = created != NULL ? strtoull(created, &end, 10) : 0;
    if (created == NULL || end == created)
        return false;
    return (uint64_t)ms + (uint64_t)q->cfg.job_ttl_s * 1000 > queue_now_ms();
}

static json_t *time_or_null(const char *ms);

/* What a listing shows of a pending job that has no record yet: job_info's shape, with what
 * is not known until a worker starts it null. */
static json_t *pending_info(const char *created)
{
    return json_pack("{s:s, s:o, s:n, s:n, s:i, s:n, s:n, s:n, s:n}", "status", "pending",
                     "creation_time", time_or_null(created), "start_time", "finish_time",
                     "attempts", 0, "worker", "exit_code", "bucket", "key");
}

/* ---- GET /system/logs/{service} ---- */

static const char *const list_fields[] = {"status",      "created_ms", "started_ms",
                                          "finished_ms", "attempts",   "worker",
                                          "exit_code",   "bucket",     "key"};
#define N_LIST_FIELDS (sizeof(list_fields) / sizeof(list_fields[0]))

static json_t *time_or_null(const char *ms)
{
    char *end = NULL;
    unsigned long long v = ms != NULL ? strtoull(ms, &end, 10) : 0;
    if (ms == NULL || end == ms || *end != '\0')
        return json_null();
    char buf[32];
    queue_iso8601(v, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *int_or_null(const char *s)
{
    char *end = NULL;
    long long v = s != NULL ? strtoll(s, &end, 10) : 0;
    if (s == NULL || end == s || *end != '\0')
        return json_null();
    return json_integer(v);
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *job_info(const redisReply *r)
{
    const char *v[N_LIST_FIELDS];
    bool any = false;
    for (size_t i = 0; i < N_LIST_FIELDS; i++) {
        v[i] = i < r->elements ? queue_reply_str(r->element[i]) : NULL;
        any = any || v[i] != NULL;
    }
    if (!any)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "status", str_or_null(v[0]));
    json_object_set_new(o, "creation_time", time_or_null(v[1]));
    json_object_set_new(o, "start_time", time_or_null(v[2]));
    json_object_set_new(o, "finish_time", time_or_null(v[3]));
    json_object_set_new(o, "attempts", int_or_null(v[4]));
    json_object_set_new(o, "worker", str_or_null(v[5]));
    json_object_set_new(o, "exit_code", int_or_null(v[6]));
    json_object_set_new(o, "bucket", str_or_null(v[7]));
    json_object_set_new(o, "key", str_or_null(v[8]));
    return o;
}

static void on_list_record(struct queue_op *op, redisReply *reply, size_t i)
{
    struct admin_ctx *a = op->ctx;
    struct queue *q = op->q;
    const char *id = a->ids->element[2 * i]->str, *created = a->ids->element[2 * i + 1]->str;
    if (reply->type == REDIS_REPLY_ARRAY)
        a->entries[i] = job_info(reply);
    if (a->entries[i] == NULL && pending_without_record(q, created)) {
        a->entries[i] = pending_info(created);
    } else if (a->entries[i] == NULL) {
        char key[QUEUE_KEY_MAX];
        /* expired (retention): drop it from the index */
        queue_op_cmdf(op, ignore, 0, "ZREM %s %s", queue_key(q, key, "jobs:", a->service), id);
    }
    if (--a->left > 0)
        return;
    json_t *out = json_object();
    for (size_t k = 0; k < a->ids->elements / 2; k++)
        if (a->entries[k] != NULL) {
            json_object_set(out, a->ids->element[2 * k]->str, a->entries[k]);
        }
    queue_op_finish_json(op, 200, out);
}

/* A WITHSCORES reply of job ids: [id, score, ...], each a string. */
static bool is_id_list(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return false;
    for (size_t i = 0; i < r->elements; i++)
        if (queue_reply_str(r->element[i]) == NULL)
            return false;
    return true;
}

static void on_list_ids(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    if (!is_id_list(reply) || reply->elements == 0) {
        queue_op_finish_json(op, 200, json_object());
        return;
    }
    a->ids = queue_reply_dup(reply);
    a->entries = xcalloc(reply->elements / 2, sizeof(*a->entries));
    a->left = reply->elements / 2;
    for (size_t i = 0; i < reply->elements / 2; i++) {
        char key[QUEUE_KEY_MAX];
        const char *argv[2 + N_LIST_FIELDS];
        size_t lens[2 + N_LIST_FIELDS];
        argv[0] = "HMGET";
        argv[1] = queue_key(op->q, key, "job:", reply->element[2 * i]->str);
        for (size_t k = 0; k < N_LIST_FIELDS; k++)
            argv[2 + k] = list_fields[k];
        for (size_t k = 0; k < 2 + N_LIST_FIELDS; k++)
            lens[k] = strlen(argv[k]);
        if (queue_op_cmdv(op, on_list_record, i, 2 + (int)N_LIST_FIELDS, argv, lens) != 0)
            return;
    }
}

void queue_jobs_list(struct queue *q, const char *service, queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = start(q, service, NULL, cb, arg);
    char key[QUEUE_KEY_MAX];
    if (op != NULL)
        queue_op_cmdf(op, on_list_ids, 0, "ZREVRANGE %s 0 %d WITHSCORES",
                      queue_key(q, key, "jobs:", service), LIST_MAX - 1);
}

/* ---- GET /system/logs/{service}/{job} ---- */

static void on_log_owner(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)tag;
    take_owner(op->ctx, reply);
}

/* The job's score in the index: a job without a record is pending when it is young. */
static void on_log_score(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    if (!a->exists && pending_without_record(op->q, queue_reply_str(reply)))
        a->owned = true;
}

static void on_log_text(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    if (!a->owned) {
        queue_op_fail(op, 404, "no such job");
        return;
    }
    const char *s = queue_reply_str(reply);
    size_t len = s != NULL ? reply->len : 0;
    char *body = xmalloc(len + 1);
    memcpy(body, s != NULL ? s : "", len);
    body[len] = '\0';
    queue_op_finish(op, 200, body, len);
}

/* Pipelined: HMGET service status, ZSCORE in the index, then `then` (on_done). 0 or -1. */
static int send_lookup(struct queue_op *op, queue_op_step_cb *on_owner, queue_op_step_cb *on_score)
{
    struct queue *q = op->q;
    struct admin_ctx *a = op->ctx;
    char key[QUEUE_KEY_MAX];
    if (queue_op_cmdf(op, on_owner, 0, "HMGET %s service status",
                      queue_key(q, key, "job:", a->job)) != 0)
        return -1;
    return queue_op_cmdf(op, on_score, 0, "ZSCORE %s %s", queue_key(q, key, "jobs:", a->service),
                         a->job);
}

void queue_job_log(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                   void *arg)
{
    struct queue_op *op = start(q, service, job, cb, arg);
    char key[QUEUE_KEY_MAX];
    if (op == NULL)
        return;
    /* pipelined: the owner's replies come first */
    if (send_lookup(op, on_log_owner, on_log_score) == 0)
        queue_op_cmdf(op, on_log_text, 0, "GET %s", queue_key(q, key, "log:", job));
}

/* ---- GET /system/logs/{service}/{job}?record ---- */

static void on_record(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    json_t *o = json_object();
    bool owned = false, deleted = false;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2) {
        const char *name = queue_reply_str(reply->element[i]);
        const char *value = queue_reply_str(reply->element[i + 1]);
        if (name == NULL || value == NULL)
            continue;
        if (strcmp(name, "service") == 0)
            owned = strcmp(value, a->service) == 0;
        if (strcmp(name, "status") == 0)
            deleted = strcmp(value, "deleted") == 0;
        json_object_set_new(o, name, json_stringn(value, reply->element[i + 1]->len));
    }
    if (owned && !deleted)
        a->record = o;
    else
        json_decref(o);
    a->owned = owned && !deleted;
}

static void on_record_score(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    const char *created = queue_reply_str(reply);
    if (a->record != NULL) {
        queue_op_finish_json(op, 200, json_incref(a->record));
        return;
    }
    if (!pending_without_record(op->q, created)) {
        queue_op_fail(op, 404, "no such job");
        return;
    }
    /* a relayed job no worker has started yet */
    queue_op_finish_json(op, 200,
                         json_pack("{s:s, s:s, s:s, s:s}", "id", a->job, "service", a->service,
                                   "status", "pending", "created_ms", created));
}

void queue_job_get(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                   void *arg)
{
    struct queue_op *op = start(q, service, job, cb, arg);
    char key[QUEUE_KEY_MAX];
    if (op != NULL &&
        queue_op_cmdf(op, on_record, 0, "HGETALL %s", queue_key(q, key, "job:", job)) == 0)
        queue_op_cmdf(op, on_record_score, 0, "ZSCORE %s %s", queue_key(q, key, "jobs:", service),
                      job);
}

/* ---- DELETE /system/logs/{service}[/{job}] ---- */

/* Sends the deletion of one job's keys and index entry; the last reply calls `last`. A job
 * that has not ended (`tombstone`) keeps a record {status deleted, service} for the retention
 * time, which stops its start and its finish: its stream entry may still come to a worker, and
 * a relayed job's entry has what a start needs to make the record again. */
static int send_delete(struct queue_op *op, const char *id, bool tombstone, queue_op_step_cb *last)
{
    struct queue *q = op->q;
    struct admin_ctx *a = op->ctx;
    char k_job[QUEUE_KEY_MAX], k_log[QUEUE_KEY_MAX], k_out[QUEUE_KEY_MAX], k_in[QUEUE_KEY_MAX],
        k_done[QUEUE_KEY_MAX], k_jobs[QUEUE_KEY_MAX];
    if (queue_op_cmdf(op, ignore, 0, "DEL %s %s %s %s %s", queue_key(q, k_job, "job:", id),
                      queue_key(q, k_log, "log:", id), queue_key(q, k_out, "out:", id),
                      queue_key(q, k_in, "in:", id), queue_key(q, k_done, "done:", id)) != 0)
        return -1;
    if (tombstone && (queue_op_cmdf(op, ignore, 0, "HSET %s status deleted service %s", k_job,
                                    a->service) != 0 ||
                      queue_op_cmdf(op, ignore, 0, "EXPIRE %s %u", k_job, q->cfg.job_ttl_s) != 0))
        return -1;
    return queue_op_cmdf(op, last, 0, "ZREM %s %s", queue_key(q, k_jobs, "jobs:", a->service), id);
}

static void on_deleted(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)reply;
    (void)tag;
    queue_op_finish(op, 204, NULL, 0);
}

static void on_delete_owner(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)tag;
    take_owner(op->ctx, reply);
}

static void on_delete_score(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    const char *created = queue_reply_str(reply);
    if (a->owned) {
        send_delete(op, a->job, !a->ended, on_deleted);
    } else if (!a->exists && pending_without_record(op->q, created)) {
        send_delete(op, a->job, true, on_deleted); /* a relayed job not started yet */
    } else {
        if (!a->exists && created != NULL) {
            /* the record is gone (retention): drop the stale index entry */
            char key[QUEUE_KEY_MAX];
            queue_op_cmdf(op, ignore, 0, "ZREM %s %s", queue_key(op->q, key, "jobs:", a->service),
                          a->job);
        }
        queue_op_fail(op, 404, "no such job");
    }
}

static void on_delete_one_done(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)reply;
    (void)tag;
    if (--a->left == 0)
        queue_op_finish(op, 204, NULL, 0);
}

static void on_delete_status(struct queue_op *op, redisReply *reply, size_t i)
{
    struct admin_ctx *a = op->ctx;
    const char *status = queue_reply_str(reply);
    const char *id = a->ids->element[2 * i]->str, *created = a->ids->element[2 * i + 1]->str;
    /* ended, or expired; not one that is still to run */
    bool expired = status == NULL && !pending_without_record(op->q, created);
    if (expired ||
        (status != NULL && (strcmp(status, "succeeded") == 0 || strcmp(status, "dead") == 0))) {
        a->left++;
        if (send_delete(op, id, false, on_delete_one_done) != 0)
            return;
    }
    if (i + 1 == a->ids->elements / 2 && --a->left == 0) /* the status replies' own count */
        queue_op_finish(op, 204, NULL, 0);
}

static void on_delete_ids(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    struct queue *q = op->q;
    (void)tag;
    if (!is_id_list(reply) || reply->elements == 0) {
        queue_op_finish(op, 204, NULL, 0);
        return;
    }
    a->ids = queue_reply_dup(reply);
    a->left = 1; /* released when the last status reply was handled */
    for (size_t i = 0; i < reply->elements / 2; i++) {
        char key[QUEUE_KEY_MAX];
        if (queue_op_cmdf(op, on_delete_status, i, "HGET %s status",
                          queue_key(q, key, "job:", reply->element[2 * i]->str)) != 0)
            return;
    }
}

void queue_job_delete(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                      void *arg)
{
    struct queue_op *op = start(q, service, job, cb, arg);
    char key[QUEUE_KEY_MAX];
    if (op == NULL)
        return;
    if (job != NULL)
        send_lookup(op, on_delete_owner, on_delete_score);
    else
        queue_op_cmdf(op, on_delete_ids, 0, "ZRANGE %s 0 %d WITHSCORES",
                      queue_key(q, key, "jobs:", service), DELETE_MAX - 1);
}

/* GET and DELETE /system/logs/{service}[/{job}]: job listings, logs, records and deletion,
 * read from the job records the relay, POST /job and the workers write. A job belongs to the
 * service named in its record; asking for it under another service is a 404. */
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
    redisReply *ids;  /* a copy of the job ids looked at */
    json_t **entries; /* list: one per id, NULL when the record is gone */
    size_t left;      /* replies still awaited */
    bool owned;       /* log: the record belongs to the service */
};

static void admin_cleanup(struct queue_op *op)
{
    struct admin_ctx *a = op->ctx;
    if (a == NULL)
        return;
    if (a->entries != NULL)
        for (size_t i = 0; a->ids != NULL && i < a->ids->elements; i++)
            json_decref(a->entries[i]);
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

static bool is_owned(const struct admin_ctx *a, const redisReply *service)
{
    const char *s = queue_reply_str(service);
    return s != NULL && strcmp(s, a->service) == 0;
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
    if (reply->type == REDIS_REPLY_ARRAY)
        a->entries[i] = job_info(reply);
    if (a->entries[i] == NULL) {
        char key[QUEUE_KEY_MAX];
        /* expired (retention): drop it from the index */
        queue_op_cmdf(op, ignore, 0, "ZREM %s %s", queue_key(q, key, "jobs:", a->service),
                      a->ids->element[i]->str);
    }
    if (--a->left > 0)
        return;
    json_t *out = json_object();
    for (size_t k = 0; k < a->ids->elements; k++)
        if (a->entries[k] != NULL) {
            json_object_set(out, a->ids->element[k]->str, a->entries[k]);
        }
    queue_op_finish_json(op, 200, out);
}

static void on_list_ids(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        queue_op_finish_json(op, 200, json_object());
        return;
    }
    a->ids = queue_reply_dup(reply);
    a->entries = xcalloc(reply->elements, sizeof(*a->entries));
    a->left = reply->elements;
    for (size_t i = 0; i < reply->elements; i++) {
        char key[QUEUE_KEY_MAX];
        const char *argv[2 + N_LIST_FIELDS];
        size_t lens[2 + N_LIST_FIELDS];
        argv[0] = "HMGET";
        argv[1] = queue_key(op->q, key, "job:", reply->element[i]->str);
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
        queue_op_cmdf(op, on_list_ids, 0, "ZREVRANGE %s 0 %d", queue_key(q, key, "jobs:", service),
                      LIST_MAX - 1);
}

/* ---- GET /system/logs/{service}/{job} ---- */

static void on_log_owner(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    a->owned = is_owned(a, reply);
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

void queue_job_log(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                   void *arg)
{
    struct queue_op *op = start(q, service, job, cb, arg);
    char key[QUEUE_KEY_MAX];
    if (op == NULL)
        return;
    /* pipelined: the owner's reply comes first */
    if (queue_op_cmdf(op, on_log_owner, 0, "HGET %s service", queue_key(q, key, "job:", job)) == 0)
        queue_op_cmdf(op, on_log_text, 0, "GET %s", queue_key(q, key, "log:", job));
}

/* ---- GET /system/logs/{service}/{job}?record ---- */

static void on_record(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    (void)tag;
    json_t *o = json_object();
    bool owned = false;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2) {
        const char *name = queue_reply_str(reply->element[i]);
        const char *value = queue_reply_str(reply->element[i + 1]);
        if (name == NULL || value == NULL)
            continue;
        if (strcmp(name, "service") == 0)
            owned = strcmp(value, a->service) == 0;
        json_object_set_new(o, name, json_stringn(value, reply->element[i + 1]->len));
    }
    if (!owned) {
        json_decref(o);
        queue_op_fail(op, 404, "no such job");
        return;
    }
    queue_op_finish_json(op, 200, o);
}

void queue_job_get(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                   void *arg)
{
    struct queue_op *op = start(q, service, job, cb, arg);
    char key[QUEUE_KEY_MAX];
    if (op != NULL)
        queue_op_cmdf(op, on_record, 0, "HGETALL %s", queue_key(q, key, "job:", job));
}

/* ---- DELETE /system/logs/{service}[/{job}] ---- */

/* Sends the deletion of one job's keys and index entry; the last reply calls `last`. */
static int send_delete(struct queue_op *op, const char *id, queue_op_step_cb *last)
{
    struct queue *q = op->q;
    struct admin_ctx *a = op->ctx;
    char k_job[QUEUE_KEY_MAX], k_log[QUEUE_KEY_MAX], k_out[QUEUE_KEY_MAX], k_in[QUEUE_KEY_MAX],
        k_done[QUEUE_KEY_MAX], k_jobs[QUEUE_KEY_MAX];
    if (queue_op_cmdf(op, ignore, 0, "DEL %s %s %s %s %s", queue_key(q, k_job, "job:", id),
                      queue_key(q, k_log, "log:", id), queue_key(q, k_out, "out:", id),
                      queue_key(q, k_in, "in:", id), queue_key(q, k_done, "done:", id)) != 0)
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
    struct admin_ctx *a = op->ctx;
    (void)tag;
    if (queue_reply_str(reply) == NULL) {
        /* the record is gone (retention): drop a stale index entry, answer 404 */
        char key[QUEUE_KEY_MAX];
        queue_op_cmdf(op, ignore, 0, "ZREM %s %s", queue_key(op->q, key, "jobs:", a->service),
                      a->job);
        queue_op_fail(op, 404, "no such job");
        return;
    }
    if (!is_owned(a, reply)) {
        queue_op_fail(op, 404, "no such job");
        return;
    }
    send_delete(op, a->job, on_deleted);
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
    /* ended, or already expired */
    if (status == NULL || strcmp(status, "succeeded") == 0 || strcmp(status, "dead") == 0) {
        a->left++;
        if (send_delete(op, a->ids->element[i]->str, on_delete_one_done) != 0)
            return;
    }
    if (i + 1 == a->ids->elements && --a->left == 0) /* the status replies' own count */
        queue_op_finish(op, 204, NULL, 0);
}

static void on_delete_ids(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct admin_ctx *a = op->ctx;
    struct queue *q = op->q;
    (void)tag;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        queue_op_finish(op, 204, NULL, 0);
        return;
    }
    a->ids = queue_reply_dup(reply);
    a->left = 1; /* released when the last status reply was handled */
    for (size_t i = 0; i < reply->elements; i++) {
        char key[QUEUE_KEY_MAX];
        if (queue_op_cmdf(op, on_delete_status, i, "HGET %s status",
                          queue_key(q, key, "job:", reply->element[i]->str)) != 0)
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
        queue_op_cmdf(op, on_delete_owner, 0, "HGET %s service", queue_key(q, key, "job:", job));
    else
        queue_op_cmdf(op, on_delete_ids, 0, "ZRANGE %s 0 %d", queue_key(q, key, "jobs:", service),
                      DELETE_MAX - 1);
}

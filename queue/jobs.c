/* POST /job and POST /run: jobs created directly with the enqueue script (no outbox: the
 * caller learns the outcome). /run then waits for the worker's final status on done:{id}
 * with BLPOP on a private connection, since a blocking command stalls the one it is sent on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gateway/uuid.h"
#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define BLPOP_SLACK_S 2 /* the BLPOP outlives our own timer, which answers 504 first */

struct job_ctx {
    char id[37];
    bool sync;
    struct queue_conn *waiter; /* /run: BLPOP done:{id} */
    struct event *timer;       /* /run: run_timeout */
    bool waiting;              /* a BLPOP is in flight */
};

static struct job_ctx *ctx_of(struct queue_op *op)
{
    return op->ctx;
}

static void job_cancel(struct queue_op *op)
{
    struct job_ctx *j = ctx_of(op);
    if (j->timer != NULL)
        event_free(j->timer);
    j->timer = NULL;
    queue_conn_free(j->waiter); /* a BLPOP in flight comes back NULL now */
    j->waiter = NULL;
}

static void job_cleanup(struct queue_op *op)
{
    free(op->ctx);
    op->ctx = NULL;
}

/* Sends SET in:{id} (when the payload is the input) and the enqueue script. 0 or -1 (the op
 * is finished then). */
static int send_enqueue(struct queue_op *op, const struct queue_job_spec *spec,
                        queue_op_step_cb *on_done)
{
    struct queue *q = op->q;
    struct job_ctx *j = ctx_of(op);
    char k_job[QUEUE_KEY_MAX], k_inv[QUEUE_KEY_MAX];
    char k_jobs[QUEUE_KEY_MAX], created[24], attempts[16];
    const char *pool = spec->pool != NULL ? spec->pool : "default";
    snprintf(created, sizeof(created), "%" PRIu64, queue_now_ms());
    snprintf(attempts, sizeof(attempts), "%u", spec->max_attempts > 0 ? spec->max_attempts : 1);

    if (spec->bucket == NULL) {
        char k_in[QUEUE_KEY_MAX];
        /* before the enqueue on the same connection: no worker sees the job without it */
        if (queue_op_cmdf(op, NULL, 0, "SET %s %b EX %u", queue_key(q, k_in, "in:", j->id),
                          spec->payload != NULL ? spec->payload : "",
                          spec->payload != NULL ? spec->payload_len : (size_t)0,
                          q->cfg.job_ttl_s) != 0)
            return -1;
    }
    const char *argv[32];
    size_t n = 0;
    argv[n++] = queue_key(q, k_job, "job:", j->id);
    argv[n++] = queue_key(q, k_inv, "inv:", pool);
    argv[n++] = queue_key(q, k_jobs, "jobs:", spec->service);
    argv[n++] = j->id;
    argv[n++] = created;
    const char *fields[][2] = {
        {"id", j->id},
        {"service", spec->service},
        {"pool", pool},
        {"bucket", spec->bucket},
        {"key", spec->key},
        {"event", spec->event_json},
        {"rev", spec->rev},
        {"max_attempts", attempts},
        {"created_ms", created},
        {"payload", spec->bucket == NULL ? "1" : NULL},
        {"sync", j->sync ? "1" : NULL}, /* set before the XADD: the worker must see it */
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i][1] == NULL)
            continue;
        argv[n++] = fields[i][0];
        argv[n++] = fields[i][1];
    }
    size_t lens[32];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return queue_op_eval(op, &qk_enqueue, 3, (int)n, argv, lens, on_done, 0);
}

static struct queue_op *start(struct queue *q, const struct queue_job_spec *spec, bool sync,
                              queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = queue_op_start(q, cb, arg);
    if (op == NULL)
        return NULL;
    if (spec == NULL || spec->service == NULL || spec->service[0] == '\0') {
        queue_op_fail(op, 400, "no service");
        return NULL;
    }
    struct job_ctx *j = xcalloc(1, sizeof(*j));
    gw_uuid(j->id);
    j->sync = sync;
    op->ctx = j;
    op->cancel = job_cancel;
    op->cleanup = job_cleanup;
    return op;
}

/* ---- POST /job ---- */

static void on_submitted(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)reply;
    (void)tag;
    queue_op_finish_json(op, 201, json_pack("{s:s}", "job_id", ctx_of(op)->id));
}

void queue_job_submit(struct queue *q, const struct queue_job_spec *spec, queue_reply_cb *cb,
                      void *arg)
{
    struct queue_op *op = start(q, spec, false, cb, arg);
    if (op != NULL)
        send_enqueue(op, spec, on_submitted);
}

/* ---- POST /run ---- */

static void on_stdout(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)tag;
    const char *s = queue_reply_str(reply);
    size_t len = s != NULL ? reply->len : 0;
    char *body = xmalloc(len + 1);
    memcpy(body, s != NULL ? s : "", len);
    body[len] = '\0';
    queue_op_finish(op, 200, body, len);
}

static const char *field(const redisReply *r, const char *name)
{
    return queue_reply_str(queue_reply_field(r, name));
}

static void on_failed_record(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)tag;
    const char *status = field(reply, "status");
    const char *exit_s = field(reply, "exit_code");
    const char *reason = field(reply, "reason");
    char *end = NULL;
    long long code = exit_s != NULL ? strtoll(exit_s, &end, 10) : 0;
    json_t *exit_j =
        exit_s != NULL && end != exit_s && *end == '\0' ? json_integer(code) : json_null();
    queue_op_finish_json(op, 502,
                         json_pack("{s:s, s:s, s:o, s:s}", "job_id", ctx_of(op)->id, "status",
                                   status != NULL ? status : "dead", "exit_code", exit_j, "reason",
                                   reason != NULL ? reason : ""));
}

static void send_blpop(struct queue_op *op);

static void on_done_popped(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue_op *op = arg;
    struct job_ctx *j = ctx_of(op);
    (void)c;
    j->waiting = false;
    if (!op->finished && reply != NULL) {
        struct queue *q = op->q;
        char key[QUEUE_KEY_MAX];
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
            const char *status = queue_reply_str(reply->element[1]);
            /* the rest on the shared connection: the waiter is closed from the loop */
            if (status != NULL && strcmp(status, "succeeded") == 0)
                queue_op_cmdf(op, on_stdout, 0, "GET %s", queue_key(q, key, "out:", j->id));
            else
                queue_op_cmdf(op, on_failed_record, 0, "HGETALL %s",
                              queue_key(q, key, "job:", j->id));
        } else if (reply->type == REDIS_REPLY_NIL) {
            send_blpop(op); /* Redis' own timeout; ours decides */
        } else {
            log_warn(&q->log, "run %s: BLPOP: %.200s", j->id,
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
            queue_op_fail(op, 500, "waiting for the job failed");
        }
    }
    /* NULL: the waiter reconnects and on_waiter_ready asks again */
    queue_op_release(op);
}

static void send_blpop(struct queue_op *op)
{
    struct job_ctx *j = ctx_of(op);
    char key[QUEUE_KEY_MAX];
    unsigned wait_s = op->q->cfg.run_timeout_ms / 1000 + BLPOP_SLACK_S;
    if (j->waiting || op->finished)
        return;
    queue_op_hold(op);
    if (queue_conn_cmdf(j->waiter, on_done_popped, op, "BLPOP %s %u",
                        queue_key(op->q, key, "done:", j->id), wait_s) != 0) {
        queue_op_release(op);
        return;
    }
    j->waiting = true;
}

static void on_waiter_ready(struct queue_conn *c, void *arg)
{
    (void)c;
    send_blpop(arg);
}

static void on_run_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct queue_op *op = arg;
    (void)fd;
    (void)what;
    queue_op_finish_json(op, 504,
                         json_pack("{s:s, s:s}", "job_id", ctx_of(op)->id, "status", "timeout"));
}

static void on_run_enqueued(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct job_ctx *j = ctx_of(op);
    (void)reply;
    (void)tag;
    struct queue_conn_opts opts = {
        .url = &op->q->url,
        .name = "run",
        .stall_ms = 0, /* BLPOP blocks by design */
        .quiet = true,
        .on_ready = on_waiter_ready,
        .arg = op,
    };
    j->waiter = queue_conn_new(op->q->base, &opts);
}

void queue_job_run(struct queue *q, const struct queue_job_spec *spec, queue_reply_cb *cb,
                   void *arg)
{
    struct queue_op *op = start(q, spec, true, cb, arg);
    if (op == NULL)
        return;
    struct job_ctx *j = ctx_of(op);
    j->timer = evtimer_new(q->base, on_run_timeout, op);
    struct timeval tv = {q->cfg.run_timeout_ms / 1000, (long)(q->cfg.run_timeout_ms % 1000) * 1000};
    evtimer_add(j->timer, &tv);
    send_enqueue(op, spec, on_run_enqueued);
}

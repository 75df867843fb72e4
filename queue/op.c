/* Operations of the admin API (see internal.h): one caller callback, exactly once, delivered
 * from the loop; the op lives on until the last reply of its commands came back. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

struct step {
    struct queue_op *op;
    queue_op_step_cb *cb;
    size_t tag;
};

static void op_free(struct queue_op *op)
{
    struct queue *q = op->q;
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        q->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    if (op->cancel != NULL)
        op->cancel(op);
    if (op->cleanup != NULL)
        op->cleanup(op);
    event_free(op->ev);
    free(op->body);
    free(op);
}

static void deliver(struct queue_op *op)
{
    struct queue *q = op->q;
    op->delivered = true;
    if (op->cancel != NULL) {
        op->cancel(op); /* outside any hiredis callback: private connections may close */
        op->cancel = NULL;
    }
    char *body = op->body;
    op->body = NULL;
    q->cb_depth++;
    op->cb(op->status, body, body != NULL ? op->len : 0, op->arg);
    q->cb_depth--;
    free(body);
}

static void on_op_event(evutil_socket_t fd, short what, void *arg)
{
    struct queue_op *op = arg;
    struct queue *q = op->q;
    (void)fd;
    (void)what;
    if (!op->delivered) {
        deliver(op);
        if (q->free_pending && q->cb_depth == 0) {
            queue_destroy_now(q); /* frees this op too */
            return;
        }
    }
    if (op->n_out == 0)
        op_free(op);
}

struct queue_op *queue_op_start(struct queue *q, queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = xcalloc(1, sizeof(*op));
    op->q = q;
    op->cb = cb;
    op->arg = arg;
    op->conn = q->conn;
    op->ev = event_new(q->base, -1, 0, on_op_event, op);
    op->next = q->ops;
    if (q->ops != NULL)
        q->ops->prev = op;
    q->ops = op;
    if (q->freeing) {
        queue_op_fail(op, 503, "the queue is closing");
        return NULL;
    }
    if (q->conn == NULL) {
        queue_op_fail(op, 503, "no Redis configured");
        return NULL;
    }
    if (!queue_conn_is_ready(q->conn)) {
        queue_op_fail(op, 503, "Redis is not connected");
        return NULL;
    }
    return op;
}

void queue_op_finish(struct queue_op *op, int status, char *body, size_t len)
{
    if (op->finished) {
        free(body);
        return;
    }
    op->finished = true;
    op->status = status;
    op->body = body;
    op->len = len;
    event_active(op->ev, EV_TIMEOUT, 1);
}

void queue_op_finish_json(struct queue_op *op, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL) {
        queue_op_fail(op, 500, "cannot encode JSON");
        return;
    }
    /* jansson allocates with malloc by default: the op frees it with free() */
    queue_op_finish(op, status, text, strlen(text));
}

void queue_op_fail(struct queue_op *op, int status, const char *msg)
{
    queue_op_finish_json(op, status, json_pack("{s:s}", "error", msg != NULL ? msg : ""));
}

static void on_step(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct step *s = arg;
    struct queue_op *op = s->op;
    (void)c;
    if (!op->finished) {
        if (reply == NULL) {
            queue_op_fail(op, 503, "Redis connection lost");
        } else if (reply->type == REDIS_REPLY_ERROR) {
            log_warn(&op->q->log, "redis: %.200s", reply->str);
            queue_op_fail(op, 500, reply->str);
        } else if (s->cb != NULL) {
            s->cb(op, reply, s->tag);
        }
    }
    free(s);
    queue_op_release(op); /* a delivered op is freed from the loop, not in hiredis */
}

static struct step *step_new(struct queue_op *op, queue_op_step_cb *cb, size_t tag)
{
    struct step *s = xmalloc(sizeof(*s));
    *s = (struct step){.op = op, .cb = cb, .tag = tag};
    return s;
}

/* A command that could not be sent finishes the op (503) and is not counted. */
static int sent(struct queue_op *op, struct step *s, int rc)
{
    if (rc != 0) {
        free(s);
        queue_op_fail(op, 503, "Redis is not connected");
        return -1;
    }
    op->n_out++;
    return 0;
}

int queue_op_cmdf(struct queue_op *op, queue_op_step_cb *cb, size_t tag, const char *fmt, ...)
{
    struct step *s = step_new(op, cb, tag);
    va_list ap;
    va_start(ap, fmt);
    int rc = op->conn != NULL ? queue_conn_vcmdf(op->conn, on_step, s, fmt, ap) : -1;
    va_end(ap);
    return sent(op, s, rc);
}

int queue_op_cmdv(struct queue_op *op, queue_op_step_cb *cb, size_t tag, int argc,
                  const char **argv, const size_t *lens)
{
    struct step *s = step_new(op, cb, tag);
    int rc = op->conn != NULL ? queue_conn_cmdv(op->conn, on_step, s, argc, argv, lens) : -1;
    return sent(op, s, rc);
}

int queue_op_eval(struct queue_op *op, const struct qk_script *script, int nkeys, int argc,
                  const char **argv, const size_t *lens, queue_op_step_cb *cb, size_t tag)
{
    struct step *s = step_new(op, cb, tag);
    int rc = op->conn != NULL
                 ? queue_conn_eval(op->conn, script, nkeys, argc, argv, lens, on_step, s)
                 : -1;
    return sent(op, s, rc);
}

void queue_op_hold(struct queue_op *op)
{
    op->n_out++;
}

void queue_op_release(struct queue_op *op)
{
    op->n_out--;
    if (op->delivered && op->n_out == 0)
        event_active(op->ev, EV_TIMEOUT, 1);
}

void queue_op_shutdown_all(struct queue *q)
{
    while (q->ops != NULL) {
        struct queue_op *op = q->ops;
        if (!op->finished)
            queue_op_fail(op, 503, "the queue is closing");
        if (!op->delivered)
            deliver(op);
        ASSERT(op->n_out == 0); /* every connection is closed by now */
        op_free(op);
    }
}

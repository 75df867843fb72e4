/* The push targets' admin calls: GET /system/notifications/{target}/dlq and POST
 * .../dlq/replay (queue.h). Both run as ops on the main connection; the deliveries are push.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define DLQ_LIST_MAX   1000
#define REPLAY_PER_RUN 1000 /* dead letters moved per script call: Redis is never held long */

struct dlq_ctx {
    char k_dlq[QUEUE_KEY_MAX];
    char k_ntf[QUEUE_KEY_MAX];
    long long replayed;
};

static void dlq_cleanup(struct queue_op *op)
{
    free(op->ctx);
    op->ctx = NULL;
}

static struct queue_op *start(struct queue *q, const char *target, queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = queue_op_start(q, cb, arg);
    if (op == NULL)
        return NULL;
    if (target == NULL || queue_push_find(q, target) == NULL) {
        queue_op_fail(op, 404, "no such target");
        return NULL;
    }
    struct dlq_ctx *d = xcalloc(1, sizeof(*d));
    queue_key(q, d->k_dlq, "ntfdlq:", target);
    queue_key(q, d->k_ntf, "ntf:", target);
    op->ctx = d;
    op->cleanup = dlq_cleanup;
    return op;
}

static json_t *int_of(const redisReply *fields, const char *name)
{
    const redisReply *v = queue_reply_field(fields, name);
    char *end = NULL;
    long long n = v != NULL ? strtoll(v->str, &end, 10) : 0;
    return v != NULL && end != v->str && *end == '\0' ? json_integer(n) : json_null();
}

/* The field as a JSON string; null when it is missing or not UTF-8 text. */
static json_t *str_of(const redisReply *fields, const char *name)
{
    const redisReply *v = queue_reply_field(fields, name);
    json_t *s = v != NULL ? json_stringn(v->str, v->len) : NULL;
    return s != NULL ? s : json_null();
}

/* The field's bytes in base64 (an outbox record kept whole is binary); null when missing. */
static json_t *base64_of(const redisReply *fields, const char *name)
{
    const redisReply *v = queue_reply_field(fields, name);
    if (v == NULL || v->len > INT_MAX / 2)
        return json_null();
    unsigned char *out = xmalloc(4 * (v->len / 3 + 1) + 1);
    int n = EVP_EncodeBlock(out, (const unsigned char *)v->str, (int)v->len);
    json_t *s = json_stringn((const char *)out, n > 0 ? (size_t)n : 0);
    free(out);
    return s != NULL ? s : json_null();
}

static void on_dlq_range(struct queue_op *op, redisReply *reply, size_t tag)
{
    (void)tag;
    json_t *out = json_array();
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *f = e->element[1];
        json_t *o = json_object();
        json_object_set_new(o, "id", str_of(f, "id"));
        json_object_set_new(o, "entry", json_string(e->element[0]->str));
        json_object_set_new(o, "created_ms", int_of(f, "created_ms"));
        json_object_set_new(o, "attempts", int_of(f, "attempts"));
        json_object_set_new(o, "reason", str_of(f, "reason"));
        json_object_set_new(o, "body", str_of(f, "body"));
        if (queue_reply_field(f, "rec") != NULL) /* a record that could not be expanded */
            json_object_set_new(o, "record_base64", base64_of(f, "rec"));
        json_array_append_new(out, o);
    }
    queue_op_finish_json(op, 200, out);
}

void queue_target_dlq_list(struct queue *q, const char *target, queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = start(q, target, cb, arg);
    if (op == NULL)
        return;
    struct dlq_ctx *d = op->ctx;
    queue_op_cmdf(op, on_dlq_range, 0, "XRANGE %s - + COUNT %d", d->k_dlq, DLQ_LIST_MAX);
}

static void send_replay(struct queue_op *op);

static void on_replayed(struct queue_op *op, redisReply *reply, size_t tag)
{
    struct dlq_ctx *d = op->ctx;
    (void)tag;
    long long n = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    d->replayed += n;
    if (n >= REPLAY_PER_RUN) {
        send_replay(op);
        return;
    }
    queue_op_finish_json(op, 200, json_pack("{s:I}", "replayed", (json_int_t)d->replayed));
}

static void send_replay(struct queue_op *op)
{
    struct dlq_ctx *d = op->ctx;
    char max[16];
    snprintf(max, sizeof(max), "%d", REPLAY_PER_RUN);
    const char *argv[] = {d->k_dlq, d->k_ntf, max};
    size_t lens[] = {strlen(d->k_dlq), strlen(d->k_ntf), strlen(max)};
    queue_op_eval(op, &qk_ntf_replay, 2, 3, argv, lens, on_replayed, 0);
}

void queue_target_dlq_replay(struct queue *q, const char *target, queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = start(q, target, cb, arg);
    if (op != NULL)
        send_replay(op);
}

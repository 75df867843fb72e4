/* GET /system/info's live part: the workers (from workers:{pool} and worker:{id}) and the
 * pools (pending invocations of inv:{pool}; dead jobs of the services this gateway published
 * for the pool, from dlq:{service}). Pools are found with bounded SCANs, so a huge keyspace
 * gives a partial answer rather than a slow one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define SCAN_ROUNDS 50
#define MAX_POOLS   256
#define MAX_WORKERS 1024

struct pool_info {
    char *name;
    bool stream;    /* inv:{pool} exists */
    bool workers;   /* workers:{pool} exists */
    long long lag;  /* of the group "workers"; -1 unknown */
    long long xlen; /* entries in the stream */
    long long dead; /* dlq entries of this gateway's services on this pool */
};

struct worker_info {
    char *id;
    double heartbeat_ms;
    redisReply *hash;
};

struct info_ctx {
    struct pool_info pools[MAX_POOLS];
    size_t n_pools;
    struct worker_info workers[MAX_WORKERS];
    size_t n_workers;
    unsigned scan_rounds[2];
    unsigned scans_left;
    size_t left; /* replies of the current stage */
};

enum { SCAN_WORKERS = 0, SCAN_INV = 1 };

static void info_cleanup(struct queue_op *op)
{
    struct info_ctx *c = op->ctx;
    for (size_t i = 0; i < c->n_pools; i++)
        free(c->pools[i].name);
    for (size_t i = 0; i < c->n_workers; i++) {
        free(c->workers[i].id);
        queue_reply_free(c->workers[i].hash);
    }
    free(c);
    op->ctx = NULL;
}

static struct pool_info *pool_get(struct info_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->n_pools; i++)
        if (strcmp(c->pools[i].name, name) == 0)
            return &c->pools[i];
    if (c->n_pools == MAX_POOLS)
        return NULL;
    struct pool_info *p = &c->pools[c->n_pools++];
    *p = (struct pool_info){.name = xstrdup(name), .lag = -1};
    return p;
}

static const char *hash_field(const redisReply *r, const char *name)
{
    return queue_reply_str(queue_reply_field(r, name));
}

static json_t *int_field(const redisReply *r, const char *name)
{
    const char *s = hash_field(r, name);
    char *end = NULL;
    long long v = s != NULL ? strtoll(s, &end, 10) : 0;
    return s != NULL && end != s && *end == '\0' ? json_integer(v) : json_null();
}

/* "edge,cloud" or "edge cloud" -> ["edge", "cloud"] */
static json_t *split_pools(const char *s)
{
    json_t *a = json_array();
    while (s != NULL && *s != '\0') {
        size_t n = strcspn(s, ", ");
        if (n > 0)
            json_array_append_new(a, json_stringn(s, n));
        s += n;
        s += strspn(s, ", ");
    }
    return a;
}

/* ---- stage 4: the answer ---- */

static void answer(struct queue_op *op)
{
    struct info_ctx *c = op->ctx;
    uint64_t now = queue_now_ms();
    json_t *workers = json_array();
    for (size_t i = 0; i < c->n_workers; i++) {
        const struct worker_info *w = &c->workers[i];
        if (w->hash == NULL || w->hash->elements == 0)
            continue; /* expired: its heartbeats stopped */
        double age = (double)now - w->heartbeat_ms;
        const char *host = hash_field(w->hash, "host");
        json_array_append_new(workers,
                              json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "id", w->id, "pools",
                                        split_pools(hash_field(w->hash, "pools")), "host",
                                        host != NULL ? json_string(host) : json_null(), "pid",
                                        int_field(w->hash, "pid"), "concurrency",
                                        int_field(w->hash, "concurrency"), "running",
                                        int_field(w->hash, "running"), "heartbeat_age_ms",
                                        (json_int_t)(age > 0 ? age : 0)));
    }
    json_t *pools = json_object();
    for (size_t i = 0; i < c->n_pools; i++) {
        const struct pool_info *p = &c->pools[i];
        long long pending = p->lag >= 0 ? p->lag : p->xlen;
        json_object_set_new(
            pools, p->name,
            json_pack("{s:I, s:I}", "pending", (json_int_t)pending, "dead", (json_int_t)p->dead));
    }
    queue_op_finish_json(op, 200, json_pack("{s:o, s:o}", "workers", workers, "pools", pools));
}

/* ---- stage 3: the workers' hashes ---- */

static void on_worker_hash(struct queue_op *op, redisReply *reply, size_t i)
{
    struct info_ctx *c = op->ctx;
    c->workers[i].hash = queue_reply_dup(reply);
    if (--c->left == 0)
        answer(op);
}

static void read_workers(struct queue_op *op)
{
    struct info_ctx *c = op->ctx;
    if (c->n_workers == 0) {
        answer(op);
        return;
    }
    c->left = c->n_workers;
    for (size_t i = 0; i < c->n_workers; i++) {
        char key[QUEUE_KEY_MAX];
        if (queue_op_cmdf(op, on_worker_hash, i, "HGETALL %s",
                          queue_key(op->q, key, "worker:", c->workers[i].id)) != 0)
            return;
    }
}

/* ---- stage 2: per pool ---- */

static void stage2_reply(struct queue_op *op)
{
    struct info_ctx *c = op->ctx;
    if (--c->left == 0)
        read_workers(op);
}

static void on_xinfo(struct queue_op *op, redisReply *reply, size_t i)
{
    struct info_ctx *c = op->ctx;
    /* [[name, "workers", consumers, n, pending, n, last-delivered-id, id, entries-read, n,
     *   lag, n], ...] */
    for (size_t g = 0; reply->type == REDIS_REPLY_ARRAY && g < reply->elements; g++) {
        const redisReply *grp = reply->element[g];
        const char *name = hash_field(grp, "name");
        if (name == NULL || strcmp(name, QK_GROUP) != 0)
            continue;
        for (size_t k = 0; k + 1 < grp->elements; k += 2)
            if (grp->element[k]->str != NULL && strcmp(grp->element[k]->str, "lag") == 0 &&
                grp->element[k + 1]->type == REDIS_REPLY_INTEGER)
                c->pools[i].lag = grp->element[k + 1]->integer;
    }
    stage2_reply(op);
}

static void on_xlen(struct queue_op *op, redisReply *reply, size_t i)
{
    struct info_ctx *c = op->ctx;
    if (reply->type == REDIS_REPLY_INTEGER)
        c->pools[i].xlen = reply->integer;
    stage2_reply(op);
}

static void on_dlq_len(struct queue_op *op, redisReply *reply, size_t i)
{
    struct info_ctx *c = op->ctx;
    if (reply->type == REDIS_REPLY_INTEGER)
        c->pools[i].dead += reply->integer;
    stage2_reply(op);
}

static void on_pool_workers(struct queue_op *op, redisReply *reply, size_t i)
{
    struct info_ctx *c = op->ctx;
    (void)i;
    /* WITHSCORES: id, score, id, score ... */
    for (size_t k = 0; reply->type == REDIS_REPLY_ARRAY && k + 1 < reply->elements; k += 2) {
        const char *id = queue_reply_str(reply->element[k]);
        const char *score = queue_reply_str(reply->element[k + 1]);
        if (id == NULL || score == NULL)
            continue;
        double hb = strtod(score, NULL);
        size_t w = 0;
        while (w < c->n_workers && strcmp(c->workers[w].id, id) != 0)
            w++;
        if (w == c->n_workers) {
            if (c->n_workers == MAX_WORKERS)
                continue;
            c->workers[c->n_workers++] = (struct worker_info){.id = xstrdup(id)};
        }
        if (hb > c->workers[w].heartbeat_ms)
            c->workers[w].heartbeat_ms = hb;
    }
    stage2_reply(op);
}

struct dlq_walk {
    struct queue_op *op;
    int rc;
};

static void send_dlq_length(const char *name, const char *json, void *arg)
{
    struct dlq_walk *w = arg;
    struct queue_op *op = w->op;
    struct info_ctx *c = op->ctx;
    if (w->rc != 0)
        return;
    json_t *svc = json_loads(json, 0, NULL);
    const char *pool = json_string_value(json_object_get(svc, "pool"));
    struct pool_info *p = pool_get(c, pool != NULL && pool[0] != '\0' ? pool : "default");
    json_decref(svc);
    if (p == NULL)
        return;
    char key[QUEUE_KEY_MAX];
    c->left++;
    w->rc = queue_op_cmdf(op, on_dlq_len, (size_t)(p - c->pools), "XLEN %s",
                          queue_key(op->q, key, "dlq:", name));
}

/* The dead jobs of the services this gateway published, counted for their pools. */
static int send_dlq_lengths(struct queue_op *op)
{
    struct dlq_walk w = {.op = op, .rc = 0};
    queue_services_each(op->q, send_dlq_length, &w);
    return w.rc;
}

static void per_pool(struct queue_op *op)
{
    struct info_ctx *c = op->ctx;
    struct queue *q = op->q;
    c->left = 1; /* held while sending */
    if (send_dlq_lengths(op) != 0)
        return;
    for (size_t i = 0; i < c->n_pools; i++) {
        char key[QUEUE_KEY_MAX];
        const struct pool_info *p = &c->pools[i];
        if (p->stream) {
            queue_key(q, key, "inv:", p->name);
            c->left += 2;
            if (queue_op_cmdf(op, on_xinfo, i, "XINFO GROUPS %s", key) != 0 ||
                queue_op_cmdf(op, on_xlen, i, "XLEN %s", key) != 0)
                return;
        }
        if (p->workers) {
            c->left++;
            if (queue_op_cmdf(op, on_pool_workers, i, "ZRANGE %s 0 %d WITHSCORES",
                              queue_key(q, key, "workers:", p->name), MAX_WORKERS - 1) != 0)
                return;
        }
    }
    stage2_reply(op);
}

/* ---- stage 1: find the pools ---- */

static void on_scan(struct queue_op *op, redisReply *reply, size_t which)
{
    struct info_ctx *c = op->ctx;
    struct queue *q = op->q;
    const char *kind = which == SCAN_WORKERS ? "workers:" : "inv:";
    size_t skip = strlen(q->cfg.prefix) + strlen(kind);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        queue_op_fail(op, 500, "unexpected SCAN reply");
        return;
    }
    const redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = queue_reply_str(keys->element[i]);
        if (k == NULL || strlen(k) <= skip)
            continue;
        struct pool_info *p = pool_get(c, k + skip);
        if (p == NULL)
            continue;
        if (which == SCAN_WORKERS)
            p->workers = true;
        else
            p->stream = true;
    }
    const char *cursor = queue_reply_str(reply->element[0]);
    if (cursor != NULL && strcmp(cursor, "0") != 0 && ++c->scan_rounds[which] < SCAN_ROUNDS) {
        char pattern[QUEUE_KEY_MAX];
        queue_key(q, pattern, kind, "*");
        queue_op_cmdf(op, on_scan, which, "SCAN %s MATCH %s COUNT 100", cursor, pattern);
        return;
    }
    if (--c->scans_left == 0)
        per_pool(op);
}

void queue_info(struct queue *q, queue_reply_cb *cb, void *arg)
{
    struct queue_op *op = queue_op_start(q, cb, arg);
    if (op == NULL)
        return;
    struct info_ctx *c = xcalloc(1, sizeof(*c));
    op->ctx = c;
    op->cleanup = info_cleanup;
    c->scans_left = 2;
    char pattern[QUEUE_KEY_MAX];
    if (queue_op_cmdf(op, on_scan, SCAN_WORKERS, "SCAN 0 MATCH %s COUNT 100",
                      queue_key(q, pattern, "workers:", "*")) == 0)
        queue_op_cmdf(op, on_scan, SCAN_INV, "SCAN 0 MATCH %s COUNT 100",
                      queue_key(q, pattern, "inv:", "*"));
}

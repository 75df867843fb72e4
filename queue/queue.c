/* The queue object: its connection to Redis, what happens at each (re)connect, stats, and
 * the orderly shutdown. The relay is relay.c, the admin calls jobs*.c and info.c. */
#include "queue/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

/* ---- helpers ---- */

uint64_t queue_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void queue_iso8601(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *queue_key(const struct queue *q, char *buf, const char *kind, const char *name)
{
    return qk_key(buf, QUEUE_KEY_MAX, q->cfg.prefix, kind, name);
}

/* ---- connection ---- */

static void on_ready(struct queue_conn *c, void *arg)
{
    struct queue *q = arg;
    (void)c;
    /* The order matters only for the relay, which starts last; workers create the stream
     * groups themselves. */
    queue_services_on_ready(q);
    queue_relay_on_ready(q->relay);
}

static void on_down(struct queue_conn *c, const char *why, void *arg)
{
    struct queue *q = arg;
    (void)c;
    (void)why;
    queue_relay_on_down(q->relay);
}

struct queue *queue_new(struct event_base *base, const struct queue_config *cfg,
                        const struct queue_outbox *ob, char *msg, size_t msg_cap)
{
    struct qk_url url;
    if (cfg->redis_url != NULL && qk_parse_url(cfg->redis_url, &url) != 0) {
        snprintf(msg, msg_cap, "bad Redis URL (want redis://[:password@]host[:port][/db])");
        return NULL;
    }
    struct queue *q = xcalloc(1, sizeof(*q));
    q->base = base;
    q->cfg = *cfg;
    q->cfg.redis_url = cfg->redis_url != NULL ? xstrdup(cfg->redis_url) : NULL;
    q->cfg.prefix = xstrdup(cfg->prefix != NULL ? cfg->prefix : "fg:");
    if (q->cfg.relay_batch == 0)
        q->cfg.relay_batch = 256;
    if (q->cfg.run_timeout_ms == 0)
        q->cfg.run_timeout_ms = 60000;
    if (q->cfg.job_ttl_s == 0)
        q->cfg.job_ttl_s = 7 * 86400;
    q->ob = *ob;
    q->log.module = "queue";
    q->relay = queue_relay_new(q);
    if (cfg->redis_url != NULL) {
        q->url = url;
        struct queue_conn_opts opts = {
            .url = &q->url,
            .name = "main",
            .load_scripts = true,
            .stall_ms = 15000,
            .on_ready = on_ready,
            .on_down = on_down,
            .arg = q,
        };
        q->conn = queue_conn_new(base, &opts);
    }
    return q;
}

void queue_kick(struct queue *q)
{
    if (q != NULL && !q->freeing)
        queue_relay_kick(q->relay);
}

void queue_get_stats(const struct queue *q, struct queue_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->configured = q->conn != NULL;
    out->connected = queue_conn_is_ready(q->conn);
    out->relayed = queue_relay_relayed(q->relay);
    out->backlog = q->ob.count != NULL ? q->ob.count(q->ob.arg) : 0;
    if (q->conn != NULL) {
        out->reconnects = queue_conn_reconnects(q->conn);
        snprintf(out->last_error, sizeof(out->last_error), "%s", queue_conn_last_error(q->conn));
    } else {
        snprintf(out->last_error, sizeof(out->last_error), "no Redis configured");
    }
}

/* ---- shutdown ---- */

static void destroy(struct queue *q)
{
    /* Connections first: their pending callbacks run now (NULL) while everything exists. */
    for (struct queue_op *op = q->ops; op != NULL; op = op->next)
        if (op->cancel != NULL) {
            op->cancel(op);
            op->cancel = NULL;
        }
    queue_push_free_all(q);
    queue_conn_free(q->conn);
    q->conn = NULL;
    queue_op_shutdown_all(q);
    queue_relay_free(q->relay);
    queue_services_free(q);
    free(q->cfg.redis_url);
    free(q->cfg.prefix);
    free(q);
}

void queue_free(struct queue *q)
{
    if (q == NULL || q->freeing)
        return;
    q->freeing = true;
    if (q->cb_depth > 0) {
        q->free_pending = true; /* finished when the user callback returns (op.c) */
        return;
    }
    destroy(q);
}

void queue_destroy_now(struct queue *q)
{
    destroy(q);
}

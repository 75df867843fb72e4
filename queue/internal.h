/* What the files of queue/ share: the queue object, the admin calls' operations (struct
 * queue_op: one API call, its Redis commands and its single deferred reply), the relay's
 * and the services' hooks. Private to queue/ (and its unit tests). */
#ifndef FG_QUEUE_INTERNAL_H
#define FG_QUEUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "gateway/log.h"
#include "gateway/span.h"
#include "queue/keys.h"
#include "queue/queue.h"
#include "queue/record.h"
#include "queue/redis.h"

#define QUEUE_KEY_MAX 512 /* prefix + kind + a name; longer names are truncated (and so miss) */

struct queue_relay;
struct queue_svc;
struct queue_op;
struct queue_push;

struct queue {
    struct event_base *base;
    struct queue_config cfg; /* copy; prefix and redis_url owned */
    struct qk_url url;
    struct queue_outbox ob;
    struct queue_conn *conn; /* NULL when no Redis is configured */
    struct queue_relay *relay;
    struct queue_svc *services;    /* published, in order */
    struct queue_svc *unpublished; /* names to delete at the next connect */
    struct queue_op *ops;          /* every op not yet freed */
    struct queue_push *targets;    /* push targets, in registration order (push.c) */
    queue_record_map_fn *rec_map;  /* expands the 'N' records of ntf:{target} entries */
    void *rec_map_arg;
    struct log_ctx log;
    int cb_depth;      /* > 0 while a user callback runs */
    bool freeing;      /* queue_free started */
    bool free_pending; /* queue_free called from a user callback: finish after it */
};

/* ---- helpers ---- */
uint64_t queue_now_ms(void);
/* "2024-05-01T12:00:00Z" from ms since the epoch; buf at least 32 bytes. */
void queue_iso8601(uint64_t ms, char *buf, size_t cap);
/* prefix + kind + name into buf (QUEUE_KEY_MAX). */
char *queue_key(const struct queue *q, char *buf, const char *kind, const char *name);

/* ---- operations of the admin API ----
 * An op holds the caller's callback; queue_op_finish records the answer and the reply is
 * delivered from the loop (never inside the call that started it, never inside a hiredis
 * callback). Commands sent through the op count as outstanding; the op is freed once it was
 * delivered and every reply (or NULL) came back. A NULL reply finishes the op with 503, an
 * error reply with 500; step callbacks see only real replies of an op not yet finished. */
typedef void queue_op_step_cb(struct queue_op *op, redisReply *reply, size_t tag);
typedef void queue_op_hook_cb(struct queue_op *op);

struct queue_op {
    struct queue *q;
    struct queue_op *prev, *next;
    queue_reply_cb *cb;
    void *arg;
    struct event *ev;        /* delivery, then the deferred free */
    struct queue_conn *conn; /* where queue_op_* commands go; q->conn unless changed */
    unsigned n_out;          /* replies still expected */
    bool finished, delivered;
    int status;
    char *body;
    size_t len;
    void *ctx;                 /* the call's own state */
    queue_op_hook_cb *cancel;  /* optional: release private connections and timers */
    queue_op_hook_cb *cleanup; /* optional: free ctx */
};

/* A new op, or one already finished with 503 when Redis is not configured or not connected
 * (then NULL is returned after the 503 was scheduled: the caller does nothing more). */
struct queue_op *queue_op_start(struct queue *q, queue_reply_cb *cb, void *arg);
/* Takes ownership of body (malloc'd, may be NULL). Later calls are ignored. */
void queue_op_finish(struct queue_op *op, int status, char *body, size_t len);
/* Finishes with the JSON text of j (stolen). */
void queue_op_finish_json(struct queue_op *op, int status, json_t *j);
/* {"error": msg} */
void queue_op_fail(struct queue_op *op, int status, const char *msg);
int queue_op_cmdf(struct queue_op *op, queue_op_step_cb *cb, size_t tag, const char *fmt, ...);
int queue_op_cmdv(struct queue_op *op, queue_op_step_cb *cb, size_t tag, int argc,
                  const char **argv, const size_t *lens);
int queue_op_eval(struct queue_op *op, const struct qk_script *s, int nkeys, int argc,
                  const char **argv, const size_t *lens, queue_op_step_cb *cb, size_t tag);

/* For commands an op sends on its own (e.g. on a private connection): hold before sending,
 * release in the callback, so the op outlives them. */
void queue_op_hold(struct queue_op *op);
void queue_op_release(struct queue_op *op);

/* queue_free's part in op.c: finishes (503) and delivers every op, then frees them. */
void queue_op_shutdown_all(struct queue *q);
/* The rest of a queue_free that was called from a user callback. */
void queue_destroy_now(struct queue *q);

/* ---- relay (relay.c) ---- */
struct queue_relay *queue_relay_new(struct queue *q);
/* While an outbox read is in flight the relay waits for it, orphaned, and frees itself. */
void queue_relay_free(struct queue_relay *r);
void queue_relay_kick(struct queue_relay *r);
void queue_relay_on_ready(struct queue_relay *r);
void queue_relay_on_down(struct queue_relay *r);
uint64_t queue_relay_relayed(const struct queue_relay *r);

/* ---- push targets (push.c, push_admin.c) ---- */
/* Stops every target: connections and timers closed, sends in flight orphaned (their done
 * frees them later). */
void queue_push_free_all(struct queue *q);
/* The target called id, or NULL. */
struct queue_push *queue_push_find(struct queue *q, const char *id);

/* ---- services and the config hash (services.c) ---- */
void queue_services_on_ready(struct queue *q);
void queue_services_free(struct queue *q);
typedef void queue_svc_each_cb(const char *name, const char *json, void *arg);
/* Calls cb for every published service, in order. */
void queue_services_each(struct queue *q, queue_svc_each_cb *cb, void *arg);

#endif

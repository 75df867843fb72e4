/* The relay: outbox -> Redis. One batch in flight: read up to relay_batch records after the
 * last one sent, send one pipelined enqueue script per record, and remove the batch from the
 * outbox once Redis answered every call. A lost connection restarts from the first record not
 * removed (the script's dedupe makes the repeat harmless); an error reply retries the batch
 * after a backoff on the same connection. Records are sent in outbox order. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define READ_MAX_BYTES (8u << 20)
#define MAX_MEMBERS    64 /* members of one record; more is not a record of ours */
#define TICK_MS        1000
#define FLUSH_EVERY    32
#define RETRY_MIN_MS   100
#define RETRY_MAX_MS   5000

struct batch {
    struct queue_relay *r;
    uint64_t *ids; /* every record read, the bad ones included */
    size_t n_ids;
    size_t n_sent;
    size_t n_out; /* replies still expected */
    bool failed;  /* a NULL or error reply */
    bool lost;    /* the connection went away */
};

struct queue_relay {
    struct queue *q;
    uint64_t after_id; /* the last record removed: the next read starts after it */
    uint64_t relayed;
    bool reading; /* an outbox read is in flight */
    struct batch *inflight;
    bool again;        /* kicked while busy */
    bool orphaned;     /* queue_relay_free ran during a read */
    unsigned retry_ms; /* error-reply backoff, 0 when none is pending */
    struct event *ev_next;
    struct event *ev_retry;
    struct event *tick;
};

static bool can_run(const struct queue_relay *r)
{
    return r->q->conn != NULL && queue_conn_is_ready(r->q->conn) && !r->reading &&
           r->inflight == NULL && !evtimer_pending(r->ev_retry, NULL);
}

static void schedule(struct queue_relay *r)
{
    if (can_run(r))
        event_active(r->ev_next, EV_TIMEOUT, 1);
    else
        r->again = true;
}

/* ---- one batch ---- */

static void batch_done(struct batch *b)
{
    struct queue_relay *r = b->r;
    r->inflight = NULL;
    if (!b->failed) {
        r->q->ob.remove(r->q->ob.arg, b->ids, b->n_ids);
        r->after_id = b->ids[b->n_ids - 1];
        r->relayed += b->n_sent;
        r->retry_ms = 0;
        event_active(r->ev_next, EV_TIMEOUT, 1); /* more may be waiting */
    } else if (!b->lost && queue_conn_is_ready(r->q->conn)) {
        /* Redis answered with an error (OOM, a misconfigured server): try again later */
        r->retry_ms = r->retry_ms == 0 ? RETRY_MIN_MS : r->retry_ms * 2;
        if (r->retry_ms > RETRY_MAX_MS)
            r->retry_ms = RETRY_MAX_MS;
        struct timeval tv = {r->retry_ms / 1000, (long)(r->retry_ms % 1000) * 1000};
        evtimer_add(r->ev_retry, &tv);
    }
    /* lost: queue_relay_on_ready restarts */
    free(b->ids);
    free(b);
}

static void on_enqueued(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct batch *b = arg;
    (void)c;
    if (reply == NULL) {
        b->failed = true;
        b->lost = true;
    } else if (reply->type != REDIS_REPLY_INTEGER) {
        if (!b->failed)
            log_warn(&b->r->q->log, "relay: enqueue refused: %.200s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        b->failed = true;
    }
    if (--b->n_out == 0)
        batch_done(b);
}

/* The text of a member's value: strings as they are, other scalars as JSON writes them. */
static char *value_text(json_t *v)
{
    if (json_is_string(v))
        return xstrndup(json_string_value(v), json_string_length(v));
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static const char *member_str(json_t *rec, const char *name)
{
    const char *s = json_string_value(json_object_get(rec, name));
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Sends the enqueue call for one record. 1 sent, 0 not ours (logged: drop it), -1 the
 * connection is gone. */
static int send_record(struct batch *b, const struct queue_outbox_rec *rec)
{
    struct queue *q = b->r->q;
    json_error_t jerr;
    json_t *j = json_loadb(rec->data, rec->len, JSON_REJECT_DUPLICATES, &jerr);
    const char *kind = json_is_object(j) ? member_str(j, "kind") : NULL;
    const char *id = json_is_object(j) ? member_str(j, "id") : NULL;
    const char *service = json_is_object(j) ? member_str(j, "service") : NULL;
    const char *pool = json_is_object(j) ? member_str(j, "pool") : NULL;
    if (j == NULL || kind == NULL || strcmp(kind, "job") != 0 || id == NULL || service == NULL ||
        pool == NULL || json_object_size(j) > MAX_MEMBERS) {
        log_warn(&q->log, "relay: dropping outbox record %" PRIu64 ": %s", rec->id,
                 j == NULL ? jerr.text : "not a job record (kind, id, service, pool)");
        json_decref(j);
        return 0;
    }
    char k_seen[QUEUE_KEY_MAX], k_job[QUEUE_KEY_MAX], k_inv[QUEUE_KEY_MAX], k_jobs[QUEUE_KEY_MAX];
    char ttl[16], created[24];
    const char *created_s = member_str(j, "created_ms");
    snprintf(ttl, sizeof(ttl), "%d", QK_SEEN_TTL_S);
    if (created_s != NULL && strspn(created_s, "0123456789") == strlen(created_s))
        snprintf(created, sizeof(created), "%s", created_s);
    else
        snprintf(created, sizeof(created), "%" PRIu64, queue_now_ms());

    size_t cap = 7 + 2 * (json_object_size(j) + 1);
    const char **argv = xcalloc(cap, sizeof(*argv));
    size_t *lens = xcalloc(cap, sizeof(*lens));
    char **owned = xcalloc(cap, sizeof(*owned));
    size_t n = 0, n_owned = 0;
    argv[n++] = queue_key(q, k_seen, "seen:", id);
    argv[n++] = queue_key(q, k_job, "job:", id);
    argv[n++] = queue_key(q, k_inv, "inv:", pool);
    argv[n++] = queue_key(q, k_jobs, "jobs:", service);
    argv[n++] = id;
    argv[n++] = ttl;
    argv[n++] = created;
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    const char *name;
    json_t *v;
    bool has_created = false;
    json_object_foreach(j, name, v)
    {
        if (strcmp(name, "kind") == 0 || json_is_null(v))
            continue;
        char *text = value_text(v);
        if (text == NULL)
            continue;
        has_created = has_created || strcmp(name, "created_ms") == 0;
        owned[n_owned++] = text;
        argv[n] = name;
        lens[n++] = strlen(name);
        argv[n] = text;
        lens[n++] = strlen(text);
    }
    if (!has_created) {
        argv[n] = "created_ms";
        lens[n++] = 10;
        argv[n] = created;
        lens[n++] = strlen(created);
    }
    int rc = queue_conn_eval(q->conn, &qk_enqueue, 4, (int)n, argv, lens, on_enqueued, b);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    free(argv);
    free(lens);
    json_decref(j);
    return rc == 0 ? 1 : -1;
}

static void on_read(int err, const struct queue_outbox_rec *recs, size_t n, void *arg)
{
    struct queue_relay *r = arg;
    if (r->orphaned) {
        free(r);
        return;
    }
    r->reading = false;
    if (err != 0) {
        log_warn(&r->q->log, "relay: outbox read failed (%d)", err);
        return; /* the tick tries again */
    }
    if (n == 0) {
        if (r->again)
            schedule(r);
        return;
    }
    if (!queue_conn_is_ready(r->q->conn))
        return; /* on_ready starts over */
    struct batch *b = xcalloc(1, sizeof(*b));
    b->r = r;
    b->ids = xcalloc(n, sizeof(*b->ids));
    b->n_out = 1; /* held until every record is sent */
    r->inflight = b;
    for (size_t i = 0; i < n; i++) {
        b->ids[b->n_ids++] = recs[i].id;
        int rc = send_record(b, &recs[i]);
        if (rc < 0) {
            b->failed = true;
            b->lost = true;
            break;
        }
        if (rc > 0) {
            b->n_sent++;
            b->n_out++;
            if (b->n_sent % FLUSH_EVERY == 0)
                queue_conn_flush(r->q->conn); /* Redis works while we parse the rest */
        }
    }
    if (--b->n_out == 0)
        batch_done(b);
}

static void start_round(struct queue_relay *r)
{
    if (!can_run(r))
        return;
    r->reading = true;
    r->again = false;
    r->q->ob.read(r->q->ob.arg, r->after_id, r->q->cfg.relay_batch, READ_MAX_BYTES, on_read, r);
}

static void on_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_round(arg);
}

/* A missed kick must never strand records: look at the outbox every second. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_round(arg);
}

/* ---- the queue's hooks ---- */

struct queue_relay *queue_relay_new(struct queue *q)
{
    struct queue_relay *r = xcalloc(1, sizeof(*r));
    r->q = q;
    r->ev_next = event_new(q->base, -1, 0, on_next, r);
    r->ev_retry = evtimer_new(q->base, on_next, r);
    r->tick = event_new(q->base, -1, EV_PERSIST, on_tick, r);
    if (q->ob.read != NULL && q->cfg.redis_url != NULL) {
        struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
        event_add(r->tick, &tv);
    }
    return r;
}

void queue_relay_free(struct queue_relay *r)
{
    if (r == NULL)
        return;
    ASSERT(r->inflight == NULL); /* the connection closed first: every reply came back */
    event_free(r->ev_next);
    event_free(r->ev_retry);
    event_free(r->tick);
    if (r->reading)
        r->orphaned = true; /* on_read frees it */
    else
        free(r);
}

void queue_relay_kick(struct queue_relay *r)
{
    if (r->q->ob.read != NULL)
        schedule(r);
}

void queue_relay_on_ready(struct queue_relay *r)
{
    if (r->q->ob.read == NULL)
        return;
    evtimer_del(r->ev_retry);
    r->retry_ms = 0;
    schedule(r);
}

void queue_relay_on_down(struct queue_relay *r)
{
    (void)r; /* the batch in flight fails through its NULL replies */
}

uint64_t queue_relay_relayed(const struct queue_relay *r)
{
    return r->relayed;
}

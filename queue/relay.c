/* The relay: outbox -> Redis. One batch in flight: read up to relay_batch records after the
 * last one sent, send one pipelined enqueue script per record (enqueue for jobs, enqueue_ntf
 * for notifications; the binary records are parsed in place and their bytes handed to hiredis
 * as they are), and remove the batch from the outbox once Redis answered every call. A lost
 * connection restarts from the first record not removed (the script's dedupe makes the repeat
 * harmless); an error reply retries the batch after a backoff on the same connection. Records are
 * sent in outbox order. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define READ_MAX_BYTES (8u << 20)
#define TICK_MS        1000
#define FLUSH_EVERY    32
#define RETRY_MIN_MS   100
#define RETRY_MAX_MS   5000
/* Rounds start at least this far apart: under load a kick comes after every commit batch, and
 * each round costs a read on the pool, a Redis round trip and a removal, whatever its size; so
 * a busy outbox is sent in fewer, larger batches. An idle relay starts at once. */
#define ROUND_GAP_US 4000

struct batch {
    struct queue_relay *r;
    uint64_t *ids; /* every record read, the bad ones included */
    size_t n_ids;
    size_t n_sent;
    size_t n_out;  /* replies still expected */
    bool more;     /* the read stopped at a limit: records may be left */
    bool failed;   /* a NULL or error reply */
    bool lost;     /* the connection went away */
    bool noscript; /* Redis lost the scripts (restart, SCRIPT FLUSH): load them, send again */
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
    struct event *ev_gap;
    struct event *tick;
    int64_t round_us;              /* when the last round started (monotonic) */
    char k_relayed[QUEUE_KEY_MAX]; /* relayed:{source}, the dedupe mark */
    bool checked;                  /* relay_check answered once since start */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool can_run(const struct queue_relay *r)
{
    return r->q->conn != NULL && queue_conn_is_ready(r->q->conn) && !r->reading &&
           r->inflight == NULL && !evtimer_pending(r->ev_retry, NULL) &&
           !evtimer_pending(r->ev_gap, NULL);
}

/* The next round: at once when the last one started ROUND_GAP_US ago, else when it has. */
static void start_soon(struct queue_relay *r)
{
    int64_t wait_us = r->round_us + ROUND_GAP_US - now_us();
    if (wait_us <= 0 || wait_us > ROUND_GAP_US) {
        event_active(r->ev_next, EV_TIMEOUT, 1);
        return;
    }
    struct timeval tv = {0, (long)wait_us};
    evtimer_add(r->ev_gap, &tv);
}

static void schedule(struct queue_relay *r)
{
    if (can_run(r))
        start_soon(r);
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
        /* A read cut at a limit left records behind: go on at once, the batch was large.
         * Every commit that adds records kicks (r->again while busy); without one the outbox
         * holds nothing new, and an empty read would cost a pool round trip for nothing. */
        if (b->more)
            event_active(r->ev_next, EV_TIMEOUT, 1);
        else if (r->again)
            start_soon(r);
    } else if (!b->lost && queue_conn_is_ready(r->q->conn)) {
        /* Redis answered with an error (OOM, a misconfigured server): try again later */
        if (b->noscript) {
            /* the loads go first on this connection: the batch sent again finds them */
            log_info(&r->q->log, "relay: Redis lost its scripts; loading them again");
            queue_conn_load_scripts(r->q->conn);
        }
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
    } else if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        b->failed = true;
        b->noscript = true;
    } else if (reply->type != REDIS_REPLY_INTEGER) {
        if (!b->failed)
            log_warn(&b->r->q->log, "relay: enqueue refused: %.200s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        b->failed = true;
    }
    if (--b->n_out == 0)
        batch_done(b);
}

/* prefix + kind + name into buf (QUEUE_KEY_MAX); false when it does not fit: a truncated key
 * would name another record's key. */
static bool key_of(const struct queue *q, char *buf, size_t *len, const char *kind,
                   struct span name)
{
    size_t pl = strlen(q->cfg.prefix), kl = strlen(kind);
    if (pl + kl + name.len >= QUEUE_KEY_MAX)
        return false;
    memcpy(buf, q->cfg.prefix, pl);
    memcpy(buf + pl, kind, kl);
    memcpy(buf + pl + kl, name.ptr, name.len);
    *len = pl + kl + name.len;
    buf[*len] = '\0';
    return true;
}

static bool is_decimal(struct span s)
{
    if (s.len == 0 || s.len > 20)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
    return true;
}

/* Builds the enqueue call of one record (outbox id `seq`, as decimal text) in argv/lens; its
 * arguments point into the record, seq or keys[]. Returns the script, or NULL with *why when
 * the record is not one of ours. */
static const struct qk_script *build_call(const struct queue_relay *r, const struct queue_rec *rec,
                                          const char *seq, char keys[4][QUEUE_KEY_MAX],
                                          const char **argv, size_t *lens, int *argc, int *nkeys,
                                          const char **why)
{
    const struct queue *q = r->q;
    struct span id, created, a, b;
    size_t n = 0;
    if (queue_rec_need(rec, "id", &id) != 0 || queue_rec_need(rec, "created_ms", &created) != 0 ||
        !is_decimal(created)) {
        *why = "no id or no decimal created_ms";
        return NULL;
    }
    argv[n] = r->k_relayed;
    lens[n++] = strlen(r->k_relayed);
    if (rec->kind == 'j') {
        if (queue_rec_need(rec, "pool", &a) != 0 || queue_rec_need(rec, "service", &b) != 0) {
            *why = "a job record without pool or service";
            return NULL;
        }
        if (!key_of(q, keys[1], &lens[n], "job:", id) ||
            !key_of(q, keys[2], &lens[n + 1], "inv:", a) ||
            !key_of(q, keys[3], &lens[n + 2], "jobs:", b)) {
            *why = "a name too long";
            return NULL;
        }
        argv[n++] = keys[1];
        argv[n++] = keys[2];
        argv[n++] = keys[3];
    } else if (rec->kind == 'n') {
        if (queue_rec_need(rec, "target", &a) != 0 || queue_rec_need(rec, "body", &b) != 0) {
            *why = "a notification record without target or body";
            return NULL;
        }
        if (!key_of(q, keys[1], &lens[n], "ntf:", a)) {
            *why = "target too long";
            return NULL;
        }
        argv[n++] = keys[1];
    } else {
        *why = "unknown kind";
        return NULL;
    }
    *nkeys = (int)n;
    argv[n] = id.ptr;
    lens[n++] = id.len;
    argv[n] = seq;
    lens[n++] = strlen(seq);
    if (rec->kind == 'n') {
        argv[n] = b.ptr;
        lens[n++] = b.len;
        argv[n] = created.ptr;
        lens[n++] = created.len;
        *argc = (int)n;
        return &qk_enqueue_ntf;
    }
    argv[n] = created.ptr;
    lens[n++] = created.len;
    for (size_t i = 0; i < rec->n_fields; i++) {
        argv[n] = rec->names[i].ptr;
        lens[n++] = rec->names[i].len;
        argv[n] = rec->values[i].ptr;
        lens[n++] = rec->values[i].len;
    }
    *argc = (int)n;
    return &qk_enqueue;
}

/* Sends the enqueue call for one record, without copying it (hiredis formats the command
 * into its buffer before this returns). 1 sent, 0 not ours (logged: drop it), -1 the
 * connection is gone. */
static int send_record(struct batch *b, const struct queue_outbox_rec *rec)
{
    struct queue *q = b->r->q;
    struct queue_rec parsed;
    char keys[4][QUEUE_KEY_MAX], seq[24];
    const char *argv[8 + 2 * QUEUE_REC_MAX_FIELDS];
    size_t lens[8 + 2 * QUEUE_REC_MAX_FIELDS];
    int argc = 0, nkeys = 0;
    const char *why = NULL;
    const struct qk_script *s = NULL;
    snprintf(seq, sizeof(seq), "%" PRIu64, rec->id);
    if (queue_rec_parse(rec->data, rec->len, &parsed, &why) == 0)
        s = build_call(b->r, &parsed, seq, keys, argv, lens, &argc, &nkeys, &why);
    if (s == NULL) {
        log_warn(&q->log, "relay: dropping outbox record %" PRIu64 ": %s", rec->id, why);
        return 0;
    }
    int rc = queue_conn_evalsha(q->conn, s, nkeys, argc, argv, lens, on_enqueued, b);
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
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].len;
    b->more = n >= r->q->cfg.relay_batch || bytes > READ_MAX_BYTES / 2;
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
    r->round_us = now_us();
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
    snprintf(r->k_relayed, sizeof(r->k_relayed), "%srelayed:%s", q->cfg.prefix,
             q->ob.source[0] != '\0' ? q->ob.source : "-");
    r->ev_next = event_new(q->base, -1, 0, on_next, r);
    r->ev_retry = evtimer_new(q->base, on_next, r);
    r->ev_gap = evtimer_new(q->base, on_next, r);
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
    event_free(r->ev_gap);
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

static void on_checked(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue_relay *r = arg;
    (void)c;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
        return; /* sent again on the next connection, before any record */
    r->checked = true;
    if (reply->integer > 0)
        log_warn(&r->q->log,
                 "relay: Redis has seen record %lld of this outbox, which was not handed out "
                 "yet (a data dir restored from an older copy?): the mark is dropped so that "
                 "no record is taken for a repeat; some may be delivered twice",
                 reply->integer);
}

void queue_relay_on_ready(struct queue_relay *r)
{
    if (r->q->ob.read == NULL)
        return;
    if (!r->checked) {
        /* before any record on this connection, so it runs first */
        char first[24];
        snprintf(first, sizeof(first), "%" PRIu64, r->q->ob.first_id > 0 ? r->q->ob.first_id : 1);
        const char *argv[2] = {r->k_relayed, first};
        size_t lens[2] = {strlen(argv[0]), strlen(argv[1])};
        if (queue_conn_evalsha(r->q->conn, &qk_relay_check, 1, 2, argv, lens, on_checked, r) != 0)
            return; /* the connection is gone again */
    }
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

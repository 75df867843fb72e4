/* The relay: outbox -> Redis. One batch in flight: read up to relay_batch records after the
 * last one sent and send them as one MULTI/EXEC of plain commands (keys.h: an XADD per record,
 * and a ZADD into the service's index per run of jobs of one service), ending with the mark
 * relayed:{source} set to the batch's last id; once EXEC answered, remove the batch from the
 * outbox. The binary records are parsed in place and their bytes handed to hiredis as they are.
 *
 * Dedupe: the mark is read on every connection, before any record is sent on it, and records
 * at or below it are not sent again (Redis has them: the gateway stopped between EXEC and the
 * removal). A transaction runs whole or not at all, so the mark never covers a record Redis
 * lacks. A lost connection restarts from the first record not removed; an error reply retries
 * the batch after a backoff on the same connection. Records are sent in outbox order. */
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
    uint64_t *ids; /* every record read, the bad and the skipped ones included */
    size_t n_ids;
    size_t n_sent;
    size_t n_out; /* replies still expected */
    bool open;    /* MULTI sent */
    bool more;    /* the read stopped at a limit: records may be left */
    bool failed;  /* a NULL or error reply */
    bool lost;    /* the connection went away */
    bool partial; /* EXEC ran, but some of its commands failed */
    /* The ZADD of the current run of jobs of one service, sent when the service changes and
     * at the end: one command for a run rather than one per job. Points into the records. */
    struct {
        char key[QUEUE_KEY_MAX];
        const char **argv;
        size_t *lens;
        int argc;
    } index;
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
    bool mark_known;               /* ... on this connection: records may be sent */
    uint64_t mark;                 /* the mark as Redis holds it */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool can_run(const struct queue_relay *r)
{
    return r->q->conn != NULL && queue_conn_is_ready(r->q->conn) && r->mark_known && !r->reading &&
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
        if (b->open)
            r->mark = r->after_id;
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

static void reply_done(struct batch *b)
{
    if (--b->n_out == 0)
        batch_done(b);
}

static void on_queued(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct batch *b = arg;
    (void)c;
    if (reply == NULL) {
        b->failed = true;
        b->lost = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* EXEC then answers EXECABORT: nothing of the batch is applied */
        if (!b->failed)
            log_warn(&b->r->q->log, "relay: Redis refused a command: %.200s", reply->str);
        b->failed = true;
    }
    reply_done(b);
}

/* A command of the transaction failed as it ran (a key of the wrong type: someone else's
 * data under our prefix); the others ran. The batch is sent again after the backoff, so its
 * records may reach Redis twice, but none is lost: the mark goes back to before the batch. */
static void restore_mark(struct batch *b)
{
    struct queue_relay *r = b->r;
    char mark[24];
    snprintf(mark, sizeof(mark), "%" PRIu64, r->mark);
    const char *argv[3] = {"SET", r->k_relayed, mark};
    size_t lens[3] = {3, strlen(r->k_relayed), strlen(mark)};
    b->n_out++;
    if (queue_conn_cmdv(r->q->conn, on_queued, b, 3, argv, lens) != 0) {
        b->n_out--;
        b->lost = true;
    }
}

static void on_exec(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct batch *b = arg;
    (void)c;
    if (reply == NULL) {
        b->failed = true;
        b->lost = true;
    } else if (reply->type != REDIS_REPLY_ARRAY) {
        if (!b->failed)
            log_warn(&b->r->q->log, "relay: the batch was refused: %.200s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        b->failed = true;
    } else {
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_ERROR && !b->partial) {
                log_warn(&b->r->q->log, "relay: a command of the batch failed: %.200s",
                         reply->element[i]->str);
                b->partial = true;
                b->failed = true;
            }
        if (b->partial)
            restore_mark(b);
    }
    reply_done(b);
}

/* Sends one command of the batch; MULTI first when it is the batch's first. 0 or -1 (the
 * connection is gone). */
static int send_cmd(struct batch *b, int argc, const char **argv, const size_t *lens)
{
    struct queue_conn *conn = b->r->q->conn;
    if (!b->open) {
        const char *multi = "MULTI";
        size_t len = 5;
        if (queue_conn_cmdv(conn, on_queued, b, 1, &multi, &len) != 0)
            return -1;
        b->open = true;
        b->n_out++;
    }
    if (queue_conn_cmdv(conn, on_queued, b, argc, argv, lens) != 0)
        return -1;
    b->n_out++;
    return 0;
}

/* Sends the pending ZADD, if any; 0 or -1. */
static int flush_index(struct batch *b)
{
    int argc = b->index.argc;
    b->index.argc = 0;
    return argc > 2 ? send_cmd(b, argc, b->index.argv, b->index.lens) : 0;
}

/* Adds job `id` (created at `created`) to the ZADD of index `key`; 0 or -1. */
static int add_to_index(struct batch *b, const char *key, size_t key_len, struct span created,
                        struct span id)
{
    if (b->index.argc > 2 && strcmp(b->index.key, key) != 0 && flush_index(b) != 0)
        return -1;
    if (b->index.argc == 0) {
        memcpy(b->index.key, key, key_len + 1);
        b->index.argv[0] = "ZADD";
        b->index.lens[0] = 4;
        b->index.argv[1] = b->index.key;
        b->index.lens[1] = key_len;
        b->index.argc = 2;
    }
    b->index.argv[b->index.argc] = created.ptr;
    b->index.lens[b->index.argc++] = created.len;
    b->index.argv[b->index.argc] = id.ptr;
    b->index.lens[b->index.argc++] = id.len;
    return 0;
}

/* The pending ZADD, SET the mark and EXEC; 0 or -1. */
static int send_commit(struct batch *b)
{
    struct queue_relay *r = b->r;
    if (flush_index(b) != 0)
        return -1;
    char mark[24];
    snprintf(mark, sizeof(mark), "%" PRIu64, b->ids[b->n_ids - 1]);
    const char *set[3] = {"SET", r->k_relayed, mark};
    size_t set_lens[3] = {3, strlen(r->k_relayed), strlen(mark)};
    if (send_cmd(b, 3, set, set_lens) != 0)
        return -1;
    const char *exec = "EXEC";
    size_t len = 4;
    if (queue_conn_cmdv(r->q->conn, on_exec, b, 1, &exec, &len) != 0)
        return -1;
    b->n_out++;
    return 0;
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

#define MAX_ARGS 11

/* Sends the commands of one record (keys.h), without copying it: hiredis formats each
 * command into its buffer before the call returns. 1 sent, 0 not ours (logged: drop it), -1
 * the connection is gone. */
static int send_record(struct batch *b, const struct queue_outbox_rec *rec)
{
    struct queue *q = b->r->q;
    struct queue_rec parsed;
    char k_stream[QUEUE_KEY_MAX], k_index[QUEUE_KEY_MAX];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    size_t stream_len = 0, index_len = 0;
    struct span id, created, a, svc, body;
    const char *why = NULL;
    int n = 0;
    if (queue_rec_parse(rec->data, rec->len, &parsed, &why) != 0)
        ; /* why says it */
    else if (queue_rec_need(&parsed, "id", &id) != 0 ||
             queue_rec_need(&parsed, "created_ms", &created) != 0 || !is_decimal(created)) {
        why = "no id or no decimal created_ms";
    } else if (parsed.kind == 'j') {
        if (queue_rec_need(&parsed, "pool", &a) != 0 ||
            queue_rec_need(&parsed, "service", &svc) != 0)
            why = "a job record without pool or service";
        else if (!key_of(q, k_stream, &stream_len, "inv:", a) ||
                 !key_of(q, k_index, &index_len, "jobs:", svc))
            why = "a name too long";
    } else if (parsed.kind == 'n' || parsed.kind == 'N') {
        /* 'N' goes as it is, expanded at delivery; its bucket, key and ev are the
         * deliverer's to check, as in a worker's start for a job record */
        if (queue_rec_need(&parsed, "target", &a) != 0 ||
            (parsed.kind == 'n' && queue_rec_need(&parsed, "body", &body) != 0))
            why = "a notification record without target or body";
        else if (!key_of(q, k_stream, &stream_len, "ntf:", a))
            why = "target too long";
    } else {
        why = "unknown kind";
    }
    if (why != NULL) {
        log_warn(&q->log, "relay: dropping outbox record %" PRIu64 ": %s", rec->id, why);
        return 0;
    }
#define ARG(p, l) (argv[n] = (p), lens[n++] = (l))
    ARG("XADD", 4);
    ARG(k_stream, stream_len);
    ARG("*", 1);
    if (parsed.kind == 'N') {
        ARG("rec", 3); /* one argument: each costs Redis an object */
        ARG(rec->data, rec->len);
        return send_cmd(b, n, argv, lens) == 0 ? 1 : -1;
    }
    if (parsed.kind == 'n') {
        ARG("id", 2);
        ARG(id.ptr, id.len);
        ARG("body", 4);
        ARG(body.ptr, body.len);
        ARG("created_ms", 10);
        ARG(created.ptr, created.len);
        ARG("attempts", 8);
        ARG("0", 1);
        return send_cmd(b, n, argv, lens) == 0 ? 1 : -1;
    }
    ARG("job", 3);
    ARG(id.ptr, id.len);
    ARG("rec", 3); /* the start script reads the fields: one argument for Redis to store */
    ARG(rec->data, rec->len);
#undef ARG
    if (send_cmd(b, n, argv, lens) != 0)
        return -1;
    return add_to_index(b, k_index, index_len, created, id) == 0 ? 1 : -1;
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
    if (!queue_conn_is_ready(r->q->conn) || !r->mark_known)
        return; /* on_ready starts over once the mark is read */
    struct batch *b = xcalloc(1, sizeof(*b));
    b->r = r;
    b->ids = xcalloc(n, sizeof(*b->ids));
    b->n_out = 1; /* held until every record is sent */
    b->index.argv = xcalloc(2 + 2 * n, sizeof(*b->index.argv));
    b->index.lens = xcalloc(2 + 2 * n, sizeof(*b->index.lens));
    r->inflight = b;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].len;
    b->more = n >= r->q->cfg.relay_batch || bytes > READ_MAX_BYTES / 2;
    for (size_t i = 0; i < n; i++) {
        b->ids[b->n_ids++] = recs[i].id;
        if (recs[i].id <= r->mark)
            continue; /* Redis has it: sent before a restart that came before its removal */
        int rc = send_record(b, &recs[i]);
        if (rc < 0) {
            b->failed = true;
            b->lost = true;
            break;
        }
        if (rc > 0) {
            b->n_sent++;
            if (b->n_sent % FLUSH_EVERY == 0)
                queue_conn_flush(r->q->conn); /* Redis works while we parse the rest */
        }
    }
    if (b->open && !b->lost && send_commit(b) != 0) {
        b->failed = true;
        b->lost = true;
    }
    free(b->index.argv); /* hiredis has formatted the commands */
    free(b->index.lens);
    b->index.argv = NULL;
    b->index.lens = NULL;
    reply_done(b);
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

static void send_check(struct queue_relay *r);

static void on_next(evutil_socket_t fd, short what, void *arg)
{
    struct queue_relay *r = arg;
    (void)fd;
    (void)what;
    if (!r->mark_known && r->q->conn != NULL && queue_conn_is_ready(r->q->conn))
        send_check(r); /* a failed read of the mark, tried again */
    else
        start_round(r);
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
    if (reply == NULL)
        return; /* sent again on the next connection, before any record */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        log_warn(&r->q->log, "relay: reading the mark: %.200s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        struct timeval tv = {0, RETRY_MIN_MS * 1000};
        evtimer_add(r->ev_retry, &tv);
        return;
    }
    r->checked = true;
    r->mark_known = true;
    r->mark = reply->element[0]->integer > 0 ? (uint64_t)reply->element[0]->integer : 0;
    if (reply->element[1]->integer > 0)
        log_warn(&r->q->log,
                 "relay: Redis has seen record %lld of this outbox, which was not handed out "
                 "yet (a data dir restored from an older copy?): the mark is dropped so that "
                 "no record is taken for a repeat; some may be delivered twice",
                 reply->element[1]->integer);
    schedule(r);
}

/* Reads the mark (relay_check) before any record is sent on this connection; the first time
 * in this run, also drops a mark this outbox cannot have made (a restored data dir). */
static void send_check(struct queue_relay *r)
{
    char first[24];
    uint64_t first_id = r->q->ob.first_id > 0 ? r->q->ob.first_id : 1;
    snprintf(first, sizeof(first), "%" PRIu64, r->checked ? 0 : first_id);
    const char *argv[2] = {r->k_relayed, first};
    size_t lens[2] = {strlen(argv[0]), strlen(argv[1])};
    /* on failure the connection is gone again: on_ready sends it */
    queue_conn_eval(r->q->conn, &qk_relay_check, 1, 2, argv, lens, on_checked, r);
}

void queue_relay_on_ready(struct queue_relay *r)
{
    if (r->q->ob.read == NULL)
        return;
    r->mark_known = false;
    evtimer_del(r->ev_retry);
    r->retry_ms = 0;
    send_check(r);
}

void queue_relay_on_down(struct queue_relay *r)
{
    r->mark_known = false; /* the batch in flight fails through its NULL replies */
}

uint64_t queue_relay_relayed(const struct queue_relay *r)
{
    return r->relayed;
}

/* Push targets: delivers the entries of ntf:{target} to a sender (queue.h, "push targets").
 * Each target has two connections of its own: `rd` for the blocking XREADGROUP (a blocked
 * connection answers nothing else) and `wr` for acks, retries, dead letters, promotions and
 * the stats poll, so a slow or failing target holds nothing but its own window. A target that
 * cannot be reached trips a circuit breaker (queue.h): its messages wait in ntfdelay and the
 * stream unread while one probe at a time finds out when it is back. The admin calls (dlq list
 * and replay) are push_admin.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

#define DEF_CONCURRENCY   16
#define DEF_MAX_ATTEMPTS  10
#define DEF_MAX_AGE_S     86400
#define DEF_BACKOFF_MS    500
#define DEF_BACKOFF_CAP   60000
#define DEF_PROBE_MS      1000
#define DEF_PROBE_CAP     30000
#define BLOCK_MS          1000
#define PROMOTE_MS        200 /* the promote timer's longest sleep */
#define PROMOTE_MAX       256 /* due retries moved per script call */
#define POLL_MS           1000
#define CLAIM_EVERY_POLLS 30    /* look for a dead gateway's entries every 30 s */
#define CLAIM_IDLE_MS     60000 /* entries of another consumer idle this long are taken over */
#define READ_RETRY_MS     1000  /* after an error reply to a read */

static const unsigned latency_bounds_ms[8] = QUEUE_LATENCY_BOUNDS_MS;

/* One send in flight; the sender's done_arg. Orphaned (t NULL) by queue_free: then done only
 * frees it. */
struct delivery {
    struct queue_push *t;
    struct delivery *prev, *next;
    char entry[48]; /* the stream entry */
    uint64_t created_ms;
    unsigned attempts; /* before this one */
    unsigned gen;      /* t->up_gen when it was sent */
    bool probe;        /* sent as the probe of a down target */
    char *id;          /* NUL-terminated, in the same block */
    char *body;
    size_t body_len;
    bool is_rec; /* body holds an outbox record that could not be expanded, kept whole */
};

struct queue_push {
    struct queue *q;
    struct queue_push *next;
    char id[64];
    struct queue_target_policy pol; /* defaults filled in */
    queue_send_fn *send;
    void *send_arg;
    struct queue_conn *rd, *wr;
    char k_ntf[QUEUE_KEY_MAX], k_delay[QUEUE_KEY_MAX], k_dlq[QUEUE_KEY_MAX];
    char consumer[80];
    bool group_ok;    /* XGROUP CREATE answered on this rd connection */
    bool reading;     /* a read in flight on rd, or its entries being handed out */
    bool claiming;    /* that read is an XAUTOCLAIM */
    char history[48]; /* reading our own pending entries from this id; "" when done */
    char claim[48];   /* an XAUTOCLAIM round's cursor; "" when none runs */
    struct delivery *flight;
    unsigned n_flight;
    struct event *ev_pump;    /* a read deferred to the loop */
    struct event *ev_promote; /* one-shot: the next promotion */
    uint64_t promote_at_ms;   /* when ev_promote fires; 0 when not armed */
    bool promoting;
    struct event *ev_poll;
    unsigned n_polls;
    uint64_t poll_stream; /* XLEN ntf:{id} of the poll in flight */
    uint64_t rng;
    /* the circuit breaker: down while the target cannot be reached */
    bool down;
    bool probing;           /* the probe is in flight */
    unsigned n_probe_fails; /* unreachable probes in a row */
    unsigned up_gen;        /* + 1 each time it comes up: older sends cannot take it down */
    bool probe_due;         /* ev_probe fired: the next read is the probe */
    uint64_t probe_due_ms;  /* when it fires, in wall-clock ms: the held messages' score */
    uint64_t down_since_ms; /* wall clock */
    char down_reason[128];  /* the sender's last reason while down */
    struct event *ev_probe; /* sets probe_due and pumps */
    struct queue_target_stats st;
};

static void pump(struct queue_push *t);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void arm_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
    event_add(ev, &tv);
}

static bool closing(const struct queue_push *t)
{
    return t->q->freeing;
}

/* xorshift64*: jitter only, nothing secret */
static uint64_t next_random(struct queue_push *t)
{
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return t->rng * 2685821657736338717ull;
}

/* Full jitter: random(0, min(cap, base * 2^n)). */
static uint64_t jitter_ms(struct queue_push *t, unsigned base, unsigned cap, unsigned n)
{
    uint64_t bound = base;
    for (unsigned i = 0; i < n && bound < cap; i++)
        bound *= 2;
    if (bound > cap)
        bound = cap;
    return next_random(t) % (bound + 1);
}

static void on_ignored(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_warn(&t->q->log, "target %s: %.200s", t->id, reply->str);
    /* NULL: lost; the entry stays pending and is read again after the reconnect */
}

/* ---- the deliveries' outcomes ---- */

static void flight_remove(struct queue_push *t, struct delivery *d)
{
    if (d->prev != NULL)
        d->prev->next = d->next;
    else
        t->flight = d->next;
    if (d->next != NULL)
        d->next->prev = d->prev;
    t->n_flight--;
}

static void arm_promote(struct queue_push *t, uint64_t in_ms)
{
    uint64_t at = mono_ms() + in_ms;
    if (t->promote_at_ms != 0 && t->promote_at_ms <= at)
        return;
    t->promote_at_ms = at;
    arm_ms(t->ev_promote, in_ms);
}

static void record_latency(struct queue_push *t, uint64_t created_ms)
{
    uint64_t now = queue_now_ms();
    uint64_t ms = now > created_ms ? now - created_ms : 0;
    for (size_t i = 0; i < 8; i++)
        if (ms <= latency_bounds_ms[i])
            t->st.latency_le[i]++;
    t->st.latency_count++;
    t->st.latency_sum_s += (double)ms / 1000.0;
}

static void send_dead(struct queue_push *t, const struct delivery *d, unsigned attempts,
                      const char *reason)
{
    char created[24], att[16];
    snprintf(created, sizeof(created), "%" PRIu64, d->created_ms);
    snprintf(att, sizeof(att), "%u", attempts);
    const char *argv[] = {t->k_ntf, t->k_dlq, d->entry,
                          d->id,    d->body,  created,
                          att,      reason,   d->is_rec ? "rec" : "body"};
    size_t lens[9];
    for (size_t i = 0; i < 9; i++)
        lens[i] = i == 4 ? d->body_len : strlen(argv[i]);
    t->st.dead_lettered++;
    log_warn(&t->q->log, "target %s: message %s dead-lettered after %u attempts: %.200s", t->id,
             d->id, attempts, reason);
    queue_conn_eval(t->wr, &qk_ntf_dead, 2, 9, argv, lens, on_ignored, t);
}

/* The message back to ntfdelay, due `wait` ms from now, with `attempts` as its count. */
static void send_later(struct queue_push *t, const struct delivery *d, unsigned attempts,
                       uint64_t wait)
{
    char due[24], created[24], att[16];
    snprintf(due, sizeof(due), "%" PRIu64, queue_now_ms() + wait);
    snprintf(created, sizeof(created), "%" PRIu64, d->created_ms);
    snprintf(att, sizeof(att), "%u", attempts);
    const char *argv[] = {t->k_ntf, t->k_delay, d->entry, due, d->id, d->body, created, att};
    size_t lens[8];
    for (size_t i = 0; i < 8; i++)
        lens[i] = argv[i] == d->body ? d->body_len : strlen(argv[i]);
    queue_conn_eval(t->wr, &qk_ntf_retry, 2, 8, argv, lens, on_ignored, t);
    arm_promote(t, wait);
}

static void send_retry(struct queue_push *t, const struct delivery *d, unsigned attempts)
{
    t->st.retried++;
    send_later(t, d, attempts,
               jitter_ms(t, t->pol.backoff_base_ms, t->pol.backoff_cap_ms, d->attempts));
}

/* ---- the circuit breaker ---- */

static bool is_too_old(const struct queue_push *t, const struct delivery *d)
{
    uint64_t now = queue_now_ms();
    return d->created_ms < now && now - d->created_ms > (uint64_t)t->pol.max_age_s * 1000;
}

static bool probe_is_due(const struct queue_push *t)
{
    return t->probe_due && !t->probing;
}

static void schedule_probe(struct queue_push *t)
{
    uint64_t wait = jitter_ms(t, t->pol.probe_base_ms, t->pol.probe_cap_ms, t->n_probe_fails);
    t->probe_due = false;
    t->probe_due_ms = queue_now_ms() + wait;
    event_del(t->ev_probe);
    arm_ms(t->ev_probe, wait);
}

static void go_down(struct queue_push *t, const char *reason)
{
    t->down = true;
    t->st.up = false;
    t->n_probe_fails = 0;
    t->down_since_ms = queue_now_ms();
    log_warn(&t->q->log, "target %s unreachable (%.150s): holding its messages, probing", t->id,
             reason);
    schedule_probe(t);
}

static void go_up(struct queue_push *t)
{
    t->down = false;
    t->st.up = true;
    t->up_gen++;
    event_del(t->ev_probe);
    log_info(&t->q->log, "target %s reachable again, after %u unreachable probes", t->id,
             t->n_probe_fails);
}

/* Holds a message of a down target: back to ntfdelay, attempts unchanged (not its fault), due
 * at the next probe; or to the dead letters once older than max_age. */
static void hold(struct queue_push *t, const struct delivery *d)
{
    if (is_too_old(t, d)) {
        char since[32], why[200];
        queue_iso8601(t->down_since_ms, since, sizeof(since));
        snprintf(why, sizeof(why), "target unreachable since %s: %.120s", since, t->down_reason);
        send_dead(t, d, d->attempts, why);
        return;
    }
    uint64_t now = queue_now_ms();
    send_later(t, d, d->attempts, t->probe_due_ms > now ? t->probe_due_ms - now : 0);
}

static void on_unreachable(struct queue_push *t, const struct delivery *d, const char *reason)
{
    if (t->down || d->gen == t->up_gen)
        snprintf(t->down_reason, sizeof(t->down_reason), "%s",
                 reason != NULL ? reason : "unreachable");
    if (!t->down && d->gen == t->up_gen) {
        go_down(t, t->down_reason);
    } else if (!t->down) {
        /* sent before the target came back up: no news, it answered since */
        send_later(t, d, d->attempts,
                   jitter_ms(t, t->pol.backoff_base_ms, t->pol.backoff_cap_ms, d->attempts));
        return;
    } else if (d->probe) {
        t->n_probe_fails++;
        schedule_probe(t);
    }
    hold(t, d);
}

/* The target answered (SENT, RETRY or FAIL): the outcomes of queue.h. */
static void on_answered(struct queue_push *t, const struct delivery *d, enum queue_send_result res,
                        const char *reason)
{
    unsigned attempts = d->attempts + 1;
    if (t->down)
        go_up(t); /* whatever the answer, it is reachable */
    if (res == QUEUE_SENT) {
        t->st.delivered++;
        record_latency(t, d->created_ms);
        queue_conn_cmdf(t->wr, on_ignored, t, "XACK %s " QK_NTF_GROUP " %s", t->k_ntf, d->entry);
        queue_conn_cmdf(t->wr, on_ignored, t, "XDEL %s %s", t->k_ntf, d->entry);
    } else if (res == QUEUE_FAIL) {
        send_dead(t, d, attempts, reason != NULL ? reason : "failed");
    } else if (attempts >= t->pol.max_attempts) {
        char why[200];
        snprintf(why, sizeof(why), "max attempts: %.150s", reason != NULL ? reason : "");
        send_dead(t, d, attempts, why);
    } else if (is_too_old(t, d)) {
        char why[200];
        snprintf(why, sizeof(why), "too old: %.150s", reason != NULL ? reason : "");
        send_dead(t, d, attempts, why);
    } else {
        send_retry(t, d, attempts);
    }
}

static void on_done(void *done_arg, enum queue_send_result res, const char *reason)
{
    struct delivery *d = done_arg;
    struct queue_push *t = d->t;
    if (t == NULL) { /* orphaned by queue_free */
        free(d);
        return;
    }
    flight_remove(t, d);
    t->st.in_flight = t->n_flight;
    if (d->probe)
        t->probing = false;
    if (res == QUEUE_UNREACHABLE)
        on_unreachable(t, d, reason);
    else
        on_answered(t, d, res, reason);
    free(d);
    if (!t->reading && !closing(t))
        event_active(t->ev_pump, EV_TIMEOUT, 1);
}

/* ---- reading ---- */

static bool in_flight(const struct queue_push *t, const char *entry)
{
    for (const struct delivery *d = t->flight; d != NULL; d = d->next)
        if (strcmp(d->entry, entry) == 0)
            return true;
    return false;
}

/* A stream entry's message: its fields as the retries, dead letters and replays write them,
 * or the outbox record the relay queued ({rec}: kind 'N', expanded here by the record map, or
 * 'n'). Spans point into the reply or into `expanded` (malloc'd; the caller frees it). */
struct message {
    struct span id, body;
    uint64_t created_ms;
    unsigned attempts;
    bool is_rec; /* body is the record, which could not be expanded */
    void *expanded;
};

static struct span reply_span(const redisReply *r)
{
    return r != NULL ? span_make(r->str, r->len) : span_make(NULL, 0);
}

/* Fills *m; NULL, or why the entry cannot be delivered (then what it holds is kept: a record
 * that does not expand goes to the dead letters whole, as its body). */
static const char *message_of(struct queue_push *t, const redisReply *fields, struct message *m)
{
    const redisReply *rec = queue_reply_field(fields, "rec"),
                     *att = queue_reply_field(fields, "attempts");
    struct span created = reply_span(queue_reply_field(fields, "created_ms"));
    struct queue_rec raw, full;
    const char *why = NULL;

    *m = (struct message){.id = reply_span(queue_reply_field(fields, "id")),
                          .body = reply_span(queue_reply_field(fields, "body")),
                          .attempts = att != NULL ? (unsigned)strtoul(att->str, NULL, 10) : 0};
    if (rec != NULL) {
        size_t len = 0;
        m->body = reply_span(rec); /* kept whole if it does not expand */
        m->is_rec = true;
        if (queue_rec_parse(rec->str, rec->len, &raw, &why) != 0)
            return "malformed record";
        m->id = queue_rec_get(&raw, "id");
        created = queue_rec_get(&raw, "created_ms");
        if (raw.kind != 'N' && raw.kind != 'n')
            return "malformed record (not a notification)";
        if (raw.kind == 'N' &&
            (t->q->rec_map == NULL ||
             t->q->rec_map(t->q->rec_map_arg, rec->str, rec->len, &m->expanded, &len) != 0 ||
             queue_rec_parse(m->expanded, len, &full, &why) != 0))
            return "malformed record (does not expand)";
        struct span body = queue_rec_get(raw.kind == 'N' ? &full : &raw, "body");
        if (body.ptr == NULL)
            return "malformed record (no body)";
        m->body = body;
        m->is_rec = false;
    }
    if (created.ptr != NULL) {
        char num[24];
        snprintf(num, sizeof(num), "%.*s", (int)(created.len < 23 ? created.len : 23), created.ptr);
        m->created_ms = strtoull(num, NULL, 10);
    }
    if (m->id.ptr == NULL || m->body.ptr == NULL)
        return "malformed entry (no id or body)";
    return NULL;
}

/* Hands one stream entry ([id, [field, value...]]) to the sender. */
static void dispatch(struct queue_push *t, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *entry = e->element[0]->str;
    const redisReply *fields = e->element[1];
    if (strlen(entry) >= sizeof(((struct delivery *)NULL)->entry) || in_flight(t, entry))
        return;
    if (fields->type != REDIS_REPLY_ARRAY) { /* deleted while pending: only ack it */
        queue_conn_cmdf(t->wr, on_ignored, t, "XACK %s " QK_NTF_GROUP " %s", t->k_ntf, entry);
        return;
    }
    struct message m;
    const char *bad = message_of(t, fields, &m);
    struct delivery *d = xcalloc(1, sizeof(*d) + m.id.len + m.body.len + 2);
    d->id = (char *)(d + 1);
    d->body = d->id + m.id.len + 1;
    if (m.id.len > 0)
        memcpy(d->id, m.id.ptr, m.id.len);
    if (m.body.len > 0)
        memcpy(d->body, m.body.ptr, m.body.len);
    d->body_len = m.body.len;
    d->is_rec = m.is_rec;
    snprintf(d->entry, sizeof(d->entry), "%s", entry);
    d->created_ms = m.created_ms;
    d->attempts = m.attempts;
    free(m.expanded);
    if (bad != NULL) {
        send_dead(t, d, d->attempts, bad);
        free(d);
        return;
    }
    /* a down target sends one probe; the rest of a read made before it went down is held,
     * and an entry too old goes to the dead letters (the probe takes the next one) */
    if (t->down && (!probe_is_due(t) || is_too_old(t, d))) {
        hold(t, d);
        free(d);
        return;
    }
    if (t->down) {
        d->probe = true;
        t->probing = true;
        t->st.probes++;
    }
    d->gen = t->up_gen;
    d->t = t;
    d->next = t->flight;
    if (t->flight != NULL)
        t->flight->prev = d;
    t->flight = d;
    t->n_flight++;
    t->st.in_flight = t->n_flight;
    t->send(t->send_arg, d->id, d->body, d->body_len, on_done, d); /* may call on_done now */
}

static void dispatch_all(struct queue_push *t, const redisReply *entries, char *cursor, size_t cap)
{
    if (entries == NULL || entries->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (cursor != NULL && e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
            e->element[0]->type == REDIS_REPLY_STRING)
            snprintf(cursor, cap, "%s", e->element[0]->str);
        dispatch(t, e);
    }
}

static void read_failed(struct queue_push *t, const redisReply *reply)
{
    if (strncmp(reply->str, "NOGROUP", 7) == 0) {
        t->group_ok = false; /* the stream was deleted: create it and the group again */
    } else {
        log_warn(&t->q->log, "target %s: read: %.200s", t->id, reply->str);
    }
    t->history[0] = '\0';
    t->claim[0] = '\0';
    event_del(t->ev_pump);
    arm_ms(t->ev_pump, READ_RETRY_MS);
}

static void on_read(struct queue_conn *c, redisReply *reply, void *arg);

static void on_group(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    t->reading = false;
    if (reply == NULL || closing(t))
        return;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        log_warn(&t->q->log, "target %s: XGROUP CREATE: %.200s", t->id, reply->str);
        arm_ms(t->ev_pump, READ_RETRY_MS);
        return;
    }
    t->group_ok = true;
    /* our own entries left pending by a previous run (or before a reconnect) first, then
     * those of a gateway that stopped (idle over CLAIM_IDLE_MS) */
    snprintf(t->history, sizeof(t->history), "0");
    snprintf(t->claim, sizeof(t->claim), "0-0");
    pump(t);
}

static void on_read(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    if (reply == NULL || closing(t)) {
        t->reading = false;
        t->claiming = false;
        return; /* lost: on_rd_ready starts over */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        t->reading = false;
        t->claiming = false;
        read_failed(t, reply);
        return;
    }
    /* t->reading stays set while the entries are handed out: a done called from inside send
     * must not start a read for slots this batch is about to take */
    if (t->claiming) {
        /* XAUTOCLAIM: [next cursor, entries, deleted ids] */
        const char *next = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2
                               ? queue_reply_str(reply->element[0])
                               : NULL;
        snprintf(t->claim, sizeof(t->claim), "%s",
                 next == NULL || strcmp(next, "0-0") == 0 ? "" : next);
        if (next != NULL)
            dispatch_all(t, reply->element[1], NULL, 0);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
               reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2) {
        const redisReply *entries = reply->element[0]->element[1];
        if (t->history[0] != '\0' && entries->elements == 0)
            t->history[0] = '\0'; /* our pending entries are all handed out: new ones now */
        if (t->history[0] != '\0')
            dispatch_all(t, entries, t->history, sizeof(t->history));
        else
            dispatch_all(t, entries, NULL, 0);
    } else if (t->history[0] != '\0') {
        t->history[0] = '\0';
    }
    t->reading = false;
    t->claiming = false;
    pump(t);
}

/* Reads as many entries as there are free slots: our own pending ones first, then entries
 * of a dead consumer (XAUTOCLAIM), then new ones (blocking for up to a second). A down target
 * reads nothing until its probe is due, and then one entry: the probe. */
static void pump(struct queue_push *t)
{
    if (closing(t) || t->reading || !queue_conn_is_ready(t->rd))
        return;
    if (!t->group_ok) {
        t->reading = true;
        if (queue_conn_cmdf(t->rd, on_group, t, "XGROUP CREATE %s " QK_NTF_GROUP " 0 MKSTREAM",
                            t->k_ntf) != 0)
            t->reading = false;
        return;
    }
    if (t->n_flight >= t->pol.concurrency)
        return; /* on_done pumps again */
    if (t->down && !probe_is_due(t))
        return; /* ev_probe pumps again */
    unsigned n = t->down ? 1 : t->pol.concurrency - t->n_flight;
    int rc;
    if (t->history[0] != '\0')
        rc = queue_conn_cmdf(t->rd, on_read, t,
                             "XREADGROUP GROUP " QK_NTF_GROUP " %s COUNT %u STREAMS %s %s",
                             t->consumer, n, t->k_ntf, t->history);
    else if ((t->claiming = t->claim[0] != '\0'))
        rc = queue_conn_cmdf(t->rd, on_read, t, "XAUTOCLAIM %s " QK_NTF_GROUP " %s %u %s COUNT %u",
                             t->k_ntf, t->consumer, (unsigned)CLAIM_IDLE_MS, t->claim, n);
    else
        rc = queue_conn_cmdf(t->rd, on_read, t,
                             "XREADGROUP GROUP " QK_NTF_GROUP " %s COUNT %u BLOCK %u STREAMS %s >",
                             t->consumer, n, (unsigned)BLOCK_MS, t->k_ntf);
    t->reading = rc == 0;
    if (rc != 0)
        t->claiming = false;
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    struct queue_push *t = arg;
    (void)fd;
    (void)what;
    t->probe_due = true;
    pump(t);
}

static void on_rd_ready(struct queue_conn *c, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    t->group_ok = false;
    t->reading = false;
    pump(t);
}

static void on_rd_down(struct queue_conn *c, const char *why, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    (void)why;
    t->group_ok = false;
    t->history[0] = '\0';
    t->claim[0] = '\0';
}

/* ---- promotion of due retries, and the stats poll (on wr) ---- */

static void on_promoted(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    t->promoting = false;
    if (closing(t))
        return;
    uint64_t in_ms = PROMOTE_MS;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        long long moved = reply->element[0]->integer;
        const char *next_s = queue_reply_str(reply->element[1]);
        long long next = next_s != NULL ? strtoll(next_s, NULL, 10) : -1;
        uint64_t now = queue_now_ms();
        if (moved >= PROMOTE_MAX)
            in_ms = 0;
        else if (next >= 0 && (uint64_t)next <= now)
            in_ms = 1;
        else if (next >= 0 && (uint64_t)next - now < in_ms)
            in_ms = (uint64_t)next - now;
    } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        log_warn(&t->q->log, "target %s: promote: %.200s", t->id, reply->str);
    }
    arm_promote(t, in_ms);
}

static void on_promote(evutil_socket_t fd, short what, void *arg)
{
    struct queue_push *t = arg;
    (void)fd;
    (void)what;
    t->promote_at_ms = 0;
    if (t->promoting || !queue_conn_is_ready(t->wr)) {
        arm_promote(t, PROMOTE_MS);
        return;
    }
    char now[24], max[16];
    snprintf(now, sizeof(now), "%" PRIu64, queue_now_ms());
    snprintf(max, sizeof(max), "%d", PROMOTE_MAX);
    const char *argv[] = {t->k_delay, t->k_ntf, now, max};
    size_t lens[] = {strlen(argv[0]), strlen(argv[1]), strlen(now), strlen(max)};
    if (queue_conn_eval(t->wr, &qk_ntf_promote, 2, 4, argv, lens, on_promoted, t) == 0)
        t->promoting = true;
    else
        arm_promote(t, PROMOTE_MS);
}

enum { POLL_STREAM, POLL_DELAY, POLL_DLQ };

struct poll_reply {
    struct queue_push *t;
    int which;
};

static void on_polled(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct poll_reply *p = arg;
    struct queue_push *t = p->t;
    (void)c;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        if (p->which == POLL_DLQ)
            t->st.dlq = (uint64_t)reply->integer;
        else if (p->which == POLL_STREAM)
            t->poll_stream = (uint64_t)reply->integer;
        else
            t->st.backlog = t->poll_stream + (uint64_t)reply->integer;
    }
    free(p);
}

static void poll_one(struct queue_push *t, int which, const char *cmd, const char *key)
{
    struct poll_reply *p = xmalloc(sizeof(*p));
    *p = (struct poll_reply){t, which};
    if (queue_conn_cmdf(t->wr, on_polled, p, "%s %s", cmd, key) != 0)
        free(p);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct queue_push *t = arg;
    (void)fd;
    (void)what;
    if (!queue_conn_is_ready(t->wr))
        return;
    /* one connection answers in order: the stream's length comes before the delay's */
    poll_one(t, POLL_STREAM, "XLEN", t->k_ntf);
    poll_one(t, POLL_DELAY, "ZCARD", t->k_delay);
    poll_one(t, POLL_DLQ, "XLEN", t->k_dlq);
    if (++t->n_polls % CLAIM_EVERY_POLLS == 0 && t->claim[0] == '\0' && t->group_ok &&
        t->history[0] == '\0')
        snprintf(t->claim, sizeof(t->claim), "0-0");
}

static void on_wr_ready(struct queue_conn *c, void *arg)
{
    struct queue_push *t = arg;
    (void)c;
    t->promoting = false;
    on_poll(-1, 0, t);
    arm_promote(t, 0);
}

/* ---- the public side ---- */

static void policy_defaults(struct queue_target_policy *p)
{
    if (p->concurrency == 0)
        p->concurrency = DEF_CONCURRENCY;
    if (p->max_attempts == 0)
        p->max_attempts = DEF_MAX_ATTEMPTS;
    if (p->max_age_s == 0)
        p->max_age_s = DEF_MAX_AGE_S;
    if (p->backoff_base_ms == 0)
        p->backoff_base_ms = DEF_BACKOFF_MS;
    if (p->backoff_cap_ms == 0)
        p->backoff_cap_ms = DEF_BACKOFF_CAP;
    if (p->probe_base_ms == 0)
        p->probe_base_ms = DEF_PROBE_MS;
    if (p->probe_cap_ms == 0)
        p->probe_cap_ms = DEF_PROBE_CAP;
}

static void consumer_name(char *buf, size_t cap)
{
    char host[64] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "unknown");
    snprintf(buf, cap, "gw-%s", host);
}

void queue_set_record_map(struct queue *q, queue_record_map_fn *fn, void *arg)
{
    q->rec_map = fn;
    q->rec_map_arg = arg;
}

void queue_add_target(struct queue *q, const char *id, const struct queue_target_policy *policy,
                      queue_send_fn *send, void *send_arg)
{
    if (q == NULL || q->freeing || q->conn == NULL || id == NULL || id[0] == '\0' ||
        strlen(id) >= sizeof(((struct queue_push *)NULL)->id) || queue_push_find(q, id) != NULL)
        return;
    struct queue_push *t = xcalloc(1, sizeof(*t));
    t->q = q;
    snprintf(t->id, sizeof(t->id), "%s", id);
    snprintf(t->st.id, sizeof(t->st.id), "%s", id);
    t->st.up = true;
    if (policy != NULL)
        t->pol = *policy;
    policy_defaults(&t->pol);
    t->send = send;
    t->send_arg = send_arg;
    queue_key(q, t->k_ntf, "ntf:", id);
    queue_key(q, t->k_delay, "ntfdelay:", id);
    queue_key(q, t->k_dlq, "ntfdlq:", id);
    consumer_name(t->consumer, sizeof(t->consumer));
    t->rng = ((uint64_t)(uintptr_t)t ^ queue_now_ms() ^ mono_ms() << 20) | 1;
    t->ev_pump = evtimer_new(q->base, on_pump, t);
    t->ev_promote = evtimer_new(q->base, on_promote, t);
    t->ev_probe = evtimer_new(q->base, on_probe, t);
    t->ev_poll = event_new(q->base, -1, EV_PERSIST, on_poll, t);
    arm_ms(t->ev_poll, POLL_MS);
    struct queue_conn_opts rd = {
        .url = &q->url,
        .name = "push-read",
        .stall_ms = 0, /* blocking reads */
        .on_ready = on_rd_ready,
        .on_down = on_rd_down,
        .arg = t,
    };
    struct queue_conn_opts wr = {
        .url = &q->url,
        .name = "push",
        .load_scripts = true,
        .stall_ms = 15000,
        .on_ready = on_wr_ready,
        .arg = t,
    };
    t->rd = queue_conn_new(q->base, &rd);
    t->wr = queue_conn_new(q->base, &wr);
    struct queue_push **tail = &q->targets;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = t;
}

size_t queue_target_stats(const struct queue *q, struct queue_target_stats *out, size_t cap)
{
    size_t n = 0;
    for (const struct queue_push *t = q->targets; t != NULL && n < cap; t = t->next)
        out[n++] = t->st;
    return n;
}

struct queue_push *queue_push_find(struct queue *q, const char *id)
{
    for (struct queue_push *t = q->targets; t != NULL; t = t->next)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

void queue_push_free_all(struct queue *q)
{
    while (q->targets != NULL) {
        struct queue_push *t = q->targets;
        q->targets = t->next;
        for (struct delivery *d = t->flight; d != NULL; d = d->next)
            d->t = NULL; /* their done frees them */
        event_free(t->ev_pump);
        event_free(t->ev_promote);
        event_free(t->ev_probe);
        event_free(t->ev_poll);
        /* pending callbacks run now, with NULL, and see q->freeing */
        queue_conn_free(t->rd);
        queue_conn_free(t->wr);
        free(t);
    }
}

/* floodgate-worker's side of the Redis protocol (queue/keys.h): claiming invocations from the
 * pools' streams (XAUTOCLAIM of abandoned entries, XREADGROUP of new ones), starting and
 * finishing jobs with the Lua scripts, and the maintenance calls (heartbeat, due retries,
 * keeping held entries claimed, P config). Connections are worker_redis.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "gateway/xmalloc.h"
#include "queue/keys.h"
#include "queue/record.h"
#include "queue/worker.h"

#define LOG_TAIL_BYTES 2048
/* Each running job keeps its log and its stdout in memory up to log_max_bytes each. */
#define MAX_LOG_BYTES (64u << 20)

/* ---- held entries -------------------------------------------------------------------------- */

static bool hold(struct worker_slot *s, const struct worker_entry *e)
{
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    if (s->n_held < WORKER_MAX_HELD) {
        s->held[s->n_held++] = *e;
        ok = true;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void worker_unhold(struct worker_slot *s, const struct worker_entry *e)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_held; i++) {
        if (strcmp(s->held[i].entry_id, e->entry_id) == 0 &&
            strcmp(s->held[i].pool, e->pool) == 0) {
            s->held[i] = s->held[--s->n_held];
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* True when a slot of this worker holds the entry (a reclaim must not run it twice). */
static bool held_here(struct worker *w, const char *pool, const char *entry_id)
{
    bool found = false;
    for (unsigned i = 0; i < w->n_slots && !found; i++) {
        struct worker_slot *s = &w->slots[i];
        pthread_mutex_lock(&s->mu);
        for (size_t j = 0; j < s->n_held && !found; j++)
            found =
                strcmp(s->held[j].entry_id, entry_id) == 0 && strcmp(s->held[j].pool, pool) == 0;
        pthread_mutex_unlock(&s->mu);
    }
    return found;
}

/* ---- claiming ------------------------------------------------------------------------------ */

static const redisReply *field_reply(const redisReply *fields, const char *name);

static const char *field_of(const redisReply *fields, const char *name)
{
    const redisReply *v = field_reply(fields, name);
    return v != NULL ? v->str : NULL;
}

static const redisReply *field_reply(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0)
            return v;
    }
    return NULL;
}

/* The service and rev of a relayed job from the outbox record of its entry; GONE when the
 * record does not parse (worker_start then refuses it too). */
static void peek_rec(const redisReply *rec, struct worker_entry *e)
{
    struct queue_rec r;
    struct span svc, rev = span_make(NULL, 0);
    const char *why = NULL;
    e->peeked = true;
    e->peek = WORKER_PEEK_GONE;
    if (queue_rec_parse(rec->str, rec->len, &r, &why) != 0 || r.kind != 'j' ||
        queue_rec_need(&r, "service", &svc) != 0 || svc.len >= sizeof(e->service))
        return;
    (void)queue_rec_need(&r, "rev", &rev);
    e->peek = WORKER_PEEK_OK;
    snprintf(e->service, sizeof(e->service), "%.*s", (int)svc.len, svc.ptr);
    snprintf(e->rev, sizeof(e->rev), "%.*s", (int)(rev.len < sizeof(e->rev) ? rev.len : 0),
             rev.ptr != NULL ? rev.ptr : "");
}

static void ack_raw(struct worker_slot *s, const char *pool, const char *entry_id)
{
    char key[512];
    worker_key(s->w, key, sizeof(key), "inv:", pool);
    const char *argv[] = {"XACK", key, QK_GROUP, entry_id};
    redisReply *rep = worker_redis_cmd(&s->redis, 4, argv, NULL);
    if (rep != NULL)
        freeReplyObject(rep);
    argv[0] = "XDEL"; /* an acked entry is never read again: keep the stream short */
    argv[2] = entry_id;
    rep = worker_redis_cmd(&s->redis, 3, argv, NULL);
    if (rep != NULL)
        freeReplyObject(rep);
}

/* The job's service and rev from an HMGET reply [service, rev] into e (worker_peek's). */
static enum worker_peek_result peek_of(const redisReply *rep, struct worker_entry *e)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len == 0 ||
        rep->element[0]->len >= sizeof(e->service))
        return WORKER_PEEK_GONE;
    const redisReply *r = rep->element[1];
    snprintf(e->service, sizeof(e->service), "%s", rep->element[0]->str);
    snprintf(e->rev, sizeof(e->rev), "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    return WORKER_PEEK_OK;
}

/* Queues one stream entry [id, [field, value...]] of `pool` for this slot; `peek`, when not
 * NULL, is its job's HMGET service rev, read with it. */
static void take_entry(struct worker_slot *s, const char *pool, const redisReply *ent,
                       const redisReply *peek)
{
    struct worker_entry e;
    if (ent->type != REDIS_REPLY_ARRAY || ent->elements < 2 ||
        ent->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *id = ent->element[0]->str;
    const char *job = field_of(ent->element[1], "job");
    if (job == NULL || strlen(job) >= sizeof(e.job_id) || strlen(id) >= sizeof(e.entry_id)) {
        log_warn(&worker_log, "%s: entry %.64s of pool %s has no usable job id; dropped", s->name,
                 id, pool);
        ack_raw(s, pool, id);
        return;
    }
    if (held_here(s->w, pool, id)) {
        /* its idle time ran out while Redis was unreachable; the refresh will catch up */
        log_debug(&worker_log, "%s: entry %s is already running here", s->name, id);
        return;
    }
    memset(&e, 0, sizeof(e));
    snprintf(e.pool, sizeof(e.pool), "%s", pool);
    snprintf(e.entry_id, sizeof(e.entry_id), "%s", id);
    snprintf(e.job_id, sizeof(e.job_id), "%s", job);
    const redisReply *rec = field_reply(ent->element[1], "rec");
    if (rec != NULL) {
        peek_rec(rec, &e); /* a relayed job: its entry carries the outbox record (keys.h) */
    } else if (peek != NULL) {
        e.peeked = true;
        e.peek = peek_of(peek, &e);
    }
    /* An entry that cannot be held stays pending under our name; once idle past the
     * visibility timeout anyone (this slot too) takes it over. */
    if (s->n_queue >= WORKER_MAX_HELD || !hold(s, &e)) {
        log_debug(&worker_log, "%s: no room for entry %s; left for reclaim", s->name, id);
        return;
    }
    s->queue[s->n_queue++] = e;
}

static const char *pool_of_key(const struct worker *w, const char *key)
{
    size_t pl = strlen(w->cfg.prefix);
    if (strncmp(key, w->cfg.prefix, pl) != 0 || strncmp(key + pl, "inv:", 4) != 0)
        return NULL;
    return key + pl + 4;
}

/* An XREADGROUP reply: [[stream, [[id, fields], ...]], ...] or nil. */
static void take_read_reply(struct worker_slot *s, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *st = rep->element[i];
        if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
            st->element[0]->type != REDIS_REPLY_STRING || st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const char *pool = pool_of_key(s->w, st->element[0]->str);
        if (pool == NULL)
            continue;
        for (size_t j = 0; j < st->element[1]->elements; j++)
            take_entry(s, pool, st->element[1]->element[j], NULL);
    }
}

/* XAUTOCLAIM of entries idle past the visibility timeout (their worker died). -1: down. */
static int autoclaim(struct worker_slot *s)
{
    struct worker *w = s->w;
    char key[512], idle[32];
    snprintf(idle, sizeof(idle), "%" PRIuFAST64, atomic_load(&w->visibility_ms));
    for (size_t i = 0; i < w->cfg.n_pools && s->n_queue == 0; i++) {
        worker_key(w, key, sizeof(key), "inv:", w->cfg.pools[i]);
        const char *argv[] = {"XAUTOCLAIM",           key,     QK_GROUP, w->id, idle,
                              s->autoclaim_cursor[i], "COUNT", "1"};
        redisReply *rep = worker_redis_cmd(&s->redis, 8, argv, NULL);
        if (rep == NULL)
            return -1;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
            rep->element[0]->type == REDIS_REPLY_STRING) {
            snprintf(s->autoclaim_cursor[i], 64, "%s", rep->element[0]->str);
            const redisReply *ents = rep->element[1];
            for (size_t j = 0; ents->type == REDIS_REPLY_ARRAY && j < ents->elements; j++) {
                size_t before = s->n_queue;
                take_entry(s, w->cfg.pools[i], ents->element[j], NULL);
                if (s->n_queue > before)
                    log_info(&worker_log,
                             "%s: reclaimed job %s of pool %s (its worker stopped "
                             "renewing it)",
                             s->name, s->queue[s->n_queue - 1].job_id, w->cfg.pools[i]);
            }
        } else if (rep->type == REDIS_REPLY_ERROR) {
            log_warn(&worker_log, "%s: XAUTOCLAIM %s: %s", s->name, key, rep->str);
        }
        freeReplyObject(rep);
    }
    return 0;
}

/* KEYS inv:{pool}; ARGV consumer prefix. XREADGROUP COUNT 1 of a new entry and, unless the
 * entry carries it, the HMGET service rev of its job, in one round trip: [id, fields,
 * [service, rev]] (or [id, fields]), or nil when there is none. A script cannot block: the
 * blocking read stays a plain XREADGROUP. */
static const char read_peek_lua[] =
    "local r = redis.call('XREADGROUP', 'GROUP', '" QK_GROUP "', ARGV[1], 'COUNT', '1',\n"
    "                     'STREAMS', KEYS[1], '>')\n"
    "if not r then return false end\n"
    "local ent = r[1][2][1]\n"
    "local f = ent[2]\n"
    "local job\n"
    "for i = 1, #f - 1, 2 do\n"
    "  if f[i] == 'rec' then return {ent[1], f} end\n"
    "  if f[i] == 'job' then job = f[i + 1] end\n"
    "end\n"
    "if job then\n"
    "  return {ent[1], f, redis.call('HMGET', ARGV[2] .. 'job:' .. job, 'service', 'rev')}\n"
    "end\n"
    "return {ent[1], f}\n";

/* A new entry of pool `i` without blocking, with its job's service (read_peek_lua). */
static int read_peek(struct worker_slot *s, size_t i)
{
    struct worker *w = s->w;
    char key[512];
    worker_key(w, key, sizeof(key), "inv:", w->cfg.pools[i]);
    /* EVAL, not EVALSHA: a short script, cached by Redis after the first call */
    const char *argv[] = {"EVAL", read_peek_lua, "1", key, w->id, w->cfg.prefix};
    redisReply *rep = worker_redis_cmd(&s->redis, 6, argv, NULL);
    if (rep == NULL)
        return -1;
    if (rep->type == REDIS_REPLY_ERROR)
        log_warn(&worker_log, "%s: XREADGROUP %s: %s", s->name, key, rep->str);
    else if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2)
        take_entry(s, w->cfg.pools[i], rep,
                   rep->elements >= 3 && rep->element[2]->type == REDIS_REPLY_ARRAY
                       ? rep->element[2]
                       : NULL);
    freeReplyObject(rep);
    return 0;
}

/* XREADGROUP of new entries on `n` streams from `first`; block_ms < 0: no BLOCK. */
static int read_new(struct worker_slot *s, size_t first, size_t n, int block_ms)
{
    struct worker *w = s->w;
    size_t argc = 0, max = 9 + 2 * n;
    const char **argv = xcalloc(max, sizeof(char *));
    char(*keys)[512] = xcalloc(n, sizeof(*keys));
    char block[16];
    int ret = 0;

    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = QK_GROUP;
    argv[argc++] = w->id;
    argv[argc++] = "COUNT";
    argv[argc++] = "1";
    if (block_ms >= 0) {
        snprintf(block, sizeof(block), "%d", block_ms);
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }
    argv[argc++] = "STREAMS";
    for (size_t i = 0; i < n; i++)
        argv[argc++] = worker_key(w, keys[i], sizeof(keys[i]), "inv:", w->cfg.pools[first + i]);
    for (size_t i = 0; i < n; i++)
        argv[argc++] = ">";
    redisReply *rep = worker_redis_cmd(&s->redis, (int)argc, argv, NULL);
    if (rep == NULL) {
        ret = -1;
    } else {
        if (rep->type == REDIS_REPLY_ERROR)
            log_warn(&worker_log, "%s: XREADGROUP: %s", s->name, rep->str);
        else
            take_read_reply(s, rep);
        freeReplyObject(rep);
    }
    free(keys);
    free(argv);
    return ret;
}

int worker_claim_next(struct worker_slot *s, struct worker_entry *out)
{
    struct worker *w = s->w;
    if (s->n_queue == 0) {
        if (!worker_redis_up(&s->redis))
            return -1;
        uint64_t now = worker_now_ms();
        if (now - s->last_autoclaim_ms >= 1000) {
            s->last_autoclaim_ms = now;
            if (autoclaim(s) != 0)
                return -1;
        }
        /* pools in order of preference first, then a blocking read on all of them (which,
         * when it wakes up, answers for the one stream that got an entry) */
        for (size_t i = 0; i < w->cfg.n_pools && s->n_queue == 0; i++)
            if (read_peek(s, i) != 0)
                return -1;
        if (s->n_queue == 0 && !atomic_load(&w->stopping) &&
            read_new(s, 0, w->cfg.n_pools, 1000) != 0)
            return -1;
    }
    if (s->n_queue == 0)
        return 0;
    *out = s->queue[0];
    memmove(&s->queue[0], &s->queue[1], (s->n_queue - 1) * sizeof(s->queue[0]));
    s->n_queue--;
    return 1;
}

void worker_ack(struct worker_slot *s, const struct worker_entry *e)
{
    ack_raw(s, e->pool, e->entry_id);
    worker_unhold(s, e);
}

/* ---- before the start: the service's limit ------------------------------------------------ */

enum worker_peek_result worker_peek(struct worker_slot *s, const struct worker_entry *e,
                                    char *service, size_t service_cap, char *rev, size_t rev_cap)
{
    char key[512];
    if (e->peeked) {
        snprintf(service, service_cap, "%s", e->service);
        snprintf(rev, rev_cap, "%s", e->rev);
        return e->peek;
    }
    worker_key(s->w, key, sizeof(key), "job:", e->job_id);
    const char *argv[] = {"HMGET", key, "service", "rev"};
    redisReply *rep = worker_redis_cmd(&s->redis, 4, argv, NULL);
    if (rep == NULL)
        return WORKER_PEEK_DOWN;
    enum worker_peek_result res = WORKER_PEEK_GONE;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING && rep->element[0]->len > 0 &&
        rep->element[0]->len < service_cap) {
        snprintf(service, service_cap, "%s", rep->element[0]->str);
        const redisReply *r = rep->element[1];
        snprintf(rev, rev_cap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
        res = WORKER_PEEK_OK;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        log_warn(&worker_log, "%s: HMGET %s: %s", s->name, key, rep->str);
    }
    freeReplyObject(rep);
    return res;
}

/* KEYS inv:{pool}; ARGV job_id entry_id consumer. Acts only on an entry still pending under
 * this worker: one reclaimed by another must not be acked (nor its job doubled). The new entry
 * has the old one's fields: a relayed job not started yet has no record without them. */
static const char hand_back_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], '" QK_GROUP "', ARGV[2], ARGV[2], 1, ARGV[3])\n"
    "if #p == 0 then return 0 end\n"
    "local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])\n"
    "redis.call('XADD', KEYS[1], '*', unpack(e[1] and e[1][2] or {'job', ARGV[1]}))\n"
    "redis.call('XACK', KEYS[1], '" QK_GROUP "', ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "return 1\n";

int worker_hand_back(struct worker_slot *s, const struct worker_entry *e)
{
    char key[512];
    int ret = -1;
    worker_key(s->w, key, sizeof(key), "inv:", e->pool);
    /* EVAL, not EVALSHA: one short script, cached by Redis after the first call */
    const char *argv[] = {"EVAL", hand_back_lua, "1", key, e->job_id, e->entry_id, s->w->id};
    redisReply *rep = worker_redis_cmd(&s->redis, 7, argv, NULL);
    if (rep != NULL) {
        if (rep->type == REDIS_REPLY_ERROR)
            log_warn(&worker_log, "%s: handing back job %s: %s", s->name, e->job_id, rep->str);
        else
            ret = 0;
        freeReplyObject(rep);
    }
    worker_unhold(s, e);
    return ret;
}

/* ---- start --------------------------------------------------------------------------------- */

void worker_job_cleanup(struct worker_job *job)
{
    free(job->id);
    free(job->service);
    free(job->pool);
    free(job->bucket);
    free(job->key);
    free(job->event);
    free(job->rev);
    memset(job, 0, sizeof(*job));
}

static uint64_t to_u64(const char *s)
{
    char *end;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return 0;
    unsigned long long v = strtoull(s, &end, 10);
    return *end == '\0' ? (uint64_t)v : 0;
}

static void parse_job(const redisReply *rec, const struct worker_entry *e, struct worker_job *job)
{
    memset(job, 0, sizeof(*job));
    const char *s;
#define STR_FIELD(name) job->name = xstrdup((s = field_of(rec, #name)) != NULL ? s : "")
    STR_FIELD(service);
    STR_FIELD(pool);
    STR_FIELD(bucket);
    STR_FIELD(key);
    STR_FIELD(event);
    STR_FIELD(rev);
#undef STR_FIELD
    s = field_of(rec, "id");
    job->id = xstrdup(s != NULL && s[0] != '\0' ? s : e->job_id);
    job->max_attempts = (unsigned)to_u64(field_of(rec, "max_attempts"));
    if (job->max_attempts == 0)
        job->max_attempts = 3;
    job->attempts = (unsigned)to_u64(field_of(rec, "attempts"));
    job->created_ms = to_u64(field_of(rec, "created_ms"));
    s = field_of(rec, "payload");
    job->payload = s != NULL && strcmp(s, "1") == 0;
    s = field_of(rec, "sync");
    job->sync = s != NULL && strcmp(s, "1") == 0;
}

enum worker_start_result worker_start(struct worker_slot *s, const struct worker_entry *e,
                                      struct worker_job *job)
{
    char key[512], k_inv[512], now[32];
    worker_key(s->w, key, sizeof(key), "job:", e->job_id);
    worker_key(s->w, k_inv, sizeof(k_inv), "inv:", e->pool);
    snprintf(now, sizeof(now), "%" PRIu64, worker_now_ms());
    const char *argv[] = {key, k_inv, s->w->id, now, e->entry_id};
    redisReply *rep = worker_redis_script(&s->redis, &qk_start, 2, 5, argv, NULL);
    if (rep == NULL)
        return WORKER_START_DOWN;
    enum worker_start_result res = WORKER_START_SKIP;
    if (rep->type == REDIS_REPLY_ARRAY) {
        parse_job(rep, e, job);
        res = WORKER_START_OK;
    } else if (rep->type == REDIS_REPLY_NIL) {
        log_info(&worker_log, "%s: job %s is gone; acked", s->name, e->job_id);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        log_warn(&worker_log, "%s: starting job %s: %s; acked", s->name, e->job_id, rep->str);
    } else {
        log_info(&worker_log, "%s: job %s already ended; acked", s->name, e->job_id);
    }
    freeReplyObject(rep);
    if (res == WORKER_START_SKIP)
        worker_ack(s, e);
    return res;
}

/* ---- finish -------------------------------------------------------------------------------- */

int worker_finish(struct worker_slot *s, const struct worker_entry *e, const struct worker_job *job,
                  const struct worker_outcome *o)
{
    struct worker *w = s->w;
    char k_job[512], k_inv[512], k_log[512], k_delay[512], k_dlq[512], k_done[512], k_out[512],
        k_in[512];
    char now[32], ttl[32], due[32];
    worker_key(w, k_job, sizeof(k_job), "job:", job->id);
    worker_key(w, k_inv, sizeof(k_inv), "inv:", e->pool);
    worker_key(w, k_log, sizeof(k_log), "log:", job->id);
    worker_key(w, k_delay, sizeof(k_delay), "delay", NULL);
    worker_key(w, k_dlq, sizeof(k_dlq), "dlq:", job->service);
    worker_key(w, k_done, sizeof(k_done), "done:", job->id);
    worker_key(w, k_out, sizeof(k_out), "out:", job->id);
    worker_key(w, k_in, sizeof(k_in), "in:", job->id);
    snprintf(ttl, sizeof(ttl), "%" PRIuFAST64, atomic_load(&w->job_ttl_s));
    snprintf(due, sizeof(due), "%" PRIu64, o->retry_due_ms);
    size_t tail = o->log_len > LOG_TAIL_BYTES ? LOG_TAIL_BYTES : o->log_len;
    const char *log = o->log != NULL ? o->log : "";
    const char *out = o->out != NULL ? o->out : "";
    unsigned backoff = 100;

    for (;;) {
        snprintf(now, sizeof(now), "%" PRIu64, worker_now_ms());
        const char *argv[] = {k_job,
                              k_inv,
                              k_log,
                              k_delay,
                              k_dlq,
                              k_done,
                              k_out,
                              k_in,
                              job->id,
                              e->entry_id,
                              o->status,
                              now,
                              o->exit_code,
                              o->reason,
                              log,
                              ttl,
                              due,
                              out,
                              log + o->log_len - tail};
        size_t lens[19];
        for (int i = 0; i < 19; i++)
            lens[i] = strlen(argv[i]);
        lens[14] = o->log_len;
        lens[17] = o->out_len;
        lens[18] = tail;
        redisReply *rep = worker_redis_script(&s->redis, &qk_finish, 8, 19, argv, lens);
        if (rep != NULL) {
            int ret = 0;
            if (rep->type == REDIS_REPLY_ERROR) {
                log_error(&worker_log, "%s: finishing job %s: %s", s->name, job->id, rep->str);
                ret = -1;
            }
            freeReplyObject(rep);
            worker_unhold(s, e);
            return ret;
        }
        if (atomic_load(&w->hard)) {
            log_warn(&worker_log,
                     "%s: job %s ended %s but Redis was not told; it will be run "
                     "again after the visibility timeout",
                     s->name, job->id, o->status);
            return -1;
        }
        /* the job has run: keep its outcome until Redis takes it */
        worker_sleep_ms(w, backoff, true);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

/* ---- maintenance --------------------------------------------------------------------------- */

static void cmd_and_free(struct worker_redis *r, int argc, const char **argv)
{
    redisReply *rep = worker_redis_cmd(r, argc, argv, NULL);
    if (rep != NULL) {
        if (rep->type == REDIS_REPLY_ERROR)
            log_warn(&worker_log, "%s: %s: %s", r->name, argv[0], rep->str);
        freeReplyObject(rep);
    }
}

void worker_heartbeat(struct worker *w, struct worker_redis *r)
{
    char key[512], now[32], pid[16], conc[16], running[16], started[32], done[32], failed[32];
    unsigned n_running = 0;
    for (unsigned i = 0; i < w->n_slots; i++)
        n_running += atomic_load(&w->slots[i].running) ? 1 : 0;
    snprintf(now, sizeof(now), "%" PRIu64, worker_now_ms());
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    snprintf(conc, sizeof(conc), "%u", w->n_slots);
    snprintf(running, sizeof(running), "%u", n_running);
    snprintf(started, sizeof(started), "%" PRIu64, w->started_ms);
    snprintf(done, sizeof(done), "%" PRIuFAST64, atomic_load(&w->n_done));
    snprintf(failed, sizeof(failed), "%" PRIuFAST64, atomic_load(&w->n_failed));
    for (size_t i = 0; i < w->cfg.n_pools; i++) {
        worker_key(w, key, sizeof(key), "workers:", w->cfg.pools[i]);
        const char *argv[] = {"ZADD", key, now, w->id};
        cmd_and_free(r, 4, argv);
    }
    worker_key(w, key, sizeof(key), "worker:", w->id);
    const char *hset[] = {"HSET",       key,          "host",        w->host, "pid",     pid,
                          "pools",      w->pools_csv, "concurrency", conc,    "running", running,
                          "started_ms", started,      "done",        done,    "failed",  failed};
    cmd_and_free(r, (int)(sizeof(hset) / sizeof(hset[0])), hset);
    const char *expire[] = {"EXPIRE", key, "5"};
    cmd_and_free(r, 3, expire);
}

void worker_heartbeat_remove(struct worker *w, struct worker_redis *r)
{
    char key[512];
    for (size_t i = 0; i < w->cfg.n_pools; i++) {
        worker_key(w, key, sizeof(key), "workers:", w->cfg.pools[i]);
        const char *argv[] = {"ZREM", key, w->id};
        cmd_and_free(r, 3, argv);
    }
    worker_key(w, key, sizeof(key), "worker:", w->id);
    const char *del[] = {"DEL", key};
    cmd_and_free(r, 2, del);
}

void worker_promote(struct worker *w, struct worker_redis *r)
{
    char key[512], now[32];
    worker_key(w, key, sizeof(key), "delay", NULL);
    snprintf(now, sizeof(now), "%" PRIu64, worker_now_ms());
    const char *argv[] = {key, w->cfg.prefix, now, "100"};
    redisReply *rep = worker_redis_script(r, &qk_promote, 1, 4, argv, NULL);
    if (rep == NULL)
        return;
    if (rep->type == REDIS_REPLY_ERROR)
        log_warn(&worker_log, "%s: promote: %s", r->name, rep->str);
    else if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
        log_debug(&worker_log, "%lld retries due, back in their pools", rep->integer);
    freeReplyObject(rep);
}

void worker_refresh_held(struct worker *w, struct worker_redis *r)
{
    char key[512];
    for (unsigned i = 0; i < w->n_slots; i++) {
        struct worker_slot *s = &w->slots[i];
        struct worker_entry held[WORKER_MAX_HELD];
        size_t n;
        pthread_mutex_lock(&s->mu);
        n = s->n_held;
        memcpy(held, s->held, n * sizeof(held[0]));
        pthread_mutex_unlock(&s->mu);
        for (size_t j = 0; j < n; j++) {
            /* min-idle 0: resets the entry's idle time, so nobody's XAUTOCLAIM takes it */
            worker_key(w, key, sizeof(key), "inv:", held[j].pool);
            const char *argv[] = {"XCLAIM", key, QK_GROUP, w->id, "0", held[j].entry_id, "JUSTID"};
            cmd_and_free(r, 7, argv);
        }
    }
}

void worker_read_config(struct worker *w, struct worker_redis *r)
{
    char key[512];
    worker_key(w, key, sizeof(key), "config", NULL);
    const char *argv[] = {"HGETALL", key};
    redisReply *rep = worker_redis_cmd(r, 2, argv, NULL);
    if (rep == NULL)
        return;
    uint64_t v;
    if ((v = to_u64(field_of(rep, "job_ttl_s"))) > 0)
        atomic_store(&w->job_ttl_s, v);
    if ((v = to_u64(field_of(rep, "log_max_bytes"))) > 0 && v <= MAX_LOG_BYTES)
        atomic_store(&w->log_max_bytes, v);
    if (w->cfg.visibility_ms == 0 && (v = to_u64(field_of(rep, "visibility_ms"))) > 0)
        atomic_store(&w->visibility_ms, v);
    freeReplyObject(rep);
}

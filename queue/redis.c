/* The reconnecting Redis connection (see redis.h). What is sent on it is the callers'
 * business; this file only knows the handshake and the EVALSHA -> EVAL fallback. */
#include "queue/redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "gateway/log.h"
#include "gateway/xmalloc.h"

#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 5000
#define TICK_MS            1000

enum conn_state {
    ST_WAIT,       /* reconnect timer armed */
    ST_CONNECTING, /* TCP connect or handshake in flight */
    ST_READY,
};

struct queue_conn {
    struct event_base *base;
    struct qk_url url;
    struct queue_conn_opts opts;
    struct log_ctx log;
    redisAsyncContext *ac; /* NULL while waiting to reconnect */
    enum conn_state state;
    unsigned backoff_ms;
    uint64_t attempts;
    uint64_t state_since_ms; /* when the current attempt started */
    size_t n_pending;        /* commands sent, replies not yet in */
    uint64_t progress_ms;    /* last reply (or first send after idle) */
    unsigned hs_left;        /* handshake replies still expected */
    struct event *retry;
    struct event *tick;
    char last_error[128];
};

/* A command in flight; for EVALSHA also the copy of its arguments for the EVAL retry. */
struct pending {
    struct queue_conn *c;
    queue_cmd_cb *cb;
    void *arg;
    const struct qk_script *script; /* an EVALSHA that may be retried as EVAL */
    int argc;                       /* > 0 while the EVAL retry is still possible */
    const char **argv;              /* one block with lens and the bytes */
    size_t *lens;
};

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void arm(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
    event_add(ev, &tv);
}

/* ---- connection lifecycle ---- */

static void set_error(struct queue_conn *c, const char *why)
{
    snprintf(c->last_error, sizeof(c->last_error), "%s", why);
}

/* Forgets ac (its callbacks from now on are about a dead connection) and schedules the next
 * attempt. Does not free ac: the caller does, or hiredis is already doing it. */
static void went_down(struct queue_conn *c, const char *why)
{
    bool was_ready = c->state == ST_READY;
    if (c->ac != NULL)
        c->ac->data = NULL;
    c->ac = NULL;
    c->state = ST_WAIT;
    c->n_pending = 0;
    set_error(c, why);
    if (was_ready && !c->opts.quiet)
        log_warn(&c->log, "redis %s:%d lost: %s; reconnecting", c->url.host, c->url.port, why);
    else
        log_debug(&c->log, "redis %s:%d: %s; retry in %u ms", c->url.host, c->url.port, why,
                  c->backoff_ms);
    arm(c->retry, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (c->opts.on_down != NULL)
        c->opts.on_down(c, c->last_error, c->opts.arg);
}

void queue_conn_reset(struct queue_conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (ac == NULL)
        return;
    went_down(c, why);
    /* Pending callbacks get NULL now, or after the current callback when called from one
     * (hiredis defers the free while REDIS_IN_CALLBACK). */
    redisAsyncFree(ac);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct queue_conn *c = ac->data;
    (void)status;
    if (c == NULL || c->ac != ac)
        return; /* we dropped it ourselves */
    went_down(c, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

static void become_ready(struct queue_conn *c)
{
    c->state = ST_READY;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->last_error[0] = '\0';
    if (c->opts.quiet)
        log_debug(&c->log, "redis %s:%d connected (%s)", c->url.host, c->url.port,
                  c->opts.name != NULL ? c->opts.name : "");
    else
        log_info(&c->log, "redis %s:%d connected", c->url.host, c->url.port);
    c->opts.on_ready(c, c->opts.arg);
}

static void on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
    struct queue_conn *c = privdata;
    redisReply *reply = r;
    if (c->ac != ac)
        return; /* a reply of a connection already dropped */
    if (reply == NULL) {
        went_down(c, "lost during the handshake");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[128];
        snprintf(why, sizeof(why), "handshake refused: %.100s", reply->str);
        log_error(&c->log, "redis %s:%d: %s", c->url.host, c->url.port, why);
        queue_conn_reset(c, why);
        return;
    }
    if (--c->hs_left == 0)
        become_ready(c);
}

static void send_handshake(struct queue_conn *c)
{
    redisAsyncContext *ac = c->ac;
    c->hs_left = 0;
    if (c->url.password[0] != '\0' &&
        redisAsyncCommand(ac, on_handshake, c, "AUTH %s", c->url.password) == REDIS_OK)
        c->hs_left++;
    if (c->url.db != 0 &&
        redisAsyncCommand(ac, on_handshake, c, "SELECT %d", c->url.db) == REDIS_OK)
        c->hs_left++;
    if (c->opts.load_scripts) {
        for (size_t i = 0; i < qk_n_scripts; i++)
            if (redisAsyncCommand(ac, on_handshake, c, "SCRIPT LOAD %s", qk_scripts[i]->text) ==
                REDIS_OK)
                c->hs_left++;
    }
    if (redisAsyncCommand(ac, on_handshake, c, "PING") == REDIS_OK)
        c->hs_left++;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct queue_conn *c = cac->data;
    if (c == NULL || c->ac != cac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns */
        went_down(c, cac->errstr[0] != '\0' ? cac->errstr : "connect failed");
        return;
    }
    send_handshake(c);
}

static void start_attempt(struct queue_conn *c)
{
    if (c->attempts++ > 0)
        log_debug(&c->log, "redis %s:%d: connecting (attempt %llu)", c->url.host, c->url.port,
                  (unsigned long long)c->attempts);
    c->state = ST_CONNECTING;
    c->state_since_ms = mono_ms();
    /* hiredis 0.14 resolves names with a blocking getaddrinfo: use an IP or localhost */
    redisAsyncContext *ac = redisAsyncConnect(c->url.host, c->url.port);
    if (ac == NULL) {
        went_down(c, "out of memory");
        return;
    }
    if (ac->err != 0) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(c, why);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisLibeventAttach(ac, c->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_attempt(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct queue_conn *c = arg;
    (void)fd;
    (void)what;
    uint64_t now = mono_ms();
    if (c->state == ST_CONNECTING && now - c->state_since_ms > CONNECT_TIMEOUT_MS)
        queue_conn_reset(c, "connect timed out");
    else if (c->state == ST_READY && c->opts.stall_ms > 0 && c->n_pending > 0 &&
             now - c->progress_ms > c->opts.stall_ms)
        queue_conn_reset(c, "no reply in time");
}

struct queue_conn *queue_conn_new(struct event_base *base, const struct queue_conn_opts *opts)
{
    struct queue_conn *c = xcalloc(1, sizeof(*c));
    qk_init();
    c->base = base;
    c->url = *opts->url;
    c->opts = *opts;
    c->opts.url = &c->url;
    c->log.module = "queue";
    c->backoff_ms = BACKOFF_MIN_MS;
    c->state = ST_WAIT;
    c->retry = evtimer_new(base, on_retry, c);
    c->tick = event_new(base, -1, EV_PERSIST, on_tick, c);
    arm(c->retry, 0);
    arm(c->tick, TICK_MS);
    return c;
}

void queue_conn_free(struct queue_conn *c)
{
    if (c == NULL)
        return;
    event_free(c->retry);
    event_free(c->tick);
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = ST_WAIT;
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac); /* runs the pending callbacks (NULL) now: c must still exist */
    }
    free(c);
}

bool queue_conn_is_ready(const struct queue_conn *c)
{
    return c != NULL && c->state == ST_READY;
}

uint64_t queue_conn_reconnects(const struct queue_conn *c)
{
    return c->attempts > 0 ? c->attempts - 1 : 0;
}

const char *queue_conn_last_error(const struct queue_conn *c)
{
    return c->last_error;
}

/* ---- commands ---- */

static void pending_free(struct pending *p)
{
    free(p->argv); /* lens and the bytes live in the same block */
    free(p);
}

/* NOSCRIPT: Redis lost its script cache (a restart, SCRIPT FLUSH). Sends the same call again
 * as EVAL on the connection that answered; true when it went out. */
static bool retry_as_eval(redisAsyncContext *ac, struct pending *p)
{
    struct queue_conn *c = p->c;
    p->argv[0] = "EVAL";
    p->lens[0] = 4;
    p->argv[1] = p->script->text;
    p->lens[1] = strlen(p->script->text);
    int argc = p->argc;
    p->argc = 0; /* once only */
    if (c->ac != ac || redisAsyncCommandArgv(ac, on_reply, p, argc, p->argv, p->lens) != REDIS_OK)
        return false;
    c->n_pending++;
    return true;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct pending *p = privdata;
    struct queue_conn *c = p->c;
    redisReply *reply = r;
    if (c->ac == ac) {
        c->n_pending--;
        c->progress_ms = mono_ms();
    }
    if (reply != NULL && p->argc > 0 && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        if (retry_as_eval(ac, p))
            return;
        reply = NULL;
    }
    p->cb(c, reply, p->arg);
    pending_free(p);
}

static int send_pending(struct queue_conn *c, struct pending *p, int argc, const char **argv,
                        const size_t *lens)
{
    if (c->state != ST_READY || c->ac == NULL)
        return -1;
    if (redisAsyncCommandArgv(c->ac, on_reply, p, argc, argv, lens) != REDIS_OK)
        return -1;
    if (c->n_pending++ == 0)
        c->progress_ms = mono_ms();
    return 0;
}

int queue_conn_cmdv(struct queue_conn *c, queue_cmd_cb *cb, void *arg, int argc, const char **argv,
                    const size_t *lens)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    *p = (struct pending){.c = c, .cb = cb, .arg = arg};
    if (send_pending(c, p, argc, argv, lens) != 0) {
        free(p);
        return -1;
    }
    return 0;
}

int queue_conn_vcmdf(struct queue_conn *c, queue_cmd_cb *cb, void *arg, const char *fmt, va_list ap)
{
    if (c->state != ST_READY || c->ac == NULL)
        return -1;
    struct pending *p = xcalloc(1, sizeof(*p));
    *p = (struct pending){.c = c, .cb = cb, .arg = arg};
    if (redisvAsyncCommand(c->ac, on_reply, p, fmt, ap) != REDIS_OK) {
        free(p);
        return -1;
    }
    if (c->n_pending++ == 0)
        c->progress_ms = mono_ms();
    return 0;
}

int queue_conn_cmdf(struct queue_conn *c, queue_cmd_cb *cb, void *arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = queue_conn_vcmdf(c, cb, arg, fmt, ap);
    va_end(ap);
    return rc;
}

int queue_conn_eval(struct queue_conn *c, const struct qk_script *s, int nkeys, int argc,
                    const char **argv, const size_t *lens, queue_cmd_cb *cb, void *arg)
{
    if (c->state != ST_READY || c->ac == NULL)
        return -1;
    char nk[16];
    int nk_len = snprintf(nk, sizeof(nk), "%d", nkeys);
    size_t total = (size_t)nk_len + 40;
    for (int i = 0; i < argc; i++)
        total += lens[i];
    int n = argc + 3;
    /* one block: argv[n], lens[n], then the bytes */
    size_t head = (size_t)n * (sizeof(char *) + sizeof(size_t));
    char *block = xmalloc(head + total);
    const char **av = (const char **)(void *)block;
    size_t *al = (size_t *)(void *)(block + (size_t)n * sizeof(char *));
    char *bytes = block + head;
    av[0] = "EVALSHA";
    al[0] = 7;
    memcpy(bytes, s->sha, 40);
    av[1] = bytes;
    al[1] = 40;
    bytes += 40;
    memcpy(bytes, nk, (size_t)nk_len);
    av[2] = bytes;
    al[2] = (size_t)nk_len;
    bytes += nk_len;
    for (int i = 0; i < argc; i++) {
        if (lens[i] > 0)
            memcpy(bytes, argv[i], lens[i]);
        av[3 + i] = bytes;
        al[3 + i] = lens[i];
        bytes += lens[i];
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    *p = (struct pending){
        .c = c, .cb = cb, .arg = arg, .script = s, .argc = n, .argv = av, .lens = al};
    if (send_pending(c, p, n, av, al) != 0) {
        pending_free(p);
        return -1;
    }
    return 0;
}

void queue_conn_flush(struct queue_conn *c)
{
    /* A write error frees the context: the pending callbacks run (NULL) before this returns. */
    if (c->state == ST_READY && c->ac != NULL)
        redisAsyncHandleWrite(c->ac);
}

/* ---- replies ---- */

redisReply *queue_reply_dup(const redisReply *r)
{
    if (r == NULL)
        return NULL;
    redisReply *d = xcalloc(1, sizeof(*d));
    d->type = r->type;
    d->integer = r->integer;
    if (r->str != NULL) {
        d->str = xmalloc(r->len + 1);
        memcpy(d->str, r->str, r->len);
        d->str[r->len] = '\0';
        d->len = r->len;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        d->element = xcalloc(r->elements, sizeof(*d->element));
        d->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            d->element[i] = queue_reply_dup(r->element[i]);
    }
    return d;
}

void queue_reply_free(redisReply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        queue_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

const char *queue_reply_str(const redisReply *r)
{
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return NULL;
    return r->str;
}

const redisReply *queue_reply_field(const redisReply *flat, const char *name)
{
    for (size_t i = 0; flat != NULL && flat->type == REDIS_REPLY_ARRAY && i + 1 < flat->elements;
         i += 2) {
        const char *n = queue_reply_str(flat->element[i]);
        if (n != NULL && strcmp(n, name) == 0)
            return queue_reply_str(flat->element[i + 1]) != NULL ? flat->element[i + 1] : NULL;
    }
    return NULL;
}

bool queue_reply_is_error(const redisReply *r)
{
    return r == NULL || r->type == REDIS_REPLY_ERROR;
}

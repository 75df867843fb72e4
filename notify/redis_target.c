/* notify: the Redis transport of a sender: one hiredis async connection on the loop
 * (reconnected with capped exponential backoff, 100 ms to 5 s), commands pipelined up to the
 * sender's concurrency. A message is XADD <key> * event <body> (format stream) or
 * RPUSH <key> <body> (format list). Replies: anything but an error -> sent; a transient error
 * reply (LOADING, BUSY, ...) -> retry; another error reply -> failed (the message cannot
 * succeed as is); no connection, or no reply (the connection went, or answered nothing within
 * timeout_ms) -> unreachable. Not the job queue's connection (queue/redis.c). */
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "gateway/log.h"
#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"
#include "notify/sender.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum conn_state {
    CONN_DOWN,       /* waiting for the reconnect timer */
    CONN_CONNECTING, /* connect, AUTH and SELECT under way */
    CONN_UP,
};

struct redis {
    char *host;
    int port;
    char *user; /* NULL: AUTH <password> */
    char *password;
    long db;
    redisAsyncContext *ac;
    enum conn_state state;
    int64_t since_ms;   /* when state last changed */
    unsigned setup_due; /* AUTH/SELECT replies still awaited */
    unsigned backoff_ms;
    struct event *retry;
    struct event *watchdog;
    struct notify_send_list inflight; /* in command order: Redis answers in that order */
    struct log_ctx log;
    bool warned; /* the current outage was logged */
};

/* ---- the connection -------------------------------------------------------------------- */

static void connect_now(struct notify_sender *s);

static void set_state(struct redis *r, enum conn_state st)
{
    r->state = st;
    r->since_ms = notify_now_ms();
}

/* The connection is gone (or never came): retry later; what waits is ended (unreachable). */
static void went_down(struct notify_sender *s, const char *why)
{
    struct redis *r = s->impl;
    struct timeval tv = {r->backoff_ms / 1000, (r->backoff_ms % 1000) * 1000};

    r->ac = NULL;
    if (s->closing)
        return;
    if (!r->warned)
        log_warn(&r->log, "redis %s:%d: %s; reconnecting", r->host, r->port, why);
    r->warned = true;
    set_state(r, CONN_DOWN);
    evtimer_add(r->retry, &tv);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    notify_sender_fail_pending(s, NOTIFY_UNREACHABLE, "redis: not connected");
}

static void became_up(struct notify_sender *s)
{
    struct redis *r = s->impl;

    set_state(r, CONN_UP);
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->warned)
        log_info(&r->log, "redis %s:%d: connected", r->host, r->port);
    r->warned = false;
    notify_sender_kick(s);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct notify_sender *s = privdata;
    struct redis *r = s->impl;
    const redisReply *rep = reply;

    if (rep == NULL)
        return; /* the disconnect callback follows */
    if (rep->type == REDIS_REPLY_ERROR) {
        if (!r->warned)
            log_warn(&r->log, "redis %s:%d: %s", r->host, r->port, rep->str);
        r->warned = true;
        redisAsyncFree(ac); /* deferred by hiredis until this callback returned */
        return;
    }
    if (--r->setup_due == 0)
        became_up(s);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct notify_sender *s = ac->data;
    struct redis *r = s->impl;

    if (status != REDIS_OK) {
        went_down(s, ac->errstr); /* hiredis frees ac */
        return;
    }
    r->setup_due = 0;
    if (r->password != NULL) {
        r->setup_due++;
        if (r->user != NULL)
            redisAsyncCommand(r->ac, on_setup_reply, s, "AUTH %s %s", r->user, r->password);
        else
            redisAsyncCommand(r->ac, on_setup_reply, s, "AUTH %s", r->password);
    }
    if (r->db != 0) {
        r->setup_due++;
        redisAsyncCommand(r->ac, on_setup_reply, s, "SELECT %ld", r->db);
    }
    if (r->setup_due == 0)
        became_up(s);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct notify_sender *s = ac->data;

    (void)status;
    went_down(s, ac->err != 0 ? ac->errstr : "connection closed");
}

static void connect_now(struct notify_sender *s)
{
    struct redis *r = s->impl;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

    set_state(r, CONN_CONNECTING);
    if (ac == NULL || ac->err != 0) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        went_down(s, why);
        return;
    }
    ac->data = s;
    r->ac = ac;
    redisLibeventAttach(ac, s->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

/* A connect or a command that takes longer than timeout_ms: drop the connection (hiredis
 * 0.14 has no command timeout), which ends what is in flight with "unreachable". */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct notify_sender *s = arg;
    struct redis *r = s->impl;
    int64_t now = notify_now_ms(), limit = s->t.timeout_ms;
    bool stuck = false;

    (void)fd;
    (void)what;
    if (r->state == CONN_CONNECTING)
        stuck = now - r->since_ms > limit;
    else if (r->state == CONN_UP && r->inflight.head != NULL)
        stuck = now - r->inflight.head->started_ms > limit;
    if (stuck && r->ac != NULL) {
        redisAsyncContext *ac = r->ac;
        bool connected = r->state == CONN_UP;
        r->ac = NULL;
        /* ends the commands (NULL replies); the disconnect callback runs only if connected */
        redisAsyncFree(ac);
        if (r->state != CONN_DOWN) /* no disconnect callback came */
            went_down(s, connected ? "no reply in time" : "connect timed out");
    }
}

/* ---- sends ----------------------------------------------------------------------------- */

static void inflight_remove(struct redis *r, struct notify_send *m)
{
    struct notify_send **p = &r->inflight.head, *prev = NULL;

    while (*p != NULL && *p != m) {
        prev = *p;
        p = &(*p)->next;
    }
    if (*p == NULL)
        return;
    *p = m->next;
    if (r->inflight.tail == m)
        r->inflight.tail = prev;
    r->inflight.n--;
    m->next = NULL;
}

/* Error replies of a server that is loading, busy, failing over or full: the same command may
 * succeed later. */
static bool is_transient_error(const char *err)
{
    static const char *const codes[] = {"LOADING",     "BUSY",     "TRYAGAIN", "MASTERDOWN",
                                        "CLUSTERDOWN", "READONLY", "OOM"};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(err, codes[i], n) == 0 && (err[n] == ' ' || err[n] == '\0'))
            return true;
    }
    return false;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct notify_send *m = privdata;
    struct notify_sender *s = m->s;
    const redisReply *rep = reply;

    (void)ac;
    inflight_remove(s->impl, m);
    if (rep == NULL && s->closing)
        notify_sender_finish(s, m, NOTIFY_RETRY, "shutting down");
    else if (rep == NULL)
        notify_sender_finish(s, m, NOTIFY_UNREACHABLE, "redis: no reply (disconnected)");
    else if (rep->type == REDIS_REPLY_ERROR)
        notify_sender_finish(s, m, is_transient_error(rep->str) ? NOTIFY_RETRY : NOTIFY_FAIL,
                             rep->str);
    else
        notify_sender_finish(s, m, NOTIFY_SENT, "");
}

static void start(struct notify_sender *s, struct notify_send *m)
{
    struct redis *r = s->impl;
    int rc;

    m->started_ms = notify_now_ms();
    m->next = NULL;
    if (r->inflight.tail != NULL)
        r->inflight.tail->next = m;
    else
        r->inflight.head = m;
    r->inflight.tail = m;
    r->inflight.n++;
    if (strcmp(s->t.format, "list") == 0)
        rc = redisAsyncCommand(r->ac, on_reply, m, "RPUSH %s %b", s->t.key, m->body, m->len);
    else
        rc = redisAsyncCommand(r->ac, on_reply, m, "XADD %s * event %b", s->t.key, m->body, m->len);
    if (rc != REDIS_OK) {
        inflight_remove(r, m);
        notify_sender_finish(s, m, NOTIFY_UNREACHABLE, "redis: not connected");
    }
}

static int ready(struct notify_sender *s, const char **why)
{
    struct redis *r = s->impl;

    if (r->state == CONN_UP && r->ac != NULL)
        return 1;
    if (r->state == CONN_CONNECTING)
        return 0;
    *why = "redis: not connected";
    return -1;
}

/* ---- open and close -------------------------------------------------------------------- */

static char *url_part(CURLU *u, CURLUPart part)
{
    char *v = NULL, *copy;

    if (curl_url_get(u, part, &v, CURLU_URLDECODE) != CURLUE_OK)
        return NULL;
    copy = xstrdup(v);
    curl_free(v);
    return copy;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(struct redis *r, const char *url, char *msg, size_t msg_cap)
{
    CURLU *u = curl_url();
    char *port = NULL, *path = NULL, *end;
    int rc = -1;

    if (strncmp(url, "redis://", 8) != 0 ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        (r->host = url_part(u, CURLUPART_HOST)) == NULL || r->host[0] == '\0') {
        snprintf(msg, msg_cap, "not a redis:// URL with a host: %s", url);
        goto out;
    }
    if (r->host[0] == '[') { /* [::1] */
        size_t n = strlen(r->host);
        memmove(r->host, r->host + 1, n - 2);
        r->host[n - 2] = '\0';
    }
    r->user = url_part(u, CURLUPART_USER);
    r->password = url_part(u, CURLUPART_PASSWORD);
    if (r->user != NULL && r->user[0] == '\0') {
        free(r->user);
        r->user = NULL;
    }
    port = url_part(u, CURLUPART_PORT);
    r->port = 6379;
    if (port != NULL) {
        long p = strtol(port, &end, 10);
        if (*end != '\0' || p < 1 || p > 65535) {
            snprintf(msg, msg_cap, "bad port in %s", url);
            goto out;
        }
        r->port = (int)p;
    }
    path = url_part(u, CURLUPART_PATH);
    if (path != NULL && path[0] == '/' && path[1] != '\0') {
        r->db = strtol(path + 1, &end, 10);
        if (*end != '\0' || r->db < 0 || r->db > INT_MAX) {
            snprintf(msg, msg_cap, "bad database number in %s", url);
            goto out;
        }
    }
    rc = 0;
out:
    free(port);
    free(path);
    curl_url_cleanup(u);
    return rc;
}

static void redis_free(struct redis *r)
{
    if (r->retry != NULL)
        event_free(r->retry);
    if (r->watchdog != NULL)
        event_free(r->watchdog);
    free(r->host);
    free(r->user);
    free(r->password);
    free(r);
}

static int open_redis(struct notify_sender *s, char *msg, size_t msg_cap)
{
    struct redis *r = xcalloc(1, sizeof(*r));
    unsigned tick_ms = s->t.timeout_ms / 4;
    struct timeval tv;

    if (parse_url(r, s->t.endpoint, msg, msg_cap) != 0) {
        redis_free(r);
        return -1;
    }
    r->log = (struct log_ctx){.module = "notify"};
    snprintf(r->log.peer, sizeof(r->log.peer), "target %s", s->t.id);
    r->backoff_ms = BACKOFF_MIN_MS;
    r->retry = evtimer_new(s->base, on_retry, s);
    r->watchdog = event_new(s->base, -1, EV_PERSIST, on_watchdog, s);
    ASSERT(r->retry != NULL && r->watchdog != NULL);
    tick_ms = tick_ms < 10 ? 10 : tick_ms > 1000 ? 1000 : tick_ms;
    tv = (struct timeval){tick_ms / 1000, (tick_ms % 1000) * 1000};
    event_add(r->watchdog, &tv);
    s->impl = r;
    connect_now(s);
    return 0;
}

static void close_redis(struct notify_sender *s)
{
    struct redis *r = s->impl;

    if (r->ac != NULL) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac); /* ends the commands in flight (NULL replies: "shutting down") */
    }
    /* commands hiredis never called back (none expected): end them too */
    while (r->inflight.head != NULL) {
        struct notify_send *m = r->inflight.head;
        inflight_remove(r, m);
        notify_sender_finish(s, m, NOTIFY_RETRY, "shutting down");
    }
    redis_free(r);
    s->impl = NULL;
}

const struct notify_sender_ops notify_redis_ops = {
    .open = open_redis,
    .ready = ready,
    .start = start,
    .close = close_redis,
};

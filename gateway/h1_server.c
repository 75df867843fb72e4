/* HTTP/1.1 server: listeners, connections, request parsing on http_parser, body flow control,
 * timeouts and drain. Response framing and the request accessors live in h1_response.c; the
 * contract is gateway/h1.h.
 *
 * Re-entrancy rules this file keeps:
 * - Handler callbacks are made only from loop callbacks (read, event, timer, the per-connection
 *   deferred event), never from inside http_parser_execute() and never from an h1_* call the
 *   handler makes. Parser callbacks only record what happened and pause the parser at the
 *   points where the handler must act (end of head, end of message).
 * - A handler may end the request from inside any callback: after each callback the loop
 *   re-reads c->req instead of trusting a saved pointer.
 * - A connection is only marked dead from anywhere; it is freed from its deferred event. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <http_parser.h>

#include "gateway/h1.h"
#include "gateway/h1_internal.h"
#include "gateway/log.h"
#include "gateway/xmalloc.h"

#define FEED_MAX_BYTES                                                                             \
    ((size_t)64 * 1024) /* per http_parser_execute() call: bounds body overshoot */
#define DISCARD_MAX_BYTES ((size_t)64 * 1024) /* request bytes read and dropped while closing */
#define MIN_PARSER_LIMIT  ((size_t)1024 * 1024)
/* Buffers a finished request may hand to the connection's next one; bigger ones are freed. */
#define RECYCLE_MAX_BYTES ((size_t)16 * 1024)

static void conn_process(struct h1_conn *c);

/* ---- request ids ---------------------------------------------------------------------- */

static uint64_t rid_counter;
static pthread_once_t rid_once = PTHREAD_ONCE_INIT;

static void rid_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    __atomic_store_n(&rid_counter, s, __ATOMIC_RELAXED);
}

/* splitmix64's finaliser: a bijection, so distinct counters give distinct ids. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* 16 uppercase hex digits (what "%016" PRIX64 gives), written by hand: this runs for every
 * request. */
static void request_id_make(char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";

    ASSERT(cap >= 17);
    pthread_once(&rid_once, rid_seed);
    uint64_t v = mix64(__atomic_fetch_add(&rid_counter, 1, __ATOMIC_RELAXED));
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[v & 0xf];
        v >>= 4;
    }
    out[16] = '\0';
}

/* ---- requests ------------------------------------------------------------------------- */

static void bytes_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t want = *cap < 256 ? 256 : *cap;
        while (want < *len + n)
            want *= 2;
        *buf = xrealloc(*buf, want);
        *cap = want;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

/* Adds one piece of a header name or value. -1 when the block passes max_bytes or max_n. */
static int fields_add(struct h1_fields *f, const char *at, size_t len, bool is_value,
                      size_t max_bytes, size_t max_n)
{
    if (is_value && f->n == 0)
        return -1;
    if (!is_value && (f->in_value || f->n == 0)) {
        if (f->n >= max_n)
            return -1;
        if (f->n == f->off_cap) {
            f->off_cap = f->off_cap == 0 ? 16 : f->off_cap * 2;
            f->off = xrealloc(f->off, f->off_cap * sizeof(*f->off));
        }
        f->off[f->n++] = (struct h1_field_off){.name_off = f->raw_len};
        f->n_bytes += 4;
    }
    struct h1_field_off *o = &f->off[f->n - 1];
    if (is_value && !f->in_value)
        o->value_off = f->raw_len;
    f->in_value = is_value;
    f->n_bytes += len;
    if (f->n_bytes > max_bytes)
        return -1;
    size_t at_off = f->raw_len;
    bytes_append(&f->raw, &f->raw_len, &f->raw_cap, at, len);
    if (is_value) {
        o->value_len += len;
        return 0;
    }
    for (size_t i = at_off; i < f->raw_len; i++)
        if (f->raw[i] >= 'A' && f->raw[i] <= 'Z')
            f->raw[i] += 'a' - 'A';
    o->name_len += len;
    return 0;
}

/* Turns offsets into spans; raw is final from here on. */
static void fields_finish(struct h1_fields *f)
{
    if (f->finished)
        return;
    f->finished = true;
    if (f->n > f->hdrs_cap) {
        free(f->hdrs);
        f->hdrs = xmalloc(f->n * sizeof(*f->hdrs));
        f->hdrs_cap = f->n;
    }
    for (size_t i = 0; i < f->n; i++) {
        const struct h1_field_off *o = &f->off[i];
        f->hdrs[i].name = span_make(f->raw + o->name_off, o->name_len);
        /* http_parser drops leading whitespace of a value but may pass trailing whitespace */
        f->hdrs[i].value = span_trim(span_make(f->raw + o->value_off, o->value_len));
    }
}

static void fields_cleanup(struct h1_fields *f)
{
    free(f->raw);
    free(f->off);
    free(f->hdrs);
}

/* Empties a block for the next request, keeping its arrays unless they grew big. */
static void fields_recycle(struct h1_fields *f)
{
    struct h1_fields keep = {.raw = f->raw,
                             .raw_cap = f->raw_cap,
                             .off = f->off,
                             .off_cap = f->off_cap,
                             .hdrs = f->hdrs,
                             .hdrs_cap = f->hdrs_cap};

    if (keep.raw_cap > RECYCLE_MAX_BYTES || keep.off_cap * sizeof(*keep.off) > RECYCLE_MAX_BYTES ||
        keep.hdrs_cap * sizeof(*keep.hdrs) > RECYCLE_MAX_BYTES) {
        fields_cleanup(f);
        keep = (struct h1_fields){0};
    }
    *f = keep;
}

/* The handler took bytes from `body` outside on_body: reading can go on if it had stalled. */
static void on_body_buffer(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct h1_req *req = arg;
    struct h1_conn *c = req->conn;

    if (info->n_deleted == 0 || !req->body_stalled || c->req != req || c->dead || c->flushing)
        return;
    if (evbuffer_get_length(buf) >= c->srv->limits.read_high_water)
        return;
    req->body_stalled = false;
    if (!req->body_paused) {
        if (!c->eof)
            bufferevent_enable(c->bev, EV_READ);
        h1_conn_schedule(c);
    }
}

static struct h1_req *req_new(struct h1_conn *c)
{
    struct h1_req *req = c->spare;

    if (req != NULL) {
        c->spare = NULL; /* already reset by req_recycle */
    } else {
        req = xcalloc(1, sizeof(*req));
        req->body = evbuffer_new();
        ASSERT(req->body != NULL);
        req->body_cb = evbuffer_add_cb(req->body, on_body_buffer, req);
        ASSERT(req->body_cb != NULL);
    }
    req->conn = c;
    req->log = c->log;
    request_id_make(req->log.request_id, sizeof(req->log.request_id));
    clock_gettime(CLOCK_MONOTONIC, &req->t_start);
    req->content_length = -1;
    req->resp_length = -1;
    req->resp_head_len = H1_STATUS_ROOM;
    return req;
}

static void req_destroy(struct h1_req *req)
{
    if (req == NULL)
        return;
    evbuffer_remove_cb_entry(req->body, req->body_cb);
    evbuffer_free(req->body);
    free(req->resp_head);
    fields_cleanup(&req->headers);
    fields_cleanup(&req->trailers);
    free(req->target);
    free(req);
}

/* Resets a finished request for the connection's next one, keeping its allocations (the
 * struct, the body buffer with its callback, the target, header and response-head arrays):
 * a keep-alive request then costs this layer no malloc at all. */
static void req_recycle(struct h1_req *req)
{
    struct h1_req keep = {
        .body = req->body,
        .body_cb = req->body_cb,
        .target = req->target,
        .target_cap = req->target_cap,
        .headers = req->headers,
        .trailers = req->trailers,
        .resp_head = req->resp_head,
        .resp_head_cap = req->resp_head_cap,
    };

    /* c->req no longer points here, so on_body_buffer ignores this drain */
    evbuffer_drain(keep.body, evbuffer_get_length(keep.body));
    if (keep.target_cap > RECYCLE_MAX_BYTES) {
        free(keep.target);
        keep.target = NULL;
        keep.target_cap = 0;
    }
    if (keep.resp_head_cap > RECYCLE_MAX_BYTES) {
        free(keep.resp_head);
        keep.resp_head = NULL;
        keep.resp_head_cap = 0;
    }
    fields_recycle(&keep.headers);
    fields_recycle(&keep.trailers);
    *req = keep;
}

/* The request is over: its buffers go to the connection's next request, unless the
 * connection is going away or already holds a spare. */
static void req_free(struct h1_req *req)
{
    if (req == NULL)
        return;
    struct h1_conn *c = req->conn;
    if (c->dead || c->flushing || c->spare != NULL) {
        req_destroy(req);
        return;
    }
    req_recycle(req);
    c->spare = req;
}

static void req_log_access(struct h1_req *req)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    req->access.status = req->status;
    req->access.bytes_in = req->bytes_in;
    req->access.bytes_out = req->body_out;
    req->access.ms = (double)(now.tv_sec - req->t_start.tv_sec) * 1e3 +
                     (double)(now.tv_nsec - req->t_start.tv_nsec) / 1e6;
    log_access_write(&req->log, &req->access);
}

/* Ends the connection's current request without a response end: on_abort if the handler
 * has it, the access line, then the free. c->req is cleared first so nothing the handler
 * does inside on_abort can reach the request through the connection. */
static void req_abort(struct h1_conn *c)
{
    struct h1_req *req = c->req;
    if (req == NULL)
        return;
    c->req = NULL;
    if (req->state >= H1_REQ_WAIT) {
        const struct h1_handler *h = &c->srv->handler;
        req->drain_cb = NULL;
        if (h->on_abort != NULL)
            h->on_abort(req, h->arg);
        req_log_access(req);
    }
    req_free(req);
}

/* ---- timers --------------------------------------------------------------------------- */

/* The phase timer is lazy. A keep-alive request moves through three phases (idle, header,
 * none) and every body read restarts the body timeout; re-arming the event each time would
 * put three timer-heap updates under the base lock into every request. Instead a phase
 * change only records its deadline, and the event is re-armed only when that deadline is
 * earlier than the one it is armed for. When it fires early, on_timer re-arms it for what
 * is left of the current phase. */

static uint64_t now_ms(void)
{
    struct timespec ts;
    /* the coarse clock (a few ms of resolution) is plenty for timeouts of seconds */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void timer_arm(struct h1_conn *c, uint64_t now, uint64_t due)
{
    uint64_t ms = due > now ? due - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    evtimer_add(c->timer, &tv);
    c->armed_ms = due;
}

/* Starts phase `kind`; starting the same kind again restarts its timeout. */
static void timer_set(struct h1_conn *c, enum h1_timer kind)
{
    const struct h1_limits *l = &c->srv->limits;
    unsigned ms = 0;

    switch (kind) {
    case H1_TIMER_HEADER:
        ms = l->header_timeout_ms;
        break;
    case H1_TIMER_IDLE:
        ms = l->idle_timeout_ms;
        break;
    case H1_TIMER_BODY:
        ms = l->body_timeout_ms;
        break;
    case H1_TIMER_NONE:
        break;
    }
    c->timer_kind = ms > 0 ? kind : H1_TIMER_NONE;
    if (ms == 0)
        return; /* an armed event finds nothing to do when it fires */
    uint64_t now = now_ms();
    c->deadline_ms = now + ms;
    if (c->armed_ms == 0 || c->armed_ms > c->deadline_ms)
        timer_arm(c, now, c->deadline_ms);
}

/* ---- connection teardown ---------------------------------------------------------------- */

void h1_conn_schedule(struct h1_conn *c)
{
    event_active(c->defer, EV_TIMEOUT, 0);
}

void h1_conn_close(struct h1_conn *c)
{
    if (!c->dead) {
        c->dead = true;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        evtimer_del(c->timer);
        c->armed_ms = 0;
    }
    h1_conn_schedule(c);
}

/* ---- output ----------------------------------------------------------------------------- */

/* Responses are written straight to the socket once the round of processing that queued them
 * ends: one writev carries a small response's head and body, or the answers to several
 * pipelined requests. The bufferevent's write event is enabled only while the socket is full
 * (write_waiting); keeping it enabled would cost two epoll_ctl calls per response, one to
 * start watching for writability when a response is queued and one to stop once it is out.
 * A connection without a socket (a bufferevent pair in tests) always goes through the
 * bufferevent. */

/* A direct write took the output down to the low-water mark: what on_write would do then
 * (a drain callback, or parsing held back by queued responses), from the deferred event. */
static void conn_wrote_down(struct h1_conn *c)
{
    if (c->req != NULL && c->req->drain_cb != NULL) {
        c->want_drain = true;
        h1_conn_schedule(c);
    } else if (c->req == NULL && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        h1_conn_schedule(c);
    }
}

static void conn_flush(struct h1_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    c->flush_pending = false;
    if (c->dead || c->write_waiting || evbuffer_get_length(out) == 0)
        return;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0) {
        /* a socket bufferevent keeps the front of its output frozen but while it writes
         * itself; we do what its write callback does */
        evbuffer_unfreeze(out, 1);
        int n = evbuffer_write(out, fd);
        int err = errno;
        evbuffer_freeze(out, 1);
        if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            log_debug(c->req != NULL ? &c->req->log : &c->log, "connection failed: %s",
                      strerror(err));
            h1_conn_close(c);
            return;
        }
        size_t left = evbuffer_get_length(out);
        if (left <= c->srv->limits.write_low_water)
            conn_wrote_down(c);
        if (left == 0) {
            if (c->flushing)
                h1_conn_close(c);
            return;
        }
    }
    /* the rest goes out as the socket drains; on_write hands back once it is all out */
    c->write_waiting = true;
    bufferevent_enable(c->bev, EV_WRITE);
}

void h1_conn_output_added(struct h1_conn *c)
{
    if (c->write_waiting || c->flush_pending)
        return;
    c->flush_pending = true;
    /* inside conn_process the flush comes at its end; otherwise from the deferred event */
    if (!c->in_process)
        h1_conn_schedule(c);
}

/* ---- lingering close --------------------------------------------------------------------
 * A connection answered before its request body was read (an early error) is closed with
 * unread bytes on the way. Closing a socket whose receive queue is not empty makes the kernel
 * send a reset, and a reset can destroy the response before the client has read it. So, as
 * nginx's lingering_close does, the write side is shut down and the peer's bytes are read and
 * dropped, up to a time and byte bound, before the descriptor is closed. No memory grows:
 * each read lands in one stack buffer. */

#define LINGER_MS        2000
#define LINGER_MAX_BYTES ((size_t)64 << 20)
#define LINGER_MAX_CONNS 1024

struct h1_linger {
    struct h1_linger *next;
    struct h1_server *srv;
    struct event *ev;
    evutil_socket_t fd;
    size_t left; /* bytes still to drop */
};

static void linger_end(struct h1_linger *l)
{
    struct h1_linger **p = &l->srv->lingering;
    while (*p != l)
        p = &(*p)->next;
    *p = l->next;
    l->srv->n_lingering--;
    event_free(l->ev);
    evutil_closesocket(l->fd);
    free(l);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    struct h1_linger *l = arg;
    char buf[16384];

    if (what & EV_TIMEOUT) {
        linger_end(l);
        return;
    }
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || (size_t)n >= l->left) {
        linger_end(l);
        return;
    }
    l->left -= (size_t)n;
}

/* Takes over a duplicate of the connection's socket when the peer may still be sending;
 * false when the connection should simply close. */
static bool linger_start(struct h1_conn *c)
{
    struct h1_server *srv = c->srv;
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (fd < 0 || !c->flushing || c->eof || srv->freeing || srv->draining ||
        srv->n_lingering >= LINGER_MAX_CONNS ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return false;
    evutil_socket_t dup_fd = dup(fd);
    if (dup_fd < 0)
        return false;
    shutdown(dup_fd, SHUT_WR);
    struct h1_linger *l = xcalloc(1, sizeof(*l));
    l->srv = srv;
    l->fd = dup_fd;
    l->left = LINGER_MAX_BYTES;
    l->ev = event_new(srv->base, dup_fd, EV_READ | EV_PERSIST, on_linger, l);
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    event_add(l->ev, &tv);
    l->next = srv->lingering;
    srv->lingering = l;
    srv->n_lingering++;
    return true;
}

static void conn_destroy(struct h1_conn *c)
{
    struct h1_server *srv = c->srv;

    linger_start(c);

    req_abort(c);
    if (srv->conns == c)
        srv->conns = c->next;
    else
        c->prev->next = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    req_destroy(c->spare);
    bufferevent_free(c->bev);
    event_free(c->timer);
    event_free(c->defer);
    free(c);
    srv->n_conns--;
    if (srv->draining && srv->n_conns == 0)
        event_active(srv->drain_ev, EV_TIMEOUT, 0);
}

/* The last response is queued: stop taking requests, close once the output has drained.
 * Up to DISCARD_MAX_BYTES of request bytes still arriving are read and dropped so a small
 * unread tail does not turn the close into a reset that could destroy the response. */
static void conn_flush_close(struct h1_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);

    c->flushing = true;
    timer_set(c, H1_TIMER_NONE);
    evbuffer_drain(in, n);
    c->discard_left = n < DISCARD_MAX_BYTES ? DISCARD_MAX_BYTES - n : 0;
    if (c->discard_left == 0 || c->eof)
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
    conn_flush(c);
    if (!c->dead && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        h1_conn_close(c);
}

/* Answers an error of the layer's own. A request the handler already has is aborted (its
 * on_abort runs); if its response has started the connection is simply closed. */
static void conn_answer_error(struct h1_conn *c, int status)
{
    struct h1_req *req = c->req;
    char rid[sizeof(req->log.request_id)];

    if (req != NULL && req->resp_state != H1_RESP_NONE) {
        h1_conn_close(c);
        return;
    }
    if (req != NULL)
        memcpy(rid, req->log.request_id, sizeof(rid));
    else
        request_id_make(rid, sizeof(rid));
    h1_write_error(c, status, rid, req != NULL && req->head);
    if (req != NULL) {
        req->status = status;
        if (req->state >= H1_REQ_WAIT) {
            req_abort(c);
        } else {
            c->req = NULL;
            req_log_access(req);
            req_free(req);
        }
    }
    conn_flush_close(c);
}

void h1_conn_request_done(struct h1_conn *c, struct h1_req *req, bool close)
{
    ASSERT(c->req == req);
    req_log_access(req);
    c->req = NULL;
    req_free(req);
    if (c->dead)
        return;
    if (close || c->srv->draining) {
        conn_flush_close(c);
        return;
    }
    /* Keep-alive: the parser was paused at the end of this message. */
    http_parser_pause(&c->parser, 0);
    if (!c->eof && (bufferevent_get_enabled(c->bev) & EV_READ) == 0)
        bufferevent_enable(c->bev, EV_READ);
    timer_set(c, H1_TIMER_IDLE); /* the next request's first byte switches to the header timer */
    /* pipelined requests: conn_process's loop goes on by itself; from anywhere else, resume
     * from the loop */
    if (c->in_process)
        c->want_process = true;
    else
        h1_conn_schedule(c);
}

/* ---- parser callbacks: record, never call the handler ------------------------------------ */

static int on_message_begin(http_parser *p)
{
    struct h1_conn *c = p->data;
    if (c->req != NULL)
        return -1;
    c->req = req_new(c);
    /* from the first byte of the request (or the accept), never reset by later bytes */
    if (c->timer_kind != H1_TIMER_HEADER)
        timer_set(c, H1_TIMER_HEADER);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct h1_conn *c = p->data;
    struct h1_req *req = c->req;
    if (req->target_len + len > c->srv->limits.max_url_bytes) {
        c->err_status = 414;
        return -1;
    }
    bytes_append(&req->target, &req->target_len, &req->target_cap, at, len);
    return 0;
}

static int add_field(http_parser *p, const char *at, size_t len, bool is_value)
{
    struct h1_conn *c = p->data;
    struct h1_req *req = c->req;
    const struct h1_limits *l = &c->srv->limits;

    /* http_parser (not built strict) lets spaces into names: "Host : x" would become a header
     * named "host ". RFC 9112 5.1: no whitespace before the colon, answer 400. */
    if (!is_value && memchr(at, ' ', len) != NULL) {
        c->err_status = 400;
        return -1;
    }
    if (req->state != H1_REQ_HEAD) {
        /* trailers: after on_headers_complete, before on_message_complete */
        if (fields_add(&req->trailers, at, len, is_value, l->max_trailer_bytes, l->max_headers) !=
            0) {
            c->err_status = 400;
            return -1;
        }
        return 0;
    }
    /* the request line counts too: target plus method and version, roughly */
    size_t line = req->target_len + 24;
    size_t max = l->max_header_bytes > line ? l->max_header_bytes - line : 0;
    if (fields_add(&req->headers, at, len, is_value, max, l->max_headers) != 0) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    return add_field(p, at, len, false);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    return add_field(p, at, len, true);
}

static int on_headers_complete(http_parser *p)
{
    struct h1_conn *c = p->data;
    struct h1_req *req = c->req;

    fields_finish(&req->headers);
    req->method = p->method;
    if (p->http_major != 1) {
        c->err_status = 400;
        return -1;
    }
    if (p->method == HTTP_CONNECT) {
        c->err_status = 501;
        return -1;
    }
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0 */
    size_t n_host = 0;
    for (size_t i = 0; i < req->headers.n; i++)
        if (span_eq_str(req->headers.hdrs[i].name, "host"))
            n_host++;
    if (n_host > 1 || (n_host == 0 && p->http_minor >= 1)) {
        c->err_status = 400;
        return -1;
    }
    req->http_minor = p->http_minor > 0 ? 1 : 0;
    req->chunked = (p->flags & F_CHUNKED) != 0;
    if (!req->chunked && (p->flags & F_CONTENTLENGTH) != 0) {
        if (p->content_length > INT64_MAX) {
            c->err_status = 413;
            return -1;
        }
        req->content_length = (int64_t)p->content_length;
    }
    req->head = p->method == HTTP_HEAD;
    req->keep_alive = http_should_keep_alive(p) != 0;
    struct span expect = h1_req_header(req, "expect");
    req->expect_continue =
        req->http_minor >= 1 && expect.ptr != NULL && span_eq_ci(span_trim(expect), "100-continue");
    req->state = H1_REQ_READY;
    timer_set(c, H1_TIMER_NONE);
    /* A body waits for h1_req_read_body(); a bodiless request runs on to its end. */
    if (h1_req_has_body(req))
        http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct h1_conn *c = p->data;
    struct h1_req *req = c->req;
    evbuffer_add(req->body, at, len);
    req->bytes_in += len;
    req->body_new = true;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1_conn *c = p->data;
    struct h1_req *req = c->req;
    if (req == NULL)
        return -1;
    fields_finish(&req->trailers);
    req->message_complete = true;
    if (c->timer_kind == H1_TIMER_BODY)
        timer_set(c, H1_TIMER_NONE);
    /* pipelining: the next request waits until this one's response has ended */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- input processing ------------------------------------------------------------------- */

static bool conn_may_parse(const struct h1_conn *c)
{
    const struct h1_req *req = c->req;
    if (req == NULL) {
        /* A pipelining client that does not read its responses must not make us queue them
         * without bound: the next request waits until the output falls to the low-water
         * mark (on_write resumes parsing). */
        return !c->srv->draining && evbuffer_get_length(bufferevent_get_output(c->bev)) <=
                                        c->srv->limits.write_low_water;
    }
    if (req->state == H1_REQ_HEAD)
        return true;
    return req->state == H1_REQ_BODY && !req->message_complete && !req->body_paused &&
           !req->body_stalled;
}

/* "FOO /x HTTP/1.1" (a token, then a space) is a method we do not know: 501, not 400. */
static bool looks_like_method(const char *p, size_t len)
{
    for (size_t i = 0; i < len && i < 32; i++) {
        if (p[i] == ' ')
            return true;
        if (!((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-' || p[i] == '_'))
            return false;
    }
    return false;
}

static int parse_error_status(struct h1_conn *c, enum http_errno e, const char *at, size_t len)
{
    if (c->err_status != 0)
        return c->err_status;
    if (e == HPE_HEADER_OVERFLOW)
        return c->req != NULL && c->req->state != H1_REQ_HEAD ? 400 : 431;
    if (e == HPE_INVALID_METHOD && looks_like_method(at, len))
        return 501;
    return 400;
}

/* Feeds one piece of input to the parser. -1 when the connection is done with. */
static int parse_some(struct h1_conn *c, struct evbuffer *in)
{
    struct evbuffer_iovec v;
    size_t avail = evbuffer_get_length(in);
    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
        v.iov_len = avail < FEED_MAX_BYTES ? avail : FEED_MAX_BYTES;
        v.iov_base = evbuffer_pullup(in, (ev_ssize_t)v.iov_len);
    }
    const char *at = v.iov_base;
    size_t len = v.iov_len < FEED_MAX_BYTES ? v.iov_len : FEED_MAX_BYTES;
    bool in_head = c->req == NULL || c->req->state == H1_REQ_HEAD;

    c->err_status = 0;
    size_t n = http_parser_execute(&c->parser, &parser_settings, at, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if ((e != HPE_OK && e != HPE_PAUSED) || (n == 0 && e == HPE_OK)) {
        int status = parse_error_status(c, e, at + n, len - n);
        log_warn(c->req != NULL ? &c->req->log : &c->log, "bad request (%s), answering %d",
                 http_errno_name(e), status);
        conn_answer_error(c, status);
        return -1;
    }
    evbuffer_drain(in, n);
    if (in_head && c->req != NULL) {
        /* counts what the callbacks cannot see too, such as runs of whitespace */
        c->req->head_bytes += n;
        if (c->req->head_bytes > c->srv->limits.max_header_bytes) {
            log_warn(&c->req->log, "request head over %zu bytes, answering 431",
                     c->srv->limits.max_header_bytes);
            conn_answer_error(c, 431);
            return -1;
        }
    }
    return 0;
}

/* Makes at most one handler callback; true if it made one (the request may be gone since). */
static bool req_dispatch(struct h1_conn *c, struct h1_req *req)
{
    const struct h1_handler *h = &c->srv->handler;

    if (req->state == H1_REQ_READY) {
        req->state = H1_REQ_WAIT;
        h->on_request(req, h->arg);
        return true;
    }
    if (req->state != H1_REQ_BODY || req->body_paused)
        return false;
    if (req->body_new) {
        req->body_new = false;
        if (evbuffer_get_length(req->body) > 0 && h->on_body != NULL) {
            h->on_body(req, req->body, h->arg);
            return true;
        }
    }
    if (req->message_complete && !req->body_end_sent) {
        req->body_end_sent = true;
        if (h->on_body_end != NULL)
            h->on_body_end(req, h->arg);
        return true;
    }
    return false;
}

/* A handler that leaves read_high_water bytes in `body` without pausing stops the reading
 * until it takes some (on_body_buffer) so memory stays bounded. */
static void req_check_stall(struct h1_conn *c, struct h1_req *req)
{
    if (req->state != H1_REQ_BODY || req->message_complete || req->body_paused || req->body_stalled)
        return;
    if (evbuffer_get_length(req->body) < c->srv->limits.read_high_water)
        return;
    req->body_stalled = true;
    bufferevent_disable(c->bev, EV_READ);
    if (c->timer_kind == H1_TIMER_BODY)
        timer_set(c, H1_TIMER_NONE);
}

/* The peer has finished sending: close what can no longer complete. Responses already queued
 * still go out, and pipelined requests still buffered are still served. */
static void conn_check_eof(struct h1_conn *c)
{
    struct h1_req *req = c->req;
    size_t in = evbuffer_get_length(bufferevent_get_input(c->bev));
    if (req == NULL) {
        if (in == 0)
            conn_flush_close(c);
        return;
    }
    if (req->state == H1_REQ_HEAD) {
        conn_flush_close(c); /* a head cut short: nobody to answer */
        return;
    }
    if (conn_may_parse(c) && in == 0) {
        log_debug(&req->log, "peer closed in the middle of the body");
        h1_conn_close(c);
    }
}

static void process_loop(struct h1_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (!c->dead && !c->flushing) {
        struct h1_req *req = c->req;
        if (req != NULL && req_dispatch(c, req))
            continue;
        if (req != NULL)
            req_check_stall(c, req);
        if (req == NULL && c->flush_pending && !conn_may_parse(c)) {
            /* answers to pipelined requests piled up: write them before parsing more */
            conn_flush(c);
            continue;
        }
        if (!conn_may_parse(c) || evbuffer_get_length(in) == 0)
            return;
        if (parse_some(c, in) != 0)
            return;
    }
}

static void conn_process(struct h1_conn *c)
{
    if (c->in_process) {
        c->want_process = true;
        return;
    }
    c->in_process = true;
    do {
        c->want_process = false;
        process_loop(c);
    } while (c->want_process && !c->dead && !c->flushing);
    c->in_process = false;
    if (c->flush_pending)
        conn_flush(c);
    if (!c->dead && !c->flushing && c->eof)
        conn_check_eof(c);
}

/* ---- bufferevent and timer callbacks --------------------------------------------------- */

static void fire_drain(struct h1_conn *c)
{
    struct h1_req *req = c->req;
    if (req == NULL || req->drain_cb == NULL)
        return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > c->srv->limits.write_low_water)
        return;
    void (*cb)(struct h1_req *, void *) = req->drain_cb;
    req->drain_cb = NULL;
    cb(req, req->drain_arg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct h1_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (c->dead || c->flushing) {
        size_t n = evbuffer_get_length(in);
        evbuffer_drain(in, n);
        c->discard_left = n < c->discard_left ? c->discard_left - n : 0;
        if (c->discard_left == 0)
            bufferevent_disable(bev, EV_READ);
        return;
    }
    if (c->timer_kind == H1_TIMER_BODY)
        timer_set(c, H1_TIMER_BODY); /* the body timeout bounds the gap between bytes */
    conn_process(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct h1_conn *c = arg;
    if (c->dead)
        return;
    if (c->write_waiting && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        /* all out: back to writing directly (conn_flush) */
        c->write_waiting = false;
        bufferevent_disable(bev, EV_WRITE);
    }
    if (c->flushing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            h1_conn_close(c);
        return;
    }
    if (c->req != NULL)
        fire_drain(c);
    else
        conn_process(c); /* pipelined requests held back by a full output */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct h1_conn *c = arg;
    (void)bev;
    if (c->dead)
        return;
    if ((what & BEV_EVENT_EOF) != 0 && (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) == 0) {
        c->eof = true;
        if (!c->flushing)
            conn_process(c);
        return;
    }
    log_debug(c->req != NULL ? &c->req->log : &c->log, "connection %s",
              (what & BEV_EVENT_TIMEOUT) != 0 ? "write timed out" : "failed");
    h1_conn_close(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct h1_conn *c = arg;
    enum h1_timer kind = c->timer_kind;
    (void)fd;
    (void)what;

    c->armed_ms = 0;
    if (c->dead || c->flushing || kind == H1_TIMER_NONE)
        return;
    uint64_t now = now_ms();
    if (now < c->deadline_ms) {
        timer_arm(c, now, c->deadline_ms); /* armed for an earlier phase (see timer_set) */
        return;
    }
    c->timer_kind = H1_TIMER_NONE;
    switch (kind) {
    case H1_TIMER_IDLE:
        /* still writing the last response is not idle; the write timeout bounds that */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            timer_set(c, H1_TIMER_IDLE);
        else
            h1_conn_close(c);
        break;
    case H1_TIMER_HEADER:
        log_debug(c->req != NULL ? &c->req->log : &c->log, "header timeout, answering 408");
        conn_answer_error(c, 408);
        break;
    case H1_TIMER_BODY:
        log_debug(c->req != NULL ? &c->req->log : &c->log, "body timeout");
        conn_answer_error(c, 408);
        break;
    case H1_TIMER_NONE:
        break;
    }
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    struct h1_conn *c = arg;
    (void)fd;
    (void)what;

    if (!c->dead && c->want_drain) {
        c->want_drain = false;
        fire_drain(c);
    }
    if (!c->dead && !c->flushing)
        conn_process(c);
    if (c->flush_pending)
        conn_flush(c);
    if (!c->dead && c->flushing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        h1_conn_close(c);
    /* the outermost frame for this connection: nothing below us still holds it */
    if (c->dead)
        conn_destroy(c);
}

/* ---- request body flow control (public) ------------------------------------------------- */

static void body_reading_on(struct h1_conn *c, struct h1_req *req)
{
    if (req->body_paused || req->body_stalled || c->dead || c->flushing)
        return;
    if (!c->eof)
        bufferevent_enable(c->bev, EV_READ);
    if (req->state == H1_REQ_BODY && !req->message_complete)
        timer_set(c, H1_TIMER_BODY);
}

void h1_req_read_body(struct h1_req *req)
{
    struct h1_conn *c = req->conn;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    ASSERT(req->state >= H1_REQ_WAIT);
    if (req->state != H1_REQ_WAIT)
        return;
    req->state = H1_REQ_BODY;
    if (c->dead || c->flushing)
        return;
    if (req->expect_continue && req->resp_state == H1_RESP_NONE && !req->message_complete) {
        bufferevent_write(c->bev, cont, sizeof(cont) - 1);
        h1_conn_output_added(c);
    }
    if (!req->message_complete) {
        http_parser_pause(&c->parser, 0);
        body_reading_on(c, req);
    }
    h1_conn_schedule(c);
}

void h1_req_pause_body(struct h1_req *req)
{
    struct h1_conn *c = req->conn;
    if (req->body_paused)
        return;
    req->body_paused = true;
    if (c->dead || c->flushing)
        return;
    bufferevent_disable(c->bev, EV_READ);
    if (c->timer_kind == H1_TIMER_BODY)
        timer_set(c, H1_TIMER_NONE);
}

void h1_req_resume_body(struct h1_req *req)
{
    struct h1_conn *c = req->conn;
    if (!req->body_paused)
        return;
    req->body_paused = false;
    if (evbuffer_get_length(req->body) > 0)
        req->body_new = true; /* offer what the handler left again */
    if (c->dead || c->flushing)
        return;
    if (req->state != H1_REQ_BODY && !c->eof)
        bufferevent_enable(c->bev, EV_READ);
    body_reading_on(c, req);
    h1_conn_schedule(c);
}

/* ---- connections and listeners ----------------------------------------------------------- */

static struct h1_conn *conn_new(struct h1_server *srv, struct bufferevent *bev, const char *peer)
{
    struct h1_conn *c = xcalloc(1, sizeof(*c));
    const struct h1_limits *l = &srv->limits;

    c->srv = srv;
    c->bev = bev;
    c->log.module = "h1";
    c->log.conn_id = srv->next_conn_id++;
    snprintf(c->log.peer, sizeof(c->log.peer), "%s", peer != NULL ? peer : "");
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->timer = evtimer_new(srv->base, on_timer, c);
    c->defer = event_new(srv->base, -1, 0, on_defer, c);
    ASSERT(c->timer != NULL && c->defer != NULL);
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;

    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(bev, EV_READ, 0, l->read_high_water);
    bufferevent_setwatermark(bev, EV_WRITE, l->write_low_water, 0);
    if (l->write_timeout_ms > 0) {
        struct timeval wtv = {.tv_sec = l->write_timeout_ms / 1000,
                              .tv_usec = (suseconds_t)(l->write_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, NULL, &wtv);
    }
    /* A socket is written directly (conn_flush); a bufferevent pair through its events.
     * (A new bufferevent starts with EV_WRITE enabled.) */
    c->write_waiting = bufferevent_getfd(bev) < 0;
    if (c->write_waiting)
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    else {
        bufferevent_disable(bev, EV_WRITE);
        bufferevent_enable(bev, EV_READ);
    }
    timer_set(c, H1_TIMER_HEADER); /* a connection that never sends a byte times out too */
    return c;
}

void h1_server_adopt(struct h1_server *srv, struct bufferevent *bev, const char *peer)
{
    conn_new(srv, bev, peer);
}

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        snprintf(out, cap, "unix");
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct h1_server *srv = arg;
    char peer[48];
    (void)l;
    (void)salen;

    if (srv->draining || srv->n_conns >= srv->limits.max_conns) {
        time_t now = time(NULL);
        if (now != srv->refuse_log_sec) {
            srv->refuse_log_sec = now;
            log_warn(NULL, "h1: %u connections open, refusing more", srv->n_conns);
        }
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct bufferevent *bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        log_error(NULL, "h1: bufferevent_socket_new failed");
        evutil_closesocket(fd);
        return;
    }
    format_peer(sa, peer, sizeof(peer));
    conn_new(srv, bev, peer);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn(NULL, "h1: accept failed: %s", evutil_socket_error_to_string(err));
}

static void on_drain_done(evutil_socket_t fd, short what, void *arg)
{
    struct h1_server *srv = arg;
    (void)fd;
    (void)what;
    void (*done)(void *) = srv->drain_done;
    srv->drain_done = NULL;
    if (done != NULL)
        done(srv->drain_arg);
}

/* http_parser's own header limit is process-wide: keep it above every server's limits and
 * enforce the per-server ones here. */
static void parser_limit_raise(const struct h1_limits *l)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint32_t set_to;
    size_t biggest =
        l->max_header_bytes > l->max_trailer_bytes ? l->max_header_bytes : l->max_trailer_bytes;
    size_t want = biggest * 2 + FEED_MAX_BYTES;
    if (want < MIN_PARSER_LIMIT)
        want = MIN_PARSER_LIMIT;
    if (want > UINT32_MAX / 2)
        want = UINT32_MAX / 2;
    pthread_mutex_lock(&mu);
    if (want > set_to) {
        http_parser_set_max_header_size((uint32_t)want);
        set_to = (uint32_t)want;
    }
    pthread_mutex_unlock(&mu);
}

void h1_limits_default(struct h1_limits *l)
{
    *l = (struct h1_limits){
        .max_header_bytes = (size_t)64 * 1024,
        .max_headers = 128,
        .max_url_bytes = (size_t)8 * 1024,
        .max_trailer_bytes = (size_t)16 * 1024,
        .header_timeout_ms = 30000,
        .idle_timeout_ms = 60000,
        .body_timeout_ms = 60000,
        .write_timeout_ms = 60000,
        .max_conns = 4096,
        .read_high_water = (size_t)256 * 1024,
        .write_low_water = (size_t)256 * 1024,
    };
}

struct h1_server *h1_server_new(struct event_base *base, const struct h1_limits *limits,
                                const struct h1_handler *handler)
{
    struct h1_server *srv = xcalloc(1, sizeof(*srv));
    struct h1_limits d;

    ASSERT(handler->on_request != NULL);
    h1_limits_default(&d);
    srv->base = base;
    srv->limits = *limits;
    /* a zero size limit would mean "unbounded" to libevent: take the default instead */
    if (srv->limits.max_header_bytes == 0)
        srv->limits.max_header_bytes = d.max_header_bytes;
    if (srv->limits.max_headers == 0)
        srv->limits.max_headers = d.max_headers;
    if (srv->limits.max_url_bytes == 0)
        srv->limits.max_url_bytes = d.max_url_bytes;
    if (srv->limits.max_trailer_bytes == 0)
        srv->limits.max_trailer_bytes = d.max_trailer_bytes;
    if (srv->limits.max_conns == 0)
        srv->limits.max_conns = d.max_conns;
    if (srv->limits.read_high_water == 0)
        srv->limits.read_high_water = d.read_high_water;
    srv->handler = *handler;
    srv->next_conn_id = 1;
    srv->drain_ev = event_new(base, -1, 0, on_drain_done, srv);
    ASSERT(srv->drain_ev != NULL);
    parser_limit_raise(&srv->limits);
    pthread_once(&rid_once, rid_seed);
    return srv;
}

/* "host:port", "[v6]:port" or ":port" (any address); numeric hosts only, port 0 allowed
 * (evutil_parse_sockaddr_port refuses port 0). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
    struct span a = span_from(addr), host, port;
    unsigned long long pnum;
    char hbuf[INET6_ADDRSTRLEN];

    memset(ss, 0, sizeof(*ss));
    if (a.len > 0 && a.ptr[0] == '[') {
        const char *close = memchr(a.ptr, ']', a.len);
        if (close == NULL || close + 1 == a.ptr + a.len || close[1] != ':')
            return -1;
        host = span_make(a.ptr + 1, (size_t)(close - a.ptr - 1));
        port = span_make(close + 2, a.len - (size_t)(close + 2 - a.ptr));
    } else {
        const char *colon = memrchr(a.ptr, ':', a.len);
        if (colon == NULL)
            return -1;
        host = span_make(a.ptr, (size_t)(colon - a.ptr));
        port = span_make(colon + 1, a.len - (size_t)(colon + 1 - a.ptr));
    }
    if (span_to_u64(port, &pnum) != 0 || pnum > 65535 || host.len >= sizeof(hbuf))
        return -1;
    memcpy(hbuf, host.ptr, host.len);
    hbuf[host.len] = '\0';
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (host.len == 0 || strcmp(hbuf, "*") == 0) {
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)pnum);
        *sslen = (int)sizeof(*s4);
    } else if (inet_pton(AF_INET, hbuf, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)pnum);
        *sslen = (int)sizeof(*s4);
    } else if (inet_pton(AF_INET6, hbuf, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)pnum);
        *sslen = (int)sizeof(*s6);
    } else {
        return -1;
    }
    return 0;
}

int h1_server_listen(struct h1_server *srv, const char *addr)
{
    struct sockaddr_storage ss;
    int sslen = (int)sizeof(ss);
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT;

    if (srv->n_listeners == H1_MAX_LISTENERS) {
        log_error(NULL, "h1: too many listen addresses (max %d)", H1_MAX_LISTENERS);
        return -1;
    }
    if (parse_addr(addr, &ss, &sslen) != 0) {
        log_error(NULL, "h1: bad listen address '%s' (want host:port or [v6]:port)", addr);
        return -1;
    }
    struct evconnlistener *l = evconnlistener_new_bind(srv->base, on_accept, srv, flags, 1024,
                                                       (struct sockaddr *)&ss, sslen);
    if (l == NULL) {
        int err = EVUTIL_SOCKET_ERROR();
        log_error(NULL, "h1: cannot listen on %s: %s", addr, evutil_socket_error_to_string(err));
        return -1;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    struct sockaddr_storage bound = {0};
    socklen_t blen = sizeof(bound);
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    srv->listeners[srv->n_listeners++] = l;
    log_info(NULL, "h1: listening on %s (port %d)", addr, srv->port);
    return 0;
}

int h1_server_port(const struct h1_server *srv)
{
    return srv->port;
}

unsigned h1_server_n_conns(const struct h1_server *srv)
{
    return srv->n_conns;
}

static void listeners_free(struct h1_server *srv)
{
    for (unsigned i = 0; i < srv->n_listeners; i++)
        evconnlistener_free(srv->listeners[i]);
    srv->n_listeners = 0;
}

void h1_server_drain(struct h1_server *srv, void (*done)(void *arg), void *arg)
{
    srv->draining = true;
    srv->drain_done = done;
    srv->drain_arg = arg;
    listeners_free(srv);
    /* Idle connections go now; busy ones close after their current response, which carries
     * Connection: close if it has not started yet. */
    for (struct h1_conn *c = srv->conns; c != NULL; c = c->next)
        if (!c->dead && !c->flushing && c->req == NULL)
            conn_flush_close(c); /* after the last response has gone out */
    if (srv->n_conns == 0)
        event_active(srv->drain_ev, EV_TIMEOUT, 0);
}

void h1_server_free(struct h1_server *srv)
{
    if (srv == NULL)
        return;
    listeners_free(srv);
    srv->draining = false;
    srv->freeing = true;
    /* on_abort may mark connections closed but never frees one: `next` stays valid */
    struct h1_conn *c = srv->conns;
    while (c != NULL) {
        struct h1_conn *next = c->next;
        conn_destroy(c);
        c = next;
    }
    while (srv->lingering != NULL)
        linger_end(srv->lingering);
    event_free(srv->drain_ev);
    free(srv);
}

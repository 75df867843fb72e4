/* Tests for gateway/h1_server.c and h1_response.c: a real server on 127.0.0.1 with its loop on
 * a background thread, driven by blocking client sockets from the test thread. The handler's
 * behaviour is chosen by the request path. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/h1.h"
#include "gateway/log.h"
#include "tests/unit/tap.h"

/* ---- the handler (loop thread) ------------------------------------------------------------ */

enum kind {
    K_HEADERS,
    K_ASYNC_SINK,
    K_BIG,
    K_HELLO,
    K_ASYNC,
    K_SINK,
    K_TRAILERS,
    K_DENY,
    K_PAUSE,
    K_CHUNKED,
    K_ABORT,
    K_OTHER
};

struct treq {
    enum kind kind;
    struct h1_req *req;
    uint64_t bytes, hash;
    struct evbuffer *echo;
    struct event *ev;
    bool paused;
    int n_pauses;
    uint64_t next_pause;
    int violations;
};

static struct event_base *base;
static struct h1_server *srv;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int n_aborts;      /* under mu */
static int n_body_ends;   /* under mu */
static int drain_done;    /* under mu */
static unsigned n_left;   /* under mu: connections open when drain finished */
static int pause_checked; /* under mu: pause requests that saw no on_body while paused */

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_START 0xcbf29ce484222325ULL

static void treq_free(struct treq *t)
{
    if (t == NULL)
        return;
    if (t->ev != NULL)
        event_free(t->ev);
    if (t->echo != NULL)
        evbuffer_free(t->echo);
    free(t);
}

/* Frees the handler state, then answers: after h1_resp_end the request is gone. */
static void reply(struct treq *t, int status, const char *text)
{
    struct h1_req *req = t->req;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    h1_req_set_data(req, NULL);
    treq_free(t);
    h1_resp_send(req, status, "text/plain", b);
    evbuffer_free(b);
}

static void reply_hello(struct treq *t)
{
    char text[1200];
    struct span tg = h1_req_target(t->req);
    snprintf(text, sizeof(text), "hello %.*s", (int)tg.len, tg.ptr);
    reply(t, 200, text);
}

static void on_async_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reply_hello(arg);
}

static void on_read_later(evutil_socket_t fd, short what, void *arg)
{
    struct treq *t = arg;
    (void)fd;
    (void)what;
    h1_req_read_body(t->req);
}

/* Streams t->next_pause bytes ("/big/<MiB>", default 64 MiB) paced by the drain callback,
 * keeping at most ~1 MiB queued. */
static void big_pump(struct h1_req *req, void *arg)
{
    static const char block[64 * 1024];
    struct treq *t = arg;
    while (h1_resp_pending(req) < (1u << 20) && t->bytes < t->next_pause) {
        h1_resp_write(req, block, sizeof(block));
        t->bytes += sizeof(block);
    }
    if (t->bytes < t->next_pause) {
        h1_resp_on_drain(req, big_pump, t);
        return;
    }
    h1_req_set_data(req, NULL);
    treq_free(t);
    h1_resp_end(req);
}

static void on_resume_timer(evutil_socket_t fd, short what, void *arg)
{
    struct treq *t = arg;
    (void)fd;
    (void)what;
    t->paused = false;
    h1_req_resume_body(t->req);
}

static void on_chunk_drain(struct h1_req *req, void *arg)
{
    struct treq *t = arg;
    h1_resp_write(req, " world", 6);
    h1_req_set_data(req, NULL);
    treq_free(t);
    h1_resp_end(req);
}

/* "/big/<MiB>" or "/bigonce/<MiB>"; 64 MiB without a size. */
static uint64_t big_size(struct span tg)
{
    char num[16];
    const char *slash = tg.len > 1 ? memchr(tg.ptr + 1, '/', tg.len - 1) : NULL;
    if (slash == NULL)
        return (uint64_t)64 << 20;
    snprintf(num, sizeof(num), "%.*s", (int)(tg.ptr + tg.len - slash - 1), slash + 1);
    return (uint64_t)strtoul(num, NULL, 10) << 20;
}

static void on_request(struct h1_req *req, void *arg)
{
    struct span tg = h1_req_target(req);
    struct treq *t = calloc(1, sizeof(*t));
    (void)arg;

    t->req = req;
    t->hash = FNV_START;
    h1_req_set_data(req, t);
    snprintf(h1_req_access(req)->op, sizeof(h1_req_access(req)->op), "Test");
    if (span_starts_with(tg, "/headers"))
        t->kind = K_HEADERS;
    else if (span_starts_with(tg, "/hello"))
        t->kind = K_HELLO;
    else if (span_starts_with(tg, "/asyncsink"))
        t->kind = K_ASYNC_SINK;
    else if (span_starts_with(tg, "/async"))
        t->kind = K_ASYNC;
    else if (span_starts_with(tg, "/big"))
        t->kind = K_BIG;
    else if (span_starts_with(tg, "/sink"))
        t->kind = K_SINK;
    else if (span_starts_with(tg, "/trailers"))
        t->kind = K_TRAILERS;
    else if (span_starts_with(tg, "/deny"))
        t->kind = K_DENY;
    else if (span_starts_with(tg, "/pause"))
        t->kind = K_PAUSE;
    else if (span_starts_with(tg, "/chunked"))
        t->kind = K_CHUNKED;
    else if (span_starts_with(tg, "/abort"))
        t->kind = K_ABORT;
    else
        t->kind = K_OTHER;

    switch (t->kind) {
    case K_HEADERS: {
        char text[2048];
        size_t n, off = 0;
        const struct gw_header *hd = h1_req_headers(req, &n);
        for (size_t i = 0; i < n && off < sizeof(text); i++)
            off +=
                (size_t)snprintf(text + off, sizeof(text) - off, "%.*s=%.*s;", (int)hd[i].name.len,
                                 hd[i].name.ptr, (int)hd[i].value.len, hd[i].value.ptr);
        text[off < sizeof(text) ? off : sizeof(text) - 1] = '\0';
        reply(t, 200, text);
        break;
    }
    case K_HELLO:
        reply_hello(t);
        break;
    case K_ASYNC: {
        struct timeval tv = {0, 50000};
        t->ev = evtimer_new(base, on_async_timer, t);
        evtimer_add(t->ev, &tv);
        break;
    }
    case K_ASYNC_SINK: {
        struct timeval tv = {0, 50000};
        t->ev = evtimer_new(base, on_read_later, t);
        evtimer_add(t->ev, &tv);
        break;
    }
    case K_BIG: /* "/big/<MiB>" paced by on_drain; "/bigonce/<MiB>" queued at once */
        t->next_pause = big_size(tg);
        h1_resp_start(req, 200, (int64_t)t->next_pause);
        if (span_starts_with(tg, "/bigonce")) {
            char *all = calloc(1, t->next_pause);
            h1_resp_write(req, all, t->next_pause);
            free(all);
            h1_req_set_data(req, NULL);
            treq_free(t);
            h1_resp_end(req);
            break;
        }
        big_pump(req, t);
        break;
    case K_DENY:
        reply(t, 403, "denied");
        break;
    case K_CHUNKED:
        h1_resp_start(req, 200, -1);
        h1_resp_write(req, "hello", 5);
        h1_resp_on_drain(req, on_chunk_drain, t);
        break;
    case K_PAUSE:
        t->ev = evtimer_new(base, on_resume_timer, t);
        t->next_pause = 1;
        h1_req_read_body(req);
        break;
    case K_TRAILERS:
        t->echo = evbuffer_new();
        h1_req_read_body(req);
        break;
    case K_SINK:
    case K_ABORT:
        h1_req_read_body(req);
        break;
    case K_OTHER:
        reply(t, 404, "no such test");
        break;
    }
}

static void on_body(struct h1_req *req, struct evbuffer *data, void *arg)
{
    struct treq *t = h1_req_data(req);
    (void)arg;

    if (t->paused)
        t->violations++;
    size_t n = evbuffer_get_length(data);
    t->hash = fnv(t->hash, evbuffer_pullup(data, -1), n);
    t->bytes += n;
    if (t->echo != NULL)
        evbuffer_add_buffer(t->echo, data);
    else
        evbuffer_drain(data, n);
    if (t->kind == K_PAUSE && t->n_pauses < 3 && t->bytes >= t->next_pause) {
        struct timeval tv = {0, 150000};
        t->paused = true;
        t->n_pauses++;
        t->next_pause = t->bytes + (uint64_t)512 * 1024;
        h1_req_pause_body(req);
        evtimer_add(t->ev, &tv);
    }
}

static void on_body_end(struct h1_req *req, void *arg)
{
    struct treq *t = h1_req_data(req);
    char text[4096];
    (void)arg;

    pthread_mutex_lock(&mu);
    n_body_ends++;
    if (t->kind == K_PAUSE && t->violations == 0 && t->n_pauses > 0)
        pause_checked++;
    pthread_mutex_unlock(&mu);
    if (t->kind == K_TRAILERS) {
        size_t n_tr, off;
        const struct gw_header *tr = h1_req_trailers(req, &n_tr);
        off = (size_t)snprintf(text, sizeof(text), "%.*s|", (int)evbuffer_get_length(t->echo),
                               (const char *)evbuffer_pullup(t->echo, -1));
        for (size_t i = 0; i < n_tr && off < sizeof(text); i++)
            off +=
                (size_t)snprintf(text + off, sizeof(text) - off, "%.*s=%.*s;", (int)tr[i].name.len,
                                 tr[i].name.ptr, (int)tr[i].value.len, tr[i].value.ptr);
        reply(t, 200, text);
        return;
    }
    snprintf(text, sizeof(text), "bytes=%" PRIu64 " hash=%016" PRIx64 " pauses=%d violations=%d",
             t->bytes, t->hash, t->n_pauses, t->violations);
    reply(t, 200, text);
}

static void on_abort(struct h1_req *req, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    n_aborts++;
    pthread_mutex_unlock(&mu);
    treq_free(h1_req_data(req));
}

static const char *error_body(int status, const char *request_id, struct evbuffer *out, void *arg)
{
    (void)arg;
    evbuffer_add_printf(out, "<Error><Code>%d</Code><RequestId>%s</RequestId></Error>", status,
                        request_id);
    return "application/xml";
}

static void *loop_main(void *arg)
{
    (void)arg;
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- the client (test thread) ---------------------------------------------------------------- */

struct client {
    int fd;
    char *buf;
    size_t len, cap;
};

struct response {
    int status;
    char head[8192];
    char body[1 << 16];
    size_t body_len;
    char raw[1 << 16]; /* body bytes as framed on the wire */
    size_t raw_len;
};

static struct response resp; /* big: one at a time */

static struct h1_server *srv_one; /* max_conns 1 */

static void client_open_to(struct client *c, const struct h1_server *to)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)h1_server_port(to))};
    struct timeval tv = {3, 0};
    int one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        perror("connect");
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
}

static void client_open(struct client *c)
{
    client_open_to(c, srv);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

static int client_send(struct client *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int client_puts(struct client *c, const char *s)
{
    return client_send(c, s, strlen(s));
}

/* Reads more bytes: >0 read, 0 closed, -1 error or timeout. */
static int client_fill(struct client *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n > 0 ? 1 : n == 0 ? 0 : -1;
}

static void client_consume(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static int client_need(struct client *c, size_t n)
{
    while (c->len < n)
        if (client_fill(c) <= 0)
            return -1;
    return 0;
}

/* A CRLF-terminated line, consumed; its length without the CRLF, or -1. */
static long client_line(struct client *c, char *out, size_t cap)
{
    char *eol;
    while ((eol = memmem(c->buf, c->len, "\r\n", 2)) == NULL)
        if (client_fill(c) <= 0)
            return -1;
    size_t n = (size_t)(eol - c->buf);
    snprintf(out, cap, "%.*s", (int)n, c->buf);
    client_consume(c, n + 2);
    return (long)n;
}

/* Value of header `name` in r->head (case-insensitive); NULL when absent. */
static const char *resp_header(const struct response *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)(e != NULL ? e - v : (long)strlen(v)), v);
            return out;
        }
    }
    return NULL;
}

static void body_add(struct response *r, const char *p, size_t n)
{
    if (r->body_len + n < sizeof(r->body)) {
        memcpy(r->body + r->body_len, p, n);
        r->body_len += n;
        r->body[r->body_len] = '\0';
    }
}

static void raw_add(struct response *r, const char *p, size_t n)
{
    if (r->raw_len + n < sizeof(r->raw)) {
        memcpy(r->raw + r->raw_len, p, n);
        r->raw_len += n;
        r->raw[r->raw_len] = '\0';
    }
}

static int read_chunked(struct client *c, struct response *r)
{
    char line[256];
    for (;;) {
        if (client_line(c, line, sizeof(line)) < 0)
            return -1;
        raw_add(r, line, strlen(line));
        raw_add(r, "\r\n", 2);
        unsigned long size = strtoul(line, NULL, 16);
        if (size == 0)
            break;
        if (client_need(c, size + 2) != 0)
            return -1;
        body_add(r, c->buf, size);
        raw_add(r, c->buf, size + 2);
        client_consume(c, size + 2);
    }
    for (;;) { /* trailers, then the empty line */
        long n = client_line(c, line, sizeof(line));
        if (n < 0)
            return -1;
        raw_add(r, line, (size_t)n);
        raw_add(r, "\r\n", 2);
        if (n == 0)
            return 0;
    }
}

/* Reads one response (a 100 Continue counts as one). 0 or -1. */
static int read_response(struct client *c, struct response *r, bool head_req)
{
    char *end;
    char v[64];

    memset(r, 0, offsetof(struct response, body));
    r->body_len = r->raw_len = 0;
    r->body[0] = r->raw[0] = '\0';
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
        if (client_fill(c) <= 0)
            return -1;
    size_t hlen = (size_t)(end - c->buf) + 4;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)hlen, c->buf);
    client_consume(c, hlen);
    if (strncmp(r->head, "HTTP/1.1 ", 9) != 0)
        return -1;
    r->status = (int)strtol(r->head + 9, NULL, 10);
    if (r->status < 200 || head_req || r->status == 204 || r->status == 304)
        return 0;
    if (resp_header(r, "content-length", v, sizeof(v)) != NULL) {
        size_t n = strtoul(v, NULL, 10);
        if (client_need(c, n) != 0)
            return -1;
        body_add(r, c->buf, n);
        client_consume(c, n);
        return 0;
    }
    if (resp_header(r, "transfer-encoding", v, sizeof(v)) != NULL)
        return read_chunked(c, r);
    while (client_fill(c) > 0)
        ;
    body_add(r, c->buf, c->len);
    client_consume(c, c->len);
    return 0;
}

/* True if the server closes the connection within `ms` (reading and dropping any bytes). */
static bool client_sees_close(struct client *c, int ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    char tmp[4096];
    for (;;) {
        if (poll(&pfd, 1, ms) <= 0)
            return false;
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int aborts_now(void)
{
    pthread_mutex_lock(&mu);
    int n = n_aborts;
    pthread_mutex_unlock(&mu);
    return n;
}

/* A request that must be refused by the layer with `want`, then the connection closed. */
static void expect_refusal(const char *req, size_t len, int want, const char *name)
{
    struct client c;
    char v[64];
    client_open(&c);
    client_send(&c, req, len);
    int rc = read_response(&c, &resp, false);
    ok(rc == 0, name);
    is_int(resp.status, want, name);
    ok(resp_header(&resp, "connection", v, sizeof(v)) != NULL && strcmp(v, "close") == 0,
       "refusal says Connection: close");
    ok(strstr(resp.body, "<RequestId>") != NULL, "refusal body comes from the error_body hook");
    ok(client_sees_close(&c, 2000), "connection closed after the refusal");
    client_close(&c);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_get_keepalive_serves_two_requests_on_one_connection(void)
{
    struct client c;
    char v[128];
    client_open(&c);
    client_puts(&c, "GET /hello/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "first response");
    is_int(resp.status, 200, "first status");
    is_str(resp.body, "hello /hello/1", "first body");
    ok(resp_header(&resp, "date", v, sizeof(v)) != NULL && strstr(v, " GMT") != NULL,
       "Date header in GMT");
    ok(resp_header(&resp, "connection", v, sizeof(v)) == NULL, "no Connection: close");
    client_puts(&c, "GET /hello/2 HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "second response on the same connection");
    is_str(resp.body, "hello /hello/2", "second body");
    client_close(&c);
}

static void test_headers_split_across_reads_are_joined_and_lowercased(void)
{
    struct client c;
    const char *parts[] = {"GET /head",      "ers HTTP/1.1\r\nHo",
                           "st: x\r\nX-Emp", "ty:\r\nX-Sp",
                           "lit: ab",        "cd  \r\nCONTENT-TYPE: text/Plain\r",
                           "\n\r\n"};
    client_open(&c);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        client_puts(&c, parts[i]);
        usleep(5000);
    }
    ok(read_response(&c, &resp, false) == 0, "split request answered");
    is_str(resp.body, "host=x;x-empty=;x-split=abcd;content-type=text/Plain;",
           "names lowercased, values kept, pieces joined, empty value kept");
    client_close(&c);
}

static void test_pipelined_requests_answered_in_order(void)
{
    struct client c;
    client_open(&c);
    client_puts(&c, "GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /async/b HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /hello/c HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(&c, &resp, false);
    is_str(resp.body, "hello /hello/a", "pipelined 1");
    read_response(&c, &resp, false);
    is_str(resp.body, "hello /async/b", "pipelined 2 (answered from a later event)");
    read_response(&c, &resp, false);
    is_str(resp.body, "hello /hello/c", "pipelined 3");
    client_close(&c);
}

static void fill_pattern(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + (i >> 8));
}

static void test_put_content_length_streams_body(void)
{
    struct client c;
    size_t n = 1 << 20;
    unsigned char *body = malloc(n);
    char want[128], head[256];
    fill_pattern(body, n);
    snprintf(want, sizeof(want), "bytes=%zu hash=%016" PRIx64 " pauses=0 violations=0", n,
             fnv(FNV_START, body, n));
    snprintf(head, sizeof(head), "PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
    client_open(&c);
    client_puts(&c, head);
    client_send(&c, body, n);
    ok(read_response(&c, &resp, false) == 0, "PUT answered");
    is_int(resp.status, 200, "PUT status");
    is_str(resp.body, want, "handler saw every body byte");
    client_puts(&c, "GET /hello/after-put HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(&c, &resp, false);
    is_str(resp.body, "hello /hello/after-put", "connection kept after a body");
    client_close(&c);
    free(body);
}

static void test_chunked_body_with_trailers(void)
{
    struct client c;
    client_open(&c);
    client_puts(&c, "PUT /trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    "Trailer: X-Check\r\n\r\n"
                    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Check: abc\r\nX-Other:  1 \r\n\r\n"
                    "GET /hello/next HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "chunked PUT answered");
    is_str(resp.body, "hello world|x-check=abc;x-other=1;",
           "body decoded, trailers in on_body_end");
    read_response(&c, &resp, false);
    is_str(resp.body, "hello /hello/next", "request after a chunked body");
    client_close(&c);
}

static void test_expect_continue_accepted(void)
{
    struct client c;
    client_open(&c);
    client_puts(&c, "PUT /asyncsink HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                    "Expect: 100-continue\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "interim response");
    is_int(resp.status, 100, "100 Continue once the handler reads the body (from a later event)");
    client_puts(&c, "0123456789");
    ok(read_response(&c, &resp, false) == 0, "final response");
    is_int(resp.status, 200, "then 200");
    ok(strncmp(resp.body, "bytes=10 ", 9) == 0, "body received after 100");
    client_close(&c);
}

static void test_expect_continue_refused(void)
{
    struct client c;
    char v[64];
    client_open(&c);
    client_puts(&c, "PUT /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                    "Expect: 100-continue\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "refusal read");
    is_int(resp.status, 403, "403 and never a 100");
    ok(resp_header(&resp, "connection", v, sizeof(v)) != NULL && strcmp(v, "close") == 0,
       "Connection: close on an unread body");
    ok(client_sees_close(&c, 2000), "connection closed after the refusal");
    client_close(&c);
}

static void test_head_has_length_but_no_body(void)
{
    struct client c;
    char v[64];
    client_open(&c);
    client_puts(&c, "HEAD /hello/x HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, true) == 0, "HEAD answered");
    is_int(resp.status, 200, "HEAD status");
    ok(resp_header(&resp, "content-length", v, sizeof(v)) != NULL && strcmp(v, "14") == 0,
       "HEAD keeps the handler's Content-Length");
    client_puts(&c, "GET /hello/y HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "next response");
    is_str(resp.body, "hello /hello/y", "no body bytes after the HEAD response");
    client_close(&c);
}

static void test_layer_refusals(void)
{
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 6000);
    n += 6000;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n\r\n");
    expect_refusal(big, n, 431, "header over the byte limit: 431");

    n = (size_t)snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-H%d: %d\r\n", i, i);
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    expect_refusal(big, n, 431, "too many headers: 431");

    n = (size_t)snprintf(big, sizeof(big), "GET /");
    memset(big + n, 'u', 2000);
    n += 2000;
    n += (size_t)snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_refusal(big, n, 414, "URL over the limit: 414");

    const char *garbage = "hello world, this is not http\r\n\r\n";
    expect_refusal(garbage, strlen(garbage), 400, "garbage request line: 400");

    const char *nohost = "GET /hello HTTP/1.1\r\n\r\n";
    expect_refusal(nohost, strlen(nohost), 400, "HTTP/1.1 without Host: 400");

    const char *twohosts = "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    expect_refusal(twohosts, strlen(twohosts), 400, "two Host headers: 400");

    const char *spacecolon = "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n";
    expect_refusal(spacecolon, strlen(spacecolon), 400, "space before the colon: 400");

    const char *unknown = "FROB /x HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_refusal(unknown, strlen(unknown), 501, "unknown method: 501");

    const char *clte = "PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    expect_refusal(clte, strlen(clte), 400, "Content-Length with chunked: 400");

    const char *badchunk = "PUT /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "zz\r\nhello\r\n";
    int before = aborts_now();
    expect_refusal(badchunk, strlen(badchunk), 400, "bad chunk size in the body: 400");
    is_int(aborts_now() - before, 1, "the handler that had the request got on_abort");
}

static void test_http10_closes(void)
{
    struct client c;
    char v[64];
    client_open(&c);
    client_puts(&c, "GET /hello/10 HTTP/1.0\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "HTTP/1.0 answered");
    ok(strncmp(resp.head, "HTTP/1.1 200 OK\r\n", 17) == 0, "status line is HTTP/1.1");
    ok(resp_header(&resp, "connection", v, sizeof(v)) != NULL && strcmp(v, "close") == 0,
       "HTTP/1.0 without keep-alive gets Connection: close");
    ok(client_sees_close(&c, 2000), "and the close");
    client_close(&c);
}

static void test_header_timeout_counts_from_request_start(void)
{
    struct client c;
    const char *slow = "X-Slow: abcdefghijklmnopqrstuvwxyz\r\n";
    struct pollfd pfd;
    double t0 = now_ms();
    client_open(&c);
    client_puts(&c, "GET /hello HTTP/1.1\r\n");
    pfd.fd = c.fd;
    pfd.events = POLLIN;
    for (size_t i = 0; slow[i] != '\0'; i++) { /* slowloris: one byte every 100 ms */
        if (poll(&pfd, 1, 100) > 0)
            break;
        client_send(&c, slow + i, 1);
    }
    ok(read_response(&c, &resp, false) == 0, "timeout response read");
    is_int(resp.status, 408, "slow headers get 408");
    double dt = now_ms() - t0;
    ok(dt >= 250 && dt < 1500, "after about header_timeout_ms, not reset per byte");
    ok(client_sees_close(&c, 2000), "closed after 408");
    client_close(&c);
}

/* A kept-alive connection hands its buffers to the next request: nothing of the last one
 * (headers, trailers, a longer target) may show through. */
static void test_next_request_on_a_connection_starts_clean(void)
{
    struct client c;
    char head[2048];
    size_t n = 0;

    client_open(&c);
    client_puts(&c, "PUT /trailers/with/a/long/target/to/outgrow/the/next HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n0\r\nX-Check: abc\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "chunked request with a trailer");
    is_str(resp.body, "hello|x-check=abc;", "its trailer");
    client_puts(&c, "PUT /trailers HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    ok(read_response(&c, &resp, false) == 0, "next request without trailers");
    is_str(resp.body, "hi|", "no trailer left from the last request");

    n = (size_t)snprintf(head, sizeof(head), "GET /headers HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(head + n, sizeof(head) - n, "X-H%d: %0100d\r\n", i, i);
    snprintf(head + n, sizeof(head) - n, "\r\n");
    client_puts(&c, head);
    ok(read_response(&c, &resp, false) == 0, "request with many headers");
    ok(strstr(resp.body, "x-h11=") != NULL, "all of them seen");
    client_puts(&c, "GET /headers HTTP/1.1\r\nHost: y\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "request with one header");
    is_str(resp.body, "host=y;", "only its own header");
    client_puts(&c, "GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "short target after long ones");
    is_str(resp.body, "hello /hello/x", "only its own target");
    client_close(&c);
}

/* The header timeout of a second request runs from its own first byte, whatever the idle
 * timer of the pause before it had left. */
static void test_header_timeout_on_a_kept_alive_connection(void)
{
    struct client c;
    client_open(&c);
    client_puts(&c, "GET /hello/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "first request");
    usleep(200000); /* half the idle timeout */
    double t0 = now_ms();
    client_puts(&c, "GET /hello/2 HTTP/1.1\r\n");
    ok(read_response(&c, &resp, false) == 0, "a started request is not idle: it gets an answer");
    is_int(resp.status, 408, "408 for the stalled head");
    double dt = now_ms() - t0;
    ok(dt >= 250 && dt < 1500, "after about header_timeout_ms from its first byte");
    client_close(&c);
}

static void test_idle_timeout_closes(void)
{
    struct client c;
    client_open(&c);
    client_puts(&c, "GET /hello/idle HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(&c, &resp, false);
    double t0 = now_ms();
    ok(client_sees_close(&c, 3000), "idle keep-alive connection closed");
    double dt = now_ms() - t0;
    ok(dt >= 250 && dt < 2000, "after about idle_timeout_ms");
    ok(c.len == 0, "silently");
    client_close(&c);
}

static void test_pause_resume_backpressure(void)
{
    struct client c;
    size_t n = 2 << 20;
    unsigned char *body = malloc(n);
    char want[128], head[256];
    fill_pattern(body, n);
    snprintf(want, sizeof(want), "bytes=%zu hash=%016" PRIx64 " pauses=3 violations=0", n,
             fnv(FNV_START, body, n));
    snprintf(head, sizeof(head), "PUT /pause HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
             n);
    client_open(&c);
    client_puts(&c, head);
    client_send(&c, body, n);
    ok(read_response(&c, &resp, false) == 0, "paused PUT answered");
    is_str(resp.body, want, "all bytes after three pauses, none delivered while paused");
    pthread_mutex_lock(&mu);
    int checked = pause_checked;
    pthread_mutex_unlock(&mu);
    is_int(checked, 1, "no on_body while paused");
    client_close(&c);
    free(body);
}

static void test_chunked_response_framing(void)
{
    struct client c;
    char v[64];
    client_open(&c);
    client_puts(&c, "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0, "chunked response read");
    ok(resp_header(&resp, "transfer-encoding", v, sizeof(v)) != NULL && strcmp(v, "chunked") == 0,
       "Transfer-Encoding: chunked");
    ok(resp_header(&resp, "content-length", v, sizeof(v)) == NULL, "no Content-Length");
    is_str(resp.raw, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "exact chunk framing");
    is_str(resp.body, "hello world", "decoded body (second piece written from on_drain)");
    client_puts(&c, "GET /hello/z HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(&c, &resp, false);
    is_str(resp.body, "hello /hello/z", "connection reusable after a chunked response");
    client_close(&c);
}

static void test_abort_when_client_leaves_mid_body(void)
{
    struct client c;
    char chunk[1000];
    int before = aborts_now();
    memset(chunk, 'x', sizeof(chunk));
    client_open(&c);
    client_puts(&c, "PUT /abort HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    client_send(&c, chunk, sizeof(chunk));
    usleep(50000);
    client_close(&c);
    double t0 = now_ms();
    while (aborts_now() == before && now_ms() - t0 < 2000)
        usleep(10000);
    is_int(aborts_now() - before, 1, "on_abort once when the client disconnects mid-body");
}

static void test_pipelined_big_responses_resume_parsing(void)
{
    struct client c;
    client_open(&c);
    client_puts(&c, "GET /big/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /big/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /big/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /hello/end HTTP/1.1\r\nHost: x\r\n\r\n");
    size_t want[] = {1 << 20, 2 << 20, 1 << 20};
    for (int i = 0; i < 3; i++) {
        char v[64];
        read_response(&c, &resp, false);
        ok(resp.status == 200 && resp_header(&resp, "content-length", v, sizeof(v)) != NULL &&
               strtoul(v, NULL, 10) == want[i],
           "big pipelined response in order");
    }
    ok(read_response(&c, &resp, false) == 0, "last pipelined request served");
    is_str(resp.body, "hello /hello/end", "after output above the low-water mark drained");
    client_close(&c);
}

/* A response queued at once and read slowly: neither the idle timer nor the client's
 * half-close may cut it short. */
static void slow_read(bool half_close)
{
    struct client c;
    size_t got = 0;
    char buf[64 * 1024];
    int rcv = 256 * 1024; /* fixed: no autotuning, so most of the response waits in user space */
    client_open(&c);
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    client_puts(&c, "GET /bigonce/16 HTTP/1.1\r\nHost: x\r\n\r\n");
    if (half_close)
        shutdown(c.fd, SHUT_WR);
    double t0 = now_ms();
    for (;;) {
        ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got % (1 << 20) < (size_t)n)
            usleep(50000); /* about 800 ms in all: longer than idle_timeout_ms */
    }
    ok(now_ms() - t0 > 400, "the read took longer than the idle timeout");
    ok(got > (16u << 20), "whole response, then the close");
    client_close(&c);
}

static void test_slow_reader_gets_everything(void)
{
    slow_read(false);
}

static void test_slow_reader_after_half_close_gets_everything(void)
{
    slow_read(true);
}

static void test_body_timeout_answers_408_and_aborts(void)
{
    struct client c;
    int before = aborts_now();
    double t0 = now_ms();
    client_open(&c);
    client_puts(&c, "PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    ok(read_response(&c, &resp, false) == 0, "answer to a stalled body");
    is_int(resp.status, 408, "408");
    double dt = now_ms() - t0;
    ok(dt >= 600 && dt < 2500, "after about body_timeout_ms");
    ok(client_sees_close(&c, 2000), "closed");
    is_int(aborts_now() - before, 1, "the handler got on_abort");
    client_close(&c);
}

static void test_write_stall_closes_and_aborts(void)
{
    struct client c;
    int before = aborts_now();
    int rcv = 4096;
    client_open(&c);
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    client_puts(&c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    double t0 = now_ms();
    while (aborts_now() == before && now_ms() - t0 < 4000)
        usleep(10000);
    is_int(aborts_now() - before, 1, "a client that stops reading is cut off: on_abort");
    client_close(&c);
}

static void test_max_conns_refuses_extra_connections(void)
{
    struct client a, b, c;
    client_open_to(&a, srv_one);
    client_puts(&a, "GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&a, &resp, false) == 0 && resp.status == 200, "first connection served");
    client_open_to(&b, srv_one);
    ok(client_sees_close(&b, 2000), "second connection over max_conns closed at once");
    client_close(&b);
    client_close(&a);
    usleep(100000); /* let the server see the first one go */
    client_open_to(&c, srv_one);
    client_puts(&c, "GET /hello/c HTTP/1.1\r\nHost: x\r\n\r\n");
    ok(read_response(&c, &resp, false) == 0 && resp.status == 200, "a slot is free again");
    client_close(&c);
}

static void on_drained(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    drain_done++;
    n_left = h1_server_n_conns(srv);
    pthread_mutex_unlock(&mu);
}

static void start_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    h1_server_drain(srv, on_drained, NULL);
}

static void test_drain_finishes_inflight_and_closes_idle(void)
{
    struct client idle, busy;
    char v[64];
    struct timeval zero = {0, 0};

    client_open(&idle);
    client_puts(&idle, "GET /hello/idle HTTP/1.1\r\nHost: x\r\n\r\n");
    read_response(&idle, &resp, false);
    client_open(&busy);
    client_puts(&busy, "PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    usleep(50000);
    event_base_once(base, -1, EV_TIMEOUT, start_drain, NULL, &zero);
    ok(client_sees_close(&idle, 2000), "idle connection closed by drain");
    pthread_mutex_lock(&mu);
    int done_early = drain_done;
    pthread_mutex_unlock(&mu);
    is_int(done_early, 0, "drain waits for the request in flight");
    client_puts(&busy, "56789");
    ok(read_response(&busy, &resp, false) == 0, "in-flight request finishes");
    ok(strncmp(resp.body, "bytes=10 ", 9) == 0, "with its whole body");
    ok(resp_header(&resp, "connection", v, sizeof(v)) != NULL && strcmp(v, "close") == 0,
       "and Connection: close");
    ok(client_sees_close(&busy, 2000), "then the connection closes");
    double t0 = now_ms();
    int done;
    do {
        usleep(10000);
        pthread_mutex_lock(&mu);
        done = drain_done;
        pthread_mutex_unlock(&mu);
    } while (done == 0 && now_ms() - t0 < 2000);
    is_int(done, 1, "drain done called once");
    pthread_mutex_lock(&mu);
    is_int(n_left, 0, "no connection left");
    pthread_mutex_unlock(&mu);
    client_close(&idle);
    client_close(&busy);
}

static void check_access_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0, with_id = 0, denied = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n++;
        size_t len = strcspn(line, "\n");
        line[len] = '\0';
        const char *sp = strrchr(line, ' ');
        if (sp != NULL && strlen(sp + 1) == 16 && strspn(sp + 1, "0123456789ABCDEF") == 16)
            with_id++;
        if (strstr(line, " Test - - 403 ") != NULL)
            denied++;
    }
    if (f != NULL)
        fclose(f);
    ok(n > 20, "access log has a line per request");
    is_int(with_id, n, "every line ends with a 16-hex-digit request id");
    ok(denied >= 1, "the 403 is logged with the handler's op");
}

int main(void)
{
    char log_path[] = "/tmp/fg_test_h1_XXXXXX";
    int fd = mkstemp(log_path);
    if (fd >= 0)
        close(fd);
    log_open(NULL, log_path);
    log_level_now = LOG_ERROR;

    evthread_use_pthreads();
    base = event_base_new();
    struct h1_limits l;
    h1_limits_default(&l);
    l.max_header_bytes = 4096;
    l.max_headers = 20;
    l.max_url_bytes = 1024;
    l.header_timeout_ms = 300;
    l.idle_timeout_ms = 400;
    l.body_timeout_ms = 800;
    l.write_timeout_ms = 800;
    l.read_high_water = (size_t)64 * 1024;
    l.write_low_water = (size_t)16 * 1024;
    struct h1_handler h = {
        .on_request = on_request,
        .on_body = on_body,
        .on_body_end = on_body_end,
        .on_abort = on_abort,
        .error_body = error_body,
    };
    srv = h1_server_new(base, &l, &h);
    ok(h1_server_listen(srv, "127.0.0.1:0") == 0, "listen on a free port");
    ok(h1_server_port(srv) > 0, "bound port known");
    l.max_conns = 1;
    srv_one = h1_server_new(base, &l, &h);
    ok(h1_server_listen(srv_one, "127.0.0.1:0") == 0, "second server listens");
    pthread_t loop;
    pthread_create(&loop, NULL, loop_main, NULL);

    subtest(test_get_keepalive_serves_two_requests_on_one_connection);
    subtest(test_headers_split_across_reads_are_joined_and_lowercased);
    subtest(test_pipelined_requests_answered_in_order);
    subtest(test_put_content_length_streams_body);
    subtest(test_chunked_body_with_trailers);
    subtest(test_expect_continue_accepted);
    subtest(test_expect_continue_refused);
    subtest(test_head_has_length_but_no_body);
    subtest(test_layer_refusals);
    subtest(test_http10_closes);
    subtest(test_header_timeout_counts_from_request_start);
    subtest(test_next_request_on_a_connection_starts_clean);
    subtest(test_header_timeout_on_a_kept_alive_connection);
    subtest(test_idle_timeout_closes);
    subtest(test_pause_resume_backpressure);
    subtest(test_chunked_response_framing);
    subtest(test_abort_when_client_leaves_mid_body);
    subtest(test_pipelined_big_responses_resume_parsing);
    subtest(test_slow_reader_gets_everything);
    subtest(test_slow_reader_after_half_close_gets_everything);
    subtest(test_body_timeout_answers_408_and_aborts);
    subtest(test_write_stall_closes_and_aborts);
    subtest(test_max_conns_refuses_extra_connections);
    subtest(test_drain_finishes_inflight_and_closes_idle);

    event_base_loopbreak(base);
    pthread_join(loop, NULL);
    h1_server_free(srv);
    h1_server_free(srv_one);
    event_base_free(base);
    log_close();
    check_access_log(log_path);
    unlink(log_path);
    return done_testing();
}

/* HTTP/1.1 server, response side: the request accessors, status line and header framing
 * (Date, Content-Length or chunked, Connection), body writes and the layer's own error
 * responses. Parsing, connections and timeouts are in h1_server.c. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>

#include "gateway/h1.h"
#include "gateway/h1_internal.h"
#include "gateway/xmalloc.h"

/* ---- request accessors ------------------------------------------------------------------ */

struct span h1_req_method(const struct h1_req *req)
{
    return span_from(http_method_str((enum http_method)req->method));
}

struct span h1_req_target(const struct h1_req *req)
{
    return span_make(req->target != NULL ? req->target : "", req->target_len);
}

const struct gw_header *h1_req_headers(const struct h1_req *req, size_t *n)
{
    *n = req->headers.finished ? req->headers.n : 0;
    return *n > 0 ? req->headers.hdrs : NULL;
}

struct span h1_req_header(const struct h1_req *req, const char *lname)
{
    size_t n;
    const struct gw_header *h = h1_req_headers(req, &n);
    const struct gw_header *found = h != NULL ? gw_header_find(h, n, lname) : NULL;
    return found != NULL ? found->value : span_make(NULL, 0);
}

const struct gw_header *h1_req_trailers(const struct h1_req *req, size_t *n)
{
    *n = req->trailers.finished ? req->trailers.n : 0;
    return *n > 0 ? req->trailers.hdrs : NULL;
}

int64_t h1_req_content_length(const struct h1_req *req)
{
    return req->content_length;
}

bool h1_req_is_chunked(const struct h1_req *req)
{
    return req->chunked;
}

bool h1_req_has_body(const struct h1_req *req)
{
    return req->chunked || req->content_length > 0;
}

bool h1_req_is_head(const struct h1_req *req)
{
    return req->head;
}

int h1_req_http_minor(const struct h1_req *req)
{
    return req->http_minor;
}

struct log_ctx *h1_req_log(struct h1_req *req)
{
    return &req->log;
}

struct log_access *h1_req_access(struct h1_req *req)
{
    return &req->access;
}

void h1_req_set_data(struct h1_req *req, void *data)
{
    req->data = data;
}

void *h1_req_data(const struct h1_req *req)
{
    return req->data;
}

/* ---- status, date ------------------------------------------------------------------------ */

const char *h1_reason(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Payload Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

/* RFC 9110 IMF-fixdate, rebuilt once a second; names spelled out so the locale cannot matter. */
const char *h1_date(struct h1_server *srv)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timeval tv;
    struct tm tm;

    if (event_base_gettimeofday_cached(srv->base, &tv) != 0)
        tv.tv_sec = time(NULL);
    if (tv.tv_sec == srv->date_sec && srv->date[0] != '\0')
        return srv->date;
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ASSERT(strlen(srv->date) == H1_DATE_LEN);
    srv->date_sec = tv.tv_sec;
    return srv->date;
}

/* Adds `s` with CR and LF replaced by spaces: header text never ends a line early. */
static void add_clean(struct evbuffer *out, const char *s)
{
    while (*s != '\0') {
        size_t n = strcspn(s, "\r\n");
        evbuffer_add(out, s, n);
        s += n;
        if (*s != '\0') {
            evbuffer_add(out, " ", 1);
            s++;
        }
    }
}

void h1_write_error(struct h1_conn *c, int status, const char *request_id, bool head_only)
{
    const struct h1_handler *h = &c->srv->handler;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer *body = evbuffer_new();
    const char *ctype = NULL;

    ASSERT(body != NULL);
    if (h->error_body != NULL)
        ctype = h->error_body(status, request_id, body, h->arg);
    if (ctype == NULL) {
        evbuffer_drain(body, evbuffer_get_length(body));
        evbuffer_add_printf(body, "%d %s\n", status, h1_reason(status));
        ctype = "text/plain";
    }
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: ", status,
                        h1_reason(status), h1_date(c->srv));
    add_clean(out, ctype);
    evbuffer_add_printf(out, "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                        evbuffer_get_length(body));
    if (!head_only)
        evbuffer_add_buffer(out, body);
    evbuffer_free(body);
}

/* ---- responses ---------------------------------------------------------------------------- */

/* The response head is built in one flat buffer (req->resp_head, kept from request to
 * request by the connection) and queued with a single copy at h1_resp_start(). */

/* Makes room for `n` more bytes of head. */
static char *head_reserve(struct h1_req *req, size_t n)
{
    if (req->resp_head_len + n > req->resp_head_cap) {
        size_t want = req->resp_head_cap < 512 ? 512 : req->resp_head_cap;
        while (want < req->resp_head_len + n)
            want *= 2;
        req->resp_head = xrealloc(req->resp_head, want);
        req->resp_head_cap = want;
    }
    return req->resp_head + req->resp_head_len;
}

static void head_add(struct h1_req *req, const char *p, size_t n)
{
    memcpy(head_reserve(req, n), p, n);
    req->resp_head_len += n;
}

/* Adds `s` with CR and LF replaced by spaces: header text never ends a line early. */
static void head_add_clean(struct h1_req *req, const char *s)
{
    size_t n = strlen(s);
    char *p = head_reserve(req, n);
    for (size_t i = 0; i < n; i++)
        p[i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
    req->resp_head_len += n;
}

/* Decimal digits of `v` into out (room for 20), returning how many. */
static size_t format_u64(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Headers the layer writes itself; a handler's copy would contradict the framing. */
static bool is_framing_header(const char *name)
{
    switch (name[0]) { /* most names go no further than this */
    case 'c':
    case 'C':
    case 't':
    case 'T':
    case 'd':
    case 'D':
        break;
    default:
        return false;
    }
    return strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0 ||
           strcasecmp(name, "connection") == 0 || strcasecmp(name, "date") == 0;
}

void h1_resp_header(struct h1_req *req, const char *name, const char *value)
{
    ASSERT(req->resp_state == H1_RESP_NONE);
    if (is_framing_header(name)) {
        if (strcasecmp(name, "connection") == 0 && strcasestr(value, "close") != NULL)
            req->resp_close = true;
        return;
    }
    head_add_clean(req, name);
    head_add(req, ": ", 2);
    head_add_clean(req, value);
    head_add(req, "\r\n", 2);
}

/* Writes the status line into the room kept in front of the headers; returns where the head
 * now starts. */
static size_t head_put_status(struct h1_req *req, int status)
{
    const char *reason = h1_reason(status);
    size_t reason_len = strlen(reason);
    size_t n = 9 + 3 + 1 + reason_len + 2;
    char *p;

    ASSERT(n <= H1_STATUS_ROOM);
    p = req->resp_head + H1_STATUS_ROOM - n;
    memcpy(p, "HTTP/1.1 ", 9);
    p[9] = (char)('0' + status / 100);
    p[10] = (char)('0' + status / 10 % 10);
    p[11] = (char)('0' + status % 10);
    p[12] = ' ';
    memcpy(p + 13, reason, reason_len);
    memcpy(p + 13 + reason_len, "\r\n", 2);
    return H1_STATUS_ROOM - n;
}

void h1_resp_start(struct h1_req *req, int status, int64_t content_length)
{
    struct h1_conn *c = req->conn;
    /* HEAD keeps the handler's Content-Length; 204 and 304 carry no framing at all */
    bool no_body = req->head || status == 204 || status == 304;

    ASSERT(req->resp_state == H1_RESP_NONE);
    ASSERT(req->state >= H1_REQ_WAIT);
    ASSERT(status >= 200 && status <= 999);
    req->resp_state = H1_RESP_STARTED;
    req->status = status;
    req->resp_length = content_length;
    if (no_body)
        req->mode = H1_BODY_NONE;
    else if (content_length >= 0)
        req->mode = H1_BODY_LENGTH;
    else if (req->http_minor >= 1)
        req->mode = H1_BODY_CHUNKED;
    else
        req->mode = H1_BODY_CLOSE;
    /* A response before the end of the body is an early answer: the rest of the body is
     * not read, so this is the last response on the connection. */
    req->close_conn = !req->keep_alive || req->resp_close || c->srv->draining ||
                      req->mode == H1_BODY_CLOSE || !req->message_complete;
    if (c->dead)
        return;

    head_reserve(req, 0); /* the status room exists even when no header was added */
    head_add(req, "Date: ", 6);
    head_add(req, h1_date(c->srv), H1_DATE_LEN);
    head_add(req, "\r\n", 2);
    if (status != 204 && status != 304 && content_length >= 0) {
        head_add(req, "Content-Length: ", 16);
        req->resp_head_len += format_u64((uint64_t)content_length, head_reserve(req, 20));
        head_add(req, "\r\n", 2);
    } else if (req->mode == H1_BODY_CHUNKED) {
        head_add(req, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (req->close_conn)
        head_add(req, "Connection: close\r\n", 19);
    else if (req->http_minor == 0)
        head_add(req, "Connection: keep-alive\r\n", 24);
    head_add(req, "\r\n", 2);

    size_t from = head_put_status(req, status);
    bufferevent_write(c->bev, req->resp_head + from, req->resp_head_len - from);
    h1_conn_output_added(c);
}

/* Chunked framing: the size line of a chunk of `len` bytes. */
static void add_chunk_size(struct evbuffer *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char line[2 * sizeof(size_t) + 2];
    size_t n = 0;
    char tmp[2 * sizeof(size_t)];
    do {
        tmp[n++] = hex[len & 0xf];
        len >>= 4;
    } while (len != 0);
    for (size_t i = 0; i < n; i++)
        line[i] = tmp[n - 1 - i];
    line[n] = '\r';
    line[n + 1] = '\n';
    evbuffer_add(out, line, n + 2);
}

/* How much of `len` may go out: all of it unless it passes the announced Content-Length. */
static size_t body_room(struct h1_req *req, size_t len)
{
    if (req->mode != H1_BODY_LENGTH)
        return len;
    uint64_t room = (uint64_t)req->resp_length - req->body_out;
    if (len > room) {
        log_warn(&req->log, "response body passes its Content-Length %" PRId64 ", truncated",
                 req->resp_length);
        return (size_t)room;
    }
    return len;
}

void h1_resp_write(struct h1_req *req, const void *data, size_t len)
{
    struct h1_conn *c = req->conn;

    ASSERT(req->resp_state == H1_RESP_STARTED);
    if (c->dead || req->mode == H1_BODY_NONE)
        return;
    len = body_room(req, len);
    if (len == 0)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (req->mode == H1_BODY_CHUNKED)
        add_chunk_size(out, len);
    evbuffer_add(out, data, len);
    if (req->mode == H1_BODY_CHUNKED)
        evbuffer_add(out, "\r\n", 2);
    req->body_out += len;
    h1_conn_output_added(c);
}

void h1_resp_write_buf(struct h1_req *req, struct evbuffer *data)
{
    struct h1_conn *c = req->conn;
    size_t all = evbuffer_get_length(data);

    ASSERT(req->resp_state == H1_RESP_STARTED);
    if (all == 0)
        return;
    if (c->dead || req->mode == H1_BODY_NONE) {
        evbuffer_drain(data, all);
        return;
    }
    size_t len = body_room(req, all);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (req->mode == H1_BODY_CHUNKED)
        add_chunk_size(out, len);
    if (len == all)
        evbuffer_add_buffer(out, data);
    else
        evbuffer_remove_buffer(data, out, len);
    evbuffer_drain(data, evbuffer_get_length(data));
    if (req->mode == H1_BODY_CHUNKED)
        evbuffer_add(out, "\r\n", 2);
    req->body_out += len;
    h1_conn_output_added(c);
}

size_t h1_resp_pending(const struct h1_req *req)
{
    struct h1_conn *c = req->conn;
    return c->dead ? 0 : evbuffer_get_length(bufferevent_get_output(c->bev));
}

void h1_resp_on_drain(struct h1_req *req, void (*cb)(struct h1_req *req, void *arg), void *arg)
{
    struct h1_conn *c = req->conn;

    req->drain_cb = cb;
    req->drain_arg = arg;
    if (c->dead)
        return; /* on_abort is coming instead */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) <= c->srv->limits.write_low_water) {
        c->want_drain = true;
        h1_conn_schedule(c);
    }
}

void h1_resp_end(struct h1_req *req)
{
    struct h1_conn *c = req->conn;
    bool close = req->close_conn || req->resp_close || !req->message_complete;

    ASSERT(req->resp_state == H1_RESP_STARTED);
    req->resp_state = H1_RESP_ENDED;
    req->drain_cb = NULL;
    if (!c->dead) {
        if (req->mode == H1_BODY_CHUNKED) {
            evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
            h1_conn_output_added(c);
        }
        if (req->mode == H1_BODY_LENGTH && req->body_out < (uint64_t)req->resp_length) {
            /* the client would wait for the missing bytes: only a close ends this body */
            log_warn(&req->log, "response ended %" PRIu64 " bytes short of its Content-Length",
                     (uint64_t)req->resp_length - req->body_out);
            close = true;
        }
        if (req->mode == H1_BODY_CLOSE)
            close = true;
    }
    h1_conn_request_done(c, req, close);
}

void h1_resp_close(struct h1_req *req)
{
    req->resp_close = true;
}

void h1_resp_send(struct h1_req *req, int status, const char *content_type, struct evbuffer *body)
{
    size_t len = body != NULL ? evbuffer_get_length(body) : 0;

    if (content_type != NULL)
        h1_resp_header(req, "Content-Type", content_type);
    h1_resp_start(req, status, (int64_t)len);
    if (body != NULL)
        h1_resp_write_buf(req, body);
    h1_resp_end(req);
}

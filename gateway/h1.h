/* HTTP/1.1 server on libevent bufferevents and libhttp-parser.
 *
 * What it does: keep-alive, pipelining (one request at a time per connection, in order),
 * Content-Length and chunked request bodies (with trailers), `Expect: 100-continue` under the
 * handler's control, streaming bodies with backpressure both ways, HEAD, limits and timeouts,
 * and graceful drain. What it does not know: S3, or what a request means.
 *
 * Lifecycle of a request (all callbacks on the loop thread):
 *   1. on_request(req): the request line and headers are parsed, no body byte has been read.
 *      The handler either answers at once (h1_resp_*), or calls h1_req_read_body() to start
 *      the body (this sends `100 Continue` when the client asked for it), possibly later
 *      after asynchronous work.
 *   2. on_body(req, data): decoded body bytes (chunked framing removed). The handler drains
 *      what it takes from `data`; bytes it leaves stay buffered. While paused
 *      (h1_req_pause_body()) no on_body calls are made and the socket is not read.
 *   3. on_body_end(req): the body is complete; trailers, if any, are available.
 *   4. The handler answers: h1_resp_header() as many times as needed, h1_resp_start(), any
 *      number of h1_resp_write*(), then h1_resp_end(). After h1_resp_end() returns, `req` is
 *      gone: the layer makes no more callbacks for it and the handler must not touch it.
 *   If the connection fails or times out before h1_resp_end(), on_abort(req) is called once
 *   instead of any further callback; `req` is freed when on_abort returns, and the handler
 *   must not use it afterwards (mark its own state and free that later if a pool job still
 *   holds it).
 *
 * A response may be started and ended before the body was read (an early error): the layer
 * then closes the connection after the response is flushed rather than reading the body,
 * unless the body is already complete. Requests with malformed framing, oversized heads or
 * header-phase timeouts are answered by the layer itself (400, 408, 413, 414, 431, 501) with
 * the error body produced by the server's `error_body` hook, and never reach on_request.
 */
#ifndef FG_GATEWAY_H1_H
#define FG_GATEWAY_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/log.h"
#include "gateway/span.h"

struct event_base;
struct evbuffer;
struct h1_server;
struct h1_req;

struct h1_limits {
    size_t max_header_bytes;    /* request line + headers; default 64 KiB -> 431 */
    size_t max_headers;         /* header count; default 128 -> 431 */
    size_t max_url_bytes;       /* request-target; default 8 KiB -> 414 */
    size_t max_trailer_bytes;   /* trailers of chunked bodies; default 16 KiB -> 400 */
    unsigned header_timeout_ms; /* first byte to end of headers; default 30 s -> 408 */
    unsigned idle_timeout_ms;   /* keep-alive wait between requests; default 60 s */
    unsigned body_timeout_ms;   /* max gap between body bytes; default 60 s -> 408, close */
    unsigned write_timeout_ms;  /* max stall writing a response; default 60 s -> close */
    unsigned max_conns;         /* open connections; default 4096, beyond: accept + close */
    size_t read_high_water;     /* socket read buffer bound; default 256 KiB */
    size_t write_low_water;     /* drain callback threshold; default 256 KiB */
};

/* Fills `l` with the safe defaults listed above. */
void h1_limits_default(struct h1_limits *l);

struct h1_handler {
    void (*on_request)(struct h1_req *req, void *arg);
    void (*on_body)(struct h1_req *req, struct evbuffer *data, void *arg);
    void (*on_body_end)(struct h1_req *req, void *arg);
    void (*on_abort)(struct h1_req *req, void *arg);
    /* Writes the body of an error the layer answers itself (status 400/408/413/414/431/501)
     * into `out` and returns its Content-Type; NULL hook -> a plain text body. */
    const char *(*error_body)(int status, const char *request_id, struct evbuffer *out, void *arg);
    void *arg;
};

/* Creates a server on `base` (which must have been created after evthread_use_pthreads()).
 * Copies `limits` and `handler`. */
struct h1_server *h1_server_new(struct event_base *base, const struct h1_limits *limits,
                                const struct h1_handler *handler);
/* Listens on "host:port" ("[::1]:port" for IPv6; port 0 picks a free one). SO_REUSEPORT is
 * set so several processes can share a port. 0 or -1 with an error logged. */
int h1_server_listen(struct h1_server *srv, const char *addr);
/* The port actually bound by the last listen (after port 0). */
int h1_server_port(const struct h1_server *srv);
/* Graceful drain: stop accepting, close idle connections, let in-flight requests finish
 * (no further keep-alive), then call done(arg) once no connection remains. */
void h1_server_drain(struct h1_server *srv, void (*done)(void *arg), void *arg);
/* Connections open now. */
unsigned h1_server_n_conns(const struct h1_server *srv);
/* Closes everything at once (no callbacks but on_abort). Accepts NULL. */
void h1_server_free(struct h1_server *srv);

/* Request accessors: valid until h1_resp_end() or on_abort. */
struct span h1_req_method(const struct h1_req *req); /* "GET", "PUT", ... */
struct span h1_req_target(const struct h1_req *req); /* raw request-target as sent */
const struct gw_header *h1_req_headers(const struct h1_req *req, size_t *n);
/* First header named `lname` (lowercase); ptr NULL when absent. */
struct span h1_req_header(const struct h1_req *req, const char *lname);
/* Trailers of a chunked body, available in on_body_end. */
const struct gw_header *h1_req_trailers(const struct h1_req *req, size_t *n);
/* Content-Length, or -1 when the body is chunked or absent. */
int64_t h1_req_content_length(const struct h1_req *req);
bool h1_req_is_chunked(const struct h1_req *req);
bool h1_req_has_body(const struct h1_req *req); /* Content-Length > 0 or chunked */
bool h1_req_is_head(const struct h1_req *req);
int h1_req_http_minor(const struct h1_req *req); /* 0 or 1 */
/* Request log context (module "h1", a fresh request id, the connection id and peer). */
struct log_ctx *h1_req_log(struct h1_req *req);
/* What the access log writes when the request ends; the handler fills user/op/bucket/key. */
struct log_access *h1_req_access(struct h1_req *req);
/* A per-request pointer for the handler. */
void h1_req_set_data(struct h1_req *req, void *data);
void *h1_req_data(const struct h1_req *req);

/* Body flow control. */
void h1_req_read_body(struct h1_req *req); /* sends 100 Continue if expected; starts on_body */
void h1_req_pause_body(struct h1_req *req);
void h1_req_resume_body(struct h1_req *req);

/* Responses. Headers added before h1_resp_start(); the layer adds Date, Content-Length (or
 * Transfer-Encoding: chunked when content_length < 0) and Connection, and sends no body bytes
 * for HEAD or 204/304 whatever is written. */
void h1_resp_header(struct h1_req *req, const char *name, const char *value);
void h1_resp_start(struct h1_req *req, int status, int64_t content_length);
void h1_resp_write(struct h1_req *req, const void *data, size_t len);
/* Moves all of `data` into the response. */
void h1_resp_write_buf(struct h1_req *req, struct evbuffer *data);
/* Bytes queued on the socket not yet written. */
size_t h1_resp_pending(const struct h1_req *req);
/* One-shot: call cb(req, arg) once the pending output falls to the write low-water mark
 * (at once, deferred, if it already has). Cancelled by h1_resp_end and on_abort. */
void h1_resp_on_drain(struct h1_req *req, void (*cb)(struct h1_req *req, void *arg), void *arg);
void h1_resp_end(struct h1_req *req);
/* Ask for the connection to close after this response. */
void h1_resp_close(struct h1_req *req);
/* Shorthand: header + start + write + end of a complete body held in `body` (moved). */
void h1_resp_send(struct h1_req *req, int status, const char *content_type, struct evbuffer *body);

#endif

/* Private to the HTTP/1.1 server (h1_server.c, h1_response.c) and its tests: the connection
 * and request structs shared by the two files, and a hook to drive a connection without a
 * socket. Nothing outside gateway/h1_*.c and tests/ includes this. */
#ifndef FG_GATEWAY_H1_INTERNAL_H
#define FG_GATEWAY_H1_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <http_parser.h>

#include "gateway/h1.h"
#include "gateway/log.h"

struct bufferevent;
struct event;
struct evbuffer;
struct evbuffer_cb_entry;
struct evconnlistener;

#define H1_MAX_LISTENERS 16

/* Hands a connected bufferevent to the server as if it had just been accepted (tests and
 * the fuzz target use one end of a bufferevent_pair). Takes ownership of `bev`; it must have
 * been created on the server's base with BEV_OPT_DEFER_CALLBACKS, so that data written by
 * the server never re-enters it synchronously. `peer` is copied into the log context. */
void h1_server_adopt(struct h1_server *srv, struct bufferevent *bev, const char *peer);

enum h1_req_state {
    H1_REQ_HEAD,  /* request line and headers being parsed; the handler has not seen it */
    H1_REQ_READY, /* head complete, on_request not called yet */
    H1_REQ_WAIT,  /* the handler has it; h1_req_read_body() not called */
    H1_REQ_BODY,  /* h1_req_read_body() called */
};

enum h1_resp_state { H1_RESP_NONE, H1_RESP_STARTED, H1_RESP_ENDED };

enum h1_body_mode {
    H1_BODY_NONE,    /* HEAD, 204, 304: body bytes written are dropped */
    H1_BODY_LENGTH,  /* Content-Length */
    H1_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    H1_BODY_CLOSE,   /* HTTP/1.0 without a length: the close ends the body */
};

enum h1_timer { H1_TIMER_NONE, H1_TIMER_HEADER, H1_TIMER_IDLE, H1_TIMER_BODY };

struct h1_field_off {
    size_t name_off, name_len, value_off, value_len; /* into h1_fields.raw */
};

/* A header or trailer block as it arrives in pieces: offsets while it grows, spans once
 * complete (raw never moves after that). The arrays outlive the request: a connection hands
 * them to its next request (see req_recycle in h1_server.c). */
struct h1_fields {
    char *raw; /* names (lowercased) and values back to back */
    size_t raw_len, raw_cap;
    struct h1_field_off *off;
    size_t n, off_cap;
    size_t n_bytes;         /* counted against the limit, with 4 per field for ": " CRLF */
    bool in_value;          /* the last piece was a value: a name piece starts a new field */
    bool finished;          /* hdrs is built; raw no longer grows */
    struct gw_header *hdrs; /* built by the completion; n entries */
    size_t hdrs_cap;
};

/* Room kept in front of the response head for the status line, which is only known at
 * h1_resp_start() but goes first: "HTTP/1.1 431 Request Header Fields Too Large\r\n" is 46. */
#define H1_STATUS_ROOM 64

struct h1_req {
    struct h1_conn *conn;
    enum h1_req_state state;
    struct log_ctx log;
    struct log_access access;
    struct timespec t_start; /* CLOCK_MONOTONIC at the first byte */
    void *data;              /* the handler's */

    /* head */
    char *target;
    size_t target_len, target_cap;
    size_t head_bytes; /* raw bytes consumed while parsing the head */
    struct h1_fields headers, trailers;
    unsigned method;
    int http_minor;
    int64_t content_length;
    bool chunked, head, keep_alive, expect_continue;

    /* body */
    struct evbuffer *body; /* decoded body bytes not yet taken by the handler */
    struct evbuffer_cb_entry *body_cb;
    uint64_t bytes_in;
    bool body_paused;      /* by the handler */
    bool body_stalled;     /* the handler left read_high_water bytes in `body` */
    bool body_new;         /* bytes arrived (or resume) since the last on_body */
    bool message_complete; /* the parser saw the end of the body */
    bool body_end_sent;

    /* response */
    enum h1_resp_state resp_state;
    enum h1_body_mode mode;
    char *resp_head; /* H1_STATUS_ROOM bytes, then the handler's headers, until h1_resp_start() */
    size_t resp_head_len, resp_head_cap;
    int status;
    int64_t resp_length;
    uint64_t body_out;
    bool close_conn; /* decided at h1_resp_start(): Connection: close was sent */
    bool resp_close; /* h1_resp_close() */
    void (*drain_cb)(struct h1_req *req, void *arg);
    void *drain_arg;
};

struct h1_conn {
    struct h1_server *srv;
    struct h1_conn *prev, *next;
    struct bufferevent *bev;
    http_parser parser;
    struct event *timer; /* the phase timer below */
    struct event *defer; /* re-runs processing, fires drain callbacks, frees a dead conn */
    enum h1_timer timer_kind;
    uint64_t deadline_ms; /* when the current phase times out (monotonic ms) */
    uint64_t armed_ms;    /* when `timer` fires; 0 when it is not armed */
    struct log_ctx log;
    struct h1_req *req;   /* being parsed or answered; NULL between requests */
    struct h1_req *spare; /* the last request's buffers, kept for the next one */
    int err_status;       /* set by a parser callback that fails on a limit */
    size_t discard_left;
    bool in_process, want_process, want_drain;
    bool flush_pending; /* output was queued that no write has been tried for yet */
    bool write_waiting; /* the socket was full: the bufferevent's write event is enabled */
    bool dead;          /* closed; freed from `defer` */
    bool eof;           /* the peer finished sending */
    bool flushing;      /* last response queued: close once the output is empty */
};

struct h1_server {
    struct event_base *base;
    struct h1_limits limits;
    struct h1_handler handler;
    struct evconnlistener *listeners[H1_MAX_LISTENERS];
    unsigned n_listeners;
    int port;
    struct h1_conn *conns;
    unsigned n_conns;
    struct h1_linger *lingering; /* closed connections still draining their peer's bytes */
    unsigned n_lingering;
    bool freeing; /* h1_server_free: close at once, no lingering */
    uint64_t next_conn_id;
    bool draining;
    void (*drain_done)(void *arg);
    void *drain_arg;
    struct event *drain_ev;
    time_t date_sec;
    char date[40]; /* IMF-fixdate, always H1_DATE_LEN characters */
    time_t refuse_log_sec;
};

#define H1_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Between h1_server.c and h1_response.c. */
void h1_conn_schedule(struct h1_conn *c);
/* Bytes were queued on the connection's output: makes sure a write is tried for them once
 * the current round of processing ends. */
void h1_conn_output_added(struct h1_conn *c);
void h1_conn_close(struct h1_conn *c);
/* h1_resp_end() has queued the last bytes: logs and frees `req`, then keeps the connection
 * for the next request or closes it once flushed. */
void h1_conn_request_done(struct h1_conn *c, struct h1_req *req, bool close);
/* Writes a complete error response of the layer's own (Connection: close). */
void h1_write_error(struct h1_conn *c, int status, const char *request_id, bool head_only);
const char *h1_reason(int status);
const char *h1_date(struct h1_server *srv);

#endif

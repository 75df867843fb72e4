/* Private to notify/: what the senders share (sender.c) and the two transports plug into
 * (webhook.c: libcurl multi on libevent; redis_target.c: hiredis async).
 *
 * A send moves through three lists, all on the loop thread: `pending` (FIFO, waiting for a
 * free slot: at most target.concurrency in flight), in flight (owned by the transport), and
 * `finished` (result known; its done callback runs from the deferred event, so never before
 * notify_sender_send() returned and never inside a libcurl or hiredis callback). */
#ifndef FG_NOTIFY_SENDER_H
#define FG_NOTIFY_SENDER_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "notify/notify.h"

struct event;

struct notify_send {
    struct notify_send *next;
    struct notify_sender *s;
    char *body; /* the copy */
    size_t len;
    notify_sent_fn *done;
    void *arg;
    enum notify_send_result res;
    char reason[160];
    /* webhook */
    char *id_header;       /* "x-floodgate-event-id: <id>" */
    struct curl_slist hdr; /* id_header, then the sender's fixed headers */
    CURL *easy;            /* while in flight */
    char errbuf[CURL_ERROR_SIZE];
    int64_t started_ms; /* redis: when the command was sent (the watchdog) */
};

struct notify_send_list {
    struct notify_send *head;
    struct notify_send *tail;
    size_t n;
};

struct notify_sender_ops {
    /* Opens the transport; 0, or -1 with a message (bad URL, unreadable file). */
    int (*open)(struct notify_sender *s, char *msg, size_t msg_cap);
    /* 1: a send can start now; 0: not yet (connecting), they wait; -1: down, pending sends
     * end with NOTIFY_UNREACHABLE and *why. */
    int (*ready)(struct notify_sender *s, const char **why);
    /* Starts one send; it ends with notify_sender_finish(). */
    void (*start)(struct notify_sender *s, struct notify_send *m);
    /* Ends every send in flight with notify_sender_finish(RETRY, "shutting down") and
     * releases the transport. */
    void (*close)(struct notify_sender *s);
};

struct notify_sender {
    struct event_base *base;
    struct notify_target t; /* a deep copy */
    const struct notify_sender_ops *ops;
    void *impl; /* the transport's state */
    struct notify_send_list pending;
    struct notify_send_list finished;
    size_t n_inflight;
    struct event *deferred; /* runs the done callbacks of `finished`, then starts sends */
    int depth;              /* > 0 while done callbacks run */
    bool closing;           /* notify_sender_free() was called */
};

extern const struct notify_sender_ops notify_webhook_ops;
extern const struct notify_sender_ops notify_redis_ops;

/* A send in flight has its result: counted out of flight, queued for its done callback. */
void notify_sender_finish(struct notify_sender *s, struct notify_send *m,
                          enum notify_send_result res, const char *reason);
/* Ends every pending send (not started) with `res` (the Redis connection is down). */
void notify_sender_fail_pending(struct notify_sender *s, enum notify_send_result res,
                                const char *reason);
/* Starts pending sends while slots are free and the transport is ready (deferred). */
void notify_sender_kick(struct notify_sender *s);
int64_t notify_now_ms(void); /* monotonic */

#endif

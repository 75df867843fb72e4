/* One logical Redis connection on the event loop (hiredis async, libevent adapter): connects,
 * authenticates and selects the database from the URL, loads the scripts of keys.h, and
 * reconnects after any failure with capped exponential backoff (100 ms doubling to 5 s).
 * hiredis 0.14 has no timeouts, so a 1 s tick drops a connection whose connect or handshake
 * takes over 5 s, or whose replies are overdue (stall_ms). Private to queue/.
 *
 * Every command callback runs exactly once: with the reply, or with NULL when the connection
 * was lost before the reply came (the outcome is unknown: the command may have run). The reply
 * is hiredis' and is freed when the callback returns. Loop thread only. */
#ifndef FG_QUEUE_REDIS_H
#define FG_QUEUE_REDIS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "queue/keys.h"

struct event_base;
struct queue_conn;

/* Connected, authenticated, database selected and (when asked) scripts loaded. */
typedef void queue_conn_ready_cb(struct queue_conn *c, void *arg);
/* The connection was lost or an attempt failed; the next attempt is already scheduled. */
typedef void queue_conn_down_cb(struct queue_conn *c, const char *why, void *arg);
/* reply NULL: the connection was lost, outcome unknown. */
typedef void queue_cmd_cb(struct queue_conn *c, redisReply *reply, void *arg);

struct queue_conn_opts {
    const struct qk_url *url; /* copied */
    const char *name;         /* for log lines ("relay", "run"); not copied: a literal */
    bool load_scripts;        /* SCRIPT LOAD every script of keys.h before ready */
    bool quiet;               /* connects and losses at debug level (short-lived connections) */
    unsigned stall_ms;        /* drop when replies are overdue this long; 0: never (a
                                 connection for blocking commands) */
    queue_conn_ready_cb *on_ready;
    queue_conn_down_cb *on_down; /* optional */
    void *arg;
};

/* Starts connecting from the loop (no callback runs before this returns). */
struct queue_conn *queue_conn_new(struct event_base *base, const struct queue_conn_opts *opts);
/* Closes; pending command callbacks run now, with NULL. Not from inside a callback of this
 * connection (defer it to the loop). Accepts NULL. */
void queue_conn_free(struct queue_conn *c);
bool queue_conn_is_ready(const struct queue_conn *c);
/* Drops the connection (pending callbacks get NULL, maybe after this returns) and reconnects
 * after the backoff. Safe inside callbacks. */
void queue_conn_reset(struct queue_conn *c, const char *why);
uint64_t queue_conn_reconnects(const struct queue_conn *c);
/* The last failure, "" when none; valid until the next call into this connection. */
const char *queue_conn_last_error(const struct queue_conn *c);

/* Send one command; 0, or -1 when the connection is not ready (cb then never runs). The
 * arguments are copied into the output buffer at once. */
int queue_conn_cmdv(struct queue_conn *c, queue_cmd_cb *cb, void *arg, int argc, const char **argv,
                    const size_t *lens);
/* As hiredis' redisAsyncCommand: data only through %s and %b (size_t length), never in fmt. */
int queue_conn_cmdf(struct queue_conn *c, queue_cmd_cb *cb, void *arg, const char *fmt, ...);
int queue_conn_vcmdf(struct queue_conn *c, queue_cmd_cb *cb, void *arg, const char *fmt,
                     va_list ap);
/* EVALSHA script nkeys args...; on NOSCRIPT the same call is sent again as EVAL. argv holds
 * the keys then the other arguments (argc in all); copied. 0 or -1 as queue_conn_cmdv. */
int queue_conn_eval(struct queue_conn *c, const struct qk_script *s, int nkeys, int argc,
                    const char **argv, const size_t *lens, queue_cmd_cb *cb, void *arg);

/* Writes what is buffered now instead of at the next loop turn, so that Redis starts on the
 * head of a long pipeline while the rest is being prepared. */
void queue_conn_flush(struct queue_conn *c);

/* Deep copy of a reply (malloc'd) for use after the callback; free with queue_reply_free. */
redisReply *queue_reply_dup(const redisReply *r);
void queue_reply_free(redisReply *r);
/* The reply as a NUL-terminated string when it is a bulk or status string, else NULL. */
const char *queue_reply_str(const redisReply *r);
/* In a flat name, value array (a hash, a stream entry's fields): the value of the first field
 * called `name` when it is a string, else NULL. */
const redisReply *queue_reply_field(const redisReply *flat, const char *name);
bool queue_reply_is_error(const redisReply *r);

#endif

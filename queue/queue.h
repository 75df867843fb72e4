/* queue: the gateway's side of Redis (hiredis async on the event loop): the relay that moves
 * outbox records into Redis Streams, the publication of services for workers, and the job
 * calls of the admin API. The only header other modules include from queue/. The worker agent
 * (floodgate-worker, queue/worker*.c) speaks the same protocol, described in queue/keys.h.
 *
 * Outbox records (written by notify/, read here) are flat lists of named string fields, in a
 * binary form the relay forwards without parsing or copying (no JSON on this path):
 *   "FR1" kind, then fields: [u32 little-endian name length][name][u32 LE value length][value]
 * kind 'j' (a job) has the fields, in any order: id (uuid), service, pool, bucket, key, event
 * (the S3 event message, JSON text), max_attempts, rev, created_ms (decimal ms since the
 * epoch). The relay adds {job: id, rec: the record's bytes} to the stream inv:{pool} and
 * indexes the job in jobs:{service}; a worker's first start of the job makes its record
 * job:{id} from those fields (queue/keys.h).
 * kind 'n' (a bucket notification) has id (uuid: one per delivery), target, body (the message
 * to deliver, JSON text) and created_ms; it is added to the stream ntf:{target} as {id, body,
 * created_ms, attempts "0"}. Kind 'N' (the compact form notify/ writes: id, target, bucket,
 * key, ev, created_ms, with the event's fields in `ev` rather than its message) is added as
 * {rec: the record's bytes} and expanded into 'n' when it is delivered
 * (queue_set_record_map): a third of the bytes in Redis, where a dead target's backlog waits,
 * and no message written for an event until it is sent.
 * A batch of records goes in one MULTI/EXEC that also sets relayed:{source}, the last id
 * Redis took from this outbox; the relay reads that mark on each connection and skips the
 * records at or below it, so a record relayed twice (a crash between Redis' reply and the
 * outbox removal) is enqueued once, with one key per outbox rather than one per event.
 * notify/ writes this form and queue/ reads it, neither including the other (on disk notify/
 * keeps compact records, kinds 'J' and 'N'; the store's outbox read expands 'J' into 'j'
 * through the map main installs, notify_outbox_map, and 'N' goes on as it is); both
 * sides' unit tests check the same example: kind 'n' with id "u1", target "t", body "{}",
 * created_ms "5" is "FR1n" 02000000 "id" 02000000 "u1" 06000000 "target" 01000000 "t" 04000000
 * "body" 02000000 "{}" 0a000000 "created_ms" 01000000 "5" (hex bytes for the lengths). Records that
 * do not parse, of an unknown kind or missing a field are logged and dropped from the outbox.
 *
 * Threading: everything on the loop thread. */
#ifndef FG_QUEUE_QUEUE_H
#define FG_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct event_base;
struct queue;

/* The `jobs:` section of the config file. */
struct queue_config {
    char *redis_url;         /* redis://[:password@]host:port[/db]; NULL: no Redis (events stay
                                in the outbox) */
    char *prefix;            /* key prefix; default "fg:" */
    unsigned job_ttl_s;      /* job records and logs are kept this long after a job ends;
                                default 7 days (`jobs.retention`) */
    uint64_t log_max_bytes;  /* stdout+stderr kept per job; default 1 MiB (`jobs.log_max`) */
    unsigned visibility_ms;  /* a claimed job whose worker stopped heartbeating is reclaimed
                                after this; default 30 s (`jobs.visibility_timeout`) */
    unsigned run_timeout_ms; /* POST /run waits this long at most; default 60 s */
    unsigned relay_batch;    /* records per relay round trip; default 256 */
};
/* Keys of the `jobs:` section (redis_url is the top-level `redis:`, set by main). */
extern const struct conf_key queue_config_keys[];
void queue_config_cleanup(struct queue_config *c);

/* The outbox the relay drains, wired by main to the store (s3api.h's s3_outbox_*). */
struct queue_outbox_rec {
    uint64_t id;
    const void *data;
    size_t len;
};
typedef void queue_outbox_read_cb(int err, const struct queue_outbox_rec *recs, size_t n,
                                  void *cb_arg);
struct queue_outbox {
    void (*read)(void *arg, uint64_t after_id, size_t max_n, size_t max_bytes,
                 queue_outbox_read_cb *cb, void *cb_arg);
    void (*remove)(void *arg, const uint64_t *ids, size_t n);
    uint64_t (*count)(void *arg);
    void *arg;
    /* s3_outbox_identity(): the outbox's name in relayed:{source}, and the first id handed out
     * since it was opened. On its first connection the relay drops a mark at or above
     * first_id (the data dir was restored from an older copy: its records were never seen). */
    char source[33];
    uint64_t first_id;
};

/* Starts connecting (and reconnecting, with capped exponential backoff from 100 ms to 5 s)
 * and relaying. The relay reads the outbox in id order, sends a batch as one transaction,
 * and removes those records once Redis answered it; a lost connection (or a NULL reply:
 * outcome unknown) re-sends from the first unremoved record after reconnecting, which the
 * dedupe makes harmless. `ob` is copied. NULL only on a bad URL. */
struct queue *queue_new(struct event_base *base, const struct queue_config *cfg,
                        const struct queue_outbox *ob, char *msg, size_t msg_cap);
/* The outbox has new records (s3_api_on_outbox). Cheap; call as often as wanted. */
void queue_kick(struct queue *q);
/* Stops timers and closes connections; pending callbacks are called with status 503. */
void queue_free(struct queue *q);

struct queue_stats {
    bool configured;     /* a Redis URL was given */
    bool connected;      /* the relay's connection is up */
    uint64_t relayed;    /* records moved to Redis since start */
    uint64_t backlog;    /* records in the outbox now */
    uint64_t reconnects; /* connection attempts after the first */
    char last_error[128];
};
void queue_get_stats(const struct queue *q, struct queue_stats *out);

/* ---- services, as workers read them ---- */
/* Writes svc:{name} = json (the service with its secrets and script_text) and adds the name
 * to `services`; repeated on every (re)connect for every service published, so Redis restarts
 * lose nothing. `json` copied. */
void queue_publish_service(struct queue *q, const char *name, const char *json);
void queue_unpublish_service(struct queue *q, const char *name);

/* ---- the admin API's calls; cb on the loop, exactly once ----
 * status: 200/201/204 done, 404 unknown job, 503 Redis unavailable, 504 timed out. The body
 * (JSON or text, as said) is valid during cb only; NULL when there is none. */
typedef void queue_reply_cb(int status, const char *body, size_t len, void *arg);

struct queue_job_spec {
    const char *service;
    const char *pool;
    unsigned max_attempts;
    const char *rev;
    const char *bucket; /* the input object, or NULL when the payload is the input */
    const char *key;
    const char *event_json; /* the event given to the script as $EVENT */
    const void *payload;    /* written to the input file when bucket is NULL */
    size_t payload_len;
};
/* POST /job/{service}: enqueues at once (no outbox: the caller learns the outcome). 201 with
 * {"job_id": "..."}. */
void queue_job_submit(struct queue *q, const struct queue_job_spec *spec, queue_reply_cb *cb,
                      void *arg);
/* POST /run/{service}: enqueues, waits for the job to end (run_timeout_ms), then answers 200
 * with the script's stdout (text) when it succeeded, 502 with {"job_id", "status",
 * "exit_code", "reason"} when it failed, 504 on timeout. */
void queue_job_run(struct queue *q, const struct queue_job_spec *spec, queue_reply_cb *cb,
                   void *arg);
/* GET /system/logs/{service}: 200 with {"<job id>": {"status", "creation_time",
 * "start_time", "finish_time", "attempts", "worker", "exit_code", "bucket", "key"}}, times as
 * ISO 8601 (OSCAR's JobInfo plus floodgate's fields). */
void queue_jobs_list(struct queue *q, const char *service, queue_reply_cb *cb, void *arg);
/* GET /system/logs/{service}/{job}: 200 with the job's log (text); 404 unknown. */
void queue_job_log(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                   void *arg);
/* GET /system/logs/{service}/{job}?record: 200 with the whole job record as JSON. */
void queue_job_get(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                   void *arg);
/* DELETE /system/logs/{service}/{job}: 204; 404 unknown. DELETE /system/logs/{service}
 * (job NULL): removes every job that ended, 204. */
void queue_job_delete(struct queue *q, const char *service, const char *job, queue_reply_cb *cb,
                      void *arg);
/* GET /system/info's live part: 200 with {"workers": [{"id", "pools", "host", "pid",
 * "concurrency", "running", "heartbeat_age_ms"}], "pools": {"<pool>": {"pending", "dead"}}}. */
void queue_info(struct queue *q, queue_reply_cb *cb, void *arg);

/* ---- push targets: deliveries of ntf:{target} to a sender ----
 *
 * For every target main registers, the queue reads ntf:{target} with its own connection and
 * the consumer group "deliver" (consumer = this gateway), keeps up to `concurrency` deliveries
 * in flight, and hands each entry to the sender. The sender answers once through `done`:
 * QUEUE_SENT -> XACK (and XDEL); QUEUE_RETRY -> XACK and a new entry with attempts + 1 due
 * after a capped exponential backoff with full jitter (base 500 ms, cap 60 s), kept in the
 * sorted set ntfdelay:{target} until due (P ntfdelay:{target} -> member = the entry's JSON);
 * QUEUE_FAIL (or attempts >= max_attempts, or older than max_age_s) -> the dead-letter stream
 * ntfdlq:{target} {id, body, created_ms, attempts, reason}. Entries pending in the group when
 * the gateway died are taken over at start (XAUTOCLAIM from 0). A slow or failing target only
 * holds its own window: other targets and uploads never wait for it.
 *
 * QUEUE_UNREACHABLE (the target could not be reached: not the message's fault) is a circuit
 * breaker, per target and per gateway: the message goes back to ntfdelay:{target} with its
 * attempts unchanged, due at the next probe, and the target is "down": no new entries are read
 * from ntf:{target}; after a probe interval (full jitter: random(0, min(probe cap, probe base
 * * 2^n)) after the nth unreachable probe in a row; 1 s doubling to 30 s by default) ONE entry,
 * the oldest in ntf:{target}, is sent as a probe. Any answer from the target (SENT, RETRY or
 * FAIL, of the probe or of a send still in flight) puts it "up" again with its full window and
 * is handled as above; UNREACHABLE keeps it down (a probe's doubles the interval) and puts the
 * message back the same way. While down, max_age_s still holds: an entry read for a probe or
 * answered UNREACHABLE that is older goes to the dead-letter stream with reason "target
 * unreachable since <ISO 8601 time>: <sender's reason>". */
enum queue_send_result { QUEUE_SENT, QUEUE_RETRY, QUEUE_FAIL, QUEUE_UNREACHABLE };
typedef void queue_send_done_fn(void *done_arg, enum queue_send_result res, const char *reason);
/* Sends one message; must call done(done_arg, ...) exactly once, later or at once, on the loop
 * thread. `body` is valid until done is called. */
typedef void queue_send_fn(void *arg, const char *event_id, const char *body, size_t len,
                           queue_send_done_fn *done, void *done_arg);

struct queue_target_policy {
    unsigned concurrency;     /* deliveries in flight; default 16 */
    unsigned max_attempts;    /* default 10 */
    unsigned max_age_s;       /* default 86400 */
    unsigned backoff_base_ms; /* the backoff before retry n is random(0, min(cap, base * 2^n));
                                 default 500 (0: the default; tests shrink it) */
    unsigned backoff_cap_ms;  /* default 60000 */
    unsigned probe_base_ms;   /* a down target's first probe interval bound; default 1000 */
    unsigned probe_cap_ms;    /* its longest; default 30000 */
};
/* Starts delivering ntf:{id} through `send`. Call after queue_new, at most once per id (a
 * second call is ignored); `id` (at most 63 bytes) and `policy` copied; policy NULL: defaults.
 * Nothing happens without Redis configured.
 *
 * Shutdown order (main): free the senders first, then queue_free. A sender being freed still
 * calls done exactly once for each send in flight (QUEUE_RETRY, reason "shutting down": the
 * queue then records the retry if Redis is reachable). The other order is safe too: queue_free
 * orphans the sends in flight, whose done, when it comes later (even after queue_free), only
 * frees the delivery; their entries stay pending in the group and are delivered again at the
 * next start. Either way done must come exactly once: one that never comes leaks a block. */
void queue_add_target(struct queue *q, const char *id, const struct queue_target_policy *policy,
                      queue_send_fn *send, void *send_arg);

/* The deliveries' map of the compact notification records ('N', see the top of this file)
 * the relay queues: 0 with the 'n' record in *out (malloc'd) and *out_len, anything else when
 * it does not expand (the entry is dead-lettered, the record kept whole as its body). main
 * installs notify_record_expand. Without one, 'N' records are dead-lettered. */
typedef int queue_record_map_fn(void *arg, const void *data, size_t len, void **out,
                                size_t *out_len);
void queue_set_record_map(struct queue *q, queue_record_map_fn *fn, void *arg);

struct queue_target_stats {
    char id[64];
    uint64_t delivered, retried, dead_lettered; /* since start */
    uint64_t backlog; /* entries in ntf:{id} not yet delivered + ntfdelay:{id} (last poll) */
    uint64_t dlq;     /* entries in ntfdlq:{id} (last poll) */
    uint64_t in_flight;
    bool up;         /* false while the circuit breaker holds the target's messages back */
    uint64_t probes; /* probes sent while down, since start */
    /* delivery latency (created_ms -> sent), a Prometheus histogram: cumulative counts of
     * deliveries at or under each bound, plus the sum */
    uint64_t latency_le[8]; /* bounds: 5, 10, 25, 50, 100, 250, 1000, 5000 ms */
    uint64_t latency_count;
    double latency_sum_s;
};
#define QUEUE_LATENCY_BOUNDS_MS                                                                    \
    {                                                                                              \
        5, 10, 25, 50, 100, 250, 1000, 5000                                                        \
    }
/* The targets' counters, in registration order; returns how many (at most cap). */
size_t queue_target_stats(const struct queue *q, struct queue_target_stats *out, size_t cap);

/* Admin: GET /system/notifications/{target}/dlq -> 200 JSON array of {id, entry, created_ms,
 * attempts, reason, body} (at most 1000; body null when it is not UTF-8 text), plus
 * record_base64 for an outbox record that could not be expanded (kept whole, body null);
 * POST .../dlq/replay -> moves every dead-lettered entry back to ntf:{target} with attempts 0,
 * 200 {"replayed": n}. 404 unknown target. */
void queue_target_dlq_list(struct queue *q, const char *target, queue_reply_cb *cb, void *arg);
void queue_target_dlq_replay(struct queue *q, const char *target, queue_reply_cb *cb, void *arg);

#endif

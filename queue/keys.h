/* The Redis protocol shared by the gateway's relay (queue/relay*.c, queue/jobs*.c) and
 * floodgate-worker (queue/worker*.c). Private to queue/. Every key starts with the configured
 * prefix P (default "fg:"); the Lua scripts live in keys.c and are sent with EVALSHA,
 * falling back to EVAL on NOSCRIPT.
 *
 *   P inv:{pool}      stream of invocations, entries {job: id} (a retry, an API job) or
 *                     {job: id, rec: the outbox record} (a relayed job: queue.h's binary
 *                     record of kind 'j', whose fields start makes the record of); consumer
 *                     group "workers";
 *                     an entry is deleted (XDEL) when it is acked, so the stream holds only
 *                     what is waiting or running
 *                     (XGROUP CREATE ... 0 MKSTREAM by whoever comes first; BUSYGROUP is fine)
 *   P job:{id}        hash, the job record: id service pool bucket key event rev max_attempts
 *                     created_ms | status attempts worker started_ms finished_ms exit_code reason
 *                     | sync ("1": a POST /run waits on done:{id}) | payload ("1": input in
 *                     in:{id}); status: pending -> running -> succeeded | failed (will retry) |
 *                     dead (gave up); EXPIREs job_ttl after it ends. A relayed job has none
 *                     until a worker starts it (its entry carries the fields): a job in
 *                     jobs:{service} without a record, created less than job_ttl ago, is
 *                     pending. A DELETE of a job that has not ended leaves a tombstone
 *                     {status "deleted", service} for job_ttl, which start and finish obey
 *   P jobs:{service}  sorted set of the service's job ids, scored by created_ms
 *   P log:{id}        string: stdout and stderr interleaved, capped at log_max_bytes (the first
 *                     half and the last half are kept around a "[... N bytes cut ...]" line)
 *   P out:{id}        string: stdout alone, capped, for POST /run; EXPIRE 300 s
 *   P in:{id}         string: the payload of an API job without an S3 input
 *   P relayed:{source} string: the id of the last record of outbox `source` (a gateway's
 *                     data dir) enqueued, set in the same MULTI/EXEC as the records; the relay
 *                     reads it on each connection and skips the records at or below it
 *   P delay           sorted set of job ids due for a retry, scored by due time (ms)
 *   P dlq:{service}   stream of dead jobs: {job, reason, attempts, log_tail, time_ms}
 *   P workers:{pool}  sorted set of worker ids scored by their last heartbeat (ms)
 *   P worker:{id}     hash: host pid pools concurrency running started_ms done failed;
 *                     EXPIRE 3 heartbeats
 *   P svc:{name}      string: the service's JSON (notify_service_to_json with secrets, plus
 *                     "script_text" and "rev"), written by the gateway
 *   P services        set of service names published
 *   P done:{id}       list: the worker RPUSHes the final status ("succeeded" or "dead") when
 *                     the record has sync = "1"; EXPIRE 300 s
 *   P config          hash written by the gateway at connect: job_ttl_s, log_max_bytes,
 *                     visibility_ms (workers read it at start and every minute)
 *
 * Push targets (the gateway's deliveries of bucket notifications, queue/push*.c):
 *   P ntf:{target}    stream of messages to deliver: {rec: the outbox record} as the relay
 *                     adds it (kind 'N', the event's fields, expanded into the message when
 *                     it is sent; or 'n', with the message), or {id, body, created_ms,
 *                     attempts} (a retry, a replay, an entry of an older gateway);
 *                     consumer group "deliver", one consumer per gateway ("gw-<hostname>");
 *                     an entry is XACKed and XDELed once it was sent, retried or dead-lettered
 *   P ntfdelay:{target} sorted set of retries scored by their due time (ms); member = the
 *                     entry as JSON {"id", "body", "created_ms", "attempts"} (all strings;
 *                     attempts already counts the failed one; a message held for an
 *                     unreachable target keeps its count, due at the next probe); moved back
 *                     to ntf:{target} when due by ntf_promote
 *   P ntfdlq:{target} stream of dead letters: {id, body, created_ms, attempts, reason}, with
 *                     rec in place of body for a record that could not be expanded
 *
 * A worker claims with XREADGROUP GROUP workers <worker id> COUNT 1 BLOCK ... STREAMS
 * inv:{pool}... >, starts the job with the start script (which refuses a job already ended or
 * deleted: the worker then only XACKs), keeps a running job's entry fresh with XCLAIM ... 0
 * JUSTID every visibility/3, and ends it with the finish script. Entries idle longer than the
 * visibility timeout (their worker died) are taken over with XAUTOCLAIM by any worker.
 *
 * The relay sends a batch of outbox records as one transaction, without scripts:
 *   MULTI
 *   XADD inv:{pool} * job id rec <the record's bytes>      (a job)
 *   XADD ntf:{target} * rec <the record's bytes>           (a notification)
 *   ...                                                     (one per record, in order)
 *   ZADD jobs:{service} created_ms id created_ms id ...     (one per run of a service's jobs)
 *   SET relayed:{source} <the batch's last record id>
 *   EXEC
 * so the mark says exactly which records Redis holds. */
#ifndef FG_QUEUE_KEYS_H
#define FG_QUEUE_KEYS_H

#include <stddef.h>

#define QK_GROUP      "workers"
#define QK_NTF_GROUP  "deliver"
#define QK_DONE_TTL_S 300

/* The scripts (text) and their SHA-1 (hex), computed once. */
struct qk_script {
    const char *name;
    const char *text;
    char sha[41];
};
/* enqueue: KEYS job:{id} inv:{pool} jobs:{service}; ARGV id created_ms field value ...
 *          -> 1: the record (status pending, attempts 0, the fields), its index entry and an
 *          entry {job: id}. For API jobs; the relay writes plain commands (below). */
extern struct qk_script qk_enqueue;
/* start:   KEYS job:{id} inv:{pool}; ARGV worker now_ms entry_id -> nil when the job is gone
 *          (no record and an entry without its fields, or a tombstone), "ended" when it
 *          already succeeded or is dead, else the record (HGETALL) after setting status
 *          running, worker, started_ms and incrementing attempts; a job without a record gets
 *          one from the outbox record in its entry first (a relayed job's first start); an
 *          error reply when that record does not parse */
extern struct qk_script qk_start;
/* finish:  KEYS job:{id} inv:{pool} log:{id} delay dlq:{service} done:{id} out:{id} in:{id};
 *          ARGV id entry_id status(succeeded|failed|dead) now_ms exit_code reason log
 *          job_ttl_s retry_due_ms stdout log_tail
 *          -> sets the record, stores the log (and stdout when sync), XACKs and XDELs the entry,
 * and for failed adds the id to `delay`, for dead adds a dlq entry; RPUSHes done:{id} when the
 * record has sync = "1" and the status is final; a final status also deletes in:{id} and sets the
 * record's EXPIRE. The entry is XACKed even when the record is gone (0 then). */
extern struct qk_script qk_finish;
/* promote: KEYS delay; ARGV prefix now_ms max -> moves due retries back to inv:{pool}
 *          (status pending), returns how many */
extern struct qk_script qk_promote;

/* relay_check: KEYS relayed:{source}; ARGV first_id -> {mark, 0}: the mark (0 when none),
 *          the last record of this outbox that Redis took; or {0, mark} when the mark was at
 *          or above first_id (ids this outbox had not handed out yet: a data dir restored from
 *          an older copy, whose records must not be taken for repeats) and was deleted.
 *          first_id 0: no such check (a reconnect of the same run) */
extern struct qk_script qk_relay_check;
/* ntf_retry: KEYS ntf:{t} ntfdelay:{t}; ARGV entry_id due_ms id body created_ms attempts
 *          -> XACK + XDEL the entry and add it to ntfdelay (attempts as given: the caller adds
 *          one); 0 (nothing done) when the entry was no longer pending in the group */
extern struct qk_script qk_ntf_retry;
/* ntf_dead: KEYS ntf:{t} ntfdlq:{t}; ARGV entry_id id bytes created_ms attempts reason field
 *          -> XACK + XDEL the entry and add it to ntfdlq, the bytes as `field` ("body": the
 *          message; "rec": an outbox record that could not be expanded, kept whole); 0 when
 *          the entry was no longer pending */
extern struct qk_script qk_ntf_dead;
/* ntf_promote: KEYS ntfdelay:{t} ntf:{t}; ARGV now_ms max -> moves at most max due retries
 *          back to the stream; {moved, earliest due time left or "-1"} */
extern struct qk_script qk_ntf_promote;
/* ntf_replay: KEYS ntfdlq:{t} ntf:{t}; ARGV max -> moves the first max dead letters back to
 *          the stream with attempts "0" ({rec} for a kept record), deleting them from ntfdlq;
 *          returns how many */
extern struct qk_script qk_ntf_replay;

/* Every script above, for SCRIPT LOAD. */
extern struct qk_script *const qk_scripts[];
extern const size_t qk_n_scripts;

/* Computes the SHA-1s (idempotent, thread-safe). */
void qk_init(void);

/* Writes prefix + parts into buf ("fg:" "job:" id); returns buf. Truncates to cap. */
char *qk_key(char *buf, size_t cap, const char *prefix, const char *kind, const char *name);

/* Parses redis://[user:password@]host[:port][/db] (also "host:port"). 0 or -1. */
struct qk_url {
    char host[256];
    int port;
    char password[128];
    int db;
};
int qk_parse_url(const char *url, struct qk_url *out);

#endif

/* floodgate-worker: the shared state of the worker agent and the calls between its files.
 * Private to queue/worker*.c. The Redis protocol it speaks is queue/keys.h's.
 *
 * Threads: one slot thread per unit of concurrency (each with its own Redis connection and
 * curl handle: it claims an invocation, runs it, finishes it), one maintenance thread
 * (heartbeat, due retries, keeping running entries claimed, reading P config), and main,
 * which waits for signals. Slots and maintenance share only `struct worker` (atomics, each
 * slot's `held` list under the slot's mutex, and the per-service counters of worker_limits.c
 * under theirs). */
#ifndef FG_QUEUE_WORKER_H
#define FG_QUEUE_WORKER_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "conf/conf.h"
#include "gateway/log.h"
#include "queue/keys.h"

/* ---- configuration (worker_main.c) ------------------------------------------------------- */

/* The config file (--config) has the same keys as the long options. */
struct worker_config {
    char *redis;    /* redis://host:port[/db] */
    char *endpoint; /* the gateway's S3 endpoint, http(s)://host[:port] */
    char **pools;   /* default {"default"} */
    size_t n_pools;
    unsigned concurrency;   /* 0: the number of CPUs */
    char *region;           /* SigV4 region; default us-east-1 */
    char *prefix;           /* key prefix; default "fg:" */
    char *work_dir;         /* temp dirs go here; NULL: $TMPDIR or /tmp */
    char *access_key;       /* FLOODGATE_ACCESS_KEY overrides */
    char *secret_key;       /* FLOODGATE_SECRET_KEY overrides */
    unsigned visibility_ms; /* 0: P config's visibility_ms, else 30 s */
    char *id;               /* default hostname-pid */
    char *log_level;        /* error, warn, info, debug */
};
extern const struct conf_key worker_config_keys[];

#define WORKER_MAX_HELD 8 /* claimed entries one slot may hold at once */

/* What worker_peek() found (worker_claim.c). */
enum worker_peek_result { WORKER_PEEK_OK, WORKER_PEEK_GONE, WORKER_PEEK_DOWN };

/* An invocation claimed from a stream. */
struct worker_entry {
    char pool[128];
    char entry_id[64]; /* the stream entry's id */
    char job_id[128];
    bool peeked;                  /* the claim read the job's service too: */
    enum worker_peek_result peek; /* OK or GONE */
    char service[128];            /* when OK */
    char rev[64];
};

/* ---- Redis connections (worker_redis.c) ---------------------------------------------------- */

struct worker;

/* One synchronous connection that reconnects by itself, with capped backoff (100 ms to 5 s).
 * Each (re)connect authenticates, selects the db and creates the pools' consumer groups. */
struct worker_redis {
    redisContext *c;
    struct worker *w;
    const char *name; /* for the log: "slot 3", "maintenance" */
    bool loud;        /* log losses and returns at warn/info (else debug) */
    bool was_up;      /* last state logged */
    unsigned backoff_ms;
    uint64_t next_try_ms;
};
void worker_redis_init(struct worker_redis *r, struct worker *w, const char *name, bool loud);
void worker_redis_cleanup(struct worker_redis *r);
/* Connects when needed and due. false: Redis is unreachable now (try again later). */
bool worker_redis_up(struct worker_redis *r);
/* One command; NULL when the connection failed (it is dropped and re-made later). Error
 * replies are returned as such. Free with freeReplyObject(). */
redisReply *worker_redis_cmd(struct worker_redis *r, int argc, const char **argv,
                             const size_t *lens);
/* A script of keys.h: EVALSHA, then EVAL on NOSCRIPT. argv: the keys then the arguments. */
redisReply *worker_redis_script(struct worker_redis *r, struct qk_script *s, int n_keys, int argc,
                                const char **argv, const size_t *lens);
/* Builds P + kind + name into buf. */
char *worker_key(const struct worker *w, char *buf, size_t cap, const char *kind, const char *name);

/* ---- services (worker_service.c) ------------------------------------------------------------ */

/* How much of its own the worker writes into a job's log (the service's log_level):
 *   ERROR, WARNING: only why an attempt failed;
 *   INFO (default): also the attempt, the input (key, bytes), each output (bucket/key, bytes),
 *                   the exit status and the run time;
 *   DEBUG:          also the names (never the values) of the script's environment variables
 *                   and the download, run and upload times. */
enum worker_log_level { WORKER_LOG_ERROR, WORKER_LOG_WARNING, WORKER_LOG_INFO, WORKER_LOG_DEBUG };
/* OSCAR's values DEBUG, INFO, WARNING, ERROR (any case; also WARN and CRITICAL); INFO for NULL,
 * "" and anything else. */
enum worker_log_level worker_log_level_parse(const char *s);

struct worker_output {
    char *provider; /* NULL: this gateway */
    char *bucket;
    char *key_prefix; /* "" or "dir/sub/" (from path "bucket/dir/sub") */
    char **prefix;    /* filters on the file's path relative to TMP_OUTPUT_DIR */
    size_t n_prefix;
    char **suffix;
    size_t n_suffix;
};

struct worker_service {
    char *name;
    char *rev;
    char *script_text;
    struct worker_output *outputs;
    size_t n_outputs;
    char **env_names; /* environment.variables, then environment.secrets */
    char **env_values;
    size_t n_env;
    unsigned timeout_s;
    unsigned concurrency; /* most jobs of this service at once in this worker; 0: no limit */
    enum worker_log_level log_level;
    unsigned refs; /* under the cache's mutex */
};

/* Parses the JSON of P svc:{name}. NULL with a message on a bad document. */
struct worker_service *worker_service_parse(const char *json, size_t len, char *msg,
                                            size_t msg_cap);
void worker_service_free(struct worker_service *svc);
/* True when the output's prefix[]/suffix[] filters let `rel_path` through. */
bool worker_output_matches(const struct worker_output *o, const char *rel_path);
/* True for the providers that mean this gateway: none, "minio", "minio.default", "floodgate",
 * "floodgate.default", "default". */
bool worker_output_is_local(const struct worker_output *o);

struct worker_services; /* the cache, by name and rev; thread-safe */
struct worker_services *worker_services_new(void);
void worker_services_free(struct worker_services *cache);
enum worker_svc_result { WORKER_SVC_OK, WORKER_SVC_UNKNOWN, WORKER_SVC_ERROR };
/* The service `name` as of `rev` (the job's; "" any): the cached one when its rev matches,
 * else read from P svc:{name}. On OK *out holds a reference to release. ERROR: Redis down or
 * a bad document (msg says which). */
enum worker_svc_result worker_services_get(struct worker_services *cache, struct worker_redis *r,
                                           const char *name, const char *rev,
                                           struct worker_service **out, char *msg, size_t msg_cap);
void worker_services_release(struct worker_services *cache, struct worker_service *svc);

/* ---- per-service concurrency (worker_limits.c) ------------------------------------------------
 * A service's `concurrency` caps how many of its jobs one worker runs at once. Each slot, once
 * it has claimed an entry, reads the job's service (HMGET, before qk_start) and takes a unit
 * of that service's counter before starting it; the unit is given back after qk_finish.
 *
 * A slot that finds the service at its limit does not start the job (no qk_start: the record
 * stays pending and its attempts unchanged). It waits a little (WORKER_LIMIT_WAIT_MS) for a
 * unit, the entry staying held so the maintenance thread keeps it claimed; slots already
 * waiting are served before newcomers. When no unit comes in that time, or the worker is
 * stopping, the slot hands the job back: a new entry for it at the end of its pool's stream
 * and an XACK of the claimed one, in one script (worker_hand_back), and the slot claims
 * something else. So:
 *  - no deadlock: a slot waits holding no unit, and only for a bounded time; units are held
 *    only by jobs that run, which end (the service's timeout);
 *  - no starvation of other services: a full service blocks a slot for at most the wait,
 *    after which the slot serves whatever comes next in the stream;
 *  - a job handed back is run by whichever slot or worker with room reads it next, in stream
 *    order; it is never lost (the new entry and the XACK are atomic) nor doubled (the script
 *    acts only on an entry still pending under this worker). */
#define WORKER_LIMIT_WAIT_MS 1000

struct worker_limits; /* counters of running jobs by service; thread-safe */
struct worker_limits *worker_limits_new(void);
void worker_limits_free(struct worker_limits *l);
/* Takes a unit of `service` whose limit is `max` (0: no limit, always taken; counted anyway),
 * waiting up to wait_ms for one while others hold them all. Waiting slots go before newcomers
 * (a call finding others waiting waits too). Wakes within 50 ms when *stop becomes non-zero
 * (NULL: never). true: taken, give it back with worker_limits_release(); false: none in time,
 * or stopped. */
bool worker_limits_acquire(struct worker_limits *l, const char *service, unsigned max,
                           unsigned wait_ms, const atomic_int *stop);
void worker_limits_release(struct worker_limits *l, const char *service);
/* The units of `service` taken now (for tests and logs). */
unsigned worker_limits_running(struct worker_limits *l, const char *service);

/* ---- S3 (worker_s3.c) ---------------------------------------------------------------------- */

struct worker_s3 {
    char base_url[320]; /* "http://host:port", no trailing slash */
    char host[300];     /* the Host header, as signed */
    const char *access_key;
    const char *secret_key;
    const char *region;
};
/* Parses the endpoint. 0, or -1 with a message. */
int worker_s3_init(struct worker_s3 *s3, const char *endpoint, char *msg, size_t msg_cap);
enum worker_s3_result { WORKER_S3_OK, WORKER_S3_NOT_FOUND, WORKER_S3_FAILED };
/* GET /bucket/key into the file at `path` (created or truncated). A transfer stops when
 * *cancel becomes non-zero. */
enum worker_s3_result worker_s3_get(CURL *c, const struct worker_s3 *s3, const char *bucket,
                                    const char *key, const char *path, const atomic_int *cancel,
                                    char *msg, size_t msg_cap);
/* PUT /bucket/key streaming the file at `path`. */
enum worker_s3_result worker_s3_put(CURL *c, const struct worker_s3 *s3, const char *bucket,
                                    const char *key, const char *path, const atomic_int *cancel,
                                    char *msg, size_t msg_cap);

/* ---- the worker ---------------------------------------------------------------------------- */

struct worker_slot {
    struct worker *w;
    unsigned index;
    pthread_t thread;
    char name[32];
    struct worker_redis redis;
    CURL *curl;
    uint64_t rng;
    uint64_t last_autoclaim_ms;
    char (*autoclaim_cursor)[64];               /* per pool */
    struct worker_entry queue[WORKER_MAX_HELD]; /* claimed, not yet run */
    size_t n_queue;
    pthread_mutex_t mu;                        /* guards held[] and n_held */
    struct worker_entry held[WORKER_MAX_HELD]; /* claimed entries the maintenance thread
                                                  keeps fresh with XCLAIM */
    size_t n_held;
    atomic_bool running;
};

struct worker {
    struct worker_config cfg;
    char id[160];
    char host[128];
    char pools_csv[512];
    char path_env[1024]; /* PATH given to scripts */
    unsigned n_slots;
    uint64_t started_ms;
    struct worker_s3 s3;
    struct worker_services *services;
    struct worker_limits *limits;
    struct worker_slot *slots;
    atomic_int stopping; /* first signal: claim nothing more */
    atomic_int hard;     /* second signal: kill running jobs, give up finishing */
    atomic_uint_fast64_t job_ttl_s;
    atomic_uint_fast64_t log_max_bytes;
    atomic_uint_fast64_t visibility_ms;
    atomic_uint_fast64_t n_done;
    atomic_uint_fast64_t n_failed;
};

extern struct log_ctx worker_log;

uint64_t worker_now_ms(void); /* wall clock, ms since the epoch */
/* Sleeps up to ms, waking early (within 50 ms) when the worker is stopping (hard: only on
 * the second signal). */
void worker_sleep_ms(struct worker *w, unsigned ms, bool hard);

/* ---- claiming and finishing (worker_claim.c) ------------------------------------------------ */

/* Takes the next invocation for this slot into *out: a queued one, an entry idle past the
 * visibility timeout (XAUTOCLAIM, at most every second), or a new one (XREADGROUP, blocking up
 * to 1 s). 1: got one (held), 0: none now, -1: Redis down. */
int worker_claim_next(struct worker_slot *s, struct worker_entry *out);
/* Forgets a held entry (after its finish or ack). */
void worker_unhold(struct worker_slot *s, const struct worker_entry *e);
/* XACKs an entry whose job is gone or already ended. */
void worker_ack(struct worker_slot *s, const struct worker_entry *e);
/* Reads the service and rev of a claimed entry's job (HMGET, nothing changed) into the
 * buffers; no round trip when the claim read them already (e->peeked). OK; GONE when the
 * record or its service field is missing (worker_start then decides); DOWN when Redis could
 * not be reached. */
enum worker_peek_result worker_peek(struct worker_slot *s, const struct worker_entry *e,
                                    char *service, size_t service_cap, char *rev, size_t rev_cap);
/* Gives a claimed, never started entry back to its pool: in one script, when the entry is
 * still pending under this worker, XADDs a new entry for the job at the stream's end and
 * XACKs this one. Forgets the entry either way. 0, or -1 when Redis could not be reached (it
 * then stays pending under our name and is reclaimed after the visibility timeout). */
int worker_hand_back(struct worker_slot *s, const struct worker_entry *e);

/* The job's fields from qk_start's HGETALL reply (strings owned). */
struct worker_job {
    char *id, *service, *pool, *bucket, *key, *event, *rev;
    unsigned max_attempts, attempts;
    uint64_t created_ms;
    bool payload, sync;
};
void worker_job_cleanup(struct worker_job *job);

enum worker_start_result { WORKER_START_OK, WORKER_START_SKIP, WORKER_START_DOWN };
/* Runs qk_start: OK with `job` filled; SKIP when the job is gone or ended (the entry was
 * acked); DOWN when Redis could not be reached (the entry stays held, and is retried). */
enum worker_start_result worker_start(struct worker_slot *s, const struct worker_entry *e,
                                      struct worker_job *job);

/* How an attempt ended, for qk_finish. */
struct worker_outcome {
    const char *status; /* "succeeded", "failed" or "dead" */
    char exit_code[16]; /* "" when the script did not run to an exit */
    char reason[256];
    char *log; /* owned by the caller */
    size_t log_len;
    char *out;
    size_t out_len;
    uint64_t retry_due_ms; /* failed only */
};
/* Runs qk_finish, retrying until Redis answers (or the worker hard-stops). 0 or -1. */
int worker_finish(struct worker_slot *s, const struct worker_entry *e, const struct worker_job *job,
                  const struct worker_outcome *o);

/* Maintenance, on its own connection. */
void worker_heartbeat(struct worker *w, struct worker_redis *r);
void worker_heartbeat_remove(struct worker *w, struct worker_redis *r);
void worker_promote(struct worker *w, struct worker_redis *r);
void worker_refresh_held(struct worker *w, struct worker_redis *r);
void worker_read_config(struct worker *w, struct worker_redis *r);

/* ---- running one job (worker_job.c) ------------------------------------------------------- */

/* Takes a unit of the job's service's concurrency (or hands the job back, worker.h), then
 * starts, runs and finishes the claimed invocation. */
void worker_job_handle(struct worker_slot *s, const struct worker_entry *e);

#endif

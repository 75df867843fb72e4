/* notify: S3 event records (AWS JSON), services (OSCAR's FDL fields plus floodgate's), the
 * matching of committed mutations against service inputs, and the outbox records that turn
 * a match into an invocation. The only header other modules include from notify/.
 *
 * It also holds the notification targets (webhooks, Redis) of bucket notifications: their
 * config, their ARNs, and the senders that deliver one message to one target.
 *
 * It knows neither the store's internals nor the job queue: the store calls
 * notify_event_hook() inside its commit transaction (through the s3api event hook, wired by
 * main), the records it writes follow the outbox record format that queue/queue.h documents,
 * and main hands the senders to queue's push deliveries. */
#ifndef FG_NOTIFY_NOTIFY_H
#define FG_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct s3_event;
struct s3_outbox_txn;

/* ---- services ---------------------------------------------------------------------------- */

/* An input or an output of a service (OSCAR's StorageIOConfig). */
struct notify_io {
    char *storage_provider; /* "minio", "minio.default", "floodgate", ...; NULL: this gateway */
    char *path;             /* "bucket" or "bucket/prefix" (required) */
    char **prefix;          /* key filters (input: the key after path's prefix; output: the
                               file's path relative to TMP_OUTPUT_DIR); any one must match */
    size_t n_prefix;
    char **suffix;
    size_t n_suffix;
};

struct notify_service {
    char *name;        /* required; DNS-label-like: [a-z0-9-]{1,63}, not starting with '-' */
    char *script;      /* as written: a file path (config: one line, relative to the config
                          file's directory) or the script itself (several lines, or any API
                          value) */
    char *script_text; /* the script to run (the file's content, or `script`); set by
                          notify_service_resolve() */
    char *cluster_id;  /* OSCAR: the cluster an FDL file names (the key of its entry in
                          functions.oscar, else the field); informational, not in the JSON */
    char *image;       /* OSCAR fields kept for compatibility; informational only */
    char *memory;
    char *cpu;
    char *log_level;
    struct notify_io *input;
    size_t n_input;
    struct notify_io *output;
    size_t n_output;
    struct {
        struct conf_kv *variables;
        size_t n_variables;
        struct conf_kv *secrets;
        size_t n_secrets;
    } environment;
    char *pool;            /* default "default" */
    unsigned timeout_s;    /* script wall-clock limit; default 300 */
    unsigned max_attempts; /* runs before the dead-letter stream; default 3, 1..100 */
    unsigned concurrency;  /* most jobs of this service running at once per worker; 0: no
                              limit beyond the worker's own */
    /* OSCAR FDL fields floodgate accepts but does not use (alpine, vo, labels, expose,
     * replicas, ...): conf/ writes each over the previous one; nothing reads them, they are
     * not in the JSON or the rev; freed with the service. */
    struct {
        char *value;
        char **list;
        size_t n_list;
        struct conf_kv *map;
        size_t n_map;
        void *maps; /* lists of mappings (replicas, federation.members) */
        size_t n_maps;
    } ignored;
};

/* The conf/ table of one service (FDL field names). A config file lists services under
 * `services:` (a CONF_LIST of this table) and may hold an OSCAR FDL file's keys as well
 * (notify_fdl_keys). */
extern const struct conf_key notify_service_keys[];

/* The top level of an OSCAR FDL file, for a config table to include (CONF_INCLUDE) so that an
 * FDL file loads unchanged:
 *   functions: {oscar: [{<cluster-id>: {service}}, ...]}  -> services, in document order;
 *              each service's cluster_id is its key (an item may hold several keys)
 *   storage_providers: {...}  must be a mapping; not read: this gateway is the storage, and
 *              input/output paths name its buckets whatever their storage_provider
 *   clusters: {...}           must be a mapping; not read (other OSCAR clusters)
 * Other entries of `functions:` (SCAR's `aws`) are unknown keys. Scripts are not read here:
 * the caller runs notify_service_resolve() on each service, with the FDL file's directory. */
struct notify_fdl {
    struct notify_service *services; /* functions.oscar */
    size_t n_services;
};
extern const struct conf_key notify_fdl_keys[];

/* Reads the script file when `script` names one (relative to `base_dir`, NULL: the current
 * directory), fills script_text, and checks the service as a whole (name syntax, at least one
 * input path with a bucket). 0, or -1 with a message. */
int notify_service_resolve(struct notify_service *svc, const char *base_dir, char *msg,
                           size_t msg_cap);
void notify_service_free(struct notify_service *svc); /* frees the fields, not svc */

/* A service from a JSON or YAML document (the API body; OSCAR field names, `script` being the
 * script itself). 0, or -1 with `err` (line of the offending field) and `out` holding nothing
 * (freeing it again is harmless). */
int notify_service_parse(const char *doc, size_t len, struct notify_service *out,
                         struct conf_error *err);
/* The JSON of a service (OSCAR field names plus floodgate's; secrets' values replaced by
 * "********" unless with_secrets), malloc'd, NUL-terminated. */
char *notify_service_to_json(const struct notify_service *svc, bool with_secrets);
/* A short content hash of a service (hex, 16 digits): changes whenever any field does. */
void notify_service_rev(const struct notify_service *svc, char out[17]);

/* ---- the registry: the services in force -------------------------------------------------- */
/* Thread-safe: the store's pool threads match against it while the loop changes it. Services
 * from the config file are fixed for the process' life; those defined over the API are kept in
 * `state_path` (JSON, replaced atomically with fsync) and reloaded at start. */
struct notify_registry;

struct notify_registry *notify_registry_new(const char *state_path, char *msg, size_t msg_cap);
void notify_registry_free(struct notify_registry *reg);
/* Adds the config file's services (taken over: the array and its elements; `svcs` is freed).
 * -1 with a message on a duplicate name. */
int notify_registry_add_config(struct notify_registry *reg, struct notify_service *svcs, size_t n,
                               char *msg, size_t msg_cap);

enum notify_put_result {
    NOTIFY_CREATED,
    NOTIFY_UPDATED,
    NOTIFY_EXISTS,    /* create of a name in use */
    NOTIFY_NOT_FOUND, /* update or delete of an unknown name */
    NOTIFY_READ_ONLY, /* defined in the config file */
    NOTIFY_IO_ERROR,  /* the state file could not be written; nothing changed */
};
/* Create (`update` false) or replace; `svc` is taken over whatever the result. */
enum notify_put_result notify_registry_put(struct notify_registry *reg, struct notify_service *svc,
                                           bool update);
/* NOTIFY_UPDATED when the service was removed. */
enum notify_put_result notify_registry_delete(struct notify_registry *reg, const char *name);
/* JSON of one service (NULL: unknown) or of all as an array, malloc'd. */
char *notify_registry_get_json(struct notify_registry *reg, const char *name, bool with_secrets);
char *notify_registry_list_json(struct notify_registry *reg, bool with_secrets);
size_t notify_registry_count(struct notify_registry *reg);
/* Calls fn for every service (under the registry's read lock: fn must not call back into the
 * registry). */
void notify_registry_each(struct notify_registry *reg,
                          void (*fn)(const struct notify_service *svc, void *arg), void *arg);
/* The pool, max_attempts and rev of a service; false when unknown. */
bool notify_registry_lookup(struct notify_registry *reg, const char *name, char *pool,
                            size_t pool_cap, unsigned *max_attempts, char rev[17]);

/* ---- events and invocations ---------------------------------------------------------------- */

/* The AWS S3 event message of one event: {"Records":[{eventVersion "2.1", eventSource
 * "aws:s3", awsRegion, eventTime (ISO 8601 with ms), eventName ("ObjectCreated:Put", ...,
 * without the "s3:" prefix, as AWS sends it), userIdentity, requestParameters, responseElements
 * (x-amz-request-id, x-amz-id-2), s3 {s3SchemaVersion, configurationId, bucket {name,
 * ownerIdentity, arn}, object {key (URL-encoded as AWS does), size, eTag, sequencer}}}]}, plus
 * MinIO's top-level "EventName" ("s3:ObjectCreated:Put") and "Key" ("bucket/key").
 * `config_id` names the matching service or notification ("" none). For an S3_EV_TEST, AWS's
 * flat s3:TestEvent message instead (see notify_event_hook). malloc'd, NUL-terminated. */
char *notify_event_json(const struct s3_event *ev, const char *region, const char *config_id);

/* The s3api event hook (s3_event_hook_fn; `arg` is a struct notify_hook): for every
 * ObjectCreated event, one invocation record per service with an input that matches; for every
 * event of a bucket with a notification configuration (ev->notif), one notification record
 * per rule whose events and filters match, to the rule's target (a key matches a rule when it
 * starts with the prefix and ends with the suffix, both compared with the raw key); for an
 * S3_EV_TEST, one s3:TestEvent record per distinct target of the configuration. All added to
 * the outbox (queue/queue.h, "outbox records"). The message delivered is the AWS event
 * message with configurationId = the rule's Id, plus MinIO's top-level "EventName" and "Key";
 * the test message is AWS's flat {"Service", "Event": "s3:TestEvent", "Time", "Bucket",
 * "RequestId", "HostId"}. Decoded configurations are cached (by their bytes), so a bucket's
 * configuration is not decoded again for every event. */
struct notify_hook {
    struct notify_registry *reg;
    const char *region;
};
void notify_event_hook(void *arg, const struct s3_event *ev, struct s3_outbox_txn *tx);
/* The hook writes compact records (kind 'J' and 'N': the event's fields, not its message; see
 * compact.c), which are expanded when the outbox is read: this is s3api's outbox map
 * (s3_outbox_map_fn; `arg` is the same struct notify_hook). A compact record becomes the 'j' or
 * 'n' record queue/queue.h describes, in *out (malloc'd) and *out_len: 0; a record of another
 * kind is left alone: 1; a compact record that does not decode: -1. Thread-safe. The queue's
 * deliveries expand 'N' records with it (queue_set_record_map). */
int notify_record_expand(void *arg, const void *data, size_t len, void **out, size_t *out_len);
/* s3api's outbox map: notify_record_expand for job records ('J'), while notification records
 * ('N') are left alone (1): the relay queues them compact and they are expanded at delivery. */
int notify_outbox_map(void *arg, const void *data, size_t len, void **out, size_t *out_len);

/* True when bucket/key matches the input `in` (bucket equal, key starting with path's prefix,
 * and the rest of the key passing prefix[]/suffix[] when given). */
bool notify_input_matches(const struct notify_io *in, const char *bucket, const char *key);

/* ---- notification targets ------------------------------------------------------------------ */

/* One `targets:` entry of the config file. Its ARN is arn:floodgate:sqs::<id>:<type>; MinIO's
 * arn:minio:sqs::<id>:<type> names the same target. */
struct notify_target {
    char *id;          /* required: [A-Za-z0-9_.-]{1,64} */
    char *type;        /* required: "webhook" or "redis" */
    char *endpoint;    /* required: webhook http(s)://host[:port]/path; redis redis://... */
    char *ca_file;     /* https: a PEM CA bundle; NULL: the system's */
    bool tls_verify;   /* https: verify the peer and its name; default true */
    char *client_cert; /* https: mTLS certificate and key (PEM files); NULL: none */
    char *client_key;
    char *auth_token;      /* "tok" -> "Authorization: Bearer tok"; "Scheme value" sent as is */
    unsigned timeout_ms;   /* one delivery, connect included; default 10 s */
    unsigned concurrency;  /* deliveries in flight; default 16 */
    unsigned max_attempts; /* then the dead-letter stream; default 10 */
    unsigned max_age_s;    /* a message older than this is dead-lettered; default 1 day */
    char *key;             /* redis: the stream or list; default "floodgate-events" */
    char *format;          /* redis: "stream" (XADD key * event <body>, default) or "list"
                              (RPUSH key <body>) */
};
/* The conf/ table of one target; a config file lists them under `targets:`. Checks the type,
 * the endpoint's scheme, and the id's syntax. */
extern const struct conf_key notify_target_keys[];

/* Installs the targets (taken over: the array and its elements; `targets` is freed). -1 with a
 * message on a duplicate id. */
int notify_registry_set_targets(struct notify_registry *reg, struct notify_target *targets,
                                size_t n, char *msg, size_t msg_cap);
/* The s3api ARN check (s3_arn_check_fn; arg is the registry): true for the ARN of a target. */
bool notify_arn_known(void *reg, const char *arn);
/* The target with this id, NULL when none (valid as long as the registry). */
const struct notify_target *notify_registry_target(struct notify_registry *reg, const char *id);
size_t notify_registry_n_targets(struct notify_registry *reg);
const struct notify_target *notify_registry_target_at(struct notify_registry *reg, size_t i);
/* Notification rules the hook skipped because their ARN names no configured target (the
 * target was removed from the config after the bucket's configuration was set), since start. */
uint64_t notify_registry_n_skipped(struct notify_registry *reg);

/* A sender delivers one message to one target, on the loop thread: webhooks by HTTP POST
 * through libcurl's multi interface driven by the libevent loop (keep-alive, TLS as
 * configured, the timeout, at most `concurrency` requests at once, never blocking the loop),
 * Redis targets through a hiredis async connection (reconnecting with capped backoff). A
 * webhook request carries Content-Type: application/json, x-floodgate-event-id: <id>,
 * User-Agent: floodgate/<version> and the Authorization of auth_token. Results:
 *   NOTIFY_SENT        2xx (webhook); any reply but an error (Redis);
 *   NOTIFY_UNREACHABLE the target could not be reached, so it said nothing about the message:
 *                      connection refused or reset, DNS failure, connect timeout, TLS
 *                      handshake or certificate failure, the timeout with no response at all
 *                      (webhook); not connected, connect timeout, disconnected or no reply in
 *                      time (Redis). The caller should hold the target's messages back (the
 *                      queue's circuit breaker) rather than retry each one;
 *   NOTIFY_RETRY       the target answered, with a status that may change: 408, 429, 5xx, an
 *                      error after the response began (webhook); LOADING, BUSY, TRYAGAIN,
 *                      MASTERDOWN, CLUSTERDOWN, READONLY, OOM error replies (Redis); also a
 *                      local failure to start the request, and "shutting down";
 *   NOTIFY_FAIL        another status or error reply: the message cannot succeed as is
 *                      (dead-letter it). */
enum notify_send_result { NOTIFY_SENT, NOTIFY_RETRY, NOTIFY_FAIL, NOTIFY_UNREACHABLE };
typedef void notify_sent_fn(void *arg, enum notify_send_result res, const char *reason);
struct notify_sender;
struct event_base;
/* NULL with a message when the target cannot be used (bad URL, unreadable CA file). */
struct notify_sender *notify_sender_new(struct event_base *base, const struct notify_target *t,
                                        char *msg, size_t msg_cap);
/* Sends `body` (copied); done(arg, ...) exactly once, never before this call returned. */
void notify_sender_send(struct notify_sender *s, const char *event_id, const char *body, size_t len,
                        notify_sent_fn *done, void *arg);
/* Cancels what is in flight (their done is called with NOTIFY_RETRY, "shutting down"). */
void notify_sender_free(struct notify_sender *s);

#endif

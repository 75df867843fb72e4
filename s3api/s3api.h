/* s3api: the S3 REST front end (request classification, auth, operations, XML, errors) over
 * the object store. The only header other modules include from s3api/. */
#ifndef FG_S3API_S3API_H
#define FG_S3API_S3API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct gw_pool;
struct h1_handler;
struct s3_api;

struct s3_user_config {
    char *name;
    char *access_key;
    char *secret_key;
};

/* s3api's settings; its key table is s3_config_keys (conf/ schema) in s3api/config.c. */
struct s3_config {
    char *data_dir; /* store root; required */
    char *region;   /* default "us-east-1" */
    char *domain;   /* virtual-hosted style base domain, e.g. "s3.local"; NULL off */
    struct s3_user_config *users;
    size_t n_users;
    bool sigv2;                /* accept SigV2; default true (s3cmd, boto3 presign v2) */
    unsigned max_skew_s;       /* default 900 */
    uint64_t max_object_bytes; /* single PUT ceiling; default 5 GiB */
    uint64_t inline_max_bytes; /* objects this small live in the index; default 64 KiB */
    unsigned upload_max_age_s; /* abandoned multipart uploads removed after; default 7 days */
    unsigned disk_threads;     /* default 4 */
};

void s3_config_init(struct s3_config *c); /* defaults */
void s3_config_cleanup(struct s3_config *c);

/* Opens the store and builds the API; NULL with `err` filled on failure. */
struct s3_api *s3_api_new(struct event_base *base, const struct s3_config *cfg, char *err,
                          size_t err_cap);
/* The HTTP handler serving S3 (its `arg` is the api). */
void s3_api_handler(struct s3_api *api, struct h1_handler *out);
void s3_api_free(struct s3_api *api);

/* ---- events and the transactional outbox ----
 *
 * Every committed mutation of an object (PutObject, POST upload, CopyObject,
 * CompleteMultipartUpload, DeleteObject and each key DeleteObjects removed) is reported to the
 * event hook on a pool thread, inside the LMDB write transaction that commits it. The records
 * the hook adds with s3_outbox_add() are committed in that same transaction: an acknowledged
 * object never exists without its records, and a failed commit leaves neither. Deleting a key
 * that does not exist reports nothing. The hook runs concurrently with the loop; it must be
 * thread-safe and must not block for long (it runs while the batch holds the write txn). */
enum s3_event_kind {
    S3_EV_PUT,          /* s3:ObjectCreated:Put */
    S3_EV_POST,         /* s3:ObjectCreated:Post */
    S3_EV_COPY,         /* s3:ObjectCreated:Copy */
    S3_EV_COMPLETE_MPU, /* s3:ObjectCreated:CompleteMultipartUpload */
    S3_EV_DELETE,       /* s3:ObjectRemoved:Delete */
    S3_EV_TEST,         /* s3:TestEvent: a bucket's notification configuration was set (key
                           NULL, size 0, etag ""; `notif` is the new configuration) */
};

/* Who asked for the mutation (copied by the store; empty strings when unknown). */
struct s3_event_origin {
    char principal[64];  /* the access key of the signed request; "" anonymous */
    char source_ip[64];  /* the peer address */
    char request_id[40]; /* the x-amz-request-id answered */
};

struct s3_event {
    enum s3_event_kind kind;
    const char *bucket;
    const char *key;  /* raw (not URL-encoded) */
    uint64_t size;    /* 0 for deletes */
    const char *etag; /* hex, no quotes; "" for deletes */
    int64_t time_ms;  /* the commit time (the object's Last-Modified) */
    uint64_t seq;     /* unique to this event and increasing over the store's life, across
                         restarts: S3's `sequencer` (as 16 hex digits) and an event id base */
    const struct s3_event_origin *origin;
    /* The bucket's notification configuration as stored (s3_notif_decode() reads it), or
     * NULL/0 when it has none. Valid during the hook only. */
    const void *notif;
    size_t notif_len;
};

struct s3_outbox_txn;
typedef void s3_event_hook_fn(void *arg, const struct s3_event *ev, struct s3_outbox_txn *tx);
/* Adds one record (copied) to the outbox in the event's transaction; 0, or -1 when the
 * transaction failed (the commit then fails with InternalError and is retried alone). */
int s3_outbox_add(struct s3_outbox_txn *tx, const void *data, size_t len);
/* Installs the hook (NULL: none). Call before serving. */
void s3_api_set_event_hook(struct s3_api *api, s3_event_hook_fn *fn, void *arg);

/* Reading the outbox, on the loop thread. Records come back in commit order, each with an id
 * that increases with that order. */
struct s3_outbox_rec {
    uint64_t id;
    const void *data;
    size_t len;
};
/* A map applied to every record as it is read, on the read thread (so it must be
 * thread-safe): 0 with the record to hand out instead in *out (malloc'd; freed after cb) and
 * *out_len, anything else to hand out the record as stored. */
typedef int s3_outbox_map_fn(void *arg, const void *data, size_t len, void **out, size_t *out_len);
/* Installs the map (NULL: none). Call before serving. */
void s3_api_set_outbox_map(struct s3_api *api, s3_outbox_map_fn *fn, void *arg);
/* The first records with id > after_id, at most max_n and about max_bytes (at least one;
 * counted as stored, before the map). `recs` (and their data) are valid during cb only; err
 * is 0, or -1 when LMDB failed. */
typedef void s3_outbox_read_cb(int err, const struct s3_outbox_rec *recs, size_t n, void *arg);
void s3_outbox_read(struct s3_api *api, uint64_t after_id, size_t max_n, size_t max_bytes,
                    s3_outbox_read_cb *cb, void *arg);
/* Removes records by id (ids copied) through the group committer; cb may be NULL. */
void s3_outbox_remove(struct s3_api *api, const uint64_t *ids, size_t n,
                      void (*cb)(int err, void *arg), void *arg);
/* Records in the outbox now (counted at open, then kept up to date). */
uint64_t s3_outbox_count(const struct s3_api *api);
/* Who this outbox is, for a consumer's dedupe of records it may be sent twice: `source` (32
 * hex digits) is drawn when the data dir's index is created and kept in it, so it names this
 * outbox among all that feed one consumer; every record added after this open has an id of at
 * least `first_id`, and no id at or above it was handed out before (a consumer that has seen
 * such an id from this source is looking at a data dir restored from an older copy). */
void s3_outbox_identity(const struct s3_api *api, char source[33], uint64_t *first_id);
/* fn(arg) on the loop each time a commit batch added outbox records (after that batch's
 * clients were answered). */
void s3_api_on_outbox(struct s3_api *api, void (*fn)(void *arg), void *arg);

/* ---- bucket notification configurations (PutBucketNotificationConfiguration) ----
 *
 * s3api parses and validates the XML (Queue/Topic/CloudFunctionConfiguration with Id, the
 * ARN, Event+ and Filter/S3Key/FilterRule prefix|suffix), asks the ARN check hook about every
 * destination (unknown -> InvalidArgument naming it), refuses overlapping rules for a shared
 * event type (InvalidArgument "Configurations overlap..."), stores the configuration in the
 * bucket's index (an empty <NotificationConfiguration/> removes it; DeleteBucket drops it),
 * and reports an S3_EV_TEST event in the same commit. Events of the bucket carry it. */
enum s3_notif_kind {
    S3_NOTIF_QUEUE,  /* <QueueConfiguration>, ARN in <Queue> */
    S3_NOTIF_TOPIC,  /* <TopicConfiguration>, ARN in <Topic> */
    S3_NOTIF_LAMBDA, /* <CloudFunctionConfiguration>, ARN in <CloudFunction> */
};
struct s3_notif_rule {
    enum s3_notif_kind kind;
    char *id; /* as given, or generated when absent */
    char *arn;
    char **events; /* as given: "s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", ... */
    size_t n_events;
    char *prefix; /* FilterRule prefix, NULL none */
    char *suffix; /* FilterRule suffix, NULL none */
};
struct s3_notif_config {
    struct s3_notif_rule *rules;
    size_t n_rules;
};
/* Decodes a stored configuration (s3_event.notif); 0, or -1 when the bytes are not one. */
int s3_notif_decode(const void *data, size_t len, struct s3_notif_config *out);
void s3_notif_config_free(struct s3_notif_config *c); /* frees the rules; accepts zeroed */
/* True when `event_name` ("s3:ObjectCreated:Put") is selected by the configured `pattern`
 * ("s3:ObjectCreated:*" or the same name). */
bool s3_notif_event_matches(const char *pattern, const char *event_name);
/* The ARN check: true when `arn` names a destination this gateway delivers to. Called on the
 * loop thread while a PutBucketNotificationConfiguration is validated. No hook: every ARN is
 * unknown. */
typedef bool s3_arn_check_fn(void *arg, const char *arn);
void s3_api_set_arn_check(struct s3_api *api, s3_arn_check_fn *fn, void *arg);

/* ---- credentials for other front ends (the admin API) ---- */
/* Checks the Authorization header of a request that is not S3: "Basic base64(access:secret)"
 * of a configured user, or SigV4 over its headers (service "s3" or any, the configured
 * region; x-amz-content-sha256 as sent, which the caller then checks against the body unless
 * it is UNSIGNED-PAYLOAD: `payload_sha256` gets that value, "" for Basic). Presigned query
 * auth is accepted too. On success fills `user` (the user's name) and returns true; false
 * with a message otherwise. */
struct h1_req;
bool s3_api_authorize(struct s3_api *api, struct h1_req *req, char *user, size_t user_cap,
                      char *payload_sha256, size_t sha_cap, char *msg, size_t msg_cap);

/* ---- signing as a client (floodgate-worker) ---- */
/* Headers for a SigV4-signed request (service "s3"), the payload as UNSIGNED-PAYLOAD unless
 * `payload_sha256` (64 hex) is given. `path` is the request path already URI-encoded as sent
 * (e.g. "/bucket/a%20b.txt"); `query` the raw query string without '?' ("" none); `host` the
 * Host header's value. Fills the three header values to send. */
struct s3_signed_headers {
    char authorization[512];
    char amz_date[17];       /* x-amz-date */
    char content_sha256[65]; /* x-amz-content-sha256 */
};
void s3_sign_v4(const char *access_key, const char *secret_key, const char *region,
                const char *method, const char *host, const char *path, const char *query,
                const char *payload_sha256, time_t now, struct s3_signed_headers *out);

#endif

/* Private to notify/ and its unit tests: the parsed form of an input path, the checks shared
 * by the config and API paths, the registry's view for the hook, and the record builder the
 * hook drives (testable without a store). */
#ifndef FG_NOTIFY_INTERNAL_H
#define FG_NOTIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "notify/notify.h"
#include "s3api/s3api.h"

/* An input path split once, when a service is added: "bucket/dir" -> bucket "bucket", prefix
 * "dir/" ("" when the path is the bucket alone). */
struct notify_rule {
    const struct notify_io *io;
    char *bucket;
    char *prefix;
    size_t prefix_len;
};

/* Splits `path` ("bucket[/prefix]") into heap strings; -1 with a message when the bucket part
 * is missing or not a valid bucket name. */
int notify_path_split(const char *path, char **bucket, char **prefix, char *msg, size_t msg_cap);
bool notify_rule_matches(const struct notify_rule *r, const char *bucket, const char *key);

/* Whole-service checks (name syntax, inputs, outputs, variable names). On failure `field`
 * gets "name", "input", "output" or "environment" and `index` the element, so callers can
 * point at a line. */
int notify_service_check(const struct notify_service *svc, const char **field, size_t *index,
                         char *msg, size_t msg_cap);
/* The hash behind notify_service_rev() over an already built canonical JSON text. */
void notify_rev_of(const char *json, char out[17]);

/* Form-URL-encodes `key` as AWS does in event records ("a b/c" -> "a+b/c"); malloc'd. */
char *notify_key_encode(const char *key);

/* ---- a growing byte buffer and the writers on it (buf.c) ---- */
/* Used for the hook's fixed-shape outputs (the event message, outbox records) where jansson's
 * tree of small allocations would cost more than the work itself. */
struct notify_buf {
    char *p;
    size_t len;
    size_t cap;
};
void notify_buf_reserve(struct notify_buf *b, size_t more); /* room for `more` bytes after len */
static inline void notify_buf_put(struct notify_buf *b, const void *data, size_t n)
{
    if (b->cap - b->len < n)
        notify_buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}
void notify_buf_puts(struct notify_buf *b, const char *s);
void notify_buf_cleanup(struct notify_buf *b); /* frees and zeroes */
/* A JSON string literal of `s` (quotes included): '"', '\\' and every control character
 * escaped, valid UTF-8 passed through. Text that is not valid UTF-8 (never from a valid S3
 * request; jansson would refuse it) is written form-encoded instead (notify_key_encode). */
void notify_buf_json_str(struct notify_buf *b, const char *s);
/* One JSON string literal of the concatenation of `parts` (NULL parts are empty). */
void notify_buf_json_strv(struct notify_buf *b, const char *const *parts, size_t n);
/* A JSON string literal of `s` form-encoded (notify_key_encode), without an allocation. */
void notify_buf_json_encoded(struct notify_buf *b, const char *s);
void notify_buf_u64(struct notify_buf *b, uint64_t v); /* decimal */

/* Outbox records (queue/queue.h, "Outbox records"): "FR1" kind, then fields
 * [u32 LE name length][name][u32 LE value length][value]. */
void notify_rec_begin(struct notify_buf *b, char kind); /* empties b */
void notify_rec_field(struct notify_buf *b, const char *name, const void *value, size_t len);
void notify_rec_field_str(struct notify_buf *b, const char *name, const char *value);
/* A field whose value is written straight into `b` after this call; returns the position of
 * its length, which notify_rec_field_end() fills in once the value is complete. */
size_t notify_rec_field_begin(struct notify_buf *b, const char *name);
void notify_rec_field_end(struct notify_buf *b, size_t at);

/* ---- the event message, piece by piece (event.c) ---- */
/* "s3:ObjectCreated:Put", ...: the name rules select on and MinIO's EventName. */
const char *notify_event_full_name(enum s3_event_kind kind);
/* ISO 8601 UTC with milliseconds ("2023-11-14T22:13:20.123Z"), as AWS writes eventTime. */
void notify_format_time(int64_t time_ms, char out[32]);
/* Appends the AWS event message of `ev` (notify_event_json's document) to `b`; `when` is
 * notify_format_time(ev->time_ms), computed once per event by the caller. */
void notify_event_write(struct notify_buf *b, const struct s3_event *ev, const char *region,
                        const char *config_id, const char *when);
/* Appends AWS's flat s3:TestEvent message of `ev` (an S3_EV_TEST) to `b`. */
void notify_test_event_write(struct notify_buf *b, const struct s3_event *ev, const char *when);

/* ---- compact outbox records (compact.c) ---- */
/* Appends the `ev` field's value of a compact record: the event's fields and config_id (the
 * message's configurationId), which notify_record_expand() turns back into the message. */
void notify_ev_write(struct notify_buf *b, const struct s3_event *ev, const char *config_id);

/* Builds the outbox records of `ev` (queue/queue.h, "outbox records") for every matching
 * service and hands each to `add`; stops at the first add that fails. Returns the number of
 * records added, or -1 when an add failed. Takes the registry's read lock. */
typedef int notify_record_cb(void *arg, const void *data, size_t len);
int notify_hook_records(struct notify_registry *reg, const char *region, const struct s3_event *ev,
                        notify_record_cb *add, void *arg);

/* ---- the registry, as the hook sees it (registry.c) ---- */
struct notify_entry {
    struct notify_service svc;
    char rev[17];
    bool from_config;
    struct notify_rule *rules; /* one per input */
    size_t n_rules;
};
void notify_registry_rdlock(struct notify_registry *reg);
void notify_registry_unlock(struct notify_registry *reg);
/* Under the read lock: the entries, in the order they were added. */
struct notify_entry *const *notify_registry_entries(struct notify_registry *reg, size_t *n);
/* Under the read lock: the target an ARN names (notify_arn_known's rules), NULL when none. */
const struct notify_target *notify_registry_target_of_arn(struct notify_registry *reg,
                                                          const char *arn);
/* Counts a notification rule skipped because its target is not configured (any thread);
 * returns the count so far. */
uint64_t notify_registry_count_skipped(struct notify_registry *reg);

/* ---- targets (target.c) ---- */
/* Splits a target ARN: arn:floodgate:sqs::<id>:<type> or arn:minio:sqs::<id>:<type> (empty
 * region and nothing else). Points into `arn`; false when it is not one. */
bool notify_arn_parse(const char *arn, const char **id, size_t *id_len, const char **type,
                      size_t *type_len);
/* The table's checks of one target (id syntax, type, endpoint scheme, format); 0 or -1 with a
 * message naming the target. */
int notify_target_check(const struct notify_target *t, char *msg, size_t msg_cap);
/* Frees a target's fields (conf_free of notify_target_keys), not t. */
void notify_target_cleanup(struct notify_target *t);

#endif

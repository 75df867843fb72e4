/* Private to notify/ and its unit tests: the parsed form of an input path, the checks shared
 * by the config and API paths, the registry's view for the hook, and the record builder the
 * hook drives (testable without a store). */
#ifndef FG_NOTIFY_INTERNAL_H
#define FG_NOTIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "notify/notify.h"

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

#endif

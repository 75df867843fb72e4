/* notify: which services a committed mutation reaches (input matching) and the outbox
 * records that ask queue/ to run them. Runs on the store's pool threads inside the commit
 * transaction, so it only reads precomputed rules under the registry's read lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"

/* ---- matching -------------------------------------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return n <= len && memcmp(s + len - n, suffix, n) == 0;
}

bool notify_rule_matches(const struct notify_rule *r, const char *bucket, const char *key)
{
    const struct notify_io *io = r->io;
    const char *rest;
    size_t key_len;
    bool ok;

    if (strcmp(r->bucket, bucket) != 0 || strncmp(key, r->prefix, r->prefix_len) != 0)
        return false;
    rest = key + r->prefix_len;
    /* "dir/" itself (a folder marker) is no file of the folder */
    if (rest[0] == '\0')
        return false;
    ok = io->n_prefix == 0;
    for (size_t i = 0; i < io->n_prefix && !ok; i++)
        ok = has_prefix(rest, io->prefix[i]);
    if (!ok)
        return false;
    key_len = strlen(key);
    ok = io->n_suffix == 0;
    for (size_t i = 0; i < io->n_suffix && !ok; i++)
        ok = has_suffix(key, key_len, io->suffix[i]);
    return ok;
}

bool notify_input_matches(const struct notify_io *in, const char *bucket, const char *key)
{
    struct notify_rule r = {.io = in};
    char msg[8];
    bool ok;

    if (in->path == NULL ||
        notify_path_split(in->path, &r.bucket, &r.prefix, msg, sizeof(msg)) != 0)
        return false;
    r.prefix_len = strlen(r.prefix);
    ok = notify_rule_matches(&r, bucket, key);
    free(r.bucket);
    free(r.prefix);
    return ok;
}

/* ---- records --------------------------------------------------------------------------- */

static bool is_created(enum s3_event_kind kind)
{
    return kind == S3_EV_PUT || kind == S3_EV_POST || kind == S3_EV_COPY ||
           kind == S3_EV_COMPLETE_MPU;
}

static bool entry_matches(const struct notify_entry *e, const struct s3_event *ev)
{
    for (size_t i = 0; i < e->n_rules; i++) {
        if (notify_rule_matches(&e->rules[i], ev->bucket, ev->key))
            return true;
    }
    return false;
}

static void set_text(json_t *o, const char *name, const char *value)
{
    json_t *j = json_string(value);

    /* not UTF-8 (never from a valid S3 request): better a record with the bytes escaped
     * than none */
    if (j == NULL) {
        char *enc = notify_key_encode(value);
        j = json_string(enc);
        free(enc);
    }
    json_object_set_new(o, name, j);
}

/* The outbox record of one invocation (queue/queue.h, "outbox records"); malloc'd. */
static char *job_record(const struct notify_entry *e, const struct s3_event *ev, const char *region)
{
    json_t *o = json_object();
    char id[37], num[24], *event, *text;

    notify_uuid(id);
    event = notify_event_json(ev, region, e->svc.name);
    json_object_set_new(o, "kind", json_string("job"));
    json_object_set_new(o, "id", json_string(id));
    set_text(o, "service", e->svc.name);
    set_text(o, "pool", e->svc.pool != NULL ? e->svc.pool : "default");
    set_text(o, "bucket", ev->bucket);
    set_text(o, "key", ev->key);
    json_object_set_new(o, "event", json_string(event));
    snprintf(num, sizeof(num), "%u", e->svc.max_attempts);
    json_object_set_new(o, "max_attempts", json_string(num));
    json_object_set_new(o, "rev", json_string(e->rev));
    snprintf(num, sizeof(num), "%lld", (long long)ev->time_ms);
    json_object_set_new(o, "created_ms", json_string(num));
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ASSERT(text != NULL); /* only fails when memory does */
    json_decref(o);
    free(event);
    return text;
}

int notify_hook_records(struct notify_registry *reg, const char *region, const struct s3_event *ev,
                        notify_record_cb *add, void *arg)
{
    struct notify_entry *const *entries;
    size_t n;
    int added = 0;

    if (!is_created(ev->kind))
        return 0;
    notify_registry_rdlock(reg);
    entries = notify_registry_entries(reg, &n);
    for (size_t i = 0; i < n; i++) {
        char *rec;
        int rc;

        if (!entry_matches(entries[i], ev))
            continue;
        rec = job_record(entries[i], ev, region != NULL ? region : "us-east-1");
        rc = add(arg, rec, strlen(rec));
        free(rec);
        if (rc != 0) {
            added = -1; /* the transaction failed: the commit is retried as a whole */
            break;
        }
        added++;
    }
    notify_registry_unlock(reg);
    return added;
}

static int add_to_outbox(void *arg, const void *data, size_t len)
{
    return s3_outbox_add(arg, data, len);
}

void notify_event_hook(void *arg, const struct s3_event *ev, struct s3_outbox_txn *tx)
{
    const struct notify_hook *hook = arg;

    (void)notify_hook_records(hook->reg, hook->region, ev, add_to_outbox, tx);
}

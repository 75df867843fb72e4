/* notify: which services and notification rules a committed mutation reaches, and the outbox
 * records (queue/queue.h's binary form) that ask queue/ to run the services and deliver the
 * notifications. Runs on the store's pool threads inside the commit transaction, on every
 * upload: it reads precomputed rules under the registry's read lock, decodes a bucket's
 * configuration once per thread (cached by its bytes), and writes into a per-thread buffer. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/uuid.h"
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

/* ---- per-thread scratch ---------------------------------------------------------------- */

#define CACHE_SLOTS    8          /* decoded notification configurations per thread */
#define SCRATCH_KEEP   (1u << 20) /* a record buffer grown past this is let go after use */
#define SKIP_LOG_EVERY 1024       /* skipped rules: log the first, then one in this many */

/* One decoded configuration, keyed by its stored bytes. */
struct cached_config {
    unsigned char *bytes; /* NULL: free slot */
    size_t len;
    uint64_t hash;
    uint64_t last_used;
    struct s3_notif_config cfg;
};

/* What the hook reuses from one event to the next on a pool thread: the record buffer (one
 * allocation for the thread's life instead of several per record) and the decoded bucket
 * configurations. Per thread, so no lock; freed when the thread exits. */
struct scratch {
    struct notify_buf rec;
    struct cached_config cache[CACHE_SLOTS];
    uint64_t tick;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local struct scratch *scratch;

static void scratch_free(void *arg)
{
    struct scratch *sc = arg;

    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(sc->cache[i].bytes);
        s3_notif_config_free(&sc->cache[i].cfg);
    }
    notify_buf_cleanup(&sc->rec);
    free(sc);
}

static void scratch_key_create(void)
{
    ASSERT(pthread_key_create(&scratch_key, scratch_free) == 0);
}

static struct scratch *scratch_get(void)
{
    if (scratch == NULL) {
        pthread_once(&scratch_once, scratch_key_create);
        scratch = xcalloc(1, sizeof(*scratch));
        pthread_setspecific(scratch_key, scratch); /* only so the thread's exit frees it */
    }
    return scratch;
}

static uint64_t fnv1a(const unsigned char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* The decoded configuration of `ev->notif`, from the cache or decoded into it (replacing the
 * least recently used); NULL when the bytes do not decode. */
static const struct s3_notif_config *config_of(struct scratch *sc, const struct s3_event *ev)
{
    const unsigned char *data = ev->notif;
    uint64_t hash = fnv1a(data, ev->notif_len);
    struct cached_config *victim = &sc->cache[0];
    struct s3_notif_config cfg;

    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cached_config *c = &sc->cache[i];
        if (c->bytes != NULL && c->hash == hash && c->len == ev->notif_len &&
            memcmp(c->bytes, data, c->len) == 0) {
            c->last_used = ++sc->tick;
            return &c->cfg;
        }
        if (c->bytes == NULL || (victim->bytes != NULL && c->last_used < victim->last_used))
            victim = c;
    }
    if (s3_notif_decode(data, ev->notif_len, &cfg) != 0)
        return NULL;
    free(victim->bytes);
    s3_notif_config_free(&victim->cfg);
    victim->bytes = xmalloc(ev->notif_len);
    memcpy(victim->bytes, data, ev->notif_len);
    victim->len = ev->notif_len;
    victim->hash = hash;
    victim->last_used = ++sc->tick;
    victim->cfg = cfg;
    return &victim->cfg;
}

/* ---- records --------------------------------------------------------------------------- */

/* What one event's records share, computed once. */
struct event_ctx {
    struct notify_registry *reg;
    const char *region;
    const struct s3_event *ev;
    struct notify_buf *rec;
    char created_ms[24];
    size_t created_ms_len;
    notify_record_cb *add;
    void *arg;
    int added;
};

static size_t format_i64(char out[24], int64_t v);

/* created_ms, decimal; formatted when first needed. */
static void created_of(struct event_ctx *x)
{
    if (x->created_ms_len == 0)
        x->created_ms_len = format_i64(x->created_ms, x->ev->time_ms);
}

static size_t format_i64(char out[24], int64_t v)
{
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char tmp[24];
    size_t n = 0, o = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[o++] = '-';
    while (n > 0)
        out[o++] = tmp[--n];
    return o;
}

/* Hands the record built in x->rec to the outbox; -1 when the transaction failed. */
static int emit(struct event_ctx *x)
{
    if (x->add(x->arg, x->rec->p, x->rec->len) != 0)
        return -1; /* the transaction failed: the commit is retried as a whole */
    x->added++;
    return 0;
}

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

/* The outbox record of one invocation (kind 'j'). */
static int job_record(struct event_ctx *x, const struct notify_entry *e)
{
    struct notify_buf *b = x->rec;
    char id[37], num[24];
    size_t at;

    gw_uuid(id);
    notify_rec_begin(b, 'J');
    notify_rec_field(b, "id", id, 36);
    notify_rec_field_str(b, "service", e->svc.name);
    notify_rec_field_str(b, "pool", e->svc.pool != NULL ? e->svc.pool : "default");
    notify_rec_field_str(b, "bucket", x->ev->bucket);
    notify_rec_field_str(b, "key", x->ev->key);
    at = notify_rec_field_begin(b, "ev");
    notify_ev_write(b, x->ev, e->svc.name);
    notify_rec_field_end(b, at);
    notify_rec_field(b, "max_attempts", num, format_i64(num, e->svc.max_attempts));
    notify_rec_field_str(b, "rev", e->rev);
    created_of(x);
    notify_rec_field(b, "created_ms", x->created_ms, x->created_ms_len);
    return emit(x);
}

static int job_records(struct event_ctx *x)
{
    struct notify_entry *const *entries;
    size_t n;

    entries = notify_registry_entries(x->reg, &n);
    for (size_t i = 0; i < n; i++) {
        if (entry_matches(entries[i], x->ev) && job_record(x, entries[i]) != 0)
            return -1;
    }
    return 0;
}

/* The target of a rule, counting (and now and then logging) a rule whose target is gone. */
static const struct notify_target *rule_target(struct event_ctx *x, const struct s3_notif_rule *r)
{
    static const struct log_ctx lc = {.module = "notify"};
    const struct notify_target *t = notify_registry_target_of_arn(x->reg, r->arn);
    uint64_t n;

    if (t != NULL)
        return t;
    n = notify_registry_count_skipped(x->reg);
    if (n % SKIP_LOG_EVERY == 1)
        log_warn(&lc,
                 "bucket %s: rule '%s' names %s, which is not a configured target: skipped "
                 "(%llu skipped so far)",
                 x->ev->bucket, r->id, r->arn, (unsigned long long)n);
    return NULL;
}

/* The outbox record of one delivery (kind 'n'); the body is written by `body`. */
static int notif_record(struct event_ctx *x, const struct notify_target *t, const char *config_id)
{
    struct notify_buf *b = x->rec;
    char id[37];
    size_t at;

    gw_uuid(id);
    notify_rec_begin(b, 'N');
    notify_rec_field(b, "id", id, 36);
    notify_rec_field_str(b, "target", t->id);
    notify_rec_field_str(b, "bucket", x->ev->bucket);
    notify_rec_field_str(b, "key", x->ev->key != NULL ? x->ev->key : "");
    at = notify_rec_field_begin(b, "ev");
    notify_ev_write(b, x->ev, config_id);
    notify_rec_field_end(b, at);
    created_of(x);
    notify_rec_field(b, "created_ms", x->created_ms, x->created_ms_len);
    return emit(x);
}

static bool rule_matches(const struct s3_notif_rule *r, const char *name, const char *key)
{
    bool selected = false;
    size_t key_len;

    for (size_t i = 0; i < r->n_events && !selected; i++)
        selected = s3_notif_event_matches(r->events[i], name);
    if (!selected || (r->prefix != NULL && !has_prefix(key, r->prefix)))
        return false;
    key_len = strlen(key);
    return r->suffix == NULL || has_suffix(key, key_len, r->suffix);
}

/* s3:TestEvent: one record per distinct target of the configuration. */
static int test_records(struct event_ctx *x, const struct s3_notif_config *cfg)
{
    const struct notify_target *sent[16], **seen = sent;
    size_t n_seen = 0;
    int rc = 0;

    if (cfg->n_rules > 16)
        seen = xmalloc(cfg->n_rules * sizeof(const struct notify_target *));
    for (size_t i = 0; i < cfg->n_rules && rc == 0; i++) {
        const struct notify_target *t = rule_target(x, &cfg->rules[i]);
        bool dup = false;

        for (size_t j = 0; j < n_seen && !dup; j++)
            dup = seen[j] == t;
        if (t == NULL || dup)
            continue;
        seen[n_seen++] = t;
        rc = notif_record(x, t, cfg->rules[i].id);
    }
    if (seen != sent)
        free(seen);
    return rc;
}

static int notif_records(struct event_ctx *x, struct scratch *sc)
{
    static const struct log_ctx lc = {.module = "notify"};
    const struct s3_notif_config *cfg = config_of(sc, x->ev);
    const char *name = notify_event_full_name(x->ev->kind);

    if (cfg == NULL) {
        /* s3api wrote the bytes: not decoding them is a bug, not input */
        log_error(&lc, "bucket %s: the stored notification configuration does not decode",
                  x->ev->bucket);
        return 0;
    }
    if (x->ev->kind == S3_EV_TEST)
        return test_records(x, cfg);
    if (x->ev->key == NULL)
        return 0;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct s3_notif_rule *r = &cfg->rules[i];
        const struct notify_target *t;

        if (!rule_matches(r, name, x->ev->key))
            continue;
        t = rule_target(x, r);
        if (t != NULL && notif_record(x, t, r->id) != 0)
            return -1;
    }
    return 0;
}

int notify_hook_records(struct notify_registry *reg, const char *region, const struct s3_event *ev,
                        notify_record_cb *add, void *arg)
{
    bool jobs = is_created(ev->kind) && ev->key != NULL;
    bool notif = ev->notif != NULL && ev->notif_len > 0;
    struct scratch *sc;
    struct event_ctx x;
    int rc = 0;

    if (!jobs && !notif)
        return 0;
    sc = scratch_get();
    x = (struct event_ctx){.reg = reg,
                           .region = region != NULL ? region : "us-east-1",
                           .ev = ev,
                           .rec = &sc->rec,
                           .add = add,
                           .arg = arg};
    notify_registry_rdlock(reg);
    if (jobs)
        rc = job_records(&x);
    if (notif && rc == 0)
        rc = notif_records(&x, sc);
    notify_registry_unlock(reg);
    if (sc->rec.cap > SCRATCH_KEEP) /* one huge message does not pin its memory */
        notify_buf_cleanup(&sc->rec);
    return rc == 0 ? x.added : -1;
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

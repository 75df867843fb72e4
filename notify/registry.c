/* notify: the registry of services in force. Pool threads read it (the event hook) while the
 * loop changes it (the admin API), so entries sit behind a rwlock; changes are serialized by
 * a second mutex and written to the state file before they take effect, so the write lock is
 * held only to swap pointers, never across I/O. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"

#define STATE_MAX_BYTES (256u << 20) /* a state file larger than this is refused */

/* A target array replaced by notify_registry_set_targets(): kept until the registry is freed,
 * since notify_registry_target() hands out pointers valid as long as the registry. */
struct retired_targets {
    struct retired_targets *next;
    struct notify_target *targets;
    size_t n;
};

struct notify_registry {
    pthread_rwlock_t lock; /* guards entries/n_entries and targets/n_targets (readers: the
                              hook, the getters) */
    pthread_mutex_t write; /* serializes changes; held across the state file write */
    char *state_path;      /* NULL: not persisted */
    struct notify_entry **entries;
    size_t n_entries;
    struct notify_target *targets;
    size_t n_targets;
    struct retired_targets *retired;
    _Atomic uint64_t n_skipped; /* notification rules whose target is not configured */
};

/* ---- entries --------------------------------------------------------------------------- */

static void entry_free(struct notify_entry *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n_rules; i++) {
        free(e->rules[i].bucket);
        free(e->rules[i].prefix);
    }
    free(e->rules);
    notify_service_free(&e->svc);
    free(e);
}

/* Takes over the fields of `svc` (and zeroes it); precomputes what the hook needs. NULL with
 * a message when an input path is invalid (the service was not checked). */
static struct notify_entry *entry_new(struct notify_service *svc, bool from_config, char *msg,
                                      size_t msg_cap)
{
    struct notify_entry *e = xcalloc(1, sizeof(*e));

    e->svc = *svc;
    memset(svc, 0, sizeof(*svc));
    e->from_config = from_config;
    e->rules = xcalloc(e->svc.n_input, sizeof(*e->rules));
    for (size_t i = 0; i < e->svc.n_input; i++) {
        struct notify_rule *r = &e->rules[e->n_rules];
        const char *path = e->svc.input[i].path != NULL ? e->svc.input[i].path : "";

        if (notify_path_split(path, &r->bucket, &r->prefix, msg, msg_cap) != 0) {
            entry_free(e);
            return NULL;
        }
        r->io = &e->svc.input[i];
        r->prefix_len = strlen(r->prefix);
        e->n_rules++;
    }
    notify_service_rev(&e->svc, e->rev);
    return e;
}

static ssize_t find(const struct notify_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_entries; i++) {
        if (strcmp(reg->entries[i]->svc.name, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* ---- the state file -------------------------------------------------------------------- */

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir =
        slash == NULL ? xstrdup(".") : xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;

    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Replaces the state file with `text`: a temporary file, fsync, rename, fsync of the folder,
 * so a crash leaves the old file or the new one. */
static int state_write(const char *path, const char *text)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* it holds secrets */
    int rc = -1;

    if (fd < 0)
        goto out;
    if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        goto out;
    }
    rc = fsync_dir_of(path);
out:
    free(tmp);
    return rc;
}

static void append_service(json_t *a, const struct notify_service *svc)
{
    char *one = notify_service_to_json(svc, true);

    json_array_append_new(a, json_loads(one, 0, NULL));
    free(one);
}

/* The API services as a JSON array, `skip` left out and `add` appended (either NULL). Called
 * with reg->write held: entries cannot change, so reading them needs no rwlock. */
static char *state_json(const struct notify_registry *reg, const char *skip,
                        const struct notify_service *add)
{
    json_t *a = json_array();
    char *text, *copy;

    for (size_t i = 0; i < reg->n_entries; i++) {
        const struct notify_entry *e = reg->entries[i];

        if (e->from_config || (skip != NULL && strcmp(e->svc.name, skip) == 0))
            continue;
        if (add != NULL && strcmp(e->svc.name, add->name) == 0) {
            append_service(a, add); /* an update keeps its place */
            add = NULL;
        } else {
            append_service(a, &e->svc);
        }
    }
    if (add != NULL)
        append_service(a, add);
    text = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(a);
    ASSERT(text != NULL);
    copy = xasprintf("%s\n", text);
    free(text);
    return copy;
}

static int persist(const struct notify_registry *reg, const char *skip,
                   const struct notify_service *add)
{
    char *text;
    int rc;

    if (reg->state_path == NULL)
        return 0;
    text = state_json(reg, skip, add);
    rc = state_write(reg->state_path, text);
    free(text);
    return rc;
}

static char *read_file(const char *path, size_t *len, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *data = NULL;
    size_t got = 0;

    *err = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *err = errno;
        goto fail;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > STATE_MAX_BYTES) {
        *err = EFBIG;
        goto fail;
    }
    data = xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    data[got] = '\0';
    *len = got;
    return data;

fail:
    free(data);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Loads the API services of a previous run. A missing file is an empty registry. */
static int state_load(struct notify_registry *reg, char *msg, size_t msg_cap)
{
    size_t len = 0;
    int err;
    char *data = read_file(reg->state_path, &len, &err);
    json_t *a = NULL;
    json_error_t jerr;
    int rc = -1;

    if (data == NULL) {
        if (err == ENOENT)
            return 0;
        snprintf(msg, msg_cap, "%s: %s", reg->state_path, strerror(err));
        return -1;
    }
    a = json_loadb(data, len, 0, &jerr);
    if (a == NULL || !json_is_array(a)) {
        snprintf(msg, msg_cap, "%s: line %d: %s", reg->state_path, a == NULL ? jerr.line : 1,
                 a == NULL ? jerr.text : "expected a JSON array of services");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        char *one =
            json_dumps(json_array_get(a, i), JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        struct notify_service svc;
        struct conf_error cerr;
        struct notify_entry *e;
        int prc;

        ASSERT(one != NULL); /* only fails when memory does */
        prc = notify_service_parse(one, strlen(one), &svc, &cerr);
        free(one);
        if (prc != 0) {
            snprintf(msg, msg_cap, "%s: service %zu: %s", reg->state_path, i, cerr.msg);
            notify_service_free(&svc);
            goto out;
        }
        if (find(reg, svc.name) >= 0) {
            snprintf(msg, msg_cap, "%s: service '%s' appears twice", reg->state_path, svc.name);
            notify_service_free(&svc);
            goto out;
        }
        e = entry_new(&svc, false, msg, msg_cap);
        ASSERT(e != NULL); /* notify_service_parse checked the paths */
        reg->entries = xrealloc(reg->entries, (reg->n_entries + 1) * sizeof(*reg->entries));
        reg->entries[reg->n_entries++] = e;
    }
    rc = 0;
out:
    json_decref(a);
    free(data);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

struct notify_registry *notify_registry_new(const char *state_path, char *msg, size_t msg_cap)
{
    struct notify_registry *reg = xcalloc(1, sizeof(*reg));
    pthread_rwlockattr_t attr;

    /* uploads read-lock all the time: without writer preference an API change could wait
     * for a quiet moment that never comes */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&reg->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&reg->write, NULL);
    reg->state_path = state_path != NULL ? xstrdup(state_path) : NULL;
    if (reg->state_path != NULL && state_load(reg, msg, msg_cap) != 0) {
        notify_registry_free(reg);
        return NULL;
    }
    return reg;
}

static void targets_free(struct notify_target *targets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        notify_target_cleanup(&targets[i]);
    free(targets);
}

void notify_registry_free(struct notify_registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->n_entries; i++)
        entry_free(reg->entries[i]);
    free(reg->entries);
    targets_free(reg->targets, reg->n_targets);
    while (reg->retired != NULL) {
        struct retired_targets *r = reg->retired;
        reg->retired = r->next;
        targets_free(r->targets, r->n);
        free(r);
    }
    free(reg->state_path);
    pthread_mutex_destroy(&reg->write);
    pthread_rwlock_destroy(&reg->lock);
    free(reg);
}

int notify_registry_add_config(struct notify_registry *reg, struct notify_service *svcs, size_t n,
                               char *msg, size_t msg_cap)
{
    struct notify_entry **added = xcalloc(n, sizeof(*added));
    char why[160];
    int rc = -1;
    size_t i;

    pthread_mutex_lock(&reg->write);
    for (i = 0; i < n; i++) {
        const char *name = svcs[i].name != NULL ? svcs[i].name : "";
        const char *field;
        size_t index;
        bool dup = find(reg, name) >= 0;

        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(added[j]->svc.name, name) == 0;
        if (notify_service_check(&svcs[i], &field, &index, why, sizeof(why)) != 0) {
            snprintf(msg, msg_cap, "service '%s': %s", name, why);
            goto out;
        }
        if (dup) {
            snprintf(msg, msg_cap, "service '%s' is defined twice", name);
            goto out;
        }
        added[i] = entry_new(&svcs[i], true, msg, msg_cap);
        if (added[i] == NULL)
            goto out;
    }
    pthread_rwlock_wrlock(&reg->lock);
    reg->entries = xrealloc(reg->entries, (reg->n_entries + n) * sizeof(*reg->entries));
    memcpy(reg->entries + reg->n_entries, added, n * sizeof(*added));
    reg->n_entries += n;
    pthread_rwlock_unlock(&reg->lock);
    n = 0; /* all taken */
    rc = 0;
out:
    pthread_mutex_unlock(&reg->write);
    for (size_t j = 0; j < i && rc != 0; j++)
        entry_free(added[j]);
    for (size_t j = i; j < n; j++)
        notify_service_free(&svcs[j]);
    free(added);
    free(svcs);
    return rc;
}

/* ---- changes --------------------------------------------------------------------------- */

enum notify_put_result notify_registry_put(struct notify_registry *reg, struct notify_service *svc,
                                           bool update)
{
    enum notify_put_result res;
    struct notify_entry *e = NULL, *old = NULL;
    char msg[160];
    ssize_t at;

    ASSERT(svc->name != NULL); /* callers give services notify_service_parse() accepted */
    pthread_mutex_lock(&reg->write);
    at = find(reg, svc->name);
    if (at >= 0 && reg->entries[at]->from_config) {
        res = NOTIFY_READ_ONLY;
        goto out;
    }
    if (at >= 0 && !update) {
        res = NOTIFY_EXISTS;
        goto out;
    }
    if (at < 0 && update) {
        res = NOTIFY_NOT_FOUND;
        goto out;
    }
    if (persist(reg, NULL, svc) != 0) {
        res = NOTIFY_IO_ERROR;
        goto out;
    }
    e = entry_new(svc, false, msg, sizeof(msg));
    ASSERT(e != NULL); /* callers give services notify_service_parse() accepted */
    pthread_rwlock_wrlock(&reg->lock);
    if (at >= 0) {
        old = reg->entries[at];
        reg->entries[at] = e;
    } else {
        reg->entries = xrealloc(reg->entries, (reg->n_entries + 1) * sizeof(*reg->entries));
        reg->entries[reg->n_entries++] = e;
    }
    pthread_rwlock_unlock(&reg->lock);
    res = at >= 0 ? NOTIFY_UPDATED : NOTIFY_CREATED;
out:
    pthread_mutex_unlock(&reg->write);
    entry_free(old);
    notify_service_free(svc); /* emptied by entry_new when taken */
    return res;
}

enum notify_put_result notify_registry_delete(struct notify_registry *reg, const char *name)
{
    enum notify_put_result res = NOTIFY_NOT_FOUND;
    struct notify_entry *old = NULL;
    ssize_t at;

    pthread_mutex_lock(&reg->write);
    at = find(reg, name);
    if (at < 0)
        goto out;
    if (reg->entries[at]->from_config) {
        res = NOTIFY_READ_ONLY;
        goto out;
    }
    if (persist(reg, name, NULL) != 0) {
        res = NOTIFY_IO_ERROR;
        goto out;
    }
    pthread_rwlock_wrlock(&reg->lock);
    old = reg->entries[at];
    memmove(reg->entries + at, reg->entries + at + 1,
            (reg->n_entries - (size_t)at - 1) * sizeof(*reg->entries));
    reg->n_entries--;
    pthread_rwlock_unlock(&reg->lock);
    res = NOTIFY_UPDATED;
out:
    pthread_mutex_unlock(&reg->write);
    entry_free(old);
    return res;
}

/* ---- reading --------------------------------------------------------------------------- */

void notify_registry_rdlock(struct notify_registry *reg)
{
    pthread_rwlock_rdlock(&reg->lock);
}

void notify_registry_unlock(struct notify_registry *reg)
{
    pthread_rwlock_unlock(&reg->lock);
}

struct notify_entry *const *notify_registry_entries(struct notify_registry *reg, size_t *n)
{
    *n = reg->n_entries;
    return reg->entries;
}

char *notify_registry_get_json(struct notify_registry *reg, const char *name, bool with_secrets)
{
    char *json = NULL;
    ssize_t at;

    pthread_rwlock_rdlock(&reg->lock);
    at = find(reg, name);
    if (at >= 0)
        json = notify_service_to_json(&reg->entries[at]->svc, with_secrets);
    pthread_rwlock_unlock(&reg->lock);
    return json;
}

char *notify_registry_list_json(struct notify_registry *reg, bool with_secrets)
{
    size_t cap = 64, len = 0;
    char *out = xmalloc(cap);

    out[len++] = '[';
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->n_entries; i++) {
        char *one = notify_service_to_json(&reg->entries[i]->svc, with_secrets);
        size_t one_len = strlen(one);

        if (len + one_len + 3 > cap) {
            cap = (len + one_len + 3) * 2;
            out = xrealloc(out, cap);
        }
        if (i > 0)
            out[len++] = ',';
        memcpy(out + len, one, one_len);
        len += one_len;
        free(one);
    }
    pthread_rwlock_unlock(&reg->lock);
    out[len++] = ']';
    out[len] = '\0';
    return out;
}

size_t notify_registry_count(struct notify_registry *reg)
{
    size_t n;

    pthread_rwlock_rdlock(&reg->lock);
    n = reg->n_entries;
    pthread_rwlock_unlock(&reg->lock);
    return n;
}

void notify_registry_each(struct notify_registry *reg,
                          void (*fn)(const struct notify_service *svc, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->n_entries; i++)
        fn(&reg->entries[i]->svc, arg);
    pthread_rwlock_unlock(&reg->lock);
}

bool notify_registry_lookup(struct notify_registry *reg, const char *name, char *pool,
                            size_t pool_cap, unsigned *max_attempts, char rev[17])
{
    ssize_t at;

    pthread_rwlock_rdlock(&reg->lock);
    at = find(reg, name);
    if (at >= 0) {
        const struct notify_entry *e = reg->entries[at];
        snprintf(pool, pool_cap, "%s", e->svc.pool != NULL ? e->svc.pool : "default");
        *max_attempts = e->svc.max_attempts;
        memcpy(rev, e->rev, 17);
    }
    pthread_rwlock_unlock(&reg->lock);
    return at >= 0;
}

/* ---- targets --------------------------------------------------------------------------- */

int notify_registry_set_targets(struct notify_registry *reg, struct notify_target *targets,
                                size_t n, char *msg, size_t msg_cap)
{
    struct retired_targets *old;

    for (size_t i = 0; i < n; i++) {
        if (notify_target_check(&targets[i], msg, msg_cap) != 0)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(targets[i].id, targets[j].id) == 0) {
                snprintf(msg, msg_cap, "target '%s' is defined twice", targets[i].id);
                goto fail;
            }
        }
    }
    old = xcalloc(1, sizeof(*old));
    pthread_mutex_lock(&reg->write);
    pthread_rwlock_wrlock(&reg->lock);
    old->targets = reg->targets;
    old->n = reg->n_targets;
    reg->targets = n > 0 ? targets : NULL;
    reg->n_targets = n;
    pthread_rwlock_unlock(&reg->lock);
    old->next = reg->retired;
    reg->retired = old;
    pthread_mutex_unlock(&reg->write);
    if (n == 0)
        free(targets);
    return 0;

fail:
    targets_free(targets, n);
    return -1;
}

static const struct notify_target *target_find(const struct notify_registry *reg, const char *id,
                                               size_t id_len)
{
    for (size_t i = 0; i < reg->n_targets; i++) {
        const struct notify_target *t = &reg->targets[i];
        if (strncmp(t->id, id, id_len) == 0 && t->id[id_len] == '\0')
            return t;
    }
    return NULL;
}

const struct notify_target *notify_registry_target_of_arn(struct notify_registry *reg,
                                                          const char *arn)
{
    const struct notify_target *t;
    const char *id, *type;
    size_t id_len, type_len;

    if (!notify_arn_parse(arn, &id, &id_len, &type, &type_len))
        return NULL;
    t = target_find(reg, id, id_len);
    /* the ARN's type is part of the name: a webhook is not reached as ...:redis */
    return t != NULL && strcmp(t->type, type) == 0 ? t : NULL;
}

bool notify_arn_known(void *arg, const char *arn)
{
    struct notify_registry *reg = arg;
    bool known;

    pthread_rwlock_rdlock(&reg->lock);
    known = notify_registry_target_of_arn(reg, arn) != NULL;
    pthread_rwlock_unlock(&reg->lock);
    return known;
}

const struct notify_target *notify_registry_target(struct notify_registry *reg, const char *id)
{
    const struct notify_target *t;

    pthread_rwlock_rdlock(&reg->lock);
    t = target_find(reg, id, strlen(id));
    pthread_rwlock_unlock(&reg->lock);
    return t;
}

size_t notify_registry_n_targets(struct notify_registry *reg)
{
    size_t n;

    pthread_rwlock_rdlock(&reg->lock);
    n = reg->n_targets;
    pthread_rwlock_unlock(&reg->lock);
    return n;
}

const struct notify_target *notify_registry_target_at(struct notify_registry *reg, size_t i)
{
    const struct notify_target *t = NULL;

    pthread_rwlock_rdlock(&reg->lock);
    if (i < reg->n_targets)
        t = &reg->targets[i];
    pthread_rwlock_unlock(&reg->lock);
    return t;
}

uint64_t notify_registry_count_skipped(struct notify_registry *reg)
{
    return ++reg->n_skipped;
}

uint64_t notify_registry_n_skipped(struct notify_registry *reg)
{
    return reg->n_skipped;
}

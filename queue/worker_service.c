/* floodgate-worker's view of services: the JSON the gateway writes to P svc:{name} (OSCAR
 * field names), parsed into what running a job needs, and cached by name and rev. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "gateway/xmalloc.h"
#include "queue/worker.h"

#define DEFAULT_TIMEOUT_S 300

/* ---- parsing ------------------------------------------------------------------------------- */

/* A string member, or a number written as text; NULL when absent or of another type. */
static char *dup_scalar(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%g", json_real_value(v));
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static unsigned get_uint(const json_t *obj, const char *name, unsigned dflt)
{
    const json_t *v = json_object_get(obj, name);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return (unsigned)json_integer_value(v);
    if (json_is_string(v)) {
        char *end;
        unsigned long n = strtoul(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && *end == '\0')
            return (unsigned)n;
    }
    return dflt;
}

static char **dup_string_array(const json_t *arr, size_t *n)
{
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return NULL;
    char **out = xcalloc(json_array_size(arr), sizeof(char *));
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v))
            out[(*n)++] = xstrdup(json_string_value(v));
    }
    return out;
}

static int parse_output(const json_t *o, struct worker_output *out, char *msg, size_t msg_cap)
{
    const char *path = json_string_value(json_object_get(o, "path"));
    if (path == NULL || path[0] == '\0') {
        snprintf(msg, msg_cap, "an output has no path");
        return -1;
    }
    while (*path == '/')
        path++;
    const char *slash = strchr(path, '/');
    out->bucket = slash != NULL ? xstrndup(path, (size_t)(slash - path)) : xstrdup(path);
    const char *rest = slash != NULL ? slash + 1 : "";
    size_t rl = strlen(rest);
    while (rl > 0 && rest[rl - 1] == '/')
        rl--;
    out->key_prefix = rl > 0 ? xasprintf("%.*s/", (int)rl, rest) : xstrdup("");
    const json_t *prov = json_object_get(o, "storage_provider");
    out->provider = json_is_string(prov) ? xstrdup(json_string_value(prov)) : NULL;
    out->prefix = dup_string_array(json_object_get(o, "prefix"), &out->n_prefix);
    out->suffix = dup_string_array(json_object_get(o, "suffix"), &out->n_suffix);
    if (out->bucket[0] == '\0') {
        snprintf(msg, msg_cap, "an output path has no bucket");
        return -1;
    }
    return 0;
}

static void add_env(struct worker_service *svc, json_t *obj)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return;
    size_t n = json_object_size(obj);
    svc->env_names = xrealloc(svc->env_names, (svc->n_env + n) * sizeof(char *));
    svc->env_values = xrealloc(svc->env_values, (svc->n_env + n) * sizeof(char *));
    json_object_foreach(obj, k, v)
    {
        char *value = dup_scalar(v);
        if (value == NULL)
            value = xstrdup("");
        svc->env_names[svc->n_env] = xstrdup(k);
        svc->env_values[svc->n_env++] = value;
    }
}

enum worker_log_level worker_log_level_parse(const char *s)
{
    static const struct {
        const char *name;
        enum worker_log_level level;
    } names[] = {
        {"debug", WORKER_LOG_DEBUG},  {"info", WORKER_LOG_INFO},   {"warning", WORKER_LOG_WARNING},
        {"warn", WORKER_LOG_WARNING}, {"error", WORKER_LOG_ERROR}, {"critical", WORKER_LOG_ERROR},
    };
    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].level;
    return WORKER_LOG_INFO;
}

static json_t *get_either(const json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(obj, a);
    return v != NULL ? v : json_object_get(obj, b);
}

struct worker_service *worker_service_parse(const char *json, size_t len, char *msg, size_t msg_cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    struct worker_service *svc = xcalloc(1, sizeof(*svc));

    if (!json_is_object(root)) {
        snprintf(msg, msg_cap, "service JSON: %s", root == NULL ? jerr.text : "not an object");
        goto fail;
    }
    svc->name = dup_scalar(json_object_get(root, "name"));
    svc->rev = dup_scalar(json_object_get(root, "rev"));
    if (svc->rev == NULL)
        svc->rev = xstrdup("");
    /* script_text is the script itself; `script` may be a file name, or (from the API) the
     * script too */
    svc->script_text = dup_scalar(json_object_get(root, "script_text"));
    if (svc->script_text == NULL)
        svc->script_text = dup_scalar(json_object_get(root, "script"));
    if (svc->name == NULL || svc->script_text == NULL || svc->script_text[0] == '\0') {
        snprintf(msg, msg_cap, "service JSON without %s",
                 svc->name == NULL ? "a name" : "a script");
        goto fail;
    }
    svc->timeout_s = get_uint(root, "timeout", DEFAULT_TIMEOUT_S);
    svc->concurrency = get_uint(root, "concurrency", 0);
    svc->log_level = worker_log_level_parse(json_string_value(json_object_get(root, "log_level")));
    const json_t *outs = json_object_get(root, "output");
    if (json_is_array(outs) && json_array_size(outs) > 0) {
        svc->outputs = xcalloc(json_array_size(outs), sizeof(*svc->outputs));
        size_t i;
        const json_t *o;
        json_array_foreach(outs, i, o)
        {
            svc->n_outputs++;
            if (parse_output(o, &svc->outputs[i], msg, msg_cap) != 0)
                goto fail;
        }
    }
    const json_t *env = json_object_get(root, "environment");
    add_env(svc, get_either(env, "variables", "Variables"));
    add_env(svc, get_either(env, "secrets", "Secrets"));
    json_decref(root);
    return svc;

fail:
    json_decref(root);
    worker_service_free(svc);
    return NULL;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void worker_service_free(struct worker_service *svc)
{
    if (svc == NULL)
        return;
    free(svc->name);
    free(svc->rev);
    free(svc->script_text);
    for (size_t i = 0; i < svc->n_outputs; i++) {
        struct worker_output *o = &svc->outputs[i];
        free(o->provider);
        free(o->bucket);
        free(o->key_prefix);
        free_strings(o->prefix, o->n_prefix);
        free_strings(o->suffix, o->n_suffix);
    }
    free(svc->outputs);
    free_strings(svc->env_names, svc->n_env);
    free_strings(svc->env_values, svc->n_env);
    free(svc);
}

bool worker_output_matches(const struct worker_output *o, const char *rel_path)
{
    size_t rl = strlen(rel_path);
    bool pre = o->n_prefix == 0, suf = o->n_suffix == 0;
    for (size_t i = 0; i < o->n_prefix && !pre; i++)
        pre = strncmp(rel_path, o->prefix[i], strlen(o->prefix[i])) == 0;
    for (size_t i = 0; i < o->n_suffix && !suf; i++) {
        size_t sl = strlen(o->suffix[i]);
        suf = sl <= rl && memcmp(rel_path + rl - sl, o->suffix[i], sl) == 0;
    }
    return pre && suf;
}

bool worker_output_is_local(const struct worker_output *o)
{
    static const char *const local[] = {"minio", "minio.default", "floodgate", "floodgate.default",
                                        "default"};
    if (o->provider == NULL || o->provider[0] == '\0')
        return true;
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strcmp(o->provider, local[i]) == 0)
            return true;
    return false;
}

/* ---- the cache ----------------------------------------------------------------------------- */

struct cache_entry {
    struct worker_service *svc;
    struct cache_entry *next;
};

struct worker_services {
    pthread_mutex_t mu;
    struct cache_entry *head; /* the newest service of each name */
};

struct worker_services *worker_services_new(void)
{
    struct worker_services *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void worker_services_free(struct worker_services *c)
{
    if (c == NULL)
        return;
    for (struct cache_entry *e = c->head, *next; e != NULL; e = next) {
        next = e->next;
        worker_service_free(e->svc);
        free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void unref_locked(struct worker_service *svc)
{
    if (--svc->refs == 0)
        worker_service_free(svc);
}

void worker_services_release(struct worker_services *c, struct worker_service *svc)
{
    if (svc == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    unref_locked(svc);
    pthread_mutex_unlock(&c->mu);
}

/* The cached service (a new reference) when its rev is `rev`; NULL otherwise. */
static struct worker_service *lookup(struct worker_services *c, const char *name, const char *rev)
{
    struct worker_service *svc = NULL;
    pthread_mutex_lock(&c->mu);
    for (struct cache_entry *e = c->head; e != NULL; e = e->next) {
        if (strcmp(e->svc->name, name) == 0) {
            if (rev[0] != '\0' && strcmp(e->svc->rev, rev) == 0) {
                svc = e->svc;
                svc->refs++;
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return svc;
}

/* Replaces the cached service of svc's name; the cache takes one reference. */
static void store(struct worker_services *c, struct worker_service *svc)
{
    pthread_mutex_lock(&c->mu);
    svc->refs++;
    struct cache_entry **pp = &c->head;
    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->svc->name, svc->name) == 0)
            break;
    if (*pp != NULL) {
        unref_locked((*pp)->svc);
        (*pp)->svc = svc;
    } else {
        struct cache_entry *e = xcalloc(1, sizeof(*e));
        e->svc = svc;
        e->next = c->head;
        c->head = e;
    }
    pthread_mutex_unlock(&c->mu);
}

enum worker_svc_result worker_services_get(struct worker_services *c, struct worker_redis *r,
                                           const char *name, const char *rev,
                                           struct worker_service **out, char *msg, size_t msg_cap)
{
    char key[512];
    *out = lookup(c, name, rev);
    if (*out != NULL)
        return WORKER_SVC_OK;
    worker_key(r->w, key, sizeof(key), "svc:", name);
    const char *argv[] = {"GET", key};
    redisReply *rep = worker_redis_cmd(r, 2, argv, NULL);
    if (rep == NULL) {
        snprintf(msg, msg_cap, "Redis unavailable");
        return WORKER_SVC_ERROR;
    }
    enum worker_svc_result res = WORKER_SVC_ERROR;
    if (rep->type == REDIS_REPLY_NIL) {
        res = WORKER_SVC_UNKNOWN;
    } else if (rep->type != REDIS_REPLY_STRING) {
        snprintf(msg, msg_cap, "GET %s: %s", key,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "not a string");
    } else {
        struct worker_service *svc = worker_service_parse(rep->str, rep->len, msg, msg_cap);
        if (svc != NULL && strcmp(svc->name, name) != 0) {
            snprintf(msg, msg_cap, "%s holds service '%.64s'", key, svc->name);
            worker_service_free(svc);
            svc = NULL;
        }
        if (svc != NULL) {
            if (rev[0] != '\0' && strcmp(svc->rev, rev) != 0)
                log_debug(&worker_log, "service %s: job of rev %s runs rev %s", name, rev,
                          svc->rev);
            store(c, svc);
            svc->refs++;
            *out = svc;
            res = WORKER_SVC_OK;
        }
    }
    freeReplyObject(rep);
    return res;
}

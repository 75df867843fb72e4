/* notify: notification targets as the config file declares them (the conf/ table and its
 * checks) and their ARNs. The registry keeps the targets in force (registry.c); the senders
 * that deliver to them are sender.c, webhook.c and redis_target.c. */
#include <stdio.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"

#define T struct notify_target

static bool is_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static bool is_valid_id(const char *id, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_id_char(id[i]))
            return false;
    }
    return true;
}

static bool has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);

    /* the scheme and "://" then at least a host */
    return strncmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0 && url[n + 3] != '\0' &&
           url[n + 3] != '/';
}

/* The endpoint's scheme against the type; either may still be unset (keys come in any
 * order: the check of whichever comes last sees both). */
static int check_pair(const T *t, char *msg, size_t msg_cap)
{
    const char *e = t->endpoint;

    if (t->type != NULL && strcmp(t->type, "webhook") != 0 && strcmp(t->type, "redis") != 0) {
        snprintf(msg, msg_cap, "must be webhook or redis");
        return -1;
    }
    if (e == NULL)
        return 0;
    if (!has_scheme(e, "http") && !has_scheme(e, "https") && !has_scheme(e, "redis")) {
        snprintf(msg, msg_cap, "must be an http://, https:// or redis:// URL with a host");
        return -1;
    }
    if (t->type == NULL)
        return 0;
    if (strcmp(t->type, "webhook") == 0 && has_scheme(e, "redis")) {
        snprintf(msg, msg_cap, "a webhook's endpoint must be an http:// or https:// URL");
        return -1;
    }
    if (strcmp(t->type, "redis") == 0 && !has_scheme(e, "redis")) {
        snprintf(msg, msg_cap, "a redis target's endpoint must be a redis:// URL");
        return -1;
    }
    return 0;
}

static int check_id(const void *base, const struct conf_key *key, char *msg, size_t msg_cap)
{
    const T *t = base;

    (void)key;
    if (t->id != NULL && !is_valid_id(t->id, strlen(t->id))) {
        snprintf(msg, msg_cap, "must be 1 to 64 of A-Z a-z 0-9 _ . -");
        return -1;
    }
    return 0;
}

static int check_type_or_endpoint(const void *base, const struct conf_key *key, char *msg,
                                  size_t msg_cap)
{
    (void)key;
    return check_pair(base, msg, msg_cap);
}

static int check_format(const void *base, const struct conf_key *key, char *msg, size_t msg_cap)
{
    const T *t = base;

    (void)key;
    if (t->format != NULL && strcmp(t->format, "stream") != 0 && strcmp(t->format, "list") != 0) {
        snprintf(msg, msg_cap, "must be stream or list");
        return -1;
    }
    return 0;
}

const struct conf_key notify_target_keys[] = {
    {.name = "id",
     .type = CONF_STRING,
     CONF_FIELD(T, id),
     .flags = CONF_REQUIRED | CONF_NONEMPTY,
     .check = check_id,
     .help = "the target's name in its ARN arn:floodgate:sqs::<id>:<type>"},
    {.name = "type",
     .type = CONF_STRING,
     CONF_FIELD(T, type),
     .flags = CONF_REQUIRED | CONF_NONEMPTY,
     .check = check_type_or_endpoint,
     .help = "webhook or redis"},
    {.name = "endpoint",
     .type = CONF_STRING,
     CONF_FIELD(T, endpoint),
     .flags = CONF_REQUIRED | CONF_NONEMPTY,
     .check = check_type_or_endpoint,
     .help = "webhook: http(s)://host[:port]/path; redis: redis://[:password@]host[:port][/db]"},
    {.name = "ca_file", .type = CONF_STRING, CONF_FIELD(T, ca_file)},
    {.name = "tls_verify", .type = CONF_BOOL, CONF_FIELD(T, tls_verify), .dflt = "true"},
    {.name = "client_cert", .type = CONF_STRING, CONF_FIELD(T, client_cert)},
    {.name = "client_key", .type = CONF_STRING, CONF_FIELD(T, client_key)},
    {.name = "auth_token", .type = CONF_STRING, CONF_FIELD(T, auth_token)},
    {.name = "timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(T, timeout_ms),
     .dflt = "10s",
     .min = 1,
     .max = 3600000},
    {.name = "concurrency",
     .type = CONF_UINT,
     CONF_FIELD(T, concurrency),
     .dflt = "16",
     .min = 1,
     .max = 4096},
    {.name = "max_attempts",
     .type = CONF_UINT,
     CONF_FIELD(T, max_attempts),
     .dflt = "10",
     .min = 1,
     .max = 1000000},
    {.name = "max_age",
     .type = CONF_DURATION_S,
     CONF_FIELD(T, max_age_s),
     .dflt = "1d",
     .min = 1,
     .max = 10LL * 366 * 86400},
    {.name = "key", .type = CONF_STRING, CONF_FIELD(T, key), .dflt = "floodgate-events"},
    {.name = "format",
     .type = CONF_STRING,
     CONF_FIELD(T, format),
     .dflt = "stream",
     .check = check_format},
    CONF_KEY_END,
};

void notify_target_cleanup(struct notify_target *t)
{
    conf_free(notify_target_keys, t);
}

/* The checks of the table, again, for targets that did not come through it (and a `targets:`
 * list element missing `type` or `endpoint` cannot happen there: they are required). */
int notify_target_check(const struct notify_target *t, char *msg, size_t msg_cap)
{
    char why[128];

    if (t->id == NULL || !is_valid_id(t->id, strlen(t->id))) {
        snprintf(msg, msg_cap, "target '%s': the id must be 1 to 64 of A-Z a-z 0-9 _ . -",
                 t->id != NULL ? t->id : "");
        return -1;
    }
    if (t->type == NULL || t->endpoint == NULL) {
        snprintf(msg, msg_cap, "target '%s': type and endpoint are required", t->id);
        return -1;
    }
    if (check_pair(t, why, sizeof(why)) != 0 || check_format(t, NULL, why, sizeof(why)) != 0) {
        snprintf(msg, msg_cap, "target '%s': %s", t->id, why);
        return -1;
    }
    return 0;
}

/* ---- ARNs ------------------------------------------------------------------------------ */

bool notify_arn_parse(const char *arn, const char **id, size_t *id_len, const char **type,
                      size_t *type_len)
{
    static const char *const prefixes[] = {"arn:floodgate:sqs:", "arn:minio:sqs:"};
    const char *p = NULL, *colon;

    if (arn == NULL)
        return false;
    for (size_t i = 0; i < 2 && p == NULL; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(arn, prefixes[i], n) == 0)
            p = arn + n;
    }
    /* the region: this gateway has one, so an ARN names none */
    if (p == NULL || *p != ':')
        return false;
    p++;
    colon = strchr(p, ':');
    if (colon == NULL || !is_valid_id(p, (size_t)(colon - p)))
        return false;
    *id = p;
    *id_len = (size_t)(colon - p);
    *type = colon + 1;
    *type_len = strlen(colon + 1);
    return strcmp(*type, "webhook") == 0 || strcmp(*type, "redis") == 0;
}

/* notify: a service (OSCAR's FDL fields plus floodgate's): its conf/ table, the whole-service
 * checks, scripts read from files, the API body parser, the JSON it is shown and stored as,
 * and its rev. The registry that holds services is registry.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"

#define SCRIPT_MAX_BYTES (1u << 20)
#define SECRET_MASK      "********"

/* ---- the table ------------------------------------------------------------------------- */

#define S struct notify_service

/* OSCAR fields floodgate ignores: every one lands in the same `ignored` field. */
#define IGNORED_STRING(n)                                                                          \
    {                                                                                              \
        .name = (n), .type = CONF_STRING, CONF_FIELD(S, ignored.value)                             \
    }
#define IGNORED_LIST(n)                                                                            \
    {                                                                                              \
        .name = (n), .type = CONF_STRING_LIST, .offset = offsetof(S, ignored.list),                \
        CONF_COUNT(S, ignored.n_list)                                                              \
    }
#define IGNORED_MAP(n)                                                                             \
    {                                                                                              \
        .name = (n), .type = CONF_STRING_MAP, .offset = offsetof(S, ignored.map),                  \
        CONF_COUNT(S, ignored.n_map)                                                               \
    }
#define IGNORED_SECTION(n, keys)                                                                   \
    {                                                                                              \
        .name = (n), .type = CONF_SECTION, .offset = 0, .sub = (keys)                              \
    }
#define IGNORED_MAPS(n, keys)                                                                      \
    {                                                                                              \
        .name = (n), .type = CONF_LIST, .offset = offsetof(S, ignored.maps), .sub = (keys),        \
        .elem_size = sizeof(S), CONF_COUNT(S, ignored.n_maps)                                      \
    }

static const struct conf_key io_keys[] = {
    {.name = "storage_provider",
     .type = CONF_STRING,
     CONF_FIELD(struct notify_io, storage_provider)},
    {.name = "path",
     .type = CONF_STRING,
     CONF_FIELD(struct notify_io, path),
     .flags = CONF_REQUIRED | CONF_NONEMPTY},
    {.name = "prefix",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct notify_io, prefix),
     CONF_COUNT(struct notify_io, n_prefix)},
    {.name = "suffix",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct notify_io, suffix),
     CONF_COUNT(struct notify_io, n_suffix)},
    CONF_KEY_END,
};

static const struct conf_key environment_keys[] = {
    {.name = "variables",
     .type = CONF_STRING_MAP,
     .offset = offsetof(S, environment.variables),
     CONF_COUNT(S, environment.n_variables)},
    {.name = "secrets",
     .type = CONF_STRING_MAP,
     .offset = offsetof(S, environment.secrets),
     CONF_COUNT(S, environment.n_secrets)},
    CONF_KEY_END,
};

/* OSCAR's replica / federation member. */
static const struct conf_key ignored_replica_keys[] = {
    IGNORED_STRING("type"),         IGNORED_STRING("cluster_id"),
    IGNORED_STRING("service_name"), IGNORED_STRING("url"),
    IGNORED_STRING("ssl_verify"),   IGNORED_STRING("priority"),
    IGNORED_MAP("headers"),         CONF_KEY_END,
};

static const struct conf_key ignored_expose_keys[] = {
    IGNORED_STRING("min_scale"),       IGNORED_STRING("max_scale"),
    IGNORED_STRING("api_port"),        IGNORED_STRING("cpu_threshold"),
    IGNORED_STRING("rewrite_target"),  IGNORED_STRING("nodePort"),
    IGNORED_STRING("default_command"), IGNORED_STRING("set_auth"),
    IGNORED_STRING("auth_type"),       IGNORED_STRING("health_path"),
    IGNORED_STRING("probe_mode"),      CONF_KEY_END,
};

static const struct conf_key ignored_synchronous_keys[] = {
    IGNORED_STRING("min_scale"),
    IGNORED_STRING("max_scale"),
    CONF_KEY_END,
};

static const struct conf_key ignored_mount_keys[] = {
    IGNORED_STRING("storage_provider"),
    IGNORED_STRING("path"),
    IGNORED_LIST("prefix"),
    IGNORED_LIST("suffix"),
    IGNORED_LIST("options"),
    CONF_KEY_END,
};

static const struct conf_key ignored_volume_keys[] = {
    IGNORED_STRING("name"),
    IGNORED_STRING("size"),
    IGNORED_STRING("mount_path"),
    IGNORED_STRING("lifecycle_policy"),
    CONF_KEY_END,
};

static const struct conf_key ignored_federation_keys[] = {
    IGNORED_STRING("group_id"),
    IGNORED_STRING("topology"),
    IGNORED_STRING("delegation"),
    IGNORED_STRING("rescheduler_threshold"),
    IGNORED_MAPS("members", ignored_replica_keys),
    CONF_KEY_END,
};

const struct conf_key notify_service_keys[] = {
    {.name = "name",
     .type = CONF_STRING,
     CONF_FIELD(S, name),
     .flags = CONF_REQUIRED | CONF_NONEMPTY},
    {.name = "script", .type = CONF_STRING, CONF_FIELD(S, script)},
    {.name = "cluster_id", .type = CONF_STRING, CONF_FIELD(S, cluster_id)},
    {.name = "image", .type = CONF_STRING, CONF_FIELD(S, image)},
    {.name = "memory", .type = CONF_STRING, CONF_FIELD(S, memory)},
    {.name = "cpu", .type = CONF_STRING, CONF_FIELD(S, cpu)},
    {.name = "log_level", .type = CONF_STRING, CONF_FIELD(S, log_level)},
    {.name = "input",
     .type = CONF_LIST,
     .offset = offsetof(S, input),
     .sub = io_keys,
     .elem_size = sizeof(struct notify_io),
     CONF_COUNT(S, n_input)},
    {.name = "output",
     .type = CONF_LIST,
     .offset = offsetof(S, output),
     .sub = io_keys,
     .elem_size = sizeof(struct notify_io),
     CONF_COUNT(S, n_output)},
    {.name = "environment", .type = CONF_SECTION, .offset = 0, .sub = environment_keys},
    {.name = "pool",
     .type = CONF_STRING,
     CONF_FIELD(S, pool),
     .dflt = "default",
     .flags = CONF_NONEMPTY},
    {.name = "timeout",
     .type = CONF_DURATION_S,
     CONF_FIELD(S, timeout_s),
     .dflt = "300s",
     .min = 1,
     .max = 7 * 86400},
    {.name = "max_attempts",
     .type = CONF_UINT,
     CONF_FIELD(S, max_attempts),
     .dflt = "3",
     .min = 1,
     .max = 100},
    {.name = "concurrency", .type = CONF_UINT, CONF_FIELD(S, concurrency), .dflt = "0"},
    /* OSCAR FDL fields accepted so that FDL files load unchanged, and ignored */
    IGNORED_STRING("alpine"),
    IGNORED_STRING("vo"),
    IGNORED_STRING("token"),
    IGNORED_STRING("owner"),
    IGNORED_STRING("total_memory"),
    IGNORED_STRING("total_cpu"),
    IGNORED_STRING("ephemeral_storage_request"),
    IGNORED_STRING("enable_gpu"),
    IGNORED_STRING("enable_sgx"),
    IGNORED_STRING("image_prefetch"),
    IGNORED_STRING("file_stage_in"),
    IGNORED_STRING("interlink_node_name"),
    IGNORED_STRING("visibility"),
    IGNORED_STRING("isolation_level"),
    IGNORED_STRING("delegation"),
    IGNORED_STRING("rescheduler_threshold"),
    IGNORED_STRING("rev"), /* ours, from a GET brought back in a PUT */
    IGNORED_LIST("allowed_users"),
    IGNORED_LIST("image_pull_secrets"),
    IGNORED_LIST("bucket_list"),
    IGNORED_MAP("labels"),
    IGNORED_MAP("annotations"),
    IGNORED_MAPS("replicas", ignored_replica_keys),
    IGNORED_SECTION("expose", ignored_expose_keys),
    IGNORED_SECTION("synchronous", ignored_synchronous_keys),
    IGNORED_SECTION("mount", ignored_mount_keys),
    IGNORED_SECTION("volume", ignored_volume_keys),
    IGNORED_SECTION("federation", ignored_federation_keys),
    CONF_KEY_END,
};

#undef S

static const struct conf_key fdl_functions_keys[] = {
    {.name = "oscar",
     .type = CONF_SECTION_MAP,
     .offset = offsetof(struct notify_fdl, services),
     .sub = notify_service_keys,
     .elem_size = sizeof(struct notify_service),
     CONF_COUNT(struct notify_fdl, n_services),
     CONF_KEY_FIELD(struct notify_service, cluster_id)},
    CONF_KEY_END,
};

const struct conf_key notify_fdl_keys[] = {
    {.name = "functions", .type = CONF_SECTION, .offset = 0, .sub = fdl_functions_keys},
    /* credentials for OSCAR's storage and other clusters: floodgate is the storage (paths name
     * its own buckets whatever their storage_provider) and delegates to no cluster */
    {.name = "storage_providers", .type = CONF_ANY_MAP},
    {.name = "clusters", .type = CONF_ANY_MAP},
    CONF_KEY_END,
};

void notify_service_free(struct notify_service *svc)
{
    if (svc == NULL)
        return;
    free(svc->script_text);
    svc->script_text = NULL;
    conf_free(notify_service_keys, svc);
}

/* ---- checks ---------------------------------------------------------------------------- */

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_valid_name(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;

    if (len == 0 || len > 63 || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_name_char(name[i]))
            return false;
    }
    return true;
}

static bool is_ipv4_like(const char *s, size_t len)
{
    size_t dots = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return dots == 3;
}

/* S3's bucket naming rules: 3..63 of [a-z0-9.-], starting and ending with a letter or digit,
 * no "..", not an IPv4 address. */
static bool is_valid_bucket(const char *s, size_t len)
{
    if (len < 3 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return false;
        if ((i == 0 || i == len - 1) && !alnum)
            return false;
        if (c == '.' && s[i + 1] == '.')
            return false;
    }
    return !is_ipv4_like(s, len);
}

int notify_path_split(const char *path, char **bucket, char **prefix, char *msg, size_t msg_cap)
{
    const char *slash = strchr(path, '/');
    size_t blen = slash != NULL ? (size_t)(slash - path) : strlen(path);
    const char *rest = slash != NULL ? slash + 1 : "";
    size_t rlen = strlen(rest);

    *bucket = NULL;
    *prefix = NULL;
    if (blen == 0) {
        snprintf(msg, msg_cap, "path '%.60s' has no bucket (write \"bucket[/folder]\")", path);
        return -1;
    }
    if (!is_valid_bucket(path, blen)) {
        snprintf(msg, msg_cap, "path '%.60s': '%.*s' is not a valid bucket name", path,
                 (int)(blen > 63 ? 63 : blen), path);
        return -1;
    }
    /* "bucket/dir", "bucket/dir/" and "bucket/dir//" all mean the folder "dir/" */
    while (rlen > 0 && rest[rlen - 1] == '/')
        rlen--;
    *bucket = xstrndup(path, blen);
    *prefix = rlen > 0 ? xasprintf("%.*s/", (int)rlen, rest) : xstrdup("");
    return 0;
}

static int check_ios(const struct notify_io *ios, size_t n, size_t *index, char *msg,
                     size_t msg_cap)
{
    for (size_t i = 0; i < n; i++) {
        char *bucket, *prefix;

        if (ios[i].path == NULL) {
            snprintf(msg, msg_cap, "needs a path");
            *index = i;
            return -1;
        }
        if (notify_path_split(ios[i].path, &bucket, &prefix, msg, msg_cap) != 0) {
            *index = i;
            return -1;
        }
        free(bucket);
        free(prefix);
    }
    return 0;
}

/* Names of environment variables: a '=' would split differently in the worker's environ,
 * and libyaml reads no mapping key longer than 1024 bytes back from our JSON. */
static int check_env_names(const struct conf_kv *kv, size_t n, size_t *index, char *msg,
                           size_t msg_cap)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(kv[i].key);
        if (len == 0 || len > 255 || strchr(kv[i].key, '=') != NULL) {
            snprintf(msg, msg_cap, "'%.40s%s' is not a variable name (1 to 255 bytes, no '=')",
                     kv[i].key, len > 40 ? "..." : "");
            *index = i;
            return -1;
        }
    }
    return 0;
}

int notify_service_check(const struct notify_service *svc, const char **field, size_t *index,
                         char *msg, size_t msg_cap)
{
    char why[128];

    *index = 0;
    if (!is_valid_name(svc->name)) {
        *field = "name";
        snprintf(msg, msg_cap,
                 "service name '%.63s' must be 1 to 63 of a-z, 0-9 and '-', not starting "
                 "with '-'",
                 svc->name != NULL ? svc->name : "");
        return -1;
    }
    *field = "input";
    if (svc->n_input == 0) {
        snprintf(msg, msg_cap, "needs at least one input (path: bucket[/folder])");
        return -1;
    }
    if (check_ios(svc->input, svc->n_input, index, why, sizeof(why)) != 0) {
        snprintf(msg, msg_cap, "input[%zu]: %s", *index, why);
        return -1;
    }
    *field = "output";
    if (check_ios(svc->output, svc->n_output, index, why, sizeof(why)) != 0) {
        snprintf(msg, msg_cap, "output[%zu]: %s", *index, why);
        return -1;
    }
    *field = "environment";
    if (check_env_names(svc->environment.variables, svc->environment.n_variables, index, why,
                        sizeof(why)) != 0 ||
        check_env_names(svc->environment.secrets, svc->environment.n_secrets, index, why,
                        sizeof(why)) != 0) {
        snprintf(msg, msg_cap, "environment: %s", why);
        return -1;
    }
    return 0;
}

/* ---- scripts from files ---------------------------------------------------------------- */

/* UTF-8 without NUL bytes: what a C string in JSON can carry. */
static bool is_text(const char *s, size_t len)
{
    json_t *j;

    if (memchr(s, '\0', len) != NULL)
        return false;
    j = json_stringn(s, len);
    json_decref(j);
    return j != NULL;
}

static char *read_script(const char *path, char *msg, size_t msg_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *text = NULL;
    size_t len = 0;

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(msg, msg_cap, "script file '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, msg_cap, "script file '%s' is not a regular file", path);
        goto fail;
    }
    if (st.st_size > (off_t)SCRIPT_MAX_BYTES) {
        snprintf(msg, msg_cap, "script file '%s' is larger than 1 MiB", path);
        goto fail;
    }
    text = xmalloc(SCRIPT_MAX_BYTES + 1);
    for (;;) {
        ssize_t n = read(fd, text + len, SCRIPT_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(msg, msg_cap, "script file '%s': %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > SCRIPT_MAX_BYTES) { /* it grew since fstat */
            snprintf(msg, msg_cap, "script file '%s' is larger than 1 MiB", path);
            goto fail;
        }
    }
    if (!is_text(text, len)) {
        snprintf(msg, msg_cap, "script file '%s' is not UTF-8 text", path);
        goto fail;
    }
    text[len] = '\0';
    close(fd);
    return xrealloc(text, len + 1);

fail:
    free(text);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int notify_service_resolve(struct notify_service *svc, const char *base_dir, char *msg,
                           size_t msg_cap)
{
    const char *field;
    size_t index;

    free(svc->script_text);
    svc->script_text = NULL;
    if (svc->script != NULL && svc->script[0] != '\0' && strchr(svc->script, '\n') == NULL) {
        char *path = svc->script[0] == '/' || base_dir == NULL
                         ? xstrdup(svc->script)
                         : xasprintf("%s/%s", base_dir, svc->script);
        svc->script_text = read_script(path, msg, msg_cap);
        free(path);
        if (svc->script_text == NULL)
            return -1;
    } else if (svc->script != NULL) {
        svc->script_text = xstrdup(svc->script);
    }
    return notify_service_check(svc, &field, &index, msg, msg_cap);
}

/* ---- the API body ---------------------------------------------------------------------- */

/* The line of what a failed check points at: the name, the input or output element's path,
 * the list, or the document. */
static int check_line(const struct conf_node *root, const char *field, size_t index)
{
    const struct conf_node *n = conf_node_get(root, field);
    const struct conf_node *path;

    if (n == NULL)
        return root->line;
    if (n->kind == CONF_NODE_SEQ && index < n->n_items) {
        path = conf_node_get(&n->items[index], "path");
        return path != NULL ? path->line : n->items[index].line;
    }
    return n->line;
}

int notify_service_parse(const char *doc, size_t len, struct notify_service *out,
                         struct conf_error *err)
{
    struct conf_node *root = conf_parse(doc, len, err);
    const char *field;
    size_t index;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    conf_defaults(notify_service_keys, out);
    if (root == NULL) {
        notify_service_free(out);
        return -1;
    }
    if (conf_apply(notify_service_keys, out, root, err) != 0)
        goto out;
    if (out->script != NULL)
        out->script_text = xstrdup(out->script);
    if (notify_service_check(out, &field, &index, err->msg, sizeof(err->msg)) != 0) {
        err->line = check_line(root, field, index);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        notify_service_free(out);
    conf_node_free(root);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void set_string(json_t *obj, const char *name, const char *value)
{
    if (value != NULL)
        json_object_set_new(obj, name, json_string(value));
}

static json_t *string_array(char *const *items, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

static json_t *string_map(const struct conf_kv *kv, size_t n, bool mask)
{
    json_t *o = json_object();

    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(mask ? SECRET_MASK : kv[i].value));
    return o;
}

static json_t *io_array(const struct notify_io *ios, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        set_string(o, "storage_provider", ios[i].storage_provider);
        set_string(o, "path", ios[i].path);
        json_object_set_new(o, "prefix", string_array(ios[i].prefix, ios[i].n_prefix));
        json_object_set_new(o, "suffix", string_array(ios[i].suffix, ios[i].n_suffix));
        json_array_append_new(a, o);
    }
    return a;
}

/* The service without its rev, members in a fixed order (the rev hashes this text). */
static json_t *service_object(const struct notify_service *svc, bool with_secrets)
{
    json_t *o = json_object();
    json_t *env = json_object();
    const char *script = svc->script_text != NULL ? svc->script_text : svc->script;

    set_string(o, "name", svc->name);
    set_string(o, "script", script);
    set_string(o, "image", svc->image);
    set_string(o, "memory", svc->memory);
    set_string(o, "cpu", svc->cpu);
    set_string(o, "log_level", svc->log_level);
    json_object_set_new(o, "input", io_array(svc->input, svc->n_input));
    json_object_set_new(o, "output", io_array(svc->output, svc->n_output));
    json_object_set_new(
        env, "variables",
        string_map(svc->environment.variables, svc->environment.n_variables, false));
    json_object_set_new(
        env, "secrets",
        string_map(svc->environment.secrets, svc->environment.n_secrets, !with_secrets));
    json_object_set_new(o, "environment", env);
    set_string(o, "pool", svc->pool);
    json_object_set_new(o, "timeout", json_integer(svc->timeout_s));
    json_object_set_new(o, "max_attempts", json_integer(svc->max_attempts));
    json_object_set_new(o, "concurrency", json_integer(svc->concurrency));
    return o;
}

/* ASCII only: read back through libyaml (the state file, a GET brought back in a PUT), a raw
 * U+0085, U+2028 or U+2029 would count as a line break and be folded away. */
static char *dump(const json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);

    ASSERT(text != NULL); /* only fails when memory does */
    return text;
}

void notify_rev_of(const char *json, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789abcdef";

    int rc = EVP_Digest(json, strlen(json), md, &md_len, EVP_sha256(), NULL);

    ASSERT(rc == 1 && md_len >= 8);
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[16] = '\0';
}

void notify_service_rev(const struct notify_service *svc, char out[17])
{
    json_t *o = service_object(svc, true);
    char *text = dump(o);

    notify_rev_of(text, out);
    free(text);
    json_decref(o);
}

char *notify_service_to_json(const struct notify_service *svc, bool with_secrets)
{
    json_t *o = service_object(svc, with_secrets);
    char *text, *copy;
    char rev[17];

    notify_service_rev(svc, rev);
    json_object_set_new(o, "rev", json_string(rev));
    text = dump(o);
    json_decref(o);
    copy = xstrdup(text); /* malloc'd, whatever allocator jansson was given */
    free(text);
    return copy;
}

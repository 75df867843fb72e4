/* The daemon's settings: one conf/ table composed of the modules' tables, the command line,
 * and environment credentials. Precedence: table defaults < config file < command line; the
 * environment only adds a user; --services files only add services. Starting the daemon with
 * them is main.c's job.
 *
 * YAML shape (every key optional; examples/floodgate.yaml documents each one):
 *
 *   listen: 127.0.0.1:9000        -> listen          (--listen; numeric address)
 *   log_level: info               -> log_level       (--log-level)
 *   error_log: stderr             -> error_log       (--error-log; "-" or stderr)
 *   access_log: stdout            -> access_log      (--access-log; "-" or stdout, "off")
 *   pid_file: /run/floodgate.pid  -> pid_file
 *   drain_timeout: 30s            -> drain_timeout_ms
 *   redis: redis://127.0.0.1:6379 -> redis_url       (--redis)
 *   limits: {max_header_size, ...}-> limits          (gateway/h1_config.c)
 *   data_dir: ./data              -> s3.data_dir     (--data-dir; s3api/config.c from here on)
 *   region: us-east-1             -> s3.region       (--region)
 *   domain: s3.local              -> s3.domain       (--domain)
 *   users: [{name, access_key, secret_key}] -> s3.users
 *   store: {max_object_size, inline_max_size, upload_max_age, disk_threads} -> s3.*
 *   auth: {sigv2, max_skew}       -> s3.sigv2, s3.max_skew_s
 *   targets: [{id, type, endpoint, ca_file, auth_token, ...}] -> targets (bucket notification
 *                                    destinations, arn:floodgate:sqs::<id>:<type>)
 *   jobs: {retention, log_max, visibility_timeout, run_timeout, relay_batch, prefix} -> jobs
 *   services: [{name, script, input, output, environment, pool, timeout, ...}] -> services
 *                                    (a one-line `script` is a file relative to the config's
 *                                    directory)
 *   functions: {oscar: [{<cluster-id>: {service}}, ...]} -> services (after services:;
 *                                    notify_fdl_keys: an OSCAR FDL file's shape, cluster_id
 *                                    = the key)
 *   storage_providers: {...}, clusters: {...} -> nothing (FDL keys; must be mappings)
 *
 * `floodgate --services FILE` (repeatable) reads services:, functions:, storage_providers:
 * and clusters: (and nothing else) from another file, such as an unchanged OSCAR FDL file; its
 * scripts are relative to that file's directory. Service names are unique across all files;
 * errors name the file and the line.
 *
 * error_log: stderr and access_log: stdout are stored as "-" (what log_open() takes): in YAML
 * an unquoted `error_log: -` is a list item, not the string "-".
 *
 * FLOODGATE_ACCESS_KEY and FLOODGATE_SECRET_KEY add a user "admin" next to the configured ones
 * (not twice when a configured user already has the same pair). */
#include "gateway/main_settings.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gateway/h1_config.h"
#include "gateway/xmalloc.h"
#include "s3api/config.h"

#define EXIT_CONFIG 1 /* the settings are wrong */
#define EXIT_USAGE  2 /* the command line is wrong */

/* What h1_server_listen() takes: "address:port", "[address]:port", ":port" or "*:port" (any
 * address); numeric addresses only, port 0 lets the kernel pick. Checked here so that a bad
 * address is a configuration error with a line rather than a failure at start-up. */
static int check_listen(const void *base, const struct conf_key *key, char *msg, size_t cap)
{
    const char *addr = *(char *const *)((const char *)base + key->offset);
    const char *host, *port;
    size_t host_len;
    char hbuf[INET6_ADDRSTRLEN];
    unsigned char sa[sizeof(struct in6_addr)];
    uint64_t pnum;

    if (addr == NULL)
        return 0;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(msg, cap, "expected [address]:port, got '%.40s'", addr);
            return -1;
        }
        host = addr + 1;
        host_len = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL) {
            snprintf(msg, cap, "expected address:port, got '%.40s'", addr);
            return -1;
        }
        host = addr;
        host_len = (size_t)(colon - addr);
        port = colon + 1;
    }
    if (conf_parse_uint(port, &pnum) != 0 || pnum > 65535) {
        snprintf(msg, cap, "port must be a number from 0 to 65535, got '%.20s'", port);
        return -1;
    }
    if (host_len == 0 || (host_len == 1 && host[0] == '*'))
        return 0;
    if (host_len < sizeof(hbuf)) {
        memcpy(hbuf, host, host_len);
        hbuf[host_len] = '\0';
        if (inet_pton(AF_INET, hbuf, sa) == 1 || inet_pton(AF_INET6, hbuf, sa) == 1)
            return 0;
    }
    snprintf(msg, cap, "'%.*s' is not a numeric IPv4 or IPv6 address",
             (int)(host_len > 46 ? 46 : host_len), host);
    return -1;
}

static int check_log_level(const void *base, const struct conf_key *key, char *msg, size_t cap)
{
    const char *lvl = *(char *const *)((const char *)base + key->offset);
    enum log_level parsed;

    if (lvl == NULL || log_level_parse(lvl, &parsed) == 0)
        return 0;
    snprintf(msg, cap, "unknown log level '%.40s' (use error, warn, info or debug)", lvl);
    return -1;
}

/* The keys that define services: in the config file, and all a --services file may hold. */
static const struct conf_key services_file_keys[] = {
    {.name = "services",
     .type = CONF_LIST,
     .offset = offsetof(struct fg_settings, services),
     .sub = notify_service_keys,
     .elem_size = sizeof(struct notify_service),
     CONF_COUNT(struct fg_settings, n_services)},
    {.type = CONF_INCLUDE, .offset = offsetof(struct fg_settings, fdl), .sub = notify_fdl_keys},
    CONF_KEY_END,
};

static const struct conf_key settings_keys[] = {
    {.name = "listen",
     .type = CONF_STRING,
     CONF_FIELD(struct fg_settings, listen),
     .dflt = "127.0.0.1:9000",
     .flags = CONF_NONEMPTY,
     .check = check_listen},
    {.name = "log_level",
     .type = CONF_STRING,
     CONF_FIELD(struct fg_settings, log_level),
     .dflt = "info",
     .flags = CONF_NONEMPTY,
     .check = check_log_level},
    {.name = "error_log",
     .type = CONF_STRING,
     CONF_FIELD(struct fg_settings, error_log),
     .dflt = "-",
     .flags = CONF_NONEMPTY},
    {.name = "access_log",
     .type = CONF_STRING,
     CONF_FIELD(struct fg_settings, access_log),
     .dflt = "-",
     .flags = CONF_NONEMPTY},
    {.name = "pid_file", .type = CONF_STRING, CONF_FIELD(struct fg_settings, pid_file)},
    {.name = "drain_timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(struct fg_settings, drain_timeout_ms),
     .dflt = "30s",
     .min = 0,
     .max = 3600 * 1000LL},
    {.name = "redis", .type = CONF_STRING, CONF_FIELD(struct fg_settings, redis_url)},
    {.name = "limits",
     .type = CONF_SECTION,
     .offset = offsetof(struct fg_settings, limits),
     .sub = h1_limits_keys},
    {.type = CONF_INCLUDE, .offset = offsetof(struct fg_settings, s3), .sub = s3_config_keys},
    {.name = "targets",
     .type = CONF_LIST,
     .offset = offsetof(struct fg_settings, targets),
     .sub = notify_target_keys,
     .elem_size = sizeof(struct notify_target),
     CONF_COUNT(struct fg_settings, n_targets)},
    {.name = "jobs",
     .type = CONF_SECTION,
     .offset = offsetof(struct fg_settings, jobs),
     .sub = queue_config_keys},
    {.type = CONF_INCLUDE, .offset = 0, .sub = services_file_keys},
    CONF_KEY_END,
};

/* Options that set a key; their getopt values index this table from OPT_KEY. */
enum { OPT_SERVICES = 1, OPT_KEY = 256 };
static const struct {
    const char *option;
    const char *key;
} key_options[] = {
    {"listen", "listen"},         {"data-dir", "data_dir"},   {"log-level", "log_level"},
    {"region", "region"},         {"domain", "domain"},       {"redis", "redis"},
    {"access-log", "access_log"}, {"error-log", "error_log"},
};
#define N_KEY_OPTIONS (sizeof(key_options) / sizeof(key_options[0]))

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"services", required_argument, NULL, OPT_SERVICES},
    {"check-config", no_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"listen", required_argument, NULL, OPT_KEY + 0},
    {"data-dir", required_argument, NULL, OPT_KEY + 1},
    {"log-level", required_argument, NULL, OPT_KEY + 2},
    {"region", required_argument, NULL, OPT_KEY + 3},
    {"domain", required_argument, NULL, OPT_KEY + 4},
    {"redis", required_argument, NULL, OPT_KEY + 5},
    {"access-log", required_argument, NULL, OPT_KEY + 6},
    {"error-log", required_argument, NULL, OPT_KEY + 7},
    {NULL, 0, NULL, 0},
};

void fg_settings_usage(FILE *out)
{
    fputs("Usage: floodgate [OPTION]...\n"
          "An S3-compatible gateway.\n"
          "\n"
          "  -c, --config FILE      read settings from a YAML file\n"
          "      --services FILE    also read services from FILE: its services:, or an\n"
          "                         OSCAR FDL file (functions: oscar: ...) as it is; scripts\n"
          "                         are relative to FILE's directory (repeatable)\n"
          "  -t, --check-config     load and check the settings, print \"configuration OK\"\n"
          "                         and exit\n"
          "      --listen ADDR      listen on address:port, [v6-address]:port or :port\n"
          "                         (any address); default 127.0.0.1:9000\n"
          "      --data-dir DIR     object store root (default ./data)\n"
          "      --region R         region name (default us-east-1)\n"
          "      --domain D         base domain for virtual-hosted style requests\n"
          "      --log-level LVL    error, warn, info (default) or debug\n"
          "      --error-log PATH   error log file, or stderr (default)\n"
          "      --access-log PATH  access log file, stdout (default) or off\n"
          "      --redis URL        Redis URL, e.g. redis://127.0.0.1:6379\n"
          "  -h, --help             show this help and exit\n"
          "  -V, --version          show the version and exit\n"
          "\n"
          "Settings come from defaults, then the config file, then the command line.\n"
          "Environment: FLOODGATE_ACCESS_KEY and FLOODGATE_SECRET_KEY add a user named\n"
          "\"admin\" next to the users: of the config file.\n",
          out);
}

static void print_conf_error(const char *where, const struct conf_error *err)
{
    if (err->line > 0)
        fprintf(stderr, "floodgate: %s: line %d: %s\n", where, err->line, err->msg);
    else
        fprintf(stderr, "floodgate: %s: %s\n", where, err->msg);
}

static void replace_string(char **field, const char *value)
{
    free(*field);
    *field = xstrdup(value);
}

/* Adds the environment's credentials as user "admin". 0, or -1 with msg. */
static int add_env_user(struct s3_config *c, char *msg, size_t cap)
{
    const char *ak = getenv("FLOODGATE_ACCESS_KEY");
    const char *sk = getenv("FLOODGATE_SECRET_KEY");
    bool have_ak = ak != NULL && ak[0] != '\0';
    bool have_sk = sk != NULL && sk[0] != '\0';
    struct s3_user_config *u;

    if (!have_ak && !have_sk)
        return 0;
    if (!have_ak || !have_sk) {
        snprintf(msg, cap, "%s is set but %s is not",
                 have_ak ? "FLOODGATE_ACCESS_KEY" : "FLOODGATE_SECRET_KEY",
                 have_ak ? "FLOODGATE_SECRET_KEY" : "FLOODGATE_ACCESS_KEY");
        return -1;
    }
    /* The same credential in the config and the environment is one user; the same access
     * key with another secret is left for validation to report. */
    for (size_t i = 0; i < c->n_users; i++) {
        if (strcmp(c->users[i].access_key, ak) == 0 && strcmp(c->users[i].secret_key, sk) == 0)
            return 0;
    }
    c->users = xrealloc(c->users, (c->n_users + 1) * sizeof(*c->users));
    u = &c->users[c->n_users++];
    u->name = xstrdup("admin");
    u->access_key = xstrdup(ak);
    u->secret_key = xstrdup(sk);
    return 0;
}

/* Checks what only the whole picture shows. 0, or -1 with msg. */
static int validate(struct fg_settings *s, char *msg, size_t cap)
{
    if (s->s3.n_users == 0) {
        snprintf(msg, cap,
                 "no credentials: set FLOODGATE_ACCESS_KEY and FLOODGATE_SECRET_KEY or users: "
                 "in the config");
        return -1;
    }
    if (s3_config_validate(&s->s3, msg, cap) != 0)
        return -1;
    if (log_level_parse(s->log_level, &s->level) != 0) {
        snprintf(msg, cap, "unknown log level '%.40s'", s->log_level);
        return -1;
    }
    return 0;
}

/* Where each service of fg_settings.services was defined, for messages. */
struct origin {
    const char *file; /* borrowed: the command line's or config_path */
    int line;
};

/* The directory `path` is relative to: "a/b.yaml" -> "a", "b.yaml" -> ".", "/b.yaml" -> "/". */
static char *dir_of(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');

    if (slash == NULL) {
        free(dir);
        return xstrdup(".");
    }
    slash[slash == dir ? 1 : 0] = '\0';
    return dir;
}

/* The mappings of the services a document defines, in the order conf/ stored them (services:
 * items, then functions.oscar's entries: conf/ concatenates a list of mappings). Writes at
 * most `cap`; returns how many there are. */
static size_t service_nodes(const struct conf_node *root, const struct conf_node **out, size_t cap)
{
    const struct conf_node *list = conf_node_get(root, "services");
    const struct conf_node *oscar = conf_node_get(conf_node_get(root, "functions"), "oscar");
    size_t n = 0;

    for (size_t i = 0; list != NULL && list->kind == CONF_NODE_SEQ && i < list->n_items; i++, n++) {
        if (n < cap)
            out[n] = &list->items[i];
    }
    if (oscar == NULL || oscar->kind == CONF_NODE_SCALAR)
        return n;
    bool is_seq = oscar->kind == CONF_NODE_SEQ;
    const struct conf_node *maps = is_seq ? oscar->items : oscar;
    size_t n_maps = is_seq ? oscar->n_items : 1;
    for (size_t m = 0; m < n_maps; m++) {
        for (size_t i = 1; i < maps[m].n_items; i += 2, n++) {
            if (n < cap)
                out[n] = &maps[m].items[i];
        }
    }
    return n;
}

/* The line that names a service: its `name:`, else where its mapping starts. */
static int service_line(const struct conf_node *svc)
{
    const struct conf_node *name = conf_node_get(svc, "name");

    return name != NULL ? name->line : svc->line;
}

static void append_services(struct fg_settings *s, struct notify_service *svcs, size_t n)
{
    if (n > 0)
        memcpy(&s->services[s->n_services], svcs, n * sizeof(*svcs));
    s->n_services += n;
    free(svcs); /* the array only: its elements now belong to s */
}

/* Takes over the services `file` (parsed as `root`) defined, `svcs` (its services:) and
 * `fdl` (its functions.oscar), appends them to s->services, then reads their scripts (relative
 * to the file's directory) and checks each, names unique across every file. 0, or -1 with the
 * error printed. */
static int adopt_services(struct fg_settings *s, struct origin **origins,
                          struct notify_service *svcs, size_t n_svcs, struct notify_fdl fdl,
                          const char *file, const struct conf_node *root)
{
    size_t first = s->n_services;
    size_t n_new = n_svcs + fdl.n_services;
    const struct conf_node **nodes = xcalloc(n_new > 0 ? n_new : 1, sizeof(*nodes));
    char *dir = dir_of(file);
    char why[160];
    int rc = 0;

    size_t n_nodes = service_nodes(root, nodes, n_new);

    ASSERT(n_nodes == n_new); /* conf_apply() accepted root: the shapes are as expected */
    s->services = xrealloc(s->services, (first + n_new) * sizeof(*s->services));
    *origins = xrealloc(*origins, (first + n_new) * sizeof(**origins));
    append_services(s, svcs, n_svcs);
    append_services(s, fdl.services, fdl.n_services);
    for (size_t i = first; i < s->n_services && rc == 0; i++) {
        struct notify_service *svc = &s->services[i];
        struct origin *o = &(*origins)[i];

        *o = (struct origin){.file = file, .line = service_line(nodes[i - first])};
        if (notify_service_resolve(svc, dir, why, sizeof(why)) != 0) {
            fprintf(stderr, "floodgate: %s: line %d: service '%.63s': %s\n", file, o->line,
                    svc->name != NULL ? svc->name : "?", why);
            rc = -1;
        }
        for (size_t j = 0; j < i && rc == 0; j++) {
            const struct origin *first_o = &(*origins)[j];
            if (strcmp(s->services[j].name, svc->name) != 0)
                continue;
            if (first_o->file == file)
                fprintf(stderr,
                        "floodgate: %s: line %d: service '%s' is defined twice (first on "
                        "line %d)\n",
                        file, o->line, svc->name, first_o->line);
            else
                fprintf(stderr,
                        "floodgate: %s: line %d: service '%s' is defined twice (first in %s, "
                        "line %d)\n",
                        file, o->line, svc->name, first_o->file, first_o->line);
            rc = -1;
        }
    }
    free(dir);
    free(nodes);
    return rc;
}

/* Applies `file` to `into` through `table` (settings_keys into s for the config file;
 * services_file_keys into a scratch struct for a --services file), then adopts the services
 * it defined into s. 0, or -1 with the error printed. */
static int load_file(struct fg_settings *s, struct origin **origins, const struct conf_key *table,
                     struct fg_settings *into, const char *file)
{
    struct conf_error err;
    struct conf_node *root = conf_parse_file(file, &err);
    struct notify_service *svcs;
    size_t n_svcs;
    struct notify_fdl fdl;
    int rc;

    if (root == NULL || conf_apply(table, into, root, &err) != 0) {
        print_conf_error(file, &err);
        conf_node_free(root);
        return -1;
    }
    /* detach first: `into` may be s, whose services adopt_services() appends to */
    svcs = into->services;
    n_svcs = into->n_services;
    fdl = into->fdl;
    into->services = NULL;
    into->n_services = 0;
    memset(&into->fdl, 0, sizeof(into->fdl));
    rc = adopt_services(s, origins, svcs, n_svcs, fdl, file, root);
    conf_node_free(root);
    return rc;
}

/* Reads the --services files, in order. */
static int load_services_files(struct fg_settings *s, struct origin **origins, const char **files,
                               size_t n_files)
{
    for (size_t i = 0; i < n_files; i++) {
        struct fg_settings scratch;

        memset(&scratch, 0, sizeof(scratch));
        conf_defaults(services_file_keys, &scratch);
        int rc = load_file(s, origins, services_file_keys, &scratch, files[i]);
        conf_free(services_file_keys, &scratch);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Applies the command-line overrides collected in `ov` (pairs of key, value). */
static int apply_overrides(struct fg_settings *s, const char **ov, size_t n_ov)
{
    struct conf_error err;

    for (size_t i = 0; i < n_ov; i += 2) {
        if (conf_set(settings_keys, s, ov[i], ov[i + 1], &err) != 0) {
            print_conf_error("command line", &err);
            return -1;
        }
    }
    return 0;
}

/* What the command line asks for besides s->config_path and s->check_only; the strings are
 * argv's. */
struct args {
    const char **ov; /* key, value, key, value, ... (overrides, in order) */
    size_t n_ov;
    const char **files; /* --services */
    size_t n_files;
};

/* Reads the options into s->config_path, s->check_only and `a` (whose arrays hold argc
 * pairs). Returns 0 to go on, or 1 with *exit_code set (help, version, bad usage). */
static int parse_args(struct fg_settings *s, int argc, char **argv, struct args *a, int *exit_code)
{
    int c;

    optind = 0; /* GNU: full reset, so the settings can be loaded more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:thV", long_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            free(s->config_path);
            s->config_path = xstrdup(optarg);
            break;
        case 't':
            s->check_only = true;
            break;
        case OPT_SERVICES:
            a->files[a->n_files++] = optarg;
            break;
        case 'h':
            fg_settings_usage(stdout);
            *exit_code = 0;
            return 1;
        case 'V':
            printf("floodgate %s\n", FG_VERSION);
            *exit_code = 0;
            return 1;
        case ':':
            fprintf(stderr, "floodgate: option '%s' needs a value\n", argv[optind - 1]);
            goto usage;
        case '?':
            /* optopt is the letter of a bad short option; long ones are named by argv */
            if (optopt != 0 && strncmp(argv[optind - 1], "--", 2) != 0)
                fprintf(stderr, "floodgate: unknown option '-%c'\n", optopt);
            else
                fprintf(stderr, "floodgate: bad option '%s'\n", argv[optind - 1]);
            goto usage;
        default:
            if (c < OPT_KEY || (size_t)(c - OPT_KEY) >= N_KEY_OPTIONS)
                goto usage;
            a->ov[a->n_ov++] = key_options[c - OPT_KEY].key;
            a->ov[a->n_ov++] = optarg;
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "floodgate: unexpected argument '%s'\n", argv[optind]);
        goto usage;
    }
    return 0;

usage:
    fprintf(stderr, "Try 'floodgate --help'.\n");
    *exit_code = EXIT_USAGE;
    return 1;
}

int fg_settings_load(struct fg_settings *s, int argc, char **argv, int *exit_code)
{
    size_t cap = (size_t)(argc > 0 ? argc : 1);
    struct args a = {.ov = xcalloc(cap * 2, sizeof(*a.ov)), .files = xcalloc(cap, sizeof(char *))};
    struct origin *origins = NULL; /* of s->services, while loading */
    char msg[200];

    memset(s, 0, sizeof(*s));
    if (parse_args(s, argc, argv, &a, exit_code) != 0)
        goto out;
    *exit_code = EXIT_CONFIG;
    /* config_path and check_only are not table fields: loading leaves them alone */
    conf_defaults(settings_keys, s);
    if (s->config_path != NULL && load_file(s, &origins, settings_keys, s, s->config_path) != 0)
        goto out;
    if (load_services_files(s, &origins, a.files, a.n_files) != 0 ||
        apply_overrides(s, a.ov, a.n_ov) != 0)
        goto out;
    if (s->s3.data_dir == NULL)
        s->s3.data_dir = xstrdup("./data");
    /* A bare "-" after "key:" reads as a YAML list item; let people spell it out. */
    if (strcmp(s->error_log, "stderr") == 0)
        replace_string(&s->error_log, "-");
    if (strcmp(s->access_log, "stdout") == 0)
        replace_string(&s->access_log, "-");
    if (add_env_user(&s->s3, msg, sizeof(msg)) != 0 || validate(s, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "floodgate: %s\n", msg);
        goto out;
    }
    free(s->jobs.redis_url);
    s->jobs.redis_url = s->redis_url != NULL ? xstrdup(s->redis_url) : NULL;
    free(a.ov);
    free(a.files);
    free(origins);
    if (s->check_only) {
        printf("configuration OK\n");
        *exit_code = 0;
        fg_settings_cleanup(s);
        return 1;
    }
    *exit_code = 0;
    return 0;

out:
    free(a.ov);
    free(a.files);
    free(origins);
    fg_settings_cleanup(s);
    return 1;
}

void fg_settings_cleanup(struct fg_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_services; i++) { /* not a table field */
        free(s->services[i].script_text);
        s->services[i].script_text = NULL;
    }
    conf_free(settings_keys, s);
    free(s->jobs.redis_url);
    s->jobs.redis_url = NULL;
    free(s->config_path);
    s->config_path = NULL;
}

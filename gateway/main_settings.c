/* The daemon's settings: one conf/ table composed of the modules' tables, the command line,
 * and environment credentials. Precedence: table defaults < config file < command line; the
 * environment only adds a user. Starting the daemon with them is main.c's job.
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
 *   jobs: {retention, log_max, visibility_timeout, run_timeout, relay_batch, prefix} -> jobs
 *   services: [{name, script, input, output, environment, pool, timeout, ...}] -> services
 *                                    (a one-line `script` is a file relative to the config's
 *                                    directory)
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
    {.name = "jobs",
     .type = CONF_SECTION,
     .offset = offsetof(struct fg_settings, jobs),
     .sub = queue_config_keys},
    {.name = "services",
     .type = CONF_LIST,
     .offset = offsetof(struct fg_settings, services),
     .sub = notify_service_keys,
     .elem_size = sizeof(struct notify_service),
     CONF_COUNT(struct fg_settings, n_services)},
    CONF_KEY_END,
};

/* Options that set a key; their getopt values index this table from OPT_KEY. */
enum { OPT_KEY = 256 };
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

/* Reads the services' script files (relative to the config file's directory) and checks
 * each service as a whole; mirrors `redis:` into the jobs settings. */
static int resolve_services(struct fg_settings *s, char *msg, size_t cap)
{
    char *dir = NULL;
    if (s->config_path != NULL) {
        dir = xstrdup(s->config_path);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            slash[slash == dir ? 1 : 0] = '\0';
        else
            replace_string(&dir, ".");
    }
    int rc = 0;
    char why[160];
    for (size_t i = 0; i < s->n_services && rc == 0; i++) {
        struct notify_service *svc = &s->services[i];
        if (notify_service_resolve(svc, dir, why, sizeof(why)) != 0) {
            snprintf(msg, cap, "service '%s': %s", svc->name != NULL ? svc->name : "?", why);
            rc = -1;
        }
        for (size_t j = 0; j < i && rc == 0; j++) {
            if (strcmp(s->services[j].name, svc->name) == 0) {
                snprintf(msg, cap, "service '%s' is defined twice", svc->name);
                rc = -1;
            }
        }
    }
    free(dir);
    free(s->jobs.redis_url);
    s->jobs.redis_url = s->redis_url != NULL ? xstrdup(s->redis_url) : NULL;
    return rc;
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

/* Reads the options into s->config_path, s->check_only and `ov`. Returns 0 to go on, or 1
 * with *exit_code set (help, version, bad usage). */
static int parse_args(struct fg_settings *s, int argc, char **argv, const char **ov, size_t *n_ov,
                      int *exit_code)
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
            ov[(*n_ov)++] = key_options[c - OPT_KEY].key;
            ov[(*n_ov)++] = optarg;
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
    const char **ov = xcalloc((size_t)(argc > 0 ? argc : 1) * 2, sizeof(*ov));
    size_t n_ov = 0;
    struct conf_error err;
    char msg[200];

    memset(s, 0, sizeof(*s));
    if (parse_args(s, argc, argv, ov, &n_ov, exit_code) != 0)
        goto out;
    *exit_code = EXIT_CONFIG;
    /* config_path and check_only are not table fields: loading leaves them alone */
    if (s->config_path != NULL) {
        if (conf_load_file(settings_keys, s, s->config_path, &err) != 0) {
            print_conf_error(s->config_path, &err);
            goto out;
        }
    } else {
        conf_defaults(settings_keys, s);
    }
    if (apply_overrides(s, ov, n_ov) != 0)
        goto out;
    if (s->s3.data_dir == NULL)
        s->s3.data_dir = xstrdup("./data");
    /* A bare "-" after "key:" reads as a YAML list item; let people spell it out. */
    if (strcmp(s->error_log, "stderr") == 0)
        replace_string(&s->error_log, "-");
    if (strcmp(s->access_log, "stdout") == 0)
        replace_string(&s->access_log, "-");
    if (add_env_user(&s->s3, msg, sizeof(msg)) != 0 || validate(s, msg, sizeof(msg)) != 0 ||
        resolve_services(s, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "floodgate: %s\n", msg);
        goto out;
    }
    free(ov);
    if (s->check_only) {
        printf("configuration OK\n");
        *exit_code = 0;
        fg_settings_cleanup(s);
        return 1;
    }
    *exit_code = 0;
    return 0;

out:
    free(ov);
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

/* The daemon's settings: defaults, then the YAML config file, then the command line, plus
 * credentials from the environment. Part of the floodgate executable, not the core library. */
#ifndef FG_GATEWAY_MAIN_SETTINGS_H
#define FG_GATEWAY_MAIN_SETTINGS_H

#include <stdbool.h>
#include <stdio.h>

#include "gateway/h1.h"
#include "gateway/log.h"
#include "notify/notify.h"
#include "queue/queue.h"
#include "s3api/s3api.h"

struct fg_settings {
    char *listen;                  /* "addr:port", "[v6]:port", ":port"; default "127.0.0.1:9000" */
    char *log_level;               /* "error", "warn", "info" (default) or "debug" */
    enum log_level level;          /* log_level, parsed */
    char *error_log;               /* path; "-" (default, also for "stderr"): stderr */
    char *access_log;              /* path; "-" (default, also for "stdout"): stdout; "off": none */
    char *pid_file;                /* NULL (default): none */
    unsigned drain_timeout_ms;     /* graceful shutdown: longest wait for requests; default 30 s */
    struct h1_limits limits;       /* `limits:` */
    struct s3_config s3;           /* data_dir (default "./data"), region, domain, users, store:,
                                    * auth: */
    char *redis_url;               /* `redis:` (--redis); NULL: none, events wait in the outbox */
    struct queue_config jobs;      /* `jobs:` (queue/config.c); jobs.redis_url mirrors redis_url */
    struct notify_target *targets; /* `targets:` (notify/), bucket notification destinations */
    size_t n_targets;
    struct notify_service *services; /* `services:` then functions.oscar (OSCAR FDL) of the
                                      * config file, then of each --services file; scripts
                                      * resolved, names unique */
    size_t n_services;
    struct notify_fdl fdl; /* functions.oscar of the file being read, moved into services:
                            * empty once loaded */
    char *config_path;     /* --config; NULL: none */
    bool check_only;       /* --check-config */
};

/* Fills `s` (which need not be initialised) from defaults, the file named by --config, the
 * files named by --services (services only), the other options and
 * FLOODGATE_ACCESS_KEY/FLOODGATE_SECRET_KEY, and validates the result. Errors in a file name
 * the file and, where one applies, the line.
 * Returns 0: run with `s`, release it with fg_settings_cleanup(). Returns 1: the process should
 * exit with *exit_code, after --help or --version (0, printed to stdout), --check-config
 * (0 and "configuration OK" on stdout, or 1 and the error on stderr), a configuration error
 * (1) or a command-line error (2), both printed to stderr; `s` is then already released.
 * Uses getopt_long (resets optind) and getenv: not thread-safe. */
int fg_settings_load(struct fg_settings *s, int argc, char **argv, int *exit_code);

/* Frees everything `s` holds; safe to call twice. */
void fg_settings_cleanup(struct fg_settings *s);

/* The --help text. */
void fg_settings_usage(FILE *out);

#endif

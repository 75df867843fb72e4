/* floodgate-worker: the worker agent's main(): options and config file, the slot threads
 * (claim, run, finish), the maintenance thread, and signals (SIGTERM/SIGINT: stop claiming
 * and let running jobs end; a second one: kill them and exit). */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "gateway/log.h"
#include "gateway/xmalloc.h"
#include "queue/keys.h"
#include "queue/worker.h"

#define DEFAULT_VISIBILITY_MS 30000
#define DEFAULT_JOB_TTL_S     604800u /* 7 days */
#define DEFAULT_LOG_MAX_BYTES (1u << 20)
#define MAX_POOLS             16

struct log_ctx worker_log = {.module = "worker"};

const struct conf_key worker_config_keys[] = {
    {.name = "redis",
     .type = CONF_STRING,
     CONF_FIELD(struct worker_config, redis),
     .help = "redis://host:port[/db] of the queue"},
    {.name = "endpoint",
     .type = CONF_STRING,
     CONF_FIELD(struct worker_config, endpoint),
     .help = "the gateway's S3 endpoint, http://host:port"},
    {.name = "pools",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct worker_config, pools),
     CONF_COUNT(struct worker_config, n_pools),
     .help = "pools to take jobs from, in order"},
    {.name = "concurrency",
     .type = CONF_UINT,
     CONF_FIELD(struct worker_config, concurrency),
     .max = 1024,
     .help = "jobs at once; 0: the number of CPUs"},
    {.name = "region",
     .type = CONF_STRING,
     CONF_FIELD(struct worker_config, region),
     .dflt = "us-east-1",
     .flags = CONF_NONEMPTY},
    {.name = "prefix",
     .type = CONF_STRING,
     CONF_FIELD(struct worker_config, prefix),
     .dflt = "fg:"},
    {.name = "work_dir", .type = CONF_STRING, CONF_FIELD(struct worker_config, work_dir)},
    {.name = "access_key", .type = CONF_STRING, CONF_FIELD(struct worker_config, access_key)},
    {.name = "secret_key", .type = CONF_STRING, CONF_FIELD(struct worker_config, secret_key)},
    {.name = "visibility_timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(struct worker_config, visibility_ms),
     .max = 86400000},
    {.name = "id", .type = CONF_STRING, CONF_FIELD(struct worker_config, id)},
    {.name = "log_level", .type = CONF_STRING, CONF_FIELD(struct worker_config, log_level)},
    CONF_KEY_END,
};

/* ---- helpers shared by the worker's files --------------------------------------------------- */

uint64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void worker_sleep_ms(struct worker *w, unsigned ms, bool hard)
{
    while (ms > 0) {
        if (atomic_load(hard ? &w->hard : &w->stopping))
            return;
        unsigned step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* ---- options ------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("Usage: floodgate-worker --redis redis://HOST:PORT --endpoint http://HOST:PORT\n"
          "                        [options]\n"
          "Claims invocations from floodgate's Redis streams, runs the services' scripts and\n"
          "uploads their outputs through the gateway's S3 endpoint.\n\n"
          "  --redis URL                 redis://[:password@]host:port[/db]\n"
          "  --endpoint URL              the gateway's S3 endpoint\n"
          "  --pool NAME                 a pool to serve (repeatable; default \"default\")\n"
          "  --concurrency N             jobs at once (default: the number of CPUs)\n"
          "  --region R                  SigV4 region (default us-east-1)\n"
          "  --prefix P                  Redis key prefix (default fg:)\n"
          "  --work-dir DIR              where job temp dirs go (default $TMPDIR or /tmp)\n"
          "  --id ID                     worker id (default hostname-pid)\n"
          "  --visibility-timeout DUR    reclaim jobs of dead workers after this (default:\n"
          "                              the gateway's, else 30s)\n"
          "  --config FILE               YAML with the same keys (pools: a list; access_key,\n"
          "                              secret_key)\n"
          "  --log-level L               error, warn, info (default) or debug\n"
          "  -h, --help                  show this help and exit\n"
          "  -V, --version               show the version and exit\n\n"
          "Credentials: FLOODGATE_ACCESS_KEY and FLOODGATE_SECRET_KEY (or the config file).\n",
          out);
}

enum { OPT_CONFIG = 256, OPT_POOL, OPT_KEY };

/* Options that set a config key; getopt values OPT_KEY + index. */
static const char *const key_options[][2] = {
    {"redis", "redis"},
    {"endpoint", "endpoint"},
    {"concurrency", "concurrency"},
    {"region", "region"},
    {"prefix", "prefix"},
    {"work-dir", "work_dir"},
    {"id", "id"},
    {"visibility-timeout", "visibility_timeout"},
    {"log-level", "log_level"},
};
#define N_KEY_OPTIONS (sizeof(key_options) / sizeof(key_options[0]))

struct override {
    const char *key;
    const char *value;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("floodgate-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'floodgate-worker --help'.\n", stderr);
    va_end(ap);
    return 2;
}

static int check_config(struct worker_config *cfg)
{
    struct qk_url url;
    enum log_level lvl;
    if (cfg->redis == NULL || qk_parse_url(cfg->redis, &url) != 0)
        return usage_error("%s", cfg->redis == NULL ? "--redis is required"
                                                    : "--redis: expected redis://host:port[/db]");
    if (cfg->endpoint == NULL)
        return usage_error("%s", "--endpoint is required");
    if (cfg->access_key == NULL || cfg->secret_key == NULL || cfg->access_key[0] == '\0' ||
        cfg->secret_key[0] == '\0')
        return usage_error("%s", "credentials missing: set FLOODGATE_ACCESS_KEY and "
                                 "FLOODGATE_SECRET_KEY (or access_key/secret_key in --config)");
    if (cfg->n_pools == 0) {
        cfg->pools = xcalloc(1, sizeof(char *));
        cfg->pools[0] = xstrdup("default");
        cfg->n_pools = 1;
    }
    if (cfg->n_pools > MAX_POOLS)
        return usage_error("%s", "too many pools (16 at most)");
    for (size_t i = 0; i < cfg->n_pools; i++)
        if (cfg->pools[i] == NULL || cfg->pools[i][0] == '\0' ||
            strpbrk(cfg->pools[i], ", \t\r\n") != NULL || strlen(cfg->pools[i]) >= 100)
            return usage_error("bad pool name '%s'", cfg->pools[i] ? cfg->pools[i] : "");
    if (cfg->log_level != NULL && log_level_parse(cfg->log_level, &lvl) != 0)
        return usage_error("bad log level '%s'", cfg->log_level);
    if (cfg->prefix == NULL)
        cfg->prefix = xstrdup("");
    return 0;
}

/* Fills cfg from the config file, the options and the environment. 0, or the exit code. */
static int parse_args(struct worker_config *cfg, int argc, char **argv)
{
    struct option longopts[N_KEY_OPTIONS + 5];
    struct override *ovr = xcalloc((size_t)argc + 1, sizeof(*ovr));
    const char **pools = xcalloc((size_t)argc + 1, sizeof(char *));
    size_t n_ovr = 0, n_pools = 0;
    const char *config = NULL;
    struct conf_error err = {0};
    int c, code = 0;

    for (size_t i = 0; i < N_KEY_OPTIONS; i++)
        longopts[i] = (struct option){key_options[i][0], required_argument, NULL, OPT_KEY + (int)i};
    longopts[N_KEY_OPTIONS] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    longopts[N_KEY_OPTIONS + 1] = (struct option){"pool", required_argument, NULL, OPT_POOL};
    longopts[N_KEY_OPTIONS + 2] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[N_KEY_OPTIONS + 3] = (struct option){"version", no_argument, NULL, 'V'};
    longopts[N_KEY_OPTIONS + 4] = (struct option){NULL, 0, NULL, 0};

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            code = -1;
            goto out;
        } else if (c == 'V') {
            printf("floodgate-worker %s\n", FG_VERSION);
            code = -1;
            goto out;
        } else if (c == OPT_CONFIG) {
            config = optarg;
        } else if (c == OPT_POOL) {
            pools[n_pools++] = optarg;
        } else if (c >= OPT_KEY && c < OPT_KEY + (int)N_KEY_OPTIONS) {
            ovr[n_ovr++] = (struct override){key_options[c - OPT_KEY][1], optarg};
        } else if (c == ':') {
            code = usage_error("option '%s' needs a value", argv[optind - 1]);
            goto out;
        } else {
            code = usage_error("unknown option '%s'", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        code = usage_error("unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (config != NULL) {
        if (conf_load_file(worker_config_keys, cfg, config, &err) != 0) {
            fprintf(stderr, "floodgate-worker: %s:%d: %s\n", config, err.line, err.msg);
            code = 2;
            goto out;
        }
    } else {
        conf_defaults(worker_config_keys, cfg);
    }
    for (size_t i = 0; i < n_ovr; i++) {
        if (conf_set(worker_config_keys, cfg, ovr[i].key, ovr[i].value, &err) != 0) {
            fprintf(stderr, "floodgate-worker: --%s: %s\nTry 'floodgate-worker --help'.\n",
                    ovr[i].key, err.msg);
            code = 2;
            goto out;
        }
    }
    if (n_pools > 0) { /* the options' pools replace the file's */
        for (size_t i = 0; i < cfg->n_pools; i++)
            free(cfg->pools[i]);
        free(cfg->pools);
        cfg->pools = xcalloc(n_pools, sizeof(char *));
        for (size_t i = 0; i < n_pools; i++)
            cfg->pools[i] = xstrdup(pools[i]);
        cfg->n_pools = n_pools;
    }
    const char *ak = getenv("FLOODGATE_ACCESS_KEY"), *sk = getenv("FLOODGATE_SECRET_KEY");
    if (ak != NULL && ak[0] != '\0') {
        free(cfg->access_key);
        cfg->access_key = xstrdup(ak);
    }
    if (sk != NULL && sk[0] != '\0') {
        free(cfg->secret_key);
        cfg->secret_key = xstrdup(sk);
    }
    code = check_config(cfg);

out:
    free(ovr);
    free(pools);
    return code;
}

/* ---- threads ------------------------------------------------------------------------------- */

static atomic_int maint_stop;

static void *slot_main(void *arg)
{
    struct worker_slot *s = arg;
    struct worker *w = s->w;
    while (!atomic_load(&w->stopping)) {
        struct worker_entry e;
        int r = worker_claim_next(s, &e);
        if (r < 0)
            worker_sleep_ms(w, 250, false);
        else if (r > 0) /* claimed is ours, even when the stop came during the read */
            worker_job_handle(s, &e);
    }
    /* claimed but never started: pending under our name, reclaimed by others */
    for (size_t i = 0; i < s->n_queue; i++)
        worker_unhold(s, &s->queue[i]);
    s->n_queue = 0;
    return NULL;
}

static void *maint_main(void *arg)
{
    struct worker *w = arg;
    struct worker_redis r;
    uint64_t last_refresh = 0, last_config = 0;

    worker_redis_init(&r, w, "maintenance", true);
    while (!atomic_load(&maint_stop)) {
        uint64_t now = worker_now_ms();
        if (worker_redis_up(&r)) {
            if (now - last_config >= 60000) {
                worker_read_config(w, &r);
                last_config = now;
            }
            worker_heartbeat(w, &r);
            if (!atomic_load(&w->stopping))
                worker_promote(w, &r);
            if (now - last_refresh >= atomic_load(&w->visibility_ms) / 3) {
                worker_refresh_held(w, &r);
                last_refresh = now;
            }
        }
        for (int i = 0; i < 20 && !atomic_load(&maint_stop); i++) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (worker_redis_up(&r))
        worker_heartbeat_remove(w, &r);
    worker_redis_cleanup(&r);
    return NULL;
}

static void *signal_main(void *arg)
{
    struct worker *w = arg;
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        if (sigwait(&set, &sig) != 0 || sig == SIGHUP)
            continue;
        if (!atomic_load(&w->stopping)) {
            unsigned running = 0;
            for (unsigned i = 0; i < w->n_slots; i++)
                running += atomic_load(&w->slots[i].running) ? 1 : 0;
            log_info(&worker_log,
                     "signal %d: claiming no more; waiting for %u running jobs "
                     "(again to kill them)",
                     sig, running);
            atomic_store(&w->stopping, 1);
        } else if (!atomic_load(&w->hard)) {
            log_warn(&worker_log, "second signal %d: killing running jobs", sig);
            atomic_store(&w->hard, 1);
        }
    }
    return NULL;
}

static void set_identity(struct worker *w)
{
    if (gethostname(w->host, sizeof(w->host)) != 0 || w->host[0] == '\0')
        snprintf(w->host, sizeof(w->host), "localhost");
    w->host[sizeof(w->host) - 1] = '\0';
    if (w->cfg.id != NULL && w->cfg.id[0] != '\0')
        snprintf(w->id, sizeof(w->id), "%s", w->cfg.id);
    else
        snprintf(w->id, sizeof(w->id), "%s-%ld", w->host, (long)getpid());
    size_t off = 0;
    for (size_t i = 0; i < w->cfg.n_pools && off < sizeof(w->pools_csv); i++)
        off += (size_t)snprintf(w->pools_csv + off, sizeof(w->pools_csv) - off, "%s%s",
                                i > 0 ? "," : "", w->cfg.pools[i]);
    const char *path = getenv("PATH");
    snprintf(w->path_env, sizeof(w->path_env), "%s",
             path != NULL && path[0] != '\0' ? path : "/usr/local/bin:/usr/bin:/bin");
}

static void slot_init(struct worker *w, unsigned i)
{
    struct worker_slot *s = &w->slots[i];
    s->w = w;
    s->index = i;
    snprintf(s->name, sizeof(s->name), "slot %u", i);
    worker_redis_init(&s->redis, w, s->name, false);
    s->curl = curl_easy_init();
    ASSERT(s->curl != NULL);
    s->rng = (worker_now_ms() ^ ((uint64_t)getpid() << 20) ^ ((uint64_t)i << 40)) | 1;
    s->autoclaim_cursor = xcalloc(w->cfg.n_pools, sizeof(*s->autoclaim_cursor));
    for (size_t p = 0; p < w->cfg.n_pools; p++)
        snprintf(s->autoclaim_cursor[p], sizeof(s->autoclaim_cursor[p]), "0-0");
    pthread_mutex_init(&s->mu, NULL);
}

static void slot_cleanup(struct worker_slot *s)
{
    worker_redis_cleanup(&s->redis);
    curl_easy_cleanup(s->curl);
    free(s->autoclaim_cursor);
    pthread_mutex_destroy(&s->mu);
}

int main(int argc, char **argv)
{
    static struct worker w; /* big; and the signal thread may outlive main's frame */
    pthread_t maint, sig_thread;
    sigset_t set;
    char msg[256];

    int code = parse_args(&w.cfg, argc, argv);
    if (code != 0) {
        conf_free(worker_config_keys, &w.cfg);
        return code < 0 ? 0 : code;
    }
    enum log_level lvl = LOG_INFO;
    if (w.cfg.log_level != NULL)
        log_level_parse(w.cfg.log_level, &lvl);
    log_level_now = lvl;
    if (worker_s3_init(&w.s3, w.cfg.endpoint, msg, sizeof(msg)) != 0) {
        conf_free(worker_config_keys, &w.cfg);
        return usage_error("--endpoint: %s", msg);
    }
    w.s3.access_key = w.cfg.access_key;
    w.s3.secret_key = w.cfg.secret_key;
    w.s3.region = w.cfg.region;
    log_open(NULL, "off");
    set_identity(&w);
    qk_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error(&worker_log, "curl_global_init failed");
        return 1;
    }
    /* Stop signals go to the signal thread only; scripts get a clean mask (worker_run.c). */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    w.n_slots = w.cfg.concurrency > 0 ? w.cfg.concurrency : (unsigned)(ncpu > 0 ? ncpu : 1);
    w.started_ms = worker_now_ms();
    atomic_store(&w.job_ttl_s, DEFAULT_JOB_TTL_S);
    atomic_store(&w.log_max_bytes, DEFAULT_LOG_MAX_BYTES);
    atomic_store(&w.visibility_ms,
                 w.cfg.visibility_ms > 0 ? w.cfg.visibility_ms : DEFAULT_VISIBILITY_MS);
    w.services = worker_services_new();
    w.limits = worker_limits_new();
    w.slots = xcalloc(w.n_slots, sizeof(*w.slots));
    for (unsigned i = 0; i < w.n_slots; i++)
        slot_init(&w, i);

    struct qk_url url; /* logged without its password */
    qk_parse_url(w.cfg.redis, &url);
    log_info(&worker_log,
             "floodgate-worker %s: id %s, pools %s, %u slots, redis %s:%d, endpoint %s", FG_VERSION,
             w.id, w.pools_csv, w.n_slots, url.host, url.port, w.s3.base_url);
    pthread_create(&sig_thread, NULL, signal_main, &w);
    pthread_detach(sig_thread);
    pthread_create(&maint, NULL, maint_main, &w);
    for (unsigned i = 0; i < w.n_slots; i++)
        pthread_create(&w.slots[i].thread, NULL, slot_main, &w.slots[i]);
    for (unsigned i = 0; i < w.n_slots; i++)
        pthread_join(w.slots[i].thread, NULL);
    atomic_store(&maint_stop, 1);
    pthread_join(maint, NULL);
    log_info(&worker_log, "stopped (%" PRIuFAST64 " jobs succeeded, %" PRIuFAST64 " failed)",
             atomic_load(&w.n_done), atomic_load(&w.n_failed));

    for (unsigned i = 0; i < w.n_slots; i++)
        slot_cleanup(&w.slots[i]);
    free(w.slots);
    worker_services_free(w.services);
    worker_limits_free(w.limits);
    curl_global_cleanup();
    conf_free(worker_config_keys, &w.cfg);
    return 0;
}

/* floodgate-worker's reading of a service's JSON (queue/worker_service.c): the fields that
 * steer the worker (concurrency, log_level with OSCAR's values), and their defaults. */
#include <stdbool.h>
#include <stdio.h>

/* floodgate-worker's files are not in a library: this one is compiled in, and the calls it
 * makes into the rest of the worker (Redis, only by the cache) are stubbed below */
#include "queue/worker.h"
#include "tests/unit/tap.h"

struct log_ctx worker_log = {.module = "worker"};

char *worker_key(const struct worker *w, char *buf, size_t cap, const char *kind, const char *name)
{
    (void)w;
    snprintf(buf, cap, "fg:%s%s", kind, name != NULL ? name : "");
    return buf;
}

redisReply *worker_redis_cmd(struct worker_redis *r, int argc, const char **argv,
                             const size_t *lens)
{
    (void)r;
    (void)argc;
    (void)argv;
    (void)lens;
    return NULL;
}

static struct worker_service *parse(const char *json)
{
    char msg[256] = "";
    struct worker_service *svc = worker_service_parse(json, strlen(json), msg, sizeof(msg));
    if (svc == NULL)
        printf("# %s\n", msg);
    return svc;
}

static void test_log_level_parse_takes_oscar_values_in_any_case(void)
{
    is_int(worker_log_level_parse("DEBUG"), WORKER_LOG_DEBUG, "DEBUG");
    is_int(worker_log_level_parse("debug"), WORKER_LOG_DEBUG, "debug");
    is_int(worker_log_level_parse("Info"), WORKER_LOG_INFO, "Info");
    is_int(worker_log_level_parse("WARNING"), WORKER_LOG_WARNING, "WARNING");
    is_int(worker_log_level_parse("warn"), WORKER_LOG_WARNING, "warn");
    is_int(worker_log_level_parse("ERROR"), WORKER_LOG_ERROR, "ERROR");
    is_int(worker_log_level_parse("CRITICAL"), WORKER_LOG_ERROR, "CRITICAL counts as ERROR");
    is_int(worker_log_level_parse(NULL), WORKER_LOG_INFO, "none: INFO");
    is_int(worker_log_level_parse(""), WORKER_LOG_INFO, "empty: INFO");
    is_int(worker_log_level_parse("verbose"), WORKER_LOG_INFO, "unknown: INFO");
}

static void test_service_reads_concurrency_and_log_level(void)
{
    struct worker_service *svc =
        parse("{\"name\":\"a\",\"script\":\"true\",\"concurrency\":2,\"log_level\":\"DEBUG\"}");
    ok(svc != NULL, "parsed");
    if (svc == NULL)
        return;
    is_int(svc->concurrency, 2, "concurrency");
    is_int(svc->log_level, WORKER_LOG_DEBUG, "log_level");
    worker_service_free(svc);

    svc = parse("{\"name\":\"a\",\"script\":\"true\"}");
    ok(svc != NULL, "parsed without them");
    if (svc == NULL)
        return;
    is_int(svc->concurrency, 0, "no concurrency: no limit");
    is_int(svc->log_level, WORKER_LOG_INFO, "no log_level: INFO");
    worker_service_free(svc);

    svc = parse("{\"name\":\"a\",\"script\":\"true\",\"concurrency\":-1,\"log_level\":7}");
    ok(svc != NULL, "parsed with odd values");
    if (svc == NULL)
        return;
    is_int(svc->concurrency, 0, "a negative concurrency is no limit");
    is_int(svc->log_level, WORKER_LOG_INFO, "a log_level not a string is INFO");
    worker_service_free(svc);
}

int main(void)
{
    subtest(test_log_level_parse_takes_oscar_values_in_any_case);
    subtest(test_service_reads_concurrency_and_log_level);
    return done_testing();
}

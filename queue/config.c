/* The `jobs:` section of the config file: names, defaults and bounds of struct queue_config.
 * redis_url is not a key here (it is the top-level `redis:`, copied in by main). */
#include <stddef.h>
#include <stdlib.h>

#include "queue/queue.h"

#define DAY_S   (24 * 3600LL)
#define HOUR_MS (3600 * 1000LL)

const struct conf_key queue_config_keys[] = {
    {.name = "retention",
     .type = CONF_DURATION_S,
     CONF_FIELD(struct queue_config, job_ttl_s),
     .dflt = "7d",
     .min = 60,
     .max = 365 * DAY_S,
     .help = "how long job records and logs are kept after a job ends"},
    {.name = "log_max",
     .type = CONF_SIZE,
     CONF_FIELD(struct queue_config, log_max_bytes),
     .dflt = "1MiB",
     .min = 1024,
     .max = 512LL << 20,
     .help = "stdout+stderr kept per job (the middle is cut)"},
    {.name = "visibility_timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(struct queue_config, visibility_ms),
     .dflt = "30s",
     .min = 1000,
     .max = 24 * HOUR_MS,
     .help = "a job whose worker stopped heartbeating is reclaimed after this"},
    {.name = "run_timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(struct queue_config, run_timeout_ms),
     .dflt = "60s",
     .min = 100,
     .max = 24 * HOUR_MS,
     .help = "POST /run waits this long for the job at most (then 504)"},
    {.name = "relay_batch",
     .type = CONF_UINT,
     CONF_FIELD(struct queue_config, relay_batch),
     .dflt = "256",
     .min = 1,
     .max = 10000,
     .help = "outbox records per relay round trip"},
    {.name = "prefix",
     .type = CONF_STRING,
     CONF_FIELD(struct queue_config, prefix),
     .dflt = "fg:",
     .flags = CONF_NONEMPTY,
     .help = "prefix of every Redis key"},
    CONF_KEY_END,
};

void queue_config_cleanup(struct queue_config *c)
{
    if (c == NULL)
        return;
    conf_free(queue_config_keys, c);
    free(c->redis_url);
    c->redis_url = NULL;
}

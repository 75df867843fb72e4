/* The `jobs:` section: defaults, units and bounds. */
#include <string.h>

#include "conf/conf.h"
#include "queue/queue.h"
#include "tests/unit/tap.h"

static void test_config_defaults(void)
{
    struct queue_config c;
    struct conf_error err;
    memset(&c, 0, sizeof(c));
    is_int(conf_load_string(queue_config_keys, &c, "", 0, &err), 0, "empty section loads");
    is_int(c.job_ttl_s, 7 * 86400, "retention 7d");
    is_int(c.log_max_bytes, 1 << 20, "log_max 1MiB");
    is_int(c.visibility_ms, 30000, "visibility 30s");
    is_int(c.run_timeout_ms, 60000, "run_timeout 60s");
    is_int(c.relay_batch, 256, "relay_batch 256");
    is_str(c.prefix, "fg:", "prefix fg:");
    ok(c.redis_url == NULL, "no Redis URL from the section");
    queue_config_cleanup(&c);
    ok(c.prefix == NULL, "cleanup frees");
}

static void test_config_values_and_bounds(void)
{
    struct queue_config c;
    struct conf_error err;
    const char *doc = "retention: 2h\nlog_max: 64KiB\nvisibility_timeout: 5s\n"
                      "run_timeout: 1500ms\nrelay_batch: 1000\nprefix: \"t1:\"\n";
    memset(&c, 0, sizeof(c));
    is_int(conf_load_string(queue_config_keys, &c, doc, strlen(doc), &err), 0, "values load");
    is_int(c.job_ttl_s, 7200, "retention in seconds");
    is_int(c.log_max_bytes, 65536, "log_max in bytes");
    is_int(c.visibility_ms, 5000, "visibility in ms");
    is_int(c.run_timeout_ms, 1500, "run_timeout in ms");
    is_int(c.relay_batch, 1000, "relay_batch");
    is_str(c.prefix, "t1:", "prefix");
    queue_config_cleanup(&c);

    memset(&c, 0, sizeof(c));
    is_int(conf_load_string(queue_config_keys, &c, "relay_batch: 0", 14, &err), -1,
           "relay_batch 0 refused");
    is_int(err.line, 1, "with its line");
    queue_config_cleanup(&c);
    memset(&c, 0, sizeof(c));
    is_int(conf_load_string(queue_config_keys, &c, "relay_batch: 10001", 18, &err), -1,
           "relay_batch above 10000 refused");
    queue_config_cleanup(&c);
    memset(&c, 0, sizeof(c));
    is_int(conf_load_string(queue_config_keys, &c, "prefix: \"\"", 10, &err), -1,
           "empty prefix refused");
    queue_config_cleanup(&c);
}

int main(void)
{
    subtest(test_config_defaults);
    subtest(test_config_values_and_bounds);
    return done_testing();
}

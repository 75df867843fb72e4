/* Unit tests for notify/target.c and the registry's targets: the `targets:` table (defaults,
 * checks with line numbers), ARNs, and notify_arn_known. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "tests/unit/tap.h"

struct doc {
    struct notify_target *targets;
    size_t n_targets;
};

static const struct conf_key doc_keys[] = {
    {.name = "targets",
     .type = CONF_LIST,
     .offset = offsetof(struct doc, targets),
     .sub = notify_target_keys,
     .elem_size = sizeof(struct notify_target),
     CONF_COUNT(struct doc, n_targets)},
    CONF_KEY_END,
};

static int load(const char *yaml, struct doc *d, struct conf_error *err)
{
    memset(d, 0, sizeof(*d));
    memset(err, 0, sizeof(*err));
    return conf_load_string(doc_keys, d, yaml, strlen(yaml), err);
}

static void test_target_table_defaults(void)
{
    struct doc d;
    struct conf_error err;
    const struct notify_target *t;

    is_int(load("targets:\n"
                "  - id: hook-1\n"
                "    type: webhook\n"
                "    endpoint: https://example.com/in\n"
                "  - id: Red_2.x\n"
                "    type: redis\n"
                "    endpoint: redis://:pw@127.0.0.1:6380/2\n"
                "    format: list\n"
                "    key: events\n"
                "    timeout: 500ms\n"
                "    concurrency: 2\n"
                "    max_attempts: 3\n"
                "    max_age: 1h\n"
                "    tls_verify: false\n",
                &d, &err),
           0, "loads");
    is_int(d.n_targets, 2, "two targets");
    t = &d.targets[0];
    is_str(t->id, "hook-1", "id");
    ok(t->tls_verify, "tls_verify defaults to true");
    is_int(t->timeout_ms, 10000, "timeout 10 s");
    is_int(t->concurrency, 16, "concurrency 16");
    is_int(t->max_attempts, 10, "max_attempts 10");
    is_int(t->max_age_s, 86400, "max_age a day");
    is_str(t->key, "floodgate-events", "key");
    is_str(t->format, "stream", "format stream");
    ok(t->ca_file == NULL && t->auth_token == NULL && t->client_cert == NULL, "no TLS extras");
    t = &d.targets[1];
    is_str(t->format, "list", "format list");
    is_str(t->key, "events", "key set");
    is_int(t->timeout_ms, 500, "timeout");
    is_int(t->concurrency, 2, "concurrency");
    is_int(t->max_age_s, 3600, "max_age");
    ok(!t->tls_verify, "tls_verify off");
    conf_free(doc_keys, &d);
}

static void test_target_table_rejects_with_lines(void)
{
    static const struct {
        const char *yaml;
        int line;
        const char *what;
    } cases[] = {
        {"targets:\n  - id: a b\n    type: webhook\n    endpoint: http://h/\n", 2, "id syntax"},
        {"targets:\n  - id: ''\n    type: webhook\n    endpoint: http://h/\n", 2, "empty id"},
        {"targets:\n  - id: "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
         "    type: webhook\n    endpoint: http://h/\n",
         2, "id of 65"},
        {"targets:\n  - id: a\n    type: kafka\n    endpoint: http://h/\n", 3, "type"},
        {"targets:\n  - id: a\n    type: webhook\n    endpoint: ftp://h/\n", 4, "scheme"},
        {"targets:\n  - id: a\n    type: webhook\n    endpoint: redis://h\n", 4, "webhook redis"},
        {"targets:\n  - id: a\n    endpoint: http://h/\n    type: redis\n", 4, "redis http"},
        {"targets:\n  - id: a\n    type: webhook\n    endpoint: http://\n", 4, "no host"},
        {"targets:\n  - id: a\n    type: redis\n    endpoint: redis://h\n    format: hash\n", 5,
         "format"},
        {"targets:\n  - id: a\n    type: webhook\n", 2, "endpoint required"},
        {"targets:\n  - id: a\n    type: webhook\n    endpoint: http://h/\n    concurrency: 0\n", 5,
         "concurrency 0"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct doc d;
        struct conf_error err;

        is_int(load(cases[i].yaml, &d, &err), -1, cases[i].what);
        is_int(err.line, cases[i].line, "line");
        printf("# %s: line %d: %s\n", cases[i].what, err.line, err.msg);
        conf_free(doc_keys, &d);
    }
}

static void test_arn_parse(void)
{
    static const struct {
        const char *arn;
        bool ok;
        const char *id, *type;
    } cases[] = {
        {"arn:floodgate:sqs::hook-1:webhook", true, "hook-1", "webhook"},
        {"arn:minio:sqs::r.2:redis", true, "r.2", "redis"},
        {"arn:floodgate:sqs:us-east-1:hook-1:webhook", false, NULL, NULL},
        {"arn:aws:sqs::hook-1:webhook", false, NULL, NULL},
        {"arn:floodgate:sns::hook-1:webhook", false, NULL, NULL},
        {"arn:floodgate:sqs:::webhook", false, NULL, NULL},
        {"arn:floodgate:sqs::a:b:webhook", false, NULL, NULL},
        {"arn:floodgate:sqs::a:kafka", false, NULL, NULL},
        {"arn:floodgate:sqs::a:", false, NULL, NULL},
        {"arn:floodgate:sqs::a", false, NULL, NULL},
        {"", false, NULL, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *id = NULL, *type = NULL;
        size_t id_len = 0, type_len = 0;
        bool got = notify_arn_parse(cases[i].arn, &id, &id_len, &type, &type_len);

        is_int(got, cases[i].ok, cases[i].arn);
        if (got && cases[i].ok) {
            ok(id_len == strlen(cases[i].id) && memcmp(id, cases[i].id, id_len) == 0, "id");
            ok(type_len == strlen(cases[i].type) && memcmp(type, cases[i].type, type_len) == 0,
               "type");
        }
    }
    ok(!notify_arn_parse(NULL, NULL, NULL, NULL, NULL), "NULL");
}

static void test_registry_targets(void)
{
    char msg[160];
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    struct doc d, d2;
    struct conf_error err;
    const struct notify_target *t;

    ok(!notify_arn_known(reg, "arn:floodgate:sqs::a:webhook"), "no targets: unknown");
    is_int(load("targets:\n"
                "  - {id: a, type: webhook, endpoint: 'http://h/'}\n"
                "  - {id: b, type: redis, endpoint: 'redis://h'}\n",
                &d, &err),
           0, "loads");
    is_int(notify_registry_set_targets(reg, d.targets, d.n_targets, msg, sizeof(msg)), 0, "set");
    is_int(notify_registry_n_targets(reg), 2, "two");
    ok(notify_arn_known(reg, "arn:floodgate:sqs::a:webhook"), "floodgate ARN");
    ok(notify_arn_known(reg, "arn:minio:sqs::b:redis"), "minio ARN");
    ok(!notify_arn_known(reg, "arn:floodgate:sqs::a:redis"), "type must match");
    ok(!notify_arn_known(reg, "arn:floodgate:sqs::c:webhook"), "unknown id");
    ok(!notify_arn_known(reg, "arn:floodgate:sqs:eu:a:webhook"), "a region");
    t = notify_registry_target(reg, "b");
    ok(t != NULL && strcmp(t->type, "redis") == 0, "by id");
    ok(notify_registry_target(reg, "z") == NULL, "unknown id");
    ok(notify_registry_target_at(reg, 0) != NULL &&
           strcmp(notify_registry_target_at(reg, 0)->id, "a") == 0,
       "in order");
    ok(notify_registry_target_at(reg, 2) == NULL, "past the end");

    is_int(load("targets:\n"
                "  - {id: a, type: webhook, endpoint: 'http://h/'}\n"
                "  - {id: a, type: webhook, endpoint: 'http://g/'}\n",
                &d2, &err),
           0, "duplicate loads (the registry checks)");
    is_int(notify_registry_set_targets(reg, d2.targets, d2.n_targets, msg, sizeof(msg)), -1,
           "duplicate id refused");
    ok(strstr(msg, "'a'") != NULL, "message names it");
    ok(notify_arn_known(reg, "arn:minio:sqs::b:redis"), "old targets kept");
    ok(t == notify_registry_target(reg, "b") && strcmp(t->id, "b") == 0, "pointer still valid");
    notify_registry_free(reg);
}

int main(void)
{
    subtest(test_target_table_defaults);
    subtest(test_target_table_rejects_with_lines);
    subtest(test_arn_parse);
    subtest(test_registry_targets);
    return done_testing();
}

/* Unit tests for conf/'s CONF_STRING_MAP: a mapping of arbitrary scalar keys to scalar values
 * (environment variables, secrets, labels). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "tests/unit/tap.h"

struct env {
    struct conf_kv *vars;
    size_t n_vars;
};

struct svc {
    char *name;
    struct conf_kv *labels;
    size_t n_labels;
    struct env env;
};

static const struct conf_key env_keys[] = {
    {.name = "variables",
     .type = CONF_STRING_MAP,
     .offset = offsetof(struct env, vars),
     CONF_COUNT(struct env, n_vars)},
    CONF_KEY_END,
};

static const struct conf_key svc_keys[] = {
    {.name = "name", .type = CONF_STRING, CONF_FIELD(struct svc, name)},
    {.name = "labels",
     .type = CONF_STRING_MAP,
     .offset = offsetof(struct svc, labels),
     CONF_COUNT(struct svc, n_labels)},
    {.name = "environment",
     .type = CONF_SECTION,
     .offset = offsetof(struct svc, env),
     .sub = env_keys},
    CONF_KEY_END,
};

static int load(struct svc *s, const char *yaml, struct conf_error *err)
{
    memset(s, 0, sizeof(*s));
    return conf_load_string(svc_keys, s, yaml, strlen(yaml), err);
}

static void expect_error(const char *yaml, int line, const char *msg, const char *name)
{
    struct svc s;
    struct conf_error err;

    ok(load(&s, yaml, &err) == -1, name);
    is_int(err.line, line, name);
    if (msg != NULL)
        is_str(err.msg, msg, name);
    conf_free(svc_keys, &s);
    ok(s.labels == NULL && s.n_labels == 0, "free after an error resets the map");
}

static void test_string_map_defaults_empty(void)
{
    struct svc s;

    memset(&s, 0xff, sizeof(s)); /* defaults overwrite whatever is there */
    conf_defaults(svc_keys, &s);
    ok(s.labels == NULL && s.n_labels == 0, "map starts empty");
    ok(s.env.vars == NULL && s.env.n_vars == 0, "map in a section starts empty");
    conf_free(svc_keys, &s);
}

static void test_string_map_keeps_document_order(void)
{
    struct svc s;
    struct conf_error err;
    const char *yaml = "name: x\n"
                       "labels:\n"
                       "  zeta: last\n"
                       "  alpha: 1\n"
                       "  \"with space\": 'quoted value'\n"
                       "  42: true\n"
                       "  empty:\n"
                       "environment:\n"
                       "  variables: {A: b, PATH: /usr/bin}\n";

    is_int(load(&s, yaml, &err), 0, "loads");
    is_int(s.n_labels, 5, "five labels");
    if (s.n_labels == 5) {
        is_str(s.labels[0].key, "zeta", "first key in document order");
        is_str(s.labels[0].value, "last", "first value");
        is_str(s.labels[1].key, "alpha", "second key");
        is_str(s.labels[1].value, "1", "number kept as text");
        is_str(s.labels[2].key, "with space", "quoted key");
        is_str(s.labels[2].value, "quoted value", "quoted value");
        is_str(s.labels[3].key, "42", "numeric key");
        is_str(s.labels[3].value, "true", "bool kept as text");
        is_str(s.labels[4].key, "empty", "key with no value");
        is_str(s.labels[4].value, "", "no value is the empty string");
    }
    is_int(s.env.n_vars, 2, "flow mapping in a section");
    if (s.env.n_vars == 2) {
        is_str(s.env.vars[1].key, "PATH", "flow key");
        is_str(s.env.vars[1].value, "/usr/bin", "flow value");
    }
    conf_free(svc_keys, &s);
    ok(s.labels == NULL && s.n_labels == 0 && s.env.vars == NULL, "free resets the maps");
    conf_free(svc_keys, &s);
}

static void test_string_map_null_or_empty_is_empty(void)
{
    struct svc s;
    struct conf_error err;

    is_int(load(&s, "labels:\n", &err), 0, "null map loads");
    ok(s.labels == NULL && s.n_labels == 0, "null map is empty");
    conf_free(svc_keys, &s);
    is_int(load(&s, "labels: {}\n", &err), 0, "{} loads");
    ok(s.labels == NULL && s.n_labels == 0, "{} is empty");
    conf_free(svc_keys, &s);
}

static void test_string_map_replaced_by_second_apply(void)
{
    struct svc s;
    struct conf_error err;
    struct conf_node *doc;

    is_int(load(&s, "labels: {a: 1, b: 2}\n", &err), 0, "first load");
    doc = conf_parse("labels: {c: 3}\n", 15, &err);
    ok(doc != NULL, "second document parses");
    is_int(conf_apply(svc_keys, &s, doc, &err), 0, "applies over the first");
    is_int(s.n_labels, 1, "the map is replaced, not merged");
    if (s.n_labels == 1)
        is_str(s.labels[0].key, "c", "the new key");
    conf_node_free(doc);
    conf_free(svc_keys, &s);
}

static void test_string_map_rejects_duplicates(void)
{
    expect_error("labels:\n  a: 1\n  b: 2\n  a: 3\n", 4,
                 "duplicate key 'a' in 'labels' (first on line 2)", "duplicate key");
    expect_error("environment:\n  variables:\n    X: 1\n    Y: 2\n    X: 1\n", 5,
                 "duplicate key 'X' in 'environment.variables' (first on line 3)",
                 "duplicate key in a section");
}

static void test_string_map_rejects_non_scalar(void)
{
    expect_error("labels:\n  a: 1\n  b:\n    - x\n", 4,
                 "'labels.b' must be a single value, not a list", "list value");
    expect_error("labels:\n  a: {x: y}\n", 2, "'labels.a' must be a single value, not a mapping",
                 "mapping value");
    expect_error("labels:\n  - a\n", 2, "'labels' must be a mapping, not a list", "list map");
    expect_error("labels: text\n", 1, "'labels' must be a mapping, not a single value",
                 "scalar map");
}

static void test_string_map_many_keys(void)
{
    /* the duplicate check must not be quadratic in the number of keys */
    size_t n = 20000, cap = n * 16 + 16, len = 0;
    char *yaml = malloc(cap);
    struct svc s;
    struct conf_error err;

    len += (size_t)snprintf(yaml + len, cap - len, "labels:\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(yaml + len, cap - len, "  k%zu: v\n", i);
    memset(&s, 0, sizeof(s));
    is_int(conf_load_string(svc_keys, &s, yaml, len, &err), 0, "many keys load");
    is_int(s.n_labels, n, "all kept");
    conf_free(svc_keys, &s);
    free(yaml);
}

static void test_string_map_cannot_be_set(void)
{
    struct svc s;
    struct conf_error err;

    memset(&s, 0, sizeof(s));
    conf_defaults(svc_keys, &s);
    is_int(conf_set(svc_keys, &s, "labels", "a=b", &err), -1, "conf_set refuses a map");
    is_str(err.msg, "'labels' cannot be set from a single value", "conf_set message");
    is_int(conf_set(svc_keys, &s, "environment.variables", "x", &err), -1,
           "conf_set refuses a map in a section");
    conf_free(svc_keys, &s);
}

int main(void)
{
    subtest(test_string_map_defaults_empty);
    subtest(test_string_map_keeps_document_order);
    subtest(test_string_map_null_or_empty_is_empty);
    subtest(test_string_map_replaced_by_second_apply);
    subtest(test_string_map_rejects_duplicates);
    subtest(test_string_map_rejects_non_scalar);
    subtest(test_string_map_many_keys);
    subtest(test_string_map_cannot_be_set);
    return done_testing();
}

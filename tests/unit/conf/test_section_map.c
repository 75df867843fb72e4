/* Unit tests for conf/'s CONF_SECTION_MAP (a mapping of any keys to sections of one table, or a
 * list of such mappings, as OSCAR FDL's functions.oscar) and CONF_ANY_MAP (a mapping that is
 * checked and not read, as FDL's storage_providers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "tests/unit/tap.h"

struct svc {
    char *name;
    char *cluster; /* the key, and also a field of the table */
    unsigned timeout_s;
    char **tags;
    size_t n_tags;
};

struct pool {
    char *id; /* the key only: not a field of the table */
    unsigned size;
};

struct fdl {
    struct svc *svcs;
    size_t n_svcs;
};

struct top {
    struct fdl fdl;
    struct pool *pools;
    size_t n_pools;
};

static const struct conf_key svc_keys[] = {
    {.name = "name", .type = CONF_STRING, CONF_FIELD(struct svc, name), .flags = CONF_REQUIRED},
    {.name = "cluster", .type = CONF_STRING, CONF_FIELD(struct svc, cluster)},
    {.name = "timeout",
     .type = CONF_DURATION_S,
     CONF_FIELD(struct svc, timeout_s),
     .dflt = "300s",
     .min = 1,
     .max = 3600},
    {.name = "tags",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct svc, tags),
     CONF_COUNT(struct svc, n_tags)},
    CONF_KEY_END,
};

static const struct conf_key pool_keys[] = {
    {.name = "size", .type = CONF_UINT, CONF_FIELD(struct pool, size), .dflt = "4"},
    CONF_KEY_END,
};

static const struct conf_key functions_keys[] = {
    {.name = "oscar",
     .type = CONF_SECTION_MAP,
     .offset = offsetof(struct fdl, svcs),
     .sub = svc_keys,
     .elem_size = sizeof(struct svc),
     CONF_COUNT(struct fdl, n_svcs),
     CONF_KEY_FIELD(struct svc, cluster)},
    CONF_KEY_END,
};

static const struct conf_key top_keys[] = {
    {.name = "functions",
     .type = CONF_SECTION,
     .offset = offsetof(struct top, fdl),
     .sub = functions_keys},
    {.name = "pools",
     .type = CONF_SECTION_MAP,
     .offset = offsetof(struct top, pools),
     .sub = pool_keys,
     .elem_size = sizeof(struct pool),
     CONF_COUNT(struct top, n_pools),
     CONF_KEY_FIELD(struct pool, id)},
    {.name = "storage_providers", .type = CONF_ANY_MAP},
    CONF_KEY_END,
};

static int load(struct top *t, const char *yaml, struct conf_error *err)
{
    memset(t, 0, sizeof(*t));
    return conf_load_string(top_keys, t, yaml, strlen(yaml), err);
}

static void expect_error(const char *yaml, int line, const char *msg, const char *name)
{
    struct top t;
    struct conf_error err;

    ok(load(&t, yaml, &err) == -1, name);
    is_int(err.line, line, name);
    if (msg != NULL)
        is_str(err.msg, msg, name);
    conf_free(top_keys, &t);
    ok(t.fdl.svcs == NULL && t.fdl.n_svcs == 0 && t.pools == NULL && t.n_pools == 0,
       "free after an error resets the maps");
}

static void test_section_map_defaults_empty(void)
{
    struct top t;

    memset(&t, 0xff, sizeof(t)); /* defaults overwrite whatever is there */
    conf_defaults(top_keys, &t);
    ok(t.fdl.svcs == NULL && t.fdl.n_svcs == 0, "map in a section starts empty");
    ok(t.pools == NULL && t.n_pools == 0, "map starts empty");
    conf_free(top_keys, &t);
}

static void test_section_map_from_a_mapping(void)
{
    struct top t;
    struct conf_error err;
    const char *yaml = "pools:\n"
                       "  gpu:\n"
                       "    size: 2\n"
                       "  cpu: {}\n"
                       "  'big one': {size: 64}\n";

    is_int(load(&t, yaml, &err), 0, "loads");
    is_int(t.n_pools, 3, "three pools");
    if (t.n_pools == 3) {
        is_str(t.pools[0].id, "gpu", "first key, in document order");
        is_int(t.pools[0].size, 2, "its field");
        is_str(t.pools[1].id, "cpu", "second key");
        is_int(t.pools[1].size, 4, "an element starts from its table's defaults");
        is_str(t.pools[2].id, "big one", "quoted key");
        is_int(t.pools[2].size, 64, "flow mapping");
    }
    conf_free(top_keys, &t);
    ok(t.pools == NULL && t.n_pools == 0, "free resets the map (and frees the keys)");
    conf_free(top_keys, &t);
}

static void test_section_map_from_a_list_of_mappings(void)
{
    struct top t;
    struct conf_error err;
    const char *yaml = "functions:\n"
                       "  oscar:\n"
                       "  - edge:\n"
                       "      name: first\n"
                       "      tags: [a, b]\n"
                       "  - cloud:\n"
                       "      name: second\n"
                       "      timeout: 10s\n"
                       "    edge:\n"
                       "      name: third\n"
                       "  - edge:\n" /* a key may repeat across items */
                       "      name: fourth\n"
                       "      cluster: ignored\n";

    is_int(load(&t, yaml, &err), 0, "loads");
    if (err.msg[0] != '\0')
        printf("# line %d: %s\n", err.line, err.msg);
    is_int(t.fdl.n_svcs, 4, "entries of every item, concatenated");
    if (t.fdl.n_svcs == 4) {
        is_str(t.fdl.svcs[0].name, "first", "first");
        is_str(t.fdl.svcs[0].cluster, "edge", "key stored");
        is_int(t.fdl.svcs[0].n_tags, 2, "nested list");
        is_int(t.fdl.svcs[0].timeout_s, 300, "default");
        is_str(t.fdl.svcs[1].name, "second", "second");
        is_str(t.fdl.svcs[1].cluster, "cloud", "second key");
        is_int(t.fdl.svcs[1].timeout_s, 10, "field");
        is_str(t.fdl.svcs[2].name, "third", "an item with two keys");
        is_str(t.fdl.svcs[2].cluster, "edge", "its second key");
        is_str(t.fdl.svcs[3].name, "fourth", "a key repeated in another item");
        is_str(t.fdl.svcs[3].cluster, "edge", "the key wins over the field");
    }
    conf_free(top_keys, &t);
    ok(t.fdl.svcs == NULL && t.fdl.n_svcs == 0, "free resets the map");
}

static void test_section_map_null_or_empty_is_empty(void)
{
    static const char *const docs[] = {"pools:\n", "pools: {}\n", "pools: []\n",
                                       "functions:\n  oscar:\n", "functions: {oscar: [{}]}\n"};
    struct top t;
    struct conf_error err;

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        is_int(load(&t, docs[i], &err), 0, "loads");
        if (!ok(t.pools == NULL && t.n_pools == 0 && t.fdl.svcs == NULL && t.fdl.n_svcs == 0,
                "empty"))
            printf("#   %s", docs[i]);
        conf_free(top_keys, &t);
    }
}

static void test_section_map_replaced_by_second_apply(void)
{
    struct top t;
    struct conf_error err;
    struct conf_node *doc;
    const char *bad = "pools: {x: {size: 1}, y: {size: nope}}\n";

    is_int(load(&t, "pools: {a: {size: 1}, b: {size: 2}}\n", &err), 0, "first load");
    doc = conf_parse("pools: {c: {size: 3}}\n", 22, &err);
    ok(doc != NULL, "second document parses");
    is_int(conf_apply(top_keys, &t, doc, &err), 0, "applies over the first");
    is_int(t.n_pools, 1, "the map is replaced, not merged");
    if (t.n_pools == 1)
        is_str(t.pools[0].id, "c", "the new key");
    conf_node_free(doc);

    doc = conf_parse(bad, strlen(bad), &err);
    is_int(conf_apply(top_keys, &t, doc, &err), -1, "a bad document fails");
    is_int(t.n_pools, 1, "and leaves the map as it was");
    conf_node_free(doc);
    conf_free(top_keys, &t);
}

static void test_section_map_errors_have_lines(void)
{
    expect_error("pools:\n  gpu:\n    size: 2\n    sise: 3\n", 4,
                 "unknown key 'sise' in 'pools.gpu'", "unknown key in an element");
    expect_error("functions:\n  oscar:\n  - edge:\n      name: a\n  - cloud:\n      name: b\n"
                 "      bogus: 1\n",
                 7, "unknown key 'bogus' in 'functions.oscar[1].cloud'",
                 "unknown key in an element of a list item");
    expect_error("functions:\n  oscar:\n  - edge:\n      timeout: 5s\n", 4,
                 "missing required key 'name' in 'functions.oscar[0].edge'", "required key");
    expect_error("functions:\n  oscar:\n  - edge:\n      name: a\n      timeout: 2h\n", 5,
                 "'functions.oscar[0].edge.timeout': 7200s is out of range (1s to 3600s)",
                 "limits");
    expect_error("pools:\n  a: {size: 1}\n  b: {}\n  a: {size: 2}\n", 4,
                 "duplicate key 'a' in 'pools' (first on line 2)", "duplicate key");
    expect_error("functions:\n  oscar:\n  - edge: {name: a}\n    edge: {name: b}\n", 4,
                 "duplicate key 'edge' in 'functions.oscar[0]' (first on line 3)",
                 "duplicate key within one item");
    expect_error("pools:\n  gpu:\n", 2, "'pools.gpu' must be a mapping, not nothing",
                 "null element");
    expect_error("pools:\n  gpu: 3\n", 2, "'pools.gpu' must be a mapping, not a single value",
                 "scalar element");
    expect_error("pools:\n  gpu: [1]\n", 2, "'pools.gpu' must be a mapping, not a list",
                 "list element");
    expect_error("functions:\n  oscar:\n  - edge: {name: a}\n  - just text\n", 4,
                 "'functions.oscar[1]' must be a mapping, not a single value", "scalar item");
    expect_error("functions:\n  oscar:\n  - [a]\n", 3,
                 "'functions.oscar[0]' must be a mapping, not a list", "list item");
    expect_error("pools: 5\n", 1,
                 "'pools' must be a mapping or a list of mappings, not a single "
                 "value",
                 "scalar map");
}

static void test_section_map_cannot_be_set(void)
{
    struct top t;
    struct conf_error err;

    memset(&t, 0, sizeof(t));
    conf_defaults(top_keys, &t);
    is_int(conf_set(top_keys, &t, "pools", "x", &err), -1, "conf_set refuses a section map");
    is_str(err.msg, "'pools' cannot be set from a single value", "conf_set message");
    is_int(conf_set(top_keys, &t, "functions.oscar", "x", &err), -1, "and one in a section");
    is_int(conf_set(top_keys, &t, "storage_providers", "x", &err), -1, "and an any-map");
    conf_free(top_keys, &t);
}

static void test_any_map_accepts_any_mapping(void)
{
    struct top t;
    struct conf_error err;
    const char *yaml = "storage_providers:\n"
                       "  minio:\n"
                       "    cloud: {endpoint: 'https://minio.example.org', verify: true}\n"
                       "  onedata:\n"
                       "    archive: {token: x, space: [a, b]}\n"
                       "  anything: 1\n";

    is_int(load(&t, yaml, &err), 0, "nested content loads");
    conf_free(top_keys, &t);
    is_int(load(&t, "storage_providers:\n", &err), 0, "null loads");
    conf_free(top_keys, &t);
    is_int(load(&t, "storage_providers: {}\n", &err), 0, "{} loads");
    conf_free(top_keys, &t);
    expect_error("pools: {}\nstorage_providers: [minio]\n", 2,
                 "'storage_providers' must be a mapping, not a list", "a list is refused");
    expect_error("storage_providers: minio\n", 1,
                 "'storage_providers' must be a mapping, not a single value",
                 "a scalar is refused");
}

static void test_section_map_many_entries(void)
{
    /* the duplicate check must not be quadratic in the number of keys */
    size_t n = 20000, cap = n * 24 + 16, len = 0;
    char *yaml = malloc(cap);
    struct top t;
    struct conf_error err;

    len += (size_t)snprintf(yaml + len, cap - len, "pools:\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(yaml + len, cap - len, "  p%zu: {size: 1}\n", i);
    memset(&t, 0, sizeof(t));
    is_int(conf_load_string(top_keys, &t, yaml, len, &err), 0, "many entries load");
    is_int(t.n_pools, n, "all kept");
    conf_free(top_keys, &t);
    free(yaml);
}

int main(void)
{
    subtest(test_section_map_defaults_empty);
    subtest(test_section_map_from_a_mapping);
    subtest(test_section_map_from_a_list_of_mappings);
    subtest(test_section_map_null_or_empty_is_empty);
    subtest(test_section_map_replaced_by_second_apply);
    subtest(test_section_map_errors_have_lines);
    subtest(test_section_map_cannot_be_set);
    subtest(test_any_map_accepts_any_mapping);
    subtest(test_section_map_many_entries);
    return done_testing();
}

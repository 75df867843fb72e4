/* Unit tests for conf/: YAML to node tree, value syntax, and the table-driven applier. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/unit/tap.h"

struct inner {
    unsigned n;
    char *label;
};

struct item {
    char *name;
    uint64_t size;
    bool on;
    char **tags;
    size_t n_tags;
};

struct endpoint {
    char *host;
    uint16_t port;
};

struct cfg {
    char *name;
    bool flag;
    int delta;
    unsigned count;
    uint8_t small;
    size_t buf_bytes;
    uint64_t big_bytes;
    unsigned timeout_ms;
    unsigned age_s;
    struct inner inner;
    struct item *items;
    size_t n_items;
    char **tags;
    size_t n_tags;
    struct endpoint ep; /* included: its keys sit at the top level */
};

static int check_name(const void *base, const struct conf_key *key, char *msg, size_t cap)
{
    const char *name = *(char *const *)((const char *)base + key->offset);

    if (name != NULL && strcmp(name, "bad") == 0) {
        snprintf(msg, cap, "'bad' is reserved");
        return -1;
    }
    return 0;
}

static const struct conf_key inner_keys[] = {
    {.name = "n", .type = CONF_UINT, CONF_FIELD(struct inner, n), .dflt = "3", .min = 1, .max = 9},
    {.name = "label", .type = CONF_STRING, CONF_FIELD(struct inner, label), .dflt = "lbl"},
    CONF_KEY_END,
};

static const struct conf_key item_keys[] = {
    {.name = "name",
     .type = CONF_STRING,
     CONF_FIELD(struct item, name),
     .flags = CONF_REQUIRED | CONF_NONEMPTY},
    {.name = "size", .type = CONF_SIZE, CONF_FIELD(struct item, size), .dflt = "1KiB"},
    {.name = "on", .type = CONF_BOOL, CONF_FIELD(struct item, on), .dflt = "yes"},
    {.name = "tags",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct item, tags),
     CONF_COUNT(struct item, n_tags)},
    CONF_KEY_END,
};

static const struct conf_key endpoint_keys[] = {
    {.name = "host", .type = CONF_STRING, CONF_FIELD(struct endpoint, host), .dflt = "localhost"},
    {.name = "port", .type = CONF_UINT, CONF_FIELD(struct endpoint, port), .dflt = "80"},
    CONF_KEY_END,
};

static const struct conf_key cfg_keys[] = {
    {.name = "name",
     .type = CONF_STRING,
     CONF_FIELD(struct cfg, name),
     .dflt = "default-name",
     .check = check_name},
    {.name = "flag", .type = CONF_BOOL, CONF_FIELD(struct cfg, flag), .dflt = "true"},
    {.name = "delta",
     .type = CONF_INT,
     CONF_FIELD(struct cfg, delta),
     .dflt = "-5",
     .min = -100,
     .max = 100},
    {.name = "count",
     .type = CONF_UINT,
     CONF_FIELD(struct cfg, count),
     .dflt = "10",
     .min = 1,
     .max = 100},
    {.name = "small", .type = CONF_UINT, CONF_FIELD(struct cfg, small)},
    {.name = "buf",
     .type = CONF_SIZE,
     CONF_FIELD(struct cfg, buf_bytes),
     .dflt = "64KiB",
     .min = 1024,
     .max = 1 << 30},
    {.name = "big", .type = CONF_SIZE, CONF_FIELD(struct cfg, big_bytes), .dflt = "5GiB"},
    {.name = "timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(struct cfg, timeout_ms),
     .dflt = "30s",
     .min = 1,
     .max = 86400000},
    {.name = "age", .type = CONF_DURATION_S, CONF_FIELD(struct cfg, age_s), .dflt = "7d"},
    {.name = "inner",
     .type = CONF_SECTION,
     .offset = offsetof(struct cfg, inner),
     .sub = inner_keys},
    {.name = "items",
     .type = CONF_LIST,
     .offset = offsetof(struct cfg, items),
     .sub = item_keys,
     .elem_size = sizeof(struct item),
     CONF_COUNT(struct cfg, n_items)},
    {.name = "tags",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct cfg, tags),
     CONF_COUNT(struct cfg, n_tags)},
    {.type = CONF_INCLUDE, .offset = offsetof(struct cfg, ep), .sub = endpoint_keys},
    CONF_KEY_END,
};

/* Loads `yaml` into a fresh cfg; returns conf_load_string's result. */
static int load(struct cfg *c, const char *yaml, struct conf_error *err)
{
    memset(c, 0, sizeof(*c));
    return conf_load_string(cfg_keys, c, yaml, strlen(yaml), err);
}

/* Loads `yaml`, expecting failure on `line` with message `msg`. */
static void expect_error(const char *yaml, int line, const char *msg, const char *name)
{
    struct cfg c;
    struct conf_error err;
    int rc = load(&c, yaml, &err);

    ok(rc == -1, name);
    is_int(err.line, line, name);
    if (msg != NULL)
        is_str(err.msg, msg, name);
    conf_free(cfg_keys, &c);
}

static void test_defaults_fill_every_type(void)
{
    struct cfg c;

    memset(&c, 0, sizeof(c));
    conf_defaults(cfg_keys, &c);
    is_str(c.name, "default-name", "string default");
    ok(c.flag, "bool default");
    is_int(c.delta, -5, "int default");
    is_int(c.count, 10, "uint default");
    is_int(c.small, 0, "no default is zero");
    is_int(c.buf_bytes, 65536, "size default");
    ok(c.big_bytes == 5368709120ULL, "size default beyond 32 bits");
    is_int(c.timeout_ms, 30000, "duration default in ms");
    is_int(c.age_s, 7 * 86400, "duration default in s");
    is_int(c.inner.n, 3, "section default");
    is_str(c.inner.label, "lbl", "section string default");
    ok(c.items == NULL && c.n_items == 0, "list starts empty");
    ok(c.tags == NULL && c.n_tags == 0, "string list starts empty");
    is_str(c.ep.host, "localhost", "included default");
    is_int(c.ep.port, 80, "included uint16 default");
    conf_free(cfg_keys, &c);
    ok(c.name == NULL && c.inner.label == NULL && c.ep.host == NULL, "free resets pointers");
    conf_free(cfg_keys, &c); /* twice is harmless */
    conf_free(cfg_keys, NULL);
}

static void test_load_sets_every_type(void)
{
    struct cfg c;
    struct conf_error err;
    const char *yaml = "name: hello world\n"
                       "flag: off\n"
                       "delta: -42\n"
                       "count: 99\n"
                       "small: 255\n"
                       "buf: 1MB\n"
                       "big: 6GiB\n"
                       "timeout: 1h30m\n"
                       "age: 2d\n"
                       "inner:\n"
                       "  n: 7\n"
                       "host: example.org\n"
                       "port: 8080\n"
                       "tags: [a, 'b c', \"null\"]\n";

    is_int(load(&c, yaml, &err), 0, "load ok");
    is_str(err.msg, "", "no error message");
    is_str(c.name, "hello world", "string");
    ok(!c.flag, "bool off");
    is_int(c.delta, -42, "negative int");
    is_int(c.count, 99, "uint");
    is_int(c.small, 255, "uint8");
    is_int(c.buf_bytes, 1 << 20, "1MB is binary");
    ok(c.big_bytes == 6ULL << 30, "6GiB");
    is_int(c.timeout_ms, 5400000, "1h30m in ms");
    is_int(c.age_s, 172800, "2d in s");
    is_int(c.inner.n, 7, "section value");
    is_str(c.inner.label, "lbl", "absent section key keeps its default");
    is_str(c.ep.host, "example.org", "included string");
    is_int(c.ep.port, 8080, "included uint16");
    is_int(c.n_tags, 3, "string list count");
    if (c.n_tags == 3) {
        is_str(c.tags[0], "a", "string list 0");
        is_str(c.tags[1], "b c", "string list 1");
        is_str(c.tags[2], "null", "a quoted null is a string");
    }
    conf_free(cfg_keys, &c);
}

static void test_null_values(void)
{
    struct cfg c;
    struct conf_error err;

    is_int(load(&c, "name: ~\ninner:\nitems:\ntags: null\n", &err), 0, "nulls load");
    ok(c.name == NULL, "null string is NULL");
    is_int(c.inner.n, 3, "null section keeps defaults");
    ok(c.n_items == 0 && c.items == NULL, "null list is empty");
    conf_free(cfg_keys, &c);
    expect_error("count:\n", 1, "'count' needs a value", "null number is an error");
}

static void test_sizes(void)
{
    static const struct {
        const char *in;
        uint64_t want;
    } good[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"64K", 65536},
        {"64kb", 65536},
        {"64KiB", 65536},
        {"1MB", 1048576},
        {"1 MiB", 1048576},
        {"5GiB", 5368709120ULL},
        {"2G", 2147483648ULL},
        {"1TiB", 1099511627776ULL},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "KiB",
        "-1",
        "+1",
        "1.5GiB",
        "1PiB",
        "12 34",
        "0x10",
        "18446744073709551616",
        "17179869184GiB",
        "1 KiB ",
    };
    char name[96];
    uint64_t v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(name, sizeof(name), "size '%s'", good[i].in);
        v = 1;
        ok(conf_parse_size(good[i].in, &v) == 0 && v == good[i].want, name);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name), "size '%s' rejected", bad[i]);
        ok(conf_parse_size(bad[i], &v) == -1, name);
    }
}

static void test_durations(void)
{
    static const struct {
        const char *in;
        uint64_t want_ms;
    } good[] = {
        {"30s", 30000},     {"500ms", 500},      {"10m", 600000},    {"7d", 604800000},
        {"1h30m", 5400000}, {"1h 30m", 5400000}, {"2w", 1209600000}, {"45", 45000},
        {"0", 0},           {"1m1s1ms", 61001},
    };
    static const char *const bad[] = {
        "", "s", "5x", "-1s", "1.5s", "10M", "5 s", "1h30", "30s5", "99999999999999999999d", "ms",
    };
    char name[96];
    uint64_t v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(name, sizeof(name), "duration '%s'", good[i].in);
        v = 1;
        ok(conf_parse_duration_ms(good[i].in, &v) == 0 && v == good[i].want_ms, name);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name), "duration '%s' rejected", bad[i]);
        ok(conf_parse_duration_ms(bad[i], &v) == -1, name);
    }
    expect_error("age: 1500ms\n", 1, "'age': '1500ms' is not a whole number of seconds",
                 "seconds field rejects a fraction");
    {
        struct cfg c;
        struct conf_error err;
        is_int(load(&c, "age: 2000ms\n", &err), 0, "seconds field takes whole ms");
        is_int(c.age_s, 2, "2000ms is 2 s");
        conf_free(cfg_keys, &c);
    }
}

static void test_bools_and_ints(void)
{
    bool b = false;
    int64_t i;
    uint64_t u;

    ok(conf_parse_bool("Yes", &b) == 0 && b, "Yes");
    ok(conf_parse_bool("ON", &b) == 0 && b, "ON");
    ok(conf_parse_bool("false", &b) == 0 && !b, "false");
    ok(conf_parse_bool("1", &b) == -1, "1 is not a bool");
    ok(conf_parse_int("-9223372036854775808", &i) == 0 && i == INT64_MIN, "INT64_MIN");
    ok(conf_parse_int("9223372036854775808", &i) == -1, "INT64_MAX + 1");
    ok(conf_parse_int("-", &i) == -1, "lone sign");
    ok(conf_parse_uint("007", &u) == 0 && u == 7, "leading zeros");
    ok(conf_parse_uint(" 7", &u) == -1, "leading space");
}

static void test_list_of_sections(void)
{
    struct cfg c;
    struct conf_error err;
    const char *yaml = "items:\n"
                       "  - name: first\n"
                       "    size: 2KiB\n"
                       "    tags: [x, y]\n"
                       "  - name: second\n"
                       "    on: false\n";

    is_int(load(&c, yaml, &err), 0, "list loads");
    is_int(c.n_items, 2, "two items");
    if (c.n_items == 2) {
        is_str(c.items[0].name, "first", "item 0 name");
        ok(c.items[0].size == 2048, "item 0 size");
        ok(c.items[0].on, "item 0 default bool");
        is_int(c.items[0].n_tags, 2, "item 0 tags");
        is_str(c.items[1].name, "second", "item 1 name");
        ok(c.items[1].size == 1024, "item 1 default size");
        ok(!c.items[1].on, "item 1 bool");
        is_int(c.items[1].n_tags, 0, "item 1 no tags");
    }
    /* applying again replaces the list (and frees the old one) */
    is_int(conf_apply(cfg_keys, &c, &(struct conf_node){.kind = CONF_NODE_MAP}, &err), 0,
           "empty apply");
    is_int(c.n_items, 2, "empty document leaves the list");
    conf_free(cfg_keys, &c);

    expect_error("items:\n  - size: 1K\n", 2, "missing required key 'name' in 'items[0]'",
                 "required key");
    expect_error("items:\n  - name: a\n  - name: b\n    bogus: 1\n", 4,
                 "unknown key 'bogus' in 'items[1]'", "unknown key in a list element");
    expect_error("items:\n  - name: a\n  - just a string\n", 3,
                 "'items[1]' must be a mapping, not a single value", "element not a mapping");
    expect_error("items:\n  - name: ''\n", 2, "'items[0].name' must not be empty", "nonempty");
    expect_error("items: {name: a}\n", 1, "'items' must be a list, not a mapping",
                 "list given a mapping");
    expect_error("tags: [a, [b]]\n", 1, "'tags[1]' must be a single value, not a list",
                 "string list element");
}

static void test_unknown_key_names_its_line(void)
{
    expect_error("name: x\n"
                 "count: 3\n"
                 "inner:\n"
                 "  n: 2\n"
                 "\n"
                 "  nn: 4\n",
                 6, "unknown key 'nn' in 'inner'", "unknown nested key");
    expect_error("# comment\nlistne: 1\n", 2, "unknown key 'listne'", "unknown top-level key");
}

static void test_duplicate_key(void)
{
    expect_error("count: 1\nflag: true\ncount: 2\n", 3, "duplicate key 'count' (first on line 1)",
                 "duplicate top-level key");
    expect_error("inner:\n  n: 1\n  n: 2\n", 3, "duplicate key 'n' in 'inner' (first on line 2)",
                 "duplicate nested key");
    expect_error("port: 1\nport: 2\n", 2, NULL, "duplicate included key");
}

static void test_wrong_types(void)
{
    expect_error("inner: 5\n", 1, "'inner' must be a mapping, not a single value",
                 "section given a scalar");
    expect_error("count: [1]\n", 1, "'count' must be a single value, not a list",
                 "number given a list");
    expect_error("name: {a: b}\n", 1, "'name' must be a single value, not a mapping",
                 "string given a mapping");
    expect_error("count: abc\n", 1, "'count': expected a non-negative integer, got 'abc'",
                 "not a number");
    expect_error("flag: maybe\n", 1, "'flag': expected true or false, got 'maybe'", "not a bool");
    expect_error("\n\nbuf: lots\n", 3,
                 "'buf': expected a size such as 4096, 64KiB or 5GiB, got 'lots'", "not a size");
    expect_error("timeout: soon\n", 1,
                 "'timeout': expected a duration such as 500ms, 30s, 10m or 7d, got 'soon'",
                 "not a duration");
    expect_error("- a\n- b\n", 1, "the configuration must be a mapping of keys, not a list",
                 "root is a list");
    expect_error("[a]: 1\n", 1, "mapping keys must be scalars", "complex key");
}

static void test_out_of_range(void)
{
    expect_error("count: 101\n", 1, "'count': 101 is out of range (1 to 100)", "above max");
    expect_error("count: 0\n", 1, "'count': 0 is out of range (1 to 100)", "below min");
    expect_error("delta: -101\n", 1, "'delta': -101 is out of range (-100 to 100)",
                 "int below min");
    expect_error("small: 256\n", 1, "'small': 256 is too large", "beyond uint8 width");
    expect_error("port: 65536\n", 1, "'port': 65536 is too large", "beyond uint16 width");
    expect_error("buf: 2GiB\n", 1,
                 "'buf': 2147483648 bytes is out of range (1024 bytes to 1073741824 bytes)",
                 "size above max");
    expect_error("timeout: 2d\n", 1, "'timeout': 172800000ms is out of range (1ms to 86400000ms)",
                 "duration above max");
    expect_error("inner: {n: 10}\n", 1, "'inner.n': 10 is out of range (1 to 9)",
                 "nested path in message");
    expect_error("age: 1000000w\n", 1, NULL, "duration beyond unsigned");
}

static void test_check_hook(void)
{
    expect_error("count: 2\nname: bad\n", 2, "'name': 'bad' is reserved", "check hook");
}

static void test_malformed_yaml(void)
{
    struct cfg c;
    struct conf_error err;

    is_int(load(&c, "a: b\n  c: d\n", &err), -1, "bad indentation");
    is_int(err.line, 2, "libyaml's line");
    ok(strncmp(err.msg, "YAML syntax error: ", 19) == 0, "syntax error message");
    conf_free(cfg_keys, &c);

    is_int(load(&c, "name: x\ntags: [a, b\ncount: 3\n", &err), -1, "unclosed flow list");
    ok(err.line >= 2, "unclosed flow list line");
    conf_free(cfg_keys, &c);

    is_int(load(&c, "name: x\n\tcount: 3\n", &err), -1, "tab indentation");
    is_int(err.line, 2, "tab line");
    conf_free(cfg_keys, &c);

    is_int(load(&c, "name: \"unterminated\n", &err), -1, "unterminated quote");
    is_int(err.line, 2, "unterminated quote: where libyaml noticed");
    ok(strstr(err.msg, "starts on line 1") != NULL, "unterminated quote: where it started");
    conf_free(cfg_keys, &c);
    is_int(load(&c, "name: x\nhost: -\n", &err), -1, "bare - value");
    is_int(err.line, 2, "bare - line");
    ok(strstr(err.msg, "must be quoted") != NULL, "bare - hint");
    conf_free(cfg_keys, &c);

    expect_error("name: &a x\ninner: {label: *a}\n", 2, "YAML aliases are not supported",
                 "alias rejected");
    expect_error("name: x\n---\nname: y\n", 2, "only one YAML document is allowed",
                 "second document");
    expect_error("name: \"a\\0b\"\n", 1, "NUL character in a value", "NUL in value");

    {
        char deep[200];
        size_t n = 0;
        n += (size_t)snprintf(deep, sizeof(deep), "tags: ");
        for (int i = 0; i < 40; i++)
            deep[n++] = '[';
        deep[n] = '\0';
        is_int(load(&c, deep, &err), -1, "deep nesting refused");
        ok(strstr(err.msg, "nesting deeper") != NULL || strstr(err.msg, "YAML") != NULL,
           "deep nesting message");
        conf_free(cfg_keys, &c);
    }
}

static void test_empty_inputs(void)
{
    static const char *const empties[] = {"",      "\n\n", "# only a comment\n",
                                          "---\n", "~\n",  "---\n...\n"};
    struct cfg c;
    struct conf_error err;

    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        is_int(load(&c, empties[i], &err), 0, "empty document loads");
        is_int(c.count, 10, "empty document gives defaults");
        is_str(c.name, "default-name", "empty document string default");
        conf_free(cfg_keys, &c);
    }
    memset(&c, 0, sizeof(c));
    is_int(conf_load_string(cfg_keys, &c, NULL, 0, &err), 0, "NULL, 0 loads");
    conf_free(cfg_keys, &c);
}

static void test_reload_frees_previous_values(void)
{
    struct cfg c;
    struct conf_error err;

    is_int(load(&c, "name: one\nitems: [{name: a}]\ntags: [t]\n", &err), 0, "first load");
    /* without memset: a second load must free the first one's strings and lists */
    is_int(conf_load_string(cfg_keys, &c, "name: two\n", 10, &err), 0, "second load");
    is_str(c.name, "two", "second value");
    is_int(c.n_items, 0, "list back to default");
    /* a failing load leaves something conf_free can release */
    const char *bad = "items: [{name: a}, {name: b, x: 1}]\n";
    is_int(conf_load_string(cfg_keys, &c, bad, strlen(bad), &err), -1, "failing load");
    conf_free(cfg_keys, &c);
    ok(c.items == NULL && c.name == NULL, "freed after a failed load");
}

static void test_conf_set(void)
{
    struct cfg c;
    struct conf_error err;

    memset(&c, 0, sizeof(c));
    conf_defaults(cfg_keys, &c);
    is_int(conf_set(cfg_keys, &c, "inner.n", "9", &err), 0, "set nested");
    is_int(c.inner.n, 9, "nested value");
    is_int(conf_set(cfg_keys, &c, "name", "cli", &err), 0, "set string");
    is_str(c.name, "cli", "string value");
    is_int(conf_set(cfg_keys, &c, "host", "h", &err), 0, "set included key");
    is_str(c.ep.host, "h", "included value");
    is_int(conf_set(cfg_keys, &c, "timeout", "5s", &err), 0, "set duration");
    is_int(c.timeout_ms, 5000, "duration value");
    is_int(conf_set(cfg_keys, &c, "count", "abc", &err), -1, "bad value");
    is_int(err.line, 0, "no line for a set");
    is_str(err.msg, "'count': expected a non-negative integer, got 'abc'", "set message");
    is_int(conf_set(cfg_keys, &c, "name", "bad", &err), -1, "check hook runs on set");
    is_int(conf_set(cfg_keys, &c, "items", "x", &err), -1, "list cannot be set");
    is_int(conf_set(cfg_keys, &c, "inner", "x", &err), -1, "section cannot be set");
    is_int(conf_set(cfg_keys, &c, "nope.n", "1", &err), -1, "unknown section");
    is_str(err.msg, "unknown key 'nope.n'", "unknown path message");
    is_int(conf_set(cfg_keys, &c, "count.x", "1", &err), -1, "path through a scalar");
    conf_free(cfg_keys, &c);
}

static void test_load_file(void)
{
    char path[] = "/tmp/fg_test_conf_XXXXXX";
    int fd = mkstemp(path);
    const char *yaml = "count: 5\ninner:\n  label: from-file\n";
    struct cfg c;
    struct conf_error err;

    ok(fd >= 0, "temp file");
    if (fd < 0)
        return;
    ok(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml), "write temp file");
    close(fd);
    memset(&c, 0, sizeof(c));
    is_int(conf_load_file(cfg_keys, &c, path, &err), 0, "load file");
    is_int(c.count, 5, "file value");
    is_str(c.inner.label, "from-file", "file nested value");
    conf_free(cfg_keys, &c);
    unlink(path);

    is_int(conf_load_file(cfg_keys, &c, path, &err), -1, "missing file");
    is_int(err.line, 0, "missing file has no line");
    ok(strncmp(err.msg, "cannot open: ", 13) == 0, "missing file message");
    conf_free(cfg_keys, &c);
}

static void test_node_tree_keeps_lines(void)
{
    struct conf_error err;
    const char *yaml = "a: 1\nb:\n  - x\n  - {c: d}\n";
    struct conf_node *root = conf_parse(yaml, strlen(yaml), &err);

    ok(root != NULL, "parse");
    if (root == NULL)
        return;
    is_int(root->kind, CONF_NODE_MAP, "root is a map");
    is_int(root->n_items, 4, "two pairs");
    if (root->n_items == 4) {
        is_str(root->items[2].value, "b", "second key");
        is_int(root->items[3].kind, CONF_NODE_SEQ, "b is a list");
        is_int(root->items[3].n_items, 2, "two elements");
        if (root->items[3].n_items == 2)
            is_int(root->items[3].items[1].line, 4, "element line");
    }
    conf_node_free(root);
}

int main(void)
{
    subtest(test_defaults_fill_every_type);
    subtest(test_load_sets_every_type);
    subtest(test_null_values);
    subtest(test_sizes);
    subtest(test_durations);
    subtest(test_bools_and_ints);
    subtest(test_list_of_sections);
    subtest(test_unknown_key_names_its_line);
    subtest(test_duplicate_key);
    subtest(test_wrong_types);
    subtest(test_out_of_range);
    subtest(test_check_hook);
    subtest(test_malformed_yaml);
    subtest(test_empty_inputs);
    subtest(test_reload_frees_previous_values);
    subtest(test_conf_set);
    subtest(test_load_file);
    subtest(test_node_tree_keeps_lines);
    return done_testing();
}

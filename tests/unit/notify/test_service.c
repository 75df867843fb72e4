/* Unit tests for notify/service.c: the service table through YAML and JSON, line-numbered
 * errors, script files, the JSON form and the rev. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "tests/unit/tap.h"

static int parse(const char *doc, struct notify_service *svc, struct conf_error *err)
{
    return notify_service_parse(doc, strlen(doc), svc, err);
}

static void expect_error(const char *doc, int line, const char *want_msg, const char *name)
{
    struct notify_service svc;
    struct conf_error err;

    ok(parse(doc, &svc, &err) == -1, name);
    is_int(err.line, line, name);
    if (want_msg != NULL && !ok(strstr(err.msg, want_msg) != NULL, name))
        printf("#   message: %s\n", err.msg);
    notify_service_free(&svc);
}

static const char *full_yaml = "name: plants\n"
                               "image: grycap/plants\n"
                               "memory: 1Gi\n"
                               "cpu: '1.0'\n"
                               "log_level: CRITICAL\n"
                               "script: |\n"
                               "  #!/bin/sh\n"
                               "  echo hi\n"
                               "input:\n"
                               "  - storage_provider: minio.default\n"
                               "    path: plants/in\n"
                               "    suffix: [.jpg, .png]\n"
                               "output:\n"
                               "  - storage_provider: minio.default\n"
                               "    path: plants/out\n"
                               "    prefix: [res]\n"
                               "environment:\n"
                               "  variables:\n"
                               "    MODEL: big\n"
                               "  secrets:\n"
                               "    TOKEN: s3cr3t\n"
                               "pool: edge\n"
                               "timeout: 10m\n"
                               "max_attempts: 5\n"
                               "concurrency: 2\n";

static void test_service_parse_yaml_sets_every_field(void)
{
    struct notify_service svc;
    struct conf_error err;

    is_int(parse(full_yaml, &svc, &err), 0, "full service parses");
    is_str(svc.name, "plants", "name");
    is_str(svc.image, "grycap/plants", "image");
    is_str(svc.memory, "1Gi", "memory");
    is_str(svc.cpu, "1.0", "cpu");
    is_str(svc.log_level, "CRITICAL", "log_level");
    is_str(svc.script_text, "#!/bin/sh\necho hi\n", "API script is the text");
    is_int(svc.n_input, 1, "one input");
    is_str(svc.input[0].storage_provider, "minio.default", "input provider");
    is_str(svc.input[0].path, "plants/in", "input path");
    is_int(svc.input[0].n_suffix, 2, "input suffixes");
    is_int(svc.n_output, 1, "one output");
    is_str(svc.output[0].prefix[0], "res", "output prefix");
    is_int(svc.environment.n_variables, 1, "one variable");
    is_str(svc.environment.variables[0].value, "big", "variable value");
    is_str(svc.environment.secrets[0].key, "TOKEN", "secret name");
    is_str(svc.pool, "edge", "pool");
    is_int(svc.timeout_s, 600, "timeout in seconds");
    is_int(svc.max_attempts, 5, "max_attempts");
    is_int(svc.concurrency, 2, "concurrency");
    notify_service_free(&svc);
    ok(svc.name == NULL && svc.script_text == NULL && svc.input == NULL, "free resets");
    notify_service_free(&svc);
    notify_service_free(NULL);
}

static void test_service_parse_defaults(void)
{
    struct notify_service svc;
    struct conf_error err;

    is_int(parse("{\"name\": \"a1\", \"input\": [{\"path\": \"abc\"}]}", &svc, &err), 0,
           "minimal JSON parses");
    is_str(svc.pool, "default", "pool default");
    is_int(svc.timeout_s, 300, "timeout default");
    is_int(svc.max_attempts, 3, "max_attempts default");
    is_int(svc.concurrency, 0, "concurrency default");
    ok(svc.script == NULL && svc.script_text == NULL, "no script");
    notify_service_free(&svc);
}

static void test_service_parse_accepts_oscar_fields(void)
{
    struct notify_service svc;
    struct conf_error err;
    const char *doc = "name: fdl\n"
                      "cluster_id: oscar-cluster\n"
                      "alpine: false\n"
                      "vo: vo.example.eu\n"
                      "token: abc\n"
                      "total_memory: 4Gi\n"
                      "total_cpu: '2'\n"
                      "isolation_level: SERVICE\n"
                      "allowed_users: [u1, u2]\n"
                      "labels: {a: b}\n"
                      "annotations: {c: d}\n"
                      "synchronous: {min_scale: 0, max_scale: 5}\n"
                      "expose: {min_scale: 1, api_port: 8080, set_auth: true}\n"
                      "mount: {storage_provider: minio.default, path: data/x}\n"
                      "replicas:\n"
                      "  - type: oscar\n"
                      "    cluster_id: other\n"
                      "    service_name: fdl\n"
                      "    headers: {X-A: b}\n"
                      "federation: {group_id: g, members: [{type: endpoint, url: 'http://x'}]}\n"
                      "rev: 0123456789abcdef\n"
                      "input: [{path: abc/in}]\n";

    is_int(parse(doc, &svc, &err), 0, "OSCAR fields are accepted");
    if (err.msg[0] != '\0')
        printf("# %d: %s\n", err.line, err.msg);
    is_str(svc.name, "fdl", "name kept");
    notify_service_free(&svc);
    ok(svc.ignored.value == NULL && svc.ignored.maps == NULL && svc.ignored.map == NULL,
       "ignored fields freed");
}

static void test_service_parse_errors_have_lines(void)
{
    expect_error("name: a\ninput: [{path: abc}]\nbogus: 1\n", 3, "unknown key 'bogus'",
                 "unknown field");
    expect_error("name: a\ninput:\n  - path: abc\n    sufix: [x]\n", 4, "unknown key 'sufix'",
                 "unknown field in an input");
    expect_error("name: a\ninput: [{path: abc}]\nexpose:\n  nope: 1\n", 4, "unknown key 'nope'",
                 "unknown field in an ignored section");
    expect_error("name: a\ninput: [{path: abc}]\nmax_attempts: 0\n", 3, "out of range",
                 "max_attempts too small");
    expect_error("name: a\ninput: [{path: abc}]\ntimeout: 8d\n", 3, "out of range",
                 "timeout too long");
    expect_error("name: a\ninput: [{path: abc}]\ntimeout: 1500ms\n", 3, "whole number",
                 "timeout not whole seconds");
    expect_error("input: [{path: abc}]\n", 1, "missing required key 'name'", "no name");
    expect_error("name: a\ninput:\n  - prefix: [x]\n", 3, "missing required key 'path'",
                 "input without path");
    expect_error("name: a\ninput: [{path: abc}]\nenvironment:\n  variables:\n    A: [1]\n", 5,
                 "must be a single value", "variable not scalar");
    expect_error("name: a\ninput: [{path: abc}]\nenvironment:\n  secrets:\n    A: 1\n    A: 2\n", 6,
                 "duplicate key 'A'", "duplicate secret");
    expect_error("{\"name\": \"a\",\n \"input\": [{\"path\": \"abc\"}],\n \"cpu\": [1]}", 3,
                 "must be a single value", "JSON wrong type");
    expect_error("name: [\n", 2, "YAML syntax error", "syntax error");
}

static void test_service_checks_whole_service(void)
{
    expect_error("name: Bad_Name\ninput: [{path: abc}]\n", 1, "service name", "name syntax");
    expect_error("input: [{path: abc}]\nname: -lead\n", 2, "service name", "leading '-'");
    expect_error("name: a\n", 1, "at least one input", "no input");
    expect_error("name: a\ninput:\n  - path: abc\n  - path: /dir\n", 4, "has no bucket",
                 "input path without bucket");
    expect_error("name: a\ninput:\n  - path: Abc/dir\n", 3, "not a valid bucket name",
                 "input bucket invalid");
    expect_error("name: a\ninput: [{path: abc}]\noutput:\n  - path: ab\n", 4,
                 "not a valid bucket name", "output bucket too short");
    expect_error("name: a\ninput: [{path: 192.168.1.1}]\n", 2, "not a valid bucket name",
                 "bucket like an IP");
    {
        struct notify_service svc;
        struct conf_error err;
        char name[70];

        memset(name, 'a', 63);
        name[63] = '\0';
        char *doc = malloc(200);
        snprintf(doc, 200, "name: %s\ninput: [{path: abc}]\n", name);
        is_int(parse(doc, &svc, &err), 0, "63-character name");
        notify_service_free(&svc);
        snprintf(doc, 200, "name: %sa\ninput: [{path: abc}]\n", name);
        is_int(parse(doc, &svc, &err), -1, "64-character name");
        notify_service_free(&svc);
        free(doc);
    }
}

static char *make_dir(void)
{
    char tmpl[] = "/tmp/fg-notify-XXXXXX";
    char *dir = mkdtemp(tmpl);

    return dir != NULL ? strdup(dir) : NULL;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f != NULL) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static void service_for_script(struct notify_service *svc, const char *script)
{
    memset(svc, 0, sizeof(*svc));
    conf_defaults(notify_service_keys, svc);
    svc->name = strdup("s1");
    svc->script = script != NULL ? strdup(script) : NULL;
    svc->n_input = 1;
    svc->input = calloc(1, sizeof(*svc->input));
    svc->input[0].path = strdup("bucket/in");
}

static void test_service_resolve_reads_script_file(void)
{
    char *dir = make_dir();
    char path[256], msg[160];
    struct notify_service svc;

    ok(dir != NULL, "temp dir");
    snprintf(path, sizeof(path), "%s/script.sh", dir);
    write_file(path, "#!/bin/sh\necho file\n", 20);

    service_for_script(&svc, "script.sh");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), 0, "relative file resolves");
    is_str(svc.script_text, "#!/bin/sh\necho file\n", "file content");
    is_str(svc.script, "script.sh", "script keeps the path");
    notify_service_free(&svc);

    service_for_script(&svc, path);
    is_int(notify_service_resolve(&svc, "/nonexistent", msg, sizeof(msg)), 0,
           "absolute path ignores base_dir");
    notify_service_free(&svc);

    service_for_script(&svc, "echo inline\necho two\n");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), 0, "inline script");
    is_str(svc.script_text, "echo inline\necho two\n", "inline text");
    notify_service_free(&svc);

    service_for_script(&svc, "missing.sh");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), -1, "missing file fails");
    ok(strstr(msg, "missing.sh") != NULL && strstr(msg, "No such file") != NULL,
       "message names the path and the reason");
    notify_service_free(&svc);

    {
        size_t big = (1u << 20) + 1;
        char *data = malloc(big);
        memset(data, 'x', big);
        snprintf(path, sizeof(path), "%s/big.sh", dir);
        write_file(path, data, big);
        free(data);
    }
    service_for_script(&svc, "big.sh");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), -1, "over 1 MiB fails");
    ok(strstr(msg, "big.sh") != NULL && strstr(msg, "1 MiB") != NULL, "size message");
    notify_service_free(&svc);
    unlink(path);

    snprintf(path, sizeof(path), "%s/bin.sh", dir);
    write_file(path, "a\0b", 3);
    service_for_script(&svc, "bin.sh");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), -1, "NUL byte fails");
    notify_service_free(&svc);
    unlink(path);

    service_for_script(&svc, ".");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), -1, "a folder fails");
    notify_service_free(&svc);

    service_for_script(&svc, "script.sh");
    free(svc.name);
    svc.name = strdup("UPPER");
    is_int(notify_service_resolve(&svc, dir, msg, sizeof(msg)), -1, "resolve checks the name");
    notify_service_free(&svc);

    snprintf(path, sizeof(path), "%s/script.sh", dir);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void test_service_json_round_trip(void)
{
    struct notify_service a, b;
    struct conf_error err;
    char rev_a[17], rev_b[17];
    char *json, *json2, *masked;
    json_t *j;

    is_int(parse(full_yaml, &a, &err), 0, "parses");
    json = notify_service_to_json(&a, true);
    j = json_loads(json, 0, NULL);
    ok(j != NULL, "valid JSON");
    is_str(json_string_value(json_object_get(j, "name")), "plants", "name member");
    is_str(json_string_value(json_object_get(j, "script")), "#!/bin/sh\necho hi\n",
           "script member is the text");
    is_str(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "input"), 0), "path")),
        "plants/in", "input path member");
    is_str(json_string_value(json_object_get(
               json_object_get(json_object_get(j, "environment"), "secrets"), "TOKEN")),
           "s3cr3t", "secret shown with_secrets");
    is_int(json_integer_value(json_object_get(j, "timeout")), 600, "timeout member");
    is_int(json_integer_value(json_object_get(j, "max_attempts")), 5, "max_attempts member");
    is_str(json_string_value(json_object_get(j, "pool")), "edge", "pool member");
    notify_service_rev(&a, rev_a);
    is_str(json_string_value(json_object_get(j, "rev")), rev_a, "rev member");
    is_int(strlen(rev_a), 16, "rev has 16 digits");
    json_decref(j);

    is_int(parse(json, &b, &err), 0, "its JSON parses back");
    notify_service_rev(&b, rev_b);
    is_str(rev_b, rev_a, "same rev after a round trip");
    json2 = notify_service_to_json(&b, true);
    is_str(json2, json, "same JSON after a round trip");

    masked = notify_service_to_json(&a, false);
    ok(strstr(masked, "s3cr3t") == NULL && strstr(masked, "********") != NULL,
       "secrets masked without with_secrets");
    free(masked);
    free(json);
    free(json2);
    notify_service_free(&a);
    notify_service_free(&b);
}

static void test_service_rev_changes_with_any_field(void)
{
    struct notify_service svc;
    struct conf_error err;
    char base[17], rev[17];

    parse(full_yaml, &svc, &err);
    notify_service_rev(&svc, base);
    notify_service_rev(&svc, rev);
    is_str(rev, base, "rev is stable");

    svc.max_attempts = 6;
    notify_service_rev(&svc, rev);
    ok(strcmp(rev, base) != 0, "max_attempts changes the rev");
    svc.max_attempts = 5;

    free(svc.environment.secrets[0].value);
    svc.environment.secrets[0].value = strdup("other");
    notify_service_rev(&svc, rev);
    ok(strcmp(rev, base) != 0, "a secret changes the rev");

    free(svc.script_text);
    svc.script_text = strdup("echo changed\n");
    notify_service_rev(&svc, rev);
    ok(strcmp(rev, base) != 0, "the script changes the rev");

    free(svc.input[0].suffix[1]);
    svc.input[0].suffix[1] = strdup(".gif");
    notify_service_rev(&svc, rev);
    ok(strcmp(rev, base) != 0, "a suffix changes the rev");
    notify_service_free(&svc);
}

int main(void)
{
    subtest(test_service_parse_yaml_sets_every_field);
    subtest(test_service_parse_defaults);
    subtest(test_service_parse_accepts_oscar_fields);
    subtest(test_service_parse_errors_have_lines);
    subtest(test_service_checks_whole_service);
    subtest(test_service_resolve_reads_script_file);
    subtest(test_service_json_round_trip);
    subtest(test_service_rev_changes_with_any_field);
    return done_testing();
}

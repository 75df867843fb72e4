/* Unit tests for notify/hook.c: input matching (path, prefix, suffix variants) and the outbox
 * records, collected through notify_hook_records() instead of a store. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"
#include "tests/unit/tap.h"

static void test_input_matches_path_variants(void)
{
    static const struct {
        const char *path, *bucket, *key;
        bool want;
    } cases[] = {
        {"photos", "photos", "a.jpg", true},
        {"photos", "photos", "dir/a.jpg", true},
        {"photos", "other", "a.jpg", false},
        {"photos/", "photos", "a.jpg", true},
        {"photos/in", "photos", "in/a.jpg", true},
        {"photos/in", "photos", "in/sub/a.jpg", true},
        {"photos/in", "photos", "inbox/a.jpg", false},
        {"photos/in", "photos", "in", false},
        {"photos/in", "photos", "in/", false},
        {"photos/in/", "photos", "in/a.jpg", true},
        {"photos/in//", "photos", "in/a.jpg", true},
        {"photos/a/b", "photos", "a/b/c", true},
        {"photos/a/b", "photos", "a/c", false},
        {"photos/in", "photosx", "in/a.jpg", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[64], name[128];
        struct notify_io in = {.path = path};

        snprintf(path, sizeof(path), "%s", cases[i].path);
        snprintf(name, sizeof(name), "%s ~ %s/%s", cases[i].path, cases[i].bucket, cases[i].key);
        is_int(notify_input_matches(&in, cases[i].bucket, cases[i].key), cases[i].want, name);
    }
    {
        char bad[] = "/photos";
        struct notify_io in = {.path = NULL};
        ok(!notify_input_matches(&in, "photos", "a"), "no path never matches");
        in.path = bad;
        ok(!notify_input_matches(&in, "photos", "a"), "invalid path never matches");
    }
}

static void test_input_matches_prefix_suffix(void)
{
    char p1[] = "raw-", p2[] = "new/", s1[] = ".jpg", s2[] = ".PNG", path[] = "photos/in";
    char *prefixes[] = {p1, p2};
    char *suffixes[] = {s1, s2};
    struct notify_io in = {.path = path, .prefix = prefixes, .n_prefix = 2};

    ok(notify_input_matches(&in, "photos", "in/raw-1.txt"), "prefix after the path");
    ok(notify_input_matches(&in, "photos", "in/new/x"), "second prefix");
    ok(!notify_input_matches(&in, "photos", "raw-1.txt"), "prefix without the path");
    ok(!notify_input_matches(&in, "photos", "in/old/raw-1"), "prefix anchored at the path");
    in.suffix = suffixes;
    in.n_suffix = 2;
    ok(notify_input_matches(&in, "photos", "in/raw-1.jpg"), "prefix and suffix");
    ok(!notify_input_matches(&in, "photos", "in/raw-1.txt"), "suffix must match too");
    ok(notify_input_matches(&in, "photos", "in/new/a.PNG"), "second suffix");
    ok(!notify_input_matches(&in, "photos", "in/new/a.png"), "suffix is case-sensitive");
    in.n_prefix = 0;
    ok(notify_input_matches(&in, "photos", "in/x/y.jpg"), "suffix alone");
    ok(!notify_input_matches(&in, "photos", "in/x/y.jpeg"), "suffix alone, no match");
}

struct collected {
    json_t *recs[8];
    size_t n;
    int fail_at; /* add number (1-based) that fails; 0 none */
};

static int collect(void *arg, const void *data, size_t len)
{
    struct collected *c = arg;

    if (c->fail_at != 0 && (int)c->n + 1 == c->fail_at)
        return -1;
    if (c->n < 8)
        c->recs[c->n] = json_loadb(data, len, 0, NULL);
    c->n++;
    return 0;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n && i < 8; i++)
        json_decref(c->recs[i]);
    memset(c, 0, sizeof(*c));
}

static void add(struct notify_registry *reg, const char *yaml)
{
    struct notify_service *svc = calloc(1, sizeof(*svc));
    struct conf_error err;

    if (notify_service_parse(yaml, strlen(yaml), svc, &err) != 0)
        printf("# parse failed: %d: %s\n", err.line, err.msg);
    is_int(notify_registry_put(reg, svc, false), NOTIFY_CREATED, "service added");
    free(svc);
}

static const char *member(json_t *o, const char *name)
{
    json_t *j = json_object_get(o, name);

    return json_is_string(j) ? json_string_value(j) : NULL;
}

static void test_hook_builds_records(void)
{
    char msg[160];
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    struct s3_event_origin who = {.principal = "AK", .source_ip = "1.2.3.4", .request_id = "R1"};
    struct s3_event ev = {.kind = S3_EV_PUT,
                          .bucket = "photos",
                          .key = "in/cat 1.jpg",
                          .size = 3,
                          .etag = "abc",
                          .time_ms = 1700000000000LL,
                          .seq = 42,
                          .origin = &who};
    struct collected c = {0};
    char pool[32], rev[17];
    unsigned attempts;
    json_t *event, *o;
    const char *keys[] = {"kind", "id",    "service",      "pool", "bucket",
                          "key",  "event", "max_attempts", "rev",  "created_ms"};

    add(reg, "name: thumbs\npool: edge\nmax_attempts: 4\n"
             "input: [{path: photos/in, suffix: [.jpg]}]\n");
    add(reg, "name: other\ninput: [{path: docs}]\n");
    add(reg, "name: twice\ninput: [{path: photos}, {path: photos/in}]\n");

    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 2, "two services match");
    is_int(c.n, 2, "two records");
    o = c.recs[0];
    ok(o != NULL && json_object_size(o) == 10, "ten members");
    for (size_t i = 0; i < 10; i++)
        ok(json_is_string(json_object_get(o, keys[i])), keys[i]);
    is_str(member(o, "kind"), "job", "kind");
    is_int(strlen(member(o, "id")), 36, "id is a uuid");
    is_str(member(o, "service"), "thumbs", "service");
    is_str(member(o, "pool"), "edge", "pool");
    is_str(member(o, "bucket"), "photos", "bucket");
    is_str(member(o, "key"), "in/cat 1.jpg", "key raw");
    is_str(member(o, "max_attempts"), "4", "max_attempts as text");
    notify_registry_lookup(reg, "thumbs", pool, sizeof(pool), &attempts, rev);
    is_str(member(o, "rev"), rev, "rev of the service");
    is_str(member(o, "created_ms"), "1700000000000", "created_ms");
    event = json_loads(member(o, "event"), 0, NULL);
    ok(event != NULL, "event is JSON text");
    is_str(json_string_value(json_object_get(event, "EventName")), "s3:ObjectCreated:Put",
           "event inside");
    is_str(json_string_value(json_object_get(
               json_object_get(
                   json_object_get(json_array_get(json_object_get(event, "Records"), 0), "s3"),
                   "object"),
               "key")),
           "in/cat+1.jpg", "event key encoded");
    is_str(json_string_value(json_object_get(
               json_object_get(json_array_get(json_object_get(event, "Records"), 0), "s3"),
               "configurationId")),
           "thumbs", "configurationId is the service");
    json_decref(event);
    is_str(member(c.recs[1], "service"), "twice", "one record per service, not per input");
    is_str(member(c.recs[1], "pool"), "default", "default pool");
    ok(strcmp(member(c.recs[0], "id"), member(c.recs[1], "id")) != 0, "ids differ");
    collected_free(&c);

    ev.key = "in/cat.png";
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 1, "suffix filters");
    collected_free(&c);

    ev.kind = S3_EV_DELETE;
    ev.key = "in/cat.jpg";
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 0, "deletes run nothing");
    collected_free(&c);

    ev.kind = S3_EV_COMPLETE_MPU;
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 2, "multipart completion runs");
    collected_free(&c);

    c.fail_at = 1;
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), -1, "a failed add stops");
    is_int(c.n, 0, "nothing after the failure");
    collected_free(&c);

    ev.bucket = "nobody";
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 0, "other bucket");
    collected_free(&c);
    notify_registry_free(reg);
}

struct race {
    struct notify_registry *reg;
    int records;
};

static int count_only(void *arg, const void *data, size_t len)
{
    (void)data;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static void *hook_loop(void *arg)
{
    struct race *r = arg;
    struct s3_event ev = {.kind = S3_EV_PUT, .bucket = "race", .key = "in/x.bin", .etag = "e"};

    for (int i = 0; i < 2000; i++)
        notify_hook_records(r->reg, "r", &ev, count_only, &r->records);
    return NULL;
}

/* Pool threads match while the loop changes services (run it under -fsanitize=thread). */
static void test_hook_concurrent_with_changes(void)
{
    char msg[160];
    struct race races[4];
    pthread_t threads[4];
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));

    add(reg, "name: fixed\ninput: [{path: race/in}]\n");
    for (int i = 0; i < 4; i++) {
        races[i] = (struct race){.reg = reg};
        pthread_create(&threads[i], NULL, hook_loop, &races[i]);
    }
    for (int i = 0; i < 200; i++) {
        struct notify_service *svc = calloc(1, sizeof(*svc));
        struct conf_error err;
        const char *doc = "name: moving\ninput: [{path: race}]\n";

        notify_service_parse(doc, strlen(doc), svc, &err);
        notify_registry_put(reg, svc, i % 2 == 1);
        free(svc);
        if (i % 10 == 9)
            notify_registry_delete(reg, "moving");
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        ok(races[i].records >= 2000 && races[i].records <= 4000, "every event matched");
    }
    notify_registry_free(reg);
}

int main(void)
{
    subtest(test_input_matches_path_variants);
    subtest(test_input_matches_prefix_suffix);
    subtest(test_hook_builds_records);
    subtest(test_hook_concurrent_with_changes);
    return done_testing();
}

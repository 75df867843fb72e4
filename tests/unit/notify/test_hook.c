/* Unit tests for notify/hook.c: input matching (path, prefix, suffix variants) and the outbox
 * records, collected through notify_hook_records() instead of a store. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/notif.h"
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

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An outbox record (queue/queue.h: "FR1" kind, then length-prefixed name/value pairs) as a
 * JSON object {"kind": "j", <field>: <value>, ...}; NULL when malformed or a name repeats. */
static json_t *record_parse(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    char kind[2] = {0};
    json_t *o;

    if (len < 4 || memcmp(p, "FR1", 3) != 0)
        return NULL;
    kind[0] = (char)p[3];
    o = json_pack("{ss}", "kind", kind);
    for (p += 4; p < end;) {
        uint32_t nlen, vlen;
        char name[64];

        if (end - p < 4 || (nlen = le32(p)) >= sizeof(name) || (size_t)(end - p - 4) < nlen)
            goto bad;
        memcpy(name, p + 4, nlen);
        name[nlen] = '\0';
        p += 4 + nlen;
        if (end - p < 4 || (size_t)(end - p - 4) < (vlen = le32(p)))
            goto bad;
        if (json_object_get(o, name) != NULL)
            goto bad;
        json_object_set_new(o, name, json_stringn((const char *)p + 4, vlen));
        p += 4 + vlen;
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}

/* Every record as the relay reads it: the hook writes compact records, which the outbox's
 * read expands (notify_record_expand, with the hook's region). */
static int collect(void *arg, const void *data, size_t len)
{
    static struct notify_hook hook = {.region = "eu-1"};
    struct collected *c = arg;
    void *full = NULL;
    size_t full_len = 0;

    if (c->fail_at != 0 && (int)c->n + 1 == c->fail_at)
        return -1;
    ok(len >= 4 && (((const char *)data)[3] == 'J' || ((const char *)data)[3] == 'N'),
       "the hook writes a compact record");
    if (notify_record_expand(&hook, data, len, &full, &full_len) != 0)
        full = NULL;
    if (c->n < 8)
        c->recs[c->n] = full != NULL ? record_parse(full, full_len) : NULL;
    free(full);
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
    ok(o != NULL && json_object_size(o) == 10, "nine fields and the kind");
    for (size_t i = 0; i < 10; i++)
        ok(json_is_string(json_object_get(o, keys[i])), keys[i]);
    is_str(member(o, "kind"), "j", "kind: a job");
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

/* ---- bucket notifications ---- */

static void target_init(struct notify_target *t, const char *id, const char *type,
                        const char *endpoint)
{
    memset(t, 0, sizeof(*t));
    t->id = strdup(id);
    t->type = strdup(type);
    t->endpoint = strdup(endpoint);
    t->tls_verify = true;
    t->timeout_ms = 1000;
    t->concurrency = 4;
}

static struct notify_registry *registry_with_targets(void)
{
    char msg[160];
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    struct notify_target *ts = calloc(2, sizeof(*ts));

    target_init(&ts[0], "web", "webhook", "http://127.0.0.1:9/hook");
    target_init(&ts[1], "red", "redis", "redis://127.0.0.1:9");
    is_int(notify_registry_set_targets(reg, ts, 2, msg, sizeof(msg)), 0, "targets set");
    return reg;
}

struct rule_spec {
    const char *id, *arn, *events, *prefix, *suffix; /* events: comma-separated */
};

/* The stored form of a configuration (what s3api hands the hook in ev->notif). */
static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static unsigned char *config_bytes(const struct rule_spec *specs, size_t n, size_t *len)
{
    struct s3_notif_config c = {.rules = calloc(n, sizeof(struct s3_notif_rule)), .n_rules = n};
    unsigned char *out;

    for (size_t i = 0; i < n; i++) {
        struct s3_notif_rule *r = &c.rules[i];
        const char *e = specs[i].events;

        r->kind = S3_NOTIF_QUEUE;
        r->id = strdup(specs[i].id);
        r->arn = strdup(specs[i].arn);
        r->events = calloc(8, sizeof(char *));
        while (*e != '\0') {
            size_t k = strcspn(e, ",");
            r->events[r->n_events++] = strndup(e, k);
            e += k + (e[k] == ',');
        }
        r->prefix = dup_or_null(specs[i].prefix);
        r->suffix = dup_or_null(specs[i].suffix);
    }
    out = s3_notif_encode(&c, len);
    s3_notif_config_free(&c);
    return out;
}

static json_t *body_of(json_t *rec)
{
    const char *b = member(rec, "body");

    return b != NULL ? json_loads(b, 0, NULL) : NULL;
}

static const char *config_id_of(json_t *body)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(json_object_get(body, "Records"), 0), "s3"),
                        "configurationId"));
}

static const struct rule_spec bucket_rules[] = {
    {"all-created", "arn:floodgate:sqs::web:webhook", "s3:ObjectCreated:*", "img/", ".jpg"},
    {"puts-minio", "arn:minio:sqs::red:redis", "s3:ObjectCreated:Put", NULL, NULL},
    {"removed", "arn:floodgate:sqs::web:webhook", "s3:ObjectRemoved:*", NULL, NULL},
    {"gone", "arn:floodgate:sqs::gone:webhook", "s3:ObjectCreated:*", NULL, NULL},
    {"wrongtype", "arn:floodgate:sqs::red:webhook", "s3:ObjectCreated:*", NULL, NULL},
};

static void test_hook_notification_records_per_matching_rule(void)
{
    struct notify_registry *reg = registry_with_targets();
    struct s3_event_origin who = {.principal = "AK", .source_ip = "1.2.3.4", .request_id = "R9"};
    size_t len;
    unsigned char *cfg = config_bytes(bucket_rules, 5, &len);
    struct s3_event ev = {.kind = S3_EV_PUT,
                          .bucket = "pics",
                          .key = "img/cat.jpg",
                          .size = 7,
                          .etag = "e1",
                          .time_ms = 1700000000000LL,
                          .seq = 9,
                          .origin = &who,
                          .notif = cfg,
                          .notif_len = len};
    struct collected c = {0};
    json_t *body;

    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 2, "two rules match a Put");
    ok(c.recs[0] != NULL && c.recs[1] != NULL, "records parse");
    is_str(member(c.recs[0], "kind"), "n", "kind: a notification");
    is_int(json_object_size(c.recs[0]), 5, "id, target, body, created_ms and the kind");
    is_int(strlen(member(c.recs[0], "id")), 36, "id is a uuid");
    is_str(member(c.recs[0], "target"), "web", "wildcard rule with prefix and suffix");
    is_str(member(c.recs[0], "created_ms"), "1700000000000", "created_ms");
    is_str(member(c.recs[1], "target"), "red", "minio ARN names the same target");
    ok(strcmp(member(c.recs[0], "id"), member(c.recs[1], "id")) != 0, "one id per delivery");
    body = body_of(c.recs[0]);
    ok(body != NULL, "body is JSON");
    is_str(json_string_value(json_object_get(body, "EventName")), "s3:ObjectCreated:Put",
           "EventName");
    is_str(json_string_value(json_object_get(body, "Key")), "pics/img/cat.jpg", "Key");
    is_str(config_id_of(body), "all-created", "configurationId is the rule's Id");
    json_decref(body);
    body = body_of(c.recs[1]);
    is_str(config_id_of(body), "puts-minio", "second rule's Id");
    json_decref(body);
    is_int(notify_registry_n_skipped(reg), 2, "unknown target and wrong type skipped, counted");
    collected_free(&c);

    ev.kind = S3_EV_POST;
    ev.key = "img/cat.png";
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 0, "suffix and event filter");
    collected_free(&c);

    ev.key = "doc/cat.jpg";
    ev.kind = S3_EV_PUT;
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 1, "prefix filters the raw key");
    is_str(member(c.recs[0], "target"), "red", "only the unfiltered rule");
    collected_free(&c);

    ev.key = "img/a b\".jpg";
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 2, "raw key, not encoded");
    collected_free(&c);

    ev.kind = S3_EV_DELETE;
    ev.key = "img/cat.jpg";
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 1, "removal rule");
    body = body_of(c.recs[0]);
    is_str(json_string_value(json_object_get(body, "EventName")), "s3:ObjectRemoved:Delete",
           "removal EventName");
    is_str(config_id_of(body), "removed", "removal rule's Id");
    json_decref(body);
    collected_free(&c);

    ev.kind = S3_EV_PUT;
    c.fail_at = 2;
    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), -1, "a failed add stops");
    collected_free(&c);
    free(cfg);
    notify_registry_free(reg);
}

static void test_hook_test_event_once_per_target(void)
{
    struct notify_registry *reg = registry_with_targets();
    struct s3_event_origin who = {.request_id = "REQ7"};
    size_t len;
    unsigned char *cfg = config_bytes(bucket_rules, 5, &len);
    struct s3_event ev = {.kind = S3_EV_TEST,
                          .bucket = "pics",
                          .etag = "",
                          .time_ms = 1700000000123LL,
                          .origin = &who,
                          .notif = cfg,
                          .notif_len = len};
    struct collected c = {0};
    json_t *body;

    is_int(notify_hook_records(reg, "eu-1", &ev, collect, &c), 2, "one per distinct target");
    is_str(member(c.recs[0], "target"), "web", "first target");
    is_str(member(c.recs[1], "target"), "red", "second target");
    body = body_of(c.recs[0]);
    is_int(json_object_size(body), 6, "six members");
    is_str(json_string_value(json_object_get(body, "Service")), "Amazon S3", "Service");
    is_str(json_string_value(json_object_get(body, "Event")), "s3:TestEvent", "Event");
    is_str(json_string_value(json_object_get(body, "Time")), "2023-11-14T22:13:20.123Z", "Time");
    is_str(json_string_value(json_object_get(body, "Bucket")), "pics", "Bucket");
    is_str(json_string_value(json_object_get(body, "RequestId")), "REQ7", "RequestId");
    is_str(json_string_value(json_object_get(body, "HostId")), "REQ7", "HostId");
    ok(json_object_get(body, "Records") == NULL, "no Records");
    json_decref(body);
    collected_free(&c);
    free(cfg);
    notify_registry_free(reg);
}

static void test_hook_services_and_rules_together(void)
{
    struct notify_registry *reg = registry_with_targets();
    static const struct rule_spec one[] = {
        {"r", "arn:floodgate:sqs::web:webhook", "s3:ObjectCreated:*", NULL, NULL}};
    size_t len;
    unsigned char *cfg = config_bytes(one, 1, &len);
    unsigned char bad[] = {1, 9, 9};
    struct s3_event ev = {.kind = S3_EV_COPY,
                          .bucket = "pics",
                          .key = "k",
                          .etag = "e",
                          .notif = cfg,
                          .notif_len = len};
    struct collected c = {0};

    add(reg, "name: svc\ninput: [{path: pics}]\n");
    is_int(notify_hook_records(reg, "r", &ev, collect, &c), 2, "a job and a notification");
    is_str(member(c.recs[0], "kind"), "j", "the job");
    is_str(member(c.recs[1], "kind"), "n", "the notification");
    collected_free(&c);
    ev.notif = bad;
    ev.notif_len = sizeof(bad);
    is_int(notify_hook_records(reg, "r", &ev, collect, &c), 1, "bad bytes: only the job");
    collected_free(&c);
    free(cfg);
    notify_registry_free(reg);
}

/* More configurations than the per-thread cache holds, in turns: each event still gets the
 * records of its own configuration. */
static void test_hook_config_cache_keys_by_bytes(void)
{
    struct notify_registry *reg = registry_with_targets();
    unsigned char *cfgs[12];
    size_t lens[12];
    bool all_right = true;

    for (int i = 0; i < 12; i++) {
        char id[16];
        struct rule_spec r = {
            id, i % 2 == 0 ? "arn:floodgate:sqs::web:webhook" : "arn:floodgate:sqs::red:redis",
            "s3:ObjectCreated:*", NULL, NULL};
        snprintf(id, sizeof(id), "rule-%d", i);
        cfgs[i] = config_bytes(&r, 1, &lens[i]);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 12; i++) {
            struct s3_event ev = {.kind = S3_EV_PUT,
                                  .bucket = "b1b",
                                  .key = "k",
                                  .etag = "e",
                                  .notif = cfgs[(i * 5) % 12],
                                  .notif_len = lens[(i * 5) % 12]};
            struct collected c = {0};
            char want[16];
            json_t *body;

            notify_hook_records(reg, "r", &ev, collect, &c);
            snprintf(want, sizeof(want), "rule-%d", (i * 5) % 12);
            body = c.n == 1 ? body_of(c.recs[0]) : NULL;
            if (body == NULL || strcmp(config_id_of(body), want) != 0 ||
                strcmp(member(c.recs[0], "target"), (i * 5) % 2 == 0 ? "web" : "red") != 0)
                all_right = false;
            json_decref(body);
            collected_free(&c);
        }
    }
    ok(all_right, "every event got its configuration's record");
    for (int i = 0; i < 12; i++)
        free(cfgs[i]);
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
    subtest(test_hook_notification_records_per_matching_rule);
    subtest(test_hook_test_event_once_per_target);
    subtest(test_hook_services_and_rules_together);
    subtest(test_hook_config_cache_keys_by_bytes);
    subtest(test_hook_concurrent_with_changes);
    return done_testing();
}

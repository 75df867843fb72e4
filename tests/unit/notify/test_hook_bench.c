/* Micro-benchmark of the event hook (notify/hook.c): ns per notify_hook_records() call for an
 * upload into a bucket bound to one service, and into a bucket with a notification
 * configuration of two rules. Prints the figures and asserts nothing about time, only that
 * every call wrote the records it should. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/notif.h"
#include "s3api/s3api.h"
#include "tests/unit/tap.h"

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct tally {
    size_t records;
    size_t bytes;
};

static int count_record(void *arg, const void *data, size_t len)
{
    struct tally *t = arg;
    (void)data;
    t->records++;
    t->bytes += len;
    return 0;
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

/* ns per call over n calls; *records gets the records written in all of them. */
static double bench(struct notify_registry *reg, const struct s3_event *ev, int n, size_t *records)
{
    struct tally t = {0};
    long long t0;

    for (int i = 0; i < n / 10; i++) /* warm up */
        notify_hook_records(reg, "us-east-1", ev, count_record, &t);
    t = (struct tally){0};
    t0 = now_ns();
    for (int i = 0; i < n; i++)
        notify_hook_records(reg, "us-east-1", ev, count_record, &t);
    double ns = (double)(now_ns() - t0) / n;
    *records = t.records;
    return ns;
}

/* A typical upload: a signed PUT of a photo. */
static struct s3_event upload_event(void)
{
    static const struct s3_event_origin who = {.principal = "AKIAIOSFODNN7EXAMPLE",
                                               .source_ip = "10.0.0.7",
                                               .request_id = "17A2B3C4D5E6F"};
    return (struct s3_event){.kind = S3_EV_PUT,
                             .bucket = "photos",
                             .key = "in/2024/holiday pictures/IMG_0001.jpg",
                             .size = 1234567,
                             .etag = "d41d8cd98f00b204e9800998ecf8427e",
                             .time_ms = 1700000000123LL,
                             .seq = 42,
                             .origin = &who};
}

static void test_hook_bench_one_service(void)
{
    char msg[160];
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    struct s3_event ev = upload_event();
    double ns;
    size_t records;

    add(reg, "name: thumbs\ninput: [{path: photos/in, suffix: [.jpg]}]\n");
    add(reg, "name: other\ninput: [{path: docs}]\n");
    ns = bench(reg, &ev, 200000, &records);
    printf("# hook, one matching service: %.0f ns per call\n", ns);
    is_int((long long)records, 200000, "one job record per matching upload");
    ev.bucket = "nobody";
    ns = bench(reg, &ev, 200000, &records);
    printf("# hook, no matching service: %.0f ns per call\n", ns);
    is_int((long long)records, 0, "none for an upload no service matches");
    notify_registry_free(reg);
}

/* A bucket with a notification configuration of two rules, one matching. */
static void test_hook_bench_notification_rules(void)
{
    char msg[160];
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    struct notify_target *t = calloc(1, sizeof(*t));
    char *ev1[] = {strdup("s3:ObjectCreated:*")}, *ev2[] = {strdup("s3:ObjectRemoved:*")};
    struct s3_notif_rule rules[2] = {
        {.id = strdup("thumbs"),
         .arn = strdup("arn:floodgate:sqs::hook:webhook"),
         .events = ev1,
         .n_events = 1,
         .suffix = strdup(".jpg")},
        {.id = strdup("gone"),
         .arn = strdup("arn:floodgate:sqs::hook:webhook"),
         .events = ev2,
         .n_events = 1},
    };
    struct s3_notif_config cfg = {.rules = rules, .n_rules = 2};
    size_t len;
    unsigned char *bytes = s3_notif_encode(&cfg, &len);
    struct s3_event ev = upload_event();

    ev.notif = bytes;
    ev.notif_len = len;
    t->id = strdup("hook");
    t->type = strdup("webhook");
    t->endpoint = strdup("http://127.0.0.1:9/");
    is_int(notify_registry_set_targets(reg, t, 1, msg, sizeof(msg)), 0, "target set");
    size_t records;
    double ns = bench(reg, &ev, 200000, &records);
    printf("# hook, one matching notification rule: %.0f ns per call\n", ns);
    is_int((long long)records, 200000, "one notification record per matching upload");
    for (size_t i = 0; i < 2; i++) {
        free(rules[i].id);
        free(rules[i].arn);
        free(rules[i].events[0]);
        free(rules[i].suffix);
    }
    free(bytes);
    notify_registry_free(reg);
}

int main(void)
{
    subtest(test_hook_bench_one_service);
    subtest(test_hook_bench_notification_rules);
    return done_testing();
}

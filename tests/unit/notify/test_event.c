/* Unit tests for notify/event.c: the AWS event message, field by field, the key encoding, and
 * UUIDs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/uuid.h"
#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"
#include "tests/unit/tap.h"

static const char *get(json_t *root, const char *path)
{
    char buf[256];
    json_t *j = root;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *seg = buf, *dot; seg != NULL && j != NULL; seg = dot) {
        dot = strchr(seg, '.');
        if (dot != NULL)
            *dot++ = '\0';
        j = json_object_get(j, seg);
    }
    return json_string_value(j);
}

static json_t *record_of(json_t *msg)
{
    return json_array_get(json_object_get(msg, "Records"), 0);
}

static void test_event_put_has_every_field(void)
{
    struct s3_event_origin who = {
        .principal = "AKIDEXAMPLE", .source_ip = "10.0.0.7", .request_id = "REQ123"};
    struct s3_event ev = {.kind = S3_EV_PUT,
                          .bucket = "photos",
                          .key = "dir/a b.jpg",
                          .size = 12345,
                          .etag = "d41d8cd98f00b204e9800998ecf8427e",
                          .time_ms = 1700000000123LL,
                          .seq = 0x1a2b,
                          .origin = &who};
    char *text = notify_event_json(&ev, "eu-west-1", "svc-one");
    json_t *msg = json_loads(text, 0, NULL);
    json_t *rec = record_of(msg);
    json_t *obj;

    ok(msg != NULL, "valid JSON");
    is_int(json_array_size(json_object_get(msg, "Records")), 1, "one record");
    is_str(get(msg, "EventName"), "s3:ObjectCreated:Put", "MinIO EventName");
    is_str(get(msg, "Key"), "photos/dir/a b.jpg", "MinIO Key, not encoded");
    is_str(get(rec, "eventVersion"), "2.1", "eventVersion");
    is_str(get(rec, "eventSource"), "aws:s3", "eventSource");
    is_str(get(rec, "awsRegion"), "eu-west-1", "awsRegion");
    is_str(get(rec, "eventTime"), "2023-11-14T22:13:20.123Z", "eventTime with ms");
    is_str(get(rec, "eventName"), "ObjectCreated:Put", "eventName without s3:");
    is_str(get(rec, "userIdentity.principalId"), "AKIDEXAMPLE", "principalId");
    is_str(get(rec, "requestParameters.sourceIPAddress"), "10.0.0.7", "sourceIPAddress");
    is_str(get(rec, "responseElements.x-amz-request-id"), "REQ123", "x-amz-request-id");
    is_str(get(rec, "responseElements.x-amz-id-2"), "REQ123", "x-amz-id-2");
    is_str(get(rec, "s3.s3SchemaVersion"), "1.0", "s3SchemaVersion");
    is_str(get(rec, "s3.configurationId"), "svc-one", "configurationId");
    is_str(get(rec, "s3.bucket.name"), "photos", "bucket name");
    is_str(get(rec, "s3.bucket.ownerIdentity.principalId"), "AKIDEXAMPLE", "owner principal");
    is_str(get(rec, "s3.bucket.arn"), "arn:aws:s3:::photos", "bucket arn");
    is_str(get(rec, "s3.object.key"), "dir/a+b.jpg", "key form-encoded");
    obj = json_object_get(json_object_get(rec, "s3"), "object");
    ok(json_is_integer(json_object_get(obj, "size")), "size is a number");
    is_int(json_integer_value(json_object_get(obj, "size")), 12345, "size");
    is_str(get(rec, "s3.object.eTag"), "d41d8cd98f00b204e9800998ecf8427e", "eTag");
    is_str(get(rec, "s3.object.sequencer"), "0000000000001A2B", "sequencer: 16 hex digits");
    {
        /* the hand-written text is what jansson wrote before: same members, same order */
        char *again = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
        is_str(text, again, "byte for byte jansson's compact form");
        free(again);
    }
    json_decref(msg);
    free(text);
}

static void test_event_json_escapes_odd_text(void)
{
    static const char tail[] = "\"\\/\x7f \xe6\x97\xa5\xf0\x9f\x8e\x89";
    char key[64], principal[40];
    size_t o = 0;
    struct s3_event_origin who = {.source_ip = "::1", .request_id = "q\"\\"};
    struct s3_event ev = {.kind = S3_EV_PUT, .bucket = "b1b", .key = key, .etag = "\"e\""};
    char *text, *enc, want[96];
    json_t *msg;

    for (int c = 1; c < 0x20; c++) /* every control character */
        key[o++] = (char)c;
    memcpy(key + o, tail, sizeof(tail)); /* with its NUL */
    snprintf(principal, sizeof(principal), "AK\n\t\"x\"");
    snprintf(who.principal, sizeof(who.principal), "%s", principal);
    ev.origin = &who;
    text = notify_event_json(&ev, "r\x01", "id\"");
    msg = json_loads(text, 0, NULL);
    ok(msg != NULL, "parses with jansson");
    snprintf(want, sizeof(want), "b1b/%s", key);
    is_str(get(msg, "Key"), want, "Key: control characters, quotes, UTF-8 round-trip");
    enc = notify_key_encode(key);
    is_str(get(record_of(msg), "s3.object.key"), enc, "object key form-encoded");
    is_str(get(record_of(msg), "userIdentity.principalId"), principal, "principal escaped");
    is_str(get(record_of(msg), "awsRegion"), "r\x01", "region escaped");
    is_str(get(record_of(msg), "s3.configurationId"), "id\"", "configurationId escaped");
    is_str(get(record_of(msg), "s3.object.eTag"), "\"e\"", "eTag escaped");
    is_str(get(record_of(msg), "responseElements.x-amz-request-id"), "q\"\\", "request id");
    ok(strstr(text, "\xe6\x97\xa5\xf0\x9f\x8e\x89") != NULL, "UTF-8 passed through");
    ok(strstr(text, "\\u001f") != NULL && strstr(text, "\\n") != NULL, "\\u00XX and \\n");
    free(enc);
    json_decref(msg);
    free(text);

    key[0] = '\xff'; /* not UTF-8: the text falls back to its form-encoding */
    key[1] = '\0';
    text = notify_event_json(&ev, "r", "c");
    msg = json_loads(text, 0, NULL);
    ok(msg != NULL, "invalid UTF-8 still gives JSON");
    is_str(get(msg, "Key"), "b1b/%FF", "Key falls back to form-encoding");
    json_decref(msg);
    free(text);
}

static void test_event_test_message_is_flat(void)
{
    struct s3_event_origin who = {.request_id = "RQ"};
    struct s3_event ev = {.kind = S3_EV_TEST, .bucket = "b1b", .etag = "", .origin = &who};
    char *text = notify_event_json(&ev, "r", "c");

    is_str(
        text,
        "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Time\":"
        "\"1970-01-01T00:00:00.000Z\",\"Bucket\":\"b1b\",\"RequestId\":\"RQ\",\"HostId\":\"RQ\"}",
        "AWS's s3:TestEvent");
    free(text);
}

static void test_event_kinds_and_delete(void)
{
    static const struct {
        enum s3_event_kind kind;
        const char *name;
    } kinds[] = {
        {S3_EV_POST, "ObjectCreated:Post"},
        {S3_EV_COPY, "ObjectCreated:Copy"},
        {S3_EV_COMPLETE_MPU, "ObjectCreated:CompleteMultipartUpload"},
        {S3_EV_DELETE, "ObjectRemoved:Delete"},
    };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct s3_event ev = {.kind = kinds[i].kind,
                              .bucket = "b1b",
                              .key = "k",
                              .size = 0,
                              .etag = "",
                              .time_ms = 0,
                              .seq = UINT64_MAX};
        char *text = notify_event_json(&ev, "us-east-1", "");
        json_t *msg = json_loads(text, 0, NULL);
        json_t *rec = record_of(msg);
        json_t *obj = json_object_get(json_object_get(rec, "s3"), "object");
        char want[64];

        is_str(get(rec, "eventName"), kinds[i].name, kinds[i].name);
        snprintf(want, sizeof(want), "s3:%s", kinds[i].name);
        is_str(get(msg, "EventName"), want, "EventName with s3:");
        is_str(get(rec, "eventTime"), "1970-01-01T00:00:00.000Z", "epoch time");
        is_str(get(rec, "s3.object.sequencer"), "FFFFFFFFFFFFFFFF", "largest sequencer");
        is_str(get(rec, "userIdentity.principalId"), "", "no origin: empty principal");
        if (kinds[i].kind == S3_EV_DELETE) {
            ok(json_object_get(obj, "size") == NULL, "delete has no size");
            ok(json_object_get(obj, "eTag") == NULL, "delete has no eTag");
        } else {
            ok(json_object_get(obj, "size") != NULL, "created has a size");
        }
        json_decref(msg);
        free(text);
    }
}

static void test_event_key_encoding(void)
{
    static const struct {
        const char *raw, *enc;
    } cases[] = {
        {"red flower.jpg", "red+flower.jpg"},
        {"a/b/c.txt", "a/b/c.txt"},
        {"x+y", "x%2By"},
        {"100%", "100%25"},
        {"q?a=b&c", "q%3Fa%3Db%26c"},
        {"caf\xc3\xa9", "caf%C3%A9"},
        {"tilde~(1)", "tilde%7E%281%29"},
        {"keep-_.*", "keep-_.*"},
        {"\"quoted\"", "%22quoted%22"},
        {"", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *enc = notify_key_encode(cases[i].raw);
        is_str(enc, cases[i].enc, cases[i].raw);
        free(enc);
    }
    {
        struct s3_event ev = {.kind = S3_EV_PUT, .bucket = "b1b", .key = "caf\xc3\xa9 \"x\"\\"};
        char *text = notify_event_json(&ev, "r", "c");
        json_t *msg = json_loads(text, 0, NULL);
        is_str(get(record_of(msg), "s3.object.key"), "caf%C3%A9+%22x%22%5C", "odd key encoded");
        is_str(get(msg, "Key"), "b1b/caf\xc3\xa9 \"x\"\\", "odd key raw in Key");
        json_decref(msg);
        free(text);
    }
}

static void test_event_negative_time_floors(void)
{
    struct s3_event ev = {.kind = S3_EV_PUT, .bucket = "b1b", .key = "k", .time_ms = -1};
    char *text = notify_event_json(&ev, "r", "c");
    json_t *msg = json_loads(text, 0, NULL);

    is_str(get(record_of(msg), "eventTime"), "1969-12-31T23:59:59.999Z", "before 1970");
    json_decref(msg);
    free(text);
}

static void *uuids_in_thread(void *arg)
{
    char(*out)[37] = arg;

    for (int i = 0; i < 1000; i++)
        gw_uuid(out[i]);
    return NULL;
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid_unique_across_threads(void)
{
    static char ids[4][1000][37];
    pthread_t th[4];
    size_t dups = 0, bad = 0;

    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, uuids_in_thread, ids[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    qsort(ids, 4000, 37, cmp_uuid);
    for (size_t i = 0; i < 4000; i++) {
        const char *a = ids[0][0] + i * 37;
        if (i > 0 && strcmp(a, a - 37) == 0)
            dups++;
        if (strlen(a) != 36 || a[14] != '4' || strchr("89ab", a[19]) == NULL)
            bad++;
    }
    is_int(dups, 0, "4000 ids from 4 threads, all distinct");
    is_int(bad, 0, "all v4-shaped");
}

static void test_uuid_is_v4(void)
{
    char a[37], b[37];

    gw_uuid(a);
    gw_uuid(b);
    is_int(strlen(a), 36, "36 characters");
    ok(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-', "dashes");
    ok(a[14] == '4', "version 4");
    ok(strchr("89ab", a[19]) != NULL, "RFC 4122 variant");
    ok(strspn(a, "0123456789abcdef-") == 36, "lowercase hex");
    ok(strcmp(a, b) != 0, "two differ");
}

int main(void)
{
    subtest(test_event_put_has_every_field);
    subtest(test_event_kinds_and_delete);
    subtest(test_event_key_encoding);
    subtest(test_event_negative_time_floors);
    subtest(test_event_json_escapes_odd_text);
    subtest(test_event_test_message_is_flat);
    subtest(test_uuid_is_v4);
    subtest(test_uuid_unique_across_threads);
    return done_testing();
}

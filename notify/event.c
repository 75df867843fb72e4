/* notify: the AWS S3 event message of one committed mutation (plus MinIO's two top-level
 * members), and random v4 UUIDs. Which services an event reaches is hook.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"

/* ---- UUIDs ----------------------------------------------------------------------------- */

static void random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        ASSERT(n > 0); /* the kernel's CSPRNG does not fail once seeded */
        got += (size_t)n;
    }
}

void notify_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t o = 0;

    random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* ---- the event message ----------------------------------------------------------------- */

/* application/x-www-form-urlencoded as AWS writes keys in events: letters, digits and
 * "-_.*" stay, space becomes '+', '/' stays (as AWS leaves it in real events; form decoders
 * accept both), every other byte is %XX. */
char *notify_key_encode(const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(key);
    char *out = xmalloc(len * 3 + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '*' || c == '/') {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

static const char *event_name(enum s3_event_kind kind)
{
    switch (kind) {
    case S3_EV_PUT:
        return "ObjectCreated:Put";
    case S3_EV_POST:
        return "ObjectCreated:Post";
    case S3_EV_COPY:
        return "ObjectCreated:Copy";
    case S3_EV_COMPLETE_MPU:
        return "ObjectCreated:CompleteMultipartUpload";
    case S3_EV_DELETE:
        return "ObjectRemoved:Delete";
    case S3_EV_TEST:
        return "TestEvent";
    }
    return "ObjectCreated:Put";
}

/* ISO 8601 UTC with milliseconds, as AWS writes eventTime. */
static void format_time(int64_t time_ms, char out[32])
{
    int64_t secs = time_ms / 1000, ms = time_ms % 1000;
    time_t t;
    struct tm tm;
    size_t len;

    if (ms < 0) { /* floor, for times before 1970 */
        ms += 1000;
        secs--;
    }
    t = (time_t)secs;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    len = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, 32 - len, ".%03dZ", (int)ms);
}

/* A JSON string of text that should be UTF-8; bytes that are not (never from a valid S3
 * request) would make jansson refuse it, so those fall back to their form-encoding. */
static json_t *text(const char *s)
{
    json_t *j = json_string(s != NULL ? s : "");
    char *enc;

    if (j != NULL)
        return j;
    enc = notify_key_encode(s);
    j = json_string(enc);
    free(enc);
    return j;
}

static json_t *one_member(const char *name, json_t *value)
{
    json_t *o = json_object();

    json_object_set_new(o, name, value);
    return o;
}

static json_t *s3_entity(const struct s3_event *ev, const char *principal, const char *config_id)
{
    json_t *s3 = json_object(), *bucket = json_object(), *object = json_object();
    char *key = notify_key_encode(ev->key);
    char *arn = xasprintf("arn:aws:s3:::%s", ev->bucket);
    char seq[17];

    json_object_set_new(s3, "s3SchemaVersion", json_string("1.0"));
    json_object_set_new(s3, "configurationId", text(config_id));
    json_object_set_new(bucket, "name", text(ev->bucket));
    /* floodgate keeps no bucket owners: the requester stands in */
    json_object_set_new(bucket, "ownerIdentity", one_member("principalId", text(principal)));
    json_object_set_new(bucket, "arn", text(arn));
    json_object_set_new(s3, "bucket", bucket);
    json_object_set_new(object, "key", json_string(key));
    if (ev->kind != S3_EV_DELETE) { /* AWS sends neither for removals */
        json_object_set_new(object, "size",
                            json_integer(ev->size > INT64_MAX ? INT64_MAX : (json_int_t)ev->size));
        json_object_set_new(object, "eTag", text(ev->etag));
    }
    snprintf(seq, sizeof(seq), "%016" PRIX64, ev->seq);
    json_object_set_new(object, "sequencer", json_string(seq));
    json_object_set_new(s3, "object", object);
    free(arn);
    free(key);
    return s3;
}

char *notify_event_json(const struct s3_event *ev, const char *region, const char *config_id)
{
    static const struct s3_event_origin nobody;
    const struct s3_event_origin *who = ev->origin != NULL ? ev->origin : &nobody;
    json_t *msg = json_object(), *rec = json_object(), *resp = json_object();
    char when[32], *name, *bucket_key, *dumped, *out;

    format_time(ev->time_ms, when);
    name = xasprintf("s3:%s", event_name(ev->kind));
    bucket_key = xasprintf("%s/%s", ev->bucket, ev->key);
    json_object_set_new(msg, "EventName", json_string(name));
    json_object_set_new(msg, "Key", text(bucket_key));

    json_object_set_new(rec, "eventVersion", json_string("2.1"));
    json_object_set_new(rec, "eventSource", json_string("aws:s3"));
    json_object_set_new(rec, "awsRegion", text(region));
    json_object_set_new(rec, "eventTime", json_string(when));
    json_object_set_new(rec, "eventName", json_string(event_name(ev->kind)));
    json_object_set_new(rec, "userIdentity", one_member("principalId", text(who->principal)));
    json_object_set_new(rec, "requestParameters",
                        one_member("sourceIPAddress", text(who->source_ip)));
    /* floodgate answers x-amz-id-2 with the request id too */
    json_object_set_new(resp, "x-amz-request-id", text(who->request_id));
    json_object_set_new(resp, "x-amz-id-2", text(who->request_id));
    json_object_set_new(rec, "responseElements", resp);
    json_object_set_new(rec, "s3", s3_entity(ev, who->principal, config_id));
    json_object_set_new(msg, "Records", json_pack("[o]", rec));

    dumped = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ASSERT(dumped != NULL); /* only fails when memory does */
    out = xstrdup(dumped);
    free(dumped);
    json_decref(msg);
    free(name);
    free(bucket_key);
    return out;
}

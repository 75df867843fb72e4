/* notify: the AWS S3 event message of one committed mutation (plus MinIO's two top-level
 * members) and AWS's s3:TestEvent message. Written with buf.c's JSON writer
 * (why not jansson: see there). Which services and rules an event reaches is hook.c. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"

/* ---- the event message ----------------------------------------------------------------- */

static const char *event_name(enum s3_event_kind kind)
{
    return notify_event_full_name(kind) + 3; /* AWS's eventName has no "s3:" */
}

const char *notify_event_full_name(enum s3_event_kind kind)
{
    switch (kind) {
    case S3_EV_PUT:
        return "s3:ObjectCreated:Put";
    case S3_EV_POST:
        return "s3:ObjectCreated:Post";
    case S3_EV_COPY:
        return "s3:ObjectCreated:Copy";
    case S3_EV_COMPLETE_MPU:
        return "s3:ObjectCreated:CompleteMultipartUpload";
    case S3_EV_DELETE:
        return "s3:ObjectRemoved:Delete";
    case S3_EV_TEST:
        return "s3:TestEvent";
    }
    return "s3:ObjectCreated:Put";
}

/* The last second formatted on this thread: events come in bursts within one second, and
 * gmtime_r + strftime cost more than the rest of the time stamp. */
static _Thread_local struct {
    int64_t secs;
    bool valid;
    char text[24]; /* "YYYY-MM-DDTHH:MM:SS" */
} last_second;

void notify_format_time(int64_t time_ms, char out[32])
{
    int64_t secs = time_ms / 1000, ms = time_ms % 1000;

    if (ms < 0) { /* floor, for times before 1970 */
        ms += 1000;
        secs--;
    }
    if (!last_second.valid || last_second.secs != secs) {
        time_t t = (time_t)secs;
        struct tm tm;

        /* years past 9999 would not fit the fixed width: not a time S3 writes */
        if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
            strftime(last_second.text, sizeof(last_second.text), "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
            snprintf(out, 32, "1970-01-01T00:00:00.000Z");
            return;
        }
        last_second.secs = secs;
        last_second.valid = true;
    }
    memcpy(out, last_second.text, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

#define PUT_LIT(b, lit) notify_buf_put((b), (lit), sizeof(lit) - 1)

/* {"principalId":"..."} */
static void principal(struct notify_buf *b, const char *who)
{
    PUT_LIT(b, "{\"principalId\":");
    notify_buf_json_str(b, who);
    PUT_LIT(b, "}");
}

static void write_s3_entity(struct notify_buf *b, const struct s3_event *ev, const char *owner,
                            const char *config_id)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *arn[2] = {"arn:aws:s3:::", ev->bucket};
    char seq[16];

    PUT_LIT(b, "{\"s3SchemaVersion\":\"1.0\",\"configurationId\":");
    notify_buf_json_str(b, config_id);
    PUT_LIT(b, ",\"bucket\":{\"name\":");
    notify_buf_json_str(b, ev->bucket);
    /* floodgate keeps no bucket owners: the requester stands in */
    PUT_LIT(b, ",\"ownerIdentity\":");
    principal(b, owner);
    PUT_LIT(b, ",\"arn\":");
    notify_buf_json_strv(b, arn, 2);
    PUT_LIT(b, "},\"object\":{\"key\":");
    notify_buf_json_encoded(b, ev->key);
    if (ev->kind != S3_EV_DELETE) { /* AWS sends neither for removals */
        PUT_LIT(b, ",\"size\":");
        notify_buf_u64(b, ev->size > INT64_MAX ? INT64_MAX : ev->size);
        PUT_LIT(b, ",\"eTag\":");
        notify_buf_json_str(b, ev->etag);
    }
    for (int i = 0; i < 16; i++) /* S3's sequencer: 16 upper-case hex digits */
        seq[i] = hex[(ev->seq >> (60 - 4 * i)) & 15];
    PUT_LIT(b, ",\"sequencer\":\"");
    notify_buf_put(b, seq, sizeof(seq));
    PUT_LIT(b, "\"}}");
}

void notify_event_write(struct notify_buf *b, const struct s3_event *ev, const char *region,
                        const char *config_id, const char *when)
{
    static const struct s3_event_origin nobody;
    const struct s3_event_origin *who = ev->origin != NULL ? ev->origin : &nobody;
    const char *key[3] = {ev->bucket, "/", ev->key};

    PUT_LIT(b, "{\"EventName\":\"");
    notify_buf_puts(b, notify_event_full_name(ev->kind));
    PUT_LIT(b, "\",\"Key\":");
    notify_buf_json_strv(b, key, 3);
    PUT_LIT(b, ",\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":");
    notify_buf_json_str(b, region);
    PUT_LIT(b, ",\"eventTime\":\"");
    notify_buf_puts(b, when);
    PUT_LIT(b, "\",\"eventName\":\"");
    notify_buf_puts(b, event_name(ev->kind));
    PUT_LIT(b, "\",\"userIdentity\":");
    principal(b, who->principal);
    PUT_LIT(b, ",\"requestParameters\":{\"sourceIPAddress\":");
    notify_buf_json_str(b, who->source_ip);
    /* floodgate answers x-amz-id-2 with the request id too */
    PUT_LIT(b, "},\"responseElements\":{\"x-amz-request-id\":");
    notify_buf_json_str(b, who->request_id);
    PUT_LIT(b, ",\"x-amz-id-2\":");
    notify_buf_json_str(b, who->request_id);
    PUT_LIT(b, "},\"s3\":");
    write_s3_entity(b, ev, who->principal, config_id);
    PUT_LIT(b, "}]}");
}

void notify_test_event_write(struct notify_buf *b, const struct s3_event *ev, const char *when)
{
    static const struct s3_event_origin nobody;
    const struct s3_event_origin *who = ev->origin != NULL ? ev->origin : &nobody;

    PUT_LIT(b, "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Time\":\"");
    notify_buf_puts(b, when);
    PUT_LIT(b, "\",\"Bucket\":");
    notify_buf_json_str(b, ev->bucket);
    PUT_LIT(b, ",\"RequestId\":");
    notify_buf_json_str(b, who->request_id);
    PUT_LIT(b, ",\"HostId\":");
    notify_buf_json_str(b, who->request_id);
    PUT_LIT(b, "}");
}

char *notify_event_json(const struct s3_event *ev, const char *region, const char *config_id)
{
    struct notify_buf b = {0};
    char when[32];

    notify_format_time(ev->time_ms, when);
    if (ev->kind == S3_EV_TEST)
        notify_test_event_write(&b, ev, when);
    else
        notify_event_write(&b, ev, region, config_id, when);
    notify_buf_put(&b, "", 1); /* the NUL */
    return b.p;
}

/* Compact outbox records. The hook writes an event's fields rather than its JSON message
 * (kind 'J' for a job, 'N' for a notification), since every byte in the outbox is written to
 * disk twice in the commit path: once when the record is added, again when the relay's removal
 * rewrites its page; at 1 KiB of JSON per record that tripled the bytes an upload wrote. The
 * store's outbox read expands job records back, on the read thread, into the records
 * queue/queue.h describes ('j'); notification records go to Redis as they are ('N': a third of
 * the message's bytes in Redis, where a dead target's backlog waits) and are expanded ('n')
 * when they are delivered. Either way the result is byte for byte what the hook used to write.
 *
 *   'J': id service pool bucket key ev max_attempts rev created_ms -> 'j' with `event` (the
 *        AWS message, configurationId = the service) in place of `ev`
 *   'N': id target bucket key ev created_ms -> 'n': id target body created_ms, `body` the
 *        message (configurationId = the rule's Id) or, for S3_EV_TEST, the test message
 *
 * `ev` is binary, little-endian: [u8 version 1][u8 kind][u64 size][i64 time_ms][u64 seq], then
 * etag, principal, source ip, request id and configuration id, each [u16 length][bytes]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"

#define EV_VERSION 1
#define EV_FIXED   (2 + 8 + 8 + 8)
#define MAX_FIELDS 16 /* a compact record has 9 (J) or 6 (N); more is not one of ours */

static void put_le(struct notify_buf *b, uint64_t v, size_t n)
{
    unsigned char out[8];
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(v >> (8 * i));
    notify_buf_put(b, out, n);
}

static void put_str16(struct notify_buf *b, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n > UINT16_MAX)
        n = UINT16_MAX;
    put_le(b, n, 2);
    if (n > 0)
        notify_buf_put(b, s, n);
}

void notify_ev_write(struct notify_buf *b, const struct s3_event *ev, const char *config_id)
{
    static const struct s3_event_origin nobody;
    const struct s3_event_origin *who = ev->origin != NULL ? ev->origin : &nobody;
    unsigned char head[2] = {EV_VERSION, (unsigned char)ev->kind};

    notify_buf_put(b, head, 2);
    put_le(b, ev->size, 8);
    put_le(b, (uint64_t)ev->time_ms, 8);
    put_le(b, ev->seq, 8);
    put_str16(b, ev->etag);
    put_str16(b, who->principal);
    put_str16(b, who->source_ip);
    put_str16(b, who->request_id);
    put_str16(b, config_id);
}

/* ---- reading ---- */

struct bytes {
    const unsigned char *p;
    size_t len;
};

static uint64_t get_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The next [u32 name length][name][u32 value length][value] at *p; false at the end or when
 * the record is cut short. */
static bool next_field(const unsigned char **p, const unsigned char *end, struct bytes *name,
                       struct bytes *value)
{
    size_t left = (size_t)(end - *p);
    /* a field without a name is not a record's (queue_rec_parse refuses it too) */
    if (left < 4 || left - 4 < get_le(*p, 4) || get_le(*p, 4) == 0)
        return false;
    *name = (struct bytes){*p + 4, get_le(*p, 4)};
    *p += 4 + name->len;
    left = (size_t)(end - *p);
    if (left < 4 || left - 4 < get_le(*p, 4))
        return false;
    *value = (struct bytes){*p + 4, get_le(*p, 4)};
    *p += 4 + value->len;
    return true;
}

static bool is(struct bytes name, const char *s)
{
    return name.len == strlen(s) && memcmp(name.p, s, name.len) == 0;
}

/* A copy of `v` as a C string into `out` (cap bytes); false when it does not fit or holds a
 * NUL. */
static bool cstr(struct bytes v, char *out, size_t cap)
{
    if (v.len >= cap || memchr(v.p, '\0', v.len) != NULL)
        return false;
    memcpy(out, v.p, v.len);
    out[v.len] = '\0';
    return true;
}

/* The decoded `ev` field with the record's bucket and key: what the message writers read.
 * The strings of unbounded length (etag, configuration id, bucket, key) are copied into
 * `mem`, which has room for the whole record plus a NUL per string. */
struct decoded {
    struct s3_event ev;
    struct s3_event_origin who;
    const char *config_id;
    char *mem;
    size_t used, cap;
};

/* A NUL-terminated copy of `v` in d->mem; NULL when `v` holds a NUL. */
static const char *keep(struct decoded *d, struct bytes v)
{
    char *out = d->mem + d->used;
    if (memchr(v.p, '\0', v.len) != NULL || d->cap - d->used < v.len + 1)
        return NULL;
    memcpy(out, v.p, v.len);
    out[v.len] = '\0';
    d->used += v.len + 1;
    return out;
}

/* The next [u16 length][bytes] of the ev field. */
static bool next_str16(const unsigned char **p, const unsigned char *end, struct bytes *v)
{
    if (end - *p < 2)
        return false;
    *v = (struct bytes){*p + 2, get_le(*p, 2)};
    if ((size_t)(end - *p - 2) < v->len)
        return false;
    *p += 2 + v->len;
    return true;
}

static bool str16(const unsigned char **p, const unsigned char *end, char *out, size_t cap)
{
    struct bytes v;
    return next_str16(p, end, &v) && cstr(v, out, cap);
}

static bool str16_kept(const unsigned char **p, const unsigned char *end, struct decoded *d,
                       const char **out)
{
    struct bytes v;
    return next_str16(p, end, &v) && (*out = keep(d, v)) != NULL;
}

static bool decode_ev(struct bytes ev, struct bytes bucket, struct bytes key, struct decoded *d)
{
    const unsigned char *p = ev.p, *end = ev.p + ev.len;

    if (ev.len < EV_FIXED || p[0] != EV_VERSION || p[1] > S3_EV_TEST)
        return false;
    d->ev.kind = (enum s3_event_kind)p[1];
    d->ev.size = get_le(p + 2, 8);
    d->ev.time_ms = (int64_t)get_le(p + 10, 8);
    d->ev.seq = get_le(p + 18, 8);
    p += EV_FIXED;
    if (!str16_kept(&p, end, d, &d->ev.etag) ||
        !str16(&p, end, d->who.principal, sizeof(d->who.principal)) ||
        !str16(&p, end, d->who.source_ip, sizeof(d->who.source_ip)) ||
        !str16(&p, end, d->who.request_id, sizeof(d->who.request_id)) ||
        !str16_kept(&p, end, d, &d->config_id) || p != end)
        return false;
    d->ev.origin = &d->who;
    return (d->ev.bucket = keep(d, bucket)) != NULL && (d->ev.key = keep(d, key)) != NULL;
}

/* The message of `d` (the event, or the test message) as the value of field `name`. */
static void message_field(struct notify_buf *b, const char *name, const struct decoded *d,
                          const char *region)
{
    char when[32];
    size_t at = notify_rec_field_begin(b, name);

    notify_format_time(d->ev.time_ms, when);
    if (d->ev.kind == S3_EV_TEST)
        notify_test_event_write(b, &d->ev, when);
    else
        notify_event_write(b, &d->ev, region, d->config_id, when);
    notify_rec_field_end(b, at);
}

static void copy_field(struct notify_buf *b, struct bytes name, struct bytes value)
{
    put_le(b, name.len, 4);
    notify_buf_put(b, name.p, name.len);
    put_le(b, value.len, 4);
    notify_buf_put(b, value.p, value.len);
}

int notify_record_expand(void *arg, const void *data, size_t len, void **out, size_t *out_len)
{
    const struct notify_hook *hook = arg;
    const char *region = hook != NULL && hook->region != NULL ? hook->region : "us-east-1";
    const unsigned char *start = data, *end = start + len, *p;
    struct bytes name, value, ev = {NULL, 0}, bucket = {NULL, 0}, key = {NULL, 0};
    struct decoded d = {0};
    struct notify_buf b = {0};
    char kind;
    int rc = -1;
    size_t n_fields;

    if (len < 4 || memcmp(start, "FR1", 3) != 0 || (start[3] != 'J' && start[3] != 'N'))
        return 1;
    kind = (char)start[3];
    /* the hook writes nine fields at most, bucket, key and ev once each */
    for (p = start + 4, n_fields = 0; p < end; n_fields++) {
        if (n_fields == MAX_FIELDS || !next_field(&p, end, &name, &value))
            return -1;
        struct bytes *one = is(name, "bucket") ? &bucket
                            : is(name, "key")  ? &key
                            : is(name, "ev")   ? &ev
                                               : NULL;
        if (one != NULL && one->p != NULL)
            return -1;
        if (one != NULL)
            *one = value;
    }
    if (bucket.p == NULL || key.p == NULL || ev.p == NULL)
        return -1;
    d.cap = len + 4; /* every string is a part of the record; a NUL each */
    d.mem = malloc(d.cap);
    if (d.mem != NULL && decode_ev(ev, bucket, key, &d)) {
        notify_rec_begin(&b, kind == 'J' ? 'j' : 'n');
        for (p = start + 4; p < end && next_field(&p, end, &name, &value);) {
            if (is(name, "ev"))
                message_field(&b, kind == 'J' ? "event" : "body", &d, region);
            else if (kind == 'J' || !(is(name, "bucket") || is(name, "key")))
                copy_field(&b, name, value);
        }
        *out = b.p;
        *out_len = b.len;
        rc = 0;
    }
    free(d.mem);
    return rc;
}

int notify_outbox_map(void *arg, const void *data, size_t len, void **out, size_t *out_len)
{
    if (len >= 4 && memcmp(data, "FR1N", 4) == 0)
        return 1; /* delivered as it is; expanded at delivery */
    return notify_record_expand(arg, data, len, out, out_len);
}

/* Unit tests for notify/compact.c: a compact record expands to exactly the bytes of the full
 * record (as the hook wrote them before records were compact), records of other kinds are left
 * alone, and a compact record cut or damaged anywhere is refused, never read past its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/internal.h"
#include "notify/notify.h"
#include "s3api/s3api.h"
#include "tests/unit/tap.h"

static struct notify_hook hook = {.region = "eu-1"};
static const struct s3_event_origin who = {
    .principal = "AK", .source_ip = "1.2.3.4", .request_id = "R1"};

static struct s3_event event(enum s3_event_kind kind, const char *key)
{
    return (struct s3_event){.kind = kind,
                             .bucket = "photos",
                             .key = key,
                             .size = 3,
                             .etag = kind == S3_EV_DELETE ? "" : "abc",
                             .time_ms = 1700000000123LL,
                             .seq = 42,
                             .origin = &who};
}

/* The message field: compact (`ev`, the event's fields) or full (`full_name`: the message, or
 * the test message for S3_EV_TEST). */
static void message(struct notify_buf *b, const struct s3_event *ev, bool compact,
                    const char *full_name, const char *config_id)
{
    char when[32];
    size_t at = notify_rec_field_begin(b, compact ? "ev" : full_name);

    notify_format_time(ev->time_ms, when);
    if (compact)
        notify_ev_write(b, ev, config_id);
    else if (ev->kind == S3_EV_TEST)
        notify_test_event_write(b, ev, when);
    else
        notify_event_write(b, ev, "eu-1", config_id, when);
    notify_rec_field_end(b, at);
}

/* The job record: compact (kind 'J') or full ('j', the message written in place). */
static void job_record(struct notify_buf *b, const struct s3_event *ev, bool compact)
{
    notify_rec_begin(b, compact ? 'J' : 'j');
    notify_rec_field_str(b, "id", "00000000-0000-4000-8000-000000000001");
    notify_rec_field_str(b, "service", "thumbs");
    notify_rec_field_str(b, "pool", "edge");
    notify_rec_field_str(b, "bucket", ev->bucket);
    notify_rec_field_str(b, "key", ev->key);
    message(b, ev, compact, "event", "thumbs");
    notify_rec_field_str(b, "max_attempts", "3");
    notify_rec_field_str(b, "rev", "0123456789abcdef");
    notify_rec_field_str(b, "created_ms", "1700000000123");
}

/* The notification record: compact ('N': bucket, key and ev) or full ('n': body). */
static void notif_record(struct notify_buf *b, const struct s3_event *ev, bool compact)
{
    notify_rec_begin(b, compact ? 'N' : 'n');
    notify_rec_field_str(b, "id", "00000000-0000-4000-8000-000000000002");
    notify_rec_field_str(b, "target", "audit");
    if (compact) {
        notify_rec_field_str(b, "bucket", ev->bucket);
        notify_rec_field_str(b, "key", ev->key != NULL ? ev->key : "");
    }
    message(b, ev, compact, "body", "rule-1");
    notify_rec_field_str(b, "created_ms", "1700000000123");
}

static bool expands_to(const struct notify_buf *compact, const struct notify_buf *full)
{
    void *out = NULL;
    size_t len = 0;
    int rc = notify_record_expand(&hook, compact->p, compact->len, &out, &len);
    bool same = rc == 0 && len == full->len && memcmp(out, full->p, len) == 0;
    free(out);
    return same;
}

static void test_compact_records_expand_to_the_full_bytes(void)
{
    struct notify_buf c = {0}, f = {0};
    const char *keys[] = {"in/cat 1.jpg", "a\"quoted\\key\n", "\xc3\xa9t\xc3\xa9/\xe2\x82\xac.png",
                          ""};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct s3_event ev = event(S3_EV_PUT, keys[i]);
        job_record(&c, &ev, true);
        job_record(&f, &ev, false);
        char what[96];
        snprintf(what, sizeof(what), "job record, key %zu: the same bytes", i);
        ok(expands_to(&c, &f), what);
        snprintf(what, sizeof(what), "and the compact one is smaller (%zu < %zu)", c.len, f.len);
        ok(c.len < f.len, what);
        notif_record(&c, &ev, true);
        notif_record(&f, &ev, false);
        snprintf(what, sizeof(what), "notification record, key %zu: the same bytes", i);
        ok(expands_to(&c, &f), what);
    }
    enum s3_event_kind kinds[] = {S3_EV_POST, S3_EV_COPY, S3_EV_COMPLETE_MPU, S3_EV_DELETE};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct s3_event ev = event(kinds[i], "k");
        notif_record(&c, &ev, true);
        notif_record(&f, &ev, false);
        ok(expands_to(&c, &f), notify_event_full_name(kinds[i]));
    }
    struct s3_event test = event(S3_EV_TEST, NULL);
    test.size = 0;
    test.etag = "";
    notif_record(&c, &test, true);
    notif_record(&f, &test, false);
    ok(expands_to(&c, &f), "s3:TestEvent: the same bytes");
    struct s3_event anon = event(S3_EV_PUT, "k");
    anon.origin = NULL;
    job_record(&c, &anon, true);
    job_record(&f, &anon, false);
    ok(expands_to(&c, &f), "no origin: the same bytes");
    notify_buf_cleanup(&c);
    notify_buf_cleanup(&f);
}

/* No length the writers can produce is too long to expand: a 1024-byte key, a 1000-byte rule
 * Id (S3 sets no limit on it). */
static void test_long_strings_expand(void)
{
    char key[1025], id[1001];
    struct notify_buf c = {0}, f = {0};

    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    struct s3_event ev = event(S3_EV_PUT, key);
    for (int compact = 1; compact >= 0; compact--) {
        struct notify_buf *b = compact ? &c : &f;
        notify_rec_begin(b, compact ? 'N' : 'n');
        notify_rec_field_str(b, "id", "00000000-0000-4000-8000-000000000003");
        notify_rec_field_str(b, "target", "audit");
        if (compact) {
            notify_rec_field_str(b, "bucket", ev.bucket);
            notify_rec_field_str(b, "key", ev.key);
        }
        message(b, &ev, compact, "body", id);
        notify_rec_field_str(b, "created_ms", "1700000000123");
    }
    ok(expands_to(&c, &f), "a 1024-byte key and a 1000-byte configuration id");
    notify_buf_cleanup(&c);
    notify_buf_cleanup(&f);
}

static void test_other_records_are_left_alone(void)
{
    struct notify_buf f = {0};
    struct s3_event ev = event(S3_EV_PUT, "k");
    void *out = (void *)&f;
    size_t len = 7;

    job_record(&f, &ev, false);
    is_int(notify_record_expand(&hook, f.p, f.len, &out, &len), 1, "a full record: left alone");
    ok(out == (void *)&f && len == 7, "and nothing written");
    is_int(notify_record_expand(&hook, "FR1", 3, &out, &len), 1, "too short to be compact");
    is_int(notify_record_expand(&hook, "XYZJ", 4, &out, &len), 1, "not FR1");
    notify_buf_cleanup(&f);
}

/* The outbox map expands job records and leaves notification records for the deliveries. */
static void test_outbox_map_expands_job_records_only(void)
{
    struct notify_buf c = {0}, f = {0};
    struct s3_event ev = event(S3_EV_PUT, "in/k.jpg");
    void *out = NULL;
    size_t len = 0;

    job_record(&c, &ev, true);
    job_record(&f, &ev, false);
    is_int(notify_outbox_map(&hook, c.p, c.len, &out, &len), 0, "a compact job record: mapped");
    ok(out != NULL && len == f.len && memcmp(out, f.p, len) == 0, "into the full record");
    free(out);
    out = NULL;
    notif_record(&c, &ev, true);
    is_int(notify_outbox_map(&hook, c.p, c.len, &out, &len), 1,
           "a compact notification record: left alone");
    ok(out == NULL, "and nothing written");
    notify_buf_cleanup(&c);
    notify_buf_cleanup(&f);
}

/* An `ev` field of `ev` (configuration "svc"). */
static void ev_field(struct notify_buf *m, const struct s3_event *ev)
{
    size_t at = notify_rec_field_begin(m, "ev");
    notify_ev_write(m, ev, "svc");
    notify_rec_field_end(m, at);
}

/* A well-formed compact notification record: bucket "b", key "k", ev. */
static void n_record(struct notify_buf *m, const struct s3_event *ev)
{
    notify_rec_begin(m, 'N');
    notify_rec_field_str(m, "bucket", "b");
    notify_rec_field_str(m, "key", "k");
    ev_field(m, ev);
}

static void test_damaged_compact_records_are_refused(void)
{
    struct notify_buf c = {0};
    struct s3_event ev = event(S3_EV_PUT, "in/k");
    void *out;
    size_t len, refused = 0;

    job_record(&c, &ev, true);
    for (size_t cut = 4; cut < c.len; cut++) {
        out = NULL;
        int rc = notify_record_expand(&hook, c.p, cut, &out, &len);
        free(out);
        if (rc == -1)
            refused++;
    }
    /* a cut between two fields after `ev` (before max_attempts, rev or created_ms) leaves a
     * well-formed record, which the relay refuses for the fields it lacks */
    is_int(refused, c.len - 4 - 3, "every other cut of a compact record is refused");

    char *bad = malloc(c.len);
    size_t ev_at = 0;
    for (size_t i = 4; i + 2 < c.len && ev_at == 0; i++)
        if (memcmp(c.p + i, "ev", 2) == 0 && c.p[i - 4] == 2)
            ev_at = i + 2 + 4; /* the value, after its length */
    ok(ev_at > 0, "found the ev field");
    memcpy(bad, c.p, c.len);
    bad[ev_at] = 9; /* version */
    out = NULL;
    is_int(notify_record_expand(&hook, bad, c.len, &out, &len), -1, "an unknown ev version");
    memcpy(bad, c.p, c.len);
    bad[ev_at + 1] = 77; /* kind */
    is_int(notify_record_expand(&hook, bad, c.len, &out, &len), -1, "an unknown event kind");
    free(bad);

    struct notify_buf m = {0};
    notify_rec_begin(&m, 'J');
    notify_rec_field_str(&m, "id", "x");
    notify_rec_field_str(&m, "key", "k");
    ev_field(&m, &ev);
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), -1, "no bucket");
    notify_rec_begin(&m, 'N');
    notify_rec_field_str(&m, "bucket", "b");
    notify_rec_field(&m, "key", "a\0b", 3);
    ev_field(&m, &ev);
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), -1, "a key with a NUL");
    notify_rec_begin(&m, 'N');
    notify_rec_field_str(&m, "bucket", "b");
    notify_rec_field_str(&m, "key", "k");
    size_t at = notify_rec_field_begin(&m, "ev");
    notify_ev_write(&m, &ev, "svc");
    notify_buf_put(&m, "x", 1);
    notify_rec_field_end(&m, at);
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), -1, "bytes after the ev fields");
    /* a field without a name: the relay's parser refuses it, so the expander must too */
    n_record(&m, &ev);
    out = NULL;
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), 0, "(well formed so far)");
    free(out);
    notify_buf_put(&m, "\0\0\0\0\0\0\0\0", 8); /* name length 0, value length 0 */
    out = NULL;
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), -1, "a nameless field");
    /* more fields than the hook writes (the relay refuses over 64), or one twice */
    n_record(&m, &ev);
    for (int i = 0; i < 14; i++)
        notify_rec_field_str(&m, "x", "y");
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), -1, "17 fields");
    n_record(&m, &ev);
    notify_rec_field_str(&m, "key", "k2");
    is_int(notify_record_expand(&hook, m.p, m.len, &out, &len), -1, "a key twice");
    notify_buf_cleanup(&m);
    notify_buf_cleanup(&c);
}

int main(void)
{
    subtest(test_compact_records_expand_to_the_full_bytes);
    subtest(test_long_strings_expand);
    subtest(test_other_records_are_left_alone);
    subtest(test_outbox_map_expands_job_records_only);
    subtest(test_damaged_compact_records_are_refused);
    return done_testing();
}

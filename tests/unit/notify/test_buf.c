/* Unit tests for notify/buf.c: the outbox record bytes (the example queue/queue.h gives, which
 * queue/'s tests check too) and the JSON string writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/internal.h"
#include "tests/unit/outbox_example.h"
#include "tests/unit/tap.h"

static void test_record_matches_the_queue_h_example(void)
{
    struct notify_buf b = {0};
    size_t at;

    notify_rec_begin(&b, 'n');
    notify_rec_field_str(&b, "id", "u1");
    notify_rec_field(&b, "target", "t", 1);
    at = notify_rec_field_begin(&b, "body");
    notify_buf_puts(&b, "{}");
    notify_rec_field_end(&b, at);
    notify_rec_field_str(&b, "created_ms", "5");
    is_int(b.len, sizeof(outbox_example) - 1, "length");
    ok(b.len == sizeof(outbox_example) - 1 && memcmp(b.p, outbox_example, b.len) == 0,
       "bytes as queue.h shows");
    notify_rec_begin(&b, 'j');
    is_int(b.len, 4, "begin empties the buffer");
    ok(memcmp(b.p, "FR1j", 4) == 0, "kind j");
    notify_buf_cleanup(&b);
}

static void test_record_field_lengths_are_little_endian(void)
{
    struct notify_buf b = {0};
    char *big = malloc(70000);
    const unsigned char *p;

    memset(big, 'x', 70000);
    notify_rec_begin(&b, 'j');
    notify_rec_field(&b, "event", big, 70000);
    p = (const unsigned char *)b.p + 4 + 4 + 5;
    ok(p[0] == (70000 & 0xff) && p[1] == (70000 >> 8 & 0xff) && p[2] == 1 && p[3] == 0,
       "70000 = 70 11 01 00");
    is_int(b.len, 4 + 4 + 5 + 4 + 70000, "total");
    free(big);
    notify_buf_cleanup(&b);
}

static void test_json_string_escapes(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "\"plain\""},
        {"", "\"\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x1f", "\"\\u0001\\u001f\""},
        {"/\x7f", "\"/\x7f\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"bad \xff", "\"bad+%FF\""},              /* not UTF-8: form-encoded */
        {"\xc0\xaf", "\"%C0%AF\""},               /* overlong */
        {"\xed\xa0\x80", "\"%ED%A0%80\""},        /* a surrogate */
        {"\xf4\x90\x80\x80", "\"%F4%90%80%80\""}, /* above U+10FFFF */
        {"\xe2\x82", "\"%E2%82\""},               /* truncated */
    };
    struct notify_buf b = {0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b.len = 0;
        notify_buf_json_str(&b, cases[i].in);
        notify_buf_put(&b, "", 1);
        is_str(b.p, cases[i].out, cases[i].out);
    }
    {
        const char *parts[] = {"a", NULL, "\"b"};
        b.len = 0;
        notify_buf_json_strv(&b, parts, 3);
        notify_buf_put(&b, "", 1);
        is_str(b.p, "\"a\\\"b\"", "parts concatenated, NULL empty");
    }
    b.len = 0;
    notify_buf_u64(&b, 18446744073709551615ULL);
    notify_buf_put(&b, "", 1);
    is_str(b.p, "18446744073709551615", "largest u64");
    b.len = 0;
    notify_buf_json_encoded(&b, "a b/c+");
    notify_buf_put(&b, "", 1);
    is_str(b.p, "\"a+b/c%2B\"", "form-encoded string");
    notify_buf_cleanup(&b);
}

int main(void)
{
    subtest(test_record_matches_the_queue_h_example);
    subtest(test_record_field_lengths_are_little_endian);
    subtest(test_json_string_escapes);
    return done_testing();
}

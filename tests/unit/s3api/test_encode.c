/* Hex, base64 (RFC 4648 vectors and strict rejects), SigV4 UriEncode, percent-decoding and
 * UTF-8 validation. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "s3api/encode.h"
#include "tests/unit/tap.h"

static void test_hex(void)
{
    const unsigned char in[] = {0x00, 0x7f, 0xab, 0xff};
    char out[9];

    s3_hex(in, 4, out);
    is_str(out, "007fabff", "lowercase hex");
    s3_hex(in, 0, out);
    is_str(out, "", "empty hex");
}

static void test_base64_round_trips(void)
{
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    char enc[16];
    unsigned char dec[16];

    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        size_t n = strlen(vec[i][0]);
        is_int(s3_base64_encode((const unsigned char *)vec[i][0], n, enc, sizeof(enc)),
               strlen(vec[i][1]), "encoded length");
        is_str(enc, vec[i][1], "RFC 4648 vector encodes");
        long got = s3_base64_decode(span_from(vec[i][1]), dec, sizeof(dec));
        ok(got == (long)n && memcmp(dec, vec[i][0], n) == 0, "... and decodes back");
    }
    unsigned char all[256], back[256];
    char wide[400];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    s3_base64_encode(all, 256, wide, sizeof(wide));
    ok(s3_base64_decode(span_from(wide), back, sizeof(back)) == 256 && memcmp(all, back, 256) == 0,
       "every byte value round-trips");
}

static void test_base64_rejects(void)
{
    static const char *const bad[][2] = {
        {"Zg", "length not a multiple of 4"},
        {"Zg=", "short padding"},
        {"Zg===", "long padding"},
        {"Z===", "three pads"},
        {"====", "only padding"},
        {"Zg==Zg==", "padding in the middle"},
        {"Zh==", "non-zero bits under padding (1 byte)"},
        {"Zm9=", "non-zero bits under padding (2 bytes)"},
        {"Zm9v!A==", "character outside the alphabet"},
        {"Zm 9v", "space"},
        {"Zm9v\n", "newline"},
        {"Zm-_", "URL-safe alphabet"},
    };
    unsigned char out[16];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(s3_base64_decode(span_from(bad[i][0]), out, sizeof(out)), -1, bad[i][1]);
    is_int(s3_base64_decode(span_from("Zm9vYmFy"), out, 5), -1, "output over cap");
    is_int(s3_base64_decode(span_from("Zm9vYmFy"), out, 6), 6, "output at cap");
}

static char *encode(const char *s, size_t n, bool keep_slash)
{
    struct evbuffer *b = evbuffer_new();
    s3_uri_encode(b, span_make(s, n), keep_slash);
    size_t len = evbuffer_get_length(b);
    char *out = malloc(len + 1);
    evbuffer_remove(b, out, len);
    out[len] = '\0';
    evbuffer_free(b);
    return out;
}

static void check_encode(const char *in, bool keep_slash, const char *want, const char *name)
{
    char *got = encode(in, strlen(in), keep_slash);
    is_str(got, want, name);
    free(got);
}

static void test_uri_encode(void)
{
    check_encode("AZaz09-._~", false, "AZaz09-._~", "unreserved kept");
    check_encode("a b", false, "a%20b", "space is %20");
    check_encode("a+b", false, "a%2Bb", "plus encoded");
    check_encode("a/b", true, "a/b", "slash kept in paths");
    check_encode("a/b", false, "a%2Fb", "slash encoded elsewhere");
    check_encode("$&=?#%*!'()", false, "%24%26%3D%3F%23%25%2A%21%27%28%29", "reserved encoded");
    check_encode("\xc3\xa9\xe2\x82\xac", false, "%C3%A9%E2%82%AC", "UTF-8 bytes, uppercase hex");
    check_encode("", false, "", "empty");
    char *nul = encode("a\0b", 3, false);
    is_str(nul, "a%00b", "NUL encoded");
    free(nul);
}

static void test_uri_decode(void)
{
    size_t n;
    char *s = s3_uri_decode(span_from("a%20b%2fc+d%7E"), false, &n);
    is_str(s, "a b/c+d~", "decodes, plus stays");
    is_int(n, 8, "length");
    free(s);
    s = s3_uri_decode(span_from("a+b"), true, &n);
    is_str(s, "a b", "plus as space when asked");
    free(s);
    s = s3_uri_decode(span_from("x%00y"), false, &n);
    ok(s != NULL && n == 3 && s[1] == '\0', "NUL kept, length says so");
    free(s);
    s = s3_uri_decode(span_make("", 0), false, &n);
    ok(s != NULL && n == 0 && s[0] == '\0', "empty");
    free(s);
    ok(s3_uri_decode(span_from("%"), false, &n) == NULL, "lone %");
    ok(s3_uri_decode(span_from("a%2"), false, &n) == NULL, "truncated escape");
    ok(s3_uri_decode(span_from("%zz"), false, &n) == NULL, "non-hex escape");
    ok(s3_uri_decode(span_from("%2g"), false, &n) == NULL, "half-hex escape");
}

/* The allocation-free forms agree with s3_uri_decode and s3_uri_encode. */
static void test_uri_buffer_forms(void)
{
    char out[64];
    long n = s3_uri_decode_buf(span_from("a%20b+c"), true, out, sizeof(out));
    ok(n == 5 && memcmp(out, "a b c", 5) == 0, "decode into a buffer, plus as space");
    n = s3_uri_decode_buf(span_from("a%41bcdef"), false, out, 3);
    ok(n == 7 && memcmp(out, "aAb", 3) == 0, "too small: writes what fits, counts the rest");
    is_int(s3_uri_decode_buf(span_from("ab%4"), false, out, sizeof(out)), -1, "bad escape");
    is_int(s3_uri_decode_buf(span_make("", 0), false, out, 0), 0, "empty");

    ok(s3_uri_decoded_eq(span_from("X-Amz-Date"), "X-Amz-Date"), "plain name matches");
    ok(s3_uri_decoded_eq(span_from("X%2DAmz%2ddate"), "X-Amz-date"), "escaped name matches");
    ok(!s3_uri_decoded_eq(span_from("X-Amz-Dat"), "X-Amz-Date"), "shorter: no match");
    ok(!s3_uri_decoded_eq(span_from("X-Amz-Dates"), "X-Amz-Date"), "longer: no match");
    ok(!s3_uri_decoded_eq(span_from("a+b"), "a b"), "plus stays plus");
    ok(!s3_uri_decoded_eq(span_from("ab%00"), "ab"), "a decoded NUL is no end");
    ok(!s3_uri_decoded_eq(span_from("a%4"), "a%4"), "bad escape: no match");
    ok(s3_uri_decoded_eq(span_make("", 0), ""), "empty matches empty");

    n = s3_uri_reencode(span_from("a%20b/c~%7e+%2F%c3%a9"), true, out);
    ok(n == 19 && memcmp(out, "a%20b/c~~%2B/%C3%A9", 19) == 0,
       "re-encode: decoded once, encoded once, slashes kept");
    n = s3_uri_reencode(span_from("a/b c"), false, out);
    ok(n == 9 && memcmp(out, "a%2Fb%20c", 9) == 0, "re-encode encodes slash elsewhere");
    is_int(s3_uri_reencode(span_from("%zz"), false, out), -1, "re-encode bad escape");

    size_t m = s3_uri_encode_to(out, 4, span_from("a b"), false);
    ok(m == 4 && memcmp(out, "a%20", 4) == 0, "encode into a buffer, cut at cap");
    m = s3_uri_encode_to(out, 3, span_from("a b"), false);
    ok(m == 3 && memcmp(out, "a%2", 3) == 0, "cut inside an escape, as before");
    m = s3_uri_encode_to(out, sizeof(out), span_from("k/x y"), true);
    ok(m == 7 && memcmp(out, "k/x%20y", 7) == 0, "slash kept in keys");
}

static void test_utf8(void)
{
    ok(s3_utf8_valid("plain ascii", 11), "ASCII");
    ok(s3_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9), "2, 3 and 4 byte forms");
    ok(s3_utf8_valid("", 0), "empty");
    ok(s3_utf8_valid("\xf4\x8f\xbf\xbf", 4), "U+10FFFF");
    ok(!s3_utf8_valid("\xc0\xaf", 2), "overlong slash");
    ok(!s3_utf8_valid("\xe0\x80\xaf", 3), "overlong 3-byte");
    ok(!s3_utf8_valid("\xf0\x80\x80\xaf", 4), "overlong 4-byte");
    ok(!s3_utf8_valid("\xed\xa0\x80", 3), "surrogate");
    ok(!s3_utf8_valid("\xf4\x90\x80\x80", 4), "beyond U+10FFFF");
    ok(!s3_utf8_valid("\xe2\x82", 2), "truncated");
    ok(!s3_utf8_valid("\x80", 1), "lone continuation");
    ok(!s3_utf8_valid("\xc3\x28", 2), "bad continuation");
    ok(!s3_utf8_valid("\xff", 1), "0xff");
    ok(s3_utf8_valid("a\0b", 3), "NUL is valid UTF-8 (callers refuse it where it matters)");
}

int main(void)
{
    subtest(test_hex);
    subtest(test_base64_round_trips);
    subtest(test_base64_rejects);
    subtest(test_uri_encode);
    subtest(test_uri_decode);
    subtest(test_uri_buffer_forms);
    subtest(test_utf8);
    return done_testing();
}

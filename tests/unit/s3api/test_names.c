/* s3api/names.c: bucket naming rules and object key checks. */
#include <string.h>

#include "s3api/names.h"
#include "tests/unit/tap.h"

static void test_bucket_names_valid(void)
{
    const char *good[] = {"abc",
                          "my-bucket",
                          "my.bucket.name",
                          "a1b2c3",
                          "123",
                          "1.2.3",
                          "1.2.3.4.5",
                          "192.168.5.4x",
                          "xn-foo",
                          "s3alias-bucket",
                          "bucket-s3alia",
                          "a-b--c",
                          "012345678901234567890123456789012345678901234567890123456789012"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ok(s3_bucket_name_valid(good[i]), good[i]);
}

static void test_bucket_names_invalid(void)
{
    const char *bad[] = {"",
                         "ab",
                         "0123456789012345678901234567890123456789012345678901234567890123",
                         "MyBucket",
                         "my_bucket",
                         "my bucket",
                         "-bucket",
                         "bucket-",
                         ".bucket",
                         "bucket.",
                         "my..bucket",
                         "192.168.5.4",
                         "1.1.1.1",
                         "999.999.999.999",
                         "xn--bucket",
                         "bucket-s3alias",
                         "bucket--ol-s3",
                         "b\303\274cket",
                         "bucket/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok(!s3_bucket_name_valid(bad[i]), bad[i]);
    ok(!s3_bucket_name_valid(NULL), "NULL");
}

static void test_key_lengths(void)
{
    char key[1026];
    memset(key, 'k', sizeof(key));
    is_int(s3_key_check(key, 1), S3_OK, "1 byte");
    is_int(s3_key_check(key, 1024), S3_OK, "1024 bytes");
    is_int(s3_key_check(key, 1025), S3_ERR_KEY_TOO_LONG, "1025 bytes");
    is_int(s3_key_check(key, 0), S3_ERR_INVALID_ARGUMENT, "empty");
    /* 1024 bytes of two-byte characters is fine; length is in bytes, not characters. */
    for (size_t i = 0; i + 1 < 1026; i += 2) {
        key[i] = '\xc3';
        key[i + 1] = '\xa9';
    }
    is_int(s3_key_check(key, 1024), S3_OK, "512 two-byte characters");
    is_int(s3_key_check(key, 1026), S3_ERR_KEY_TOO_LONG, "513 two-byte characters");
}

static void test_key_ordinary_bytes(void)
{
    const char *good[] = {"../x",
                          "//a",
                          "/lead",
                          "sp ace",
                          "%41",
                          "a+b",
                          "trail/",
                          "\303\274n\303\257c\303\270d\303\251",
                          "\xe2\x82\xac",
                          "\xf0\x9f\x98\x80",
                          "\xef\xbf\xbf",
                          "\xf4\x8f\xbf\xbf",
                          "\xc2\x80 C1 is allowed",
                          "<&>\"'",
                          "."};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        is_int(s3_key_check(good[i], strlen(good[i])), S3_OK, good[i]);
}

static void test_key_rejects_controls_and_bad_utf8(void)
{
    static const struct {
        const char *key;
        size_t len;
        const char *name;
    } bad[] = {
        {"a\0b", 3, "NUL"},
        {"a\x01", 2, "SOH"},
        {"a\tb", 3, "tab"},
        {"a\nb", 3, "newline"},
        {"a\rb", 3, "carriage return"},
        {"\x1f", 1, "unit separator"},
        {"a\x7f", 2, "DEL"},
        {"\x80", 1, "lone continuation"},
        {"\xc3", 1, "truncated two-byte"},
        {"\xc3(", 2, "bad continuation"},
        {"\xc0\xaf", 2, "overlong slash"},
        {"\xc1\xbf", 2, "overlong two-byte"},
        {"\xe0\x80\xaf", 3, "overlong three-byte"},
        {"\xed\xa0\x80", 3, "surrogate"},
        {"\xf0\x80\x80\xaf", 4, "overlong four-byte"},
        {"\xf4\x90\x80\x80", 4, "past U+10FFFF"},
        {"\xf5\x80\x80\x80", 4, "F5 lead"},
        {"\xff", 1, "FF"},
        {"\xe2\x82", 2, "truncated three-byte"},
        {"ok\xe2\x82", 4, "truncated at the end"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(s3_key_check(bad[i].key, bad[i].len), S3_ERR_INVALID_ARGUMENT, bad[i].name);
}

int main(void)
{
    subtest(test_bucket_names_valid);
    subtest(test_bucket_names_invalid);
    subtest(test_key_lengths);
    subtest(test_key_ordinary_bytes);
    subtest(test_key_rejects_controls_and_bad_utf8);
    return done_testing();
}

/* Bucket name rules and object key checks. Keys are otherwise opaque: the store maps them to
 * disk safely, so "../" and "//" are ordinary bytes here. */
#include "s3api/names.h"

#include <string.h>

#define BUCKET_MIN  3
#define BUCKET_MAX  63
#define KEY_MAX_LEN 1024

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Four dot-separated runs of digits, as S3 refuses them ("192.168.5.4"). */
static bool looks_like_ipv4(const char *s)
{
    int n_labels = 0, n_digits = 0;
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            n_digits++;
        } else if ((*s == '.' || *s == '\0') && n_digits > 0) {
            n_labels++;
            n_digits = 0;
            if (*s == '\0')
                return n_labels == 4;
        } else {
            return false;
        }
    }
}

bool s3_bucket_name_valid(const char *name)
{
    size_t len = name != NULL ? strnlen(name, BUCKET_MAX + 1) : 0;

    if (len < BUCKET_MIN || len > BUCKET_MAX)
        return false;
    if (!is_lower_alnum(name[0]) || !is_lower_alnum(name[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!is_lower_alnum(c) && c != '.' && c != '-')
            return false;
        if (c == '.' && name[i + 1] == '.')
            return false;
    }
    return !looks_like_ipv4(name) && strncmp(name, "xn--", 4) != 0 &&
           !ends_with(name, len, "-s3alias") && !ends_with(name, len, "--ol-s3");
}

/* Length of the well-formed UTF-8 sequence at s[0] (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds for the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

enum s3_err s3_key_check(const char *key, size_t len)
{
    const unsigned char *p = (const unsigned char *)key;

    if (len > KEY_MAX_LEN)
        return S3_ERR_KEY_TOO_LONG;
    if (len == 0)
        return S3_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < len;) {
        /* Controls cannot be written in XML 1.0 listings, not even escaped. */
        if (p[i] < 0x20 || p[i] == 0x7F)
            return S3_ERR_INVALID_ARGUMENT;
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0)
            return S3_ERR_INVALID_ARGUMENT;
        i += n;
    }
    return S3_OK;
}

bool s3_bucket_name_reserved(const char *name)
{
    static const char *const reserved[] = {"health", "system", "job", "run", "metrics"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0)
            return true;
    return false;
}

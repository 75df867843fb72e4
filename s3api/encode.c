/* Byte encodings for the S3 path: hex, base64, SigV4 UriEncode, percent-decoding and UTF-8
 * validation. Pure functions over caller buffers; nothing here allocates except
 * s3_uri_decode(). The *_buf variants exist so the per-request paths (routing, query
 * parameters, signatures) need no heap. */
#include "s3api/encode.h"

#include <stdint.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "gateway/span.h"
#include "gateway/xmalloc.h"

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";
/* The base64 alphabet, then the padding character at index 64. */
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

void s3_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_lower[in[i] >> 4];
        out[2 * i + 1] = hex_lower[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

size_t s3_base64_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    ASSERT(cap >= 4 * ((n + 2) / 3) + 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[i + 1 < n ? (v >> 6) & 63 : 64];
        out[o++] = b64_alphabet[i + 2 < n ? v & 63 : 64];
    }
    out[o] = '\0';
    return o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict: length a multiple of 4, '=' only as the last one or two characters, and the bits
 * the padding drops must be zero (one canonical encoding per byte string). */
long s3_base64_decode(struct span in, unsigned char *out, size_t cap)
{
    size_t o = 0;

    if (in.len % 4 != 0)
        return -1;
    for (size_t i = 0; i < in.len; i += 4) {
        const unsigned char *q = (const unsigned char *)in.ptr + i;
        bool last = i + 4 == in.len;
        int pad = 0;
        if (last && q[3] == '=')
            pad = q[2] == '=' ? 2 : 1;
        int v0 = b64_value(q[0]), v1 = b64_value(q[1]);
        int v2 = pad >= 2 ? 0 : b64_value(q[2]);
        int v3 = pad >= 1 ? 0 : b64_value(q[3]);
        if (v0 < 0 || v1 < 0 || v2 < 0 || v3 < 0)
            return -1;
        if ((pad == 2 && (v1 & 0x0f) != 0) || (pad == 1 && (v2 & 0x03) != 0))
            return -1;
        uint32_t v = (uint32_t)v0 << 18 | (uint32_t)v1 << 12 | (uint32_t)v2 << 6 | (uint32_t)v3;
        size_t n = 3 - (size_t)pad;
        if (cap - o < n)
            return -1;
        out[o++] = (unsigned char)(v >> 16);
        if (n > 1)
            out[o++] = (unsigned char)(v >> 8);
        if (n > 2)
            out[o++] = (unsigned char)v;
    }
    return (long)o;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void s3_uri_encode(struct evbuffer *out, struct span in, bool keep_slash)
{
    size_t run = 0; /* start of the pending run of bytes copied as they are */

    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (is_unreserved(c) || (keep_slash && c == '/'))
            continue;
        if (i > run)
            evbuffer_add(out, in.ptr + run, i - run);
        char esc[3] = {'%', hex_upper[c >> 4], hex_upper[c & 0x0f]};
        evbuffer_add(out, esc, sizeof(esc));
        run = i + 1;
    }
    if (in.len > run)
        evbuffer_add(out, in.ptr + run, in.len - run);
}

size_t s3_uri_encode_to(char *out, size_t cap, struct span in, bool keep_slash)
{
    size_t o = 0;

    for (size_t i = 0; i < in.len && o < cap; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            out[o++] = (char)c;
            continue;
        }
        char esc[3] = {'%', hex_upper[c >> 4], hex_upper[c & 0x0f]};
        for (size_t k = 0; k < 3 && o < cap; k++)
            out[o++] = esc[k];
    }
    return o;
}

/* The byte escaped as "%XX" at in.ptr[i] (which is '%'), or -1 when malformed. Escapes are
 * the exception: the loops below handle plain bytes inline, since they run over every query
 * byte of every request several times. */
static int escape_at(struct span in, size_t i)
{
    int hi = i + 2 < in.len ? gw_hex_digit((unsigned char)in.ptr[i + 1]) : -1;
    int lo = hi >= 0 ? gw_hex_digit((unsigned char)in.ptr[i + 2]) : -1;
    return lo < 0 ? -1 : hi << 4 | lo;
}

long s3_uri_decode_buf(struct span in, bool plus_is_space, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < in.len; i++, o++) {
        int c = (unsigned char)in.ptr[i];
        if (c == '%') {
            c = escape_at(in, i);
            if (c < 0)
                return -1;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o < cap)
            out[o] = (char)c;
    }
    return (long)o;
}

char *s3_uri_decode(struct span in, bool plus_is_space, size_t *out_len)
{
    char *s = xmalloc(in.len + 1);
    long n = s3_uri_decode_buf(in, plus_is_space, s, in.len);

    if (n < 0) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    if (out_len != NULL)
        *out_len = (size_t)n;
    return s;
}

bool s3_uri_decoded_eq(struct span in, const char *s)
{
    size_t k = 0;

    for (size_t i = 0; i < in.len; i++, k++) {
        int c = (unsigned char)in.ptr[i];
        if (c == '%') {
            c = escape_at(in, i);
            if (c < 0)
                return false;
            i += 2;
        }
        if (s[k] == '\0' || (unsigned char)s[k] != c)
            return false;
    }
    return s[k] == '\0';
}

long s3_uri_reencode(struct span in, bool keep_slash, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < in.len; i++) {
        int c = (unsigned char)in.ptr[i];
        if (c == '%') {
            c = escape_at(in, i);
            if (c < 0)
                return -1;
            i += 2;
        }
        if (is_unreserved((unsigned char)c) || (keep_slash && c == '/')) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex_upper[c >> 4];
            out[o++] = hex_upper[c & 0x0f];
        }
    }
    return (long)o;
}

bool s3_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false; /* continuation byte first, or 0xf8..0xff */
        }
        if (len - i - 1 < n)
            return false; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false; /* overlong, beyond Unicode, or a UTF-16 surrogate */
        i += n + 1;
    }
    return true;
}

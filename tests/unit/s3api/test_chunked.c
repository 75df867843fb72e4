/* aws-chunked decoding: the AWS streaming example fed whole, byte by byte and in random
 * pieces; chunk and trailer signatures; framing errors; the unsigned-trailer form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <zlib.h>

#include "s3api/auth.h"
#include "s3api/chunked.h"
#include "s3api/encode.h"
#include "tests/unit/tap.h"

#define SECRET   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SEED     "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1     "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2     "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG_LAST "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
#define EMPTY    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static struct s3_auth auth_for(enum s3_payload payload)
{
    struct s3_auth a = {.kind = S3_AUTH_V4_HEADER, .payload = payload};

    snprintf(a.amz_date, sizeof(a.amz_date), "20130524T000000Z");
    snprintf(a.scope, sizeof(a.scope), "20130524/us-east-1/s3/aws4_request");
    snprintf(a.seed_signature, sizeof(a.seed_signature), SEED);
    s3_sigv4_signing_key(SECRET, "20130524", "us-east-1", a.signing_key);
    return a;
}

/* A growable byte string for building bodies. */
struct body {
    char *p;
    size_t len;
};

static void add(struct body *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void adds(struct body *b, const char *s)
{
    add(b, s, strlen(s));
}

static void add_a(struct body *b, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    memset(b->p + b->len, 'a', n);
    b->len += n;
}

/* The documentation's example: 64 KiB + 1 KiB of 'a'. */
static struct body aws_example(void)
{
    struct body b = {0};

    adds(&b, "10000;chunk-signature=" SIG1 "\r\n");
    add_a(&b, 65536);
    adds(&b, "\r\n400;chunk-signature=" SIG2 "\r\n");
    add_a(&b, 1024);
    adds(&b, "\r\n0;chunk-signature=" SIG_LAST "\r\n\r\n");
    return b;
}

/* Feeds `b` in pieces of `piece` bytes (0: random sizes) and finishes; returns the first
 * error. *out gets the decoded bytes. */
static enum s3_err decode(const struct s3_auth *a, const struct body *b, size_t piece,
                          struct evbuffer *out, struct s3_chunked **keep)
{
    struct s3_chunked *c = s3_chunked_new(a, 1024);
    struct evbuffer *in = evbuffer_new();
    enum s3_err e = S3_OK;
    size_t off = 0;

    while (off < b->len && e == S3_OK) {
        size_t n = piece != 0 ? piece : (size_t)(rand() % 700) + 1;
        if (n > b->len - off)
            n = b->len - off;
        evbuffer_add(in, b->p + off, n);
        off += n;
        e = s3_chunked_feed(c, in, out);
        if (e == S3_OK && evbuffer_get_length(in) != 0)
            e = S3_ERR_INTERNAL_ERROR; /* feed must drain its input */
    }
    if (e == S3_OK)
        e = s3_chunked_finish(c);
    evbuffer_free(in);
    if (keep != NULL)
        *keep = c;
    else
        s3_chunked_free(c);
    return e;
}

static bool all_a(struct evbuffer *out, size_t n)
{
    if (evbuffer_get_length(out) != n)
        return false;
    const unsigned char *p = evbuffer_pullup(out, -1);
    for (size_t i = 0; i < n; i++)
        if (p[i] != 'a')
            return false;
    return true;
}

static void test_chunked_decodes_aws_example(void)
{
    struct s3_auth a = auth_for(S3_PAYLOAD_STREAMING_SIGNED);
    struct body b = aws_example();
    struct s3_chunked *c;
    const size_t pieces[] = {SIZE_MAX, 1, 2, 3, 7, 64, 4096, 0, 0};

    is_int(b.len, 66824, "encoded length matches the example's Content-Length");
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        struct evbuffer *out = evbuffer_new();
        char name[64];
        snprintf(name, sizeof(name), "decodes in pieces of %zu", pieces[i]);
        is_int(decode(&a, &b, pieces[i], out, &c), S3_OK, name);
        ok(all_a(out, 66560), "66560 bytes of 'a' out");
        is_int(s3_chunked_decoded_bytes(c), 66560, "decoded count");
        size_t n;
        s3_chunked_trailers(c, &n);
        is_int(n, 0, "no trailers");
        s3_chunked_free(c);
        evbuffer_free(out);
    }
    free(b.p);
}

static enum s3_err decode_text(enum s3_payload payload, const struct body *b, size_t piece)
{
    struct s3_auth a = auth_for(payload);
    struct evbuffer *out = evbuffer_new();
    enum s3_err e = decode(&a, b, piece, out, NULL);
    evbuffer_free(out);
    return e;
}

static void test_chunked_rejects_bad_chunk_signature(void)
{
    struct body b = aws_example();
    char *sig2 = strstr(b.p, SIG2);

    sig2[0] = '1';
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED, &b, SIZE_MAX), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "bad chunk signature");
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED, &b, 1), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "bad chunk signature, byte by byte");
    sig2[0] = '0';
    b.p[100] = 'b';
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED, &b, SIZE_MAX), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "tampered chunk data");
    b.p[100] = 'a';
    char *last = strstr(b.p, SIG_LAST);
    last[63] = '0';
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED, &b, SIZE_MAX), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "bad final chunk signature");
    last[63] = '9';

    /* Errors stick. */
    struct s3_auth a = auth_for(S3_PAYLOAD_STREAMING_SIGNED);
    struct s3_chunked *c = s3_chunked_new(&a, 1024);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add(in, "zz\r\n", 4);
    is_int(s3_chunked_feed(c, in, out), S3_ERR_INVALID_REQUEST, "bad size line");
    is_int(evbuffer_get_length(in), 0, "input drained on error");
    evbuffer_add(in, b.p, b.len);
    is_int(s3_chunked_feed(c, in, out), S3_ERR_INVALID_REQUEST, "error sticks on feed");
    is_int(s3_chunked_finish(c), S3_ERR_INVALID_REQUEST, "error sticks on finish");
    s3_chunked_free(c);
    evbuffer_free(in);
    evbuffer_free(out);
    free(b.p);
}

static void test_chunked_truncated_is_incomplete(void)
{
    struct body b = aws_example();
    const size_t cuts[] = {0, 10, 88, 30000, 65626, 66700, 66737, 66822};

    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        struct body t = {b.p, cuts[i]};
        char name[64];
        snprintf(name, sizeof(name), "truncated at %zu", cuts[i]);
        is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED, &t, SIZE_MAX), S3_ERR_INCOMPLETE_BODY,
               name);
    }
    free(b.p);
}

static void check_framing(enum s3_payload payload, const char *text, enum s3_err want,
                          const char *name)
{
    struct body b = {0};
    adds(&b, text);
    is_int(decode_text(payload, &b, SIZE_MAX), want, name);
    is_int(decode_text(payload, &b, 1), want, name);
    free(b.p);
}

static void test_chunked_rejects_bad_framing(void)
{
    const enum s3_payload s = S3_PAYLOAD_STREAMING_SIGNED;
    const enum s3_payload u = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
    const enum s3_err bad = S3_ERR_INVALID_REQUEST;
    char line[5000];

    check_framing(s, "400\r\n", bad, "signed chunk without signature");
    check_framing(s, "400;chunk-signature=abc\r\n", bad, "short chunk signature");
    check_framing(s, "400;chunk-signature=" SIG1 "x\r\n", bad, "long chunk signature");
    check_framing(s, "400;chunk-signature=" SIG1 "\n", bad, "bare LF");
    check_framing(s, ";chunk-signature=" SIG1 "\r\n", bad, "no size");
    check_framing(u, "10000000000000000\r\n", bad, "17 hex digits");
    check_framing(u, "-1\r\n", bad, "negative size");
    check_framing(u, "1 \r\n", bad, "space after the size");
    check_framing(u, "1\r\nab\r\n", bad, "data longer than the size");
    check_framing(u, "1\r\na\n\r\n", bad, "no CR after data");
    check_framing(u, "0\r\n\r\nx", bad, "bytes after the end");
    check_framing(u, "0\r\nnocolon\r\n\r\n", bad, "trailer without colon");
    check_framing(u, "0\r\n:v\r\n\r\n", bad, "trailer without name");
    check_framing(u, "0\r\nx-amz-trailer-signature:" SIG1 "\r\n\r\n", bad,
                  "trailer signature in the unsigned form");
    memset(line, 'f', sizeof(line));
    memcpy(line + 4097, "\r\n", 3);
    check_framing(u, line, bad, "size line over 4 KiB");
    check_framing(u, "ffffffffffffffff\r\nabc", S3_ERR_INCOMPLETE_BODY, "huge chunk, short body");
    check_framing(u, "0\r\n", S3_ERR_INCOMPLETE_BODY, "no empty line after the last chunk");
    check_framing(u, "000;ext=1\r\n\r\n", S3_OK, "unsigned chunk extensions ignored");

    struct body b = aws_example();
    b.len -= 2;
    adds(&b, "x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    is_int(decode_text(s, &b, SIZE_MAX), bad, "trailer in the form without one");
    free(b.p);
}

static void crc32_b64(const char *data, size_t len, char out[9])
{
    uint32_t crc = (uint32_t)crc32(0, (const unsigned char *)data, (unsigned)len);
    unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};
    s3_base64_encode(be, 4, out, 9);
}

static void test_chunked_unsigned_trailer(void)
{
    struct s3_auth a = auth_for(S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER);
    const size_t pieces[] = {SIZE_MAX, 1, 0};
    char crc[9], line[64];
    struct body b = {0}, data = {0};

    add_a(&data, 1024);
    crc32_b64(data.p, data.len, crc);
    adds(&b, "400\r\n");
    add(&b, data.p, data.len);
    snprintf(line, sizeof(line), "\r\n0\r\nX-Amz-Checksum-CRC32: %s \r\n\r\n", crc);
    adds(&b, line);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        struct evbuffer *out = evbuffer_new();
        struct s3_chunked *c;
        size_t n;
        is_int(decode(&a, &b, pieces[i], out, &c), S3_OK, "unsigned trailer decodes");
        ok(all_a(out, 1024), "payload out");
        const struct gw_header *t = s3_chunked_trailers(c, &n);
        is_int(n, 1, "one trailer");
        ok(n == 1 && span_eq_str(t[0].name, "x-amz-checksum-crc32"), "name lowercased");
        ok(n == 1 && span_eq_str(t[0].value, crc), "value trimmed");
        s3_chunked_free(c);
        evbuffer_free(out);
    }

    /* The body may end right after the trailer line (no empty line). */
    struct body cut = {b.p, b.len - 2};
    is_int(decode_text(S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, &cut, SIZE_MAX), S3_OK,
           "last empty line optional at the end of the body");
    cut.len = b.len - 3;
    is_int(decode_text(S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, &cut, SIZE_MAX),
           S3_ERR_INCOMPLETE_BODY, "... but not a partial line");

    /* Trailers are bounded. */
    struct s3_chunked *c = s3_chunked_new(&a, 16);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add(in, b.p, b.len);
    is_int(s3_chunked_feed(c, in, out), S3_ERR_INVALID_REQUEST, "trailer over max_trailer_bytes");
    s3_chunked_free(c);
    evbuffer_free(in);
    evbuffer_free(out);
    free(b.p);
    free(data.p);
}

/* A chunk signature computed the way a client does, from the lower-level helpers. */
static void chunk_sig(const struct s3_auth *a, const char *prev, const char *data, size_t len,
                      char out[65])
{
    char hash[65], sts[512];

    s3_sha256_hex(data, len, hash);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n" EMPTY "\n%s", a->amz_date,
             a->scope, prev, hash);
    s3_sigv4_hmac_hex(a->signing_key, sts, strlen(sts), out);
}

static struct body signed_trailer_body(const struct s3_auth *a, const char *trailer_value,
                                       const char *signed_value)
{
    char sig1[65], sig0[65], tsig[65], hash[65], sts[512], canon[128], line[256];
    struct body b = {0}, data = {0};

    add_a(&data, 3000);
    chunk_sig(a, a->seed_signature, data.p, data.len, sig1);
    chunk_sig(a, sig1, "", 0, sig0);
    snprintf(canon, sizeof(canon), "x-amz-checksum-crc32:%s\n", signed_value);
    s3_sha256_hex(canon, strlen(canon), hash);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", a->amz_date, a->scope,
             sig0, hash);
    s3_sigv4_hmac_hex(a->signing_key, sts, strlen(sts), tsig);

    snprintf(line, sizeof(line), "bb8;chunk-signature=%s\r\n", sig1);
    adds(&b, line);
    add(&b, data.p, data.len);
    snprintf(line, sizeof(line), "\r\n0;chunk-signature=%s\r\n", sig0);
    adds(&b, line);
    snprintf(line, sizeof(line), "x-amz-checksum-crc32:%s\r\nx-amz-trailer-signature:%s\r\n\r\n",
             trailer_value, tsig);
    adds(&b, line);
    free(data.p);
    return b;
}

static void test_chunked_signed_trailer(void)
{
    struct s3_auth a = auth_for(S3_PAYLOAD_STREAMING_SIGNED_TRAILER);
    struct body b = signed_trailer_body(&a, "sOO8/Q==", "sOO8/Q==");
    struct evbuffer *out = evbuffer_new();
    struct s3_chunked *c;
    size_t n;

    is_int(decode(&a, &b, SIZE_MAX, out, &c), S3_OK, "signed trailer verifies");
    ok(all_a(out, 3000), "payload out");
    const struct gw_header *t = s3_chunked_trailers(c, &n);
    is_int(n, 1, "one trailer (the signature is not listed)");
    ok(n == 1 && span_eq_str(t[0].value, "sOO8/Q=="), "trailer value");
    s3_chunked_free(c);
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, &b, 1), S3_OK,
           "signed trailer byte by byte");
    free(b.p);

    b = signed_trailer_body(&a, "AAAAAA==", "sOO8/Q==");
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, &b, SIZE_MAX),
           S3_ERR_SIGNATURE_DOES_NOT_MATCH, "tampered trailer refused");
    free(b.p);

    b = signed_trailer_body(&a, "sOO8/Q==", "sOO8/Q==");
    char *sig = strstr(b.p, "x-amz-trailer-signature:");
    sig[22] = 'x'; /* now an ordinary trailer, x-amz-trailer-signaturx */
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, &b, SIZE_MAX),
           S3_ERR_SIGNATURE_DOES_NOT_MATCH, "missing trailer signature");
    free(b.p);

    b = signed_trailer_body(&a, "sOO8/Q==", "sOO8/Q==");
    struct body cut = {b.p, (size_t)(strstr(b.p, "x-amz-trailer-signature") - b.p)};
    is_int(decode_text(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, &cut, SIZE_MAX), S3_ERR_INCOMPLETE_BODY,
           "body cut before the trailer signature");
    free(b.p);
    evbuffer_free(out);
}

int main(void)
{
    srand(42);
    subtest(test_chunked_decodes_aws_example);
    subtest(test_chunked_rejects_bad_chunk_signature);
    subtest(test_chunked_truncated_is_incomplete);
    subtest(test_chunked_rejects_bad_framing);
    subtest(test_chunked_unsigned_trailer);
    subtest(test_chunked_signed_trailer);
    return done_testing();
}

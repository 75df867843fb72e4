/* SigV4 header and presigned verification against the AWS documentation examples, the
 * canonicalisation rules, and every refusal the auth path makes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gateway/span.h"
#include "s3api/auth.h"
#include "tests/unit/tap.h"

#define AKID        "AKIAIOSFODNN7EXAMPLE"
#define SECRET      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T0          1369353600 /* 20130524T000000Z */
#define EMPTY_HASH  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SCOPE       "20130524/us-east-1/s3/aws4_request"
#define CRED        "Credential=" AKID "/" SCOPE
#define HOST        "host: examplebucket.s3.amazonaws.com"
#define SIG_RANGE   "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
#define SIG_PRESIGN "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
#define MAX_HEADERS 32

static struct s3_user users[] = {
    {.name = "example", .access_key = AKID, .secret_key = SECRET},
    {.name = "other", .access_key = "AKIDOTHER", .secret_key = "othersecret"},
};

static struct s3_auth_config cfg = {
    .region = "us-east-1",
    .users = users,
    .n_users = 2,
    .sigv2 = true,
    .max_skew_s = 900,
    .max_presign_s = 604800,
};

static char last_msg[256];

/* Runs s3_auth_verify over "METHOD target" and "name: value" header lines (NULL-ended). The
 * message must never carry the secret or a full signature. */
static enum s3_err verify_at(const char *method, const char *target, const char *const *lines,
                             time_t now, struct s3_auth *out)
{
    struct gw_header h[MAX_HEADERS];
    size_t n = 0;
    const char *q = strchr(target, '?');
    struct s3_auth_req req = {
        .method = span_from(method),
        .path = q != NULL ? span_make(target, (size_t)(q - target)) : span_from(target),
        .query = q != NULL ? span_from(q + 1) : span_make("", 0),
        .now = now,
    };

    for (; n < MAX_HEADERS && lines[n] != NULL; n++) {
        const char *colon = strchr(lines[n], ':');
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        h[n].name = span_make(lines[n], (size_t)(colon - lines[n]));
        h[n].value = span_from(v);
    }
    req.headers = h;
    req.n_headers = n;
    enum s3_err e = s3_auth_verify(&cfg, &req, out, last_msg, sizeof(last_msg));
    if (strstr(last_msg, SECRET) != NULL || strstr(last_msg, SIG_RANGE) != NULL ||
        strstr(last_msg, SIG_PRESIGN) != NULL)
        ok(0, "message leaks a secret or a signature");
    return e;
}

static enum s3_err verify(const char *method, const char *target, const char *const *lines,
                          struct s3_auth *out)
{
    return verify_at(method, target, lines, T0, out);
}

/* The signature a correct client computes for `canonical_request` (written out by hand in
 * each test, so the test states the spec rather than repeating the code). */
static void sign(const char *canonical_request, const char *amz_date, char sig[65])
{
    char hash[65], sts[512];
    unsigned char key[32];

    s3_sha256_hex(canonical_request, strlen(canonical_request), hash);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n" SCOPE "\n%s", amz_date, hash);
    s3_sigv4_signing_key(SECRET, "20130524", "us-east-1", key);
    s3_sigv4_hmac_hex(key, sts, strlen(sts), sig);
}

static void test_signing_key_matches_aws_example(void)
{
    unsigned char key[32];
    char hex[65];

    s3_sigv4_signing_key(SECRET, "20130524", "us-east-1", key);
    s3_sigv4_hmac_hex(key, "", 0, hex);
    ok(strlen(hex) == 64, "hmac hex is 64 chars");
    s3_sha256_hex("", 0, hex);
    is_str(hex, EMPTY_HASH, "sha256 of nothing");
}

static void test_get_object_with_range(void)
{
    const char *h[] = {
        HOST,
        "range: bytes=0-9",
        "x-amz-content-sha256: " EMPTY_HASH,
        "x-amz-date: 20130524T000000Z",
        "authorization: AWS4-HMAC-SHA256 " CRED
        ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
        NULL};
    struct s3_auth a;

    is_int(verify("GET", "/test.txt", h, &a), S3_OK, "GET /test.txt with Range verifies");
    is_int(a.kind, S3_AUTH_V4_HEADER, "kind is header");
    ok(a.user == &users[0], "user found");
    is_int(a.payload, S3_PAYLOAD_SHA256, "payload is a digest");
    ok(a.content_sha256[0] == 0xe3 && a.content_sha256[31] == 0x55, "digest decoded");
    is_str(a.seed_signature, SIG_RANGE, "seed signature kept");
    is_str(a.amz_date, "20130524T000000Z", "amz date kept");
    is_str(a.scope, SCOPE, "scope kept");
    /* Verifying again goes through the signing-key cache. */
    is_int(verify("GET", "/test.txt", h, &a), S3_OK, "second verify (cached key)");
}

static void test_get_bucket_lifecycle(void)
{
    const char *h[] = {HOST, "x-amz-content-sha256: " EMPTY_HASH, "x-amz-date: 20130524T000000Z",
                       "authorization: AWS4-HMAC-SHA256 " CRED
                       ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="
                       "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
                       NULL};
    struct s3_auth a;

    is_int(verify("GET", "/?lifecycle", h, &a), S3_OK, "GET /?lifecycle verifies");
}

static void test_list_objects(void)
{
    const char *h[] = {HOST, "x-amz-content-sha256: " EMPTY_HASH, "x-amz-date: 20130524T000000Z",
                       "authorization: AWS4-HMAC-SHA256 " CRED
                       ", SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
                       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
                       NULL};
    struct s3_auth a;

    is_int(verify("GET", "/?max-keys=2&prefix=J", h, &a), S3_OK,
           "GET /?max-keys=2&prefix=J verifies (spaces after commas)");
    is_int(verify("GET", "/?prefix=J&max-keys=2", h, &a), S3_OK, "query order does not matter");
    is_int(verify("GET", "/?max-keys=3&prefix=J", h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "query value is signed");
}

static void test_put_object_dollar_key(void)
{
    const char *h[] = {"date: Fri, 24 May 2013 00:00:00 GMT",
                       HOST,
                       "x-amz-date: 20130524T000000Z",
                       "x-amz-storage-class: REDUCED_REDUNDANCY",
                       "x-amz-content-sha256: "
                       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                       "authorization: AWS4-HMAC-SHA256 " CRED
                       ",SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-"
                       "class,Signature="
                       "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                       NULL};
    struct s3_auth a;

    is_int(verify("PUT", "/test$file.text", h, &a), S3_OK, "PUT /test$file.text verifies");
    is_int(verify("PUT", "/test%24file.text", h, &a), S3_OK, "... and with $ sent as %24");
    is_int(a.payload, S3_PAYLOAD_SHA256, "payload digest");
    ok(a.content_sha256[0] == 0x44 && a.content_sha256[1] == 0xce, "payload digest decoded");
}

static void test_streaming_seed_signature(void)
{
    const char *h[] = {"content-encoding: aws-chunked",
                       "content-length: 66824",
                       "host: s3.amazonaws.com",
                       "x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                       "x-amz-date: 20130524T000000Z",
                       "x-amz-decoded-content-length: 66560",
                       "x-amz-storage-class: REDUCED_REDUNDANCY",
                       "authorization: AWS4-HMAC-SHA256 " CRED
                       ",SignedHeaders=content-encoding;content-length;host;x-amz-content-"
                       "sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
                       "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                       NULL};
    struct s3_auth a;
    unsigned char key[32];

    is_int(verify("PUT", "/examplebucket/chunkObject.txt", h, &a), S3_OK,
           "aws-chunked seed request verifies");
    is_int(a.payload, S3_PAYLOAD_STREAMING_SIGNED, "payload streaming signed");
    is_str(a.seed_signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
           "seed signature for the chunk chain");
    s3_sigv4_signing_key(SECRET, "20130524", "us-east-1", key);
    ok(memcmp(a.signing_key, key, 32) == 0, "signing key handed to the decoder");
}

static void test_presigned_url(void)
{
    const char *url = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
                      "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
                      "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG_PRESIGN;
    const char *h[] = {HOST, NULL};
    const char *h_extra[] = {HOST, "x-amz-meta-x: 1", NULL};
    struct s3_auth a;

    is_int(verify_at("GET", url, h, T0 + 3600, &a), S3_OK, "presigned URL verifies");
    is_int(a.kind, S3_AUTH_V4_QUERY, "kind is query");
    is_int(a.payload, S3_PAYLOAD_UNSIGNED, "presigned payload is unsigned");
    is_int(verify_at("GET", url, h, T0 + 86400, &a), S3_OK, "valid at the last second");
    is_int(verify_at("GET", url, h, T0 + 86401, &a), S3_ERR_ACCESS_DENIED, "expired");
    is_str(last_msg, "Request has expired", "expired message");
    is_int(verify_at("GET", url, h, T0 - 3600, &a), S3_ERR_ACCESS_DENIED, "not valid yet");
    is_int(verify_at("GET", url, h_extra, T0, &a), S3_ERR_ACCESS_DENIED, "unsigned x-amz header");
    is_str(last_msg, "There were headers present in the request which were not signed",
           "unsigned header message");
}

static void test_presigned_refusals(void)
{
    const char *h[] = {HOST, NULL};
    const char *base = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
                       "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
                       "X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG_PRESIGN;
    char url[1024];
    struct s3_auth a;

    snprintf(url, sizeof(url), "%s&X-Amz-Expires=604801", base);
    is_int(verify("GET", url, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "expires above a week");
    snprintf(url, sizeof(url), "%s&X-Amz-Expires=0", base);
    is_int(verify("GET", url, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR, "expires 0");
    snprintf(url, sizeof(url), "%s&X-Amz-Expires=-5", base);
    is_int(verify("GET", url, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "expires negative");
    is_int(verify("GET", base, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "expires missing");
    snprintf(url, sizeof(url), "%s&X-Amz-Expires=86400&X-Amz-Expires=86400", base);
    is_int(verify("GET", url, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "expires repeated");
    snprintf(url, sizeof(url), "%s&X-Amz-Expires=86401", base);
    is_int(verify("GET", url, h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH, "expires is signed");

    const char *region =
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
        "%2F20130524%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
        "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG_PRESIGN;
    is_int(verify("GET", region, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "presigned wrong region");
    ok(strstr(last_msg, "expecting 'us-east-1'") != NULL, "names the expected region");

    const char *alg = "/t?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=a&X-Amz-Date=b&"
                      "X-Amz-Expires=1&X-Amz-SignedHeaders=host&X-Amz-Signature=c";
    is_int(verify("GET", alg, h, &a), S3_ERR_NOT_IMPLEMENTED, "presigned SigV4a");
    const char *nohost =
        "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
        "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
        "X-Amz-Expires=86400&X-Amz-SignedHeaders=range&X-Amz-Signature=" SIG_PRESIGN;
    const char *hr[] = {HOST, "range: bytes=0-1", NULL};
    is_int(verify("GET", nohost, hr, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "presigned without host signed");
    const char *date = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
                       "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=2013-05-24&"
                       "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG_PRESIGN;
    is_int(verify("GET", date, h, &a), S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR,
           "presigned bad date");
    const char *bad_sig = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
                          "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
                          "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
                          "beeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    is_int(verify("GET", bad_sig, h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH, "presigned tampered");
}

/* Canonicalisation rules, with the canonical request written out by hand. */
static void test_canonical_rules(void)
{
    const char *cr = "GET\n"
                     "/a%20b/c~d/%21/%2B//./x\n"
                     "acl=&list-type=2&prefix=a%2Fb%20c&z=1&z=2\n"
                     "host:examplebucket.s3.amazonaws.com\n"
                     "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
                     "x-amz-date:20130524T000000Z\n"
                     "x-amz-meta-m:a b c,d\n"
                     "\n"
                     "host;x-amz-content-sha256;x-amz-date;x-amz-meta-m\n"
                     "UNSIGNED-PAYLOAD";
    char sig[65], authz[512];
    struct s3_auth a;

    sign(cr, "20130524T000000Z", sig);
    snprintf(authz, sizeof(authz),
             "authorization: AWS4-HMAC-SHA256 " CRED
             ",SignedHeaders=x-amz-meta-m;host;x-amz-date;x-amz-content-sha256,Signature=%s",
             sig);
    const char *h[] = {HOST,
                       "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                       "x-amz-date: 20130524T000000Z",
                       "x-amz-meta-m:   a   b \t c  ",
                       "x-amz-meta-m: d",
                       authz,
                       NULL};
    is_int(verify("GET", "/a%20b/c%7Ed/!/+//./x?z=2&prefix=a/b%20c&acl&list-type=2&z=1&", h, &a),
           S3_OK, "decode, re-encode, sort, trim, collapse, join, unsorted SignedHeaders");
    is_int(a.payload, S3_PAYLOAD_UNSIGNED, "UNSIGNED-PAYLOAD");
    is_int(verify("GET", "/a%20b/c~d/!/+/./x?z=2&prefix=a/b%20c&acl&list-type=2&z=1", h, &a),
           S3_ERR_SIGNATURE_DOES_NOT_MATCH, "no path normalisation (// kept)");
    is_int(verify("GET", "/a%2", h, &a), S3_ERR_INVALID_ARGUMENT, "bad escape in the path");

    /* Date instead of x-amz-date; an empty path is '/'. */
    const char *cr2 = "GET\n/\n\n"
                      "date:Fri, 24 May 2013 00:00:00 GMT\n"
                      "host:examplebucket.s3.amazonaws.com\n"
                      "x-amz-content-sha256:" EMPTY_HASH "\n\n"
                      "date;host;x-amz-content-sha256\n" EMPTY_HASH;
    sign(cr2, "20130524T000000Z", sig);
    snprintf(authz, sizeof(authz),
             "authorization: AWS4-HMAC-SHA256 " CRED
             ",SignedHeaders=date;host;x-amz-content-sha256,Signature=%s",
             sig);
    const char *h2[] = {"date: Fri, 24 May 2013 00:00:00 GMT", HOST,
                        "x-amz-content-sha256: " EMPTY_HASH, authz, NULL};
    is_int(verify("GET", "", h2, &a), S3_OK, "Date header when x-amz-date is absent");
    is_str(a.amz_date, "20130524T000000Z", "amz date from Date");
}

/* kSigning computed the plain way with OpenSSL's one-shot HMAC, for any secret length
 * (the HMAC key "AWS4" + secret passes the 64-byte block size from 61 characters on). */
static void reference_signing_key(const char *secret, unsigned char out[32])
{
    char k[512];
    unsigned char a[32], b[32];
    size_t n;

    snprintf(k, sizeof(k), "AWS4%s", secret);
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k, strlen(k), (const unsigned char *)"20130524",
              8, a, sizeof(a), &n);
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, a, 32, (const unsigned char *)"us-east-1", 9, b,
              sizeof(b), &n);
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, b, 32, (const unsigned char *)"s3", 2, a,
              sizeof(a), &n);
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, a, 32, (const unsigned char *)"aws4_request", 12,
              out, 32, &n);
}

static void test_signing_key_any_secret_length(void)
{
    static const size_t lens[] = {0, 1, 40, 60, 61, 156, 157, 300};
    char secret[301];
    unsigned char got[32], want[32];

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (size_t k = 0; k < lens[i]; k++)
            secret[k] = (char)('a' + k % 26);
        secret[lens[i]] = '\0';
        s3_sigv4_signing_key(secret, "20130524", "us-east-1", got);
        reference_signing_key(secret, want);
        ok(memcmp(got, want, 32) == 0, "signing key matches a plain HMAC chain");
    }
}

/* A path, a query and a header value each longer than the buffers the canonical request is
 * streamed through, with more parameters than fit on the stack. */
static void test_long_parts_canonicalised(void)
{
    char path[2600], target[6000], value[3200], want_value[3200], hv[3300], sig[65];
    static char cr[16000], authz[4600];
    struct s3_auth a;
    size_t n = 0, m = 0;

    /* path: 800 escaped 'A's decode to 800 'A's */
    path[n++] = '/';
    for (int i = 0; i < 800; i++) {
        memcpy(path + n, "%41", 3);
        n += 3;
    }
    path[n] = '\0';
    /* query: 40 parameters, sent in reverse order, with values needing encoding */
    n = (size_t)snprintf(target, sizeof(target), "%s?", path);
    for (int i = 39; i >= 0; i--)
        n += (size_t)snprintf(target + n, sizeof(target) - n, "%sp%02d=v%d value/with space",
                              i == 39 ? "" : "&", i, i);
    /* a header value of 3000 bytes with runs of blanks to collapse */
    n = m = 0;
    for (int i = 0; i < 600; i++) {
        memcpy(value + n, "ab \t ", 5);
        n += 5;
        memcpy(want_value + m, "ab ", 3);
        m += 3;
    }
    value[n] = '\0';
    want_value[m - 1] = '\0'; /* trailing blanks trimmed */
    snprintf(hv, sizeof(hv), "x-amz-meta-long: %s", value);

    n = (size_t)snprintf(cr, sizeof(cr), "GET\n/");
    for (int i = 0; i < 800; i++)
        cr[n++] = 'A';
    cr[n++] = '\n';
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(cr + n, sizeof(cr) - n, "%sp%02d=v%d%%20value%%2Fwith%%20space",
                              i == 0 ? "" : "&", i, i);
    snprintf(cr + n, sizeof(cr) - n,
             "\nhost:examplebucket.s3.amazonaws.com\n"
             "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
             "x-amz-date:20130524T000000Z\n"
             "x-amz-meta-long:%s\n\n"
             "host;x-amz-content-sha256;x-amz-date;x-amz-meta-long\n"
             "UNSIGNED-PAYLOAD",
             want_value);
    sign(cr, "20130524T000000Z", sig);
    snprintf(authz, sizeof(authz),
             "authorization: AWS4-HMAC-SHA256 " CRED
             ",SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-long,Signature=%s",
             sig);
    const char *h[] = {
        HOST, "x-amz-content-sha256: UNSIGNED-PAYLOAD", "x-amz-date: 20130524T000000Z", hv, authz,
        NULL};
    is_int(verify("GET", target, h, &a), S3_OK, "long path, query and header value");
    target[strlen(target) - 1] = 'X';
    is_int(verify("GET", target, h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH, "every byte counts");
}

/* A presigned URL whose query is longer than the stack buffer its parameters decode into. */
static void test_presigned_long_query(void)
{
    static char target[6000], cr[6000];
    char sig[65];
    const char *h[] = {HOST, NULL};
    struct s3_auth a;
    size_t n = 0, m = 0;

    /* sorted: 'X' sorts before 'a' */
    m = (size_t)snprintf(cr, sizeof(cr),
                         "GET\n/test.txt\n"
                         "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
                         "%%2F20130524%%2Fus-east-1%%2Fs3%%2Faws4_request&X-Amz-Date="
                         "20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host");
    n = (size_t)snprintf(target, sizeof(target), "/test.txt?");
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(target + n, sizeof(target) - n, "a%02d=%050d&", i, i);
        m += (size_t)snprintf(cr + m, sizeof(cr) - m, "&a%02d=%050d", i, i);
    }
    snprintf(cr + m, sizeof(cr) - m,
             "\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
    sign(cr, "20130524T000000Z", sig);
    snprintf(target + n, sizeof(target) - n,
             "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AKID
             "%%2F20130524%%2Fus-east-1%%2Fs3%%2Faws4_request&X-Amz-Date=20130524T000000Z&"
             "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=%s",
             sig);
    ok(strlen(target) > 2048, "query longer than the stack buffer");
    is_int(verify_at("GET", target, h, T0 + 60, &a), S3_OK, "long presigned query verifies");
    is_int(a.kind, S3_AUTH_V4_QUERY, "kind is query");
}

static void test_header_refusals(void)
{
    const char *good =
        "authorization: AWS4-HMAC-SHA256 " CRED
        ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE;
    const char *h[] = {HOST,
                       "range: bytes=0-9",
                       "x-amz-content-sha256: " EMPTY_HASH,
                       "x-amz-date: 20130524T000000Z",
                       good,
                       NULL};
    struct s3_auth a;

    is_int(verify_at("GET", "/test.txt", h, T0 + 900, &a), S3_OK, "skew of 900 s allowed");
    is_int(verify_at("GET", "/test.txt", h, T0 + 901, &a), S3_ERR_REQUEST_TIME_TOO_SKEWED,
           "skew of 901 s refused");
    is_int(verify_at("GET", "/test.txt", h, T0 - 901, &a), S3_ERR_REQUEST_TIME_TOO_SKEWED,
           "skew in the future refused");
    is_int(verify("GET", "/test.txt2", h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH, "path signed");
    is_int(verify("PUT", "/test.txt", h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH, "method signed");
    ok(a.user == NULL && a.seed_signature[0] == '\0', "nothing left in out on failure");

    const char *tampered[] = {HOST,
                              "range: bytes=0-9",
                              "x-amz-content-sha256: " EMPTY_HASH,
                              "x-amz-date: 20130524T000000Z",
                              "authorization: AWS4-HMAC-SHA256 " CRED
                              ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature="
                              "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb42",
                              NULL};
    is_int(verify("GET", "/test.txt", tampered, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "tampered signature");
    const char *range2[] = {HOST,
                            "range: bytes=0-10",
                            "x-amz-content-sha256: " EMPTY_HASH,
                            "x-amz-date: 20130524T000000Z",
                            good,
                            NULL};
    is_int(verify("GET", "/test.txt", range2, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "tampered signed header");
    const char *missing[] = {HOST, "x-amz-content-sha256: " EMPTY_HASH,
                             "x-amz-date: 20130524T000000Z", good, NULL};
    is_int(verify("GET", "/test.txt", missing, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "signed header missing from the request");
    const char *extra[] = {HOST,
                           "range: bytes=0-9",
                           "x-amz-content-sha256: " EMPTY_HASH,
                           "x-amz-date: 20130524T000000Z",
                           "x-amz-meta-a: 1",
                           good,
                           NULL};
    is_int(verify("GET", "/test.txt", extra, &a), S3_ERR_ACCESS_DENIED, "unsigned x-amz header");
    is_str(last_msg, "There were headers present in the request which were not signed",
           "unsigned header message");
    const char *unsigned_ok[] = {HOST,
                                 "range: bytes=0-9",
                                 "x-amz-content-sha256: " EMPTY_HASH,
                                 "x-amz-date: 20130524T000000Z",
                                 "user-agent: x",
                                 good,
                                 NULL};
    is_int(verify("GET", "/test.txt", unsigned_ok, &a), S3_OK, "other headers may go unsigned");

    const char *unknown[] = {
        HOST, "x-amz-content-sha256: " EMPTY_HASH, "x-amz-date: 20130524T000000Z",
        "authorization: AWS4-HMAC-SHA256 Credential=AKIDNOBODY/" SCOPE
        ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
        NULL};
    is_int(verify("GET", "/test.txt", unknown, &a), S3_ERR_INVALID_ACCESS_KEY_ID, "unknown key");

    const char *region[] = {
        HOST, "x-amz-content-sha256: " EMPTY_HASH, "x-amz-date: 20130524T000000Z",
        "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-west-2/s3/aws4_request"
        ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
        NULL};
    is_int(verify("GET", "/test.txt", region, &a), S3_ERR_AUTHORIZATION_HEADER_MALFORMED,
           "wrong region");
    ok(strstr(last_msg, "'us-west-2' is wrong; expecting 'us-east-1'") != NULL,
       "message names both regions");

    const char *nohost[] = {HOST, "x-amz-content-sha256: " EMPTY_HASH,
                            "x-amz-date: 20130524T000000Z",
                            "authorization: AWS4-HMAC-SHA256 " CRED
                            ",SignedHeaders=x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
                            NULL};
    is_int(verify("GET", "/test.txt", nohost, &a), S3_ERR_AUTHORIZATION_HEADER_MALFORMED,
           "host not signed");

    const char *scope_date[] = {
        HOST, "x-amz-content-sha256: " EMPTY_HASH, "x-amz-date: 20130524T000000Z",
        "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/20130523/us-east-1/s3/aws4_request"
        ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
        NULL};
    is_int(verify("GET", "/test.txt", scope_date, &a), S3_ERR_AUTHORIZATION_HEADER_MALFORMED,
           "scope date differs from x-amz-date");

    const char *nodate[] = {HOST, "x-amz-content-sha256: " EMPTY_HASH,
                            "authorization: AWS4-HMAC-SHA256 " CRED
                            ",SignedHeaders=host;x-amz-content-sha256,Signature=" SIG_RANGE,
                            NULL};
    is_int(verify("GET", "/test.txt", nodate, &a), S3_ERR_ACCESS_DENIED, "no date at all");
    const char *baddate[] = {
        HOST, "x-amz-content-sha256: " EMPTY_HASH, "x-amz-date: 20130532T000000Z",
        "authorization: AWS4-HMAC-SHA256 " CRED
        ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
        NULL};
    is_int(verify("GET", "/test.txt", baddate, &a), S3_ERR_ACCESS_DENIED, "invalid x-amz-date");
}

static void check_content_sha(const char *value, enum s3_err want, const char *name)
{
    char hv[160];
    struct s3_auth a;

    snprintf(hv, sizeof(hv), "x-amz-content-sha256: %s", value);
    const char *h[] = {HOST, "x-amz-date: 20130524T000000Z", hv,
                       "authorization: AWS4-HMAC-SHA256 " CRED
                       ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=" SIG_RANGE,
                       NULL};
    is_int(verify("PUT", "/k", h, &a), want, name);
}

static void test_content_sha256_values(void)
{
    const char *nosha[] = {HOST, "x-amz-date: 20130524T000000Z",
                           "authorization: AWS4-HMAC-SHA256 " CRED
                           ",SignedHeaders=host;x-amz-date,Signature=" SIG_RANGE,
                           NULL};
    struct s3_auth a;

    is_int(verify("PUT", "/k", nosha, &a), S3_ERR_INVALID_REQUEST, "x-amz-content-sha256 missing");
    check_content_sha("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                      S3_ERR_INVALID_ARGUMENT, "uppercase hex refused");
    check_content_sha("e3b0c442", S3_ERR_INVALID_ARGUMENT, "short hex refused");
    check_content_sha("unsigned-payload", S3_ERR_INVALID_ARGUMENT, "lowercase keyword refused");
    check_content_sha("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", S3_ERR_NOT_IMPLEMENTED,
                      "SigV4a streaming not implemented");
    check_content_sha("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER", S3_ERR_NOT_IMPLEMENTED,
                      "SigV4a streaming trailer not implemented");
    /* Valid forms get as far as the signature. */
    check_content_sha("STREAMING-UNSIGNED-PAYLOAD-TRAILER", S3_ERR_SIGNATURE_DOES_NOT_MATCH,
                      "unsigned trailer form accepted");
    check_content_sha("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", S3_ERR_SIGNATURE_DOES_NOT_MATCH,
                      "signed trailer form accepted");
}

static void check_malformed(const char *authz, enum s3_err want, const char *name)
{
    struct s3_auth a;
    const char *h[] = {HOST,
                       "range: bytes=0-9",
                       "x-amz-content-sha256: " EMPTY_HASH,
                       "x-amz-date: 20130524T000000Z",
                       authz,
                       NULL};
    is_int(verify("GET", "/test.txt", h, &a), want, name);
}

static void test_malformed_authorization(void)
{
    const enum s3_err m = S3_ERR_AUTHORIZATION_HEADER_MALFORMED;
    const char *sh = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date";

    char buf[512];
    check_malformed("authorization: AWS4-HMAC-SHA256", m, "algorithm alone");
    check_malformed("authorization: AWS4-HMAC-SHA256 " CRED ",SignedHeaders=host", m,
                    "no Signature");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 " CRED ",%s," CRED ",Signature=" SIG_RANGE, sh);
    check_malformed(buf, m, "repeated Credential");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 " CRED ",%s,Foo=1,Signature=" SIG_RANGE, sh);
    check_malformed(buf, m, "unknown component");
    snprintf(buf, sizeof(buf), "authorization: AWS4-HMAC-SHA256 " CRED ",%s,,Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "empty component");
    snprintf(buf, sizeof(buf), "authorization: AWS4-HMAC-SHA256 " CRED ",%s,Signature", sh);
    check_malformed(buf, m, "component without =");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3,%s,"
             "Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "credential with four parts");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/"
             "aws4_request/x,%s,Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "credential with six parts");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/"
             "aws4_request,%s,Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "empty access key");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/ec2/"
             "aws4_request,%s,Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "service not s3");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/20130524/us-east-1/s3/"
             "aws5_request,%s,Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "bad terminator");
    snprintf(buf, sizeof(buf),
             "authorization: AWS4-HMAC-SHA256 Credential=" AKID "/2013052x/us-east-1/s3/"
             "aws4_request,%s,Signature=" SIG_RANGE,
             sh);
    check_malformed(buf, m, "bad credential date");
    snprintf(buf, sizeof(buf), "authorization: AWS4-HMAC-SHA256 " CRED ",%s,Signature=abc", sh);
    check_malformed(buf, m, "short signature");
    snprintf(buf, sizeof(buf), "authorization: AWS4-HMAC-SHA256 " CRED ",%s,Signature=%.63sz", sh,
             SIG_RANGE);
    check_malformed(buf, m, "non-hex signature");
    check_malformed("authorization: AWS4-HMAC-SHA256 " CRED ",SignedHeaders=,Signature=" SIG_RANGE,
                    m, "empty SignedHeaders");
    check_malformed("authorization: AWS4-HMAC-SHA256 " CRED
                    ",SignedHeaders=host;;range,Signature=" SIG_RANGE,
                    m, "empty signed header name");
    check_malformed("authorization: AWS4-HMAC-SHA256 " CRED
                    ",SignedHeaders=host;host;range,Signature=" SIG_RANGE,
                    m, "repeated signed header name");
    check_malformed("authorization: AWS4-HMAC-SHA256 " CRED
                    ",SignedHeaders=Host;range,Signature=" SIG_RANGE,
                    m, "uppercase signed header name");
    check_malformed("authorization: AWS4-ECDSA-P256-SHA256 Credential=x", S3_ERR_NOT_IMPLEMENTED,
                    "SigV4a header");
    check_malformed("authorization: Bearer abc", S3_ERR_INVALID_ARGUMENT, "unknown scheme");
    check_malformed("authorization: AWS4-HMAC-SHA256x " CRED, S3_ERR_INVALID_ARGUMENT,
                    "algorithm prefix only");
}

static void test_form_selection(void)
{
    const char *none[] = {HOST, NULL};
    const char *authz[] = {HOST, "authorization: AWS4-HMAC-SHA256 " CRED, NULL};
    const char *two[] = {HOST, "authorization: AWS a:b", "authorization: AWS a:b", NULL};
    const char *trailer[] = {HOST, "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                             NULL};
    const char *signed_anon[] = {HOST, "x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                 NULL};
    struct s3_auth a;

    is_int(verify("GET", "/b/k", none, &a), S3_OK, "no credentials: OK");
    is_int(a.kind, S3_AUTH_ANONYMOUS, "... anonymous");
    ok(a.user == NULL, "... no user");
    is_int(verify("PUT", "/b/k", trailer, &a), S3_OK, "anonymous unsigned trailer");
    is_int(a.payload, S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "... payload form kept");
    is_int(verify("PUT", "/b/k", signed_anon, &a), S3_ERR_INVALID_REQUEST,
           "anonymous signed streaming refused");
    is_int(verify("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256", authz, &a),
           S3_ERR_INVALID_ARGUMENT, "header and query auth together");
    is_int(verify("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&AWSAccessKeyId=x", none, &a),
           S3_ERR_INVALID_ARGUMENT, "v4 and v2 query together");
    is_int(verify("GET", "/b/k", two, &a), S3_ERR_INVALID_ARGUMENT, "two Authorization headers");
    cfg.sigv2 = false;
    const char *v2[] = {HOST, "date: Fri, 24 May 2013 00:00:00 GMT", "authorization: AWS a:b",
                        NULL};
    is_int(verify("GET", "/b/k", v2, &a), S3_ERR_INVALID_REQUEST, "SigV2 header when disabled");
    is_int(verify("GET", "/b/k?AWSAccessKeyId=a&Expires=1&Signature=x", none, &a),
           S3_ERR_INVALID_REQUEST, "SigV2 query when disabled");
    cfg.sigv2 = true;
}

int main(void)
{
    subtest(test_signing_key_matches_aws_example);
    subtest(test_get_object_with_range);
    subtest(test_get_bucket_lifecycle);
    subtest(test_list_objects);
    subtest(test_put_object_dollar_key);
    subtest(test_streaming_seed_signature);
    subtest(test_presigned_url);
    subtest(test_presigned_refusals);
    subtest(test_canonical_rules);
    subtest(test_signing_key_any_secret_length);
    subtest(test_long_parts_canonicalised);
    subtest(test_presigned_long_query);
    subtest(test_header_refusals);
    subtest(test_content_sha256_values);
    subtest(test_malformed_authorization);
    subtest(test_form_selection);
    return done_testing();
}

/* The client-side SigV4 signer: AWS's published examples, and a round trip through the
 * server's verifier (sigv4.c) for paths and queries a worker sends. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway/span.h"
#include "s3api/auth.h"
#include "s3api/s3api.h"
#include "tests/unit/tap.h"

#define AKID         "AKIAIOSFODNN7EXAMPLE"
#define SECRET       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define T0           ((time_t)1369353600) /* 20130524T000000Z */

static const struct s3_user users[] = {{"alice", AKID, SECRET}};
static const struct s3_auth_config cfg = {
    .region = "us-east-1",
    .users = users,
    .n_users = 1,
    .max_skew_s = 900,
    .max_presign_s = 604800,
};

static const char *signature_of(const struct s3_signed_headers *h)
{
    const char *s = strstr(h->authorization, "Signature=");
    return s != NULL ? s + 10 : "";
}

/* AWS's "GET Bucket Lifecycle" and "GET Bucket (List Objects)" examples sign exactly host,
 * x-amz-content-sha256 and x-amz-date (tech-stack §3.12). */
static void test_sign_matches_aws_examples(void)
{
    struct s3_signed_headers h;
    s3_sign_v4(AKID, SECRET, "us-east-1", "GET", "examplebucket.s3.amazonaws.com", "/", "lifecycle",
               EMPTY_SHA256, T0, &h);
    is_str(h.amz_date, "20130524T000000Z", "x-amz-date");
    is_str(h.content_sha256, EMPTY_SHA256, "x-amz-content-sha256 as given");
    is_str(h.authorization,
           "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
           "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
           "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
           "GET /?lifecycle: a bare parameter signs as lifecycle=");

    s3_sign_v4(AKID, SECRET, "us-east-1", "GET", "examplebucket.s3.amazonaws.com", "/",
               "prefix=J&max-keys=2", EMPTY_SHA256, T0, &h);
    is_str(signature_of(&h), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
           "GET /?max-keys=2&prefix=J, parameters sorted");
}

/* The signed request as the server sees it. */
static enum s3_err verify_signed(const char *method, const char *host, const char *path,
                                 const char *query, const struct s3_signed_headers *h,
                                 struct s3_auth *out)
{
    struct gw_header hs[] = {
        {span_from("host"), span_from(host)},
        {span_from("x-amz-content-sha256"), span_from(h->content_sha256)},
        {span_from("x-amz-date"), span_from(h->amz_date)},
        {span_from("authorization"), span_from(h->authorization)},
    };
    struct s3_auth_req req = {
        .method = span_from(method),
        .path = span_from(path),
        .query = span_from(query),
        .headers = hs,
        .n_headers = 4,
        .now = T0 + 60,
    };
    char msg[256] = "";
    memset(out, 0, sizeof(*out));
    enum s3_err e =
        s3_sigv4_verify_header(&cfg, &req, span_from(h->authorization), out, msg, sizeof(msg));
    if (e != S3_OK)
        printf("# verify: %s\n", msg);
    return e;
}

static void test_sign_round_trips_through_the_verifier(void)
{
    static const struct {
        const char *method, *path, *query;
    } cases[] = {
        {"GET", "/", ""},
        {"PUT", "/bucket/a%20b.txt", ""},
        {"GET", "/bucket", "list-type=2&prefix=a%2Fb&delimiter=%2F"},
        {"POST", "/bucket/key", "uploads"},
        {"GET", "/bucket", "z=1&a=2&a=1&flag"},
        {"DELETE", "/bucket/dir/%E2%82%AC.bin", "uploadId=abc%3D"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct s3_signed_headers h;
        struct s3_auth a;
        s3_sign_v4(AKID, SECRET, "us-east-1", cases[i].method, "127.0.0.1:9000", cases[i].path,
                   cases[i].query, NULL, T0, &h);
        char name[128];
        snprintf(name, sizeof(name), "%s %s?%s verifies", cases[i].method, cases[i].path,
                 cases[i].query);
        is_int(
            verify_signed(cases[i].method, "127.0.0.1:9000", cases[i].path, cases[i].query, &h, &a),
            S3_OK, name);
        ok(a.user == &users[0] && a.payload == S3_PAYLOAD_UNSIGNED, "as alice, unsigned payload");
    }

    struct s3_signed_headers h;
    struct s3_auth a;
    s3_sign_v4(AKID, SECRET, "us-east-1", "PUT", "h", "/b/k", "", EMPTY_SHA256, T0, &h);
    is_int(verify_signed("PUT", "h", "/b/k", "", &h, &a), S3_OK, "a given payload hash verifies");
    is_int(a.payload, S3_PAYLOAD_SHA256, "and is a signed payload");

    s3_sign_v4(AKID, SECRET, "us-east-1", "GET", "h", "/b/k", "", NULL, T0, &h);
    is_str(h.content_sha256, "UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD by default");
    is_int(verify_signed("GET", "h", "/b/other", "", &h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "another path does not verify");
    is_int(verify_signed("GET", "h", "/b/k", "x=1", &h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "another query does not verify");
    is_int(verify_signed("GET", "other", "/b/k", "", &h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "another host does not verify");
    s3_sign_v4(AKID, "wrong", "us-east-1", "GET", "h", "/b/k", "", NULL, T0, &h);
    is_int(verify_signed("GET", "h", "/b/k", "", &h, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "a wrong secret does not verify");
}

int main(void)
{
    subtest(test_sign_matches_aws_examples);
    subtest(test_sign_round_trips_through_the_verifier);
    return done_testing();
}

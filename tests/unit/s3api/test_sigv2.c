/* SigV2 header and query verification against the AWS RESTAuthentication examples, the
 * CanonicalizedResource rules, and the refusals. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "gateway/span.h"
#include "s3api/auth.h"
#include "s3api/encode.h"
#include "tests/unit/tap.h"

#define AKID        "AKIAIOSFODNN7EXAMPLE"
#define SECRET      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T_GET       1175024202 /* Tue, 27 Mar 2007 19:36:42 +0000 */
#define MAX_HEADERS 96

static struct s3_user users[] = {
    {.name = "example", .access_key = AKID, .secret_key = SECRET},
};

static struct s3_auth_config cfg = {
    .region = "us-east-1",
    .users = users,
    .n_users = 1,
    .sigv2 = true,
    .max_skew_s = 900,
    .max_presign_s = 604800,
};

static char last_msg[256];

static enum s3_err verify(const char *method, const char *target, const char *vhost,
                          const char *const *lines, time_t now, struct s3_auth *out)
{
    struct gw_header h[MAX_HEADERS];
    size_t n = 0;
    const char *q = strchr(target, '?');
    struct s3_auth_req req = {
        .method = span_from(method),
        .path = q != NULL ? span_make(target, (size_t)(q - target)) : span_from(target),
        .query = q != NULL ? span_from(q + 1) : span_make("", 0),
        .vhost_bucket = vhost,
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
    if (strstr(last_msg, SECRET) != NULL)
        ok(0, "message leaks the secret");
    return e;
}

/* base64(HMAC-SHA1(secret, sts)), computed independently of sigv2.c. */
static void sign_v2(const char *sts, char out[29])
{
    unsigned char mac[20];
    size_t n = 0;

    EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, SECRET, strlen(SECRET), (const void *)sts,
              strlen(sts), mac, sizeof(mac), &n);
    s3_base64_encode(mac, n, out, 29);
}

static void test_object_get(void)
{
    const char *h[] = {"host: johnsmith.s3.amazonaws.com", "date: Tue, 27 Mar 2007 19:36:42 +0000",
                       "authorization: AWS " AKID ":bWq2s1WEIj+Ydj0vQ697zp+IXMU=", NULL};
    struct s3_auth a;

    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", h, T_GET, &a), S3_OK,
           "GET /photos/puppy.jpg (virtual-hosted)");
    is_int(a.kind, S3_AUTH_V2_HEADER, "kind v2 header");
    ok(a.user == &users[0], "user");
    is_int(a.payload, S3_PAYLOAD_UNSIGNED, "payload unsigned");
    is_int(verify("GET", "/photos/puppy.jpg", NULL, h, T_GET, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "bucket is part of the resource");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", h, T_GET + 901, &a),
           S3_ERR_REQUEST_TIME_TOO_SKEWED, "skew");
}

static void test_object_put(void)
{
    const char *h[] = {"content-type: image/jpeg",
                       "content-length: 94328",
                       "host: johnsmith.s3.amazonaws.com",
                       "date: Tue, 27 Mar 2007 21:15:45 +0000",
                       "authorization: AWS " AKID ":MyyxeRY7whkBe+bq8fHCL/2kKUg=",
                       NULL};
    struct s3_auth a;

    is_int(verify("PUT", "/photos/puppy.jpg", "johnsmith", h, 1175030145, &a), S3_OK,
           "PUT with Content-Type");
}

static void test_list_and_acl(void)
{
    const char *list[] = {"user-agent: Mozilla/5.0", "host: johnsmith.s3.amazonaws.com",
                          "date: Tue, 27 Mar 2007 19:42:41 +0000",
                          "authorization: AWS " AKID ":htDYFYduRNen8P9ZfE/s9SuKy0U=", NULL};
    const char *acl[] = {"host: johnsmith.s3.amazonaws.com",
                         "date: Tue, 27 Mar 2007 19:44:46 +0000",
                         "authorization: AWS " AKID ":c2WLPFtWHVgbEmeEG93a4cG37dM=", NULL};
    struct s3_auth a;

    is_int(verify("GET", "/?prefix=photos&max-keys=50&marker=puppy", "johnsmith", list, 1175024561,
                  &a),
           S3_OK, "list: plain parameters are not signed");
    is_int(verify("GET", "/?acl", "johnsmith", acl, 1175024686, &a), S3_OK,
           "?acl is a sub-resource");
    is_int(verify("GET", "/", "johnsmith", acl, 1175024686, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "... and is signed");
}

static void test_delete_with_amz_date(void)
{
    const char *h[] = {"user-agent: dotnet",
                       "host: s3.amazonaws.com",
                       "date: Tue, 27 Mar 2007 21:20:27 +0000",
                       "x-amz-date: Tue, 27 Mar 2007 21:20:26 +0000",
                       "authorization: AWS " AKID ":lx3byBScXR6KzyMaifNkardMwNk=",
                       NULL};
    struct s3_auth a;

    is_int(verify("DELETE", "/johnsmith/photos/puppy.jpg", NULL, h, 1175030426, &a), S3_OK,
           "DELETE path-style, x-amz-date in the Date line (the documentation's form)");

    /* What boto and s3cmd sign: an empty Date line and x-amz-date among the x-amz-* headers. */
    char sig[29], authz[128];
    sign_v2("DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n"
            "/johnsmith/photos/puppy.jpg",
            sig);
    snprintf(authz, sizeof(authz), "authorization: AWS " AKID ":%s", sig);
    const char *h2[] = {"host: s3.amazonaws.com", "x-amz-date: Tue, 27 Mar 2007 21:20:26 +0000",
                        authz, NULL};
    is_int(verify("DELETE", "/johnsmith/photos/puppy.jpg", NULL, h2, 1175030426, &a), S3_OK,
           "DELETE with x-amz-date among the signed x-amz-* headers");
    is_int(verify("DELETE", "/johnsmith/photos/puppy.jpg", NULL, h2, 1175030426 + 1000, &a),
           S3_ERR_REQUEST_TIME_TOO_SKEWED, "x-amz-date is the time checked");
}

static void test_upload_with_amz_headers(void)
{
    const char *h[] = {"user-agent: curl/7.15.5",
                       "host: static.johnsmith.net:8080",
                       "date: Tue, 27 Mar 2007 21:06:08 +0000",
                       "x-amz-acl: public-read",
                       "content-type: application/x-download",
                       "content-md5: 4gJE4saaMU4BqNR0kLY+lw==",
                       "x-amz-meta-reviewedby: joe@johnsmith.net",
                       "x-amz-meta-reviewedby: jane@johnsmith.net",
                       "x-amz-meta-filechecksum: 0x02661779",
                       "x-amz-meta-checksumalgorithm: crc32",
                       "content-disposition: attachment; filename=database.dat",
                       "content-encoding: gzip",
                       "content-length: 5913339",
                       "authorization: AWS " AKID ":ilyl83RwaSoYIEdixDQcA4OnAnc=",
                       NULL};
    struct s3_auth a;

    is_int(verify("PUT", "/db-backup.dat.gz", "static.johnsmith.net", h, 1175029568, &a), S3_OK,
           "upload: x-amz-* sorted, repeats joined, Content-MD5 and Content-Type signed");
}

static void test_query_auth(void)
{
    const char *h[] = {"host: johnsmith.s3.amazonaws.com", NULL};
    const char *url = "/photos/puppy.jpg?AWSAccessKeyId=" AKID
                      "&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";
    struct s3_auth a;

    is_int(verify("GET", url, "johnsmith", h, 1175139000, &a), S3_OK, "query auth verifies");
    is_int(a.kind, S3_AUTH_V2_QUERY, "kind v2 query");
    is_int(verify("GET", url, "johnsmith", h, 1175139621, &a), S3_ERR_ACCESS_DENIED,
           "expired query auth");
    is_str(last_msg, "Request has expired", "expired message");
    const char *tampered = "/photos/puppy.jpg?AWSAccessKeyId=" AKID
                           "&Expires=1175139621&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";
    is_int(verify("GET", tampered, "johnsmith", h, 1175139000, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH,
           "Expires is signed");
    is_int(verify("GET", "/photos/puppy.jpg?AWSAccessKeyId=" AKID "&Expires=1175139620",
                  "johnsmith", h, 1175139000, &a),
           S3_ERR_ACCESS_DENIED, "no Signature");
    is_int(verify("GET", "/photos/puppy.jpg?AWSAccessKeyId=" AKID "&Expires=soon&Signature=x",
                  "johnsmith", h, 1175139000, &a),
           S3_ERR_ACCESS_DENIED, "bad Expires");
    is_int(verify("GET", "/photos/puppy.jpg?AWSAccessKeyId=NOBODY&Expires=1175139620&Signature=x",
                  "johnsmith", h, 1175139000, &a),
           S3_ERR_INVALID_ACCESS_KEY_ID, "unknown key in query");
}

static void test_subresources_and_overrides(void)
{
    const char *sts = "GET\n\n\n1175139620\n"
                      "/johnsmith/photos/puppy.jpg?response-content-disposition=attachment; "
                      "filename=a b&response-content-type=text/plain&versionId=3";
    char sig[29], url[512];
    struct s3_auth a;
    const char *h[] = {"host: johnsmith.s3.amazonaws.com", NULL};

    sign_v2(sts, sig);
    struct span s = span_from(sig);
    char enc[64];
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (sig[i] == '+' || sig[i] == '/' || sig[i] == '=')
            o += (size_t)snprintf(enc + o, sizeof(enc) - o, "%%%02X", (unsigned char)sig[i]);
        else
            enc[o++] = sig[i];
    }
    enc[o] = '\0';
    snprintf(
        url, sizeof(url),
        "/photos/puppy.jpg?versionId=3&response-content-type=text%%2Fplain&prefix=x&"
        "response-content-disposition=attachment%%3B%%20filename%%3Da%%20b&AWSAccessKeyId=" AKID
        "&Expires=1175139620&Signature=%s",
        enc);
    is_int(verify("GET", url, "johnsmith", h, 1175139000, &a), S3_OK,
           "sub-resources sorted with decoded values; others left out");
}

/* More x-amz-* headers than the sorter keeps on the stack and a string to sign longer than
 * its stack buffer; parameter names longer than any sub-resource are left out. */
static void test_long_string_to_sign(void)
{
    static char sts[8000], values[70][64], lines[72][64], big_line[3100], authz[128];
    const char *h[MAX_HEADERS];
    char sig[29];
    size_t n = 0, k = 0;
    struct s3_auth a;

    n = (size_t)snprintf(sts, sizeof(sts), "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n");
    h[k++] = "date: Tue, 27 Mar 2007 19:36:42 +0000";
    for (int i = 0; i < 70; i++) { /* sent in reverse order, signed sorted */
        snprintf(values[i], sizeof(values[i]), "v%d", i);
        n += (size_t)snprintf(sts + n, sizeof(sts) - n, "x-amz-meta-h%02d:%s\n", i, values[i]);
    }
    for (int i = 0; i < 70; i++) {
        snprintf(lines[i], sizeof(lines[i]), "x-amz-meta-h%02d: v%d", 69 - i, 69 - i);
        h[k++] = lines[i];
    }
    memset(big_line, 'z', sizeof(big_line) - 1);
    big_line[sizeof(big_line) - 1] = '\0';
    memcpy(big_line, "x-amz-meta-z: ", 14);
    h[k++] = big_line;
    n += (size_t)snprintf(sts + n, sizeof(sts) - n, "x-amz-meta-z:%s\n/b/k?acl", big_line + 14);
    sign_v2(sts, sig);
    snprintf(authz, sizeof(authz), "authorization: AWS " AKID ":%s", sig);
    h[k++] = authz;
    h[k] = NULL;
    ok(strlen(sts) > 2048, "string to sign longer than the stack buffer");
    is_int(verify("GET", "/b/k?a-parameter-name-longer-than-any-sub-resource=1&acl", NULL, h, T_GET,
                  &a),
           S3_OK, "many and long x-amz-* headers signed");
    is_int(verify("GET", "/b/k?a-parameter-name-longer-than-any-sub-resource%zz=1&acl", NULL, h,
                  T_GET, &a),
           S3_ERR_INVALID_ARGUMENT, "a bad escape in a long name is still refused");
}

static void test_header_refusals(void)
{
    struct s3_auth a;
    const char *tampered[] = {"host: johnsmith.s3.amazonaws.com",
                              "date: Tue, 27 Mar 2007 19:36:42 +0000",
                              "authorization: AWS " AKID ":bWq2s1WEIj+Ydj0vQ697zp+IXMA=", NULL};
    const char *badb64[] = {"host: johnsmith.s3.amazonaws.com",
                            "date: Tue, 27 Mar 2007 19:36:42 +0000",
                            "authorization: AWS " AKID ":not base64!", NULL};
    const char *unknown[] = {"host: johnsmith.s3.amazonaws.com",
                             "date: Tue, 27 Mar 2007 19:36:42 +0000",
                             "authorization: AWS NOBODY:bWq2s1WEIj+Ydj0vQ697zp+IXMU=", NULL};
    const char *nodate[] = {"host: johnsmith.s3.amazonaws.com",
                            "authorization: AWS " AKID ":bWq2s1WEIj+Ydj0vQ697zp+IXMU=", NULL};
    const char *baddate[] = {"host: johnsmith.s3.amazonaws.com", "date: yesterday",
                             "authorization: AWS " AKID ":bWq2s1WEIj+Ydj0vQ697zp+IXMU=", NULL};
    const char *nocolon[] = {"host: johnsmith.s3.amazonaws.com",
                             "date: Tue, 27 Mar 2007 19:36:42 +0000", "authorization: AWS " AKID,
                             NULL};
    const char *emptysig[] = {"host: johnsmith.s3.amazonaws.com",
                              "date: Tue, 27 Mar 2007 19:36:42 +0000",
                              "authorization: AWS " AKID ":", NULL};

    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", tampered, T_GET, &a),
           S3_ERR_SIGNATURE_DOES_NOT_MATCH, "tampered signature");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", badb64, T_GET, &a),
           S3_ERR_SIGNATURE_DOES_NOT_MATCH, "signature not base64");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", unknown, T_GET, &a),
           S3_ERR_INVALID_ACCESS_KEY_ID, "unknown key");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", nodate, T_GET, &a), S3_ERR_ACCESS_DENIED,
           "no Date");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", baddate, T_GET, &a),
           S3_ERR_ACCESS_DENIED, "bad Date");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", nocolon, T_GET, &a),
           S3_ERR_INVALID_ARGUMENT, "no colon");
    is_int(verify("GET", "/photos/puppy.jpg", "johnsmith", emptysig, T_GET, &a),
           S3_ERR_INVALID_ARGUMENT, "empty signature");
}

static void test_http_dates(void)
{
    time_t t;

    is_int(s3_auth_parse_http_date(span_from("Tue, 27 Mar 2007 19:36:42 +0000"), &t), 0,
           "numeric zone");
    is_int(t, T_GET, "numeric zone value");
    is_int(s3_auth_parse_http_date(span_from("Tue, 27 Mar 2007 21:36:42 +0200"), &t), 0,
           "offset zone");
    is_int(t, T_GET, "offset applied");
    is_int(s3_auth_parse_http_date(span_from("Fri, 24 May 2013 00:00:00 GMT"), &t), 0, "GMT");
    is_int(t, 1369353600, "GMT value");
    is_int(s3_auth_parse_http_date(span_from("Thu, 29 Feb 2024 12:00:00 GMT"), &t), 0, "leap day");
    is_int(s3_auth_parse_http_date(span_from("Thu, 29 Feb 2023 12:00:00 GMT"), &t), -1,
           "no leap day in 2023");
    is_int(s3_auth_parse_http_date(span_from("Fri, 24 Foo 2013 00:00:00 GMT"), &t), -1, "month");
    is_int(s3_auth_parse_http_date(span_from("Fri, 24 May 2013 24:00:00 GMT"), &t), -1, "hour");
    is_int(s3_auth_parse_http_date(span_from("Fri, 24 May 2013 00:00:00 PST"), &t), -1, "zone");
    is_int(s3_auth_parse_http_date(span_from("Fri, 24 May 2013 00:00:00"), &t), -1, "no zone");
    is_int(s3_auth_parse_amz_date(span_from("20130524T000000Z"), &t), 0, "amz date");
    is_int(t, 1369353600, "amz value");
    is_int(s3_auth_parse_amz_date(span_from("20130524T000000"), &t), -1, "amz without Z");
    is_int(s3_auth_parse_amz_date(span_from("20131324T000000Z"), &t), -1, "amz month 13");
}

int main(void)
{
    subtest(test_object_get);
    subtest(test_object_put);
    subtest(test_list_and_acl);
    subtest(test_delete_with_amz_date);
    subtest(test_upload_with_amz_headers);
    subtest(test_query_auth);
    subtest(test_subresources_and_overrides);
    subtest(test_long_string_to_sign);
    subtest(test_header_refusals);
    subtest(test_http_dates);
    return done_testing();
}

/* Credentials for front ends that are not S3 (the admin API on the same port): HTTP Basic
 * with a configured user's access key and secret, or SigV4 (header or presigned query)
 * checked by auth.c/sigv4.c exactly as for S3 requests. SigV2 is not accepted here. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "gateway/h1.h"
#include "s3api/auth.h"
#include "s3api/encode.h"
#include "s3api/error.h"
#include "s3api/request.h"
#include "s3api/s3api.h"

#define BASIC_MAX_BYTES 512 /* decoded "access:secret" */

static void copy_out(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void put_str(char *dst, size_t cap, const char *src)
{
    copy_out(dst, cap, src, strlen(src));
}

/* Equal strings, in time that depends on neither's content: the digests are compared. */
static bool secret_eq(const char *a, size_t a_len, const char *b)
{
    char ha[65], hb[65];
    s3_sha256_hex(a, a_len, ha);
    s3_sha256_hex(b, strlen(b), hb);
    bool eq = CRYPTO_memcmp(ha, hb, 64) == 0;
    OPENSSL_cleanse(ha, sizeof(ha));
    OPENSSL_cleanse(hb, sizeof(hb));
    return eq;
}

/* "Basic base64(access:secret)": the user whose keys these are, or NULL. */
static const struct s3_user *basic_user(const struct s3_api *api, struct span cred)
{
    unsigned char buf[BASIC_MAX_BYTES];
    const struct s3_user *found = NULL;
    long n = s3_base64_decode(span_trim(cred), buf, sizeof(buf));
    if (n <= 0)
        return NULL;
    const char *colon = memchr(buf, ':', (size_t)n);
    if (colon != NULL) {
        struct span access = span_make((const char *)buf, (size_t)(colon - (const char *)buf));
        const char *secret = colon + 1;
        size_t secret_len = (size_t)n - access.len - 1;
        const struct s3_user *u = s3_auth_find_user(&api->auth_cfg, access);
        if (u != NULL && u->secret_key != NULL && secret_eq(secret, secret_len, u->secret_key))
            found = u;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return found;
}

bool s3_api_authorize(struct s3_api *api, struct h1_req *req, char *user, size_t user_cap,
                      char *payload_sha256, size_t sha_cap, char *msg, size_t msg_cap)
{
    put_str(user, user_cap, "");
    put_str(payload_sha256, sha_cap, "");
    put_str(msg, msg_cap, "");

    struct span authz = span_trim(h1_req_header(req, "authorization"));
    if (authz.ptr != NULL && authz.len > 6 && strncasecmp(authz.ptr, "Basic ", 6) == 0) {
        const struct s3_user *u = basic_user(api, span_make(authz.ptr + 6, authz.len - 6));
        if (u == NULL) {
            put_str(msg, msg_cap, "The access key or secret is wrong.");
            return false;
        }
        put_str(user, user_cap, u->name != NULL ? u->name : "");
        return true;
    }

    struct span target = s3_target_origin_form(h1_req_target(req)), path;
    struct span query = span_cut(target, '?', &path);
    struct s3_auth_req areq = {
        .method = h1_req_method(req),
        .path = path,
        .query = query.ptr != NULL ? query : span_make("", 0),
        .now = time(NULL),
    };
    areq.headers = h1_req_headers(req, &areq.n_headers);
    struct s3_auth_config cfg = api->auth_cfg;
    cfg.sigv2 = false;
    struct s3_auth auth;
    char why[256] = "";
    enum s3_err err = s3_auth_verify(&cfg, &areq, &auth, why, sizeof(why));
    if (err == S3_OK && auth.kind != S3_AUTH_V4_HEADER && auth.kind != S3_AUTH_V4_QUERY) {
        put_str(msg, msg_cap, "Credentials are required (Basic or AWS4-HMAC-SHA256).");
        return false;
    }
    if (err != S3_OK) {
        snprintf(msg, msg_cap, "%s%s%s", s3_err_code(err), why[0] ? ": " : "", why);
        return false;
    }
    put_str(user, user_cap, auth.user->name != NULL ? auth.user->name : "");
    /* A presigned request that did not sign x-amz-content-sha256 has an unsigned payload. */
    struct span sha = span_trim(h1_req_header(req, "x-amz-content-sha256"));
    if (auth.payload != S3_PAYLOAD_UNSIGNED && sha.ptr != NULL)
        copy_out(payload_sha256, sha_cap, sha.ptr, sha.len);
    else
        put_str(payload_sha256, sha_cap, "UNSIGNED-PAYLOAD");
    OPENSSL_cleanse(&auth, sizeof(auth));
    return true;
}

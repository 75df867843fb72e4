/* SigV2 (legacy; accepted only with auth.sigv2 on): `Authorization: AWS AKID:sig` and the
 * AWSAccessKeyId/Expires/Signature query form, both HMAC-SHA1 over the v2 string to sign
 * (tech-stack §3.11). auth.c picks the form; SigV4 is in sigv4.c. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "gateway/xmalloc.h"
#include "s3api/auth.h"
#include "s3api/encode.h"

/* Query parameters that belong to CanonicalizedResource: the documented list plus the ones
 * botocore's and s3cmd's signers add, so every client and we agree. Sorted (bsearch). */
static const char *const subresources[] = {
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "encryption",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
};
#define N_SUBRESOURCES (sizeof(subresources) / sizeof(subresources[0]))

/* Room for any name above (the longest has 28 characters) and its NUL: a parameter whose
 * name does not fit cannot be a sub-resource. */
#define SUBRESOURCE_NAME_MAX 32

/* One HMAC-SHA1 context per thread, its digest set once: creating a context and naming the
 * digest for each request cost more than the MAC itself. */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_key;
static EVP_MAC *mac_hmac;

static void mac_ctx_free(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void mac_init(void)
{
    mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ASSERT(mac_hmac != NULL);
    ASSERT(pthread_key_create(&mac_key, mac_ctx_free) == 0);
}

static EVP_MAC_CTX *mac_ctx(void)
{
    static char digest_name[] = "SHA1"; /* OSSL_PARAM wants a non-const pointer */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };

    pthread_once(&mac_once, mac_init);
    EVP_MAC_CTX *ctx = pthread_getspecific(mac_key);
    if (ctx == NULL) {
        ctx = EVP_MAC_CTX_new(mac_hmac);
        ASSERT(ctx != NULL && EVP_MAC_CTX_set_params(ctx, params) == 1);
        ASSERT(pthread_setspecific(mac_key, ctx) == 0);
    }
    return ctx;
}

/* `msg` only ever gets fixed texts here. */
static void set_msg(char *msg, size_t cap, const char *text)
{
    snprintf(msg, cap, "%s", text);
}

/* EVP calls fail only on allocation failure or a broken provider: abort like xmalloc. */
static void hmac_sha1(const char *key, const void *data, size_t len, unsigned char out[20])
{
    EVP_MAC_CTX *ctx = mac_ctx();
    size_t n = 0;
    int rc = EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), NULL) == 1 &&
             EVP_MAC_update(ctx, data, len) == 1 && EVP_MAC_final(ctx, out, &n, 20) == 1;
    ASSERT(rc && n == 20);
}

/* The string to sign, built on the stack; only an unusually long one moves to the heap. */
struct sts_buf {
    char *p;
    size_t len, cap;
    char stack[2048];
};

static void sts_init(struct sts_buf *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
}

static void sts_add(struct sts_buf *b, const void *data, size_t n)
{
    if (n > b->cap - b->len) {
        size_t want = 2 * b->cap;
        while (want - b->len < n)
            want *= 2;
        char *p = xmalloc(want);
        memcpy(p, b->p, b->len);
        if (b->p != b->stack)
            free(b->p);
        b->p = p;
        b->cap = want;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void sts_cleanup(struct sts_buf *b)
{
    if (b->p != b->stack)
        free(b->p);
}

static int cmp_str(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

static bool is_subresource(const char *name)
{
    return bsearch(name, subresources, N_SUBRESOURCES, sizeof(subresources[0]), cmp_str) != NULL;
}

/* ---- string to sign ---- */

static struct span first_header(const struct s3_auth_req *req, const char *name)
{
    const struct gw_header *h = gw_header_find(req->headers, req->n_headers, name);
    return h != NULL ? span_trim(h->value) : span_make("", 0);
}

static int cmp_header(const void *a, const void *b)
{
    const struct gw_header *x = *(const struct gw_header *const *)a;
    const struct gw_header *y = *(const struct gw_header *const *)b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    if (c == 0)
        c = x->name.len < y->name.len ? -1 : x->name.len > y->name.len;
    if (c == 0) /* repeats keep their order (one array), for the comma-joined value */
        c = x < y ? -1 : x > y;
    return c;
}

/* CanonicalizedAmzHeaders: x-amz-* sorted by name, values trimmed, repeats joined with ','
 * (x-amz-date left out when it stands in the Date line instead). */
static void amz_headers(const struct s3_auth_req *req, bool skip_amz_date, struct sts_buf *sts)
{
    const struct gw_header *stack_hs[64];
    const struct gw_header **hs = req->n_headers <= sizeof(stack_hs) / sizeof(stack_hs[0])
                                      ? stack_hs
                                      : xmalloc(req->n_headers * sizeof(const struct gw_header *));
    size_t n = 0;

    for (size_t i = 0; i < req->n_headers; i++)
        if (span_starts_with(req->headers[i].name, "x-amz-") &&
            !(skip_amz_date && span_eq_str(req->headers[i].name, "x-amz-date")))
            hs[n++] = &req->headers[i];
    qsort(hs, n, sizeof(const struct gw_header *), cmp_header);
    for (size_t k = 0; k < n; k++) {
        struct span v = span_trim(hs[k]->value);
        if (k > 0 && span_eq(hs[k - 1]->name, hs[k]->name)) {
            sts_add(sts, ",", 1);
        } else {
            if (k > 0)
                sts_add(sts, "\n", 1);
            sts_add(sts, hs[k]->name.ptr, hs[k]->name.len);
            sts_add(sts, ":", 1);
        }
        sts_add(sts, v.ptr, v.len);
    }
    if (n > 0)
        sts_add(sts, "\n", 1);
    if (hs != stack_hs)
        free(hs);
}

struct subres {
    char *name;
    char *value; /* NULL when the parameter has no '=' */
};

static int cmp_subres(const void *a, const void *b)
{
    return strcmp(((const struct subres *)a)->name, ((const struct subres *)b)->name);
}

/* CanonicalizedResource: [/vhost-bucket]/path as sent, then the sub-resources, sorted, with
 * their decoded values. -1 on a malformed escape in the query. */
static int canonical_resource(const struct s3_auth_req *req, struct sts_buf *sts)
{
    struct span rest = req->query, piece, name;
    struct subres *subs = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    if (req->vhost_bucket != NULL) {
        sts_add(sts, "/", 1);
        sts_add(sts, req->vhost_bucket, strlen(req->vhost_bucket));
    }
    if (req->path.len == 0)
        sts_add(sts, "/", 1);
    else
        sts_add(sts, req->path.ptr, req->path.len);
    while (rest.len > 0) {
        char short_name[SUBRESOURCE_NAME_MAX];
        rest = span_cut(rest, '&', &piece);
        struct span value = span_cut(piece, '=', &name);
        /* Most parameters are no sub-resource: decode the name on the stack to find out. As a
         * C string it ends at a decoded NUL; one longer than the buffer is longer than any
         * sub-resource. */
        long name_len = s3_uri_decode_buf(name, false, short_name, sizeof(short_name) - 1);
        if (name_len < 0)
            goto out;
        short_name[(size_t)name_len < sizeof(short_name) ? (size_t)name_len
                                                         : sizeof(short_name) - 1] = '\0';
        if (!is_subresource(short_name))
            continue;
        char *dname = xstrdup(short_name);
        char *dvalue = value.ptr != NULL ? s3_uri_decode(value, false, NULL) : NULL;
        if (value.ptr != NULL && dvalue == NULL) {
            free(dname);
            goto out;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            subs = xrealloc(subs, cap * sizeof(*subs));
        }
        subs[n].name = dname;
        subs[n++].value = dvalue;
    }
    if (n > 0)
        qsort(subs, n, sizeof(*subs), cmp_subres);
    for (size_t i = 0; i < n; i++) {
        sts_add(sts, i == 0 ? "?" : "&", 1);
        sts_add(sts, subs[i].name, strlen(subs[i].name));
        if (subs[i].value != NULL) {
            sts_add(sts, "=", 1);
            sts_add(sts, subs[i].value, strlen(subs[i].value));
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(subs[i].name);
        free(subs[i].value);
    }
    free(subs);
    return rc;
}

/* Method\nContent-MD5\nContent-Type\n<date>\nCanonicalizedAmzHeaders CanonicalizedResource,
 * signed and compared with the base64 `signature`. */
static enum s3_err check_signature(const struct s3_auth_req *req, const struct s3_user *user,
                                   struct span date, bool skip_amz_date, struct span signature,
                                   char *msg, size_t cap)
{
    struct sts_buf sts;
    struct span md5 = first_header(req, "content-md5"), type = first_header(req, "content-type");
    unsigned char want[20], got[21];
    enum s3_err e = S3_ERR_SIGNATURE_DOES_NOT_MATCH;

    sts_init(&sts);
    sts_add(&sts, req->method.ptr, req->method.len);
    sts_add(&sts, "\n", 1);
    sts_add(&sts, md5.ptr, md5.len);
    sts_add(&sts, "\n", 1);
    sts_add(&sts, type.ptr, type.len);
    sts_add(&sts, "\n", 1);
    sts_add(&sts, date.ptr, date.len);
    sts_add(&sts, "\n", 1);
    amz_headers(req, skip_amz_date, &sts);
    if (canonical_resource(req, &sts) != 0) {
        set_msg(msg, cap, "Invalid percent-encoding in the query string.");
        e = S3_ERR_INVALID_ARGUMENT;
        goto out;
    }
    hmac_sha1(user->secret_key, sts.p, sts.len, want);
    if (s3_base64_decode(signature, got, sizeof(got)) == 20 && CRYPTO_memcmp(want, got, 20) == 0)
        e = S3_OK;
out:
    sts_cleanup(&sts);
    return e;
}

/* ---- header form ---- */

enum s3_err s3_sigv2_verify_header(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                   struct span authz, struct s3_auth *out, char *msg,
                                   size_t msg_cap)
{
    struct span cred = span_trim(span_make(authz.ptr + 3, authz.len - 3)), akid;
    struct span sig = span_cut(cred, ':', &akid);
    const struct gw_header *amz_date = gw_header_find(req->headers, req->n_headers, "x-amz-date");
    struct span date = span_make("", 0);
    time_t t;

    if (akid.len == 0 || sig.len == 0) {
        set_msg(msg, msg_cap,
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature");
        return S3_ERR_INVALID_ARGUMENT;
    }
    const struct s3_user *user = s3_auth_find_user(cfg, akid);
    if (user == NULL || user->secret_key == NULL)
        return S3_ERR_INVALID_ACCESS_KEY_ID;
    /* x-amz-date (RFC 1123 in SigV2) wins; it is then signed among the x-amz-* headers and
     * the Date line is empty (what boto and s3cmd sign). */
    int rc = -1;
    if (amz_date != NULL) {
        rc = s3_auth_parse_http_date(amz_date->value, &t);
    } else {
        date = first_header(req, "date");
        rc = date.len > 0 ? s3_auth_parse_http_date(date, &t) : -1;
    }
    if (rc != 0) {
        set_msg(msg, msg_cap, "AWS authentication requires a valid Date or x-amz-date header");
        return S3_ERR_ACCESS_DENIED;
    }
    int64_t skew = (int64_t)req->now - (int64_t)t;
    if (skew > (int64_t)cfg->max_skew_s || -skew > (int64_t)cfg->max_skew_s)
        return S3_ERR_REQUEST_TIME_TOO_SKEWED;
    enum s3_err e = check_signature(req, user, date, false, sig, msg, msg_cap);
    /* RESTAuthentication's own DELETE example instead puts x-amz-date's value in the Date line
     * and leaves it out of the x-amz-* headers; both sign the same facts, so accept both. */
    if (e == S3_ERR_SIGNATURE_DOES_NOT_MATCH && amz_date != NULL)
        e = check_signature(req, user, span_trim(amz_date->value), true, sig, msg, msg_cap);
    if (e != S3_OK)
        return e;
    out->kind = S3_AUTH_V2_HEADER;
    out->user = user;
    out->payload = S3_PAYLOAD_UNSIGNED;
    return S3_OK;
}

/* ---- query form ---- */

enum s3_err s3_sigv2_verify_query(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                  struct s3_auth *out, char *msg, size_t msg_cap)
{
    static const char *const names[] = {"AWSAccessKeyId", "Signature", "Expires"};
    char *v[3] = {NULL};
    unsigned long long expires;
    enum s3_err e = S3_ERR_ACCESS_DENIED;

    for (size_t i = 0; i < 3; i++) {
        size_t n;
        v[i] = s3_auth_query_param(req->query, names[i], &n);
        if (v[i] == NULL || n != 1) {
            set_msg(msg, msg_cap,
                    "Query-string authentication requires the Signature, Expires and "
                    "AWSAccessKeyId parameters");
            goto out;
        }
    }
    const struct s3_user *user = s3_auth_find_user(cfg, span_from(v[0]));
    if (user == NULL || user->secret_key == NULL) {
        e = S3_ERR_INVALID_ACCESS_KEY_ID;
        goto out;
    }
    if (span_to_u64(span_from(v[2]), &expires) != 0 || expires > INT64_MAX) {
        set_msg(msg, msg_cap, "Invalid date (should be seconds since epoch): Expires");
        goto out;
    }
    if ((int64_t)req->now > (int64_t)expires) {
        set_msg(msg, msg_cap, "Request has expired");
        goto out;
    }
    /* The Expires value stands in for Date in the string to sign. */
    e = check_signature(req, user, span_from(v[2]), false, span_from(v[1]), msg, msg_cap);
    if (e != S3_OK)
        goto out;
    out->kind = S3_AUTH_V2_QUERY;
    out->user = user;
    out->payload = S3_PAYLOAD_UNSIGNED;
out:
    for (size_t i = 0; i < 3; i++)
        free(v[i]);
    return e;
}

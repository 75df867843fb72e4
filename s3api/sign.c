/* SigV4 as a client (floodgate-worker): the Authorization header of a request that signs
 * host, x-amz-content-sha256 and x-amz-date. Verification is in sigv4.c, whose key
 * derivation and HMAC this shares; the canonical forms here are the ones it checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "gateway/span.h"
#include "gateway/xmalloc.h"
#include "s3api/auth.h"
#include "s3api/encode.h"
#include "s3api/s3api.h"

#define SIGNED_HEADERS "host;x-amz-content-sha256;x-amz-date"

/* A bounded string builder: the caller sizes it for the worst case. */
struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

static void sb_add(struct sbuf *b, const char *p, size_t n)
{
    ASSERT(b->len + n < b->cap);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A path or query part in SigV4's canonical encoding: what sigv4.c computes from the bytes
 * it receives (decode, then UriEncode). A part that is already canonical comes out as it
 * is; one with a malformed escape is used as given (the server refuses it anyway). */
static void sb_canonical(struct sbuf *b, struct span raw, bool keep_slash)
{
    ASSERT(b->len + 3 * raw.len < b->cap);
    long n = s3_uri_reencode(raw, keep_slash, b->p + b->len);
    if (n >= 0)
        b->len += (size_t)n;
    else
        sb_add(b, raw.ptr, raw.len);
}

struct qpair {
    struct span name, value;
};

static int span_cmp(struct span a, struct span b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_qpair(const void *x, const void *y)
{
    const struct qpair *a = x, *b = y;
    int c = span_cmp(a->name, b->name);
    return c != 0 ? c : span_cmp(a->value, b->value);
}

/* Sorted by name then value, each canonically encoded, a bare "a" as "a=". */
static void canonical_query(struct sbuf *b, const char *query)
{
    struct span q = span_from(query), piece, name;
    size_t max = 1;
    for (size_t i = 0; i < q.len; i++)
        max += q.ptr[i] == '&';
    /* encoded first into scratch, since the order is known only once all are read */
    struct sbuf scratch = {.p = xmalloc(3 * q.len + 1), .cap = 3 * q.len + 1};
    struct qpair *ps = xcalloc(max, sizeof(*ps));
    size_t n = 0;
    while (q.len > 0) {
        q = span_cut(q, '&', &piece);
        if (piece.len == 0)
            continue;
        struct span value = span_cut(piece, '=', &name);
        size_t at = scratch.len;
        sb_canonical(&scratch, name, false);
        ps[n].name = span_make(scratch.p + at, scratch.len - at);
        at = scratch.len;
        if (value.ptr != NULL)
            sb_canonical(&scratch, value, false);
        ps[n].value = span_make(scratch.p + at, scratch.len - at);
        n++;
    }
    qsort(ps, n, sizeof(*ps), cmp_qpair);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sb_add(b, "&", 1);
        sb_add(b, ps[i].name.ptr, ps[i].name.len);
        sb_add(b, "=", 1);
        sb_add(b, ps[i].value.ptr, ps[i].value.len);
    }
    free(ps);
    free(scratch.p);
}

void s3_sign_v4(const char *access_key, const char *secret_key, const char *region,
                const char *method, const char *host, const char *path, const char *query,
                const char *payload_sha256, time_t now, struct s3_signed_headers *out)
{
    struct tm tm;
    char date8[9], cr_hash[65], sig[65];
    unsigned char key[32];

    query = query != NULL ? query : "";
    path = path != NULL && path[0] != '\0' ? path : "/";
    gmtime_r(&now, &tm);
    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    snprintf(out->content_sha256, sizeof(out->content_sha256), "%s",
             payload_sha256 != NULL && payload_sha256[0] != '\0' ? payload_sha256
                                                                 : "UNSIGNED-PAYLOAD");

    size_t cap = strlen(method) + 3 * strlen(path) + 6 * strlen(query) + strlen(host) +
                 sizeof(out->content_sha256) + sizeof(out->amz_date) + 160;
    struct sbuf cr = {.p = xmalloc(cap), .cap = cap};
    sb_str(&cr, method);
    sb_add(&cr, "\n", 1);
    sb_canonical(&cr, span_from(path), true);
    sb_add(&cr, "\n", 1);
    canonical_query(&cr, query);
    sb_add(&cr, "\n", 1);
    sb_str(&cr, "host:");
    sb_str(&cr, host);
    sb_str(&cr, "\nx-amz-content-sha256:");
    sb_str(&cr, out->content_sha256);
    sb_str(&cr, "\nx-amz-date:");
    sb_str(&cr, out->amz_date);
    sb_str(&cr, "\n\n" SIGNED_HEADERS "\n");
    sb_str(&cr, out->content_sha256);
    s3_sha256_hex(cr.p, cr.len, cr_hash);
    free(cr.p);

    char *scope = xasprintf("%s/%s/s3/aws4_request", date8, region);
    char *sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", out->amz_date, scope, cr_hash);
    s3_sigv4_signing_key(secret_key, date8, region, key);
    s3_sigv4_hmac_hex(key, sts, strlen(sts), sig);
    OPENSSL_cleanse(key, sizeof(key));
    snprintf(out->authorization, sizeof(out->authorization),
             "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=" SIGNED_HEADERS ", Signature=%s",
             access_key, scope, sig);
    free(sts);
    free(scope);
}

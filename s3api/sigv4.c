/* SigV4 for S3: verification of Authorization-header and presigned-URL requests (canonical
 * request, string to sign, signature), the signing key with a small cache, and the HMAC and
 * SHA-256 helpers the aws-chunked decoder shares. auth.c picks the form; chunk and trailer
 * signatures are checked in chunked.c. */
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

#define ALGORITHM          "AWS4-HMAC-SHA256"
#define MAX_SIGNED_HEADERS 256
#define KEY_CACHE_SLOTS    16

static const char unsigned_headers_msg[] =
    "There were headers present in the request which were not signed";

/* ---- crypto helpers ---- */

/* Every request needs one SHA-256 and one HMAC (plus four more HMACs when the signing key is
 * not cached). Creating EVP contexts for each, and naming the HMAC digest, which OpenSSL
 * then looks up again, cost more than the hashing itself; so each thread keeps its own
 * contexts and re-initialises them. Requests are verified on the loop thread, so keeping the
 * signing-key cache per thread too loses no hits and needs no lock. */
struct key_slot {
    bool used;
    char secret[128];
    char date8[9];
    char region[64];
    unsigned char key[32];
};

struct crypto_tls {
    EVP_MD_CTX *sha256;
    EVP_MAC_CTX *hmac; /* HMAC with SHA-256 set once */
    /* kSigning changes once a day per key and region, and deriving it costs four HMACs more
     * than a request needs (tech-stack §3.3: 0.7 vs 7.6 us): keep the recent ones. Keyed by
     * the secret rather than the access key, so a reloaded secret never meets a stale
     * entry. */
    struct key_slot slot[KEY_CACHE_SLOTS];
    unsigned next; /* round-robin victim */
};

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static pthread_key_t crypto_key;
static EVP_MD *md_sha256;
static EVP_MAC *mac_hmac;

static void crypto_tls_free(void *p)
{
    struct crypto_tls *t = p;
    EVP_MD_CTX_free(t->sha256);
    EVP_MAC_CTX_free(t->hmac);
    OPENSSL_cleanse(t->slot, sizeof(t->slot));
    free(t);
}

static void crypto_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ASSERT(md_sha256 != NULL && mac_hmac != NULL);
    ASSERT(pthread_key_create(&crypto_key, crypto_tls_free) == 0);
}

/* EVP calls fail only on allocation failure or a broken provider: abort like xmalloc. */
static struct crypto_tls *crypto_tls(void)
{
    pthread_once(&crypto_once, crypto_init);
    struct crypto_tls *t = pthread_getspecific(crypto_key);
    if (t != NULL)
        return t;
    static char digest_name[] = "SHA256"; /* OSSL_PARAM wants a non-const pointer */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    t = xcalloc(1, sizeof(*t));
    t->sha256 = EVP_MD_CTX_new();
    t->hmac = EVP_MAC_CTX_new(mac_hmac);
    ASSERT(t->sha256 != NULL && t->hmac != NULL && EVP_MAC_CTX_set_params(t->hmac, params) == 1);
    ASSERT(pthread_setspecific(crypto_key, t) == 0);
    return t;
}

static void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                        unsigned char out[32])
{
    EVP_MAC_CTX *ctx = crypto_tls()->hmac;
    size_t n = 0;
    int rc = EVP_MAC_init(ctx, key, key_len, NULL) == 1 && EVP_MAC_update(ctx, data, len) == 1 &&
             EVP_MAC_final(ctx, out, &n, 32) == 1;
    ASSERT(rc && n == 32);
}

/* The thread's SHA-256 context, initialised for a new digest. */
static EVP_MD_CTX *sha256_begin(void)
{
    EVP_MD_CTX *md = crypto_tls()->sha256;
    ASSERT(EVP_DigestInit_ex2(md, md_sha256, NULL) == 1);
    return md;
}

static void sha256_end(EVP_MD_CTX *md, unsigned char out[32])
{
    unsigned n = 0;
    ASSERT(EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32);
}

void s3_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    EVP_MD_CTX *md = sha256_begin();
    ASSERT(EVP_DigestUpdate(md, data, len) == 1);
    sha256_end(md, d);
    s3_hex(d, sizeof(d), out);
}

void s3_sigv4_hmac_hex(const unsigned char key[32], const char *data, size_t len, char out[65])
{
    unsigned char mac[32];
    hmac_sha256(key, 32, data, len, mac);
    s3_hex(mac, sizeof(mac), out);
}

void s3_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          unsigned char out[32])
{
    size_t secret_len = strlen(secret);
    size_t n = 4 + secret_len;
    char stack_k[160];
    char *k = n <= sizeof(stack_k) ? stack_k : xmalloc(n);
    unsigned char a[32], b[32];

    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, secret_len);
    hmac_sha256(k, n, date8, strlen(date8), a);
    OPENSSL_cleanse(k, n);
    if (k != stack_k)
        free(k);
    hmac_sha256(a, sizeof(a), region, strlen(region), b);
    hmac_sha256(b, sizeof(b), "s3", 2, a);
    hmac_sha256(a, sizeof(a), "aws4_request", 12, out);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
}

static bool slot_matches(const struct key_slot *s, const char *secret, const char *date8,
                         const char *region)
{
    return s->used && strcmp(s->date8, date8) == 0 && strcmp(s->secret, secret) == 0 &&
           strcmp(s->region, region) == 0;
}

static void signing_key_cached(const char *secret, const char *date8, const char *region,
                               unsigned char out[32])
{
    struct crypto_tls *t = crypto_tls();
    struct key_slot *s;
    size_t secret_len = strlen(secret), date_len = strlen(date8), region_len = strlen(region);

    if (secret_len >= sizeof(s->secret) || date_len >= sizeof(s->date8) ||
        region_len >= sizeof(s->region)) {
        s3_sigv4_signing_key(secret, date8, region, out);
        return;
    }
    for (size_t i = 0; i < KEY_CACHE_SLOTS; i++) {
        if (slot_matches(&t->slot[i], secret, date8, region)) {
            memcpy(out, t->slot[i].key, 32);
            return;
        }
    }
    s3_sigv4_signing_key(secret, date8, region, out);
    s = &t->slot[t->next++ % KEY_CACHE_SLOTS];
    s->used = true;
    memcpy(s->secret, secret, secret_len + 1);
    memcpy(s->date8, date8, date_len + 1);
    memcpy(s->region, region, region_len + 1);
    memcpy(s->key, out, 32);
}

/* ---- parsing ---- */

/* What a SigV4 request claims, from the Authorization header or the X-Amz-* parameters. */
struct v4_claim {
    bool presigned;
    struct span credential;
    struct span signed_headers;
    struct span signature;
    struct span akid, date8, region; /* from the credential */
    struct span *names;              /* signed header names, sorted; MAX_SIGNED_HEADERS room */
    size_t n_names;
    time_t t;          /* request time */
    char amz_date[17]; /* YYYYMMDDTHHMMSSZ */
};

/* `msg` gets fixed texts, or request bytes only through echo(). */
static void set_msg(char *msg, size_t cap, const char *text)
{
    snprintf(msg, cap, "%s", text);
}

/* Request bytes go into `msg` only when short and plain, so messages stay readable. */
static void echo(struct span s, char *out, size_t cap)
{
    bool plain = s.len > 0 && s.len < cap && s.len <= 64;
    for (size_t i = 0; plain && i < s.len; i++)
        plain = s.ptr[i] > ' ' && s.ptr[i] < 0x7f && s.ptr[i] != '\'' && s.ptr[i] != '"';
    snprintf(out, cap, "%.*s", plain ? (int)s.len : 3, plain ? s.ptr : "...");
}

static bool is_hex64(struct span s)
{
    if (s.len != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = s.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Credential=AKID/YYYYMMDD/region/s3/aws4_request (tech-stack §3.2 step 2). */
static enum s3_err check_credential(const struct s3_auth_config *cfg, struct v4_claim *c, char *msg,
                                    size_t cap)
{
    enum s3_err bad = c->presigned ? S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR
                                   : S3_ERR_AUTHORIZATION_HEADER_MALFORMED;
    const char *head = c->presigned ? "Error parsing the X-Amz-Credential parameter"
                                    : "The authorization header is malformed";
    struct span part[5], rest = c->credential;
    size_t n = 0;
    char got[68];

    while (n < 5) {
        rest = span_cut(rest, '/', &part[n++]);
        if (rest.ptr == NULL)
            break;
    }
    if (n != 5 || rest.ptr != NULL || part[0].len == 0) {
        snprintf(msg, cap,
                 "%s; the Credential is mal-formed; expecting "
                 "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
                 head);
        return bad;
    }
    c->akid = part[0];
    c->date8 = part[1];
    c->region = part[2];
    bool date_ok = part[1].len == 8;
    for (size_t i = 0; date_ok && i < 8; i++)
        date_ok = part[1].ptr[i] >= '0' && part[1].ptr[i] <= '9';
    if (!date_ok) {
        snprintf(msg, cap,
                 "%s; incorrect date format. The date in the credential must be in the format "
                 "\"yyyyMMdd\".",
                 head);
        return bad;
    }
    if (!span_eq_str(part[3], "s3")) {
        echo(part[3], got, sizeof(got));
        snprintf(msg, cap, "%s; incorrect service \"%s\". This endpoint belongs to \"s3\".", head,
                 got);
        return bad;
    }
    if (!span_eq_str(part[4], "aws4_request")) {
        echo(part[4], got, sizeof(got));
        snprintf(msg, cap, "%s; incorrect terminal \"%s\". This endpoint uses \"aws4_request\".",
                 head, got);
        return bad;
    }
    if (!span_eq_str(part[2], cfg->region)) {
        echo(part[2], got, sizeof(got));
        snprintf(msg, cap, "%s; the region '%s' is wrong; expecting '%s'", head, got, cfg->region);
        return bad;
    }
    return S3_OK;
}

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n > 0 ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static bool is_signed(const struct v4_claim *c, struct span name)
{
    return c->n_names > 0 && bsearch(&name, c->names, c->n_names, sizeof(*c->names), cmp_span);
}

/* SignedHeaders=a;b;c: lowercase names, sorted here (clients sort; S3 signs the sorted list).
 * -1 on an empty name, a duplicate, or too many names. */
static int parse_signed_headers(struct v4_claim *c)
{
    struct span rest = c->signed_headers, name;
    size_t n = 1;

    for (size_t i = 0; i < rest.len; i++)
        n += rest.ptr[i] == ';';
    if (rest.len == 0 || n > MAX_SIGNED_HEADERS)
        return -1;
    c->n_names = 0;
    while (rest.ptr != NULL) {
        rest = span_cut(rest, ';', &name);
        if (name.len == 0)
            return -1;
        for (size_t i = 0; i < name.len; i++)
            if (name.ptr[i] <= ' ' || name.ptr[i] >= 0x7f || name.ptr[i] == ',' ||
                (name.ptr[i] >= 'A' && name.ptr[i] <= 'Z'))
                return -1;
        c->names[c->n_names++] = name;
    }
    qsort(c->names, c->n_names, sizeof(*c->names), cmp_span);
    for (size_t i = 1; i < c->n_names; i++)
        if (cmp_span(&c->names[i - 1], &c->names[i]) == 0)
            return -1;
    return 0;
}

/* The one header named `name`: 0 when absent, 1 with *out, -1 when sent more than once. */
static int single_header(const struct s3_auth_req *req, const char *name, struct span *out)
{
    int n = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (span_eq_str(req->headers[i].name, name)) {
            *out = span_trim(req->headers[i].value);
            n++;
        }
    }
    return n > 1 ? -1 : n;
}

/* Every x-amz-* header must be signed (tech-stack §3.2 step 4). */
static bool has_unsigned_amz_header(const struct s3_auth_req *req, const struct v4_claim *c)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        struct span name = req->headers[i].name;
        if (span_starts_with(name, "x-amz-") && !is_signed(c, name))
            return true;
    }
    return false;
}

/* ---- canonical request (tech-stack §3.3) ---- */

/* The canonical request is only ever hashed, so it is streamed into SHA-256 through a small
 * buffer rather than assembled on the heap. */
struct cr_sink {
    EVP_MD_CTX *md;
    size_t len;
    char *big; /* sink_room() beyond the buffer: a heap block, hashed by sink_commit() */
    char buf[2048];
};

static void sink_flush(struct cr_sink *s)
{
    ASSERT(EVP_DigestUpdate(s->md, s->buf, s->len) == 1);
    s->len = 0;
}

/* Room for up to `need` bytes, in order after everything added so far; sink_commit() then
 * says how many were written. */
static char *sink_room(struct cr_sink *s, size_t need)
{
    if (need > sizeof(s->buf) - s->len)
        sink_flush(s);
    if (need <= sizeof(s->buf))
        return s->buf + s->len;
    s->big = xmalloc(need); /* only for paths, queries or header values over 2 KiB */
    return s->big;
}

static void sink_commit(struct cr_sink *s, size_t n)
{
    if (s->big == NULL) {
        s->len += n;
        return;
    }
    ASSERT(EVP_DigestUpdate(s->md, s->big, n) == 1);
    free(s->big);
    s->big = NULL;
}

static void sink_add(struct cr_sink *s, const void *p, size_t n)
{
    memcpy(sink_room(s, n), p, n);
    sink_commit(s, n);
}

/* Appends `raw` percent-decoded and SigV4-encoded; -1 on a malformed escape. */
static int sink_reencode(struct cr_sink *s, struct span raw, bool keep_slash)
{
    long n = s3_uri_reencode(raw, keep_slash, sink_room(s, 3 * raw.len));
    sink_commit(s, n > 0 ? (size_t)n : 0);
    return n < 0 ? -1 : 0;
}

struct qsorted {
    struct span name, value;
};

static int cmp_qsorted(const void *a, const void *b)
{
    const struct qsorted *x = a, *y = b;
    int c = cmp_span(&x->name, &y->name);
    return c != 0 ? c : cmp_span(&x->value, &y->value);
}

/* Query parameters decoded, re-encoded, sorted by name then value, valueless ones as
 * `name=`; the presigned signature itself left out. -1 on a malformed escape. The encoded
 * parts go to a scratch buffer on the stack unless the query is long. */
static int canonical_query(struct span query, bool presigned, struct cr_sink *cr)
{
    char stack_scratch[2048];
    struct qsorted stack_ps[32];
    size_t max_params = 1;
    for (size_t i = 0; i < query.len; i++)
        max_params += query.ptr[i] == '&';
    size_t scratch_cap = 3 * query.len; /* what re-encoding can grow to, at most */
    char *scratch = scratch_cap <= sizeof(stack_scratch) ? stack_scratch : xmalloc(scratch_cap);
    struct qsorted *ps = max_params <= sizeof(stack_ps) / sizeof(stack_ps[0])
                             ? stack_ps
                             : xmalloc(max_params * sizeof(*ps));
    size_t n = 0, used = 0;
    struct span rest = query, piece, name;
    int rc = -1;

    while (rest.len > 0) {
        rest = span_cut(rest, '&', &piece);
        if (piece.len == 0)
            continue;
        struct span value = span_cut(piece, '=', &name);
        if (presigned && s3_uri_decoded_eq(name, "X-Amz-Signature"))
            continue;
        long nl = s3_uri_reencode(name, false, scratch + used);
        if (nl < 0)
            goto out;
        ps[n].name = span_make(scratch + used, (size_t)nl);
        used += (size_t)nl;
        long vl = s3_uri_reencode(value, false, scratch + used);
        if (vl < 0)
            goto out;
        ps[n].value = span_make(scratch + used, (size_t)vl);
        used += (size_t)vl;
        n++;
    }
    qsort(ps, n, sizeof(*ps), cmp_qsorted);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sink_add(cr, "&", 1);
        sink_add(cr, ps[i].name.ptr, ps[i].name.len);
        sink_add(cr, "=", 1);
        sink_add(cr, ps[i].value.ptr, ps[i].value.len);
    }
    rc = 0;
out:
    if (ps != stack_ps)
        free(ps);
    if (scratch != stack_scratch)
        free(scratch);
    return rc;
}

/* SigV4: trim the value and collapse inner runs of spaces (and tabs) to one space. */
static void add_header_value(struct cr_sink *cr, struct span v)
{
    v = span_trim(v);
    char *out = sink_room(cr, v.len);
    size_t o = 0;
    for (size_t i = 0; i < v.len; i++) {
        bool blank = v.ptr[i] == ' ' || v.ptr[i] == '\t';
        if (!blank)
            out[o++] = v.ptr[i];
        else if (o == 0 || out[o - 1] != ' ')
            out[o++] = ' ';
    }
    sink_commit(cr, o);
}

/* `name:v1,v2\n` for each signed header; -1 when one is missing from the request. */
static int canonical_headers(const struct s3_auth_req *req, const struct v4_claim *c,
                             struct cr_sink *cr)
{
    for (size_t k = 0; k < c->n_names; k++) {
        size_t n = 0;
        sink_add(cr, c->names[k].ptr, c->names[k].len);
        sink_add(cr, ":", 1);
        for (size_t i = 0; i < req->n_headers; i++) {
            if (!span_eq(req->headers[i].name, c->names[k]))
                continue;
            if (n++ > 0)
                sink_add(cr, ",", 1);
            add_header_value(cr, req->headers[i].value);
        }
        if (n == 0)
            return -1;
        sink_add(cr, "\n", 1);
    }
    return 0;
}

/* Hashes the canonical request into cr_hash (hex). */
static enum s3_err canonical_request(const struct s3_auth_req *req, const struct v4_claim *c,
                                     struct span payload_hash, char cr_hash[65], char *msg,
                                     size_t cap)
{
    struct cr_sink cr = {.md = sha256_begin()};
    unsigned char d[32];

    sink_add(&cr, req->method.ptr, req->method.len);
    sink_add(&cr, "\n", 1);
    /* S3: the key encoded once, no normalisation of // or dot segments. */
    if (req->path.len == 0)
        sink_add(&cr, "/", 1);
    if (sink_reencode(&cr, req->path, true) != 0) {
        set_msg(msg, cap, "Invalid percent-encoding in the request path.");
        return S3_ERR_INVALID_ARGUMENT;
    }
    sink_add(&cr, "\n", 1);
    if (canonical_query(req->query, c->presigned, &cr) != 0) {
        set_msg(msg, cap, "Invalid percent-encoding in the query string.");
        return S3_ERR_INVALID_ARGUMENT;
    }
    sink_add(&cr, "\n", 1);
    if (canonical_headers(req, c, &cr) != 0)
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH; /* a signed header is missing */
    sink_add(&cr, "\n", 1);
    for (size_t k = 0; k < c->n_names; k++) {
        if (k > 0)
            sink_add(&cr, ";", 1);
        sink_add(&cr, c->names[k].ptr, c->names[k].len);
    }
    sink_add(&cr, "\n", 1);
    sink_add(&cr, payload_hash.ptr, payload_hash.len);
    sink_flush(&cr);
    sha256_end(cr.md, d);
    s3_hex(d, sizeof(d), cr_hash);
    return S3_OK;
}

/* Builds the canonical request, signs it and compares with the claimed signature; on a match
 * fills the signing context in `out`. */
static enum s3_err check_signature(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                   const struct v4_claim *c, const struct s3_user *user,
                                   struct span payload_hash, struct s3_auth *out, char *msg,
                                   size_t cap)
{
    char cr_hash[65], sts[256], sig[65], date8[9];
    unsigned char key[32];
    size_t region_len = strlen(cfg->region), n = 0;
    enum s3_err e;

    e = canonical_request(req, c, payload_hash, cr_hash, msg, cap);
    if (e != S3_OK)
        return e;

    memcpy(date8, c->date8.ptr, 8);
    date8[8] = '\0';
    memcpy(out->amz_date, c->amz_date, sizeof(out->amz_date));
    /* scope: YYYYMMDD/region/s3/aws4_request (the region was checked against cfg) */
    if (8 + 1 + region_len + 16 >= sizeof(out->scope))
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH; /* no configured region is this long */
    memcpy(out->scope, date8, 8);
    out->scope[8] = '/';
    memcpy(out->scope + 9, cfg->region, region_len);
    memcpy(out->scope + 9 + region_len, "/s3/aws4_request", 17);
    /* string to sign: ALGORITHM \n amz_date \n scope \n hash */
    static const char alg[] = ALGORITHM "\n";
    size_t scope_len = 9 + region_len + 16;
    memcpy(sts, alg, sizeof(alg) - 1);
    n += sizeof(alg) - 1;
    memcpy(sts + n, out->amz_date, 16);
    n += 16;
    sts[n++] = '\n';
    memcpy(sts + n, out->scope, scope_len);
    n += scope_len;
    sts[n++] = '\n';
    memcpy(sts + n, cr_hash, 64);
    n += 64;
    ASSERT(n < sizeof(sts));
    signing_key_cached(user->secret_key, date8, cfg->region, key);
    s3_sigv4_hmac_hex(key, sts, n, sig);
    if (CRYPTO_memcmp(sig, c->signature.ptr, 64) != 0) {
        e = S3_ERR_SIGNATURE_DOES_NOT_MATCH;
        goto out;
    }
    memcpy(out->signing_key, key, sizeof(key));
    memcpy(out->seed_signature, sig, sizeof(sig));
    out->user = user;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return e;
}

/* Checks shared by both forms once the credential and the time are parsed: user, the scope
 * date against the request time, the signature's form, and which headers are signed. */
static enum s3_err check_claim(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                               struct v4_claim *c, const struct s3_user **user, char *msg,
                               size_t cap)
{
    enum s3_err bad = c->presigned ? S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR
                                   : S3_ERR_AUTHORIZATION_HEADER_MALFORMED;

    *user = s3_auth_find_user(cfg, c->akid);
    if (*user == NULL || (*user)->secret_key == NULL)
        return S3_ERR_INVALID_ACCESS_KEY_ID;
    if (memcmp(c->date8.ptr, c->amz_date, 8) != 0) {
        set_msg(msg, cap,
                c->presigned ? "Invalid credential date. Date is not the same as X-Amz-Date."
                             : "The authorization header is malformed; Invalid credential "
                               "date. Date is not the same as X-Amz-Date.");
        return bad;
    }
    if (!is_hex64(c->signature)) {
        set_msg(msg, cap,
                c->presigned ? "X-Amz-Signature must be 64 hexadecimal characters."
                             : "The authorization header is malformed; Signature must be 64 "
                               "hexadecimal characters.");
        return bad;
    }
    if (parse_signed_headers(c) != 0) {
        set_msg(msg, cap,
                c->presigned ? "X-Amz-SignedHeaders is malformed."
                             : "The authorization header is malformed; SignedHeaders is "
                               "malformed.");
        return bad;
    }
    if (!is_signed(c, span_from("host"))) {
        set_msg(msg, cap, "SignedHeaders must include host.");
        return bad;
    }
    if (has_unsigned_amz_header(req, c)) {
        set_msg(msg, cap, unsigned_headers_msg);
        return S3_ERR_ACCESS_DENIED;
    }
    return S3_OK;
}

static void format_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* x-amz-date (ISO 8601 basic) wins over Date (RFC 1123) (tech-stack §3.2 step 3). */
static enum s3_err header_time(const struct s3_auth_req *req, struct v4_claim *c, char *msg,
                               size_t cap)
{
    struct span v;
    int n = single_header(req, "x-amz-date", &v);

    if (n == 1 && s3_auth_parse_amz_date(v, &c->t) == 0) {
        memcpy(c->amz_date, v.ptr, 16);
        c->amz_date[16] = '\0';
        return S3_OK;
    }
    if (n == 0 && single_header(req, "date", &v) == 1 && s3_auth_parse_http_date(v, &c->t) == 0) {
        format_amz_date(c->t, c->amz_date);
        return S3_OK;
    }
    set_msg(msg, cap, "AWS authentication requires a valid Date or x-amz-date header");
    return S3_ERR_ACCESS_DENIED;
}

static bool too_skewed(const struct s3_auth_config *cfg, time_t now, time_t t)
{
    int64_t d = (int64_t)now - (int64_t)t;
    return d > (int64_t)cfg->max_skew_s || -d > (int64_t)cfg->max_skew_s;
}

/* ---- Authorization header ---- */

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." (any order, spaces
 * after the commas tolerated); -1 when malformed. */
static int parse_authorization(struct span v, struct v4_claim *c)
{
    struct span rest = span_make(v.ptr + strlen(ALGORITHM), v.len - strlen(ALGORITHM)), piece;
    struct span *slot;

    rest = span_trim(rest);
    if (rest.len == 0)
        return -1;
    while (rest.ptr != NULL) {
        rest = span_cut(rest, ',', &piece);
        piece = span_trim(piece);
        struct span key, value = span_cut(piece, '=', &key);
        if (span_eq_str(key, "Credential"))
            slot = &c->credential;
        else if (span_eq_str(key, "SignedHeaders"))
            slot = &c->signed_headers;
        else if (span_eq_str(key, "Signature"))
            slot = &c->signature;
        else
            return -1;
        if (slot->ptr != NULL || value.ptr == NULL)
            return -1; /* repeated, or no '=' */
        *slot = value;
    }
    return c->credential.ptr != NULL && c->signed_headers.ptr != NULL && c->signature.ptr != NULL
               ? 0
               : -1;
}

enum s3_err s3_sigv4_verify_header(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                   struct span authz, struct s3_auth *out, char *msg,
                                   size_t msg_cap)
{
    struct span names[MAX_SIGNED_HEADERS]; /* not zeroed: parse_signed_headers fills it */
    struct v4_claim c = {.names = names};
    const struct s3_user *user = NULL;
    struct span payload_hash;
    enum s3_err e;

    if (parse_authorization(authz, &c) != 0) {
        set_msg(msg, msg_cap,
                "The authorization header is malformed; the Authorization header requires "
                "Credential, SignedHeaders and Signature.");
        e = S3_ERR_AUTHORIZATION_HEADER_MALFORMED;
        goto out;
    }
    e = check_credential(cfg, &c, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    e = header_time(req, &c, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    e = check_claim(cfg, req, &c, &user, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    if (too_skewed(cfg, req->now, c.t)) {
        e = S3_ERR_REQUEST_TIME_TOO_SKEWED;
        goto out;
    }
    int n = single_header(req, "x-amz-content-sha256", &payload_hash);
    if (n <= 0) {
        set_msg(msg, msg_cap,
                n == 0 ? "Missing required header for this request: x-amz-content-sha256"
                       : "x-amz-content-sha256 was sent more than once.");
        e = n == 0 ? S3_ERR_INVALID_REQUEST : S3_ERR_INVALID_ARGUMENT;
        goto out;
    }
    e = s3_auth_classify_payload(payload_hash, &out->payload, out->content_sha256);
    if (e != S3_OK) {
        set_msg(msg, msg_cap,
                e == S3_ERR_NOT_IMPLEMENTED
                    ? "SigV4a streaming payloads are not supported."
                    : "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, or a "
                      "valid sha256 value.");
        goto out;
    }
    out->kind = S3_AUTH_V4_HEADER;
    e = check_signature(cfg, req, &c, user, payload_hash, out, msg, msg_cap);
out:
    return e;
}

/* ---- presigned URL (tech-stack §3.7) ---- */

static const char *const query_names[] = {
    "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",
    "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Expires",
};
#define N_QUERY_NAMES (sizeof(query_names) / sizeof(query_names[0]))

enum { Q_ALGORITHM, Q_CREDENTIAL, Q_DATE, Q_SIGNED_HEADERS, Q_SIGNATURE, Q_EXPIRES };

/* The X-Amz-* parameters of a presigned request, found in one pass over the query. */
struct v4_query {
    struct span v[N_QUERY_NAMES]; /* the first occurrence, percent-decoded, cut at a NUL */
    size_t n[N_QUERY_NAMES];      /* occurrences */
    bool bad[N_QUERY_NAMES];      /* the first occurrence has a malformed escape */
};

/* Decodes the values into `buf`, which has room for query.len bytes (a value never grows
 * when decoded). */
static void query_params(struct span query, char *buf, struct v4_query *q)
{
    struct span rest = query, piece, key;
    size_t used = 0;

    memset(q, 0, sizeof(*q));
    while (rest.len > 0) {
        rest = span_cut(rest, '&', &piece);
        struct span val = span_cut(piece, '=', &key);
        for (size_t i = 0; i < N_QUERY_NAMES; i++) {
            if (!s3_uri_decoded_eq(key, query_names[i]))
                continue;
            if (q->n[i]++ == 0) {
                long n = s3_uri_decode_buf(val, false, buf + used, val.len);
                q->bad[i] = n < 0;
                if (n >= 0) {
                    /* they used to be C strings: a %00 ends the value */
                    q->v[i] = span_make(buf + used, strnlen(buf + used, (size_t)n));
                    used += (size_t)n;
                }
            }
            break;
        }
    }
}

static enum s3_err query_time(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                              struct v4_claim *c, struct span date, struct span expires, char *msg,
                              size_t cap)
{
    unsigned long long exp_s;

    if (s3_auth_parse_amz_date(date, &c->t) != 0) {
        set_msg(msg, cap, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
        return S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
    }
    memcpy(c->amz_date, date.ptr, 16); /* parsed: exactly 16 characters */
    c->amz_date[16] = '\0';
    if (span_to_u64(expires, &exp_s) != 0 || exp_s == 0) {
        set_msg(msg, cap, "X-Amz-Expires should be a number greater than 0");
        return S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
    }
    if (exp_s > cfg->max_presign_s) {
        snprintf(msg, cap, "X-Amz-Expires must be less than %u seconds", cfg->max_presign_s);
        return S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
    }
    if ((int64_t)c->t - (int64_t)req->now > (int64_t)cfg->max_skew_s) {
        set_msg(msg, cap, "Request is not valid yet");
        return S3_ERR_ACCESS_DENIED;
    }
    if ((int64_t)req->now > (int64_t)c->t + (int64_t)exp_s) {
        set_msg(msg, cap, "Request has expired");
        return S3_ERR_ACCESS_DENIED;
    }
    return S3_OK;
}

/* The payload hash a presigned request signs: UNSIGNED-PAYLOAD unless the client sent and
 * signed x-amz-content-sha256. */
static enum s3_err query_payload(const struct s3_auth_req *req, const struct v4_claim *c,
                                 struct s3_auth *out, struct span *hash, char *msg, size_t cap)
{
    int n = single_header(req, "x-amz-content-sha256", hash);

    out->payload = S3_PAYLOAD_UNSIGNED;
    if (n == 0 || !is_signed(c, span_from("x-amz-content-sha256"))) {
        *hash = span_from("UNSIGNED-PAYLOAD");
        return S3_OK;
    }
    enum s3_err e = n < 0 ? S3_ERR_INVALID_ARGUMENT
                          : s3_auth_classify_payload(*hash, &out->payload, out->content_sha256);
    if (e != S3_OK)
        set_msg(msg, cap, "x-amz-content-sha256 is not valid.");
    return e;
}

enum s3_err s3_sigv4_verify_query(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                  struct s3_auth *out, char *msg, size_t msg_cap)
{
    char stack_buf[2048];
    char *buf = req->query.len <= sizeof(stack_buf) ? stack_buf : xmalloc(req->query.len);
    struct v4_query q;
    struct span names[MAX_SIGNED_HEADERS]; /* not zeroed: parse_signed_headers fills it */
    struct v4_claim c = {.presigned = true, .names = names};
    const struct s3_user *user = NULL;
    struct span payload_hash;
    enum s3_err e = S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;

    query_params(req->query, buf, &q);
    for (size_t i = 0; i < N_QUERY_NAMES; i++) {
        if (q.bad[i] || q.n[i] != 1) {
            set_msg(msg, msg_cap,
                    "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                    "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                    "X-Amz-Expires parameters.");
            goto out;
        }
    }
    if (!span_eq_str(q.v[Q_ALGORITHM], ALGORITHM)) {
        bool v4a = span_eq_str(q.v[Q_ALGORITHM], "AWS4-ECDSA-P256-SHA256");
        set_msg(msg, msg_cap,
                v4a ? "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported."
                    : "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
        e = v4a ? S3_ERR_NOT_IMPLEMENTED : S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
        goto out;
    }
    c.credential = q.v[Q_CREDENTIAL];
    c.signed_headers = q.v[Q_SIGNED_HEADERS];
    c.signature = q.v[Q_SIGNATURE];
    e = check_credential(cfg, &c, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    e = query_time(cfg, req, &c, q.v[Q_DATE], q.v[Q_EXPIRES], msg, msg_cap);
    if (e != S3_OK)
        goto out;
    e = check_claim(cfg, req, &c, &user, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    e = query_payload(req, &c, out, &payload_hash, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    out->kind = S3_AUTH_V4_QUERY;
    e = check_signature(cfg, req, &c, user, payload_hash, out, msg, msg_cap);
out:
    if (buf != stack_buf)
        free(buf);
    return e;
}

/* SigV4 for S3: verification of Authorization-header and presigned-URL requests (canonical
 * request, string to sign, signature), the signing key with a small cache, and the HMAC and
 * SHA-256 helpers the aws-chunked decoder shares. auth.c picks the form; chunk and trailer
 * signatures are checked in chunked.c. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
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

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;
static EVP_MAC *mac_hmac;

static void crypto_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ASSERT(md_sha256 != NULL && mac_hmac != NULL);
}

/* EVP calls fail only on allocation failure or a broken provider: abort like xmalloc. */
static void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                        unsigned char out[32])
{
    static char digest_name[] = "SHA256"; /* OSSL_PARAM wants a non-const pointer */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = 0;

    pthread_once(&crypto_once, crypto_init);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac_hmac);
    int rc = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1 &&
             EVP_MAC_update(ctx, data, len) == 1 && EVP_MAC_final(ctx, out, &n, 32) == 1;
    ASSERT(rc && n == 32);
    EVP_MAC_CTX_free(ctx);
}

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    pthread_once(&crypto_once, crypto_init);
    int rc = EVP_Digest(data, len, out, NULL, md_sha256, NULL);
    ASSERT(rc == 1);
}

void s3_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    sha256(data, len, d);
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
    char *k = xasprintf("AWS4%s", secret);
    size_t n = strlen(k);
    unsigned char a[32], b[32];

    hmac_sha256(k, n, date8, strlen(date8), a);
    OPENSSL_cleanse(k, n);
    free(k);
    hmac_sha256(a, sizeof(a), region, strlen(region), b);
    hmac_sha256(b, sizeof(b), "s3", 2, a);
    hmac_sha256(a, sizeof(a), "aws4_request", 12, out);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
}

/* kSigning changes once a day per key and region, and deriving it costs four HMACs more than
 * a request needs (tech-stack §3.3: 0.7 vs 7.6 us): keep the recent ones. Keyed by the secret
 * rather than the access key, so a reloaded secret never meets a stale entry. */
struct key_slot {
    bool used;
    char secret[128];
    char date8[9];
    char region[64];
    unsigned char key[32];
};

static struct {
    pthread_mutex_t lock;
    struct key_slot slot[KEY_CACHE_SLOTS];
    unsigned next; /* round-robin victim */
} key_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool slot_matches(const struct key_slot *s, const char *secret, const char *date8,
                         const char *region)
{
    return s->used && strcmp(s->secret, secret) == 0 && strcmp(s->date8, date8) == 0 &&
           strcmp(s->region, region) == 0;
}

static void signing_key_cached(const char *secret, const char *date8, const char *region,
                               unsigned char out[32])
{
    struct key_slot *s;
    bool hit = false;

    if (strlen(secret) >= sizeof(s->secret) || strlen(date8) >= sizeof(s->date8) ||
        strlen(region) >= sizeof(s->region)) {
        s3_sigv4_signing_key(secret, date8, region, out);
        return;
    }
    pthread_mutex_lock(&key_cache.lock);
    for (size_t i = 0; i < KEY_CACHE_SLOTS && !hit; i++) {
        if (slot_matches(&key_cache.slot[i], secret, date8, region)) {
            memcpy(out, key_cache.slot[i].key, 32);
            hit = true;
        }
    }
    pthread_mutex_unlock(&key_cache.lock);
    if (hit)
        return;
    s3_sigv4_signing_key(secret, date8, region, out);
    pthread_mutex_lock(&key_cache.lock);
    s = &key_cache.slot[key_cache.next++ % KEY_CACHE_SLOTS];
    s->used = true;
    snprintf(s->secret, sizeof(s->secret), "%s", secret);
    snprintf(s->date8, sizeof(s->date8), "%s", date8);
    snprintf(s->region, sizeof(s->region), "%s", region);
    memcpy(s->key, out, 32);
    pthread_mutex_unlock(&key_cache.lock);
}

/* ---- parsing ---- */

/* What a SigV4 request claims, from the Authorization header or the X-Amz-* parameters. */
struct v4_claim {
    bool presigned;
    struct span credential;
    struct span signed_headers;
    struct span signature;
    struct span akid, date8, region; /* from the credential */
    struct span *names;              /* signed header names, sorted; heap */
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
    c->names = xmalloc(n * sizeof(*c->names));
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

struct qparam {
    size_t name_off, name_len, val_off, val_len; /* encoded, in the scratch buffer */
};

struct qsorted {
    struct span name, value;
};

static int cmp_qsorted(const void *a, const void *b)
{
    const struct qsorted *x = a, *y = b;
    int c = cmp_span(&x->name, &y->name);
    return c != 0 ? c : cmp_span(&x->value, &y->value);
}

/* Decodes `raw` and appends it re-encoded to `scratch`; -1 on a malformed escape. */
static int encode_part(struct evbuffer *scratch, struct span raw, size_t *off, size_t *len)
{
    size_t n;
    char *s = s3_uri_decode(raw, false, &n);

    if (s == NULL)
        return -1;
    *off = evbuffer_get_length(scratch);
    s3_uri_encode(scratch, span_make(s, n), false);
    *len = evbuffer_get_length(scratch) - *off;
    free(s);
    return 0;
}

static bool is_signature_param(struct span raw_name)
{
    size_t n;
    char *s = s3_uri_decode(raw_name, false, &n);
    bool yes = s != NULL && n == 15 && memcmp(s, "X-Amz-Signature", 15) == 0;

    free(s);
    return yes;
}

/* Query parameters decoded, re-encoded, sorted by name then value, valueless ones as
 * `name=`; the presigned signature itself left out. -1 on a malformed escape. */
static int canonical_query(struct span query, bool presigned, struct evbuffer *cr)
{
    struct evbuffer *scratch = evbuffer_new();
    struct qparam *ps = NULL;
    struct qsorted *sorted = NULL;
    size_t n = 0, cap = 0;
    struct span rest = query, piece, name;
    int rc = -1;

    while (rest.len > 0) {
        rest = span_cut(rest, '&', &piece);
        if (piece.len == 0)
            continue;
        struct span value = span_cut(piece, '=', &name);
        struct qparam p;
        if (presigned && is_signature_param(name))
            continue;
        if (encode_part(scratch, name, &p.name_off, &p.name_len) != 0 ||
            encode_part(scratch, value, &p.val_off, &p.val_len) != 0)
            goto out;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ps = xrealloc(ps, cap * sizeof(*ps));
        }
        ps[n++] = p;
    }
    if (n > 0) {
        const char *base = (const char *)evbuffer_pullup(scratch, -1);
        sorted = xmalloc(n * sizeof(*sorted));
        for (size_t i = 0; i < n; i++) {
            sorted[i].name = span_make(base + ps[i].name_off, ps[i].name_len);
            sorted[i].value = span_make(base + ps[i].val_off, ps[i].val_len);
        }
        qsort(sorted, n, sizeof(*sorted), cmp_qsorted);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                evbuffer_add(cr, "&", 1);
            evbuffer_add(cr, sorted[i].name.ptr, sorted[i].name.len);
            evbuffer_add(cr, "=", 1);
            evbuffer_add(cr, sorted[i].value.ptr, sorted[i].value.len);
        }
    }
    rc = 0;
out:
    free(sorted);
    free(ps);
    evbuffer_free(scratch);
    return rc;
}

/* SigV4: trim the value and collapse inner runs of spaces (and tabs) to one space. */
static void add_header_value(struct evbuffer *cr, struct span v)
{
    size_t run = 0;

    v = span_trim(v);
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] != ' ' && v.ptr[i] != '\t')
            continue;
        evbuffer_add(cr, v.ptr + run, i - run);
        evbuffer_add(cr, " ", 1);
        while (i + 1 < v.len && (v.ptr[i + 1] == ' ' || v.ptr[i + 1] == '\t'))
            i++;
        run = i + 1;
    }
    evbuffer_add(cr, v.ptr + run, v.len - run);
}

/* `name:v1,v2\n` for each signed header; -1 when one is missing from the request. */
static int canonical_headers(const struct s3_auth_req *req, const struct v4_claim *c,
                             struct evbuffer *cr)
{
    for (size_t k = 0; k < c->n_names; k++) {
        size_t n = 0;
        evbuffer_add(cr, c->names[k].ptr, c->names[k].len);
        evbuffer_add(cr, ":", 1);
        for (size_t i = 0; i < req->n_headers; i++) {
            if (!span_eq(req->headers[i].name, c->names[k]))
                continue;
            if (n++ > 0)
                evbuffer_add(cr, ",", 1);
            add_header_value(cr, req->headers[i].value);
        }
        if (n == 0)
            return -1;
        evbuffer_add(cr, "\n", 1);
    }
    return 0;
}

static enum s3_err canonical_request(const struct s3_auth_req *req, const struct v4_claim *c,
                                     struct span payload_hash, struct evbuffer *cr, char *msg,
                                     size_t cap)
{
    size_t n;
    char *path = s3_uri_decode(req->path, false, &n);

    if (path == NULL) {
        set_msg(msg, cap, "Invalid percent-encoding in the request path.");
        return S3_ERR_INVALID_ARGUMENT;
    }
    evbuffer_add(cr, req->method.ptr, req->method.len);
    evbuffer_add(cr, "\n", 1);
    /* S3: the key encoded once, no normalisation of // or dot segments. */
    if (n == 0)
        evbuffer_add(cr, "/", 1);
    s3_uri_encode(cr, span_make(path, n), true);
    free(path);
    evbuffer_add(cr, "\n", 1);
    if (canonical_query(req->query, c->presigned, cr) != 0) {
        set_msg(msg, cap, "Invalid percent-encoding in the query string.");
        return S3_ERR_INVALID_ARGUMENT;
    }
    evbuffer_add(cr, "\n", 1);
    if (canonical_headers(req, c, cr) != 0)
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH; /* a signed header is missing */
    evbuffer_add(cr, "\n", 1);
    for (size_t k = 0; k < c->n_names; k++) {
        if (k > 0)
            evbuffer_add(cr, ";", 1);
        evbuffer_add(cr, c->names[k].ptr, c->names[k].len);
    }
    evbuffer_add(cr, "\n", 1);
    evbuffer_add(cr, payload_hash.ptr, payload_hash.len);
    return S3_OK;
}

/* Builds the canonical request, signs it and compares with the claimed signature; on a match
 * fills the signing context in `out`. */
static enum s3_err check_signature(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                   const struct v4_claim *c, const struct s3_user *user,
                                   struct span payload_hash, struct s3_auth *out, char *msg,
                                   size_t cap)
{
    struct evbuffer *cr = evbuffer_new();
    char cr_hash[65], sts[256], sig[65], date8[9];
    unsigned char key[32];
    enum s3_err e;

    ASSERT(cr != NULL);
    e = canonical_request(req, c, payload_hash, cr, msg, cap);
    if (e != S3_OK)
        goto out;
    size_t cr_len = evbuffer_get_length(cr);
    s3_sha256_hex(evbuffer_pullup(cr, -1), cr_len, cr_hash);

    memcpy(date8, c->date8.ptr, 8);
    date8[8] = '\0';
    snprintf(out->amz_date, sizeof(out->amz_date), "%s", c->amz_date);
    snprintf(out->scope, sizeof(out->scope), "%s/%s/s3/aws4_request", date8, cfg->region);
    int n =
        snprintf(sts, sizeof(sts), ALGORITHM "\n%s\n%s\n%s", out->amz_date, out->scope, cr_hash);
    ASSERT(n > 0 && (size_t)n < sizeof(sts));
    signing_key_cached(user->secret_key, date8, cfg->region, key);
    s3_sigv4_hmac_hex(key, sts, (size_t)n, sig);
    if (CRYPTO_memcmp(sig, c->signature.ptr, 64) != 0) {
        e = S3_ERR_SIGNATURE_DOES_NOT_MATCH;
        goto out;
    }
    memcpy(out->signing_key, key, sizeof(key));
    memcpy(out->seed_signature, sig, sizeof(sig));
    out->user = user;
out:
    OPENSSL_cleanse(key, sizeof(key));
    evbuffer_free(cr);
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
    struct v4_claim c = {0};
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
    free(c.names);
    return e;
}

/* ---- presigned URL (tech-stack §3.7) ---- */

static const char *const query_names[] = {
    "X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",
    "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Expires",
};
#define N_QUERY_NAMES (sizeof(query_names) / sizeof(query_names[0]))

static enum s3_err query_time(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                              struct v4_claim *c, const char *date, const char *expires, char *msg,
                              size_t cap)
{
    unsigned long long exp_s;

    if (s3_auth_parse_amz_date(span_from(date), &c->t) != 0) {
        set_msg(msg, cap, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
        return S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
    }
    memcpy(c->amz_date, date, 17);
    if (span_to_u64(span_from(expires), &exp_s) != 0 || exp_s == 0) {
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
    char *v[N_QUERY_NAMES] = {NULL};
    struct v4_claim c = {.presigned = true};
    const struct s3_user *user = NULL;
    struct span payload_hash;
    enum s3_err e = S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;

    for (size_t i = 0; i < N_QUERY_NAMES; i++) {
        size_t n;
        v[i] = s3_auth_query_param(req->query, query_names[i], &n);
        if (v[i] == NULL || n != 1) {
            set_msg(msg, msg_cap,
                    "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                    "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                    "X-Amz-Expires parameters.");
            goto out;
        }
    }
    if (strcmp(v[0], ALGORITHM) != 0) {
        bool v4a = strcmp(v[0], "AWS4-ECDSA-P256-SHA256") == 0;
        set_msg(msg, msg_cap,
                v4a ? "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported."
                    : "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
        e = v4a ? S3_ERR_NOT_IMPLEMENTED : S3_ERR_AUTHORIZATION_QUERY_PARAMETERS_ERROR;
        goto out;
    }
    c.credential = span_from(v[1]);
    c.signed_headers = span_from(v[3]);
    c.signature = span_from(v[4]);
    e = check_credential(cfg, &c, msg, msg_cap);
    if (e != S3_OK)
        goto out;
    e = query_time(cfg, req, &c, v[2], v[5], msg, msg_cap);
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
    for (size_t i = 0; i < N_QUERY_NAMES; i++)
        free(v[i]);
    free(c.names);
    return e;
}

/* Request authentication entry point: picks the form a request uses (SigV4 header or query,
 * SigV2 header or query, or none) and hands it to sigv4.c or sigv2.c; also the helpers those
 * share (user lookup, the two date formats, x-amz-content-sha256, query lookup). */
#include "s3api/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "s3api/encode.h"

static void set_msg(char *msg, size_t cap, const char *text)
{
    if (cap > 0)
        snprintf(msg, cap, "%s", text);
}

const struct s3_user *s3_auth_find_user(const struct s3_auth_config *cfg, struct span akid)
{
    if (akid.len == 0)
        return NULL;
    for (size_t i = 0; i < cfg->n_users; i++)
        if (cfg->users[i].access_key != NULL && span_eq_str(akid, cfg->users[i].access_key))
            return &cfg->users[i];
    return NULL;
}

/* ---- dates ---- */

static bool is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Seconds since the epoch for a UTC civil time, after checking every field's range. */
static int civil_to_time(long y, int mon, int mday, int h, int min, int s, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (y < 1970 || y > 9999 || mon < 1 || mon > 12 || mday < 1 || h > 23 || min > 59 || s > 60)
        return -1;
    if (mday > mdays[mon - 1] + (mon == 2 && is_leap(y)))
        return -1;
    /* Days from civil (H. Hinnant's algorithm), valid for the proleptic Gregorian calendar. */
    long yy = mon <= 2 ? y - 1 : y;
    long era = yy / 400;
    long yoe = yy - era * 400;
    long doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + mday - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long days = era * 146097 + doe - 719468;
    *out = (time_t)(days * 86400 + (long)h * 3600 + (long)min * 60 + s);
    return 0;
}

/* Reads exactly `n` decimal digits at *p. */
static int digits(const char **p, const char *end, int n, long *out)
{
    long v = 0;
    if (end - *p < n)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    (*p)++;
    return 0;
}

int s3_auth_parse_amz_date(struct span s, time_t *out)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    long y, mo, d, h, mi, se;

    if (s.len != 16 || digits(&p, end, 4, &y) || digits(&p, end, 2, &mo) ||
        digits(&p, end, 2, &d) || expect(&p, end, 'T') || digits(&p, end, 2, &h) ||
        digits(&p, end, 2, &mi) || digits(&p, end, 2, &se) || expect(&p, end, 'Z'))
        return -1;
    return civil_to_time(y, (int)mo, (int)d, (int)h, (int)mi, (int)se, out);
}

int s3_auth_parse_http_date(struct span s, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *p, *end;
    long d, y, h, mi, se, zh, zm;
    int mon = 0, sign = 0;

    s = span_trim(s);
    p = s.ptr;
    end = s.ptr + s.len;
    /* "Tue, " (the weekday is not checked against the date, as most servers do) */
    if (end - p < 5 || p[3] != ',' || p[4] != ' ')
        return -1;
    p += 5;
    if (digits(&p, end, 2, &d) || expect(&p, end, ' ') || end - p < 4)
        return -1;
    for (int i = 0; i < 12 && mon == 0; i++)
        if (memcmp(p, months + (size_t)i * 3, 3) == 0)
            mon = i + 1;
    p += 3;
    if (mon == 0 || expect(&p, end, ' ') || digits(&p, end, 4, &y) || expect(&p, end, ' ') ||
        digits(&p, end, 2, &h) || expect(&p, end, ':') || digits(&p, end, 2, &mi) ||
        expect(&p, end, ':') || digits(&p, end, 2, &se) || expect(&p, end, ' '))
        return -1;
    struct span zone = span_make(p, (size_t)(end - p));
    if (span_eq_str(zone, "GMT") || span_eq_str(zone, "UTC")) {
        zh = zm = 0;
    } else if (zone.len == 5 && (p[0] == '+' || p[0] == '-')) {
        sign = p[0] == '-' ? -1 : 1;
        p++;
        if (digits(&p, end, 2, &zh) || digits(&p, end, 2, &zm) || zh > 23 || zm > 59)
            return -1;
    } else {
        return -1;
    }
    if (civil_to_time(y, mon, (int)d, (int)h, (int)mi, (int)se, out) != 0)
        return -1;
    *out -= (time_t)(sign * (zh * 3600 + zm * 60));
    return 0;
}

/* ---- x-amz-content-sha256 (tech-stack §3.4) ---- */

enum s3_err s3_auth_classify_payload(struct span v, enum s3_payload *out, unsigned char sha256[32])
{
    static const struct {
        const char *value;
        enum s3_payload payload;
    } names[] = {
        {"UNSIGNED-PAYLOAD", S3_PAYLOAD_UNSIGNED},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", S3_PAYLOAD_STREAMING_SIGNED},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", S3_PAYLOAD_STREAMING_SIGNED_TRAILER},
        {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (span_eq_str(v, names[i].value)) {
            *out = names[i].payload;
            return S3_OK;
        }
    }
    if (span_eq_str(v, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD") ||
        span_eq_str(v, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"))
        return S3_ERR_NOT_IMPLEMENTED;
    if (v.len != 64)
        return S3_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < 64; i += 2) {
        int n[2];
        for (int k = 0; k < 2; k++) {
            char c = v.ptr[i + (size_t)k];
            if (c >= '0' && c <= '9')
                n[k] = c - '0';
            else if (c >= 'a' && c <= 'f')
                n[k] = c - 'a' + 10;
            else
                return S3_ERR_INVALID_ARGUMENT; /* S3 wants lowercase hex */
        }
        sha256[i / 2] = (unsigned char)(n[0] << 4 | n[1]);
    }
    *out = S3_PAYLOAD_SHA256;
    return S3_OK;
}

/* ---- query lookup ---- */

/* How many times parameter `name` occurs (names compared after percent-decoding). */
static size_t query_count(struct span query, const char *name)
{
    struct span rest = query, piece, key;
    size_t n = 0;

    while (rest.len > 0) {
        rest = span_cut(rest, '&', &piece);
        span_cut(piece, '=', &key);
        n += s3_uri_decoded_eq(key, name);
    }
    return n;
}

char *s3_auth_query_param(struct span query, const char *name, size_t *n_found)
{
    struct span rest = query, piece, key;
    char *value = NULL;
    bool bad = false;

    *n_found = 0;
    while (rest.len > 0) {
        rest = span_cut(rest, '&', &piece);
        struct span val = span_cut(piece, '=', &key);
        if (!s3_uri_decoded_eq(key, name))
            continue;
        if ((*n_found)++ == 0) {
            value = s3_uri_decode(val, false, NULL);
            bad = value == NULL;
        }
    }
    return bad ? NULL : value;
}

/* ---- form selection (tech-stack §3.2 step 1) ---- */

static bool has_prefix_word(struct span s, const char *word)
{
    size_t n = strlen(word);
    return span_starts_with(s, word) && (s.len == n || s.ptr[n] == ' ' || s.ptr[n] == '\t');
}

/* The payload form of a request without SigV4 (anonymous, SigV2): raw unless the client
 * declared a digest or an unsigned checksum trailer (aws --no-sign-request does). */
static enum s3_err unsigned_payload(const struct s3_auth_req *req, struct s3_auth *out, char *msg,
                                    size_t msg_cap)
{
    const struct gw_header *h =
        gw_header_find(req->headers, req->n_headers, "x-amz-content-sha256");

    out->payload = S3_PAYLOAD_UNSIGNED;
    if (h == NULL)
        return S3_OK;
    enum s3_err e =
        s3_auth_classify_payload(span_trim(h->value), &out->payload, out->content_sha256);
    if (e == S3_OK && (out->payload == S3_PAYLOAD_STREAMING_SIGNED ||
                       out->payload == S3_PAYLOAD_STREAMING_SIGNED_TRAILER)) {
        set_msg(msg, msg_cap, "A signed streaming payload needs a SigV4 request.");
        e = S3_ERR_INVALID_REQUEST;
    } else if (e != S3_OK) {
        set_msg(msg, msg_cap, "x-amz-content-sha256 is not valid.");
    }
    return e;
}

/* What S3 answers where SigV2 is retired (regions opened after 2014): 400 InvalidRequest. */
static enum s3_err sigv2_disabled(char *msg, size_t msg_cap)
{
    set_msg(msg, msg_cap,
            "The authorization mechanism you have provided is not supported. Please use "
            "AWS4-HMAC-SHA256.");
    return S3_ERR_INVALID_REQUEST;
}

enum s3_err s3_auth_verify(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                           struct s3_auth *out, char *msg, size_t msg_cap)
{
    const struct gw_header *authz = NULL;
    size_t n_authz = 0;
    enum s3_err e;

    memset(out, 0, sizeof(*out));
    if (msg_cap > 0)
        msg[0] = '\0';
    for (size_t i = 0; i < req->n_headers; i++) {
        if (span_eq_str(req->headers[i].name, "authorization")) {
            authz = &req->headers[i];
            n_authz++;
        }
    }
    size_t n_alg = query_count(req->query, "X-Amz-Algorithm");
    size_t n_v2 = query_count(req->query, "AWSAccessKeyId");

    if (n_authz + (n_alg > 0) + (n_v2 > 0) > 1) {
        set_msg(msg, msg_cap,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified");
        return S3_ERR_INVALID_ARGUMENT;
    }
    if (authz != NULL) {
        struct span v = span_trim(authz->value);
        if (has_prefix_word(v, "AWS4-HMAC-SHA256")) {
            e = s3_sigv4_verify_header(cfg, req, v, out, msg, msg_cap);
        } else if (has_prefix_word(v, "AWS4-ECDSA-P256-SHA256")) {
            set_msg(msg, msg_cap, "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported.");
            e = S3_ERR_NOT_IMPLEMENTED;
        } else if (has_prefix_word(v, "AWS")) {
            e = cfg->sigv2 ? s3_sigv2_verify_header(cfg, req, v, out, msg, msg_cap)
                           : sigv2_disabled(msg, msg_cap);
        } else {
            set_msg(msg, msg_cap, "Unsupported Authorization Type");
            e = S3_ERR_INVALID_ARGUMENT;
        }
    } else if (n_alg > 0) {
        e = s3_sigv4_verify_query(cfg, req, out, msg, msg_cap);
    } else if (n_v2 > 0) {
        e = cfg->sigv2 ? s3_sigv2_verify_query(cfg, req, out, msg, msg_cap)
                       : sigv2_disabled(msg, msg_cap);
    } else {
        out->kind = S3_AUTH_ANONYMOUS;
        e = S3_OK;
    }
    if (e == S3_OK && out->kind != S3_AUTH_V4_HEADER && out->kind != S3_AUTH_V4_QUERY)
        e = unsigned_payload(req, out, msg, msg_cap);
    if (e != S3_OK)
        memset(out, 0, sizeof(*out)); /* no half-filled signing context */
    return e;
}

/* aws-chunked decoder: strips the framing, checks each chunk signature against the chain
 * seeded by the request signature (tech-stack §3.5), and collects the trailers, checking the
 * trailer signature when signed (§3.6). It does not check checksums or the decoded length:
 * the caller does, with s3_hashes and s3_chunked_decoded_bytes(). */
#include "s3api/chunked.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gateway/span.h"
#include "gateway/xmalloc.h"
#include "s3api/encode.h"

#define MAX_LINE       4096 /* a size line or one trailer line, without its CRLF */
#define MAX_SIZE_HEX   16
#define MAX_TRAILERS   64
#define SIG_EXT        ";chunk-signature="
#define SIG_EXT_LEN    (sizeof(SIG_EXT) - 1)
#define EMPTY_SHA256   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define TRAILER_SIG_HD "x-amz-trailer-signature"

enum state {
    ST_SIZE,     /* "hex[;chunk-signature=sig]\r\n" */
    ST_DATA,     /* the chunk's bytes */
    ST_DATA_END, /* the CRLF after them */
    ST_TRAILER,  /* after the last chunk: trailer lines up to an empty one */
    ST_DONE,
};

struct trailer {
    size_t name_off, name_len, value_off, value_len; /* in tbuf */
};

struct s3_chunked {
    struct s3_auth auth;
    bool is_signed;   /* chunk signatures (both signed forms) */
    bool has_trailer; /* trailers allowed (both trailer forms) */
    enum state st;
    enum s3_err err; /* sticky */

    char line[MAX_LINE + 2]; /* the line being read, CRLF included until complete */
    size_t line_len;
    size_t n_crlf; /* bytes of the post-data CRLF seen */

    uint64_t remaining; /* bytes left in the current chunk */
    uint64_t decoded;
    EVP_MD_CTX *sha;      /* current chunk's data, then the canonical trailers */
    char prev_sig[65];    /* the chain: the seed, then each verified chunk's */
    char claimed_sig[65]; /* the current chunk's */

    size_t max_trailer_bytes, trailer_bytes;
    char *tbuf; /* trailer names and values, back to back */
    size_t tlen, tcap;
    struct trailer tr[MAX_TRAILERS];
    size_t n_tr;
    struct gw_header *trailers; /* built when the trailer section ends */
    char trailer_sig[65];
    bool has_trailer_sig;
};

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

static void md_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ASSERT(md_sha256 != NULL);
}

/* EVP calls fail only on allocation failure or a broken provider: abort like xmalloc. */
static void sha_restart(struct s3_chunked *c)
{
    int rc = EVP_DigestInit_ex2(c->sha, md_sha256, NULL);
    ASSERT(rc == 1);
}

static void sha_update(struct s3_chunked *c, const void *p, size_t n)
{
    int rc = EVP_DigestUpdate(c->sha, p, n);
    ASSERT(rc == 1);
}

static void sha_final_hex(struct s3_chunked *c, char out[65])
{
    unsigned char d[32];
    int rc = EVP_DigestFinal_ex(c->sha, d, NULL);
    ASSERT(rc == 1);
    s3_hex(d, sizeof(d), out);
}

struct s3_chunked *s3_chunked_new(const struct s3_auth *auth, size_t max_trailer_bytes)
{
    struct s3_chunked *c = xcalloc(1, sizeof(*c));

    ASSERT(auth->payload == S3_PAYLOAD_STREAMING_SIGNED ||
           auth->payload == S3_PAYLOAD_STREAMING_SIGNED_TRAILER ||
           auth->payload == S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER);
    pthread_once(&md_once, md_init);
    c->auth = *auth;
    c->is_signed = auth->payload != S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
    c->has_trailer = auth->payload != S3_PAYLOAD_STREAMING_SIGNED;
    c->st = ST_SIZE;
    c->max_trailer_bytes = max_trailer_bytes;
    c->sha = EVP_MD_CTX_new();
    ASSERT(c->sha != NULL);
    sha_restart(c);
    memcpy(c->prev_sig, auth->seed_signature, sizeof(c->prev_sig));
    c->prev_sig[64] = '\0';
    return c;
}

void s3_chunked_free(struct s3_chunked *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->sha);
    free(c->tbuf);
    free(c->trailers);
    OPENSSL_cleanse(&c->auth, sizeof(c->auth));
    free(c);
}

uint64_t s3_chunked_decoded_bytes(const struct s3_chunked *c)
{
    return c->decoded;
}

const struct gw_header *s3_chunked_trailers(const struct s3_chunked *c, size_t *n)
{
    *n = c->trailers != NULL ? c->n_tr : 0;
    return c->trailers;
}

/* ---- lines ---- */

/* The first contiguous bytes of a non-empty `in`. */
static struct evbuffer_iovec first_segment(struct evbuffer *in)
{
    struct evbuffer_iovec v;

    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
        v.iov_base = evbuffer_pullup(in, 1);
        v.iov_len = 1;
    }
    return v;
}

/* Moves bytes up to and including the next LF into c->line. 1: a whole line is there (CRLF
 * stripped, NUL-terminated); 0: more input needed; -1: longer than `max` or a bare LF. */
static int take_line(struct s3_chunked *c, struct evbuffer *in, size_t max)
{
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v = first_segment(in);
        const char *nl = memchr(v.iov_base, '\n', v.iov_len);
        size_t take = nl != NULL ? (size_t)(nl - (const char *)v.iov_base) + 1 : v.iov_len;
        if (take > max + 2 - c->line_len)
            return -1;
        memcpy(c->line + c->line_len, v.iov_base, take);
        c->line_len += take;
        evbuffer_drain(in, take);
        if (nl != NULL) {
            if (c->line_len < 2 || c->line[c->line_len - 2] != '\r')
                return -1;
            c->line_len -= 2;
            c->line[c->line_len] = '\0';
            return 1;
        }
    }
    return 0;
}

/* ---- signatures ---- */

/* StringToSign = AWS4-HMAC-SHA256-PAYLOAD|TRAILER \n date \n scope \n prev [\n sha("")]
 * \n hash; the signature is compared with `claimed` and, on a match, becomes the chain's. */
static enum s3_err check_sig(struct s3_chunked *c, const char *kind, bool empty_line,
                             const char *hash_hex, const char *claimed)
{
    char sts[512], sig[65];
    int n = snprintf(sts, sizeof(sts), "%s\n%s\n%s\n%s\n%s%s", kind, c->auth.amz_date,
                     c->auth.scope, c->prev_sig, empty_line ? EMPTY_SHA256 "\n" : "", hash_hex);

    ASSERT(n > 0 && (size_t)n < sizeof(sts));
    s3_sigv4_hmac_hex(c->auth.signing_key, sts, (size_t)n, sig);
    if (CRYPTO_memcmp(sig, claimed, 64) != 0)
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH;
    memcpy(c->prev_sig, sig, sizeof(sig));
    return S3_OK;
}

static enum s3_err check_chunk_sig(struct s3_chunked *c)
{
    char hash[65];

    sha_final_hex(c, hash);
    sha_restart(c);
    return check_sig(c, "AWS4-HMAC-SHA256-PAYLOAD", true, hash, c->claimed_sig);
}

/* ---- states ---- */

/* "hex-size" then, signed, exactly ";chunk-signature=<64 hex>"; unsigned, any extensions
 * (ignored). */
static enum s3_err parse_size_line(struct s3_chunked *c)
{
    const char *p = c->line, *end = c->line + c->line_len;
    uint64_t size = 0;
    size_t n = 0;

    for (; p < end && gw_hex_digit(*p) >= 0; p++, n++) {
        if (n == MAX_SIZE_HEX)
            return S3_ERR_INVALID_REQUEST;
        size = size << 4 | (uint64_t)gw_hex_digit(*p);
    }
    if (n == 0)
        return S3_ERR_INVALID_REQUEST;
    if (c->is_signed) {
        if ((size_t)(end - p) != SIG_EXT_LEN + 64 || memcmp(p, SIG_EXT, SIG_EXT_LEN) != 0)
            return S3_ERR_INVALID_REQUEST;
        for (size_t i = 0; i < 64; i++)
            if (gw_hex_digit(p[SIG_EXT_LEN + i]) < 0)
                return S3_ERR_INVALID_REQUEST;
        memcpy(c->claimed_sig, p + SIG_EXT_LEN, 64);
        c->claimed_sig[64] = '\0';
    } else if (p != end && *p != ';') {
        return S3_ERR_INVALID_REQUEST;
    }
    c->remaining = size;
    if (size > 0) {
        c->st = ST_DATA;
        return S3_OK;
    }
    /* The last chunk: its (empty) data is complete now. */
    c->st = ST_TRAILER;
    return c->is_signed ? check_chunk_sig(c) : S3_OK;
}

static enum s3_err on_data(struct s3_chunked *c, struct evbuffer *in, struct evbuffer *out)
{
    while (c->remaining > 0 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v = first_segment(in);
        size_t n = v.iov_len < c->remaining ? v.iov_len : (size_t)c->remaining;
        if (c->is_signed)
            sha_update(c, v.iov_base, n);
        int moved = evbuffer_remove_buffer(in, out, n);
        ASSERT(moved >= 0 && (size_t)moved == n);
        c->remaining -= n;
        c->decoded += n;
    }
    if (c->remaining == 0) {
        c->st = ST_DATA_END;
        c->n_crlf = 0;
    }
    return S3_OK;
}

static enum s3_err on_data_end(struct s3_chunked *c, struct evbuffer *in)
{
    while (c->n_crlf < 2 && evbuffer_get_length(in) > 0) {
        char ch;
        evbuffer_remove(in, &ch, 1);
        if (ch != "\r\n"[c->n_crlf])
            return S3_ERR_INVALID_REQUEST;
        c->n_crlf++;
    }
    if (c->n_crlf < 2)
        return S3_OK;
    c->st = ST_SIZE;
    return c->is_signed ? check_chunk_sig(c) : S3_OK;
}

static bool is_token_char(unsigned char ch)
{
    return ch > ' ' && ch < 0x7f && strchr("()<>@,;:\\\"/[]?={}", ch) == NULL;
}

/* One "name:value" trailer line (tech-stack §3.6). */
static enum s3_err add_trailer(struct s3_chunked *c)
{
    struct span line = span_make(c->line, c->line_len), name;
    struct span value = span_trim(span_cut(line, ':', &name));

    c->trailer_bytes += c->line_len + 2;
    if (c->trailer_bytes > c->max_trailer_bytes || value.ptr == NULL || name.len == 0 ||
        c->has_trailer_sig)
        return S3_ERR_INVALID_REQUEST;
    /* Lowercase the name in place (it starts the line). */
    for (size_t i = 0; i < name.len; i++) {
        if (!is_token_char((unsigned char)c->line[i]))
            return S3_ERR_INVALID_REQUEST;
        if (c->line[i] >= 'A' && c->line[i] <= 'Z')
            c->line[i] = (char)(c->line[i] + 32);
    }
    if (span_eq_str(name, TRAILER_SIG_HD)) {
        if (!c->is_signed || value.len != 64)
            return S3_ERR_INVALID_REQUEST;
        memcpy(c->trailer_sig, value.ptr, 64);
        c->trailer_sig[64] = '\0';
        c->has_trailer_sig = true;
        return S3_OK;
    }
    if (c->n_tr == MAX_TRAILERS)
        return S3_ERR_INVALID_REQUEST;
    if (c->tlen + name.len + value.len > c->tcap) {
        c->tcap = c->tlen + name.len + value.len + 256;
        c->tbuf = xrealloc(c->tbuf, c->tcap);
    }
    struct trailer *t = &c->tr[c->n_tr++];
    t->name_off = c->tlen;
    t->name_len = name.len;
    memcpy(c->tbuf + c->tlen, name.ptr, name.len);
    c->tlen += name.len;
    t->value_off = c->tlen;
    t->value_len = value.len;
    memcpy(c->tbuf + c->tlen, value.ptr, value.len);
    c->tlen += value.len;
    return S3_OK;
}

/* The empty line closed the trailers: check the trailer signature over `name:value\n` for
 * each (in the order sent), then publish them. */
static enum s3_err end_trailers(struct s3_chunked *c)
{
    c->trailers = xcalloc(c->n_tr + 1, sizeof(*c->trailers));
    for (size_t i = 0; i < c->n_tr; i++) {
        c->trailers[i].name = span_make(c->tbuf + c->tr[i].name_off, c->tr[i].name_len);
        c->trailers[i].value = span_make(c->tbuf + c->tr[i].value_off, c->tr[i].value_len);
    }
    c->st = ST_DONE;
    if (c->auth.payload != S3_PAYLOAD_STREAMING_SIGNED_TRAILER)
        return S3_OK;
    if (!c->has_trailer_sig)
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH;
    char hash[65];
    for (size_t i = 0; i < c->n_tr; i++) {
        sha_update(c, c->trailers[i].name.ptr, c->trailers[i].name.len);
        sha_update(c, ":", 1);
        sha_update(c, c->trailers[i].value.ptr, c->trailers[i].value.len);
        sha_update(c, "\n", 1);
    }
    sha_final_hex(c, hash);
    return check_sig(c, "AWS4-HMAC-SHA256-TRAILER", false, hash, c->trailer_sig);
}

static enum s3_err on_trailer_line(struct s3_chunked *c)
{
    if (c->line_len == 0)
        return end_trailers(c);
    if (!c->has_trailer)
        return S3_ERR_INVALID_REQUEST;
    return add_trailer(c);
}

static enum s3_err step(struct s3_chunked *c, struct evbuffer *in, struct evbuffer *out)
{
    int rc;
    enum s3_err e;

    switch (c->st) {
    case ST_SIZE:
    case ST_TRAILER:
        rc = take_line(c, in, MAX_LINE);
        if (rc <= 0)
            return rc < 0 ? S3_ERR_INVALID_REQUEST : S3_OK;
        e = c->st == ST_SIZE ? parse_size_line(c) : on_trailer_line(c);
        c->line_len = 0;
        return e;
    case ST_DATA:
        return on_data(c, in, out);
    case ST_DATA_END:
        return on_data_end(c, in);
    case ST_DONE:
        return S3_ERR_INVALID_REQUEST; /* bytes after the end of the body */
    }
    return S3_ERR_INTERNAL_ERROR;
}

enum s3_err s3_chunked_feed(struct s3_chunked *c, struct evbuffer *in, struct evbuffer *out)
{
    while (c->err == S3_OK && evbuffer_get_length(in) > 0)
        c->err = step(c, in, out);
    if (c->err != S3_OK)
        evbuffer_drain(in, evbuffer_get_length(in));
    return c->err;
}

enum s3_err s3_chunked_finish(struct s3_chunked *c)
{
    if (c->err != S3_OK)
        return c->err;
    /* Some clients end the body right after the last trailer line, without the empty line:
     * the body's length frames it, so accept that when no partial line is pending and the
     * trailer signature, if one is due, has come. */
    bool sig_due = c->auth.payload == S3_PAYLOAD_STREAMING_SIGNED_TRAILER && !c->has_trailer_sig;
    if (c->st == ST_TRAILER && c->line_len == 0 && c->n_tr > 0 && !sig_due)
        c->err = end_trailers(c);
    else if (c->st != ST_DONE)
        c->err = S3_ERR_INCOMPLETE_BODY;
    return c->err;
}

/* S3 request authentication: SigV4 (Authorization header, presigned query) and SigV2
 * (header and query), checked over the request line and headers before any body byte.
 * The streaming forms (aws-chunked) are verified chunk by chunk in chunked.c with the
 * signing context this leaves in struct s3_auth. Private to s3api/. */
#ifndef FG_S3API_AUTH_H
#define FG_S3API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gateway/span.h"
#include "s3api/error.h"

struct s3_user {
    char *name;
    char *access_key;
    char *secret_key;
};

struct s3_auth_config {
    const char *region;          /* "us-east-1" */
    const struct s3_user *users; /* borrowed */
    size_t n_users;
    bool sigv2;             /* accept SigV2 (header and query) */
    unsigned max_skew_s;    /* RequestTimeTooSkewed beyond this; 900 */
    unsigned max_presign_s; /* X-Amz-Expires ceiling; 604800 */
};

struct s3_auth_req {
    struct span method;
    struct span path;  /* raw path of the request-target (before '?'), percent-encoded */
    struct span query; /* raw query after '?', possibly empty */
    const struct gw_header *headers; /* names lowercase */
    size_t n_headers;
    const char *vhost_bucket; /* bucket taken from Host (virtual-hosted style), else NULL */
    time_t now;
};

enum s3_auth_kind {
    S3_AUTH_ANONYMOUS = 0,
    S3_AUTH_V4_HEADER,
    S3_AUTH_V4_QUERY,
    S3_AUTH_V2_HEADER,
    S3_AUTH_V2_QUERY,
};

enum s3_payload {
    S3_PAYLOAD_UNSIGNED = 0,               /* UNSIGNED-PAYLOAD, presigned, SigV2, anonymous */
    S3_PAYLOAD_SHA256,                     /* x-amz-content-sha256 is a hex digest */
    S3_PAYLOAD_STREAMING_SIGNED,           /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
    S3_PAYLOAD_STREAMING_SIGNED_TRAILER,   /* ...-PAYLOAD-TRAILER */
    S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
};

struct s3_auth {
    enum s3_auth_kind kind;
    const struct s3_user *user; /* NULL when anonymous */
    enum s3_payload payload;
    unsigned char content_sha256[32]; /* S3_PAYLOAD_SHA256 only */
    /* Signing context for the streaming forms (SigV4 only). */
    char amz_date[17]; /* YYYYMMDDTHHMMSSZ */
    char scope[96];    /* YYYYMMDD/region/s3/aws4_request */
    unsigned char signing_key[32];
    char seed_signature[65]; /* the request's own signature, hex */
};

/* Authenticates `req`. S3_OK with `out` filled (kind ANONYMOUS when the request carries no
 * credentials at all: the caller refuses it with AccessDenied); otherwise the S3 error,
 * with a specific message written to `msg` (never containing a secret) when there is one. */
enum s3_err s3_auth_verify(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                           struct s3_auth *out, char *msg, size_t msg_cap);

/* Lower-level pieces, exposed for unit tests and the chunked decoder. */

/* kSigning = HMAC chain "AWS4"+secret -> date -> region -> "s3" -> "aws4_request". */
void s3_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          unsigned char out[32]);
/* hex(HMAC-SHA256(key, data)) into out[65]. */
void s3_sigv4_hmac_hex(const unsigned char key[32], const char *data, size_t len, char out[65]);
/* hex(SHA-256(data)) into out[65]. */
void s3_sha256_hex(const void *data, size_t len, char out[65]);

/* The forms s3_auth_verify() dispatches to, once it has picked one (same contract as it);
 * only auth.c calls these. `authz` is the Authorization header value. */
enum s3_err s3_sigv4_verify_header(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                   struct span authz, struct s3_auth *out, char *msg,
                                   size_t msg_cap);
enum s3_err s3_sigv4_verify_query(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                  struct s3_auth *out, char *msg, size_t msg_cap);
enum s3_err s3_sigv2_verify_header(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                   struct span authz, struct s3_auth *out, char *msg,
                                   size_t msg_cap);
enum s3_err s3_sigv2_verify_query(const struct s3_auth_config *cfg, const struct s3_auth_req *req,
                                  struct s3_auth *out, char *msg, size_t msg_cap);
/* Helpers shared by auth.c, sigv4.c and sigv2.c. */
const struct s3_user *s3_auth_find_user(const struct s3_auth_config *cfg, struct span akid);
/* RFC 1123 ("Sun, 06 Nov 1994 08:49:37 GMT" or "+0000") as used by Date and SigV2's
 * x-amz-date; -1 when malformed. */
int s3_auth_parse_http_date(struct span s, time_t *out);
/* SigV4's "YYYYMMDDTHHMMSSZ"; -1 when malformed. */
int s3_auth_parse_amz_date(struct span s, time_t *out);
/* Classifies an x-amz-content-sha256 value (S3_PAYLOAD_SHA256 fills sha256[32]): S3_OK,
 * S3_ERR_NOT_IMPLEMENTED (SigV4a streaming) or S3_ERR_INVALID_ARGUMENT. */
enum s3_err s3_auth_classify_payload(struct span value, enum s3_payload *out,
                                     unsigned char sha256[32]);
/* The first value of query parameter `name` (compared exactly after percent-decoding the
 * name), percent-decoded into a heap string the caller frees; NULL when absent or when the
 * value has a malformed escape. *n_found gets how many times the name occurs. */
char *s3_auth_query_param(struct span query, const char *name, size_t *n_found);

#endif

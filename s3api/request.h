/* One S3 request in flight: what the router decided (operation, bucket, key, parameters),
 * who signed it, and the state of its body and response. Shared by the operation files of
 * s3api/; private to s3api/.
 *
 * Lifetime: a request holds one reference for the HTTP layer (dropped when the response ends
 * or the connection aborts) and one per asynchronous store call in flight. Store callbacks
 * start with `if (s3_req_resume(r)) return;`, which drops their reference and says whether
 * the client is gone. */
#ifndef FG_S3API_REQUEST_H
#define FG_S3API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/span.h"
#include "s3api/auth.h"
#include "s3api/checksum.h"
#include "s3api/error.h"
#include "s3api/s3api.h"
#include "s3api/store.h"

struct evbuffer;
struct h1_req;
struct s3_chunked;

#define S3_OP_TABLE(X)                                                                             \
    X(UNKNOWN, "Unknown")                                                                          \
    X(LIST_BUCKETS, "ListBuckets")                                                                 \
    X(CREATE_BUCKET, "CreateBucket")                                                               \
    X(DELETE_BUCKET, "DeleteBucket")                                                               \
    X(HEAD_BUCKET, "HeadBucket")                                                                   \
    X(GET_BUCKET_LOCATION, "GetBucketLocation")                                                    \
    X(GET_BUCKET_VERSIONING, "GetBucketVersioning")                                                \
    X(GET_BUCKET_ACL, "GetBucketAcl")                                                              \
    X(PUT_BUCKET_ACL, "PutBucketAcl")                                                              \
    X(GET_BUCKET_NOTIFICATION, "GetBucketNotificationConfiguration")                               \
    X(PUT_BUCKET_NOTIFICATION, "PutBucketNotificationConfiguration")                               \
    X(LIST_OBJECTS, "ListObjects")                                                                 \
    X(LIST_OBJECTS_V2, "ListObjectsV2")                                                            \
    X(LIST_UPLOADS, "ListMultipartUploads")                                                        \
    X(DELETE_OBJECTS, "DeleteObjects")                                                             \
    X(PUT_OBJECT, "PutObject")                                                                     \
    X(COPY_OBJECT, "CopyObject")                                                                   \
    X(GET_OBJECT, "GetObject")                                                                     \
    X(HEAD_OBJECT, "HeadObject")                                                                   \
    X(DELETE_OBJECT, "DeleteObject")                                                               \
    X(GET_OBJECT_ACL, "GetObjectAcl")                                                              \
    X(PUT_OBJECT_ACL, "PutObjectAcl")                                                              \
    X(GET_OBJECT_TAGGING, "GetObjectTagging")                                                      \
    X(CREATE_UPLOAD, "CreateMultipartUpload")                                                      \
    X(UPLOAD_PART, "UploadPart")                                                                   \
    X(UPLOAD_PART_COPY, "UploadPartCopy")                                                          \
    X(COMPLETE_UPLOAD, "CompleteMultipartUpload")                                                  \
    X(ABORT_UPLOAD, "AbortMultipartUpload")                                                        \
    X(LIST_PARTS, "ListParts")                                                                     \
    X(NOT_IMPLEMENTED, "NotImplemented")

enum s3_op {
#define S3_OP_ENUM(name, str) S3_OP_##name,
    S3_OP_TABLE(S3_OP_ENUM)
#undef S3_OP_ENUM
};

const char *s3_op_name(enum s3_op op);

/* A decoded query parameter. */
struct s3_param {
    char *name;
    char *value; /* "" when the parameter had no '=' */
    bool has_value;
};

struct s3_api {
    struct event_base *base;
    struct gw_pool *pool;
    struct s3_store *store;
    const struct s3_config *cfg;
    struct s3_auth_config auth_cfg;
    struct s3_user *users;
    size_t n_users;
    s3_arn_check_fn *arn_check; /* notification destinations (s3_api_set_arn_check) */
    void *arn_check_arg;
};

/* The body pipeline: raw HTTP body -> (aws-chunked decoding) -> a sink. */
enum s3_body_sink { S3_SINK_NONE = 0, S3_SINK_COLLECT, S3_SINK_PUT };

struct s3_req {
    struct s3_api *api;
    struct h1_req *h1; /* NULL once the response ended or the connection aborted */
    int refs;
    enum s3_op op;
    char *bucket; /* NULL for service-level requests */
    char *key;    /* NULL for bucket-level requests */
    size_t key_len;
    char *resource; /* "/bucket/key" for error bodies */
    struct s3_param *params;
    size_t n_params;
    struct s3_auth auth;

    /* body */
    enum s3_body_sink sink;
    struct s3_chunked *chunked;
    struct evbuffer *decoded;   /* decoded bytes not yet handed to the sink */
    struct evbuffer *collected; /* S3_SINK_COLLECT: the whole (small) body */
    size_t collect_max;
    uint64_t body_bytes;                    /* decoded bytes seen */
    int64_t expect_bytes;                   /* decoded length announced, -1 unknown */
    void (*on_collected)(struct s3_req *r); /* S3_SINK_COLLECT done and verified */
    enum s3_err body_err;

    /* PutObject / UploadPart */
    struct s3_put *put;
    bool put_committing;
    bool put_waiting;         /* a drain/flush callback of `put` holds a reference */
    struct s3_hashes *hashes; /* updated on the pool by the put's tap */
    enum s3_cksum_alg cksum_alg;
    unsigned part_number;
    struct s3_obj_meta meta; /* headers to store */

    /* GetObject */
    struct s3_obj *obj;
    uint64_t get_off;
    uint64_t get_end;
    struct evbuffer *readbuf;

    /* results of store calls that fill structs */
    struct s3_obj_meta result;
    struct s3_part_info part_result;
    struct s3_part_ref *parts;
    size_t n_parts;
    char **del_keys;
    size_t n_del_keys;
    enum s3_err *del_errs;
    bool del_quiet;
    char *src_bucket;
    char *src_key;
    uint64_t copy_off;
    uint64_t copy_len;
};

/* ---- request plumbing (api.c) ---- */
/* Takes a reference for an asynchronous call. */
void s3_req_hold(struct s3_req *r);
/* Drops a callback's reference; true when the client is gone (the caller returns at once). */
bool s3_req_resume(struct s3_req *r);
const char *s3_req_param(const struct s3_req *r, const char *name);
bool s3_req_has_param(const struct s3_req *r, const char *name);
struct span s3_req_header(const struct s3_req *r, const char *lname);
/* A copy of a header value as a NUL-terminated string, or NULL when absent. */
char *s3_req_header_dup(const struct s3_req *r, const char *lname);
/* Answers an S3 error (body omitted for HEAD) and ends the request. */
void s3_req_fail(struct s3_req *r, enum s3_err err, const char *msg);
/* The same with ArgumentName/ArgumentValue in the error body (either may be NULL). */
void s3_req_fail_arg(struct s3_req *r, enum s3_err err, const char *msg, const char *arg_name,
                     const char *arg_value);
/* The prologue of a store callback: drops its reference, answers `err` when it is one, and
 * says whether the operation goes on (false: the client is gone or has its answer). */
static inline bool s3_req_resume_ok(struct s3_req *r, enum s3_err err)
{
    if (s3_req_resume(r))
        return false;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return false;
    }
    return true;
}
/* Adds a response header (before s3_req_reply_* ). */
void s3_req_header_out(struct s3_req *r, const char *name, const char *value);
/* x-amz-request-id and friends, for operations that start their response themselves. */
void s3_req_common_headers(struct s3_req *r);
/* Ends a response the operation started itself (h1_resp_start + writes). */
void s3_req_end(struct s3_req *r);
/* ETag, Last-Modified and the stored headers of an object, with response-* overrides. */
void s3_write_object_headers(struct s3_req *r, const struct s3_obj_meta *m);
/* Answers `status` with an XML body (moved) and ends the request. */
void s3_req_reply_xml(struct s3_req *r, int status, struct evbuffer *body);
/* Answers `status` with no body and ends the request. */
void s3_req_reply_empty(struct s3_req *r, int status);
/* Starts reading the body into a bounded buffer; on_collected runs once it is complete and
 * its digests (Content-MD5, signed SHA-256, checksums) have checked out. */
void s3_req_collect_body(struct s3_req *r, size_t max, void (*on_collected)(struct s3_req *r));
/* The collected body, contiguous (valid until the request ends). */
struct span s3_req_collected(struct s3_req *r);
/* Who sent the request, for the events of the mutation it commits (r->h1 must be live). */
void s3_req_origin(const struct s3_req *r, struct s3_event_origin *out);
/* The path of a request-target: RFC 9112's absolute form ("http://host/path?q") reduced to
 * "/path?q"; anything else as it is. */
struct span s3_target_origin_form(struct span target);
/* The owner id/display name written into listings and ACLs. */
void s3_req_write_owner(struct s3_req *r, struct evbuffer *out, const char *elem);
/* Copies the standard and x-amz-meta-* request headers into `m`. S3_ERR_METADATA_TOO_LARGE. */
enum s3_err s3_req_collect_meta(struct s3_req *r, struct s3_obj_meta *m);
/* Verifies Content-MD5 / x-amz-checksum-* / signed SHA-256 against digests. */
enum s3_err s3_req_check_digests(struct s3_req *r, const struct s3_digests *d,
                                 const struct gw_header *trailers, size_t n_trailers);
/* The checksum algorithm the request announces (header or x-amz-trailer), or NONE. */
enum s3_cksum_alg s3_req_cksum_alg(const struct s3_req *r);

/* Canned ACLs: only "private" (the owner, FULL_CONTROL) exists. Answers NotImplemented and
 * returns true for any other x-amz-acl. */
bool s3_req_refuse_acl(struct s3_req *r);
/* CopyObjectResult / CopyPartResult (`elem`) with LastModified and ETag, then ends. */
void s3_req_reply_copy_result(struct s3_req *r, const char *elem, int64_t mtime_ms,
                              const char *etag);
/* The owner-only AccessControlPolicy document. */
void s3_write_acl(struct s3_req *r, struct evbuffer *b);

/* CopyObject / UploadPartCopy: parses x-amz-copy-source into src_bucket/src_key. */
enum s3_err s3_parse_copy_source(struct s3_req *r);
/* The x-amz-copy-source-if-* conditions against the source's metadata. */
enum s3_err s3_copy_conds(struct s3_req *r, const struct s3_obj_meta *src);

/* ---- operations ---- */
void s3_op_service(struct s3_req *r);   /* ListBuckets */
void s3_op_bucket(struct s3_req *r);    /* bucket-level operations (op_bucket.c) */
void s3_op_list(struct s3_req *r);      /* ListObjects v1/v2, ListMultipartUploads (op_list.c) */
void s3_op_get(struct s3_req *r);       /* GetObject, HeadObject (op_get.c) */
void s3_op_put(struct s3_req *r);       /* PutObject, UploadPart (op_put.c) */
void s3_op_object(struct s3_req *r);    /* the other object-level operations (op_object.c) */
void s3_op_multipart(struct s3_req *r); /* multipart operations (op_multipart.c) */
/* Body/abort hooks of the streaming PUT (op_put.c). */
void s3_put_on_body(struct s3_req *r);
void s3_put_on_body_end(struct s3_req *r);
void s3_put_on_abort(struct s3_req *r);
/* Aborts the upload in progress, if any, releasing what its callbacks held. */
void s3_put_cancel(struct s3_req *r);

#endif

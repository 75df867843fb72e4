/* Request classification: which bucket and key a request names (path-style or
 * virtual-hosted style) and which S3 operation it is (method + sub-resource). */
#include "s3api/route.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/xmalloc.h"
#include "s3api/encode.h"

/* Sub-resources we do not implement: requests naming one get 501 NotImplemented rather than
 * being mistaken for a plain GET/PUT of the bucket or object. Sorted by strcmp (bsearch):
 * every parameter of every request is looked up here. "notification" stays listed for
 * objects and for other methods; bucket_op() serves GET and PUT of it. */
static const char *const unimplemented[] = {
    "accelerate",   "analytics",     "attributes",
    "cors",         "encryption",    "intelligent-tiering",
    "inventory",    "legal-hold",    "lifecycle",
    "logging",      "metadataTable", "metrics",
    "notification", "object-lock",   "ownershipControls",
    "policy",       "policyStatus",  "publicAccessBlock",
    "renameObject", "replication",   "requestPayment",
    "restore",      "retention",     "select",
    "session",      "tagging",       "torrent",
    "versionId",    "versions",      "website",
};

static bool param(const struct s3_route_in *in, const char *name)
{
    for (size_t i = 0; i < in->n_params; i++)
        if (strcmp(in->params[i].name, name) == 0)
            return true;
    return false;
}

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

/* Whether a parameter names an unimplemented sub-resource other than `except` (NULL: none). */
static bool any_unimplemented_but(const struct s3_route_in *in, const char *except)
{
    for (size_t i = 0; i < in->n_params; i++)
        if ((except == NULL || strcmp(in->params[i].name, except) != 0) &&
            bsearch(in->params[i].name, unimplemented,
                    sizeof(unimplemented) / sizeof(unimplemented[0]), sizeof(unimplemented[0]),
                    cmp_name) != NULL)
            return true;
    return false;
}

static bool any_unimplemented(const struct s3_route_in *in)
{
    return any_unimplemented_but(in, NULL);
}

static enum s3_op bucket_op(const struct s3_route_in *in)
{
    struct span m = in->method;
    if (span_eq_str(m, "HEAD"))
        return S3_OP_HEAD_BUCKET;
    /* Bucket notification configurations are the one sub-resource of the table served on
     * buckets (objects have none). */
    if (param(in, "notification") && !any_unimplemented_but(in, "notification")) {
        if (span_eq_str(m, "GET"))
            return S3_OP_GET_BUCKET_NOTIFICATION;
        if (span_eq_str(m, "PUT"))
            return S3_OP_PUT_BUCKET_NOTIFICATION;
        return S3_OP_NOT_IMPLEMENTED;
    }
    if (any_unimplemented(in) && !param(in, "versioning"))
        return S3_OP_NOT_IMPLEMENTED;
    if (span_eq_str(m, "GET")) {
        if (param(in, "location"))
            return S3_OP_GET_BUCKET_LOCATION;
        if (param(in, "versioning"))
            return S3_OP_GET_BUCKET_VERSIONING;
        if (param(in, "acl"))
            return S3_OP_GET_BUCKET_ACL;
        if (param(in, "uploads"))
            return S3_OP_LIST_UPLOADS;
        for (size_t i = 0; i < in->n_params; i++)
            if (strcmp(in->params[i].name, "list-type") == 0)
                return strcmp(in->params[i].value, "2") == 0 ? S3_OP_LIST_OBJECTS_V2
                                                             : S3_OP_LIST_OBJECTS;
        return S3_OP_LIST_OBJECTS;
    }
    if (span_eq_str(m, "PUT")) {
        if (param(in, "acl"))
            return S3_OP_PUT_BUCKET_ACL;
        if (param(in, "versioning"))
            return S3_OP_NOT_IMPLEMENTED;
        return S3_OP_CREATE_BUCKET;
    }
    if (span_eq_str(m, "DELETE"))
        return param(in, "versioning") ? S3_OP_NOT_IMPLEMENTED : S3_OP_DELETE_BUCKET;
    if (span_eq_str(m, "POST"))
        return param(in, "delete") ? S3_OP_DELETE_OBJECTS : S3_OP_NOT_IMPLEMENTED;
    return S3_OP_NOT_IMPLEMENTED;
}

static enum s3_op object_op(const struct s3_route_in *in)
{
    struct span m = in->method;
    /* Objects carry no tags (PutObjectTagging is not implemented), so reading them is an
     * empty set: what aws-cli asks for before a multipart copy. */
    if (span_eq_str(m, "GET") && param(in, "tagging"))
        return S3_OP_GET_OBJECT_TAGGING;
    if (any_unimplemented(in))
        return S3_OP_NOT_IMPLEMENTED;
    if (span_eq_str(m, "GET")) {
        if (param(in, "uploadId"))
            return S3_OP_LIST_PARTS;
        if (param(in, "acl"))
            return S3_OP_GET_OBJECT_ACL;
        return S3_OP_GET_OBJECT;
    }
    if (span_eq_str(m, "HEAD"))
        return S3_OP_HEAD_OBJECT;
    if (span_eq_str(m, "PUT")) {
        if (param(in, "acl"))
            return S3_OP_PUT_OBJECT_ACL;
        if (param(in, "uploadId") || param(in, "partNumber"))
            return in->has_copy_source ? S3_OP_UPLOAD_PART_COPY : S3_OP_UPLOAD_PART;
        return in->has_copy_source ? S3_OP_COPY_OBJECT : S3_OP_PUT_OBJECT;
    }
    if (span_eq_str(m, "DELETE"))
        return param(in, "uploadId") ? S3_OP_ABORT_UPLOAD : S3_OP_DELETE_OBJECT;
    if (span_eq_str(m, "POST")) {
        if (param(in, "uploads"))
            return S3_OP_CREATE_UPLOAD;
        if (param(in, "uploadId"))
            return S3_OP_COMPLETE_UPLOAD;
    }
    return S3_OP_NOT_IMPLEMENTED;
}

/* Virtual-hosted style: Host is "<bucket>.<domain>[:port]". */
static char *vhost_bucket(struct span host, const char *domain)
{
    if (domain == NULL || domain[0] == '\0' || host.len == 0)
        return NULL;
    struct span name;
    span_cut(host, ':', &name);
    if (name.len > 0 && name.ptr[0] == '[')
        return NULL; /* an IPv6 literal */
    size_t dl = strlen(domain);
    if (name.len <= dl + 1 || name.ptr[name.len - dl - 1] != '.')
        return NULL;
    if (strncasecmp(name.ptr + name.len - dl, domain, dl) != 0)
        return NULL;
    return span_dup(span_make(name.ptr, name.len - dl - 1));
}

enum s3_err s3_route(const struct s3_route_in *in, struct s3_route_out *out)
{
    memset(out, 0, sizeof(*out));
    struct span path = in->path;
    if (path.len == 0 || path.ptr[0] != '/')
        return S3_ERR_INVALID_REQUEST;
    out->vhost_bucket = vhost_bucket(in->host, in->domain);
    struct span rest = span_make(path.ptr + 1, path.len - 1);
    struct span bucket_part = {NULL, 0};
    struct span key_part = {NULL, 0};
    bool has_key;
    if (out->vhost_bucket != NULL) {
        out->bucket = xstrdup(out->vhost_bucket);
        key_part = rest;
        has_key = rest.len > 0;
    } else {
        key_part = span_cut(rest, '/', &bucket_part);
        has_key = key_part.len > 0;
        if (bucket_part.len > 0) {
            size_t n;
            out->bucket = s3_uri_decode(bucket_part, false, &n);
            if (out->bucket == NULL || strlen(out->bucket) != n)
                return S3_ERR_INVALID_BUCKET_NAME;
        }
    }
    if (has_key) {
        out->key = s3_uri_decode(key_part, false, &out->key_len);
        if (out->key == NULL)
            return S3_ERR_INVALID_ARGUMENT;
    }
    if (out->bucket == NULL)
        out->op = span_eq_str(in->method, "GET") ? S3_OP_LIST_BUCKETS : S3_OP_NOT_IMPLEMENTED;
    else if (out->key == NULL)
        out->op = bucket_op(in);
    else
        out->op = object_op(in);
    return S3_OK;
}

void s3_route_cleanup(struct s3_route_out *out)
{
    free(out->bucket);
    free(out->key);
    free(out->vhost_bucket);
    memset(out, 0, sizeof(*out));
}

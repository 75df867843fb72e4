/* Request classification: bucket and key from path-style and virtual-hosted requests, and the
 * operation from method and sub-resource, including the sub-resources answered 501. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3api/route.h"
#include "tests/unit/tap.h"

/* Routes "METHOD /path" with parameters "a", "b=1", ... (NULL-ended). */
static enum s3_op route_op(const char *method, const char *path, const char *const *query,
                           const char *host)
{
    struct s3_param params[16];
    size_t n = 0;
    char names[16][64], values[16][64];

    for (; query != NULL && query[n] != NULL; n++) {
        const char *eq = strchr(query[n], '=');
        size_t len = eq != NULL ? (size_t)(eq - query[n]) : strlen(query[n]);
        memcpy(names[n], query[n], len);
        names[n][len] = '\0';
        snprintf(values[n], sizeof(values[n]), "%s", eq != NULL ? eq + 1 : "");
        params[n] =
            (struct s3_param){.name = names[n], .value = values[n], .has_value = eq != NULL};
    }
    struct s3_route_in in = {
        .method = span_from(method),
        .path = span_from(path),
        .host = span_from(host != NULL ? host : "127.0.0.1:9000"),
        .domain = "s3.local",
        .params = params,
        .n_params = n,
    };
    struct s3_route_out out;
    enum s3_err err = s3_route(&in, &out);
    enum s3_op op = err == S3_OK ? out.op : S3_OP_UNKNOWN;
    s3_route_cleanup(&out);
    return op;
}

static void test_operations(void)
{
    const char *none[] = {NULL};
    const char *acl[] = {"acl", NULL};
    const char *uploads[] = {"uploads", NULL};
    const char *v2[] = {"prefix=a", "list-type=2", NULL};
    const char *part[] = {"partNumber=1", "uploadId=x", NULL};
    const char *versioning[] = {"versioning", NULL};
    const char *tagging[] = {"tagging", NULL};

    is_int(route_op("GET", "/", none, NULL), S3_OP_LIST_BUCKETS, "service GET");
    is_int(route_op("GET", "/b", none, NULL), S3_OP_LIST_OBJECTS, "bucket GET");
    is_int(route_op("GET", "/b", v2, NULL), S3_OP_LIST_OBJECTS_V2, "list-type=2");
    is_int(route_op("GET", "/b", acl, NULL), S3_OP_GET_BUCKET_ACL, "bucket ?acl");
    is_int(route_op("GET", "/b", versioning, NULL), S3_OP_GET_BUCKET_VERSIONING,
           "versioning is read, though a sub-resource");
    is_int(route_op("PUT", "/b", none, NULL), S3_OP_CREATE_BUCKET, "bucket PUT");
    is_int(route_op("GET", "/b/k", none, NULL), S3_OP_GET_OBJECT, "object GET");
    is_int(route_op("HEAD", "/b/k", none, NULL), S3_OP_HEAD_OBJECT, "object HEAD");
    is_int(route_op("PUT", "/b/k", part, NULL), S3_OP_UPLOAD_PART, "upload part");
    is_int(route_op("POST", "/b/k", uploads, NULL), S3_OP_CREATE_UPLOAD, "create upload");
    is_int(route_op("GET", "/b/k", tagging, NULL), S3_OP_GET_OBJECT_TAGGING, "GET ?tagging");
    is_int(route_op("PUT", "/b/k", tagging, NULL), S3_OP_NOT_IMPLEMENTED, "PUT ?tagging");
    is_int(route_op("GET", "/k", none, "bkt.s3.local"), S3_OP_GET_OBJECT, "virtual-hosted");
    is_int(route_op("GET", "b", none, NULL), S3_OP_UNKNOWN, "path without a slash refused");
}

/* Every sub-resource we do not implement, on an object PUT and a bucket GET: 501 rather than
 * a plain PUT or listing (the table is searched with bsearch, so this also checks its order). */
static void test_unimplemented_subresources(void)
{
    static const char *const names[] = {
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
    int object_ok = 0, bucket_ok = 0;
    size_t n = sizeof(names) / sizeof(names[0]);

    for (size_t i = 0; i < n; i++) {
        const char *q[] = {"x-id=1", names[i], NULL};
        /* a bucket's notification configuration is served (test_bucket_notification) */
        enum s3_op bucket_want = strcmp(names[i], "notification") == 0
                                     ? S3_OP_GET_BUCKET_NOTIFICATION
                                     : S3_OP_NOT_IMPLEMENTED;
        object_ok += route_op("PUT", "/b/k", q, NULL) == S3_OP_NOT_IMPLEMENTED;
        bucket_ok += route_op("GET", "/b", q, NULL) == bucket_want;
    }
    is_int(object_ok, n, "object PUT with each one: NotImplemented");
    is_int(bucket_ok, n, "bucket GET with each one: NotImplemented (but ?notification)");
    const char *near[] = {"Tagging", "polic", "websites", NULL};
    is_int(route_op("PUT", "/b/k", near, NULL), S3_OP_PUT_OBJECT, "near misses are plain");
}

static void test_bucket_notification(void)
{
    const char *notif[] = {"notification", NULL};
    const char *notif_cors[] = {"notification", "cors", NULL};
    is_int(route_op("GET", "/b", notif, NULL), S3_OP_GET_BUCKET_NOTIFICATION, "GET ?notification");
    is_int(route_op("PUT", "/b", notif, NULL), S3_OP_PUT_BUCKET_NOTIFICATION, "PUT ?notification");
    is_int(route_op("DELETE", "/b", notif, NULL), S3_OP_NOT_IMPLEMENTED, "DELETE ?notification");
    is_int(route_op("POST", "/b", notif, NULL), S3_OP_NOT_IMPLEMENTED, "POST ?notification");
    is_int(route_op("HEAD", "/b", notif, NULL), S3_OP_HEAD_BUCKET, "HEAD is HeadBucket");
    is_int(route_op("PUT", "/b", notif_cors, NULL), S3_OP_NOT_IMPLEMENTED,
           "with another unimplemented sub-resource: NotImplemented");
    is_int(route_op("GET", "/b/k", notif, NULL), S3_OP_NOT_IMPLEMENTED, "objects have none");
    is_int(route_op("PUT", "/k", notif, "b.s3.local"), S3_OP_NOT_IMPLEMENTED,
           "virtual-hosted object: none");
    is_int(route_op("PUT", "/", notif, "b.s3.local"), S3_OP_PUT_BUCKET_NOTIFICATION,
           "virtual-hosted bucket PUT ?notification");
}

int main(void)
{
    subtest(test_operations);
    subtest(test_unimplemented_subresources);
    subtest(test_bucket_notification);
    return done_testing();
}

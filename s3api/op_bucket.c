/* Service- and bucket-level operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
 * GetBucketLocation, GetBucketVersioning, Get/PutBucketAcl, Get/PutBucketNotification-
 * Configuration. Listings are in op_list.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"
#include "s3api/httpdate.h"
#include "s3api/names.h"
#include "s3api/notif.h"
#include "s3api/request.h"
#include "s3api/xml.h"

/* ---- ListBuckets ---- */

static void on_buckets(enum s3_err err, struct s3_bucket_info *v, size_t n, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<ListAllMyBucketsResult xmlns=\"%s\">", S3_XML_NS);
    s3_req_write_owner(r, b, "Owner");
    evbuffer_add_printf(b, "<Buckets>");
    for (size_t i = 0; i < n; i++) {
        char date[25];
        s3_date_iso8601(v[i].created_ms, date);
        evbuffer_add_printf(b, "<Bucket>");
        s3_xml_elem(b, "Name", v[i].name);
        s3_xml_elem(b, "CreationDate", date);
        evbuffer_add_printf(b, "</Bucket>");
    }
    evbuffer_add_printf(b, "</Buckets></ListAllMyBucketsResult>");
    s3_req_reply_xml(r, 200, b);
}

void s3_op_service(struct s3_req *r)
{
    s3_req_hold(r);
    s3_store_bucket_list(r->api->store, on_buckets, r);
}

/* ---- the rest ---- */

static void on_done_200(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    if (r->op == S3_OP_CREATE_BUCKET) {
        char *loc = xasprintf("/%s", r->bucket);
        s3_req_header_out(r, "Location", loc);
        free(loc);
    }
    s3_req_reply_empty(r, r->op == S3_OP_DELETE_BUCKET ? 204 : 200);
}

static void create_bucket_body(struct s3_req *r)
{
    char loc[64];
    struct span body = s3_req_collected(r);
    enum s3_err err = s3_xml_parse_create_bucket(body, loc, sizeof(loc));
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    /* us-east-1 is spelled as no constraint at all. */
    if (loc[0] != '\0' && strcmp(loc, r->api->cfg->region) != 0 &&
        !(strcmp(loc, "us-east-1") == 0)) {
        s3_req_fail(r, S3_ERR_INVALID_LOCATION_CONSTRAINT, NULL);
        return;
    }
    s3_req_hold(r);
    s3_store_bucket_create(r->api->store, r->bucket, on_done_200, r);
}

static void acl_body(struct s3_req *r)
{
    struct span body = s3_req_collected(r);
    enum s3_err err = body.len > 0 ? s3_xml_parse_acl(body) : S3_OK;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    s3_req_hold(r);
    s3_store_bucket_head(r->api->store, r->bucket, on_done_200, r);
}

/* Canned ACLs: only "private" exists here (one owner, no grants). */
bool s3_req_refuse_acl(struct s3_req *r)
{
    struct span acl = s3_req_header(r, "x-amz-acl");
    if (acl.ptr == NULL || span_eq_str(span_trim(acl), "private"))
        return false;
    s3_req_fail(r, S3_ERR_NOT_IMPLEMENTED, "Only the private canned ACL is supported.");
    return true;
}

void s3_write_acl(struct s3_req *r, struct evbuffer *b)
{
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<AccessControlPolicy xmlns=\"%s\">", S3_XML_NS);
    s3_req_write_owner(r, b, "Owner");
    evbuffer_add_printf(b, "<AccessControlList><Grant><Grantee "
                           "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                           "xsi:type=\"CanonicalUser\">");
    struct evbuffer *owner = evbuffer_new();
    s3_req_write_owner(r, owner, "X");
    /* The grantee carries the owner's ID and DisplayName without the wrapper element. */
    size_t n = evbuffer_get_length(owner);
    const char *p = (const char *)evbuffer_pullup(owner, -1);
    evbuffer_add(b, p + 3, n - 7);
    evbuffer_free(owner);
    evbuffer_add_printf(b, "</Grantee><Permission>FULL_CONTROL</Permission></Grant>"
                           "</AccessControlList></AccessControlPolicy>");
}

static void on_bucket_exists(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    struct evbuffer *b = evbuffer_new();
    switch (r->op) {
    case S3_OP_GET_BUCKET_LOCATION:
        s3_xml_declaration(b);
        evbuffer_add_printf(b, "<LocationConstraint xmlns=\"%s\">", S3_XML_NS);
        /* AWS answers an empty constraint for us-east-1. */
        if (strcmp(r->api->cfg->region, "us-east-1") != 0)
            s3_xml_escape(b, r->api->cfg->region, strlen(r->api->cfg->region));
        evbuffer_add_printf(b, "</LocationConstraint>");
        break;
    case S3_OP_GET_BUCKET_VERSIONING:
        s3_xml_declaration(b);
        evbuffer_add_printf(b, "<VersioningConfiguration xmlns=\"%s\"/>", S3_XML_NS);
        break;
    case S3_OP_GET_BUCKET_ACL:
        s3_write_acl(r, b);
        break;
    default:
        evbuffer_free(b);
        s3_req_reply_empty(r, 200);
        return;
    }
    s3_req_reply_xml(r, 200, b);
}

/* ---- notification configurations ---- */

/* The body of PutBucketNotificationConfiguration, collected and its digests checked: parsed,
 * checked (destinations by the ARN check hook, here on the loop), then stored. An empty
 * configuration removes the bucket's. EventBridgeConfiguration is accepted and ignored: this
 * gateway has no EventBridge to send to, and refusing it would break clients that send it
 * empty. */
static void notif_body(struct s3_req *r)
{
    struct s3_notif_config c = {0};
    struct s3_xml_err e = {S3_OK, NULL, NULL, NULL};
    enum s3_err err = s3_xml_parse_notification(s3_req_collected(r), &c, &e);
    if (err == S3_OK)
        err = s3_notif_validate(&c, r->api->arn_check, r->api->arn_check_arg, &e);
    if (err != S3_OK) {
        s3_req_fail_arg(r, err, e.msg, e.arg_name, e.arg_value);
        goto out;
    }
    size_t len = 0;
    unsigned char *data = c.n_rules > 0 ? s3_notif_encode(&c, &len) : NULL;
    struct s3_event_origin origin;
    s3_req_origin(r, &origin);
    s3_req_hold(r);
    s3_store_notif_set(r->api->store, r->bucket, data, len, &origin, on_done_200, r);
    free(data);

out:
    s3_notif_config_free(&c);
    s3_xml_err_cleanup(&e);
}

/* S3 answers NoSuchBucket before it looks at the body. */
static void on_notif_bucket(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    s3_req_collect_body(r, S3_XML_MAX_BODY, notif_body);
}

static void on_notif_get(enum s3_err err, const void *data, size_t len, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    struct s3_notif_config c = {0};
    if (len > 0 && s3_notif_decode(data, len, &c) != 0) {
        s3_req_fail(r, S3_ERR_INTERNAL_ERROR, "The stored notification configuration is damaged.");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    s3_notif_write_xml(b, &c);
    s3_notif_config_free(&c);
    s3_req_reply_xml(r, 200, b);
}

void s3_op_bucket(struct s3_req *r)
{
    struct s3_store *st = r->api->store;
    switch (r->op) {
    case S3_OP_CREATE_BUCKET:
        if (!s3_bucket_name_valid(r->bucket)) {
            s3_req_fail(r, S3_ERR_INVALID_BUCKET_NAME, NULL);
            return;
        }
        if (s3_bucket_name_reserved(r->bucket)) {
            s3_req_fail(r, S3_ERR_INVALID_BUCKET_NAME,
                        "The name is reserved for the admin API on this endpoint");
            return;
        }
        if (s3_req_refuse_acl(r))
            return;
        s3_req_collect_body(r, S3_XML_MAX_BODY, create_bucket_body);
        return;
    case S3_OP_DELETE_BUCKET:
        s3_req_hold(r);
        s3_store_bucket_delete(st, r->bucket, on_done_200, r);
        return;
    case S3_OP_PUT_BUCKET_ACL:
        if (s3_req_refuse_acl(r))
            return;
        s3_req_collect_body(r, S3_XML_MAX_BODY, acl_body);
        return;
    case S3_OP_PUT_BUCKET_NOTIFICATION:
        s3_req_hold(r);
        s3_store_bucket_head(st, r->bucket, on_notif_bucket, r);
        return;
    case S3_OP_GET_BUCKET_NOTIFICATION:
        s3_req_hold(r);
        s3_store_notif_get(st, r->bucket, on_notif_get, r);
        return;
    default:
        s3_req_hold(r);
        s3_store_bucket_head(st, r->bucket, on_bucket_exists, r);
        return;
    }
}

struct span s3_req_collected(struct s3_req *r)
{
    size_t len = evbuffer_get_length(r->collected);
    return span_make((const char *)evbuffer_pullup(r->collected, -1), len);
}

/* Multipart uploads: Create, Complete, Abort, ListParts and UploadPartCopy. UploadPart
 * streams like PutObject (op_put.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/h1.h"
#include "gateway/xmalloc.h"
#include "s3api/httpdate.h"
#include "s3api/range.h"
#include "s3api/request.h"
#include "s3api/xml.h"

static const char *upload_id(struct s3_req *r)
{
    return s3_req_param(r, "uploadId");
}

/* ---- CreateMultipartUpload ---- */

static void on_created(enum s3_err err, const char *id, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<InitiateMultipartUploadResult xmlns=\"%s\">", S3_XML_NS);
    s3_xml_elem(b, "Bucket", r->bucket);
    s3_xml_elem(b, "Key", r->key);
    s3_xml_elem(b, "UploadId", id);
    evbuffer_add_printf(b, "</InitiateMultipartUploadResult>");
    s3_req_reply_xml(r, 200, b);
}

static void create_upload(struct s3_req *r)
{
    if (s3_req_refuse_acl(r))
        return;
    struct s3_obj_meta *m = xmalloc(sizeof(*m));
    s3_obj_meta_init(m);
    enum s3_err err = s3_req_collect_meta(r, m);
    /* The checksum algorithm of the parts, echoed at completion. */
    struct span alg = s3_req_header(r, "x-amz-checksum-algorithm");
    if (err == S3_OK && alg.ptr != NULL) {
        char *v = span_dup(span_trim(alg));
        s3_obj_meta_add(m, "x-amz-checksum-algorithm", v);
        free(v);
    }
    if (err != S3_OK) {
        s3_obj_meta_cleanup(m);
        free(m);
        s3_req_fail(r, err, NULL);
        return;
    }
    s3_req_hold(r);
    s3_store_mpu_create(r->api->store, r->bucket, r->key, m, on_created, r);
    free(m);
}

/* ---- CompleteMultipartUpload ---- */

static void on_completed(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<CompleteMultipartUploadResult xmlns=\"%s\">", S3_XML_NS);
    char *loc = xasprintf("/%s/%s", r->bucket, r->key);
    s3_xml_elem(b, "Location", loc);
    free(loc);
    s3_xml_elem(b, "Bucket", r->bucket);
    s3_xml_elem(b, "Key", r->key);
    evbuffer_add_printf(b, "<ETag>&quot;%s&quot;</ETag>", r->result.etag);
    evbuffer_add_printf(b, "</CompleteMultipartUploadResult>");
    s3_req_reply_xml(r, 200, b);
}

static void complete_body(struct s3_req *r)
{
    struct span body = s3_req_collected(r);
    enum s3_err err = s3_xml_parse_complete(body, &r->parts, &r->n_parts);
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    struct s3_event_origin origin;
    s3_req_origin(r, &origin);
    s3_req_hold(r);
    s3_store_mpu_complete(r->api->store, r->bucket, r->key, upload_id(r), r->parts, r->n_parts,
                          &r->result, &origin, on_completed, r);
}

/* ---- AbortMultipartUpload ---- */

static void on_aborted(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    s3_req_reply_empty(r, 204);
}

/* ---- ListParts ---- */

static void on_parts(enum s3_err err, struct s3_parts_result *res, void *arg)
{
    struct s3_req *r = arg;
    if (!s3_req_resume_ok(r, err))
        return;
    const char *marker = s3_req_param(r, "part-number-marker");
    const char *max = s3_req_param(r, "max-parts");
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    evbuffer_add_printf(b, "<ListPartsResult xmlns=\"%s\">", S3_XML_NS);
    s3_xml_elem(b, "Bucket", r->bucket);
    s3_xml_elem(b, "Key", r->key);
    s3_xml_elem(b, "UploadId", upload_id(r));
    s3_req_write_owner(r, b, "Initiator");
    s3_req_write_owner(r, b, "Owner");
    s3_xml_elem(b, "StorageClass", "STANDARD");
    s3_xml_elem(b, "PartNumberMarker", marker ? marker : "0");
    if (res->truncated)
        s3_xml_elem_u64(b, "NextPartNumberMarker", res->next_marker);
    s3_xml_elem(b, "MaxParts", max ? max : "1000");
    s3_xml_elem_bool(b, "IsTruncated", res->truncated);
    for (size_t i = 0; i < res->n; i++) {
        char date[25];
        s3_date_iso8601(res->parts[i].mtime_ms, date);
        evbuffer_add_printf(b, "<Part>");
        s3_xml_elem_u64(b, "PartNumber", res->parts[i].part_number);
        s3_xml_elem(b, "LastModified", date);
        evbuffer_add_printf(b, "<ETag>&quot;%s&quot;</ETag>", res->parts[i].etag);
        s3_xml_elem_u64(b, "Size", res->parts[i].size);
        evbuffer_add_printf(b, "</Part>");
    }
    evbuffer_add_printf(b, "</ListPartsResult>");
    s3_req_reply_xml(r, 200, b);
}

static void list_parts(struct s3_req *r)
{
    unsigned long long marker = 0, max = 1000;
    const char *m = s3_req_param(r, "part-number-marker");
    const char *x = s3_req_param(r, "max-parts");
    if ((m != NULL && span_to_u64(span_from(m), &marker) != 0) ||
        (x != NULL && span_to_u64(span_from(x), &max) != 0) || marker > 10000) {
        s3_req_fail(r, S3_ERR_INVALID_ARGUMENT, NULL);
        return;
    }
    if (max > 1000)
        max = 1000;
    s3_req_hold(r);
    s3_store_mpu_list_parts(r->api->store, r->bucket, r->key, upload_id(r), (unsigned)marker,
                            (unsigned)max, on_parts, r);
}

/* ---- UploadPartCopy ---- */

static void on_part_copied(enum s3_err err, void *arg)
{
    struct s3_req *r = arg;
    if (s3_req_resume_ok(r, err))
        s3_req_reply_copy_result(r, "CopyPartResult", r->part_result.mtime_ms, r->part_result.etag);
}

static void on_part_source(enum s3_err err, struct s3_obj *obj, void *arg)
{
    struct s3_req *r = arg;
    if (s3_req_resume(r)) {
        s3_obj_free(obj);
        return;
    }
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    const struct s3_obj_meta *src = s3_obj_meta(obj);
    err = s3_copy_conds(r, src);
    uint64_t off = 0, len = src->size;
    struct span range = s3_req_header(r, "x-amz-copy-source-range");
    if (err == S3_OK && range.ptr != NULL)
        err = s3_copy_range_parse(range, src->size, &off, &len);
    s3_obj_free(obj);
    if (err == S3_OK && len > (5ull << 30))
        err = S3_ERR_ENTITY_TOO_LARGE;
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    s3_req_hold(r);
    s3_store_part_copy(r->api->store, r->src_bucket, r->src_key, off, len, r->bucket, r->key,
                       upload_id(r), r->part_number, &r->part_result, on_part_copied, r);
}

static void upload_part_copy(struct s3_req *r)
{
    const char *pn = s3_req_param(r, "partNumber");
    unsigned long long n = 0;
    if (pn == NULL || span_to_u64(span_from(pn), &n) != 0 || n < 1 || n > 10000) {
        s3_req_fail(r, S3_ERR_INVALID_ARGUMENT,
                    "Part number must be an integer between 1 and 10000, inclusive");
        return;
    }
    r->part_number = (unsigned)n;
    enum s3_err err = s3_parse_copy_source(r);
    if (err != S3_OK) {
        s3_req_fail(r, err, NULL);
        return;
    }
    s3_req_hold(r);
    s3_store_get(r->api->store, r->src_bucket, r->src_key, false, on_part_source, r);
}

void s3_op_multipart(struct s3_req *r)
{
    switch (r->op) {
    case S3_OP_CREATE_UPLOAD:
        create_upload(r);
        return;
    case S3_OP_COMPLETE_UPLOAD:
        s3_req_collect_body(r, S3_XML_MAX_BODY, complete_body);
        return;
    case S3_OP_ABORT_UPLOAD:
        s3_req_hold(r);
        s3_store_mpu_abort(r->api->store, r->bucket, r->key, upload_id(r), on_aborted, r);
        return;
    case S3_OP_LIST_PARTS:
        list_parts(r);
        return;
    default:
        upload_part_copy(r);
        return;
    }
}

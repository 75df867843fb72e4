/* The S3 error table and the XML error body. */
#include "s3api/error.h"

#include <string.h>

#include <event2/buffer.h>

#include "s3api/xml.h"

struct row {
    int status;
    const char *code;
    const char *message;
};

static const struct row rows[] = {
#define S3_ERR_ROW(name, status, code, msg) {status, code, msg},
    S3_ERR_TABLE(S3_ERR_ROW)
#undef S3_ERR_ROW
};

int s3_err_status(enum s3_err e)
{
    return e < S3_ERR_COUNT ? rows[e].status : 500;
}

const char *s3_err_code(enum s3_err e)
{
    return e < S3_ERR_COUNT ? rows[e].code : "InternalError";
}

const char *s3_err_message(enum s3_err e)
{
    return e < S3_ERR_COUNT ? rows[e].message : rows[S3_ERR_INTERNAL_ERROR].message;
}

enum s3_err s3_err_from_status(int status)
{
    switch (status) {
    case 408:
        return S3_ERR_REQUEST_TIMEOUT_408;
    case 411:
        return S3_ERR_MISSING_CONTENT_LENGTH;
    case 413:
        return S3_ERR_PAYLOAD_TOO_LARGE;
    case 414:
        return S3_ERR_URI_TOO_LONG;
    case 431:
        return S3_ERR_HEADERS_TOO_LARGE;
    case 501:
        return S3_ERR_NOT_IMPLEMENTED;
    case 503:
        return S3_ERR_SERVICE_UNAVAILABLE;
    default:
        return status >= 500 ? S3_ERR_INTERNAL_ERROR : S3_ERR_BAD_REQUEST;
    }
}

void s3_err_write_xml(struct evbuffer *out, enum s3_err e, const char *message,
                      const char *resource, const char *request_id)
{
    s3_err_write_xml_arg(out, e, message, resource, request_id, NULL, NULL);
}

void s3_err_write_xml_arg(struct evbuffer *out, enum s3_err e, const char *message,
                          const char *resource, const char *request_id, const char *arg_name,
                          const char *arg_value)
{
    s3_xml_declaration(out);
    evbuffer_add_printf(out, "<Error><Code>%s</Code>", s3_err_code(e));
    s3_xml_elem(out, "Message", message != NULL ? message : s3_err_message(e));
    if (arg_name != NULL)
        s3_xml_elem(out, "ArgumentName", arg_name);
    if (arg_value != NULL)
        s3_xml_elem(out, "ArgumentValue", arg_value);
    if (resource != NULL)
        s3_xml_elem(out, "Resource", resource);
    s3_xml_elem(out, "RequestId", request_id != NULL ? request_id : "");
    evbuffer_add(out, "</Error>", 8);
}

/* The S3 error table: every failure of the S3 path maps to one row (HTTP status, Code,
 * default Message), answered through s3_err_write_xml(). Private to s3api/. */
#ifndef FG_S3API_ERROR_H
#define FG_S3API_ERROR_H

struct evbuffer;

#define S3_ERR_TABLE(X)                                                                            \
    X(OK, 200, "OK", "OK")                                                                         \
    X(ACCESS_DENIED, 403, "AccessDenied", "Access Denied")                                         \
    X(AUTHORIZATION_HEADER_MALFORMED, 400, "AuthorizationHeaderMalformed",                         \
      "The authorization header is malformed.")                                                    \
    X(AUTHORIZATION_QUERY_PARAMETERS_ERROR, 400, "AuthorizationQueryParametersError",              \
      "Error parsing the X-Amz-Credential parameter.")                                             \
    X(BAD_DIGEST, 400, "BadDigest",                                                                \
      "The Content-MD5 or checksum you specified did not match what we received.")                 \
    X(BUCKET_ALREADY_EXISTS, 409, "BucketAlreadyExists",                                           \
      "The requested bucket name is not available.")                                               \
    X(BUCKET_ALREADY_OWNED_BY_YOU, 409, "BucketAlreadyOwnedByYou",                                 \
      "Your previous request to create the named bucket succeeded and you already own it.")        \
    X(BUCKET_NOT_EMPTY, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty.")     \
    X(ENTITY_TOO_LARGE, 400, "EntityTooLarge",                                                     \
      "Your proposed upload exceeds the maximum allowed object size.")                             \
    X(ENTITY_TOO_SMALL, 400, "EntityTooSmall",                                                     \
      "Your proposed upload is smaller than the minimum allowed object size.")                     \
    X(INCOMPLETE_BODY, 400, "IncompleteBody",                                                      \
      "You did not provide the number of bytes specified by the Content-Length HTTP header.")      \
    X(INTERNAL_ERROR, 500, "InternalError", "We encountered an internal error. Please try again.") \
    X(INVALID_ACCESS_KEY_ID, 403, "InvalidAccessKeyId",                                            \
      "The AWS access key Id you provided does not exist in our records.")                         \
    X(INVALID_ARGUMENT, 400, "InvalidArgument", "Invalid Argument")                                \
    X(INVALID_BUCKET_NAME, 400, "InvalidBucketName", "The specified bucket is not valid.")         \
    X(INVALID_DIGEST, 400, "InvalidDigest",                                                        \
      "The Content-MD5 or checksum you specified is not valid.")                                   \
    X(INVALID_LOCATION_CONSTRAINT, 400, "InvalidLocationConstraint",                               \
      "The specified location constraint is not valid.")                                           \
    X(INVALID_PART, 400, "InvalidPart",                                                            \
      "One or more of the specified parts could not be found. The part may not have been "         \
      "uploaded, or the specified entity tag may not match the part's entity tag.")                \
    X(INVALID_PART_ORDER, 400, "InvalidPartOrder",                                                 \
      "The list of parts was not in ascending order. Parts must be ordered by part number.")       \
    X(INVALID_RANGE, 416, "InvalidRange", "The requested range is not satisfiable")                \
    X(INVALID_REQUEST, 400, "InvalidRequest", "Invalid Request")                                   \
    X(INVALID_STORAGE_CLASS, 400, "InvalidStorageClass",                                           \
      "The storage class you specified is not valid.")                                             \
    X(KEY_TOO_LONG, 400, "KeyTooLongError", "Your key is too long.")                               \
    X(MALFORMED_XML, 400, "MalformedXML",                                                          \
      "The XML you provided was not well-formed or did not validate against our published "        \
      "schema.")                                                                                   \
    X(METADATA_TOO_LARGE, 400, "MetadataTooLarge",                                                 \
      "Your metadata headers exceed the maximum allowed metadata size.")                           \
    X(METHOD_NOT_ALLOWED, 405, "MethodNotAllowed",                                                 \
      "The specified method is not allowed against this resource.")                                \
    X(MISSING_CONTENT_LENGTH, 411, "MissingContentLength",                                         \
      "You must provide the Content-Length HTTP header.")                                          \
    X(MISSING_REQUEST_BODY, 400, "MissingRequestBodyError", "Request Body is empty.")              \
    X(NO_SUCH_BUCKET, 404, "NoSuchBucket", "The specified bucket does not exist.")                 \
    X(NO_SUCH_KEY, 404, "NoSuchKey", "The specified key does not exist.")                          \
    X(NO_SUCH_UPLOAD, 404, "NoSuchUpload",                                                         \
      "The specified multipart upload does not exist. The upload ID may be invalid, or the "       \
      "upload may have been aborted or completed.")                                                \
    X(NOT_IMPLEMENTED, 501, "NotImplemented",                                                      \
      "A header or query you provided implies functionality that is not implemented.")             \
    X(NOT_MODIFIED, 304, "NotModified", "Not Modified")                                            \
    X(PRECONDITION_FAILED, 412, "PreconditionFailed",                                              \
      "At least one of the preconditions you specified did not hold.")                             \
    X(REQUEST_TIMEOUT, 400, "RequestTimeout",                                                      \
      "Your socket connection to the server was not read from or written to within the "           \
      "timeout period.")                                                                           \
    X(REQUEST_TIME_TOO_SKEWED, 403, "RequestTimeTooSkewed",                                        \
      "The difference between the request time and the server's time is too large.")               \
    X(SERVICE_UNAVAILABLE, 503, "ServiceUnavailable", "Please reduce your request rate.")          \
    X(SIGNATURE_DOES_NOT_MATCH, 403, "SignatureDoesNotMatch",                                      \
      "The request signature we calculated does not match the signature you provided. Check "      \
      "your key and signing method.")                                                              \
    X(X_AMZ_CONTENT_SHA256_MISMATCH, 400, "XAmzContentSHA256Mismatch",                             \
      "The provided 'x-amz-content-sha256' header does not match what was computed.")              \
    X(BAD_REQUEST, 400, "BadRequest", "Bad Request")                                               \
    X(URI_TOO_LONG, 414, "UriTooLong", "The request URI is too long.")                             \
    X(HEADERS_TOO_LARGE, 431, "RequestHeaderSectionTooLarge",                                      \
      "Your request header section exceeds the maximum allowed size.")                             \
    X(REQUEST_TIMEOUT_408, 408, "RequestTimeout",                                                  \
      "Your socket connection to the server was not read from or written to within the "           \
      "timeout period.")                                                                           \
    X(PAYLOAD_TOO_LARGE, 413, "EntityTooLarge",                                                    \
      "Your proposed upload exceeds the maximum allowed size.")

enum s3_err {
#define S3_ERR_ENUM(name, status, code, msg) S3_ERR_##name,
    S3_ERR_TABLE(S3_ERR_ENUM)
#undef S3_ERR_ENUM
        S3_ERR_COUNT
};

#define S3_OK S3_ERR_OK

int s3_err_status(enum s3_err e);
const char *s3_err_code(enum s3_err e);
const char *s3_err_message(enum s3_err e);
/* The error for an HTTP status the transport layer answers itself (400, 408, ...). */
enum s3_err s3_err_from_status(int status);
/* Appends `<Error><Code/><Message/><Resource/><RequestId/></Error>` (XML-escaped) to `out`.
 * `message` NULL -> the table's message; `resource` may be NULL. */
void s3_err_write_xml(struct evbuffer *out, enum s3_err e, const char *message,
                      const char *resource, const char *request_id);
/* The same with `<ArgumentName/>` and `<ArgumentValue/>` after the Message, as S3 names the
 * argument an InvalidArgument is about (either may be NULL: left out). */
void s3_err_write_xml_arg(struct evbuffer *out, enum s3_err e, const char *message,
                          const char *resource, const char *request_id, const char *arg_name,
                          const char *arg_value);

#endif

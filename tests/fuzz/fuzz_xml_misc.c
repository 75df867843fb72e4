/* Fuzzes the CreateBucketConfiguration and AccessControlPolicy body parsers
 * (s3api/xml_in.c) with the same input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct span body = span_make((const char *)data, size);
    char loc[32];

    /* The first byte picks a small buffer now and then, to reach the too-long path. */
    size_t cap = size > 0 && data[0] % 4 == 0 ? 4 : sizeof(loc);
    enum s3_err e = s3_xml_parse_create_bucket(body, loc, cap);
    if (memchr(loc, '\0', cap) == NULL)
        abort();
    if (e != S3_OK && e != S3_ERR_MALFORMED_XML && e != S3_ERR_INVALID_LOCATION_CONSTRAINT)
        abort();
    if (e != S3_OK && loc[0] != '\0')
        abort();

    e = s3_xml_parse_acl(body);
    if (e != S3_OK && e != S3_ERR_MALFORMED_XML && e != S3_ERR_NOT_IMPLEMENTED)
        abort();
    return 0;
}

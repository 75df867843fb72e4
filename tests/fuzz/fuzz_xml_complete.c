/* Fuzzes the CompleteMultipartUpload body parser (s3api/xml_in.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct s3_part_ref *parts = NULL;
    size_t n = 0;
    enum s3_err e = s3_xml_parse_complete(span_make((const char *)data, size), &parts, &n);

    if (e == S3_OK) {
        /* The contract: 1..10000 parts in strictly ascending order with NUL-terminated ETags. */
        if (n == 0 || n > 10000 || parts == NULL)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (parts[i].part_number < 1 || parts[i].part_number > 10000 ||
                memchr(parts[i].etag, '\0', sizeof(parts[i].etag)) == NULL ||
                parts[i].etag[0] == '\0')
                abort();
            if (i > 0 && parts[i].part_number <= parts[i - 1].part_number)
                abort();
        }
    } else {
        /* Failures leave nothing behind and are one of the documented errors. */
        bool known =
            e == S3_ERR_MALFORMED_XML || e == S3_ERR_INVALID_PART_ORDER || e == S3_ERR_INVALID_PART;
        if (parts != NULL || n != 0 || !known)
            abort();
    }
    free(parts);
    return 0;
}

/* Fuzzes the DeleteObjects body parser (s3api/xml_in.c). */
#include <stdint.h>
#include <stdlib.h>

#include "s3api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **keys = NULL;
    size_t n = 0;
    bool quiet = false;
    enum s3_err e = s3_xml_parse_delete(span_make((const char *)data, size), &keys, &n, &quiet);

    if (e == S3_OK) {
        if (n == 0 || n > 1000 || keys == NULL)
            abort();
        for (size_t i = 0; i < n; i++)
            if (keys[i] == NULL)
                abort();
    } else if (keys != NULL || n != 0 || quiet) {
        abort();
    }
    s3_xml_free_keys(keys, n);
    return 0;
}

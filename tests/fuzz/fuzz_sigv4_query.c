/* Fuzzes query authentication: the input is the raw query string of GET /test.txt (SigV4
 * presigned or SigV2 query form, or neither). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/span.h"
#include "s3api/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct s3_user users[] = {
    {.name = "example",
     .access_key = "AKIAIOSFODNN7EXAMPLE",
     .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct s3_auth_config cfg = {.region = "us-east-1",
                                 .users = users,
                                 .n_users = 1,
                                 .sigv2 = true,
                                 .max_skew_s = 900,
                                 .max_presign_s = 604800};
    struct gw_header h[] = {
        {SPAN_LIT("host"), SPAN_LIT("examplebucket.s3.amazonaws.com")},
        {SPAN_LIT("x-amz-content-sha256"), SPAN_LIT("UNSIGNED-PAYLOAD")},
    };
    struct s3_auth_req req = {.method = SPAN_LIT("GET"),
                              .path = SPAN_LIT("/test.txt"),
                              .headers = h,
                              .n_headers = size % 2 == 0 ? 1 : 2,
                              .vhost_bucket = "examplebucket",
                              .now = 1369353600 + 60};
    struct s3_auth out;
    char msg[256];
    char *copy = malloc(size + 1); /* exact-size heap copy, so ASan sees overreads */

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    req.query = span_make(copy, size);
    enum s3_err e = s3_auth_verify(&cfg, &req, &out, msg, sizeof(msg));
    if (e < S3_OK || e >= S3_ERR_COUNT || memchr(msg, '\0', sizeof(msg)) == NULL)
        abort();
    free(copy);
    return 0;
}

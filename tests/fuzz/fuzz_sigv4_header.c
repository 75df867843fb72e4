/* Fuzzes header authentication: the first input line is the Authorization value (none when
 * empty), then "name:value" header lines; a line "/path?query" sets the request target and
 * "@METHOD" the method. Runs s3_auth_verify (SigV4 and SigV2 header forms). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/span.h"
#include "s3api/auth.h"

#define MAX_HEADERS 32

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
    struct gw_header h[MAX_HEADERS];
    struct s3_auth_req req = {.method = SPAN_LIT("GET"),
                              .path = SPAN_LIT("/test.txt"),
                              .query = SPAN_LIT(""),
                              .headers = h,
                              .now = 1369353600}; /* 20130524T000000Z */
    struct s3_auth out;
    char msg[256];
    char *buf = malloc(size + 1);
    size_t n = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    struct span rest = span_make(buf, size), line;
    rest = span_cut(rest, '\n', &line);
    if (line.len > 0) {
        h[n].name = SPAN_LIT("authorization");
        h[n++].value = line;
    }
    while (rest.ptr != NULL && n < MAX_HEADERS) {
        rest = span_cut(rest, '\n', &line);
        if (line.len > 0 && line.ptr[0] == '/') {
            struct span path;
            req.query = span_cut(line, '?', &path);
            req.path = path;
            continue;
        }
        if (line.len > 0 && line.ptr[0] == '@') {
            req.method = span_make(line.ptr + 1, line.len - 1);
            continue;
        }
        struct span name, value = span_cut(line, ':', &name);
        if (value.ptr == NULL || name.len == 0)
            continue;
        /* The HTTP layer hands names over lowercased. */
        for (size_t i = 0; i < name.len; i++)
            if (name.ptr[i] >= 'A' && name.ptr[i] <= 'Z')
                buf[(size_t)(name.ptr - buf) + i] = (char)(name.ptr[i] + 32);
        h[n].name = name;
        h[n++].value = value;
    }
    req.n_headers = n;
    enum s3_err e = s3_auth_verify(&cfg, &req, &out, msg, sizeof(msg));
    if (e < S3_OK || e >= S3_ERR_COUNT || memchr(msg, '\0', sizeof(msg)) == NULL)
        abort();
    if (e == S3_OK && out.kind != S3_AUTH_ANONYMOUS && out.user == NULL)
        abort();
    free(buf);
    return 0;
}

/* Request classification: bucket, key and operation from method, path, query and Host.
 * Private to s3api/. */
#ifndef FG_S3API_ROUTE_H
#define FG_S3API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/span.h"
#include "s3api/error.h"
#include "s3api/request.h"

struct s3_route_in {
    struct span method;
    struct span path; /* raw, percent-encoded, before '?' */
    struct span host;
    const char *domain; /* virtual-hosted base domain or NULL */
    const struct s3_param *params;
    size_t n_params;
    bool has_copy_source; /* x-amz-copy-source present */
};

struct s3_route_out {
    enum s3_op op;
    char *bucket; /* NULL: service level */
    char *key;    /* NULL: bucket level; may hold NULs (key_len), checked later */
    size_t key_len;
    char *vhost_bucket; /* set when the bucket came from Host */
};

enum s3_err s3_route(const struct s3_route_in *in, struct s3_route_out *out);
void s3_route_cleanup(struct s3_route_out *out);

#endif

/* Conditional requests: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since (and
 * the x-amz-copy-source-if-* forms), evaluated as S3 documents. Private to s3api/. */
#ifndef FG_S3API_COND_H
#define FG_S3API_COND_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/span.h"
#include "s3api/error.h"

struct s3_conds {
    struct span if_match; /* ptr NULL when absent */
    struct span if_none_match;
    struct span if_modified_since;
    struct span if_unmodified_since;
};

/* etag: hex without quotes. `read_op`: GET/HEAD (a failed If-None-Match or If-Modified-Since
 * gives S3_ERR_NOT_MODIFIED) versus CopyObject's source conditions (PRECONDITION_FAILED).
 * S3 rules: If-Match true + If-Unmodified-Since false -> OK; If-None-Match false +
 * If-Modified-Since true -> NOT_MODIFIED. ETag lists and `*` are understood; unparsable
 * dates are ignored. */
enum s3_err s3_conds_check(const struct s3_conds *c, const char *etag, int64_t mtime_ms,
                           bool read_op);

#endif

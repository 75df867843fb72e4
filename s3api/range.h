/* The Range request header for GetObject and UploadPartCopy's x-amz-copy-source-range.
 * Private to s3api/. */
#ifndef FG_S3API_RANGE_H
#define FG_S3API_RANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/span.h"
#include "s3api/error.h"

/* Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against an object of `size` bytes.
 * S3_OK with *has_range false when the header is absent, unparsable or a multi-range (S3
 * then serves the whole object); S3_OK with [*off, *off + *len) when satisfiable;
 * S3_ERR_INVALID_RANGE when not (a start at or past the end, or a zero-length suffix). */
enum s3_err s3_range_parse(struct span hdr, uint64_t size, bool *has_range, uint64_t *off,
                           uint64_t *len);
/* x-amz-copy-source-range: only `bytes=a-b`, which must lie within `size`
 * (S3_ERR_INVALID_RANGE otherwise, S3_ERR_INVALID_ARGUMENT when malformed). */
enum s3_err s3_copy_range_parse(struct span hdr, uint64_t size, uint64_t *off, uint64_t *len);

#endif

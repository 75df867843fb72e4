/* aws-chunked body decoder: `hex-size[;chunk-signature=sig]\r\n data \r\n ... 0...\r\n`,
 * then optional trailers (`name:value\r\n`, ending with an empty line; with a signed trailer,
 * `x-amz-trailer-signature:sig`). Checks each chunk signature against the chain seeded by
 * the request signature, and the trailer signature. Header auth is in auth.c.
 * Private to s3api/. */
#ifndef FG_S3API_CHUNKED_H
#define FG_S3API_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/span.h"
#include "s3api/auth.h"
#include "s3api/error.h"

struct evbuffer;
struct s3_chunked;

/* `auth` (copied) gives the payload form (one of the STREAMING ones) and, for the signed
 * ones, the signing context. Trailer bytes beyond `max_trailer_bytes` -> error. */
struct s3_chunked *s3_chunked_new(const struct s3_auth *auth, size_t max_trailer_bytes);
/* Decodes all of `in` (drained), appending payload bytes to `out`. Payload of a chunk whose
 * signature is not yet checked may be appended: the caller publishes nothing before
 * s3_chunked_finish() succeeds. Errors: S3_ERR_SIGNATURE_DOES_NOT_MATCH, S3_ERR_INCOMPLETE_BODY,
 * S3_ERR_INVALID_REQUEST (bad framing); after an error every call returns it again. */
enum s3_err s3_chunked_feed(struct s3_chunked *c, struct evbuffer *in, struct evbuffer *out);
/* The body ended: S3_OK only if the final chunk (and trailer, with its signature when
 * signed) was complete and valid. */
enum s3_err s3_chunked_finish(struct s3_chunked *c);
uint64_t s3_chunked_decoded_bytes(const struct s3_chunked *c);
/* Trailers received (names lowercase, without x-amz-trailer-signature). */
const struct gw_header *s3_chunked_trailers(const struct s3_chunked *c, size_t *n);
void s3_chunked_free(struct s3_chunked *c);

#endif

/* Byte encodings the S3 path needs: hex, base64, SigV4 UriEncode, percent-decoding, and
 * UTF-8 validation. Private to s3api/. */
#ifndef FG_S3API_ENCODE_H
#define FG_S3API_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/span.h"

struct evbuffer;

/* Lowercase hex of `n` bytes into out[2n+1]. */
void s3_hex(const unsigned char *in, size_t n, char *out);
/* Base64 (standard alphabet, padded) of `n` bytes into out (cap >= 4*((n+2)/3)+1). */
size_t s3_base64_encode(const unsigned char *in, size_t n, char *out, size_t cap);
/* Strict decode; returns bytes written or -1 on bad input or overflow of `cap`. */
long s3_base64_decode(struct span in, unsigned char *out, size_t cap);
/* SigV4 UriEncode: keep A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash), %XX uppercase else. */
void s3_uri_encode(struct evbuffer *out, struct span in, bool keep_slash);
/* The same into out[cap], cut at `cap` bytes (possibly inside an escape); returns the bytes
 * written. No NUL is added. */
size_t s3_uri_encode_to(char *out, size_t cap, struct span in, bool keep_slash);
/* Percent-decodes `in` into a new NUL-terminated heap string (xmalloc); `+` stays `+` unless
 * plus_is_space. *out_len gets the length (the result may contain NULs: callers reject
 * those where they matter). NULL on a malformed escape. */
char *s3_uri_decode(struct span in, bool plus_is_space, size_t *out_len);
/* The same into out[cap]: returns the decoded length (bytes past `cap` are counted, not
 * written, as snprintf does) or -1 on a malformed escape. No NUL is added. */
long s3_uri_decode_buf(struct span in, bool plus_is_space, char *out, size_t cap);
/* True when `in` percent-decodes (`+` staying `+`) to exactly the string `s`; false on a
 * malformed escape. Allocates nothing. */
bool s3_uri_decoded_eq(struct span in, const char *s);
/* s3_uri_encode(s3_uri_decode(in, false)) in one pass into `out`, which must have room for
 * 3 * in.len bytes: the SigV4 canonical form of a path or query part as sent. Returns the
 * length written, or -1 on a malformed escape. */
long s3_uri_reencode(struct span in, bool keep_slash, char *out);
/* True when `s` is well-formed UTF-8 (no overlongs, no surrogates). */
bool s3_utf8_valid(const char *s, size_t len);

#endif

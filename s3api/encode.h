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
/* Percent-decodes `in` into a new NUL-terminated heap string (xmalloc); `+` stays `+` unless
 * plus_is_space. *out_len gets the length (the result may contain NULs: callers reject
 * those where they matter). NULL on a malformed escape. */
char *s3_uri_decode(struct span in, bool plus_is_space, size_t *out_len);
/* True when `s` is well-formed UTF-8 (no overlongs, no surrogates). */
bool s3_utf8_valid(const char *s, size_t len);

#endif

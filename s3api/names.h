/* Bucket naming rules and object key checks. Private to s3api/. */
#ifndef FG_S3API_NAMES_H
#define FG_S3API_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "s3api/error.h"

/* S3's general-purpose bucket rules: 3-63 chars of a-z 0-9 . -, starting and ending with a
 * letter or digit, no "..", not an IP address, no "xn--" prefix, no "-s3alias" or
 * "--ol-s3" suffix. */
bool s3_bucket_name_valid(const char *name);
/* Names whose path-style URLs are the admin API's on the same port ("health", "system", "job",
 * "run", "metrics"): CreateBucket refuses them. */
bool s3_bucket_name_reserved(const char *name);
/* Keys: 1..1024 bytes of well-formed UTF-8 without C0 controls or DEL
 * (S3_ERR_KEY_TOO_LONG, S3_ERR_INVALID_ARGUMENT). "../", "//", a leading "/", spaces and "%"
 * are ordinary key bytes. */
enum s3_err s3_key_check(const char *key, size_t len);

#endif

/* Dates on the S3 wire: RFC 1123 (Last-Modified, Date, If-*-Since), ISO 8601 (XML bodies),
 * and the SigV4 basic form. Private to s3api/. */
#ifndef FG_S3API_HTTPDATE_H
#define FG_S3API_HTTPDATE_H

#include <stdint.h>
#include <time.h>

#include "gateway/span.h"

/* "Sun, 06 Nov 1994 08:49:37 GMT" into out[30]. */
void s3_date_rfc1123(int64_t ms, char out[30]);
/* "2009-10-12T17:50:30.000Z" into out[25]. */
void s3_date_iso8601(int64_t ms, char out[25]);
/* Parses RFC 1123, RFC 850 and asctime dates; -1 when none fits. */
int s3_date_parse_http(struct span s, time_t *out);
/* Parses "YYYYMMDDTHHMMSSZ"; -1 when malformed. */
int s3_date_parse_amz(struct span s, time_t *out);

#endif

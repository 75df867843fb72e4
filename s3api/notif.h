/* Bucket notification configurations: the rules S3 applies to a parsed
 * PutBucketNotificationConfiguration (event names, Ids, overlaps, destinations), the stored
 * encoding that s3_notif_decode() (s3api.h) reads, and the GetBucketNotificationConfiguration
 * document. The XML is read by s3_xml_parse_notification() (xml_in.c). Private to s3api/. */
#ifndef FG_S3API_NOTIF_H
#define FG_S3API_NOTIF_H

#include <stdbool.h>
#include <stddef.h>

#include "s3api/s3api.h"
#include "s3api/xml.h"

struct evbuffer;

#define S3_NOTIF_N_KINDS     3
#define S3_NOTIF_FORMAT      1u  /* the first byte of an encoded configuration */
#define S3_NOTIF_GEN_ID_LEN  32u /* hex digits of a generated Id */
#define S3_NOTIF_UNKNOWN_ARN "The destination is not one this gateway delivers to."
#define S3_NOTIF_UNVALIDATED "Unable to validate the following destination configurations"
#define S3_NOTIF_OVERLAP                                                                           \
    "Configurations overlap. Configurations on the same bucket cannot share a common event "       \
    "type."
#define S3_NOTIF_BAD_EVENT "A specified event is not supported for notifications."

/* "QueueConfiguration", "TopicConfiguration", "CloudFunctionConfiguration". */
const char *s3_notif_kind_elem(enum s3_notif_kind k);
/* The element holding the ARN: "Queue", "Topic", "CloudFunction". */
const char *s3_notif_kind_arn_elem(enum s3_notif_kind k);
/* One of the event names S3 notifies about (this gateway reports all of them): the
 * ObjectCreated and ObjectRemoved families and their wildcards. */
bool s3_notif_event_supported(const char *name);

/* Checks a parsed configuration as S3 does, in this order: every event name is supported,
 * no Id is given twice, no two rules overlap (their event sets intersect, wildcards included,
 * and their prefixes and suffixes overlap: one a prefix/suffix of the other, absent = all),
 * and `check` knows every destination (NULL: none is known). Then gives each rule without an
 * Id a random one. S3_OK, or S3_ERR_INVALID_ARGUMENT with `e` filled (the destination error
 * names the ARN in ArgumentName). Runs `check` on the caller's thread. */
enum s3_err s3_notif_validate(struct s3_notif_config *c, s3_arn_check_fn *check, void *check_arg,
                              struct s3_xml_err *e);
/* The stored form (xmalloc'ed; *len set): version byte, then the rules with length-prefixed
 * strings. s3_notif_decode() gives back an equal configuration. */
unsigned char *s3_notif_encode(const struct s3_notif_config *c, size_t *len);
/* The GetBucketNotificationConfiguration document for `c` (no rules: an empty element). */
void s3_notif_write_xml(struct evbuffer *out, const struct s3_notif_config *c);

#endif

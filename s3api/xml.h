/* S3 XML: responses written straight into evbuffers with our own escaper (xml_out.c), and
 * request bodies read with libxml2 under rules that refuse any DOCTYPE, entities, network
 * access and oversized input (xml_in.c). Private to s3api/. */
#ifndef FG_S3API_XML_H
#define FG_S3API_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/span.h"
#include "s3api/error.h"
#include "s3api/store.h"

struct evbuffer;

#define S3_XML_NS "http://s3.amazonaws.com/doc/2006-03-01/"
/* Request bodies larger than this are refused before parsing (MalformedXML). */
#define S3_XML_MAX_BODY (2u << 20)

/* ---- out ---- */
/* `<?xml version="1.0" encoding="UTF-8"?>\n` */
void s3_xml_declaration(struct evbuffer *out);
/* Escapes & < > " ' and C0 controls (as &#xN;, as S3 does). */
void s3_xml_escape(struct evbuffer *out, const char *s, size_t len);
/* <name>escaped value</name> */
void s3_xml_elem(struct evbuffer *out, const char *name, const char *value);
void s3_xml_elem_u64(struct evbuffer *out, const char *name, unsigned long long v);
void s3_xml_elem_bool(struct evbuffer *out, const char *name, bool v);
/* <name>value</name> where value is percent-encoded (encoding-type=url) when `url` */
void s3_xml_elem_key(struct evbuffer *out, const char *name, const char *key, bool url);

/* ---- in ---- (all return S3_OK or S3_ERR_MALFORMED_XML unless noted) */
/* CompleteMultipartUpload: <Part><PartNumber/><ETag/></Part>...; quotes stripped from ETags.
 * Parts not in ascending order -> S3_ERR_INVALID_PART_ORDER; none -> MALFORMED_XML;
 * more than 10000 -> MALFORMED_XML. *parts is xmalloc'ed; the caller frees.
 * Also: a PartNumber outside 1..10000 -> MALFORMED_XML; an empty ETag or one too long for
 * s3_part_ref.etag -> S3_ERR_INVALID_PART. */
enum s3_err s3_xml_parse_complete(struct span body, struct s3_part_ref **parts, size_t *n);
/* DeleteObjects: <Delete><Quiet/>?<Object><Key/><VersionId/>?</Object>...; 1..1000 keys.
 * *keys is an xmalloc'ed array of xmalloc'ed strings; free with s3_xml_free_keys(). */
enum s3_err s3_xml_parse_delete(struct span body, char ***keys, size_t *n, bool *quiet);
void s3_xml_free_keys(char **keys, size_t n);
/* CreateBucketConfiguration: <LocationConstraint/> (copied into loc, "" when absent/empty
 * body). A constraint that does not fit loc_cap -> S3_ERR_INVALID_LOCATION_CONSTRAINT. */
enum s3_err s3_xml_parse_create_bucket(struct span body, char *loc, size_t loc_cap);
/* AccessControlPolicy: S3_OK if it grants only FULL_CONTROL to the owner (what "private"
 * means), S3_ERR_NOT_IMPLEMENTED for other grants, MALFORMED_XML when broken. */
enum s3_err s3_xml_parse_acl(struct span body);

/* An error that names more than its code: a message (static; NULL = the table's) and the
 * ArgumentName/ArgumentValue S3 adds to InvalidArgument (heap; NULL = none). The first error
 * set wins; s3_xml_err_cleanup() frees the strings. */
struct s3_xml_err {
    enum s3_err err;
    const char *msg;
    char *arg_name;
    char *arg_value;
};
/* Records `err` unless one is already recorded; copies name/value (NULL: none). Returns the
 * error now recorded. */
enum s3_err s3_xml_err_set(struct s3_xml_err *e, enum s3_err err, const char *msg,
                           const char *arg_name, const char *arg_value);
void s3_xml_err_cleanup(struct s3_xml_err *e);

/* NotificationConfiguration (PutBucketNotificationConfiguration): Queue/Topic/
 * CloudFunctionConfiguration elements, each with Id?, the ARN element, Event+ and
 * Filter?/S3Key/FilterRule*{Name,Value}, into `out` (zeroed first; the caller frees it with
 * s3_notif_config_free(), also on failure). EventBridgeConfiguration is accepted and ignored.
 * Only the document is checked here: MALFORMED_XML for a broken or unexpected structure;
 * INVALID_ARGUMENT (with `e` filled) for a filter rule named other than prefix/suffix, two
 * prefix or two suffix rules, a value over S3_NOTIF_FILTER_MAX bytes, or an Id over
 * S3_NOTIF_ID_MAX. Event names, Ids, overlaps and destinations: s3_notif_validate(). */
#define S3_NOTIF_FILTER_MAX 1024u
#define S3_NOTIF_ID_MAX     255u
#define S3_NOTIF_ARN_MAX    2048u
#define S3_NOTIF_RULES_MAX  1000u
enum s3_err s3_xml_parse_notification(struct span body, struct s3_notif_config *out,
                                      struct s3_xml_err *e);

#endif

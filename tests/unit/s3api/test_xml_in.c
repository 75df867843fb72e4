/* s3api/xml_in.c: the four body parsers, and the safe reader under hostile documents (no
 * entity expansion, no file or network access, bounded time and memory, nothing on stderr). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlmemory.h>

#include "gateway/xmalloc.h"
#include "s3api/xml.h"
#include "tests/unit/tap.h"

/* "ünïcødé" */
#define UNICODE_KEY                                                                                \
    "\xc3\xbc"                                                                                     \
    "n"                                                                                            \
    "\xc3\xaf"                                                                                     \
    "c"                                                                                            \
    "\xc3\xb8"                                                                                     \
    "d"                                                                                            \
    "\xc3\xa9"

#define NS_ATTR " xmlns=\"" S3_XML_NS "\""

/* ---- libxml2 accounting: every allocation it makes, and every external load it tries ---- */

struct mem_hdr {
    size_t size;
    size_t pad; /* keeps the payload 16-byte aligned */
};

static size_t mem_now, mem_peak;
static int n_external_loads;

static void *count_malloc(size_t n)
{
    struct mem_hdr *h = malloc(sizeof(*h) + n);
    if (h == NULL)
        return NULL;
    h->size = n;
    mem_now += n;
    if (mem_now > mem_peak)
        mem_peak = mem_now;
    return h + 1;
}

static void count_free(void *p)
{
    if (p == NULL)
        return;
    struct mem_hdr *h = (struct mem_hdr *)p - 1;
    mem_now -= h->size;
    free(h);
}

static void *count_realloc(void *p, size_t n)
{
    if (p == NULL)
        return count_malloc(n);
    struct mem_hdr *h = (struct mem_hdr *)p - 1;
    size_t old = h->size;
    struct mem_hdr *nh = realloc(h, sizeof(*nh) + n);
    if (nh == NULL)
        return NULL;
    nh->size = n;
    mem_now = mem_now - old + n;
    if (mem_now > mem_peak)
        mem_peak = mem_now;
    return nh + 1;
}

static char *count_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = count_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static xmlParserInput *on_external_load(const char *url, const char *id, xmlParserCtxt *ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    n_external_loads++;
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- helpers ---- */

static struct span sp(const char *s)
{
    return span_from(s);
}

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = xmalloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static enum s3_err complete(const char *body, struct s3_part_ref **parts, size_t *n)
{
    return s3_xml_parse_complete(sp(body), parts, n);
}

static enum s3_err complete_err(const char *body)
{
    struct s3_part_ref *parts = NULL;
    size_t n = 99;
    enum s3_err e = complete(body, &parts, &n);
    if (e != S3_OK && (parts != NULL || n != 0))
        e = S3_ERR_INTERNAL_ERROR; /* outputs must be cleared on failure */
    free(parts);
    return e;
}

static enum s3_err delete_err_len(struct span body)
{
    char **keys = NULL;
    size_t n = 99;
    bool quiet = true;
    enum s3_err e = s3_xml_parse_delete(body, &keys, &n, &quiet);
    if (e != S3_OK && (keys != NULL || n != 0 || quiet))
        e = S3_ERR_INTERNAL_ERROR;
    s3_xml_free_keys(keys, n);
    return e;
}

static enum s3_err delete_err(const char *body)
{
    return delete_err_len(sp(body));
}

/* <CompleteMultipartUpload> with parts numbered `nums`. */
static char *complete_body(const unsigned *nums, size_t n)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<CompleteMultipartUpload" NS_ATTR ">");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b,
                            "<Part><PartNumber>%u</PartNumber>"
                            "<ETag>\"0123456789abcdef0123456789abcdef\"</ETag></Part>",
                            nums[i]);
    evbuffer_add_printf(b, "</CompleteMultipartUpload>");
    char *s = drain(b);
    evbuffer_free(b);
    return s;
}

static char *delete_body(size_t n_keys)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<Delete" NS_ATTR ">");
    for (size_t i = 0; i < n_keys; i++)
        evbuffer_add_printf(b, "<Object><Key>key-%zu</Key></Object>", i);
    evbuffer_add_printf(b, "</Delete>");
    char *s = drain(b);
    evbuffer_free(b);
    return s;
}

/* ---- CompleteMultipartUpload ---- */

static void test_complete_accepts_namespaced_body_with_quoted_etags(void)
{
    struct s3_part_ref *parts = NULL;
    size_t n = 0;
    const char *body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<CompleteMultipartUpload" NS_ATTR ">\n"
                       "  <Part>\n    <PartNumber>1</PartNumber>\n"
                       "    <ETag>\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"</ETag>\n  </Part>\n"
                       "  <Part><ETag>&quot;bbbb&quot;</ETag><PartNumber> 2 </PartNumber></Part>\n"
                       "  <Part><PartNumber>7</PartNumber><ETag><![CDATA[\"cc\"]]></ETag>"
                       "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>\n"
                       "</CompleteMultipartUpload>\n";
    is_int(complete(body, &parts, &n), S3_OK, "parses");
    is_int(n, 3, "three parts");
    if (n == 3) {
        is_int(parts[0].part_number, 1, "part 1");
        is_str(parts[0].etag, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "quotes stripped");
        is_int(parts[1].part_number, 2, "part 2 (whitespace trimmed)");
        is_str(parts[1].etag, "bbbb", "&quot; quotes stripped");
        is_int(parts[2].part_number, 7, "part 7");
        is_str(parts[2].etag, "cc", "CDATA ETag");
    }
    free(parts);
}

static void test_complete_accepts_body_without_namespace_or_with_prefix(void)
{
    struct s3_part_ref *parts = NULL;
    size_t n = 0;
    is_int(complete("<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>abc</ETag>"
                    "</Part></CompleteMultipartUpload>",
                    &parts, &n),
           S3_OK, "no namespace");
    ok(n == 1 && parts[0].part_number == 3 && strcmp(parts[0].etag, "abc") == 0, "unquoted ETag");
    free(parts);
    is_int(complete("<s3:CompleteMultipartUpload xmlns:s3=\"" S3_XML_NS "\"><s3:Part>"
                    "<s3:PartNumber>1</s3:PartNumber><s3:ETag>x</s3:ETag></s3:Part>"
                    "</s3:CompleteMultipartUpload>",
                    &parts, &n),
           S3_OK, "prefixed namespace matched by local name");
    ok(n == 1, "one part");
    free(parts);
}

static void test_complete_rejects_bad_order(void)
{
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag>"
                        "</Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_INVALID_PART_ORDER, "descending -> InvalidPartOrder");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag>"
                        "</Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_INVALID_PART_ORDER, "repeated part -> InvalidPartOrder");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag>"
                        "</Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part>"
                        "<Part><PartNumber>x</PartNumber><ETag>b</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "malformed part outranks the order");
}

static void test_complete_rejects_malformed(void)
{
    is_int(complete_err(""), S3_ERR_MALFORMED_XML, "empty body");
    is_int(complete_err("<CompleteMultipartUpload" NS_ATTR "/>"), S3_ERR_MALFORMED_XML, "no parts");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag>"
                        "</Part>"),
           S3_ERR_MALFORMED_XML, "unclosed root");
    is_int(complete_err("<Delete><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Delete>"),
           S3_ERR_MALFORMED_XML, "wrong root");
    const char *bad_nums[] = {
        "abc", "1x", "-1", "", "0", "10001", "+1", "0x10", "99999999999999999999999", "1.0"};
    for (size_t i = 0; i < sizeof(bad_nums) / sizeof(bad_nums[0]); i++) {
        char *body = xasprintf("<CompleteMultipartUpload><Part><PartNumber>%s</PartNumber>"
                               "<ETag>a</ETag></Part></CompleteMultipartUpload>",
                               bad_nums[i]);
        is_int(complete_err(body), S3_ERR_MALFORMED_XML, bad_nums[i]);
        free(body);
    }
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "missing ETag");
    is_int(complete_err("<CompleteMultipartUpload><Part><ETag>a</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "missing PartNumber");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                        "<PartNumber>2</PartNumber><ETag>a</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "two PartNumbers");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1<b/></PartNumber>"
                        "<ETag>a</ETag></Part></CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "markup inside a value");
    is_int(complete_err("<CompleteMultipartUpload><x:Part><PartNumber>1</PartNumber>"
                        "<ETag>a</ETag></x:Part></CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "undeclared namespace prefix");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                        "<ETag>&bogus;</ETag></Part></CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "undeclared entity");
    is_int(complete_err("<!DOCTYPE CompleteMultipartUpload><CompleteMultipartUpload><Part>"
                        "<PartNumber>1</PartNumber><ETag>a</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_MALFORMED_XML, "even a harmless DOCTYPE");
}

static void test_complete_rejects_impossible_etag(void)
{
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                        "<ETag>\"\"</ETag></Part></CompleteMultipartUpload>"),
           S3_ERR_INVALID_PART, "empty ETag -> InvalidPart");
    is_int(complete_err("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
                        "0123456789abcdef0123456789abcdef0123456789abcdef</ETag></Part>"
                        "</CompleteMultipartUpload>"),
           S3_ERR_INVALID_PART, "48-char ETag -> InvalidPart");
}

static void test_complete_counts_10000_parts(void)
{
    unsigned *nums = xcalloc(10001, sizeof(*nums));
    for (unsigned i = 0; i < 10001; i++)
        nums[i] = i + 1;

    char *body = complete_body(nums, 10000);
    struct s3_part_ref *parts = NULL;
    size_t n = 0;
    is_int(complete(body, &parts, &n), S3_OK, "10000 parts accepted");
    ok(n == 10000 && parts[9999].part_number == 10000, "all of them");
    free(parts);
    free(body);

    nums[10000] = 10000; /* the 10001st entry; the count alone must refuse it */
    body = complete_body(nums, 10001);
    is_int(complete_err(body), S3_ERR_MALFORMED_XML, "10001 parts -> MalformedXML");
    free(body);
    free(nums);
}

static void test_complete_10000_parts_with_checksums_fit_the_budget(void)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<CompleteMultipartUpload" NS_ATTR ">\n");
    for (unsigned i = 1; i <= 10000; i++)
        evbuffer_add_printf(b,
                            "  <Part><ETag>\"%032x\"</ETag><PartNumber>%u</PartNumber>"
                            "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>\n",
                            i, i);
    evbuffer_add_printf(b, "</CompleteMultipartUpload>\n");
    char *body = drain(b);
    evbuffer_free(b);
    ok(strlen(body) <= S3_XML_MAX_BODY, "fits the size cap");
    struct s3_part_ref *parts = NULL;
    size_t n = 0;
    is_int(complete(body, &parts, &n), S3_OK, "10000 parts with checksums, pretty-printed");
    is_int(n, 10000, "all of them");
    free(parts);
    free(body);
}

/* ---- DeleteObjects ---- */

static void test_delete_parses_quiet_and_keys(void)
{
    char **keys = NULL;
    size_t n = 0;
    bool quiet = false;
    const char *body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                       "<Delete" NS_ATTR "><Quiet>true</Quiet>"
                       "<Object><Key>a&amp;b&lt;c&gt;&quot;&apos;&#x41;&#66;</Key></Object>"
                       "<Object><Key>  spaced  </Key><VersionId>v1</VersionId></Object>"
                       "<Object><Key>" UNICODE_KEY "/../x</Key></Object>"
                       "<Object><Key><![CDATA[<raw&>]]></Key></Object>"
                       "<Object><Key></Key></Object>"
                       "</Delete>";
    is_int(s3_xml_parse_delete(sp(body), &keys, &n, &quiet), S3_OK, "parses");
    ok(quiet, "quiet");
    is_int(n, 5, "five keys");
    if (n == 5) {
        is_str(keys[0], "a&b<c>\"'AB", "entities and character references decoded");
        is_str(keys[1], "  spaced  ", "key whitespace kept");
        is_str(keys[2], UNICODE_KEY "/../x", "UTF-8 and dots kept");
        is_str(keys[3], "<raw&>", "CDATA key");
        is_str(keys[4], "", "empty key left for the caller");
    }
    s3_xml_free_keys(keys, n);

    is_int(s3_xml_parse_delete(sp("<Delete><Object><Key>k</Key></Object></Delete>"), &keys, &n,
                               &quiet),
           S3_OK, "no namespace, no Quiet");
    ok(!quiet && n == 1 && strcmp(keys[0], "k") == 0, "not quiet by default");
    s3_xml_free_keys(keys, n);

    is_int(s3_xml_parse_delete(sp("<Delete><Quiet>false</Quiet><Object><Key>k</Key></Object>"
                                  "</Delete>"),
                               &keys, &n, &quiet),
           S3_OK, "Quiet false");
    ok(!quiet, "not quiet");
    s3_xml_free_keys(keys, n);
}

static void test_delete_rejects_malformed(void)
{
    is_int(delete_err(""), S3_ERR_MALFORMED_XML, "empty body");
    is_int(delete_err("<Delete/>"), S3_ERR_MALFORMED_XML, "no objects");
    is_int(delete_err("<Delete><Quiet>true</Quiet></Delete>"), S3_ERR_MALFORMED_XML,
           "quiet but no objects");
    is_int(delete_err("<Delete><Object><VersionId>v</VersionId></Object></Delete>"),
           S3_ERR_MALFORMED_XML, "object without key");
    is_int(delete_err("<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>"),
           S3_ERR_MALFORMED_XML, "two keys in one object");
    is_int(delete_err("<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>"),
           S3_ERR_MALFORMED_XML, "Quiet not a boolean");
    is_int(delete_err("<Delete><Object><Key>a<i>b</i></Key></Object></Delete>"),
           S3_ERR_MALFORMED_XML, "markup inside a key");
    is_int(delete_err("<Remove><Object><Key>k</Key></Object></Remove>"), S3_ERR_MALFORMED_XML,
           "wrong root");
    is_int(delete_err("<Delete><Object><Key>k</Key></Object></Delete><Delete/>"),
           S3_ERR_MALFORMED_XML, "two roots");
    is_int(delete_err("<Delete><Object><Key>a\xff</Key></Object></Delete>"), S3_ERR_MALFORMED_XML,
           "invalid UTF-8");
}

static void test_delete_ignores_comments_and_pis(void)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<?xml version=\"1.0\"?><!-- c --><Delete><Object><Key>a");
    for (int i = 0; i < 100000; i++)
        evbuffer_add_printf(b, "<!---->");
    evbuffer_add_printf(b, "b<?pi x?>c</Key></Object><?pi?></Delete><!-- end -->");
    char *body = drain(b);
    evbuffer_free(b);
    char **keys = NULL;
    size_t n = 0;
    bool quiet;
    xmlResetLastError();
    size_t base = mem_now;
    mem_peak = mem_now;
    is_int(s3_xml_parse_delete(sp(body), &keys, &n, &quiet), S3_OK, "parses");
    ok(n == 1 && strcmp(keys[0], "abc") == 0, "text around comments and PIs joined");
    ok(mem_peak - base < (4u << 20), "100000 comments build no nodes");
    s3_xml_free_keys(keys, n);
    free(body);
}

static void test_delete_limits_keys_to_1000(void)
{
    char *body = delete_body(1000);
    char **keys = NULL;
    size_t n = 0;
    bool quiet = true;
    is_int(s3_xml_parse_delete(sp(body), &keys, &n, &quiet), S3_OK, "1000 keys accepted");
    ok(n == 1000 && strcmp(keys[999], "key-999") == 0, "all of them");
    s3_xml_free_keys(keys, n);
    free(body);

    body = delete_body(1001);
    is_int(delete_err(body), S3_ERR_MALFORMED_XML, "1001 keys -> MalformedXML");
    free(body);
}

/* ---- CreateBucketConfiguration ---- */

static void test_create_bucket_location(void)
{
    char loc[32];
    is_int(s3_xml_parse_create_bucket(sp(""), loc, sizeof(loc)), S3_OK, "empty body");
    is_str(loc, "", "no location");
    is_int(s3_xml_parse_create_bucket(span_make(NULL, 0), loc, sizeof(loc)), S3_OK, "no body");
    is_int(s3_xml_parse_create_bucket(sp(" \r\n"), loc, sizeof(loc)), S3_OK, "blank body");
    is_int(s3_xml_parse_create_bucket(sp("<CreateBucketConfiguration" NS_ATTR ">"
                                         "<LocationConstraint>eu-west-1</LocationConstraint>"
                                         "</CreateBucketConfiguration>"),
                                      loc, sizeof(loc)),
           S3_OK, "namespaced");
    is_str(loc, "eu-west-1", "location copied");
    is_int(s3_xml_parse_create_bucket(sp("<CreateBucketConfiguration><LocationConstraint>"
                                         " us-east-2\n</LocationConstraint>"
                                         "</CreateBucketConfiguration>"),
                                      loc, sizeof(loc)),
           S3_OK, "no namespace");
    is_str(loc, "us-east-2", "trimmed");
    is_int(s3_xml_parse_create_bucket(sp("<CreateBucketConfiguration/>"), loc, sizeof(loc)), S3_OK,
           "no LocationConstraint");
    is_str(loc, "", "empty location");
    is_int(s3_xml_parse_create_bucket(sp("<CreateBucketConfiguration><LocationConstraint>"
                                         "0123456789012345678901234567890123456789"
                                         "</LocationConstraint></CreateBucketConfiguration>"),
                                      loc, sizeof(loc)),
           S3_ERR_INVALID_LOCATION_CONSTRAINT, "too long for the buffer");
    is_int(s3_xml_parse_create_bucket(sp("<CreateBucketConfiguration>"), loc, sizeof(loc)),
           S3_ERR_MALFORMED_XML, "broken");
    is_int(s3_xml_parse_create_bucket(sp("<Other/>"), loc, sizeof(loc)), S3_ERR_MALFORMED_XML,
           "wrong root");
    is_str(loc, "", "location cleared on failure");
}

/* ---- AccessControlPolicy ---- */

#define ACL_HEAD                                                                                   \
    "<AccessControlPolicy" NS_ATTR " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"     \
    "<Owner><ID>owner1</ID><DisplayName>me</DisplayName></Owner><AccessControlList>"
#define ACL_TAIL "</AccessControlList></AccessControlPolicy>"
#define GRANT_ID(id, perm)                                                                         \
    "<Grant><Grantee xsi:type=\"CanonicalUser\"><ID>" id "</ID></Grantee>"                         \
    "<Permission>" perm "</Permission></Grant>"

static void test_acl_owner_full_control_only(void)
{
    is_int(s3_xml_parse_acl(sp(ACL_HEAD GRANT_ID("owner1", "FULL_CONTROL") ACL_TAIL)), S3_OK,
           "private ACL");
    is_int(s3_xml_parse_acl(sp("<AccessControlPolicy><Owner><ID>o</ID></Owner>"
                               "<AccessControlList><Grant><Grantee><ID>o</ID></Grantee>"
                               "<Permission>FULL_CONTROL</Permission></Grant>"
                               "</AccessControlList></AccessControlPolicy>")),
           S3_OK, "no namespace");
    is_int(s3_xml_parse_acl(
               sp(ACL_HEAD GRANT_ID("owner1", "FULL_CONTROL") GRANT_ID("owner2", "READ") ACL_TAIL)),
           S3_ERR_NOT_IMPLEMENTED, "another user");
    is_int(s3_xml_parse_acl(sp(ACL_HEAD GRANT_ID("owner1", "READ") ACL_TAIL)),
           S3_ERR_NOT_IMPLEMENTED, "owner with less");
    is_int(s3_xml_parse_acl(
               sp(ACL_HEAD GRANT_ID("owner1", "FULL_CONTROL") "<Grant><Grantee xsi:type=\"Group\">"
                                                              "<URI>http://acs.amazonaws.com/"
                                                              "groups/global/AllUsers</URI>"
                                                              "</Grantee><Permission>READ"
                                                              "</Permission></Grant>" ACL_TAIL)),
           S3_ERR_NOT_IMPLEMENTED, "public-read");
    is_int(s3_xml_parse_acl(sp(ACL_HEAD ACL_TAIL)), S3_ERR_NOT_IMPLEMENTED, "no grants");
}

static void test_acl_rejects_malformed(void)
{
    is_int(s3_xml_parse_acl(sp("")), S3_ERR_MALFORMED_XML, "empty");
    is_int(s3_xml_parse_acl(sp(
               "<AccessControlPolicy><AccessControlList>" GRANT_ID("o", "FULL_CONTROL") ACL_TAIL)),
           S3_ERR_MALFORMED_XML, "no owner");
    is_int(
        s3_xml_parse_acl(sp(ACL_HEAD "<Grant><Grantee><ID>owner1</ID></Grantee></Grant>" ACL_TAIL)),
        S3_ERR_MALFORMED_XML, "grant without permission");
    is_int(s3_xml_parse_acl(sp(ACL_HEAD GRANT_ID(
               "owner2", "READ") "<Grant><Permission>READ</Permission></Grant>" ACL_TAIL)),
           S3_ERR_MALFORMED_XML, "malformed grant outranks not-implemented");
    is_int(s3_xml_parse_acl(sp("<AccessControlPolicy><Owner><ID>o</ID></Owner>")),
           S3_ERR_MALFORMED_XML, "truncated");
}

/* ---- hostile documents ---- */

static void check_hostile(const char *name, struct span body)
{
    char **keys = NULL;
    size_t n = 0;
    bool quiet;
    struct s3_part_ref *parts = NULL;
    char loc[64];

    /* libxml2 keeps the thread's last error (with an allocated message) between parses. */
    xmlResetLastError();
    size_t base = mem_now;
    mem_peak = mem_now;
    double t0 = now_s();
    is_int(s3_xml_parse_delete(body, &keys, &n, &quiet), S3_ERR_MALFORMED_XML, name);
    is_int(s3_xml_parse_complete(body, &parts, &n), S3_ERR_MALFORMED_XML, name);
    is_int(s3_xml_parse_create_bucket(body, loc, sizeof(loc)), S3_ERR_MALFORMED_XML, name);
    is_int(s3_xml_parse_acl(body), S3_ERR_MALFORMED_XML, name);
    double dt = now_s() - t0;
    ok(dt < 2.0, "refused quickly");
    if (dt >= 2.0)
        printf("#   took %.3f s\n", dt);
    mem_peak -= base;
    ok(mem_peak < (16u << 20), "libxml2 memory bounded");
    printf("#   %s: %zu bytes in, peak %zu bytes in libxml2, %.4f s\n", name, body.len, mem_peak,
           dt);
    xmlResetLastError();
    is_int(mem_now, base, "libxml2 memory all freed");
    s3_xml_free_keys(keys, n);
    free(parts);
}

static char *billion_laughs(const char *root)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b,
                        "<?xml version=\"1.0\"?>\n<!DOCTYPE %s [\n"
                        " <!ENTITY lol0 \"lol\">\n",
                        root);
    for (int i = 1; i < 10; i++) {
        evbuffer_add_printf(b, " <!ENTITY lol%d \"", i);
        for (int j = 0; j < 10; j++)
            evbuffer_add_printf(b, "&lol%d;", i - 1);
        evbuffer_add_printf(b, "\">\n");
    }
    evbuffer_add_printf(b, "]>\n<%s><Object><Key>&lol9;</Key></Object></%s>\n", root, root);
    char *s = drain(b);
    evbuffer_free(b);
    return s;
}

static char *quadratic_blowup(void)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<?xml version=\"1.0\"?>\n<!DOCTYPE Delete [<!ENTITY a \"");
    for (int i = 0; i < 100000; i++)
        evbuffer_add(b, "a", 1);
    evbuffer_add_printf(b, "\">]>\n<Delete><Object><Key>");
    for (int i = 0; i < 2000; i++)
        evbuffer_add(b, "&a;", 3);
    evbuffer_add_printf(b, "</Key></Object></Delete>\n");
    char *s = drain(b);
    evbuffer_free(b);
    return s;
}

static void test_hostile_documents_are_refused(void)
{
    char *s = billion_laughs("Delete");
    check_hostile("billion laughs", sp(s));
    free(s);

    s = quadratic_blowup();
    check_hostile("quadratic blowup", sp(s));
    free(s);

    /* A file planted with a marker: if any path read it, the marker would show up as a key. */
    char path[] = "/tmp/fg_xxe_XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0, "temp file");
    if (fd >= 0) {
        ok(write(fd, "SECRET", 6) == 6, "marker written");
        close(fd);
    }
    s = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE Delete [<!ENTITY xxe SYSTEM \"file://%s\">]>"
                  "<Delete><Object><Key>&xxe;</Key></Object></Delete>",
                  path);
    check_hostile("XXE file entity", sp(s));
    free(s);
    s = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE Delete [<!ENTITY %% p SYSTEM \"file://%s\">"
                  "%%p;]><Delete><Object><Key>k</Key></Object></Delete>",
                  path);
    check_hostile("XXE parameter entity", sp(s));
    free(s);
    unlink(path);

    check_hostile("external DTD", sp("<?xml version=\"1.0\"?>\n<!DOCTYPE Delete SYSTEM "
                                     "\"http://127.0.0.1:1/evil.dtd\">\n"
                                     "<Delete><Object><Key>k</Key></Object></Delete>"));
    check_hostile("public external DTD",
                  sp("<!DOCTYPE Delete PUBLIC \"-//X//Y\" \"file:///etc/passwd\">"
                     "<Delete><Object><Key>k</Key></Object></Delete>"));
    check_hostile("xinclude is inert but markup",
                  sp("<Delete xmlns:xi=\"http://www.w3.org/2001/XInclude\"><Object><Key>"
                     "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/></Key></Object>"
                     "</Delete>"));

    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<Delete>");
    for (int i = 0; i < 300; i++)
        evbuffer_add_printf(b, "<a>");
    for (int i = 0; i < 300; i++)
        evbuffer_add_printf(b, "</a>");
    evbuffer_add_printf(b, "<Object><Key>k</Key></Object></Delete>");
    s = drain(b);
    evbuffer_free(b);
    check_hostile("300-level nesting", sp(s));
    free(s);

    /* Node floods inside the size cap: each parser stops at its node budget. */
    size_t cap = S3_XML_MAX_BODY;
    char *flood = xmalloc(cap);
    size_t at = 0;
    const char *open = "<Delete>", *close_tag = "</Delete>";
    memcpy(flood, open, strlen(open));
    at = strlen(open);
    while (at + 4 + strlen(close_tag) <= cap) {
        memcpy(flood + at, "<a/>", 4);
        at += 4;
    }
    memcpy(flood + at, close_tag, strlen(close_tag));
    at += strlen(close_tag);
    check_hostile("2 MiB of empty elements", span_make(flood, at));
    at = strlen(open);
    for (int i = 0; at + 64 + strlen(close_tag) <= cap; i++) {
        int k = snprintf(flood + at, 64, "<a b=\"\" c=\"\" d=\"\" e=\"\" f=\"\" g=\"\"/>");
        at += (size_t)k;
    }
    memcpy(flood + at, close_tag, strlen(close_tag));
    at += strlen(close_tag);
    check_hostile("2 MiB of attributes", span_make(flood, at));
    free(flood);

    /* 3 MiB of otherwise valid DeleteObjects: refused by size before libxml2 sees a byte. */
    size_t big = 3u << 20;
    char *huge = xmalloc(big);
    const char *head = "<Delete><Object><Key>k</Key></Object>", *tail = "</Delete>";
    memset(huge, ' ', big);
    memcpy(huge, head, strlen(head));
    memcpy(huge + big - strlen(tail), tail, strlen(tail));
    check_hostile("3 MiB body", span_make(huge, big));
    is_int(mem_peak, 0, "not parsed at all");
    free(huge);

    is_int(n_external_loads, 0, "no external entity or DTD load was ever attempted");
}

static int n_outer_errors;

static void on_outer_error(void *arg, xmlError *err)
{
    (void)arg;
    (void)err;
    n_outer_errors++;
}

/* Bodies that make libxml2 raise errors outside the parser context (converters, I/O): none
 * may reach stderr, and the thread's own handler must be left as it was and never called. */
static void test_errors_stay_off_stderr(void)
{
    static const struct {
        const char *body;
        size_t len;
        const char *name;
    } cases[] = {
#define BODY(s) s, sizeof(s) - 1
        {BODY("\0\0\0<\0\0\0D\x18\x18\x18\x18\xff\xff\xff\xff"), "UCS-4BE garbage"},
        {BODY("<\0\0\0D\0\0\0\0\0\0\x18\xff\xff\xff\xff"), "UCS-4LE garbage"},
        {BODY("\xff\xfe<\0D\0\0\xd8"
              "A"),
         "UTF-16LE lone surrogate"},
        {BODY("\x4c\x6f\xa7\x94<Delete/>"), "EBCDIC sniffed"},
        {BODY("<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><Delete><Object><Key>\x1b$B\xff\xff"
              "</Key></Object></Delete>"),
         "declared ISO-2022-JP"},
        {BODY("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Delete><Object><Key>\xe9</Key>"
              "</Object></Delete>"),
         "declared Latin-1 (bodies are UTF-8)"},
        {BODY("<Delete><Object><Key>k</Key></Object></Delete"), "unterminated"},
#undef BODY
    };
    char path[] = "/tmp/fg_stderr_XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    ok(fd >= 0 && saved >= 0, "stderr captured");
    if (fd < 0 || saved < 0)
        return;
    fflush(stderr);
    dup2(fd, 2);
    xmlSetStructuredErrorFunc(&n_outer_errors, on_outer_error);
    n_outer_errors = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        is_int(delete_err_len(span_make(cases[i].body, cases[i].len)), S3_ERR_MALFORMED_XML,
               cases[i].name);
    }
    ok(xmlStructuredError == on_outer_error && xmlStructuredErrorContext == &n_outer_errors,
       "the thread's handler is put back");
    is_int(n_outer_errors, 0, "and was never called by our parses");
    xmlSetStructuredErrorFunc(NULL, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    is_int(n, 0, "nothing written to stderr");
    if (n > 0) {
        char text[512];
        ssize_t got = pread(fd, text, sizeof(text) - 1, 0);
        text[got > 0 ? got : 0] = '\0';
        printf("#   stderr: %s\n", text);
    }
    close(fd);
    unlink(path);
}

static void test_utf8_bom_accepted(void)
{
    char **keys = NULL;
    size_t n = 0;
    bool quiet;
    is_int(s3_xml_parse_delete(sp("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                                  "<Delete><Object><Key>\xc3\xa9</Key></Object></Delete>"),
                               &keys, &n, &quiet),
           S3_OK, "UTF-8 BOM and declaration");
    ok(n == 1 && strcmp(keys[0], "\xc3\xa9") == 0, "key decoded as UTF-8");
    s3_xml_free_keys(keys, n);
}

static void test_size_cap_boundary(void)
{
    /* Exactly S3_XML_MAX_BODY bytes of valid XML is parsed; one byte more is not. */
    size_t cap = S3_XML_MAX_BODY;
    char *body = xmalloc(cap + 1);
    const char *head = "<Delete><Object><Key>k</Key></Object>", *tail = "</Delete>";
    memset(body, '\n', cap + 1);
    memcpy(body, head, strlen(head));
    memcpy(body + cap - strlen(tail), tail, strlen(tail));
    char **keys = NULL;
    size_t n = 0;
    bool quiet;
    is_int(s3_xml_parse_delete(span_make(body, cap), &keys, &n, &quiet), S3_OK, "at the cap");
    s3_xml_free_keys(keys, n);
    memcpy(body + cap + 1 - strlen(tail), tail, strlen(tail));
    is_int(s3_xml_parse_delete(span_make(body, cap + 1), &keys, &n, &quiet), S3_ERR_MALFORMED_XML,
           "one byte over");
    free(body);
}

int main(void)
{
    /* Before the first parse, so every libxml2 allocation is counted. */
    xmlMemSetup(count_free, count_malloc, count_realloc, count_strdup);
    xmlSetExternalEntityLoader(on_external_load);

    subtest(test_complete_accepts_namespaced_body_with_quoted_etags);
    subtest(test_complete_accepts_body_without_namespace_or_with_prefix);
    subtest(test_complete_rejects_bad_order);
    subtest(test_complete_rejects_malformed);
    subtest(test_complete_rejects_impossible_etag);
    subtest(test_complete_counts_10000_parts);
    subtest(test_complete_10000_parts_with_checksums_fit_the_budget);
    subtest(test_delete_parses_quiet_and_keys);
    subtest(test_delete_rejects_malformed);
    subtest(test_delete_ignores_comments_and_pis);
    subtest(test_delete_limits_keys_to_1000);
    subtest(test_create_bucket_location);
    subtest(test_acl_owner_full_control_only);
    subtest(test_acl_rejects_malformed);
    subtest(test_hostile_documents_are_refused);
    subtest(test_errors_stay_off_stderr);
    subtest(test_utf8_bom_accepted);
    subtest(test_size_cap_boundary);
    return done_testing();
}

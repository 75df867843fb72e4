/* s3api/notif.c and the NotificationConfiguration reader of s3api/xml_in.c: the document's
 * structure, each validation error with S3's message, the overlap rule (and the cases
 * notifications.md §1.6 allows), generated Ids, the stored encoding and the XML answered. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"
#include "s3api/notif.h"
#include "s3api/xml.h"
#include "tests/unit/tap.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static const char *const known_arns[] = {
    "arn:floodgate:sqs::audit:webhook",
    "arn:aws:sqs:us-east-1:123456789012:q",
    "arn:aws:sns:us-east-1:123456789012:t",
    "arn:aws:lambda:us-east-1:123456789012:function:f",
};

static int n_checked;

static bool check_arn(void *arg, const char *arn)
{
    (void)arg;
    n_checked++;
    for (size_t i = 0; i < sizeof(known_arns) / sizeof(known_arns[0]); i++)
        if (strcmp(arn, known_arns[i]) == 0)
            return true;
    return false;
}

/* Parses and validates `xml`; fills `c` (the caller frees) and `e`. */
static enum s3_err load(const char *xml, struct s3_notif_config *c, struct s3_xml_err *e)
{
    *e = (struct s3_xml_err){S3_OK, NULL, NULL, NULL};
    enum s3_err err = s3_xml_parse_notification(span_from(xml), c, e);
    if (err == S3_OK)
        err = s3_notif_validate(c, check_arn, NULL, e);
    return err;
}

/* The error of `xml`, its message checked against `msg` (NULL: not checked). */
static enum s3_err error_of(const char *xml, const char *msg, const char *desc)
{
    struct s3_notif_config c;
    struct s3_xml_err e;
    enum s3_err err = load(xml, &c, &e);
    if (msg != NULL)
        is_str(e.msg, msg, desc);
    s3_notif_config_free(&c);
    s3_xml_err_cleanup(&e);
    return err;
}

/* A configuration of one queue rule: events (a "<Event>..</Event>" run) and a filter. */
static char *queue_doc(const char *id, const char *events, const char *filter)
{
    return xasprintf("<NotificationConfiguration " NS "><QueueConfiguration>%s%s%s"
                     "<Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>%s%s"
                     "</QueueConfiguration></NotificationConfiguration>",
                     id ? "<Id>" : "", id ? id : "", id ? "</Id>" : "", events,
                     filter ? filter : "");
}

static char *filter_of(const char *rules)
{
    return xasprintf("<Filter><S3Key>%s</S3Key></Filter>", rules);
}

static void test_notif_parses_every_kind_and_field(void)
{
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<NotificationConfiguration " NS ">\n"
        "  <QueueConfiguration>\n"
        "    <Id> q1 </Id>\n"
        "    <Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>\n"
        "    <Event>s3:ObjectCreated:*</Event>\n"
        "    <Filter><S3Key>\n"
        "      <FilterRule><Name>Prefix</Name><Value>images/</Value></FilterRule>\n"
        "      <FilterRule><Name>suffix</Name><Value>.jpg</Value></FilterRule>\n"
        "    </S3Key></Filter>\n"
        "  </QueueConfiguration>\n"
        "  <TopicConfiguration><Topic>arn:aws:sns:us-east-1:123456789012:t</Topic>"
        "<Event>s3:ObjectRemoved:Delete</Event><Event>s3:ObjectRemoved:DeleteMarkerCreated</Event>"
        "</TopicConfiguration>\n"
        "  <CloudFunctionConfiguration><Id>f</Id>"
        "<CloudFunction>arn:aws:lambda:us-east-1:123456789012:function:f</CloudFunction>"
        "<Event>s3:ObjectCreated:Put</Event>"
        "<Filter><S3Key><FilterRule><Name>prefix</Name><Value>docs/</Value></FilterRule>"
        "</S3Key></Filter></CloudFunctionConfiguration>\n"
        "  <EventBridgeConfiguration/>\n"
        "</NotificationConfiguration>";
    struct s3_notif_config c;
    struct s3_xml_err e;
    n_checked = 0;
    is_int(load(xml, &c, &e), S3_OK, "a configuration of every kind");
    is_int(c.n_rules, 3, "three rules (EventBridge ignored)");
    is_int(n_checked, 3, "every destination checked");
    if (c.n_rules == 3) {
        struct s3_notif_rule *q = &c.rules[0], *t = &c.rules[1], *f = &c.rules[2];
        is_int(q->kind, S3_NOTIF_QUEUE, "queue kind");
        is_str(q->id, "q1", "Id trimmed");
        is_str(q->arn, "arn:aws:sqs:us-east-1:123456789012:q", "queue ARN");
        ok(q->n_events == 1 && strcmp(q->events[0], "s3:ObjectCreated:*") == 0, "queue event");
        is_str(q->prefix, "images/", "prefix (name in any case)");
        is_str(q->suffix, ".jpg", "suffix");
        is_int(t->kind, S3_NOTIF_TOPIC, "topic kind");
        ok(t->id != NULL && strlen(t->id) == S3_NOTIF_GEN_ID_LEN, "a missing Id is generated");
        is_int(t->n_events, 2, "two events");
        ok(t->prefix == NULL && t->suffix == NULL, "no filter");
        is_int(f->kind, S3_NOTIF_LAMBDA, "lambda kind");
        is_str(f->prefix, "docs/", "lambda prefix");
    }
    s3_notif_config_free(&c);
    s3_xml_err_cleanup(&e);

    is_int(load("<NotificationConfiguration/>", &c, &e), S3_OK, "an empty configuration");
    is_int(c.n_rules, 0, "has no rules");
    s3_notif_config_free(&c);
    is_int(load("<NotificationConfiguration " NS "><EventBridgeConfiguration>"
                "</EventBridgeConfiguration></NotificationConfiguration>",
                &c, &e),
           S3_OK, "EventBridge alone");
    is_int(c.n_rules, 0, "is no rule here");
    s3_notif_config_free(&c);
}

static void test_notif_malformed_documents(void)
{
    static const char *const bad[] = {
        "",
        "not xml",
        "<NotificationConfiguration>",
        "<Other/>",
        "<NotificationConfiguration>text</NotificationConfiguration>",
        "<NotificationConfiguration><Unknown/></NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Event>s3:ObjectCreated:*</Event>"
        "</QueueConfiguration></NotificationConfiguration>", /* no ARN */
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue></QueueConfiguration>"
        "</NotificationConfiguration>", /* no Event */
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue><Queue>b</Queue>"
        "<Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Topic>a</Topic>"
        "<Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Id>a</Id><Id>b</Id><Queue>a</Queue>"
        "<Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue>"
        "<Event><x/></Event></QueueConfiguration></NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue>"
        "<Event>s3:ObjectCreated:*</Event><Filter><Key/></Filter></QueueConfiguration>"
        "</NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue>"
        "<Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name>"
        "</FilterRule></S3Key></Filter></QueueConfiguration></NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue>"
        "<Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name>"
        "<Value>a</Value><Value>b</Value></FilterRule></S3Key></Filter></QueueConfiguration>"
        "</NotificationConfiguration>",
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue>"
        "<Event>s3:ObjectCreated:*</Event><Filter/><Filter/></QueueConfiguration>"
        "</NotificationConfiguration>",
        "<NotificationConfiguration><EventBridgeConfiguration/><EventBridgeConfiguration/>"
        "</NotificationConfiguration>",
        "<!DOCTYPE NotificationConfiguration [<!ENTITY e \"s3:ObjectCreated:*\">]>"
        "<NotificationConfiguration><QueueConfiguration><Queue>a</Queue><Event>&e;</Event>"
        "</QueueConfiguration></NotificationConfiguration>",
        "<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><NotificationConfiguration/>",
    };
    int n_ok = 0;
    size_t n = sizeof(bad) / sizeof(bad[0]);
    for (size_t i = 0; i < n; i++) {
        enum s3_err err = error_of(bad[i], NULL, NULL);
        if (err != S3_ERR_MALFORMED_XML)
            printf("# not malformed (%d): %s\n", (int)err, bad[i]);
        n_ok += err == S3_ERR_MALFORMED_XML;
    }
    is_int(n_ok, n, "every broken or unexpected document is MalformedXML");

    /* A malformed rule after an invalid one: MalformedXML wins, as for the other bodies. */
    is_int(error_of("<NotificationConfiguration><QueueConfiguration><Queue>a</Queue>"
                    "<Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>x</Name>"
                    "<Value>a</Value></FilterRule></S3Key></Filter></QueueConfiguration>"
                    "<QueueConfiguration/></NotificationConfiguration>",
                    NULL, NULL),
           S3_ERR_MALFORMED_XML, "malformed outranks invalid");

    /* Too big a body is refused before parsing. */
    size_t big = S3_XML_MAX_BODY + 10;
    char *huge = xmalloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "<NotificationConfiguration>", 27);
    memcpy(huge + big - 28, "</NotificationConfiguration>", 28);
    huge[big] = '\0';
    is_int(error_of(huge, NULL, NULL), S3_ERR_MALFORMED_XML, "a body over 2 MiB");
    free(huge);
}

static void test_notif_invalid_arguments(void)
{
    char *doc, *f;

    doc = queue_doc(NULL, "<Event>s3:ObjectCreated:Get</Event>", NULL);
    is_int(error_of(doc, S3_NOTIF_BAD_EVENT, "unknown event: message"), S3_ERR_INVALID_ARGUMENT,
           "unknown event");
    free(doc);
    doc = queue_doc(NULL, "<Event>s3:ObjectRestore:*</Event>", NULL);
    is_int(error_of(doc, S3_NOTIF_BAD_EVENT, "restore: message"), S3_ERR_INVALID_ARGUMENT,
           "an AWS event this gateway never reports");
    free(doc);
    doc = queue_doc(NULL, "<Event>s3:objectcreated:put</Event>", NULL);
    is_int(error_of(doc, NULL, NULL), S3_ERR_INVALID_ARGUMENT, "event names are case-sensitive");
    free(doc);

    f = filter_of("<FilterRule><Name>middle</Name><Value>x</Value></FilterRule>");
    doc = queue_doc(NULL, "<Event>s3:ObjectCreated:*</Event>", f);
    is_int(error_of(doc, "filter rule name must be either prefix or suffix", "name: message"),
           S3_ERR_INVALID_ARGUMENT, "rule name neither prefix nor suffix");
    free(doc);
    free(f);

    f = filter_of("<FilterRule><Name>prefix</Name><Value>a</Value></FilterRule>"
                  "<FilterRule><Name>PREFIX</Name><Value>b</Value></FilterRule>");
    doc = queue_doc(NULL, "<Event>s3:ObjectCreated:*</Event>", f);
    is_int(error_of(doc, "Cannot specify more than one prefix rule in a filter.", "two prefixes"),
           S3_ERR_INVALID_ARGUMENT, "two prefix rules");
    free(doc);
    free(f);

    f = filter_of("<FilterRule><Name>suffix</Name><Value>a</Value></FilterRule>"
                  "<FilterRule><Name>Suffix</Name><Value>b</Value></FilterRule>");
    doc = queue_doc(NULL, "<Event>s3:ObjectCreated:*</Event>", f);
    is_int(error_of(doc, "Cannot specify more than one suffix rule in a filter.", "two suffixes"),
           S3_ERR_INVALID_ARGUMENT, "two suffix rules");
    free(doc);
    free(f);

    char value[S3_NOTIF_FILTER_MAX + 2];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    char *rule = xasprintf("<FilterRule><Name>prefix</Name><Value>%s</Value></FilterRule>", value);
    f = filter_of(rule);
    doc = queue_doc(NULL, "<Event>s3:ObjectCreated:*</Event>", f);
    is_int(error_of(doc, NULL, NULL), S3_ERR_INVALID_ARGUMENT, "a value of 1025 bytes");
    free(doc);
    free(f);
    free(rule);
    value[S3_NOTIF_FILTER_MAX] = '\0';
    rule = xasprintf("<FilterRule><Name>prefix</Name><Value>%s</Value></FilterRule>", value);
    f = filter_of(rule);
    doc = queue_doc(NULL, "<Event>s3:ObjectCreated:*</Event>", f);
    is_int(error_of(doc, NULL, NULL), S3_OK, "a value of 1024 bytes is fine");
    free(doc);
    free(f);
    free(rule);

    /* The unknown destination is named in ArgumentName. */
    struct s3_notif_config c;
    struct s3_xml_err e;
    const char *unknown = "<NotificationConfiguration><TopicConfiguration>"
                          "<Topic>arn:aws:sns:us-east-1:1:nope</Topic>"
                          "<Event>s3:ObjectCreated:*</Event></TopicConfiguration>"
                          "</NotificationConfiguration>";
    is_int(load(unknown, &c, &e), S3_ERR_INVALID_ARGUMENT, "an unknown ARN");
    is_str(e.msg, "Unable to validate the following destination configurations", "its message");
    is_str(e.arg_name, "arn:aws:sns:us-east-1:1:nope", "ArgumentName is the ARN");
    ok(e.arg_value != NULL, "and ArgumentValue says why");
    s3_notif_config_free(&c);
    s3_xml_err_cleanup(&e);
    ok(s3_xml_parse_notification(span_from(unknown), &c, &e) == S3_OK &&
           s3_notif_validate(&c, NULL, NULL, &e) == S3_ERR_INVALID_ARGUMENT,
       "no ARN check: every destination is unknown");
    s3_notif_config_free(&c);
    s3_xml_err_cleanup(&e);

    const char *dup_ids = "<NotificationConfiguration>"
                          "<QueueConfiguration><Id>same</Id>"
                          "<Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>"
                          "<Event>s3:ObjectCreated:*</Event></QueueConfiguration>"
                          "<TopicConfiguration><Id>same</Id>"
                          "<Topic>arn:aws:sns:us-east-1:123456789012:t</Topic>"
                          "<Event>s3:ObjectRemoved:*</Event></TopicConfiguration>"
                          "</NotificationConfiguration>";
    is_int(error_of(dup_ids, NULL, NULL), S3_ERR_INVALID_ARGUMENT, "a duplicate Id");

    char long_id[S3_NOTIF_ID_MAX + 2];
    memset(long_id, 'i', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    doc = queue_doc(long_id, "<Event>s3:ObjectCreated:*</Event>", NULL);
    is_int(error_of(doc, NULL, NULL), S3_ERR_INVALID_ARGUMENT, "an Id over 255 bytes");
    free(doc);
}

/* Two queue rules for the same queue (no Id): events and filters as given. */
static enum s3_err pair(const char *ev1, const char *f1, const char *ev2, const char *f2)
{
    char *xml = xasprintf("<NotificationConfiguration>"
                          "<QueueConfiguration><Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>"
                          "%s%s</QueueConfiguration>"
                          "<QueueConfiguration><Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>"
                          "%s%s</QueueConfiguration></NotificationConfiguration>",
                          ev1, f1, ev2, f2);
    enum s3_err err = error_of(xml, NULL, NULL);
    free(xml);
    return err;
}

#define PUT     "<Event>s3:ObjectCreated:Put</Event>"
#define CREATED "<Event>s3:ObjectCreated:*</Event>"
#define REMOVED "<Event>s3:ObjectRemoved:*</Event>"
#define DELETE  "<Event>s3:ObjectRemoved:Delete</Event>"
#define COPY    "<Event>s3:ObjectCreated:Copy</Event>"
#define F(p, s) "<Filter><S3Key>" p s "</S3Key></Filter>"
#define PFX(v)  "<FilterRule><Name>prefix</Name><Value>" v "</Value></FilterRule>"
#define SFX(v)  "<FilterRule><Name>suffix</Name><Value>" v "</Value></FilterRule>"

static void test_notif_overlap_rules(void)
{
    is_int(pair(PUT, "", PUT, ""), S3_ERR_INVALID_ARGUMENT, "same event, no filters: overlap");
    is_int(pair(CREATED, "", PUT, F(PFX("a/"), "")), S3_ERR_INVALID_ARGUMENT,
           "wildcard against its member, unfiltered against filtered: overlap");
    is_int(pair(PUT, F(PFX("images/"), ""), PUT, F(PFX("images/raw/"), "")),
           S3_ERR_INVALID_ARGUMENT, "one prefix of the other: overlap");
    is_int(pair(PUT, F("", SFX("jpg")), PUT, F("", SFX("pg"))), S3_ERR_INVALID_ARGUMENT,
           "jpg vs pg suffixes: overlap");
    is_int(pair(PUT, F(PFX("images/"), SFX(".jpg")), PUT, F(PFX("images/"), "")),
           S3_ERR_INVALID_ARGUMENT, "a missing suffix matches every suffix");
    is_int(pair("<Event>s3:ObjectCreated:Put</Event><Event>s3:ObjectRemoved:Delete</Event>", "",
                REMOVED, ""),
           S3_ERR_INVALID_ARGUMENT, "any shared event type is enough");
    char *xml =
        xasprintf("<NotificationConfiguration>"
                  "<QueueConfiguration><Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>" PUT
                  "</QueueConfiguration>"
                  "<TopicConfiguration><Topic>arn:aws:sns:us-east-1:123456789012:t</Topic>" CREATED
                  "</TopicConfiguration></NotificationConfiguration>");
    is_int(error_of(xml, S3_NOTIF_OVERLAP, "the overlap message"), S3_ERR_INVALID_ARGUMENT,
           "overlap across destination kinds");
    free(xml);

    /* What §1.6 allows. */
    is_int(pair(PUT, F(PFX("images"), SFX(".jpg")), PUT, F(PFX("images"), SFX(".png"))), S3_OK,
           "same prefix, non-overlapping suffixes");
    is_int(pair(PUT, F(PFX("image/"), ""), REMOVED, F(PFX("image/"), "")), S3_OK,
           "identical filters on different event types");
    is_int(pair(PUT, F(PFX("a/"), ""), PUT, F(PFX("b/"), "")), S3_OK, "disjoint prefixes");
    is_int(pair(CREATED, "", REMOVED, ""), S3_OK, "created and removed never meet");
    is_int(pair(PUT, "", COPY, ""), S3_OK, "two different created events");
    is_int(pair(DELETE, "", "<Event>s3:ObjectRemoved:DeleteMarkerCreated</Event>", ""), S3_OK,
           "two different removed events");
}

static void test_notif_event_matches(void)
{
    ok(s3_notif_event_matches("s3:ObjectCreated:*", "s3:ObjectCreated:Put"), "wildcard: Put");
    ok(s3_notif_event_matches("s3:ObjectCreated:*", "s3:ObjectCreated:CompleteMultipartUpload"),
       "wildcard: Complete");
    ok(s3_notif_event_matches("s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete"), "removed wildcard");
    ok(s3_notif_event_matches("s3:ObjectCreated:Put", "s3:ObjectCreated:Put"), "exact name");
    ok(!s3_notif_event_matches("s3:ObjectCreated:Put", "s3:ObjectCreated:Post"), "other name");
    ok(!s3_notif_event_matches("s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"), "other family");
    ok(!s3_notif_event_matches("s3:ObjectCreated:Put", "s3:ObjectCreated:*"),
       "a name does not select the wildcard");
    ok(!s3_notif_event_matches("s3:ObjectCreated:*", "s3:ObjectCreated:"), "nothing after");
    ok(!s3_notif_event_matches("s3:ObjectCreated:*", "s3:ObjectCreatedX"), "not the family");
    ok(!s3_notif_event_matches(NULL, "s3:ObjectCreated:Put"), "NULL pattern");
    ok(s3_notif_event_supported("s3:ObjectRemoved:DeleteMarkerCreated"), "supported");
    ok(!s3_notif_event_supported("s3:TestEvent"), "TestEvent is no configuration event");
}

static void test_notif_encode_decode_round_trip(void)
{
    const char *xml =
        "<NotificationConfiguration>"
        "<QueueConfiguration><Id>q</Id>"
        "<Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>" PUT COPY F(
            PFX("in/"),
            SFX(".txt")) "</QueueConfiguration>"
                         "<TopicConfiguration><Id>t</Id>"
                         "<Topic>arn:aws:sns:us-east-1:123456789012:t</Topic>" REMOVED F(
                             "", SFX("")) "</TopicConfiguration>"
                                          "<CloudFunctionConfiguration><Id>l &amp; &lt;x&gt;</Id>"
                                          "<CloudFunction>arn:aws:lambda:us-east-1:123456789012:"
                                          "function:f"
                                          "</CloudFunction>" PUT F(
                                              PFX("out/"), "") "</CloudFunctionConfiguration>"
                                                               "</NotificationConfiguration>";
    struct s3_notif_config c, d;
    struct s3_xml_err e;
    is_int(load(xml, &c, &e), S3_OK, "loads");
    size_t len = 0;
    unsigned char *enc = s3_notif_encode(&c, &len);
    ok(enc != NULL && len > 0 && enc[0] == S3_NOTIF_FORMAT, "encoded, version first");
    is_int(s3_notif_decode(enc, len, &d), 0, "decodes");
    bool same = c.n_rules == d.n_rules;
    for (size_t i = 0; same && i < c.n_rules; i++) {
        struct s3_notif_rule *a = &c.rules[i], *b = &d.rules[i];
        same = a->kind == b->kind && strcmp(a->id, b->id) == 0 && strcmp(a->arn, b->arn) == 0 &&
               a->n_events == b->n_events && (a->prefix == NULL) == (b->prefix == NULL) &&
               (a->suffix == NULL) == (b->suffix == NULL) &&
               (a->prefix == NULL || strcmp(a->prefix, b->prefix) == 0) &&
               (a->suffix == NULL || strcmp(a->suffix, b->suffix) == 0);
        for (size_t j = 0; same && j < a->n_events; j++)
            same = strcmp(a->events[j], b->events[j]) == 0;
    }
    ok(same, "the same configuration comes back");
    ok(d.n_rules == 3 && d.rules[1].prefix == NULL && d.rules[1].suffix != NULL &&
           d.rules[1].suffix[0] == '\0',
       "an empty suffix stays distinct from none");

    /* Every truncation and a trailing byte are refused, and leave nothing to free. */
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        struct s3_notif_config x;
        refused += s3_notif_decode(enc, n, &x) == -1 && x.rules == NULL && x.n_rules == 0;
    }
    is_int(refused, len, "every truncation is refused");
    unsigned char *longer = xmalloc(len + 1);
    memcpy(longer, enc, len);
    longer[len] = 0;
    struct s3_notif_config x;
    is_int(s3_notif_decode(longer, len + 1, &x), -1, "a trailing byte is refused");
    longer[0] = 2;
    is_int(s3_notif_decode(longer, len, &x), -1, "an unknown version is refused");
    free(longer);
    is_int(s3_notif_decode(NULL, 0, &x), -1, "no bytes");
    const unsigned char huge_n[] = {1, 0xff, 0xff, 0xff, 0xff};
    is_int(s3_notif_decode(huge_n, sizeof(huge_n), &x), -1, "a rule count past the input");

    /* The XML answered. */
    struct evbuffer *b = evbuffer_new();
    s3_notif_write_xml(b, &d);
    size_t n = evbuffer_get_length(b);
    char *out = xmalloc(n + 1);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    ok(strstr(out, "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                   "<QueueConfiguration><Id>q</Id>"
                   "<Queue>arn:aws:sqs:us-east-1:123456789012:q</Queue>"
                   "<Event>s3:ObjectCreated:Put</Event><Event>s3:ObjectCreated:Copy</Event>"
                   "<Filter><S3Key><FilterRule><Name>Prefix</Name><Value>in/</Value></FilterRule>"
                   "<FilterRule><Name>Suffix</Name><Value>.txt</Value></FilterRule></S3Key>"
                   "</Filter></QueueConfiguration>") != NULL,
       "queue rule as S3 writes it");
    ok(strstr(out, "<Id>l &amp; &lt;x&gt;</Id>") != NULL, "values escaped");
    ok(strstr(out, "<CloudFunction>arn:aws:lambda:") != NULL, "the lambda ARN element");
    free(out);

    /* What the GET answers can be PUT back as it is. */
    struct s3_notif_config again;
    s3_xml_err_cleanup(&e);
    s3_notif_write_xml(b, &d);
    n = evbuffer_get_length(b);
    out = xmalloc(n + 1);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    is_int(load(out, &again, &e), S3_OK, "the document answered reads back");
    is_int(again.n_rules, 3, "with its rules");
    s3_notif_config_free(&again);
    free(out);

    struct s3_notif_config empty = {0};
    s3_notif_write_xml(b, &empty);
    n = evbuffer_get_length(b);
    out = xmalloc(n + 1);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    ok(strstr(out, "<NotificationConfiguration "
                   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>") != NULL,
       "no configuration: an empty element");
    free(out);
    evbuffer_free(b);
    free(enc);
    s3_notif_config_free(&c);
    s3_notif_config_free(&d);
    s3_xml_err_cleanup(&e);
    s3_notif_config_free(NULL);
}

int main(void)
{
    subtest(test_notif_parses_every_kind_and_field);
    subtest(test_notif_malformed_documents);
    subtest(test_notif_invalid_arguments);
    subtest(test_notif_overlap_rules);
    subtest(test_notif_event_matches);
    subtest(test_notif_encode_decode_round_trip);
    return done_testing();
}

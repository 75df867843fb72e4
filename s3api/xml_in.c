/* S3 request bodies read with libxml2 under tech-stack §4.1: a size cap before parsing, no
 * DOCTYPE (refused from a SAX hook, so no entity is ever declared), no network, no errors on
 * stderr; text taken only from text and CDATA children; elements matched by local name, any
 * namespace. The parsers only check structure (and, for notification configurations, the
 * filter rules); the store checks parts and keys, notif.c the rest of a configuration. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "gateway/span.h"
#include "gateway/xmalloc.h"
#include "s3api/notif.h"
#include "s3api/xml.h"

#define MAX_PARTS    10000u
#define MAX_PART_NUM 10000ull
#define MAX_DELETE   1000u
/* Node budgets per body: every element S3 defines, and a little slack. A Part has PartNumber,
 * ETag and a checksum; an Object has Key, VersionId, ETag, LastModifiedTime and Size. */
#define NODES_COMPLETE (MAX_PARTS * 5 + 10)
#define NODES_DELETE   (MAX_DELETE * 6 + 10)
#define NODES_CREATE   100
#define NODES_ACL      1000
/* IGNORE_ENC with "UTF-8" forced below: S3 bodies are UTF-8, so a declared or sniffed other
 * encoding is refused rather than handed to an iconv converter. */
#define XML_READ_FLAGS                                                                             \
    (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC |            \
     XML_PARSE_NOCDATA)

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
    xmlInitParser();
}

/* Parser errors land here (per context, and through the thread's handler for the few libxml2
 * raises without a context, such as I/O and encoding errors), so nothing reaches stderr. The
 * caller answers MalformedXML; the detail is not worth a log line. */
static void on_xml_error(void *arg, xmlError *err)
{
    (void)arg;
    (void)err;
}

/* What one parse may still build: libxml2 spends ~150 bytes per node, so without a budget a
 * 2 MiB body of `<a/>` would cost 75 MB. */
struct read_state {
    size_t nodes_left;
};

static void stop(xmlParserCtxt *ctxt)
{
    ctxt->wellFormed = 0;
    xmlStopParser(ctxt);
}

/* S3 bodies never need a DTD: any DOCTYPE stops the parse before its internal subset (and
 * every entity declared there) is read. */
static void on_doctype(void *arg, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
    (void)name;
    (void)external_id;
    (void)system_id;
    stop(arg);
}

/* Charges each element, with its namespace declarations and attributes (an attribute is two
 * nodes: itself and its value), to the budget, then builds it as libxml2 would. */
static void on_start_element(void *arg, const xmlChar *local, const xmlChar *prefix,
                             const xmlChar *uri, int n_ns, const xmlChar **ns, int n_attrs,
                             int n_defaulted, const xmlChar **attrs)
{
    xmlParserCtxt *ctxt = arg;
    struct read_state *st = ctxt->_private;
    size_t cost = 1 + (size_t)n_ns + 2 * (size_t)n_attrs;

    if (st == NULL || st->nodes_left < cost) {
        stop(ctxt);
        return;
    }
    st->nodes_left -= cost;
    xmlSAX2StartElementNs(arg, local, prefix, uri, n_ns, ns, n_attrs, n_defaulted, attrs);
}

/* Parses `body` into a tree whose root element has local name `root` and at most `max_nodes`
 * elements, attributes and namespace declarations; NULL when the body is too large or too
 * busy, not well-formed, carries a DOCTYPE or has another root. Comments and processing
 * instructions are dropped and CDATA merges into text, so the count bounds the tree. */
static xmlDoc *read_doc(struct span body, const char *root, size_t max_nodes)
{
    struct read_state st = {max_nodes};
    xmlParserCtxt *ctxt = NULL;
    xmlDoc *doc = NULL;
    xmlNode *top;

    if (body.len == 0 || body.len > S3_XML_MAX_BODY)
        return NULL;
    pthread_once(&xml_once, init_libxml);
    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL)
        return NULL;
    ctxt->_private = &st;
    ctxt->sax->internalSubset = on_doctype;
    ctxt->sax->startElementNs = on_start_element;
    ctxt->sax->comment = NULL;
    ctxt->sax->processingInstruction = NULL;
    ctxt->sax->serror = on_xml_error;
    /* The thread's handler is libxml2 global state: borrow it for the call, then put back
     * whatever another module may have installed. */
    xmlStructuredErrorFunc saved_fn = xmlStructuredError;
    void *saved_arg = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(NULL, on_xml_error);
    doc = xmlCtxtReadMemory(ctxt, body.ptr, (int)body.len, NULL, "UTF-8", XML_READ_FLAGS);
    xmlSetStructuredErrorFunc(saved_arg, saved_fn);
    /* libxml2 returns a document despite a namespace error (an undeclared prefix); the
     * DOCTYPE check repeats the hook's, as a second line. */
    if (doc == NULL || !ctxt->wellFormed || !ctxt->nsWellFormed || doc->intSubset != NULL)
        goto fail;
    top = xmlDocGetRootElement(doc);
    if (top == NULL || !xmlStrEqual(top->name, (const xmlChar *)root))
        goto fail;
    xmlFreeParserCtxt(ctxt);
    return doc;

fail:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return NULL;
}

static bool is_elem(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, (const xmlChar *)name);
}

/* The first child element called `name`, or NULL. */
static xmlNode *child(const xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent->children; n != NULL; n = n->next)
        if (is_elem(n, name))
            return n;
    return NULL;
}

static size_t count_children(const xmlNode *parent, const char *name)
{
    size_t n_found = 0;
    for (xmlNode *n = parent->children; n != NULL; n = n->next)
        n_found += is_elem(n, name);
    return n_found;
}

static bool is_text(const xmlNode *n)
{
    return (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content != NULL;
}

/* The element's text: its text and CDATA children concatenated (never entity references), as
 * a new heap string (xmalloc), bounded by the body size cap. NULL when the element has element
 * children: a value field with markup inside is malformed, not something to flatten. */
static char *text_of(const xmlNode *elem)
{
    size_t len = 0, at = 0;
    for (xmlNode *n = elem->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE)
            return NULL;
        if (is_text(n))
            len += strlen((const char *)n->content);
    }
    char *s = xmalloc(len + 1);
    for (xmlNode *n = elem->children; n != NULL; n = n->next) {
        if (is_text(n)) {
            size_t k = strlen((const char *)n->content);
            memcpy(s + at, n->content, k);
            at += k;
        }
    }
    s[at] = '\0';
    return s;
}

static bool is_xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Drops XML white space around a value (pretty-printed bodies); keys are never trimmed. */
static struct span trim_xml_space(const char *s)
{
    struct span v = span_from(s);
    while (v.len > 0 && is_xml_space(v.ptr[0])) {
        v.ptr++;
        v.len--;
    }
    while (v.len > 0 && is_xml_space(v.ptr[v.len - 1]))
        v.len--;
    return v;
}

/* xsd:boolean: "true"/"1" or "false"/"0"; -1 otherwise. */
static int parse_bool(const char *s, bool *out)
{
    struct span v = trim_xml_space(s);
    if (span_eq_str(v, "true") || span_eq_str(v, "1"))
        *out = true;
    else if (span_eq_str(v, "false") || span_eq_str(v, "0"))
        *out = false;
    else
        return -1;
    return 0;
}

/* ---- CompleteMultipartUpload ---- */

/* One <Part>: S3_OK, MALFORMED_XML (missing or repeated fields, a part number outside
 * 1..10000) or INVALID_PART (an ETag that cannot be a part's). */
static enum s3_err read_part(const xmlNode *part, struct s3_part_ref *ref)
{
    enum s3_err err = S3_ERR_MALFORMED_XML;
    char *num = NULL, *etag = NULL;
    unsigned long long v;

    xmlNode *num_elem = child(part, "PartNumber");
    xmlNode *etag_elem = child(part, "ETag");
    if (num_elem == NULL || etag_elem == NULL || count_children(part, "PartNumber") != 1 ||
        count_children(part, "ETag") != 1)
        goto out;
    num = text_of(num_elem);
    etag = text_of(etag_elem);
    if (num == NULL || etag == NULL)
        goto out;
    if (span_to_u64(trim_xml_space(num), &v) != 0 || v < 1 || v > MAX_PART_NUM)
        goto out;
    ref->part_number = (unsigned)v;

    /* Clients echo the ETag header, quotes included (sometimes as &quot;). */
    struct span e = trim_xml_space(etag);
    if (e.len >= 2 && e.ptr[0] == '"' && e.ptr[e.len - 1] == '"') {
        e.ptr++;
        e.len -= 2;
    }
    if (e.len == 0 || e.len >= sizeof(ref->etag)) {
        err = S3_ERR_INVALID_PART;
        goto out;
    }
    memcpy(ref->etag, e.ptr, e.len);
    ref->etag[e.len] = '\0';
    err = S3_OK;

out:
    free(num);
    free(etag);
    return err;
}

enum s3_err s3_xml_parse_complete(struct span body, struct s3_part_ref **parts, size_t *n)
{
    enum s3_err err = S3_ERR_MALFORMED_XML;
    struct s3_part_ref *refs = NULL;
    xmlDoc *doc = NULL;
    bool out_of_order = false;
    size_t n_parts, i = 0;

    *parts = NULL;
    *n = 0;
    doc = read_doc(body, "CompleteMultipartUpload", NODES_COMPLETE);
    if (doc == NULL)
        goto fail;
    xmlNode *root = xmlDocGetRootElement(doc);
    n_parts = count_children(root, "Part");
    if (n_parts == 0 || n_parts > MAX_PARTS)
        goto fail;
    refs = xcalloc(n_parts, sizeof(*refs));
    for (xmlNode *p = root->children; p != NULL; p = p->next) {
        if (!is_elem(p, "Part"))
            continue;
        err = read_part(p, &refs[i]);
        if (err != S3_OK)
            goto fail;
        /* Strictly ascending: a repeated part number is as ambiguous as a step back. */
        if (i > 0 && refs[i].part_number <= refs[i - 1].part_number)
            out_of_order = true;
        i++;
    }
    /* A malformed part later in the list outranks the order error. */
    if (out_of_order) {
        err = S3_ERR_INVALID_PART_ORDER;
        goto fail;
    }
    xmlFreeDoc(doc);
    *parts = refs;
    *n = n_parts;
    return S3_OK;

fail:
    free(refs);
    xmlFreeDoc(doc);
    return err;
}

/* ---- DeleteObjects ---- */

void s3_xml_free_keys(char **keys, size_t n)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

enum s3_err s3_xml_parse_delete(struct span body, char ***keys, size_t *n, bool *quiet)
{
    char **out = NULL;
    xmlDoc *doc = NULL;
    size_t n_keys = 0, i = 0;

    *keys = NULL;
    *n = 0;
    *quiet = false;
    doc = read_doc(body, "Delete", NODES_DELETE);
    if (doc == NULL)
        goto fail;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (count_children(root, "Quiet") > 1)
        goto fail;
    xmlNode *q = child(root, "Quiet");
    if (q != NULL) {
        char *s = text_of(q);
        int rc = s != NULL ? parse_bool(s, quiet) : -1;
        free(s);
        if (rc != 0)
            goto fail;
    }
    n_keys = count_children(root, "Object");
    if (n_keys == 0 || n_keys > MAX_DELETE)
        goto fail;
    out = xcalloc(n_keys, sizeof(*out));
    for (xmlNode *o = root->children; o != NULL; o = o->next) {
        if (!is_elem(o, "Object"))
            continue;
        xmlNode *k = child(o, "Key");
        if (k == NULL || count_children(o, "Key") != 1)
            goto fail;
        out[i] = text_of(k);
        if (out[i] == NULL)
            goto fail;
        i++;
    }
    xmlFreeDoc(doc);
    *keys = out;
    *n = n_keys;
    return S3_OK;

fail:
    s3_xml_free_keys(out, i);
    xmlFreeDoc(doc);
    *quiet = false;
    return S3_ERR_MALFORMED_XML;
}

/* ---- CreateBucketConfiguration ---- */

static bool is_blank(struct span s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!is_xml_space(s.ptr[i]))
            return false;
    return true;
}

enum s3_err s3_xml_parse_create_bucket(struct span body, char *loc, size_t loc_cap)
{
    enum s3_err err = S3_ERR_MALFORMED_XML;
    char *text = NULL;
    xmlDoc *doc = NULL;

    ASSERT(loc_cap > 0);
    loc[0] = '\0';
    /* Most clients send no body at all for the default region. */
    if (body.len <= S3_XML_MAX_BODY && is_blank(body))
        return S3_OK;
    doc = read_doc(body, "CreateBucketConfiguration", NODES_CREATE);
    if (doc == NULL)
        goto out;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (count_children(root, "LocationConstraint") > 1)
        goto out;
    xmlNode *lc = child(root, "LocationConstraint");
    err = S3_OK;
    if (lc == NULL)
        goto out;
    text = text_of(lc);
    if (text == NULL) {
        err = S3_ERR_MALFORMED_XML;
        goto out;
    }
    struct span v = trim_xml_space(text);
    if (v.len >= loc_cap) {
        err = S3_ERR_INVALID_LOCATION_CONSTRAINT;
        goto out;
    }
    memcpy(loc, v.ptr, v.len);
    loc[v.len] = '\0';

out:
    free(text);
    xmlFreeDoc(doc);
    return err;
}

/* ---- AccessControlPolicy ---- */

/* The text of parent/name, trimmed, as a new heap string; NULL when the element is absent or
 * holds elements. */
static char *child_text(const xmlNode *parent, const char *name)
{
    xmlNode *n = child(parent, name);
    char *s = n != NULL ? text_of(n) : NULL;
    if (s == NULL)
        return NULL;
    struct span v = trim_xml_space(s);
    char *t = span_dup(v);
    free(s);
    return t;
}

/* One <Grant>: S3_OK when it gives FULL_CONTROL to `owner_id`, NOT_IMPLEMENTED for any other
 * grantee or permission, MALFORMED_XML when incomplete. */
static enum s3_err read_grant(const xmlNode *grant, const char *owner_id)
{
    enum s3_err err = S3_ERR_MALFORMED_XML;
    char *perm = NULL, *id = NULL;

    xmlNode *grantee = child(grant, "Grantee");
    perm = child_text(grant, "Permission");
    if (grantee == NULL || perm == NULL || count_children(grant, "Grantee") != 1 ||
        count_children(grant, "Permission") != 1)
        goto out;
    err = S3_ERR_NOT_IMPLEMENTED;
    /* Groups (URI) and e-mail grantees can only widen access; "private" has neither. */
    if (child(grantee, "URI") != NULL || child(grantee, "EmailAddress") != NULL)
        goto out;
    id = child_text(grantee, "ID");
    if (id == NULL || strcmp(id, owner_id) != 0 || strcmp(perm, "FULL_CONTROL") != 0)
        goto out;
    err = S3_OK;

out:
    free(perm);
    free(id);
    return err;
}

enum s3_err s3_xml_parse_acl(struct span body)
{
    enum s3_err err = S3_ERR_MALFORMED_XML;
    char *owner_id = NULL;
    xmlDoc *doc = NULL;
    bool other_grants = false;
    size_t n_grants = 0;

    doc = read_doc(body, "AccessControlPolicy", NODES_ACL);
    if (doc == NULL)
        goto out;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *owner = child(root, "Owner");
    xmlNode *list = child(root, "AccessControlList");
    if (owner == NULL || list == NULL || count_children(root, "Owner") != 1 ||
        count_children(root, "AccessControlList") != 1)
        goto out;
    owner_id = child_text(owner, "ID");
    if (owner_id == NULL || owner_id[0] == '\0')
        goto out;
    for (xmlNode *g = list->children; g != NULL; g = g->next) {
        if (!is_elem(g, "Grant"))
            continue;
        n_grants++;
        /* A malformed grant anywhere outranks "not implemented". */
        enum s3_err e = read_grant(g, owner_id);
        if (e == S3_ERR_MALFORMED_XML)
            goto out;
        other_grants |= e != S3_OK;
    }
    /* No grant at all locks even the owner out: not something the store can express. */
    err = n_grants == 0 || other_grants ? S3_ERR_NOT_IMPLEMENTED : S3_OK;

out:
    free(owner_id);
    xmlFreeDoc(doc);
    return err;
}

/* ---- errors with arguments ---- */

enum s3_err s3_xml_err_set(struct s3_xml_err *e, enum s3_err err, const char *msg,
                           const char *arg_name, const char *arg_value)
{
    if (e->err != S3_OK)
        return e->err;
    e->err = err;
    e->msg = msg;
    e->arg_name = arg_name != NULL ? xstrdup(arg_name) : NULL;
    e->arg_value = arg_value != NULL ? xstrdup(arg_value) : NULL;
    return err;
}

void s3_xml_err_cleanup(struct s3_xml_err *e)
{
    free(e->arg_name);
    free(e->arg_value);
    *e = (struct s3_xml_err){S3_OK, NULL, NULL, NULL};
}

/* ---- NotificationConfiguration ---- */

/* Every configuration is at most Id, ARN, the 8 event names (repeats allowed but pointless),
 * Filter, S3Key and two rules of three elements each: 20 elements; the budget allows a few
 * repeats beyond that for every permitted configuration. */
#define NODES_NOTIF (S3_NOTIF_RULES_MAX * 30 + 10)

/* A container holds elements and white space only. */
static bool is_markup_only(const xmlNode *n)
{
    if (n->type == XML_ELEMENT_NODE)
        return true;
    return is_text(n) && is_blank(span_from((const char *)n->content));
}

/* A value element's text without surrounding XML white space, or NULL when it holds markup. */
static char *trimmed_text(const xmlNode *elem)
{
    char *s = text_of(elem);
    if (s == NULL)
        return NULL;
    char *t = span_dup(trim_xml_space(s));
    free(s);
    return t;
}

/* One <FilterRule>{Name, Value}: into rule->prefix or rule->suffix. */
static enum s3_err read_filter_rule(const xmlNode *fr, struct s3_notif_rule *rule,
                                    struct s3_xml_err *e)
{
    enum s3_err err = S3_ERR_MALFORMED_XML;
    char *name = NULL, *value = NULL;

    for (xmlNode *n = fr->children; n != NULL; n = n->next)
        if (!is_markup_only(n) ||
            (n->type == XML_ELEMENT_NODE && !is_elem(n, "Name") && !is_elem(n, "Value")))
            goto out;
    if (count_children(fr, "Name") != 1 || count_children(fr, "Value") != 1)
        goto out;
    name = trimmed_text(child(fr, "Name"));
    /* Values are key bytes: never trimmed. */
    value = text_of(child(fr, "Value"));
    if (name == NULL || value == NULL)
        goto out;
    bool is_prefix = strcasecmp(name, "prefix") == 0;
    if (!is_prefix && strcasecmp(name, "suffix") != 0) {
        err = s3_xml_err_set(e, S3_ERR_INVALID_ARGUMENT,
                             "filter rule name must be either prefix or suffix", "FilterRule.Name",
                             name);
        goto out;
    }
    char **slot = is_prefix ? &rule->prefix : &rule->suffix;
    if (*slot != NULL) {
        err = s3_xml_err_set(e, S3_ERR_INVALID_ARGUMENT,
                             is_prefix ? "Cannot specify more than one prefix rule in a filter."
                                       : "Cannot specify more than one suffix rule in a filter.",
                             "FilterRule", name);
        goto out;
    }
    if (strlen(value) > S3_NOTIF_FILTER_MAX) {
        err = s3_xml_err_set(
            e, S3_ERR_INVALID_ARGUMENT,
            "Size of filter rule value cannot exceed 1024 bytes in UTF-8 representation",
            "FilterRule.Value", NULL);
        goto out;
    }
    *slot = value;
    value = NULL;
    err = S3_OK;

out:
    free(name);
    free(value);
    return err;
}

/* <Filter><S3Key><FilterRule/>*</S3Key></Filter>; an empty Filter or S3Key filters nothing. */
static enum s3_err read_filter(const xmlNode *filter, struct s3_notif_rule *rule,
                               struct s3_xml_err *e)
{
    for (xmlNode *n = filter->children; n != NULL; n = n->next)
        if (!is_markup_only(n) || (n->type == XML_ELEMENT_NODE && !is_elem(n, "S3Key")))
            return S3_ERR_MALFORMED_XML;
    if (count_children(filter, "S3Key") > 1)
        return S3_ERR_MALFORMED_XML;
    xmlNode *key = child(filter, "S3Key");
    if (key == NULL)
        return S3_OK;
    enum s3_err err = S3_OK;
    for (xmlNode *n = key->children; n != NULL; n = n->next) {
        if (!is_markup_only(n) || (n->type == XML_ELEMENT_NODE && !is_elem(n, "FilterRule")))
            return S3_ERR_MALFORMED_XML;
        if (n->type != XML_ELEMENT_NODE)
            continue;
        /* A broken rule later on outranks an invalid one before it. */
        enum s3_err r = read_filter_rule(n, rule, e);
        if (r == S3_ERR_MALFORMED_XML)
            return r;
        if (err == S3_OK)
            err = r;
    }
    return err;
}

/* One Queue/Topic/CloudFunctionConfiguration. S3_OK, MALFORMED_XML, or INVALID_ARGUMENT (the
 * first one recorded in `e`; the caller goes on checking the structure). */
static enum s3_err read_notif_rule(const xmlNode *cfg, enum s3_notif_kind kind,
                                   struct s3_notif_rule *rule, struct s3_xml_err *e)
{
    const char *arn_elem = s3_notif_kind_arn_elem(kind);
    enum s3_err invalid = S3_OK;

    rule->kind = kind;
    for (xmlNode *n = cfg->children; n != NULL; n = n->next)
        if (!is_markup_only(n) ||
            (n->type == XML_ELEMENT_NODE && !is_elem(n, "Id") && !is_elem(n, arn_elem) &&
             !is_elem(n, "Event") && !is_elem(n, "Filter")))
            return S3_ERR_MALFORMED_XML;
    size_t n_events = count_children(cfg, "Event");
    if (count_children(cfg, "Id") > 1 || count_children(cfg, arn_elem) != 1 || n_events == 0 ||
        count_children(cfg, "Filter") > 1)
        return S3_ERR_MALFORMED_XML;
    rule->events = xcalloc(n_events, sizeof(*rule->events));
    for (xmlNode *n = cfg->children; n != NULL; n = n->next) {
        if (!is_elem(n, "Event"))
            continue;
        char *ev = trimmed_text(n);
        if (ev == NULL)
            return S3_ERR_MALFORMED_XML;
        rule->events[rule->n_events++] = ev;
    }
    rule->arn = trimmed_text(child(cfg, arn_elem));
    if (rule->arn == NULL)
        return S3_ERR_MALFORMED_XML;
    if (strlen(rule->arn) > S3_NOTIF_ARN_MAX)
        invalid =
            s3_xml_err_set(e, S3_ERR_INVALID_ARGUMENT, "The ARN is too long.", arn_elem, NULL);
    xmlNode *id = child(cfg, "Id");
    if (id != NULL) {
        rule->id = trimmed_text(id);
        if (rule->id == NULL)
            return S3_ERR_MALFORMED_XML;
        if (rule->id[0] == '\0') { /* as if absent: one is generated */
            free(rule->id);
            rule->id = NULL;
        } else if (strlen(rule->id) > S3_NOTIF_ID_MAX) {
            invalid = s3_xml_err_set(e, S3_ERR_INVALID_ARGUMENT,
                                     "The ID of a configuration cannot be longer than 255 "
                                     "characters.",
                                     "Id", NULL);
        }
    }
    xmlNode *filter = child(cfg, "Filter");
    if (filter != NULL) {
        enum s3_err err = read_filter(filter, rule, e);
        if (err == S3_ERR_MALFORMED_XML)
            return err;
        if (invalid == S3_OK)
            invalid = err;
    }
    return invalid;
}

/* The configuration kind an element of the root names; -1 for none. */
static int notif_kind_of(const xmlNode *n)
{
    for (int k = 0; k < S3_NOTIF_N_KINDS; k++)
        if (is_elem(n, s3_notif_kind_elem((enum s3_notif_kind)k)))
            return k;
    return -1;
}

enum s3_err s3_xml_parse_notification(struct span body, struct s3_notif_config *out,
                                      struct s3_xml_err *e)
{
    enum s3_err err = S3_ERR_MALFORMED_XML, invalid = S3_OK;
    size_t n_rules = 0;

    memset(out, 0, sizeof(*out));
    xmlDoc *doc = read_doc(body, "NotificationConfiguration", NODES_NOTIF);
    if (doc == NULL)
        goto out;
    xmlNode *root = xmlDocGetRootElement(doc);
    for (xmlNode *n = root->children; n != NULL; n = n->next) {
        if (!is_markup_only(n))
            goto out;
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (notif_kind_of(n) >= 0)
            n_rules++;
        else if (!is_elem(n, "EventBridgeConfiguration"))
            goto out;
    }
    if (count_children(root, "EventBridgeConfiguration") > 1)
        goto out;
    if (n_rules > S3_NOTIF_RULES_MAX) {
        err = s3_xml_err_set(e, S3_ERR_INVALID_ARGUMENT,
                             "Too many notification configurations on one bucket.", NULL, NULL);
        goto out;
    }
    out->rules = xcalloc(n_rules ? n_rules : 1, sizeof(*out->rules));
    for (xmlNode *n = root->children; n != NULL; n = n->next) {
        int kind = n->type == XML_ELEMENT_NODE ? notif_kind_of(n) : -1;
        if (kind < 0)
            continue;
        enum s3_err r =
            read_notif_rule(n, (enum s3_notif_kind)kind, &out->rules[out->n_rules++], e);
        if (r == S3_ERR_MALFORMED_XML)
            goto out;
        if (invalid == S3_OK)
            invalid = r;
    }
    err = invalid;

out:
    xmlFreeDoc(doc);
    /* A malformed document outranks an invalid argument seen before the break. */
    if (err == S3_ERR_MALFORMED_XML) {
        s3_xml_err_cleanup(e);
        e->err = err;
    }
    return err;
}

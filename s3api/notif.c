/* Bucket notification configurations: S3's rules for a parsed configuration, its stored
 * encoding and its XML. Reading the request body is xml_in.c's; storing it, store_notif.c's.
 *
 * Encoding (little-endian), version S3_NOTIF_FORMAT:
 *   u8 version, u32 n_rules, then per rule: u8 kind, u8 flags (1 prefix, 2 suffix), str id,
 *   str arn, u32 n_events, str event * n_events, [str prefix], [str suffix]
 *   where str = u32 length + bytes (no NUL inside, none stored). */
#include "s3api/notif.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"

static const struct {
    const char *elem;
    const char *arn_elem;
} kinds[S3_NOTIF_N_KINDS] = {
    [S3_NOTIF_QUEUE] = {"QueueConfiguration", "Queue"},
    [S3_NOTIF_TOPIC] = {"TopicConfiguration", "Topic"},
    [S3_NOTIF_LAMBDA] = {"CloudFunctionConfiguration", "CloudFunction"},
};

const char *s3_notif_kind_elem(enum s3_notif_kind k)
{
    return kinds[k].elem;
}

const char *s3_notif_kind_arn_elem(enum s3_notif_kind k)
{
    return kinds[k].arn_elem;
}

/* The events a name selects, as a bit set: one bit per event the store reports or S3 names,
 * so two rules share an event type exactly when their sets intersect. */
enum {
    EV_PUT = 1u << 0,
    EV_POST = 1u << 1,
    EV_COPY = 1u << 2,
    EV_COMPLETE = 1u << 3,
    EV_DELETE = 1u << 4,
    EV_DELETE_MARKER = 1u << 5,
    EV_CREATED = EV_PUT | EV_POST | EV_COPY | EV_COMPLETE,
    EV_REMOVED = EV_DELETE | EV_DELETE_MARKER,
};

static const struct {
    const char *name;
    unsigned bits;
} events[] = {
    {"s3:ObjectCreated:*", EV_CREATED},
    {"s3:ObjectCreated:Put", EV_PUT},
    {"s3:ObjectCreated:Post", EV_POST},
    {"s3:ObjectCreated:Copy", EV_COPY},
    {"s3:ObjectCreated:CompleteMultipartUpload", EV_COMPLETE},
    {"s3:ObjectRemoved:*", EV_REMOVED},
    {"s3:ObjectRemoved:Delete", EV_DELETE},
    {"s3:ObjectRemoved:DeleteMarkerCreated", EV_DELETE_MARKER},
};

static unsigned event_bits(const char *name)
{
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(name, events[i].name) == 0)
            return events[i].bits;
    return 0;
}

bool s3_notif_event_supported(const char *name)
{
    return event_bits(name) != 0;
}

bool s3_notif_event_matches(const char *pattern, const char *event_name)
{
    if (pattern == NULL || event_name == NULL)
        return false;
    if (strcmp(pattern, event_name) == 0)
        return true;
    /* "s3:ObjectCreated:*" selects every name after "s3:ObjectCreated:". */
    size_t n = strlen(pattern);
    return n >= 2 && pattern[n - 1] == '*' && pattern[n - 2] == ':' &&
           strncmp(pattern, event_name, n - 1) == 0 && event_name[n - 1] != '\0';
}

/* ---- validation ---- */

static bool starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool ends_with(const char *s, const char *p)
{
    size_t sn = strlen(s), pn = strlen(p);
    return pn <= sn && memcmp(s + sn - pn, p, pn) == 0;
}

/* Some key matches both filters: S3's overlap rule (absent = matches every key). */
static bool filters_overlap(const struct s3_notif_rule *a, const struct s3_notif_rule *b)
{
    bool prefixes = a->prefix == NULL || b->prefix == NULL || starts_with(a->prefix, b->prefix) ||
                    starts_with(b->prefix, a->prefix);
    bool suffixes = a->suffix == NULL || b->suffix == NULL || ends_with(a->suffix, b->suffix) ||
                    ends_with(b->suffix, a->suffix);
    return prefixes && suffixes;
}

static unsigned rule_bits(const struct s3_notif_rule *r)
{
    unsigned bits = 0;
    for (size_t i = 0; i < r->n_events; i++)
        bits |= event_bits(r->events[i]);
    return bits;
}

static void generate_id(struct s3_notif_rule *r)
{
    unsigned char raw[S3_NOTIF_GEN_ID_LEN / 2];
    static const char hex[] = "0123456789abcdef";
    ASSERT(getrandom(raw, sizeof(raw), 0) == (ssize_t)sizeof(raw));
    r->id = xmalloc(S3_NOTIF_GEN_ID_LEN + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        r->id[2 * i] = hex[raw[i] >> 4];
        r->id[2 * i + 1] = hex[raw[i] & 15];
    }
    r->id[S3_NOTIF_GEN_ID_LEN] = '\0';
}

enum s3_err s3_notif_validate(struct s3_notif_config *c, s3_arn_check_fn *check, void *check_arg,
                              struct s3_xml_err *e)
{
    unsigned *bits = xcalloc(c->n_rules ? c->n_rules : 1, sizeof(*bits));
    enum s3_err err = S3_ERR_INVALID_ARGUMENT;

    for (size_t i = 0; i < c->n_rules; i++) {
        for (size_t j = 0; j < c->rules[i].n_events; j++) {
            if (!s3_notif_event_supported(c->rules[i].events[j])) {
                s3_xml_err_set(e, err, S3_NOTIF_BAD_EVENT, "Event", c->rules[i].events[j]);
                goto out;
            }
        }
        bits[i] = rule_bits(&c->rules[i]);
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        for (size_t j = 0; c->rules[i].id != NULL && j < i; j++) {
            if (c->rules[j].id != NULL && strcmp(c->rules[i].id, c->rules[j].id) == 0) {
                s3_xml_err_set(e, err, "Configuration IDs must be unique.", "Id", c->rules[i].id);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        for (size_t j = 0; j < i; j++) {
            if ((bits[i] & bits[j]) != 0 && filters_overlap(&c->rules[i], &c->rules[j])) {
                s3_xml_err_set(e, err, S3_NOTIF_OVERLAP, NULL, NULL);
                goto out;
            }
        }
    }
    /* Last, as S3 checks destinations last (by sending each its test message). */
    for (size_t i = 0; i < c->n_rules; i++) {
        if (check == NULL || !check(check_arg, c->rules[i].arn)) {
            s3_xml_err_set(e, err, S3_NOTIF_UNVALIDATED, c->rules[i].arn, S3_NOTIF_UNKNOWN_ARN);
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_rules; i++)
        if (c->rules[i].id == NULL)
            generate_id(&c->rules[i]);
    err = S3_OK;

out:
    free(bits);
    return err;
}

/* ---- encoding ---- */

struct wbuf {
    unsigned char *p;
    size_t len;
    size_t cap;
};

static void put_bytes(struct wbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u8(struct wbuf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put_bytes(b, &c, 1);
}

static void put_u32(struct wbuf *b, size_t v)
{
    ASSERT(v <= UINT32_MAX);
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    put_bytes(b, le, 4);
}

static void put_str(struct wbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, n);
    put_bytes(b, s, n);
}

unsigned char *s3_notif_encode(const struct s3_notif_config *c, size_t *len)
{
    struct wbuf b = {0};
    put_u8(&b, S3_NOTIF_FORMAT);
    put_u32(&b, c->n_rules);
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct s3_notif_rule *r = &c->rules[i];
        put_u8(&b, (unsigned)r->kind);
        put_u8(&b, (r->prefix != NULL ? 1u : 0u) | (r->suffix != NULL ? 2u : 0u));
        put_str(&b, r->id != NULL ? r->id : "");
        put_str(&b, r->arn != NULL ? r->arn : "");
        put_u32(&b, r->n_events);
        for (size_t j = 0; j < r->n_events; j++)
            put_str(&b, r->events[j]);
        if (r->prefix != NULL)
            put_str(&b, r->prefix);
        if (r->suffix != NULL)
            put_str(&b, r->suffix);
    }
    *len = b.len;
    return b.p;
}

/* A reader over stored bytes: any overrun sets `bad`. */
struct rbuf {
    const unsigned char *p;
    size_t len;
    size_t off;
    bool bad;
};

static unsigned get_u8(struct rbuf *r)
{
    if (r->bad || r->len - r->off < 1) {
        r->bad = true;
        return 0;
    }
    return r->p[r->off++];
}

static size_t get_u32(struct rbuf *r)
{
    if (r->bad || r->len - r->off < 4) {
        r->bad = true;
        return 0;
    }
    const unsigned char *p = r->p + r->off;
    r->off += 4;
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/* A new string, or NULL (and `bad`) when it overruns or holds a NUL. */
static char *get_str(struct rbuf *r)
{
    size_t n = get_u32(r);
    if (r->bad || r->len - r->off < n || memchr(r->p + r->off, '\0', n) != NULL) {
        r->bad = true;
        return NULL;
    }
    char *s = xmalloc(n + 1);
    memcpy(s, r->p + r->off, n);
    s[n] = '\0';
    r->off += n;
    return s;
}

static void decode_rule(struct rbuf *r, struct s3_notif_rule *rule)
{
    unsigned kind = get_u8(r), flags = get_u8(r);
    if (kind >= S3_NOTIF_N_KINDS || flags > 3) {
        r->bad = true;
        return;
    }
    rule->kind = (enum s3_notif_kind)kind;
    rule->id = get_str(r);
    rule->arn = get_str(r);
    size_t n = get_u32(r);
    /* Each event takes at least its 4-byte length: bounds the allocation by the input. */
    if (r->bad || n > (r->len - r->off) / 4) {
        r->bad = true;
        return;
    }
    rule->events = xcalloc(n ? n : 1, sizeof(*rule->events));
    for (size_t i = 0; i < n && !r->bad; i++) {
        rule->events[i] = get_str(r);
        rule->n_events += rule->events[i] != NULL;
    }
    if ((flags & 1) != 0)
        rule->prefix = get_str(r);
    if ((flags & 2) != 0)
        rule->suffix = get_str(r);
}

int s3_notif_decode(const void *data, size_t len, struct s3_notif_config *out)
{
    struct rbuf r = {.p = data, .len = len};
    memset(out, 0, sizeof(*out));
    if (data == NULL || get_u8(&r) != S3_NOTIF_FORMAT)
        return -1;
    size_t n = get_u32(&r);
    /* A rule takes at least 14 bytes (kind, flags, three lengths). */
    if (r.bad || n > (r.len - r.off) / 14)
        return -1;
    out->rules = xcalloc(n ? n : 1, sizeof(*out->rules));
    for (size_t i = 0; i < n && !r.bad; i++) {
        decode_rule(&r, &out->rules[i]);
        out->n_rules++;
    }
    if (r.bad || r.off != r.len) {
        s3_notif_config_free(out);
        return -1;
    }
    return 0;
}

void s3_notif_config_free(struct s3_notif_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_rules; i++) {
        struct s3_notif_rule *r = &c->rules[i];
        free(r->id);
        free(r->arn);
        for (size_t j = 0; j < r->n_events; j++)
            free(r->events[j]);
        free(r->events);
        free(r->prefix);
        free(r->suffix);
    }
    free(c->rules);
    memset(c, 0, sizeof(*c));
}

/* ---- XML ---- */

static void write_filter_rule(struct evbuffer *out, const char *name, const char *value)
{
    evbuffer_add_printf(out, "<FilterRule>");
    s3_xml_elem(out, "Name", name);
    s3_xml_elem(out, "Value", value);
    evbuffer_add_printf(out, "</FilterRule>");
}

void s3_notif_write_xml(struct evbuffer *out, const struct s3_notif_config *c)
{
    s3_xml_declaration(out);
    if (c->n_rules == 0) {
        evbuffer_add_printf(out, "<NotificationConfiguration xmlns=\"%s\"/>", S3_XML_NS);
        return;
    }
    evbuffer_add_printf(out, "<NotificationConfiguration xmlns=\"%s\">", S3_XML_NS);
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct s3_notif_rule *r = &c->rules[i];
        evbuffer_add_printf(out, "<%s>", kinds[r->kind].elem);
        s3_xml_elem(out, "Id", r->id != NULL ? r->id : "");
        s3_xml_elem(out, kinds[r->kind].arn_elem, r->arn != NULL ? r->arn : "");
        for (size_t j = 0; j < r->n_events; j++)
            s3_xml_elem(out, "Event", r->events[j]);
        if (r->prefix != NULL || r->suffix != NULL) {
            /* S3 answers the rule names capitalised, whatever case they were sent in. */
            evbuffer_add_printf(out, "<Filter><S3Key>");
            if (r->prefix != NULL)
                write_filter_rule(out, "Prefix", r->prefix);
            if (r->suffix != NULL)
                write_filter_rule(out, "Suffix", r->suffix);
            evbuffer_add_printf(out, "</S3Key></Filter>");
        }
        evbuffer_add_printf(out, "</%s>", kinds[r->kind].elem);
    }
    evbuffer_add_printf(out, "</NotificationConfiguration>");
}

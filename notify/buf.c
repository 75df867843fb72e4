/* notify: a growing byte buffer with the two writers the event hook needs: JSON text (string
 * escaping, numbers) and the binary outbox record (queue/queue.h, "Outbox records").
 *
 * Why not jansson here: the hook runs on every upload inside the LMDB write transaction, and
 * its documents have a fixed shape. Building a jansson tree costs dozens of small allocations
 * and a dump per message (it was ~13% of the gateway's CPU under an upload benchmark), while
 * writing the text in place costs one memcpy per member into a buffer a thread reuses.
 * jansson stays for everything else (services, the state file, the admin API). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"

void notify_buf_reserve(struct notify_buf *b, size_t more)
{
    size_t cap;

    if (b->cap - b->len >= more)
        return;
    cap = b->cap < 256 ? 256 : b->cap;
    while (cap - b->len < more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void notify_buf_puts(struct notify_buf *b, const char *s)
{
    notify_buf_put(b, s, strlen(s));
}

void notify_buf_cleanup(struct notify_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void notify_buf_u64(struct notify_buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    notify_buf_put(b, tmp + sizeof(tmp) - n, n);
}

/* ---- JSON strings ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at `s` (lead byte >= 0x80), 0 when invalid: the rules
 * jansson applies (no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    cp = c & (0x7fu >> n); /* the lead byte's payload bits */
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Bytes that need no escaping: printable ASCII other than '"' and '\\'. */
static bool is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Appends the escaped characters of `s` (no quotes); false, with nothing appended, when `s`
 * is not valid UTF-8. */
static bool json_chars(struct notify_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->len;

    /* worst case: every byte a \u00XX */
    notify_buf_reserve(b, strlen(s) * 6);
    while (*p != '\0') {
        const unsigned char *run = p;
        char *o;

        while (is_plain(*p))
            p++;
        memcpy(b->p + b->len, run, (size_t)(p - run));
        b->len += (size_t)(p - run);
        if (*p == '\0')
            break;
        o = b->p + b->len;
        if (*p >= 0x80) {
            size_t n = utf8_len(p);
            if (n == 0) {
                b->len = start;
                return false;
            }
            memcpy(o, p, n);
            b->len += n;
            p += n;
            continue;
        }
        o[0] = '\\';
        switch (*p) {
        case '"':
        case '\\':
            o[1] = (char)*p;
            break;
        case '\b':
            o[1] = 'b';
            break;
        case '\f':
            o[1] = 'f';
            break;
        case '\n':
            o[1] = 'n';
            break;
        case '\r':
            o[1] = 'r';
            break;
        case '\t':
            o[1] = 't';
            break;
        default:
            o[1] = 'u';
            o[2] = '0';
            o[3] = '0';
            o[4] = hex[*p >> 4];
            o[5] = hex[*p & 15];
            b->len += 4;
            break;
        }
        b->len += 2;
        p++;
    }
    return true;
}

static size_t form_encode(char *out, const char *key);

void notify_buf_json_strv(struct notify_buf *b, const char *const *parts, size_t n)
{
    size_t start = b->len;
    bool ok = true;

    notify_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n && ok; i++)
        ok = json_chars(b, parts[i] != NULL ? parts[i] : "");
    if (!ok) {
        b->len = start + 1;
        for (size_t i = 0; i < n; i++) {
            const char *s = parts[i] != NULL ? parts[i] : "";
            notify_buf_reserve(b, strlen(s) * 3);
            b->len += form_encode(b->p + b->len, s);
        }
    }
    notify_buf_put(b, "\"", 1);
}

void notify_buf_json_str(struct notify_buf *b, const char *s)
{
    notify_buf_json_strv(b, &s, 1);
}

/* application/x-www-form-urlencoded as AWS writes keys in events: letters, digits and
 * "-_.*" stay, space becomes '+', '/' stays (as AWS leaves it in real events; form decoders
 * accept both), every other byte is %XX. The output needs no JSON escaping. */
static size_t form_encode(char *out, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '*' || c == '/') {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

void notify_buf_json_encoded(struct notify_buf *b, const char *s)
{
    if (s == NULL)
        s = "";
    notify_buf_reserve(b, strlen(s) * 3 + 2);
    b->p[b->len++] = '"';
    b->len += form_encode(b->p + b->len, s);
    b->p[b->len++] = '"';
}

char *notify_key_encode(const char *key)
{
    char *out = xmalloc(strlen(key) * 3 + 1);

    out[form_encode(out, key)] = '\0';
    return out;
}

/* ---- outbox records -------------------------------------------------------------------- */

static void put_u32le(struct notify_buf *b, size_t v)
{
    unsigned char le[4];

    ASSERT(v <= UINT32_MAX); /* the hook's fields are far smaller */
    le[0] = (unsigned char)(v & 0xff);
    le[1] = (unsigned char)(v >> 8 & 0xff);
    le[2] = (unsigned char)(v >> 16 & 0xff);
    le[3] = (unsigned char)(v >> 24 & 0xff);
    notify_buf_put(b, le, 4);
}

void notify_rec_begin(struct notify_buf *b, char kind)
{
    b->len = 0;
    notify_buf_put(b, "FR1", 3);
    notify_buf_put(b, &kind, 1);
}

void notify_rec_field(struct notify_buf *b, const char *name, const void *value, size_t len)
{
    size_t n = strlen(name);

    notify_buf_reserve(b, 8 + n + len);
    put_u32le(b, n);
    notify_buf_put(b, name, n);
    put_u32le(b, len);
    notify_buf_put(b, value, len);
}

void notify_rec_field_str(struct notify_buf *b, const char *name, const char *value)
{
    notify_rec_field(b, name, value, strlen(value));
}

size_t notify_rec_field_begin(struct notify_buf *b, const char *name)
{
    size_t n = strlen(name), at;

    put_u32le(b, n);
    notify_buf_put(b, name, n);
    at = b->len;
    put_u32le(b, 0); /* filled in by notify_rec_field_end */
    return at;
}

void notify_rec_field_end(struct notify_buf *b, size_t at)
{
    size_t v = b->len - at - 4;

    ASSERT(v <= UINT32_MAX);
    b->p[at] = (char)(v & 0xff);
    b->p[at + 1] = (char)(v >> 8 & 0xff);
    b->p[at + 2] = (char)(v >> 16 & 0xff);
    b->p[at + 3] = (char)(v >> 24 & 0xff);
}

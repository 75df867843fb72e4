/* S3 XML responses written straight into evbuffers. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "s3api/xml.h"

void s3_xml_declaration(struct evbuffer *out)
{
    evbuffer_add(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39);
}

void s3_xml_escape(struct evbuffer *out, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char num[8];
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(num, sizeof(num), "&#x%X;", c);
                rep = num;
            }
        }
        if (rep == NULL)
            continue;
        evbuffer_add(out, s + start, i - start);
        evbuffer_add(out, rep, strlen(rep));
        start = i + 1;
    }
    evbuffer_add(out, s + start, len - start);
}

void s3_xml_elem(struct evbuffer *out, const char *name, const char *value)
{
    evbuffer_add_printf(out, "<%s>", name);
    s3_xml_escape(out, value, strlen(value));
    evbuffer_add_printf(out, "</%s>", name);
}

void s3_xml_elem_u64(struct evbuffer *out, const char *name, unsigned long long v)
{
    evbuffer_add_printf(out, "<%s>%llu</%s>", name, v, name);
}

void s3_xml_elem_bool(struct evbuffer *out, const char *name, bool v)
{
    evbuffer_add_printf(out, "<%s>%s</%s>", name, v ? "true" : "false", name);
}

/* encoding-type=url as S3 writes it and clients read it back: botocore, aws-sdk-go and rclone
 * decode with form rules (unquote_plus, url.QueryUnescape), so a space may travel as '+' and a
 * literal '+' must be %2B. '/' stays readable, as in S3's own listings. The result is pure
 * ASCII without markup characters, so it needs no XML escaping. */
static void url_encode(struct evbuffer *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/')
            continue;
        evbuffer_add(out, s + start, i - start);
        if (c == ' ') {
            evbuffer_add(out, "+", 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            evbuffer_add(out, esc, sizeof(esc));
        }
        start = i + 1;
    }
    evbuffer_add(out, s + start, len - start);
}

void s3_xml_elem_key(struct evbuffer *out, const char *name, const char *key, bool url)
{
    if (!url) {
        s3_xml_elem(out, name, key);
        return;
    }
    evbuffer_add_printf(out, "<%s>", name);
    url_encode(out, key, strlen(key));
    evbuffer_add_printf(out, "</%s>", name);
}

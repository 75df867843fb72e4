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

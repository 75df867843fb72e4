/* Fuzzes the key check and the XML writers a key goes through (s3api/names.c, xml_out.c):
 * escaped output must hold no markup or control bytes, and the encoding-type=url form must
 * decode (as botocore's unquote_plus does) back to the key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/xmalloc.h"
#include "s3api/names.h"
#include "s3api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks <K>...</K> from s3_xml_elem_key(url) against `key`. */
static void check_url_form(struct evbuffer *b, const char *key, size_t key_len)
{
    size_t n = evbuffer_get_length(b);
    const char *s = (const char *)evbuffer_pullup(b, -1);
    if (n < 7 || memcmp(s, "<K>", 3) != 0 || memcmp(s + n - 4, "</K>", 4) != 0)
        abort();
    size_t o = 0;
    for (size_t i = 3; i < n - 4; i++) {
        char c = s[i];
        int v;
        if (c == '+') {
            v = ' ';
        } else if (c == '%') {
            if (i + 2 >= n - 4 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                abort();
            v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        } else if (c == '<' || c == '>' || c == '&' || (unsigned char)c < 0x21 ||
                   (unsigned char)c > 0x7e) {
            abort();
        } else {
            v = (unsigned char)c;
        }
        if (o >= key_len || (unsigned char)key[o] != v)
            abort();
        o++;
    }
    if (o != key_len)
        abort();
}

/* Escaped text holds no raw markup or control bytes. */
static void check_escaped(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    const char *s = (const char *)evbuffer_pullup(b, -1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<' || c == '>' || c == '"' || c == '\'' || c < 0x20 || c == 0x7f)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *key = (const char *)data;
    enum s3_err e = s3_key_check(key, size);
    if (e != S3_OK && e != S3_ERR_KEY_TOO_LONG && e != S3_ERR_INVALID_ARGUMENT)
        abort();
    if (e == S3_OK && (size == 0 || size > 1024 || memchr(key, '\0', size) != NULL))
        abort();

    struct evbuffer *b = evbuffer_new();
    s3_xml_escape(b, key, size);
    check_escaped(b);
    evbuffer_drain(b, evbuffer_get_length(b));

    /* The element writers take C strings: up to the first NUL. */
    char *cstr = xstrndup(key, size);
    size_t clen = strlen(cstr);
    s3_xml_elem_key(b, "K", cstr, true);
    check_url_form(b, cstr, clen);
    evbuffer_drain(b, evbuffer_get_length(b));
    s3_xml_elem_key(b, "K", cstr, false);
    if (evbuffer_get_length(b) < clen + 7)
        abort();
    free(cstr);
    evbuffer_free(b);
    return 0;
}

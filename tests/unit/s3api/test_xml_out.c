/* s3api/xml_out.c: the declaration, the escaper and the element writers. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

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

/* Drains `b` into a NUL-terminated heap string. */
static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = xmalloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static void check_escape(const char *in, size_t len, const char *want, const char *name)
{
    struct evbuffer *b = evbuffer_new();
    s3_xml_escape(b, in, len);
    char *got = drain(b);
    is_str(got, want, name);
    free(got);
    evbuffer_free(b);
}

static void check_key(const char *key, bool url, const char *want, const char *name)
{
    struct evbuffer *b = evbuffer_new();
    s3_xml_elem_key(b, "Key", key, url);
    char *got = drain(b);
    is_str(got, want, name);
    free(got);
    evbuffer_free(b);
}

/* urllib.parse.unquote_plus, as botocore decodes encoding-type=url (and Go's QueryUnescape). */
static char *unquote_plus(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && s[i + 1] != '\0' && s[i + 2] != '\0') {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void test_xml_declaration_is_utf8_header(void)
{
    struct evbuffer *b = evbuffer_new();
    s3_xml_declaration(b);
    char *got = drain(b);
    is_str(got, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "declaration");
    free(got);
    evbuffer_free(b);
}

static void test_xml_escape_markup_and_controls(void)
{
    check_escape("plain", 5, "plain", "plain text unchanged");
    check_escape("", 0, "", "empty");
    check_escape("a&b<c>d\"e'f", 11, "a&amp;b&lt;c&gt;d&quot;e&apos;f", "markup characters");
    check_escape("a\x01"
                 "b\rc\td\n",
                 8, "a&#x1;b&#xD;c&#x9;d&#xA;", "C0 controls as &#xN;");
    check_escape("x\x7fy", 3, "x&#x7F;y", "DEL");
    check_escape("a\0b", 3, "a&#x0;b", "embedded NUL by length");
    check_escape("\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9", "UTF-8 passes through");
}

static void test_xml_elem_writers(void)
{
    struct evbuffer *b = evbuffer_new();
    s3_xml_elem(b, "Code", "a<b");
    s3_xml_elem_u64(b, "Size", 0);
    s3_xml_elem_u64(b, "Size", 18446744073709551615ull);
    s3_xml_elem_bool(b, "IsTruncated", true);
    s3_xml_elem_bool(b, "IsTruncated", false);
    char *got = drain(b);
    is_str(got,
           "<Code>a&lt;b</Code><Size>0</Size><Size>18446744073709551615</Size>"
           "<IsTruncated>true</IsTruncated><IsTruncated>false</IsTruncated>",
           "elem, elem_u64, elem_bool");
    free(got);
    evbuffer_free(b);
}

static void test_xml_elem_key_plain_escapes(void)
{
    check_key("a&b/<c>", false, "<Key>a&amp;b/&lt;c&gt;</Key>", "plain key is XML-escaped");
    check_key("", false, "<Key></Key>", "empty key");
}

static void test_xml_elem_key_url_encodes(void)
{
    check_key("photos/2024/a.jpg", true, "<Key>photos/2024/a.jpg</Key>", "slash and dot kept");
    check_key("a b+c", true, "<Key>a+b%2Bc</Key>", "space as +, plus as %2B");
    check_key("A-z_0.9~", true, "<Key>A-z_0.9~</Key>", "unreserved kept");
    check_key("%41&<>\"'", true, "<Key>%2541%26%3C%3E%22%27</Key>", "percent and markup encoded");
    check_key("\x01\x7f", true, "<Key>%01%7F</Key>", "controls encoded");
    check_key(UNICODE_KEY, true, "<Key>%C3%BCn%C3%AFc%C3%B8d%C3%A9</Key>",
              "UTF-8 bytes as uppercase %XX");
    check_key("?#=;:,@!$*()[]", true, "<Key>%3F%23%3D%3B%3A%2C%40%21%24%2A%28%29%5B%5D</Key>",
              "reserved punctuation encoded");
}

static void test_xml_elem_key_url_round_trips_through_unquote_plus(void)
{
    const char *keys[] = {"a b+c", "100% + 1 = 101%", "dir/ sub /+/x",  "%2B",    "+++",
                          " ",     "tab\there",       "\xe2\x82\xac 5", "a&amp;b"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct evbuffer *b = evbuffer_new();
        s3_xml_elem_key(b, "K", keys[i], true);
        char *xml = drain(b);
        size_t n = strlen(xml);
        ok(n >= 7 && strncmp(xml, "<K>", 3) == 0 && strcmp(xml + n - 4, "</K>") == 0, "wrapped");
        xml[n - 4] = '\0';
        char *back = unquote_plus(xml + 3);
        is_str(back, keys[i], "unquote_plus gives the key back");
        free(back);
        free(xml);
        evbuffer_free(b);
    }
}

int main(void)
{
    subtest(test_xml_declaration_is_utf8_header);
    subtest(test_xml_escape_markup_and_controls);
    subtest(test_xml_elem_writers);
    subtest(test_xml_elem_key_plain_escapes);
    subtest(test_xml_elem_key_url_encodes);
    subtest(test_xml_elem_key_url_round_trips_through_unquote_plus);
    return done_testing();
}

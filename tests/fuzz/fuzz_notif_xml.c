/* Fuzzes the NotificationConfiguration reader (s3api/xml_in.c), the checks of notif.c, the
 * stored encoding (what is encoded decodes to the same) and the decoder on raw bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "s3api/notif.h"
#include "s3api/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool check_arn(void *arg, const char *arn)
{
    (void)arg;
    return strncmp(arn, "arn:", 4) == 0;
}

static bool same_rules(const struct s3_notif_config *a, const struct s3_notif_config *b)
{
    if (a->n_rules != b->n_rules)
        return false;
    for (size_t i = 0; i < a->n_rules; i++) {
        const struct s3_notif_rule *x = &a->rules[i], *y = &b->rules[i];
        if (x->kind != y->kind || strcmp(x->id, y->id) != 0 || strcmp(x->arn, y->arn) != 0 ||
            x->n_events != y->n_events || (x->prefix == NULL) != (y->prefix == NULL) ||
            (x->suffix == NULL) != (y->suffix == NULL))
            return false;
        if ((x->prefix != NULL && strcmp(x->prefix, y->prefix) != 0) ||
            (x->suffix != NULL && strcmp(x->suffix, y->suffix) != 0))
            return false;
        for (size_t j = 0; j < x->n_events; j++)
            if (strcmp(x->events[j], y->events[j]) != 0)
                return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct s3_notif_config c, d;
    struct s3_xml_err e = {S3_OK, NULL, NULL, NULL};

    enum s3_err err = s3_xml_parse_notification(span_make((const char *)data, size), &c, &e);
    if (err != S3_OK && err != S3_ERR_MALFORMED_XML && err != S3_ERR_INVALID_ARGUMENT)
        abort();
    if (err != e.err)
        abort();
    if (err == S3_OK) {
        err = s3_notif_validate(&c, check_arn, NULL, &e);
        if (err != S3_OK && (err != S3_ERR_INVALID_ARGUMENT || e.msg == NULL))
            abort();
    }
    if (err == S3_OK) {
        size_t len;
        unsigned char *enc = s3_notif_encode(&c, &len);
        if (s3_notif_decode(enc, len, &d) != 0 || !same_rules(&c, &d))
            abort();
        struct evbuffer *b = evbuffer_new();
        s3_notif_write_xml(b, &d);
        evbuffer_free(b);
        s3_notif_config_free(&d);
        free(enc);
    }
    s3_notif_config_free(&c);
    s3_xml_err_cleanup(&e);

    /* The same bytes as a stored value: refused or decoded, never more. */
    if (s3_notif_decode(data, size, &d) == 0)
        s3_notif_config_free(&d);
    return 0;
}

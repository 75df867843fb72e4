/* Fuzz target: arbitrary bytes as an outbox record, as the relay reads one from the outbox and
 * floodgate-worker from a stream entry (queue_rec_parse: every field must lie inside the
 * bytes), and as a compact record the store's read expands (notify_record_expand: what it
 * makes must be a record queue_rec_parse accepts, of kind 'j' or 'n', with the message in
 * place of `ev`). Must not crash or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"
#include "queue/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const uint8_t *data, size_t size, const struct queue_rec *r)
{
    const char *lo = (const char *)data, *hi = lo + size;
    for (size_t i = 0; i < r->n_fields; i++) {
        const struct span n = r->names[i], v = r->values[i];
        if (n.len == 0 || n.ptr < lo || n.ptr + n.len > hi || v.ptr < lo || v.ptr + v.len > hi)
            abort();
    }
}

static void check_expanded(const void *out, size_t len)
{
    struct queue_rec r;
    const char *why = NULL;
    if (queue_rec_parse(out, len, &r, &why) != 0 || (r.kind != 'j' && r.kind != 'n')) {
        fprintf(stderr, "the relay would drop what the expander made: %s\n",
                why != NULL ? why : "its kind");
        abort();
    }
    check_parsed(out, len, &r);
    /* the message the compact `ev` stood for */
    if (queue_rec_get(&r, r.kind == 'j' ? "event" : "body").ptr == NULL ||
        queue_rec_get(&r, "ev").ptr != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct queue_rec r;
    struct span v;
    const char *why = NULL;
    if (queue_rec_parse(data, size, &r, &why) == 0) {
        check_parsed(data, size, &r);
        (void)queue_rec_need(&r, "id", &v);
        (void)queue_rec_get(&r, "service");
    } else if (why == NULL) {
        abort(); /* a refusal says why */
    }
    void *out = NULL;
    size_t out_len = 0;
    int rc = notify_record_expand(NULL, data, size, &out, &out_len);
    if (rc == 0)
        check_expanded(out, out_len);
    else if (out != NULL)
        abort(); /* nothing made, nothing to free */
    free(out);
    return 0;
}

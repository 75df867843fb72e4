/* The outbox record's binary form (queue.h): "FR1" kind, then [u32 LE length][name]
 * [u32 LE length][value] pairs. Parsed in place: the fields point into the record. The relay
 * (relay.c) and floodgate-worker (worker_claim.c, a relayed job's entry) are the readers;
 * notify/ writes the same bytes, and the start script of keys.c reads a job record's fields. */
#include "queue/record.h"

#include <stdint.h>
#include <string.h>

static bool take(const unsigned char **p, const unsigned char *end, struct span *out)
{
    if (end - *p < 4)
        return false;
    const unsigned char *b = *p;
    uint32_t n = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if ((uint64_t)(end - b - 4) < n)
        return false;
    *out = span_make((const char *)b + 4, n);
    *p = b + 4 + n;
    return true;
}

int queue_rec_parse(const void *data, size_t len, struct queue_rec *out, const char **why)
{
    const unsigned char *p = data, *end = p + len;
    out->n_fields = 0;
    out->kind = '\0';
    if (len < 4 || memcmp(p, "FR1", 3) != 0) {
        *why = "not an FR1 record";
        return -1;
    }
    out->kind = (char)p[3];
    p += 4;
    while (p < end) {
        if (out->n_fields == QUEUE_REC_MAX_FIELDS) {
            *why = "too many fields";
            return -1;
        }
        size_t i = out->n_fields;
        if (!take(&p, end, &out->names[i]) || !take(&p, end, &out->values[i])) {
            *why = "truncated field";
            return -1;
        }
        if (out->names[i].len == 0) {
            *why = "a field without a name";
            return -1;
        }
        out->n_fields++;
    }
    return 0;
}

struct span queue_rec_get(const struct queue_rec *r, const char *name)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (span_eq_str(r->names[i], name))
            return r->values[i];
    return span_make(NULL, 0);
}

/* The value of a field the record must have once, non-empty. */
int queue_rec_need(const struct queue_rec *r, const char *name, struct span *out)
{
    bool seen = false;
    for (size_t i = 0; i < r->n_fields; i++)
        if (span_eq_str(r->names[i], name)) {
            if (seen || r->values[i].len == 0)
                return -1;
            seen = true;
            *out = r->values[i];
        }
    return seen ? 0 : -1;
}

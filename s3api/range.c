/* Range and x-amz-copy-source-range: one byte range, as S3 serves it (RFC 7233 single ranges;
 * S3 answers a multi-range with the whole object). */
#include "s3api/range.h"

/* One parsed range-spec: `a-b`, `a-` (no last) or `-n` (no first). */
struct spec {
    bool has_first;
    bool has_last;
    unsigned long long first;
    unsigned long long last; /* the suffix length when !has_first */
};

/* Parses "bytes=<spec>" with the unit compared case-insensitively; -1 when malformed or when
 * it names more than one range. */
static int parse_spec(struct span hdr, struct spec *sp)
{
    struct span unit, first, last;
    struct span rest = span_cut(span_trim(hdr), '=', &unit);

    if (rest.ptr == NULL || !span_eq_ci(span_trim(unit), "bytes"))
        return -1;
    last = span_cut(span_trim(rest), '-', &first);
    if (last.ptr == NULL)
        return -1;
    first = span_trim(first);
    last = span_trim(last);
    sp->has_first = first.len > 0;
    sp->has_last = last.len > 0;
    if (!sp->has_first && !sp->has_last)
        return -1;
    /* span_to_u64 refuses anything but digits, so a ',' (a second range) fails here too. */
    if (sp->has_first && span_to_u64(first, &sp->first) != 0)
        return -1;
    if (sp->has_last && span_to_u64(last, &sp->last) != 0)
        return -1;
    /* RFC 7233 2.1: last < first is syntactically invalid, so the header is ignored. */
    if (sp->has_first && sp->has_last && sp->last < sp->first)
        return -1;
    return 0;
}

enum s3_err s3_range_parse(struct span hdr, uint64_t size, bool *has_range, uint64_t *off,
                           uint64_t *len)
{
    struct spec sp;

    *has_range = false;
    *off = 0;
    *len = size;
    if (hdr.ptr == NULL || parse_spec(hdr, &sp) != 0)
        return S3_OK;
    if (!sp.has_first) {
        /* RFC 9110 14.1.3: a suffix is satisfiable only if non-zero and the object isn't
         * empty; one longer than the object means all of it. */
        if (sp.last == 0 || size == 0)
            return S3_ERR_INVALID_RANGE;
        *len = sp.last < size ? sp.last : size;
        *off = size - *len;
    } else {
        if (sp.first >= size)
            return S3_ERR_INVALID_RANGE;
        uint64_t end = sp.has_last && sp.last < size - 1 ? sp.last : size - 1;
        *off = sp.first;
        *len = end - sp.first + 1;
    }
    *has_range = true;
    return S3_OK;
}

enum s3_err s3_copy_range_parse(struct span hdr, uint64_t size, uint64_t *off, uint64_t *len)
{
    struct spec sp;

    *off = 0;
    *len = 0;
    if (hdr.ptr == NULL || parse_spec(hdr, &sp) != 0 || !sp.has_first || !sp.has_last)
        return S3_ERR_INVALID_ARGUMENT;
    if (sp.last >= size)
        return S3_ERR_INVALID_RANGE;
    *off = sp.first;
    *len = sp.last - sp.first + 1;
    return S3_OK;
}

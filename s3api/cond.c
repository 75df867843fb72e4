/* Conditional requests in RFC 9110 13.2.2 order, with S3's pairing rules: a passing If-Match
 * makes If-Unmodified-Since moot, and a failing If-None-Match decides alone (so with a true
 * If-Modified-Since it still answers 304). ETags compare weakly: quotes and W/ ignored. */
#include "s3api/cond.h"

#include <time.h>

#include "s3api/httpdate.h"

/* Removes one pair of surrounding quotes (or a lone leading or trailing one). */
static struct span unquote(struct span s)
{
    if (s.len > 0 && s.ptr[0] == '"') {
        s.ptr++;
        s.len--;
    }
    if (s.len > 0 && s.ptr[s.len - 1] == '"')
        s.len--;
    return s;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* True when the list (`*`, or entity-tags separated by commas, quoted or not, W/ or not)
 * names `etag`. Commas inside quotes belong to the tag. */
static bool etag_list_matches(struct span list, struct span etag)
{
    const char *p = list.ptr, *end = list.ptr + list.len;

    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *start = p;
        if (p < end && *p == '"') {
            const char *q = p + 1;
            while (q < end && *q != '"')
                q++;
            p = q < end ? q + 1 : end;
        } else {
            while (p < end && *p != ',' && !is_ows(*p))
                p++;
        }
        struct span tag = unquote(span_make(start, (size_t)(p - start)));
        if (span_eq_str(tag, "*") || span_eq(tag, etag))
            return true;
    }
    return false;
}

/* mtime in whole seconds, rounded down: HTTP dates have no finer grain. */
static time_t mtime_s(int64_t mtime_ms)
{
    int64_t s = mtime_ms / 1000;
    return (time_t)(mtime_ms % 1000 < 0 ? s - 1 : s);
}

enum s3_err s3_conds_check(const struct s3_conds *c, const char *etag, int64_t mtime_ms,
                           bool read_op)
{
    struct span tag = unquote(span_from(etag));
    time_t mtime = mtime_s(mtime_ms), when;

    if (c->if_match.ptr != NULL) {
        if (!etag_list_matches(c->if_match, tag))
            return S3_ERR_PRECONDITION_FAILED;
    } else if (c->if_unmodified_since.ptr != NULL &&
               s3_date_parse_http(c->if_unmodified_since, &when) == 0 && mtime > when) {
        return S3_ERR_PRECONDITION_FAILED;
    }

    enum s3_err not_modified = read_op ? S3_ERR_NOT_MODIFIED : S3_ERR_PRECONDITION_FAILED;
    if (c->if_none_match.ptr != NULL) {
        if (etag_list_matches(c->if_none_match, tag))
            return not_modified;
    } else if (c->if_modified_since.ptr != NULL &&
               s3_date_parse_http(c->if_modified_since, &when) == 0 && mtime <= when) {
        return not_modified;
    }
    return S3_OK;
}

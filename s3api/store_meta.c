/* Object metadata (the public s3_obj_meta helpers) and the binary encoding of the store's
 * records: object records, header lists and the objects-DB groups. Little-endian, versioned,
 * length-prefixed; decoding never trusts a length. The LMDB layout is in store_index.c. */
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

#define REC_VERSION 1u

/* ---- struct s3_obj_meta ---- */

void s3_obj_meta_init(struct s3_obj_meta *m)
{
    memset(m, 0, sizeof(*m));
}

void s3_obj_meta_cleanup(struct s3_obj_meta *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_headers; i++) {
        free(m->headers[i].name);
        free(m->headers[i].value);
    }
    free(m->headers);
    m->headers = NULL;
    m->n_headers = 0;
}

void s3_obj_meta_add(struct s3_obj_meta *m, const char *name, const char *value)
{
    m->headers = xrealloc(m->headers, (m->n_headers + 1) * sizeof(*m->headers));
    m->headers[m->n_headers].name = xstrdup(name);
    m->headers[m->n_headers].value = xstrdup(value);
    m->n_headers++;
}

const char *s3_obj_meta_get(const struct s3_obj_meta *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i].name, name) == 0)
            return m->headers[i].value;
    }
    return NULL;
}

void s3_obj_meta_copy(struct s3_obj_meta *dst, const struct s3_obj_meta *src)
{
    if (dst == src)
        return;
    s3_obj_meta_cleanup(dst);
    *dst = *src;
    dst->headers = NULL;
    dst->n_headers = 0;
    for (size_t i = 0; i < src->n_headers; i++)
        s3_obj_meta_add(dst, src->headers[i].name, src->headers[i].value);
}

/* Moves src's headers into dst (dropping dst's); src keeps none. */
void s3_fs_meta_take_headers(struct s3_obj_meta *dst, struct s3_obj_meta *src)
{
    struct s3_obj_meta old = *dst;
    s3_obj_meta_cleanup(&old);
    dst->headers = src->headers;
    dst->n_headers = src->n_headers;
    src->headers = NULL;
    src->n_headers = 0;
}

/* ---- byte buffers ---- */

void s3_fs_wbuf_cleanup(struct s3_fs_wbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void s3_fs_wbuf_bytes(struct s3_fs_wbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void wbuf_le(struct s3_fs_wbuf *b, uint64_t v, size_t n)
{
    unsigned char tmp[8];
    for (size_t i = 0; i < n; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    s3_fs_wbuf_bytes(b, tmp, n);
}

void s3_fs_wbuf_u8(struct s3_fs_wbuf *b, uint8_t v)
{
    wbuf_le(b, v, 1);
}

void s3_fs_wbuf_u16(struct s3_fs_wbuf *b, uint16_t v)
{
    wbuf_le(b, v, 2);
}

void s3_fs_wbuf_u32(struct s3_fs_wbuf *b, uint32_t v)
{
    wbuf_le(b, v, 4);
}

void s3_fs_wbuf_u64(struct s3_fs_wbuf *b, uint64_t v)
{
    wbuf_le(b, v, 8);
}

const unsigned char *s3_fs_rbuf_bytes(struct s3_fs_rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t rbuf_le(struct s3_fs_rbuf *r, size_t n)
{
    const unsigned char *p = s3_fs_rbuf_bytes(r, n);
    uint64_t v = 0;
    for (size_t i = 0; p != NULL && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint8_t s3_fs_rbuf_u8(struct s3_fs_rbuf *r)
{
    return (uint8_t)rbuf_le(r, 1);
}

uint16_t s3_fs_rbuf_u16(struct s3_fs_rbuf *r)
{
    return (uint16_t)rbuf_le(r, 2);
}

uint32_t s3_fs_rbuf_u32(struct s3_fs_rbuf *r)
{
    return (uint32_t)rbuf_le(r, 4);
}

uint64_t s3_fs_rbuf_u64(struct s3_fs_rbuf *r)
{
    return rbuf_le(r, 8);
}

void s3_fs_put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * (3 - i)));
}

uint32_t s3_fs_get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void s3_fs_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * (7 - i)));
}

uint64_t s3_fs_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int s3_fs_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- file id vectors ---- */

void s3_fs_ids_push(struct s3_fs_ids *ids, uint64_t id)
{
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 8;
        ids->v = xrealloc(ids->v, ids->cap * sizeof(*ids->v));
    }
    ids->v[ids->n++] = id;
}

void s3_fs_ids_append(struct s3_fs_ids *dst, const struct s3_fs_ids *src)
{
    for (size_t i = 0; i < src->n; i++)
        s3_fs_ids_push(dst, src->v[i]);
}

void s3_fs_ids_cleanup(struct s3_fs_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

/* ---- records ---- */

void s3_fs_rec_cleanup(struct s3_fs_rec *r)
{
    if (r == NULL)
        return;
    s3_obj_meta_cleanup(&r->meta);
    free(r->loc.data);
    free(r->loc.segs);
    memset(r, 0, sizeof(*r));
}

static void put_str16(struct s3_fs_wbuf *b, const char *s)
{
    size_t n = strlen(s);
    ASSERT(n <= UINT16_MAX);
    s3_fs_wbuf_u16(b, (uint16_t)n);
    s3_fs_wbuf_bytes(b, s, n);
}

static void put_str32(struct s3_fs_wbuf *b, const char *s)
{
    size_t n = strlen(s);
    ASSERT(n <= UINT32_MAX);
    s3_fs_wbuf_u32(b, (uint32_t)n);
    s3_fs_wbuf_bytes(b, s, n);
}

static char *get_str(struct s3_fs_rbuf *r, size_t n)
{
    const unsigned char *p = s3_fs_rbuf_bytes(r, n);
    if (p == NULL || memchr(p, '\0', n) != NULL) {
        r->bad = true;
        return NULL;
    }
    return xstrndup((const char *)p, n);
}

void s3_fs_headers_encode(struct s3_fs_wbuf *b, const struct s3_obj_meta *m)
{
    s3_fs_wbuf_u32(b, (uint32_t)m->n_headers);
    for (size_t i = 0; i < m->n_headers; i++) {
        put_str16(b, m->headers[i].name);
        put_str32(b, m->headers[i].value);
    }
}

void s3_fs_headers_decode(struct s3_fs_rbuf *r, struct s3_obj_meta *m)
{
    uint32_t n = s3_fs_rbuf_u32(r);
    if (n > r->len - r->off) { /* each header takes 6 bytes at least */
        r->bad = true;
        return;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        char *name = get_str(r, s3_fs_rbuf_u16(r));
        char *value = name != NULL ? get_str(r, s3_fs_rbuf_u32(r)) : NULL;
        if (value != NULL) {
            m->headers = xrealloc(m->headers, (m->n_headers + 1) * sizeof(*m->headers));
            m->headers[m->n_headers].name = name;
            m->headers[m->n_headers].value = value;
            m->n_headers++;
        } else {
            free(name);
        }
    }
}

/* version u8, size u64, mtime u64, etag (u8 len + bytes), parts_count u32, headers,
 * loc kind u8, then inline (u32 len + bytes) or segments (u32 n, n x {id u64, size u64}). */
void s3_fs_rec_encode(struct s3_fs_wbuf *b, const struct s3_fs_rec *r)
{
    const struct s3_obj_meta *m = &r->meta;
    size_t etag_len = strnlen(m->etag, sizeof(m->etag) - 1);
    s3_fs_wbuf_u8(b, REC_VERSION);
    s3_fs_wbuf_u64(b, m->size);
    s3_fs_wbuf_u64(b, (uint64_t)m->mtime_ms);
    s3_fs_wbuf_u8(b, (uint8_t)etag_len);
    s3_fs_wbuf_bytes(b, m->etag, etag_len);
    s3_fs_wbuf_u32(b, m->parts_count);
    s3_fs_headers_encode(b, m);
    s3_fs_wbuf_u8(b, (uint8_t)r->loc.kind);
    if (r->loc.kind == S3_FS_LOC_INLINE) {
        ASSERT(r->loc.data_len <= UINT32_MAX);
        s3_fs_wbuf_u32(b, (uint32_t)r->loc.data_len);
        s3_fs_wbuf_bytes(b, r->loc.data, r->loc.data_len);
    } else {
        s3_fs_wbuf_u32(b, (uint32_t)r->loc.n_segs);
        for (size_t i = 0; i < r->loc.n_segs; i++) {
            s3_fs_wbuf_u64(b, r->loc.segs[i].file_id);
            s3_fs_wbuf_u64(b, r->loc.segs[i].size);
        }
    }
}

static void loc_decode(struct s3_fs_rbuf *r, struct s3_fs_loc *loc)
{
    loc->kind = s3_fs_rbuf_u8(r) == S3_FS_LOC_INLINE ? S3_FS_LOC_INLINE : S3_FS_LOC_SEGS;
    uint32_t n = s3_fs_rbuf_u32(r);
    if (loc->kind == S3_FS_LOC_INLINE) {
        const unsigned char *p = s3_fs_rbuf_bytes(r, n);
        if (p != NULL) {
            loc->data = xmalloc(n);
            memcpy(loc->data, p, n);
            loc->data_len = n;
        }
        return;
    }
    if ((uint64_t)n * 16 > r->len - r->off) {
        r->bad = true;
        return;
    }
    loc->segs = xcalloc(n ? n : 1, sizeof(*loc->segs));
    loc->n_segs = n;
    for (uint32_t i = 0; i < n; i++) {
        loc->segs[i].file_id = s3_fs_rbuf_u64(r);
        loc->segs[i].size = s3_fs_rbuf_u64(r);
    }
}

int s3_fs_rec_decode(const void *p, size_t len, struct s3_fs_rec *out)
{
    struct s3_fs_rbuf r = {.p = p, .len = len};
    memset(out, 0, sizeof(*out));
    if (s3_fs_rbuf_u8(&r) != REC_VERSION)
        return -1;
    struct s3_obj_meta *m = &out->meta;
    m->size = s3_fs_rbuf_u64(&r);
    m->mtime_ms = (int64_t)s3_fs_rbuf_u64(&r);
    uint8_t etag_len = s3_fs_rbuf_u8(&r);
    const unsigned char *etag = s3_fs_rbuf_bytes(&r, etag_len);
    if (etag != NULL && etag_len < sizeof(m->etag))
        memcpy(m->etag, etag, etag_len);
    else
        r.bad = true;
    m->parts_count = s3_fs_rbuf_u32(&r);
    s3_fs_headers_decode(&r, m);
    if (!r.bad)
        loc_decode(&r, &out->loc);
    if (r.bad) {
        s3_fs_rec_cleanup(out);
        return -1;
    }
    return 0;
}

int s3_fs_rec_peek(const void *p, size_t len, uint64_t *size, int64_t *mtime_ms, char etag[48])
{
    struct s3_fs_rbuf r = {.p = p, .len = len};
    if (s3_fs_rbuf_u8(&r) != REC_VERSION)
        return -1;
    *size = s3_fs_rbuf_u64(&r);
    *mtime_ms = (int64_t)s3_fs_rbuf_u64(&r);
    uint8_t etag_len = s3_fs_rbuf_u8(&r);
    const unsigned char *e = s3_fs_rbuf_bytes(&r, etag_len);
    if (e == NULL || etag_len >= 48)
        return -1;
    memcpy(etag, e, etag_len);
    etag[etag_len] = '\0';
    return 0;
}

/* ---- groups: u32 n, then n x {u16 suffix len, suffix, u32 rec len, rec} ---- */

int s3_fs_grp_parse(const void *p, size_t len, struct s3_fs_grp_item **items, size_t *n)
{
    struct s3_fs_rbuf r = {.p = p, .len = len};
    uint32_t count = s3_fs_rbuf_u32(&r);
    *items = NULL;
    *n = 0;
    if (r.bad || count == 0 || (uint64_t)count * 6 > len - r.off)
        return -1;
    struct s3_fs_grp_item *v = xcalloc(count, sizeof(*v));
    for (uint32_t i = 0; i < count && !r.bad; i++) {
        v[i].suffix_len = s3_fs_rbuf_u16(&r);
        v[i].suffix = s3_fs_rbuf_bytes(&r, v[i].suffix_len);
        v[i].rec_len = s3_fs_rbuf_u32(&r);
        v[i].rec = s3_fs_rbuf_bytes(&r, v[i].rec_len);
    }
    if (r.bad) {
        free(v);
        return -1;
    }
    *items = v;
    *n = count;
    return 0;
}

void s3_fs_grp_encode(struct s3_fs_wbuf *b, const struct s3_fs_grp_item *items, size_t n)
{
    s3_fs_wbuf_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        s3_fs_wbuf_u16(b, (uint16_t)items[i].suffix_len);
        s3_fs_wbuf_bytes(b, items[i].suffix, items[i].suffix_len);
        s3_fs_wbuf_u32(b, (uint32_t)items[i].rec_len);
        s3_fs_wbuf_bytes(b, items[i].rec, items[i].rec_len);
    }
}

/* Payload digests computed while the body streams: MD5 always, SHA-256 when the payload is
 * signed, plus one S3 additional checksum. CRC32 comes from zlib; CRC32C and CRC64NVME are
 * table-driven here (slicing-by-8); the rest are OpenSSL digests fetched once. */
#include "s3api/checksum.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "gateway/xmalloc.h"

#define CRC32C_POLY    0x82f63b78u           /* Castagnoli, reflected */
#define CRC64NVME_POLY 0x9a6c9329ac4bc9b5ull /* NVMe, reflected */

struct s3_hashes {
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha256; /* NULL unless asked for, or the checksum is SHA-256 */
    EVP_MD_CTX *sha1;   /* the SHA-1 checksum only */
    enum s3_cksum_alg alg;
    uint32_t crc32; /* CRC32 or CRC32C, as zlib keeps it (pre/post inverted inside) */
    uint64_t crc64;
    bool want_sha256;
    bool finished;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_md5, *md_sha1, *md_sha256;
static uint32_t crc32c_table[8][256];
static uint64_t crc64_table[8][256];

static void init_tables(void)
{
    for (unsigned n = 0; n < 256; n++) {
        uint32_t c = n;
        uint64_t d = n;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
            d = d & 1 ? (d >> 1) ^ CRC64NVME_POLY : d >> 1;
        }
        crc32c_table[0][n] = c;
        crc64_table[0][n] = d;
    }
    /* Slicing-by-8: table[k][n] is the CRC of byte n followed by k zero bytes. */
    for (unsigned n = 0; n < 256; n++) {
        for (int k = 1; k < 8; k++) {
            uint32_t c = crc32c_table[k - 1][n];
            uint64_t d = crc64_table[k - 1][n];
            crc32c_table[k][n] = (c >> 8) ^ crc32c_table[0][c & 0xff];
            crc64_table[k][n] = (d >> 8) ^ crc64_table[0][d & 0xff];
        }
    }
}

static void init(void)
{
    md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ASSERT(md_md5 != NULL && md_sha1 != NULL && md_sha256 != NULL);
    init_tables();
}

static uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* The eight table lookups that fold one little-endian 64-bit word into a reflected CRC. */
#define SLICE8(t, w)                                                                               \
    ((t)[7][(w)&0xff] ^ (t)[6][((w) >> 8) & 0xff] ^ (t)[5][((w) >> 16) & 0xff] ^                   \
     (t)[4][((w) >> 24) & 0xff] ^ (t)[3][((w) >> 32) & 0xff] ^ (t)[2][((w) >> 40) & 0xff] ^        \
     (t)[1][((w) >> 48) & 0xff] ^ (t)[0][(w) >> 56])

uint32_t s3_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    pthread_once(&init_once, init);
    crc = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = SLICE8(crc32c_table, w);
    }
    for (; len > 0; p++, len--)
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p) & 0xff];
    return ~crc;
}

uint64_t s3_crc64nvme(uint64_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    pthread_once(&init_once, init);
    crc = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = SLICE8(crc64_table, w);
    }
    for (; len > 0; p++, len--)
        crc = (crc >> 8) ^ crc64_table[0][(crc ^ *p) & 0xff];
    return ~crc;
}

/* EVP calls fail only on allocation failure or a broken provider: abort like xmalloc. */
static EVP_MD_CTX *digest_new(const EVP_MD *md)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx != NULL ? EVP_DigestInit_ex2(ctx, md, NULL) : 0;
    ASSERT(rc == 1);
    return ctx;
}

static void digest_update(EVP_MD_CTX *ctx, const void *data, size_t len)
{
    int rc = EVP_DigestUpdate(ctx, data, len);
    ASSERT(rc == 1);
}

static void digest_final(EVP_MD_CTX *ctx, unsigned char *out)
{
    int rc = EVP_DigestFinal_ex(ctx, out, NULL);
    ASSERT(rc == 1);
}

struct s3_hashes *s3_hashes_new(bool want_sha256, enum s3_cksum_alg alg)
{
    struct s3_hashes *h = xcalloc(1, sizeof(*h));

    pthread_once(&init_once, init);
    h->alg = alg;
    h->want_sha256 = want_sha256;
    h->md5 = digest_new(md_md5);
    if (want_sha256 || alg == S3_CKSUM_SHA256)
        h->sha256 = digest_new(md_sha256);
    if (alg == S3_CKSUM_SHA1)
        h->sha1 = digest_new(md_sha1);
    return h;
}

void s3_hashes_update(struct s3_hashes *h, const void *data, size_t len)
{
    ASSERT(!h->finished);
    if (len == 0)
        return;
    digest_update(h->md5, data, len);
    if (h->sha256 != NULL)
        digest_update(h->sha256, data, len);
    if (h->sha1 != NULL)
        digest_update(h->sha1, data, len);
    switch (h->alg) {
    case S3_CKSUM_CRC32:
        h->crc32 = (uint32_t)crc32_z(h->crc32, data, len);
        break;
    case S3_CKSUM_CRC32C:
        h->crc32 = s3_crc32c(h->crc32, data, len);
        break;
    case S3_CKSUM_CRC64NVME:
        h->crc64 = s3_crc64nvme(h->crc64, data, len);
        break;
    default:
        break;
    }
}

static void put_be(unsigned char *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

void s3_hashes_final(struct s3_hashes *h, struct s3_digests *out)
{
    unsigned char sha256[32] = {0};

    ASSERT(!h->finished);
    h->finished = true;
    memset(out, 0, sizeof(*out));
    digest_final(h->md5, out->md5);
    if (h->sha256 != NULL) {
        digest_final(h->sha256, sha256);
        if (h->want_sha256)
            memcpy(out->sha256, sha256, sizeof(sha256));
    }
    out->alg = h->alg;
    out->cksum_len = s3_cksum_len(h->alg);
    switch (h->alg) {
    case S3_CKSUM_CRC32:
    case S3_CKSUM_CRC32C:
        put_be(out->cksum, h->crc32, 4);
        break;
    case S3_CKSUM_CRC64NVME:
        put_be(out->cksum, h->crc64, 8);
        break;
    case S3_CKSUM_SHA1:
        digest_final(h->sha1, out->cksum);
        break;
    case S3_CKSUM_SHA256:
        memcpy(out->cksum, sha256, sizeof(sha256));
        break;
    case S3_CKSUM_NONE:
        break;
    }
}

void s3_hashes_free(struct s3_hashes *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->md5);
    EVP_MD_CTX_free(h->sha256);
    EVP_MD_CTX_free(h->sha1);
    free(h);
}

static const struct {
    enum s3_cksum_alg alg;
    const char *name;
    const char *header;
    size_t len;
} algs[] = {
    {S3_CKSUM_CRC32, "crc32", "x-amz-checksum-crc32", 4},
    {S3_CKSUM_CRC32C, "crc32c", "x-amz-checksum-crc32c", 4},
    {S3_CKSUM_CRC64NVME, "crc64nvme", "x-amz-checksum-crc64nvme", 8},
    {S3_CKSUM_SHA1, "sha1", "x-amz-checksum-sha1", 20},
    {S3_CKSUM_SHA256, "sha256", "x-amz-checksum-sha256", 32},
};

enum s3_cksum_alg s3_cksum_from_name(struct span name)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (span_eq_ci(name, algs[i].name))
            return algs[i].alg;
    return S3_CKSUM_NONE;
}

const char *s3_cksum_header(enum s3_cksum_alg alg)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (algs[i].alg == alg)
            return algs[i].header;
    return NULL;
}

size_t s3_cksum_len(enum s3_cksum_alg alg)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (algs[i].alg == alg)
            return algs[i].len;
    return 0;
}

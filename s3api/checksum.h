/* Payload digests: MD5 (the ETag), SHA-256 (signed payloads) and the S3 additional checksums
 * (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256), computed incrementally. Thread-compatible:
 * one struct s3_hashes per stream. Private to s3api/. */
#ifndef FG_S3API_CHECKSUM_H
#define FG_S3API_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/span.h"

enum s3_cksum_alg {
    S3_CKSUM_NONE = 0,
    S3_CKSUM_CRC32,
    S3_CKSUM_CRC32C,
    S3_CKSUM_CRC64NVME,
    S3_CKSUM_SHA1,
    S3_CKSUM_SHA256,
};

struct s3_digests {
    unsigned char md5[16];
    unsigned char sha256[32]; /* when asked for */
    enum s3_cksum_alg alg;
    unsigned char cksum[32]; /* big-endian digest of `alg` */
    size_t cksum_len;
};

struct s3_hashes; /* opaque; EVP contexts inside */

struct s3_hashes *s3_hashes_new(bool want_sha256, enum s3_cksum_alg alg);
void s3_hashes_update(struct s3_hashes *h, const void *data, size_t len);
/* Finishes into `out`; the hashes cannot be updated afterwards. */
void s3_hashes_final(struct s3_hashes *h, struct s3_digests *out);
void s3_hashes_free(struct s3_hashes *h);

/* "crc32" <-> S3_CKSUM_CRC32 etc. (case-insensitive); S3_CKSUM_NONE when unknown. */
enum s3_cksum_alg s3_cksum_from_name(struct span name);
/* "x-amz-checksum-crc32" etc.; NULL for NONE. */
const char *s3_cksum_header(enum s3_cksum_alg alg);
/* Digest length in bytes. */
size_t s3_cksum_len(enum s3_cksum_alg alg);
/* One-shot CRC32C (Castagnoli) update, exposed for tests. */
uint32_t s3_crc32c(uint32_t crc, const void *data, size_t len);
uint64_t s3_crc64nvme(uint64_t crc, const void *data, size_t len);

#endif

/* Payload digests: the standard check values of each CRC, MD5/SHA of "abc", incremental
 * updates in any split, and the algorithm name table. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "s3api/checksum.h"
#include "s3api/encode.h"
#include "tests/unit/tap.h"

static const char check[] = "123456789";

static void digest_hex(const unsigned char *d, size_t n, char *out)
{
    s3_hex(d, n, out);
}

static void test_crc_check_values(void)
{
    is_int(s3_crc32c(0, check, 9), 0xE3069283u, "CRC32C check value");
    ok(s3_crc64nvme(0, check, 9) == 0xAE8B14860A799888ull, "CRC64NVME check value");
    is_int(s3_crc32c(0, "", 0), 0, "CRC32C of nothing");
    ok(s3_crc64nvme(0, "", 0) == 0, "CRC64NVME of nothing");
    /* Chained updates equal one pass. */
    ok(s3_crc32c(s3_crc32c(0, check, 4), check + 4, 5) == 0xE3069283u, "CRC32C chained");
    ok(s3_crc64nvme(s3_crc64nvme(0, check, 5), check + 5, 4) == 0xAE8B14860A799888ull,
       "CRC64NVME chained");
}

/* The slicing-by-8 loops against a byte-at-a-time pass, at every alignment and length. */
static void test_crc_slicing_matches_bytewise(void)
{
    unsigned char buf[300];
    bool same32 = true, same64 = true;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= sizeof(buf); len += 13) {
            uint32_t a = s3_crc32c(0, buf + off, len), b = 0;
            uint64_t c = s3_crc64nvme(0, buf + off, len), d = 0;
            for (size_t i = 0; i < len; i++) {
                b = s3_crc32c(b, buf + off + i, 1);
                d = s3_crc64nvme(d, buf + off + i, 1);
            }
            same32 = same32 && a == b;
            same64 = same64 && c == d;
        }
    }
    ok(same32, "CRC32C slicing-by-8 equals bytewise");
    ok(same64, "CRC64NVME slicing-by-8 equals bytewise");
}

static void run(enum s3_cksum_alg alg, bool sha, const char *data, size_t len, size_t split,
                struct s3_digests *d)
{
    struct s3_hashes *h = s3_hashes_new(sha, alg);
    for (size_t off = 0; off < len; off += split)
        s3_hashes_update(h, data + off, len - off < split ? len - off : split);
    s3_hashes_final(h, d);
    s3_hashes_free(h);
}

static void test_hashes(void)
{
    struct s3_digests d;
    char hex[65];

    run(S3_CKSUM_NONE, true, "abc", 3, 3, &d);
    digest_hex(d.md5, 16, hex);
    is_str(hex, "900150983cd24fb0d6963f7d28e17f72", "MD5(abc)");
    digest_hex(d.sha256, 32, hex);
    is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256(abc)");
    is_int(d.cksum_len, 0, "no checksum");

    run(S3_CKSUM_SHA1, false, "abc", 3, 1, &d);
    digest_hex(d.cksum, d.cksum_len, hex);
    is_str(hex, "a9993e364706816aba3e25717850c26c9cd0d89d", "SHA-1(abc) checksum");
    ok(d.sha256[0] == 0 && d.sha256[31] == 0, "no SHA-256 unless asked");

    run(S3_CKSUM_SHA256, false, "abc", 3, 2, &d);
    digest_hex(d.cksum, d.cksum_len, hex);
    is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "SHA-256(abc) checksum");
    ok(d.sha256[0] == 0, "sha256 field only when asked");

    run(S3_CKSUM_SHA256, true, "abc", 3, 2, &d);
    ok(memcmp(d.sha256, d.cksum, 32) == 0, "SHA-256 both ways from one context");

    run(S3_CKSUM_CRC32, false, check, 9, 2, &d);
    digest_hex(d.cksum, d.cksum_len, hex);
    is_str(hex, "cbf43926", "CRC32 big-endian");
    is_int(d.alg, S3_CKSUM_CRC32, "alg kept");

    run(S3_CKSUM_CRC32C, false, check, 9, 4, &d);
    digest_hex(d.cksum, d.cksum_len, hex);
    is_str(hex, "e3069283", "CRC32C big-endian");

    run(S3_CKSUM_CRC64NVME, false, check, 9, 5, &d);
    digest_hex(d.cksum, d.cksum_len, hex);
    is_str(hex, "ae8b14860a799888", "CRC64NVME big-endian");

    /* A large input in odd pieces against zlib in one call. */
    size_t n = 1 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    run(S3_CKSUM_CRC32, false, big, n, 4099, &d);
    uint32_t z = (uint32_t)crc32(0, (const unsigned char *)big, (unsigned)n);
    ok(d.cksum[0] == (z >> 24) && d.cksum[3] == (z & 0xff), "CRC32 over 1 MiB in pieces");
    free(big);

    run(S3_CKSUM_NONE, false, "", 0, 1, &d);
    digest_hex(d.md5, 16, hex);
    is_str(hex, "d41d8cd98f00b204e9800998ecf8427e", "MD5 of nothing");
}

static void test_names(void)
{
    is_int(s3_cksum_from_name(span_from("crc32")), S3_CKSUM_CRC32, "crc32");
    is_int(s3_cksum_from_name(span_from("CRC32C")), S3_CKSUM_CRC32C, "CRC32C, any case");
    is_int(s3_cksum_from_name(span_from("crc64nvme")), S3_CKSUM_CRC64NVME, "crc64nvme");
    is_int(s3_cksum_from_name(span_from("SHA1")), S3_CKSUM_SHA1, "sha1");
    is_int(s3_cksum_from_name(span_from("sha256")), S3_CKSUM_SHA256, "sha256");
    is_int(s3_cksum_from_name(span_from("md5")), S3_CKSUM_NONE, "md5 is not one");
    is_int(s3_cksum_from_name(span_from("")), S3_CKSUM_NONE, "empty");
    is_str(s3_cksum_header(S3_CKSUM_CRC64NVME), "x-amz-checksum-crc64nvme", "header name");
    ok(s3_cksum_header(S3_CKSUM_NONE) == NULL, "no header for none");
    is_int(s3_cksum_len(S3_CKSUM_CRC32), 4, "crc32 length");
    is_int(s3_cksum_len(S3_CKSUM_CRC64NVME), 8, "crc64 length");
    is_int(s3_cksum_len(S3_CKSUM_SHA1), 20, "sha1 length");
    is_int(s3_cksum_len(S3_CKSUM_SHA256), 32, "sha256 length");
    is_int(s3_cksum_len(S3_CKSUM_NONE), 0, "none length");
}

int main(void)
{
    subtest(test_crc_check_values);
    subtest(test_crc_slicing_matches_bytewise);
    subtest(test_hashes);
    subtest(test_names);
    return done_testing();
}

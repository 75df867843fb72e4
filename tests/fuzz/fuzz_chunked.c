/* Fuzzes the aws-chunked decoder. Byte 0 picks the form (signed, signed trailer, unsigned
 * trailer) and byte 1 seeds the piece sizes; the rest is the body, fed in pieces of 1 to 256
 * bytes. The signing context is the AWS streaming example's, so its body decodes fully. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "s3api/auth.h"
#include "s3api/chunked.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum s3_payload forms[] = {S3_PAYLOAD_STREAMING_SIGNED,
                                            S3_PAYLOAD_STREAMING_SIGNED_TRAILER,
                                            S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER};
    struct s3_auth auth = {.kind = S3_AUTH_V4_HEADER,
                           .amz_date = "20130524T000000Z",
                           .scope = "20130524/us-east-1/s3/aws4_request",
                           .seed_signature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153"
                                             "f7db9fa80a0a9"};

    if (size < 2)
        return 0;
    auth.payload = forms[data[0] % 3];
    s3_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1",
                         auth.signing_key);
    uint32_t seed = data[1];
    data += 2;
    size -= 2;

    struct s3_chunked *c = s3_chunked_new(&auth, 256);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    enum s3_err e = S3_OK;
    size_t off = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 256 + 1;
        if (n > size - off)
            n = size - off;
        evbuffer_add(in, data + off, n);
        off += n;
        enum s3_err fe = s3_chunked_feed(c, in, out);
        if (evbuffer_get_length(in) != 0 || (e != S3_OK && fe != e))
            abort(); /* input always drained; errors stick */
        e = fe;
    }
    enum s3_err fin = s3_chunked_finish(c);
    if (e != S3_OK && fin != e)
        abort();
    if (s3_chunked_decoded_bytes(c) != evbuffer_get_length(out))
        abort();
    size_t n_tr;
    const struct gw_header *t = s3_chunked_trailers(c, &n_tr);
    for (size_t i = 0; i < n_tr; i++)
        if (t[i].name.len == 0 || memchr(t[i].name.ptr, ':', t[i].name.len) != NULL)
            abort();
    s3_chunked_free(c);
    evbuffer_free(in);
    evbuffer_free(out);
    return 0;
}

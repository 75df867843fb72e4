"""Payload integrity end to end against the real floodgate: aws-chunked uploads with
per-chunk signatures (good and tampered), STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32
trailer (good and wrong), x-amz-checksum-* headers from boto3 verified, stored and returned,
and Content-MD5 / signed x-amz-content-sha256 mismatches. A refused upload leaves nothing.

Run: ctest -L integration -R integration.streaming (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_streaming.py).
"""
import base64
import datetime
import hashlib
import hmac
import zlib

import fgtest

EMPTY_SHA = hashlib.sha256(b'').hexdigest()


def chunked_put(port, bucket, key, data, chunk=64 * 1024, tamper=None, trailer=None,
                signed=True):
    """PUT `data` as aws-chunked. signed: per-chunk signatures (STREAMING-AWS4-HMAC-SHA256-
    PAYLOAD); else STREAMING-UNSIGNED-PAYLOAD-TRAILER with `trailer` (name, value)."""
    host = '127.0.0.1:%d' % port
    path = fgtest.key_path(bucket, key)
    when = datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime('%Y%m%dT%H%M%SZ')
    scope = '%s/%s/s3/aws4_request' % (amz_date[:8], fgtest.REGION)
    mode = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' if signed else \
        'STREAMING-UNSIGNED-PAYLOAD-TRAILER'
    extra = {'content-encoding': 'aws-chunked',
             'x-amz-decoded-content-length': str(len(data))}
    if trailer:
        extra['x-amz-trailer'] = trailer[0]
    h = fgtest.sigv4_headers('PUT', host, path, (), extra, mode, when=when)
    prev = h['authorization'].rsplit('Signature=', 1)[1]
    key_bytes = fgtest._signing_key(fgtest.SECRET_KEY, amz_date[:8], fgtest.REGION)
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b'']
    out = b''
    for n, piece in enumerate(pieces):
        if signed:
            sts = '\n'.join(['AWS4-HMAC-SHA256-PAYLOAD', amz_date, scope, prev, EMPTY_SHA,
                             hashlib.sha256(piece).hexdigest()])
            prev = hmac.new(key_bytes, sts.encode(), hashlib.sha256).hexdigest()
            sig = prev
            if tamper == n:
                sig = ('0' if sig[0] != '0' else '1') + sig[1:]
            out += b'%x;chunk-signature=%s\r\n' % (len(piece), sig.encode())
        else:
            out += b'%x\r\n' % len(piece)
        out += piece + (b'\r\n' if piece else b'')
    if trailer:
        out += ('%s:%s\r\n' % trailer).encode()
    out += b'\r\n'
    h['content-length'] = str(len(out))
    return fgtest.request(port, 'PUT', path, h, out, host)


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, 'big')).decode()


def body(run):
    fg = run.floodgate()
    port = fg.port
    b = 'streaming'
    run.eq(fgtest.signed(port, 'PUT', b).status, 200, 'create bucket')
    data = bytes((i * 7 + 3) & 0xFF for i in range(200 * 1024 + 17))

    with run.section('aws-chunked with chunk signatures'):
        r = chunked_put(port, b, 'signed.bin', data)
        run.eq(r.status, 200, 'signed aws-chunked PUT of 200 KiB in 64 KiB chunks')
        run.eq(r.header('etag'), '"%s"' % hashlib.md5(data).hexdigest(), 'ETag is the MD5')
        g = fgtest.signed(port, 'GET', b, 'signed.bin')
        run.ok(g.status == 200 and g.body == data, 'reads back byte-identical')
        g = fgtest.signed(port, 'GET', b, 'signed.bin', headers={'accept-encoding': 'identity'})
        run.ok('aws-chunked' not in (g.header('content-encoding') or ''),
               'aws-chunked is not stored as a Content-Encoding')
        r = chunked_put(port, b, 'tampered.bin', data, tamper=1)
        run.eq(r.error_code, 'SignatureDoesNotMatch', 'a tampered chunk signature is refused')
        r = chunked_put(port, b, 'tampered-final.bin', data, tamper=len(data) // 65536 + 1)
        run.eq(r.error_code, 'SignatureDoesNotMatch', 'a tampered final chunk is refused')
        for k in ('tampered.bin', 'tampered-final.bin'):
            run.eq(fgtest.signed(port, 'HEAD', b, k).status, 404, '%s was not stored' % k)

    with run.section('STREAMING-UNSIGNED-PAYLOAD-TRAILER'):
        name = 'x-amz-checksum-crc32'
        r = chunked_put(port, b, 'trailer.bin', data, signed=False,
                        trailer=(name, crc32_b64(data)))
        run.eq(r.status, 200, 'unsigned chunks with a CRC32 trailer')
        run.eq(r.header(name), crc32_b64(data), 'the checksum is returned')
        g = fgtest.signed(port, 'HEAD', b, 'trailer.bin',
                          headers={'x-amz-checksum-mode': 'ENABLED'})
        run.eq(g.header(name), crc32_b64(data), 'HEAD with checksum mode returns it')
        r = chunked_put(port, b, 'badcrc.bin', data, signed=False,
                        trailer=(name, crc32_b64(data + b'x')))
        run.eq(r.error_code, 'BadDigest', 'a wrong CRC32 trailer is BadDigest')
        run.eq(fgtest.signed(port, 'HEAD', b, 'badcrc.bin').status, 404, 'nothing stored')

    with run.section('digest headers'):
        r = fgtest.signed(port, 'PUT', b, 'md5.bin', body=data,
                          headers={'content-md5': base64.b64encode(
                              hashlib.md5(data).digest()).decode()})
        run.eq(r.status, 200, 'a right Content-MD5 is accepted')
        r = fgtest.signed(port, 'PUT', b, 'md5-bad.bin', body=data,
                          headers={'content-md5': base64.b64encode(
                              hashlib.md5(b'other').digest()).decode()})
        run.eq(r.error_code, 'BadDigest', 'a wrong Content-MD5 is BadDigest')
        r = fgtest.signed(port, 'PUT', b, 'md5-junk.bin', body=data,
                          headers={'content-md5': 'not base64!'})
        run.eq(r.error_code, 'InvalidDigest', 'a malformed Content-MD5 is InvalidDigest')
        r = fgtest.signed(port, 'PUT', b, 'crc-bad.bin', body=data,
                          headers={'x-amz-checksum-crc32': crc32_b64(b'nope')})
        run.eq(r.error_code, 'BadDigest', 'a wrong x-amz-checksum-crc32 header is BadDigest')
        host = '127.0.0.1:%d' % port
        path = fgtest.key_path(b, 'sha-bad.bin')
        h = fgtest.sigv4_headers('PUT', host, path, (), None,
                                 hashlib.sha256(b'something else').hexdigest())
        r = fgtest.request(port, 'PUT', path, h, data, host)
        run.eq(r.error_code, 'XAmzContentSHA256Mismatch',
               'a body not matching the signed x-amz-content-sha256')
        for k in ('md5-bad.bin', 'md5-junk.bin', 'crc-bad.bin', 'sha-bad.bin'):
            run.eq(fgtest.signed(port, 'HEAD', b, k).status, 404, '%s was not stored' % k)

    with run.section('boto3 flexible checksums'):
        run.require_module('boto3')
        s3 = fgtest.boto3_client(fg.endpoint)
        for alg in ('CRC32', 'CRC32C', 'SHA1', 'SHA256'):
            try:
                s3.put_object(Bucket=b, Key='flex-' + alg, Body=data, ChecksumAlgorithm=alg)
                h = s3.head_object(Bucket=b, Key='flex-' + alg, ChecksumMode='ENABLED')
                run.ok(h.get('Checksum' + alg), 'boto3 %s: stored and returned' % alg, h)
                got = s3.get_object(Bucket=b, Key='flex-' + alg)['Body'].read()
                run.ok(got == data, 'boto3 %s: reads back' % alg)
            except Exception as e:  # noqa: BLE001 - reported as a failure
                run.ok(False, 'boto3 %s' % alg, repr(e))
        h = s3.head_object(Bucket=b, Key='flex-CRC32', ChecksumMode='ENABLED')
        run.eq(h.get('ChecksumCRC32'), crc32_b64(data), 'the CRC32 is the right one')


if __name__ == '__main__':
    fgtest.Run('streaming').main(body)

"""floodgate configured from a YAML file: several users, virtual-hosted style addressing
under a configured domain, --check-config, the access log, SIGHUP log reopening, and a
boto3 client in virtual-hosted mode (DNS-free: the client's requests are sent to loopback
with the bucket in Host).

Run: ctest -L integration -R integration.config (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_config.py).
"""
import hashlib
import os
import signal
import time

import fgtest

ALICE = ('AKIAALICE0000001', 'alice-secret-key-0001')
BOB = ('AKIABOB000000002', 'bob-secret-key-000002')


def body(run):
    data = run.path('data')
    access_log = run.path('access.log')
    cfg = run.write_config('floodgate.yaml', '''# several users, a domain for virtual-hosted style
data_dir: %s
region: us-east-1
domain: s3.test.internal
access_log: %s
users:
  - name: alice
    access_key: %s
    secret_key: %s
  - name: bob
    access_key: %s
    secret_key: %s
limits:
  header_timeout: 5s
store:
  max_object_size: 1MiB
''' % (data, access_log, ALICE[0], ALICE[1], BOB[0], BOB[1]))

    with run.section('--check-config'):
        r = run.cmd([fgtest.fg_bin(), '--config', cfg, '--check-config'])
        run.ok(r.returncode == 0 and 'configuration OK' in r.stdout, 'a good file passes',
               r.stdout + r.stderr)
        bad = run.write_config('bad.yaml', 'listen: 127.0.0.1:1\nlimits:\n  header_timout: 5s\n')
        r = run.cmd([fgtest.fg_bin(), '--config', bad, '--check-config'])
        run.ok(r.returncode != 0 and 'line 3' in r.stderr and 'header_timout' in r.stderr,
               'an unknown key is reported with its line', r.stderr)

    fg = run.floodgate(config=cfg, data_dir=data)
    port = fg.port

    with run.section('several users'):
        r = fgtest.signed(port, 'PUT', 'users-bucket', access=ALICE[0], secret=ALICE[1])
        run.eq(r.status, 200, 'alice creates a bucket')
        r = fgtest.signed(port, 'PUT', 'users-bucket', 'k', body=b'from bob', access=BOB[0],
                          secret=BOB[1])
        run.eq(r.status, 200, 'bob writes into it')
        r = fgtest.signed(port, 'GET', 'users-bucket', 'k', access=ALICE[0], secret=ALICE[1])
        run.ok(r.status == 200 and r.body == b'from bob', 'alice reads what bob wrote')
        r = fgtest.signed(port, 'GET', 'users-bucket', 'k', access=ALICE[0], secret=BOB[1])
        run.eq(r.error_code, 'SignatureDoesNotMatch', "alice's key with bob's secret")
        r = fgtest.signed(port, 'GET', 'users-bucket', 'k', access=fgtest.ACCESS_KEY,
                          secret=fgtest.SECRET_KEY)
        run.ok(r.status == 200, 'the environment user exists beside the configured ones')

    with run.section('virtual-hosted style'):
        host = 'vhost-bucket.s3.test.internal:%d' % port
        h = fgtest.sigv4_headers('PUT', host, '/', access=ALICE[0], secret=ALICE[1])
        r = fgtest.request(port, 'PUT', '/', h, host=host)
        run.eq(r.status, 200, 'CreateBucket with the bucket in Host')
        payload = b'virtual hosted body'
        h = fgtest.sigv4_headers('PUT', host, '/dir/obj.txt', access=ALICE[0],
                                 secret=ALICE[1],
                                 payload_hash=hashlib.sha256(payload).hexdigest())
        r = fgtest.request(port, 'PUT', '/dir/obj.txt', h, payload, host=host)
        run.eq(r.status, 200, 'PutObject with the bucket in Host')
        r = fgtest.signed(port, 'GET', 'vhost-bucket', 'dir/obj.txt', access=ALICE[0],
                          secret=ALICE[1])
        run.ok(r.status == 200 and r.body == payload, 'the same object by path style')
        h = fgtest.sigv4_headers('GET', host, '/', query=[('list-type', '2')], access=ALICE[0],
                                 secret=ALICE[1])
        r = fgtest.request(port, 'GET', '/?list-type=2', h, host=host)
        run.ok(r.status == 200 and b'<Key>dir/obj.txt</Key>' in r.body,
               'ListObjectsV2 with the bucket in Host', r.body[:300])
        q = fgtest.presign_v4('GET', host, '/dir/obj.txt', access=ALICE[0], secret=ALICE[1])
        r = fgtest.request(port, 'GET', q, host=host)
        run.ok(r.status == 200 and r.body == payload, 'presigned GET, virtual-hosted')

    with run.section('boto3 in virtual-hosted mode'):
        run.require_module('boto3')
        if True:
            import boto3
            from botocore.config import Config

            s3 = boto3.client('s3', endpoint_url='http://s3.test.internal:%d' % port,
                              aws_access_key_id=BOB[0], aws_secret_access_key=BOB[1],
                              region_name='us-east-1',
                              config=Config(s3={'addressing_style': 'virtual'},
                                            proxies={'http': 'http://127.0.0.1:%d' % port},
                                            retries={'max_attempts': 1}))
            # The "proxy" is floodgate itself: requests arrive in absolute form with the
            # bucket in Host, which is what a virtual-hosted client sends through DNS.
            try:
                s3.put_object(Bucket='vhost-bucket', Key='boto.txt', Body=b'b3')
                got = s3.get_object(Bucket='vhost-bucket', Key='boto.txt')['Body'].read()
                run.eq(got, b'b3', 'boto3 put/get with addressing_style virtual')
            except Exception as e:  # noqa: BLE001 - reported as a failure
                run.ok(False, 'boto3 put/get with addressing_style virtual', repr(e))

    with run.section('max_object_size'):
        host = '127.0.0.1:%d' % port
        path = fgtest.key_path('users-bucket', 'too-big')
        h = fgtest.sigv4_headers('PUT', host, path, access=ALICE[0], secret=ALICE[1])
        h['content-length'] = str(2 << 20)
        r = fgtest.request(port, 'PUT', path, h, b'', host)
        run.eq(r.error_code, 'EntityTooLarge', 'a Content-Length over the limit')
        # A chunked body announces no length: the limit must hold as the bytes arrive.
        h = fgtest.sigv4_headers('PUT', host, path, access=ALICE[0], secret=ALICE[1])
        h['transfer-encoding'] = 'chunked'
        h['connection'] = 'close'
        head = 'PUT %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in h.items())
        piece = b'x' * 65536
        body = (b'%x\r\n' % len(piece) + piece + b'\r\n') * 40 + b'0\r\n\r\n'
        c = fgtest.Conn(port, timeout=30)
        try:
            try:
                c.send(head.encode() + b'\r\n' + body)
            except OSError:
                pass  # the server may close once it has answered
            r = c.final_response()
        finally:
            c.close()
        run.eq(r.error_code, 'EntityTooLarge', 'a 2.5 MiB chunked body over a 1 MiB limit')
        r = fgtest.signed(port, 'HEAD', 'users-bucket', 'too-big', access=ALICE[0],
                          secret=ALICE[1])
        run.eq(r.status, 404, 'nothing was stored')

    with run.section('access log and SIGHUP'):
        fgtest.signed(port, 'GET', 'users-bucket', 'k', access=ALICE[0], secret=ALICE[1])
        time.sleep(0.2)
        with open(access_log) as f:
            lines = f.read().splitlines()
        hit = [l for l in lines if ' alice GetObject users-bucket k 200 ' in l]
        run.ok(hit, 'a GetObject line names user, operation, bucket, key, status',
               '\n'.join(lines[-5:]))
        run.ok(all(ALICE[1] not in l and 'Signature' not in l for l in lines),
               'no secret or signature in the access log')
        os.rename(access_log, access_log + '.1')
        fg.signal(signal.SIGHUP)
        time.sleep(0.3)
        fgtest.signed(port, 'GET', 'users-bucket', 'k', access=ALICE[0], secret=ALICE[1])
        time.sleep(0.2)
        run.ok(os.path.exists(access_log) and os.path.getsize(access_log) > 0,
               'after SIGHUP the access log is reopened at its path')

    with run.section('SIGTERM'):
        rc = fg.stop(timeout=10)
        run.eq(rc, 0, 'SIGTERM drains and exits 0')


if __name__ == '__main__':
    fgtest.Run('config').main(body)

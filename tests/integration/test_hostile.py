"""Hostile clients against a real floodgate, over raw sockets: malformed request lines and
headers, header floods, huge URLs, slowloris, bad/expired/mis-scoped signatures,
`Expect: 100-continue` with a bad signature, XML bombs and XXE, oversized XML, control
characters and traversal in keys. After each: nothing was stored, the server still answers,
and memory stays bounded.

floodgate runs with a config file setting `limits: header_timeout: 2s`.

Run: ctest -L integration -R integration.hostile (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_hostile.py).
"""
import base64
import datetime
import hashlib
import os
import select
import socket
import threading
import time
import xml.etree.ElementTree as ET

import fgtest
from fgtest import MiB, S3_NS, Conn, signed

HEADER_TIMEOUT = 2.0
# The bound holds for the release build; a sanitizer build (FG_SANITIZE, set by ctest) keeps
# shadow memory and a quarantine of freed blocks on top of it.
RSS_LIMIT_KB = (96 if os.environ.get('FG_SANITIZE') else 64) * 1024
B = 'hostile'


def raw(port, data, timeout=10.0):
    """Sends `data` on a fresh connection; (final Response or None, closed_after)."""
    c = Conn(port, timeout=timeout)
    try:
        try:
            c.send(data)
        except OSError:
            pass
        try:
            r = c.final_response()
        except (EOFError, OSError):
            return None, True
        return r, c.closed(3.0)
    finally:
        c.close()


def send_streaming(port, head, body, chunk=65536, timeout=15.0):
    """Sends head + body while reading; returns (Response or None, bytes of body sent).
    Stops sending as soon as a response starts or the peer closes."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    s.setblocking(False)
    out = head + body
    sent, buf, deadline = 0, b'', time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            want_w = [s] if sent < len(out) else []
            rl, wl, _ = select.select([s], want_w, [], 0.5)
            if rl:
                try:
                    d = s.recv(65536)
                except OSError:
                    d = b''
                if not d:
                    break
                buf += d
                if b'\r\n\r\n' in buf:
                    # read the rest of this response (bounded by Content-Length)
                    s.setblocking(True)
                    s.settimeout(5)
                    c = Conn.wrap(s, buf)
                    try:
                        r = c.final_response()
                    except (EOFError, OSError):
                        r = None
                    return r, max(0, sent - len(head))
            if wl:
                try:
                    sent += s.send(out[sent:sent + chunk])
                except (BrokenPipeError, ConnectionResetError):
                    break
        return None, max(0, sent - len(head))
    finally:
        s.close()


def content_md5(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def body(run):
    cfg = run.write_config('floodgate.yaml', 'limits:\n  header_timeout: 2s\n')
    fg = run.floodgate(config=cfg)
    port = fg.port
    host = fg.hostport
    expected = set()

    def still_serving(desc):
        """The server answers, and the bucket holds exactly `expected`."""
        try:
            keys = set(fgtest.list_keys(port, B))
        except Exception as e:  # noqa: BLE001 - reported as a failure
            return run.ok(False, 'after %s: server still answers' % desc, repr(e))
        run.ok(fg.alive(), 'after %s: floodgate still running' % desc)
        return run.eq(sorted(keys), sorted(expected), 'after %s: nothing stored, list as expected'
                      % desc)

    with run.section('setup'):
        r = signed(port, 'PUT', B)
        run.eq(r.status, 200, 'CreateBucket (raw SigV4)')
        run.ok(bool(r.header('x-amz-request-id')), 'response has x-amz-request-id')
        for k in ('keep1', 'keep2'):
            r = signed(port, 'PUT', B, k, body=b'keep me')
            run.eq(r.status, 200, 'PutObject %s' % k)
            expected.add(k)
        rss0 = fg.rss_kb()
        run.note('VmRSS at start: %s kB' % rss0)

    # ---- malformed requests -------------------------------------------------------------------
    with run.section('malformed request lines and headers'):
        cases = [
            ('garbage request line', b'GARBAGE\r\n\r\n'),
            ('method only', b'GET\r\n\r\n'),
            ('junk after version', b'GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n'),
            ('binary request line', b'\x00\x01\x02 / HTTP/1.1\r\nHost: x\r\n\r\n'),
            ('bad version', b'GET / HTTP/x.y\r\nHost: x\r\n\r\n'),
            ('header without colon', b'GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'),
            ('space before colon', b'GET / HTTP/1.1\r\nHost : x\r\n\r\n'),
            ('NUL in header value', b'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'),
            ('missing Host (HTTP/1.1)', b'GET / HTTP/1.1\r\n\r\n'),
            ('non-numeric Content-Length',
             b'PUT /hostile/cl HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'),
            ('negative Content-Length',
             b'PUT /hostile/cl HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'),
            ('two different Content-Lengths',
             b'PUT /hostile/cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
             b'Content-Length: 6\r\n\r\nhello!'),
            ('Content-Length and Transfer-Encoding',
             b'PUT /hostile/te HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
             b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
        ]
        for desc, data in cases:
            r, closed = raw(port, data)
            run.ok(r is not None and r.status == 400, '%s -> 400' % desc, repr(r))
            run.ok(closed, '%s: connection closed after the 400' % desc)
        # chunked framing errors, on a signed request so that auth does not answer first
        for desc, chunks in (('bad chunk size', b'zz\r\nhello\r\n0\r\n\r\n'),
                             ('chunk longer than its size', b'3\r\nhello\r\n0\r\n\r\n'),
                             ('negative chunk size', b'-5\r\nhello\r\n0\r\n\r\n')):
            path = fgtest.key_path(B, 'chunked-bad')
            h = fgtest.sigv4_headers('PUT', host, path, (), {}, fgtest.UNSIGNED_PAYLOAD)
            data = ('PUT %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in h.items())
                    + 'Transfer-Encoding: chunked\r\n\r\n').encode() + chunks
            r, closed = raw(port, data)
            run.ok(r is not None and r.status == 400, 'signed PUT with %s -> 400' % desc, repr(r))
            run.ok(closed, '%s: connection closed after the 400' % desc)
        r, _ = raw(port, b'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n')
        run.ok(r is not None and r.status in (400, 405, 501), 'unknown method -> 400/405/501',
               repr(r))
        r, _ = raw(port, b'GET /hostile/x HTTP/1.1\r\nHost: x\r\n\x01\x02\x03: v\r\n\r\n')
        run.ok(r is not None and r.status == 400, 'control bytes in a header name -> 400',
               repr(r))
        still_serving('malformed requests')

    # ---- header floods and huge URLs ----------------------------------------------------------
    with run.section('header flood'):
        many = b'GET /hostile HTTP/1.1\r\nHost: x\r\n' + b''.join(
            b'X-Flood-%d: v\r\n' % i for i in range(5000)) + b'\r\n'
        r, _ = send_streaming(port, many, b'')
        run.ok(r is not None and r.status == 431, '5000 headers -> 431', repr(r))
        big = b'GET /hostile HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * (200 * 1024) + b'\r\n\r\n'
        r, _ = send_streaming(port, big, b'')
        run.ok(r is not None and r.status == 431, 'one 200 KiB header -> 431', repr(r))
        endless = b'GET /hostile HTTP/1.1\r\nHost: x\r\n'
        r, sent = send_streaming(port, endless, (b'X-Endless: ' + b'a' * 1000 + b'\r\n') * 16384)
        run.ok(r is not None and r.status == 431, 'endless header stream -> 431', repr(r))
        run.ok(sent < 4 * MiB, 'endless header stream cut off early (%d bytes taken)' % sent)
        r = signed(port, 'GET', B, 'keep1', headers={'x-amz-meta-pad': 'p' * 4000})
        run.eq(r.status, 200, 'a normal request with a 4 KB header is still fine')
        still_serving('header flood')

    with run.section('huge URL'):
        r, closed = raw(port, b'GET /hostile/' + b'a' * 20000 + b' HTTP/1.1\r\nHost: x\r\n\r\n')
        run.ok(r is not None and r.status == 414, '20 KB request-target -> 414', repr(r))
        r, _ = raw(port, b'GET /hostile?' + b'q=' + b'b' * 100000 + b' HTTP/1.1\r\nHost: x\r\n\r\n')
        run.ok(r is not None and r.status in (414, 431), '100 KB query -> 414 or 431', repr(r))
        still_serving('huge URLs')

    # ---- slowloris + concurrent flood; others keep being served -------------------------------
    with run.section('slowloris and parallel half-sent headers'):
        n_slow, n_held = 20, 100
        slow = []
        for _ in range(n_slow):
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            s.setblocking(False)
            slow.append(s)
        held = []
        pad = b'X-Pad: ' + b'p' * 1000 + b'\r\n'
        for _ in range(n_held):  # ~60 KiB of headers each, never finished
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            try:
                s.sendall(b'GET /hostile HTTP/1.1\r\nHost: x\r\n' + pad * 58)
            except OSError:
                pass
            s.setblocking(False)
            held.append(s)
        t0 = time.monotonic()
        hdr = b'GET /hostile HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 4096
        state = {s: {'sent': 0, 'resp': b'', 'closed_at': None} for s in slow + held}
        rss_peak = [0]
        served, lat = [], []
        stop = threading.Event()

        def client_loop():
            while not stop.is_set():
                a = time.monotonic()
                try:
                    rr = signed(port, 'GET', B, 'keep1', timeout=5)
                    served.append(rr.status)
                except Exception as e:  # noqa: BLE001
                    served.append(repr(e))
                lat.append(time.monotonic() - a)
                time.sleep(0.2)

        th = threading.Thread(target=client_loop)
        th.start()
        try:
            deadline = t0 + HEADER_TIMEOUT + 6
            while time.monotonic() < deadline:
                open_ = [s for s in state if state[s]['closed_at'] is None]
                if not open_:
                    break
                for s in slow:  # one byte per second
                    st = state[s]
                    if st['closed_at'] is None and st['sent'] < len(hdr):
                        try:
                            st['sent'] += s.send(hdr[st['sent']:st['sent'] + 1])
                        except OSError:
                            pass
                end = time.monotonic() + 1.0
                while time.monotonic() < end:
                    open_ = [s for s in state if state[s]['closed_at'] is None]
                    if not open_:
                        break
                    rl, _, _ = select.select(open_, [], [], max(0, end - time.monotonic()))
                    for s in rl:
                        try:
                            d = s.recv(65536)
                        except OSError:
                            d = b''
                        if d:
                            state[s]['resp'] += d
                        else:
                            state[s]['closed_at'] = time.monotonic() - t0
                rss_peak[0] = max(rss_peak[0], fg.rss_kb() or 0)
        finally:
            stop.set()
            th.join()
            for s in state:
                s.close()
        closed_at = [state[s]['closed_at'] for s in slow]
        run.ok(all(c is not None and c <= HEADER_TIMEOUT + 3 for c in closed_at),
               'slowloris: all %d connections closed within header_timeout + 3 s' % n_slow,
               closed_at)
        statuses = [state[s]['resp'][:12] for s in slow]
        run.ok(all(x.startswith(b'HTTP/1.1 408') for x in statuses),
               'slowloris: each got 408 before the close', statuses[:3])
        closed_held = [state[s]['closed_at'] for s in held]
        run.ok(all(c is not None and c <= HEADER_TIMEOUT + 3 for c in closed_held),
               'half-sent 60 KiB headers: all %d closed within header_timeout + 3 s' % n_held,
               sorted(c for c in closed_held if c is not None)[-3:])
        run.ok(len(served) >= 5 and all(x == 200 for x in served),
               'other clients served meanwhile (%d requests)' % len(served), served[:10])
        run.ok(lat and max(lat) < 1.0, 'their latency stayed < 1 s (max %.3f s)'
               % (max(lat) if lat else -1))
        run.ok(rss_peak[0] < RSS_LIMIT_KB, 'VmRSS during the flood < %d MiB (%d kB)'
               % (RSS_LIMIT_KB // 1024, rss_peak[0]))
        still_serving('slowloris')

    # ---- signatures ---------------------------------------------------------------------------
    with run.section('bad and expired signatures'):
        now = datetime.datetime.now(datetime.timezone.utc)
        path = fgtest.key_path(B, 'sig-evil')
        bodyb = b'evil body'
        ph = hashlib.sha256(bodyb).hexdigest()

        def put_with(h, desc, status, code, data=bodyb):
            r = fgtest.request(port, 'PUT', path, h, data)
            return run.ok(r.status == status and (code is None or r.error_code == code),
                          '%s -> %d %s' % (desc, status, code or ''), repr(r))

        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph)
        h['authorization'] = h['authorization'][:-1] + ('0' if h['authorization'][-1] != '0'
                                                        else '1')
        put_with(h, 'tampered signature', 403, 'SignatureDoesNotMatch')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph)
        put_with(h, 'body changed after signing', 400, 'XAmzContentSHA256Mismatch',
                 data=b'evil bodY')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph,
                                 when=now - datetime.timedelta(hours=1))
        put_with(h, 'x-amz-date one hour old', 403, 'RequestTimeTooSkewed')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph,
                                 when=now + datetime.timedelta(hours=1))
        put_with(h, 'x-amz-date one hour ahead', 403, 'RequestTimeTooSkewed')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph, region='eu-west-1')
        put_with(h, 'credential scope for another region', 400, 'AuthorizationHeaderMalformed')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph, access='AKIANOSUCHKEY0000000')
        put_with(h, 'unknown access key', 403, 'InvalidAccessKeyId')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph)
        h['authorization'] = 'AWS4-HMAC-SHA256 garbage'
        put_with(h, 'unparsable Authorization', 400, 'AuthorizationHeaderMalformed')
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, ph)
        h['x-amz-meta-sneaky'] = 'added after signing'
        r = fgtest.request(port, 'PUT', path, h, bodyb)
        run.ok(r.status == 403, 'unsigned x-amz-* header added -> 403', repr(r))
        h = fgtest.sigv4_headers('PUT', host, path, (), {'content-md5': content_md5(b'other')}, ph)
        put_with(h, 'Content-MD5 mismatch', 400, 'BadDigest')
        h = fgtest.sigv4_headers('PUT', host, path, (), {'content-md5': 'not-base64!'}, ph)
        put_with(h, 'malformed Content-MD5', 400, 'InvalidDigest')
        target = fgtest.presign_v4('GET', host, fgtest.key_path(B, 'keep1'), expires=60,
                                   when=now - datetime.timedelta(minutes=10))
        r = fgtest.request(port, 'GET', target)
        run.ok(r.status == 403 and r.error_code == 'AccessDenied',
               'expired presigned URL -> 403 AccessDenied', repr(r))
        target = fgtest.presign_v4('PUT', host, path, expires=60,
                                   when=now - datetime.timedelta(minutes=10))
        r = fgtest.request(port, 'PUT', target, {}, bodyb)
        run.ok(r.status == 403, 'expired presigned PUT -> 403', repr(r))
        target = fgtest.presign_v4('PUT', host, path, expires=300)
        r = fgtest.request(port, 'PUT', target.replace('/sig-evil?', '/keep1?'), {}, bodyb)
        run.ok(r.status == 403 and r.error_code == 'SignatureDoesNotMatch',
               'presigned PUT replayed on another key -> 403 SignatureDoesNotMatch', repr(r))
        # a body shorter than Content-Length, then the client goes away
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, fgtest.UNSIGNED_PAYLOAD)
        c = Conn(port, timeout=10)
        c.send('PUT %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in h.items())
               + 'Content-Length: 100000\r\n\r\n')
        c.send(b'x' * 50000)
        c.sock.shutdown(socket.SHUT_WR)
        c.closed(5)
        c.close()
        time.sleep(0.3)
        r = signed(port, 'HEAD', B, 'sig-evil')
        run.eq(r.status, 404, 'truncated upload left no object')
        still_serving('bad signatures')

    with run.section('Expect: 100-continue'):
        length = 10 * MiB
        h = fgtest.sigv4_headers('PUT', host, path, (), {}, fgtest.UNSIGNED_PAYLOAD)
        h['authorization'] = h['authorization'][:-4] + 'beef'
        c = Conn(port, timeout=10)
        c.send('PUT %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in h.items())
               + 'Content-Length: %d\r\nExpect: 100-continue\r\n\r\n' % length)
        try:
            r = c.read_response()
        except (EOFError, OSError) as e:
            r = e
        c.close()
        run.ok(isinstance(r, fgtest.Response) and r.status == 403 and
               r.error_code == 'SignatureDoesNotMatch',
               'bad signature + Expect: 100-continue -> 403 first, no 100 Continue', repr(r))
        npath = fgtest.key_path('no-such-bucket', 'x')
        h = fgtest.sigv4_headers('PUT', host, npath, (), {}, fgtest.UNSIGNED_PAYLOAD)
        c = Conn(port, timeout=10)
        c.send('PUT %s HTTP/1.1\r\n' % npath + ''.join('%s: %s\r\n' % kv for kv in h.items())
               + 'Content-Length: %d\r\nExpect: 100-continue\r\n\r\n' % length)
        try:
            r = c.read_response()
        except (EOFError, OSError) as e:
            r = e
        c.close()
        run.ok(isinstance(r, fgtest.Response) and r.status == 404 and
               r.error_code == 'NoSuchBucket',
               'missing bucket + Expect: 100-continue -> 404 first, no 100 Continue', repr(r))
        data = os.urandom(MiB)
        gpath = fgtest.key_path(B, 'expect-ok')
        h = fgtest.sigv4_headers('PUT', host, gpath, (), {}, hashlib.sha256(data).hexdigest())
        c = Conn(port, timeout=10)
        c.send('PUT %s HTTP/1.1\r\n' % gpath + ''.join('%s: %s\r\n' % kv for kv in h.items())
               + 'Content-Length: %d\r\nExpect: 100-continue\r\n\r\n' % len(data))
        first = c.read_response()
        run.eq(first.status, 100, 'good signature + Expect -> 100 Continue first')
        c.send(data)
        final = c.final_response()
        c.close()
        run.eq(final.status, 200, 'then 200 after the body')
        expected.add('expect-ok')
        r = signed(port, 'GET', B, 'expect-ok')
        run.ok(r.status == 200 and r.body == data, 'the 100-continue upload reads back')
        still_serving('Expect: 100-continue')

    # ---- XML bombs ----------------------------------------------------------------------------
    laughs = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n' +
              b''.join(b'<!ENTITY lol%d "%s">\n' % (i, (b'&lol%d;' % (i - 1) if i > 1 else
                                                        b'&lol;') * 10) for i in range(1, 10)) +
              b']>\n<Delete><Object><Key>&lol9;</Key></Object></Delete>')
    xxe = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
           b'<Delete><Object><Key>&xxe;</Key></Object></Delete>')
    ent_keep = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY k "keep1">]>\n'
                b'<Delete><Object><Key>&k;</Key></Object></Delete>')
    ext_dtd = (b'<?xml version="1.0"?>\n<!DOCTYPE d SYSTEM "http://127.0.0.1:%d/x.dtd">\n'
               b'<Delete><Object><Key>keep1</Key></Object></Delete>' % port)
    not_xml = b'this is not xml <Delete>'
    huge = (b'<Delete>' + b'<Object><Key>keep1</Key></Object>' * (5 * MiB // 32 + 1) +
            b'</Delete>')
    bombs = [('billion laughs', laughs), ('XXE file:///etc/passwd', xxe),
             ('internal entity naming keep1', ent_keep), ('external DTD', ext_dtd),
             ('not XML', not_xml)]

    def post_xml(query, body_, expect=False):
        hh = {'content-md5': content_md5(body_), 'content-type': 'application/xml'}
        h = fgtest.sigv4_headers('POST', host, '/' + B, query, hh,
                                 hashlib.sha256(body_).hexdigest())
        target = '/%s?%s' % (B, fgtest.canonical_query(query))
        if expect:
            h['expect'] = '100-continue'
        head = ('POST %s HTTP/1.1\r\n' % target + ''.join('%s: %s\r\n' % kv for kv in h.items())
                + 'Content-Length: %d\r\n\r\n' % len(body_)).encode()
        if not expect:
            r, _ = send_streaming(port, head, body_, timeout=30)
            return r
        c = Conn(port, timeout=30)
        try:
            c.send(head)
            r = c.read_response()
            if r.status == 100:
                c.send(body_)
                r = c.final_response()
            return r
        finally:
            c.close()

    with run.section('XML bombs to DeleteObjects'):
        for desc, bb in bombs + [('5 MiB body', huge)]:
            r = post_xml([('delete', '')], bb)
            run.ok(r is not None and r.status == 400 and r.error_code == 'MalformedXML',
                   'DeleteObjects with %s -> 400 MalformedXML' % desc, repr(r))
            run.ok(r is None or b'root:' not in r.body, 'no /etc/passwd in the reply (%s)' % desc)
        r = post_xml([('delete', '')], huge, expect=True)
        run.ok(r is not None and r.status == 400 and r.error_code == 'MalformedXML',
               'DeleteObjects 5 MiB with Expect -> 400 MalformedXML', repr(r))
        still_serving('XML bombs (keep1 not deleted)')

    with run.section('XML bombs to CompleteMultipartUpload'):
        r = signed(port, 'POST', B, 'mpu-bomb', query=[('uploads', '')])
        run.eq(r.status, 200, 'CreateMultipartUpload')
        uid = ET.fromstring(r.body).findtext(S3_NS + 'UploadId')
        part = os.urandom(1024)
        r = signed(port, 'PUT', B, 'mpu-bomb', query=[('partNumber', '1'), ('uploadId', uid)],
                   body=part)
        run.eq(r.status, 200, 'UploadPart')
        etag = r.header('etag')
        ok_doc = ('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag>'
                  '</Part></CompleteMultipartUpload>' % etag).encode()
        mpu_bombs = [
            ('billion laughs',
             laughs.replace(b'<Delete><Object><Key>&lol9;</Key></Object></Delete>',
                            ok_doc.replace(b'<ETag>', b'<ETag>&lol9;'))),
            ('XXE', xxe.replace(b'<Delete><Object><Key>&xxe;</Key></Object></Delete>',
                                ok_doc.replace(b'<ETag>', b'<ETag>&xxe;'))),
            ('DOCTYPE before a valid document',
             b'<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY e "x">]>\n' + ok_doc),
            ('5 MiB body', b'<CompleteMultipartUpload>' + (
                b'<Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>' % etag.encode())
             * (5 * MiB // 70 + 1) + b'</CompleteMultipartUpload>'),
        ]
        for desc, bb in mpu_bombs:
            hh = {'content-type': 'application/xml'}
            path = fgtest.key_path(B, 'mpu-bomb')
            q = [('uploadId', uid)]
            h = fgtest.sigv4_headers('POST', host, path, q, hh, hashlib.sha256(bb).hexdigest())
            head = ('POST %s?%s HTTP/1.1\r\n' % (path, fgtest.canonical_query(q)) +
                    ''.join('%s: %s\r\n' % kv for kv in h.items()) +
                    'Content-Length: %d\r\n\r\n' % len(bb)).encode()
            r, _ = send_streaming(port, head, bb, timeout=30)
            run.ok(r is not None and r.status == 400 and r.error_code == 'MalformedXML',
                   'CompleteMultipartUpload with %s -> 400 MalformedXML' % desc, repr(r))
        r = signed(port, 'HEAD', B, 'mpu-bomb')
        run.eq(r.status, 404, 'no object from the refused Completes')
        r = signed(port, 'GET', B, 'mpu-bomb', query=[('uploadId', uid)])
        run.eq(r.status, 200, 'the upload still exists (ListParts)')
        r = signed(port, 'DELETE', B, 'mpu-bomb', query=[('uploadId', uid)])
        run.eq(r.status, 204, 'AbortMultipartUpload')
        still_serving('XML bombs to Complete')

    with run.section('XML bomb to CreateBucket'):
        bb = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
              b'<CreateBucketConfiguration><LocationConstraint>&xxe;</LocationConstraint>'
              b'</CreateBucketConfiguration>')
        r = signed(port, 'PUT', 'xxe-bucket', body=bb)
        run.ok(r.status == 400 and r.error_code == 'MalformedXML',
               'CreateBucket with XXE -> 400 MalformedXML', repr(r))
        r = signed(port, 'HEAD', 'xxe-bucket')
        run.eq(r.status, 404, 'bucket not created')

    # ---- keys ---------------------------------------------------------------------------------
    with run.section('control characters in keys'):
        for enc in ('%00', '%01', '%09', '%0A', '%0D', '%1B', '%1F', '%7F', '%FF%FE', '%C3%28'):
            path = '/%s/a%sb' % (B, enc)
            r = signed(port, 'PUT', path=path, body=b'ctl')
            run.ok(r.status == 400, 'PUT key with %s -> 400' % enc, repr(r))
        r, _ = raw(port, b'GET /hostile/a\x01b HTTP/1.1\r\nHost: x\r\n\r\n')
        run.ok(r is not None and r.status == 400, 'raw control byte in the request-target -> 400',
               repr(r))
        still_serving('control-character keys')

    with run.section('path traversal stays inside the data dir'):
        tag = 'escape-%d' % os.getpid()
        for i, path in enumerate(('/%s/../../../../%s-a' % (B, tag),
                                  '/%s/..%%2F..%%2F..%%2F..%%2F%s-b' % (B, tag),
                                  '/%s/%%2E%%2E/%%2E%%2E/%%2E%%2E/%s-c' % (B, tag))):
            r = signed(port, 'PUT', path=path, body=b'escaped?')
            run.ok(r.status in (200, 400, 403), 'traversal PUT %d answered (%d)' % (i, r.status))
            if r.status == 200:
                r2 = signed(port, 'GET', path=path)
                run.ok(r2.status == 200 and r2.body == b'escaped?',
                       'traversal key %d stored as an ordinary key' % i)
                signed(port, 'DELETE', path=path)
        hits = []
        for d, dirs, names in os.walk(run.tmp):
            if os.path.commonpath([d, fg.data_dir]) == fg.data_dir:
                dirs[:] = []
                continue
            hits += [os.path.join(d, n) for n in names + dirs if n.startswith(tag)]
        for d in ('/', os.path.dirname(run.tmp)):
            hits += [os.path.join(d, n) for n in os.listdir(d) if n.startswith(tag)]
        run.eq(hits, [], 'no file created outside the data dir')
        still_serving('traversal keys')

    with run.section('memory after the floods'):
        rss = fg.rss_kb()
        hwm = fg.hwm_kb()
        run.note('VmRSS now %s kB, VmHWM %s kB' % (rss, hwm))
        run.ok(rss is not None and rss < RSS_LIMIT_KB,
               'VmRSS after the floods < %d MiB (%s kB)' % (RSS_LIMIT_KB // 1024, rss))
        run.ok(hwm is not None and hwm < RSS_LIMIT_KB,
               'VmHWM (peak) < %d MiB (%s kB)' % (RSS_LIMIT_KB // 1024, hwm))
        still_serving('everything')


if __name__ == '__main__':
    fgtest.Run('hostile').main(body)

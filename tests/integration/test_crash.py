"""kill -9 floodgate in the middle of 200 concurrent uploads, restart it on the same data dir,
and check the durability promise: every upload that got 200 reads back byte-identical, and
every visible object is complete (one of the uploads, with exactly its content).

Uploads are raw SigV4-signed PUTs (signed payload) of random content, 1 KiB..2 MiB, whose
bodies are sent at a throttled pace so that many are mid-body when the kill lands.

Run: ctest -L integration -R integration.crash (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_crash.py).
"""
import hashlib
import os
import random
import socket
import threading
import time

import fgtest
from fgtest import MiB

N = 200
B = 'crash'
KILL_AFTER = 1.5       # seconds after the uploads start
RATE = 1 * MiB         # bytes per second per upload (so 2 MiB takes ~2 s)


def upload(port, key, data, start, results):
    """One throttled signed PUT; results[key] = 'acked' (200 + right ETag) or the error."""
    start.wait()
    host = '127.0.0.1:%d' % port
    path = fgtest.key_path(B, key)
    try:
        h = fgtest.sigv4_headers('PUT', host, path, (), {'content-length': str(len(data))},
                                 hashlib.sha256(data).hexdigest())
        c = fgtest.Conn.wrap(socket.create_connection(('127.0.0.1', port), timeout=30))
        c.send('PUT %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in h.items())
               + '\r\n')
        t0 = time.monotonic()
        off, step = 0, 64 * 1024
        while off < len(data):
            c.send(data[off:off + step])
            off += step
            lag = off / RATE - (time.monotonic() - t0)
            if lag > 0:
                time.sleep(lag)
        r = c.final_response()
        c.close()
        want = '"%s"' % hashlib.md5(data).hexdigest()
        if r.status == 200 and r.header('etag') == want:
            results[key] = 'acked'
        else:
            results[key] = 'status %d etag %s' % (r.status, r.header('etag'))
    except Exception as e:  # noqa: BLE001 - the kill makes these fail
        results[key] = '%s: %s' % (type(e).__name__, e)


def body(run):
    seed = int(os.environ.get('FG_CRASH_SEED') or random.randrange(1 << 30))
    run.note('seed %d (set FG_CRASH_SEED to repeat)' % seed)
    rnd = random.Random(seed)
    fg = run.floodgate()
    port = fg.port

    with run.section('setup'):
        r = fgtest.signed(port, 'PUT', B)
        run.eq(r.status, 200, 'CreateBucket')
        pre = os.urandom(100000)
        r = fgtest.signed(port, 'PUT', B, 'before-crash', body=pre)
        run.eq(r.status, 200, 'an object stored before the crash')

    objs = {}
    for i in range(N):
        size = rnd.randint(1024, 2 * MiB)
        objs['up/%03d-%d' % (i, size)] = rnd.randbytes(size)
    results = {}
    start = threading.Event()
    threads = [threading.Thread(target=upload, args=(port, k, v, start, results))
               for k, v in objs.items()]
    for t in threads:
        t.start()
    start.set()
    time.sleep(KILL_AFTER)
    fg.kill9()
    run.note('kill -9 at %.1f s' % KILL_AFTER)
    for t in threads:
        t.join(60)
    acked = sorted(k for k, v in results.items() if v == 'acked')
    failed = sorted(k for k in objs if results.get(k) != 'acked')
    run.note('%d acknowledged, %d not (e.g. %s)' % (len(acked), len(failed),
                                                   results.get(failed[0]) if failed else '-'))
    run.ok(len(acked) >= 1, 'some uploads were acknowledged before the kill (%d)' % len(acked))
    run.ok(len(failed) >= 1, 'the kill landed mid-upload (%d not acknowledged)' % len(failed))

    with run.section('restart and verify'):
        fg.restart()
        run.ok(fg.alive(), 'floodgate restarted on the same data dir')
        r = fgtest.signed(port, 'GET', B, 'before-crash')
        run.ok(r.status == 200 and r.body == pre, 'the object stored before the crash survived')
        bad_acked = []
        for k in acked:
            r = fgtest.signed(port, 'GET', B, k)
            if r.status != 200 or r.body != objs[k]:
                bad_acked.append('%s: %d, %d bytes' % (k, r.status, len(r.body)))
        run.ok(not bad_acked, 'all %d acknowledged uploads read back byte-identical' % len(acked),
               '\n'.join(bad_acked[:10]))
        visible = fgtest.list_keys(port, B)
        strangers = [k for k in visible if k not in objs and k != 'before-crash']
        run.ok(not strangers, 'every listed key is one that was uploaded', strangers[:10])
        missing = [k for k in acked if k not in visible]
        run.ok(not missing, 'every acknowledged upload is listed', missing[:10])
        partial = []
        n_unacked_visible = 0
        for k in objs:
            r = fgtest.signed(port, 'GET', B, k)
            if r.status == 404:
                if k in visible:
                    partial.append('%s: listed but GET 404' % k)
                continue
            if r.status != 200 or r.body != objs[k]:
                partial.append('%s: %d, %d of %d bytes' % (k, r.status, len(r.body),
                                                            len(objs[k])))
            elif k not in acked:
                n_unacked_visible += 1
            if r.status == 200 and k not in visible:
                partial.append('%s: readable but not listed' % k)
        run.note('%d unacknowledged uploads are visible (complete)' % n_unacked_visible)
        run.ok(not partial, 'no partial or inconsistent objects', '\n'.join(partial[:10]))
        r = fgtest.signed(port, 'HEAD', B, 'up/none')
        run.eq(r.status, 404, 'HEAD of a never-uploaded key -> 404')

    with run.section('works after recovery'):
        data = os.urandom(3 * MiB)
        r = fgtest.signed(port, 'PUT', B, 'after-crash', body=data)
        run.eq(r.status, 200, 'PUT after restart')
        r = fgtest.signed(port, 'GET', B, 'after-crash')
        run.ok(r.status == 200 and r.body == data, 'GET after restart')
        rc = fg.stop(timeout=15)
        run.eq(rc, 0, 'SIGTERM drains and exits 0')
        fg.restart()
        r = fgtest.signed(port, 'GET', B, 'after-crash')
        run.ok(r.status == 200 and r.body == data, 'object survives a clean restart too')


if __name__ == '__main__':
    fgtest.Run('crash').main(body)

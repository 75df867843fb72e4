"""Faults on the function path, for real: kill -9 a worker mid-job (another one completes it,
once), stop Redis for 10 s during a stream of uploads (no upload fails; every event is
delivered once Redis is back), and kill -9 the gateway right after a batch of 200 acknowledged
uploads whose events had not reached Redis yet (after restart every event is delivered, once).

Run: ctest -R integration.functions_faults.
"""
import json
import signal
import threading
import time

import fgtest

CONFIG = '''
redis: %(redis)s
jobs:
  visibility_timeout: 3s
services:
  - name: slow
    script: |
      sleep 4
      cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
    input:
      - path: slowin
    output:
      - path: slowout
  - name: copy
    script: |
      mkdir -p "$TMP_OUTPUT_DIR/$(dirname "$STORAGE_OBJECT_KEY")"
      cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$STORAGE_OBJECT_KEY"
    input:
      - path: input
    output:
      - path: output
'''


def count(port, svc, status='succeeded'):
    return sum(1 for j in fgtest.jobs(port, svc).values() if j['status'] == status)


def body(run):
    run.require(fgtest.REDIS)
    redis = fgtest.Redis(run, aof=True).start()
    cfg = run.write_config('fg.yaml', CONFIG % {'redis': redis.url})
    fg = run.floodgate(config=cfg)
    port = fg.port
    s3 = fgtest.boto3_client(fg.endpoint)
    for b in ('slowin', 'slowout', 'input', 'output'):
        s3.create_bucket(Bucket=b)

    with run.section('kill -9 a worker mid-job: another worker completes it, once'):
        a = fgtest.Worker(run, redis, fg, name='wa', concurrency=1, visibility='3s').start()
        s3.put_object(Bucket='slowin', Key='job.txt', Body=b'slow')
        running = fgtest.wait_for(
            lambda: [j for j in fgtest.jobs(port, 'slow').values()
                     if j['status'] == 'running' and j.get('worker') == 'wa'], 30)
        run.ok(running, 'worker wa runs the job')
        a.kill9()
        run.note('kill -9 wa mid-job')
        b = fgtest.Worker(run, redis, fg, name='wb', concurrency=1, visibility='3s').start()
        done = fgtest.wait_for(lambda: count(port, 'slow') == 1, 60, 0.5)
        js = fgtest.jobs(port, 'slow')
        run.ok(done, 'the job succeeded', js)
        run.eq(len(js), 1, 'one job record')
        rec = next(iter(js.values()))
        run.eq(rec.get('worker'), 'wb', 'completed by the other worker')
        run.ok(int(rec.get('attempts', 0)) >= 2, 'the record counts both attempts', rec)
        run.eq(fgtest.list_keys(port, 'slowout'), ['job.txt'], 'one output')
        b.stop(timeout=20)

    workers = [fgtest.Worker(run, redis, fg, name='w%d' % i, concurrency=4).start()
               for i in range(2)]

    with run.section('Redis stopped for 10 s during a stream of uploads'):
        errors, sent = [], []
        stop = threading.Event()

        def stream():
            c = fgtest.boto3_client(fg.endpoint)
            i = 0
            while not stop.is_set():
                try:
                    c.put_object(Bucket='input', Key='s/%05d' % i, Body=b'%d' % i)
                    sent.append(i)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))
                i += 1
                time.sleep(0.02)
        t = threading.Thread(target=stream)
        t.start()
        time.sleep(2)
        redis.stop(timeout=20)
        run.note('redis stopped after %d uploads' % len(sent))
        n_down = len(sent)
        time.sleep(10)
        r = fgtest.admin(port, 'GET', '/health')
        health = json.loads(r.body)
        run.ok(r.status == 200 and health.get('redis') == 'disconnected' and
               health.get('outbox', 0) > 0, 'health shows Redis down and a backlog', health)
        redis.start()
        run.note('redis back; %d uploads while it was down' % (len(sent) - n_down))
        time.sleep(3)
        stop.set()
        t.join()
        run.ok(not errors, 'no upload failed', errors[:5])
        run.ok(len(sent) - n_down > 50, 'uploads went on while Redis was down (%d)' %
               (len(sent) - n_down))
        ok = fgtest.wait_for(lambda: count(port, 'copy') >= len(sent), 180, 0.5)
        js = fgtest.jobs(port, 'copy')
        run.ok(ok, 'every one of %d events was delivered and ran' % len(sent),
               '%d succeeded' % count(port, 'copy'))
        run.eq(len(js), len(sent), 'one job per upload, none twice')
        run.eq(len(fgtest.list_keys(port, 'output', 's/')), len(sent), 'one output per upload')

    with run.section('kill -9 the gateway right after 200 acknowledged uploads'):
        redis.signal(signal.SIGSTOP)  # the relay cannot move anything now
        acked, errors = [], []

        def put_range(lo, hi):
            c = fgtest.boto3_client(fg.endpoint)
            for i in range(lo, hi):
                try:
                    c.put_object(Bucket='input', Key='k/%03d' % i, Body=b'%d' % i)
                    acked.append(i)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))
        ts = [threading.Thread(target=put_range, args=(k * 50, (k + 1) * 50)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        fg.kill9()
        run.eq(len(acked), 200, '200 uploads acknowledged before the kill')
        redis.signal(signal.SIGCONT)
        fg.restart()
        # a job no worker has started yet is listed without its key (it has no record yet)
        ok = fgtest.wait_for(lambda: len([j for j in fgtest.jobs(port, 'copy').values()
                                          if (j['key'] or '').startswith('k/') and
                                          j['status'] == 'succeeded']) >= 200, 180, 0.5)
        ks = [j for j in fgtest.jobs(port, 'copy').values() if (j['key'] or '').startswith('k/')]
        run.ok(ok, 'after restart every event was delivered and ran', '%d jobs' % len(ks))
        run.eq(len(ks), 200, 'exactly 200 jobs, none twice')
        run.eq(len(fgtest.list_keys(port, 'output', 'k/')), 200, '200 outputs')
        r = fgtest.admin(port, 'GET', '/health')
        run.eq(json.loads(r.body).get('outbox'), 0, 'the outbox is empty again')

    for w in workers:
        w.stop(timeout=20)


if __name__ == '__main__':
    fgtest.Run('functions_faults').main(body)

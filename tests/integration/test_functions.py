"""Uploads run functions: the real gateway with a real redis-server and real floodgate-worker
processes. 1,000 boto3 uploads -> exactly 1,000 succeeded jobs and 1,000 outputs; a two-stage
workflow; the OSCAR environment contract; a failing script retries then lands in the
dead-letter stream with its reason; a hanging script is killed at its timeout; a script that
writes 1 GiB of logs is capped.

Run: ctest -R integration.functions (or FG_BIN=build/floodgate FG_BUILD=build
/usr/bin/python3 tests/integration/test_functions.py).
"""
import json
import os
import threading
import time

import fgtest

N = int(os.environ.get('FG_FUNCTIONS_N') or 1000)

CONFIG = '''
redis: %(redis)s
jobs:
  visibility_timeout: 5s
  log_max: 64KiB
services:
  - name: copy
    script: |
      #!/bin/sh
      set -e
      cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"
    input:
      - path: input
    output:
      - path: output/copied
  - name: env
    script: |
      #!/bin/sh
      {
        echo "INPUT_FILE_PATH=$INPUT_FILE_PATH"
        echo "TMP_INPUT_DIR=$TMP_INPUT_DIR"
        echo "TMP_OUTPUT_DIR=$TMP_OUTPUT_DIR"
        echo "STORAGE_OBJECT_KEY=$STORAGE_OBJECT_KEY"
        echo "EVENT_TIME=$EVENT_TIME"
        echo "JOB_UUID=$JOB_UUID"
        echo "GREETING=$GREETING"
        echo "TOKEN=$TOKEN"
        echo "CONTENT=$(cat "$INPUT_FILE_PATH")"
      } > "$TMP_OUTPUT_DIR/env.txt"
      printf '%%s' "$EVENT" > "$TMP_OUTPUT_DIR/event.json"
      mkdir -p "$TMP_OUTPUT_DIR/sub/dir"
      echo nested > "$TMP_OUTPUT_DIR/sub/dir/n.txt"
      echo skipped > "$TMP_OUTPUT_DIR/skip.log"
    input:
      - path: envin/in
        suffix: [".txt"]
    output:
      - path: envout/res
        suffix: [".txt", ".json"]
    environment:
      variables:
        GREETING: hello world
      secrets:
        TOKEN: s3cret
  - name: upper
    script: |
      tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
    input:
      - path: stage1
    output:
      - path: stage2
  - name: reverse
    script: |
      rev < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"
    input:
      - path: stage2
    output:
      - path: final
  - name: failing
    script: |
      echo "about to fail"
      echo "oops" >&2
      exit 3
    max_attempts: 3
    input:
      - path: failin
  - name: hanging
    script: |
      echo started
      sleep 1000 &
      sleep 1000
    timeout: 2s
    max_attempts: 1
    input:
      - path: hangin
  - name: chatty
    script: |
      echo first-line
      head -c 1073741824 /dev/zero | tr '\\0' 'x'
      echo
      echo last-line
    max_attempts: 1
    timeout: 300s
    input:
      - path: chattyin
'''


def body(run):
    run.require(fgtest.REDIS)
    redis = fgtest.Redis(run).start()
    cfg = run.write_config('fg.yaml', CONFIG % {'redis': redis.url})
    fg = run.floodgate(config=cfg)
    port = fg.port
    s3 = fgtest.boto3_client(fg.endpoint)
    for b in ('input', 'output', 'envin', 'envout', 'stage1', 'stage2', 'final', 'failin', 'hangin',
              'chattyin'):
        s3.create_bucket(Bucket=b)
    workers = [fgtest.Worker(run, redis, fg, name='w%d' % i, concurrency=4).start()
               for i in range(2)]

    with run.section('%d uploads -> %d succeeded jobs and %d outputs' % (N, N, N)):
        t0 = time.monotonic()
        errors = []

        def put_range(lo, hi):
            c = fgtest.boto3_client(fg.endpoint)
            for i in range(lo, hi):
                try:
                    c.put_object(Bucket='input', Key='f/%04d.dat' % i, Body=b'data %d\n' % i)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))
        ts = [threading.Thread(target=put_range, args=(k * N // 4, (k + 1) * N // 4))
              for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        run.ok(not errors, 'every upload succeeded', errors[:5])
        run.note('%d uploads in %.1f s' % (N, time.monotonic() - t0))
        ok = fgtest.wait_jobs(port, 'copy', N, timeout=600)
        st = fgtest.job_statuses(port, 'copy')
        run.ok(ok, 'all %d jobs succeeded' % N, st)
        run.eq(sum(st.values()), N, 'exactly %d job records' % N)
        run.note('jobs done %.1f s after the first upload' % (time.monotonic() - t0))
        keys = fgtest.list_keys(port, 'output')
        run.eq(len(keys), N, 'exactly %d outputs' % N)
        run.ok(all(k.startswith('copied/') and k.endswith('.dat.out') for k in keys),
               'outputs under the output path', keys[:3])
        r = s3.get_object(Bucket='output', Key='copied/0007.dat.out')
        run.eq(r['Body'].read(), b'data 7\n', 'an output holds its input')
        one = next(iter(fgtest.jobs(port, 'copy').items()))
        run.ok(one[1].get('status') == 'succeeded' and one[1].get('key', '').startswith('f/'),
               'a job record names its input and status', one)
        r = fgtest.admin(port, 'GET', '/system/logs/copy/%s' % one[0])
        run.eq(r.status, 200, 'a job log reads back')

    with run.section("OSCAR's environment contract and output filters"):
        s3.put_object(Bucket='envin', Key='in/dir/hello world.txt', Body=b'payload')
        s3.put_object(Bucket='envin', Key='in/dir/ignored.bin', Body=b'x')
        s3.put_object(Bucket='envin', Key='other/x.txt', Body=b'x')
        ok = fgtest.wait_jobs(port, 'env', 1, timeout=120)
        run.ok(ok, 'the job ran', fgtest.job_statuses(port, 'env'))
        time.sleep(1)
        run.eq(sum(fgtest.job_statuses(port, 'env').values()), 1,
               'only the key under the input path with the suffix ran')
        keys = set(fgtest.list_keys(port, 'envout'))
        run.eq(keys, {'res/env.txt', 'res/event.json', 'res/sub/dir/n.txt'},
               'every file under TMP_OUTPUT_DIR, recursively, filtered by suffix')
        env = dict(line.split('=', 1) for line in s3.get_object(
            Bucket='envout', Key='res/env.txt')['Body'].read().decode().splitlines())
        run.ok(env['INPUT_FILE_PATH'].endswith('/hello world.txt') and
               env['INPUT_FILE_PATH'].startswith(env['TMP_INPUT_DIR']),
               'INPUT_FILE_PATH is the downloaded file in TMP_INPUT_DIR', env)
        run.eq(env['CONTENT'], 'payload', 'the input file holds the object')
        run.eq(env['STORAGE_OBJECT_KEY'], 'in/dir/hello world.txt', 'STORAGE_OBJECT_KEY')
        run.eq(env['GREETING'], 'hello world', 'environment.variables')
        run.eq(env['TOKEN'], 's3cret', 'environment.secrets')
        run.ok(len(env['JOB_UUID']) == 36 and env['EVENT_TIME'][:2] == '20',
               'JOB_UUID and EVENT_TIME', env)
        ev = json.loads(s3.get_object(Bucket='envout', Key='res/event.json')['Body'].read())
        rec = ev['Records'][0]
        run.eq(rec['eventName'], 'ObjectCreated:Put', 'EVENT is the S3 event (eventName)')
        run.eq(rec['s3']['bucket']['name'], 'envin', 'EVENT bucket')
        run.eq(rec['s3']['object']['key'], 'in/dir/hello+world.txt', 'EVENT key URL-encoded')
        run.eq(rec['s3']['object']['size'], 7, 'EVENT size')

    with run.section('a two-stage workflow'):
        for i in range(5):
            s3.put_object(Bucket='stage1', Key='doc%d.txt' % i, Body=b'abc%d\n' % i)
        ok = fgtest.wait_for(lambda: len(fgtest.list_keys(port, 'final')) >= 5, 120, 0.5)
        run.ok(ok, 'the final stage produced its 5 outputs')
        r = s3.get_object(Bucket='final', Key='doc3.txt')
        run.eq(r['Body'].read(), b'3CBA\n', 'stage 2 ran on stage 1\'s output')

    with run.section('a failing script retries, then lands in the dead-letter stream'):
        s3.put_object(Bucket='failin', Key='bad.txt', Body=b'x')
        ok = fgtest.wait_jobs(port, 'failing', 1, status='dead', timeout=120)
        run.ok(ok, 'the job is dead', fgtest.job_statuses(port, 'failing'))
        jid, rec = next(iter(fgtest.jobs(port, 'failing').items()))
        run.eq(str(rec.get('attempts')), '3', 'it ran max_attempts times')
        dlq = redis.cli('XRANGE', 'fg:dlq:failing', '-', '+')
        run.ok('exit status 3' in dlq and jid in dlq, 'the dead-letter entry has the reason',
               dlq)
        run.ok('oops' in dlq, 'and the log tail', dlq)
        r = fgtest.admin(port, 'GET', '/system/logs/failing/%s' % jid)
        run.ok(r.status == 200 and b'about to fail' in r.body, 'the log is kept', r.body[:200])

    with run.section('a hanging script is killed at its timeout'):
        t0 = time.monotonic()
        s3.put_object(Bucket='hangin', Key='h.txt', Body=b'x')
        ok = fgtest.wait_jobs(port, 'hanging', 1, status='dead', timeout=60)
        run.ok(ok, 'the job ended dead', fgtest.job_statuses(port, 'hanging'))
        run.ok(time.monotonic() - t0 < 30, 'within its timeout plus slack (%.1f s)' %
               (time.monotonic() - t0))
        jid, rec = next(iter(fgtest.jobs(port, 'hanging').items()))
        r = fgtest.admin(port, 'GET', '/system/logs/hanging/%s?record' % jid)
        run.ok(b'timed out' in r.body, 'the reason says timed out', r.body[:300])
        out = fgtest.wait_for(lambda: 'sleep 1000' not in run.cmd(['ps', '-eo', 'args']).stdout,
                              10)
        run.ok(out, 'its process group is gone (background child included)')

    with run.section('a script writing 1 GiB of logs is capped'):
        s3.put_object(Bucket='chattyin', Key='c.txt', Body=b'x')
        ok = fgtest.wait_jobs(port, 'chatty', 1, timeout=300)
        run.ok(ok, 'the job succeeded', fgtest.job_statuses(port, 'chatty'))
        jid = next(iter(fgtest.jobs(port, 'chatty')))
        r = fgtest.admin(port, 'GET', '/system/logs/chatty/%s' % jid)
        run.ok(len(r.body) <= 70 * 1024, 'the log is capped (%d bytes)' % len(r.body))
        run.ok(b'first-line' in r.body and b'last-line' in r.body and b'cut' in r.body,
               'it keeps the first and the last part', r.body[:80])
        for w in workers:
            run.ok(w.alive(), '%s still runs' % w.name)

    for w in workers:
        run.eq(w.stop(timeout=20), 0, '%s stops on SIGTERM with 0' % w.name)


if __name__ == '__main__':
    fgtest.Run('functions').main(body)

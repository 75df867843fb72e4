"""A service's concurrency and log_level, as floodgate-worker applies them: the real gateway,
a real redis-server and one worker with 4 slots. A service with concurrency 1 never has two
runs at once (and its 6 jobs all succeed, each in one attempt: a job handed back is not
started); one with concurrency 2 has at most 2. log_level DEBUG adds the worker's lines
(input, outputs, exit status, environment names, timings) to the job log, and never a secret's
value; INFO has the main ones; ERROR has none for a job that succeeded, only the failure line
for one that failed.

Run: ctest -R integration.worker_limits (or FG_BIN=build/floodgate FG_BUILD=build
/usr/bin/python3 tests/integration/test_worker_limits.py).
"""
import time

import fgtest

N = 6

# The scripts append "<job> start|end <time>" to a file of the test's temp dir.
TIMED = '''#!/bin/sh
      echo "$JOB_UUID start $(date +%%s.%%N)" >> %(times)s
      sleep 0.5
      echo "%(name)s-ran"
      %(extra)s
      echo "$JOB_UUID end $(date +%%s.%%N)" >> %(times)s'''

CONFIG = '''
redis: %(redis)s
jobs:
  visibility_timeout: 5s
services:
  - name: one
    concurrency: 1
    log_level: DEBUG
    script: |
      %(one)s
    input:
      - path: onein
    output:
      - path: oneout/res
    environment:
      variables:
        MYVAR: plainvalue
      secrets:
        MYSECRET: hunter2
  - name: two
    concurrency: 2
    log_level: ERROR
    script: |
      %(two)s
    input:
      - path: twoin
  - name: plain
    script: |
      echo plain-ran
    input:
      - path: plainin
  - name: quietfail
    log_level: error
    max_attempts: 1
    script: |
      echo quiet-failing
      exit 3
    input:
      - path: quietin
'''


def intervals(path):
    """{job: [start, end]} from a times file."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                out.setdefault(parts[0], [None, None])[0 if parts[1] == 'start' else 1] = \
                    float(parts[2])
    return out


def most_at_once(iv):
    events = []
    for start, end in iv.values():
        events += [(start, 1), (end, -1)]
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same time
    n = most = 0
    for _, d in events:
        n += d
        most = max(most, n)
    return most


def log_of(port, svc, jid):
    r = fgtest.admin(port, 'GET', '/system/logs/%s/%s' % (svc, jid))
    return r.body if r.status == 200 else b''


def body(run):
    run.require(fgtest.REDIS)
    redis = fgtest.Redis(run).start()
    times = {s: run.path('%s.times' % s) for s in ('one', 'two')}
    one = TIMED % {'times': times['one'], 'name': 'one',
                   'extra': 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename '
                            '"$INPUT_FILE_PATH").out"'}
    two = TIMED % {'times': times['two'], 'name': 'two', 'extra': ':'}
    cfg = run.write_config('fg.yaml', CONFIG % {'redis': redis.url, 'one': one, 'two': two})
    fg = run.floodgate(config=cfg)
    port = fg.port
    s3 = fgtest.boto3_client(fg.endpoint)
    for b in ('onein', 'oneout', 'twoin', 'plainin', 'quietin'):
        s3.create_bucket(Bucket=b)
    worker = fgtest.Worker(run, redis, fg, name='w1', concurrency=4,
                           args=('--log-level', 'debug')).start()

    with run.section('concurrency 1: %d jobs on 4 slots, never two at once' % N):
        t0 = time.monotonic()
        for i in range(N):
            s3.put_object(Bucket='onein', Key='f%d.txt' % i, Body=b'one %d\n' % i)
        ok = fgtest.wait_jobs(port, 'one', N)
        run.ok(ok, 'all %d jobs succeeded' % N, fgtest.job_statuses(port, 'one'))
        run.note('done in %.1f s' % (time.monotonic() - t0))
        iv = intervals(times['one'])
        run.eq(len(iv), N, 'each job ran once')
        run.ok(all(s is not None and e is not None for s, e in iv.values()),
               'every run has a start and an end', iv)
        runs = sorted(iv.values())
        overlaps = [(a, b) for a, b in zip(runs, runs[1:]) if b[0] < a[1]]
        run.ok(not overlaps, 'no two runs overlap', overlaps)
        recs = fgtest.jobs(port, 'one')
        run.ok(all(str(r.get('attempts')) == '1' for r in recs.values()),
               'each job took one attempt (a job handed back is not started)',
               {k: r.get('attempts') for k, r in recs.items()})
        keys = fgtest.list_keys(port, 'oneout')
        run.eq(len(keys), N, 'every output uploaded')
        run.note('stream entries: %s for %d jobs (the rest were handed back)' %
                 (redis.cli('XLEN', 'fg:inv:default'), N))

    with run.section('concurrency 2: at most 2 at once'):
        for i in range(N):
            s3.put_object(Bucket='twoin', Key='f%d.txt' % i, Body=b'two %d\n' % i)
        ok = fgtest.wait_jobs(port, 'two', N)
        run.ok(ok, 'all %d jobs succeeded' % N, fgtest.job_statuses(port, 'two'))
        iv = intervals(times['two'])
        run.eq(len(iv), N, 'each job ran once')
        most = most_at_once(iv)
        run.ok(most <= 2, 'at most 2 runs at once (saw %d)' % most, sorted(iv.values()))
        run.ok(most == 2, 'and 2 do run together with 4 slots free', sorted(iv.values()))

    with run.section('log_level DEBUG: the worker\'s lines, secrets\' names only'):
        jid = next(iter(fgtest.jobs(port, 'one')))
        log = log_of(port, 'one', jid)
        for want in (b'[floodgate-worker] attempt 1 of 3 of job ' + jid.encode(),
                     b'[floodgate-worker] input onein/f', b' bytes\n',
                     b'[floodgate-worker] exit status 0 after ',
                     b'[floodgate-worker] output oneout/res/f',
                     b'[floodgate-worker] environment: ',
                     b'[floodgate-worker] timings: download ', b'one-ran'):
            run.ok(want in log, 'the log has %r' % want, log[:2000])
        env_line = [ln for ln in log.splitlines() if b'environment: ' in ln]
        run.ok(env_line and b'MYSECRET' in env_line[0] and b'MYVAR' in env_line[0] and
               b'INPUT_FILE_PATH' in env_line[0], 'the environment line names the variables',
               env_line)
        run.ok(b'hunter2' not in log and b'plainvalue' not in log, 'and never their values',
               log[:2000])
        run.ok(log.index(b'attempt 1 of') < log.index(b'one-ran') < log.index(b'exit status 0'),
               'the worker\'s lines around the script\'s output', log[:2000])

    with run.section('log_level INFO (the default): the main lines only'):
        s3.put_object(Bucket='plainin', Key='p.txt', Body=b'p')
        ok = fgtest.wait_jobs(port, 'plain', 1)
        run.ok(ok, 'the job succeeded', fgtest.job_statuses(port, 'plain'))
        jid = next(iter(fgtest.jobs(port, 'plain')))
        log = log_of(port, 'plain', jid)
        for want in (b'[floodgate-worker] attempt 1 of 3', b'[floodgate-worker] input plainin/p.txt: 1 bytes',
                     b'[floodgate-worker] exit status 0 after ', b'plain-ran'):
            run.ok(want in log, 'the log has %r' % want, log)
        run.ok(b'environment:' not in log and b'timings:' not in log, 'no DEBUG lines', log)

    with run.section('log_level ERROR: none of the INFO lines'):
        jid = next(iter(fgtest.jobs(port, 'two')))
        log = log_of(port, 'two', jid)
        run.eq(log, b'two-ran\n', 'a job that succeeded has the script\'s output alone')
        s3.put_object(Bucket='quietin', Key='q.txt', Body=b'q')
        ok = fgtest.wait_jobs(port, 'quietfail', 1, status='dead')
        run.ok(ok, 'the failing job is dead', fgtest.job_statuses(port, 'quietfail'))
        jid = next(iter(fgtest.jobs(port, 'quietfail')))
        log = log_of(port, 'quietfail', jid)
        run.eq(log, b'quiet-failing\n[floodgate-worker] attempt 1 of 1: exit status 3\n',
               'a job that failed has the failure line alone')

    run.ok(worker.alive(), 'the worker still runs')
    run.eq(worker.stop(timeout=20), 0, 'it stops on SIGTERM with 0')


if __name__ == '__main__':
    fgtest.Run('worker_limits').main(body)

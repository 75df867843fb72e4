#!/usr/bin/python3
"""floodgate's function path on one machine, in one run (see bench/README.md).

Starts a private redis-server and floodgate (services bound to buckets, events relayed to
Redis Streams) and floodgate-worker processes, and measures side by side:

  1. Redis PING round trip (the reference),
  2. event latency, unloaded: a PUT's 200 OK -> the first line of the service's script,
  3. jobs/s of a no-op script with 1, 2 and 4 workers (jobs queued first, then drained),
  4. relay rate: events piled up in the outbox while Redis is stopped, then drained,
  5. PUT 4 KiB req/s into a bucket with a bound service vs one without (wrk).

and prints one table with the figures, the targets and ok/MISS.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, 'tests', 'integration'))
import fgtest  # noqa: E402
from run import parse_wrk  # noqa: E402  (bench/run.py)

WRK = '/usr/bin/wrk'
TASKSET = '/usr/bin/taskset'
BASH = '/bin/bash'
REDIS_BENCHMARK = '/usr/bin/redis-benchmark'
KiB = 1024

TARGET_LAT_P99_MS = 10.0
TARGET_JOBS_S = 2000.0
TARGET_RELAY_S = 20000.0
TARGET_PUT_RATIO = 0.90

CONFIG = '''
redis: %(redis)s
jobs:
  visibility_timeout: 30s
  log_max: 64KiB
services:
  # 2. latency: the script's first line records its key and the time (bash's $EPOCHREALTIME:
  #    a builtin, no process started), appended to a file the bench reads
  - name: lat
    script: |
      #!%(bash)s
      echo "$STORAGE_OBJECT_KEY $EPOCHREALTIME" >> %(latfile)s
    input:
      - path: lat
  # 3. jobs/s: a no-op script
  - name: noop
    script: |
      #!/bin/sh
      :
    input:
      - path: noop
  # 4. and 5.: bound services in a pool no worker serves (events stay queued in Redis)
  - name: relay
    pool: idle
    script: |
      #!/bin/sh
      :
    input:
      - path: relay
  - name: sink
    pool: idle
    script: |
      #!/bin/sh
      :
    input:
      - path: bound
'''


def die(msg):
    print('bench: ' + msg, file=sys.stderr)
    sys.exit(2)


def pct(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def med(values):
    return statistics.median(values) if values else None


def abba(reps):
    """The run order of `reps` pairs of cases 'a' and 'b': ab, ba, ab, ... so that a drift of
    the machine during the run weighs on both alike."""
    return [('a', 'b') if i % 2 == 0 else ('b', 'a') for i in range(reps)]


def cpu_ratio_note(plain, bound, beside):
    """What the CPU time per request predicts for the ratio when the gateway's core is the
    limit: its CPU per plain request over that per bound request (plus Redis's when Redis
    shares the core). runs: tuples whose [2] and [3] are the gateway's and Redis's ms/req."""
    cp = med([r[2] for r in plain])
    cb = med([r[2] + (r[3] if beside else 0.0) for r in bound])
    return 'CPU/req predicts %.2fx' % (cp / cb) if cp and cb else 'no CPU figures'


def pair_ratio(a_rps, b_rps):
    """The median of the ratios b/a of each pair (run back to back): steadier on a noisy
    machine than the ratio of the two medians."""
    return med([b / a for a, b in zip(a_rps, b_rps) if a]) or 0.0


# ---------------------------------------------------------------------------------------------
# a minimal RESP2 client (no dependency on redis-py)


class Resp:
    def __init__(self, port, host='127.0.0.1', timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''

    @staticmethod
    def encode(args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        return b''.join(out)

    def _line(self):
        while True:
            i = self.buf.find(b'\r\n')
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            d = self.sock.recv(65536)
            if not d:
                raise EOFError('redis closed the connection')
            self.buf += d

    def _exact(self, n):
        while len(self.buf) < n + 2:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError('redis closed the connection')
            self.buf += d
        v, self.buf = self.buf[:n], self.buf[n + 2:]
        return v

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            return RuntimeError(rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            return None if n < 0 else self._exact(n).decode('utf-8', 'replace')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError('bad RESP reply %r' % line)

    def cmd(self, *args):
        self.sock.sendall(self.encode(args))
        r = self.read()
        if isinstance(r, RuntimeError):
            raise r
        return r

    def pipeline(self, cmds, chunk=1000):
        out = []
        for i in range(0, len(cmds), chunk):
            part = cmds[i:i + chunk]
            self.sock.sendall(b''.join(self.encode(c) for c in part))
            out += [self.read() for _ in part]
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def print_table(rows, notes):
    """The result table: case, result, target, ok/MISS, notes; then the notes."""
    hdr = ('case', 'result', 'target', '', 'notes')
    rows = [hdr] + list(rows)
    w = [max(len(str(r[i])) for r in rows) for i in range(len(hdr))]
    for j, r in enumerate(rows):
        print('  '.join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            print('  '.join('-' * x for x in w))
    for n in notes:
        print('note: ' + n)


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return 0.0


def task_files(pid, name):
    """(thread name, text of /proc/PID/task/TID/<name>) for each thread still there."""
    try:
        tids = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return
    for tid in tids:
        try:
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                comm = f.read().strip()
            with open('/proc/%d/task/%s/%s' % (pid, tid, name)) as f:
                text = f.read()
        except OSError:
            continue
        yield comm, text


def thread_cpu_s(pid):
    """CPU seconds of a process by thread name (the loop thread has the process's name; the
    disk and read pools' threads are fg-disk and fg-read)."""
    out = {}
    for name, stat in task_files(pid, 'stat'):
        fields = stat.rsplit(')', 1)[-1].split()
        if len(fields) > 12:
            out[name] = out.get(name, 0.0) + \
                (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    return out


def ctx_switches(pid):
    """Context switches of a process, every thread (voluntary + involuntary, /proc status)."""
    return sum(int(line.split(':', 1)[1]) for _, status in task_files(pid, 'status')
               for line in status.splitlines()
               if line.startswith(('voluntary_ctxt_switches:', 'nonvoluntary_ctxt_switches:')))


def disk_write_bytes(pid):
    """Bytes a process has caused to be written to storage (/proc/PID/io write_bytes)."""
    try:
        with open('/proc/%d/io' % pid) as f:
            for line in f:
                if line.startswith('write_bytes:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pinning(enabled):
    """(server, client) taskset prefixes: the servers on the last CPU, the clients and this
    process on the others; ([], []) when disabled or on one CPU."""
    ncpu = os.cpu_count() or 1
    if not enabled or ncpu < 2 or not os.access(TASKSET, os.X_OK):
        return [], []
    last = ncpu - 1
    os.sched_setaffinity(0, set(range(last)))
    return [TASKSET, '-c', str(last)], [TASKSET, '-c', '0-%d' % (last - 1) if last > 1 else '0']


def signed_put_file(run, fg, bucket, tag, n):
    """A requests.lua replay file of n SigV4-signed PUTs of new keys bucket/tag/NNNNNNN."""
    out = []
    for i in range(n):
        path = '/%s/%s/%07d' % (bucket, tag, i)
        h = fgtest.sigv4_headers('PUT', fg.hostport, path)
        out.append('PUT\t%s\tx-amz-date: %s\tx-amz-content-sha256: %s\tauthorization: %s'
                   % (path, h['x-amz-date'], h['x-amz-content-sha256'], h['authorization']))
    p = run.path('reqs-%s-%s' % (bucket, tag))
    with open(p, 'w') as fh:
        fh.write('\n'.join(out) + '\n')
    return p


def run_wrk(pin, hostport, reqfile, body_size, connections, duration, verbose=False):
    """One wrk run replaying reqfile through requests.lua; parse_wrk's dict."""
    env = dict(os.environ, WRK_REQS=reqfile, WRK_MODE='replay', WRK_THREADS='1',
               WRK_BODY_SIZE=str(body_size))
    argv = pin + [WRK, '-t', '1', '-c', str(connections), '-d', '%ds' % duration, '--latency',
                  '--timeout', '10s', '-s', os.path.join(HERE, 'requests.lua'),
                  'http://%s/' % hostport]
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        die('wrk failed: %s %s' % (r.stdout, r.stderr))
    if verbose:
        print(r.stdout)
    return parse_wrk(r.stdout)


def measured(fg_pid, redis_pid, run):
    """Runs run() (a wrk run: run_wrk's dict) and returns it with its figures per request:
    (req/s, p99, gateway CPU ms, Redis CPU ms, gateway CPU ms by thread name, KiB written to
    disk, context switches): what runs_note prints."""
    c0 = (cpu_s(fg_pid), cpu_s(redis_pid))
    t0 = thread_cpu_s(fg_pid)
    d0 = disk_write_bytes(fg_pid)
    x0 = ctx_switches(fg_pid)
    w = run()
    c1 = (cpu_s(fg_pid), cpu_s(redis_pid))
    t1 = thread_cpu_s(fg_pid)
    d1 = disk_write_bytes(fg_pid)
    x1 = ctx_switches(fg_pid)
    n = max(1, w['requests'])
    by_thread = {k: 1000 * (t1[k] - t0.get(k, 0.0)) / n for k in t1}
    return w, (w['rps'] or 0, w['p99'], 1000 * (c1[0] - c0[0]) / n, 1000 * (c1[1] - c0[1]) / n,
               by_thread, (d1 - d0) / 1024.0 / n, (x1 - x0) / n)


def runs_note(runs):
    """The notes of a row of measured() runs: each rate and p99, then medians per request."""
    names = sorted(set(k for r in runs for k in r[4]))
    threads = ', '.join('%s %.3f' % (k, med([r[4].get(k, 0.0) for r in runs])) for k in names)
    return ('runs %s; p99 %s; CPU/req: gateway %.3f ms (%s), redis %.3f ms; written to disk '
            '%.1f KiB/req; %.2f context switches/req' % (
                '/'.join('%.0f' % r[0] for r in runs), '/'.join(r[1] for r in runs),
                med([r[2] for r in runs]), threads, med([r[3] for r in runs]),
                med([r[5] for r in runs]), med([r[6] for r in runs])))


def perf_start(a, name, pids):
    """--perf DIR: `perf record` (a.perf_args) of the processes `pids`, or of every CPU when
    pids is None, into DIR/NAME.data; None when --perf is not given."""
    if not a.perf:
        return None
    os.makedirs(a.perf, exist_ok=True)
    out = os.path.join(a.perf, name + '.data')
    who = ['-a'] if pids is None else ['-p', ','.join(str(p) for p in pids)]
    p = subprocess.Popen(['perf', 'record', '-q', '-o', out] + a.perf_args.split() + who,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def perf_stop(p):
    if p is not None:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)


def add_perf_args(ap, what):
    """--perf DIR and --perf-args; `what` says which runs are recorded."""
    ap.add_argument('--perf', metavar='DIR', help='perf record %s into DIR' % what)
    ap.add_argument('--perf-args', default='-F 1999 -g', metavar='ARGS',
                    help="perf record's options for --perf ('-F 1999 -g'; e.g. "
                    "'-F 499 --call-graph dwarf' for stacks through libraries without frame "
                    'pointers)')


def move_to(pin, pid):
    """Moves a running process (every thread) to the CPUs of a taskset prefix."""
    if pin:
        subprocess.run([TASKSET, '-a', '-p', '-c', pin[2], str(pid)], check=True,
                       stdout=subprocess.DEVNULL)


def is_tmpfs(path):
    """Whether path is a writable tmpfs mount point (from /proc/mounts)."""
    try:
        with open('/proc/mounts') as f:
            mounts = [line.split() for line in f]
    except OSError:
        return False
    return any(m[1] == path and m[2] == 'tmpfs' for m in mounts if len(m) > 2) and \
        os.access(path, os.W_OK)


def pairs(flat):
    return dict(zip(flat[0::2], flat[1::2]))


# ---------------------------------------------------------------------------------------------
# keep-alive HTTP to the gateway


class Client:
    """One keep-alive connection to floodgate: signed PUTs (UNSIGNED-PAYLOAD) and /health."""

    def __init__(self, fg):
        self.fg = fg
        self.conn = fgtest.Conn(fg.port)

    def _send(self, method, path, headers, body=b''):
        h = {'host': self.fg.hostport}
        h.update(headers)
        if method == 'PUT':
            h['content-length'] = str(len(body))
        req = '%s %s HTTP/1.1\r\n' % (method, path) + ''.join(
            '%s: %s\r\n' % kv for kv in h.items()) + '\r\n'
        self.conn.send(req.encode() + body)
        return self.conn.final_response()

    def put(self, bucket, key, body):
        path = fgtest.key_path(bucket, key)
        h = fgtest.sigv4_headers('PUT', self.fg.hostport, path)
        h.pop('host')
        return self._send('PUT', path, h, body)

    def health(self):
        r = self._send('GET', '/health', {})
        if r.status != 200:
            raise RuntimeError('/health: %s' % r)
        return json.loads(r.body)

    def close(self):
        self.conn.close()


def put_many(fg, bucket, keys, body, conns=8):
    """PUTs every key (new keep-alive connections, `conns` threads); raises on a non-200."""
    errors = []

    def part(ks):
        c = Client(fg)
        try:
            for k in ks:
                r = c.put(bucket, k, body)
                if r.status != 200:
                    errors.append('%s: %s' % (k, r))
                    return
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    ts = [threading.Thread(target=part, args=(keys[i::conns],)) for i in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError('upload failed: %s' % errors[:3])


# ---------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.a = args
        self.run = fgtest.Run('fnbench')
        # this process (the uploads, the pollers) runs with the clients
        self.pin_srv, self.pin_cli = pinning(args.pin)
        self.rows = []
        self.notes = []
        self.workers = []
        self.wseq = 0
        self.work_dir = None

    # -- setup --

    def start(self):
        run = self.run
        self.redis = fgtest.Redis(run)
        self.redis.argv = (self.pin_cli if self.a.redis_with_clients else self.pin_srv) + \
            self.redis.argv
        if self.a.redis_with_clients:
            self.notes.append('redis-server pinned with the clients, not with floodgate')
        self.redis.start()
        self.latfile = run.path('lat-starts.txt')
        self.work_dir = run.tmp
        if self.a.work_dir == 'auto':
            self.a.work_dir = '/dev/shm' if is_tmpfs('/dev/shm') else ''
        if self.a.work_dir:
            self.work_dir = tempfile.mkdtemp(prefix='fnbench-jobs-', dir=self.a.work_dir)
        open(self.latfile, 'w').close()
        cfg = run.write_config('fg.yaml', CONFIG % {'redis': self.redis.url, 'bash': BASH,
                                                    'latfile': self.latfile})
        self.fg = fgtest.Floodgate(run, config=cfg, wrap=self.pin_srv)
        self.fg.start()
        self.r = Resp(self.redis.port)
        self.http = Client(self.fg)
        for b in ('lat', 'noop', 'relay', 'bound', 'plain'):
            r = fgtest.signed(self.fg.port, 'PUT', b)
            if r.status != 200:
                die('create bucket %s: %s' % (b, r))
        if not fgtest.wait_for(lambda: self.http.health().get('redis') == 'connected', 15, 0.05):
            die('floodgate did not connect to Redis: %s' % self.http.health())

    def start_workers(self, n, concurrency, pools=('default',)):
        ws = []
        for i in range(n):
            self.wseq += 1
            w = fgtest.Worker(self.run, self.redis, self.fg, name='w%d' % self.wseq,
                              pools=pools, concurrency=concurrency,
                              args=('--work-dir', self.work_dir))
            w.argv = self.pin_cli + w.argv
            ws.append(w.start())
        self.workers += ws
        return ws

    def stop_workers(self, ws):
        for w in ws:
            w.signal(signal.SIGTERM)
        for w in ws:
            rc = w.stop(timeout=20)
            if rc not in (0, None):
                self.notes.append('%s exited %s: %s' % (w.name, rc, w.log_tail(3)))

    def outbox(self):
        return self.http.health()['outbox']

    def wait_outbox_empty(self, timeout=120):
        if not fgtest.wait_for(lambda: self.outbox() == 0, timeout, 0.01):
            die('the outbox did not drain: %s' % self.http.health())

    def group(self, pool):
        """XINFO GROUPS of inv:{pool} as a dict for group "workers" (lag, pending, ...)."""
        key = 'fg:inv:%s' % pool
        if not self.r.cmd('EXISTS', key):
            return {'lag': 0, 'pending': 0}
        for g in self.r.cmd('XINFO', 'GROUPS', key):
            d = pairs(g)
            if d.get('name') == 'workers':
                if d.get('lag') is None:  # not computable: compare the last ids instead
                    last = pairs(self.r.cmd('XINFO', 'STREAM', key)).get('last-generated-id')
                    d['lag'] = 0 if d.get('last-delivered-id') == last else -1
                return d
        # no group yet (the first worker creates it): every entry is waiting
        return {'lag': self.r.cmd('XLEN', key), 'pending': 0}

    def row(self, case, result, target='', verdict='', notes=''):
        self.rows.append((case, result, target, verdict, notes))

    # -- 1. Redis round trip --

    def case_ping(self):
        r = self.r
        for _ in range(200):
            r.cmd('PING')
        lat = []
        for _ in range(self.a.pings):
            t0 = time.perf_counter_ns()
            r.cmd('PING')
            lat.append(time.perf_counter_ns() - t0)
        self.ping_p50_ms = pct(lat, 50) / 1e6
        self.row('Redis PING round trip (python loop, %d)' % self.a.pings,
                 'p50 %.3f ms, p99 %.3f ms' % (pct(lat, 50) / 1e6, pct(lat, 99) / 1e6),
                 '(reference)')
        if os.access(REDIS_BENCHMARK, os.X_OK):
            p = subprocess.run(self.pin_cli + [REDIS_BENCHMARK, '-p', str(self.redis.port),
                                               '-t', 'ping', '-n', '20000', '-c', '1', '-q',
                                               '--csv'], capture_output=True, text=True,
                               timeout=120)
            rows = [l.replace('"', '').split(',') for l in p.stdout.splitlines() if l]
            hdr = rows[0] if rows else []
            for vals in rows[1:]:
                d = dict(zip(hdr, vals))
                if 'p50_latency_ms' in d:
                    self.row('Redis PING (redis-benchmark -c 1, %s)' % d.get('test', ''),
                             'p50 %s ms, p99 %s ms' % (d['p50_latency_ms'], d['p99_latency_ms']),
                             '(reference)', '', '%s req/s' % d.get('rps', '?'))

    # -- 2. event latency --

    def bash_start_cost(self):
        """fork+exec of the same kind of script from here to its first line (info)."""
        path = self.run.path('probe.sh')
        with open(path, 'w') as f:
            f.write('#!%s\necho "$EPOCHREALTIME"\n' % BASH)
        os.chmod(path, 0o700)
        lat = []
        for _ in range(30):
            t0 = time.time_ns()
            out = subprocess.run([path], capture_output=True, text=True).stdout
            lat.append(int(out.strip().replace('.', '')) * 1000 - t0)
        return pct(lat, 50) / 1e6

    def case_latency(self):
        a = self.a
        ws = self.start_workers(1, 4)
        c = self.http
        warm = 10
        sent = {}
        rtt = []
        time.sleep(0.5)
        for i in range(warm + a.lat_n):
            key = 'k%05d' % i
            t0 = time.time_ns()
            r = c.put('lat', key, b'x')
            t1 = time.time_ns()
            if r.status != 200:
                die('PUT lat/%s: %s' % (key, r))
            if i >= warm:
                sent[key] = t1
                rtt.append(t1 - t0)
            time.sleep(a.lat_pause_ms / 1000.0)

        def lines():
            with open(self.latfile) as f:
                return [l.split() for l in f.read().splitlines() if l.strip()]
        if not fgtest.wait_for(lambda: len(lines()) >= warm + a.lat_n, 60, 0.05):
            self.notes.append('latency: only %d of %d scripts ran' % (len(lines()),
                                                                   warm + a.lat_n))
        started = {k: int(t.replace('.', '')) * 1000 for k, t in lines()}
        lat = [(started[k] - t) / 1e6 for k, t in sent.items() if k in started]
        self.stop_workers(ws)
        if not lat:
            self.row('PUT 200 OK -> script start', '-', 'p99 < %g ms' % TARGET_LAT_P99_MS, 'MISS')
            return
        p50, p99 = pct(lat, 50), pct(lat, 99)
        self.row('PUT 200 OK -> script start (%d, %d ms apart)' % (len(lat), a.lat_pause_ms),
                 'p50 %.2f ms, p99 %.2f ms' % (p50, p99), 'p99 < %g ms' % TARGET_LAT_P99_MS,
                 'ok' if p99 < TARGET_LAT_P99_MS else 'MISS',
                 'max %.2f ms; 1 worker -c 4' % max(lat))
        self.row('  PUT round trip (same uploads)',
                 'p50 %.2f ms, p99 %.2f ms' % (pct(rtt, 50) / 1e6, pct(rtt, 99) / 1e6), '(info)')
        self.row('  bash script fork+exec -> first line',
                 'p50 %.2f ms' % self.bash_start_cost(), '(info)', '',
                 'from python, for scale')

    # -- 3. jobs/s --

    def drain_once(self, n_workers, conc, m, tag):
        """Queues m no-op jobs with no worker running, then starts the workers and times
        until every entry is acknowledged. Returns (jobs/s, server-side jobs/s)."""
        keys = ['%s/%06d' % (tag, i) for i in range(m)]
        since_ms = int(time.time() * 1000) - 1
        put_many(self.fg, 'noop', keys, b'x', conns=self.a.upload_conns)
        self.wait_outbox_empty()
        g = self.group('default')
        if g.get('lag') != m or g.get('pending') != 0:
            self.notes.append('jobs %s: before the start lag=%s pending=%s (expected %d, 0)'
                              % (tag, g.get('lag'), g.get('pending'), m))
        subprocess.run(['sync'])
        time.sleep(0.5)
        prof = self.perf_start('jobs-%s' % tag, system_wide=True)
        t0 = time.monotonic()
        ws = self.start_workers(n_workers, conc)
        deadline = t0 + self.a.drain_timeout
        while True:
            g = self.group('default')
            # done: nothing undelivered, nothing running, no retry waiting in `delay`
            if g.get('lag') == 0 and g.get('pending') == 0 and \
                    self.r.cmd('ZCARD', 'fg:delay') == 0:
                break
            if time.monotonic() > deadline:
                self.notes.append('jobs %s: not drained in %ds (lag %s, pending %s)'
                                  % (tag, self.a.drain_timeout, g.get('lag'), g.get('pending')))
                break
            time.sleep(0.005)
        t1 = time.monotonic()
        perf_stop(prof)
        self.stop_workers(ws)
        ids = self.r.cmd('ZRANGEBYSCORE', 'fg:jobs:noop', since_ms, '+inf')
        recs = self.r.pipeline([('HMGET', 'fg:job:%s' % i, 'status', 'started_ms',
                                 'finished_ms', 'key', 'reason') for i in ids])
        recs = [x for x in recs if x and x[3] and x[3].startswith(tag + '/')]
        ok = [x for x in recs if x[0] == 'succeeded']
        if len(ok) != m:
            st = {}
            for x in recs:
                st[x[0]] = st.get(x[0], 0) + 1
            why = sorted(set(x[4] for x in recs if x[0] != 'succeeded' and x[4]))
            self.notes.append('jobs %s: %d of %d succeeded %s %s' % (tag, len(ok), m, st,
                                                                     why[:3]))
        rate = len(ok) / (t1 - t0)
        srv = None
        if ok:
            span = (max(int(x[2]) for x in ok) - min(int(x[1]) for x in ok)) / 1000.0
            srv = len(ok) / span if span > 0 else None
        return rate, srv

    def spawn_ceiling(self):
        """The machine's own limit for process-per-file: one loop per CPU that spawns the
        no-op script through /bin/sh (posix_spawn, as the worker's vfork-style clone) and waits
        for it, nothing else running. Returns spawns/s summed over the loops."""
        script = self.run.path('noop.sh')
        with open(script, 'w') as f:
            f.write('#!/bin/sh\n:\n')
        loop = ('import os, sys, time\n'
                'end = time.monotonic() + float(sys.argv[2]); n = 0; t0 = time.monotonic()\n'
                'while time.monotonic() < end:\n'
                '    os.waitpid(os.posix_spawn("/bin/sh", ["sh", sys.argv[1]], os.environ), 0)\n'
                '    n += 1\n'
                'print(n / (time.monotonic() - t0))\n')
        ncpu = os.cpu_count() or 1
        procs = []
        for cpu in range(ncpu):
            pin = [TASKSET, '-c', str(cpu)] if self.pin_srv else []
            procs.append(subprocess.Popen(pin + [sys.executable, '-c', loop, script, '3'],
                                          stdout=subprocess.PIPE, text=True))
        rates = [float(p.communicate()[0].strip() or 0) for p in procs]
        total = sum(rates)
        self.row('machine: spawn+wait of the no-op script', '%.0f /s' % total, '(ceiling)', '',
                 '%d loop%s, one per CPU: %s; nothing else running'
                 % (ncpu, 's' if ncpu > 1 else '', '/'.join('%.0f' % r for r in rates)))
        return total

    def case_jobs(self):
        a = self.a
        ceiling = self.spawn_ceiling()
        # a short probe sizes M so that a drain takes about --drain-seconds
        probe, _ = self.drain_once(1, 4, 300, 'probe')
        m = a.jobs or int(min(3000, max(500, probe * a.drain_seconds)))
        m = max(100, m)
        self.notes.append('jobs/s: probe of 300 jobs with 1 worker -c 4: %.0f jobs/s; M = %d'
                          % (probe, m))
        seq = 0
        for nw in a.worker_counts:
            best = None
            detail = []
            for conc in a.concurrencies:
                runs, srv = [], []
                for _ in range(a.repeat):
                    seq += 1
                    r, s = self.drain_once(nw, conc, m, 'j%03d' % seq)
                    runs.append(r)
                    if s:
                        srv.append(s)
                mr = med(runs)
                detail.append('-c %d: %s' % (conc, '/'.join('%.0f' % x for x in runs)))
                if best is None or mr > best[0]:
                    best = (mr, conc, med(srv))
            self.row('jobs/s, no-op script, %d worker%s (best -c %d)' % (nw, 's' if nw > 1 else '',
                                                                         best[1]),
                     '%.0f jobs/s' % best[0], '>= %d' % TARGET_JOBS_S,
                     'ok' if best[0] >= TARGET_JOBS_S else 'MISS',
                     '%s; first start->last end %.0f/s; %.2fx the spawn ceiling'
                     % ('; '.join(detail), best[2] or 0, best[0] / ceiling if ceiling else 0))

    # -- 4. relay --

    def case_relay(self):
        a = self.a
        rates = []
        for rep in range(a.repeat_relay):
            self.wait_outbox_empty()
            keys = ['r%d/%06d' % (rep, i) for i in range(a.relay_n)]
            self.redis.signal(signal.SIGSTOP)
            try:
                put_many(self.fg, 'relay', keys, b'x', conns=self.a.upload_conns)
                piled = self.outbox()
            finally:
                t0 = time.monotonic()
                self.redis.signal(signal.SIGCONT)
            polls = 0
            while True:
                n = self.outbox()
                polls += 1
                if n == 0:
                    break
                if time.monotonic() - t0 > 120:
                    die('relay: the outbox did not drain (%d left)' % n)
                time.sleep(0.01)
            dt = time.monotonic() - t0
            rates.append(piled / dt)
            if piled < a.relay_n * 0.95:
                self.notes.append('relay run %d: only %d of %d events were in the outbox when '
                                  'Redis resumed' % (rep, piled, a.relay_n))
        m = med(rates)
        self.row('relay: outbox -> Redis (%d events piled up)' % a.relay_n, '%.0f events/s' % m,
                 '>= %d' % TARGET_RELAY_S, 'ok' if m >= TARGET_RELAY_S else 'MISS',
                 'runs %s; 10 ms polls' % '/'.join('%.0f' % x for x in rates))
        xl = self.r.cmd('XLEN', 'fg:inv:idle')
        self.r.cmd('DEL', 'fg:inv:idle')
        self.r.cmd('XGROUP', 'CREATE', 'fg:inv:idle', 'workers', '0', 'MKSTREAM')
        if xl < a.repeat_relay * a.relay_n:
            self.notes.append('relay: fg:inv:idle holds %d entries, expected %d'
                              % (xl, a.repeat_relay * a.relay_n))

    # -- 5. PUT with and without a bound service --

    def put_lines(self, bucket, n, tag):
        return signed_put_file(self.run, self.fg, bucket, tag, n)

    def wrk(self, reqfile):
        return run_wrk(self.pin_cli, self.fg.hostport, reqfile, 4 * KiB, self.a.connections,
                       self.a.duration, self.a.verbose)

    def perf_start(self, name, system_wide=False):
        return perf_start(self.a, name, None if system_wide else (self.fg.pid, self.redis.pid))

    def wrk_case(self, bucket, tag, res, stop_redis=False):
        """One wrk run into `bucket`; appends rps and the gateway's and Redis's CPU time per
        request (ms) to res[bucket]."""
        a = self.a
        f = self.put_lines(bucket.split('-')[0], a.put_keys, tag)
        self.wait_outbox_empty()
        subprocess.run(['sync'])
        time.sleep(1)
        if stop_redis:
            self.redis.signal(signal.SIGSTOP)
        try:
            prof = self.perf_start('%s-%s' % (bucket, tag))
            w, fig = measured(self.fg.pid, self.redis.pid, lambda: self.wrk(f))
            perf_stop(prof)
        finally:
            if stop_redis:
                self.redis.signal(signal.SIGCONT)
        if w['non2xx'] or w['errors']:
            self.notes.append('wrk %s %s: %d non-2xx %s' % (bucket, tag, w['non2xx'],
                                                          w['errors']))
        if w['requests'] > a.put_keys:
            self.notes.append('wrk %s %s: %d requests > %d keys (keys reused)'
                              % (bucket, tag, w['requests'], a.put_keys))
        res.setdefault(bucket, []).append(fig)

    def put_row(self, name, runs, target='', verdict='', extra=''):
        rps = med([r[0] for r in runs])
        self.row(name, '%.0f req/s' % rps, target, verdict, runs_note(runs) + extra)
        return rps

    def put_pair(self, label, tag, where, beside):
        """Alternates wrk runs into `plain` and `bound` after a warm-up run that is not counted
        (the first run after a change of placement reads fast); rows for both and their
        ratio."""
        a = self.a
        res = {}
        self.wrk_case('plain', tag + 'w', {})
        for rep, order in enumerate(abba(a.alternations)):
            for case in order:
                self.wrk_case({'a': 'plain', 'b': 'bound'}[case], '%s%d' % (tag, rep), res)
        mp = self.put_row('PUT 4 KiB, bucket without a service%s' % label, res['plain'],
                          '(baseline)')
        self.put_row('PUT 4 KiB, bucket with a bound service%s' % label, res['bound'])
        ratio = pair_ratio([r[0] for r in res['plain']], [r[0] for r in res['bound']])
        self.row('  with a service / without', '%.3fx' % ratio, '>= %.2fx' % TARGET_PUT_RATIO,
                 'ok' if ratio >= TARGET_PUT_RATIO else 'MISS',
                 'median of %d back-to-back pairs; %s; Redis %s; no worker running (events '
                 'queue in Redis)' % (len(res['plain']),
                                      cpu_ratio_note(res['plain'], res['bound'], beside), where))
        return mp

    def case_put(self):
        a = self.a
        if self.pin_srv and not a.redis_with_clients:
            # Redis beside the gateway (one core for both: the pessimistic case), then on the
            # clients' CPU (as in production, where Redis runs elsewhere), in the same run
            mp = self.put_pair(' [Redis: gateway CPU]', 'g', 'on the gateway\'s CPU', True)
            move_to(self.pin_cli, self.redis.pid)
            try:
                mp = self.put_pair(' [Redis: other CPU]', 'o', 'on the clients\' CPU', False)
            finally:
                move_to(self.pin_srv, self.redis.pid)
        else:
            mp = self.put_pair('', 'w', 'placed by --redis-with-clients / --no-pin', False)
        self.notes.append('PUT: %d events relayed into fg:inv:idle'
                          % self.r.cmd('XLEN', 'fg:inv:idle'))
        if a.put_redis_stopped:
            # the bound bucket with Redis stopped: the outbox write alone, no relay (info)
            res = {}
            for rep in range(min(2, a.alternations)):
                self.wrk_case('bound-stopped', 's%d' % rep, res, stop_redis=True)
            self.wait_outbox_empty()
            ms = self.put_row('  bound service, Redis stopped (no relay)', res['bound-stopped'],
                              '(info)')
            self.row('    Redis stopped / without', '%.2fx' % (ms / mp if mp else 0), '(info)',
                     '', 'the outbox write alone, against the last baseline')

    # -- table --

    def print_table(self):
        print_table(self.rows, self.notes)

    def main(self):
        a = self.a
        try:
            self.start()
            print('floodgate %s on :%d, floodgate-worker %s, redis-server on :%d%s'
                  % (self.fg.bin, self.fg.port, fgtest.worker_bin(), self.redis.port,
                     '; floodgate + redis-server pinned to CPU %s, workers/wrk/this script '
                     'to CPU %s' % (self.pin_srv[-1], self.pin_cli[-1]) if self.pin_srv else
                     ''), flush=True)
            print('job dirs (floodgate-worker --work-dir) in %s' % self.work_dir, flush=True)
            steps = (('Redis PING', self.case_ping), ('latency', self.case_latency),
                     ('jobs/s', self.case_jobs), ('relay', self.case_relay),
                     ('PUT with/without a service', self.case_put))
            for name, fn in steps:
                if a.only and name.split()[0].lower() not in a.only:
                    continue
                t0 = time.monotonic()
                fn()
                print('%s done (%.0f s)' % (name, time.monotonic() - t0), flush=True)
            print()
            self.print_table()
        finally:
            for p in self.run.procs:
                if p.alive():
                    if p is self.redis:
                        p.signal(signal.SIGCONT)
                    p.stop(timeout=10)
            if a.keep:
                os.environ['FG_KEEP_TMP'] = '1'
            self.run.teardown()
            if self.a.work_dir and self.work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
        missed = [r for r in self.rows if r[3] == 'MISS']
        return 1 if (missed and a.strict) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build', help='build dir with floodgate and floodgate-worker '
                    '(default: $FG_BUILD, else build/)')
    ap.add_argument('--pings', type=int, default=2000, help='PINGs timed (2000)')
    ap.add_argument('--lat-n', type=int, default=300, help='uploads timed for latency (300)')
    ap.add_argument('--lat-pause-ms', type=int, default=20, help='pause between them (20)')
    ap.add_argument('--jobs', type=int, default=0,
                    help='jobs per drain (default: sized by a probe to ~--drain-seconds, '
                    'at most 3000)')
    ap.add_argument('--drain-seconds', type=float, default=6.0,
                    help='target length of one drain when --jobs is not given (6)')
    ap.add_argument('--drain-timeout', type=int, default=120, help='seconds per drain (120)')
    ap.add_argument('--workers', dest='worker_counts', default='1,2,4',
                    help='worker counts (1,2,4)')
    ap.add_argument('--concurrency', dest='concurrencies', default='4,8',
                    help='--concurrency values tried per worker count, best reported (4,8)')
    ap.add_argument('--repeat', type=int, default=2, help='drains per configuration (2)')
    ap.add_argument('--relay-n', type=int, default=5000, help='events piled up (5000)')
    ap.add_argument('--repeat-relay', type=int, default=3, help='relay runs (3)')
    ap.add_argument('--duration', type=int, default=5, help='seconds per wrk run (5)')
    ap.add_argument('--connections', type=int, default=32, help='wrk -c (32)')
    ap.add_argument('--alternations', type=int, default=4,
                    help='without/with pairs of wrk runs, in ab/ba order (4)')
    ap.add_argument('--put-keys', type=int, default=60000, help='signed PUTs per wrk run')
    ap.add_argument('--no-put-redis-stopped', dest='put_redis_stopped', action='store_false',
                    help='skip the info runs into the bound bucket with Redis stopped')
    ap.add_argument('--upload-conns', type=int, default=8,
                    help='connections used to queue jobs / pile up events (8)')
    ap.add_argument('--only', default='',
                    help='comma list of steps: redis,latency,jobs/s,relay,put')
    ap.add_argument('--no-pin', dest='pin', action='store_false')
    ap.add_argument('--redis-with-clients', action='store_true',
                    help='pin redis-server with the clients (Redis as another machine would '
                    'be), not on the gateway\'s CPU')
    ap.add_argument('--strict', action='store_true', help='exit 1 when a target is missed')
    ap.add_argument('--keep', action='store_true', help='keep the temp dir')
    ap.add_argument('--work-dir', metavar='DIR', default='auto',
                    help="where the workers' job dirs go (--work-dir of floodgate-worker); "
                    "default: /dev/shm when it is a tmpfs, else the bench temp dir; '' for "
                    'the bench temp dir')
    add_perf_args(ap, 'floodgate and redis-server during each PUT run, and every CPU during '
                  'each drain,')
    ap.add_argument('-v', '--verbose', action='store_true', help='print wrk output')
    a = ap.parse_args()
    a.worker_counts = [int(x) for x in a.worker_counts.split(',') if x]
    a.concurrencies = [int(x) for x in a.concurrencies.split(',') if x]
    a.only = [x.strip().lower() for x in a.only.split(',') if x.strip()]

    build = a.build or os.environ.get('FG_BUILD') or os.path.join(SRC, 'build')
    build = os.path.abspath(build)
    os.environ['FG_BUILD'] = build
    if not os.environ.get('FG_BIN') or a.build:
        os.environ['FG_BIN'] = os.path.join(build, 'floodgate')
    for p in (os.environ['FG_BIN'], os.path.join(build, 'floodgate-worker'), fgtest.REDIS, WRK,
              BASH):
        if not os.access(p, os.X_OK):
            die('%s is missing (build floodgate and floodgate-worker; apt-get install '
                'redis-server wrk)' % p)
    sys.exit(Bench(a).main())


if __name__ == '__main__':
    main()

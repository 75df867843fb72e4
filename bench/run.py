#!/usr/bin/python3
"""floodgate vs nginx on the same machine, in one run (see bench/README.md).

Starts nginx (1 worker: a static dir and a WebDAV PUT location) and floodgate (1 process) on
a temp data dir, drives both with wrk through bench/requests.lua (floodgate's requests
SigV4-signed ahead of time with UNSIGNED-PAYLOAD), then a 1 GiB PUT with curl, and prints a
table: nginx, floodgate, the ratio, and the target for each case.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, 'tests', 'integration'))
import fgtest  # noqa: E402

WRK = '/usr/bin/wrk'
TASKSET = '/usr/bin/taskset'
KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024

TARGETS = {  # floodgate / nginx
    'GET 4 KiB': 0.8,
    'GET 1 MiB': 0.8,
    'PUT 4 KiB (new keys)': 0.6,
    'PUT 1 GiB (curl)': 0.6,
}
PEAK_RSS_MAX_KB = 32 * 1024
IDLE_RSS_MAX_KB = 16 * 1024


def die(msg):
    print('bench: ' + msg, file=sys.stderr)
    sys.exit(2)


def rss_tree_kb(pid, field='VmRSS'):
    """`field` of pid plus its direct children (nginx master + workers)."""
    total = fgtest.proc_status(pid, field) or 0
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            for c in f.read().split():
                total += fgtest.proc_status(int(c), field) or 0
    except OSError:
        pass
    return total


def nginx_site(port, www, dav):
    return '''
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:%d;
        root %s;
        location /dav/ {
            root %s;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 128k;
        }
    }
''' % (port, www, dav)


def parse_wrk(out):
    res = {'rps': None, 'non2xx': 0, 'errors': '', 'requests': 0, 'p99': ''}
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    if m:
        res['rps'] = float(m.group(1))
    m = re.search(r'(\d+) requests in', out)
    if m:
        res['requests'] = int(m.group(1))
    m = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', out)
    if m:
        res['non2xx'] = int(m.group(1))
    m = re.search(r'Socket errors:[^\n]*', out)
    if m:
        res['errors'] = m.group(0)
    m = re.search(r'^\s+99%\s+(\S+)', out, re.M)
    if m:
        res['p99'] = m.group(1)
    return res


class Bench:
    def __init__(self, args):
        self.args = args
        self.run = fgtest.Run('bench')
        self.pin_srv, self.pin_wrk = [], []
        if args.pin and (os.cpu_count() or 1) >= 2 and os.access(TASKSET, os.X_OK):
            last = os.cpu_count() - 1
            self.pin_srv = [TASKSET, '-c', str(last)]
            self.pin_wrk = [TASKSET, '-c', '0-%d' % (last - 1)]
        self.rows = []
        self.notes = []

    # -- setup --

    def start(self):
        run, a = self.run, self.args
        self.www = run.path('www')
        self.dav = run.path('davroot')
        os.makedirs(self.www)
        os.makedirs(os.path.join(self.dav, 'dav'))
        self.obj4k = os.urandom(4 * KiB)
        self.obj1m = os.urandom(MiB)
        for name, data in (('obj4k', self.obj4k), ('obj1m', self.obj1m)):
            with open(os.path.join(self.www, name), 'wb') as f:
                f.write(data)
        port = fgtest.free_port()
        self.ngx = fgtest.Nginx(run, nginx_site(port, self.www, self.dav), port=port,
                                wrap=self.pin_srv, log_level='warn')
        self.ngx.start()

        if a.fg_bin:
            os.environ['FG_BIN'] = a.fg_bin
        self.fg = fgtest.Floodgate(run, wrap=self.pin_srv)
        self.fg.start()
        p = self.fg.port
        for method, key, body in (('PUT', None, b''), ('PUT', 'obj4k', self.obj4k),
                                  ('PUT', 'obj1m', self.obj1m)):
            r = fgtest.signed(p, method, 'bench', key, body=body)
            if r.status != 200:
                die('floodgate setup %s %s: %s' % (method, key, r))
        r = fgtest.signed(p, 'GET', 'bench', 'obj1m')
        if r.status != 200 or r.body != self.obj1m:
            die('floodgate GET obj1m failed: %s' % r)
        r = fgtest.request(self.ngx.port, 'GET', '/obj1m')
        if r.status != 200 or r.body != self.obj1m:
            die('nginx GET obj1m failed: %s' % r)

    # -- wrk --

    def wrk(self, port, reqfile, mode, body_size=0):
        a = self.args
        env = dict(os.environ, WRK_REQS=reqfile, WRK_MODE=mode, WRK_THREADS=str(a.threads),
                   WRK_BODY_SIZE=str(body_size))
        argv = self.pin_wrk + [WRK, '-t', str(a.threads), '-c', str(a.connections), '-d',
                               '%ds' % a.duration, '--latency', '--timeout', '10s', '-s',
                               os.path.join(HERE, 'requests.lua'), 'http://127.0.0.1:%d/' % port]
        r = subprocess.run(argv, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            die('wrk failed: %s %s' % (r.stdout, r.stderr))
        if a.verbose:
            print(r.stdout)
        return parse_wrk(r.stdout)

    def write_reqs(self, name, lines):
        p = self.run.path(name)
        with open(p, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return p

    def fg_get_line(self, key):
        path = fgtest.key_path('bench', key)
        h = fgtest.sigv4_headers('GET', self.fg.hostport, path)
        return '\t'.join(['GET', path] + ['%s: %s' % (k, v) for k, v in h.items()
                                          if k != 'host'])

    def fg_put_lines(self, n, tag):
        out = []
        host = self.fg.hostport
        for i in range(n):
            path = '/bench/%s/%07d' % (tag, i)
            h = fgtest.sigv4_headers('PUT', host, path)
            out.append('PUT\t%s\tx-amz-date: %s\tx-amz-content-sha256: %s\tauthorization: %s'
                       % (path, h['x-amz-date'], h['x-amz-content-sha256'], h['authorization']))
        return out

    def case_rps(self, name, ngx_file, fg_file, mode, body_size=0, n_lines=None):
        self.settle()
        rn = self.wrk(self.ngx.port, ngx_file, mode, body_size)
        self.settle()
        rf = self.wrk(self.fg.port, fg_file, mode, body_size)
        for who, r in (('nginx', rn), ('floodgate', rf)):
            if r['non2xx'] or r['errors']:
                self.notes.append('%s %s: %d non-2xx responses %s' % (name, who, r['non2xx'],
                                                                      r['errors']))
            if n_lines and r['requests'] > n_lines:
                self.notes.append('%s %s: %d requests > %d prepared keys (some keys reused)'
                                  % (name, who, r['requests'], n_lines))
        self.row(name, rn['rps'], rf['rps'], 'req/s', TARGETS[name],
                 extra='p99 %s / %s' % (rn['p99'], rf['p99']))

    def settle(self):
        subprocess.run(['sync'])
        time.sleep(1)

    # -- 1 GiB PUT --

    def curl_put(self, url, path, headers):
        argv = self.pin_wrk + [fgtest.CURL, '-sS', '-o', '/dev/null', '-w',
                               '%{http_code} %{speed_upload} %{time_total}', '-T', path]
        for k, v in headers.items():
            argv += ['-H', '%s: %s' % (k, v)]
        r = subprocess.run(argv + [url], capture_output=True, text=True)
        parts = r.stdout.split()
        if r.returncode != 0 or len(parts) != 3:
            return None, 0.0, r.stderr.strip()
        return int(parts[0]), float(parts[1]), ''

    def case_big(self):
        a = self.args
        size = a.big_mib * MiB
        free = shutil.disk_usage(self.run.tmp).free
        if free < 2 * size + GiB:
            self.notes.append('1 GiB PUT skipped: %d MiB free in %s' % (free // MiB, self.run.tmp))
            return None
        src = self.run.path('big.src')
        with open(src, 'wb') as f:  # sparse: reading it costs no disk I/O, for both
            f.truncate(size)
        self.settle()
        st, ngx_bps, err = self.curl_put('http://127.0.0.1:%d/dav/big.bin' % self.ngx.port, src,
                                         {})
        if st not in (200, 201, 204):
            self.notes.append('nginx 1 GiB PUT: %s %s' % (st, err))
        try:
            os.unlink(os.path.join(self.dav, 'dav', 'big.bin'))
        except OSError:
            pass
        self.settle()
        pid = self.fg.pid
        reset = True
        try:
            with open('/proc/%d/clear_refs' % pid, 'w') as f:
                f.write('5')  # resets VmHWM to the current RSS
        except OSError:
            reset = False
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], fgtest.proc_status(pid, 'VmRSS') or 0)
                time.sleep(0.05)

        th = threading.Thread(target=sample)
        th.start()
        path = '/bench/big.bin'
        h = fgtest.sigv4_headers('PUT', self.fg.hostport, path)
        h.pop('host')
        st, fg_bps, err = self.curl_put('http://%s%s' % (self.fg.hostport, path), src, h)
        done.set()
        th.join()
        if st != 200:
            self.notes.append('floodgate 1 GiB PUT: %s %s' % (st, err))
            fg_bps = 0.0
        hwm = fgtest.proc_status(pid, 'VmHWM') or 0
        peak_kb = max(peak[0], hwm if reset else 0)
        if not reset:
            self.notes.append('could not reset VmHWM (clear_refs); peak RSS is sampled')
        name = 'PUT 1 GiB (curl)' if a.big_mib == 1024 else 'PUT %d MiB (curl)' % a.big_mib
        self.row(name, ngx_bps / 1e6, fg_bps / 1e6, 'MB/s', TARGETS['PUT 1 GiB (curl)'])
        return peak_kb

    # -- table --

    def row(self, name, n, f, unit, target, extra=''):
        ratio = (f / n) if n and f is not None else None
        verdict = '?' if ratio is None else ('ok' if ratio >= target else 'MISS')
        self.rows.append((name, '%.0f %s' % (n, unit) if n else '-',
                          '%.0f %s' % (f, unit) if f else '-',
                          '%.2fx' % ratio if ratio is not None else '-',
                          '>= %.1fx' % target, verdict, extra))

    def rss_row(self, name, n_kb, f_kb, limit_kb):
        verdict = 'ok' if f_kb and f_kb < limit_kb else 'MISS'
        self.rows.append((name, '%.1f MiB' % (n_kb / 1024) if n_kb else '-',
                          '%.1f MiB' % (f_kb / 1024), '-', '< %d MiB' % (limit_kb // 1024),
                          verdict, ''))

    def print_table(self):
        hdr = ('case', 'nginx', 'floodgate', 'ratio', 'target', '', 'notes')
        order = ('GET 4', 'GET 1', 'PUT 4', 'PUT', '  floodgate peak', 'idle RSS (at',
                 'idle RSS (after')
        rows = [hdr] + sorted(self.rows, key=lambda r: next(
            (i for i, o in enumerate(order) if r[0].startswith(o)), len(order)))
        w = [max(len(str(r[i])) for r in rows) for i in range(len(hdr))]
        for j, r in enumerate(rows):
            print('  '.join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
            if j == 0:
                print('  '.join('-' * x for x in w))
        for n in self.notes:
            print('note: ' + n)

    # -- main --

    def main(self):
        a = self.args
        try:
            self.start()
            time.sleep(1)
            idle_ngx = rss_tree_kb(self.ngx.pid)
            idle_fg = self.fg.rss_kb()
            print('nginx %s (1 worker) on :%d, floodgate %s on :%d; wrk -t%d -c%d -d%ds%s'
                  % (fgtest.NGINX, self.ngx.port, self.fg.bin, self.fg.port, a.threads,
                     a.connections, a.duration, ', servers pinned to one CPU' if self.pin_srv
                     else ''), flush=True)

            # the big PUT first, so its peak RSS is not the heap left by the wrk runs
            peak = self.case_big()
            print('PUT 1 GiB done', flush=True)
            ngx_get4 = self.write_reqs('ngx-get4k', ['GET\t/obj4k'])
            fg_get4 = self.write_reqs('fg-get4k', [self.fg_get_line('obj4k')])
            self.case_rps('GET 4 KiB', ngx_get4, fg_get4, 'static')
            print('GET 4 KiB done', flush=True)
            ngx_get1 = self.write_reqs('ngx-get1m', ['GET\t/obj1m'])
            fg_get1 = self.write_reqs('fg-get1m', [self.fg_get_line('obj1m')])
            self.case_rps('GET 1 MiB', ngx_get1, fg_get1, 'static')
            print('GET 1 MiB done', flush=True)

            n = a.put_keys
            ngx_put = self.write_reqs('ngx-put', ['PUT\t/dav/p/%07d' % i for i in range(n)])
            fg_put = self.write_reqs('fg-put', self.fg_put_lines(n, 'p'))
            self.case_rps('PUT 4 KiB (new keys)', ngx_put, fg_put, 'replay', 4 * KiB, n)
            print('PUT 4 KiB done', flush=True)

            if peak is not None:
                self.rss_row('  floodgate peak RSS', 0, peak, PEAK_RSS_MAX_KB)
            self.rss_row('idle RSS (at start)', idle_ngx, idle_fg, IDLE_RSS_MAX_KB)
            time.sleep(2)
            self.rows.append(('idle RSS (after runs)',
                              '%.1f MiB' % (rss_tree_kb(self.ngx.pid) / 1024),
                              '%.1f MiB' % ((self.fg.rss_kb() or 0) / 1024), '-', '(info)', '',
                              ''))
            print()
            self.print_table()
        finally:
            for p in self.run.procs:
                if p.alive():
                    p.stop(timeout=10)
            if a.keep:
                os.environ['FG_KEEP_TMP'] = '1'
            self.run.teardown()
        missed = [r for r in self.rows if r[5] == 'MISS']
        return 1 if (missed and a.strict) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--fg-bin', help='floodgate binary (default: $FG_BIN or build*/floodgate)')
    ap.add_argument('--duration', type=int, default=8, help='seconds per wrk run (8)')
    ap.add_argument('--connections', type=int, default=32, help='wrk -c (32)')
    ap.add_argument('--threads', type=int, default=1, help='wrk -t (1)')
    ap.add_argument('--put-keys', type=int, default=160000,
                    help='signed PUT requests prepared (160000; more are reused)')
    ap.add_argument('--big-mib', type=int, default=1024, help='size of the big PUT (1024)')
    ap.add_argument('--no-pin', dest='pin', action='store_false',
                    help='do not pin the servers to the last CPU and wrk/curl to the others')
    ap.add_argument('--strict', action='store_true', help='exit 1 when a target is missed')
    ap.add_argument('--keep', action='store_true', help='keep the temp dir')
    ap.add_argument('-v', '--verbose', action='store_true', help='print wrk output')
    a = ap.parse_args()
    for p in (fgtest.NGINX, WRK, fgtest.CURL):
        if not os.access(p, os.X_OK):
            die('%s is missing (apt-get install nginx wrk curl)' % p)
    v = subprocess.run([fgtest.NGINX, '-V'], capture_output=True, text=True)
    if 'http_dav_module' not in v.stderr + v.stdout:
        die('this nginx has no WebDAV module (dav_methods PUT): install nginx-full or '
            'nginx-extras')
    if not (a.fg_bin or fgtest.fg_bin()):
        die('floodgate binary not found: pass --fg-bin or set FG_BIN')
    sys.exit(Bench(a).main())


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""floodgate's bucket notification delivery on one machine, in one run (bench/README.md).

Starts a private redis-server, nginx as the webhook receiver (`return 204`, keep-alive), and
floodgate with two targets: `live` (the nginx receiver) and `dead` (a closed loopback port:
every delivery fails and is retried). Measures side by side:

  1. deliveries/s to the local receiver: N events piled up while Redis is stopped, then
     relayed and delivered; the rate between 10 % and 90 % delivered (from /metrics),
  2. nginx's own rate for the same POSTs (wrk), the machine's reference,
  3. PUT 4 KiB req/s into a bucket bound to the dead target vs a bucket with no
     configuration (wrk, alternating), whose ratio must stay >= 0.95, and the Redis memory
     each message held for the dead target takes.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, 'tests', 'integration'))
sys.path.insert(0, HERE)
import fgtest  # noqa: E402
from functions import (WRK, Client, abba, add_perf_args, cpu_ratio_note, die,  # noqa: E402
                       measured, med, move_to, pair_ratio, perf_start, perf_stop, pinning,
                       print_table, put_many, run_wrk, runs_note, signed_put_file)

KiB = 1024
TARGET_DELIVERIES_S = 5000.0
TARGET_DEAD_RATIO = 0.95

CONFIG = '''
redis: %(redis)s
targets:
  - id: live
    type: webhook
    endpoint: http://127.0.0.1:%(ngx)d/hook
    concurrency: %(conc)d
    timeout: 30s
  - id: dead
    type: webhook
    endpoint: http://127.0.0.1:%(dead)d/hook
    max_attempts: 1000
'''

NGX_SITE = '''
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location /hook { client_body_buffer_size 64k; return 204; }
    }
'''


def notif_xml(arn):
    return ('<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            '<QueueConfiguration><Id>all</Id><Queue>%s</Queue>'
            '<Event>s3:ObjectCreated:*</Event></QueueConfiguration>'
            '</NotificationConfiguration>' % arn).encode()


def metric(port, name):
    r = fgtest.admin(port, 'GET', '/metrics', auth=None)
    for line in r.body.decode().splitlines():
        if line.startswith(name + ' '):
            return float(line.rsplit(' ', 1)[1])
    return 0.0


class Bench:
    def __init__(self, a):
        self.a = a
        self.run = fgtest.Run('ntfbench')
        self.pin_srv, self.pin_cli = pinning(a.pin)
        self.rows = []
        self.notes = []

    def row(self, *r):
        self.rows.append(r)

    def start(self):
        run, a = self.run, self.a
        self.redis = fgtest.Redis(run)
        self.redis.argv = (self.pin_cli if self.a.redis_with_clients else self.pin_srv) + \
            self.redis.argv
        if self.a.redis_with_clients:
            self.notes.append('redis-server pinned with the clients, not with floodgate')
        self.redis.start()
        port = fgtest.free_port()
        # the receiver runs with the clients: it stands for another machine
        self.ngx = fgtest.Nginx(run, NGX_SITE % port, port=port, wrap=self.pin_cli,
                                log_level='warn')
        self.ngx.start()
        cfg = run.write_config('fg.yaml', CONFIG % {'redis': self.redis.url, 'ngx': port,
                                                    'dead': fgtest.free_port(),
                                                    'conc': a.concurrency})
        self.fg = fgtest.Floodgate(run, config=cfg, wrap=self.pin_srv)
        self.fg.start()
        p = self.fg.port
        for b, arn in (('live', 'arn:floodgate:sqs::live:webhook'),
                       ('dead', 'arn:floodgate:sqs::dead:webhook'), ('plain', None)):
            if fgtest.signed(p, 'PUT', b).status != 200:
                die('create bucket %s' % b)
            if arn:
                r = fgtest.signed(p, 'PUT', b, query=(('notification', ''),), body=notif_xml(arn))
                if r.status != 200:
                    die('notification configuration of %s: %s' % (b, r))
        self.http = Client(self.fg)
        if not fgtest.wait_for(lambda: self.http.health().get('redis') == 'connected', 15, 0.05):
            die('floodgate did not connect to Redis')

    def delivered(self):
        return metric(self.fg.port, 'floodgate_notification_delivered_total{target="live"}')

    def case_deliveries(self):
        a = self.a
        rates = []
        for rep in range(a.repeat):
            d0 = self.delivered()
            self.redis.signal(signal.SIGSTOP)
            try:
                put_many(self.fg, 'live', ['r%d/%07d' % (rep, i) for i in range(a.n)], b'x',
                         conns=8)
            finally:
                self.redis.signal(signal.SIGCONT)
            lo, hi = d0 + a.n * 0.1, d0 + a.n * 0.9
            t_lo = t_hi = None
            end = time.monotonic() + 300
            while time.monotonic() < end:
                d = self.delivered()
                now = time.monotonic()
                if t_lo is None and d >= lo:
                    t_lo, d_lo = now, d
                if d >= hi:
                    t_hi, d_hi = now, d
                    break
                time.sleep(0.01)
            if t_lo is None or t_hi is None or t_hi <= t_lo:
                self.notes.append('deliveries run %d did not complete: %d of %d' % (
                    rep, self.delivered() - d0, a.n))
                continue
            rates.append((d_hi - d_lo) / (t_hi - t_lo))
            fgtest.wait_for(lambda: self.delivered() >= d0 + a.n, 120, 0.05)
        r = med(rates) if rates else 0
        self.row('webhook deliveries/s (%d events, -c %d)' % (a.n, a.concurrency),
                 '%.0f/s' % r, '>= %.0f/s' % TARGET_DELIVERIES_S,
                 'ok' if r >= TARGET_DELIVERIES_S else 'MISS',
                 'runs %s; relay + delivery, Redis stopped while uploading' %
                 '/'.join('%.0f' % x for x in rates))

    def wrk(self, port, reqfile, body_size):
        return run_wrk(self.pin_cli, '127.0.0.1:%d' % port, reqfile, body_size,
                       self.a.connections, self.a.duration)

    def case_receiver(self):
        f = self.run.path('reqs-ngx')
        with open(f, 'w') as fh:
            fh.write('POST\t/hook\tcontent-type: application/json\n')
        w = self.wrk(self.ngx.port, f, 900)
        self.row('nginx receiver alone, POST 900 B (wrk)', '%.0f/s' % (w['rps'] or 0),
                 '(reference)', '', 'the receiver\'s own ceiling on this machine')

    def put_file(self, bucket, tag):
        return signed_put_file(self.run, self.fg, bucket, tag, self.a.put_keys)

    def dead_run(self, b, tag):
        """One wrk run into bucket `b`: measured()'s figures."""
        f = self.put_file(b, tag)
        subprocess.run(['sync'])
        time.sleep(1)
        prof = perf_start(self.a, '%s-%s' % (b, tag), (self.fg.pid, self.redis.pid))
        w, fig = measured(self.fg.pid, self.redis.pid,
                          lambda: self.wrk(self.fg.port, f, 4 * KiB))
        perf_stop(prof)
        if w['non2xx'] or w['errors']:
            self.notes.append('wrk %s: %d non-2xx %s' % (b, w['non2xx'], w['errors']))
        return fig

    def dead_pair(self, label, tag, where, beside):
        """Alternates wrk runs into `plain` and `dead` after a warm-up run that is not counted
        (the first run after a change of placement reads fast); rows for both and their
        ratio."""
        a = self.a
        res = {'plain': [], 'dead': []}
        self.dead_run('plain', tag + 'w')
        for rep, order in enumerate(abba(a.alternations)):
            for b in ({'a': 'plain', 'b': 'dead'}[case] for case in order):
                res[b].append(self.dead_run(b, '%s%d' % (tag, rep)))
        for b, name in (('plain', 'PUT 4 KiB, bucket without notifications'),
                        ('dead', 'PUT 4 KiB, bucket bound to a dead target')):
            self.row(name + label, '%.0f req/s' % med([r[0] for r in res[b]]), '', '',
                     runs_note(res[b]))
        ratio = pair_ratio([r[0] for r in res['plain']], [r[0] for r in res['dead']])
        self.row('  dead target / none', '%.3fx' % ratio, '>= %.2fx' % TARGET_DEAD_RATIO,
                 'ok' if ratio >= TARGET_DEAD_RATIO else 'MISS',
                 'median of %d back-to-back pairs; %s; Redis %s; %d retries so far' % (
                     len(res['plain']), cpu_ratio_note(res['plain'], res['dead'], beside),
                     where, metric(self.fg.port,
                                   'floodgate_notification_retried_total{target="dead"}')))

    def case_dead(self):
        if self.pin_srv and not self.a.redis_with_clients:
            # Redis beside the gateway (the pessimistic case), then on the clients' CPU (as in
            # production, where Redis runs elsewhere), in the same run
            self.dead_pair(' [Redis: gateway CPU]', 'g', 'on the gateway\'s CPU', True)
            move_to(self.pin_cli, self.redis.pid)
            try:
                self.dead_pair(' [Redis: other CPU]', 'o', 'on the clients\' CPU', False)
            finally:
                move_to(self.pin_srv, self.redis.pid)
        else:
            self.dead_pair('', 'w', 'placed by --redis-with-clients / --no-pin', False)
        self.held_memory()

    def held_memory(self):
        """Redis memory per message the dead target's stream holds (its whole backlog)."""
        n = int(self.redis.cli('XLEN', 'fg:ntf:dead') or 0)
        if n == 0:
            return
        used = int(self.redis.cli('MEMORY', 'USAGE', 'fg:ntf:dead', 'SAMPLES', '0') or 0)
        self.row('Redis memory per message held for the dead target', '%.0f B' % (used / n), '',
                 '', '%d messages in ntf:dead, %.1f MiB (MEMORY USAGE)' % (n, used / 2**20))

    def print_table(self):
        print_table(self.rows, self.notes)

    def main(self):
        try:
            self.start()
            print('floodgate on :%d, nginx receiver on :%d, redis-server on :%d%s' % (
                self.fg.port, self.ngx.port, self.redis.port,
                '; floodgate + redis pinned to CPU %s, nginx/wrk/this script to CPU %s' % (
                    self.pin_srv[-1], self.pin_cli[-1]) if self.pin_srv else ''), flush=True)
            for name, fn in (('receiver', self.case_receiver),
                             ('deliveries', self.case_deliveries), ('dead', self.case_dead)):
                if self.a.only and name not in self.a.only:
                    continue
                t0 = time.monotonic()
                fn()
                print('%s done (%.0f s)' % (name, time.monotonic() - t0), flush=True)
            print()
            self.print_table()
        finally:
            self.redis.signal(signal.SIGCONT)
            for p in self.run.procs:
                if p.alive():
                    p.stop(timeout=10)
            self.run.teardown()
        return 1 if (self.a.strict and any(r[3] == 'MISS' for r in self.rows)) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build', help='build dir (default: $FG_BUILD, else build/)')
    ap.add_argument('-n', type=int, default=20000, help='events delivered per run (20000)')
    ap.add_argument('--repeat', type=int, default=2, help='delivery runs (2)')
    ap.add_argument('--concurrency', type=int, default=32, help='deliveries in flight (32)')
    ap.add_argument('--duration', type=int, default=5, help='seconds per wrk run (5)')
    ap.add_argument('--connections', type=int, default=32, help='wrk -c (32)')
    ap.add_argument('--alternations', type=int, default=4,
                    help='plain/dead pairs of wrk runs, in ab/ba order (4)')
    ap.add_argument('--put-keys', type=int, default=60000, help='signed PUTs per wrk run')
    ap.add_argument('--no-pin', dest='pin', action='store_false')
    ap.add_argument('--redis-with-clients', action='store_true',
                    help='pin redis-server with the clients (Redis as another machine would '
                    'be), not on the gateway\'s CPU')
    ap.add_argument('--only', default='', metavar='CASES',
                    help='comma-separated cases to run: receiver, deliveries, dead (all)')
    add_perf_args(ap, 'floodgate and redis-server during each PUT run')
    ap.add_argument('--strict', action='store_true', help='exit 1 when a target is missed')
    a = ap.parse_args()
    a.only = [x.strip().lower() for x in a.only.split(',') if x.strip()]
    build = os.path.abspath(a.build or os.environ.get('FG_BUILD') or os.path.join(SRC, 'build'))
    os.environ['FG_BUILD'] = build
    os.environ['FG_BIN'] = os.path.join(build, 'floodgate')
    for p in (os.environ['FG_BIN'], fgtest.REDIS, WRK, fgtest.NGINX):
        if not os.access(p, os.X_OK):
            die('%s is missing' % p)
    sys.exit(Bench(a).main())


if __name__ == '__main__':
    main()

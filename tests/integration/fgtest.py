"""fgtest: the harness every tests/integration/test_*.py uses.

It starts the real floodgate (and nginx, redis-server) on free loopback ports inside one
temp dir, writes config files for the real clients (aws-cli, boto3, s3cmd, rclone), signs raw
requests for the hostile tests, prints TAP-ish progress and always tears down: every process
it started is killed (atexit, signals and `finally`), the temp dir is removed (set
FG_KEEP_TMP=1 to keep it). A test ends with `N passed, M failed`; exit 1 on any failure,
77 (ctest's SKIP_RETURN_CODE) when a client binary or module is missing.

Environment (set by ctest, see tests/CMakeLists.txt): FG_BIN (the floodgate binary),
FG_BUILD, FG_SRC; PYTHONPATH includes this directory.

Typical use:

    import fgtest
    run = fgtest.Run('awscli')
    run.require(fgtest.AWS)
    fg = run.floodgate()
    with run.section('bucket'):
        ...
        run.ok(cond, 'what must hold')
    run.finish()

Start processes from the main thread only: children get PR_SET_PDEATHSIG(SIGKILL), which
fires when the *thread* that forked them exits.
"""

import atexit
import base64
import binascii
import contextlib
import ctypes
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET

SKIP = 77

AWS = '/usr/bin/aws'
PYTHON = '/usr/bin/python3'
CURL = '/usr/bin/curl'
NGINX = '/usr/sbin/nginx'
S3CMD = '/usr/bin/s3cmd'
RCLONE = '/usr/bin/rclone'
REDIS = '/usr/bin/redis-server'
REDIS_CLI = '/usr/bin/redis-cli'

ACCESS_KEY = 'FGTESTAKIA0123456789'
# '/' and '+' on purpose: clients and servers must not mangle them.
SECRET_KEY = 'fgtest/Secret+Key/0123456789abcdefghijKLMN'
REGION = 'us-east-1'

UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
EMPTY_SHA256 = hashlib.sha256(b'').hexdigest()
S3_NS = '{http://s3.amazonaws.com/doc/2006-03-01/}'

MiB = 1024 * 1024


class Skip(Exception):
    """Raised to skip the whole test (exit 77)."""


# ---------------------------------------------------------------------------------------------
# paths


def src_dir():
    return os.environ.get('FG_SRC') or os.path.abspath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def fg_bin():
    """The floodgate binary: $FG_BIN, else the first build dir under the source tree."""
    b = os.environ.get('FG_BIN')
    if b:
        return os.path.abspath(b)
    cands = []
    if os.environ.get('FG_BUILD'):
        cands.append(os.environ['FG_BUILD'])
    src = src_dir()
    for d in sorted(os.listdir(src)):
        if d.startswith('build'):
            cands.append(os.path.join(src, d))
    for d in cands:
        for rel in ('floodgate', 'gateway/floodgate', 'bin/floodgate'):
            p = os.path.join(d, rel)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
    return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(MiB), b''):
            h.update(block)
    return h.hexdigest()


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts):
    """S3's ETag of a completed multipart upload: md5 of the parts' binary md5s, '-N'."""
    digests = b''.join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(digests).hexdigest(), len(parts))


def multipart_etag_file(path, chunk):
    parts_md5 = []
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            parts_md5.append(hashlib.md5(block).digest())
    return '"%s-%d"' % (hashlib.md5(b''.join(parts_md5)).hexdigest(), len(parts_md5))


def write_random_file(path, size, seed=None):
    """Random content (os.urandom, or a seeded generator when `seed` is given)."""
    import random
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rnd = random.Random(seed) if seed is not None else None
    with open(path, 'wb') as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(rnd.randbytes(n) if rnd else os.urandom(n))
            left -= n
    return path


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port, timeout=30.0, proc=None, host='127.0.0.1'):
    """True once `port` accepts a connection; False on timeout or when `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...) or None."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def tail(path, lines=30):
    try:
        with open(path, 'rb') as f:
            data = f.read()[-16384:]
        return data.decode('utf-8', 'replace').splitlines()[-lines:]
    except OSError:
        return []


def _pdeathsig():
    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _short(v, n=300):
    s = repr(v)
    return s if len(s) <= n else s[:n] + '...(%d chars)' % len(s)


# ---------------------------------------------------------------------------------------------
# processes


class Proc:
    """One child process in its own process group with stdout/stderr in files."""

    def __init__(self, run, name, argv, env=None, cwd=None):
        self.run = run
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.p = None
        self.stdout_path = os.path.join(run.tmp, '%s.stdout' % name)
        self.stderr_path = os.path.join(run.tmp, '%s.stderr' % name)

    def start(self):
        out = open(self.stdout_path, 'ab')
        err = open(self.stderr_path, 'ab')
        try:
            self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=err, env=self.env, cwd=self.cwd,
                                      start_new_session=True, preexec_fn=_pdeathsig)
        finally:
            out.close()
            err.close()
        if self not in self.run.procs:
            self.run.procs.append(self)
        return self

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def kill9(self):
        """SIGKILL the whole process group and reap."""
        if self.p is None:
            return
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to `timeout`, then SIGKILL the group. Returns the exit status."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        rc = self.p.poll()
        self.kill9()  # whatever is left in the group
        return rc

    def log_tail(self, lines=30):
        return ['%s stderr: %s' % (self.name, l) for l in tail(self.stderr_path, lines)]


class Floodgate(Proc):
    """The floodgate daemon on a free loopback port with its own data dir."""

    def __init__(self, run, name='floodgate', data_dir=None, config=None, args=(), env=None,
                 port=None, access=ACCESS_KEY, secret=SECRET_KEY, domain=None, wrap=()):
        self.bin = fg_bin()
        if not self.bin or not os.access(self.bin, os.X_OK):
            raise Skip('floodgate binary not found (set FG_BIN)')
        self.data_dir = data_dir or os.path.join(run.tmp, name + '-data')
        os.makedirs(self.data_dir, exist_ok=True)
        self.config = config
        self.extra = list(args)
        self.domain = domain
        self.wrap = list(wrap)  # e.g. ['taskset', '-c', '1']
        self.port = port or free_port()
        e = run.base_env()
        e['FLOODGATE_ACCESS_KEY'] = access
        e['FLOODGATE_SECRET_KEY'] = secret
        if env:
            e.update(env)
        super().__init__(run, name, self._argv(), env=e, cwd=run.tmp)
        # floodgate logs: error log on stderr, access log on stdout
        self.error_log = self.stderr_path
        self.access_log = self.stdout_path

    def _argv(self):
        argv = self.wrap + [self.bin, '--listen', '127.0.0.1:%d' % self.port, '--data-dir',
                            self.data_dir]
        if self.config:
            argv += ['--config', self.config]
        if self.domain:
            argv += ['--domain', self.domain]
        return argv + self.extra

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.port

    @property
    def hostport(self):
        return '127.0.0.1:%d' % self.port

    def start(self, timeout=30.0):
        self.argv = self._argv()
        super().start()
        if not wait_port(self.port, timeout, self.p):
            rc = self.p.poll()
            msg = 'floodgate did not accept connections on %s within %.0fs (%s)' % (
                self.hostport, timeout, 'exited %s' % rc if rc is not None else 'still running')
            for l in self.log_tail(20):
                print('# ' + l)
            raise RuntimeError(msg)
        return self

    def restart(self, timeout=30.0):
        """Start again on the same port and data dir (after kill9() or stop())."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def rss_kb(self):
        return proc_status(self.pid, 'VmRSS')

    def hwm_kb(self):
        return proc_status(self.pid, 'VmHWM')


class Nginx(Proc):
    """Real nginx, non-daemon, in a temp prefix. `site` is the text put inside http {}."""

    def __init__(self, run, site, name='nginx', port=None, worker_processes=1, wrap=(),
                 log_level='info'):
        self.port = port or free_port()
        self.prefix = os.path.join(run.tmp, name)
        for d in ('conf', 'logs', 'tmp'):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        self.conf = os.path.join(self.prefix, 'conf', 'nginx.conf')
        self.site = site
        user = 'user root root;\n' if os.geteuid() == 0 else ''
        p = self.prefix
        with open(self.conf, 'w') as f:
            f.write(
                '%sworker_processes %d;\n'
                'pid %s/logs/nginx.pid;\n'
                'error_log %s/logs/error.log %s;\n'
                'events { worker_connections 4096; }\n'
                'http {\n'
                '    default_type application/octet-stream;\n'
                '    access_log %s/logs/access.log;\n'
                '    client_body_temp_path %s/tmp/body;\n'
                '    proxy_temp_path %s/tmp/proxy;\n'
                '    fastcgi_temp_path %s/tmp/fastcgi;\n'
                '    uwsgi_temp_path %s/tmp/uwsgi;\n'
                '    scgi_temp_path %s/tmp/scgi;\n'
                '%s\n'
                '}\n' % (user, worker_processes, p, p, log_level, p, p, p, p, p, p, site))
        argv = list(wrap) + [NGINX, '-p', p + '/', '-c', self.conf, '-e',
                             p + '/logs/error.log', '-g', 'daemon off;']
        super().__init__(run, name, argv, env=run.base_env(), cwd=p)
        self.error_log = os.path.join(p, 'logs', 'error.log')
        self.access_log = os.path.join(p, 'logs', 'access.log')

    def test_config(self):
        r = subprocess.run([NGINX, '-t', '-p', self.prefix + '/', '-c', self.conf, '-e',
                            self.error_log], capture_output=True, text=True)
        return r.returncode, (r.stdout + r.stderr).strip()

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.port

    def start(self, timeout=15.0):
        rc, out = self.test_config()
        if rc != 0:
            raise RuntimeError('nginx -t failed: ' + out)
        super().start()
        if not wait_port(self.port, timeout, self.p):
            for l in self.log_tail(20) + tail(self.error_log, 20):
                print('# ' + l)
            raise RuntimeError('nginx did not start on port %d' % self.port)
        return self

    def log_tail(self, lines=30):
        return super().log_tail(lines) + ['nginx error.log: ' + l
                                          for l in tail(self.error_log, lines)]


def render_site(template, listen, upstream):
    """deploy/nginx/floodgate.conf with the lines marked `# FLOODGATE_LISTEN` and
    `# FLOODGATE_UPSTREAM` pointed at `listen` ("127.0.0.1:8080") and `upstream`."""
    out, n_listen, n_up = [], 0, 0
    for line in template.splitlines():
        if line.lstrip().startswith('#'):
            pass
        elif re.search(r'#\s*FLOODGATE_LISTEN\b', line):
            line = re.sub(r'listen\s+[^;]+;', 'listen %s;' % listen, line)
            n_listen += 1
        elif re.search(r'#\s*FLOODGATE_UPSTREAM\b', line):
            line = re.sub(r'server\s+[^;\s]+', 'server %s' % upstream, line)
            n_up += 1
        out.append(line)
    if n_listen != 1 or n_up != 1:
        raise RuntimeError('nginx template: expected one FLOODGATE_LISTEN and one '
                           'FLOODGATE_UPSTREAM line, found %d and %d' % (n_listen, n_up))
    return '\n'.join(out) + '\n'


class Redis(Proc):
    """A private redis-server on a free loopback port, no persistence unless asked."""

    def __init__(self, run, name='redis', aof=False):
        self.port = free_port()
        d = os.path.join(run.tmp, name + '-data')
        os.makedirs(d, exist_ok=True)
        argv = [REDIS, '--port', str(self.port), '--bind', '127.0.0.1', '--dir', d,
                '--save', '', '--daemonize', 'no', '--appendonly', 'yes' if aof else 'no']
        if aof:
            argv += ['--appendfsync', 'always']
        super().__init__(run, name, argv, env=run.base_env(), cwd=d)

    def start(self, timeout=15.0):
        super().start()
        if not wait_port(self.port, timeout, self.p):
            raise RuntimeError('redis-server did not start')
        return self

    @property
    def url(self):
        return 'redis://127.0.0.1:%d' % self.port

    def cli(self, *args, timeout=30):
        """redis-cli with raw output; the reply's text, stripped."""
        r = subprocess.run([REDIS_CLI, '-p', str(self.port), '--raw'] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return r.stdout.decode('utf-8', 'replace').strip()


class Receiver:
    """A webhook receiver in this process: an HTTP/1.1 server on a loopback port (keep-alive,
    one thread per connection) that records every POST (headers, parsed JSON body) and answers
    with `status` after `delay` seconds. stop() closes it (connections refused); start() opens
    it again on the same port."""

    def __init__(self, port=None, status=200, delay=0.0):
        import http.server
        import threading
        self.port = port or free_port()
        self.status = status
        self.delay = delay
        self.lock = threading.Lock()
        self.events = []  # (headers dict, body bytes)
        self.server = None
        self.thread = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('content-length') or 0)
                body = self.rfile.read(n)
                if outer.server is None:  # stopped: kept-alive connections die too
                    self.close_connection = True
                    return
                if outer.delay:
                    time.sleep(outer.delay)
                status = outer.status
                if status < 300:
                    with outer.lock:
                        outer.events.append(({k.lower(): v for k, v in self.headers.items()},
                                             body))
                self.send_response(status)
                self.send_header('content-length', '0')
                self.end_headers()
        self.handler = Handler

    def start(self):
        import http.server
        import threading

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True
        self.server = Server(('127.0.0.1', self.port), self.handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return 'http://127.0.0.1:%d/hook' % self.port

    def bodies(self):
        import json
        with self.lock:
            out = []
            for h, b in self.events:
                try:
                    out.append((h, json.loads(b)))
                except ValueError:
                    out.append((h, None))
            return out

    def count(self):
        with self.lock:
            return len(self.events)


def worker_bin():
    b = os.environ.get('FG_BUILD')
    return os.path.join(b, 'floodgate-worker') if b else None


class Worker(Proc):
    """A floodgate-worker joined to `pools` of a gateway, on a Redis."""

    def __init__(self, run, redis, fg, name='worker', pools=('default',), concurrency=2,
                 visibility='30s', args=(), access=ACCESS_KEY, secret=SECRET_KEY):
        b = worker_bin()
        if not b or not os.access(b, os.X_OK):
            raise Skip('floodgate-worker binary not found (set FG_BUILD)')
        argv = [b, '--redis', redis.url, '--endpoint', fg.endpoint, '--concurrency',
                str(concurrency), '--visibility-timeout', visibility, '--id', name,
                '--work-dir', run.tmp]
        for p in pools:
            argv += ['--pool', p]
        e = run.base_env()
        e['FLOODGATE_ACCESS_KEY'] = access
        e['FLOODGATE_SECRET_KEY'] = secret
        super().__init__(run, name, argv + list(args), env=e, cwd=run.tmp)


# ---------------------------------------------------------------------------------------------
# the run: results, temp dir, teardown

_runs = []


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


class Run:
    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix='fgtest-%s-' % name)
        self.procs = []
        self.n = 0
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.t0 = time.monotonic()
        self._torn_down = False
        _runs.append(self)
        atexit.register(self.teardown)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, _on_signal)
        # boto3 in this process must not read the user's AWS config
        for k in list(os.environ):
            if k.startswith('AWS_'):
                del os.environ[k]
        empty = os.path.join(self.tmp, 'aws-empty')
        open(empty, 'w').close()
        os.environ['AWS_CONFIG_FILE'] = empty
        os.environ['AWS_SHARED_CREDENTIALS_FILE'] = empty
        os.environ['AWS_EC2_METADATA_DISABLED'] = 'true'
        print('# %s: temp dir %s' % (name, self.tmp), flush=True)

    # -- environment --

    def base_env(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith('AWS_')}
        e['AWS_EC2_METADATA_DISABLED'] = 'true'
        e.setdefault('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')
        e['LC_ALL'] = 'C.UTF-8'
        return e

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def require(self, *paths):
        for p in paths:
            if not (os.path.isfile(p) and os.access(p, os.X_OK)):
                self.skip('%s not installed' % p)

    def require_module(self, *mods):
        import importlib
        for m in mods:
            try:
                importlib.import_module(m)
            except ImportError:
                self.skip('python module %s missing' % m)

    # -- results --

    def ok(self, cond, desc, detail=None):
        self.n += 1
        if cond:
            self.passed += 1
            print('ok %d - %s' % (self.n, desc), flush=True)
        else:
            self.failed += 1
            self.failures.append(desc)
            print('not ok %d - %s' % (self.n, desc), flush=True)
            if detail:
                for l in str(detail).splitlines()[:20]:
                    print('#   ' + l, flush=True)
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, 'got  %s\nwant %s' % (_short(got), _short(want)))

    def note(self, msg):
        for l in str(msg).splitlines():
            print('# ' + l, flush=True)

    @contextlib.contextmanager
    def section(self, desc):
        """Groups checks; an unexpected exception inside counts as one failure and the
        test goes on with the next section."""
        self.note('--- %s' % desc)
        try:
            yield
        except (Skip, SystemExit, KeyboardInterrupt):
            raise
        except Exception as e:
            tb = traceback.format_exc().splitlines()
            self.ok(False, '%s: unexpected %s: %s' % (desc, type(e).__name__, _short(str(e), 400)),
                    '\n'.join(tb[-12:]))

    def skip(self, reason):
        print('1..0 # SKIP %s' % reason, flush=True)
        self.teardown()
        os._exit(SKIP)

    def finish(self):
        dt = time.monotonic() - self.t0
        if self.failed:
            for p in self.procs:
                for l in p.log_tail(25):
                    self.note(l)
            for f in self.failures:
                self.note('FAILED: ' + f)
        if self.n == 0:
            self.ok(False, 'no checks ran')
        print('1..%d' % self.n)
        print('# %s took %.1fs' % (self.name, dt))
        print('%d passed, %d failed' % (self.passed, self.failed), flush=True)
        self.teardown()
        sys.exit(1 if self.failed else 0)

    def main(self, body):
        """Runs body(run) with guaranteed teardown; Skip → 77; then finish()."""
        try:
            body(self)
        except Skip as e:
            self.skip(str(e))
        except SystemExit:
            raise
        except BaseException as e:
            self.ok(False, 'test aborted: %s: %s' % (type(e).__name__, _short(str(e), 400)),
                    traceback.format_exc())
        finally:
            for p in self.procs:
                if p.alive():
                    p.stop(timeout=5)
            self.check_sanitizers()
        self.finish()

    def check_sanitizers(self):
        """Fails the run if any floodgate printed a sanitizer report (ASan, LSan, UBSan)."""
        marks = (b'ERROR: AddressSanitizer', b'ERROR: LeakSanitizer', b'runtime error:')
        for p in self.procs:
            if not isinstance(p, Floodgate) or not os.path.exists(p.stderr_path):
                continue
            with open(p.stderr_path, 'rb') as f:
                data = f.read()
            hits = [m.decode() for m in marks if m in data]
            self.ok(not hits, '%s: no sanitizer report in its stderr' % p.name,
                    ', '.join(hits) if hits else None)

    def teardown(self):
        if self._torn_down:
            return
        self._torn_down = True
        for p in reversed(self.procs):
            try:
                p.kill9()
            except Exception:
                pass
        if os.environ.get('FG_KEEP_TMP'):
            print('# kept %s' % self.tmp, flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- process helpers --

    def floodgate(self, start=True, **kw):
        fg = Floodgate(self, **kw)
        return fg.start() if start else fg

    def write_config(self, name, text):
        p = self.path(name)
        with open(p, 'w') as f:
            f.write(text)
        return p

    def nginx_for(self, fg, name='nginx'):
        """nginx with deploy/nginx/floodgate.conf in front of `fg`, started."""
        tpl = os.path.join(src_dir(), 'deploy', 'nginx', 'floodgate.conf')
        with open(tpl) as f:
            text = f.read()
        port = free_port()
        site = render_site(text, '127.0.0.1:%d' % port, fg.hostport)
        return Nginx(self, site, name=name, port=port).start()

    # -- clients --

    def aws_cli(self, endpoint, name='default', access=ACCESS_KEY, secret=SECRET_KEY,
                chunk='8MB'):
        return AwsCli(self, endpoint, name, access, secret, chunk)

    def s3cmd_config(self, hostport, sigv2, name=None, access=ACCESS_KEY, secret=SECRET_KEY):
        p = self.path(name or ('s3cmd-v2.cfg' if sigv2 else 's3cmd-v4.cfg'))
        with open(p, 'w') as f:
            f.write('[default]\n'
                    'access_key = %s\n'
                    'secret_key = %s\n'
                    'host_base = %s\n'
                    'host_bucket = %s\n'
                    'bucket_location = %s\n'
                    'use_https = False\n'
                    'check_ssl_certificate = False\n'
                    'signature_v2 = %s\n'
                    'multipart_chunk_size_mb = 5\n'
                    'progress_meter = False\n'
                    'preserve_attrs = True\n'
                    'guess_mime_type = True\n'
                    'socket_timeout = 60\n' % (access, secret, hostport, hostport, REGION,
                                               'True' if sigv2 else 'False'))
        return p

    def rclone_config(self, endpoint, remote='fg', access=ACCESS_KEY, secret=SECRET_KEY):
        p = self.path('rclone.conf')
        with open(p, 'w') as f:
            f.write('[%s]\n'
                    'type = s3\n'
                    'provider = Other\n'
                    'env_auth = false\n'
                    'access_key_id = %s\n'
                    'secret_access_key = %s\n'
                    'endpoint = %s\n'
                    'region = %s\n'
                    'v2_auth = false\n'
                    'force_path_style = true\n' % (remote, access, secret, endpoint, REGION))
        return p

    def cmd(self, argv, input=None, timeout=600, env=None, cwd=None, binary=False):
        """Runs a client; CompletedProcess with str stdout/stderr (bytes stdout when
        `binary`)."""
        r = subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                           env=env or self.base_env(), cwd=cwd or self.tmp)
        if not binary:
            r.stdout = r.stdout.decode('utf-8', 'replace')
        r.stderr = r.stderr.decode('utf-8', 'replace')
        return r


class AwsCli:
    """/usr/bin/aws with its own config and credentials files in the temp dir."""

    def __init__(self, run, endpoint, name, access, secret, chunk):
        self.run = run
        self.endpoint = endpoint
        d = run.path('aws-' + name)
        os.makedirs(d, exist_ok=True)
        self.config = os.path.join(d, 'config')
        self.credentials = os.path.join(d, 'credentials')
        with open(self.config, 'w') as f:
            f.write('[default]\n'
                    'region = %s\n'
                    'output = json\n'
                    'cli_pager =\n'
                    's3 =\n'
                    '    addressing_style = path\n'
                    '    signature_version = s3v4\n'
                    '    multipart_threshold = %s\n'
                    '    multipart_chunksize = %s\n' % (REGION, chunk, chunk))
        with open(self.credentials, 'w') as f:
            f.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n'
                    % (access, secret))
        self.env = run.base_env()
        self.env.update({
            'AWS_CONFIG_FILE': self.config,
            'AWS_SHARED_CREDENTIALS_FILE': self.credentials,
            'AWS_EC2_METADATA_DISABLED': 'true',
            'AWS_PAGER': '',
            'AWS_RETRY_MODE': 'standard',
            'AWS_MAX_ATTEMPTS': '1',
            'HOME': d,
        })

    def __call__(self, *args, input=None, timeout=600, binary=False):
        return self.run.cmd([AWS, '--endpoint-url', self.endpoint] + [str(a) for a in args],
                            input=input, timeout=timeout, env=self.env, binary=binary)

    def json(self, *args, **kw):
        """Parsed JSON output; raises RuntimeError with stderr on failure."""
        import json
        r = self(*args, **kw)
        if r.returncode != 0:
            raise RuntimeError('aws %s failed (%d): %s' % (' '.join(map(str, args)),
                                                            r.returncode, r.stderr.strip()))
        return json.loads(r.stdout) if r.stdout.strip() else {}


# ---------------------------------------------------------------------------------------------
# boto3


def boto3_client(endpoint, sig='s3v4', access=ACCESS_KEY, secret=SECRET_KEY, attempts=1,
                 pool=10, read_timeout=120):
    """An S3 client with path-style addressing. sig: 's3v4', 's3' (SigV2) or
    botocore.UNSIGNED for anonymous."""
    import boto3
    from botocore.config import Config
    sess = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                                 region_name=REGION)
    cfg = Config(signature_version=sig, s3={'addressing_style': 'path'},
                 retries={'mode': 'standard', 'total_max_attempts': attempts},
                 connect_timeout=10, read_timeout=read_timeout, max_pool_connections=pool)
    return sess.client('s3', endpoint_url=endpoint, config=cfg)


def client_error(fn, *args, **kw):
    """Calls fn; returns (http_status, error_code, response) of the ClientError it raised,
    or (None, None, result) when it succeeded."""
    from botocore.exceptions import ClientError
    try:
        return None, None, fn(*args, **kw)
    except ClientError as e:
        r = e.response
        return (r.get('ResponseMetadata', {}).get('HTTPStatusCode'),
                r.get('Error', {}).get('Code'), r)


# ---------------------------------------------------------------------------------------------
# SigV4 / SigV2 signing for raw requests


def uri_encode(s, slash=True):
    """AWS URI encoding: unreserved A-Za-z0-9-._~ kept, the rest %XX (upper hex);
    '/' kept when `slash`."""
    if isinstance(s, str):
        s = s.encode('utf-8')
    return urllib.parse.quote(s, safe='/~' if slash else '~')


def key_path(bucket, key=None):
    return '/' + bucket + ('/' + uri_encode(key) if key is not None else '')


def canonical_query(query):
    pairs = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in query)
    return '&'.join('%s=%s' % kv for kv in pairs)


_signing_keys = {}


def _signing_key(secret, date, region, service='s3'):
    k = (secret, date, region, service)
    key = _signing_keys.get(k)
    if key is None:
        key = hmac.new(('AWS4' + secret).encode(), date.encode(), hashlib.sha256).digest()
        for part in (region, service, 'aws4_request'):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        _signing_keys[k] = key
    return key


_NOSIGN = {'expect', 'user-agent', 'content-length', 'transfer-encoding', 'connection'}


def sigv4_headers(method, host, path, query=(), headers=None, payload_hash=UNSIGNED_PAYLOAD,
                  access=ACCESS_KEY, secret=SECRET_KEY, region=REGION, when=None):
    """Returns the request headers (given ones + host, x-amz-date, x-amz-content-sha256,
    authorization) for a SigV4 header-auth request. `path` is the encoded path exactly as
    sent; `query` a list of raw (name, value) pairs; `when` a UTC datetime (default now)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime('%Y%m%dT%H%M%SZ')
    date = amz_date[:8]
    h = {k.lower(): str(v) for k, v in (headers or {}).items()}
    h['host'] = host
    h['x-amz-date'] = amz_date
    h['x-amz-content-sha256'] = payload_hash
    signed = sorted(k for k in h if k not in _NOSIGN)
    canon_headers = ''.join('%s:%s\n' % (k, ' '.join(h[k].split())) for k in signed)
    creq = '\n'.join([method, path, canonical_query(query), canon_headers, ';'.join(signed),
                      payload_hash])
    scope = '%s/%s/s3/aws4_request' % (date, region)
    sts = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope,
                     hashlib.sha256(creq.encode('utf-8')).hexdigest()])
    sig = hmac.new(_signing_key(secret, date, region), sts.encode(), hashlib.sha256).hexdigest()
    h['authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
        access, scope, ';'.join(signed), sig)
    return h


def presign_v4(method, host, path, expires=300, query=(), access=ACCESS_KEY,
               secret=SECRET_KEY, region=REGION, when=None):
    """Query-auth (presigned) request target for `path`: 'path?X-Amz-...&X-Amz-Signature='."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime('%Y%m%dT%H%M%SZ')
    date = amz_date[:8]
    scope = '%s/%s/s3/aws4_request' % (date, region)
    q = list(query) + [('X-Amz-Algorithm', 'AWS4-HMAC-SHA256'),
                       ('X-Amz-Credential', '%s/%s' % (access, scope)),
                       ('X-Amz-Date', amz_date), ('X-Amz-Expires', str(expires)),
                       ('X-Amz-SignedHeaders', 'host')]
    cq = canonical_query(q)
    creq = '\n'.join([method, path, cq, 'host:%s\n' % host, 'host', UNSIGNED_PAYLOAD])
    sts = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope,
                     hashlib.sha256(creq.encode('utf-8')).hexdigest()])
    sig = hmac.new(_signing_key(secret, date, region), sts.encode(), hashlib.sha256).hexdigest()
    return '%s?%s&X-Amz-Signature=%s' % (path, cq, sig)


def sigv2_headers(method, path, headers=None, access=ACCESS_KEY, secret=SECRET_KEY,
                  subresource=''):
    """SigV2 header auth (Authorization: AWS key:sig). `path` as sent, without query;
    `subresource` e.g. '?acl'."""
    import email.utils
    h = {k.lower(): str(v) for k, v in (headers or {}).items()}
    h.setdefault('date', email.utils.formatdate(usegmt=True))
    amz = sorted((k, h[k]) for k in h if k.startswith('x-amz-'))
    sts = '\n'.join([method, h.get('content-md5', ''), h.get('content-type', ''),
                     h['date']] + ['%s:%s' % kv for kv in amz] + [path + subresource])
    sig = binascii.b2a_base64(hmac.new(secret.encode(), sts.encode('utf-8'),
                                       hashlib.sha1).digest(), newline=False).decode()
    h['authorization'] = 'AWS %s:%s' % (access, sig)
    return h


# ---------------------------------------------------------------------------------------------
# raw HTTP/1.1


class Response:
    def __init__(self, status, reason, headers, body, raw_head=b''):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> last value
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    @property
    def error_code(self):
        return error_code(self.body)

    def __repr__(self):
        return '<Response %s %s %s>' % (self.status, self.error_code, _short(self.body, 200))


def error_code(body):
    """The <Code> of an S3 error document, or None."""
    if not body:
        return None
    m = re.search(rb'<Code>([^<]*)</Code>', body)
    return m.group(1).decode('utf-8', 'replace') if m else None


class Conn:
    """A raw loopback connection that sends bytes as given and parses responses."""

    def __init__(self, port, host='127.0.0.1', timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''
        self.closed_by_peer = False

    @classmethod
    def wrap(cls, sock, buf=b''):
        """A Conn over an already connected socket (and bytes already read from it)."""
        c = cls.__new__(cls)
        c.sock, c.buf, c.closed_by_peer = sock, buf, False
        return c

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(262144)
        if not d:
            self.closed_by_peer = True
            raise EOFError('connection closed by peer')
        self.buf += d

    def _line(self):
        while b'\r\n' not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_response(self, head=False):
        """One response (a 1xx included: the caller loops). EOFError if the peer closed
        before a status line."""
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        head_bytes = self.buf[:self.buf.index(b'\r\n\r\n') + 4]
        status_line = self._line()
        parts = status_line.decode('latin-1').split(' ', 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ''
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode('latin-1').partition(':')
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200 or head or status in (204, 304):
            return Response(status, reason, headers, b'', head_bytes)
        if headers.get('transfer-encoding', '').lower() == 'chunked':
            body = b''
            while True:
                size = int(self._line().split(b';')[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._line()
        elif 'content-length' in headers:
            body = self._exact(int(headers['content-length']))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b''
        return Response(status, reason, headers, body, head_bytes)

    def final_response(self, head=False):
        """Skips 1xx responses."""
        while True:
            r = self.read_response(head)
            if r.status >= 200:
                return r

    def closed(self, timeout=2.0):
        """True when the peer closes (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(port, method, target, headers=None, body=b'', host=None, timeout=30.0,
            head=False):
    """One request on a fresh connection; the final Response."""
    host = host or '127.0.0.1:%d' % port
    h = {'host': host}
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    if body or method in ('PUT', 'POST'):
        h.setdefault('content-length', str(len(body)))
    h.setdefault('connection', 'close')
    req = '%s %s HTTP/1.1\r\n' % (method, target) + ''.join(
        '%s: %s\r\n' % kv for kv in h.items()) + '\r\n'
    c = Conn(port, timeout=timeout)
    try:
        c.send(req.encode('utf-8') + body)
        return c.final_response(head=head or method == 'HEAD')
    finally:
        c.close()


def admin(port, method, path, body=b'', auth=(ACCESS_KEY, SECRET_KEY), headers=None,
          timeout=60.0):
    """An admin API call with HTTP basic auth (auth None: none); the final Response."""
    h = dict(headers or {})
    if auth is not None:
        h['authorization'] = 'Basic ' + base64.b64encode(
            ('%s:%s' % auth).encode()).decode()
    if isinstance(body, str):
        body = body.encode()
    return request(port, method, path, headers=h, body=body, timeout=timeout)


def wait_for(fn, timeout=60.0, interval=0.1):
    """Polls fn() until it returns a true value (returned) or `timeout` passes (None)."""
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            return None
        time.sleep(interval)


def jobs(port, svc):
    """GET /system/logs/{svc}: {job id: {status, ...}}, {} when the call fails."""
    r = admin(port, 'GET', '/system/logs/%s' % svc)
    return json.loads(r.body) if r.status == 200 else {}


def job_statuses(port, svc):
    """How many of svc's jobs are in each status: {status: count}."""
    out = {}
    for j in jobs(port, svc).values():
        out[j['status']] = out.get(j['status'], 0) + 1
    return out


def wait_jobs(port, svc, n, status='succeeded', timeout=300, interval=0.5):
    """Waits until at least n of svc's jobs are in `status`; true when they are."""
    return wait_for(lambda: job_statuses(port, svc).get(status, 0) >= n, timeout, interval)


def signed(port, method, bucket=None, key=None, query=(), headers=None, body=b'',
           sign_payload=True, access=ACCESS_KEY, secret=SECRET_KEY, when=None, path=None,
           timeout=30.0):
    """A SigV4-signed request on a fresh connection; the final Response."""
    host = '127.0.0.1:%d' % port
    if path is None:
        path = '/' if bucket is None else key_path(bucket, key)
    ph = hashlib.sha256(body).hexdigest() if sign_payload else UNSIGNED_PAYLOAD
    h = sigv4_headers(method, host, path, query, headers, ph, access, secret, when=when)
    target = path + ('?' + canonical_query(query) if query else '')
    return request(port, method, target, h, body, host, timeout)


def list_keys(port, bucket, prefix=''):
    """All keys of `bucket` via signed ListObjectsV2 (raw, paginated)."""
    keys, token = [], None
    while True:
        q = [('list-type', '2'), ('encoding-type', 'url')]
        if prefix:
            q.append(('prefix', prefix))
        if token:
            q.append(('continuation-token', token))
        r = signed(port, 'GET', bucket, query=q)
        if r.status != 200:
            raise RuntimeError('ListObjectsV2 %s: %s' % (bucket, r))
        root = ET.fromstring(r.body)
        for c in root.iter(S3_NS + 'Contents'):
            keys.append(urllib.parse.unquote_plus(c.find(S3_NS + 'Key').text))
        if root.findtext(S3_NS + 'IsTruncated') != 'true':
            return keys
        token = root.findtext(S3_NS + 'NextContinuationToken')

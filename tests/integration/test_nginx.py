"""Real nginx with deploy/nginx/floodgate.conf (listen and upstream substituted) in front of a
real floodgate, driven by aws-cli through nginx: mb, cp small, cp 50 MiB multipart up and
down, streaming upload from stdin, odd keys, ls, presign + curl, rm, rb.

Run: ctest -L integration -R integration.nginx (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_nginx.py).
"""
import os

import fgtest
from fgtest import MiB

CHUNK = 8 * MiB


def body(run):
    run.require(fgtest.NGINX, fgtest.AWS, fgtest.CURL)
    fg = run.floodgate()
    ngx = run.nginx_for(fg)
    run.note('nginx on %s -> floodgate on %s' % (ngx.endpoint, fg.endpoint))
    aws = run.aws_cli(ngx.endpoint)
    b = 'nginx-bucket'

    small = fgtest.write_random_file(run.path('small.bin'), 4321)
    big = fgtest.write_random_file(run.path('big.bin'), 50 * MiB)

    def ok_rc(r, desc):
        return run.ok(r.returncode == 0, desc, 'rc %d\n%s' % (r.returncode, r.stderr[-2000:]))

    with run.section('through nginx'):
        ok_rc(aws('s3', 'mb', 's3://' + b), 'mb via nginx')
        ok_rc(aws('s3', 'cp', small, 's3://%s/small.bin' % b), 'cp small up via nginx')
        out = run.path('small.out')
        ok_rc(aws('s3', 'cp', 's3://%s/small.bin' % b, out), 'cp small down via nginx')
        run.eq(fgtest.sha256_file(out), fgtest.sha256_file(small), 'small sha256 equal')

        ok_rc(aws('s3', 'cp', big, 's3://%s/big.bin' % b), 'cp 50 MiB up via nginx (multipart)')
        h = aws.json('s3api', 'head-object', '--bucket', b, '--key', 'big.bin')
        run.eq(h.get('ETag'), fgtest.multipart_etag_file(big, CHUNK), '50 MiB multipart ETag')
        out = run.path('big.out')
        ok_rc(aws('s3', 'cp', 's3://%s/big.bin' % b, out), 'cp 50 MiB down via nginx')
        run.eq(fgtest.sha256_file(out), fgtest.sha256_file(big), '50 MiB sha256 equal')
        os.unlink(out)

        data = os.urandom(9 * MiB + 3)
        ok_rc(aws('s3', 'cp', '-', 's3://%s/stdin.bin' % b, input=data),
              'cp - (stdin, unknown length) via nginx')
        r = aws('s3', 'cp', 's3://%s/stdin.bin' % b, '-', binary=True)
        run.ok(r.returncode == 0 and r.stdout == data, 'stdin upload reads back identical')

        for key in ('sp ace/ünï.txt', 'a//b', 'pct%41', 'under_score+plus'):
            ok_rc(aws('s3api', 'put-object', '--bucket', b, '--key', key, '--body', small,
                      '--metadata', 'my_key=v'), 'put-object %r via nginx' % key)
            h = aws.json('s3api', 'head-object', '--bucket', b, '--key', key)
            run.eq(h.get('Metadata'), {'my_key': 'v'},
                   'head-object %r via nginx keeps x-amz-meta-my_key' % key)

        r = aws('s3', 'ls', 's3://%s/' % b)
        names = sorted(l.split()[-1] for l in r.stdout.splitlines())
        run.ok('small.bin' in names and 'big.bin' in names and 'stdin.bin' in names,
               'ls via nginx lists the objects', r.stdout)

        r = aws('s3', 'presign', 's3://%s/small.bin' % b, '--expires-in', '300')
        url = r.stdout.strip()
        run.ok(url.startswith(ngx.endpoint + '/'), 'presigned URL points at nginx', url)
        out = run.path('presigned.out')
        c = run.cmd([fgtest.CURL, '-sS', '-o', out, '-w', '%{http_code}', url])
        run.eq(c.stdout.strip(), '200', 'curl GET of the presigned URL via nginx: 200')
        run.eq(fgtest.sha256_file(out), fgtest.sha256_file(small), 'presigned body sha256 equal')
        c = run.cmd([fgtest.CURL, '-sS', '-o', '/dev/null', '-D', '-', '-r', '0-99', url])
        run.ok(' 206' in c.stdout.splitlines()[0] if c.stdout else False,
               'ranged GET via nginx -> 206', c.stdout[:200])

        c = run.cmd([fgtest.CURL, '-sS', '-o', '/dev/null', '-w', '%{http_code}',
                     ngx.endpoint + '/' + b + '/small.bin'])
        run.eq(c.stdout.strip(), '403', 'anonymous GET via nginx: 403 from floodgate')

        ok_rc(aws('s3', 'rm', 's3://%s/small.bin' % b), 'rm via nginx')
        r = aws('s3api', 'head-object', '--bucket', b, '--key', 'small.bin')
        run.ok(r.returncode != 0, 'removed object is gone')
        ok_rc(aws('s3', 'rm', '--recursive', 's3://' + b), 'rm --recursive via nginx')
        ok_rc(aws('s3', 'rb', 's3://' + b), 'rb via nginx')
        r = aws('s3', 'ls')
        run.ok(b not in r.stdout, 'bucket gone', r.stdout)

    with run.section('logs'):
        run.ok(os.path.getsize(ngx.access_log) > 0, 'nginx access log written')
        errs = [l for l in fgtest.tail(ngx.error_log, 200) if '[error]' in l or '[crit]' in l
                or '[emerg]' in l]
        run.ok(not errs, 'no errors in the nginx error log', '\n'.join(errs[:10]))
        run.ok(ngx.alive() and fg.alive(), 'nginx and floodgate still running')


if __name__ == '__main__':
    fgtest.Run('nginx').main(body)

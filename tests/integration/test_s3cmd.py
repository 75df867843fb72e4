"""s3cmd against a real floodgate, with SigV2 and with SigV4 (signature_v2 True / False):
mb, put (small and multipart), ls, get, info, del, sync of a directory tree both ways, rb.

Run: ctest -L integration -R integration.s3cmd (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_s3cmd.py).
"""
import os
import shutil

import fgtest
from fgtest import MiB


def make_tree(root, files):
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)


def read_tree(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = fgtest.sha256_file(p)
    return out


def body(run):
    run.require(fgtest.S3CMD)
    fg = run.floodgate()
    small = fgtest.write_random_file(run.path('small.bin'), 2000)
    big = fgtest.write_random_file(run.path('big.bin'), 12 * MiB + 5)  # 3 parts of 5 MiB

    for sigv2 in (True, False):
        tag = 'v2' if sigv2 else 'v4'
        cfg = run.s3cmd_config(fg.hostport, sigv2)

        def s3cmd(*args):
            return run.cmd([fgtest.S3CMD, '-c', cfg, '--no-progress'] + list(args), timeout=300)

        def ok_rc(r, desc):
            return run.ok(r.returncode == 0, '[%s] %s' % (tag, desc),
                          'rc %d\n%s' % (r.returncode, (r.stderr or r.stdout)[-2000:]))

        b = 's3cmd-' + tag
        with run.section('[%s] mb, put, ls, get' % tag):
            ok_rc(s3cmd('mb', 's3://' + b), 'mb')
            r = s3cmd('ls')
            run.ok('s3://' + b in r.stdout, '[%s] ls lists the bucket' % tag, r.stdout)
            ok_rc(s3cmd('put', small, 's3://%s/dir/small.bin' % b), 'put small')
            ok_rc(s3cmd('put', big, 's3://%s/big.bin' % b), 'put 12 MiB (multipart, 5 MiB chunks)')
            r = s3cmd('ls', 's3://%s/' % b)
            run.ok('DIR' in r.stdout and 's3://%s/dir/' % b in r.stdout and
                   's3://%s/big.bin' % b in r.stdout, '[%s] ls bucket: DIR dir/ and big.bin' % tag,
                   r.stdout)
            r = s3cmd('ls', '--recursive', 's3://%s' % b)
            run.ok('s3://%s/dir/small.bin' % b in r.stdout, '[%s] ls --recursive' % tag, r.stdout)
            out = run.path('small-%s.out' % tag)
            ok_rc(s3cmd('get', '--force', 's3://%s/dir/small.bin' % b, out), 'get small')
            run.eq(fgtest.sha256_file(out), fgtest.sha256_file(small),
                   '[%s] small round trip sha256' % tag)
            out = run.path('big-%s.out' % tag)
            ok_rc(s3cmd('get', '--force', 's3://%s/big.bin' % b, out), 'get big')
            run.eq(fgtest.sha256_file(out), fgtest.sha256_file(big),
                   '[%s] 12 MiB round trip sha256' % tag)
            r = s3cmd('info', 's3://%s/big.bin' % b)
            run.ok(r.returncode == 0 and str(12 * MiB + 5) in r.stdout,
                   '[%s] info shows the size' % tag, r.stdout + r.stderr)
            ok_rc(s3cmd('put', '--add-header=x-amz-meta-color:blue', '--mime-type=text/plain',
                        small, 's3://%s/meta.txt' % b), 'put with metadata and mime type')
            r = s3cmd('info', 's3://%s/meta.txt' % b)
            run.ok('text/plain' in r.stdout and 'color' in r.stdout and 'blue' in r.stdout,
                   '[%s] info shows MIME type and x-amz-meta-color' % tag, r.stdout)
            ok_rc(s3cmd('cp', 's3://%s/dir/small.bin' % b, 's3://%s/copy.bin' % b),
                  'cp (server-side copy)')
            out = run.path('copy-%s.out' % tag)
            ok_rc(s3cmd('get', '--force', 's3://%s/copy.bin' % b, out), 'get copy')
            run.eq(fgtest.sha256_file(out), fgtest.sha256_file(small), '[%s] copy sha256' % tag)

        with run.section('[%s] del' % tag):
            ok_rc(s3cmd('del', 's3://%s/copy.bin' % b), 'del')
            r = s3cmd('ls', 's3://%s/copy.bin' % b)
            run.ok('copy.bin' not in r.stdout, '[%s] deleted object not listed' % tag, r.stdout)
            r = s3cmd('get', '--force', 's3://%s/copy.bin' % b, run.path('gone'))
            run.ok(r.returncode != 0, '[%s] get of deleted object fails' % tag)

        with run.section('[%s] sync both ways' % tag):
            src = run.path('tree-%s' % tag)
            files = {
                'a.txt': b'alpha\n',
                'sub/b.bin': os.urandom(70000),
                'sub/deeper/c.bin': os.urandom(300),
                'sub/deeper/with space.txt': b'space\n',
                'sub/deeper/ünïcode.txt': b'unicode\n',
                'empty.txt': b'',
                'mid.bin': os.urandom(6 * MiB),
            }
            make_tree(src, files)
            ok_rc(s3cmd('sync', src + '/', 's3://%s/tree/' % b), 'sync local -> s3')
            r = s3cmd('ls', '--recursive', 's3://%s/tree/' % b)
            listed = sorted(l.split('s3://%s/tree/' % b, 1)[1] for l in r.stdout.splitlines()
                            if 's3://' in l)
            run.eq(listed, sorted(files), '[%s] every file uploaded' % tag)
            # change one, add one, remove one; sync again with --delete-removed
            with open(os.path.join(src, 'a.txt'), 'wb') as f:
                f.write(b'alpha changed, and longer\n')
            with open(os.path.join(src, 'sub', 'new.txt'), 'wb') as f:
                f.write(b'new\n')
            os.unlink(os.path.join(src, 'sub', 'deeper', 'c.bin'))
            ok_rc(s3cmd('sync', '--delete-removed', src + '/', 's3://%s/tree/' % b),
                  'sync local -> s3 again (changed, added, removed)')
            r = s3cmd('ls', '--recursive', 's3://%s/tree/' % b)
            listed = sorted(l.split('s3://%s/tree/' % b, 1)[1] for l in r.stdout.splitlines()
                            if 's3://' in l)
            run.eq(listed, sorted(read_tree(src)), '[%s] remote matches the changed tree' % tag)
            dst = run.path('back-%s' % tag)
            os.makedirs(dst)
            ok_rc(s3cmd('sync', 's3://%s/tree/' % b, dst + '/'), 'sync s3 -> local')
            run.eq(read_tree(dst), read_tree(src), '[%s] synced-back tree identical' % tag)
            r = s3cmd('sync', '--dry-run', src + '/', 's3://%s/tree/' % b)
            run.ok(r.returncode == 0 and 'upload:' not in r.stdout,
                   '[%s] a second sync has nothing to upload (md5/ETag match)' % tag, r.stdout)
            shutil.rmtree(dst)

        with run.section('[%s] cleanup' % tag):
            r = s3cmd('rb', 's3://' + b)
            run.ok(r.returncode != 0, '[%s] rb of a non-empty bucket fails' % tag)
            ok_rc(s3cmd('del', '--recursive', '--force', 's3://%s/' % b), 'del --recursive')
            ok_rc(s3cmd('rb', 's3://' + b), 'rb')
            r = s3cmd('ls')
            run.ok('s3://' + b not in r.stdout, '[%s] bucket gone' % tag, r.stdout)


if __name__ == '__main__':
    fgtest.Run('s3cmd').main(body)

"""rclone (provider Other, path style, SigV4) against a real floodgate: mkdir, copy, check,
sync (changed/added/removed files), a 100 MiB file in 16 MiB multipart chunks, server-side
copy, delete, purge.

Run: ctest -L integration -R integration.rclone (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_rclone.py).
"""
import os

import fgtest
from fgtest import MiB


def tree_files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = fgtest.sha256_file(p)
    return out


def body(run):
    run.require(fgtest.RCLONE)
    fg = run.floodgate()
    conf = run.rclone_config(fg.endpoint)

    def rclone(*args, timeout=300):
        return run.cmd([fgtest.RCLONE, '--config', conf, '--s3-force-path-style',
                        '--retries', '1', '--low-level-retries', '1', '--contimeout', '10s',
                        '--timeout', '120s', '-q'] + list(args), timeout=timeout)

    def ok_rc(r, desc):
        return run.ok(r.returncode == 0, desc, 'rc %d\n%s' % (r.returncode, r.stderr[-2000:]))

    src = run.path('src')
    files = {
        'a.txt': b'alpha\n',
        'b/c.bin': os.urandom(100000),
        'b/d/e.bin': os.urandom(3 * MiB + 1),
        'b/d/with space.txt': b'space\n',
        'b/d/ünï.txt': b'unicode\n',
        'empty.txt': b'',
    }
    for rel, data in files.items():
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)

    with run.section('mkdir, copy, check'):
        ok_rc(rclone('mkdir', 'fg:rclone-bkt'), 'rclone mkdir (CreateBucket)')
        r = rclone('lsd', 'fg:')
        run.ok('rclone-bkt' in r.stdout, 'rclone lsd lists the bucket', r.stdout)
        ok_rc(rclone('copy', src, 'fg:rclone-bkt/tree'), 'rclone copy tree up')
        ok_rc(rclone('check', src, 'fg:rclone-bkt/tree'), 'rclone check (sizes + md5) passes')
        r = rclone('lsf', '-R', '--files-only', 'fg:rclone-bkt/tree')
        run.eq(sorted(r.stdout.splitlines()), sorted(files), 'rclone lsf -R lists every file')
        r = rclone('md5sum', 'fg:rclone-bkt/tree/b/c.bin')
        run.ok(r.stdout.split()[:1] == [fgtest.md5_hex(files['b/c.bin'])],
               'rclone md5sum equals local md5', r.stdout)
        dst = run.path('down')
        ok_rc(rclone('copy', 'fg:rclone-bkt/tree', dst), 'rclone copy tree down')
        run.eq(tree_files(dst), tree_files(src), 'downloaded tree identical')

    with run.section('sync'):
        with open(os.path.join(src, 'a.txt'), 'wb') as f:
            f.write(b'alpha, changed and longer\n')
        with open(os.path.join(src, 'b', 'new.bin'), 'wb') as f:
            f.write(os.urandom(4096))
        os.unlink(os.path.join(src, 'b', 'c.bin'))
        ok_rc(rclone('sync', src, 'fg:rclone-bkt/tree'), 'rclone sync (changed, added, removed)')
        ok_rc(rclone('check', src, 'fg:rclone-bkt/tree'), 'rclone check after sync passes')
        r = rclone('lsf', '-R', '--files-only', 'fg:rclone-bkt/tree')
        run.eq(sorted(r.stdout.splitlines()), sorted(tree_files(src)),
               'remote file set equals the local tree after sync')
        back = run.path('back')
        ok_rc(rclone('sync', 'fg:rclone-bkt/tree', back), 'rclone sync remote -> local')
        run.eq(tree_files(back), tree_files(src), 'synced-back tree identical')

    with run.section('100 MiB file'):
        big = fgtest.write_random_file(run.path('big', 'big.bin'), 100 * MiB)
        ok_rc(rclone('copy', '--s3-upload-cutoff', '16M', '--s3-chunk-size', '16M',
                     '--s3-upload-concurrency', '4', big, 'fg:rclone-bkt/big'),
              'rclone copy 100 MiB (multipart, 16 MiB chunks)')
        ok_rc(rclone('check', run.path('big'), 'fg:rclone-bkt/big'), 'rclone check 100 MiB')
        out = run.path('bigdown')
        ok_rc(rclone('copy', '--multi-thread-streams', '4', '--multi-thread-cutoff', '16M',
                     'fg:rclone-bkt/big/big.bin', out),
              'rclone copy 100 MiB down (multi-thread ranged GETs)')
        run.eq(fgtest.sha256_file(os.path.join(out, 'big.bin')), fgtest.sha256_file(big),
               '100 MiB round trip sha256')
        os.unlink(os.path.join(out, 'big.bin'))

    with run.section('server-side copy, delete, purge'):
        ok_rc(rclone('copyto', 'fg:rclone-bkt/tree/a.txt', 'fg:rclone-bkt/copied/a.txt'),
              'rclone copyto remote -> remote (CopyObject)')
        r = rclone('cat', 'fg:rclone-bkt/copied/a.txt')
        run.eq(r.stdout, 'alpha, changed and longer\n', 'copied object content')
        ok_rc(rclone('delete', 'fg:rclone-bkt/copied'), 'rclone delete')
        r = rclone('lsf', '-R', 'fg:rclone-bkt/copied')
        run.eq(r.stdout.strip(), '', 'nothing left under copied/')
        ok_rc(rclone('purge', 'fg:rclone-bkt'), 'rclone purge (delete all, remove bucket)')
        r = rclone('lsd', 'fg:')
        run.ok('rclone-bkt' not in r.stdout, 'bucket gone after purge', r.stdout)


if __name__ == '__main__':
    fgtest.Run('rclone').main(body)

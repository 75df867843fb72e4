"""aws-cli v2 (`aws s3` and `aws s3api`) against a real floodgate.

Run: ctest -L integration -R integration.awscli (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_awscli.py).
"""
import json
import os

import fgtest
from fgtest import MiB

CHUNK = 8 * MiB  # multipart_chunksize in the aws config the harness writes


def body(run):
    run.require(fgtest.AWS, fgtest.CURL)
    fg = run.floodgate()
    aws = run.aws_cli(fg.endpoint)
    b, b2 = 'cli-bucket', 'cli-bucket-two'

    small = fgtest.write_random_file(run.path('small.bin'), 1000)
    big = fgtest.write_random_file(run.path('big.bin'), 50 * MiB)
    small_sha, big_sha = fgtest.sha256_file(small), fgtest.sha256_file(big)

    def ok_rc(r, desc):
        return run.ok(r.returncode == 0, desc, 'rc %d\n%s' % (r.returncode, r.stderr[-2000:]))

    with run.section('mb'):
        ok_rc(aws('s3', 'mb', 's3://' + b), 'aws s3 mb')
        ok_rc(aws('s3', 'mb', 's3://' + b2), 'aws s3 mb (second bucket)')
        r = aws('s3', 'ls')
        run.ok(b in r.stdout and b2 in r.stdout, 'aws s3 ls lists both buckets', r.stdout)
        r = aws('s3', 'mb', 's3://' + b)
        run.ok(r.returncode != 0 and 'BucketAlreadyOwnedByYou' in r.stderr,
               'mb of an existing bucket fails with BucketAlreadyOwnedByYou', r.stderr)

    with run.section('cp small'):
        ok_rc(aws('s3', 'cp', small, 's3://%s/small.bin' % b), 'cp small up')
        out = run.path('small.out')
        ok_rc(aws('s3', 'cp', 's3://%s/small.bin' % b, out), 'cp small down')
        run.eq(fgtest.sha256_file(out), small_sha, 'small round trip: sha256 equal')

    with run.section('cp 50 MiB (multipart)'):
        ok_rc(aws('s3', 'cp', big, 's3://%s/big.bin' % b), 'cp 50 MiB up')
        head = aws.json('s3api', 'head-object', '--bucket', b, '--key', 'big.bin')
        run.eq(head.get('ContentLength'), 50 * MiB, 'head-object: ContentLength 50 MiB')
        run.eq(head.get('ETag'), fgtest.multipart_etag_file(big, CHUNK),
               'head-object: multipart ETag (md5 of part md5s, "-7")')
        out = run.path('big.out')
        ok_rc(aws('s3', 'cp', 's3://%s/big.bin' % b, out), 'cp 50 MiB down (ranged GETs)')
        run.eq(fgtest.sha256_file(out), big_sha, '50 MiB round trip: sha256 equal')
        os.unlink(out)

    with run.section('cp from stdin'):
        data = os.urandom(3 * MiB + 17)
        ok_rc(aws('s3', 'cp', '-', 's3://%s/stdin.bin' % b, input=data), 'cp - (stdin) up')
        r = aws('s3', 'cp', 's3://%s/stdin.bin' % b, '-', binary=True)
        run.ok(r.returncode == 0 and r.stdout == data, 'cp to - (stdout) gives the same bytes',
               r.stderr)

    with run.section('ls with prefix and delimiter'):
        tree = ['dir1/a.txt', 'dir1/b.txt', 'dir1/sub/c.txt', 'dir2/d.txt', 'top.txt']
        for k in tree:
            ok_rc(aws('s3', 'cp', small, 's3://%s/%s' % (b, k)), 'cp to %s' % k)
        r = aws('s3', 'ls', 's3://%s/' % b)
        lines = r.stdout.splitlines()
        run.ok(any(l.split() == ['PRE', 'dir1/'] for l in lines) and
               any(l.split() == ['PRE', 'dir2/'] for l in lines),
               'ls bucket root shows PRE dir1/ and PRE dir2/', r.stdout)
        run.ok(any(l.endswith(' top.txt') for l in lines) and
               not any('a.txt' in l for l in lines), 'ls root shows top.txt, not dir1/a.txt',
               r.stdout)
        r = aws('s3', 'ls', 's3://%s/dir1/' % b)
        names = sorted(l.split()[-1] for l in r.stdout.splitlines())
        run.eq(names, ['a.txt', 'b.txt', 'sub/'], 'ls dir1/: a.txt, b.txt, PRE sub/')
        r = aws('s3', 'ls', '--recursive', 's3://%s/dir1/' % b)
        names = sorted(l.split()[-1] for l in r.stdout.splitlines())
        run.eq(names, ['dir1/a.txt', 'dir1/b.txt', 'dir1/sub/c.txt'], 'ls --recursive dir1/')
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'dir1/',
                     '--delimiter', '/')
        run.eq(sorted(c['Key'] for c in j.get('Contents', [])), ['dir1/a.txt', 'dir1/b.txt'],
               'list-objects-v2 prefix+delimiter: Contents')
        run.eq([p['Prefix'] for p in j.get('CommonPrefixes', [])], ['dir1/sub/'],
               'list-objects-v2 prefix+delimiter: CommonPrefixes')

    with run.section('s3-to-s3 copy'):
        ok_rc(aws('s3', 'cp', 's3://%s/small.bin' % b, 's3://%s/copied.bin' % b2),
              'cp s3://small -> s3://other bucket')
        out = run.path('copied.out')
        ok_rc(aws('s3', 'cp', 's3://%s/copied.bin' % b2, out), 'cp copied object down')
        run.eq(fgtest.sha256_file(out), small_sha, 'copied small object: sha256 equal')
        ok_rc(aws('s3', 'cp', 's3://%s/big.bin' % b, 's3://%s/bigcopy.bin' % b2),
              'cp 50 MiB s3 -> s3 (multipart copy, UploadPartCopy)')
        head = aws.json('s3api', 'head-object', '--bucket', b2, '--key', 'bigcopy.bin')
        run.eq(head.get('ContentLength'), 50 * MiB, 'big copy: ContentLength')
        run.ok(str(head.get('ETag', '')).endswith('-7"'),
               'big copy was a multipart copy (ETag "-7")', head.get('ETag'))
        out = run.path('bigcopy.out')
        ok_rc(aws('s3', 'cp', 's3://%s/bigcopy.bin' % b2, out), 'cp big copy down')
        run.eq(fgtest.sha256_file(out), big_sha, 'big copy: sha256 equal')
        os.unlink(out)

    with run.section('presign + curl'):
        r = aws('s3', 'presign', 's3://%s/small.bin' % b, '--expires-in', '300')
        url = r.stdout.strip()
        run.ok(r.returncode == 0 and 'X-Amz-Signature=' in url, 'aws s3 presign gives a v4 URL',
               r.stdout + r.stderr)
        out = run.path('presigned.out')
        c = run.cmd([fgtest.CURL, '-sS', '-o', out, '-w', '%{http_code}', url])
        run.eq(c.stdout.strip(), '200', 'curl GET of the presigned URL: 200')
        run.eq(fgtest.sha256_file(out), small_sha, 'presigned GET body: sha256 equal')
        c = run.cmd([fgtest.CURL, '-sS', '-o', '/dev/null', '-w', '%{http_code}',
                     url.replace('small.bin', 'top.txt')])
        run.eq(c.stdout.strip(), '403', 'presigned URL with another key: 403')

    with run.section('s3api put-object metadata + head-object'):
        j = aws.json('s3api', 'put-object', '--bucket', b, '--key', 'meta.txt', '--body', small,
                     '--metadata', 'color=blue,shape=round', '--content-type', 'text/plain',
                     '--cache-control', 'max-age=60', '--content-disposition', 'inline')
        run.eq(j.get('ETag'), '"%s"' % fgtest.md5_hex(open(small, 'rb').read()),
               'put-object ETag is the md5')
        h = aws.json('s3api', 'head-object', '--bucket', b, '--key', 'meta.txt')
        run.eq(h.get('Metadata'), {'color': 'blue', 'shape': 'round'}, 'head-object Metadata')
        run.eq(h.get('ContentType'), 'text/plain', 'head-object ContentType')
        run.eq(h.get('CacheControl'), 'max-age=60', 'head-object CacheControl')
        run.eq(h.get('ContentDisposition'), 'inline', 'head-object ContentDisposition')
        run.eq(h.get('ContentLength'), 1000, 'head-object ContentLength')

    with run.section('get-object --range'):
        out = run.path('range.out')
        j = aws.json('s3api', 'get-object', '--bucket', b, '--key', 'small.bin', '--range',
                     'bytes=10-19', out)
        run.eq(open(out, 'rb').read(), open(small, 'rb').read()[10:20], 'range 10-19 bytes')
        run.eq(j.get('ContentRange'), 'bytes 10-19/1000', 'ContentRange')
        run.eq(j.get('ContentLength'), 10, 'ContentLength 10')

    with run.section('list-objects-v2 pagination'):
        keys = ['page/%02d' % i for i in range(7)]
        for k in keys:
            aws.json('s3api', 'put-object', '--bucket', b, '--key', k, '--body', small)
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'page/',
                     '--page-size', '3')
        run.eq([c['Key'] for c in j.get('Contents', [])], keys,
               'list-objects-v2 --page-size 3 (MaxKeys=3, three requests) lists all 7')
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'page/',
                     '--page-size', '3', '--max-items', '3')
        run.eq([c['Key'] for c in j.get('Contents', [])], keys[:3], 'first page of 3')
        tok = j.get('NextToken')
        run.ok(bool(tok), 'truncated listing gives a NextToken', j)
        if tok:
            j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'page/',
                         '--page-size', '3', '--starting-token', tok)
            run.eq([c['Key'] for c in j.get('Contents', [])], keys[3:],
                   'the rest via --starting-token (ContinuationToken)')
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'page/',
                     '--start-after', 'page/04')
        run.eq([c['Key'] for c in j.get('Contents', [])], keys[5:], '--start-after page/04')

    with run.section('multipart by hand'):
        p1 = os.urandom(5 * MiB)
        p2 = os.urandom(MiB + 123)
        for name, data in (('p1', p1), ('p2', p2)):
            with open(run.path(name), 'wb') as f:
                f.write(data)
        j = aws.json('s3api', 'create-multipart-upload', '--bucket', b, '--key', 'mpu.bin',
                     '--content-type', 'application/x-test')
        uid = j.get('UploadId')
        run.ok(bool(uid), 'create-multipart-upload gives an UploadId', j)
        e1 = aws.json('s3api', 'upload-part', '--bucket', b, '--key', 'mpu.bin', '--upload-id',
                      uid, '--part-number', '1', '--body', run.path('p1'))['ETag']
        e2 = aws.json('s3api', 'upload-part', '--bucket', b, '--key', 'mpu.bin', '--upload-id',
                      uid, '--part-number', '2', '--body', run.path('p2'))['ETag']
        run.eq((e1, e2), ('"%s"' % fgtest.md5_hex(p1), '"%s"' % fgtest.md5_hex(p2)),
               'upload-part ETags are the parts\' md5s')
        lp = aws.json('s3api', 'list-parts', '--bucket', b, '--key', 'mpu.bin', '--upload-id',
                      uid)
        run.eq([(p['PartNumber'], p['Size']) for p in lp.get('Parts', [])],
               [(1, len(p1)), (2, len(p2))], 'list-parts shows both parts with sizes')
        parts = run.path('parts.json')
        with open(parts, 'w') as f:
            json.dump({'Parts': [{'PartNumber': 1, 'ETag': e1}, {'PartNumber': 2, 'ETag': e2}]},
                      f)
        j = aws.json('s3api', 'complete-multipart-upload', '--bucket', b, '--key', 'mpu.bin',
                     '--upload-id', uid, '--multipart-upload', 'file://' + parts)
        run.eq(j.get('ETag'), fgtest.multipart_etag([p1, p2]), 'complete: ETag md5-of-md5s-2')
        out = run.path('mpu.out')
        j = aws.json('s3api', 'get-object', '--bucket', b, '--key', 'mpu.bin', out)
        run.ok(open(out, 'rb').read() == p1 + p2, 'completed object is part1 + part2')
        run.eq(j.get('ContentType'), 'application/x-test', 'content type from create')

    with run.section('delete-objects'):
        spec = json.dumps({'Objects': [{'Key': 'page/00'}, {'Key': 'page/01'},
                                       {'Key': 'page/02'}]})
        j = aws.json('s3api', 'delete-objects', '--bucket', b, '--delete', spec)
        run.eq(sorted(d['Key'] for d in j.get('Deleted', [])), ['page/00', 'page/01', 'page/02'],
               'delete-objects reports the three deleted')
        run.ok(not j.get('Errors'), 'delete-objects: no Errors', j)
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'page/')
        run.eq([c['Key'] for c in j.get('Contents', [])], keys[3:], 'they are gone')

    with run.section('copy-object REPLACE'):
        aws.json('s3api', 'copy-object', '--bucket', b, '--key', 'meta-copy.txt', '--copy-source',
                 '%s/meta.txt' % b, '--metadata-directive', 'REPLACE', '--metadata', 'fresh=yes',
                 '--content-type', 'application/json')
        h = aws.json('s3api', 'head-object', '--bucket', b, '--key', 'meta-copy.txt')
        run.eq(h.get('Metadata'), {'fresh': 'yes'}, 'REPLACE: only the new metadata')
        run.eq(h.get('ContentType'), 'application/json', 'REPLACE: new content type')
        run.eq(h.get('ContentLength'), 1000, 'copy has the source length')
        aws.json('s3api', 'copy-object', '--bucket', b, '--key', 'meta-copy2.txt',
                 '--copy-source', '%s/meta.txt' % b)
        h = aws.json('s3api', 'head-object', '--bucket', b, '--key', 'meta-copy2.txt')
        run.eq(h.get('Metadata'), {'color': 'blue', 'shape': 'round'},
               'default COPY directive keeps the metadata')

    with run.section('bucket location, versioning, acl'):
        j = aws.json('s3api', 'get-bucket-location', '--bucket', b)
        run.ok(j.get('LocationConstraint') in (None, ''),
               'get-bucket-location: null LocationConstraint for us-east-1', j)
        j = aws.json('s3api', 'get-bucket-versioning', '--bucket', b)
        run.ok('Status' not in j, 'get-bucket-versioning: no Status (never enabled)', j)
        j = aws.json('s3api', 'get-object-acl', '--bucket', b, '--key', 'small.bin')
        owner = (j.get('Owner') or {}).get('ID')
        run.ok(bool(owner), 'get-object-acl has an Owner ID', j)
        run.ok(any(g.get('Permission') == 'FULL_CONTROL' and
                   g.get('Grantee', {}).get('ID') == owner for g in j.get('Grants', [])),
               'get-object-acl: owner has FULL_CONTROL', j)

    with run.section('rm --recursive, rb'):
        ok_rc(aws('s3', 'rm', '--recursive', 's3://%s/dir1/' % b), 'rm --recursive dir1/')
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'dir1/')
        run.eq(j.get('Contents', []), [], 'dir1/ is empty')
        j = aws.json('s3api', 'list-objects-v2', '--bucket', b, '--prefix', 'dir2/')
        run.eq([c['Key'] for c in j.get('Contents', [])], ['dir2/d.txt'], 'dir2/ untouched')
        r = aws('s3', 'rb', 's3://' + b)
        run.ok(r.returncode != 0 and 'BucketNotEmpty' in r.stderr,
               'rb of a non-empty bucket fails with BucketNotEmpty', r.stderr)
        for bk in (b, b2):
            ok_rc(aws('s3', 'rm', '--recursive', 's3://' + bk), 'rm --recursive s3://' + bk)
            ok_rc(aws('s3', 'rb', 's3://' + bk), 'rb s3://' + bk)
        r = aws('s3', 'ls')
        run.ok(b not in r.stdout and b2 not in r.stdout, 'buckets are gone', r.stdout)


if __name__ == '__main__':
    fgtest.Run('awscli').main(body)

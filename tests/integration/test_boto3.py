"""boto3 against a real floodgate: every S3 operation floodgate serves, its documented errors,
presigned URLs (v4 and v2), odd keys and authentication failures.

Run: ctest -L integration -R integration.boto3 (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_boto3.py).
"""
import datetime
import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import fgtest
from fgtest import MiB, client_error

UTC = datetime.timezone.utc


def http(method, url, data=None, headers=None):
    """(status, headers, body) of a plain urllib request (errors included)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()


def body(run):
    run.require_module('boto3', 'botocore')
    import botocore
    fg = run.floodgate()
    s3 = fgtest.boto3_client(fg.endpoint)
    s3v2 = fgtest.boto3_client(fg.endpoint, sig='s3')
    anon = fgtest.boto3_client(fg.endpoint, sig=botocore.UNSIGNED)

    # every response must carry x-amz-request-id
    missing_rid = []

    def check_rid(http_response=None, model=None, **kw):
        if http_response is not None and not http_response.headers.get('x-amz-request-id'):
            missing_rid.append('%s -> %s' % (model.name if model else '?',
                                             http_response.status_code))

    for c in (s3, s3v2, anon):
        c.meta.events.register('after-call.s3', check_rid)

    def err(desc, status, code, fn, *a, **kw):
        st, cd, resp = client_error(fn, *a, **kw)
        return run.ok(st == status and (code is None or cd == code),
                      '%s -> %s %s' % (desc, status, code or ''),
                      'got %s %s' % (st, cd))

    def get(bucket, key, **kw):
        return s3.get_object(Bucket=bucket, Key=key, **kw)['Body'].read()

    B = 'boto-bucket'

    # ---- buckets ----------------------------------------------------------------------------
    with run.section('buckets'):
        r = s3.list_buckets()
        run.eq(r.get('Buckets'), [], 'ListBuckets on a fresh store: none')
        run.ok(bool(r.get('Owner', {}).get('ID')), 'ListBuckets has an Owner ID', r.get('Owner'))
        s3.create_bucket(Bucket=B)
        s3.create_bucket(Bucket='boto-other')
        names = [b['Name'] for b in s3.list_buckets()['Buckets']]
        run.eq(names, ['boto-bucket', 'boto-other'], 'ListBuckets lists both, sorted')
        run.ok(all(isinstance(b.get('CreationDate'), datetime.datetime)
                   for b in s3.list_buckets()['Buckets']), 'buckets have a CreationDate')
        for bad in ('ab', 'Upper-Case', 'under_score', '-lead', 'trail-', 'a..b', '192.168.5.4',
                    'x' * 64, 'xn--punycode', 'bucket-s3alias'):
            err('CreateBucket %r' % bad, 400, 'InvalidBucketName', s3.create_bucket, Bucket=bad)
        err('CreateBucket again', 409, 'BucketAlreadyOwnedByYou', s3.create_bucket, Bucket=B)
        run.eq(s3.head_bucket(Bucket=B)['ResponseMetadata']['HTTPStatusCode'], 200,
               'HeadBucket existing -> 200')
        err('HeadBucket missing', 404, None, s3.head_bucket, Bucket='no-such-bucket')
        err('ListObjectsV2 on a missing bucket', 404, 'NoSuchBucket', s3.list_objects_v2,
            Bucket='no-such-bucket')
        loc = s3.get_bucket_location(Bucket=B)
        run.ok(loc.get('LocationConstraint') in (None, ''),
               'GetBucketLocation: empty (us-east-1)', loc)
        s3.put_object(Bucket='boto-other', Key='x', Body=b'x')
        err('DeleteBucket non-empty', 409, 'BucketNotEmpty', s3.delete_bucket,
            Bucket='boto-other')
        err('DeleteBucket missing', 404, 'NoSuchBucket', s3.delete_bucket, Bucket='no-such-bkt')
        s3.delete_object(Bucket='boto-other', Key='x')
        r = s3.delete_bucket(Bucket='boto-other')
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 204, 'DeleteBucket empty -> 204')
        run.eq([b['Name'] for b in s3.list_buckets()['Buckets']], [B], 'deleted bucket gone')
        v = s3.get_bucket_versioning(Bucket=B)
        run.ok('Status' not in v, 'GetBucketVersioning: no Status', v)
        err('PutBucketLifecycleConfiguration (unsupported)', 501, 'NotImplemented',
            s3.put_bucket_lifecycle_configuration, Bucket=B, LifecycleConfiguration={
                'Rules': [{'ID': 'r', 'Status': 'Enabled', 'Filter': {'Prefix': ''},
                           'Expiration': {'Days': 1}}]})

    # ---- put / get / ranges / conditionals ---------------------------------------------------
    data = os.urandom(1000)
    etag = '"%s"' % hashlib.md5(data).hexdigest()
    with run.section('PutObject / GetObject'):
        r = s3.put_object(Bucket=B, Key='obj', Body=data)
        run.eq(r.get('ETag'), etag, 'PutObject ETag = md5')
        r = s3.get_object(Bucket=B, Key='obj')
        run.ok(r['Body'].read() == data, 'GetObject body')
        run.eq(r.get('ContentLength'), 1000, 'GetObject ContentLength')
        run.eq(r.get('ETag'), etag, 'GetObject ETag')
        run.eq(r.get('AcceptRanges'), 'bytes', 'GetObject Accept-Ranges: bytes')
        lm = r.get('LastModified')
        run.ok(isinstance(lm, datetime.datetime) and
               abs((datetime.datetime.now(UTC) - lm).total_seconds()) < 120,
               'LastModified is now', lm)
        err('GetObject missing key', 404, 'NoSuchKey', s3.get_object, Bucket=B, Key='nope')
        err('GetObject missing bucket', 404, 'NoSuchBucket', s3.get_object, Bucket='nobkt',
            Key='x')
        r = s3.put_object(Bucket=B, Key='empty', Body=b'')
        run.eq(r.get('ETag'), '"d41d8cd98f00b204e9800998ecf8427e"', 'empty object ETag')
        run.eq(get(B, 'empty'), b'', 'empty object reads back empty')

    with run.section('ranges'):
        for rng, want, cr in (('bytes=0-9', data[:10], 'bytes 0-9/1000'),
                              ('bytes=-10', data[-10:], 'bytes 990-999/1000'),
                              ('bytes=5-', data[5:], 'bytes 5-999/1000'),
                              ('bytes=990-5000', data[990:], 'bytes 990-999/1000'),
                              ('bytes=-2000', data, 'bytes 0-999/1000'),
                              ('bytes=999-999', data[999:], 'bytes 999-999/1000')):
            r = s3.get_object(Bucket=B, Key='obj', Range=rng)
            run.ok(r['ResponseMetadata']['HTTPStatusCode'] == 206 and r['Body'].read() == want
                   and r.get('ContentRange') == cr and r.get('ContentLength') == len(want),
                   'Range %s -> 206, %s' % (rng, cr),
                   '%s %s' % (r['ResponseMetadata']['HTTPStatusCode'], r.get('ContentRange')))
        for rng in ('bytes=1000-1010', 'bytes=5000-'):
            err('Range %s' % rng, 416, 'InvalidRange', s3.get_object, Bucket=B, Key='obj',
                Range=rng)
        r = s3.get_object(Bucket=B, Key='obj', Range='bytes=abc')
        run.ok(r['ResponseMetadata']['HTTPStatusCode'] == 200 and r['Body'].read() == data,
               'unparsable Range is ignored -> 200 whole object')
        r = s3.head_object(Bucket=B, Key='obj', Range='bytes=0-99')
        run.ok(r['ResponseMetadata']['HTTPStatusCode'] == 206 and r.get('ContentLength') == 100,
               'HeadObject with Range -> 206, ContentLength 100', r.get('ContentLength'))

    with run.section('conditional GET'):
        past = datetime.datetime(2000, 1, 1, tzinfo=UTC)
        future = datetime.datetime.now(UTC) + datetime.timedelta(days=1)
        run.ok(get(B, 'obj', IfMatch=etag) == data, 'If-Match current ETag -> 200')
        run.ok(get(B, 'obj', IfMatch='*') == data, 'If-Match * -> 200')
        err('If-Match other ETag', 412, 'PreconditionFailed', s3.get_object, Bucket=B, Key='obj',
            IfMatch='"0123456789abcdef0123456789abcdef"')
        err('If-None-Match current ETag', 304, None, s3.get_object, Bucket=B, Key='obj',
            IfNoneMatch=etag)
        err('If-None-Match * ', 304, None, s3.get_object, Bucket=B, Key='obj', IfNoneMatch='*')
        run.ok(get(B, 'obj', IfNoneMatch='"0123456789abcdef0123456789abcdef"') == data,
               'If-None-Match other ETag -> 200')
        err('If-Modified-Since future', 304, None, s3.get_object, Bucket=B, Key='obj',
            IfModifiedSince=future)
        run.ok(get(B, 'obj', IfModifiedSince=past) == data, 'If-Modified-Since past -> 200')
        err('If-Unmodified-Since past', 412, 'PreconditionFailed', s3.get_object, Bucket=B,
            Key='obj', IfUnmodifiedSince=past)
        run.ok(get(B, 'obj', IfUnmodifiedSince=future) == data,
               'If-Unmodified-Since future -> 200')
        # RFC 7232 / S3: If-Match true wins over If-Unmodified-Since false, If-None-Match false
        # wins over If-Modified-Since true.
        run.ok(get(B, 'obj', IfMatch=etag, IfUnmodifiedSince=past) == data,
               'If-Match true + If-Unmodified-Since false -> 200')
        err('If-None-Match false + If-Modified-Since true', 304, None, s3.get_object, Bucket=B,
            Key='obj', IfNoneMatch=etag, IfModifiedSince=past)
        err('HeadObject If-None-Match', 304, None, s3.head_object, Bucket=B, Key='obj',
            IfNoneMatch=etag)
        err('HeadObject If-Match other', 412, None, s3.head_object, Bucket=B, Key='obj',
            IfMatch='"0123456789abcdef0123456789abcdef"')

    with run.section('response-* overrides'):
        r = s3.get_object(Bucket=B, Key='obj', ResponseContentType='text/x-test',
                          ResponseContentDisposition='attachment; filename="x.bin"',
                          ResponseCacheControl='no-cache', ResponseContentLanguage='de',
                          ResponseContentEncoding='identity',
                          ResponseExpires=datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC))
        run.eq(r.get('ContentType'), 'text/x-test', 'response-content-type')
        run.eq(r.get('ContentDisposition'), 'attachment; filename="x.bin"',
               'response-content-disposition')
        run.eq(r.get('CacheControl'), 'no-cache', 'response-cache-control')
        run.eq(r.get('ContentLanguage'), 'de', 'response-content-language')
        run.eq(r.get('ContentEncoding'), 'identity', 'response-content-encoding')
        run.eq(r.get('Expires'), datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC),
               'response-expires')
        run.ok(r['Body'].read() == data, 'body unchanged by overrides')

    with run.section('metadata and standard headers round trip'):
        expires = datetime.datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC)
        s3.put_object(Bucket=B, Key='meta', Body=b'<p>hi</p>', ContentType='text/html',
                      ContentEncoding='gzip', ContentDisposition='attachment; filename="a b.txt"',
                      ContentLanguage='en-US', CacheControl='max-age=60', Expires=expires,
                      Metadata={'color': 'blue', 'x-y': 'z', 'long': 'v' * 1000})
        for name, r in (('HeadObject', s3.head_object(Bucket=B, Key='meta')),
                        ('GetObject', s3.get_object(Bucket=B, Key='meta'))):
            run.eq(r.get('Metadata'), {'color': 'blue', 'x-y': 'z', 'long': 'v' * 1000},
                   '%s: x-amz-meta-*' % name)
            run.eq(r.get('ContentType'), 'text/html', '%s: Content-Type' % name)
            run.eq(r.get('ContentEncoding'), 'gzip', '%s: Content-Encoding' % name)
            run.eq(r.get('ContentDisposition'), 'attachment; filename="a b.txt"',
                   '%s: Content-Disposition' % name)
            run.eq(r.get('ContentLanguage'), 'en-US', '%s: Content-Language' % name)
            run.eq(r.get('CacheControl'), 'max-age=60', '%s: Cache-Control' % name)
            run.eq(r.get('Expires'), expires, '%s: Expires' % name)
        r = s3.put_object(Bucket=B, Key='default-type', Body=b'x')
        run.eq(s3.head_object(Bucket=B, Key='default-type').get('ContentType'),
               'binary/octet-stream', 'no Content-Type given -> binary/octet-stream (S3 default)')
        err('HeadObject missing', 404, None, s3.head_object, Bucket=B, Key='nope')

    # ---- delete -----------------------------------------------------------------------------
    with run.section('DeleteObject / DeleteObjects'):
        s3.put_object(Bucket=B, Key='del1', Body=b'1')
        r = s3.delete_object(Bucket=B, Key='del1')
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 204, 'DeleteObject -> 204')
        err('GetObject after delete', 404, 'NoSuchKey', s3.get_object, Bucket=B, Key='del1')
        r = s3.delete_object(Bucket=B, Key='never-existed')
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 204, 'DeleteObject of a missing key -> 204')
        for k in ('d/1', 'd/2', 'd/3'):
            s3.put_object(Bucket=B, Key=k, Body=k.encode())
        r = s3.delete_objects(Bucket=B, Delete={'Objects': [{'Key': 'd/1'}, {'Key': 'd/2'},
                                                             {'Key': 'd/missing'}]})
        run.eq(sorted(d['Key'] for d in r.get('Deleted', [])), ['d/1', 'd/2', 'd/missing'],
               'DeleteObjects: Deleted lists all (a missing key counts as deleted)')
        run.ok(not r.get('Errors'), 'DeleteObjects: no Errors', r.get('Errors'))
        s3.put_object(Bucket=B, Key='d/4', Body=b'4')
        r = s3.delete_objects(Bucket=B, Delete={'Objects': [{'Key': 'd/3'}, {'Key': 'd/4'}],
                                                'Quiet': True})
        run.ok(not r.get('Deleted') and not r.get('Errors'),
               'DeleteObjects Quiet: nothing reported on success', r)
        run.eq(s3.list_objects_v2(Bucket=B, Prefix='d/').get('KeyCount'), 0, 'all d/ deleted')

    # ---- copy -------------------------------------------------------------------------------
    with run.section('CopyObject'):
        s3.put_object(Bucket=B, Key='src', Body=data, ContentType='text/plain',
                      Metadata={'a': '1'})
        r = s3.copy_object(Bucket=B, Key='dst', CopySource={'Bucket': B, 'Key': 'src'})
        run.eq(r.get('CopyObjectResult', {}).get('ETag'), etag, 'CopyObject result ETag')
        run.ok(isinstance(r.get('CopyObjectResult', {}).get('LastModified'), datetime.datetime),
               'CopyObject result LastModified')
        h = s3.head_object(Bucket=B, Key='dst')
        run.eq((h.get('Metadata'), h.get('ContentType')), ({'a': '1'}, 'text/plain'),
               'COPY directive (default): metadata and type copied')
        run.ok(get(B, 'dst') == data, 'copied content equal')
        s3.copy_object(Bucket=B, Key='dst2', CopySource={'Bucket': B, 'Key': 'src'},
                       MetadataDirective='REPLACE', Metadata={'b': '2'},
                       ContentType='application/x-new')
        h = s3.head_object(Bucket=B, Key='dst2')
        run.eq((h.get('Metadata'), h.get('ContentType')), ({'b': '2'}, 'application/x-new'),
               'REPLACE directive: only the new metadata and type')
        err('CopySourceIfMatch wrong', 412, 'PreconditionFailed', s3.copy_object, Bucket=B,
            Key='dst3', CopySource={'Bucket': B, 'Key': 'src'},
            CopySourceIfMatch='"0123456789abcdef0123456789abcdef"')
        err('CopySourceIfNoneMatch current', 412, 'PreconditionFailed', s3.copy_object, Bucket=B,
            Key='dst3', CopySource={'Bucket': B, 'Key': 'src'}, CopySourceIfNoneMatch=etag)
        err('HeadObject of the failed copy target', 404, None, s3.head_object, Bucket=B,
            Key='dst3')
        r = s3.copy_object(Bucket=B, Key='dst3', CopySource={'Bucket': B, 'Key': 'src'},
                           CopySourceIfMatch=etag)
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 200, 'CopySourceIfMatch current -> 200')
        err('copy onto itself without REPLACE', 400, 'InvalidRequest', s3.copy_object, Bucket=B,
            Key='src', CopySource={'Bucket': B, 'Key': 'src'})
        s3.copy_object(Bucket=B, Key='src', CopySource={'Bucket': B, 'Key': 'src'},
                       MetadataDirective='REPLACE', Metadata={'c': '3'}, ContentType='text/csv')
        h = s3.head_object(Bucket=B, Key='src')
        run.eq((h.get('Metadata'), h.get('ContentType')), ({'c': '3'}, 'text/csv'),
               'copy onto itself with REPLACE updates metadata')
        run.ok(get(B, 'src') == data, 'content unchanged by the self-copy')
        err('CopyObject from a missing key', 404, 'NoSuchKey', s3.copy_object, Bucket=B,
            Key='dst4', CopySource={'Bucket': B, 'Key': 'missing'})
        err('CopyObject from a missing bucket', 404, 'NoSuchBucket', s3.copy_object, Bucket=B,
            Key='dst4', CopySource={'Bucket': 'no-such-bucket', 'Key': 'x'})

    # ---- listing ----------------------------------------------------------------------------
    L = 'boto-list'
    lkeys = ['a/1', 'a/2', 'b/1', 'c', 'd/x/y', 'e']
    with run.section('ListObjects v1'):
        s3.create_bucket(Bucket=L)
        for k in lkeys:
            s3.put_object(Bucket=L, Key=k, Body=k.encode())
        r = s3.list_objects(Bucket=L)
        run.eq([c['Key'] for c in r.get('Contents', [])], lkeys, 'v1 lists all, sorted')
        run.ok(all(c.get('Owner', {}).get('ID') for c in r.get('Contents', [])),
               'v1 Contents carry Owner')
        run.ok(all(c.get('Size') == len(c['Key']) and c.get('ETag') for c in r['Contents']),
               'v1 Contents Size and ETag')
        r = s3.list_objects(Bucket=L, MaxKeys=2)
        run.ok(r.get('IsTruncated') is True and [c['Key'] for c in r['Contents']] == lkeys[:2],
               'v1 MaxKeys=2: first two, truncated')
        r = s3.list_objects(Bucket=L, Marker='b/1')
        run.eq([c['Key'] for c in r.get('Contents', [])], lkeys[3:], 'v1 Marker=b/1')
        # with a delimiter, NextMarker is returned when truncated
        seen, marker, pages = [], '', 0
        while pages < 10:
            pages += 1
            r = s3.list_objects(Bucket=L, Delimiter='/', MaxKeys=2, Marker=marker)
            seen += [c['Key'] for c in r.get('Contents', [])]
            seen += [p['Prefix'] for p in r.get('CommonPrefixes', [])]
            if not r.get('IsTruncated'):
                break
            if not run.ok(r.get('NextMarker'), 'v1 truncated with delimiter has NextMarker', r):
                break
            marker = r['NextMarker']
        run.eq(sorted(seen), ['a/', 'b/', 'c', 'd/', 'e'],
               'v1 delimiter paging by NextMarker: each entry once')
        run.eq(pages, 3, 'v1 delimiter paging: 3 pages of 2')
        r = s3.list_objects(Bucket=L, Prefix='d/', Delimiter='/')
        run.eq([p['Prefix'] for p in r.get('CommonPrefixes', [])], ['d/x/'], 'v1 prefix d/')

    with run.section('ListObjects v2'):
        r = s3.list_objects_v2(Bucket=L)
        run.eq([c['Key'] for c in r.get('Contents', [])], lkeys, 'v2 lists all')
        run.eq(r.get('KeyCount'), 6, 'v2 KeyCount')
        run.ok(all('Owner' not in c for c in r['Contents']), 'v2 without FetchOwner: no Owner')
        r = s3.list_objects_v2(Bucket=L, FetchOwner=True)
        run.ok(all(c.get('Owner', {}).get('ID') for c in r['Contents']), 'v2 FetchOwner: Owner')
        r = s3.list_objects_v2(Bucket=L, Delimiter='/')
        run.eq([c['Key'] for c in r.get('Contents', [])], ['c', 'e'], 'v2 delimiter: Contents')
        run.eq([p['Prefix'] for p in r.get('CommonPrefixes', [])], ['a/', 'b/', 'd/'],
               'v2 delimiter: CommonPrefixes')
        run.eq(r.get('KeyCount'), 5, 'v2 delimiter: KeyCount counts prefixes too')
        r = s3.list_objects_v2(Bucket=L, Prefix='a/')
        run.eq([c['Key'] for c in r.get('Contents', [])], ['a/1', 'a/2'], 'v2 Prefix a/')
        r = s3.list_objects_v2(Bucket=L, Prefix='zzz')
        run.ok(r.get('KeyCount') == 0 and not r.get('Contents'), 'v2 no match: empty', r)
        r = s3.list_objects_v2(Bucket=L, StartAfter='b/1')
        run.eq([c['Key'] for c in r.get('Contents', [])], lkeys[3:], 'v2 StartAfter b/1')
        seen, token, pages = [], None, 0
        while pages < 10:
            pages += 1
            kw = {'ContinuationToken': token} if token else {}
            r = s3.list_objects_v2(Bucket=L, MaxKeys=2, **kw)
            seen += [c['Key'] for c in r.get('Contents', [])]
            run.eq(r.get('MaxKeys'), 2, 'v2 page %d echoes MaxKeys' % pages)
            if not r.get('IsTruncated'):
                break
            token = r.get('NextContinuationToken')
            if not run.ok(token, 'v2 truncated page has NextContinuationToken'):
                break
        run.eq(seen, lkeys, 'v2 ContinuationToken paging: all keys once, in order')
        r = s3.list_objects_v2(Bucket=L, MaxKeys=0)
        run.ok(r.get('KeyCount') == 0 and not r.get('Contents'), 'v2 MaxKeys=0: no keys', r)
        seen = []
        for page in s3.get_paginator('list_objects_v2').paginate(
                Bucket=L, PaginationConfig={'PageSize': 2}):
            seen += [c['Key'] for c in page.get('Contents', [])]
        run.eq(seen, lkeys, 'list_objects_v2 paginator, PageSize 2')
        seen = []
        for page in s3.get_paginator('list_objects').paginate(
                Bucket=L, PaginationConfig={'PageSize': 2}):
            seen += [c['Key'] for c in page.get('Contents', [])]
        run.eq(seen, lkeys, 'list_objects paginator, PageSize 2')
        seen = []
        for page in s3.get_paginator('list_objects').paginate(
                Bucket=L, Delimiter='/', PaginationConfig={'PageSize': 1}):
            seen += [c['Key'] for c in page.get('Contents', [])]
            seen += [p['Prefix'] for p in page.get('CommonPrefixes', [])]
        run.eq(sorted(seen), ['a/', 'b/', 'c', 'd/', 'e'],
               'list_objects paginator with delimiter, PageSize 1')
        seen = []
        for page in s3.get_paginator('list_objects_v2').paginate(
                Bucket=L, Delimiter='/', PaginationConfig={'PageSize': 1}):
            seen += [c['Key'] for c in page.get('Contents', [])]
            seen += [p['Prefix'] for p in page.get('CommonPrefixes', [])]
        run.eq(sorted(seen), ['a/', 'b/', 'c', 'd/', 'e'],
               'list_objects_v2 paginator with delimiter, PageSize 1')

    # ---- odd keys ---------------------------------------------------------------------------
    O = 'boto-odd'
    odd = ['../x', 'a//b', '/lead', 'sp ace', 'pct%41', 'ünï', 'plus+sign', 'q?x=1&y=2',
           'hash#frag', 'tilde~', 'star*', 'semi;colon', 'quote"s', 'lt<gt>amp&', 'tab\u00a0nbsp',
           'dir/./dot', 'trailing/', 'emoji-\U0001f600', 'k' * 1024, '\u00fc' * 512]
    with run.section('odd keys'):
        s3.create_bucket(Bucket=O)
        for k in odd:
            label = k if len(k) < 40 else '%d-char key' % len(k)
            payload = ('body of ' + k).encode('utf-8')
            st, code, _ = client_error(s3.put_object, Bucket=O, Key=k, Body=payload)
            if not run.ok(st is None, 'PutObject %r' % label, '%s %s' % (st, code)):
                continue
            st, code, r = client_error(s3.get_object, Bucket=O, Key=k)
            run.ok(st is None and r['Body'].read() == payload, 'GetObject %r' % label,
                   '%s %s' % (st, code))
            ck = k + '.copy' if len(k.encode('utf-8')) <= 1019 else 'copy-of-long'
            st, code, r = client_error(s3.copy_object, Bucket=O, Key=ck,
                                       CopySource={'Bucket': O, 'Key': k})
            run.ok(st is None, 'CopyObject from %r' % label, '%s %s' % (st, code))
        listed = []
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=O):
            listed += [c['Key'] for c in page.get('Contents', [])]
        for k in odd:
            label = k if len(k) < 40 else '%d-char key' % len(k)
            run.ok(k in listed, 'ListObjectsV2 returns %r exactly' % label)
        # raw EncodingType=url: botocore does not decode when the caller asks for it
        r = s3.list_objects_v2(Bucket=O, EncodingType='url')
        run.eq(r.get('EncodingType'), 'url', 'EncodingType=url echoed')
        raw = [c['Key'] for c in r.get('Contents', [])]
        run.ok(all(' ' not in k and '<' not in k and all(ord(ch) < 128 for ch in k) for k in raw),
               'EncodingType=url keys are percent-encoded ASCII', [k for k in raw if ' ' in k][:3])
        run.eq(sorted(urllib.parse.unquote_plus(k) for k in raw), sorted(listed),
               'EncodingType=url keys decode to the stored keys')
        r = s3.list_objects_v2(Bucket=O, Delimiter='/', EncodingType='url', Prefix='a/')
        run.ok(r.get('Prefix') in ('a/', 'a%2F'), 'EncodingType=url: Prefix echoed',
               r.get('Prefix'))
        r = s3.list_objects(Bucket=O, EncodingType='url', MaxKeys=1000)
        run.eq(sorted(urllib.parse.unquote_plus(c['Key']) for c in r.get('Contents', [])),
               sorted(listed), 'v1 EncodingType=url decodes to the stored keys')
        err('1025-byte key', 400, 'KeyTooLongError', s3.put_object, Bucket=O, Key='k' * 1025,
            Body=b'x')
        err('1026-byte UTF-8 key', 400, 'KeyTooLongError', s3.put_object, Bucket=O,
            Key='\u00fc' * 513, Body=b'x')
        for k in odd:
            s3.delete_object(Bucket=O, Key=k)
        left = [c['Key'] for c in s3.list_objects_v2(Bucket=O).get('Contents', [])]
        run.ok(all(k not in left for k in odd), 'every odd key deletes')

    # ---- multipart --------------------------------------------------------------------------
    M = 'boto-mpu'
    with run.section('multipart upload'):
        s3.create_bucket(Bucket=M)
        src = os.urandom(6 * MiB)
        s3.put_object(Bucket=M, Key='copy-src', Body=src)
        p1, p3 = os.urandom(5 * MiB), os.urandom(1024)
        up = s3.create_multipart_upload(Bucket=M, Key='big', ContentType='application/x-big',
                                        Metadata={'m': 'v'})
        uid = up['UploadId']
        run.ok(uid and up.get('Key') == 'big' and up.get('Bucket') == M,
               'CreateMultipartUpload', up)
        e1 = s3.upload_part(Bucket=M, Key='big', UploadId=uid, PartNumber=1, Body=p1)['ETag']
        run.eq(e1, '"%s"' % hashlib.md5(p1).hexdigest(), 'UploadPart ETag = md5')
        r = s3.upload_part_copy(Bucket=M, Key='big', UploadId=uid, PartNumber=2,
                                CopySource={'Bucket': M, 'Key': 'copy-src'},
                                CopySourceRange='bytes=0-5242879')
        e2 = r.get('CopyPartResult', {}).get('ETag')
        run.eq(e2, '"%s"' % hashlib.md5(src[:5 * MiB]).hexdigest(),
               'UploadPartCopy with CopySourceRange: ETag of the range')
        e3 = s3.upload_part(Bucket=M, Key='big', UploadId=uid, PartNumber=3, Body=p3)['ETag']
        lp = s3.list_parts(Bucket=M, Key='big', UploadId=uid)
        run.eq([(p['PartNumber'], p['ETag'], p['Size']) for p in lp.get('Parts', [])],
               [(1, e1, 5 * MiB), (2, e2, 5 * MiB), (3, e3, 1024)], 'ListParts')
        lp = s3.list_parts(Bucket=M, Key='big', UploadId=uid, MaxParts=2)
        run.ok(lp.get('IsTruncated') is True and len(lp.get('Parts', [])) == 2,
               'ListParts MaxParts=2 truncated', lp.get('IsTruncated'))
        lp2 = s3.list_parts(Bucket=M, Key='big', UploadId=uid,
                            PartNumberMarker=lp.get('NextPartNumberMarker', 2))
        run.eq([p['PartNumber'] for p in lp2.get('Parts', [])], [3],
               'ListParts from NextPartNumberMarker')
        lu = s3.list_multipart_uploads(Bucket=M)
        run.eq([(u['Key'], u['UploadId']) for u in lu.get('Uploads', [])], [('big', uid)],
               'ListMultipartUploads shows the upload')
        err('GetObject before Complete', 404, 'NoSuchKey', s3.get_object, Bucket=M, Key='big')
        r = s3.complete_multipart_upload(
            Bucket=M, Key='big', UploadId=uid,
            MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e1},
                                       {'PartNumber': 2, 'ETag': e2},
                                       {'PartNumber': 3, 'ETag': e3}]})
        want_etag = fgtest.multipart_etag([p1, src[:5 * MiB], p3])
        run.eq(r.get('ETag'), want_etag, 'CompleteMultipartUpload ETag md5-of-md5s "-3"')
        got = s3.get_object(Bucket=M, Key='big')
        run.ok(got['Body'].read() == p1 + src[:5 * MiB] + p3, 'completed object content')
        run.eq((got.get('ContentLength'), got.get('ETag'), got.get('ContentType'),
                got.get('Metadata')),
               (10 * MiB + 1024, want_etag, 'application/x-big', {'m': 'v'}),
               'completed object length, ETag, type, metadata')
        run.eq(s3.list_multipart_uploads(Bucket=M).get('Uploads', []), [],
               'no uploads left after Complete')
        err('ListParts after Complete', 404, 'NoSuchUpload', s3.list_parts, Bucket=M, Key='big',
            UploadId=uid)

    with run.section('multipart errors'):
        def new(key):
            return s3.create_multipart_upload(Bucket=M, Key=key)['UploadId']

        u = new('small-parts')
        a = s3.upload_part(Bucket=M, Key='small-parts', UploadId=u, PartNumber=1,
                           Body=b'a' * 1024)['ETag']
        b_ = s3.upload_part(Bucket=M, Key='small-parts', UploadId=u, PartNumber=2,
                            Body=b'b' * 1024)['ETag']
        err('Complete with a 1 KiB non-last part', 400, 'EntityTooSmall',
            s3.complete_multipart_upload, Bucket=M, Key='small-parts', UploadId=u,
            MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': a},
                                       {'PartNumber': 2, 'ETag': b_}]})
        r = s3.complete_multipart_upload(Bucket=M, Key='small-parts', UploadId=u,
                                         MultipartUpload={'Parts': [{'PartNumber': 2,
                                                                     'ETag': b_}]})
        run.ok(r.get('ETag', '').endswith('-1"'),
               'a failed Complete leaves the upload usable; one small (last) part is fine')

        u = new('bad-part')
        p = os.urandom(5 * MiB)
        e = s3.upload_part(Bucket=M, Key='bad-part', UploadId=u, PartNumber=1, Body=p)['ETag']
        e2_ = s3.upload_part(Bucket=M, Key='bad-part', UploadId=u, PartNumber=2,
                             Body=b'tail')['ETag']
        err('Complete with a wrong ETag', 400, 'InvalidPart', s3.complete_multipart_upload,
            Bucket=M, Key='bad-part', UploadId=u,
            MultipartUpload={'Parts': [{'PartNumber': 1,
                                        'ETag': '"0123456789abcdef0123456789abcdef"'},
                                       {'PartNumber': 2, 'ETag': e2_}]})
        err('Complete with a part never uploaded', 400, 'InvalidPart',
            s3.complete_multipart_upload, Bucket=M, Key='bad-part', UploadId=u,
            MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e},
                                       {'PartNumber': 7, 'ETag': e2_}]})
        err('Complete with parts out of order', 400, 'InvalidPartOrder',
            s3.complete_multipart_upload, Bucket=M, Key='bad-part', UploadId=u,
            MultipartUpload={'Parts': [{'PartNumber': 2, 'ETag': e2_},
                                       {'PartNumber': 1, 'ETag': e}]})
        err('Complete with no parts', 400, 'MalformedXML', s3.complete_multipart_upload,
            Bucket=M, Key='bad-part', UploadId=u, MultipartUpload={'Parts': []})
        err('GetObject of a never-completed upload', 404, 'NoSuchKey', s3.get_object, Bucket=M,
            Key='bad-part')
        err('UploadPart number 0', 400, 'InvalidArgument', s3.upload_part, Bucket=M,
            Key='bad-part', UploadId=u, PartNumber=0, Body=b'x')
        err('UploadPart number 10001', 400, 'InvalidArgument', s3.upload_part, Bucket=M,
            Key='bad-part', UploadId=u, PartNumber=10001, Body=b'x')
        r = s3.abort_multipart_upload(Bucket=M, Key='bad-part', UploadId=u)
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 204, 'AbortMultipartUpload -> 204')
        err('ListParts after Abort', 404, 'NoSuchUpload', s3.list_parts, Bucket=M, Key='bad-part',
            UploadId=u)
        err('UploadPart after Abort', 404, 'NoSuchUpload', s3.upload_part, Bucket=M,
            Key='bad-part', UploadId=u, PartNumber=1, Body=b'x')
        err('Complete of an unknown upload id', 404, 'NoSuchUpload',
            s3.complete_multipart_upload, Bucket=M, Key='bad-part', UploadId='nonexistent-id',
            MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': e}]})
        ua, ub = new('mpu/a'), new('mpu/b')
        new('other')
        lu = s3.list_multipart_uploads(Bucket=M, Prefix='mpu/')
        run.eq(sorted((x['Key'], x['UploadId']) for x in lu.get('Uploads', [])),
               sorted([('mpu/a', ua), ('mpu/b', ub)]), 'ListMultipartUploads Prefix=mpu/')
        for x in s3.list_multipart_uploads(Bucket=M).get('Uploads', []):
            s3.abort_multipart_upload(Bucket=M, Key=x['Key'], UploadId=x['UploadId'])
        run.eq(s3.list_multipart_uploads(Bucket=M).get('Uploads', []), [], 'all aborted')

    # ---- ACLs -------------------------------------------------------------------------------
    with run.section('ACLs'):
        owner = s3.list_buckets()['Owner']['ID']
        for name, acl in (('GetBucketAcl', s3.get_bucket_acl(Bucket=B)),
                          ('GetObjectAcl', s3.get_object_acl(Bucket=B, Key='obj'))):
            run.eq(acl.get('Owner', {}).get('ID'), owner, '%s: Owner is the account' % name)
            run.ok([(g['Grantee'].get('ID'), g['Permission']) for g in acl.get('Grants', [])]
                   == [(owner, 'FULL_CONTROL')], '%s: owner FULL_CONTROL only' % name,
                   acl.get('Grants'))
        r = s3.put_object_acl(Bucket=B, Key='obj', ACL='private')
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 200, 'PutObjectAcl private -> 200')
        r = s3.put_bucket_acl(Bucket=B, ACL='private')
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 200, 'PutBucketAcl private -> 200')
        err('GetObjectAcl missing key', 404, 'NoSuchKey', s3.get_object_acl, Bucket=B, Key='nope')

    # ---- presigned URLs ---------------------------------------------------------------------
    with run.section('presigned v4'):
        url = s3.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'obj'},
                                        ExpiresIn=300)
        st, h, b = http('GET', url)
        run.ok(st == 200 and b == data, 'presigned v4 GET -> 200, body', st)
        run.ok(bool(h.get('x-amz-request-id')), 'presigned response has x-amz-request-id')
        url = s3.generate_presigned_url('put_object', Params={'Bucket': B, 'Key': 'pre-put'},
                                        ExpiresIn=300)
        st, h, b = http('PUT', url, data=b'presigned put body',
                        headers={'Content-Type': 'application/octet-stream'})
        run.eq(st, 200, 'presigned v4 PUT -> 200')
        run.ok(get(B, 'pre-put') == b'presigned put body', 'presigned PUT stored the body')
        url = s3.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'obj'},
                                        ExpiresIn=1)
        time.sleep(2.5)
        st, h, b = http('GET', url)
        run.ok(st == 403 and fgtest.error_code(b) == 'AccessDenied',
               'expired presigned v4 URL -> 403 AccessDenied', '%s %s' % (st, b[:200]))
        url = s3.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'obj'},
                                        ExpiresIn=300)
        st, h, b = http('GET', url.replace('/obj?', '/meta?'))
        run.ok(st == 403 and fgtest.error_code(b) == 'SignatureDoesNotMatch',
               'presigned v4 URL used for another key -> 403 SignatureDoesNotMatch', st)
        st, h, b = http('GET', url.replace('X-Amz-Expires=300', 'X-Amz-Expires=604801'))
        run.ok(st in (400, 403), 'presigned v4 with X-Amz-Expires > 7 days refused', st)

    with run.section('SigV2 client and presign'):
        r = s3v2.put_object(Bucket=B, Key='v2obj', Body=b'v2 data', Metadata={'v': '2'},
                            ContentType='text/plain')
        run.eq(r['ResponseMetadata']['HTTPStatusCode'], 200, 'SigV2 PutObject')
        r = s3v2.get_object(Bucket=B, Key='v2obj')
        run.ok(r['Body'].read() == b'v2 data' and r.get('Metadata') == {'v': '2'},
               'SigV2 GetObject body and metadata')
        # botocore 1.29's HmacV1Auth signs path-style bucket requests as "/bucket/" and
        # subresources twice ("/b/k?acl?acl"), so listing and ?acl go through fgtest's SigV2
        # signer (s3cmd's SigV2 run covers those paths with a real client too).
        h = fgtest.sigv2_headers('GET', '/%s/' % B)
        r = fgtest.request(fg.port, 'GET', '/%s/?prefix=v2' % B, h)
        run.ok(r.status == 200 and b'<Key>v2obj</Key>' in r.body, 'SigV2 ListObjects (raw)',
               repr(r))
        h = fgtest.sigv2_headers('GET', '/%s/v2obj' % B, subresource='?acl')
        r = fgtest.request(fg.port, 'GET', '/%s/v2obj?acl' % B, h)
        run.ok(r.status == 200 and b'FULL_CONTROL' in r.body,
               'SigV2 GetObjectAcl (raw, ?acl signed)', repr(r))
        h = fgtest.sigv2_headers('GET', '/%s/v2obj' % B, {'x-amz-meta-extra': 'signed'})
        r = fgtest.request(fg.port, 'GET', '/%s/v2obj' % B, h)
        run.eq(r.status, 200, 'SigV2 with an x-amz-* header in the string to sign')
        r = s3v2.head_object(Bucket=B, Key='v2obj')
        run.eq(r.get('ContentLength'), 7, 'SigV2 HeadObject')
        url = s3v2.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'obj'},
                                          ExpiresIn=300)
        run.ok('Signature=' in url and 'AWSAccessKeyId=' in url, 'v2 presigned URL', url)
        st, h, b = http('GET', url)
        run.ok(st == 200 and b == data, 'presigned v2 GET -> 200, body', st)
        # SigV2 signs Content-Type: presign with the type the PUT will send
        url = s3v2.generate_presigned_url('put_object', Params={
            'Bucket': B, 'Key': 'v2-put', 'ContentType': 'application/octet-stream'},
            ExpiresIn=300)
        st, h, b = http('PUT', url, data=b'v2 presigned',
                        headers={'Content-Type': 'application/octet-stream'})
        run.eq(st, 200, 'presigned v2 PUT -> 200')
        st, code, r = client_error(s3.get_object, Bucket=B, Key='v2-put')
        run.ok(st is None and r['Body'].read() == b'v2 presigned',
               'presigned v2 PUT stored the body', '%s %s' % (st, code))
        url = s3v2.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'obj'},
                                          ExpiresIn=1)
        time.sleep(2.5)
        st, h, b = http('GET', url)
        run.ok(st == 403 and fgtest.error_code(b) == 'AccessDenied',
               'expired presigned v2 URL -> 403 AccessDenied', '%s %s' % (st, b[:200]))
        s3v2.delete_object(Bucket=B, Key='v2obj')
        err('SigV2 GetObject after delete', 404, 'NoSuchKey', s3v2.get_object, Bucket=B,
            Key='v2obj')

    # ---- authentication failures ------------------------------------------------------------
    with run.section('authentication'):
        bad_secret = fgtest.boto3_client(fg.endpoint, secret='wrong' + fgtest.SECRET_KEY)
        bad_key = fgtest.boto3_client(fg.endpoint, access='AKIANOSUCHKEY0000000')
        bad_v2 = fgtest.boto3_client(fg.endpoint, sig='s3', secret='wrong')
        for c in (bad_secret, bad_key, bad_v2):
            c.meta.events.register('after-call.s3', check_rid)
        err('wrong secret (v4) ListBuckets', 403, 'SignatureDoesNotMatch', bad_secret.list_buckets)
        err('wrong secret (v4) PutObject', 403, 'SignatureDoesNotMatch', bad_secret.put_object,
            Bucket=B, Key='evil', Body=b'x')
        err('wrong secret (v2) GetObject', 403, 'SignatureDoesNotMatch', bad_v2.get_object,
            Bucket=B, Key='obj')
        err('unknown access key', 403, 'InvalidAccessKeyId', bad_key.list_buckets)
        err('anonymous ListBuckets', 403, 'AccessDenied', anon.list_buckets)
        err('anonymous GetObject', 403, 'AccessDenied', anon.get_object, Bucket=B, Key='obj')
        err('anonymous PutObject', 403, 'AccessDenied', anon.put_object, Bucket=B, Key='evil2',
            Body=b'x')
        err('anonymous CreateBucket', 403, 'AccessDenied', anon.create_bucket, Bucket='evil-bkt')
        err('nothing stored by refused PUTs', 404, 'NoSuchKey', s3.get_object, Bucket=B,
            Key='evil')
        err('nothing stored by anonymous PUT', 404, 'NoSuchKey', s3.get_object, Bucket=B,
            Key='evil2')
        run.ok('evil-bkt' not in [b['Name'] for b in s3.list_buckets()['Buckets']],
               'no bucket from the anonymous CreateBucket')

    run.ok(not missing_rid, 'every response carried x-amz-request-id',
           '\n'.join(missing_rid[:20]))


if __name__ == '__main__':
    fgtest.Run('boto3').main(body)

"""Bucket notification configurations (PutBucketNotificationConfiguration and
GetBucketNotificationConfiguration) against a real floodgate: round trips with aws-cli and boto3,
every validation error S3 answers (code and message), hostile XML, the empty configuration that
removes everything, and DeleteBucket dropping a bucket's configuration.

The gateway knows a destination through a notification target of its config file
(`targets: [{id: audit, type: webhook, endpoint: ...}]`, ARN arn:floodgate:sqs::audit:webhook).

Run: ctest -L integration -R integration.notif_config (or FG_BIN=build/floodgate
/usr/bin/python3 tests/integration/test_notif_config.py).
"""
import base64
import hashlib
import json

import fgtest
from fgtest import MiB, S3_NS, client_error, signed
from test_hostile import send_streaming

ARN = 'arn:floodgate:sqs::audit:webhook'
UNKNOWN_ARN = 'arn:floodgate:sqs::nobody:webhook'
B = 'notif-bucket'

MSG_EVENT = 'A specified event is not supported for notifications.'
MSG_RULE_NAME = 'filter rule name must be either prefix or suffix'
MSG_TWO_PREFIX = 'Cannot specify more than one prefix rule in a filter.'
MSG_TWO_SUFFIX = 'Cannot specify more than one suffix rule in a filter.'
MSG_OVERLAP = ('Configurations overlap. Configurations on the same bucket cannot share a common '
               'event type.')
MSG_DEST = 'Unable to validate the following destination configurations'


def queue(events, prefix=None, suffix=None, arn=ARN, id_=None, rules=None):
    q = {'QueueArn': arn, 'Events': list(events)}
    if id_ is not None:
        q['Id'] = id_
    fr = list(rules or [])
    if prefix is not None:
        fr.append({'Name': 'prefix', 'Value': prefix})
    if suffix is not None:
        fr.append({'Name': 'suffix', 'Value': suffix})
    if fr:
        q['Filter'] = {'Key': {'FilterRules': fr}}
    return q


def content_md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put_raw(fg, bucket, data, headers=None):
    h = {'content-md5': content_md5(data), 'content-type': 'application/xml'}
    h.update(headers or {})
    return signed(fg.port, 'PUT', bucket, query=[('notification', '')], headers=h, body=data)


def validation_checks(run, fg, arn):
    """Everything that holds whether or not `arn` is a known destination."""
    s3 = fgtest.boto3_client(fg.endpoint)

    def put(cfg, bucket=B):
        return client_error(s3.put_bucket_notification_configuration, Bucket=bucket,
                            NotificationConfiguration=cfg)

    def refused(desc, cfg, code, msg=None, status=400):
        st, cd, resp = put(cfg)
        got_msg = resp.get('Error', {}).get('Message') if st is not None else None
        run.ok(st == status and cd == code and (msg is None or got_msg == msg),
               '%s -> %s %s' % (desc, status, code), 'got %s %s %r' % (st, cd, got_msg))
        return resp

    with run.section('no bucket, no configuration'):
        st, cd, _ = client_error(s3.get_bucket_notification_configuration, Bucket='nope-bucket')
        run.eq((st, cd), (404, 'NoSuchBucket'), 'GET on a missing bucket -> NoSuchBucket')
        st, cd, _ = put({'QueueConfigurations': [queue(['s3:ObjectCreated:*'])]},
                        bucket='nope-bucket')
        run.eq((st, cd), (404, 'NoSuchBucket'), 'PUT on a missing bucket -> NoSuchBucket')
        s3.create_bucket(Bucket=B)
        r = s3.get_bucket_notification_configuration(Bucket=B)
        run.ok(not any(k in r for k in ('QueueConfigurations', 'TopicConfigurations',
                                        'LambdaFunctionConfigurations')),
               'GET of an unconfigured bucket: empty', repr(r))
        raw = signed(fg.port, 'GET', B, query=[('notification', '')])
        run.ok(raw.status == 200 and b'<NotificationConfiguration xmlns="http://s3.amazonaws'
               b'.com/doc/2006-03-01/"/>' in raw.body,
               'GET answers an empty NotificationConfiguration with the S3 namespace', raw.body)
        st, cd, _ = put({})
        run.ok(st is None, 'PUT of an empty configuration is accepted')

    with run.section('validation errors'):
        refused('unknown event', {'QueueConfigurations': [queue(['s3:ObjectCreated:Get'])]},
                'InvalidArgument', MSG_EVENT)
        refused('an AWS event floodgate never reports',
                {'QueueConfigurations': [queue(['s3:ObjectRestore:*'])]}, 'InvalidArgument',
                MSG_EVENT)
        refused('filter rule named "middle"',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:*'],
                                               rules=[{'Name': 'middle', 'Value': 'x'}])]},
                'InvalidArgument', MSG_RULE_NAME)
        refused('two prefix rules',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:*'], prefix='a',
                                               rules=[{'Name': 'Prefix', 'Value': 'b'}])]},
                'InvalidArgument', MSG_TWO_PREFIX)
        refused('two suffix rules',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:*'], suffix='a',
                                               rules=[{'Name': 'suffix', 'Value': 'b'}])]},
                'InvalidArgument', MSG_TWO_SUFFIX)
        refused('a filter value of 1025 bytes',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:*'], prefix='p' * 1025)]},
                'InvalidArgument')
        refused('overlapping rules (wildcard and member, no filters)',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:*']),
                                         queue(['s3:ObjectCreated:Put'])]},
                'InvalidArgument', MSG_OVERLAP)
        refused('overlapping prefixes',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:Put'], prefix='img/'),
                                         queue(['s3:ObjectCreated:Put'], prefix='img/raw/')]},
                'InvalidArgument', MSG_OVERLAP)
        refused('overlapping suffixes (jpg, pg)',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:Put'], suffix='jpg'),
                                         queue(['s3:ObjectCreated:Put'], suffix='pg')]},
                'InvalidArgument', MSG_OVERLAP)
        refused('overlap across a queue and a topic',
                {'QueueConfigurations': [queue(['s3:ObjectRemoved:*'])],
                 'TopicConfigurations': [{'TopicArn': arn,
                                          'Events': ['s3:ObjectRemoved:Delete']}]},
                'InvalidArgument', MSG_OVERLAP)
        refused('a duplicate Id',
                {'QueueConfigurations': [queue(['s3:ObjectCreated:*'], id_='same'),
                                         queue(['s3:ObjectRemoved:*'], id_='same')]},
                'InvalidArgument')
        resp = refused('an unknown destination',
                       {'QueueConfigurations': [queue(['s3:ObjectCreated:*'],
                                                      arn=UNKNOWN_ARN)]},
                       'InvalidArgument', MSG_DEST)
        run.eq(resp.get('Error', {}).get('ArgumentName'), UNKNOWN_ARN,
               'the unknown destination is named in ArgumentName')

    with run.section('hostile XML'):
        def malformed(desc, data, big=False):
            if big:
                h = fgtest.sigv4_headers('PUT', fg.hostport, '/' + B, [('notification', '')],
                                         {'content-type': 'application/xml'},
                                         fgtest.UNSIGNED_PAYLOAD)
                head = ('PUT /%s?notification= HTTP/1.1\r\n' % B +
                        ''.join('%s: %s\r\n' % kv for kv in h.items()) +
                        'Content-Length: %d\r\n\r\n' % len(data)).encode()
                r, _ = send_streaming(fg.port, head, data, timeout=30)
            else:
                r = put_raw(fg, B, data)
            run.ok(r is not None and r.status == 400 and r.error_code == 'MalformedXML',
                   '%s -> 400 MalformedXML' % desc, repr(r))
            run.ok(r is None or b'root:' not in r.body, 'no /etc/passwd in the reply (%s)' % desc)

        cfg = (b'<NotificationConfiguration><QueueConfiguration><Queue>%s</Queue>'
               b'<Event>&e;</Event></QueueConfiguration></NotificationConfiguration>'
               % arn.encode())
        malformed('an internal entity',
                  b'<!DOCTYPE NotificationConfiguration [<!ENTITY e "s3:ObjectCreated:*">]>' + cfg)
        malformed('XXE file:///etc/passwd',
                  b'<!DOCTYPE NotificationConfiguration [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                  + cfg)
        laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
                  b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                  b'<NotificationConfiguration><QueueConfiguration><Id>&c;</Id>'
                  b'<Queue>x</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration>'
                  b'</NotificationConfiguration>')
        malformed('billion laughs', laughs)
        malformed('not XML', b'this is not <xml')
        malformed('another root', b'<Delete/>')
        malformed('an unknown element',
                  b'<NotificationConfiguration><Bogus/></NotificationConfiguration>')
        malformed('a configuration without its ARN',
                  b'<NotificationConfiguration><QueueConfiguration>'
                  b'<Event>s3:ObjectCreated:*</Event></QueueConfiguration>'
                  b'</NotificationConfiguration>')
        malformed('an empty body', b'')
        huge = (b'<NotificationConfiguration>' + b' ' * (3 * MiB) +
                b'</NotificationConfiguration>')
        malformed('a 3 MiB body', huge, big=True)
        r = put_raw(fg, B, b'<NotificationConfiguration/>',
                    {'content-md5': content_md5(b'other')})
        run.ok(r.status == 400 and r.error_code == 'BadDigest', 'a wrong Content-MD5 -> BadDigest',
               repr(r))
        r = signed(fg.port, 'DELETE', B, query=[('notification', '')])
        run.eq(r.status, 501, 'DELETE ?notification -> 501')
        r = signed(fg.port, 'GET', B, key='k', query=[('notification', '')])
        run.eq(r.status, 501, 'objects have no notification configuration -> 501')
        raw = signed(fg.port, 'GET', B, query=[('notification', '')])
        run.ok(raw.status == 200 and b'QueueConfiguration' not in raw.body,
               'every refused PUT left the bucket unconfigured', raw.body)


def round_trips(run, fg):
    s3 = fgtest.boto3_client(fg.endpoint)
    cli = run.aws_cli(fg.endpoint)

    with run.section('boto3 round trip'):
        cfg = {
            'QueueConfigurations': [
                queue(['s3:ObjectCreated:*'], prefix='images/', suffix='.jpg', id_='jpgs'),
                queue(['s3:ObjectCreated:*'], prefix='images/', suffix='.png', id_='pngs'),
                queue(['s3:ObjectRemoved:*'], prefix='images/'),
            ],
            'TopicConfigurations': [{'Id': 'topic', 'TopicArn': ARN,
                                     'Events': ['s3:ObjectCreated:Put']}],
            'LambdaFunctionConfigurations': [{
                'LambdaFunctionArn': ARN, 'Events': ['s3:ObjectRemoved:DeleteMarkerCreated'],
                'Filter': {'Key': {'FilterRules': [{'Name': 'prefix', 'Value': 'logs/'}]}}}],
        }
        # topic Put on all keys vs the jpg/png queues (ObjectCreated:*) would overlap: refused
        st, cd, resp = client_error(s3.put_bucket_notification_configuration, Bucket=B,
                                    NotificationConfiguration=cfg)
        run.eq((st, cd), (400, 'InvalidArgument'), 'a topic for every Put overlaps the queues')
        cfg['TopicConfigurations'][0]['Filter'] = {
            'Key': {'FilterRules': [{'Name': 'prefix', 'Value': 'docs/'}]}}
        st, cd, resp = client_error(s3.put_bucket_notification_configuration, Bucket=B,
                                    NotificationConfiguration=cfg)
        run.ok(st is None, 'PUT of queue, topic and lambda rules (the allowed overlaps of S3)',
               repr(resp))
        got = s3.get_bucket_notification_configuration(Bucket=B)
        qs = got.get('QueueConfigurations', [])
        run.eq(len(qs), 3, 'three queue configurations back')
        run.eq([q.get('Id') for q in qs[:2]], ['jpgs', 'pngs'], 'given Ids kept')
        run.ok(len(qs) == 3 and qs[2].get('Id'), 'a missing Id is generated', repr(qs))
        run.ok(all(q.get('QueueArn') == ARN for q in qs), 'ARNs back')
        rules = {r['Name'].lower(): r['Value']
                 for r in qs[0].get('Filter', {}).get('Key', {}).get('FilterRules', [])} \
            if qs else {}
        run.eq(rules, {'prefix': 'images/', 'suffix': '.jpg'}, 'filter rules back')
        ts = got.get('TopicConfigurations', [])
        run.ok(len(ts) == 1 and ts[0].get('TopicArn') == ARN and
               ts[0].get('Events') == ['s3:ObjectCreated:Put'], 'the topic back', repr(ts))
        ls = got.get('LambdaFunctionConfigurations', [])
        run.ok(len(ls) == 1 and ls[0].get('LambdaFunctionArn') == ARN, 'the lambda back',
               repr(ls))
        # what GET answered goes back with PUT unchanged
        again = {k: got[k] for k in ('QueueConfigurations', 'TopicConfigurations',
                                     'LambdaFunctionConfigurations') if k in got}
        s3.put_bucket_notification_configuration(Bucket=B, NotificationConfiguration=again)
        got2 = s3.get_bucket_notification_configuration(Bucket=B)
        run.eq({k: got2.get(k) for k in again}, again, 'GET, PUT back, GET: the same')

    with run.section('aws-cli round trip'):
        cfg = {'QueueConfigurations': [{'Id': 'cli', 'QueueArn': ARN,
                                        'Events': ['s3:ObjectCreated:Put',
                                                   's3:ObjectCreated:Copy'],
                                        'Filter': {'Key': {'FilterRules': [
                                            {'Name': 'suffix', 'Value': '.csv'}]}}}]}
        r = cli('s3api', 'put-bucket-notification-configuration', '--bucket', B,
                '--notification-configuration', json.dumps(cfg))
        run.ok(r.returncode == 0, 'aws s3api put-bucket-notification-configuration', r.stderr)
        got = cli.json('s3api', 'get-bucket-notification-configuration', '--bucket', B)
        qs = got.get('QueueConfigurations', [])
        run.ok(len(qs) == 1 and qs[0]['Id'] == 'cli' and qs[0]['QueueArn'] == ARN and
               qs[0]['Events'] == ['s3:ObjectCreated:Put', 's3:ObjectCreated:Copy'],
               'aws s3api get-bucket-notification-configuration: the configuration', repr(got))
        run.ok(not got.get('TopicConfigurations') and not got.get('LambdaFunctionConfigurations'),
               'the PUT replaced the whole configuration')
        r = cli('s3api', 'put-bucket-notification-configuration', '--bucket', B,
                '--notification-configuration', json.dumps({
                    'QueueConfigurations': [{'QueueArn': UNKNOWN_ARN,
                                             'Events': ['s3:ObjectCreated:*']}]}))
        run.ok(r.returncode != 0 and 'InvalidArgument' in r.stderr,
               'aws-cli: an unknown destination is refused', r.stderr)

    with run.section('the empty configuration removes all'):
        s3.put_bucket_notification_configuration(Bucket=B, NotificationConfiguration={})
        got = s3.get_bucket_notification_configuration(Bucket=B)
        run.ok(not got.get('QueueConfigurations'), 'nothing left', repr(got))

    with run.section('DeleteBucket drops the configuration'):
        s3.put_bucket_notification_configuration(
            Bucket=B, NotificationConfiguration={'QueueConfigurations': [
                queue(['s3:ObjectCreated:*'])]})
        s3.put_object(Bucket=B, Key='k', Body=b'v')
        st, cd, _ = client_error(s3.delete_bucket, Bucket=B)
        run.eq((st, cd), (409, 'BucketNotEmpty'), 'not while objects remain')
        run.eq(len(s3.get_bucket_notification_configuration(Bucket=B)
                   .get('QueueConfigurations', [])), 1, 'configuration still there')
        s3.delete_object(Bucket=B, Key='k')
        s3.delete_bucket(Bucket=B)
        st, cd, _ = client_error(s3.get_bucket_notification_configuration, Bucket=B)
        run.eq((st, cd), (404, 'NoSuchBucket'), 'GET after DeleteBucket -> NoSuchBucket')
        s3.create_bucket(Bucket=B)
        got = s3.get_bucket_notification_configuration(Bucket=B)
        run.ok(not got.get('QueueConfigurations'), 'the bucket made again has none', repr(got))

    with run.section('the configuration survives a restart'):
        s3.put_bucket_notification_configuration(
            Bucket=B, NotificationConfiguration={'QueueConfigurations': [
                queue(['s3:ObjectRemoved:*'], id_='kept')]})
        fg.restart()
        s3 = fgtest.boto3_client(fg.endpoint)
        qs = s3.get_bucket_notification_configuration(Bucket=B).get('QueueConfigurations', [])
        run.ok(len(qs) == 1 and qs[0]['Id'] == 'kept', 'back after a restart', repr(qs))


def body(run):
    run.require_module('boto3', 'botocore')
    run.require(fgtest.AWS)
    data = run.path('fg-data')
    cfg = run.write_config('floodgate.yaml', '''data_dir: %s
targets:
  - id: audit
    type: webhook
    endpoint: http://127.0.0.1:9/hook
''' % data)
    fg = run.floodgate(config=cfg, data_dir=data)
    validation_checks(run, fg, ARN)
    round_trips(run, fg)


if __name__ == '__main__':
    fgtest.Run('notif_config').main(body)

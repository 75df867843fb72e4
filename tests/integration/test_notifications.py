"""Bucket notifications delivered to webhooks, for real: the gateway with a real Redis and
HTTP receivers started by the test on loopback. The test event on configuration; 1,000 uploads
of which a suffix rule matches half -> exactly those 500 events, AWS-format, keys URL-encoded;
a receiver down for 30 s loses nothing; a receiver that answers after 5 s slows neither the
uploads nor another target; a receiver that always answers 500 sends events to the dead-letter
stream, replayable once it recovers; redis targets (a stream and a list on another Redis) get
the same messages; kill -9 of the gateway with deliveries pending loses nothing; /metrics and
/health show the counters and the backlog.

Run: ctest -R integration.notifications.
"""
import json
import os
import threading
import time
import urllib.parse

import fgtest

N = int(os.environ.get('FG_NOTIFY_N') or 1000)
DOWN_S = float(os.environ.get('FG_NOTIFY_DOWN_S') or 30)

CONFIG = '''
redis: %(redis)s
targets:
  - id: main
    type: webhook
    endpoint: %(main)s
    auth_token: sekrit
    max_attempts: 40
  - id: slow
    type: webhook
    endpoint: %(slow)s
    timeout: 20s
  - id: other
    type: webhook
    endpoint: %(other)s
  - id: failing
    type: webhook
    endpoint: %(failing)s
    max_attempts: 3
  - id: journal
    type: redis
    endpoint: %(sink)s
    key: s3-events
  - id: jlist
    type: redis
    endpoint: %(sink)s
    key: s3-list
    format: list
'''


def notif_xml(rules):
    out = ['<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
    for rid, arn, events, prefix, suffix in rules:
        out.append('<QueueConfiguration><Id>%s</Id><Queue>%s</Queue>' % (rid, arn))
        out += ['<Event>%s</Event>' % e for e in events]
        if prefix or suffix:
            out.append('<Filter><S3Key>')
            if prefix:
                out.append('<FilterRule><Name>prefix</Name><Value>%s</Value></FilterRule>' %
                           prefix)
            if suffix:
                out.append('<FilterRule><Name>suffix</Name><Value>%s</Value></FilterRule>' %
                           suffix)
            out.append('</S3Key></Filter>')
        out.append('</QueueConfiguration>')
    out.append('</NotificationConfiguration>')
    return ''.join(out).encode()


def put_config(run, port, bucket, rules):
    r = fgtest.signed(port, 'PUT', bucket, query=(('notification', ''),), body=notif_xml(rules))
    run.eq(r.status, 200, 'PutBucketNotificationConfiguration on %s' % bucket)


def arn(t):
    return 'arn:floodgate:sqs::%s:webhook' % t


def records(rcv):
    """(event id header, record dict) for every Records message the receiver got."""
    out = []
    for h, b in rcv.bodies():
        if b and 'Records' in b:
            out.append((h.get('x-floodgate-event-id'), b))
    return out


def metrics(port):
    r = fgtest.admin(port, 'GET', '/metrics', auth=None)
    vals = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith('#'):
            k, v = line.rsplit(' ', 1)
            vals[k] = float(v)
    return vals


def upload_many(endpoint, bucket, keys, threads=4):
    errors = []

    def work(part):
        c = fgtest.boto3_client(endpoint)
        for k in part:
            try:
                c.put_object(Bucket=bucket, Key=k, Body=b'x')
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))
    ts = [threading.Thread(target=work, args=(keys[i::threads],)) for i in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors, time.monotonic() - t0


def body(run):
    run.require(fgtest.REDIS)
    redis = fgtest.Redis(run, aof=True).start()
    main = fgtest.Receiver().start()
    slow = fgtest.Receiver(delay=5.0).start()
    other = fgtest.Receiver().start()
    failing = fgtest.Receiver(status=500).start()
    sink = fgtest.Redis(run, name='sink').start()
    cfg = run.write_config('fg.yaml', CONFIG % {'redis': redis.url, 'main': main.url,
                                               'slow': slow.url, 'other': other.url,
                                               'failing': failing.url, 'sink': sink.url})
    fg = run.floodgate(config=cfg)
    port = fg.port
    s3 = fgtest.boto3_client(fg.endpoint)
    for b in ('photos', 'slowb', 'failb', 'crashb', 'journalb'):
        s3.create_bucket(Bucket=b)

    with run.section('the test event on configuration'):
        put_config(run, port, 'photos', [('jpgs', arn('main'), ['s3:ObjectCreated:*'], '',
                                          '.jpg')])
        ok = fgtest.wait_for(lambda: any(b and b.get('Event') == 's3:TestEvent'
                                         for _, b in main.bodies()), 30)
        run.ok(ok, 'main received s3:TestEvent')
        test = [b for _, b in main.bodies() if b and b.get('Event') == 's3:TestEvent'][0]
        run.ok(test.get('Service') == 'Amazon S3' and test.get('Bucket') == 'photos',
               "AWS's flat test message", test)
        r = s3.get_bucket_notification_configuration(Bucket='photos')
        qc = r.get('QueueConfigurations', [])
        run.ok(len(qc) == 1 and qc[0]['QueueArn'] == arn('main') and qc[0]['Id'] == 'jpgs',
               'the configuration reads back (boto3)', qc)
        r = s3.put_bucket_notification_configuration(Bucket='photos', NotificationConfiguration={
            'QueueConfigurations': [{'Id': 'jpgs', 'QueueArn': arn('main'),
                                     'Events': ['s3:ObjectCreated:*'],
                                     'Filter': {'Key': {'FilterRules': [
                                         {'Name': 'suffix', 'Value': '.jpg'}]}}},
                                    {'Id': 'gone', 'QueueArn': arn('main'),
                                     'Events': ['s3:ObjectRemoved:*']}]})
        r = s3.get_bucket_notification_configuration(Bucket='photos')
        run.eq(sorted(c['Id'] for c in r.get('QueueConfigurations', [])), ['gone', 'jpgs'],
               'boto3 sets a configuration with two rules, and it reads back')

    with run.section('%d uploads, a suffix rule matching half -> exactly those events' % N):
        main.events.clear()
        keys = ['dir %d/p\u00e9%d.%s' % (i % 7, i, 'jpg' if i % 2 == 0 else 'png')
                for i in range(N)]
        errors, dt = upload_many(fg.endpoint, 'photos', keys)
        run.ok(not errors, 'every upload succeeded', errors[:3])
        run.note('%d uploads in %.1f s' % (N, dt))
        want = {k for k in keys if k.endswith('.jpg')}
        ok = fgtest.wait_for(lambda: len(records(main)) >= len(want), 120, 0.2)
        time.sleep(1)
        recs = records(main)
        run.ok(ok, 'the receiver got the matching events (%d)' % len(recs))
        got = [urllib.parse.unquote_plus(b['Records'][0]['s3']['object']['key'])
               for _, b in recs]
        run.eq(len(got), len(want), 'exactly %d events, none twice' % len(want))
        run.eq(set(got), want, 'exactly the keys the suffix rule selects')
        _, one = recs[0]
        rec = one['Records'][0]
        run.ok(rec['eventName'] == 'ObjectCreated:Put' and rec['eventSource'] == 'aws:s3' and
               rec['eventVersion'] == '2.1' and rec['s3']['configurationId'] == 'jpgs' and
               rec['s3']['bucket']['name'] == 'photos' and rec['s3']['object']['size'] == 1 and
               len(rec['s3']['object']['sequencer']) == 16,
               'AWS-format records', rec)
        raw = rec['s3']['object']['key']
        run.ok(' ' not in raw and '+' in raw and '%C3%A9' in raw,
               'keys URL-encoded as AWS does', raw)
        run.ok(one.get('EventName') == 's3:ObjectCreated:Put' and
               one.get('Key', '').startswith('photos/dir '),
               "MinIO's EventName and Key", {k: one.get(k) for k in ('EventName', 'Key')})
        hs = [h for h, _ in main.bodies()]
        run.ok(all(h.get('authorization') == 'Bearer sekrit' for h in hs), 'the auth token')
        ids = [i for i, _ in recs]
        run.ok(all(ids) and len(set(ids)) == len(ids), 'each has its own x-floodgate-event-id')
        s3.delete_object(Bucket='photos', Key=keys[1])
        ok = fgtest.wait_for(lambda: any(b['Records'][0]['eventName'] == 'ObjectRemoved:Delete'
                                         for _, b in records(main)), 30)
        run.ok(ok, 'a delete is delivered to the ObjectRemoved rule')

    with run.section('a receiver down for %d s: every event arrives' % DOWN_S):
        main.events.clear()
        main.stop()
        keys = ['down/%04d.jpg' % i for i in range(200)]
        errors, _ = upload_many(fg.endpoint, 'photos', keys)
        run.ok(not errors, 'uploads succeed while the receiver is down')
        time.sleep(DOWN_S)
        v = metrics(port)
        run.ok(v.get('floodgate_notification_backlog{target="main"}', 0) > 0,
               '/metrics shows the backlog while it is down',
               v.get('floodgate_notification_backlog{target="main"}'))
        # an unreachable receiver trips the circuit breaker: messages are held, not retried
        run.ok(v.get('floodgate_notification_target_up{target="main"}') == 0 and
               v.get('floodgate_notification_probes_total{target="main"}', 0) > 0,
               '/metrics shows the target down, and its probes',
               {k: v.get(k + '{target="main"}') for k in (
                   'floodgate_notification_target_up', 'floodgate_notification_probes_total',
                   'floodgate_notification_retried_total')})
        run.eq(v.get('floodgate_notification_dead_lettered_total{target="main"}', 0), 0,
               'no attempts used up while it is down')
        h = json.loads(fgtest.admin(port, 'GET', '/health', auth=None).body)
        run.ok(h.get('targets', {}).get('main', {}).get('backlog', 0) > 0,
               '/health shows the backlog', h.get('targets'))
        run.ok(h.get('targets', {}).get('main', {}).get('up') is False,
               '/health shows it down', h.get('targets'))
        main.start()
        ok = fgtest.wait_for(lambda: len({urllib.parse.unquote_plus(
            b['Records'][0]['s3']['object']['key']) for _, b in records(main)}) >= 200, 180, 0.5)
        got = {urllib.parse.unquote_plus(b['Records'][0]['s3']['object']['key'])
               for _, b in records(main)}
        run.ok(ok and got == set(keys), 'all 200 events arrived after it came back',
               '%d of 200' % len(got & set(keys)))
        ids = [i for i, _ in records(main)]
        run.note('%d deliveries for %d events (duplicates are deduplicated by event id)' %
                 (len(ids), len(set(ids))))
        run.eq(len(set(ids)), 200, 'none lost (distinct event ids)')
        run.eq(metrics(port).get('floodgate_notification_target_up{target="main"}'), 1,
               'and the target is up again')

    with run.section('a receiver answering after 5 s slows neither uploads nor other targets'):
        put_config(run, port, 'slowb', [('slow', arn('slow'), ['s3:ObjectCreated:*'], 'a/', ''),
                                        ('fast', 'arn:minio:sqs::other:webhook',
                                         ['s3:ObjectCreated:*'], 'b/', '')])
        other.events.clear()
        base_keys = ['base/%04d' % i for i in range(300)]
        _, t_base = upload_many(fg.endpoint, 'slowb', base_keys)
        keys = ['a/%04d' % i for i in range(300)]
        _, t_slow = upload_many(fg.endpoint, 'slowb', keys)
        run.note('300 uploads: %.2f s unbound, %.2f s bound to the slow target' % (t_base,
                                                                                  t_slow))
        run.ok(t_slow < max(3 * t_base, t_base + 2.0), 'upload time unchanged by the slow target')
        t0 = time.monotonic()
        fkeys = ['b/%04d' % i for i in range(50)]
        upload_many(fg.endpoint, 'slowb', fkeys)
        ok = fgtest.wait_for(lambda: len([1 for _, b in records(other)
                                          if b['Records'][0]['s3']['bucket']['name'] ==
                                          'slowb']) >= 50, 30, 0.1)
        run.ok(ok and time.monotonic() - t0 < 10,
               'the other target got its 50 events meanwhile (%.1f s)' % (time.monotonic() - t0))
        run.ok(slow.count() < 300, 'while the slow one is still working through its backlog (%d)'
               % slow.count())

    with run.section('a receiver that always answers 500: dead letters, then replay'):
        put_config(run, port, 'failb', [('f', arn('failing'), ['s3:ObjectCreated:*'], '', '')])
        keys = ['f/%02d' % i for i in range(10)]
        upload_many(fg.endpoint, 'failb', keys, threads=1)
        ok = fgtest.wait_for(lambda: len(json.loads(fgtest.admin(
            port, 'GET', '/system/notifications/failing/dlq').body or b'[]')) >= 11, 60, 0.5)
        dlq = json.loads(fgtest.admin(port, 'GET', '/system/notifications/failing/dlq').body)
        run.ok(ok, 'after max_attempts every message is dead-lettered (%d)' % len(dlq))
        run.ok(all(str(d.get('attempts')) == '3' and '500' in d.get('reason', '')
                   for d in dlq), 'with the attempts and the reason', dlq[:1])
        v = metrics(port)
        run.ok(v.get('floodgate_notification_dead_lettered_total{target="failing"}') >= 11,
               '/metrics counts dead letters')
        failing.status = 200
        r = fgtest.admin(port, 'POST', '/system/notifications/failing/dlq/replay')
        run.ok(r.status == 200 and json.loads(r.body).get('replayed') >= 11,
               'replay moves them back', r.body)
        ok = fgtest.wait_for(lambda: len(records(failing)) >= 10, 30, 0.2)
        got = {urllib.parse.unquote_plus(b['Records'][0]['s3']['object']['key'])
               for _, b in records(failing)}
        run.ok(ok and got == set(keys), 'replayed events are delivered once it recovers')
        r = fgtest.admin(port, 'GET', '/system/notifications/failing/dlq')
        run.eq(json.loads(r.body), [], 'the dead-letter stream is empty')
        r = fgtest.admin(port, 'GET', '/system/notifications/nosuch/dlq')
        run.eq(r.status, 404, 'an unknown target -> 404')

    with run.section('redis targets: a stream and a list on another Redis'):
        s3.put_bucket_notification_configuration(Bucket='journalb', NotificationConfiguration={
            'QueueConfigurations': [
                {'Id': 'all', 'QueueArn': 'arn:floodgate:sqs::journal:redis',
                 'Events': ['s3:ObjectCreated:*'],
                 'Filter': {'Key': {'FilterRules': [{'Name': 'prefix', 'Value': 'j/'}]}}},
                {'Id': 'txt', 'QueueArn': 'arn:floodgate:sqs::jlist:redis',
                 'Events': ['s3:ObjectCreated:*'],
                 'Filter': {'Key': {'FilterRules': [{'Name': 'prefix', 'Value': 't/'},
                                                    {'Name': 'suffix', 'Value': '.txt'}]}}}]})
        journal = ['j/%02d.bin' % i for i in range(10)] + ['j/caf\u00e9 au lait.txt']
        listed_keys = ['t/%02d.txt' % i for i in range(5)]
        keys = journal + listed_keys + ['t/%02d.bin' % i for i in range(5)]
        errors, _ = upload_many(fg.endpoint, 'journalb', keys)
        run.ok(not errors, '%d uploads acknowledged' % len(keys), errors[:3])

        def stream():
            # XRANGE --raw: entry id, "event", the message, per entry (messages are one line)
            lines = sink.cli('XRANGE', 's3-events', '-', '+').splitlines()
            return [json.loads(lines[i + 2]) for i in range(0, len(lines) - 2, 3)]

        def listed():
            return [json.loads(x) for x in sink.cli('LRANGE', 's3-list', '0', '-1').splitlines()]

        def created_keys(msgs):
            return sorted(urllib.parse.unquote_plus(m['Records'][0]['s3']['object']['key'])
                          for m in msgs if 'Records' in m)
        ok = fgtest.wait_for(lambda: len(created_keys(stream())) >= len(journal) and
                             len(created_keys(listed())) >= len(listed_keys), 30, 0.2)
        run.ok(ok, 'the events reached the stream and the list')
        run.eq(created_keys(stream()), sorted(journal), 'the stream: one event per j/ upload')
        run.eq(created_keys(listed()), sorted(listed_keys), 'the list: the t/*.txt uploads only')
        msgs = [m for m in stream() if 'Records' in m]
        rec = msgs[0]['Records'][0] if msgs else {}
        run.ok(rec.get('eventName') == 'ObjectCreated:Put' and
               rec.get('s3', {}).get('configurationId') == 'all' and
               rec.get('s3', {}).get('bucket', {}).get('name') == 'journalb' and
               msgs[0].get('EventName') == 's3:ObjectCreated:Put',
               'AWS format plus MinIO\'s EventName', rec)
        run.ok(any(m.get('Event') == 's3:TestEvent' for m in stream()) and
               any(m.get('Event') == 's3:TestEvent' for m in listed()),
               'each got the test event')
        run.ok('caf%C3%A9+au+lait.txt' in json.dumps(stream()), 'keys URL-encoded')

    with run.section('kill -9 the gateway with deliveries pending'):
        put_config(run, port, 'crashb', [('c', arn('other'), ['s3:ObjectCreated:*'], '', '')])
        other.stop()
        keys = ['k/%03d' % i for i in range(200)]
        errors, _ = upload_many(fg.endpoint, 'crashb', keys)
        run.ok(not errors, '200 uploads acknowledged')
        fg.kill9()
        other.start()
        fg.restart()
        ok = fgtest.wait_for(lambda: {urllib.parse.unquote_plus(
            b['Records'][0]['s3']['object']['key']) for _, b in records(other)
            if b['Records'][0]['s3']['bucket']['name'] == 'crashb'} >= set(keys), 120, 0.5)
        run.ok(ok, 'after restart all 200 were delivered')

    with run.section('bucket deletion drops the configuration'):
        for k in fgtest.list_keys(port, 'failb'):
            s3.delete_object(Bucket='failb', Key=k)
        s3.delete_bucket(Bucket='failb')
        s3.create_bucket(Bucket='failb')
        r = s3.get_bucket_notification_configuration(Bucket='failb')
        run.eq(r.get('QueueConfigurations', []), [], 'a re-created bucket has none')

    slow.stop()


if __name__ == '__main__':
    fgtest.Run('notifications').main(body)

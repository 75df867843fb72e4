"""The admin API with OSCAR's manager paths, against the real gateway, Redis and a worker:
every endpoint, bad JSON and YAML, unknown services, wrong credentials, SigV4 as well as basic
auth, and services surviving a restart.

Run: ctest -R integration.admin_api.
"""
import hashlib
import json
import time

import fgtest

CONFIG = '''
redis: %(redis)s
services:
  - name: fixed
    script: |
      echo fixed
    input:
      - path: fixedin
'''

SERVICE = {
    'name': 'echo',
    'script': '#!/bin/sh\necho "out:$(cat "$INPUT_FILE_PATH")"\necho "err" >&2\n',
    'input': [{'storage_provider': 'minio.default', 'path': 'echoin'}],
    'output': [{'storage_provider': 'minio.default', 'path': 'echoout'}],
    'environment': {'variables': {'A': '1'}, 'secrets': {'S': 'hidden'}},
    'timeout': 30,
    'max_attempts': 2,
}

YAML_SERVICE = '''
name: yamlsvc
script: |
  cat "$INPUT_FILE_PATH"
input:
  - path: yamlin
'''


def sigv4_admin(port, method, path, body=b''):
    host = '127.0.0.1:%d' % port
    h = fgtest.sigv4_headers(method, host, path, (), {'content-length': str(len(body))},
                             hashlib.sha256(body).hexdigest())
    return fgtest.request(port, method, path, headers=h, body=body)


def body(run):
    run.require(fgtest.REDIS)
    redis = fgtest.Redis(run).start()
    cfg = run.write_config('fg.yaml', CONFIG % {'redis': redis.url})
    fg = run.floodgate(config=cfg)
    port = fg.port
    api = lambda *a, **kw: fgtest.admin(port, *a, **kw)  # noqa: E731

    with run.section('health and info'):
        r = api('GET', '/health', auth=None)
        h = json.loads(r.body)
        run.ok(r.status == 200 and h['status'] == 'ok' and h['redis'] == 'connected',
               'GET /health without credentials: ok, Redis connected', h)
        r = api('GET', '/system/info')
        info = json.loads(r.body)
        run.ok(r.status == 200 and info.get('name') == 'floodgate' and 'version' in info,
               'GET /system/info', info)

    with run.section('credentials'):
        r = api('GET', '/system/services', auth=None)
        run.eq(r.status, 401, 'no credentials -> 401')
        run.ok('basic' in (r.header('www-authenticate') or '').lower(), 'with WWW-Authenticate')
        r = api('GET', '/system/services', auth=(fgtest.ACCESS_KEY, 'wrong'))
        run.eq(r.status, 401, 'a wrong secret -> 401')
        r = api('GET', '/system/services', auth=('nobody', fgtest.SECRET_KEY))
        run.eq(r.status, 401, 'an unknown access key -> 401')
        r = sigv4_admin(port, 'GET', '/system/services')
        run.eq(r.status, 200, 'SigV4 works too')
        r = api('POST', '/job/fixed', auth=None, body=b'x')
        run.eq(r.status, 401, 'POST /job without credentials -> 401')

    with run.section('services: create, read, update, delete'):
        r = api('POST', '/system/services', body=json.dumps(SERVICE))
        run.eq(r.status, 201, 'POST /system/services (JSON) -> 201')
        r = api('POST', '/system/services', body=json.dumps(SERVICE))
        run.eq(r.status, 409, 'creating it again -> 409')
        r = api('POST', '/system/services', body=YAML_SERVICE)
        run.eq(r.status, 201, 'POST /system/services (YAML) -> 201')
        r = api('GET', '/system/services/echo')
        svc = json.loads(r.body)
        run.ok(r.status == 200 and svc['name'] == 'echo' and svc['script'] == SERVICE['script'],
               'GET /system/services/echo', svc)
        run.ok(svc['environment']['secrets'].get('S') != 'hidden', 'secrets are not shown',
               svc['environment'])
        run.eq(svc['input'][0]['path'], 'echoin', 'OSCAR field names (input.path)')
        r = api('GET', '/system/services')
        names = sorted(s['name'] for s in json.loads(r.body))
        run.eq(names, ['echo', 'fixed', 'yamlsvc'], 'GET /system/services lists all')
        upd = dict(SERVICE, timeout=60)
        r = api('PUT', '/system/services', body=json.dumps(upd))
        run.eq(r.status, 204, 'PUT /system/services -> 204')
        r = api('GET', '/system/services/echo')
        run.eq(json.loads(r.body)['timeout'], 60, 'the update is visible')
        r = api('PUT', '/system/services/nosuch', body=json.dumps(dict(SERVICE, name='nosuch')))
        run.eq(r.status, 404, 'PUT of an unknown service -> 404')
        r = api('DELETE', '/system/services/fixed')
        run.eq(r.status, 409, 'a service from the config file cannot be deleted -> 409')
        r = api('GET', '/system/services/nosuch')
        run.eq(r.status, 404, 'GET of an unknown service -> 404')
        r = api('DELETE', '/system/services/nosuch')
        run.eq(r.status, 404, 'DELETE of an unknown service -> 404')

    with run.section('bad bodies'):
        r = api('POST', '/system/services', body=b'{"name": "x", ')
        run.eq(r.status, 400, 'truncated JSON -> 400')
        r = api('POST', '/system/services', body=b'name: [unclosed\n')
        run.eq(r.status, 400, 'bad YAML -> 400')
        r = api('POST', '/system/services',
                body=b'name: odd\nscript: "x"\ninput:\n  - path: b\nbogus_field: 1\n')
        run.ok(r.status == 400 and b'bogus_field' in r.body and b'line 5' in r.body,
               'an unknown field is named with its line', r.body)
        r = api('POST', '/system/services', body=b'name: Bad_Name!\nscript: x\n'
                b'input:\n  - path: b\n')
        run.eq(r.status, 400, 'an invalid name -> 400')
        r = api('POST', '/system/services', body=b'name: noinput\nscript: x\n')
        run.eq(r.status, 400, 'a service without input -> 400')
        r = api('POST', '/system/services', body=b'\x00\xff' * 100)
        run.eq(r.status, 400, 'binary garbage -> 400')
        r = api('POST', '/system/services', body=b'{"name": "' + b'a' * (2 << 20) + b'"}')
        run.eq(r.status, 413, 'an oversized body -> 413')
        r = api('GET', '/health', auth=None)
        run.eq(r.status, 200, 'the server keeps serving')

    s3 = fgtest.boto3_client(fg.endpoint)
    for b in ('echoin', 'echoout', 'yamlin', 'fixedin', 'plainbkt'):
        s3.create_bucket(Bucket=b)
    w = fgtest.Worker(run, redis, fg, name='w', concurrency=2).start()

    with run.section('jobs: async, sync, logs'):
        r = api('POST', '/job/echo', body=b'hello payload')
        run.eq(r.status, 201, 'POST /job/echo -> 201')
        jid = json.loads(r.body).get('job_id', '')
        run.eq(len(jid), 36, 'with a job id')
        done = fgtest.wait_for(lambda: json.loads(api('GET', '/system/logs/echo').body)
                               .get(jid, {}).get('status') == 'succeeded', 60, 0.2)
        run.ok(done, 'the job succeeded')
        r = api('GET', '/system/logs/echo/%s' % jid)
        run.ok(r.status == 200 and b'out:hello payload' in r.body and b'err' in r.body,
               'GET /system/logs/echo/{job}: stdout and stderr', r.body)
        r = api('GET', '/system/logs/echo/%s?record' % jid)
        rec = json.loads(r.body)
        run.ok(rec.get('status') == 'succeeded' and rec.get('worker') == 'w' and
               str(rec.get('exit_code')) == '0', 'the job record', rec)
        r = api('POST', '/run/echo', body=b'sync input')
        run.ok(r.status == 200 and r.body.strip() == b'out:sync input',
               'POST /run/echo returns the stdout', (r.status, r.body))
        s3.put_object(Bucket='plainbkt', Key='from-s3.txt', Body=b'object body')
        ev = json.dumps({'Records': [{'eventName': 'ObjectCreated:Put', 's3': {
            'bucket': {'name': 'plainbkt'}, 'object': {'key': 'from-s3.txt'}}}]})
        r = api('POST', '/run/echo', body=ev)
        run.ok(r.status == 200 and b'out:object body' in r.body,
               'POST /run with an S3 event runs on that object', (r.status, r.body))
        for bad in ('a%00b', 'a%2', 'a%zz'):
            ev = json.dumps({'Records': [{'s3': {'bucket': {'name': 'plainbkt'},
                                                 'object': {'key': bad}}}]})
            r = api('POST', '/job/echo', body=ev)
            run.eq(r.status, 400, 'an event key %r that does not decode -> 400' % bad)
        r = api('POST', '/job/nosuch', body=b'x')
        run.eq(r.status, 404, 'POST /job of an unknown service -> 404')
        r = api('POST', '/run/nosuch', body=b'x')
        run.eq(r.status, 404, 'POST /run of an unknown service -> 404')
        r = api('GET', '/system/logs/nosuch')
        run.eq(r.status, 404, 'GET /system/logs of an unknown service -> 404')
        r = api('GET', '/system/logs/echo/00000000-0000-4000-8000-000000000000')
        run.eq(r.status, 404, 'GET of an unknown job -> 404')
        r = api('DELETE', '/system/logs/echo/%s' % jid)
        run.eq(r.status, 204, 'DELETE /system/logs/echo/{job} -> 204')
        r = api('GET', '/system/logs/echo/%s' % jid)
        run.eq(r.status, 404, 'the job is gone')
        r = api('DELETE', '/system/logs/echo')
        run.eq(r.status, 204, 'DELETE /system/logs/echo -> 204')
        r = api('GET', '/system/logs/echo')
        run.eq(json.loads(r.body), {}, 'no ended jobs are left')
        r = api('GET', '/system/info')
        info = json.loads(r.body)
        run.ok(any(x.get('id') == 'w' for x in info.get('workers', [])),
               '/system/info shows the live worker', info)

    with run.section('a service without Redis'):
        r = api('DELETE', '/system/services/yamlsvc')
        run.eq(r.status, 204, 'DELETE /system/services/yamlsvc -> 204')
        w.stop(timeout=20)
        fg.stop()
        fg.restart()
        r = api('GET', '/system/services')
        names = sorted(s['name'] for s in json.loads(r.body))
        run.eq(names, ['echo', 'fixed'], 'API services survive a restart')
        redis.stop()
        time.sleep(0.5)
        r = api('POST', '/job/echo', body=b'x')
        run.eq(r.status, 503, 'POST /job with Redis down -> 503')
        r = api('GET', '/health', auth=None)
        run.eq(json.loads(r.body).get('redis'), 'disconnected', '/health says so')


if __name__ == '__main__':
    fgtest.Run('admin_api').main(body)

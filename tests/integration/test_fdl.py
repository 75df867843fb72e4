"""An OSCAR FDL file, unchanged, runs on floodgate: `floodgate --config base.yaml --services
oscar/fdl.yaml` with a real redis-server and a real floodgate-worker. The FDL file is what
oscar-cli would take (a cluster id key, memory, cpu, image, `script: script.sh` next to the
file, minio.default inputs and outputs, storage_providers); an upload under the input path
produces the script's output under the output path. Also: --check-config accepts the pair, and
an error in the FDL file names the file and the line.

Run: ctest -R integration.fdl (or FG_BIN=build/floodgate FG_BUILD=build
/usr/bin/python3 tests/integration/test_fdl.py).
"""
import json
import os

import fgtest

BASE = '''# the gateway's own settings; the services come from the FDL file
redis: %(redis)s
jobs:
  visibility_timeout: 5s
'''

# As in OSCAR's examples (grayify), with a script that needs no image.
FDL = '''functions:
  oscar:
  - oscar-cluster:
      name: grayify
      memory: 1Gi
      cpu: '1.0'
      image: ghcr.io/grycap/imagemagick
      script: script.sh
      log_level: CRITICAL
      environment:
        variables:
          OUTPUT_PREFIX: gray
      input:
      - storage_provider: minio.default
        path: grayify/input
      output:
      - storage_provider: minio.default
        path: grayify/output
storage_providers:
  minio:
    default:
      endpoint: https://minio.oscar.example.org
      verify: true
      access_key: minio
      secret_key: CHANGEME
      region: us-east-1
'''

SCRIPT = '''#!/bin/sh
echo "SCRIPT: Invoked. File available in $INPUT_FILE_PATH"
FILE_NAME=$(basename "$INPUT_FILE_PATH")
OUTPUT_FILE="$TMP_OUTPUT_DIR/$OUTPUT_PREFIX-$FILE_NAME"
tr a-z A-Z < "$INPUT_FILE_PATH" > "$OUTPUT_FILE"
'''

BAD_FDL = '''functions:
  oscar:
  - oscar-cluster:
      name: grayify
      script: script.sh
      memmory: 1Gi
      input:
      - path: grayify/input
'''


def env(run):
    e = run.base_env()
    e['FLOODGATE_ACCESS_KEY'] = fgtest.ACCESS_KEY
    e['FLOODGATE_SECRET_KEY'] = fgtest.SECRET_KEY
    return e


def body(run):
    run.require(fgtest.REDIS)
    redis = fgtest.Redis(run).start()
    base = run.write_config('base.yaml', BASE % {'redis': redis.url})
    # the FDL file and its script in a folder of their own: the script is found next to the
    # FDL file, not next to base.yaml nor in floodgate's working directory (run.tmp)
    os.makedirs(run.path('oscar'))
    run.write_config(os.path.join('oscar', 'fdl.yaml'), FDL)
    run.write_config(os.path.join('oscar', 'script.sh'), SCRIPT)
    run.write_config(os.path.join('oscar', 'bad.yaml'), BAD_FDL)
    fdl = os.path.join('oscar', 'fdl.yaml')  # relative to floodgate's working directory

    with run.section('--check-config accepts the config and the FDL file'):
        r = run.cmd([fgtest.fg_bin(), '--config', base, '--services', fdl, '--check-config'],
                    env=env(run))
        run.eq(r.returncode, 0, 'exit 0')
        run.eq(r.stdout, 'configuration OK\n', 'configuration OK')

    with run.section('an error in the FDL file names the file and the line'):
        r = run.cmd([fgtest.fg_bin(), '--config', base, '--services', 'oscar/bad.yaml',
                     '--check-config'], env=env(run))
        run.eq(r.returncode, 1, 'exit 1')
        run.ok("oscar/bad.yaml: line 6: unknown key 'memmory' in 'functions.oscar[0]."
               "oscar-cluster'" in r.stderr, 'the message', r.stderr)

    fg = run.floodgate(config=base, args=['--services', fdl])
    port = fg.port
    s3 = fgtest.boto3_client(fg.endpoint)
    s3.create_bucket(Bucket='grayify')
    worker = fgtest.Worker(run, redis, fg, name='w0', concurrency=2).start()

    with run.section('the FDL service is defined, its script read from the file'):
        r = fgtest.admin(port, 'GET', '/system/services/grayify')
        run.eq(r.status, 200, 'GET /system/services/grayify')
        svc = json.loads(r.body) if r.status == 200 else {}
        run.eq(svc.get('script'), SCRIPT, 'the script is script.sh, inlined as oscar-cli does')
        run.eq(svc.get('memory'), '1Gi', 'memory')
        run.eq(svc.get('image'), 'ghcr.io/grycap/imagemagick', 'image')
        run.eq([i.get('path') for i in svc.get('input', [])], ['grayify/input'], 'input path')

    with run.section('an upload under the input path produces the output'):
        s3.put_object(Bucket='grayify', Key='input/hello.txt', Body=b'hello fdl\n')
        s3.put_object(Bucket='grayify', Key='elsewhere/skip.txt', Body=b'not an input\n')
        want = 'output/gray-hello.txt'
        ok = fgtest.wait_for(lambda: want in fgtest.list_keys(port, 'grayify', 'output/'), 120,
                             0.5)
        run.ok(ok, 'the output appeared', fgtest.list_keys(port, 'grayify'))
        if ok:
            r = s3.get_object(Bucket='grayify', Key=want)
            run.eq(r['Body'].read(), b'HELLO FDL\n', 'the script ran on the input')
        run.eq(sorted(fgtest.list_keys(port, 'grayify', 'output/')), [want],
               'one output: a key outside the input path ran nothing')

    run.eq(worker.stop(timeout=20), 0, 'the worker stops on SIGTERM with 0')


if __name__ == '__main__':
    fgtest.Run('fdl').main(body)

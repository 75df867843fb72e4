#!/usr/bin/env bash
# Installs the packages, builds floodgate, starts a private redis-server, one floodgate-worker
# (pool "default", log in .run/worker.log) and floodgate with the embedded store in ./data,
# listening on 127.0.0.1:9000 (FG_LISTEN to change). Credentials come from
# FLOODGATE_ACCESS_KEY/FLOODGATE_SECRET_KEY, or are generated once into .run/creds.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

mkdir -p .run data
if [ -z "${FLOODGATE_ACCESS_KEY:-}" ] || [ -z "${FLOODGATE_SECRET_KEY:-}" ]; then
  if [ ! -f .run/creds ]; then
    umask 077
    printf 'FLOODGATE_ACCESS_KEY=%s\nFLOODGATE_SECRET_KEY=%s\n' \
      "FG$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)" \
      "$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-40)" > .run/creds
  fi
  set -a; . .run/creds; set +a
fi

redis_port=${FG_REDIS_PORT:-6390}
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$PWD/.run" --appendonly yes \
    --appendfsync always --daemonize yes --pidfile "$PWD/.run/redis.pid" \
    --logfile "$PWD/.run/redis.log"
fi

listen=${FG_LISTEN:-127.0.0.1:9000}
if [ -f .run/worker.pid ] && kill -0 "$(cat .run/worker.pid)" 2>/dev/null; then
  kill "$(cat .run/worker.pid)" 2>/dev/null || true
fi
./build/floodgate-worker --redis "redis://127.0.0.1:$redis_port" --endpoint "http://$listen" \
  --work-dir "$PWD/.run" 2>>.run/worker.log &
echo $! > .run/worker.pid
cat <<INFO
floodgate is starting on http://$listen (data in ./data, Redis on 127.0.0.1:$redis_port,
a floodgate-worker logging to .run/worker.log)
  export AWS_ACCESS_KEY_ID=$FLOODGATE_ACCESS_KEY
  export AWS_SECRET_ACCESS_KEY=$FLOODGATE_SECRET_KEY
  export AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url http://$listen s3 mb s3://demo
  aws --endpoint-url http://$listen s3 cp README.md s3://demo/
INFO
exec ./build/floodgate --listen "$listen" --data-dir ./data --redis "redis://127.0.0.1:$redis_port" "$@"

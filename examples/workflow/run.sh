#!/usr/bin/env bash
# The two-service workflow, end to end, on a fresh Debian 12 machine: installs the packages
# (ImageMagick included), builds floodgate, starts a private redis-server, the gateway with
# examples/workflow/floodgate.yaml and one floodgate-worker, uploads three images to
# s3://images, and waits until their grayscale copies (s3://gray) and thumbnails (s3://thumbs)
# appear. Everything runs on loopback in a temp dir that is removed at the end (KEEP=1 keeps
# the processes running and prints how to reach them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# FG_BUILD names an existing build (the test suite runs this script that way): no install, no
# build.
bin=${FG_BUILD:-}
if [ -z "$bin" ]; then
  "$root/tools/deps.sh"
  if ! command -v convert >/dev/null; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends imagemagick
  fi
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j"$(nproc)" --target floodgate floodgate-worker >/dev/null
  bin=$root/build
fi

work=$(mktemp -d /tmp/floodgate-workflow.XXXXXX)
pids=()
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then return; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fg_port=$(free_port)
redis_port=$(free_port)
export FLOODGATE_ACCESS_KEY=workflowdemo
export FLOODGATE_SECRET_KEY=workflowdemo-secret-key
export AWS_ACCESS_KEY_ID=$FLOODGATE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$FLOODGATE_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
endpoint=http://127.0.0.1:$fg_port
aws() { /usr/bin/aws --endpoint-url "$endpoint" "$@"; }

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" \
  --logfile "$work/redis.log" & pids+=($!)
"$bin/floodgate" --config "$here/floodgate.yaml" --listen "127.0.0.1:$fg_port" \
  --data-dir "$work/data" --redis "redis://127.0.0.1:$redis_port" \
  --access-log off 2>"$work/floodgate.log" & pids+=($!)
"$bin/floodgate-worker" --redis "redis://127.0.0.1:$redis_port" --endpoint "$endpoint" \
  --concurrency 2 --work-dir "$work" 2>"$work/worker.log" & pids+=($!)
for _ in $(seq 100); do curl -sf "$endpoint/health" >/dev/null && break; sleep 0.1; done

for b in images gray thumbs; do aws s3 mb "s3://$b" >/dev/null; done
convert rose: "$work/rose.jpg"
convert -size 320x240 plasma:fractal "$work/plasma.png"
convert logo: "$work/logo.jpg"
for f in rose.jpg plasma.png logo.jpg; do aws s3 cp --no-progress "$work/$f" "s3://images/$f"; done

echo "waiting for the workflow..."
for _ in $(seq 120); do
  n=$(aws s3 ls s3://thumbs/ | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 1
done
echo "--- s3://gray";   aws s3 ls s3://gray/
echo "--- s3://thumbs"; aws s3 ls s3://thumbs/
echo "--- jobs of grayify"
curl -s -u "$FLOODGATE_ACCESS_KEY:$FLOODGATE_SECRET_KEY" "$endpoint/system/logs/grayify"; echo
n=$(aws s3 ls s3://thumbs/ | wc -l)
if [ "$n" -lt 3 ]; then
  echo "workflow: only $n of 3 thumbnails appeared; logs in $work" >&2
  tail -20 "$work/worker.log" >&2
  KEEP=1
  exit 1
fi
aws s3 cp --no-progress s3://thumbs/thumb-rose.jpg "$work/thumb-rose.jpg" >/dev/null
echo "thumb-rose.jpg: $(identify -format '%wx%h %[colorspace]' "$work/thumb-rose.jpg")"
echo "workflow: OK"
if [ "${KEEP:-0}" = 1 ]; then
  echo "still running: endpoint $endpoint, Redis 127.0.0.1:$redis_port, files in $work"
fi

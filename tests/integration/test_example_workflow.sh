#!/usr/bin/env bash
# The README's workflow example (examples/workflow/run.sh) against the binaries under test:
# three images uploaded -> grayscale copies -> thumbnails, with real Redis and a real worker.
set -euo pipefail
command -v convert >/dev/null || { echo "# skip: ImageMagick (convert) not installed"; exit 77; }
[ -x "${FG_BUILD:-}/floodgate-worker" ] || { echo "# skip: FG_BUILD has no floodgate-worker"; exit 77; }
out=$(FG_BUILD="$FG_BUILD" "$FG_SRC/examples/workflow/run.sh" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | sed 's/^/# /'
echo "$out" | grep -q '^workflow: OK$'
echo "$out" | grep -q 'thumb-rose.jpg: [0-9]*x[0-9]* Gray'
echo "1 passed, 0 failed"

#!/usr/bin/env bash
# Style checks run by ctest (style.check): clang-format clean, no banned calls, module
# boundaries (no include of another module's private header or of a module above).
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
[ -n "$files" ] || files=$(find gateway s3api notify queue conf tests -name '*.[ch]')

if command -v clang-format >/dev/null; then
  for f in $files; do
    [ -f "$f" ] || continue
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
      echo "clang-format: $f is not formatted (run clang-format -i $f)"
      fail=1
    fi
  done
fi

banned=$(grep -nwE '(sprintf|strcpy|strcat|strncpy|strtok|atoi|atol|gets|alloca)[[:space:]]*\(' $files 2>/dev/null \
  | grep -v 'snprintf\|vsnprintf' || true)
if [ -n "$banned" ]; then
  echo "banned calls (STYLE.md section 9):"
  echo "$banned"
  fail=1
fi

# Module boundaries: modules below may not include modules above; outside s3api/ only
# s3api/s3api.h may be included from s3api/ (tests may include private headers).
check_inc() { # dir pattern message
  local hits
  hits=$(grep -nE "#include \"($2)" $(ls "$1"/*.[ch] 2>/dev/null) 2>/dev/null || true)
  if [ -n "$hits" ]; then echo "$3:"; echo "$hits"; fail=1; fi
}
check_inc conf 'gateway|s3api|notify|queue)/' "conf/ must not include other modules"
core=$(ls gateway/*.[ch] | grep -v '/main' || true)
hits=$(grep -nE '#include "(s3api|notify|queue)/' $core 2>/dev/null || true)
[ -z "$hits" ] || { echo "the gateway core must not include modules above it:"; echo "$hits"; fail=1; }
for m in notify queue gateway; do
  hits=$(grep -nE '#include "s3api/' $(ls $m/*.[ch] 2>/dev/null) 2>/dev/null | grep -vE 's3api/(s3api|config)\.h' || true)
  [ -z "$hits" ] || { echo "$m/ includes a private s3api header:"; echo "$hits"; fail=1; }
done

check_inc notify 'queue|gateway/main)' "notify/ must not include queue/ or main"
check_inc queue 'notify|gateway/main)' "queue/ must not include notify/ or main"

[ "$fail" = 0 ] && echo "style: ok"
exit "$fail"

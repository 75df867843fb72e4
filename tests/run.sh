#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs the packages, builds floodgate
# (warnings are errors), runs every ctest case (unit, fuzz corpora, integration with real
# clients, style), then builds again with ASan+UBSan and runs the suite once more.
# FG_TEST_SANITIZE=0 skips the sanitizer pass (quicker local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFG_WERROR=ON
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure --timeout 900)

if [ "${FG_TEST_SANITIZE:-1}" != 0 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFG_WERROR=ON -DFG_SANITIZE=address,undefined
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 900 -LE style)
fi

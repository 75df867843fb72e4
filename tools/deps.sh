#!/usr/bin/env bash
# Installs every Debian 12 package floodgate's build, tests and benchmarks need.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
  libevent-dev libssl-dev libxml2-dev libjansson-dev libhiredis-dev libhttp-parser-dev
  liblmdb-dev libyaml-dev zlib1g-dev libcurl4-openssl-dev
  redis-server nginx-light curl ca-certificates procps psmisc
  awscli python3 python3-boto3 s3cmd rclone wrk imagemagick
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

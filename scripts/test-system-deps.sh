#!/usr/bin/env bash
# System packages the test suite drives for real: Debian's chromium (browser tests) and PostgreSQL
# (store tests). Installed once; a no-op when they are already there.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tests need: ${need[*]} (apt-get install ${need[*]}); their tests will be skipped" >&2
    exit 0
  fi
  echo "installing test system packages: ${need[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Make the browser tests runnable: Debian's chromium through the system package manager when it is
# missing (playwright itself comes with requirements.txt; its own browser download is never used).
# Needs root or sudo; .ci/run calls it before the tests.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "ci/browser.sh: $(chromium --version 2>/dev/null || echo chromium) present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci/browser.sh: no chromium and no apt-get here; install Chromium with your system's package manager" \
       "(or set MODEKIT_CHROMIUM=/path/to/chromium)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "ci/browser.sh: installing Debian's chromium (about 30 s)"
# the package lists of a fresh machine may be stale: refresh them only if the first try fails
$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null \
  || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends chromium >/dev/null; }
echo "ci/browser.sh: $(chromium --version)"

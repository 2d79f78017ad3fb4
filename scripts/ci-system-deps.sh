#!/usr/bin/env bash
# System packages some tests need beyond Python: headless Chromium for the HTML report test
# (tests/harness/report/test_html.py skips itself, saying why, when Chromium is absent).
# Idempotent: installs only what is missing. Debian/Ubuntu; needs root or passwordless sudo.
set -euo pipefail
# curl too: the bootstrap transfer tests run the user data's curl path and skip only where it is absent.
if command -v chromium >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci-system-deps: no apt-get here; install Chromium yourself to run the HTML report test" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium curl

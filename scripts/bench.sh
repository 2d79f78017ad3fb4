#!/usr/bin/env bash
# Quick start, part one: set up, then run the default CPU suite (about a minute on 2 cores).
# Any arguments go to `siliconbench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/siliconbench run "$@"

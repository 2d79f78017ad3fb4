#!/usr/bin/env bash
# Quick start, part two: set up, then run the whole test suite. Any arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Quick start, part two: set up, then run the default test suite (everything not marked `slow`;
# under 10 minutes on 2 cores of an AVX2-only CPU). Arguments replace that selection and go to
# pytest: `bash scripts/test.sh -m slow` is the slow stage, `-m "slow or not slow"` everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
  set -- -m "not slow"
fi
exec .venv/bin/python -m pytest "$@"

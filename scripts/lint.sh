#!/usr/bin/env bash
# The checks a change must pass besides the tests: lint, format and strict types (their settings
# are in pyproject.toml). Set up first, so ruff and mypy are the `dev` extra's, never a stray copy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy

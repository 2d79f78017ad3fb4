#!/usr/bin/env bash
# Fill .whl/ (ignored by git) with the wheels the GPU machine lacks, for CPython 3.12 on manylinux
# x86-64, plus siliconbench's own wheel built from this checkout, then prove the set right with
# scripts/gpu_wheels_check.py. Run it here, with a registry in reach, before a device call that
# runs scripts/gpu-check.sh; that call carries .whl. Rebuild after any change to the code: the
# check on the GPU refuses a wheel that differs from the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
rm -rf .whl
mkdir .whl
# One pinned version each, no dependencies: the list names every one the image lacks.
sed 's/#.*//' scripts/gpu-wheels.txt | grep -v '^\s*$' | xargs "$PYTHON" -m pip download --quiet \
  --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl
# siliconbench itself, from this checkout, with the build tools already here (no registry).
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index \
  -w "$build" . >/dev/null
cp "$build"/siliconbench-*.whl .whl/
rm -rf build ./*.egg-info
# What the check's summary names as its source (the GPU machine gets no .git).
echo "siliconbench wheel of $(git describe --always --dirty 2>/dev/null || echo 'an unknown commit'), built $(date -u +%Y-%m-%dT%H:%MZ)" >.whl/SOURCE
exec "$PYTHON" scripts/gpu_wheels_check.py .whl

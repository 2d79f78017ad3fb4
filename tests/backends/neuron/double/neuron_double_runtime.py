"""The simulated Neuron runtime behind the torch-neuronx test double, and what it recorded.

This is TEST CODE. torch-neuronx cannot be installed here (PyPI's ``torch-neuronx`` is a
placeholder whose import raises), so the neuron backend is tested against a double whose
behaviour follows the AWS Neuron documentation:

- "PyTorch NeuronX Tracing API for Inference" (torch_neuronx.trace):
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.html
  A traced model embeds a ``neuron::Model`` executed by a ``neuron::forward*`` operator; it
  consumes and produces CPU tensors; it is loaded onto a NeuronCore when first used, in
  round-robin order over the cores visible to the process; it accepts only the input shapes it was
  traced with ("Fixed Input Shapes ... will result in an error").
- "Neuron Runtime Configuration" (NEURON_RT_VISIBLE_CORES: one index or a range like ``1-3``;
  NEURON_RT_NUM_CORES: a count, 0 meaning all), read once when the runtime starts:
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/neuron-runtime/nrt-configurable-parameters.html

The double mirrors that with a custom operator, ``neuron_double::execute``, placed at the start of
every traced graph: like the real ``neuron::forward``, it lives in the TorchScript file, so it
survives ``torch.jit.save``/``torch.jit.load`` and runs on every call. It starts the simulated
runtime (reading the placement variables), assigns the model to a core, checks the input shape and
records the execution. Device-memory exhaustion is injected with ``STATE.fail_load = "oom"``; its
message is shaped after runtime errors reported in public issues (``nrt_tensor_allocate status=4
message="Allocation Failure"``, status 4 being NRT_RESOURCE), not copied from a specification.

This module is imported once per test session and stays in ``sys.modules`` (the operator can be
registered only once), while the ``torch_neuronx`` double is imported afresh by each test.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import torch

ENV_VISIBLE = "NEURON_RT_VISIBLE_CORES"
ENV_NUM = "NEURON_RT_NUM_CORES"


@dataclass
class TraceCall:
    """One torch_neuronx.trace call as the double saw it."""

    func: str
    input_shapes: list[tuple[int, ...]]
    input_dtypes: list[str]
    compiler_args: list[str]
    auto_cast: str
    auto_cast_type: str
    workdir: str
    tag: str
    inline_weights_to_neff: bool
    state_aliases: dict[str, int] = field(default_factory=dict)  # state parameter name -> output index
    positional: bool = False  # options were passed positionally (deprecated, a warning)


@dataclass
class Execution:
    """One run of a compiled model on one NeuronCore (global core id)."""

    tag: str
    core: int
    input_shape: tuple[int, ...]


@dataclass
class DoubleState:
    """Configuration of the simulated instance, injected failures, and everything recorded."""

    total_cores: int = 2  # an inf2.xlarge: one Inferentia2 device with two NeuronCores
    fail_compile: str | None = None  # "compiler" or "unsupported"
    fail_load: str | None = None  # "oom"
    env_at_import: dict[str, str | None] | None = None
    runtime_env: dict[str, str | None] | None = None
    visible_cores: list[int] | None = None
    trace_calls: list[TraceCall] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    placements: dict[str, int] = field(default_factory=dict)
    dataparallel_calls: list[dict[str, Any]] = field(default_factory=list)
    tracing: bool = False
    stateful_tags: set[str] = field(default_factory=set)  # traced graphs that keep state
    moved: dict[str, int] = field(default_factory=dict)  # graph tag -> core its state was moved to
    host_state_calls: int = 0  # calls of a stateful graph whose state was never moved to the device
    current_core: int | None = None
    next_core: int = 0


STATE = DoubleState()


def reset(total_cores: int = 2) -> DoubleState:
    """A fresh state for the next test (the object stays the same, so references stay valid)."""
    fresh = DoubleState(total_cores=total_cores)
    for name in fresh.__dataclass_fields__:
        setattr(STATE, name, getattr(fresh, name))
    return STATE


def placement_env() -> dict[str, str | None]:
    return {key: os.environ.get(key) for key in (ENV_VISIBLE, ENV_NUM)}


def start_runtime() -> list[int]:
    """The global ids of the cores this process may use, fixed when the runtime first starts."""
    if STATE.visible_cores is not None:
        return STATE.visible_cores
    env = placement_env()
    total = STATE.total_cores
    visible = env[ENV_VISIBLE]
    if visible:
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", visible.strip())
        if not match:
            raise RuntimeError(f"nrt_init: invalid {ENV_VISIBLE}={visible!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first or last >= total:
            raise RuntimeError(f"nrt_init: {ENV_VISIBLE}={visible} is outside the cores 0-{total - 1}")
        cores = list(range(first, last + 1))
    elif env[ENV_NUM] and int(env[ENV_NUM]) > 0:
        count = int(env[ENV_NUM])
        if count > total:
            raise RuntimeError(f"nrt_init: {ENV_NUM}={count} but only {total} NeuronCores exist")
        cores = list(range(count))
    else:
        cores = list(range(total))
    STATE.runtime_env = env
    STATE.visible_cores = cores
    return cores


def allocation_failure() -> RuntimeError:
    return RuntimeError('nrt_tensor_allocate status=4 message="Allocation Failure"')


def _core_for(tag: str) -> int:
    cores = start_runtime()
    if STATE.current_core is not None:
        return STATE.current_core
    if tag not in STATE.placements:
        if STATE.fail_load == "oom":
            raise allocation_failure()
        STATE.placements[tag] = cores[STATE.next_core % len(cores)]
        STATE.next_core += 1
    return STATE.placements[tag]


@torch.library.custom_op("neuron_double::execute", mutates_args=())
def execute(x: torch.Tensor, tag: str, index: int, expected: list[int]) -> torch.Tensor:
    """Stand-in for ``neuron::forward``'s input check: each input must have its compiled shape."""
    if not STATE.tracing and list(x.shape) != list(expected):
        raise RuntimeError(
            f"input {index} has shape {list(x.shape)} but the Neuron model was compiled for {list(expected)}"
        )
    return x.clone()


@torch.library.custom_op("neuron_double::run", mutates_args=("marker",))
def run(marker: torch.Tensor, state_moved: torch.Tensor, tag: str) -> None:
    """Stand-in for ``neuron::forward``'s execution: place the model and record the call.

    ``marker`` is the traced graph's ``neuron_input_shape`` buffer (the shape of input 0), so that
    graphs without inputs (state is all they need) are recorded too. It is declared as mutated (it
    is not) only so that tracing keeps this call, which has no output to be used. ``state_moved``
    is the graph's flag that ``move_trace_to_device`` sets.
    """
    if not STATE.tracing:
        STATE.executions.append(Execution(tag, _core_for(tag), tuple(int(v) for v in marker.tolist())))
        if tag in STATE.stateful_tags and not bool(state_moved):
            STATE.host_state_calls += 1

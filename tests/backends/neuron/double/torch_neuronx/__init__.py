"""A TEST DOUBLE of ``torch_neuronx`` (AWS torch-neuronx), for machines without Neuron devices.

Not the real package: the real one is not on PyPI (only a placeholder that raises on import) and
needs Neuron hardware. This double implements the parts of the API the siliconbench neuron backend
uses, each behaviour derived from a source quoted here. Sources, by short name:

[trace-page] "PyTorch NeuronX Tracing API for Inference", aws-neuron-sdk
    frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.rst
    (Neuron 2.32 tree, ``:date-modified: 2026-03-13``).
[t5] the T5 inference tutorial, aws-neuron-sdk src/examples/pytorch/torch-neuronx/t5-inference-tutorial.ipynb
    (the documentation's example of ``input_output_aliases``).
[source] a public copy of torch-neuronx's ``torch_neuronx/xla_impl/trace.py`` and
    ``torch_neuronx/xla_impl/hlo_conversion.py`` (an older release: it predates the
    ``inline_weights_to_neff`` keyword), read for behaviour only.
[cc-2.27] release-notes/prev/2.27.0/compiler.rst; [cli] the neuronx-cc CLI reference.

``trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None, compiler_args=None,
partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)`` -- the signature of
[trace-page].

- NeuronCore-v2 only. [trace-page]: "Currently this only supports |NeuronCore-v2| type instances
  (e.g. |trn1|, inf2)". The double refuses a ``--target`` of trn2/trn3 in ``compiler_args`` and a
  simulated trn2/trn3 instance (``NEURON_DOUBLE_INSTANCE``) with a RuntimeError (wording ours).
- Positional options. [trace-page]: "Using ``args`` for ``kwargs`` is no longer supported starting
  from release 2.15.0 ... a warning will be raised, but ``torch_neuronx.trace()`` will attempt to
  infer the keyword arguments." [source] warns with a DeprecationWarning ("Use of positional
  arguments after `func` and `example_inputs` is deprecated") and reads them in the order
  ``states, aliases, workdir, args, options`` ("states, aliases, workdir, args, options = _ +
  empty"), raising beyond five. The double does the same.
- State is keyed on *parameters*. [trace-page]: ``input_output_aliases`` "Marks input tensors as
  state tensors which are device tensors." [t5] builds it from the decoder's parameters
  ("aliases[decoder.past_key_values_sa[i]] = i + num_outputs_from_trace", where those are a
  ``torch.nn.ParameterList`` of ``torch.nn.Parameter(..., requires_grad=False)``) and says "we need
  to map the outputs to input parameters while tracing". [source] matches the keys against the
  module's parameters ("for name, parameter in func.named_parameters(): ... if
  torch.equal(inp_param, parameter) and inp_param.data_ptr() == parameter.data_ptr()") after
  asserting "For input_output_aliasing, the input func is expected to be of type torch.nn.Module",
  and later looks every key up among the parameters it found ("aliased_inputs[tensor]"), so a key
  that is not a parameter of ``func`` -- a forward input, say -- raises KeyError. The double does
  the same: AssertionError for a non-module, KeyError for a key that is not one of its parameters.
- The traced module keeps that state. [source]: ``NeuronModule`` holds ``self.states =
  torch.nn.ParameterList([torch.nn.Parameter(tensor, requires_grad=False) for tensor in
  initial_states])`` with ``initial_states = tuple(input_output_aliases.keys())``, and its forward
  runs ``inputs.extend(self.states)``: the state is not a forward input. [t5] resets it through
  the loaded module's parameters ("for state, tensor in zip(self.decoder.parameters(),
  past_key_values): state.copy_(tensor)"), so ``parameters()`` yields the states in alias order.
  The double's traced module has the states as its only parameters, in that order, and after
  every call writes each aliased output into its state (aliased output and state must agree in
  shape and dtype, a ValueError otherwise, as XLA rejects a mismatched alias).
- ``move_trace_to_device(trace, device_id)``. [trace-page]: for weights that are not moved
  automatically, "call :func:`torch_neuronx.move_trace_to_device`. If this is not done, a
  performance penalty is incurred per inference"; [t5] calls it after ``torch.jit.load`` of the
  aliased decoder; [source] moves exactly the states ("we have to explicitly move the state params
  to device": ``trace.states._parameters[name] = param.to(f"privateuseone:{device_id}")``). The
  double replaces each state by a copy (so it no longer shares memory with the tensor it was
  traced from, as a device tensor would not) and records the call; calls of a traced module with
  state that was never moved are counted in ``STATE.host_state_calls``.
- Weights are inlined (``inline_weights_to_neff=True``, the default): parameters that are not
  state, and buffers, are compiled into the NEFF as constants. The double traces a snapshot of
  them; every call starts from that snapshot, so an in-place update of a buffer never reaches the
  next call, and later changes to the caller's module are not seen. ``inline_weights_to_neff=False``
  (weights kept apart, for ``replace_weights``) is not modelled: NotImplementedError.
- ``example_inputs`` is a Tensor or a tuple of Tensors (empty when the state is all a step needs);
  the result is a ``torch.jit.ScriptModule`` that can be saved and loaded with ``torch.jit``
  once this module is imported, accepts only the traced input shapes, and takes and returns CPU
  tensors. ``compiler_workdir`` receives ``log-neuron-cc.txt``.
- ``compiler_args`` (a string or a list of strings) are neuronx-cc flags. [cli]: ``--auto-cast`` none
  | matmult | all; ``--auto-cast-type`` bf16 | fp16 | tf32 | fp8_e4m3, default bf16; an invalid value
  makes neuronx-cc exit non-zero. The default of ``--auto-cast`` is ``none``: [cc-2.27] "The
  ``--auto-cast`` flag now defaults to ``none`` (previously ``matmul``)". A later flag supersedes
  an earlier one. Casting is emulated on the CPU: ``all`` runs a copy of the model in the reduced
  type, ``matmult`` traces under CPU autocast (which reduces matrix products only); ``tf32`` and
  ``fp8_e4m3`` have no CPU emulation and run in fp32.
- Compiler failures raise ``RuntimeError("neuronx-cc failed with <status>")`` ([source]:
  ``raise RuntimeError(f"neuronx-cc failed with {status}")``) after writing ERROR lines to the log;
  inject them with ``neuron_double_runtime.STATE.fail_compile = "compiler" | "unsupported"``.

``DataParallel(model, device_ids=None, dim=0, set_dynamic_batching=True)``
  Source: "PyTorch NeuronX DataParallel API" (api-torch-neuronx-data-parallel.rst).
  Replicates the model on the NeuronCores ``device_ids`` (ints or ``"nc:#"``, zero-based within
  the cores visible to the process; default all of them) and scatters the inputs along ``dim``.
  Without dynamic batching, ``input.shape[dim] / len(device_ids)`` must equal the compiled batch.
  With it, this double requires the batch to be a multiple of the compiled batch (the real one
  also handles remainders; the backend under test never relies on that).

Not provided (the backend does not use them): ``analyze``, ``bucket_model_trace``,
``replace_weights``, ``experimental``, partitioning, weight separation.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import neuron_double_runtime as runtime
import torch
from torch.utils._pytree import tree_map

__version__ = "2.9.0.2.15.0+double"

runtime.STATE.env_at_import = runtime.placement_env()

_AUTO_CAST = ("none", "matmult", "all")
_AUTO_CAST_TYPES = ("bf16", "fp16", "tf32", "fp8_e4m3")
#: [cc-2.27]: "The ``--auto-cast`` flag now defaults to ``none`` (previously ``matmul``)".
_AUTO_CAST_DEFAULT = "none"
_EMULATED = {"bf16": torch.bfloat16, "fp16": torch.float16}
_LOG = "log-neuron-cc.txt"
#: [trace-page]: "Currently this only supports |NeuronCore-v2| type instances (e.g. |trn1|, inf2)".
_NEURONCORE_V2 = re.compile(r"^(inf2|trn1)")
_LATER_TARGET = re.compile(r"^(trn[2-9]|inf[3-9])")


class _CompilerExit(Exception):
    def __init__(self, status: int, lines: list[str]) -> None:
        super().__init__(status)
        self.status = status
        self.lines = lines


def _flag_values(args: list[str]) -> dict[str, str]:
    """The last value of each ``--flag value`` / ``--flag=value`` pair (later flags win)."""
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            values[name] = value
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            values[arg] = args[i + 1]
            i += 1
        i += 1
    return values


def _precision(flags: dict[str, str]) -> tuple[str, str]:
    auto_cast = flags.get("--auto-cast", _AUTO_CAST_DEFAULT)
    cast_type = flags.get("--auto-cast-type", "bf16")
    if auto_cast not in _AUTO_CAST:
        raise _CompilerExit(
            2, [f"argument --auto-cast: invalid choice: {auto_cast!r} (choose from none, matmult, all)"]
        )
    if cast_type not in _AUTO_CAST_TYPES:
        raise _CompilerExit(2, [f"argument --auto-cast-type: invalid choice: {cast_type!r}"])
    return auto_cast, cast_type


def _refuse_later_neuroncores(flags: dict[str, str]) -> None:
    """[trace-page]: trace supports NeuronCore-v2 (inf2, trn1) only; trn2/trn3 are refused."""
    target = flags.get("--target")
    instance = os.environ.get("NEURON_DOUBLE_INSTANCE", "")
    family = instance.split(".")[0]
    later = target if target and _LATER_TARGET.match(target) else family if _LATER_TARGET.match(family) else None
    if later:
        raise RuntimeError(
            f"torch_neuronx.trace supports NeuronCore-v2 instances (inf2, trn1) only, not {later} (test double)"
        )


def _write_log(workdir: Path, command: list[str], errors: list[str]) -> None:
    lines = [f"INFO [neuronx-cc]: Compiling with command line: {' '.join(command)}"]
    if errors:
        lines += ["ERROR 4242 [neuronx-cc]: ***************************************************************"]
        lines += [f"ERROR 4242 [neuronx-cc]: {line}" for line in errors]
    (workdir / _LOG).write_text("\n".join(lines) + "\n")


def _injected_failure() -> _CompilerExit | None:
    if runtime.STATE.fail_compile == "compiler":
        return _CompilerExit(
            70,
            [
                "An Internal Compiler Error has occurred",
                "Error message: Tensorizer pass failed: cannot allocate state buffer for tensor 'dot.7'",
            ],
        )
    if runtime.STATE.fail_compile == "unsupported":
        return _CompilerExit(
            70,
            [
                "Unsupported HLO opcode 'set-dimension-size' in computation 'SyncTensorsGraph.42'",
                "Please consider implementing the deep learning model using supported XLA operators only. "
                "neuronx-cc's supported XLA operator list may be found by running "
                "`neuronx-cc list-operators --framework XLA`.",
            ],
        )
    return None


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    return tree_map(lambda t: t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t, value)


def _state_slots(func: Any, aliases: dict[Any, Any]) -> list[tuple[str, int]]:
    """[source]: the alias keys matched against ``func.named_parameters()``; (parameter name, output index)."""
    if not aliases:
        return []
    assert isinstance(func, torch.nn.Module), (
        "For input_output_aliasing, the input func is expected to be of type torch.nn.Module"
    )
    names: dict[int, str] = {}
    for name, parameter in func.named_parameters():
        for key in aliases:
            if (
                isinstance(key, torch.Tensor)
                and key.shape == parameter.shape
                and key.dtype == parameter.dtype
                and torch.equal(key, parameter)
                and key.data_ptr() == parameter.data_ptr()
            ):
                names[id(key)] = name
    slots: list[tuple[str, int]] = []
    for key, out in aliases.items():
        if id(key) not in names:
            shape = tuple(key.shape) if isinstance(key, torch.Tensor) else type(key).__name__
            raise KeyError(
                f"alias key of shape {shape} is not among func.named_parameters(): trace keys state on the "
                "module's parameters, not on forward inputs (test double)"
            )
        if not isinstance(out, int) or isinstance(out, bool) or out in [o for _, o in slots]:
            raise ValueError(f"input_output_aliases: output index {out!r} is not an int used once")
        slots.append((names[id(key)], out))
    return slots


def _owner(root: torch.nn.Module, dotted: str) -> tuple[torch.nn.Module, str]:
    path, _, leaf = dotted.rpartition(".")
    return (root.get_submodule(path) if path else root), leaf


def _as_neff(func: torch.nn.Module, state_names: list[str], reduced: torch.dtype | None) -> torch.nn.Module:
    """A copy of ``func`` as compiled: its state slots emptied (the traced module holds the state).

    The copy is kept outside the traced module's registry, so ``torch.jit.trace`` records its
    weights and buffers as constants: inlined, as in the NEFF, and absent from ``parameters()``.
    """
    target = copy.deepcopy(func)
    if reduced is not None:
        target = target.to(reduced)
    for name in state_names:
        owner, leaf = _owner(target, name)
        del owner._parameters[leaf]
    for parameter in target.parameters():
        parameter.requires_grad_(False)  # a constant of a traced graph cannot require grad
    return target


class _NeuronGraph(torch.nn.Module):
    """What gets traced: the execute marker, the (cast) computation, and the state it keeps."""

    def __init__(
        self,
        func: Any,
        tag: str,
        shapes: list[list[int]],
        reduced: torch.dtype | None,
        out_dtype: torch.dtype,
        states: list[torch.Tensor],
        slots: list[tuple[str, int]],
    ) -> None:
        super().__init__()
        # [source]: ``torch.nn.Parameter(tensor, requires_grad=False) for tensor in initial_states``,
        # registered before anything else so that ``parameters()`` yields them in alias order.
        self.states = torch.nn.ParameterList(torch.nn.Parameter(t, requires_grad=False) for t in states)
        self.__dict__["func"] = func  # not a submodule: its weights are constants of the trace (inlined)
        self.tag = tag
        self.shapes = shapes
        self.reduced = reduced
        self.out_dtype = out_dtype
        self.slots = slots
        self.register_buffer("neuron_input_shape", torch.tensor(shapes[0] if shapes else [], dtype=torch.long))
        self.register_buffer("neuron_tag", torch.tensor(list(tag.encode()), dtype=torch.uint8))  # survives save/load
        self.register_buffer("neuron_state_moved", torch.zeros((), dtype=torch.bool))  # set by move_trace_to_device

    def _call(self, inputs: list[Any]) -> Any:
        """Run the copy with the states in their slots and fresh copies of its own buffers."""
        if not isinstance(self.func, torch.nn.Module):
            return self.func(*inputs)
        placed, saved = [], []
        for (name, _), state in zip(self.slots, self.states, strict=True):
            owner, leaf = _owner(self.func, name)
            owner._parameters[leaf] = state.to(self.reduced) if self.reduced and state.is_floating_point() else state
            placed.append((owner, leaf))
        for module in self.func.modules():
            for leaf, buffer in list(module._buffers.items()):
                if buffer is not None:
                    saved.append((module, leaf, buffer))
                    module._buffers[leaf] = buffer.clone()  # in-place updates die with the call
        try:
            return self.func(*inputs)
        finally:
            for module, leaf, buffer in saved:
                module._buffers[leaf] = buffer
            for owner, leaf in placed:
                del owner._parameters[leaf]

    def forward(self, *inputs: torch.Tensor) -> Any:
        torch.ops.neuron_double.run(self.neuron_input_shape, self.neuron_state_moved, self.tag)
        checked = [torch.ops.neuron_double.execute(x, self.tag, i, self.shapes[i]) for i, x in enumerate(inputs)]
        if self.reduced is not None:
            checked = _cast_floats(checked, self.reduced)
        outputs = _cast_floats(self._call(checked), self.out_dtype)
        if self.slots:
            flat = list(outputs) if isinstance(outputs, tuple | list) else [outputs]
            for (_, out), state in zip(self.slots, self.states, strict=True):
                if runtime.STATE.tracing:
                    _check_alias(state, flat, out)
                state.copy_(flat[out])
        return outputs


def _check_alias(state: torch.Tensor, outputs: list[Any], out: int) -> None:
    if not 0 <= out < len(outputs) or not isinstance(outputs[out], torch.Tensor):
        raise ValueError(f"input_output_aliases: output {out} does not exist ({len(outputs)} outputs)")
    value = outputs[out]
    got, want = [int(d) for d in value.shape], [int(d) for d in state.shape]  # plain ints, even while tracing
    if got != want or value.dtype != state.dtype:
        raise ValueError(
            f"input_output_aliases: output {out} ({got}, {value.dtype}) cannot alias its state "
            f"({want}, {state.dtype}): shape and dtype must match"
        )


def _positional(extra: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """[trace-page]/[source]: positional options warn (DeprecationWarning) and are read as keywords."""
    count = 2 + len(extra)
    warnings.warn(
        f"Received {count} positional arguments but expected 2. Use of positional arguments after `func` and "
        "`example_inputs` is deprecated. Please specify keyword arguments instead.",
        category=DeprecationWarning,
        stacklevel=3,
    )
    if len(extra) > 5:
        raise RuntimeError(f"Received {count} positional arguments but expected 2")
    states, aliases, workdir, args, _options = extra + (None,) * (5 - len(extra))
    if states is not None:
        raise NotImplementedError("the deprecated `states` argument is not modelled by the test double")
    merged = dict(kwargs)
    for key, value in (("input_output_aliases", aliases), ("compiler_workdir", workdir), ("compiler_args", args)):
        if value is not None:
            merged[key] = value
    return merged


def trace(
    func: Any,
    example_inputs: Any,
    *_: Any,
    input_output_aliases: dict[Any, Any] | None = None,
    compiler_workdir: str | os.PathLike[str] | None = None,
    compiler_args: str | list[str] | None = None,
    partitioner_config: Any = None,
    inline_weights_to_neff: bool = True,
    cpu_backend: bool = False,
) -> torch.jit.ScriptModule:
    """Trace ``func`` with ``example_inputs`` and "compile" it (see the module docstring)."""
    options = {
        "input_output_aliases": input_output_aliases,
        "compiler_workdir": compiler_workdir,
        "compiler_args": compiler_args,
    }
    positional = bool(_)
    if positional:
        options = _positional(_, options)
    input_output_aliases = options["input_output_aliases"]
    compiler_workdir = options["compiler_workdir"]
    compiler_args = options["compiler_args"]
    if not inline_weights_to_neff:
        raise NotImplementedError("inline_weights_to_neff=False (weight separation) is not modelled by the test double")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, tuple | list) or not all(isinstance(t, torch.Tensor) for t in example_inputs):
        raise TypeError("example_inputs must be a Tensor or a tuple of Tensors")
    example = tuple(example_inputs)
    if input_output_aliases is not None and not isinstance(input_output_aliases, dict):
        raise TypeError("input_output_aliases must be a dict from state tensors to output indices")
    aliases = dict(input_output_aliases or {})
    slots = _state_slots(func, aliases)
    if isinstance(compiler_args, str):
        args = shlex.split(compiler_args)
    elif compiler_args is None:
        args = []
    elif isinstance(compiler_args, list) and all(isinstance(a, str) for a in compiler_args):
        args = list(compiler_args)
    else:
        raise TypeError("compiler_args must be a string or a list of strings")
    flags = _flag_values(args)
    _refuse_later_neuroncores(flags)
    workdir = Path(compiler_workdir) if compiler_workdir is not None else Path(tempfile.mkdtemp(prefix="neuroncc_"))
    workdir.mkdir(parents=True, exist_ok=True)
    command = ["neuronx-cc", "compile", "--framework=XLA", str(workdir / "model.hlo_module.pb"), *args]
    tag = uuid.uuid4().hex
    try:
        auto_cast, cast_type = _precision(flags)
        failure = _injected_failure()
        if failure is not None:
            raise failure
    except _CompilerExit as exc:
        _write_log(workdir, command, exc.lines)
        raise RuntimeError(f"neuronx-cc failed with {exc.status}") from None
    runtime.STATE.trace_calls.append(
        runtime.TraceCall(
            func=type(func).__name__,
            input_shapes=[tuple(t.shape) for t in example],
            input_dtypes=[str(t.dtype) for t in example],
            compiler_args=args,
            auto_cast=auto_cast,
            auto_cast_type=cast_type,
            workdir=str(workdir),
            tag=tag,
            inline_weights_to_neff=inline_weights_to_neff,
            state_aliases={name: out for name, out in slots},
            positional=positional,
        )
    )
    reduced = _EMULATED.get(cast_type) if auto_cast != "none" else None
    target: Any = func
    if isinstance(func, torch.nn.Module):
        target = _as_neff(func, [name for name, _ in slots], reduced if auto_cast == "all" else None)
    float_inputs = [t.dtype for t in example if t.is_floating_point()]
    states = [key.detach() for key in aliases]  # [source]: the initial states are the alias keys themselves
    graph = _NeuronGraph(
        target,
        tag,
        [list(t.shape) for t in example],
        reduced if auto_cast == "all" else None,
        float_inputs[0] if float_inputs else torch.float32,
        states,
        slots,
    ).eval()
    snapshot = [state.detach().clone() for state in graph.states]  # tracing runs the graph once
    example = tuple(t.clone() for t in example)
    runtime.STATE.tracing = True
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit deprecation and tracer chatter of newer torch
            if auto_cast == "matmult" and reduced is not None:
                with torch.autocast("cpu", dtype=reduced, cache_enabled=False):
                    traced = torch.jit.trace(graph, example, check_trace=False)
            else:
                traced = torch.jit.trace(graph, example, check_trace=False)
    finally:
        runtime.STATE.tracing = False
    with torch.no_grad():
        for state, before in zip(traced.parameters(), snapshot, strict=True):
            state.copy_(before)  # the trace-time run leaves the states as they were
    if slots:
        runtime.STATE.stateful_tags.add(tag)
    (workdir / "graph.neff").write_bytes(b"NEFF-double " + tag.encode())
    _write_log(workdir, command, [])
    return traced


def _graph_tag(trace: Any) -> str | None:
    """The tag of a traced graph, kept as a buffer of the traced module."""
    tag = getattr(trace, "neuron_tag", None)
    return bytes(tag.tolist()).decode() if isinstance(tag, torch.Tensor) else None


def move_trace_to_device(trace: Any, device_id: int) -> None:
    """[trace-page]/[source]: move a traced module's state parameters to NeuronCore ``device_id``."""
    cores = runtime.start_runtime()
    if not isinstance(device_id, int) or isinstance(device_id, bool) or not 0 <= device_id < len(cores):
        raise ValueError(f"device_id {device_id!r} is not one of the {len(cores)} NeuronCores visible to this process")
    states = getattr(trace, "states", None)
    if states is not None:
        for name, parameter in list(states._parameters.items()):
            states._parameters[name] = parameter.detach().clone()  # no longer the host tensor it came from
    moved = getattr(trace, "neuron_state_moved", None)
    if isinstance(moved, torch.Tensor):
        moved.fill_(True)
    tag = _graph_tag(trace)
    if tag is not None:
        runtime.STATE.moved[tag] = cores[device_id]


def _device_index(device: Any, visible: int) -> int:
    text = str(device)
    index = int(text[3:]) if text.startswith("nc:") and text[3:].isdigit() else device
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < visible:
        raise ValueError(f"device id {device!r} is not one of the {visible} NeuronCores visible to this process")
    return index


def _compiled_batch(module: Any, dim: int) -> int:
    """The traced batch, kept as a buffer of the traced module so it survives save and load."""
    shape = getattr(module, "neuron_input_shape", None)
    if not isinstance(shape, torch.Tensor):
        raise TypeError("DataParallel needs a model created by torch_neuronx.trace")
    return int(shape[dim])


class DataParallel(torch.nn.Module):
    """Replicate a traced model on NeuronCores and scatter the batch along ``dim`` (see module doc)."""

    def __init__(
        self, model: Any, device_ids: list[Any] | None = None, dim: int = 0, set_dynamic_batching: bool = True
    ) -> None:
        super().__init__()
        cores = runtime.start_runtime()
        ids = list(range(len(cores))) if device_ids is None else [_device_index(d, len(cores)) for d in device_ids]
        if not ids:
            raise ValueError("device_ids is empty")
        if runtime.STATE.fail_load == "oom":
            raise runtime.allocation_failure()
        self.module = model
        self.device_ids = ids
        self.cores = [cores[i] for i in ids]
        self.dim = dim
        self.dynamic_batching = set_dynamic_batching
        self.compiled_batch = _compiled_batch(model, dim)

    def disable_dynamic_batching(self) -> None:
        self.dynamic_batching = False

    def forward(self, *inputs: torch.Tensor) -> Any:
        batch = inputs[0].shape[self.dim]
        n = len(self.device_ids)
        if not self.dynamic_batching:
            if batch % n or batch // n != self.compiled_batch:
                raise RuntimeError(
                    f"with dynamic batching disabled, input.shape[{self.dim}] / len(device_ids) must equal the "
                    f"compiled batch {self.compiled_batch}; got {batch} / {n}"
                )
            size = batch // n
        else:
            if batch % self.compiled_batch:
                raise RuntimeError(f"batch {batch} is not a multiple of the compiled batch {self.compiled_batch}")
            size = self.compiled_batch
        chunks = list(zip(*(torch.split(t, size, dim=self.dim) for t in inputs), strict=True))
        outputs = []
        for i, chunk in enumerate(chunks):
            core = self.cores[i % n]
            runtime.STATE.current_core = core
            try:
                outputs.append(self.module(*chunk))
            finally:
                runtime.STATE.current_core = None
        runtime.STATE.dataparallel_calls.append(
            {"cores": [self.cores[i % n] for i in range(len(chunks))], "chunk": size, "batch": int(batch)}
        )
        if isinstance(outputs[0], torch.Tensor):
            return torch.cat(outputs, dim=self.dim)
        return tuple(torch.cat(parts, dim=self.dim) for parts in zip(*outputs, strict=True))

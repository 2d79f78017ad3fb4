"""A TEST DOUBLE of ``torch_neuronx`` (AWS torch-neuronx), for machines without Neuron devices.

Not the real package: the real one is not on PyPI (only a placeholder that raises on import) and
needs Neuron hardware. This double implements the parts of the documented API the siliconbench
neuron backend uses, with the documented behaviour, on the CPU:

``trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None,
compiler_args=None, partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)``
  Source: "PyTorch NeuronX Tracing API for Inference",
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.html
  - ``example_inputs`` is a Tensor or a tuple of Tensors; anything else is a TypeError here.
  - Returns a ``torch.jit.ScriptModule`` (built with ``torch.jit.trace`` on the CPU, so outputs are
    real numbers) that can be saved with ``torch.jit.save`` and loaded with ``torch.jit.load`` once
    this module is imported, accepts only the traced input shapes, and takes and returns CPU tensors.
  - ``compiler_workdir`` receives the compiler's files, including ``log-neuron-cc.txt``.
  - ``compiler_args`` (a string or a list of strings) is read as neuronx-cc flags. The precision
    flags follow the neuronx-cc CLI reference
    (https://awsdocs-neuron.readthedocs-hosted.com/en/latest/compiler/neuronx-cc/api-reference-guide/neuron-compiler-cli-reference-guide.html):
    ``--auto-cast`` none | matmult | all, default ``matmult``; ``--auto-cast-type`` bf16 | fp16 |
    tf32 | fp8_e4m3, default ``bf16``; a later flag supersedes an earlier one; an invalid value
    makes neuronx-cc exit non-zero. Casting is emulated on the CPU: ``all`` runs a copy of the model
    in the reduced type, ``matmult`` traces under CPU autocast (which reduces matrix products only);
    ``tf32`` and ``fp8_e4m3`` have no CPU emulation and run in fp32.
  - Compiler failures raise ``RuntimeError("neuronx-cc failed with <status>")`` (the form reported
    in aws-neuron-sdk issue #690) after writing ERROR lines to the log; inject them with
    ``neuron_double_runtime.STATE.fail_compile = "compiler" | "unsupported"``.
  - Passing keyword arguments positionally is rejected (the docs deprecate it since 2.15).
  - Weights are inlined (``inline_weights_to_neff=True``, the default): the parameters and
    buffers are compiled into the NEFF as constants. The double traces a snapshot of them, and
    every call starts from that snapshot, so an in-place update of a buffer (a KV cache kept in a
    module, say) never reaches the next call, and later changes to the caller's module are not seen.
  - ``input_output_aliases`` "marks input tensors as state tensors which are device tensors": a
    dict from an input tensor to the index of the output that holds its new value, the form used
    with ``torch_neuronx.trace`` in public code (``aliases[module.k[i]] = output_index``), e.g.
    optimum-neuron's exporter and the T5 tutorial
    (https://awsdocs-neuron.readthedocs-hosted.com/en/latest/src/examples/pytorch/torch-neuronx/t5-inference-tutorial.html).
    The double accepts as keys the ``example_inputs`` tensors themselves (by identity), checks that
    each aliased output has the input's shape and dtype (a ValueError otherwise, as XLA rejects a
    mismatched alias), and after every call writes the output into the input tensor that is passed
    in that position, so that state persists across calls. Keeping such state on the device
    rather than copying it back to the host each call is what the real runtime gains; the double
    cannot show that difference, only the values.

``DataParallel(model, device_ids=None, dim=0, set_dynamic_batching=True)``
  Source: "PyTorch NeuronX DataParallel API",
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-data-parallel.html
  Replicates the model on the NeuronCores ``device_ids`` (ints or ``"nc:#"``, zero-based within
  the cores visible to the process; default all of them) and scatters the inputs along ``dim``.
  Without dynamic batching, ``input.shape[dim] / len(device_ids)`` must equal the compiled batch.
  With it, this double requires the batch to be a multiple of the compiled batch (the real one
  also handles remainders; the backend under test never relies on that).

Not provided (the backend does not use them): ``analyze``, ``move_trace_to_device``,
``bucket_model_trace``, ``replace_weights``, ``experimental``, partitioning, and aliases keyed
by module parameters (``inline_weights_to_neff=False`` state).
"""

from __future__ import annotations

import copy
import os
import shlex
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import neuron_double_runtime as runtime
import torch
from torch.utils._pytree import tree_map

__version__ = "2.9.0.2.10.0+double"

runtime.STATE.env_at_import = runtime.placement_env()

_AUTO_CAST = ("none", "matmult", "all")
_AUTO_CAST_TYPES = ("bf16", "fp16", "tf32", "fp8_e4m3")
_EMULATED = {"bf16": torch.bfloat16, "fp16": torch.float16}
_LOG = "log-neuron-cc.txt"


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


def _precision(args: list[str]) -> tuple[str, str]:
    flags = _flag_values(args)
    auto_cast = flags.get("--auto-cast", "matmult")
    cast_type = flags.get("--auto-cast-type", "bf16")
    if auto_cast not in _AUTO_CAST:
        raise _CompilerExit(
            2, [f"argument --auto-cast: invalid choice: {auto_cast!r} (choose from none, matmult, all)"]
        )
    if cast_type not in _AUTO_CAST_TYPES:
        raise _CompilerExit(2, [f"argument --auto-cast-type: invalid choice: {cast_type!r}"])
    return auto_cast, cast_type


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


def _inlined_call(func: Any, inputs: list[Any]) -> Any:
    """Call ``func`` on fresh copies of its buffers: in-place updates die with the call (inlined weights)."""
    if not isinstance(func, torch.nn.Module):
        return func(*inputs)
    saved = []
    for module in func.modules():
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                saved.append((module, name, buffer))
                module._buffers[name] = buffer.clone()
    try:
        return func(*inputs)
    finally:
        for module, name, buffer in saved:
            module._buffers[name] = buffer


class _NeuronGraph(torch.nn.Module):
    """What gets traced: the shape-checking execute operator, the (cast) computation, the aliases."""

    def __init__(
        self,
        func: Any,
        tag: str,
        shapes: list[list[int]],
        reduced: torch.dtype | None,
        out_dtype: torch.dtype,
        aliases: dict[int, int],
    ) -> None:
        super().__init__()
        self.func = func
        self.tag = tag
        self.shapes = shapes
        self.reduced = reduced
        self.out_dtype = out_dtype
        self.aliases = aliases  # output index -> input index
        self.register_buffer("neuron_input_shape", torch.tensor(shapes[0] if shapes else [], dtype=torch.long))

    def forward(self, *inputs: torch.Tensor) -> Any:
        checked = [torch.ops.neuron_double.execute(x, self.tag, i, self.shapes[i]) for i, x in enumerate(inputs)]
        if self.reduced is not None:
            checked = _cast_floats(checked, self.reduced)
        outputs = _cast_floats(_inlined_call(self.func, checked), self.out_dtype)
        if self.aliases:
            flat = list(outputs) if isinstance(outputs, tuple | list) else [outputs]
            for out, index in self.aliases.items():
                if runtime.STATE.tracing:
                    _check_alias(inputs[index], flat, out, index)
                inputs[index].copy_(flat[out])
        return outputs


def _check_alias(tensor: torch.Tensor, outputs: list[Any], out: int, index: int) -> None:
    if not 0 <= out < len(outputs) or not isinstance(outputs[out], torch.Tensor):
        raise ValueError(f"input_output_aliases: output {out} does not exist ({len(outputs)} outputs)")
    value = outputs[out]
    got, want = [int(d) for d in value.shape], [int(d) for d in tensor.shape]  # plain ints, even while tracing
    if got != want or value.dtype != tensor.dtype:
        raise ValueError(
            f"input_output_aliases: output {out} ({got}, {value.dtype}) cannot alias input {index} "
            f"({want}, {tensor.dtype}): shape and dtype must match"
        )


def _alias_indices(aliases: Any, example: tuple[torch.Tensor, ...]) -> dict[int, int]:
    """``{input tensor: output index}`` as ``{output index: input position}``; the tensor must be an input."""
    if not isinstance(aliases, dict):
        raise TypeError("input_output_aliases must be a dict from input tensors to output indices")
    indices: dict[int, int] = {}
    for tensor, out in aliases.items():
        position = next((i for i, t in enumerate(example) if t is tensor), None)
        if position is None:
            raise ValueError("input_output_aliases: every key must be one of the example_inputs tensors")
        if not isinstance(out, int) or isinstance(out, bool) or out in indices:
            raise ValueError(f"input_output_aliases: output index {out!r} is not an int used once")
        indices[out] = position
    return indices


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
    if _:
        raise TypeError("torch_neuronx.trace takes its options as keyword arguments, not positionally")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, tuple | list) or not all(isinstance(t, torch.Tensor) for t in example_inputs):
        raise TypeError("example_inputs must be a Tensor or a tuple of Tensors")
    example = tuple(example_inputs)
    aliases = _alias_indices(input_output_aliases or {}, example)
    if isinstance(compiler_args, str):
        args = shlex.split(compiler_args)
    elif compiler_args is None:
        args = []
    elif isinstance(compiler_args, list) and all(isinstance(a, str) for a in compiler_args):
        args = list(compiler_args)
    else:
        raise TypeError("compiler_args must be a string or a list of strings")
    workdir = Path(compiler_workdir) if compiler_workdir is not None else Path(tempfile.mkdtemp(prefix="neuroncc_"))
    workdir.mkdir(parents=True, exist_ok=True)
    command = ["neuronx-cc", "compile", "--framework=XLA", str(workdir / "model.hlo_module.pb"), *args]
    tag = uuid.uuid4().hex
    try:
        auto_cast, cast_type = _precision(args)
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
            input_output_aliases=dict(aliases),
        )
    )
    reduced = _EMULATED.get(cast_type) if auto_cast != "none" else None
    target = func
    if isinstance(func, torch.nn.Module):
        target = copy.deepcopy(func)  # the weights as compiled into the NEFF
        if auto_cast == "all" and reduced is not None:
            target = target.to(reduced)
    float_inputs = [t.dtype for t in example if t.is_floating_point()]
    graph = _NeuronGraph(
        target,
        tag,
        [list(t.shape) for t in example],
        reduced if auto_cast == "all" else None,
        float_inputs[0] if float_inputs else torch.float32,
        aliases,
    ).eval()
    example = tuple(t.clone() for t in example)  # tracing runs the graph once; keep its writes off the caller
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
    (workdir / "graph.neff").write_bytes(b"NEFF-double " + tag.encode())
    _write_log(workdir, command, [])
    return traced


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

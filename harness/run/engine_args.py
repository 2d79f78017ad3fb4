"""``--engine-arg KEY=V1,V2,...``: a started engine's configuration as axes of the matrix.

Each ``--engine-arg`` is one axis; the configurations are their product, and every configuration
gets its own engine (one cold start each) and its own ``--concurrency`` sweep. The arguments are
the engine's own command-line flags, checked here before anything starts, so a sweep that could
only fail (a flag the engine does not have, a value of the wrong kind, a dtype the silicon only
emulates) is refused at planning in one line instead of after a minute's cold start.

The flags and their types are vLLM's ``EngineArgs`` (``vllm/engine/arg_utils.py`` of vllm 0.32:
``max_num_seqs: int``, ``max_num_batched_tokens: int``, ``block_size: int``,
``enable_prefix_caching: bool``, ``enable_chunked_prefill: bool``, ``dtype``); booleans are
argparse ``BooleanOptionalAction`` there, so ``false`` is sent as ``--no-enable-prefix-caching``.
The launcher sets the model, host, port, ``--max-model-len`` (its own option) and, on Neuron,
turns chunked prefill and prefix caching off (NxD Inference's quickstart), so those are not axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import ConfigError

__all__ = ["ENGINE_ARGS", "EngineArgKind", "EngineAxis", "check_silicon", "configurations", "parse_engine_args"]

#: vLLM's ``--dtype`` values an axis may take, and the dtype names the capability probe uses.
DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class EngineArgKind:
    """One engine flag an axis may sweep: its kind and the silicon whose engine honours it."""

    kind: str  # "int", "bool" or "dtype"
    silicon: tuple[str, ...] = ("cpu", "cuda", "neuron")
    #: Why the silicon left out of ``silicon`` cannot take it.
    why_not: str = ""


_NO_NEURON = "the Neuron engine is started with chunked prefill and prefix caching off (NxD Inference)"

#: The flags an axis may sweep (vLLM's names, without the leading dashes).
ENGINE_ARGS: dict[str, EngineArgKind] = {
    "max-num-seqs": EngineArgKind("int"),
    "max-num-batched-tokens": EngineArgKind("int"),
    "block-size": EngineArgKind("int"),
    "enable-prefix-caching": EngineArgKind("bool", ("cpu", "cuda"), _NO_NEURON),
    "enable-chunked-prefill": EngineArgKind("bool", ("cpu", "cuda"), _NO_NEURON),
    "dtype": EngineArgKind("dtype"),
}


@dataclass(frozen=True)
class EngineAxis:
    """One ``--engine-arg``: a flag and the values it takes, normalized (``true``, ``bfloat16``)."""

    key: str
    values: tuple[str, ...]


def _value(key: str, kind: str, text: str, given: str) -> str:
    value = text.strip().lower() if kind != "int" else text.strip()
    if kind == "int":
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"--engine-arg {given}: {key} takes whole numbers of 1 or more, got {text!r}")
        return str(int(value))
    if kind == "bool":
        if value in _TRUE:
            return "true"
        if value in _FALSE:
            return "false"
        raise ConfigError(f"--engine-arg {given}: {key} takes true or false, got {text!r}")
    value = _DTYPE_ALIASES.get(value, value)
    if value not in DTYPES:
        raise ConfigError(f"--engine-arg {given}: dtype takes {', '.join(DTYPES)}, got {text!r}")
    return value


def parse_engine_args(texts: Sequence[str]) -> tuple[EngineAxis, ...]:
    """The axes of ``--engine-arg KEY=V1,V2`` options; a ``ConfigError`` in one line for a bad one."""
    axes: list[EngineAxis] = []
    for given in texts:
        key, sep, rest = given.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key or not rest.strip():
            raise ConfigError(f"--engine-arg takes KEY=V1,V2,... (e.g. max-num-seqs=4,16), got {given!r}")
        kind = ENGINE_ARGS.get(key)
        if kind is None:
            raise ConfigError(f"--engine-arg: unknown engine argument {key!r}; sweepable: {', '.join(ENGINE_ARGS)}")
        if any(axis.key == key for axis in axes):
            raise ConfigError(f"--engine-arg {key} is given twice; give its values once: {key}=V1,V2")
        values = tuple(_value(key, kind.kind, part, given) for part in rest.split(","))
        if len(set(values)) != len(values):
            raise ConfigError(f"--engine-arg {given}: a value is repeated")
        axes.append(EngineAxis(key, values))
    return tuple(axes)


def configurations(axes: Sequence[EngineAxis]) -> list[tuple[tuple[str, str], ...]]:
    """Every configuration, axis-major in the order given: ``[()]`` when there are no axes."""
    return [
        tuple(zip((a.key for a in axes), combo, strict=True)) for combo in itertools.product(*(a.values for a in axes))
    ]


def _cpu_native() -> dict[str, tuple[bool, str]]:
    """Whether this CPU runs each dtype natively, from its flags (the engine's oneDNN is not ours)."""
    from harness.measure.capability import cpu_capability, read_cpu_flags

    arch, flags = read_cpu_flags()
    capability = cpu_capability(arch, flags, None, None, {})
    return {support.dtype: (support.native, support.why) for support in capability.dtypes}


def check_silicon(
    axes: Sequence[EngineAxis],
    silicon: str,
    native: Callable[[], dict[str, tuple[bool, str]]] = _cpu_native,
) -> None:
    """Refuse an axis the engine on ``silicon`` cannot take: a flag it ignores, a dtype it emulates.

    Only the CPU is probed here (the engine runs on this machine); a GPU or Neuron engine is
    started elsewhere, whose dtype support is its engine's own check.
    """
    for axis in axes:
        kind = ENGINE_ARGS[axis.key]
        if silicon not in kind.silicon:
            raise ConfigError(f"--engine-arg {axis.key} cannot be swept on {silicon}: {kind.why_not}")
        if kind.kind == "dtype" and silicon == "cpu":
            support = native()
            for value in axis.values:
                ok, why = support.get(DTYPES[value], (False, "not probed"))
                if not ok:
                    raise ConfigError(
                        f"--engine-arg dtype={value}: this CPU only emulates {DTYPES[value]} ({why}); "
                        "sweep dtypes it runs natively"
                    )

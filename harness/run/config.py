"""The suite's sections: typed, frozen, strictly validated, and the one place options are declared.

A suite is six sections (``MatrixConfig``, ``StoppingRule``, ``ExecutionConfig``, ``LoadConfig``,
``EngineConfig``, ``PricingConfig``) plus the output folder. Each field carries an ``Option``
in its ``Annotated`` metadata: its CLI flag, metavar and help. The suite-file key is the field's
name, the CLI option is built from the ``Option`` (``harness.cli.options``), the value's type
is the annotation (pydantic checks it, strictly: ``"8"`` is not an int, ``true`` not a number), so
a new knob is one annotated field in its section and its flag and key follow.

Suite files are flat (``max_time = 2``) as they always were, or grouped in their sections'
tables (``[stopping]``); keys are unique across sections, so each flat key names one field of
one section (``FIELDS``). The run file's ``suite`` stays flat, as schema v2 has it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import ConfigError
from harness.run.limits import SAMPLING_GRACE_S
from harness.scenarios.specs import DEFAULT_SCENARIO

__all__ = [
    "FIELDS",
    "MAX_CONCURRENCY",
    "MAX_THREADS",
    "SECTIONS",
    "EngineConfig",
    "ExecutionConfig",
    "FieldRef",
    "LoadConfig",
    "MatrixConfig",
    "Option",
    "PricingConfig",
    "Section",
    "StoppingRule",
    "describe_type",
]

#: Upper bounds on any machine; a local run is also held to the cores it may use (harness.run.matrix).
MAX_THREADS = 1024
MAX_CONCURRENCY = 1024


@dataclass(frozen=True)
class Option:
    """How a field appears on the command line (``harness.cli.options`` builds the argparse option).

    The argparse type follows the annotation: an int field takes ``positive_int``, a float field
    ``positive_float``, a tuple field is repeatable (``action="append"``), a bool field is a switch.
    """

    flag: str | None
    help: str = ""
    metavar: str | None = None
    #: The argparse destination when it differs from the field's name (``--workload`` → ``workload``).
    dest: str | None = None
    #: Fixed choices; ``"scenarios"``: the registered scenarios, read when the parser is built.
    choices: tuple[str, ...] | Literal["scenarios"] | None = None
    #: For a bool field, the flag that sets it False (``--no-isolate``) and that flag's help.
    negative: str | None = None
    negative_help: str = ""


class Section(BaseModel):
    """A frozen, strictly typed part of the suite; unknown keys are refused."""

    #: ``defer_build``: the validators are built on first use, so ``--help`` (which reads the fields
    #: only) does not pay for them.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)

    #: The section's CLI argument group (title, description), or None: the command's main options.
    group: ClassVar[tuple[str, str] | None] = None


def _finite_positive(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value > 0


def _whole(value: int, name: str) -> None:
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of 1 or more, got {value!r}")


class MatrixConfig(Section):
    """What multiplies into cells: workloads × backends × dtypes × modes × batch sizes."""

    workloads: Annotated[
        tuple[str, ...],
        Option("--workload", "registered workload or package.module:callable (repeatable)", "NAME", dest="workload"),
    ] = ("mlp", "resnet50", "bert-base")
    preset: Annotated[
        str | None, Option("--preset", "workload size, e.g. tiny (default: each workload's published size)", "NAME")
    ] = None
    backends: Annotated[
        tuple[str, ...], Option("--backend", "backend to run on (repeatable; default cpu)", "NAME", dest="backend")
    ] = ("cpu",)
    batch_sizes: Annotated[
        tuple[int, ...], Option("--batch-size", "batch size (repeatable)", "N", dest="batch_size")
    ] = (1,)
    dtypes: Annotated[
        tuple[str, ...],
        Option(
            "--dtype",
            "precision, e.g. fp32, bf16; cuda adds tf32, fp16 (repeatable; 'list' shows each backend's)",
            "NAME",
            dest="dtype",
        ),
    ] = ("fp32", "bf16")
    modes: Annotated[
        tuple[str, ...],
        Option(
            "--mode",
            "execution mode, e.g. eager, compile; cuda adds compile-max-autotune, cudagraph; "
            "neuron: trace, dataparallel (repeatable)",
            "NAME",
            dest="mode",
        ),
    ] = ("eager",)
    threads: Annotated[int | None, Option("--threads", "intra-op threads (default: PyTorch's)", "N")] = None
    device: Annotated[
        str | None,
        Option("--device", "device for accelerator backends: cuda:N, or NeuronCores as nc:N, nc:A-B or a count", "DEV"),
    ] = None

    def model_post_init(self, context: Any) -> None:
        for name in ("workloads", "backends", "batch_sizes", "dtypes", "modes"):
            if not getattr(self, name):
                raise ConfigError(f"suite key {name!r} is empty; give at least one value")
        for size in self.batch_sizes:
            if size < 1:
                raise ConfigError(f"batch size must be a whole number of 1 or more, got {size!r}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"threads must be from 1 to {MAX_THREADS}, got {self.threads!r}")


class StoppingRule(Section):
    """When sampling a cell stops: a time budget, a floor of samples, a target interval width."""

    max_time: Annotated[float, Option("--max-time", "sampling budget per cell (default 4)", "SECONDS")] = 4.0
    #: 36: the fewest samples for a two-sided 95% interval of the p90 (``stats.min_samples``), so the
    #: default suite backs its median and p90 even on cells the time budget stops early.
    min_samples: Annotated[
        int, Option("--min-samples", "never fewer timed calls (default 36, the fewest that back a p90 interval)", "N")
    ] = 36
    #: None: no cap but the time budget. With ``min_samples`` the same, a fixed count, as ``vllm
    #: bench serve --num-prompts`` sends (a closed loop also lets the requests in flight finish).
    max_samples: Annotated[
        int | None,
        Option(
            "--max-samples",
            "never more timed calls (default: no cap but --max-time); with --min-samples the same N, "
            "exactly N (an engine's closed loop also lets the requests in flight finish)",
            "N",
        ),
    ] = None
    target_rel_ci: Annotated[
        float,
        Option(
            "--target-ci",
            "stop when the median's 95%% CI half-width is below this fraction (default 0.01)",
            "FRACTION",
            dest="target_ci",
        ),
    ] = 0.01
    #: A tail percentile the stopping rule also waits for (None: the median alone; see Suite.tail_percentile).
    tail: Annotated[
        float | None,
        Option(
            "--tail",
            "also sample until the PCT-th percentile's 95%% CI half-width is within 5%% (e.g. 99: at least "
            "368 calls, so give a --max-time that fits them); a p99 SLO implies --tail 99",
            "PCT",
        ),
    ] = None

    def model_post_init(self, context: Any) -> None:
        if not _finite_positive(self.max_time):
            raise ConfigError(f"max time must be a finite positive number of seconds, got {self.max_time!r}")
        if not _finite_positive(self.target_rel_ci) or not self.target_rel_ci < 1:
            raise ConfigError(f"target CI must be a fraction between 0 and 1, got {self.target_rel_ci!r}")
        if self.min_samples < 3:
            raise ConfigError(f"min samples must be 3 or more, got {self.min_samples!r}")
        if self.max_samples is not None and self.max_samples < self.min_samples:
            raise ConfigError(
                f"max samples ({self.max_samples}) is below min samples ({self.min_samples}); "
                "give --max-samples at least --min-samples"
            )
        if self.tail is not None and not 50 < self.tail < 100:
            raise ConfigError(f"tail must be a percentile between 50 and 100 (e.g. 99), got {self.tail!r}")


class ExecutionConfig(Section):
    """How cells run: in a child process or this one, how many times, and their wall-clock limits."""

    prepare_limit: Annotated[
        float | None,
        Option(
            "--prepare-limit",
            "wall-clock limit of a cell's preparation: build, first forwards, compile, trace (default "
            "per backend and mode: cpu eager 120, cpu compile 600, cuda 300-1800, neuron 1800; "
            "a started engine's wait to serve: vllm cpu 600, cuda 900, neuron 3600; "
            "harness/run/limits.py says why)",
            "SECONDS",
        ),
    ] = None
    sampling_grace: Annotated[
        float,
        Option(
            "--sampling-grace",
            "a cell's sampling may run this long beyond its budget before it is stopped (default 30)",
            "SECONDS",
        ),
    ] = SAMPLING_GRACE_S
    processes: Annotated[
        int,
        Option(
            "--processes",
            "measure each cell in N fresh processes, interleaved across cells, and report the spread "
            "between them with an interval that includes it (latency and throughput; default 1)",
            "N",
        ),
    ] = 1
    isolate: Annotated[
        bool | None,
        Option(
            "--isolate",
            "run every cell in its own child process",
            negative="--no-isolate",
            negative_help="run every cell in this process (default for cpu)",
        ),
    ] = None

    def model_post_init(self, context: Any) -> None:
        for value, flag in ((self.prepare_limit, "prepare limit"), (self.sampling_grace, "sampling grace")):
            if value is not None and not _finite_positive(value):
                raise ConfigError(f"{flag} must be a finite positive number of seconds, got {value!r}")
        if self.processes < 1:
            raise ConfigError(f"processes must be a whole number of 1 or more, got {self.processes!r}")
        if self.processes > 1 and self.isolate is False:
            raise ConfigError("--processes measures each cell in fresh processes; drop --no-isolate")


class LoadConfig(Section):
    """How load is applied: the scenario and the parameters scenarios share (``ScenarioParams``)."""

    group: ClassVar[tuple[str, str] | None] = ("scenarios", "How load is applied.")

    scenario: Annotated[str, Option("--scenario", "load scenario (default latency)", choices="scenarios")] = (
        DEFAULT_SCENARIO
    )
    prompt_tokens: Annotated[
        int, Option("--prompt-tokens", "decoders: exact prompt length in tokens (default 128)", "N")
    ] = 128
    output_tokens: Annotated[
        int,
        Option(
            "--output-tokens", "decoders: exact tokens generated per request, greedy, EOS ignored (default 128)", "N"
        ),
    ] = 128
    rate: Annotated[
        float | None,
        Option(
            "--rate",
            "server: fixed arrival rate in requests/s (default: search for the capacity under the SLO)",
            "RPS",
        ),
    ] = None
    slo_p99: Annotated[
        float | None, Option("--slo-p99", "server: target p99 end-to-end latency in milliseconds", "MS")
    ] = None
    slo_ttft: Annotated[
        float | None, Option("--slo-ttft", "server, decoders: target p99 time to first token in milliseconds", "MS")
    ] = None
    slo_tpot: Annotated[
        float | None,
        Option("--slo-tpot", "server, decoders: target p99 time per output token in milliseconds", "MS"),
    ] = None
    concurrency: Annotated[
        tuple[int, ...],
        Option(
            "--concurrency",
            "server: requests served at once; an engine's generate: closed-loop users (repeatable, one cell each: "
            "1, 2, 4, ...; default 1)",
            "N",
        ),
    ] = (1,)
    loadgen: Annotated[
        bool,
        Option(
            "--loadgen",
            "run latency/server/offline under MLPerf LoadGen as SingleStream/Server/Offline and record its "
            "VALID/INVALID verdict (pip install 'siliconbench[loadgen]')",
        ),
    ] = False

    def model_post_init(self, context: Any) -> None:
        _whole(self.prompt_tokens, "prompt-tokens")
        _whole(self.output_tokens, "output-tokens")
        if not self.concurrency:
            raise ConfigError("suite key 'concurrency' is empty; give at least one value")
        for users in self.concurrency:
            _whole(users, "concurrency")
            if users > MAX_CONCURRENCY:
                raise ConfigError(f"concurrency must be at most {MAX_CONCURRENCY}, got {users!r}")
        for name in ("rate", "slo_p99", "slo_ttft", "slo_tpot"):
            value = getattr(self, name)
            if value is not None and not _finite_positive(value):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite positive number, got {value!r}")


class EngineConfig(Section):
    """A serving engine: start one (``engine``) or attach (``endpoint``), and the request set."""

    group: ClassVar[tuple[str, str] | None] = (
        "serving engines",
        "Measure an LLM served by an engine behind an OpenAI-compatible API, request by request (generate: "
        "closed-loop users, --concurrency 1 --concurrency 4 ...; server: Poisson arrivals, capacity under the "
        "SLO). --engine starts the engine for the run (and always stops it); --endpoint attaches to a running "
        "server. The model's tokenizer builds prompts of exact token counts; its weights are the greedy-token "
        "correctness reference.",
    )

    engine: Annotated[str | None, Option("--engine", "start this engine for the run: vllm", "NAME")] = None
    endpoint: Annotated[
        str | None, Option("--endpoint", "attach to a running server, e.g. http://127.0.0.1:8000", "URL")
    ] = None
    model: Annotated[str | None, Option("--model", "the model the engine serves", "DIR|HUB_ID")] = None
    engine_silicon: Annotated[
        str,
        Option("--engine-silicon", "what a started engine runs on (default cpu)", choices=("cpu", "cuda", "neuron")),
    ] = "cpu"
    engine_python: Annotated[
        str | None, Option("--engine-python", "the python of the engine's own environment", "PATH")
    ] = None
    max_model_len: Annotated[int, Option("--max-model-len", "a started engine's context length (default 512)", "N")] = (
        512
    )
    prompts: Annotated[
        str | None,
        Option(
            "--prompts",
            'the user\'s prompts: ShareGPT conversations, chat messages or {"prompt": ...} lines',
            "FILE.jsonl",
        ),
    ] = None
    prompt_dist: Annotated[
        str | None,
        Option(
            "--prompt-dist",
            "prompt lengths in tokens: N, uniform:LOW:HIGH or normal:MEAN:STD (default: --prompt-tokens)",
            "SPEC",
        ),
    ] = None
    output_dist: Annotated[
        str | None,
        Option(
            "--output-dist",
            "output lengths (max_tokens, EOS ignored): as --prompt-dist, or 'reference' with --prompts",
            "SPEC",
        ),
    ] = None
    api: Annotated[str, Option("--api", "the engine's API (chat needs --prompts)", choices=("completions", "chat"))] = (
        "completions"
    )
    requests: Annotated[int, Option("--requests", "distinct requests in the request set (default 64)", "N")] = 64
    trace: Annotated[
        str | None,
        Option(
            "--trace",
            "replay a recorded trace in open loop at its times (--scenario server): Mooncake JSONL "
            "(timestamp, input_length, output_length, hash_ids) or the Azure LLM inference CSV",
            "FILE",
        ),
    ] = None
    trace_block_size: Annotated[
        int | None,
        Option("--trace-block-size", "tokens per Mooncake hash id (default 512, the format's)", "N"),
    ] = None
    trace_speed: Annotated[
        float | None, Option("--trace-speed", "replay at this many times the recorded pace (default 1)", "X")
    ] = None
    trace_limit: Annotated[int | None, Option("--trace-limit", "replay the trace's first N requests", "N")] = None
    multi_turn: Annotated[
        bool | None,
        Option(
            "--multi-turn",
            "run each conversation of --prompts turn by turn, every turn sending the history with the engine's "
            "own replies (--scenario generate --api chat)",
        ),
    ] = None
    think_time: Annotated[
        float | None, Option("--think-time", "seconds a user waits after a reply before the next turn", "S")
    ] = None
    shared_prefix: Annotated[
        str | None,
        Option(
            "--shared-prefix",
            "synthetic prompts in GROUPS groups, each group's prompts opening with the same TOKENS tokens",
            "GROUPS:TOKENS",
        ),
    ] = None
    engine_args: Annotated[
        tuple[str, ...],
        Option(
            "--engine-arg",
            "sweep a started engine's argument (repeatable, one axis each): e.g. max-num-seqs=4,16, "
            "enable-prefix-caching=true,false, dtype=float32,bfloat16; each configuration gets its own "
            "engine and its own --concurrency sweep",
            "KEY=V1,V2",
            dest="engine_arg",
        ),
    ] = ()

    def model_post_init(self, context: Any) -> None:
        _whole(self.max_model_len, "max-model-len")
        _whole(self.requests, "requests")
        for name in ("trace_block_size", "trace_limit"):
            value = getattr(self, name)
            if value is not None:
                _whole(value, name.replace("_", "-"))
        for name in ("trace_speed", "think_time"):
            value = getattr(self, name)
            if value is not None and not _finite_positive(value):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite positive number, got {value!r}")

    @property
    def used(self) -> bool:
        """Whether the suite's cells are engine cells (an engine to start or an endpoint)."""
        return self.engine is not None or self.endpoint is not None


class PricingConfig(Section):
    """This machine's price for cost reports: a ``[pricing]`` table of the suite file."""

    pricing: Annotated[dict[str, Any], Option(None)] = Field(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        if self.pricing:
            from harness.pricing.given import validate_pricing_table

            validate_pricing_table(self.pricing)


#: The sections of a suite, by the attribute that holds each on ``Suite``.
SECTIONS: dict[str, type[Section]] = {
    "matrix": MatrixConfig,
    "stopping": StoppingRule,
    "execution": ExecutionConfig,
    "load": LoadConfig,
    "engine": EngineConfig,
    "pricing": PricingConfig,
}


@dataclass(frozen=True)
class FieldRef:
    """One suite key: the section that holds it, its annotation and its CLI option."""

    section: str
    name: str
    annotation: Any
    option: Option
    default: Any

    @property
    def repeatable(self) -> bool:
        return _is_tuple(self.annotation)

    @property
    def scalar(self) -> type:
        """The element type a value (or each element of a list) must have."""
        inner = _unoptional(self.annotation)
        if _is_tuple(inner):
            inner = get_args(inner)[0]
        origin = get_origin(inner)
        return origin if isinstance(origin, type) else inner


def _unoptional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, type(int | None)) and len(args) == 1:
        return args[0]
    return annotation


def _is_tuple(annotation: Any) -> bool:
    return get_origin(_unoptional(annotation)) is tuple


def describe_type(ref: FieldRef) -> str:
    """The type a suite key takes, as an error message names it: ``int or float``, ``a list of int``."""
    name = {float: "int or float", dict: "dict"}.get(ref.scalar, ref.scalar.__name__)
    return f"a list of {name}" if ref.repeatable else name


def _fields() -> dict[str, FieldRef]:
    found: dict[str, FieldRef] = {}
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            options = [m for m in info.metadata if isinstance(m, Option)]
            if len(options) != 1:
                raise TypeError(f"{model.__name__}.{name} needs one Option in its Annotated metadata")
            if name in found:
                raise TypeError(f"suite key {name!r} is declared by two sections: {found[name].section}, {section}")
            default = info.get_default(call_default_factory=True)
            found[name] = FieldRef(section, name, info.annotation, options[0], default)
    return found


#: Every suite key, by name: the one table plan, CLI and suite files read.
FIELDS: dict[str, FieldRef] = _fields()

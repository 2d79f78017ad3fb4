"""The run file as typed records: a run is a tree of frozen dataclasses.

Scenarios build these records, reports read them, and only ``harness.runfile.codec`` turns them
into JSON and back (like ``torch.utils.benchmark.Measurement``): no other module touches a run
file's keys. Latencies are nanoseconds throughout, rates are per second.

Record tree::

    RunRecord
    ├── TargetFacts, Environment (CpuFacts, GpuInventory, TorchFacts), Price
    └── CellRecord ×N
        ├── CellConfig (with ScenarioParams)        what was asked
        ├── CellError | None                        why it failed
        └── Measurement | None                      what was measured
            ├── WorkloadFacts, Correctness, SamplingRecord, Summary, Validity
            ├── Energy, HostTiming                  device timer and energy, when offered
            └── BlockInfo | GenerationPart | ServerPart | OfflinePart | LoadgenPart
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge

from harness.runfile.engine import EngineMetrics, EngineParams, EngineRecord
from harness.runfile.omit import OMIT_UNSET as _OMIT_UNSET
from harness.runfile.price import Price
from harness.runfile.silicon import Bandwidth, Capability, ComputeCeiling, DtypeLeftOut

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "BlockInfo",
    "CapacitySearchRecord",
    "CellConfig",
    "CellError",
    "CellRecord",
    "CellStatus",
    "Correctness",
    "CpuFacts",
    "DeviceFacts",
    "Energy",
    "EngineAgreement",
    "EngineLoadRecord",
    "EnginePart",
    "EngineRequestRecord",
    "Environment",
    "GenerationPart",
    "GpuInventory",
    "HostTiming",
    "Interval",
    "LoadgenPart",
    "Measurement",
    "OfflinePart",
    "Peak",
    "ProcessesPart",
    "RequestSetFacts",
    "ReuseRecord",
    "RunRecord",
    "RunStatus",
    "SamplingRecord",
    "ScenarioParams",
    "ServerPart",
    "ServerProbeRecord",
    "SloTargets",
    "Summary",
    "TargetFacts",
    "TokenMetrics",
    "TorchFacts",
    "TraceRecord",
    "TurnRecord",
    "Validity",
    "WorkloadFacts",
    "peak_key",
    "utc_now",
]

SCHEMA_NAME = "siliconbench/run"
SCHEMA_VERSION = 2


def utc_now() -> str:
    """The current UTC time in ISO 8601 with a Z suffix: how every ``*_utc`` field of a run file is written."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Durations, counts, rates and energies: the reader refuses a negative one (JSON has no NaN/inf,
#: and the codec refuses those too).
NonNegative = Annotated[float, Ge(0)]
Count = Annotated[int, Ge(0)]

#: Effective n below this share of n is flagged in a report (``Summary.dependence_warning``): the
#: intervals are then at least √2 as wide as as many independent samples would give.
HIGH_DEPENDENCE_RATIO = 0.5

Nanoseconds = Annotated[int, Ge(0)]

#: A fact a backend reports about its device: a JSON scalar, or a list or mapping of them (neuron-ls
#: lists devices, NVML nests clocks). Each backend declares its own facts, so the shape stays open.
Scalar = str | int | float | bool | None
Fact = Scalar | list[Any] | dict[str, Any]
DeviceFacts = dict[str, Fact]

#: How a run ended. ``running`` is only ever seen in a file whose writer was killed.
RunStatus = Literal["running", "complete", "interrupted", "aborted"]
CellStatus = Literal["ok", "failed"]


@dataclass(frozen=True)
class ScenarioParams:
    """The knobs of the load scenarios; ``latency`` ignores them all.

    Token counts are exact (generation ignores end-of-sequence). SLO targets are milliseconds:
    ``slo_p99_ms`` on the end-to-end latency, ``slo_ttft_ms`` and ``slo_tpot_ms`` on the p99 time
    to first token and time per output token of decoders. ``rate`` (requests/s) fixes the
    ``server`` arrival rate; without it the server scenario searches for the capacity under the SLO.
    """

    prompt_tokens: int = 128
    output_tokens: int = 128
    rate: float | None = None
    slo_p99_ms: float | None = None
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    concurrency: int = 1
    loadgen: bool = False
    #: Set on cells measured on a serving engine (``--engine``/``--endpoint``), None in-process.
    engine: EngineParams | None = None


@dataclass(frozen=True)
class CellConfig:
    """One point of the matrix: workload × preset × backend × options × batch × scenario."""

    # Its id (``harness.scenarios.registry.cell_id``) ends in its scenario's label, which the
    # scenario's spec declares: the record knows no scenario by name. (A comment, not the
    # docstring: the generated schema carries docstrings and must stay byte-identical.)

    workload: str
    preset: str
    backend: str
    dtype: str
    mode: str
    threads: int | None
    batch_size: int
    scenario: str = "latency"
    device: str | None = None
    params: ScenarioParams = field(default_factory=ScenarioParams)


@dataclass(frozen=True)
class Interval:
    """A statistic's estimate and what the sample backs about it.

    ``low``/``high`` are None where no end is backed. A full interval has both at ``confidence``
    (>= the nominal). When the sample is too small for one, the interval is a one-sided bound
    (``high`` only) whose ``confidence`` is its own, lower figure, or nothing at all, and ``note``
    says why and how many samples a two-sided interval needs (``needs``).
    """

    estimate: float
    low: float | None
    high: float | None
    confidence: float
    nominal: float
    method: str  # "order statistics", "student t", or "withheld"
    needs: int | None = None
    note: str | None = None
    #: The samples' worth in independent ones for this statistic (issue 19), when their serial
    #: dependence was estimated: the interval's ranks rest on it. Unset in older files.
    effective_n: Annotated[float | None, _OMIT_UNSET] = None

    @property
    def at_least(self) -> bool:
        """True when only a lower bound is backed ("p99 ≥ low" at ``confidence``)."""
        return self.low is not None and self.high is None

    @property
    def backed(self) -> bool:
        """True when this is a two-sided interval at (at least) the nominal confidence."""
        return self.low is not None and self.high is not None and self.confidence >= self.nominal - 1e-12

    @property
    def relative_half_width(self) -> float:
        """Half the width relative to the estimate; inf unless ``backed``."""
        if not self.backed or self.estimate <= 0 or self.low is None or self.high is None:
            return math.inf
        return (self.high - self.low) / 2.0 / self.estimate


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of one sample, in the samples' unit (nanoseconds in run files).

    ``ci`` holds only the intervals the sample backs (two-sided at ``confidence``); ``intervals``
    holds every statistic's interval or bound (``harness.measure.stats``), with a note where one is
    withheld. Run files from before issue 10 have no ``intervals``, and bootstrap intervals in ``ci``.
    """

    count: Annotated[int, Ge(1)]
    min: Annotated[float, Ge(0)]
    mean: Annotated[float, Ge(0)]
    std: Annotated[float, Ge(0)]
    p50: Annotated[float, Ge(0)]
    p90: Annotated[float, Ge(0)]
    p95: Annotated[float, Ge(0)]
    p99: Annotated[float, Ge(0)]
    max: Annotated[float, Ge(0)]
    iqr: Annotated[float, Ge(0)]
    confidence: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)
    #: Lag-1 autocorrelation of the samples' ranks in the order taken, and the effective n of the
    #: median's interval (``harness.measure.dependence``); unset in files from before issue 19.
    lag1_autocorrelation: Annotated[float | None, _OMIT_UNSET] = None
    effective_n: Annotated[float | None, _OMIT_UNSET] = None

    @property
    def notes(self) -> list[str]:
        """Why each withheld interval is withheld, for a report's notes."""
        return [iv.note for iv in self.intervals.values() if iv.note]

    @property
    def dependence_warning(self) -> str | None:
        """A line for the report when the samples carry less than half the information of as many
        independent ones (their intervals are widened for it), else None."""
        if self.effective_n is None or not self.effective_n < HIGH_DEPENDENCE_RATIO * self.count:
            return None
        lag1 = "" if self.lag1_autocorrelation is None else f"lag-1 autocorrelation {self.lag1_autocorrelation:.2f}, "
        return (
            f"serially dependent samples ({lag1}effective n {self.effective_n:.0f} of {self.count}): "
            "intervals widened for it; a slow call follows a slow call, so more samples buy less"
        )


@dataclass(frozen=True)
class WorkloadFacts:
    """What the workload is: its task, size and work per inference."""

    task: str
    description: str
    params: int
    flops_per_inference: float | None
    tokens_per_sample: int
    #: Bytes a call must move at the cell's dtype: the weights (parameters and buffers) and the
    #: activations in and out at the cell's batch; the roofline's arithmetic intensity divides by
    #: their sum (``harness.report.roofline``). None where not counted (load scenarios, old files).
    weight_bytes: Annotated[Count | None, _OMIT_UNSET] = None
    activation_bytes: Annotated[Count | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class Correctness:
    """The prepared model's output against the fp32 CPU reference."""

    max_rel_error: float
    tolerance: float
    passed: bool
    reference: str


@dataclass(frozen=True)
class SamplingRecord:
    """What the sampler did, under which policy, and which rule stopped it."""

    warmup_count: Count
    warmup_s: NonNegative
    elapsed_s: NonNegative
    stop_reason: str
    rel_ci_half_width: float | None
    target_rel_ci: float
    confidence: float
    max_time_s: float
    min_count: int
    max_count: int
    wall_s: float
    timer: str = "host_clock"
    #: The percentiles the stopping rule watched ("p50", and a tail such as "p99" when asked for)
    #: with their target relative half-widths, and the half-widths reached (None: no interval yet).
    targets: dict[str, float] = field(default_factory=dict)
    reached: dict[str, float | None] = field(default_factory=dict)
    #: Why fewer than ``min_count`` samples were taken: the budget fit no more (None: it did).
    too_few: Annotated[str | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class Validity:
    """Whether the cell's tail percentiles can be trusted, and the reasons when not."""

    valid: bool
    percentile: int
    min_samples: int
    min_duration_s: float
    samples: dict[str, int]
    duration_s: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Energy:
    """Device energy over the measurement window; figures are None with a reason where unknown."""

    source: str
    joules: NonNegative | None
    joules_per_call: NonNegative | None
    joules_per_inference: NonNegative | None
    average_power_w: NonNegative | None
    window_s: NonNegative
    calls: Count
    reason: str | None


@dataclass(frozen=True)
class HostTiming:
    """Host-clock timings of the same calls, kept when the primary samples come from a device timer."""

    latency_ns: Summary
    samples_ns: tuple[Nanoseconds, ...]


@dataclass(frozen=True)
class BlockInfo:
    """Throughput: how many calls each timed block held."""

    calls: int
    target_s: float


@dataclass(frozen=True)
class TokenMetrics:
    """Per-request token latencies of a decoder (ns), and each request's token timeline."""

    ttft_ns: Summary | None
    tpot_ns: Summary | None
    itl_ns: Summary | None
    e2e_ns: Summary | None
    timelines_ns: tuple[tuple[Nanoseconds, ...], ...] = ()


@dataclass(frozen=True)
class GenerationPart:
    """Generate: token counts, per-request metrics and token rates."""

    prompt_tokens: int
    output_tokens: int
    batch_size: int
    requests: int
    tokens: TokenMetrics
    sequences_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    token_agreement: float | None
    reference_tokens: int


@dataclass(frozen=True)
class SloTargets:
    """p99 targets in milliseconds: end to end, time to first token, time per output token."""

    e2e_p99: float | None = None
    ttft_p99: float | None = None
    tpot_p99: float | None = None

    @property
    def empty(self) -> bool:
        return self.e2e_p99 is None and self.ttft_p99 is None and self.tpot_p99 is None

    def describe(self) -> str | None:
        """'e2e≤50ms, ttft≤200ms', or None without targets."""
        named = (("e2e", self.e2e_p99), ("ttft", self.ttft_p99), ("tpot", self.tpot_p99))
        return ", ".join(f"{name}≤{value:g}ms" for name, value in named if value is not None) or None


@dataclass(frozen=True)
class ServerProbeRecord:
    """One open-loop run at one offered rate (latencies in ms)."""

    rate_rps: float
    passed: bool
    requests: int
    dropped: int
    duration_s: float
    completed_rps: float
    goodput_rps: float | None
    e2e_p99_ms: float | None
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None


@dataclass(frozen=True)
class CapacitySearchRecord:
    """How the capacity search ended."""

    converged: bool
    stop_reason: str
    lowest_failing_rps: float | None
    rel_tol: float


@dataclass(frozen=True)
class ServerPart:
    """Server: the offered rate, the SLO, the capacity search and its probes."""

    mode: Literal["fixed_rate", "capacity_search"]
    rate_rps: float | None
    concurrency: int
    slo_ms: SloTargets
    slo_met: bool | None
    capacity_rps: float | None
    goodput_rps: float | None
    completed_rps: float
    dropped: int
    requests: int
    duration_s: float
    service_time_ns: int
    search: CapacitySearchRecord | None
    probes: tuple[ServerProbeRecord, ...]
    tokens: TokenMetrics | None = None


@dataclass(frozen=True)
class OfflinePart:
    """Offline: one query of samples fed through the host, batch by batch."""

    samples: int
    batches: int
    batch_size: int
    library_size: int
    wall_s: float
    samples_per_s: float
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    token_agreement: float | None = None


@dataclass(frozen=True)
class LoadgenPart:
    """A run under MLPerf LoadGen: its verdict, criteria, parsed result and settings."""

    scenario: Literal["SingleStream", "Server", "Offline"]
    verdict: Literal["VALID", "INVALID"]
    valid: bool
    criteria: dict[str, bool]
    result: dict[str, Scalar]
    settings: dict[str, Scalar]
    version: str | None
    summary_text: str
    wall_s: float
    goodput_rps: float | None = None
    tokens: TokenMetrics | None = None


@dataclass(frozen=True)
class EngineRequestRecord:
    """One request to an engine: when it was due and sent, when each output event was read, and
    what the server said. ``scheduled_ns`` counts from the load's time zero; ``sent_ns``,
    ``token_ns`` and ``end_ns`` count from the request's own scheduled time (so they are latencies).
    Token counts are the server's (``usage``), None when it never reported them.
    ``designed_cached_tokens`` is the prompt's leading tokens an earlier request of the load had
    sent (what the workload was designed to reuse); ``conversation``, ``turn`` (from 0) and
    ``history_messages`` place a turn of a multi-turn conversation, whose history length in tokens
    is the server's ``input_tokens``. Each is left out while unset."""

    id: str
    api: Literal["completions", "chat"]
    scheduled_ns: int
    sent_ns: int
    token_ns: tuple[int, ...]
    end_ns: int
    input_tokens: int | None
    output_tokens: int | None
    expected_input_tokens: int | None
    max_tokens: int | None
    finish_reason: str | None
    failure: str | None = None
    failure_detail: str | None = None
    http_status: int | None = None
    designed_cached_tokens: Annotated[Count | None, _OMIT_UNSET] = None
    conversation: Annotated[Count | None, _OMIT_UNSET] = None
    turn: Annotated[Count | None, _OMIT_UNSET] = None
    history_messages: Annotated[Count | None, _OMIT_UNSET] = None

    @property
    def ttft_ns(self) -> int | None:
        return self.token_ns[0] if self.token_ns else None

    @property
    def tpot_ns(self) -> float | None:
        """(last event - first event) / (server's output tokens - 1); None below two tokens."""
        if self.output_tokens is None or self.output_tokens < 2 or not self.token_ns:
            return None
        return (self.token_ns[-1] - self.token_ns[0]) / (self.output_tokens - 1)


@dataclass(frozen=True)
class EngineLoadRecord:
    """One load on an engine (a closed loop, or one open-loop probe) and its figures.

    ``failures`` counts failed requests by reason; latency summaries are over the successful
    requests. ``output_short`` counts requests the server ended before ``max_tokens``,
    ``input_mismatched`` those whose server prompt count differs from the request set's."""

    kind: Literal["open_loop", "closed_loop"]
    rate_rps: float | None
    concurrency: int | None
    requests: Count
    ok: Count
    failed: Count
    failures: dict[str, int]
    duration_s: NonNegative
    completed_rps: NonNegative
    input_tokens: Count
    output_tokens: Count
    output_tokens_per_s: NonNegative
    total_tokens_per_s: NonNegative
    goodput_rps: NonNegative | None
    slo_met: bool | None
    ttft_ns: Summary | None
    tpot_ns: Summary | None
    itl_ns: Summary | None
    e2e_ns: Summary | None
    output_short: Count
    input_mismatched: Count
    request_records: tuple[EngineRequestRecord, ...] = ()


@dataclass(frozen=True)
class RequestSetFacts:
    """Where an engine cell's requests came from: synthetic lengths or the user's file.

    ``prompt_forms`` says how each request of the set (in order) sent its prompt: ``text`` the
    server tokenized, ``token_ids`` (where no text of the exact length could be fitted with the
    model's tokenizer, ``ids_reason`` says why) or chat ``messages``. Empty in files written
    before it was recorded."""

    source: str
    requests: int
    input_tokens: str
    output_tokens: str
    seed: int
    api: Literal["completions", "chat"]
    prompt_forms: Annotated[tuple[Literal["text", "token_ids", "messages"], ...], _OMIT_UNSET] = ()
    ids_reason: Annotated[str | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class EngineAgreement:
    """The engine's greedy tokens against the fp32 reference (``harness.scenarios.engine_check``).

    ``agreement`` is the share of positions where both chose the same token; ``first_divergence``
    where each sequence first parted (None: never). ``unchecked`` says why the engine's tokens
    could not be compared at all (an engine that sends no token ids); ``agreement`` is then 0."""

    prompts: int
    tokens_per_prompt: int
    agreement: float
    first_divergence: tuple[int | None, ...]
    threshold: float
    reference: str = "transformers cpu fp32 greedy"
    unchecked: str | None = None

    @property
    def passed(self) -> bool:
        return self.unchecked is None and self.agreement >= self.threshold

    @property
    def warning(self) -> str | None:
        if self.passed:
            return None
        if self.unchecked is not None:
            return f"engine correctness not checked: {self.unchecked}"
        return (
            f"engine tokens agree with the {self.reference} reference at {self.agreement:.0%} of positions "
            f"(threshold {self.threshold:.0%}); first divergences at {list(self.first_divergence)}"
        )


@dataclass(frozen=True)
class ReuseRecord:
    """What a load was designed to reuse against what the engine's prefix cache reports.

    ``designed_cached_tokens`` sums, over the load's requests, the leading prompt tokens an earlier
    request had already sent, counted in whole blocks of ``block_size`` tokens (the engine's cache
    block) and never the prompt's last token (vLLM recomputes it for the logits); ``prompt_tokens``
    sums the prompts. ``measured_rate`` is the engine's hits over queries during the load (None
    where the engine exports no prefix cache counters)."""

    block_size: Count
    prompt_tokens: Count
    designed_cached_tokens: Count
    designed_rate: Annotated[float, Ge(0)]
    measured_rate: Annotated[float, Ge(0)] | None = None


@dataclass(frozen=True)
class TraceRecord:
    """A recorded trace as replayed: its format, what was read and sent, and how punctual it was.

    ``over_context`` counts the trace's requests whose prompt and output exceed the engine's
    context (left out, never truncated); ``lateness_ns`` summarizes each sent request's actual send
    time minus its scheduled one."""

    file: str
    format: Literal["mooncake", "azure"]
    read: Count
    replayed: Count
    over_context: Count
    speed: Annotated[float, Ge(0)]
    block_size: Count | None
    span_s: NonNegative
    lateness_ns: Summary | None


@dataclass(frozen=True)
class TurnRecord:
    """The requests of one turn index across a run's conversations: TTFT of turn 0 beside later ones.

    ``history_tokens`` is the mean prompt of the turn as the server counted it."""

    turn: Count
    requests: Count
    ok: Count
    history_tokens: NonNegative | None
    ttft_ns: Summary | None


@dataclass(frozen=True)
class EnginePart:
    """A cell on a serving engine: which engine, its token check, and every request of its loads.

    ``load`` is the load the cell's figures come from (the closed loop, the fixed-rate run, or the
    capacity search's best probe); ``probes`` every open-loop probe of a search, in order.
    ``metrics`` is the engine's ``/metrics`` sampled during the loads (None where it has none).
    ``reuse`` sets the designed reuse beside the engine's hit rate, ``trace`` describes a replayed
    trace, ``turns`` a multi-turn run's figures by turn; ``reuse_unknown`` says why a load whose
    prompts the engine templates (conversations) has no designed reuse (each left out while unset)."""

    engine: EngineRecord
    request_set: RequestSetFacts
    agreement: EngineAgreement
    load: EngineLoadRecord
    probes: tuple[EngineLoadRecord, ...] = ()
    metrics: EngineMetrics | None = None
    reuse: Annotated[ReuseRecord | None, _OMIT_UNSET] = None
    trace: Annotated[TraceRecord | None, _OMIT_UNSET] = None
    turns: Annotated[tuple[TurnRecord, ...], _OMIT_UNSET] = ()
    reuse_unknown: Annotated[str | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class ProcessesPart:
    """``--processes N``: each fresh process's median and the between-process interval (ns).

    The measurement's samples are the processes' pooled; ``low_ns``/``high_ns`` is Student's t
    interval of the mean of the process medians (None with one process), which the reports and
    ``compare`` use in place of one process's interval (``harness.measure.between``).
    """

    medians_ns: tuple[float, ...]
    counts: tuple[int, ...]
    mean_ns: float
    std_ns: float
    low_ns: float | None
    high_ns: float | None
    confidence: float
    rel_spread: float
    planned: int
    failed: int
    stop_reasons: tuple[str, ...]
    started_utc: tuple[str, ...]
    method: str = "student t on the process medians"


@dataclass(frozen=True)
class Measurement:
    """Everything an ``ok`` cell measured. ``latency_ns`` summarizes ``samples_ns``: per call for
    latency and throughput, per request (end to end) for the load scenarios."""

    workload: WorkloadFacts
    device: DeviceFacts
    compile_s: NonNegative | None
    peak_memory_bytes: Count | None
    correctness: Correctness
    sampling: SamplingRecord
    latency_ns: Summary
    samples_ns: tuple[Nanoseconds, ...]
    throughput_per_s: NonNegative
    tokens_per_s: NonNegative | None
    flops_per_s: NonNegative | None
    warnings: tuple[str, ...]
    validity: Validity
    output_tokens_per_s: NonNegative | None = None
    total_tokens_per_s: NonNegative | None = None
    capacity_rps: NonNegative | None = None
    goodput_rps: NonNegative | None = None
    energy: Energy | None = None
    host: HostTiming | None = None
    block: BlockInfo | None = None
    generation: GenerationPart | None = None
    server: ServerPart | None = None
    offline: OfflinePart | None = None
    loadgen: LoadgenPart | None = None
    engine: EnginePart | None = None
    processes: ProcessesPart | None = None

    @property
    def token_metrics(self) -> TokenMetrics | None:
        """The decoder token metrics of whichever scenario part has them."""
        for part in (self.generation, self.server, self.loadgen):
            if part is not None and part.tokens is not None:
                return part.tokens
        return None


@dataclass(frozen=True)
class CellError:
    """Why a cell failed: the exception's type, a one-line message and the phase it failed in."""

    type: str
    message: str
    phase: str
    traceback: str | None = None


@dataclass(frozen=True)
class CellRecord:
    """One cell of the matrix: its configuration and either a measurement or an error."""

    id: str
    config: CellConfig
    status: CellStatus
    started_utc: str
    finished_utc: str
    error: CellError | None = None
    measurement: Measurement | None = None
    #: The pytest test that measured the cell, for cells of the ``siliconbench`` pytest fixture.
    pytest_nodeid: str | None = None
    #: Why the cell's dtype is emulated on its silicon (measured because it was asked for), else None.
    emulated: Annotated[str | None, _OMIT_UNSET] = None

    def __post_init__(self) -> None:
        if (self.status == "ok") != (self.measurement is not None) or (self.status == "failed") != (
            self.error is not None
        ):
            raise ValueError(f"cell {self.id!r}: an ok cell has a measurement and no error, a failed one the reverse")

    def with_warning(self, warning: str) -> CellRecord:
        """The same cell with one more warning (the runner adds what it saw around the cell)."""
        from dataclasses import replace

        if self.measurement is None:
            return self
        measured = replace(self.measurement, warnings=(*self.measurement.warnings, warning))
        return replace(self, measurement=measured)


@dataclass(frozen=True)
class CpuFacts:
    """The CPU a run ran on and the SIMD/matrix flags that matter to kernels."""

    model: str
    arch: str
    logical_cores: int | None
    physical_cores: int | None
    usable_cores: int
    flags: tuple[str, ...]


@dataclass(frozen=True)
class GpuInventory:
    """The GPUs NVML saw in the harness process (no CUDA context needed)."""

    available: bool
    reason: str = ""
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    devices: tuple[DeviceFacts, ...] = ()


@dataclass(frozen=True)
class TorchFacts:
    num_threads: int
    num_interop_threads: int
    cuda_build: str | None


@dataclass(frozen=True)
class Peak:
    """A measured dense matmul peak: FLOP/s, at which size, and how it was obtained."""

    dtype: str
    device: str
    threads: int | None
    flops_per_s: float
    size: int
    measured_utc: str
    key: str
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Peak:
        return cls(**data)


def peak_key(backend: str, device: str | None, dtype: str, threads: int | None) -> str:
    """How a run file's ``environment.matmul_peaks`` names the peak a cell is measured against."""
    return f"{backend}/{device or '-'}/{dtype}/t{threads or 'default'}"


@dataclass(frozen=True)
class Environment:
    """Everything about the harness process's environment that a comparison needs."""

    host: str
    os: str
    python: str
    cpu: CpuFacts
    packages: dict[str, str | None]
    command: tuple[str, ...]
    time_utc: str
    user: str | None = None
    gpus: GpuInventory | None = None
    torch: TorchFacts | None = None
    env_threads: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    #: Dense matmul peaks measured for this run's cells (``harness.measure.peak``), by ``peak_key``.
    #: Runs since the roofline ceilings leave it empty; older files carry it.
    matmul_peaks: dict[str, Peak] = field(default_factory=dict)
    #: What each backend's silicon runs natively (``harness.measure.capability``), by backend.
    capabilities: Annotated[dict[str, Capability], _OMIT_UNSET] = field(default_factory=dict)
    #: Dtypes of the default suite not planned because their silicon emulates them.
    dtypes_left_out: Annotated[tuple[DtypeLeftOut, ...], _OMIT_UNSET] = ()
    #: Roofline ceilings (``harness.measure.ceilings``): compute by ``peak_key``, bandwidth by
    #: ``bandwidth_key``.
    ceilings: Annotated[dict[str, ComputeCeiling], _OMIT_UNSET] = field(default_factory=dict)
    bandwidths: Annotated[dict[str, Bandwidth], _OMIT_UNSET] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetFacts:
    """Where the run happened: ``local``, or an AWS instance with its price."""

    kind: str = "local"
    instance_type: str | None = None
    region: str | None = None
    purchase_option: str | None = None
    price_per_hour: float | None = None
    price_source: str | None = None
    price_as_of: str | None = None
    instance_id: str | None = None
    ami_id: str | None = None
    ami_parameter: str | None = None
    group_run_id: str | None = None

    @property
    def label(self) -> str:
        return self.instance_type or self.kind


@dataclass(frozen=True)
class RunRecord:
    """One invocation: the environment, the target and one record per cell."""

    run_id: str
    status: RunStatus
    started_utc: str
    finished_utc: str | None
    target: TargetFacts
    environment: Environment
    cells: tuple[CellRecord, ...] = ()
    suite: dict[str, object] = field(default_factory=dict)
    pricing: Price | None = None
    status_reason: str | None = None
    schema: Literal["siliconbench/run"] = "siliconbench/run"
    schema_version: Literal[2] = 2

"""What a scenario declares about itself, and the constants a report needs about scenarios.

A report reads run files and the scenario specs, never anything that measures: this module imports
only the run-file records, the errors and the standard library, so ``harness.report`` can take
``FORWARD_COLUMNS`` and ``MIN_SAMPLES_FOR_P99`` from here without pulling in torch or the sampler.

Every trait the plan, runner and report used to decide by a scenario's name is a field of
``ScenarioSpec``: a new scenario is its own module (or a plugin's) declaring one spec, and no code
outside that module names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from harness.runfile.records import CellConfig, ScenarioParams

__all__ = [
    "DEFAULT_SCENARIO",
    "FORWARD_COLUMNS",
    "MIN_SAMPLES_FOR_P99",
    "ScenarioSpec",
    "engine_label",
    "plain_label",
    "prompt_label",
]

#: The scenario a suite runs when it names none; its plain cells show no scenario label in progress.
DEFAULT_SCENARIO = "latency"

#: Report columns of the forward-pass scenarios measured per call (latency, throughput).
FORWARD_COLUMNS = (
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "throughput_per_s",
    "gflops_per_s",
    "fraction_of_peak",
    "roofline",
    "process_spread",
    "usd_per_million",
    "usd_per_million_tokens",
    "samples",
    "stop_reason",
)

#: Fewest samples for a two-sided 95% order-statistic interval of the p99: both 0.99ⁿ and 0.01ⁿ at
#: most 2.5%, so n >= 368 (Conover 1999, §3.2). ``harness.measure.stats.min_samples(0.99, 0.95)``
#: derives it; a test holds the two equal, so this module need not import the statistics.
MIN_SAMPLES_FOR_P99 = 368


def engine_label(params: ScenarioParams) -> tuple[str, ...]:
    """An engine cell's label parts: its request set and its users."""
    assert params.engine is not None
    return (params.engine.describe(), f"c{params.concurrency}")


def plain_label(params: ScenarioParams) -> tuple[str, ...]:
    """The label parts of a scenario whose parameters do not tell its cells apart."""
    if params.engine is not None:
        return engine_label(params)
    return ("loadgen",) if params.loadgen else ()


def prompt_label(params: ScenarioParams) -> tuple[str, ...]:
    """The label parts of a scenario whose cells differ by their exact token counts."""
    if params.engine is not None:
        return engine_label(params)
    return (f"p{params.prompt_tokens}o{params.output_tokens}", *plain_label(params))


def _no_check(params: ScenarioParams) -> None:
    """Most scenarios accept any valid parameters."""


@dataclass(frozen=True)
class ScenarioSpec:
    """What a scenario declares about itself: everything the plan, the runner and the report ask."""

    name: str
    help: str
    #: ``module:attribute`` of the object that runs a cell (a ``harness.scenarios.base.Scenario``).
    runner: str
    #: Where it sits in ``--scenario``'s choices and the report (lower first; ties by name).
    order: int = 100
    #: Which workloads it fits: any model, or decoders only (``generate``).
    workloads: Literal["any", "decoders"] = "any"
    #: The ``ScenarioParams`` fields it reads; the others are ignored for its cells.
    params: tuple[str, ...] = ()
    #: Whether it builds prompts of ``prompt_tokens`` and generates ``output_tokens`` on a decoder,
    #: so both must fit the decoder's positions.
    uses_prompts: bool = False
    #: The ``Measurement`` attribute holding its own part of the record (None: the common fields only).
    part: str | None = None
    #: Report columns after the cell's configuration, by key of ``harness.report.columns.COLUMNS``.
    columns: tuple[str, ...] = ()
    #: The MLPerf LoadGen scenario that runs it under ``--loadgen``, if any.
    loadgen: str | None = None
    #: Whether its records are per-call samples that ``--processes`` may pool across processes.
    mergeable: bool = False
    #: Whether it runs against a serving engine, and how: ``closed`` (users wait for their answer:
    #: ``--concurrency`` sweeps them) or ``open`` (every arrival is sent: no concurrency sweep).
    engine: Literal["closed", "open"] | None = None
    #: How many sampling budgets (``--max-time``) its stopping rule may spend (a search spends several).
    budgets: float = 1.0
    #: The parts of a cell id after the scenario's name that tell its cells apart.
    label: Callable[[ScenarioParams], tuple[str, ...]] = field(default=plain_label, compare=False)
    #: Refuses parameters that cannot make a cell of this scenario (one line, before anything runs).
    check: Callable[[ScenarioParams], None] = field(default=_no_check, compare=False)

    def cell_label(self, params: ScenarioParams) -> str:
        """The scenario segment of a cell id, e.g. ``server-p64o32-capacity-c2``."""
        return "-".join((self.name, *self.label(params)))

    def cell_id(self, config: CellConfig) -> str:
        """The id of a cell of this scenario: its configuration, then its scenario label."""
        threads = f"t{config.threads}" if config.threads else "tdefault"
        device = f"@{config.device}" if config.device else ""
        engine = config.params.engine
        mode = config.mode
        if engine is not None and engine.spec.engine_args:
            # Each configuration of an --engine-arg sweep is its own cell (dtype is its own segment).
            mode += "[" + ",".join(f"{key}={value}" for key, value in engine.spec.engine_args) + "]"
        return "/".join(
            (
                config.workload,
                config.preset,
                f"{config.backend}{device}",
                config.dtype,
                mode,
                threads,
                f"bs{config.batch_size}",
                self.cell_label(config.params),
            )
        )

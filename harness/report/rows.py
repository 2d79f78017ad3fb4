"""One report row per cell: the cell's record, its run and its price, with the derived figures.

Every report format, the SLO picks and the plots read cells through ``CellRow``, so a figure
(a cost, a latency in milliseconds) is derived in one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from harness.measure.stats import Summary, min_samples
from harness.report.cost import CostBasis, PriceResolver, tokens_per_s_at_capacity, usd_per_million
from harness.report.roofline import RooflinePoint, place
from harness.runfile.engine import EngineParams
from harness.runfile.price import Price
from harness.runfile.records import CellRecord, Measurement, RunRecord, TokenMetrics, peak_key
from harness.runfile.silicon import bandwidth_key

__all__ = ["CellRow", "Figure", "cell_rows"]


@dataclass(frozen=True)
class Figure:
    """A figure as a report shows it: its value and confidence interval (ends None where no interval
    is backed); the statistical ``harness.runfile.records.Interval`` is what it is read from.

    Where the sample is too small for a two-sided interval, ``bound`` is the upper bound it backs
    at (at least) the nominal confidence, ``bound_confidence``; where it backs no such upper bound
    (p99 below 299 samples at 95%), ``at_least`` is the highest order statistic that is a lower
    bound at ``at_least_confidence`` ("p99 ≥ x"), and ``upper_needs`` the samples an upper bound
    needs. An upper bound at low confidence is never offered: "≤ x (47%)" reads as "p99 ≤ x".
    ``needs`` is the samples a two-sided interval needs (both counts scaled for dependence).
    """

    value: float
    low: float | None = None
    high: float | None = None
    bound: float | None = None
    bound_confidence: float | None = None
    needs: int | None = None
    at_least: float | None = None
    at_least_confidence: float | None = None
    upper_needs: int | None = None


def ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


def _quantile(key: str) -> float | None:
    """0.99 for "p99"; None for statistics that are not percentiles."""
    if key.startswith("p") and key[1:].replace(".", "", 1).isdigit():
        return float(key[1:]) / 100
    return None


def _interval_ms(summary: Summary | None, key: str) -> Figure | None:
    if summary is None:
        return None
    value = getattr(summary, key) / 1e6
    interval = summary.intervals.get(key)
    if interval is not None:
        if interval.backed and interval.low is not None and interval.high is not None:
            return Figure(value, interval.low / 1e6, interval.high / 1e6)
        full = interval.confidence >= interval.nominal - 1e-12
        q = _quantile(key)
        upper_needs = None
        if q is not None:
            # An upper bound needs q^n ≤ 1 − c of independent samples; dependent ones need n/n_eff more.
            worth = (interval.effective_n or summary.count) / summary.count
            upper_needs = math.ceil(min_samples(q, interval.nominal, "upper") / max(worth, 1e-9) - 1e-9)
        if interval.low is None and interval.high is not None and full:
            return Figure(value, bound=interval.high / 1e6, bound_confidence=interval.confidence, needs=interval.needs)
        if interval.low is not None and interval.high is None and full:
            return Figure(
                value,
                needs=interval.needs,
                at_least=interval.low / 1e6,
                at_least_confidence=interval.confidence,
                upper_needs=upper_needs,
            )
        # An upper bound below the nominal (run files from before issue 19): the estimate alone.
        return Figure(value, needs=interval.needs, upper_needs=upper_needs)
    # Run files written before the order-statistic intervals (CHANGELOG.md) carry bootstrap intervals
    # only: keep a percentile's where its sample count backs the order-statistic interval, and
    # withhold it below (methodology.md).
    ci = summary.ci.get(key)
    q = _quantile(key)
    if ci is not None and q is not None:
        needs = min_samples(q, summary.confidence)
        if summary.count < needs:
            return Figure(value, needs=needs)
    return Figure(value, ci[0] / 1e6 if ci else None, ci[1] / 1e6 if ci else None)


@dataclass(frozen=True)
class CellRow:
    """A cell as a report sees it."""

    run: RunRecord
    cell: CellRecord
    price: Price | None
    price_note: str

    # --- identity -------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def target(self) -> str:
        return self.run.target.label

    @property
    def scenario(self) -> str:
        return self.cell.config.scenario

    @property
    def workload(self) -> str:
        return self.cell.config.workload

    @property
    def preset(self) -> str:
        return self.cell.config.preset

    @property
    def backend(self) -> str:
        return self.cell.config.backend

    @property
    def dtype(self) -> str:
        return self.cell.config.dtype

    @property
    def mode(self) -> str:
        return self.cell.config.mode

    @property
    def batch_size(self) -> int:
        return self.cell.config.batch_size

    @property
    def threads(self) -> int | None:
        measured = self.measurement
        if measured is not None:
            threads = measured.device.get("threads")
            if isinstance(threads, int) and not isinstance(threads, bool):
                return threads
        return self.cell.config.threads

    @property
    def status(self) -> str:
        return self.cell.status

    @property
    def usd_per_hour(self) -> float | None:
        return None if self.price is None else self.price.usd_per_hour

    @property
    def price_source(self) -> str | None:
        return None if self.price is None else self.price.source

    @property
    def price_as_of(self) -> str | None:
        return None if self.price is None else self.price.as_of

    @property
    def ok(self) -> bool:
        return self.cell.status == "ok"

    @property
    def measurement(self) -> Measurement | None:
        return self.cell.measurement

    @property
    def engine(self) -> EngineParams | None:
        """The engine part of an engine cell's configuration; None for in-process cells."""
        return self.cell.config.params.engine

    @property
    def engine_config(self) -> str | None:
        """An engine cell's configuration (``max-num-seqs=4``, ``default``); None in-process."""
        engine = self.engine
        return None if engine is None else engine.spec.config_label()

    @property
    def users(self) -> int:
        """Closed-loop users (``--concurrency``) of the cell."""
        return self.cell.config.params.concurrency

    @property
    def label(self) -> str:
        """Where and how the cell ran, for SLO picks and plot legends; an engine cell says its
        configuration, its users and its request set (its dtype, mode and batch mean nothing)."""
        if self.engine is not None:
            users = f"{self.users} user{'s' if self.users != 1 else ''}"
            return f"{self.target} {self.backend} {self.engine_config} {users} {self.preset}"
        threads = f" t{self.threads}" if self.threads else ""
        return f"{self.target} {self.backend} {self.dtype} {self.mode} bs{self.batch_size}{threads}"

    @property
    def config_key(self) -> str:
        """Every axis of the cell's configuration but the run: cells with one key are the same
        configuration measured again (the history's lines), never two concurrencies or request sets."""
        config = self.cell.config
        params = config.params
        threads = f"t{self.threads}" if self.threads else "tdefault"
        parts = [self.target, config.workload, config.preset, config.backend, config.device or "-", config.dtype]
        parts += [config.mode, threads, f"bs{config.batch_size}", config.scenario, f"c{params.concurrency}"]
        parts += [f"in{params.prompt_tokens}", f"out{params.output_tokens}"]
        if params.rate is not None:
            parts.append(f"rate{params.rate:g}")
        if self.engine is not None:
            parts += [self.engine_config or "default", self.engine.describe(), f"n{self.engine.requests}"]
        return " ".join(parts)

    @property
    def error_text(self) -> str | None:
        error = self.cell.error
        return None if error is None else f"{error.phase}: {error.type}: {error.message}"

    # --- figures --------------------------------------------------------------------------
    @property
    def tokens(self) -> TokenMetrics | None:
        return None if self.measurement is None else self.measurement.token_metrics

    def latency_ms(self, key: str) -> Figure | None:
        """p50, p90, p99, mean ... of the cell's latency, in ms, with its interval when it has one."""
        return None if self.measurement is None else _interval_ms(self.measurement.latency_ns, key)

    def token_ms(self, metric: str, key: str) -> Figure | None:
        """A decoder token metric (``ttft_ns``, ``tpot_ns``, ``itl_ns``) percentile, in ms."""
        tokens = self.tokens
        return None if tokens is None else _interval_ms(getattr(tokens, metric), key)

    @property
    def samples(self) -> int | None:
        return None if self.measurement is None else self.measurement.latency_ns.count

    def _per_million(self, per_second: float | None) -> float | None:
        return None if self.price is None else usd_per_million(self.price.usd_per_hour, per_second)

    @property
    def cost_basis(self) -> CostBasis:
        """What the row's headline cost rests on: the searched capacity for server cells that
        have one (what an SLO allows), else the measured throughput."""
        measured = self.measurement
        return "capacity" if measured is not None and measured.capacity_rps else "measured"

    @property
    def usd_per_million_measured(self) -> float | None:
        """Per million inferences at the measured throughput."""
        return None if self.measurement is None else self._per_million(self.measurement.throughput_per_s)

    @property
    def usd_per_million_headline(self) -> float | None:
        """Per million inferences on the row's ``cost_basis``: what a pick or a plot compares."""
        if self.cost_basis == "capacity":
            return self.usd_per_million_at_capacity
        return self.usd_per_million_measured

    @property
    def usd_per_million_at_capacity(self) -> float | None:
        measured = self.measurement
        if measured is None or not measured.capacity_rps:
            return None
        return self._per_million(measured.capacity_rps * self.batch_size)

    def _tokens_at_capacity(self, kind: str) -> float | None:
        """Output or total tokens/s at the searched capacity (``cost.tokens_per_s_at_capacity``)."""
        measured = self.measurement
        if measured is None or measured.server is None:
            return None
        rate = measured.output_tokens_per_s if kind == "output" else measured.total_tokens_per_s
        return tokens_per_s_at_capacity(measured.capacity_rps, measured.server.completed_rps, rate)

    @property
    def usd_per_million_output_tokens_at_capacity(self) -> float | None:
        """Per million output tokens when the instance serves at the capacity found under the SLO."""
        return self._per_million(self._tokens_at_capacity("output"))

    @property
    def usd_per_million_total_tokens_at_capacity(self) -> float | None:
        return self._per_million(self._tokens_at_capacity("total"))

    @property
    def usd_per_million_tokens(self) -> float | None:
        return None if self.measurement is None else self._per_million(self.measurement.tokens_per_s)

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        return None if self.measurement is None else self._per_million(self.measurement.output_tokens_per_s)

    @property
    def usd_per_million_total_tokens(self) -> float | None:
        return None if self.measurement is None else self._per_million(self.measurement.total_tokens_per_s)

    def roofline(self) -> RooflinePoint | None:
        """The cell on its roofline (``harness.report.roofline``), from the run's ceilings and the
        bytes its workload record says a call moves; None for cells without them (old files, load
        scenarios, backends without measured ceilings)."""
        measured = self.measurement
        if measured is None or not measured.throughput_per_s:
            return None
        facts = measured.workload
        if not facts.flops_per_inference or facts.weight_bytes is None or facts.activation_bytes is None:
            return None
        config = self.cell.config
        environment = self.run.environment
        compute = environment.ceilings.get(peak_key(config.backend, config.device, config.dtype, config.threads))
        band = environment.bandwidths.get(bandwidth_key(config.backend, config.device, config.threads))
        if compute is None or band is None:
            return None
        seconds_per_call = config.batch_size / measured.throughput_per_s
        flops_per_call = facts.flops_per_inference * config.batch_size
        return place(flops_per_call, facts.weight_bytes + facts.activation_bytes, seconds_per_call, compute, band)

    def dependence_notes(self) -> list[str]:
        """The high-dependence warning of each summary the row shows (latency; TTFT, TPOT, ITL)."""
        measured = self.measurement
        if measured is None:
            return []
        named: list[tuple[str, Summary | None]] = [("latency", measured.latency_ns)]
        tokens = measured.token_metrics
        if tokens is not None:
            named += [("TTFT", tokens.ttft_ns), ("TPOT", tokens.tpot_ns), ("ITL", tokens.itl_ns)]
        return [
            f"{name}: {summary.dependence_warning}" for name, summary in named if summary and summary.dependence_warning
        ]

    def notes(self) -> list[str]:
        """What a reader must see beside the row: the failure, warnings and validity reasons."""
        if not self.ok:
            where = f"{self.workload}/{self.preset} {self.backend} {self.dtype} bs{self.batch_size}"
            return [f"FAILED {where}: {self.error_text}"]
        measured = self.measurement
        assert measured is not None
        notes = list(measured.warnings)
        notes.extend(self.dependence_notes())
        point = self.roofline()
        defect = point.defect() if point is not None else None
        if defect:
            notes.append(defect)
        elif point is not None and point.ceiling_busy:
            notes.append(
                f"its {point.bound} ceiling was measured while other work held the cores: its % roofline is overstated"
            )
        if self.scenario != "latency":
            notes.extend(f"not valid for p99: {reason}" for reason in measured.validity.reasons)
        return notes


def cell_rows(runs: Iterable[RunRecord], prices: PriceResolver | None = None) -> list[CellRow]:
    """One row per cell across all given runs, priced where ``prices`` (default: recorded prices,
    then the bundled catalog) finds a price."""
    resolver = prices or PriceResolver()
    rows: list[CellRow] = []
    for run in runs:
        price, note = resolver.for_run(run)
        rows.extend(CellRow(run, cell, price, note) for cell in run.cells)
    return rows

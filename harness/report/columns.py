"""Report columns, each declared once: key, header, value and text.

Each scenario names its columns in its ``SPEC`` (``harness.scenarios.registry``), after the
cell's configuration. Every format (table, Markdown, CSV, JSON, HTML) renders from ``columns_for``:
a column's ``value``
is the raw figure (milliseconds, per second, USD; an ``Figure`` where it has one) that CSV and
JSON write, its ``text`` what the tables print. Adding a column is one entry in ``COLUMNS``.
A failed cell has no measurement: its measured columns are empty, and the first says FAILED.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.report import figures as u
from harness.report.rows import CellRow, Figure

__all__ = ["COLUMNS", "ENGINE_COLUMNS", "ENGINE_IDENTITY", "Column", "Value", "columns_for", "fmt", "money"]

Value = str | int | float | bool | Figure | None


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure with three significant digits, thousands separated from 100 up."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def money(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _text(value: Value) -> str:
    if value is None:
        return "-"
    if isinstance(value, Figure):
        if value.low is not None and value.high is not None:
            return f"{fmt(value.value)} [{fmt(value.low)}, {fmt(value.high)}]"
        if value.bound is not None and value.bound_confidence is not None:
            # No interval is backed: the bound that is, never the estimate with a tight-looking range.
            return f"≤ {fmt(value.bound)} ({value.bound_confidence:.0%})"
        if value.at_least is not None:
            # No upper bound holds at 95%: what the data do back, a lower one ("p99 ≥ x").
            return f"≥ {fmt(value.at_least)}"
        return fmt(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt(value)
    return str(value)


@dataclass(frozen=True)
class Column:
    """One column of a report.

    ``measured``: read from the cell's measurement (empty on failed cells). ``optional``: shown
    only when some row of the table has a value (prices, for instance). ``text`` overrides the
    default rendering of ``value``.
    """

    key: str
    header: str
    value: Callable[[CellRow], Value]
    measured: bool = True
    optional: bool = False
    text: Callable[[CellRow], str] | None = None
    #: Shown only when the rows need it to be told apart (target, run).
    when: Callable[[Sequence[CellRow]], bool] | None = None

    def render(self, row: CellRow) -> str:
        if self.measured and not row.ok:
            return "-"
        if self.text is not None:
            return self.text(row)
        return _text(self.value(row))


def _several_targets(rows: Sequence[CellRow]) -> bool:
    return len({r.target for r in rows}) > 1


def _several_runs_per_target(rows: Sequence[CellRow]) -> bool:
    runs: dict[str, set[str]] = {}
    for row in rows:
        runs.setdefault(row.target, set()).add(row.run_id)
    return any(len(ids) > 1 for ids in runs.values())


def _measured(name: str) -> Callable[[CellRow], Value]:
    """The measurement's attribute ``name`` (None on failed cells)."""

    def get(row: CellRow) -> Value:
        value: Value = None if row.measurement is None else getattr(row.measurement, name)
        return value

    return get


def _flops(row: CellRow) -> float | None:
    measured = row.measurement
    return None if measured is None or not measured.flops_per_s else measured.flops_per_s / 1e9


def _slo(row: CellRow) -> str | None:
    measured = row.measurement
    return None if measured is None or measured.server is None else measured.server.slo_ms.describe()


def _server(row: CellRow, name: str) -> float | None:
    measured = row.measurement
    if measured is None or measured.server is None:
        return None
    value = getattr(measured.server, name)
    return None if value is None else float(value)


def _offline(row: CellRow, name: str) -> float | None:
    measured = row.measurement
    if measured is None or measured.offline is None:
        return None
    return float(getattr(measured.offline, name))


def _param(row: CellRow, name: str) -> int:
    value: int = getattr(row.cell.config.params, name)
    return value


def _tokens(row: CellRow, name: str) -> int:
    """Prompt or output tokens per request: what was measured (an engine cell's mean, as the server
    counted it), else what was asked."""
    generation = row.measurement.generation if row.measurement is not None else None
    return int(getattr(generation, name)) if generation is not None else _param(row, name)


def _sweeps_concurrency(rows: Sequence[CellRow]) -> bool:
    return any(r.cell.config.params.concurrency != 1 for r in rows)


def _p(interval: Figure | None) -> float | None:
    return None if interval is None else interval.value


def _money_text(get: Callable[[CellRow], Figure | None]) -> Callable[[CellRow], str]:
    """A cost with its interval where one is backed: "1.23 [1.1, 1.4]"."""

    def text(row: CellRow) -> str:
        value = get(row)
        if value is None:
            return "-"
        if value.low is None or value.high is None:
            return money(value.value)
        return f"{money(value.value)} [{money(value.low)}, {money(value.high)}]"

    return text


def _percent(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if value >= 0.01 else f"{value * 100:.2g}%"


def _spread_text(row: CellRow) -> str:
    """Between-process spread: "±4.1% (5)", half the range of the process medians over their mean."""
    spread = u.process_spread(row)
    measured = row.measurement
    if spread is None or measured is None or measured.processes is None:
        return "-"
    return f"±{spread / 2:.1%} ({len(measured.processes.medians_ns)})"


def _capacity_text(row: CellRow) -> str:
    """The capacity and the rates around it: passed at the first, failed at the second."""
    bracket = u.capacity(row)
    if bracket is None:
        return "-"
    if bracket.high is None:
        return fmt(bracket.value)
    return f"{fmt(bracket.value)} [{fmt(bracket.value)}, {fmt(bracket.high)})"


def _short_model(model: str) -> str:
    """``tiny-llama`` for ``/work/models/tiny-llama``; a hub id (``org/name``) stays whole."""
    if model.startswith(("/", ".", "~")):
        return model.rstrip("/").rsplit("/", 1)[-1] or model
    return model


def _per_user(row: CellRow) -> float | None:
    """Output tokens/s one user sees: 1 / TPOT p50."""
    tpot = row.token_ms("tpot_ns", "p50")
    return None if tpot is None or not tpot.value > 0 else 1000.0 / tpot.value


def _goodput(row: CellRow) -> float | None:
    """Requests/s that met the SLO: the server part's, else the engine load's (None without an SLO)."""
    measured = row.measurement
    if measured is None:
        return None
    if measured.server is not None and measured.server.goodput_rps is not None:
        return float(measured.server.goodput_rps)
    load = measured.engine.load if measured.engine is not None else None
    return None if load is None or load.goodput_rps is None else float(load.goodput_rps)


COLUMNS: tuple[Column, ...] = (
    # an engine cell's configuration (``ENGINE_IDENTITY``)
    # The model's folder or hub name; its full path is the value (CSV, JSON) and in the run file.
    Column("model", "model", lambda r: r.workload, measured=False, text=lambda r: _short_model(r.workload)),
    Column("request_set", "request set", lambda r: r.preset, measured=False),
    Column("server", "server", lambda r: r.backend, measured=False),
    Column("engine_config", "engine config", lambda r: r.engine_config, measured=False),
    Column("users", "users", lambda r: r.users, measured=False),
    Column("tpot_p99_ms", "TPOT p99 ms", lambda r: r.token_ms("tpot_ns", "p99")),
    Column("out_tok_s_per_user", "out tok/s per user", _per_user),
    Column("out_tok_s_total", "out tok/s total", _measured("output_tokens_per_s")),
    Column("engine_goodput_rps", "goodput req/s", _goodput, optional=True),
    Column(
        "usd_per_million_output_tokens_ci",
        "$/M out tok [95% CI]",
        u.usd_per_million_output_tokens_measured,
        optional=True,
        text=_money_text(u.usd_per_million_output_tokens_measured),
    ),
    Column("target", "target", lambda r: r.target, measured=False, when=_several_targets),
    Column("run_id", "run", lambda r: r.run_id, measured=False, when=_several_runs_per_target),
    Column("workload", "workload", lambda r: r.workload, measured=False),
    Column("preset", "preset", lambda r: r.preset, measured=False),
    Column("backend", "backend", lambda r: r.backend, measured=False),
    Column(
        "dtype",
        "dtype",
        lambda r: r.dtype,
        measured=False,
        text=lambda r: f"{r.dtype} emulated" if r.cell.emulated else r.dtype,
    ),
    Column("mode", "mode", lambda r: r.mode, measured=False),
    Column("threads", "thr", lambda r: r.threads, measured=False),
    Column("batch_size", "batch", lambda r: r.batch_size, measured=False),
    # latency and throughput
    Column("p50_ms", "p50 ms [95% CI]", u.p50_ms),
    Column("p90_ms", "p90 ms [95% CI]", lambda r: r.latency_ms("p90")),
    Column("p99_ms", "p99 ms [95% CI]", lambda r: r.latency_ms("p99")),
    # The interval travels to CSV and JSON (throughput_per_s_lo/_hi); the table shows the figure.
    Column("throughput_per_s", "inf/s", u.throughput, text=lambda r: fmt(_p(u.throughput(r)))),
    Column("gflops_per_s", "GFLOP/s", _flops),
    Column(
        "fraction_of_peak",
        "% peak",
        u.fraction_of_peak,
        optional=True,
        text=lambda r: "> peak?" if u.peak_exceeded(r) else _percent(u.fraction_of_peak(r)),
    ),
    Column("roofline", "% roofline", u.roofline_fraction, optional=True, text=u.roofline_text),
    Column("process_spread", "between procs", u.process_spread, optional=True, text=_spread_text),
    Column(
        "usd_per_million",
        "$/M inf",
        u.usd_per_million_measured,
        optional=True,
        text=_money_text(u.usd_per_million_measured),
    ),
    Column(
        "usd_per_million_tokens",
        "$/M tok",
        u.usd_per_million_tokens_measured,
        optional=True,
        text=_money_text(u.usd_per_million_tokens_measured),
    ),
    # generate
    Column("prompt_tokens", "prompt", lambda r: _tokens(r, "prompt_tokens")),
    Column("output_tokens", "output", lambda r: _tokens(r, "output_tokens")),
    Column("concurrency", "users", lambda r: _param(r, "concurrency"), measured=False, when=_sweeps_concurrency),
    Column("ttft_p50_ms", "TTFT p50 ms [95% CI]", lambda r: r.token_ms("ttft_ns", "p50")),
    # server
    Column("slo", "SLO", _slo),
    Column("capacity_rps", "capacity req/s", u.capacity, text=_capacity_text),
    Column(
        "capacity_p99_met",
        "p99 met",
        u.p99_met,
        optional=True,
        text=lambda r: "-" if u.p99_met(r) is None else f"{u.p99_met(r):.0%} conf.",
    ),
    Column("rate_rps", "rate req/s", lambda r: _server(r, "rate_rps")),
    Column("goodput_rps", "goodput req/s", lambda r: _server(r, "goodput_rps")),
    Column("e2e_p99_ms", "p99 ms", lambda r: r.latency_ms("p99")),
    # decoder token tails (generate and server)
    Column("ttft_p99_ms", "TTFT p99 ms", lambda r: r.token_ms("ttft_ns", "p99")),
    Column("tpot_p50_ms", "TPOT p50 ms", lambda r: _p(r.token_ms("tpot_ns", "p50"))),
    Column("itl_p99_ms", "ITL p99 ms", lambda r: r.token_ms("itl_ns", "p99")),
    # offline
    Column("samples_per_s", "samples/s", lambda r: _offline(r, "samples_per_s")),
    # token rates
    Column(
        "output_tokens_per_s",
        "out tok/s",
        _measured("output_tokens_per_s"),
    ),
    Column(
        "total_tokens_per_s",
        "total tok/s",
        _measured("total_tokens_per_s"),
    ),
    Column("batch_p50_ms", "batch p50 ms", lambda r: _p(r.latency_ms("p50"))),
    Column("samples", "n", lambda r: r.samples),
    Column("batches", "batches", lambda r: _offline(r, "batches")),
    Column("stop_reason", "stop", lambda r: r.measurement.sampling.stop_reason if r.measurement else None),
    # load-scenario costs
    Column(
        "usd_per_million_at_capacity",
        "$/M inf @capacity",
        u.usd_per_million_at_capacity,
        optional=True,
        text=_money_text(u.usd_per_million_at_capacity),
    ),
    Column(
        "usd_per_million_output_tokens_at_capacity",
        "$/M out tok @capacity",
        lambda r: r.usd_per_million_output_tokens_at_capacity,
        optional=True,
    ),
    Column(
        "usd_per_million_total_tokens_at_capacity",
        "$/M tok @capacity",
        lambda r: r.usd_per_million_total_tokens_at_capacity,
        optional=True,
    ),
    Column(
        "usd_per_million_output_tokens_measured",
        "$/M out tok measured",
        lambda r: r.usd_per_million_output_tokens,
        optional=True,
    ),
    Column("usd_per_million_offline", "$/M inf e2e", lambda r: r.usd_per_million_measured, optional=True),
    Column(
        "usd_per_million_output_tokens",
        "$/M out tok",
        lambda r: r.usd_per_million_output_tokens,
        optional=True,
    ),
    Column(
        "usd_per_million_total_tokens",
        "$/M tok",
        lambda r: r.usd_per_million_total_tokens,
        optional=True,
    ),
)


#: The cell's configuration: every table starts with these.
IDENTITY = ("target", "run_id", "workload", "preset", "backend", "dtype", "mode", "threads", "batch_size")
#: An engine cell's configuration: its dtype is in its engine config, and mode, batch and threads
#: mean nothing for it (the engine batches and threads itself).
ENGINE_IDENTITY = ("target", "run_id", "model", "request_set", "server", "engine_config", "users")
_ENGINE_TOKENS = (
    "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "itl_p99_ms", "out_tok_s_per_user", "out_tok_s_total",
)  # fmt: skip
#: A serving report's columns after the engine configuration, per scenario.
ENGINE_COLUMNS = {
    "generate": (*_ENGINE_TOKENS, "engine_goodput_rps", "usd_per_million_output_tokens_ci", "samples", "stop_reason"),
    "server": (
        "slo", "capacity_rps", "rate_rps", *_ENGINE_TOKENS, "engine_goodput_rps",
        "usd_per_million_output_tokens_at_capacity", "usd_per_million_output_tokens_ci", "samples", "stop_reason",
    ),
}  # fmt: skip
BY_KEY = {column.key: column for column in COLUMNS}


def columns_for(scenario: str, rows: Sequence[CellRow]) -> list[Column]:
    """The columns of one scenario's table: the configuration, then those its spec names, minus
    optional columns no row has a value for and identity columns the rows do not need. A scenario
    this release does not know (a run file from a newer one) gets the forward-pass columns. A table
    of engine cells only is a serving report (``ENGINE_IDENTITY``, ``ENGINE_COLUMNS``)."""
    from harness.errors import UnknownNameError
    from harness.scenarios.registry import spec
    from harness.scenarios.specs import FORWARD_COLUMNS

    identity: tuple[str, ...] = IDENTITY
    if rows and scenario in ENGINE_COLUMNS and all(r.engine is not None for r in rows):
        identity, named = ENGINE_IDENTITY, ENGINE_COLUMNS[scenario]
    else:
        try:
            named = spec(scenario).columns
        except UnknownNameError:
            named = FORWARD_COLUMNS
    shown = []
    for column in (BY_KEY[key] for key in (*identity, *named)):
        if column.when is not None and not column.when(rows):
            continue
        if column.optional and all(column.value(r) is None for r in rows if r.ok):
            continue
        shown.append(column)
    return shown

"""Compare two runs cell by cell: ratio of medians (and of p99s) with a bootstrap CI, and a verdict.

Statistics, and why:

- The interval is a percentile bootstrap of the ratio new/base of the two sample quantiles, the
  two runs resampled independently (Efron & Tibshirani 1993, ch. 13): latency is skewed and
  multi-modal, so no normal approximation is assumed.
- Each bootstrap replicate of a quantile is drawn exactly, without resampling all n points: the
  k-th order statistic of a resample from the empirical distribution is F⁻¹(U₍ₖ₎), where U₍ₖ₎, the
  k-th of n uniform order statistics, is Beta(k, n−k+1), and U₍ₖ₊₁₎ = U₍ₖ₎ + (1−U₍ₖ₎)·Beta(1, n−k).
  That is the same distribution as resampling (so the same interval) for the linear-interpolation
  quantile the reports use, at O(B log n) instead of O(B·n) — 100 000-sample cells cost nothing.
- The interval of a quantile ratio is given only when each run has at least the samples that
  quantile's own two-sided order-statistic interval needs (``stats.min_samples``: 6 for the
  median, 36 for p90, 368 for p99 at 95%); otherwise it is withheld with that count. Below it the
  bootstrap cannot see past either run's largest sample: at 20 samples a run its p99-ratio interval
  covered the true ratio in 87% of trials, 90% at 60 (lognormal, σ = 0.25, 10% shift), while at
  and above the threshold every case tried (scale shifts, changed spread, Pareto tails) covered
  within Monte Carlo error of 95% (tests/harness/report/test_compare_coverage.py;
  docs/methodology.md has the table).
- Verdict: "slower" when the whole interval of the median ratio lies above 1, "faster" when it
  lies below, else "no significant change". The regression gate (``--fail-if-slower PCT``) fails a
  cell that is slower with significance *and* whose estimated slowdown exceeds PCT, the convention
  of asv's ``continuous`` command: significance guards against noise, PCT against trivia.
- Samples within one run are not independent (a slow call follows a slow call): each run's
  replicates are drawn with the spread of its effective n (``harness.measure.dependence``), so a
  dependent run gets the wider interval it backs (median ratio at lag-1 ρ = 0.5, n = 300: 0.97).
  That covers dependence within the run; run-to-run spread is wider, which is what PCT absorbs.
  Compare runs from one machine.
  When both cells were measured with ``--processes N``, the median's ratio and its interval come
  from the process medians instead (exp of the difference of mean logs, Welch's t interval; see
  ``harness.measure.between``), which includes the spread between processes; ``basis`` says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.measure.between import process_ratio
from harness.measure.dependence import quantile_effective_n
from harness.measure.stats import min_samples
from harness.runfile.json_writer import dumps_json
from harness.runfile.records import CellConfig, RunRecord

__all__ = [
    "CellComparison",
    "Comparison",
    "RatioCI",
    "bootstrap_quantile",
    "compare_runs",
    "environment_differences",
    "ratio_ci",
    "regressions",
    "render_comparison",
]

#: Bootstrap replicates: each is O(log n), so more than stats.py's 2000 costs nothing and
#: halves the Monte Carlo error of the interval's ends.
RESAMPLES = 10_000
VERDICTS = ("faster", "slower", "no significant change", "too few samples")


def bootstrap_quantile(
    samples: Sequence[float] | np.ndarray,
    q: float,
    resamples: int,
    rng: np.random.Generator,
    effective_n: float | None = None,
) -> np.ndarray:
    """``resamples`` bootstrap replicates of the type-7 quantile ``q`` (0..1) of ``samples``.

    With ``effective_n`` = m < n (serially dependent samples), the replicate's uniform is drawn
    with the spread of m draws, Beta(k·m/n, (n−k+1)·m/n): the same mean, the variance of a
    bootstrap that resamples m independent draws.
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    n = ordered.size
    if n == 0:
        raise ValueError("bootstrap_quantile needs at least one sample")
    h = (n - 1) * q
    k = math.floor(h) + 1  # 1-based rank of the lower order statistic
    frac = h - (k - 1)

    def inverse_cdf(u: np.ndarray) -> np.ndarray:
        idx = np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)
        values: np.ndarray = ordered[idx]
        return values

    scale = 1.0 if effective_n is None else max(1.0, min(float(n), effective_n)) / n
    u_k: np.ndarray = rng.beta(k * scale, (n - k + 1) * scale, size=resamples)
    low = inverse_cdf(u_k)
    if frac == 0 or k >= n:
        return low
    u_next: np.ndarray = u_k + (1.0 - u_k) * rng.beta(1, n - k, size=resamples)
    result: np.ndarray = low + frac * (inverse_cdf(u_next) - low)
    return result


@dataclass(frozen=True)
class RatioCI:
    """new/base of a statistic, with its confidence interval (None, and ``note`` why, if withheld)."""

    estimate: float
    low: float | None
    high: float | None
    note: str | None = None


def ratio_ci(
    base: Sequence[float] | np.ndarray,
    new: Sequence[float] | np.ndarray,
    q: float = 0.5,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> RatioCI:
    """Percentile-bootstrap interval of quantile(new, q) / quantile(base, q) (seeded: reproducible).

    Withheld (``low``/``high`` None) when either run has fewer samples than ``q``'s own two-sided
    order-statistic interval needs: there the bootstrap's coverage falls short of ``confidence``.
    """
    base_arr = np.asarray(base, dtype=np.float64)
    new_arr = np.asarray(new, dtype=np.float64)
    base_q = float(np.quantile(base_arr, q))
    estimate = float(np.quantile(new_arr, q)) / base_q if base_q > 0 else math.inf
    needs = min_samples(q, confidence)
    fewest = min(base_arr.size, new_arr.size)
    if fewest < needs:
        note = f"p{q * 100:g} ratio needs ≥ {needs} samples in each run"
        return RatioCI(estimate, None, None, note)
    # Each run's samples in the order taken are worth their effective n (issue 19).
    # Each run's samples in the order taken are worth their effective n (issue 19): the replicates
    # take its spread. Not withheld on it: at these counts a false alarm of the estimate would
    # withhold independent samples' ratios, and a wide interval claims nothing false.
    worth = [quantile_effective_n(arr, float(np.quantile(arr, q))) for arr in (base_arr, new_arr)]
    rng = np.random.default_rng(seed)
    base_reps = bootstrap_quantile(base_arr, q, resamples, rng, worth[0])
    new_reps = bootstrap_quantile(new_arr, q, resamples, rng, worth[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = new_reps / base_reps
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return RatioCI(estimate, None, None, "no finite ratio: a quantile of the base run is zero")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha])
    return RatioCI(estimate, float(low), float(high))


def _verdict(ci: RatioCI) -> str:
    if ci.low is None or ci.high is None:
        return "too few samples"
    if ci.low > 1.0:
        return "slower"
    if ci.high < 1.0:
        return "faster"
    return "no significant change"


@dataclass(frozen=True)
class CellComparison:
    """One configuration present in both runs."""

    cell_id: str
    config: CellConfig
    status: str  # "compared", "failed in new", "failed in base", "failed in both", "no samples"
    base_p50_ms: float | None = None
    new_p50_ms: float | None = None
    p50: RatioCI | None = None
    p99: RatioCI | None = None
    verdict: str = "not compared"
    base_samples: int = 0
    new_samples: int = 0
    #: What the p50 interval rests on: "between processes" when both cells were measured with
    #: ``--processes`` (Welch's interval of the process medians), else "within one process".
    basis: str = "within one process"

    @property
    def change_pct(self) -> float | None:
        return None if self.p50 is None else (self.p50.estimate - 1.0) * 100.0


@dataclass(frozen=True)
class Comparison:
    """Everything ``siliconbench compare`` reports."""

    base_run: str
    new_run: str
    confidence: float
    cells: tuple[CellComparison, ...]
    only_in_base: tuple[str, ...] = ()
    only_in_new: tuple[str, ...] = ()
    environment_warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for cell, data in zip(self.cells, out["cells"], strict=True):
            data["change_pct"] = cell.change_pct
        return out


def _environment_facts(run: RunRecord) -> list[tuple[str, object]]:
    """Environment facts that change timings, with how to name them in a warning."""
    env = run.environment
    torch = env.torch
    return [
        ("CPU model", env.cpu.model),
        ("CPU architecture", env.cpu.arch),
        ("usable CPU cores", env.cpu.usable_cores),
        ("Python", env.python),
        ("torch intra-op threads", torch.num_threads if torch else None),
        ("torch inter-op threads", torch.num_interop_threads if torch else None),
        ("OMP/MKL thread variables", env.env_threads),
    ]


def environment_differences(base: RunRecord, new: RunRecord) -> list[str]:
    """One warning per difference in what the runs ran on (machine, versions, threads, target)."""
    warnings = []
    for (name, old), (_, now) in zip(_environment_facts(base), _environment_facts(new), strict=True):
        if old != now:
            warnings.append(f"{name} differs: {old!r} in base, {now!r} in new")
    old_pkgs, new_pkgs = base.environment.packages, new.environment.packages
    for name in sorted(set(old_pkgs) | set(new_pkgs)):
        if name == "siliconbench":
            continue
        if old_pkgs.get(name) != new_pkgs.get(name):
            warnings.append(f"package {name} differs: {old_pkgs.get(name)!r} in base, {new_pkgs.get(name)!r} in new")
    for key in ("kind", "instance_type", "region"):
        old_value, new_value = getattr(base.target, key), getattr(new.target, key)
        if old_value != new_value:
            warnings.append(f"target {key} differs: {old_value!r} in base, {new_value!r} in new")
    return warnings


def compare_runs(
    base: RunRecord, new: RunRecord, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> Comparison:
    """Match cells by their full configuration and compare each matched pair."""
    if not 0.5 < confidence < 1:
        raise ConfigError(f"confidence must be between 0.5 and 1, got {confidence}")
    base_cells = {c.config: c for c in base.cells}
    new_cells = {c.config: c for c in new.cells}
    compared = []
    for key, new_cell in new_cells.items():
        base_cell = base_cells.get(key)
        if base_cell is None:
            continue
        cell_id = new_cell.id
        base_measured, new_measured = base_cell.measurement, new_cell.measurement
        if base_measured is None or new_measured is None:
            base_ok, new_ok = base_measured is not None, new_measured is not None
            status = "failed in both" if not (base_ok or new_ok) else ("failed in new" if base_ok else "failed in base")
            compared.append(CellComparison(cell_id, new_cell.config, status, verdict=status))
            continue
        base_samples, new_samples = base_measured.samples_ns, new_measured.samples_ns
        if not base_samples or not new_samples:
            compared.append(CellComparison(cell_id, new_cell.config, "no samples", verdict="no samples"))
            continue
        p50 = ratio_ci(base_samples, new_samples, 0.5, confidence, resamples, seed)
        basis = "within one process"
        between = process_ratio(
            base_measured.processes.medians_ns if base_measured.processes else (),
            new_measured.processes.medians_ns if new_measured.processes else (),
            confidence,
        )
        if between is not None:
            p50, basis = RatioCI(between.estimate, between.low, between.high), "between processes"
        p99 = ratio_ci(base_samples, new_samples, 0.99, confidence, resamples, seed + 1)
        compared.append(
            CellComparison(
                cell_id,
                new_cell.config,
                "compared",
                base_p50_ms=float(np.median(base_samples)) / 1e6,
                new_p50_ms=float(np.median(new_samples)) / 1e6,
                p50=p50,
                p99=p99,
                verdict=_verdict(p50),
                base_samples=len(base_samples),
                new_samples=len(new_samples),
                basis=basis,
            )
        )
    only_base = tuple(c.id for k, c in base_cells.items() if k not in new_cells)
    only_new = tuple(c.id for k, c in new_cells.items() if k not in base_cells)
    return Comparison(
        base_run=base.run_id,
        new_run=new.run_id,
        confidence=confidence,
        cells=tuple(compared),
        only_in_base=only_base,
        only_in_new=only_new,
        environment_warnings=tuple(environment_differences(base, new)),
    )


def regressions(comparison: Comparison, fail_if_slower_pct: float) -> list[CellComparison]:
    """Cells that fail the gate: significantly slower by more than the threshold, or newly failing."""
    failing = []
    for cell in comparison.cells:
        if cell.status == "failed in new":
            failing.append(cell)
        elif cell.verdict == "slower" and cell.change_pct is not None and cell.change_pct > fail_if_slower_pct:
            failing.append(cell)
    return failing


def _ratio_text(ci: RatioCI | None) -> str:
    if ci is None:
        return "-"
    if ci.low is None or ci.high is None:
        return f"{ci.estimate:.3f} [withheld]"
    return f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def _verdict_text(cell: CellComparison) -> str:
    if cell.change_pct is None or cell.verdict == "no significant change":
        return cell.verdict
    return f"{cell.verdict} ({cell.change_pct:+.1f}%)"


def render_comparison(comparison: Comparison, fmt: str = "table", fail_if_slower_pct: float | None = None) -> str:
    """The comparison as a terminal table, GitHub Markdown or JSON."""
    if fmt == "json":
        data = comparison.to_dict()
        if fail_if_slower_pct is not None:
            data["gate"] = {
                "fail_if_slower_pct": fail_if_slower_pct,
                "failing": [c.cell_id for c in regressions(comparison, fail_if_slower_pct)],
            }
        return dumps_json(data, indent=1)
    if fmt not in ("table", "markdown"):
        raise ConfigError(f"unknown compare format {fmt!r}; use one of: table, markdown, json")
    from tabulate import tabulate

    markdown = fmt == "markdown"
    level = f"{comparison.confidence:.0%}"
    headers = [
        "cell",
        "base p50 ms",
        "new p50 ms",
        f"p50 new/base [{level} CI]",
        f"p99 new/base [{level} CI]",
        "verdict",
    ]
    table = [
        [
            c.cell_id,
            "-" if c.base_p50_ms is None else f"{c.base_p50_ms:.4g}",
            "-" if c.new_p50_ms is None else f"{c.new_p50_ms:.4g}",
            _ratio_text(c.p50),
            _ratio_text(c.p99),
            _verdict_text(c),
        ]
        for c in comparison.cells
    ]
    title = f"base {comparison.base_run} vs new {comparison.new_run}"
    text = f"### {title}\n\n" if markdown else f"{title}\n\n"
    text += str(tabulate(table, headers=headers, tablefmt="github" if markdown else "simple", disable_numparse=True))
    bullet = "- "
    extra = []
    between = [c.cell_id for c in comparison.cells if c.basis == "between processes"]
    if between:
        extra.append(
            f"{bullet}p50 interval between processes (Welch's t on the process medians) for: {', '.join(between)}"
        )
    within = [c.cell_id for c in comparison.cells if c.status == "compared" and c.basis != "between processes"]
    if between and within:
        extra.append(
            f"{bullet}p50 interval within one process only (no --processes in both runs) for: {', '.join(within)}"
        )
    if comparison.only_in_base:
        extra.append(f"{bullet}only in base (not compared): {', '.join(comparison.only_in_base)}")
    if comparison.only_in_new:
        extra.append(f"{bullet}only in new (not compared): {', '.join(comparison.only_in_new)}")
    notes = sorted({ci.note for c in comparison.cells for ci in (c.p50, c.p99) if ci is not None and ci.note})
    for note in notes:
        extra.append(f"{bullet}interval withheld: {note}; measure longer (--max-time) or with --tail 99")
    for warning in comparison.environment_warnings:
        extra.append(f"{bullet}warning: {warning}")
    if fail_if_slower_pct is not None:
        failing = regressions(comparison, fail_if_slower_pct)
        if failing:
            extra.append(
                f"{bullet}REGRESSION: {len(failing)} cell(s) fail --fail-if-slower {fail_if_slower_pct:g}: "
                + ", ".join(f"{c.cell_id} ({_verdict_text(c)})" for c in failing)
            )
        else:
            extra.append(f"{bullet}gate passed: no cell is significantly slower by more than {fail_if_slower_pct:g}%")
    if extra:
        text += "\n\n" + "\n".join(extra)
    return text

"""Benchmark of the statistics themselves (not a test): how often each printed interval holds.

For lognormal (σ = 0.25), bimodal (80% N(1, 0.03) + 20% N(1.5, 0.05)) and Pareto (α = 1.5) data
at n = 20 … 1000, draws many seeded samples, summarizes each as a run's samples are, and prints
per statistic the share of samples that got a two-sided interval ("shown") and how often those
intervals contained the truth ("covered"), beside the confidence they state. The p99 column adds
what the percentile bootstrap the reports used before would have covered, and the last table
the coverage of compare's p99 ratio with and without its sample-count gate.

The dependent table (issue 19) draws serially dependent sequences (``dependent_series``: AR(1)
at several ρ on lognormal and Weibull marginals, a regime switch, a slow drift) and scores the
order-statistic interval two ways: "independent" reads the samples as independent (the method
before issue 19), "dependence-aware" uses their effective n (``harness.measure.dependence``).
Per method: shown (two-sided), covered among shown, and "held" = (covered + withheld) / trials,
a withheld interval being no false claim; the width is the mean ratio to the independent one.

Run:  python benchmarks/interval_coverage.py [--trials 500] [--only dependent]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.dependent_series import SERIES
from harness.measure.stats import quantile_interval, summarize
from harness.report.compare import bootstrap_quantile, ratio_ci

SIZES = (20, 60, 100, 300, 1000)
_z = NormalDist().inv_cdf
_MODES = ((0.8, 1.0, 0.03), (0.2, 1.5, 0.05))


def _bimodal_quantile(q: float) -> float:
    lo, hi = 0.0, 3.0
    for _ in range(100):
        mid = (lo + hi) / 2
        below = sum(w * NormalDist(mu, sd).cdf(mid) for w, mu, sd in _MODES)
        lo, hi = (mid, hi) if below < q else (lo, mid)
    return (lo + hi) / 2


Draw = Callable[[np.random.Generator, int], np.ndarray]
TRUTHS: dict[str, tuple[Draw, Callable[[float], float], float]] = {
    "lognormal σ=0.25": (
        lambda rng, n: rng.lognormal(0.0, 0.25, n),
        lambda q: math.exp(0.25 * _z(q)),
        math.exp(0.25**2 / 2),
    ),
    "bimodal 80/20": (
        lambda rng, n: np.where(rng.random(n) < 0.2, rng.normal(1.5, 0.05, n), rng.normal(1.0, 0.03, n)),
        _bimodal_quantile,
        1.1,
    ),
    "pareto α=1.5": (lambda rng, n: (1.0 - rng.random(n)) ** (-1 / 1.5), lambda q: (1 - q) ** (-1 / 1.5), 3.0),
}


def summaries(trials: int) -> None:
    print("## intervals a summary prints: shown (two-sided) / covered / stated")
    stats = ("mean", "p50", "p90", "p99")
    print(f"| data | n | {' | '.join(stats)} | old bootstrap p99 covered |")
    print("|---|---|" + "---|" * (len(stats) + 1))
    for name, (draw, quantile, mean) in TRUTHS.items():
        truth = {"mean": mean, "p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99)}
        for n in SIZES:
            rng = np.random.default_rng(n)
            shown = dict.fromkeys(stats, 0)
            hits = dict.fromkeys(stats, 0)
            stated: dict[str, list[float]] = {k: [] for k in stats}
            old_hits = 0
            for _ in range(trials):
                x = draw(rng, n)
                summary = summarize(x)
                for k in stats:
                    iv = summary.intervals[k]
                    if iv.backed and iv.low is not None and iv.high is not None:
                        shown[k] += 1
                        stated[k].append(iv.confidence)
                        hits[k] += iv.low <= truth[k] <= iv.high
                reps = np.percentile(x[rng.integers(0, n, (400, n))], 99, axis=1)
                lo, hi = np.quantile(reps, [0.025, 0.975])
                old_hits += lo <= truth["p99"] <= hi
            cells = []
            for k in stats:
                if shown[k]:
                    cells.append(f"{shown[k] / trials:.0%} / {hits[k] / shown[k]:.3f} / {np.mean(stated[k]):.3f}")
                else:
                    cells.append("withheld")
            print(f"| {name} | {n} | {' | '.join(cells)} | {old_hits / trials:.3f} |")


def ratios(trials: int) -> None:
    print("\n## compare: p99 ratio (new = 1.1 × base, lognormal σ=0.25): covered, ungated → gated")
    print("| n per run | Beta bootstrap, ungated | as compare gives it |")
    print("|---|---|---|")
    for n in SIZES:
        rng = np.random.default_rng(n + 7)
        ungated = gated = given = 0
        for seed in range(trials):
            base, new = rng.lognormal(0.0, 0.25, n), 1.1 * rng.lognormal(0.0, 0.25, n)
            reps = bootstrap_quantile(new, 0.99, 2000, rng) / bootstrap_quantile(base, 0.99, 2000, rng)
            lo, hi = np.quantile(reps, [0.025, 0.975])
            ungated += lo <= 1.1 <= hi
            ci = ratio_ci(base, new, 0.99, resamples=2000, seed=seed)
            if ci.low is not None and ci.high is not None:
                given += 1
                gated += ci.low <= 1.1 <= ci.high
        text = f"{gated / given:.3f}" if given else f"withheld ({ci.note})"
        print(f"| {n} | {ungated / trials:.3f} | {text} |")


def dependent(trials: int, sizes: tuple[int, ...] = (60, 300, 1000)) -> None:
    print("\n## dependent sequences, 95% intervals: shown / covered / held, per method")
    print("| data | n | q | independent (before) | dependence-aware | width × |")
    print("|---|---|---|---|---|---|")
    for series in SERIES:
        for n in sizes:
            rng = np.random.default_rng(n + 19)
            batch = series.draw(rng, trials, n)
            for q in (0.5, 0.9):
                truth = series.quantile(q)
                tally = {"old": [0, 0], "new": [0, 0]}
                widths = []
                for x in batch:
                    old = quantile_interval(x, q, effective_n=float(n))
                    new = quantile_interval(x, q)
                    for key, iv in (("old", old), ("new", new)):
                        if iv.backed and iv.low is not None and iv.high is not None:
                            tally[key][0] += 1
                            tally[key][1] += iv.low <= truth <= iv.high
                    if new.backed and old.backed and new.high is not None and new.low is not None:
                        assert old.high is not None and old.low is not None
                        if old.high > old.low:
                            widths.append((new.high - new.low) / (old.high - old.low))
                cells = []
                for shown, hit in tally.values():
                    covered = f"{hit / shown:.3f}" if shown else "-"
                    cells.append(f"{shown / trials:.0%} / {covered} / {(hit + trials - shown) / trials:.3f}")
                width = f"{np.mean(widths):.2f}" if widths else "-"
                print(f"| {series.name} | {n} | {q:g} | {cells[0]} | {cells[1]} | {width} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--only", choices=("summaries", "ratios", "dependent"))
    args = parser.parse_args()
    print(f"{args.trials} seeded trials per row; command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    if args.only in (None, "summaries"):
        summaries(args.trials)
    if args.only in (None, "ratios"):
        ratios(args.trials)
    if args.only in (None, "dependent"):
        dependent(args.trials)


if __name__ == "__main__":
    main()

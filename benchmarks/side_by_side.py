"""The figures of one client run, from siliconbench's run file or ``vllm bench serve``'s result, and
their ratios: the arithmetic of ``benchmarks/engine_vs_bench_serve.py``, apart from its processes
so that a test can check it without an engine.

Both sides are read as each tool defines them, and the definitions are the same (checked in
vLLM 0.32's ``vllm/benchmarks/serve.py`` and ``lib/endpoint_request_func.py``): TTFT from just
before the request is posted to the first streamed chunk with a choice; TPOT per request
(last chunk - first chunk) / (output tokens - 1) with the server's usage count, then its median;
ITL every gap between chunks with a choice, pooled over requests, then its median; output
tokens/s the server-counted output tokens over the run's wall time.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.runfile.files import load_run

__all__ = [
    "BAND",
    "ClientFigures",
    "Pair",
    "from_bench_serve",
    "from_run_file",
    "hit_rate",
    "sent_together",
    "summary_lines",
    "verdict",
]

#: Agreement: siliconbench's TTFT p50 within this factor band of bench serve's.
BAND = (0.9, 1.1)
#: The figures compared, as (attribute, label).
COMPARED = (("ttft_p50_ms", "TTFT p50"), ("tpot_p50_ms", "TPOT p50"), ("itl_p50_ms", "ITL p50"))
COMPARED += (("output_tokens_per_s", "out tok/s"),)


@dataclass(frozen=True)
class ClientFigures:
    """One client's run at one number of users: medians in milliseconds, rate, and the load's shape
    (requests completed, mean prompt and output tokens per request as the server counted them, and
    the share of requests sent together with another: see ``sent_together``)."""

    ttft_p50_ms: float
    tpot_p50_ms: float
    itl_p50_ms: float
    output_tokens_per_s: float
    requests: int
    input_tokens_per_request: float
    output_tokens_per_request: float
    together: float | None = None


@dataclass(frozen=True)
class Pair:
    """Both clients at ``users`` in one round, the 1-minute load average before each ran, and the
    share of prompt tokens the engine's prefix cache served during each (None: not exported)."""

    users: int
    round: int
    ours: ClientFigures
    theirs: ClientFigures
    load_ours: float
    load_theirs: float
    hit_ours: float | None = None
    hit_theirs: float | None = None

    def ratio(self, attribute: str) -> float:
        """siliconbench / bench serve of one compared figure."""
        theirs = float(getattr(self.theirs, attribute))
        return float(getattr(self.ours, attribute)) / theirs if theirs else float("nan")


def from_bench_serve(result: Mapping[str, Any]) -> ClientFigures:
    """The figures of a ``vllm bench serve --save-result`` JSON (the keys its ``benchmark`` returns)."""
    keys = ("median_ttft_ms", "median_tpot_ms", "median_itl_ms", "output_throughput", "completed")
    keys += ("total_input_tokens", "total_output_tokens", "failed")
    missing = [key for key in keys if key not in result]
    if missing:
        raise ValueError(f"not a bench serve result: no {', '.join(missing)}")
    completed = int(result["completed"])
    if completed < 1 or int(result["failed"]):
        raise ValueError(f"bench serve completed {completed} requests and failed {result['failed']}")
    return ClientFigures(
        ttft_p50_ms=float(result["median_ttft_ms"]),
        tpot_p50_ms=float(result["median_tpot_ms"]),
        itl_p50_ms=float(result["median_itl_ms"]),
        output_tokens_per_s=float(result["output_throughput"]),
        requests=completed,
        input_tokens_per_request=int(result["total_input_tokens"]) / completed,
        output_tokens_per_request=int(result["total_output_tokens"]) / completed,
        together=sent_together([1000 * float(t) for t in result.get("start_times") or ()]),
    )


def from_run_file(path: str | Path) -> ClientFigures:
    """The figures of a siliconbench run file's one engine cell (its measured window, warmup left out)."""
    cells = load_run(path).cells
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell, found {len(cells)}")
    measured = cells[0].measurement
    load = None if measured is None or measured.engine is None else measured.engine.load
    if load is None:
        raise ValueError(f"{path}: cell {cells[0].id} has no engine load ({cells[0].error})")
    if load.ttft_ns is None or load.tpot_ns is None or load.itl_ns is None or load.ok < 1 or load.failed:
        raise ValueError(f"{path}: {load.ok} requests ok and {load.failed} failed ({load.failures})")
    return ClientFigures(
        ttft_p50_ms=load.ttft_ns.p50 / 1e6,
        tpot_p50_ms=load.tpot_ns.p50 / 1e6,
        itl_p50_ms=load.itl_ns.p50 / 1e6,
        output_tokens_per_s=load.output_tokens_per_s,
        requests=load.ok,
        input_tokens_per_request=load.input_tokens / load.ok,
        output_tokens_per_request=load.output_tokens / load.ok,
        together=sent_together([(r.scheduled_ns + r.sent_ns) / 1e6 for r in load.request_records]),
    )


#: Requests sent less than this apart reach the engine's scheduler in the same step (a decode step
#: of the tiny Llama is 7-20 ms on this machine).
TOGETHER_MS = 1.0


def sent_together(starts_ms: Sequence[float], within_ms: float = TOGETHER_MS) -> float | None:
    """The share of requests sent within ``within_ms`` of another one; None for fewer than two.

    At several closed-loop users of equal output lengths, requests that finish together are sent
    again together, and the engine prefills them in one step: their TTFT is that of the batch's
    prefill, about twice that of a request sent alone (seen at 4 users: ~80 against ~160-190 ms).
    The TTFT median then sits between the two modes, and where depends on how synchronized the
    users stayed (this share, and how many go together), which drifts from run to run for either
    client: printed so that a reader sees it beside a TTFT ratio at several users.
    """
    if len(starts_ms) < 2:
        return None
    ordered = sorted(starts_ms)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    near = [min(before, after) for before, after in zip([math.inf, *gaps], [*gaps, math.inf], strict=True)]
    return sum(1 for gap in near if gap < within_ms) / len(near)


def hit_rate(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    """The share of prompt tokens the engine's prefix cache served between two readings of its
    (queries, hits) counters; None when either is missing or no prompt token was queried."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return (after[1] - before[1]) / (after[0] - before[0])


def verdict(ratios: Sequence[float], band: tuple[float, float] = BAND) -> str:
    """``within`` when every ratio lies in the band (ends included), else ``OUTSIDE``."""
    low, high = band
    return "within" if ratios and all(low <= r <= high for r in ratios) else "OUTSIDE"


def summary_lines(pairs: Sequence[Pair], band: tuple[float, float] = BAND) -> list[str]:
    """Per number of users: each round's ratio of every compared figure and their median, and
    whether every round's TTFT p50 ratio is within the band."""
    lines = []
    for users in sorted({p.users for p in pairs}):
        mine = [p for p in pairs if p.users == users]
        parts = []
        for attribute, label in COMPARED:
            ratios = [p.ratio(attribute) for p in mine]
            shown = ", ".join(f"{r:.3f}" for r in ratios)
            parts.append(f"{label} {shown} (median {statistics.median(ratios):.3f})")
        ttft = [p.ratio("ttft_p50_ms") for p in mine]
        loads = ", ".join(f"{p.load_ours:.2f}/{p.load_theirs:.2f}" for p in mine)
        lines.append(
            f"{users} user(s): " + "; ".join(parts) + f"; TTFT p50 {verdict(ttft, band)} {band[0]}-{band[1]}"
            f" (load avg 1 min before each sb/bs run: {loads})"
        )
    return lines

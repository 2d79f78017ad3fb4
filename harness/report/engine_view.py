"""The engine's own view of each engine cell, beside what its workload was designed to do.

A serving result reads right only with the engine's side of it: the prefix cache's hit rate next to
the reuse the workload was built with (a shortfall is eviction, or a workload that does not reuse
what it claims; for conversations it comes from the engine's own ids of each turn, or the reason
none is given), the KV cache's peak use, preemptions and the queue, a replayed trace's
punctuality (how late requests left against their recorded times) and, for conversations, the
TTFT of first turns beside later ones. Everything here is read from the run file (``EnginePart``); cells without
an engine part have no line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.runfile.records import EnginePart, Summary

__all__ = ["engine_view", "engine_view_lines"]


def _ms(summary: Summary | None, field: str = "p50") -> str:
    if summary is None:
        return "-"
    value = getattr(summary, field)
    return f"{value / 1e6:.1f} ms"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def engine_view(part: EnginePart) -> dict[str, Any]:
    """The figures of one cell's engine view, as JSON-ready values (None where unknown)."""
    metrics = part.metrics
    view: dict[str, Any] = {
        "prefix_cache_hit_rate": None if metrics is None else metrics.prefix_cache_hit_rate,
        "peak_kv_cache_usage": None if metrics is None else metrics.peak_kv_cache_usage,
        "preemptions": None if metrics is None else metrics.preemptions,
        "peak_running": None if metrics is None else metrics.peak_running,
        "peak_waiting": None if metrics is None else metrics.peak_waiting,
    }
    if part.reuse is not None:
        view["designed_reuse"] = part.reuse.designed_rate
        view["cache_block_size"] = part.reuse.block_size
    elif part.reuse_unknown is not None:
        view["designed_reuse"] = None
        view["designed_reuse_unknown"] = part.reuse_unknown
    if part.trace is not None:
        late = part.trace.lateness_ns
        view["trace"] = {
            "format": part.trace.format,
            "replayed": part.trace.replayed,
            "over_context": part.trace.over_context,
            "lateness_p50_ms": None if late is None else late.p50 / 1e6,
            "lateness_p99_ms": None if late is None else late.p99 / 1e6,
            "lateness_max_ms": None if late is None else late.max / 1e6,
        }
    if part.turns:
        view["turns"] = [
            {
                "turn": t.turn,
                "requests": t.requests,
                "history_tokens": t.history_tokens,
                "ttft_p50_ms": None if t.ttft_ns is None else t.ttft_ns.p50 / 1e6,
            }
            for t in part.turns
        ]
    return view


def _line(part: EnginePart) -> str:
    view = engine_view(part)
    bits = [f"prefix cache hits {_pct(view['prefix_cache_hit_rate'])}"]
    if part.reuse is not None:
        bits[0] += f" (designed {_pct(part.reuse.designed_rate)}, blocks of {part.reuse.block_size})"
    elif part.reuse_unknown is not None:
        bits[0] += f" (no designed reuse: {part.reuse_unknown})"
    bits.append(f"KV cache peak {_pct(view['peak_kv_cache_usage'])}")
    bits.append(f"preemptions {_count(view['preemptions'])}")
    running, waiting = (_count(view[k]) for k in ("peak_running", "peak_waiting"))
    bits.append(f"peak running/waiting {running}/{waiting}")
    if part.trace is not None:
        trace = part.trace
        late = trace.lateness_ns
        p99 = "-" if late is None else f"{late.p99 / 1e6:.1f} ms"
        bits.append(
            f"{trace.format} trace: {trace.replayed} sent, {trace.over_context} over the context, "
            f"lateness p50 {_ms(late)} p99 {p99}"
        )
    if part.turns:
        first = [t for t in part.turns if t.turn == 0]
        later = [t for t in part.turns if t.turn > 0]
        text = f"TTFT p50 turn 1 {_ms(first[0].ttft_ns) if first else '-'}"
        if later:
            text += ", later turns " + ", ".join(f"{t.turn + 1}: {_ms(t.ttft_ns)}" for t in later[:6])
            deepest = later[-1]
            if deepest.history_tokens is not None:
                text += f" (turn {deepest.turn + 1} history {deepest.history_tokens:.0f} tokens)"
        bits.append(text)
    return "; ".join(bits)


def engine_view_lines(rows: Sequence[Any]) -> list[str]:
    """One line per engine cell of ``rows`` (``harness.report.rows.CellRow``): its label and view."""
    lines = []
    for row in rows:
        measured = row.measurement
        part = None if measured is None else measured.engine
        if part is not None:
            # Cells of a sweep differ only in their engine configuration: name it, or their lines
            # read as the same cell twice.
            config = row.engine_config
            swept = f" [{config}]" if config and config != "default" else ""
            users = row.cell.config.params.concurrency
            lines.append(f"{row.workload} {row.preset} {row.scenario} c{users}{swept}: {_line(part)}")
    return lines

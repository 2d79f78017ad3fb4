"""A self-contained HTML report: tables, prices, the answer at a latency target, figures, environment.

One file with no external requests and no JavaScript: the figures are PNGs embedded as base64
data URIs and the styles are inline, so the report opens the same from a CI artifact, an e-mail
attachment or a laptop with no network.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from typing import Any

from harness.measure.environment import utc_now

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d0d0d0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.failed td{background:#fdecea}.meta{color:#555;font-size:.9rem}.wrong{color:#b00020;font-weight:600}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}details{margin:.4rem 0}summary{cursor:pointer}
.scroll{overflow-x:auto}
"""

_NUMERIC = {"thr", "batch", "inf/s", "GFLOP/s", "$/M inf", "$/M tok", "n"}


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(
            f'<td class="num">{escape(v)}</td>' if h in _NUMERIC or " ms" in h else f"<td>{escape(v)}</td>"
            for h, v in zip(headers, row, strict=False)
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _answer(rows: Sequence[dict[str, Any]], slo_p99_ms: float) -> str:
    from harness.report.slo import cell_label, choose
    from harness.report.tables import _fmt, _money

    def describe(row: dict[str, Any] | None) -> str:
        if row is None:
            return "none"
        cost = f", ${_money(row['usd_per_million'])}/M inf" if row.get("usd_per_million") is not None else ""
        return f"{cell_label(row)}: {_fmt(row['throughput_per_s'])} inf/s, p99 {_fmt(row['p99_ms'])} ms{cost}"

    table = [
        [c.workload, f"{c.meeting} of {c.considered}", describe(c.fastest), describe(c.cheapest), "; ".join(c.notes)]
        for c in choose(rows, slo_p99_ms)
    ]
    return (
        f'<h2 id="answer">At p99 &le; {slo_p99_ms:g} ms</h2>'
        '<p class="meta">Fastest: the most inferences per second among cells whose p99 meets the target. '
        "Cheapest: the lowest USD per million inferences among those with a price. "
        "Failed and incorrect cells are never chosen.</p>"
        + _table(["workload", "cells meeting", "fastest", "cheapest", "notes"], table)
    )


def _environment(runs: Sequence[dict[str, Any]]) -> str:
    parts = []
    for run in runs:
        env = run.get("environment", {})
        cpu = env.get("cpu", {})
        target = run.get("target", {})
        facts = [
            ("run id", run.get("run_id")),
            ("status", run.get("status")),
            ("started (UTC)", run.get("started_utc")),
            ("target", target.get("instance_type") or target.get("kind")),
            ("region", target.get("region")),
            ("host", env.get("host")),
            ("OS", env.get("os")),
            ("Python", env.get("python")),
            ("CPU", cpu.get("model")),
            ("arch", cpu.get("arch")),
            ("usable cores", cpu.get("usable_cores")),
            ("CPU flags", ", ".join(cpu.get("flags", []))),
            ("torch threads", (env.get("torch") or {}).get("num_threads")),
            ("packages", ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)),
            ("git commit", env.get("git_commit")),
            ("command", " ".join(env.get("command", []))),
        ]
        rows = [[name, "-" if value in (None, "") else str(value)] for name, value in facts]
        where = target.get("instance_type") or target.get("kind", "local")
        summary = f"{run.get('run_id')} — {where} — {cpu.get('model', '?')}"
        parts.append(f"<details><summary>{escape(summary)}</summary>{_table(['fact', 'value'], rows)}</details>")
    return '<h2 id="environment">Environment</h2>' + "".join(parts)


def render_html(
    runs: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    slo_p99_ms: float | None = None,
    title: str = "siliconbench report",
) -> str:
    """The whole report as one HTML document (rows as built by ``harness.report.tables.cell_rows``)."""
    from harness.report.plots import make_plots
    from harness.report.tables import _display_rows, price_lines

    multi_target = len({r["target"] for r in rows}) > 1
    headers, table, notes = _display_rows(rows, multi_target)
    classes = ["failed" if r["status"] != "ok" else "" for r in rows]
    workloads = sorted({f"{r['workload']}:{r['preset']}" for r in rows})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{len(rows)} cells of {len(workloads)} workload(s) from {len(runs)} run(s): '
        f"{escape(', '.join(str(r.get('run_id')) for r in runs))}. Generated {escape(utc_now()[:19])} UTC. "
        "Latencies are per call (one batch); CIs are 95% bootstrap intervals.</p>",
    ]
    if slo_p99_ms is not None:
        parts.append(_answer(rows, slo_p99_ms))
    parts.append('<h2 id="results">Results</h2>' + _table(headers, table, classes))
    if notes:
        parts.append('<ol class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ol>")
    parts.append(
        '<h2 id="prices">Prices</h2><ul>'
        + "".join(f"<li>{escape(line)}</li>" for line in price_lines(rows))
        + '</ul><p class="meta">USD per million inferences = price per hour / (3600 &times; inferences '
        "per second) &times; 10<sup>6</sup>, at the measured throughput.</p>"
    )
    plots, skipped = make_plots(runs, rows, slo_p99_ms)
    section = None
    for plot in plots:
        if plot.section != section:
            section = plot.section
            parts.append(f"<h2>{escape(section)}</h2>")
        data = base64.b64encode(plot.png).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{escape(plot.alt)}">'
            f"<figcaption>{escape(plot.title)}</figcaption></figure>"
        )
    if skipped:
        parts.append("<h2>Figures not drawn</h2><ul>" + "".join(f"<li>{escape(s)}</li>" for s in skipped) + "</ul>")
    parts.append(_environment(runs))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

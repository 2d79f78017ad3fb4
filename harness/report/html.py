"""A self-contained HTML report: tables, prices, the answer at a latency target, figures, environment.

One file with no external requests and no JavaScript: the figures are PNGs embedded as base64
data URIs (the serving frontier an inline SVG) and the styles are inline, so the report opens the
same from a CI artifact, an e-mail attachment or a laptop with no network. A table wider than the
page scrolls within its own box; the page itself never scrolls sideways.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from harness.runfile.records import utc_now

if TYPE_CHECKING:
    from harness.report.frontier import Frontier
    from harness.report.rows import CellRow
    from harness.report.tables import ScenarioTable
    from harness.runfile.records import RunRecord

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d0d0d0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.failed td{background:#fdecea}.meta{color:#555;font-size:.9rem}.wrong{color:#b00020;font-weight:600}
figure{margin:1rem 0}figure img,figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}details{margin:.4rem 0}summary{cursor:pointer}
.scroll{overflow-x:auto;max-width:100%}
"""


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    classes: Sequence[str] = (),
    numeric: Sequence[bool] = (),
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        cells = "".join(
            f'<td class="num">{escape(v)}</td>' if j < len(numeric) and numeric[j] else f"<td>{escape(v)}</td>"
            for j, v in enumerate(row)
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _list_section(anchor: str, title: str, lines: Sequence[str]) -> str:
    """A titled list of the report's lines, under an anchor a reader (or a test) can find."""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f'<h3 id="{anchor}">{escape(title)}</h3><ul>{items}</ul>'


def _answer(rows: Sequence[CellRow], slo_p99_ms: float) -> str:
    from harness.report.slo import choose, describe_pick

    table = [
        [
            c.workload,
            f"{c.meeting} of {c.considered}",
            describe_pick(c.fastest),
            describe_pick(c.cheapest),
            "; ".join(c.notes),
        ]
        for c in choose(rows, slo_p99_ms)
    ]
    return (
        f'<h2 id="answer">At p99 &le; {slo_p99_ms:g} ms</h2>'
        '<p class="meta">Fastest: the most inferences per second among cells whose p99 meets the target. '
        "Cheapest: the lowest USD per million inferences among those with a price. "
        "Failed and incorrect cells are never chosen.</p>"
        + _table(["workload", "cells meeting", "fastest", "cheapest", "notes"], table)
        + _verdicts(rows, slo_p99_ms)
    )


def _verdicts(rows: Sequence[CellRow], slo_p99_ms: float) -> str:
    """Across runs: how sure the cheapest pick is, and the break-even price of the others."""
    from harness.report.verdict import cross_run_verdicts

    if len({r.run_id for r in rows}) < 2:
        return ""
    verdicts = cross_run_verdicts(rows, slo_p99_ms)
    if not verdicts:
        return ""
    items = "".join(f"<li>{escape(v.workload)}: {escape(v.sentence())}</li>" for v in verdicts)
    return f"<h3>Across runs</h3><ul>{items}</ul>"


def _frontiers(frontiers: Sequence[Frontier]) -> str:
    """Per model: the frontier figure, its points (front first) and the cheapest configuration."""
    from harness.report.frontier import frontier_table
    from harness.report.frontier_plot import frontier_svg

    parts = [
        '<h2 id="frontier">Serving frontier</h2><p class="meta">Each point is an engine cell: output tokens/s '
        "one user sees (1 / TPOT p50) against output tokens/s of the whole instance, with 95% intervals; a "
        "configuration's users trace one curve. Ringed points are on the Pareto front: no other point has as "
        "many tokens/s per user and per instance.</p>"
    ]
    for frontier in frontiers:
        headers, body = frontier_table(frontier)
        numeric = [False, False] + [True] * (len(headers) - 2)
        parts.append(
            f'<figure class="frontier">{frontier_svg(frontier)}'
            f"<figcaption>{escape(frontier.model)}: serving frontier</figcaption></figure>"
            + _table(headers, body, numeric=numeric)
        )
        if frontier.cheapest is not None:
            notes = "".join(f"<li>{escape(n)}</li>" for n in frontier.cheapest.notes)
            parts.append(f'<p class="cheapest">{escape(frontier.cheapest.sentence())}</p><ul>{notes}</ul>')
    return "".join(parts)


def _environment(runs: Sequence[RunRecord]) -> str:
    parts = []
    for run in runs:
        env, cpu, target = run.environment, run.environment.cpu, run.target
        facts = [
            ("run id", run.run_id),
            ("status", run.status + (f" ({run.status_reason})" if run.status_reason else "")),
            ("started (UTC)", run.started_utc),
            ("target", target.label),
            ("region", target.region),
            ("host", env.host),
            ("OS", env.os),
            ("Python", env.python),
            ("CPU", cpu.model),
            ("arch", cpu.arch),
            ("usable cores", cpu.usable_cores),
            ("CPU flags", ", ".join(cpu.flags)),
            ("torch threads", env.torch.num_threads if env.torch else None),
            ("packages", ", ".join(f"{k} {v}" for k, v in env.packages.items() if v)),
            ("git commit", env.git_commit),
            ("command", " ".join(env.command)),
        ]
        rows = [[name, "-" if value in (None, "") else str(value)] for name, value in facts]
        summary = f"{run.run_id} — {target.label} — {cpu.model}"
        parts.append(f"<details><summary>{escape(summary)}</summary>{_table(['fact', 'value'], rows)}</details>")
    return '<h2 id="environment">Environment</h2>' + "".join(parts)


def render_html(
    runs: Sequence[RunRecord],
    rows: Sequence[CellRow],
    tables: Sequence[ScenarioTable],
    slo_p99_ms: float | None = None,
    title: str = "siliconbench report",
    frontiers: Sequence[Frontier] = (),
) -> str:
    """The whole report as one HTML document: one results table per scenario, from the column spec."""
    from harness.report.plots import make_plots
    from harness.report.tables import price_lines, text_cells, withheld_lines

    workloads = sorted({f"{r.workload}:{r.preset}" for r in rows})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{len(rows)} cells of {len(workloads)} workload(s) from {len(runs)} run(s): '
        f"{escape(', '.join(r.run_id for r in runs))}. Generated {escape(utc_now()[:19])} UTC. "
        "Latencies are per call (one batch); each interval's method is in docs/methodology.md.</p>",
    ]
    if slo_p99_ms is not None:
        parts.append(_answer(rows, slo_p99_ms))
    parts.append('<h2 id="results">Results</h2>')
    notes: list[str] = []
    for table in tables:
        headers, body = text_cells(table, notes)
        classes = ["failed" if not r.ok else "" for r in table.rows]
        numeric = [c.measured or c.key in ("threads", "batch_size") for c in table.columns] + [False]
        parts.append(
            f'<h3 id="scenario-{escape(table.scenario)}">scenario: {escape(table.scenario)}</h3>'
            + _table(headers, body, classes, numeric)
        )
    if notes:
        parts.append('<ol class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ol>")
    withheld = withheld_lines(tables)
    if withheld:
        parts.append(_list_section("withheld", "Intervals withheld", withheld))
    from harness.report.engine_view import engine_view_lines

    engine_lines = engine_view_lines([row for table in tables for row in table.rows])
    if engine_lines:
        parts.append(_list_section("engine-view", "The engine's own view", engine_lines))
    from harness.report.cache_effect import cache_effect_lines

    effect_lines = cache_effect_lines(rows)
    if effect_lines:
        parts.append(_list_section("cache-effect", "Prefix caching on later turns", effect_lines))
    parts.append(
        '<h2 id="prices">Prices</h2><ul>'
        + "".join(f"<li>{escape(line)}</li>" for line in price_lines(rows))
        + '</ul><p class="meta">USD per million inferences = price per hour / (3600 &times; inferences '
        "per second) &times; 10<sup>6</sup>, at the measured throughput.</p>"
    )
    if frontiers:
        parts.append(_frontiers(frontiers))
    plots, skipped = make_plots(rows, slo_p99_ms)
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

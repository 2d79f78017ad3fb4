"""Report figures: the Pareto front by hand, and which figures a set of runs supports."""

from __future__ import annotations

import io
from typing import Any

import pytest

from harness.pricing.catalog import Catalog
from harness.report.cost import PriceResolver
from harness.report.formats import cell_rows
from harness.report.plots import make_plots, pareto_front
from tests.harness.runfactory import lognormal_samples, make_cell, make_failed_cell, make_run

matplotlib_image = pytest.importorskip("matplotlib.image")


def test_pareto_front_by_hand() -> None:
    #        0 (1, 9)  1 (2, 5)  2 (3, 6)  3 (4, 2)  4 (5, 2)  5 (2, 5) duplicate of 1
    points = [(1.0, 9.0), (2.0, 5.0), (3.0, 6.0), (4.0, 2.0), (5.0, 2.0), (2.0, 5.0)]
    assert pareto_front(points) == [0, 1, 3]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0), (2.0, 2.0)]) == [0]


def sweep_run(
    instance: str, usd: float, backend: str, base_ms: float, run_id: str, started: str, slowdown: float = 1.0
) -> dict[str, Any]:
    """A priced run that sweeps batch sizes 1, 4, 16 for two workloads."""
    cells = []
    for w, (workload, preset) in enumerate((("mlp", "tiny"), ("bert-base", "tiny"))):
        for b, batch in enumerate((1, 4, 16)):
            median_ns = base_ms * 1e6 * (1 + 0.4 * batch) * (1 + w) * slowdown
            cells.append(
                make_cell(
                    lognormal_samples(median_ns, 400, seed=hash((instance, w, b)) % 1000, sigma=0.1),
                    workload=workload,
                    preset=preset,
                    backend=backend,
                    batch_size=batch,
                    tokens_per_sample=128 if workload == "bert-base" else 0,
                )
            )
    cells.append(make_failed_cell(backend=backend, batch_size=64))
    pricing = {
        "instance_type": instance,
        "region": "us-east-1",
        "purchase_option": "on-demand",
        "usd_per_hour": usd,
        "source": "https://aws.amazon.com/ec2/pricing/on-demand/",
        "as_of": "2026-11-24",
    }
    return make_run(
        cells,
        run_id=run_id,
        started_utc=started,
        pricing=pricing,
        target={"kind": "aws", "instance_type": instance, "region": "us-east-1"},
    )


def demo_runs() -> list[dict[str, Any]]:
    return [
        sweep_run("c7i.2xlarge", 0.357, "cpu", 2.0, "20261120T100000Z-cpu000", "2026-11-20T10:00:00.000000Z", 1.1),
        sweep_run("c7i.2xlarge", 0.357, "cpu", 2.0, "20261124T100000Z-cpu001", "2026-11-24T10:00:00.000000Z"),
        sweep_run("g5.xlarge", 1.006, "cuda", 0.4, "20261124T110000Z-gpu000", "2026-11-24T11:00:00.000000Z"),
    ]


def _image_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib_image.imread(io.BytesIO(png), format="png")
    return image.shape[1], image.shape[0]


def test_every_figure_is_drawn_when_the_runs_support_it() -> None:
    runs = demo_runs()
    plots, skipped = make_plots(cell_rows(runs, PriceResolver(Catalog([], "2026-11-24"))), slo_p99_ms=20.0)
    sections = [(p.section, p.title) for p in plots]
    for workload in ("mlp:tiny", "bert-base:tiny"):
        assert ("Latency distribution per cell", workload) in sections
        assert ("Latency and throughput against batch size", workload) in sections
        assert ("Cost per million inferences against p99 latency", workload) in sections
        assert ("History", workload) in sections
    assert skipped == []
    for plot in plots:
        width, height = _image_size(plot.png)
        assert width > 400 and height > 150, (plot.section, width, height)
        assert plot.alt


def test_figures_that_would_be_empty_are_skipped_with_a_reason() -> None:
    run = make_run([make_cell(lognormal_samples(1e6, 200, 1))])
    plots, skipped = make_plots(cell_rows([run]))
    assert [p.section for p in plots] == ["Latency distribution per cell"]
    assert any(s.startswith("Latency and throughput against batch size") for s in skipped)
    assert any("no cell has a price" in s for s in skipped)
    assert any(s.startswith("History") for s in skipped)


def test_only_failed_cells_give_no_figures_and_no_errors() -> None:
    run = make_run([make_failed_cell()])
    assert make_plots(cell_rows([run])) == ([], [])

"""The fastest and the cheapest cell that meets a p99 target, per workload."""

from __future__ import annotations

from harness.pricing.catalog import Catalog
from harness.report.cost import PriceResolver
from harness.report.formats import cell_rows, render
from harness.report.slo import choose
from tests.harness.runfactory import make_cell, make_failed_cell, make_run

EMPTY = Catalog([], "2026-11-24")


def _constant(latency_ms: float, n: int = 200, **kw: object) -> dict:
    return make_cell([int(latency_ms * 1e6)] * n, **kw)  # type: ignore[arg-type]


def _priced_run(run_id: str, instance: str, usd: float, cells: list[dict]) -> dict:
    pricing = {
        "instance_type": instance,
        "region": "us-east-1",
        "purchase_option": "on-demand",
        "usd_per_hour": usd,
        "source": "test",
        "as_of": "2026-11-01",
    }
    return make_run(
        cells, run_id=run_id, target={"kind": "aws", "instance_type": instance, "region": "us-east-1"}, pricing=pricing
    )


def _rows() -> list[dict]:
    # Cheap CPU: 4 ms per call at bs1 (250/s) and 30 ms at bs8 (266.7/s); $0.36/h.
    cpu = _priced_run("20261101T100000Z-cpu000", "c7i.2xlarge", 0.36, [_constant(4.0), _constant(30.0, batch_size=8)])
    # Fast accelerator: 1 ms at bs1 (1000/s), 6 ms at bs16 (2666.7/s); $3.60/h.
    acc = _priced_run(
        "20261101T100000Z-acc000",
        "g5.xlarge",
        3.6,
        [
            _constant(1.0, backend="cuda"),
            _constant(6.0, backend="cuda", batch_size=16),
            _constant(0.5, backend="cuda", dtype="bf16", correct=False),
            make_failed_cell(backend="cuda", batch_size=32),
        ],
    )
    return cell_rows([cpu, acc], PriceResolver(EMPTY))


def test_fastest_is_the_most_throughput_and_cheapest_the_lowest_cost_within_the_target() -> None:
    (choice,) = choose(_rows(), slo_p99_ms=10.0)
    # Within 10 ms: cpu bs1 (250/s), cuda bs1 (1000/s), cuda bs16 (2666.7/s).
    assert choice.meeting == 3
    assert choice.fastest is not None and choice.fastest.batch_size == 16
    # Costs: cpu bs1 0.36/(3600*250)*1e6 = 0.4; cuda bs1 1.0; cuda bs16 0.375 -> the accelerator at bs16.
    assert choice.cheapest is not None and choice.cheapest.batch_size == 16
    assert choice.cheapest.usd_per_million_headline == 3.6 / (3600 * (16 / 0.006)) * 1e6


def test_a_tighter_target_changes_the_answer() -> None:
    (choice,) = choose(_rows(), slo_p99_ms=5.0)
    assert choice.fastest is not None and (choice.fastest.backend, choice.fastest.batch_size) == ("cuda", 1)
    assert choice.cheapest is not None and choice.cheapest.target == "c7i.2xlarge"  # 0.4 $/M beats 1.0 $/M


def test_failed_and_incorrect_cells_are_never_chosen() -> None:
    (choice,) = choose(_rows(), slo_p99_ms=0.8)
    # Only the incorrect bf16 cell (0.5 ms) would meet 0.8 ms.
    assert choice.fastest is None and choice.cheapest is None
    assert any("no cell meets p99 <= 0.8 ms" in n for n in choice.notes)
    assert any("failed or incorrect" in n for n in choice.notes)


def test_unpriced_cells_can_be_fastest_but_never_cheapest() -> None:
    rows = cell_rows([make_run([_constant(2.0)])], PriceResolver(EMPTY))
    (choice,) = choose(rows, slo_p99_ms=5.0)
    assert choice.fastest is not None and choice.cheapest is None
    assert any("has a price" in n for n in choice.notes)


def test_each_workload_gets_its_own_answer_and_the_report_prints_them() -> None:
    run = make_run(
        [_constant(2.0), _constant(3.0, workload="bert-base", preset="tiny")],
        pricing={"usd_per_hour": 1.0, "source": "test", "as_of": "2026-11-01"},
    )
    assert [c.workload for c in choose(cell_rows([run]), 5.0)] == ["mlp:tiny", "bert-base:tiny"]
    text = render([run], "markdown", slo_p99_ms=5.0)
    assert "### At p99 <= 5 ms" in text
    assert "**bert-base:tiny** (1 of 1 cells meet it)" in text
    assert "fastest: local cpu fp32 eager bs1 t8: 500 inf/s, p99 2 ms, $0.556/M inf" in text


def test_few_samples_are_flagged_next_to_the_choice() -> None:
    rows = cell_rows([make_run([_constant(2.0, n=20)])], PriceResolver(EMPTY))
    (choice,) = choose(rows, 5.0)
    assert any("only 20 samples" in n for n in choice.notes)


def test_a_pick_whose_p99_interval_reaches_past_the_target_is_flagged_with_its_own_bound() -> None:
    # 400 samples back a p99 interval; the pick's upper end lies above the target, the other row's does not.
    import numpy as np

    from harness.report.slo import MIN_SAMPLES_FOR_P99

    spread = [int(x) for x in np.random.default_rng(0).lognormal(np.log(4.5e6), 0.04, 400)]
    slow = _constant(9.0, n=400, batch_size=4)
    rows = cell_rows([make_run([make_cell(spread), slow])], PriceResolver(EMPTY))
    (choice,) = choose(rows, 5.0)
    assert MIN_SAMPLES_FOR_P99 == 368
    assert choice.fastest is not None
    p99 = choice.fastest.latency_ms("p99")
    assert p99 is not None and p99.high is not None and p99.value <= 5.0 < p99.high
    (note,) = [n for n in choice.notes if "reaches" in n]
    assert note == f"the fastest cell's p99 confidence interval reaches {p99.high:.3g} ms, above the target"

"""The serving frontier on synthetic engine runs: the Pareto front keeps exactly the points nothing
beats, the cheapest configuration is the cheapest of those meeting the TTFT/TPOT targets (never a
cheaper one that misses them), with how sure, and every format carries it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness.report.formats import render
from harness.report.frontier import frontiers, pareto_front_max
from harness.report.frontier_plot import frontier_svg
from harness.report.rows import cell_rows
from harness.runfile.records import RunRecord
from tests.harness.report.engine_runs import engine_cell, engine_run

SEQS2 = (("max-num-seqs", "2"),)
SEQS8 = (("max-num-seqs", "8"),)


def test_the_front_keeps_exactly_the_undominated_points() -> None:
    points = [(10.0, 10.0), (5.0, 20.0), (4.0, 19.0), (10.0, 9.0), (1.0, 30.0), (5.0, 20.0), (0.5, 30.0)]
    # (4, 19) is beaten by (5, 20); (10, 9) by (10, 10); (0.5, 30) by (1, 30); equal points both stay.
    assert sorted(pareto_front_max(points)) == [0, 1, 4, 5]
    assert pareto_front_max([]) == []


@pytest.fixture(scope="module")
def sweep() -> RunRecord:
    """Two configurations × 1/2/4 users: max-num-seqs=2 queues the 4th user (worse on both axes
    than max-num-seqs=8 at 4 users), so its 4-user point is dominated."""
    return engine_run(
        engine_cell(SEQS2, 1, ttft_ms=20, tpot_ms=10, out_tok_s=95, seed=1),
        engine_cell(SEQS2, 2, ttft_ms=25, tpot_ms=12, out_tok_s=160, seed=2),
        engine_cell(SEQS2, 4, ttft_ms=120, tpot_ms=16, out_tok_s=200, seed=3),
        engine_cell(SEQS8, 1, ttft_ms=21, tpot_ms=10.5, out_tok_s=92, seed=4),
        engine_cell(SEQS8, 2, ttft_ms=26, tpot_ms=12.5, out_tok_s=150, seed=5),
        engine_cell(SEQS8, 4, ttft_ms=40, tpot_ms=15, out_tok_s=250, seed=6),
        engine_cell(SEQS8, 8, ttft_ms=400, tpot_ms=30, out_tok_s=300, requests=400, seed=7),
    )


def _front(run: RunRecord) -> set[tuple[str | None, int]]:
    (frontier,) = frontiers(cell_rows([run]))
    return {(p.row.engine_config, p.row.users) for p in frontier.front}


def test_dominated_configurations_leave_the_front(sweep: RunRecord) -> None:
    (frontier,) = frontiers(cell_rows([sweep]))
    assert len(frontier.points) == 7
    front = _front(sweep)
    assert ("max-num-seqs=2", 4) not in front  # 62.5 tok/s/user and 200 tok/s: beaten by seqs=8 at 4 users
    assert ("max-num-seqs=8", 2) not in front  # beaten by seqs=2 at 2 users on both axes
    assert front == {
        ("max-num-seqs=2", 1),
        ("max-num-seqs=2", 2),
        ("max-num-seqs=8", 4),
        ("max-num-seqs=8", 8),
    }
    point = next(p for p in frontier.points if p.row.users == 4 and p.row.engine_config == "max-num-seqs=8")
    assert point.per_user.value == pytest.approx(1000 / 15, rel=0.05)
    assert point.per_instance.value == 250
    assert point.per_user.low is not None and point.per_user.low < point.per_user.value < (point.per_user.high or 0)
    assert point.usd_per_million is not None
    assert point.usd_per_million.value == pytest.approx(2.0 / (3600 * 250) * 1e6)


def test_the_front_spans_runs_and_silicon() -> None:
    """A second run whose one point beats everything empties the first run's front."""
    first = engine_run(engine_cell(SEQS2, 1, 20, 10, 95), engine_cell(SEQS2, 4, 40, 15, 250, seed=2))
    better = engine_run(engine_cell(SEQS8, 4, 10, 5, 900, seed=3), run_id="20261102T100000Z-bbbbbb")
    (frontier,) = frontiers(cell_rows([first, better]))
    assert [(p.row.run_id, p.row.users) for p in frontier.front] == [("20261102T100000Z-bbbbbb", 4)]


def test_the_cheapest_configuration_meeting_the_targets(sweep: RunRecord) -> None:
    """TTFT p99 <= 50 ms: seqs=8 at 8 users is cheapest but misses it (400 ms), seqs=2 at 4 users too
    (120 ms); seqs=8 at 4 users is the cheapest that meets it."""
    (frontier,) = frontiers(cell_rows([sweep]), ttft_ms=50, tpot_ms=20)
    cheapest = frontier.cheapest
    assert cheapest is not None and cheapest.pick is not None
    assert (cheapest.pick.row.engine_config, cheapest.pick.row.users) == ("max-num-seqs=8", 4)
    assert cheapest.meeting == 5 and cheapest.considered == 7
    assert cheapest.runner_up is not None and cheapest.runner_up.row.users == 2
    # 250 against 160 tok/s with medians ~5% apart: the pick is cheaper all but surely.
    assert cheapest.probability_cheaper is not None and cheapest.probability_cheaper > 0.99
    # 40 requests all under the targets back a p99 with 1 - 0.99^40 = 0.33 only: said, not hidden.
    assert cheapest.ttft_confidence == pytest.approx(1 - 0.99**40, abs=1e-6)
    assert cheapest.met_confidence is not None and cheapest.met_confidence < 0.5
    assert any("confidence" in note for note in cheapest.notes)
    assert "cheapest meeting TTFT p99 <= 50 ms and TPOT p99 <= 20 ms" in cheapest.sentence()

    (loose,) = frontiers(cell_rows([sweep]), ttft_ms=1000)
    assert loose.cheapest is not None and loose.cheapest.pick is not None
    assert loose.cheapest.pick.row.users == 8  # without the tight target, the 8-user point is cheapest
    # 400 requests all under 1000 ms: the p99 target is met with confidence 1 - 0.99^400 = 0.98.
    assert loose.cheapest.met_confidence == pytest.approx(1 - 0.99**400, abs=1e-6)


def test_an_incorrect_configuration_is_never_the_pick() -> None:
    run = engine_run(
        engine_cell(SEQS2, 4, 20, 10, 900, correct=False, seed=1), engine_cell(SEQS8, 4, 20, 10, 100, seed=2)
    )
    (frontier,) = frontiers(cell_rows([run]), ttft_ms=100)
    assert frontier.cheapest is not None and frontier.cheapest.pick is not None
    assert frontier.cheapest.pick.row.engine_config == "max-num-seqs=8"
    assert frontier.cheapest.runner_up is None


def test_no_price_no_pick_and_it_says_why() -> None:
    run = engine_run(engine_cell(SEQS2, 1, 20, 10, 95), usd_per_hour=None)
    (frontier,) = frontiers(cell_rows([run]), ttft_ms=100)
    assert frontier.cheapest is not None and frontier.cheapest.pick is None
    assert "price" in frontier.cheapest.notes[0]


def test_every_format_carries_the_frontier(sweep: RunRecord) -> None:
    table = render([sweep], "table", serving_slo_ms=(50.0, None))
    assert "Serving frontier" in table and "cheapest meeting TTFT p99 <= 50 ms" in table
    markdown = render([sweep], "markdown")
    assert "### Serving frontier" in markdown and "| front" in markdown
    data = json.loads(render([sweep], "json", serving_slo_ms=(50.0, 20.0)))
    (model,) = data["frontier"]
    assert sum(p["on_front"] for p in model["points"]) == 4
    assert model["cheapest"]["pick"]["users"] == 4 and model["cheapest"]["pick"]["engine_config"] == "max-num-seqs=8"
    assert data["cells"][0]["engine_config"] == "max-num-seqs=2"


def test_the_serving_table_has_engine_columns_and_drops_the_meaningless_ones(sweep: RunRecord) -> None:
    data = json.loads(render([sweep], "json"))
    keys = set(data["cells"][0])
    assert {"model", "request_set", "server", "engine_config", "users", "ttft_p99_ms", "tpot_p99_ms"} <= keys
    assert {"out_tok_s_per_user", "out_tok_s_total", "usd_per_million_output_tokens_ci", "itl_p99_ms"} <= keys
    assert not {"dtype", "mode", "batch_size", "threads"} & keys
    header = render([sweep], "table").splitlines()[1]
    for meaningless in (" dtype ", " mode ", " batch ", " thr "):
        assert meaningless not in f" {header} "


def _svg(run: RunRecord) -> ET.Element:
    (frontier,) = frontiers(cell_rows([run]))
    return ET.fromstring(frontier_svg(frontier))


def test_the_frontier_figure_names_its_axes_points_and_front(sweep: RunRecord) -> None:
    root = _svg(sweep)
    ns = "{http://www.w3.org/2000/svg}"
    texts = ["".join(t.itertext()) for t in root.iter(f"{ns}text")]
    assert any("output tokens/s per user" in t for t in texts)
    assert any("output tokens/s per instance" in t for t in texts)
    ids = {g.get("id") for g in root.iter(f"{ns}g")}
    assert "pareto-front" in ids and "front-points" in ids
    assert {"series-0", "series-1"} <= ids
    labels = [g for g in root.iter(f"{ns}g") if g.get("id", "").startswith("point-label")]
    assert len(labels) == 7  # every point says its users and its cost
    label_text = " ".join("".join(g.itertext()) for g in labels)
    assert "4u $" in label_text and "8u $" in label_text
    assert any("Pareto front (4 of 7 points)" in t for t in texts)
    assert any("max-num-seqs=8" in t for t in texts)  # the legend names the configurations


@pytest.mark.slow  # draws every figure of three runs (several seconds)
def test_the_history_never_joins_two_concurrencies() -> None:
    from harness.report.plots import make_plots

    runs = [
        engine_run(
            engine_cell(SEQS2, users, 20 * users, 10, 95 * users, seed=users),
            run_id=f"2026110{users}T100000Z-cccccc",
            started_utc=f"2026-11-0{users}T10:00:00.000000Z",
        )
        for users in (1, 4)
    ]
    plots, skipped = make_plots(cell_rows(runs))
    assert not [p for p in plots if p.section == "History"]  # two configurations, each measured once
    assert any(s.startswith("History") for s in skipped)
    again = engine_run(
        engine_cell(SEQS2, 1, 20, 10, 95, seed=9), run_id="20261109T100000Z-dddddd",
        started_utc="2026-11-09T10:00:00.000000Z",
    )  # fmt: skip
    plots, _ = make_plots(cell_rows([*runs, again]))
    (history,) = [p for p in plots if p.section == "History"]
    assert history.alt.startswith("Median latency of 1 configurations")


def test_box_plots_and_labels_say_how_many_users(sweep: RunRecord) -> None:
    rows = cell_rows([sweep])
    assert rows[2].label.endswith("max-num-seqs=2 4 users in32-out16")
    assert rows[0].label.endswith("max-num-seqs=2 1 user in32-out16")


@pytest.mark.slow  # renders the whole page, PNG figures included
def test_the_html_report_inlines_the_frontier_and_its_table(sweep: RunRecord) -> None:
    html = render([sweep], "html", serving_slo_ms=(50.0, None))
    section = html[html.index('id="frontier"') :]
    assert section.index("<svg") < section.index("<table")  # the figure, then its points
    assert 'id="pareto-front"' in section and "cheapest meeting TTFT p99 &lt;= 50 ms" in section
    assert ".scroll{overflow-x:auto;max-width:100%}" in html  # wide tables scroll in their box


def test_labels_of_points_on_one_spot_take_different_places() -> None:
    from harness.report.frontier_plot import label_places

    # Two apart, then three on one spot (and a fourth a hair away): each of those four its own place.
    at = [(0.0, 0.0), (100.0, 100.0), (50.0, 50.0), (50.0, 50.0), (50.0, 50.0), (50.5, 50.2)]
    assert label_places(at) == [0, 0, 0, 1, 2, 3]
    assert label_places([]) == []


def test_two_configurations_that_perform_alike_have_labels_apart_in_the_figure() -> None:
    on, off = (("enable-prefix-caching", "true"),), (("enable-prefix-caching", "false"),)
    run = engine_run(
        engine_cell(on, 1, 20, 10, 95, seed=1),
        engine_cell(off, 1, 20, 10, 95, seed=1),
        engine_cell(on, 2, 25, 12, 160, seed=2),
        engine_cell(off, 2, 25, 12, 160, seed=2),
    )
    ns = "{http://www.w3.org/2000/svg}"
    spots: dict[str, list[tuple[float, float]]] = {}
    for group in _svg(run).iter(f"{ns}g"):
        if group.get("id", "").startswith("point-label"):
            (text,) = group.iter(f"{ns}text")
            spots.setdefault("".join(text.itertext()).split()[0], []).append(
                (float(text.get("x", "nan")), float(text.get("y", "nan")))
            )
    assert sorted(spots) == ["1u", "2u"]
    for label, (first, second) in spots.items():
        apart = abs(first[0] - second[0]) + abs(first[1] - second[1])
        assert apart >= 10, (label, first, second)  # 7-point text: 10 px clears one line

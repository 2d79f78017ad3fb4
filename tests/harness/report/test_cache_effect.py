"""Prefix caching's effect on conversations' later turns, on synthetic runs whose ratios are chosen:
the paired median and its interval, why none is given when the pairs are too few, and the report's
text, Markdown, JSON and HTML."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from harness.measure.between import process_ratio
from harness.report.cache_effect import cache_effects, later_turn_pairs, paired_ratio
from harness.report.formats import render
from harness.report.rows import cell_rows
from harness.runfile.records import CellRecord, EngineRequestRecord, RunRecord
from tests.harness.report.engine_runs import engine_cell, engine_run

#: The designed effect: with the history cached, a later turn's TTFT is this share of uncached.
LATER = 0.8


def _records(ttft_ms: dict[tuple[int, int], float], order: list[tuple[int, int]]) -> tuple[EngineRequestRecord, ...]:
    out = []
    for i, (conversation, turn) in enumerate(order):
        ttft = int(ttft_ms[(conversation, turn)] * 1e6)
        out.append(
            EngineRequestRecord(
                id=f"c{conversation}t{turn}", api="chat", scheduled_ns=i * 10**9, sent_ns=0,
                token_ns=(ttft, ttft + 10**6), end_ns=ttft + 2 * 10**6, input_tokens=100 * (turn + 1),
                output_tokens=2, expected_input_tokens=None, max_tokens=2, finish_reason="length",
                conversation=conversation, turn=turn, history_messages=2 * turn,
            )
        )  # fmt: skip
    return tuple(out)


def _cell(caching: str, records: tuple[EngineRequestRecord, ...], users: int = 2) -> CellRecord:
    cell = engine_cell((("enable-prefix-caching", caching),), users, 50.0, 5.0, 100.0, request_set="conversations")
    assert cell.measurement is not None and cell.measurement.engine is not None
    part = cell.measurement.engine
    part = replace(part, load=replace(part.load, request_records=records))
    return replace(cell, measurement=replace(cell.measurement, engine=part))


def conversation_run(
    conversations: int = 16, turns: int = 3, *, seed: int = 0, first: float = 1.0, noise: float = 0.04
) -> RunRecord:
    """Conversations whose uncached TTFT differs tenfold between them and grows with the turn; with
    caching on, later turns take ``LATER`` of it and first turns ``first`` (each times a small noise)."""
    rng = np.random.default_rng(seed)
    base = {c: float(np.exp(rng.uniform(np.log(20), np.log(400)))) for c in range(conversations)}
    off = {(c, t): base[c] * (1 + 0.5 * t) * float(rng.lognormal(0, noise)) for c in base for t in range(turns)}
    on = {
        (c, t): off[(c, t)] * (LATER if t else first) * float(rng.lognormal(0, noise))
        for c in base
        for t in range(turns)
    }
    # Two users: conversations interleave, each run in its own order.
    order_on = [(c, t) for pair in range(0, conversations, 2) for t in range(turns) for c in (pair, pair + 1)]
    order_off = sorted(order_on, key=lambda key: (key[1], key[0]))
    return engine_run(_cell("true", _records(on, order_on)), _cell("false", _records(off, order_off)))


def test_later_turns_are_paired_by_conversation_and_turn_and_the_first_turns_left_out() -> None:
    run = conversation_run(first=1.0)
    (effect,) = cache_effects(cell_rows([run]))
    assert effect.pairs == 16 * 2 and effect.unpaired == 0  # turns 2 and 3 of each; no turn 1
    assert effect.ratio == pytest.approx(LATER, rel=0.03)
    assert effect.low is not None and effect.high is not None
    assert effect.low < LATER < effect.high < 0.9 and effect.excludes_one
    assert effect.method.startswith("order statistics") and effect.confidence == 0.95
    on, off = (c.measurement.engine.load.request_records for c in run.cells if c.measurement and c.measurement.engine)
    pairs, _ = later_turn_pairs(on, off)
    # Unpaired (each side's later turns on their own), the tenfold spread between conversations
    # buries the effect: the interval of the same data spans 1, so a report that did not pair fails.
    unpaired = process_ratio([b for _, b in pairs], [a for a, _ in pairs])
    assert unpaired is not None and unpaired.low < 1 < unpaired.high
    # Pairing by position in each run's own order (not by conversation and turn) matches other
    # conversations' turns: the same spread, and no interval below 1.
    shuffled = paired_ratio([(a, b) for (a, _), (_, b) in zip(pairs, sorted(pairs, key=lambda p: p[1]), strict=True)])
    assert shuffled is not None and not (shuffled.high is not None and shuffled.high < 1)


def test_first_turns_mixed_in_would_pull_the_ratio_toward_one() -> None:
    """Two turns each: half the turns are first turns, whose ratio is 1 (nothing to reuse); mixed
    in, the median would sit between; left out, it is the later turns' own."""
    (effect,) = cache_effects(cell_rows([conversation_run(conversations=24, turns=2, first=1.0)]))
    assert effect.pairs == 24
    assert effect.ratio == pytest.approx(LATER, rel=0.03)
    assert effect.high is not None and effect.high < 0.9


def test_turns_measured_on_one_engine_only_are_left_out_and_counted() -> None:
    run = conversation_run()
    on_cell, off_cell = run.cells
    assert off_cell.measurement is not None and off_cell.measurement.engine is not None
    part = off_cell.measurement.engine
    records = tuple(
        replace(r, failure="http_error", token_ns=()) if (r.conversation, r.turn) == (3, 2) else r
        for r in part.load.request_records
    )
    failed = replace(
        off_cell,
        measurement=replace(
            off_cell.measurement, engine=replace(part, load=replace(part.load, request_records=records))
        ),
    )
    (effect,) = cache_effects(cell_rows([replace(run, cells=(on_cell, failed))]))
    assert (effect.pairs, effect.unpaired) == (31, 1)
    assert "1 later turns measured on one engine only" in effect.sentence()


def test_too_few_pairs_give_the_median_and_say_why_no_interval() -> None:
    (effect,) = cache_effects(cell_rows([conversation_run(conversations=2, turns=3)]))
    assert effect.pairs == 4 and effect.ratio is not None
    assert effect.low is None and effect.high is None and effect.method == "withheld"
    assert effect.reason is not None and "4 paired turns" in effect.reason and "needs >= 6" in effect.reason
    assert "no interval: 4 paired turns" in effect.sentence()


def test_the_interval_holds_its_nominal_rate_whatever_the_ratios_distribution() -> None:
    """Paired log ratios around the true median log(0.8) with a skewed noise (an exponential less
    its median): the interval of 24 pairs covers 0.8 at least as often as it says (95%)."""
    rng = np.random.default_rng(11)
    reps, covered = 400, 0
    for _ in range(reps):
        noise = rng.exponential(0.3, 24) - 0.3 * math.log(2)
        found = paired_ratio([(100.0 * math.exp(math.log(LATER) + e), 100.0) for e in noise])
        assert found is not None and found.low is not None and found.high is not None
        covered += found.low <= LATER <= found.high
    assert covered / reps >= 0.92


def test_first_turns_show_a_change_of_the_machine_between_the_two_runs() -> None:
    """First turns have nothing to reuse: on / off they are 1 unless the machine changed between the
    two engines' runs (here the caching-on run met a machine 30% faster), which the later turns'
    ratio then carries too, and the report says so."""
    (steady,) = cache_effects(cell_rows([conversation_run(first=1.0)]))
    assert steady.control is not None and steady.control.backed and steady.drift is None
    (changed,) = cache_effects(cell_rows([conversation_run(first=0.7)]))
    assert changed.control is not None and changed.control.estimate == pytest.approx(0.7, rel=0.05)
    assert changed.drift is not None and "the machine changed between the two engines' runs" in changed.sentence()
    assert json.loads(render([conversation_run(first=0.7)], "json"))["cache_effects"][0]["drift"] == changed.drift


def test_no_later_turn_on_both_engines_says_so() -> None:
    run = conversation_run(conversations=4, turns=1)
    (effect,) = cache_effects(cell_rows([run]))
    assert effect.pairs == 0 and effect.ratio is None and effect.low is None
    assert effect.sentence().endswith(
        "not given: no later turn (the second a user sends, or after) succeeded on both engines"
    )


def test_serially_dependent_pairs_widen_the_interval() -> None:
    """Pairs whose ratios drift (the on run's load rose and fell) carry less than their count: the
    interval rests on the effective n, and is wider than the same values' in shuffled order."""
    rng = np.random.default_rng(3)
    n = 200
    drift = np.zeros(n)
    for i in range(1, n):
        drift[i] = 0.95 * drift[i - 1] + rng.normal(0, 0.05)
    pairs = [(100.0 * LATER * math.exp(d), 100.0) for d in drift]
    dependent = paired_ratio(pairs)
    independent = paired_ratio([pairs[i] for i in rng.permutation(n)])
    assert dependent is not None and independent is not None
    assert dependent.effective_n is not None and dependent.effective_n < n / 2
    assert dependent.backed and independent.backed
    assert dependent.high is not None and independent.high is not None and dependent.low is not None
    assert independent.low is not None
    assert dependent.high - dependent.low > 1.5 * (independent.high - independent.low)


def test_no_line_without_both_engines_or_without_conversations() -> None:
    run = conversation_run()
    assert cache_effects(cell_rows([replace(run, cells=run.cells[:1])])) == []
    plain = engine_run(
        engine_cell((("enable-prefix-caching", "true"),), 1, 50.0, 5.0, 100.0),
        engine_cell((("enable-prefix-caching", "false"),), 1, 60.0, 5.0, 100.0),
    )
    assert cache_effects(cell_rows([plain])) == []
    measured = run.cells[1].measurement
    assert measured is not None and measured.engine is not None
    other_users = replace(run, cells=(run.cells[0], _cell("false", measured.engine.load.request_records, users=4)))
    assert cache_effects(cell_rows([other_users])) == []  # different concurrency: not the same cell


@pytest.mark.parametrize("fmt", ["table", "markdown", pytest.param("html", marks=pytest.mark.slow)])  # html: plots
def test_every_format_gives_the_ratio_and_its_interval(fmt: str) -> None:
    run = conversation_run()
    (effect,) = cache_effects(cell_rows([run]))
    text = render([run], fmt)
    assert "Prefix caching on later turns" in text
    assert f"median of 32 paired turns {effect.ratio:.3f} [{effect.low:.3f}, {effect.high:.3f}] at 95%" in text
    if fmt == "html":
        assert 'id="cache-effect"' in text


def test_the_json_report_holds_the_effect() -> None:
    run = conversation_run()
    data = json.loads(render([run], "json"))
    (effect,) = data["cache_effects"]
    assert effect["pairs"] == 32 and effect["ttft_ratio_on_off"] == pytest.approx(LATER, rel=0.03)
    assert effect["high"] < 0.9 and effect["reason"] is None
    assert effect["caching_on_cell"] == run.cells[0].id and effect["caching_off_cell"] == run.cells[1].id

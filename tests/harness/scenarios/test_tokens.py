"""Token metrics on synthetic timelines whose answers are computed by hand."""

from __future__ import annotations

import pytest

from harness.scenarios.tokens import SLO, RequestTimeline, goodput, inter_token_latencies, meets_slo, timeline_summaries

MS = 1_000_000


def test_metrics_of_a_hand_made_timeline() -> None:
    # Due at 100 ms; tokens at 150, 170, 180, 210 ms.
    timeline = RequestTimeline(100 * MS, (150 * MS, 170 * MS, 180 * MS, 210 * MS))
    assert timeline.ttft_ns == 50 * MS
    assert timeline.e2e_ns == 110 * MS
    assert timeline.tpot_ns == pytest.approx(20 * MS)  # (110 - 50) / (4 - 1)
    assert timeline.itl_ns == [20 * MS, 10 * MS, 30 * MS]
    assert timeline.output_tokens == 4
    assert timeline.offsets_ns() == [50 * MS, 70 * MS, 80 * MS, 110 * MS]


def test_tpot_is_the_mean_of_the_inter_token_gaps() -> None:
    timeline = RequestTimeline(0, (7, 10, 19, 20, 41))
    assert timeline.tpot_ns == pytest.approx(sum(timeline.itl_ns) / len(timeline.itl_ns))


def test_a_one_token_request_has_no_tpot_and_no_itl() -> None:
    timeline = RequestTimeline(5, (12,))
    assert timeline.ttft_ns == timeline.e2e_ns == 7
    assert timeline.tpot_ns is None
    assert timeline.itl_ns == []


def test_timelines_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RequestTimeline(0, ())
    with pytest.raises(ValueError, match="decrease"):
        RequestTimeline(0, (5, 4))


def test_itl_pools_every_gap_of_every_request() -> None:
    timelines = [RequestTimeline(0, (10, 12, 15)), RequestTimeline(100, (101,)), RequestTimeline(0, (1, 9))]
    assert inter_token_latencies(timelines) == [2, 3, 8]


def test_goodput_counts_requests_meeting_every_target() -> None:
    timelines = [
        RequestTimeline(0, (40 * MS, 50 * MS, 60 * MS)),  # TTFT 40, TPOT 10, e2e 60: good
        RequestTimeline(0, (90 * MS, 95 * MS, 100 * MS)),  # TTFT 90 misses the 50 ms TTFT target
        RequestTimeline(0, (10 * MS, 40 * MS, 70 * MS)),  # TPOT 30 misses the 20 ms TPOT target
        RequestTimeline(0, (20 * MS, 30 * MS, 40 * MS)),  # good
    ]
    slo = SLO(ttft_ns=50 * MS, tpot_ns=20 * MS)
    assert goodput(timelines, slo, 2_000 * MS) == pytest.approx(2 / 2.0)
    assert goodput(timelines, SLO(e2e_ns=65 * MS), 1_000 * MS) == pytest.approx(2.0)  # e2e 60 and 40
    assert goodput(timelines, SLO(), 1_000 * MS) == pytest.approx(4.0)  # no targets: every request counts
    with pytest.raises(ValueError, match="positive"):
        goodput(timelines, slo, 0)


def test_meets_slo_judges_the_p99_of_each_target() -> None:
    # 100 requests: 99 with e2e 10 ms and one with 100 ms. The p99 (numpy's linear interpolation,
    # rank 0.99 * 99 = 98.01) is 10 + 0.01 * 90 = 10.9 ms.
    timelines = [RequestTimeline(0, (10 * MS,))] * 99 + [RequestTimeline(0, (100 * MS,))]
    assert meets_slo(timelines, SLO(e2e_ns=10.91 * MS))
    assert not meets_slo(timelines, SLO(e2e_ns=10.89 * MS))
    assert meets_slo(timelines, SLO(ttft_ns=11 * MS))
    assert meets_slo(timelines, SLO(tpot_ns=1))  # one-token requests have no TPOT to miss
    assert not meets_slo(timelines, SLO(e2e_ns=1e12), dropped=1)  # a dropped request fails any SLO
    assert not meets_slo([], SLO(e2e_ns=1e12))


def test_summaries_of_timelines() -> None:
    timelines = [RequestTimeline(0, (4 * MS, 6 * MS, 8 * MS)), RequestTimeline(0, (6 * MS, 7 * MS, 8 * MS))]
    summaries = timeline_summaries(timelines)
    assert summaries.ttft_ns.p50 == pytest.approx(5 * MS)
    assert summaries.e2e_ns.max == pytest.approx(8 * MS)
    assert summaries.tpot_ns.count == 2 and summaries.tpot_ns.mean == pytest.approx(1.5 * MS)
    assert summaries.itl_ns.count == 4
    single = timeline_summaries([RequestTimeline(0, (3,))] * 3)
    assert single.tpot_ns is None and single.itl_ns is None


def test_meets_slo_at_another_percentile() -> None:
    timelines = [RequestTimeline(0, (10 * MS,))] * 9 + [RequestTimeline(0, (100 * MS,))]
    assert not meets_slo(timelines, SLO(e2e_ns=20 * MS))
    assert meets_slo(timelines, SLO(e2e_ns=20 * MS), percentile=50)

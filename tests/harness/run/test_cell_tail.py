"""A cell measured with a tail target records what the rule watched, what it reached, and why it stopped."""

from __future__ import annotations

import math

from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.run.plan import CellConfig
from harness.scenarios.base import sampling_fields
from tests.harness.runfactory import round_trip


def test_the_sampling_record_keeps_targets_and_reached_widths_with_no_interval_as_none() -> None:
    policy = SamplingPolicy(tail_percentile=99)
    record = sampling_fields(
        policy,
        warmup_count=3,
        warmup_s=0.1,
        elapsed_s=1.0,
        stop_reason="time_budget",
        wall_s=1.2,
        rel_ci_half_width=0.004,
        reached={"p50": 0.004, "p99": math.inf},
    )
    assert record.targets == {"p50": 0.01, "p99": 0.05}
    assert record.reached == {"p50": 0.004, "p99": None}


def test_a_tail_cell_says_which_rule_stopped_it() -> None:
    policy = SamplingPolicy(max_time_s=0.3, warmup_time_s=0.05, min_count=10, tail_percentile=99)
    record = round_trip(run_cell(CellConfig("mlp", "tiny", "cpu", "fp32", "eager", 1, 1), policy)).cells[0]
    assert record.status == "ok" and record.measurement is not None
    sampling = record.measurement.sampling
    assert sampling.targets == {"p50": 0.01, "p99": 0.05}
    assert set(sampling.reached) == {"p50", "p99"}
    summary = record.measurement.latency_ns
    if sampling.stop_reason == "converged":  # every watched interval within its target
        assert summary.count >= 368 and all(
            v is not None and v <= sampling.targets[k] for k, v in sampling.reached.items()
        )
    else:  # the budget stopped it first, and the warning names what was not reached
        assert any(
            w.startswith(f"stopped by {sampling.stop_reason.replace('_', ' ')} before")
            for w in record.measurement.warnings
        )

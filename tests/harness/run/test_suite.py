"""``run_suite``, the pipeline every target ends in: what it hands the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.measure.sampler import SamplingPolicy
from harness.run.plan import Suite


def test_the_local_target_gives_the_sampler_the_tail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import harness.run.runner as runner
    from harness.run.suite import run_suite

    seen: list[SamplingPolicy] = []

    def capture(cells: Any, policy: SamplingPolicy, *args: Any, **kwargs: Any) -> list[Any]:
        seen.append(policy)
        return []

    monkeypatch.setattr(runner, "run_cells", capture)
    suite = Suite(workloads=("mlp",), preset="tiny", dtypes=("fp32",), tail=99, output=str(tmp_path))
    run_suite(suite)
    (policy,) = seen
    assert policy.tail_percentile == 99.0 and policy.tail_min_count == 368
    assert policy.targets == {"p50": 0.01, "p99": 0.05}

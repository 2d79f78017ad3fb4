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


@pytest.mark.parametrize(("max_samples", "max_count"), [(None, SamplingPolicy.max_count), (48, 48)])
def test_the_sampler_is_capped_at_max_samples_only_when_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, max_samples: int | None, max_count: int
) -> None:
    import harness.run.runner as runner
    from harness.run.suite import run_suite

    seen: list[SamplingPolicy] = []
    monkeypatch.setattr(runner, "run_cells", lambda cells, policy, *a, **k: seen.append(policy) or [])
    suite = Suite(workloads=("mlp",), preset="tiny", dtypes=("fp32",), min_samples=48, max_samples=max_samples)
    run_suite(suite.with_overrides(output=str(tmp_path)))
    assert (seen[0].min_count, seen[0].max_count) == (48, max_count)


def test_max_samples_below_min_samples_is_one_line_naming_both_options() -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^max samples \(10\) is below min samples \(36\); give --max-samples"):
        Suite(workloads=("mlp",), max_samples=10)

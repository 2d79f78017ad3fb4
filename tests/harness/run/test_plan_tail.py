"""Asking for the tail: --tail, or a p99 SLO, puts a tail percentile into the stopping rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.measure.sampler import SamplingPolicy
from harness.run.plan import DEFAULT_SUITE, Suite, load_suite_file


def test_the_default_suite_watches_the_median_alone() -> None:
    assert DEFAULT_SUITE.tail_percentile() is None


@pytest.mark.parametrize(
    ("overrides", "tail"),
    [
        ({"tail": 95}, 95.0),
        ({"scenario": "server", "slo_p99": 5.0}, 99.0),
        ({"scenario": "server", "slo_ttft": 50.0}, 99.0),
        ({"scenario": "server", "slo_p99": 5.0, "tail": 90}, 90.0),  # an explicit tail wins
    ],
)
def test_a_tail_flag_or_a_p99_slo_asks_for_the_tail(overrides: dict[str, Any], tail: float) -> None:
    assert DEFAULT_SUITE.with_overrides(**overrides).tail_percentile() == tail


@pytest.mark.parametrize("tail", [50, 100, 120])
def test_a_tail_outside_50_to_100_is_a_config_error(tail: float) -> None:
    with pytest.raises(ConfigError, match="tail must be a percentile between 50 and 100"):
        Suite(tail=tail)


def test_a_suite_file_can_ask_for_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text("tail = 99\n")
    assert load_suite_file(path).stopping.tail == 99.0


def test_the_local_target_gives_the_sampler_the_tail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import harness.run.runner as runner
    from harness.targets.local import run_suite

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


@pytest.mark.parametrize(("argv", "tail"), [([], None), (["--tail", "99"], 99.0), (["--tail", "95.5"], 95.5)])
def test_the_tail_flag_reaches_the_suite(argv: list[str], tail: float | None) -> None:
    from harness.cli.main import _build_parser
    from harness.cli.suite import suite_from_args

    args = _build_parser().parse_args(["run", "--workload", "mlp", *argv])
    assert suite_from_args(args).tail_percentile() == tail

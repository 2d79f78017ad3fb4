"""Both targets satisfy the Target contract; the local one measures into one run file."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.plan import Suite
from harness.runfile.files import load_run
from harness.runfile.records import TargetFacts
from harness.targets.aws.orchestrator import AwsTarget
from harness.targets.aws.plan import AwsOptions
from harness.targets.base import Target, TargetOutcome
from harness.targets.local import LocalTarget


def test_both_targets_satisfy_the_contract() -> None:
    assert isinstance(LocalTarget(), Target)
    assert isinstance(AwsTarget(AwsOptions(instance_types=("c7i.xlarge",))), Target)


def test_local_target_measures_into_one_run_file(tmp_path: Path) -> None:
    suite = Suite(
        workloads=("mlp",),
        preset="tiny",
        backends=("cpu",),
        dtypes=("fp32",),
        max_time=0.05,
        min_samples=3,
        isolate=False,
        output=str(tmp_path),
    )
    [outcome] = LocalTarget().run(suite)
    assert (outcome.label, outcome.status, outcome.cells_done) == ("local", "complete", 1)
    assert outcome.run_file is not None
    run = load_run(outcome.run_file)
    assert run.target == TargetFacts() and run.status == "complete"


def test_outcome_status_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown outcome status"):
        TargetOutcome("local", "done")

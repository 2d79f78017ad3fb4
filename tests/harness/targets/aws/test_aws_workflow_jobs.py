"""The scheduled workflow's ``summary`` and ``cleanup`` jobs, run here: their commands, with only
what their install steps install (``tests.workflow_job``), against run files laid out as the
artifacts download and, for cleanup, AWS played by moto."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.harness.runfactory import make_cell, make_run, write_run
from tests.harness.targets.aws.conftest import REGION
from tests.harness.targets.aws.test_aws_cleanup import GONE, KEPT, state
from tests.harness.targets.aws.test_aws_cleanup import make_run as make_aws_run
from tests.workflow_job import JobEnvironment, installed_by, run_steps

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "scheduled.yml"


def _job(name: str) -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"][name]  # type: ignore[no-any-return]


def _job_env(name: str, tmp_path: Path) -> JobEnvironment:
    return JobEnvironment(frozenset(installed_by(_job(name)["steps"])), tmp_path / f"{name}-site")


def test_a_job_environment_hides_what_the_job_does_not_install(tmp_path: Path) -> None:
    """Proof the emulation can fail: torch is installed here, but the summary job has none."""
    env = _job_env("summary", tmp_path).env({})
    probe = "import numpy, tabulate, pydantic\ntry:\n import torch\nexcept ImportError as e:\n print(e)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No module named 'torch' (the workflow job does not install it)" in done.stdout


def test_the_summary_job_reports_the_instances_run_files(tmp_path: Path) -> None:
    results = tmp_path / "results"  # download-artifact, merge-multiple: every instance's files in one folder
    results.mkdir()
    for i, instance in enumerate(["c7i.xlarge", "g5.xlarge"]):
        run = make_run(
            [make_cell([2_000_000 + 500_000 * i] * 60)],
            run_id=f"20261201T0317{i}0Z-aaaaa{i}",
            target={"kind": "aws", "instance_type": instance, "region": "us-east-1"},
        )
        write_run(run, results)
        (results / f"run-{run.run_id}.bootstrap.log").write_text("bootstrap log\n")  # what else comes home
    summary = tmp_path / "summary.md"
    done = run_steps(
        _job("summary")["steps"],
        _job_env("summary", tmp_path),
        tmp_path,
        {"GITHUB_STEP_SUMMARY": str(summary), "AWS_REGION": "us-east-1"},
    )
    assert done and all(d.returncode == 0 for d in done), done[-1].stdout + done[-1].stderr
    text = summary.read_text()
    assert text.startswith("## siliconbench on AWS (us-east-1)\n")
    assert "c7i.xlarge" in text and "g5.xlarge" in text and "| mlp" in text
    assert "No instance produced a run file" not in text


def test_the_summary_job_says_so_when_no_instance_produced_a_run_file(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    summary = tmp_path / "summary.md"
    done = run_steps(
        _job("summary")["steps"], _job_env("summary", tmp_path), tmp_path, {"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert done and done[-1].returncode == 0, done[-1].stderr
    assert "No instance produced a run file; see the bench jobs' logs." in summary.read_text()


@pytest.mark.slow
def test_the_cleanup_job_removes_expired_resources_and_keeps_live_runs(
    factory: Any, public_amis: Any, instance_profile: str, aws_env: dict[str, str], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    expired = make_aws_run(factory, "20261120T000000Z-aaaaaa", now - timedelta(hours=1), instance_profile)
    live = make_aws_run(factory, "20261124T110000Z-bbbbbb", now + timedelta(hours=2), instance_profile)
    done = run_steps(
        _job("cleanup")["steps"], _job_env("cleanup", tmp_path), tmp_path, {**aws_env, "AWS_REGION": REGION}
    )
    assert len(done) == 1 and done[0].returncode == 0, done[0].stdout + done[0].stderr
    assert "20261120T000000Z-aaaaaa" in done[0].stdout
    assert state(factory, expired) == GONE
    assert state(factory, live) == KEPT


def test_the_engine_summary_names_the_cheapest_at_the_slo_with_the_probability(tmp_path: Path) -> None:
    """Two instances' engine runs (latencies well under the SLO's end-to-end bound, different prices):
    the summary says which is cheaper per million and with what probability."""
    results = tmp_path / "results"
    results.mkdir()
    for i, instance in enumerate(["inf2.xlarge", "g6e.xlarge"]):
        samples = [2_000_000_000 + 1_000_000 * (k % 7) + 50_000_000 * i for k in range(60)]
        run = make_run(
            [make_cell(samples, workload="qwen2.5-0.5b-instruct")],
            run_id=f"20261201T0417{i}0Z-bbbbb{i}",
            target={"kind": "aws", "instance_type": instance, "region": "us-east-1"},
        )
        write_run(run, results)
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary), "AWS_REGION": "us-east-1"}
    env.update(
        {k: str(v) for k, v in yaml.safe_load(WORKFLOW.read_text())["env"].items() if not str(v).startswith("$")}
    )
    done = run_steps(_job("engine-summary")["steps"], _job_env("engine-summary", tmp_path), tmp_path, env)
    assert done and all(d.returncode == 0 for d in done), done[-1].stdout + done[-1].stderr
    text = summary.read_text()
    assert text.startswith("## Qwen/Qwen2.5-0.5B-Instruct served by vLLM on AWS (us-east-1)\n"), text
    assert "p99 end-to-end <= 6850 ms" in text, "500 ms + 127 x 50 ms"
    assert "is cheaper than" in text and "with probability" in text, text

"""The scheduled AWS workflow: valid for actionlint, keyless (OIDC), the agreed matrix, and in step
with the command line it calls."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.test_workflows import _actionlint

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "scheduled.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the bare key 'on' as true
    return data


def test_scheduled_workflow_passes_actionlint() -> None:
    result = subprocess.run([_actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_nightly_and_on_demand(workflow: dict) -> None:  # type: ignore[type-arg]
    assert workflow["on"]["schedule"][0]["cron"]
    assert "workflow_dispatch" in workflow["on"]


def test_aws_credentials_come_from_oidc_only(workflow: dict) -> None:  # type: ignore[type-arg]
    text = WORKFLOW.read_text()
    assert not re.search(r"aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY", text)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        uses_aws = any("configure-aws-credentials" in step.get("uses", "") for step in job["steps"])
        if uses_aws:
            assert job["permissions"]["id-token"] == "write", name
            step = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
            assert "role-to-assume" in step["with"], name
        else:
            assert "permissions" not in job or "id-token" not in job["permissions"], name


def test_matrix_covers_inferentia_trainium_gpu_and_cpu(workflow: dict) -> None:  # type: ignore[type-arg]
    from harness.targets.aws.ami import instance_kind

    types = workflow["jobs"]["bench"]["strategy"]["matrix"]["instance-type"]
    families = {t.split(".")[0][:3] for t in types}
    assert {"inf", "trn"} <= families
    assert {instance_kind(t) for t in types} == {"neuron", "gpu", "cpu"}
    assert workflow["jobs"]["bench"]["strategy"]["fail-fast"] is False


def test_comparison_is_the_job_summary_and_run_files_are_artifacts(workflow: dict) -> None:  # type: ignore[type-arg]
    summary = " ".join(step.get("run", "") for step in workflow["jobs"]["summary"]["steps"])
    assert "siliconbench report --format markdown" in summary and "GITHUB_STEP_SUMMARY" in summary
    assert workflow["jobs"]["summary"]["if"] == "always()"
    uploads = [s for job in workflow["jobs"].values() for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert any("results" in s["with"]["path"] for s in uploads)
    assert "siliconbench aws cleanup" in " ".join(s.get("run", "") for s in workflow["jobs"]["cleanup"]["steps"])


def test_every_option_the_workflow_passes_exists(workflow: dict) -> None:  # type: ignore[type-arg]
    from harness.cli.main import _build_parser

    parser = _build_parser()
    run_parser = parser._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    known = set(run_parser._option_string_actions)
    script = " ".join(step.get("run", "") for step in workflow["jobs"]["bench"]["steps"])
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", script))
    used -= {"--quiet", "--no-deps", "--wheel-dir"}  # pip's own
    assert used, "the bench job passes no options?"
    assert used <= known, sorted(used - known)


def test_runs_preflight_first_and_names_its_subnet(workflow: dict) -> None:  # type: ignore[type-arg]
    script = " ".join(step.get("run", "") for step in workflow["jobs"]["bench"]["steps"])
    assert script.index("siliconbench aws preflight") < script.index("siliconbench run --target aws")
    assert '--subnet-id "$SUBNET_ID"' in script
    step = next(s for s in workflow["jobs"]["bench"]["steps"] if "siliconbench run" in s.get("run", ""))
    assert step["env"]["SUBNET_ID"] == "${{ vars.SILICONBENCH_SUBNET_ID }}"
    assert "--wheel" not in script, "the run ships the code it runs"

"""The scheduled AWS workflow: valid for actionlint, keyless (OIDC), the agreed matrix, and in step
with the command line it calls."""

from __future__ import annotations

import json
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


def test_the_engine_job_serves_a_small_ungated_llm_at_a_ttft_tpot_slo(workflow: dict) -> None:  # type: ignore[type-arg]
    job = workflow["jobs"]["engine"]
    assert workflow["env"]["ENGINE_MODEL"] == "Qwen/Qwen2.5-0.5B-Instruct"
    matrix = job["strategy"]["matrix"]["instance-type"]
    dispatched, nightly = re.findall(r"'(\[[^']*\])'", matrix)

    assert set(json.loads(nightly)) == {"inf2.xlarge", "trn1.2xlarge", "g6e.xlarge", "c7i.xlarge"}
    assert set(json.loads(dispatched)) - set(json.loads(nightly)) == {"trn2.3xlarge"}
    assert "github.event_name == 'workflow_dispatch'" in matrix, "trn2 only on manual dispatch"
    script = " ".join(step.get("run", "") for step in job["steps"])
    for flag in ("--engine vllm", '--model "$ENGINE_MODEL"', '--slo-ttft "$SLO_TTFT_MS"', '--slo-tpot "$SLO_TPOT_MS"'):
        assert flag in script, flag
    assert script.index("siliconbench aws preflight") < script.index("siliconbench run --target aws")
    summary = " ".join(step.get("run", "") for step in workflow["jobs"]["engine-summary"]["steps"])
    assert '--slo-p99 "$e2e_ms"' in summary and "GITHUB_STEP_SUMMARY" in summary
    assert "engine" in workflow["jobs"]["cleanup"]["needs"], "cleanup runs after the engine jobs too"


@pytest.mark.slow  # three CLIs in child processes
def test_the_engine_jobs_options_make_a_valid_plan(workflow: dict, tmp_path) -> None:  # type: ignore[no-untyped-def,type-arg]
    """The engine job's own command line, planned offline for each instance type of its matrix."""
    import os
    import sys

    env_vars = {k: str(v) for k, v in workflow["env"].items() if not str(v).startswith("$")}
    step = next(s for s in workflow["jobs"]["engine"]["steps"] if "siliconbench run" in s.get("run", ""))
    common = step["run"].split("common=(", 1)[1].split(")\n", 1)[0]
    for instance_type in ("inf2.xlarge", "trn2.3xlarge", "c7i.xlarge"):
        values = {
            **env_vars,
            "INSTANCE_TYPE": instance_type,
            "AWS_REGION": "us-east-1",
            "MAX_HOURS": "2",
            "INSTANCE_PROFILE": "p",
            "BUCKET": "b",
            "SUBNET_ID": "subnet-0123456789abcdef0",
        }
        script = f'common=({common})\nexec "$@" aws plan "${{common[@]}}"'
        environment = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO_ROOT),
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            **values,
        }
        done = subprocess.run(
            ["bash", "-c", script, "bash", sys.executable, "-m", "harness"],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "offline plan (no AWS credentials)" in done.stdout and f"  {instance_type} (" in done.stdout
        assert "--model Qwen/Qwen2.5-0.5B-Instruct" in done.stdout

"""The command line of the aws target: one-line errors, exit codes, progress and the final summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.targets.aws import orchestrator
from tests.conftest import REPO_ROOT, CliRunner
from tests.harness.targets.aws.conftest import REGION

TINY = ["--workload", "mlp", "--preset", "tiny", "--dtype", "fp32", "--max-time", "0.05"]


def test_help_imports_neither_boto3_nor_torch(run_cli: CliRunner) -> None:
    code = (
        "import sys; from harness.cli.main import _build_parser; _build_parser(); "
        "print(sorted(m for m in ('boto3', 'botocore', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_without_boto3_the_aws_target_says_how_to_install_it(run_cli: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "no-boto3" / "boto3"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    result = run_cli(
        "run",
        "--target",
        "aws",
        "--instance-type",
        "c7i.xlarge",
        "--instance-profile",
        "p",
        *TINY,
        env={"PYTHONPATH": f"{blocker.parent}:{REPO_ROOT}"},
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "siliconbench: error: the aws target needs boto3: pip install 'siliconbench[aws]'\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--target", "aws"], "--target aws needs at least one --instance-type"),
        (["--target", "aws", "--instance-type", "c7i.xlarge"], "give --instance-profile NAME"),
        (
            [
                "--target",
                "aws",
                "--instance-type",
                "c7i.xlarge",
                "--instance-profile",
                "p",
                "--create-instance-profile",
            ],
            "not both",
        ),
        (
            ["--target", "aws", "--instance-type", "c7i.xlarge", "--price-per-hour", "1"],
            "--price-per-hour is for local runs",
        ),
        (["--spot"], "--spot only applies with --target aws"),
        (["--instance-type", "c7i.xlarge"], "--instance-type only applies with --target aws"),
        (["--target", "aws", "--instance-type", "inf1.xlarge"], "retired torch-neuron"),
        (["--target", "aws", "--instance-type", "c7i.xlarge", "--ami-parameter", "gpu"], "LINE=/ssm/parameter/name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and err.startswith("siliconbench: error: ")


def test_a_failed_instance_is_summarised_and_exits_3(
    factory,
    public_amis,
    instance_profile,
    fleet,
    tmp_path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet.behave("inf2.xlarge", "silent")
    fast = orchestrator.Timing(poll_s=0.05, bootstrap_timeout_s=0.3, teardown_poll_s=0.05, teardown_timeout_s=10)
    monkeypatch.setattr(orchestrator, "Timing", lambda: fast)  # the CLI's AwsTarget takes the default timing

    code = main(
        [
            "run",
            "--target",
            "aws",
            "--instance-type",
            "inf2.xlarge",
            "--region",
            REGION,
            "--backend",
            "cpu",
            "--instance-profile",
            instance_profile,
            "--output",
            str(tmp_path / "results"),
            *TINY,
        ]
    )

    out, err = capsys.readouterr()
    assert code == 3  # a cloud failure during the run (harness/cli/exits.py)
    assert "inf2.xlarge: failed, 0/1 cells (no run file): inf2.xlarge instance i-" in out and "never reported" in out
    assert "[inf2.xlarge i-" in err and "] pending" in err and "] failed:" in err
    ec2 = factory.client("ec2")
    states = {i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states <= {"shutting-down", "terminated"}


def test_run_dry_run_is_the_plan(factory, public_amis, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code = main(["run", "--target", "aws", "--dry-run", "--instance-type", "c7i.xlarge", "--region", REGION, *TINY])
    out = capsys.readouterr().out
    assert code == 0 and "1 instance(s) in us-east-1; nothing has been created" in out
    assert public_amis["cpu/x86_64"] in out
    assert factory.client("ec2").describe_instances()["Reservations"] == []

"""The bootstrap script: valid bash, the watchdog first, the AMI's own PyTorch found and kept.

Its full runs (install, agent, failure reports) are exercised by the fleet in test_aws_run.py; here
its parts are run on their own with bash.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import __version__
from harness.targets.aws.userdata import MAX_USER_DATA, Bootstrap, render_user_data, requirement


def render(**changes: object) -> str:
    values: dict[str, object] = dict(
        bucket="siliconbench-run",
        prefix="siliconbench/r1/inf2.xlarge",
        region="us-east-1",
        kind="neuron",
        run_id="r1",
        instance_type="inf2.xlarge",
        watchdog_minutes=130,
    )
    values.update(changes)
    return render_user_data(Bootstrap(**values))  # type: ignore[arg-type]


def test_renders_valid_bash_under_the_user_data_limit(tmp_path: Path) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(render())
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    assert script.read_text().startswith("#!/bin/bash\n")
    assert len(script.read_bytes()) < MAX_USER_DATA


def test_watchdog_is_armed_before_anything_can_fail() -> None:
    text = render()
    watchdog = text.index('shutdown -h "+$WATCHDOG_MINUTES"')
    assert watchdog < text.index("find_python()") < text.index("-m pip install")
    assert "WATCHDOG_MINUTES=130\n" in text


def test_installs_this_exact_version_with_the_environment_pinned() -> None:
    text = render()
    assert f"SPEC='siliconbench[aws]=={__version__}'" in text
    assert requirement("9.9.9") == "siliconbench[aws]==9.9.9"
    assert '-m pip install --quiet -c "$HOME_DIR/constraints.txt" "$SPEC"' in text
    freeze = re.search(r"grep -iE '\^\((.*)\)==' ", text)
    assert freeze is not None and {"torch", "torch-neuronx", "neuronx-cc", "numpy"} <= set(freeze.group(1).split("|"))
    assert 'fail install "installing siliconbench changed torch from' in text


def test_values_are_shell_quoted() -> None:
    text = render(prefix="siliconbench/r1/it's $(reboot)")
    assert "PREFIX='siliconbench/r1/it'\"'\"'s $(reboot)'" in text


def test_a_wheel_replaces_the_pypi_requirement() -> None:
    text = render(wheel_key="siliconbench/r1/dist/siliconbench-0.1.0-py3-none-any.whl")
    assert "WHEEL_KEY=siliconbench/r1/dist/siliconbench-0.1.0-py3-none-any.whl" in text
    assert 'SPEC="$HOME_DIR/${WHEEL_KEY##*/}[aws]"' in text


def test_watchdog_needs_a_minute() -> None:
    with pytest.raises(ValueError, match="at least one minute"):
        render(watchdog_minutes=0)


def _find_python(tmp_path: Path, kind: str, venvs: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the script's own find_python against a fake /opt holding ``venvs``."""
    text = render(kind=kind)
    function = re.search(r"^find_python\(\) \{\n.*?^\}\n", text, re.S | re.M)
    assert function is not None
    opt = tmp_path / "opt"
    for venv in venvs:
        python = opt / venv / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\n")
        python.chmod(0o755)
    program = f"KIND={kind}\nOPT={opt}\nHOME_DIR={tmp_path}/home\n{function.group(0)}find_python\n"
    return subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}
    )


def test_neuron_uses_the_newest_plain_pytorch_venv(tmp_path: Path) -> None:
    found = _find_python(
        tmp_path,
        "neuron",
        [
            "aws_neuronx_venv_pytorch_2_8",
            "aws_neuronx_venv_pytorch_2_10",
            "aws_neuronx_venv_pytorch_2_9",
            "aws_neuronx_venv_pytorch_2_10_nxd_inference",
            "aws_neuronx_venv_jax_0_6",
        ],
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(tmp_path / "opt" / "aws_neuronx_venv_pytorch_2_10" / "bin" / "python")


def test_gpu_uses_the_dlami_pytorch_environment(tmp_path: Path) -> None:
    found = _find_python(tmp_path, "gpu", ["pytorch"])
    assert found.stdout.strip() == str(tmp_path / "opt" / "pytorch" / "bin" / "python")


def test_no_environment_is_a_failure_not_a_guess(tmp_path: Path) -> None:
    assert _find_python(tmp_path, "neuron", ["aws_neuronx_venv_jax_0_6"]).returncode != 0
    assert _find_python(tmp_path, "gpu", []).returncode != 0

"""The bootstrap script: valid bash, the watchdog first, no AWS CLI, the bundle installed with no
index, and the AMI's own PyTorch environment found by what it contains.

Its full runs are exercised by the fleet in test_aws_run.py and, on laid-out AMI roots with no
network at all, by test_aws_instance.py; here its parts are run on their own with bash.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.targets.aws.userdata import (
    CPU_ENGINE_NEEDS,
    MAX_USER_DATA,
    PROBES,
    Bootstrap,
    PresignedUrls,
    render_user_data,
)

#: A presigned URL as long as one made with temporary credentials (the session token is most of it).
LONG_URL = (
    "https://siliconbench-run.s3.us-east-1.amazonaws.com/siliconbench/r1/x?" + "X-Amz-Security-Token=" + "A" * 1100
)


def render(**changes: object) -> str:
    values: dict[str, object] = dict(
        bucket="siliconbench-run",
        prefix="siliconbench/r1/inf2.xlarge",
        region="us-east-1",
        kind="neuron",
        run_id="r1",
        instance_type="inf2.xlarge",
        watchdog_minutes=130,
        urls=PresignedUrls(bundle=LONG_URL, heartbeat=LONG_URL, error=LONG_URL, log=LONG_URL),
        probe="trace",
    )
    values.update(changes)
    return render_user_data(Bootstrap(**values))  # type: ignore[arg-type]


def test_renders_valid_bash_under_the_user_data_limit(tmp_path: Path) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(render())
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    assert script.read_text().startswith("#!/bin/bash\n")
    assert len(script.read_bytes()) < MAX_USER_DATA, "four session-token URLs still fit in EC2's 16 KB"


def test_watchdog_is_armed_before_anything_can_fail() -> None:
    text = render()
    watchdog = text.index('shutdown -h "+$WATCHDOG_MINUTES"')
    assert watchdog < text.index('http get "$BUNDLE_URL"') < text.index("find_python ||") < text.index("-m pip install")
    assert "WATCHDOG_MINUTES=130\n" in text


def test_no_aws_cli_anywhere() -> None:
    """Neither the Neuron DLAMI's documentation nor Amazon Linux 2023's promises the AWS CLI."""
    commands = [line.strip() for line in render().splitlines() if not line.strip().startswith("#")]
    assert not [line for line in commands if re.match(r"^(\S+=\S+\s+)*aws\s", line) or " aws s3 " in line]


def test_installs_the_shipped_bundle_with_no_index_and_the_environment_pinned() -> None:
    text = render()
    assert '-m pip install --quiet --no-index --find-links "$BUNDLE/wheels" -c "$HOME_DIR/constraints.txt"' in text
    assert '"$BUNDLE/wheels/$WHEEL[aws,torch]"' in text
    freeze = re.search(r"grep -iE '\^\((.*)\)==' ", text)
    assert freeze is not None and {"torch", "torch-neuronx", "neuronx-cc", "numpy"} <= set(freeze.group(1).split("|"))
    assert 'fail install "installing siliconbench changed torch from' in text
    installs = [line for line in text.splitlines() if "-m pip install" in line and not line.startswith("#")]
    assert len(installs) == 3, installs
    assert "$ENGINE_SOURCE" in installs[0] and "$TORCH_SOURCE" in installs[1], "only PyTorch and an engine use an index"
    assert text.index(
        'elif [ "$KIND" = cpu ] && [ -z "$ENGINE" ]; then\n  heartbeat bootstrapping "installing PyTorch'
    ) < (text.index("$TORCH_SOURCE $COMPILED"))
    assert 'if [ -n "$ENGINE_REQ" ]; then' in text and "ENGINE_REQ=''" in text, "no engine unless asked for"


def test_values_are_shell_quoted() -> None:
    text = render(prefix="siliconbench/r1/it's $(reboot)")
    assert "PREFIX='siliconbench/r1/it'\"'\"'s $(reboot)'" in text


def test_watchdog_needs_a_minute_and_the_probe_must_be_known() -> None:
    with pytest.raises(ValueError, match="at least one minute"):
        render(watchdog_minutes=0)
    with pytest.raises(ValueError, match="unknown environment probe"):
        render(probe="folder-name")


def _environment(opt: Path, name: str, module: str | None) -> None:
    """An environment folder whose python sees ``module`` as ``torch_neuronx`` (or nothing)."""
    site = opt / name / "site"
    site.mkdir(parents=True)
    if module is not None:
        (site / "torch_neuronx.py").write_text(module)
    python = opt / name / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec {sys.executable} -S "$@"\n')
    python.chmod(0o755)


def _find_python(tmp_path: Path, kind: str, probe: str) -> subprocess.CompletedProcess[str]:
    """Run the script's own find_python against the fake /opt under ``tmp_path``."""
    function = re.search(r"^find_python\(\) \{.*?^\}\n", render(kind=kind, probe=probe), re.S | re.M)
    assert function is not None
    program = (
        f"KIND={kind}\nOPT={tmp_path / 'opt'}\nHOME_DIR={tmp_path}/home\nLOOKED=''\nPROBE=\"$1\"\n"
        f'{function.group(0)}find_python; echo "rc=$? PY=${{PY:-}} LOOKED=$LOOKED"\n'
    )
    return subprocess.run(
        ["bash", "-c", program, "bash", PROBES[probe]],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_neuron_environment_is_found_by_what_it_contains_not_by_its_name(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    _environment(opt, "aws_neuronx_venv_jax_0_10", None)
    _environment(opt, "aws_neuronx_venv_pytorch_2_9", "# torch_neuronx without trace: a native build\n")
    _environment(opt, "zz_custom_env", "def trace(func, example_inputs):\n    return func\n")
    found = _find_python(tmp_path, "neuron", "trace")
    assert found.stdout.strip().startswith(f"rc=0 PY={opt}/zz_custom_env/bin/python"), found


def test_no_environment_says_which_folders_were_looked_at(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    _environment(opt, "aws_neuronx_venv_jax_0_10", None)
    _environment(opt, "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0", "# no trace here\n")
    found = _find_python(tmp_path, "neuron", "trace")
    assert found.stdout.strip() == (
        f"rc=1 PY= LOOKED= {opt}/aws_neuronx_venv_jax_0_10 {opt}/aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0"
    ), found
    text = render()
    assert 'passes the ${ENGINE:-$KIND} check (looked at:${LOOKED:- nothing there})"' in text


def test_gpu_tries_the_dlami_pytorch_environment_first(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    _environment(opt, "pytorch", None)
    _environment(opt, "another", None)
    found = _find_python(tmp_path, "gpu", "trace")  # any probe: what matters is the order tried
    assert found.stdout.split(" LOOKED=")[1].split() == [f"{opt}/pytorch", f"{opt}/another"], found


def test_a_cpu_engine_gets_what_vllm_cpu_compiles_with_before_it_is_installed(tmp_path: Path) -> None:
    """vLLM's CPU build compiles its kernels with torch.compile when it starts (inductor runs g++ on
    C++ that includes Python.h, and ``openssl sha512``), and Amazon Linux 2023 ships no compiler:
    the played c7i's engine failed with "No working C++ compiler found" until the bootstrap
    installed one (test_aws_instance_vllm_cpu.py). What is missing is asked of dnf, nothing else."""
    text = render(kind="cpu", instance_type="c7i.xlarge", probe="torch", engine="cpu", engine_requirement="x==1")
    install = text.index("dnf install -y -q $NEED ||")
    assert text.index('NEED=$("$PY" -c ') < install < text.index('"$ENGINE_REQ" $COMPILED')
    bare = tmp_path / "bin"  # an image with neither g++ nor openssl (this Python has its headers)
    bare.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", CPU_ENGINE_NEEDS], env={"PATH": str(bare)}, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["gcc-c++", "openssl"], done.stderr
    for tool in ("g++", "openssl"):
        (bare / tool).write_text("#!/bin/sh\n")
        (bare / tool).chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-c", CPU_ENGINE_NEEDS], env={"PATH": str(bare)}, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == [], "nothing asked of dnf when the image has it all"


def test_an_engine_run_turns_off_vllm_usage_stats() -> None:
    """vLLM's usage stats are on unless ``VLLM_NO_USAGE_STATS`` (or ``DO_NOT_TRACK``) is set
    (vllm/usage/usage_lib.py, ``is_usage_stats_enabled``): the engine's rank-0 worker then runs
    py-cpuinfo and posts to vLLM's server from a thread, during what is measured, on an instance
    whose private subnet may have no route for it (the played c7i's proxy trap would see it)."""
    text = render(kind="cpu", instance_type="c7i.xlarge", probe="torch", engine="cpu", engine_requirement="x==1")
    engine_branch = text[text.index('if [ -n "$ENGINE" ]; then  # the engine is this environment') :]
    assert engine_branch.index("export VLLM_NO_USAGE_STATS=1") < engine_branch.index('"$PY" -m harness agent')

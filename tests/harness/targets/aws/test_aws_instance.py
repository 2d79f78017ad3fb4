"""The instance, played for real: each AMI kind's root laid out as the image is, the real user data
run against it as root, in a network namespace with no route out (moto listens inside it, on the
namespace's own loopback). The bootstrap must fetch the shipped bundle through its presigned URL,
find the image's PyTorch environment by what it contains, install siliconbench and its pure-Python
dependencies from the bundle with no index, run the agent and post the run file. There is no
network to reach an index through, and pip's default index is a trap that records every request
(pip treats an unreachable index as a warning, so the trap is what shows an attempt): any request
fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness.targets.aws.amis import lay_out, torch_index
from tests.harness.targets.aws.fleet import REPO_ROOT

pytestmark = pytest.mark.slow

#: kind, instance type, probe, the environment the bootstrap must pick (under the root's /opt).
AMIS = {
    "neuron-trace": ("neuron", "inf2.xlarge", "trace", "opt/aws_neuronx_venv_pytorch_2_9"),
    "neuron-native": ("neuron", "trn2.48xlarge", "native", "opt/aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0"),
    "gpu": ("gpu", "g5.xlarge", "torch", "opt/pytorch"),
    "cpu": ("cpu", "c7i.xlarge", "torch", "opt/siliconbench/venv"),
}


def _unshare() -> list[str]:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2) to make a network namespace")
    command = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    probe = subprocess.run([*command, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    return command


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The packages the bundle cannot carry, which each image must already have."""
    from harness.targets.aws.ship import build_shipment

    return list(build_shipment(tmp_path_factory.mktemp("ship")).compiled)


def play(ami: str, tmp_path: Path, compiled: list[str], wheel_cache: Path, **extra: Any) -> dict[str, Any]:
    kind, instance_type, probe, _ = AMIS[ami]
    root = tmp_path / "root"
    lay_out(ami, root, compiled)
    env = dict(extra.pop("env", {}))
    if ami == "cpu":
        index = torch_index(wheel_cache / "torch-index", compiled)
        env["SILICONBENCH_TORCH_SOURCE"] = f"--no-index --find-links {index}"
    spec = {
        "root": str(root),
        "kind": kind,
        "instance_type": instance_type,
        "probe": probe,
        "scratch": str(tmp_path / "scratch"),
        "result": str(tmp_path / "result.json"),
        "env": env,
        **extra,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "SILICONBENCH_WHEEL_CACHE": str(wheel_cache),
        "HOME": str(tmp_path),
    }
    completed = subprocess.run(
        [*_unshare(), sys.executable, "-m", "tests.harness.targets.aws.instance_play", str(tmp_path / "spec.json")],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads((tmp_path / "result.json").read_text())
    result["root"] = root
    return result


@pytest.mark.parametrize("ami", list(AMIS))
def test_the_bootstrap_installs_the_shipped_code_and_posts_the_run_file_with_no_network(
    ami: str, tmp_path: Path, compiled: list[str], wheel_cache: Path
) -> None:
    result = play(ami, tmp_path, compiled, wheel_cache)
    log = result["local_log"]
    assert result["error"] is None, (result["error"], log[-4000:])
    assert result["index_requests"] == [], "the bootstrap asked a package index"
    assert result["returncode"] == 0, log[-4000:]
    run = result["run"]
    assert run is not None and run["status"] == "complete", log[-4000:]
    assert [cell["status"] for cell in run["cells"]] == ["ok"]
    assert result["heartbeat"]["state"] == "complete"

    root: Path = result["root"]
    environment = root / AMIS[ami][3]
    assert f"python: {environment}/bin/python" in log, log
    # The bootstrap log came home on success, sent by the agent before it reported the end.
    sent = result["bootstrap_log_s3"] or ""
    assert sent.startswith("siliconbench bootstrap starting") and "[1/1] mlp:tiny cpu fp32" in sent, sent[-2000:]
    # siliconbench and its pure dependencies went into the environment itself, from the bundle.
    site = next(environment.glob("lib/python3.*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"siliconbench", "tabulate", "boto3", "jsonschema", "transformers"} <= installed, installed
    # The watchdog was armed first, and the script ended by powering off.
    shutdowns = (root / "var" / "log" / "shutdown.log").read_text().splitlines()
    assert shutdowns[0].startswith("-h +70 ") and shutdowns[-1].startswith("-h now siliconbench: finished")
    if ami == "neuron-native":
        assert f"looked at: {root}/opt/aws_neuronx_venv_jax_0_10 {environment})" in log, "found by content"
    if ami == "cpu":
        assert "install -y -q python3.11" in (root / "var" / "log" / "dnf.log").read_text()


def test_a_bootstrap_that_reaches_for_an_index_fails(tmp_path: Path, compiled: list[str], wheel_cache: Path) -> None:
    """The same image and script, but pip allowed to use an index: the trap sees it, so the test above
    would fail. (The install itself still succeeds from the bundle: an unreachable index is only a
    warning to pip, which is why the trap, not the missing network, is the check.)"""
    result = play(
        "gpu",
        tmp_path,
        compiled,
        wheel_cache,
        mutate={"install --quiet --no-index --find-links": "install --quiet --find-links"},
    )
    assert "/simple/tabulate/" in result["index_requests"], result["index_requests"]

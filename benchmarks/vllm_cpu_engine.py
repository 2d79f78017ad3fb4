"""vLLM's CPU build for the benchmarks that need a real engine: one way to set it up and start it.

``scripts/vllm-cpu.sh`` sets the engine's venv and the tiny Llama up (cached; it honours
``SILICONBENCH_VLLM_VENV``), and the harness's own ``open_engine`` (``backends.engine.launcher``)
starts, times and stops the engine, so a benchmark measures the engine the harness would start,
not a copy of its start. ``--endpoint`` attaches to a running server instead.

A script, not the library: a failed set-up ends the process with one line (``sys.exit``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backends.engine.serving import ServingEngine, open_engine
from harness.runfile.engine import EngineSpec

__all__ = ["REPO", "VllmCpu", "set_up", "stop_line", "vllm_cpu_engine"]

REPO = Path(__file__).resolve().parent.parent
#: A busy shared machine can take more than the launcher's default 600 s to compile the engine.
READY_TIMEOUT_S = 1500.0


@dataclass(frozen=True)
class VllmCpu:
    """Where ``scripts/vllm-cpu.sh`` put the engine's python and the tiny model folder."""

    python: str
    model: str


def set_up() -> VllmCpu:
    """Run ``scripts/vllm-cpu.sh`` (idempotent) and read its ``KEY=VALUE`` lines."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "vllm-cpu.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"scripts/vllm-cpu.sh failed:\n{done.stderr[-3000:]}")
    facts = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return VllmCpu(python=facts["VLLM_PYTHON"], model=facts["VLLM_MODEL"])


@contextlib.contextmanager
def vllm_cpu_engine(
    ready_timeout_s: float = READY_TIMEOUT_S,
    *,
    cpu: VllmCpu | None = None,
    endpoint: str | None = None,
    model: str | None = None,
) -> Iterator[tuple[VllmCpu, ServingEngine]]:
    """The set-up's facts (``cpu``, or ``set_up()``'s) and a ready engine: started here (and
    stopped after) or, with ``endpoint``, the running server there, serving ``model`` (default:
    the tiny Llama's folder)."""
    cpu = cpu or set_up()
    if model is not None:
        cpu = VllmCpu(python=cpu.python, model=model)
    spec = EngineSpec(
        model=cpu.model,
        engine="vllm" if endpoint is None else None,
        silicon="cpu",
        python=cpu.python,
        endpoint=endpoint,
        ready_timeout_s=ready_timeout_s,
    )
    with open_engine(spec) as serving:
        yield cpu, serving


def stop_line(serving: ServingEngine) -> str:
    """How a started engine stopped and which of its processes are left (by pid), in one line."""
    if serving.process is None:
        return "engine attached, not started here: left running"
    how = "SIGTERM" if serving.process.stopped_clean else "SIGKILL"
    return f"engine stopped ({how}); processes left: {serving.process.survivors() or 'none'}"

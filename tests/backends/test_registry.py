"""Finding backends, and the one-line reason when one cannot run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.registry import available_backends, get_backend, require_backend
from harness.errors import BackendUnavailableError, UnknownNameError


def test_builtin_backends_are_registered() -> None:
    assert {"cpu", "cuda"} <= set(available_backends())


def test_unknown_backend_lists_the_installed_ones() -> None:
    with pytest.raises(UnknownNameError, match="unknown backend 'tpu'; available: cpu, cuda, neuron"):
        get_backend("tpu")


def test_cuda_without_a_gpu_is_unavailable_with_a_reason() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here; the unavailable path cannot be observed")
    status = get_backend("cuda").availability()
    assert not status.available
    assert status.reason and "\n" not in status.reason
    with pytest.raises(BackendUnavailableError, match="backend 'cuda' is not available here"):
        require_backend("cuda")


def test_an_entry_point_registers_a_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "acme_silicon-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-silicon\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[siliconbench.backends]\nacme = backends.cpu:CpuBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available_backends()["acme"] == "backends.cpu:CpuBackend"
    assert get_backend("acme").name == "cpu"

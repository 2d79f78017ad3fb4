"""Fixtures for the neuron backend's tests: the torch-neuronx test double and a fake instance.

``neuron_double`` makes this machine look like an inf2.xlarge to the backend: a fake
``/dev/neuron0`` (through the backend's device-glob constant), the ``torch_neuronx`` double and a
``neuron-ls`` double on the import and command paths, and a private artifact cache. The double is
imported afresh by each test (so it sees the placement variables the backend sets before the import)
and is removed again afterwards, together with the placement variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.neuron import backend as neuron_backend
from backends.neuron import facts as neuron_facts
from backends.neuron.cache import CACHE_ENV

DOUBLE_DIR = Path(__file__).resolve().parent / "double"
_ENV_KEYS = ("NEURON_RT_VISIBLE_CORES", "NEURON_RT_NUM_CORES", "NEURON_CC_FLAGS")


def _forget_torch_neuronx() -> None:
    for name in [n for n in sys.modules if n == "torch_neuronx" or n.startswith("torch_neuronx.")]:
        del sys.modules[name]


@pytest.fixture
def fake_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``neuron0`` device node as the backend's device glob; placement state restored afterwards."""
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "neuron0").touch()
    monkeypatch.setattr(neuron_backend, "DEVICE_GLOB", str(dev / "neuron*"))
    for key in _ENV_KEYS:  # the backend sets the placement variables; restore them afterwards
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(neuron_backend, "RUNTIME", type(neuron_backend.RUNTIME)())
    return dev


@pytest.fixture
def neuron_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_device: Path) -> Iterator[Any]:
    """The double's runtime state (``neuron_double_runtime.STATE``), reset, for a 2-core inf2.xlarge."""
    monkeypatch.syspath_prepend(str(DOUBLE_DIR))
    import neuron_double_runtime

    state = neuron_double_runtime.reset(total_cores=2)
    monkeypatch.setenv("PATH", f"{DOUBLE_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("NEURON_DOUBLE_CORES", "2")
    monkeypatch.setenv("NEURON_DOUBLE_INSTANCE", "inf2.xlarge")
    # The instance type comes from neuron-ls's text header, as on an instance without DMI access.
    monkeypatch.setattr(neuron_facts, "DMI_PRODUCT_NAME", tmp_path / "no-dmi")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    _forget_torch_neuronx()
    try:
        yield state
    finally:
        _forget_torch_neuronx()
        neuron_double_runtime.reset()


@pytest.fixture
def trn2(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The same doubles, for a trn2.48xlarge: 16 Trainium2 devices of four NeuronCores."""
    import neuron_double_runtime

    state = neuron_double_runtime.reset(total_cores=64)
    monkeypatch.setenv("NEURON_DOUBLE_CORES", "64")
    monkeypatch.setenv("NEURON_DOUBLE_INSTANCE", "trn2.48xlarge")
    return state


@pytest.fixture
def torchneuron(trn2: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The TorchNeuron double on a trn2: ``torch.compile(backend="neuron")`` recorded, run on the CPU."""
    import torchneuron_double

    from backends.neuron import native

    monkeypatch.setattr(native, "DEVICE_TYPE", "cpu")
    monkeypatch.setattr(native, "synchronize", torchneuron_double.synchronize)
    return torchneuron_double.reset()

"""The public names of each package are what we mean to export, and all of them exist."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "workloads": {"Workload", "WorkloadFactory", "WorkloadFamily"},
    "backends": {"Availability", "Backend", "BackendOptions", "DeviceTimer", "EnergyMeter", "PreparedModel"},
    "backends.engine": {
        "ChatMessage",
        "ClientTimeouts",
        "Endpoint",
        "EngineBackend",
        "EngineRequest",
        "FailureKind",
        "RequestFailure",
        "RequestOutcome",
        "RequestStream",
        "TokenEvent",
        "Usage",
        "build_outcome",
    },
    "harness.errors": {
        "BackendUnavailableError",
        "CellError",
        "CloudError",
        "ConfigError",
        "OutputError",
        "PreflightError",
        "PricingError",
        "RunFileError",
        "RunStoppedError",
        "SiliconbenchError",
        "UnknownNameError",
    },
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_every_error_is_a_siliconbench_error() -> None:
    from harness import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SiliconbenchError)

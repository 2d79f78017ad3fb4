"""The preparation limit defaults: one per backend and mode, each with its number and reason."""

from __future__ import annotations

import pytest

from backends.registry import available_backends, get_backend
from harness.errors import ConfigError
from harness.run.limits import ENGINE_READY_DEFAULTS, PREPARE_DEFAULTS, PREPARE_LIMIT_S, CellLimits, prepare_default


@pytest.mark.parametrize("backend", ["cpu", "cuda", "neuron"])
def test_every_mode_of_every_in_process_backend_has_a_default_with_a_reason(backend: str) -> None:
    modes = get_backend(backend).modes
    for mode in modes:
        found = prepare_default(backend, mode)
        assert (backend, mode) in PREPARE_DEFAULTS or (backend, "*") in PREPARE_DEFAULTS, (backend, mode)
        assert 0 < found.seconds <= PREPARE_LIMIT_S
        assert len(found.why) > 40, "the reason is written beside the number"


def test_a_hung_first_forward_on_cpu_ends_within_two_minutes_and_a_neuron_compile_keeps_its_half_hour() -> None:
    assert CellLimits().for_cell("cpu", "eager").prepare_limit_s <= 120
    assert CellLimits().for_cell("cpu", "compile").prepare_limit_s > 120  # a compile is not a hang
    assert CellLimits().for_cell("neuron", "trace").prepare_limit_s == 1800
    assert CellLimits().for_cell("neuron", "compile").prepare_limit_s == 1800


def test_a_given_limit_wins_over_every_default_and_an_unknown_backend_gets_the_long_one() -> None:
    assert CellLimits(prepare_s=7).for_cell("neuron", "trace").prepare_limit_s == 7
    assert CellLimits(prepare_s=7).for_cell("cpu", "eager").prepare_source() == "--prepare-limit"
    assert CellLimits().for_cell("acme-npu", "eager").prepare_limit_s == PREPARE_LIMIT_S
    assert "default for this backend and mode" in CellLimits().for_cell("cpu", "eager").prepare_source()


def test_the_defaults_name_only_backends_that_exist() -> None:
    installed = set(available_backends())
    assert {backend for backend, _ in PREPARE_DEFAULTS} <= installed


def test_a_bad_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="--prepare-limit must be a finite positive number"):
        CellLimits(prepare_s=float("inf"))


def test_an_engine_waits_for_its_start_as_long_as_its_cells_preparation_may_take() -> None:
    """``EngineSpec.ready_timeout_s`` is the preparation limit: ``--prepare-limit`` when given, else
    the engine and silicon's default (its start is what a serving cell prepares)."""
    from harness.run.plan import DEFAULT_SUITE

    def timeouts(**flat: object) -> list[float]:
        suite = DEFAULT_SUITE.with_overrides(engine="vllm", model="m", scenario="generate", **flat)
        return [c.params.engine.spec.ready_timeout_s for c in suite.engine_cells() if c.params.engine is not None]

    assert timeouts(prepare_limit=42) == [42.0]
    assert timeouts(prepare_limit=42, engine_args=("max-num-seqs=1,2",)) == [42.0, 42.0]
    assert timeouts() == [ENGINE_READY_DEFAULTS["cpu"].seconds]
    assert timeouts(engine_silicon="neuron") == [ENGINE_READY_DEFAULTS["neuron"].seconds]
    assert timeouts(engine_silicon="neuron") != timeouts()

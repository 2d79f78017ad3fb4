"""The up-front check of an engine run's inputs (``harness.run.engine_inputs``) and ``s3://`` models.

An ``s3://`` model is only a folder once the cell has fetched it (``backends.engine.models``), so
the check leaves its tokenizer and request set to that cell: loading the tokenizer of the URL
itself failed every AWS engine run with ``--model s3://...`` on the instance, before the first cell.
"""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.run import engine_inputs
from harness.run.config import EngineConfig
from harness.run.plan import Suite
from harness.runfile.engine import EngineSpec


def _params(model: str):  # type: ignore[no-untyped-def]
    params = Suite(engine=EngineConfig(engine="vllm", model=model), scenario="generate").engine_params()
    assert params is not None
    return params


@pytest.fixture(autouse=True)
def engine_python_has_vllm(monkeypatch: pytest.MonkeyPatch) -> list[EngineSpec]:
    """The engine's python is not what these tests are about: it is taken to have vLLM."""
    asked: list[EngineSpec] = []
    monkeypatch.setattr(engine_inputs, "check_engine_python", asked.append)
    return asked


def test_an_s3_model_is_left_to_the_cell_that_fetches_it(engine_python_has_vllm: list[EngineSpec]) -> None:
    engine_inputs.check_engine_inputs(_params("s3://bench-weights/tiny/"))
    assert len(engine_python_has_vllm) == 1, "the engine's python is still checked"


def test_a_model_folder_that_does_not_exist_is_still_refused_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"does not exist; give a folder with config\.json or a hub id"):
        engine_inputs.check_engine_inputs(_params(str(tmp_path / "no-such-model")))

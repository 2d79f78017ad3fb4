"""The run's engine pool: one engine per spec for the cells that follow one another on it, one engine
at a time (the next configuration stops the last), stopped at the end; a failed start is not
retried for the next cell."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from backends.engine import pool as engine_pool
from backends.engine.pool import EnginePool
from harness.errors import CellFailedError
from harness.runfile.engine import EngineSpec

SPEC = EngineSpec("m", engine="vllm")
OTHER = EngineSpec("m", engine="vllm", max_model_len=1024)


def test_one_engine_at_a_time_each_spec_started_once_in_a_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    @contextlib.contextmanager
    def fake_open(spec: EngineSpec, log_dir: Any = None) -> Iterator[str]:
        events.append(f"start {spec.max_model_len}")
        try:
            yield f"engine {spec.max_model_len}"
        finally:
            events.append(f"stop {spec.max_model_len}")

    monkeypatch.setattr(engine_pool, "open_engine", fake_open)
    with EnginePool() as pool:
        assert pool.get(SPEC) == "engine 512"
        assert pool.get(SPEC) == "engine 512"  # the sweep's next cell: the same engine
        assert events == ["start 512"]
        assert pool.get(OTHER) == "engine 1024"  # the next configuration: the first is stopped first
        assert events == ["start 512", "stop 512", "start 1024"]
        assert pool.get(OTHER) == "engine 1024"
    assert events == ["start 512", "stop 512", "start 1024", "stop 1024"]


def test_a_failed_start_fails_the_next_cells_without_a_second_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[EngineSpec] = []

    @contextlib.contextmanager
    def never_ready(spec: EngineSpec, log_dir: Any = None) -> Iterator[str]:
        starts.append(spec)
        raise CellFailedError("engine vllm did not become ready within 600 s")
        yield "unreachable"

    monkeypatch.setattr(engine_pool, "open_engine", never_ready)
    pool = EnginePool()
    for _ in range(3):
        with pytest.raises(CellFailedError, match="did not become ready"):
            pool.get(SPEC)
    assert starts == [SPEC]
    pool.close()

"""The one "write the cell or stop" path: complete, disk full, interrupted (with leftovers), hung."""

from __future__ import annotations

import errno
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import RunStoppedError
from harness.measure.environment import collect_environment
from harness.run.sink import RunSink
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellRecord
from tests.harness.runfactory import make_cell, make_run


def _records(count: int) -> list[CellRecord]:
    return list(make_run([make_cell([1000, 1100, 1200], batch_size=b) for b in range(1, count + 1)]).cells)


def _writer(tmp_path: Path) -> RunWriter:
    return RunWriter(tmp_path, collect_environment([]))


def _full_disk_on_write(monkeypatch: pytest.MonkeyPatch, writer: RunWriter, failing_write: int) -> None:
    """The ``failing_write``-th cell write finds the disk full (as ``atomic_write_text`` raises it)."""
    flush = writer._flush
    calls = [0]

    def flaky() -> None:
        calls[0] += 1
        if calls[0] == failing_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        flush()

    monkeypatch.setattr(writer, "_flush", flaky)


def test_every_record_written_then_complete(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    records = _records(2)
    assert RunSink(writer, 2).drain(iter(records), list) == records
    saved = load_run(writer.path)
    assert saved.status == "complete" and [c.id for c in saved.cells] == [r.id for r in records]


def test_a_full_disk_stops_the_run_aborted_and_keeps_the_cell_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path)
    _full_disk_on_write(monkeypatch, writer, failing_write=2)
    measured: list[str] = []

    def records() -> Iterator[CellRecord]:
        for record in _records(3):
            measured.append(record.id)
            yield record

    with pytest.raises(RunStoppedError, match="stopped after 2 of 3 cells; 2 finished cells kept") as stopped:
        RunSink(writer, 3).drain(records(), list)
    assert stopped.value.status == "disk_full" and stopped.value.path == writer.path
    assert len(measured) == 2  # nothing is measured that could not be kept
    saved = load_run(writer.path)
    assert saved.status == "aborted" and (saved.status_reason or "").startswith("disk full: No space left on device")
    assert len(saved.cells) == 2


def test_an_interrupt_writes_the_leftovers_and_names_the_signal(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    first, second, third = _records(3)

    def records() -> Iterator[CellRecord]:
        yield first
        interrupt = KeyboardInterrupt()
        interrupt.signum = signal.SIGTERM  # type: ignore[attr-defined]  # as harness.run.signals raises it
        raise interrupt

    with pytest.raises(KeyboardInterrupt):
        RunSink(writer, 3).drain(records(), lambda: [second, third])
    saved = load_run(writer.path)
    assert (saved.status, saved.status_reason) == ("interrupted", "SIGTERM")
    assert [c.id for c in saved.cells] == [first.id, second.id, third.id]


def test_a_hung_cell_is_kept_and_the_run_aborted_as_timed_out(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    done, hung = _records(2)
    sink = RunSink(writer, 2)
    sink.write(done)
    assert sink.hung(hung, "exceeded its sampling limit of 3 s") == 1
    saved = load_run(writer.path)
    assert saved.status == "aborted"
    assert saved.status_reason == f"timed out: cell {hung.id} exceeded its sampling limit of 3 s"
    assert [c.id for c in saved.cells] == [done.id, hung.id]

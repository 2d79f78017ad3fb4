"""The on-instance entry point, ``siliconbench agent --bucket B --prefix P``.

It reads ``job.json`` from the instance's S3 folder, runs the suite with the local target (the same
code as a laptop run), uploads the run file after every cell, and keeps ``heartbeat.json`` fresh
from a background thread, so the launcher can tell a long compile from a dead process. On failure it
uploads what it has, writes ``error.json`` and exits with ``EXIT_REPORTED``; SIGTERM (a spot
interruption, the watchdog's shutdown) ends the run as ``interrupted`` the same way.

Before it reports the end (``complete`` in the heartbeat, or ``error.json``), it uploads the
bootstrap log: the launcher terminates the instance as soon as it sees either, so this is the last
moment the log can still be sent, and it comes home on success as well as on failure.

An engine run's job names where the model's token is (``engine.model_token_from``); the agent reads
it with the instance role before the first cell and puts it in its own environment as ``HF_TOKEN``,
which the engine and the hub download inherit and the run file never records.
"""

from __future__ import annotations

import signal
import socket
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import CloudError
from harness.run.plan import DEFAULT_SUITE
from harness.run.runner import ProgressFn
from harness.runfile.files import RunWriter
from harness.runfile.records import CellConfig, CellRecord, TargetFacts, utc_now
from harness.scenarios.registry import cell_id
from harness.targets.aws.storage import (
    BOOTSTRAP_LOG,
    ERROR,
    EXIT_REPORTED,
    HEARTBEAT,
    JOB,
    JOB_SCHEMA,
    RUN_FILE,
    RunStore,
)

__all__ = ["DEFAULT_HEARTBEAT_S", "Heartbeat", "run_agent", "send_log"]

DEFAULT_HEARTBEAT_S = 30.0


class Heartbeat:
    """``heartbeat.json``, rewritten on every change and every ``interval_s`` in between.

    The sequence number grows with every write, so the launcher judges freshness by change, not by
    comparing its clock with the instance's.
    """

    def __init__(self, store: RunStore, interval_s: float) -> None:
        self._store = store
        self.interval_s = interval_s
        self._state: dict[str, Any] = {
            "state": "starting",
            "phase": "agent",
            "cells_done": 0,
            "cells_total": None,
            "failed_cells": 0,
            "current_cell": None,
            "host": socket.gethostname(),
            "seq": 0,
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="siliconbench-heartbeat", daemon=True)
        self.write_failures = 0

    def start(self) -> None:
        self.update()
        self._thread.start()

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._state.update(fields)
            self._state["seq"] += 1
            self._state["time_utc"] = utc_now()
            snapshot = dict(self._state)
        try:
            self._store.put_json(HEARTBEAT, snapshot)
        except CloudError:
            self.write_failures += 1

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.update()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def engine_setup(job: dict[str, Any], factory: Any) -> None:
    """An engine run's token, read from SSM or Secrets Manager into ``HF_TOKEN`` (never written)."""
    import os

    from harness.targets.aws.model_token import TOKEN_ENV, parse_token_source, read_token

    source = parse_token_source((job.get("engine") or {}).get("model_token_from"))
    if source is not None:
        os.environ[TOKEN_ENV] = read_token(factory, source)


def run_agent(
    store: RunStore,
    workdir: Path,
    *,
    heartbeat_s: float | None = None,
    progress: ProgressFn | None = None,
    bootstrap_log: Path | None = None,
    factory: Any = None,
) -> int:
    """Run the job in ``store`` and report through it; returns the process exit code."""
    from harness.run.suite import run_suite

    beat = Heartbeat(store, heartbeat_s or DEFAULT_HEARTBEAT_S)
    writer: list[RunWriter] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        beat.start()
        job = store.get_json(JOB)
        if job is None:
            raise CloudError(f"no job at {store.uri(JOB)}")
        if job.get("schema") != JOB_SCHEMA:
            raise CloudError(f"{store.uri(JOB)} is not a siliconbench job (schema {job.get('schema')!r})")
        if heartbeat_s is None and job.get("heartbeat_s"):
            beat.interval_s = float(job["heartbeat_s"])
        suite = DEFAULT_SUITE.with_overrides(**{**job["suite"], "output": str(workdir)})
        if job.get("engine") and job["engine"].get("model_token_from"):
            beat.update(message="reading the model's token")
            engine_setup(job, factory)
        failed = 0

        def on_start(run_writer: RunWriter, cells: list[CellConfig]) -> None:
            writer.append(run_writer)
            store.put_file(RUN_FILE, run_writer.path)
            beat.update(state="running", cells_total=len(cells), cells_done=0)

        def on_cell(index: int, total: int, config: CellConfig, record: CellRecord | None) -> None:
            nonlocal failed
            if progress is not None:
                progress(index, total, config, record)
            if record is None:
                beat.update(current_cell=cell_id(config))
                return
            failed += record.status != "ok"
            store.put_file(RUN_FILE, writer[0].path)
            beat.update(cells_done=index, failed_cells=failed, current_cell=None)

        result = run_suite(
            suite,
            run_id=job["run_id"],
            target=TargetFacts(**(job.get("target") or {})),
            progress=on_cell,
            on_start=on_start,
        )
        store.put_file(RUN_FILE, result.path)
        send_log(store, bootstrap_log)
        beat.update(state="complete")
        return 0
    except KeyboardInterrupt as exc:
        send_log(store, bootstrap_log)
        return _report(store, beat, writer, "interrupted", "Interrupted", f"the agent was stopped ({exc or 'Ctrl-C'})")
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        send_log(store, bootstrap_log)
        return _report(store, beat, writer, "failed", type(exc).__name__, message, traceback.format_exc(limit=8))
    finally:
        beat.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _report(
    store: RunStore,
    beat: Heartbeat,
    writer: list[RunWriter],
    state: str,
    kind: str,
    message: str,
    trace: str | None = None,
) -> int:
    """Upload what was measured, then the error; EXIT_REPORTED only if the error got through."""
    if writer:
        if writer[0].run.status == "running":
            writer[0].finish("interrupted")
        _quietly(lambda: store.put_file(RUN_FILE, writer[0].path))
    try:
        store.put_json(
            ERROR, {"phase": "agent", "type": kind, "message": message[:500], "traceback": trace, "time_utc": utc_now()}
        )
    except CloudError:
        return 1
    beat.update(state=state, message=message[:500])
    return EXIT_REPORTED


def send_log(store: RunStore, path: Path | None) -> None:
    """Upload the bootstrap log as it is now; a log that cannot be sent does not fail the run."""
    if path is not None and path.is_file():
        try:
            store.put_file(BOOTSTRAP_LOG, path)
        except CloudError:
            pass


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except CloudError:
        pass

"""pytest plugin: write a benchmark of any workload and backend as a test; the session's cells go to
one run file that every siliconbench report, comparison and export reads.

    def test_bert(siliconbench):
        cell = siliconbench("bert-base", preset="tiny", dtype="bf16", batch_size=8, max_time=2)
        assert cell.measurement is not None and cell.measurement.correctness.passed
        print(cell.measurement.latency_ns.p50 / 1e6, "ms")

The fixture measures one cell per call with the same code as ``siliconbench run`` (correctness
check, warmup, adaptive sampling, distribution-free order-statistic intervals) and returns the
cell record (``CellRecord``, frozen dataclasses: read it by attribute); a cell that fails fails
the test with the cell's one-line error, so a test that gets a record gets a measurement
(``tests/test_readme.py`` runs this example). Registered through the ``pytest11`` entry point,
and cheap to load: nothing heavy is imported until a test asks for the fixture, and no run file
is written by a session that measures nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.runfile.records import CellRecord
from harness.scenarios.registry import cell_id

__all__ = ["SiliconbenchFixture", "SiliconbenchSession"]

_SESSION_KEY = pytest.StashKey["SiliconbenchSession"]()
_PATH_KEY = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("siliconbench", "siliconbench benchmarks (siliconbench fixture)")
    group.addoption(
        "--siliconbench-output",
        metavar="DIR",
        default=None,
        help="folder for the session's run file (default: results)",
    )
    group.addoption(
        "--siliconbench-max-time",
        metavar="SECONDS",
        type=float,
        default=None,
        help="sampling budget per cell, overriding the tests' own (default 4)",
    )
    group.addoption(
        "--siliconbench-price-per-hour",
        metavar="USD",
        type=float,
        default=None,
        help="price of this machine, recorded in the run file for cost reports",
    )


class SiliconbenchSession:
    """One run file per pytest session, created when the first cell is measured."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.writer: Any = None
        self.records: list[CellRecord] = []

    def _writer(self) -> Any:
        if self.writer is None:
            from harness.measure.environment import collect_environment
            from harness.pricing.given import price_from_cli
            from harness.runfile.files import RunWriter

            output = self.config.getoption("siliconbench_output") or "results"
            price = self.config.getoption("siliconbench_price_per_hour")
            if price is not None and not price > 0:
                raise pytest.UsageError(f"--siliconbench-price-per-hour must be positive, got {price}")
            self.writer = RunWriter(
                Path(output),
                collect_environment(),
                suite={"pytest": {"args": list(self.config.invocation_params.args)}},
                pricing=price_from_cli(price) if price is not None else None,
            )
        return self.writer

    def measure(
        self,
        nodeid: str,
        workload: str,
        preset: str | None,
        backend: str,
        dtype: str,
        mode: str,
        batch_size: int,
        threads: int | None,
        device: str | None,
        max_time: float,
        min_samples: int,
        target_ci: float,
        isolate: bool | None,
    ) -> CellRecord:
        from backends.registry import get_backend
        from harness.errors import SiliconbenchError
        from harness.measure.sampler import SamplingPolicy
        from harness.run.cell import run_cell
        from harness.run.isolation import run_cell_isolated
        from harness.runfile.records import CellConfig
        from workloads.registry import presets_of

        try:
            chosen_preset = preset or presets_of(workload)[1] or "default"
            isolated = get_backend(backend).isolate_by_default if isolate is None else isolate
            budget = self.config.getoption("siliconbench_max_time") or max_time
            policy = SamplingPolicy.for_budget(budget, min_count=min_samples, target_rel_ci=target_ci)
            config = CellConfig(
                workload=workload,
                preset=chosen_preset,
                backend=backend,
                dtype=dtype,
                mode=mode,
                threads=threads,
                batch_size=batch_size,
                device=device,
            )
            writer = self._writer()
        except SiliconbenchError as exc:
            pytest.fail(f"siliconbench: {exc}", pytrace=False)
        if isolated:
            record = run_cell_isolated(config, policy)
        else:
            record = run_cell(config, policy)
        record = replace(record, pytest_nodeid=nodeid)
        writer.add_cell(record)
        self.records.append(record)
        if record.error is not None:
            error = record.error
            pytest.fail(f"siliconbench cell {cell_id(config)} failed in {error.phase}: {error.message}", pytrace=False)
        return record

    def finish(self, interrupted: bool) -> Path | None:
        if self.writer is None:
            return None
        return self.writer.finish("interrupted" if interrupted else "complete")  # type: ignore[no-any-return]


class SiliconbenchFixture:
    """What the ``siliconbench`` fixture gives a test: call it to measure one cell."""

    def __init__(self, session: SiliconbenchSession, nodeid: str) -> None:
        self._session = session
        self._nodeid = nodeid
        self.cells: list[CellRecord] = []

    def __call__(
        self,
        workload: str,
        *,
        preset: str | None = None,
        backend: str = "cpu",
        dtype: str = "fp32",
        mode: str = "eager",
        batch_size: int = 1,
        threads: int | None = None,
        device: str | None = None,
        max_time: float = 4.0,
        min_samples: int = 10,
        target_ci: float = 0.01,
        isolate: bool | None = None,
    ) -> CellRecord:
        """Measure ``workload`` (a registered name or ``package.module:callable``) and return the cell."""
        record = self._session.measure(
            self._nodeid,
            workload,
            preset,
            backend,
            dtype,
            mode,
            batch_size,
            threads,
            device,
            max_time,
            min_samples,
            target_ci,
            isolate,
        )
        self.cells.append(record)
        return record


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION_KEY] = SiliconbenchSession(config)


@pytest.fixture
def siliconbench(request: pytest.FixtureRequest) -> SiliconbenchFixture:
    """Measure siliconbench cells from a test; see ``SiliconbenchFixture.__call__``."""
    return SiliconbenchFixture(request.config.stash[_SESSION_KEY], request.node.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    bench = session.config.stash.get(_SESSION_KEY, None)
    if bench is not None:
        path = bench.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
        if path is not None:
            session.config.stash[_PATH_KEY] = path


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    bench = config.stash.get(_SESSION_KEY, None)
    path = config.stash.get(_PATH_KEY, None)
    if bench is None or path is None:
        return
    from harness.report.formats import render

    terminalreporter.section("siliconbench")
    terminalreporter.write_line(render([bench.writer.run], "table"))
    terminalreporter.write_line(f"run file: {path}")

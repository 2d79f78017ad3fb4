"""Fault injection, for real: each failure class of issue 11 is provoked on the real CLI in a
subprocess, and each test asserts the exit code, one line on stderr without a traceback, and what
the run file holds afterwards.

- a disk that fills mid-run: a small tmpfs, filled while the run is going, and `--output` on a
  read-only tmpfs or bind mount (mounting needs root; where the mount is denied the tests fail
  with the reason, never skip: ``tests.harness.mount_faults``);
- stop signals: SIGINT, SIGTERM, SIGHUP and SIGKILL sent to a real launcher whose isolated cell has
  a child process of its own; every process of the tree is checked dead by its pid;
- hung cells: a cell stuck in a C call (libc ``pause``) while sampling or while building;
- AWS calls: a closed port, a port that accepts and never answers, and no credentials at all;
- hostile files: binary, non-UTF-8, wrong types, NaN, Infinity, overflowing and negative figures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.runfile.codec import encode_run
from harness.runfile.records import RunRecord
from tests.cli import cli_env, one_line, run_cli, start_cli
from tests.harness.runfactory import lognormal_samples, make_cell, make_failed_cell, make_run, write_run

FAULTS = "tests.harness.fault_workloads"


# -- helpers --------------------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    """No AWS variables from the caller: a fault test's endpoint and credentials are its own."""
    return cli_env(extra, drop_prefix="AWS_")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``tests.cli.run_cli`` with this module's defaults: ``_env()``, and room for a hung cell's limits."""
    return run_cli(*args, environ=env or _env(), timeout=timeout)


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return start_cli(*args, environ=env or _env())


def run_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("run-*.json"))


def load(path: Path) -> RunRecord:
    from harness.runfile.files import load_run

    return load_run(path)  # validates every field


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def cells_saved(folder: Path) -> int:
    files = run_files(folder)
    if not files:
        return 0
    try:
        return len(json.loads(files[0].read_text())["cells"])
    except (ValueError, OSError):  # between the rename and our read there is nothing to see
        return 0


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie has already died and only waits to be reaped."""
    found = _stat(pid)
    return found is not None and found[1] not in ("Z", "X")


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                children.setdefault(found[0], []).append(int(entry.name))
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- stop signals and the process tree ------------------------------------------------------------
@pytest.fixture
def reap() -> Iterator[list[int]]:
    """Pids to SIGKILL when the test ends, whatever happened: a failing test leaves nothing behind."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _launch_tree(tmp_path: Path, reap: list[int]) -> tuple[subprocess.Popen[str], Path, set[int], list[int]]:
    """A run whose first cell finishes and whose second hangs in an isolated child that has a
    child of its own; returns the launcher, the output folder, its process tree and the pids
    the cell wrote (cell process, its helper)."""
    out, pidfile = tmp_path / "out", tmp_path / "pids"
    env = _env(SILICONBENCH_TEST_PIDFILE=str(pidfile))
    launcher = start(
        "run",
        "--workload",
        "mlp",
        "--workload",
        f"{FAULTS}:spawns_grandchild",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--max-time",
        "0.2",
        "--isolate",
        "--quiet",
        "--output",
        str(out),
        env=env,
    )
    reap.append(launcher.pid)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"), 180, "the hanging cell to start")
    cell_pids = [int(p) for p in pidfile.read_text().split()]
    tree = descendants(launcher.pid)
    reap.extend([*cell_pids, *tree])
    assert set(cell_pids) <= tree
    assert any("resource_tracker" in cmdline(pid) for pid in tree), [cmdline(p) for p in tree]
    assert len(tree) >= 4  # resource tracker, cell process, its watcher, its helper
    return launcher, out, tree, cell_pids


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_ends_the_run_with_its_table_and_128_plus_n_and_leaves_no_process(
    tmp_path: Path, sig: signal.Signals, reap: list[int]
) -> None:
    launcher, out, tree, _ = _launch_tree(tmp_path, reap)
    assert cells_saved(out) == 1
    launcher.send_signal(sig)
    stdout, stderr = launcher.communicate(timeout=60)

    assert launcher.returncode == 128 + sig
    one_line(stderr, f"interrupted by {sig.name}", "1 finished cells kept")
    assert "mlp" in stdout and "tiny" in stdout  # the table of what was measured
    saved = load(run_files(out)[0])
    assert (saved.status, saved.status_reason) == ("interrupted", sig.name)
    assert [c.status for c in saved.cells] == ["ok"]
    wait_for(lambda: not any(alive(pid) for pid in tree), 20, "the process tree to die")


@pytest.mark.slow
def test_sigkill_of_the_launcher_takes_the_cell_its_children_and_the_resource_tracker_with_it(
    tmp_path: Path, reap: list[int]
) -> None:
    launcher, out, tree, cell_pids = _launch_tree(tmp_path, reap)
    launcher.kill()
    launcher.communicate(timeout=30)
    survivors = lambda: {pid for pid in tree if alive(pid)}  # noqa: E731
    deadline = time.monotonic() + 20
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not survivors(), {pid: cmdline(pid) for pid in survivors()}
    assert not any(alive(pid) for pid in cell_pids)
    saved = load(run_files(out)[0])  # SIGKILL runs no clean-up: the last write stands, valid
    assert saved.status == "running"
    assert len(saved.cells) == 1


# -- hung cells -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_isolated_cells_past_their_limits_are_killed_and_the_run_goes_on(tmp_path: Path) -> None:
    result = cli(
        "run",
        "--workload",
        f"{FAULTS}:hang_in_sampling",
        "--workload",
        f"{FAULTS}:hang_in_build",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--max-time",
        "0.3",
        "--sampling-grace",
        "2",
        "--prepare-limit",
        "10",
        "--isolate",
        "--quiet",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip() == ""
    saved = load(run_files(tmp_path)[0])
    assert saved.status == "complete"
    sampling, build, ok = saved.cells
    assert sampling.error is not None and build.error is not None
    assert (sampling.status, sampling.error.phase, sampling.error.type) == ("failed", "measure", "TimeoutError")
    assert sampling.error.message == (
        "the cell exceeded its sampling limit of 2.33 s (budget 0.33 s + 2 s grace) in phase 'measure' "
        "(--sampling-grace); its process was killed"
    )
    assert build.error.message == (
        "the cell exceeded its preparation limit of 10 s in phase 'build', waiting for the model to be built "
        "(--prepare-limit); its process was killed"
    )
    assert ok.status == "ok"


@pytest.mark.slow
def test_a_hung_first_forward_under_isolate_ends_at_its_preparation_limit_and_says_what_it_waited_for(
    tmp_path: Path,
) -> None:
    """The first forward never returns (libc ``pause``): with ``--isolate --max-time 1`` the cell is
    killed at its preparation limit (20 s here: a spawned child's torch import on a busy machine takes
    a few; the cpu default is 120 s, see the defaults test),
    not after 30 minutes; the progress line said what it would wait for and how long."""
    started = time.monotonic()
    result = cli(
        "run", "--workload", f"{FAULTS}:hang_on_first_forward", "--dtype", "fp32", "--max-time", "1",
        "--isolate", "--prepare-limit", "20", "--output", str(tmp_path),
    )  # fmt: skip
    wall = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "preparing: the model's build and first forwards; limit 20 s (--prepare-limit)" in result.stderr
    (cell,) = load(run_files(tmp_path)[0]).cells
    assert cell.error is not None and (cell.error.phase, cell.error.type) == ("reference", "TimeoutError")
    assert cell.error.message == (
        "the cell exceeded its preparation limit of 20 s in phase 'reference', waiting for the first forward "
        "(the fp32 cpu reference) (--prepare-limit); its process was killed"
    )
    assert wall < 90


def test_a_cpu_cell_says_its_default_preparation_limit_before_it_starts(tmp_path: Path) -> None:
    result = cli(
        "run", "--workload", "mlp", "--preset", "tiny", "--dtype", "fp32", "--max-time", "0.05",
        "--output", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "preparing: the model's build and first forwards; limit 120 s (the default for this backend and mode; "
        "--prepare-limit changes it)" in result.stderr
    )


@pytest.mark.slow
def test_a_hung_cell_in_this_process_saves_the_file_and_ends_the_run_naming_isolate(tmp_path: Path) -> None:
    result = cli(
        "run",
        "--workload",
        "mlp",
        "--workload",
        f"{FAULTS}:hang_in_sampling",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--max-time",
        "0.3",
        "--sampling-grace",
        "2",
        "--no-isolate",
        "--quiet",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 1
    line = one_line(
        result.stderr, "hang_in_sampling", "exceeded its sampling limit", "--isolate", "status aborted: timed out"
    )
    assert "1 finished cells kept" in line
    saved = load(run_files(tmp_path)[0])
    assert saved.status == "aborted"
    assert (saved.status_reason or "").startswith("timed out: cell tests.harness.fault_workloads:hang_in_sampling")
    assert [c.status for c in saved.cells] == ["ok", "failed"]
    assert saved.cells[1].error is not None and saved.cells[1].error.type == "TimeoutError"


# -- a disk that fills ----------------------------------------------------------------------------
@pytest.fixture(params=["never", "always"], ids=["small-pages", "huge-pages"])
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own, unmounted afterwards, with small pages and with huge ones: a kernel
    or image that backs tmpfs with 2 MiB pages (``huge=always``, or ``shmem_enabled`` forcing it)
    runs out of room in other places than one with 4 KiB pages, and a CI machine once did."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=4m,huge={request.param}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Write until the file system says it is full. Unbuffered: a buffered file keeps the bytes
    that did not fit and raises ENOSPC again when it is closed."""
    with (folder / "filler").open("ab", buffering=0) as handle:
        chunk = b"\0" * (64 << 10)
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == 28, exc


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_stops_the_run_cleanly_keeping_every_finished_cell(small_disk: Path) -> None:
    runner = start(
        "run",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--dtype",
        "bf16",
        "--batch-size",
        "1",
        "--batch-size",
        "2",
        "--max-time",
        "1.5",
        "--no-isolate",
        "--quiet",
        "--output",
        str(small_disk),
    )
    try:
        wait_for(lambda: cells_saved(small_disk) >= 1, 180, "the first cell to be saved")
        fill(small_disk)
        stdout, stderr = runner.communicate(timeout=180)
    finally:  # a failed step leaves no run behind to write into the next test's tmp folder
        if runner.poll() is None:
            runner.kill()
            runner.communicate()

    assert runner.returncode == 3
    one_line(stderr, "no space left on the disk holding", "status aborted: disk full")
    (path,) = run_files(small_disk)
    saved = load(path)
    assert saved.status == "aborted"
    assert (saved.status_reason or "").startswith("disk full: No space left on device after 2 of 4 cells")
    assert len(saved.cells) == 2  # the one being written when the disk filled is kept too
    assert sorted(p.name for p in small_disk.iterdir()) == sorted([path.name, "filler"])  # no partial files
    assert "mlp" in stdout


def test_a_full_disk_before_the_run_is_one_line_and_leaves_nothing(small_disk: Path) -> None:
    fill(small_disk)
    result = cli("run", "--workload", "mlp", "--preset", "tiny", "--quiet", "--output", str(small_disk))
    assert result.returncode == 2
    one_line(result.stderr, "cannot write to output folder", "No space left on device")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]


def test_a_report_to_a_full_disk_is_one_line_and_leaves_no_partial_file(small_disk: Path, tmp_path: Path) -> None:
    run = write_run(make_run([make_cell(lognormal_samples(2e6, 400, seed=1))]), tmp_path)
    fill(small_disk)
    target = small_disk / "report.html"
    result = cli("report", str(run), "--format", "html", "--output", str(target))
    assert result.returncode == 2
    one_line(result.stderr, "cannot write report", "No space left on device", "nothing was written")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]


@pytest.mark.slow
def test_a_disk_with_room_for_a_cell_but_no_slack_keeps_every_finished_cell_and_exits_3(tmp_path: Path) -> None:
    """1 MiB of tmpfs (room for the file and a cell, not for a megabyte of slack), filled after the
    first cell by another writer that keeps taking any room given back: the run still starts, ends
    ``aborted`` (disk full), keeps every cell that reached the disk, and leaves no partial file."""
    from tests.harness.mount_faults import in_private_mounts

    seen = in_private_mounts("fills-after-first-cell", tmp_path / "report")
    assert seen["returncode"] == 3, seen["stderr"]
    one_line(seen["stderr"], "no space left on the disk holding", "status aborted: disk full")
    (text,) = seen["run_files"]
    from harness.runfile.codec import parse_run

    saved = parse_run(text, "the run file")
    assert saved.status == "aborted"
    assert (saved.status_reason or "").startswith("disk full: No space left on device after ")
    assert len(saved.cells) >= 1 and all(cell.status == "ok" for cell in saved.cells)
    assert sorted(seen["listing"]) == sorted([f"run-{saved.run_id}.json", "filler"])  # no partial files
    assert "mlp" in seen["stdout"]


@pytest.mark.parametrize("scenario", ["read-only-tmpfs", "read-only-bind"])
def test_output_on_a_read_only_file_system_is_one_line_and_exit_2(tmp_path: Path, scenario: str) -> None:
    from tests.harness.mount_faults import in_private_mounts

    seen = in_private_mounts(scenario, tmp_path / "report")
    assert seen["returncode"] == 2, seen["stderr"]
    one_line(seen["stderr"], "cannot write to output folder", "Read-only file system", "--output")
    assert seen["listing"] == [] and seen["run_files"] == []


# -- AWS calls that cannot end well ---------------------------------------------------------------
def _aws_env(endpoint: str, tmp_path: Path, credentials: bool = True) -> dict[str, str]:
    env = _env(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=endpoint,
    )
    if credentials:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return env


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.skipif(sys.platform != "linux", reason="ports and /proc as on Linux")
def test_aws_cleanup_against_a_closed_port_is_one_line_and_exit_3(tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    result = cli("aws", "cleanup", env=_aws_env(f"http://127.0.0.1:{_closed_port()}", tmp_path), timeout=120)
    assert result.returncode == 3
    one_line(result.stderr, "listing siliconbench instances failed", "Could not connect to the endpoint URL")
    assert result.stdout == ""


def test_aws_cleanup_without_credentials_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    env = _aws_env(f"http://127.0.0.1:{_closed_port()}", tmp_path, credentials=False)
    result = cli("aws", "cleanup", env=env, timeout=120)
    assert result.returncode == 2
    one_line(result.stderr, "no AWS credentials found")


def test_a_silent_endpoint_ends_in_a_read_timeout_not_a_hang(
    silent_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("boto3")
    from harness.errors import CloudError
    from harness.targets.aws.cleanup import find_managed
    from harness.targets.aws.session import ClientFactory

    for key, value in _aws_env("", tmp_path).items():
        if key.startswith("AWS_") and value:
            monkeypatch.setenv(key, value)
    factory = ClientFactory(
        "us-east-1",
        endpoint_url=f"http://127.0.0.1:{silent_port}",
        max_attempts=2,
        connect_timeout_s=0.5,
        read_timeout_s=0.5,
    )
    with pytest.raises(CloudError, match=r"^listing siliconbench instances failed: Read timeout on endpoint URL"):
        find_managed(factory, __import__("datetime").datetime.now())


def test_every_client_has_connect_and_read_timeouts_and_bounded_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's own defaults are 60 s connect, 60 s read and (legacy mode) 5 attempts, the
    six-minute hang of issue 11; a client of ours must carry our bounds instead."""
    pytest.importorskip("boto3")
    from harness.targets.aws.session import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S, ClientFactory

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    config = ClientFactory("us-east-1").client("ec2").meta.config
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    # botocore turns retries.max_attempts (retries after the first) into total_max_attempts = n + 1;
    # the bound we mean counts every attempt (botocore/config.py, Config's retries docstring).
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert CONNECT_TIMEOUT_S < 60 and READ_TIMEOUT_S < 60 and MAX_ATTEMPTS <= 3


@pytest.mark.slow
def test_aws_cleanup_against_a_silent_endpoint_ends_within_its_bounds(silent_port: int, tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    result = cli("aws", "cleanup", env=_aws_env(f"http://127.0.0.1:{silent_port}", tmp_path), timeout=300)
    assert result.returncode == 3
    one_line(result.stderr, "listing siliconbench instances failed", "Read timeout")


# -- hostile files --------------------------------------------------------------------------------
def _valid_run(tmp_path: Path) -> RunRecord:
    return make_run([make_cell(lognormal_samples(2e6, 400, seed=1)), make_failed_cell(batch_size=2)])


def _m(run: dict[str, Any]) -> dict[str, Any]:
    measurement: dict[str, Any] = run["cells"][0]["measurement"]
    return measurement


def _valid_run_json(tmp_path: Path) -> dict[str, Any]:
    """The run as its file holds it (version 2), for tests that break one field."""
    data: dict[str, Any] = json.loads(encode_run(_valid_run(tmp_path)))
    return data


BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd"


@pytest.mark.parametrize(
    "command",
    [
        ["report", "{f}"],
        ["report", "{f}", "--format", "json"],
        ["compare", "{f}", "{f}"],
        ["export", "pytest-benchmark", "{f}"],
    ],
    ids=["report", "report-json", "compare", "export"],
)
def test_a_binary_run_file_is_one_line_for_every_reader(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(BINARY)
    result = cli(*[part.format(f=path) for part in command])
    assert result.returncode == 2
    one_line(result.stderr, str(path), "not UTF-8 text")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda r: _m(r)["latency_ns"].update(p50="fast"), ("at cells/0/measurement/latency_ns/p50", "valid number")),
        (
            lambda r: _m(r)["latency_ns"].update(p99=-5.0),
            ("cells/0/measurement/latency_ns/p99", "greater than or equal to 0"),
        ),
        (
            lambda r: _m(r)["latency_ns"].update(p50="NaN-marker"),
            ("cells/0/measurement/latency_ns/p50", "finite number"),
        ),
        (
            lambda r: _m(r)["latency_ns"].update(p50="Inf-marker"),
            ("cells/0/measurement/latency_ns/p50", "finite number"),
        ),
        (
            lambda r: _m(r)["latency_ns"].update(p50="Big-marker"),
            ("cells/0/measurement/latency_ns/p50", "finite number"),
        ),
        (lambda r: _m(r).update(samples_ns="many"), ("at cells/0/measurement/samples_ns", "valid array")),
        (lambda r: _m(r).update(samples_ns=[-1, 2]), ("at cells/0/measurement/samples_ns/0", "greater than or equal")),
        (lambda r: r.update(cells={"a": 1}), ("at cells:", "valid array")),
    ],
    ids=[
        "string-latency",
        "negative-p99",
        "nan",
        "infinity",
        "overflow",
        "string-samples",
        "negative-sample",
        "cells-object",
    ],
)
def test_run_files_with_wrong_figures_are_refused_naming_the_field(
    tmp_path: Path, edit: Any, fragments: tuple[str, ...]
) -> None:
    run = _valid_run_json(tmp_path)
    edit(run)
    text = (
        json.dumps(run)
        .replace('"NaN-marker"', "NaN")
        .replace('"Inf-marker"', "Infinity")
        .replace('"Big-marker"', "1e400")
    )
    path = tmp_path / "run.json"
    path.write_text(text)
    for command in (
        ["report", str(path)],
        ["report", str(path), "--format", "json"],
        ["compare", str(path), str(path)],
    ):
        result = cli(*command)
        assert result.returncode == 2, (command, result.stderr)
        one_line(result.stderr, str(path), *fragments)
        assert result.stdout == ""


def test_deeply_nested_json_and_a_folder_are_one_line(tmp_path: Path) -> None:
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 200_000 + "]" * 200_000)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    for path, fragment in ((nested, "nested too deeply"), (folder, "is a folder")):
        result = cli("report", str(path))
        assert result.returncode == 2
        one_line(result.stderr, fragment)


def test_report_json_is_strict_json(tmp_path: Path) -> None:
    path = write_run(_valid_run(tmp_path), tmp_path)
    result = cli("report", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr

    def reject(name: str) -> None:
        raise AssertionError(f"report --format json wrote {name}")

    document = json.loads(result.stdout, parse_constant=reject)
    assert len(document) == 2


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (BINARY, ("not UTF-8 text",)),
        (
            b'{"schema": "siliconbench/prices", "schema_version": 1, "generated": "2026-01-01", "prices": [NaN]}',
            ("NaN is not a JSON number",),
        ),
        (
            b'{"schema": "siliconbench/prices", "schema_version": 1, "generated": "2026-01-01", "prices": '
            b'[{"instance_type": "c7i.large", "region": "us-east-1", "purchase_option": "on-demand", '
            b'"usd_per_hour": 1e400, "source": "x", "as_of": "2026-01-01"}]}',
            ("price #1", "'usd_per_hour' must be a finite positive number", "inf"),
        ),
        (
            b'{"schema": "siliconbench/prices", "schema_version": 1, "generated": "2026-01-01", "prices": '
            b'[{"instance_type": 7, "region": "us-east-1", "purchase_option": "on-demand", '
            b'"usd_per_hour": 1, "source": "x", "as_of": "2026-01-01"}]}',
            ("price #1", "'instance_type' must be a string"),
        ),
    ],
    ids=["binary", "nan", "overflow", "wrong-type"],
)
def test_hostile_price_files_are_one_line_naming_file_and_field(
    tmp_path: Path, content: bytes, fragments: tuple[str, ...]
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_bytes(content)
    run = write_run(_valid_run(tmp_path), tmp_path)
    for command in (["pricing", "show", "--prices", str(prices)], ["report", str(run), "--prices", str(prices)]):
        result = cli(*command)
        assert result.returncode == 2, result.stderr
        one_line(result.stderr, str(prices), *fragments)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (BINARY, ("not UTF-8 text",)),
        (b"max_time = nan\n", ("max time must be a finite positive number", "nan")),
        (b"max_time = inf\n", ("max time must be a finite positive number", "inf")),
        (b"max_time = 1e400\n", ("max time must be a finite positive number", "inf")),
        (b"threads = 4096\n", ("threads must be from 1 to 1024",)),
        (b"target_rel_ci = nan\n", ("target CI must be a fraction",)),
        (b"[pricing]\nusd_per_hour = inf\n", ("'usd_per_hour' must be a finite positive number",)),
        (b"workloads = [1]\n", ("'workloads' must be a list of str",)),
    ],
    ids=["binary", "nan", "inf", "overflow", "threads", "ci-nan", "price-inf", "wrong-type"],
)
def test_hostile_suite_files_are_one_line_naming_file_and_field(
    tmp_path: Path, content: bytes, fragments: tuple[str, ...]
) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_bytes(content)
    result = cli("run", "--suite", str(suite), "--output", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 2
    one_line(result.stderr, str(suite), *fragments)
    assert not (tmp_path / "out").exists()


# -- numbers and factories refused before anything runs ------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--max-time", "inf"], "must be a finite number"),
        (["--max-time", "1e400"], "must be a finite number"),
        (["--max-time", "nan"], "must be a finite number"),
        (["--rate", "inf", "--scenario", "server"], "must be a finite number"),
        (["--threads", "100000"], "threads must be from 1 to 1024"),
        (["--threads", str(len(os.sched_getaffinity(0)) + 1)], "cores this process may use here"),
        (["--prepare-limit", "inf"], "must be a finite number"),
        (["--sampling-grace", "0"], "must be positive"),
        (["--concurrency", "5000", "--scenario", "server", "--rate", "1"], "concurrency must be at most 1024"),
        ([f"--workload={FAULTS}:no_preset"], "must take one optional preset argument"),
        ([f"--workload={FAULTS}:returns_a_string"], "returns str by its annotation, not a workloads.Workload"),
        (["--workload=os:system"], "is posix.system from Python's standard library, not a workload factory"),
        (["--workload=subprocess:getoutput"], "subprocess.getoutput from Python's standard library"),
        (["--workload=builtins:exec"], "builtins.exec from Python's standard library"),
    ],
)
def test_numbers_and_factories_that_would_fail_every_cell_are_refused_before_any_cell(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    workload = [] if any(a.startswith("--workload") for a in args) else ["--workload", "mlp"]
    result = cli("run", *workload, "--preset", "tiny", *args, "--quiet", "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    one_line(result.stderr, fragment)
    assert not (tmp_path / "out").exists() or not run_files(tmp_path / "out")


@pytest.mark.parametrize("callable_", ["os:system", "subprocess:getoutput", "os:popen"])
def test_a_stdlib_callable_as_workload_runs_nothing_before_it_is_refused(tmp_path: Path, callable_: str) -> None:
    """Planning never calls a factory: with preset ``touch MARKER`` a shell would create MARKER."""
    marker = tmp_path / "marker"
    result = cli(
        "run", "--workload", callable_, "--preset", f"touch {marker}", "--quiet", "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    one_line(result.stderr, f"workload {callable_!r} is", "not a workload factory")
    assert not marker.exists(), "the shell command ran"
    assert not (tmp_path / "out").exists() or not run_files(tmp_path / "out")


def test_a_factory_that_raises_is_called_only_in_its_cell_which_fails_alone(tmp_path: Path) -> None:
    """A factory that looks right (its signature and annotation) is called in the cell, not while
    planning: the cell fails with the factory's one line, the run file says so, exit 1."""
    result = cli(
        "run", f"--workload={FAULTS}:raises", "--workload", "mlp", "--preset", "tiny", "--dtype", "fp32",
        "--max-time", "0.1", "--quiet", "--output", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    run = load(run_files(tmp_path)[0])
    statuses = {cell.config.workload: cell.status for cell in run.cells}
    assert statuses == {f"{FAULTS}:raises": "failed", "mlp": "ok"}
    (failed,) = [cell for cell in run.cells if cell.status == "failed"]
    assert failed.error is not None
    assert "raised RuntimeError when called with preset 'tiny': the user's factory is broken" in failed.error.message


@pytest.mark.slow
def test_a_cell_far_slower_than_its_budget_keeps_its_budget_and_what_fits(tmp_path: Path) -> None:
    """Every call takes 3 s, the budget is 1 s: warmup plus sampling end within 1 s plus one call,
    one sample is kept, the cell is recorded as too few samples with its intervals withheld, exit 0."""
    from tests.harness.fault_workloads import SLOW_CALL_S

    started = time.monotonic()
    result = cli(
        "run", "--workload", f"{FAULTS}:three_second_call", "--dtype", "fp32", "--max-time", "1", "--quiet",
        "--output", str(tmp_path),
    )  # fmt: skip
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    (cell,) = load(run_files(tmp_path)[0]).cells
    measured = cell.measurement
    assert measured is not None
    sampling = measured.sampling
    # Preparation (the reference and the correctness call) is timed apart; the budget holds the rest.
    assert sampling.warmup_s + sampling.elapsed_s <= 1.0 + SLOW_CALL_S * 1.2
    assert len(measured.samples_ns) >= 1
    assert sampling.too_few is not None and "--min-samples" in sampling.too_few
    assert not measured.validity.valid
    assert any("too few samples" in reason for reason in measured.validity.reasons)
    assert all(iv.method == "withheld" for iv in measured.latency_ns.intervals.values())
    assert measured.latency_ns.ci == {}
    assert wall < 60  # the run was never held to the 30 s grace or ended by the watchdog

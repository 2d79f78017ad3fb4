"""File systems that misbehave for real: a tmpfs that fills, a read-only tmpfs, a read-only bind
mount, each mounted in a private mount namespace of its own (``unshare --mount``), so nothing
outside the test ever sees it and nothing is left mounted when it ends, even if it is killed.

``in_private_mounts(scenario, ...)`` runs this module as a script inside the namespace; the
script mounts, runs the real CLI in a subprocess, provokes the fault, and writes what a test needs
(exit code, stderr, the folder's listing, the run file's text) as JSON into a folder on the host's
file system. Mounting needs root (or a user namespace with ``unshare --map-root-user``): where it
is denied, the test fails with the reason, never skips, so CI cannot pass without the fault.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.cli import REPO_ROOT, cli_command, cli_env

__all__ = ["in_private_mounts"]

#: The run every disk scenario measures: four short cells of the tiny MLP, in this process.
RUN_ARGS = (
    "run", "--workload", "mlp", "--preset", "tiny", "--dtype", "fp32", "--dtype", "bf16",
    "--batch-size", "1", "--batch-size", "2", "--max-time", "1.5", "--no-isolate", "--quiet",
)  # fmt: skip


def in_private_mounts(scenario: str, report: Path, timeout: float = 300) -> dict[str, Any]:
    """Run ``scenario`` in a private mount namespace; what it saw (see ``_report``)."""
    if shutil.which("unshare") is None:
        raise AssertionError("these fault tests need util-linux's unshare(1) to mount a file system of their own")
    report.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-m", __name__, scenario, str(report)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=cli_env(drop_prefix="AWS_"),
    )
    found = report / "report.json"
    assert done.returncode == 0 and found.exists(), (
        f"the {scenario!r} scenario could not run in a private mount namespace (mounting needs root): "
        f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"
    )
    data: dict[str, Any] = json.loads(found.read_text())
    return data


# -- inside the namespace ---------------------------------------------------------------------------
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _report(report: Path, folder: Path, done: subprocess.Popen[str], stdout: str, stderr: str) -> None:
    runs = sorted(folder.glob("run-*.json")) if folder.is_dir() else []
    (report / "report.json").write_text(
        json.dumps(
            {
                "returncode": done.returncode,
                "stdout": stdout,
                "stderr": stderr,
                "listing": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None,
                "run_files": [p.read_text() for p in runs],
            }
        )
    )


def _cells_saved(folder: Path) -> int:
    for path in folder.glob("run-*.json"):
        try:
            return len(json.loads(path.read_text())["cells"])
        except (ValueError, OSError):
            return 0
    return 0


class _Filler:
    """Another writer on the same disk: fills it, and keeps taking whatever room is given back."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "filler"
        self.stop = threading.Event()
        self.full = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        chunk = b"\0" * 4096
        with self.path.open("ab", buffering=0) as handle:
            while not self.stop.is_set():
                try:
                    handle.write(chunk)
                except OSError:
                    self.full.set()
                    time.sleep(0.002)


def _fills_after_first_cell(report: Path, root: Path) -> None:
    """A 1 MiB tmpfs: room for the run file and a cell or two, not for a megabyte of slack; after
    the first cell is saved another writer fills it and keeps it full."""
    disk = root / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk))
    runner = subprocess.Popen(
        cli_command(*RUN_ARGS, "--output", str(disk)),
        cwd=REPO_ROOT,
        env=cli_env(drop_prefix="AWS_"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    filler = _Filler(disk)
    deadline = time.monotonic() + 240
    while _cells_saved(disk) < 1 and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    filler.thread.start()
    filler.full.wait(30)
    stdout, stderr = runner.communicate(timeout=240)
    filler.stop.set()
    filler.thread.join(5)
    _report(report, disk, runner, stdout, stderr)


def _read_only(report: Path, root: Path, how: str) -> None:
    """``--output`` on a read-only file system: a read-only tmpfs, or a read-only bind mount of a
    writable folder (the folder exists and is empty, so only the mount refuses)."""
    disk = root / "disk"
    disk.mkdir()
    if how == "tmpfs":
        _mount("-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(disk))
    else:
        source = root / "source"
        source.mkdir()
        _mount("--bind", str(source), str(disk))
        _mount("-o", "remount,bind,ro", str(disk))
    runner = subprocess.Popen(
        cli_command(*RUN_ARGS, "--output", str(disk)),
        cwd=REPO_ROOT,
        env=cli_env(drop_prefix="AWS_"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = runner.communicate(timeout=240)
    _report(report, disk, runner, stdout, stderr)


def main(argv: list[str]) -> int:
    scenario, report = argv[0], Path(argv[1])
    with tempfile.TemporaryDirectory(prefix="siliconbench-mounts-") as scratch:
        root = Path(scratch)
        if scenario == "fills-after-first-cell":
            _fills_after_first_cell(report, root)
        elif scenario in ("read-only-tmpfs", "read-only-bind"):
            _read_only(report, root, scenario.rsplit("-", 1)[1])
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
        for mounted in (root / "disk",):
            subprocess.run(["umount", "-l", str(mounted)], check=False)  # the namespace dies with us anyway
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main(sys.argv[1:]))

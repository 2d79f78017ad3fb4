"""The Python half of ``scripts/gpu-check.sh``: probes, checks and the one-page summary.

Each subcommand is one step of the shell script, kept here so it can be tested and type-checked:

- ``probe``: is there a GPU the cuda backend can use? One line, ``available<TAB>device`` or
  ``unavailable<TAB>reason`` (the backend's own reason, so a skip says why).
- ``matrix``: the run stage's cells, checked against the cuda backend's dtypes and modes and the
  workload registry without a GPU (the CLI checks those only once the backend is available).
- ``imports``: import every module of the packages siliconbench installs; with ``--under DIR``,
  each package must come from there (the installed wheel, not this checkout).
- ``wheel-fresh WHEEL``: the wheel's files are byte-for-byte this checkout's (a stale wheel would
  test code that is not the one under review).
- ``pip-check``: read ``pip check`` output; fail only on lines about what we carried, since the
  image's own packages may disagree among themselves for reasons that are not ours.
- ``summary``: write ``summary.md`` from the stage table and whatever the stages left behind;
  run after every stage, so a run cut short still says what was done.

Standard library only, and never imports torch: the summary must be written even where torch
is broken.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib
import json
import pkgutil
import re
import sys
import traceback
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "backends", "workloads")

#: The stages of gpu-check.sh, in order; the summary lists every one, run or not.
STAGES = ("install", "imports", "device", "benchmark", "run", "report", "pytest")


# ---------------------------------------------------------------------------------------------
# probe


def probe() -> tuple[bool, str]:
    """(available, device description or the reason there is none)."""
    from backends.cuda import CudaBackend

    status = CudaBackend().availability()
    if not status.available:
        return False, status.reason
    import torch

    props = torch.cuda.get_device_properties(0)
    count = torch.cuda.device_count()
    return True, (
        f"{count} x {props.name} (cc {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB, "
        f"{props.multi_processor_count} SMs); torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"Python {sys.version.split()[0]}"
    )


# ---------------------------------------------------------------------------------------------
# matrix


def check_matrix(
    workloads: Sequence[str], batch_sizes: Sequence[int], dtypes: Sequence[str], modes: Sequence[str]
) -> int:
    """The number of cuda cells in the matrix; ConfigError (or UnknownNameError) when one is invalid."""
    from backends.base import BackendOptions
    from backends.cuda import CudaBackend
    from harness.errors import ConfigError
    from workloads.registry import resolve

    if not (workloads and batch_sizes and dtypes and modes):
        raise ConfigError("the run needs at least one workload, batch size, dtype and mode")
    for batch in batch_sizes:
        if batch < 1:
            raise ConfigError(f"batch sizes must be 1 or more, got {batch}")
    backend = CudaBackend()
    for dtype in dtypes:
        for mode in modes:
            backend.validate(BackendOptions(dtype=dtype, mode=mode))
    for name in workloads:
        resolve(name, None)
    return len(workloads) * len(batch_sizes) * len(dtypes) * len(modes)


# ---------------------------------------------------------------------------------------------
# imports


def import_everything(under: Path | None) -> list[str]:
    """Import every module of PACKAGES; the failures, one line each (empty when all import)."""
    failures: list[str] = []
    count = 0
    for package_name in PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except Exception as exc:
            failures.append(f"{package_name}: {type(exc).__name__}: {exc}")
            continue
        origin = Path(package.__file__ or "").resolve().parent
        print(f"{package_name} from {origin}")
        if under is not None and not origin.is_relative_to(under.resolve()):
            failures.append(f"{package_name} was imported from {origin}, not from the install in {under}")
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if module.name.endswith(".__main__"):
                continue  # running it is the CLI itself; `siliconbench --help` checks that
            try:
                importlib.import_module(module.name)
                count += 1
            except Exception as exc:
                last = traceback.format_exception_only(exc)[-1].strip()
                failures.append(f"{module.name}: {last}")
    print(f"imported {count} modules of {', '.join(PACKAGES)}; {len(failures)} failed")
    return failures


# ---------------------------------------------------------------------------------------------
# wheel-fresh


def _record_hash(data: bytes) -> str:
    """A wheel RECORD's hash of some bytes: sha256, urlsafe base64 without padding (PEP 376/427)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def stale_files(wheel: Path, root: Path = REPO_ROOT) -> list[str]:
    """Files of the checkout's packages that the wheel lacks or holds in another version."""
    with zipfile.ZipFile(wheel) as archive:
        record_name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        rows = csv.reader(archive.read(record_name).decode().splitlines())
        in_wheel = {path: digest for path, digest, *_ in rows if digest}
    differ: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or "__pycache__" in relative:
                continue
            wanted = in_wheel.pop(relative, None)
            if wanted is None:
                if path.suffix == ".py":
                    differ.append(f"{relative}: not in the wheel")
            elif wanted != _record_hash(path.read_bytes()):
                differ.append(f"{relative}: differs from the wheel's")
    differ.extend(f"{p}: in the wheel, not in the checkout" for p in in_wheel if p.split("/")[0] in PACKAGES)
    return differ


# ---------------------------------------------------------------------------------------------
# pip-check


def _project(wheel_name: str) -> str:
    return re.sub(r"[-_.]+", "-", wheel_name.split("-")[0]).lower()


def ours_in_pip_check(output: str, wheels: Iterable[Path]) -> tuple[list[str], list[str]]:
    """Split ``pip check`` lines into (about the carried wheels, about the image alone)."""
    carried = {_project(w.name) for w in wheels}
    ours: list[str] = []
    theirs: list[str] = []
    for line in output.splitlines():
        if not line.strip() or line.startswith("No broken requirements"):
            continue
        named = {re.sub(r"[-_.]+", "-", word).lower() for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)}
        (ours if named & carried else theirs).append(line)
    return ours, theirs


# ---------------------------------------------------------------------------------------------
# summary


@dataclass(frozen=True)
class Stage:
    """One row of the stage table that gpu-check.sh appends to as it goes."""

    name: str
    result: str
    seconds: float
    detail: str


def read_stages(path: Path) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, result, seconds, detail = ([*line.split("\t", 3), "", "", ""])[:4]
            stages[name] = Stage(name, result, float(seconds or 0), detail)
    return stages


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _num(value: Any, fmt: str = ".4g") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "—"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return lines


def benchmark_section(bench: dict[str, Any] | None) -> list[str]:
    if not bench:
        return ["No figures: the benchmark stage left none (see benchmark.log)."]
    lines = [
        "mlp TFLOP/s (harness cell, CUDA events) against a bare chain of matmuls of the same shapes:",
        "",
    ]
    lines += _table(
        ["dtype", "batch", "mlp TFLOP/s", "matmul TFLOP/s", "% of matmul", "J/inference", "correct"],
        (
            [
                str(r.get("dtype")),
                str(r.get("batch_size")),
                _num(r.get("mlp_tflops"), ".1f"),
                _num(r.get("matmul_tflops"), ".1f"),
                _num(100 * r["mlp_over_matmul"] if isinstance(r.get("mlp_over_matmul"), float) else None, ".0f"),
                _num(r.get("energy_j_per_inference"), ".3g")
                if r.get("energy_j_per_inference") is not None or not r.get("energy_reason")
                else f"— ({r['energy_reason']})",
                str(r.get("correct")),
            ]
            for r in bench.get("throughput", [])
        ),
    )
    lines += ["", "Per-call latency: CUDA events and host clock (harness) against blocked_autorange:", ""]
    lines += _table(
        ["dtype", "batch", "events p50 ms", "host p50 ms", "blocked_autorange ms", "events / blocked"],
        (
            [
                str(r.get("dtype")),
                str(r.get("batch_size")),
                _num(r.get("events_p50_ms")),
                _num(r.get("host_p50_ms")),
                _num(r.get("blocked_autorange_median_ms")),
                _num(r.get("events_over_blocked"), ".3f"),
            ]
            for r in bench.get("latency", [])
        ),
    )
    return lines


def run_section(run: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The run's cells as a table, and one line per failed cell."""
    if not run:
        return ["No run file: the run stage left none (see run.log)."], []
    rows: list[list[str]] = []
    failures: list[str] = []
    for cell in run.get("cells", []):
        config = cell.get("config", {})
        key = [str(config.get(k)) for k in ("workload", "batch_size", "dtype", "mode")]
        if cell.get("status") != "ok":
            error = cell.get("error") or {}
            failures.append(f"run: {' '.join(key)}: {error.get('phase')}: {error.get('type')}: {error.get('message')}")
            rows.append([*key, "FAILED", "—", "—", "—", "—"])
            continue
        # Run-file schema 2 keeps what was measured under "measurement"; schema 1 kept it flat.
        measured = cell.get("measurement") or cell
        latency = measured.get("latency_ns") or {}
        energy = measured.get("energy") or {}
        flops = measured.get("flops_per_s")
        rows.append(
            [
                *key,
                "ok" if (measured.get("correctness") or {}).get("passed", True) else "ok, INCORRECT",
                _num(latency["p50"] / 1e6 if isinstance(latency.get("p50"), int | float) else None),
                _num(measured.get("throughput_per_s"), ".4g"),
                _num(flops / 1e12 if isinstance(flops, int | float) else None, ".3g"),
                _num(energy.get("joules_per_inference"), ".3g") if energy else "—",
            ]
        )
    lines = [f"{len(rows)} cells, {len(failures)} failed:", ""]
    lines += _table(["workload", "batch", "dtype", "mode", "status", "p50 ms", "inf/s", "TFLOP/s", "J/inf"], rows)
    return lines, failures


def pytest_failures(log: Path) -> list[str]:
    """pytest's FAILED and ERROR lines, from its short summary or its verbose progress."""
    if not log.exists():
        return []
    found: list[str] = []
    seen: set[str] = set()
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"^(?:\[gw\d+\] (?:\[\s*\d+%\] )?)?(FAILED|ERROR) (\S+)(.*)$", line.strip())
        if match and match.group(2) not in seen:
            seen.add(match.group(2))
            found.append(f"pytest: {match.group(1)} {match.group(2)}{match.group(3)}")
    return found


def write_summary(work: Path, out: Path, source: str) -> Path:
    stages = read_stages(work / "stages.tsv")
    device = stages.get("device")
    lines = [
        "# siliconbench GPU check",
        "",
        f"- written: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"- device: {device.detail if device else 'not probed yet'}",
        f"- source: {source}",
        "",
        "## Stages",
        "",
    ]
    lines += _table(
        ["stage", "result", "seconds", "detail"],
        (
            [name, s.result, f"{s.seconds:.0f}", s.detail]
            if (s := stages.get(name))
            else [name, "not run", "—", "the check ended before this stage"]
            for name in STAGES
        ),
    )
    lines += ["", "## Figures (benchmarks/cuda_mlp_tflops.py)", ""]
    lines += benchmark_section(_load_json(out / "benchmark.json"))
    run_lines, run_failures = run_section(_load_json(out / "run.json"))
    lines += ["", "## siliconbench run --backend cuda", "", *run_lines]
    failures = [f"{s.name}: {s.result}: {s.detail}" for s in stages.values() if s.result in {"failed", "timed out"}]
    failures += pytest_failures(out / "pytest.log") + run_failures
    lines += ["", "## Failures", ""]
    lines += [f"- {f}" for f in failures] or ["none"]
    summary = out / "summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return summary


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("probe", help="one line: available<TAB>device, or unavailable<TAB>reason")
    matrix = commands.add_parser("matrix", help="check the run stage's cells without a GPU")
    matrix.add_argument("--workload", action="append", default=[])
    matrix.add_argument("--batch-size", type=int, action="append", default=[])
    matrix.add_argument("--dtype", action="append", default=[])
    matrix.add_argument("--mode", action="append", default=[])
    imports = commands.add_parser("imports", help="import every module siliconbench installs")
    imports.add_argument("--under", type=Path, help="each package must be imported from under this folder")
    fresh = commands.add_parser("wheel-fresh", help="the wheel holds exactly this checkout's package files")
    fresh.add_argument("wheel", type=Path)
    pip_check = commands.add_parser("pip-check", help="read `pip check` output on stdin")
    pip_check.add_argument("wheels", type=Path, nargs="*", help="the carried wheels")
    summary = commands.add_parser("summary", help="write OUT/summary.md")
    summary.add_argument("--work", type=Path, required=True, help="the check's scratch folder (stages.tsv)")
    summary.add_argument("--out", type=Path, required=True, help="the output folder")
    summary.add_argument("--source", default="unknown", help="what was checked (commit, wheel)")
    args = parser.parse_args(argv)

    if args.command == "probe":
        available, text = probe()
        print(f"{'available' if available else 'unavailable'}\t{' '.join(text.split())}")
        return 0
    if args.command == "matrix":
        from harness.errors import SiliconbenchError

        try:
            count = check_matrix(args.workload, args.batch_size, args.dtype, args.mode)
        except SiliconbenchError as exc:
            print(f"gpu_check: the run's cells are not valid for the cuda backend: {exc}", file=sys.stderr)
            return 2
        print(f"{count} cuda cells, each valid for the cuda backend")
        return 0
    if args.command == "imports":
        failures = import_everything(args.under)
        for failure in failures:
            print(f"import failed: {failure}", file=sys.stderr)
        return 1 if failures else 0
    if args.command == "wheel-fresh":
        differ = stale_files(args.wheel)
        for line in differ:
            print(f"stale wheel: {line}", file=sys.stderr)
        if differ:
            print(f"{args.wheel.name} is not this checkout: rebuild it with scripts/gpu-wheels.sh", file=sys.stderr)
            return 1
        print(f"{args.wheel.name} matches this checkout file for file")
        return 0
    if args.command == "pip-check":
        ours, theirs = ours_in_pip_check(sys.stdin.read(), args.wheels)
        for line in theirs:
            print(f"pip check, the image's own (not ours): {line}")
        for line in ours:
            print(f"pip check, about what we carried: {line}", file=sys.stderr)
        return 1 if ours else 0
    print(write_summary(args.work, args.out, args.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""scripts/gpu-check.sh on this machine (no GPU), and the pieces of its Python half.

The whole script runs here the way CI runs it, without the install step: every GPU stage must be
reported skipped with the cuda backend's reason, and each GPU command must itself refuse for that
reason, so a broken command line in the script fails here rather than on a lent GPU.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backends.cuda import CudaBackend
from harness.errors import ConfigError, UnknownNameError
from scripts.gpu_check import (
    STAGES,
    check_matrix,
    import_everything,
    ours_in_pip_check,
    pytest_failures,
    read_stages,
    stale_files,
    write_summary,
)
from tests.conftest import REPO_ROOT, CliRunner, cli_env

SCRIPT = REPO_ROOT / "scripts" / "gpu-check.sh"
OUTPUTS = {
    "summary.md",
    "check.log",
    "benchmark.log",
    "benchmark.json",
    "run.log",
    "run.json",
    "report.html",
    "pytest.log",
}
STATUS = CudaBackend().availability()
no_gpu_here = pytest.mark.skipif(STATUS.available, reason="this machine has a GPU: the check would really run")


def run_check(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args, str(out)],
        capture_output=True,
        text=True,
        timeout=280,
        env=cli_env({"PYTHON": sys.executable, **(env or {})}),
    )


def stage_table(summary: str) -> dict[str, tuple[str, str]]:
    """stage -> (result, detail), from summary.md's stage table."""
    rows = re.findall(r"^\| (\w+) \| ([\w ]+) \| [\d—]+ \| (.*) \|$", summary, flags=re.MULTILINE)
    return {name: (result, detail) for name, result, detail in rows if name in STAGES}


@no_gpu_here
@pytest.mark.slow
def test_without_a_gpu_every_gpu_stage_is_skipped_with_the_reason(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_check(out, "--no-install")
    assert done.returncode == 0, done.stdout + done.stderr
    files = {p.name for p in out.iterdir()}
    assert files <= OUTPUTS and len(files) <= 8
    assert all(p.is_file() for p in out.iterdir())
    stages = stage_table((out / "summary.md").read_text())
    assert list(stages) == list(STAGES)
    assert stages["install"] == ("skipped", "--no-install: this interpreter's environment and this checkout")
    assert stages["imports"][0] == "passed"
    assert re.match(r"imported \d{2,} modules of harness, backends, workloads; 0 failed", stages["imports"][1])
    for stage in ("device", "benchmark", "run", "report", "pytest"):
        result, detail = stages[stage]
        assert result == "skipped", (stage, detail)
        assert STATUS.reason in detail, (stage, detail)
    for stage in ("benchmark", "run"):
        assert stages[stage][1].endswith("(the command said so itself, exit 2)")
    collected = re.match(r"no GPU: (\d+) gpu tests collected, each skipped for: ", stages["pytest"][1])
    assert collected and int(collected.group(1)) >= 20
    assert "## Failures\n\nnone" in (out / "summary.md").read_text()


@no_gpu_here
@pytest.mark.slow
def test_a_broken_gpu_command_line_fails_even_without_a_gpu(tmp_path: Path) -> None:
    """A sampling budget the CLI refuses is exit 2 too, but not for the missing GPU: a failure."""
    out = tmp_path / "out"
    done = run_check(out, "--no-install", "--require-gpu", "--skip=pytest", env={"GPU_CHECK_MAX_TIME": "-1"})
    assert done.returncode == 1
    stages = stage_table((out / "summary.md").read_text())
    assert stages["device"] == ("failed", f"no GPU, and --require-gpu: {STATUS.reason}")
    assert stages["run"] == ("failed", "expected exit 2 naming the missing GPU, got exit 2 (see run.log)")
    assert "argument --max-time: must be positive" in (out / "run.log").read_text()
    assert stages["pytest"] == ("skipped", "--skip=pytest")


@no_gpu_here
@pytest.mark.slow
def test_an_invalid_run_matrix_fails_without_a_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_check(out, "--no-install", "--skip=benchmark,pytest", env={"GPU_CHECK_LARGE_BATCH": "0"})
    assert done.returncode == 1
    stages = stage_table((out / "summary.md").read_text())
    assert stages["run"] == (
        "failed",
        "gpu_check: the run's cells are not valid for the cuda backend: batch sizes must be 1 or more, got 0",
    )


def test_the_run_matrix_is_checked_against_the_cuda_backend_without_a_gpu() -> None:
    cells = (["mlp", "resnet50", "bert-base"], [1, 64], ["bf16", "fp32"], ["eager", "cudagraph"])
    assert check_matrix(*cells) == 24
    with pytest.raises(ConfigError, match="does not support mode 'cudagrap'; use one of: eager, compile"):
        check_matrix(["mlp"], [1], ["bf16"], ["cudagrap"])
    with pytest.raises(ConfigError, match="does not support dtype 'bf17'"):
        check_matrix(["mlp"], [1], ["bf17"], ["eager"])
    with pytest.raises(UnknownNameError, match="unknown workload 'bert'"):
        check_matrix(["bert"], [1], ["bf16"], ["eager"])
    with pytest.raises(ConfigError, match="at least one workload"):
        check_matrix([], [1], ["bf16"], ["eager"])


@no_gpu_here
@pytest.mark.slow
def test_the_install_stage_installs_the_wheel_beside_this_environment(tmp_path: Path) -> None:
    """The install step on this machine, with siliconbench's wheel alone (the others are for 3.12)."""
    wheels = tmp_path / "wheels"
    build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(REPO_ROOT)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build],
        check=True,
        capture_output=True,
        timeout=240,
        cwd=tmp_path,
    )
    out = tmp_path / "out"
    done = run_check(out, env={"GPU_CHECK_WHEELS": str(wheels), "GPU_CHECK_BUDGET": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    stages = stage_table((out / "summary.md").read_text())
    assert stages["install"][0] == "passed", stages["install"]
    assert stages["imports"][0] == "passed", stages["imports"]
    log = (out / "check.log").read_text()
    assert re.search(r"^harness from /\S+/site/harness$", log, flags=re.MULTILINE)
    assert "matches this checkout file for file" in log


def test_the_output_folder_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    done = run_check(tmp_path, "--no-install")
    assert done.returncode == 2
    assert done.stderr.strip() == f"gpu-check: {tmp_path} is not empty; give an empty or new folder"


@pytest.mark.parametrize("option", ["--gpu", "--skip=install", "--skip=run,bench"])
def test_an_unknown_option_is_refused_with_the_usage(tmp_path: Path, option: str) -> None:
    done = run_check(tmp_path, option)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: bash scripts/gpu-check.sh")


def _wheel_of(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A wheel whose RECORD hashes ``files`` the way pip writes it."""
    wheel = tmp_path / "siliconbench-0.1.0-py3-none-any.whl"
    rows = []
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{name},sha256={digest},{len(data)}")
        archive.writestr("siliconbench-0.1.0.dist-info/RECORD", "\n".join(rows) + "\n")
    return wheel


def test_a_stale_wheel_is_told_apart_from_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for package in ("harness", "backends", "workloads"):
        (checkout / package).mkdir(parents=True)
        (checkout / package / "__init__.py").write_text(f'"""{package}"""\n')
    (checkout / "harness" / "new.py").write_text("X = 1\n")
    files = {f"{p}/__init__.py": f'"""{p}"""\n'.encode() for p in ("harness", "backends", "workloads")}
    same = _wheel_of(tmp_path, {**files, "harness/new.py": b"X = 1\n"})
    assert stale_files(same, checkout) == []
    stale = _wheel_of(tmp_path, {**files, "harness/new.py": b"X = 2\n", "workloads/gone.py": b""})
    assert stale_files(stale, checkout) == [
        "harness/new.py: differs from the wheel's",
        "workloads/gone.py: in the wheel, not in the checkout",
    ]
    del files["backends/__init__.py"]
    assert stale_files(_wheel_of(tmp_path, {**files, "harness/new.py": b"X = 1\n"}), checkout) == [
        "backends/__init__.py: not in the wheel"
    ]


def test_pip_check_blames_only_lines_about_what_we_carried() -> None:
    output = (
        "siliconbench 0.1.0 requires jsonschema, which is not installed.\n"
        "onnx-ir 1.0.0 has requirement numpy<2.5, but you have numpy 2.5.2.\n"
        "referencing 0.37.0 has requirement attrs>=22.2.0, but you have attrs 21.4.0.\n"
    )
    wheels = [Path("siliconbench-0.1.0-py3-none-any.whl"), Path("referencing-0.37.0-py3-none-any.whl")]
    ours, theirs = ours_in_pip_check(output, wheels)
    assert ours == [output.splitlines()[0], output.splitlines()[2]]
    assert theirs == [output.splitlines()[1]]
    assert ours_in_pip_check("No broken requirements found.\n", wheels) == ([], [])


def test_every_module_of_the_packages_imports_here() -> None:
    assert import_everything(None) == []


def test_pytest_failures_from_xdist_progress_and_the_short_summary(tmp_path: Path) -> None:
    log = tmp_path / "pytest.log"
    log.write_text(
        "[gw1] [ 40%] FAILED tests/backends/test_cuda_gpu.py::test_x[bf16-eager]\n"
        "[gw0] [ 50%] PASSED tests/backends/test_cuda_gpu.py::test_y\n"
        "FAILED tests/backends/test_cuda_gpu.py::test_x[bf16-eager] - AssertionError: tol\n"
        "ERROR tests/backends/test_cuda_gpu.py::test_z - RuntimeError: CUDA error\n"
    )
    assert pytest_failures(log) == [
        "pytest: FAILED tests/backends/test_cuda_gpu.py::test_x[bf16-eager]",
        "pytest: ERROR tests/backends/test_cuda_gpu.py::test_z - RuntimeError: CUDA error",
    ]


def test_the_summary_carries_stages_figures_cells_and_failures(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    (work / "stages.tsv").write_text(
        "install\tpassed\t4\t5 wheels\ndevice\tpassed\t2\t1 x NVIDIA H200\nbenchmark\tpassed\t31\tfigures below\n"
        "run\tfailed\t90\texit 1: 3 cells, 1 failed (see run.log)\n"
    )
    bench = {
        "throughput": [
            {
                "dtype": "bf16",
                "batch_size": 16384,
                "mlp_tflops": 612.3,
                "matmul_tflops": 701.9,
                "mlp_over_matmul": 612.3 / 701.9,
                "energy_j_per_inference": 0.00021,
                "correct": True,
            }
        ],
        "latency": [
            {
                "dtype": "bf16",
                "batch_size": 1,
                "events_p50_ms": 0.051,
                "host_p50_ms": 0.062,
                "blocked_autorange_median_ms": 0.040,
                "events_over_blocked": 1.275,
            }
        ],
    }
    (out / "benchmark.json").write_text(json.dumps(bench))
    measured = {
        "correctness": {"passed": True},
        "latency_ns": {"p50": 52_000},
        "throughput_per_s": 19_230.0,
        "flops_per_s": 3.2e12,
        "energy": {"joules_per_inference": 0.0011, "reason": None},
    }
    cells = [
        # run-file schema 2: the measurement under its own key; schema 1: flat in the cell
        {
            "config": {"workload": "mlp", "batch_size": 1, "dtype": "bf16", "mode": "cudagraph"},
            "status": "ok",
            "measurement": measured,
        },
        {
            "config": {"workload": "mlp", "batch_size": 64, "dtype": "bf16", "mode": "eager"},
            "status": "ok",
            **measured,
        },
        {
            "config": {"workload": "bert-base", "batch_size": 64, "dtype": "fp32", "mode": "eager"},
            "status": "failed",
            "error": {"phase": "measure", "type": "OutOfMemoryError", "message": "CUDA out of memory"},
        },
    ]
    (out / "run.json").write_text(json.dumps({"cells": cells}))
    (out / "pytest.log").write_text("FAILED tests/backends/test_cuda_gpu.py::test_z - boom\n")
    summary = write_summary(work, out, "siliconbench wheel of abc123").read_text()

    stages = stage_table(summary)
    assert stages["run"] == ("failed", "exit 1: 3 cells, 1 failed (see run.log)")
    assert stages["pytest"] == ("not run", "the check ended before this stage")
    assert "- device: 1 x NVIDIA H200" in summary
    assert "| bf16 | 16384 | 612.3 | 701.9 | 87 | 0.00021 | True |" in summary
    assert "| bf16 | 1 | 0.051 | 0.062 | 0.04 | 1.275 |" in summary
    assert "| mlp | 1 | bf16 | cudagraph | ok | 0.052 | 1.923e+04 | 3.2 | 0.0011 |" in summary
    assert "| mlp | 64 | bf16 | eager | ok | 0.052 | 1.923e+04 | 3.2 | 0.0011 |" in summary
    assert "3 cells, 1 failed:" in summary
    assert "- run: bert-base 64 fp32 eager: measure: OutOfMemoryError: CUDA out of memory" in summary
    assert "- pytest: FAILED tests/backends/test_cuda_gpu.py::test_z - boom" in summary
    assert "- run: failed: exit 1: 3 cells, 1 failed (see run.log)" in summary


def test_stage_rows_tolerate_an_empty_detail(tmp_path: Path) -> None:
    (tmp_path / "stages.tsv").write_text("imports\tpassed\t3\t\n")
    assert read_stages(tmp_path / "stages.tsv")["imports"].detail == ""


def test_the_script_is_executable_bash_that_parses() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, timeout=30).returncode == 0


def test_the_readme_gives_the_device_call_with_options_the_script_takes() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    command = re.search(r"\| `command` \| `(bash scripts/gpu-check\.sh [^`]+)` \|", readme)
    assert command, "README: the device call's command row is missing"
    assert '| `carry` | `[".whl"]` |' in readme
    usage = SCRIPT.read_text().split("usage: bash scripts/gpu-check.sh", 1)[1].split("\n", 1)[0]
    for option in re.findall(r"--[a-z-]+", command.group(1)):
        assert f"[{option}" in usage, option


@pytest.mark.slow
def test_the_summary_reads_a_run_file_this_checkout_writes(tmp_path: Path, run_cli: CliRunner) -> None:
    """Not a hand-made file: the run file's layout is whatever this version's CLI writes."""
    results, work, out = tmp_path / "results", tmp_path / "work", tmp_path / "out"
    done = run_cli(
        "run", "--workload", "mlp", "--preset", "tiny", "--batch-size", "2", "--dtype", "fp32",
        "--max-time", "0.2", "--quiet", "--output", str(results),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (written,) = results.glob("run-*.json")
    work.mkdir()
    out.mkdir()
    (out / "run.json").write_bytes(written.read_bytes())
    summary = write_summary(work, out, "test").read_text()
    row = re.search(
        r"^\| mlp \| 2 \| fp32 \| eager \| ok \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", summary, re.M
    )
    assert row, summary
    p50_ms, per_s, tflops, _ = (cell.strip() for cell in row.groups())
    assert float(p50_ms) > 0 and float(per_s) > 0 and float(tflops) > 0

"""``siliconbench run`` end to end: measuring into a run file, suite files, failed cells, scenarios,
``--processes``, prices recorded, and bad input answered in one line before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.runfile.files import load_run
from tests.cli import CliRunner, one_line_error

#: The no-GPU answers, seen only where no GPU is visible.
NO_GPU = pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has a GPU; the no-GPU answers cannot be seen here"
)


@pytest.mark.slow
def test_run_measures_writes_a_run_file_and_prints_the_table(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--workload",
        "mlp",
        "--workload",
        "tests.workloads.plugin_fixtures:scale",
        "--preset",
        "tiny",
        "--batch-size",
        "1",
        "--batch-size",
        "4",
        "--dtype",
        "fp32",
        "--max-time",
        "0.3",
        "--threads",
        "1",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("run-*.json")
    assert f"run file: {path}" in result.stdout
    assert "p50 ms [95% CI]" in result.stdout
    assert "[4/4]" in result.stderr  # progress
    data = load_run(path)
    assert data.status == "complete"
    assert [c.config.batch_size for c in data.cells] == [1, 4, 1, 4]
    assert all(c.status == "ok" for c in data.cells)
    assert data.environment.command[-1] == str(tmp_path)

    for fmt, marker in (("table", "p50 ms"), ("markdown", "| workload"), ("csv", "run_id,")):
        report = run_cli("report", str(path), "--format", fmt)
        assert report.returncode == 0, report.stderr
        assert marker in report.stdout
    rows = json.loads(run_cli("report", str(path), "--format", "json").stdout)
    assert len(rows) == 4 and rows[0]["p50_ms"] > 0


@pytest.mark.slow
def test_a_suite_file_runs_with_command_line_overrides(run_cli: CliRunner, tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'workloads = ["mlp"]\npreset = "tiny"\ndtypes = ["fp32", "bf16"]\nbatch_sizes = [2]\n'
        "max_time = 0.2\nthreads = 1\n"
    )
    result = run_cli("run", "--suite", str(suite), "--dtype", "bf16", "--output", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("run-*.json")
    cells = load_run(path).cells
    assert [(c.config.dtype, c.config.batch_size) for c in cells] == [("bf16", 2)]


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_the_run_goes_on(run_main: CliRunner, tmp_path: Path) -> None:
    result = run_main(
        "run",
        "--workload",
        "tests.workloads.plugin_fixtures:broken",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--max-time",
        "0.2",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "deliberately broken" in result.stdout
    (path,) = tmp_path.glob("run-*.json")
    statuses = [c.status for c in load_run(path).cells]
    assert statuses == ["failed", "ok"]


def test_bad_suite_files_get_one_line(run_main: CliRunner, tmp_path: Path) -> None:
    malformed = tmp_path / "malformed.toml"
    malformed.write_text("workloads = [\n")
    one_line_error(run_main("run", "--suite", str(malformed)), "is not valid TOML")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("workload = 'mlp'\n")
    one_line_error(run_main("run", "--suite", str(unknown)), "unknown key 'workload' in suite file")


def test_an_unwritable_output_path_gets_one_line(run_main: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(
        run_main("run", "--workload", "mlp", "--preset", "tiny", "--output", str(blocker / "sub")),
        "cannot create output folder",
    )


@NO_GPU
def test_a_cuda_run_fails_in_one_line_with_exit_2_and_writes_nothing(run_main: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = run_main("run", "--backend", "cuda", "--workload", "mlp", "--preset", "tiny", "--output", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("siliconbench: error: backend 'cuda' is not available here: ")
    assert not out.exists()


@pytest.mark.slow
def test_run_with_processes_writes_the_between_process_part(run_cli: CliRunner, tmp_path: Path) -> None:
    done = run_cli(
        "run",
        "--workload",
        "mlp",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--batch-size",
        "1",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--max-time",
        "0.3",
        "--processes",
        "2",
        "--output",
        str(tmp_path),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.glob("run-*.json")
    run = load_run(path)
    assert len(run.cells) == 2
    starts = []
    for cell in run.cells:
        assert cell.measurement is not None and cell.measurement.processes is not None
        part = cell.measurement.processes
        assert len(part.medians_ns) == 2 and part.low_ns is not None
        assert len(cell.measurement.samples_ns) == sum(part.counts)
        starts.append(part.started_utc)
    # ABAB: bs1's first process, bs2's first, bs1's second, bs2's second.
    assert starts[0][0] < starts[1][0] < starts[0][1] < starts[1][1]
    assert "between procs" in done.stdout
    # The run measured its ceilings once, before its processes: the roofline of every cell.
    assert any(k.startswith("cpu/-/fp32/t1") for k in run.environment.ceilings)


def test_run_help_documents_every_scenario_option(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("run", "--help")
    assert result.returncode == 0
    for option in (
        "--scenario",
        "--prompt-tokens",
        "--output-tokens",
        "--rate",
        "--slo-p99",
        "--slo-ttft",
        "--slo-tpot",
        "--concurrency",
        "--loadgen",
        "latency|throughput|generate|server|offline",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload", "mlp", "--scenario", "generate"], "needs a decoder workload (llama, gpt2); 'mlp' is not one"),
        (["--workload", "mlp", "--scenario", "server"], "needs --rate"),
        (["--workload", "mlp", "--scenario", "server", "--slo-ttft", "5"], "apply to decoders"),
        (
            ["--workload", "gpt2", "--scenario", "generate", "--prompt-tokens", "1000", "--output-tokens", "100"],
            "exceed gpt2's 1024 positions",
        ),
        (["--workload", "llama", "--scenario", "generate", "--loadgen"], "LoadGen runs the scenarios"),
    ],
)
def test_bad_scenario_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, run_main: CliRunner
) -> None:
    one_line_error(run_main("run", "--preset", "tiny", "--output", str(tmp_path), "--quiet", *args), message)
    assert not list(tmp_path.iterdir())  # validated before any run file was created


def test_bad_scenario_name_is_an_argparse_error(run_main: CliRunner) -> None:
    one_line_error(run_main("run", "--scenario", "batch"), "invalid choice: 'batch'")


@pytest.mark.slow  # two CLI processes: about 10 s on two busy cores
def test_generate_end_to_end_and_report(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        "run",
        "--workload",
        "llama",
        "--preset",
        "tiny",
        "--dtype",
        "fp32",
        "--scenario",
        "generate",
        "--prompt-tokens",
        "8",
        "--output-tokens",
        "4",
        "--max-time",
        "0.2",
        "--min-samples",
        "3",
        "--output",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "scenario: generate" in result.stdout and "TTFT p50 ms" in result.stdout and "out tok/s" in result.stdout
    assert "generate-p8o4 ok: TTFT p50" in result.stderr
    (path,) = tmp_path.glob("run-*.json")
    cell = load_run(path).cells[0]
    assert cell.config.scenario == "generate" and cell.measurement.generation.output_tokens == 4

    report = run_cli("report", str(path), "--format", "csv")
    assert report.returncode == 0, report.stderr
    header, row = report.stdout.splitlines()[:2]
    columns = dict(zip(header.split(","), row.split(","), strict=False))
    assert columns["scenario"] == "generate"
    assert float(columns["output_tokens_per_s"]) == pytest.approx(cell.measurement.output_tokens_per_s)
    assert float(columns["total_tokens_per_s"]) == pytest.approx(cell.measurement.total_tokens_per_s)


def test_a_suite_with_a_bad_or_unknown_price_fails_before_measuring(run_main: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('workloads = ["mlp"]\npreset = "tiny"\noutput = "out"\n[pricing]\nusd_per_hour = -2\n')
    one_line_error(
        run_main("run", "--suite", str(bad), cwd=tmp_path), "'usd_per_hour' must be a finite positive number"
    )
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(
        'workloads = ["mlp"]\npreset = "tiny"\noutput = "out"\n'
        '[pricing]\ninstance_type = "c7i.3xlarge"\nregion = "us-east-1"\n'
    )
    one_line_error(
        run_main("run", "--suite", str(unknown), cwd=tmp_path), "no on-demand price for c7i.3xlarge in us-east-1"
    )
    assert not (tmp_path / "out").exists()  # nothing was started

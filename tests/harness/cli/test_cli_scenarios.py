"""The scenario options on the command line: documented, validated up front, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.runfile.files import load_run


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
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--preset", "tiny", "--output", str(tmp_path), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("siliconbench: error: ") and message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # validated before any run file was created


def test_bad_scenario_name_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--scenario", "batch"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'batch'" in capsys.readouterr().err


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

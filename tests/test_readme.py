"""Docs that run: every Python snippet of the README, and the pytest plugin's documented use.

Each snippet runs as a reader would run it, in a fresh folder: a file the README names (``# path``
on its first line) is written there, a script runs in a subprocess, a benchmark written as a test
runs under the README's own ``pytest`` command line. A snippet this module does not know how to
run fails ``test_every_python_snippet_is_run``, so a new one cannot go unrun.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.runfile.files import load_run
from tests.conftest import REPO_ROOT, CliRunner, cli_env

README = REPO_ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


@dataclass(frozen=True)
class Snippet:
    lang: str
    code: str
    line: int

    @property
    def file_name(self) -> str | None:
        """The file the README says this is (``# mypkg/bench.py``), if it names one."""
        first = self.code.splitlines()[0] if self.code else ""
        match = re.fullmatch(r"# ([\w./-]+\.(?:py|toml))", first)
        return match.group(1) if match else None


def _snippets() -> list[Snippet]:
    text = README.read_text()
    return [Snippet(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def _after(snippet: Snippet, lang: str) -> Snippet:
    """The first ``lang`` snippet after ``snippet``: the command the README gives to run it."""
    return next(s for s in _snippets() if s.line > snippet.line and s.lang == lang)


def _python(kind: str) -> list[Snippet]:
    found = []
    for snippet in _snippets():
        if snippet.lang != "python":
            continue
        if "(siliconbench):" in snippet.code:
            what = "pytest"
        elif snippet.file_name:
            what = "module"
        else:
            what = "script"
        if what == kind:
            found.append(snippet)
    return found


def _write_named_files(folder: Path) -> None:
    for snippet in _snippets():
        if snippet.file_name:
            path = folder / snippet.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(snippet.code)


def test_every_python_snippet_is_run() -> None:
    python = [s for s in _snippets() if s.lang == "python"]
    assert python, "no Python snippets found: has the README's fence syntax changed?"
    assert sorted(s.line for k in ("pytest", "module", "script") for s in _python(k)) == [s.line for s in python]
    assert _python("pytest") and _python("module") and _python("script")


@pytest.mark.slow
@pytest.mark.parametrize("snippet", _python("script"), ids=lambda s: f"README.md:{s.line}")
def test_a_script_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    _write_named_files(tmp_path)
    (tmp_path / "snippet.py").write_text(snippet.code)
    done = subprocess.run(
        [sys.executable, "snippet.py"], capture_output=True, text=True, cwd=tmp_path, env=cli_env(), timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (runfile,) = (tmp_path / "results").glob("run-*.json")
    (cell,) = load_run(runfile).cells
    assert cell.measurement is not None
    assert done.stdout.split() == ["mlp", "1", str(cell.measurement.latency_ns.p50 / 1e6), "ms"]


@pytest.mark.slow
@pytest.mark.parametrize("snippet", _python("module"), ids=lambda s: f"README.md:{s.line}")
def test_a_module_snippet_runs_by_the_command_after_it(snippet: Snippet, run_cli: CliRunner, tmp_path: Path) -> None:
    _write_named_files(tmp_path)
    (command,) = [line for line in _after(snippet, "bash").code.splitlines() if line.startswith("siliconbench ")]
    args = shlex.split(command)[1:]
    # Bounded for a shared CI machine: a short budget, fp32 only (the command's other options as given).
    args += ["--max-time", "0.3", "--min-samples", "5", "--dtype", "fp32", "--output", str(tmp_path / "results")]
    done = run_cli(*args, cwd=tmp_path, env={"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}"})
    assert done.returncode == 0, done.stdout + done.stderr
    (runfile,) = (tmp_path / "results").glob("run-*.json")
    (cell,) = load_run(runfile).cells
    assert cell.status == "ok" and cell.measurement is not None and cell.measurement.correctness.passed


def _run_benchmark_tests(pytester: pytest.Pytester, code: str, args: list[str]) -> pytest.RunResult:
    (pytester.path / "benchmarks").mkdir()
    (pytester.path / "benchmarks" / "test_bench.py").write_text(code)
    return pytester.runpytest_subprocess(*args, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", _python("pytest"), ids=lambda s: f"README.md:{s.line}")
def test_a_benchmark_test_runs_under_the_readme_command(snippet: Snippet, pytester: pytest.Pytester) -> None:
    (command,) = [line for line in _after(snippet, "bash").code.splitlines() if line.startswith("pytest ")]
    result = _run_benchmark_tests(pytester, snippet.code, shlex.split(command)[1:])
    result.assert_outcomes(passed=1)
    (runfile,) = (pytester.path / "results").glob("run-*.json")
    run = load_run(runfile)
    assert run.pricing is not None and run.pricing.usd_per_hour == 0.42
    (cell,) = run.cells
    assert cell.pytest_nodeid == "benchmarks/test_bench.py::test_bert"


def _docstring_example() -> str:
    import harness.pytest_plugin

    doc = harness.pytest_plugin.__doc__ or ""
    block = re.search(r"\n\n((?:    .*\n)+)\n", doc)
    assert block, "the plugin's docstring has no indented example"
    return textwrap.dedent(block.group(1))


@pytest.mark.slow
def test_the_pytest_plugins_docstring_example_runs(pytester: pytest.Pytester) -> None:
    result = _run_benchmark_tests(
        pytester, _docstring_example(), ["-s", "--siliconbench-output", "results", "--siliconbench-max-time", "0.5"]
    )
    result.assert_outcomes(passed=1)
    (runfile,) = (pytester.path / "results").glob("run-*.json")
    (cell,) = load_run(runfile).cells
    assert cell.measurement is not None
    assert f"{cell.measurement.latency_ns.p50 / 1e6} ms" in result.stdout.str()


def test_a_snippet_that_reads_a_cell_as_a_dict_fails() -> None:
    """The bug the README had: a cell is a frozen dataclass, so ``cell["correctness"]`` raises."""
    from tests.harness.runfactory import make_cell, make_run

    (cell,) = make_run([make_cell([1_000_000] * 40)]).cells
    with pytest.raises(TypeError, match="not subscriptable"):
        cell["correctness"]  # type: ignore[index]

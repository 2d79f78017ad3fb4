"""GitHub workflows are checked by actionlint, and CI runs the README's test command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    beside_python = Path(sys.executable).with_name("actionlint")
    found = str(beside_python) if beside_python.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: install the test extra (pip install -e .[test])")
    return found


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    result = subprocess.run(
        [_actionlint(), "-no-color", str(workflow)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """Proof that the check above can fail: an undefined context is an error."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nope.x }}\n")
    result = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_ci_and_the_workflow_run_the_readme_test_command() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/bench.sh" in readme
    assert "bash scripts/test.sh" in (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()


def test_ci_and_the_workflow_run_lint_format_and_strict_types() -> None:
    """The habits a change must pass run in CI, not only when someone remembers them."""
    lint = (REPO_ROOT / "scripts" / "lint.sh").read_text()
    for command in ("ruff check .", "ruff format --check .", "mypy"):
        assert f".venv/bin/python -m {command}\n" in lint, command
    assert "bash scripts/setup.sh" in lint
    assert "bash scripts/lint.sh" in (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/lint.sh" in (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["mypy"]["strict"] is True
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert {d.split(">")[0] for d in dev} >= {"siliconbench[test]", "ruff", "mypy"}
    assert '-e ".[dev]"' in (REPO_ROOT / "scripts" / "setup.sh").read_text()


def test_the_license_file_is_the_license_pyproject_names() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject["license"] == "Apache-2.0" and pyproject["license-files"] == ["LICENSE"]
    text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text

"""Run a GitHub workflow job's ``run:`` steps here, with only what the job installs importable.

A job that installs ``siliconbench --no-deps`` plus a few packages must not need anything else: on
the runner nothing else is there. Our venv holds far more (torch, pydantic, boto3, …), so a test
that merely ran the commands here would pass where the runner fails. ``JobEnvironment`` reads the
job's ``pip install`` lines, takes the dependency closure of what they name from the installed
packages' own metadata (``Requires-Dist``, markers evaluated, no extras: pip installs the same),
and hides every other installed distribution's modules from the job's processes with a
``sitecustomize`` import hook (``blocker.py``), so an import the job cannot satisfy fails here too.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

BLOCKER = Path(__file__).with_name("blocker.py")

__all__ = ["JobEnvironment", "installed_by", "run_steps"]


def installed_by(steps: list[dict[str, Any]]) -> set[str]:
    """The distributions the job's ``pip install`` lines install, dependencies included."""
    wanted: set[str] = set()
    for step in steps:
        for line in step.get("run", "").splitlines():
            words = shlex.split(line)
            if words[:4] != ["python", "-m", "pip", "install"]:
                continue
            no_deps = "--no-deps" in words
            names = [w for w in words[4:] if not w.startswith("-") and w not in {"constraints.txt"}]
            for name in names:
                # "." and ".[extra,…]" are this checkout: the siliconbench project.
                requirement = Requirement("siliconbench" + name[1:] if name.startswith(".") else name)
                if no_deps:
                    wanted.add(canonicalize_name(requirement.name))
                else:
                    wanted |= _closure(requirement.name, frozenset(requirement.extras))
    return wanted


def _closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """``name`` and every distribution pip would install with it (``name[extras]``)."""
    visited: set[tuple[str, frozenset[str]]] = set()
    found: set[str] = set()
    todo = [(name, extras)]
    while todo:
        project, wanted_extras = todo.pop()
        if (canonicalize_name(project), wanted_extras) in visited:
            continue
        visited.add((canonicalize_name(project), wanted_extras))
        try:
            requires = distribution(project).requires or []
        except PackageNotFoundError:
            continue  # an optional dependency not installed here cannot be imported here either
        found.add(canonicalize_name(project))
        contexts = [{"extra": ""}, *({"extra": extra} for extra in wanted_extras)]
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or any(requirement.marker.evaluate(c) for c in contexts):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return found


@dataclass(frozen=True)
class JobEnvironment:
    """The environment variables that make a child process see only ``allowed`` distributions."""

    allowed: frozenset[str]
    folder: Path

    def blocked_modules(self) -> set[str]:
        ours = {"harness", "workloads", "backends", "siliconbench", "tests"}
        blocked = set()
        for module, dists in packages_distributions().items():
            if module in ours or module in sys.stdlib_module_names or module.startswith("_"):
                continue
            if not any(canonicalize_name(d) in self.allowed for d in dists):
                blocked.add(module)
        return blocked

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "sitecustomize.py").write_text(BLOCKER.read_text())
        (self.folder / "blocked.txt").write_text("\n".join(sorted(self.blocked_modules())))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.folder), str(REPO_ROOT)])
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["SILICONBENCH_JOB_BLOCKED"] = str(self.folder / "blocked.txt")
        env.update(extra)
        return env


def run_steps(
    steps: list[dict[str, Any]], job_env: JobEnvironment, cwd: Path, env: dict[str, str], timeout: float = 240
) -> list[subprocess.CompletedProcess[str]]:
    """Each step's ``run:`` script under bash (as GitHub runs it: ``bash -e {0}``), except the
    installs, which ``job_env`` stands for. Stops at the first step that fails."""
    done = []
    for step in steps:
        script = step.get("run")
        if script is None or re.search(r"^\s*python -m pip install", script, re.M):
            continue
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=job_env.env({**step.get("env", {}), **env}),
            timeout=timeout,
        )
        done.append(result)
        if result.returncode != 0:
            break
    return done

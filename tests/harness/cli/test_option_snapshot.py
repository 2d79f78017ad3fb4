"""The ``run`` options and the suite keys are a public contract: pinned against a committed snapshot.

The snapshot (``fixtures/run_options.json``) was written from the code before the suite became a
typed, nested config (issue 17), so deriving options from the config's fields cannot rename a
flag, change its type, action or default, hide its help, or drop a suite key. A deliberate change
regenerates it: ``SILICONBENCH_REGEN_SNAPSHOT=1 pytest tests/harness/cli/test_option_snapshot.py``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from harness.cli.main import _build_parser
from harness.run.plan import DEFAULT_SUITE, load_suite_file

SNAPSHOT = Path(__file__).parent / "fixtures" / "run_options.json"


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _describe(action: argparse.Action) -> dict[str, Any]:
    kind = action.type
    return {
        "flags": list(action.option_strings),
        "dest": action.dest,
        "action": type(action).__name__,
        "type": None if kind is None else getattr(kind, "__name__", repr(kind)),
        "default": action.default,
        "const": action.const,
        "choices": None if action.choices is None else list(action.choices),
        "metavar": action.metavar,
        "help_visible": action.help is not argparse.SUPPRESS,
    }


def snapshot() -> dict[str, Any]:
    """The option sets of ``run``, ``aws plan`` and ``aws preflight`` and the suite's keys and defaults."""
    parser = _build_parser()
    commands = {}
    for path in (("run",), ("aws", "plan"), ("aws", "preflight")):
        commands[" ".join(path)] = [
            _describe(a) for a in _subparser(parser, *path)._actions if a.option_strings and a.dest != "help"
        ]
    return {"commands": commands, "suite": json.loads(json.dumps(DEFAULT_SUITE.to_dict()))}


def test_run_options_and_suite_keys_match_the_snapshot() -> None:
    current = snapshot()
    if os.environ.get("SILICONBENCH_REGEN_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1) + "\n")
    frozen = json.loads(SNAPSHOT.read_text())
    for command, options in frozen["commands"].items():
        assert {o["dest"]: o for o in current["commands"][command]} == {o["dest"]: o for o in options}, command
    # The run file's ``suite`` keeps its keys, their order and their defaults (byte-identical JSON).
    assert json.dumps(current["suite"]) == json.dumps(frozen["suite"])


def test_a_flat_suite_file_of_every_key_still_loads(tmp_path: Path) -> None:
    """Every key the snapshot lists is still a suite-file key, at its default value."""
    frozen = json.loads(SNAPSHOT.read_text())["suite"]
    lines = []
    for key, value in frozen.items():
        if value is None or key == "pricing":
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "flat.toml"
    path.write_text("\n".join(lines) + "\n")
    assert load_suite_file(path).to_dict() == DEFAULT_SUITE.to_dict()

"""Load as served, bad input: every trace, conversation file and ``--shared-prefix`` that cannot run
is one line and exit 2 before anything runs (the endpoint given is a closed port: had the run
started, it would have failed a cell instead, exit 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.cli import one_line_error

CLOSED = "http://127.0.0.1:9"
Runner = Callable[..., CompletedProcess[str]]


def _trace(tmp_path: Path, text: bytes, name: str = "t.jsonl") -> str:
    path = tmp_path / name
    path.write_bytes(text)
    return str(path)


GOOD = b'{"timestamp": 0, "input_length": 20, "output_length": 2, "hash_ids": [1]}\n'


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: ["--scenario", "server", "--trace", str(p / "absent.jsonl")], "does not exist"),
        (lambda p: ["--scenario", "server", "--trace", str(p)], "not a regular file"),
        (lambda p: ["--scenario", "server", "--trace", _trace(p, b"\x00\x01")], "is binary"),
        (lambda p: ["--scenario", "server", "--trace", _trace(p, b"\n")], "is empty"),
        (lambda p: ["--scenario", "server", "--trace", _trace(p, b'{"timestamp": 0}\n')], "needs input_length"),
        (lambda p: ["--scenario", "server", "--trace", _trace(p, b"x,y\n1,2\n")], "not a trace this reads"),
        (
            lambda p: ["--scenario", "server", "--trace", _trace(p, GOOD), "--trace-block-size", "4"],
            "--trace-block-size",
        ),
        (
            lambda p: ["--scenario", "server", "--trace", _trace(p, GOOD), "--max-model-len", "16"],
            "raise --max-model-len",
        ),
        (lambda p: ["--scenario", "generate", "--trace", _trace(p, GOOD)], "give --scenario server"),
        (lambda p: ["--scenario", "server", "--trace", _trace(p, GOOD), "--rate", "2"], "drop --rate"),
        (lambda p: ["--scenario", "server", "--rate", "1", "--trace-speed", "2"], "shape --trace FILE"),
        (lambda p: ["--scenario", "generate", "--prompts", _trace(p, b"{bad\n"), "--api", "chat"], "not a JSON line"),
        (lambda p: ["--scenario", "generate", "--prompts", _trace(p, b"\xff\xfe"), "--api", "chat"], "not UTF-8"),
        (
            lambda p: ["--scenario", "generate", "--prompts", _trace(p, b'{"prompt": "x"}\n'), "--multi-turn"],
            "give --api chat",
        ),
        (lambda p: ["--scenario", "generate", "--multi-turn"], "give a file"),
        (
            lambda p: [
                "--scenario",
                "server",
                "--rate",
                "1",
                "--api",
                "chat",
                "--multi-turn",
                "--prompts",
                GOOD_CHAT(p),
            ],
            "give --scenario generate",
        ),
        (lambda p: ["--scenario", "generate", "--shared-prefix", "4"], "GROUPS:TOKENS"),
        (lambda p: ["--scenario", "generate", "--shared-prefix", "0:16"], "GROUPS:TOKENS"),
        (
            lambda p: ["--scenario", "generate", "--shared-prefix", "2:200", "--prompt-dist", "100"],
            "shorten the prefix",
        ),
        (
            lambda p: ["--scenario", "generate", "--shared-prefix", "2:16", "--trace", _trace(p, GOOD)],
            "cannot be combined",
        ),
    ],
)
def test_a_bad_request_source_is_one_line_before_anything_runs(
    run_main: Runner, tmp_path: Path, make: Callable[[Path], list[str]], fragment: str
) -> None:
    done = run_main("run", "--endpoint", CLOSED, "--model", "m", *make(tmp_path), "--output", str(tmp_path / "o"))
    one_line_error(done, fragment)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def GOOD_CHAT(folder: Path) -> str:
    path = folder / "chat.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]}\n')
    return str(path)

"""The user's input files (prompt files, traces), read once and refused in one line when unfit.

A file is refused before anything runs when it is missing, not a file, larger than it can
sensibly be (``MAX_INPUT_BYTES``: the public Mooncake and Azure traces are tens of megabytes; a
file of gigabytes is a wrong path, and reading it would hold the machine), binary (a NUL byte, or
bytes that are not UTF-8) or empty. Each refusal is a ``ConfigError`` naming the file and what to
do, which the CLI turns into one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = ["MAX_INPUT_BYTES", "parse_json_records", "read_text_file"]

#: The largest input file read (bytes).
MAX_INPUT_BYTES = 512 * 1024 * 1024


def read_text_file(path: str | Path, what: str, flag: str, *, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The text of ``path``; ``what`` names the file ("trace", "prompt file") and ``flag`` its option."""
    file = Path(path)
    where = f"the {what} {str(file)!r} ({flag})"
    try:
        if not file.exists():
            raise ConfigError(f"{where} does not exist; check the path")
        if not file.is_file():
            raise ConfigError(f"{where} is not a regular file; give a file")
        size = file.stat().st_size
        if size > max_bytes:
            raise ConfigError(
                f"{where} is {size / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB this reads; "
                "cut it to the part you mean to run"
            )
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    if b"\x00" in data[:65536]:
        raise ConfigError(f"{where} is binary (it holds NUL bytes); give a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where} is not UTF-8 text (byte {exc.start} cannot be decoded); give a text file") from None
    if not text.strip():
        raise ConfigError(f"{where} is empty")
    return text


def parse_json_records(text: str, file: Path) -> list[tuple[int, Any]]:
    """The records of a JSON array or JSON lines text, each with its line (array: its position)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{file}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
        return list(enumerate(array, start=1))
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{file}:{number}: not a JSON line: {exc.msg}") from None
    return records

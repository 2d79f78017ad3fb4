"""Reading a JSON document the user handed us, when it may be anything at all.

A file named like a run file may be a binary, text in another encoding, JSON with ``NaN`` or
``Infinity`` (Python writes them by default; JSON has neither) or numbers too large for a double
(``1e400`` reads as infinity). Each is refused here with one line naming the file and, for a
number, the field, before any report does arithmetic on it; the schema then checks the types and
ranges of every field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.errors import RunFileError

__all__ = ["dumps_json", "finite_or_null", "first_non_finite", "read_json_document"]


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """Valid JSON, always: a figure that is not finite is written as null, never as NaN."""
    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def first_non_finite(value: Any, path: str = "") -> str | None:
    """The path (``cells/0/latency_ns/p50``) of the first NaN or infinite number in ``value``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "top level")
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_non_finite(item, f"{path}/{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_non_finite(item, f"{path}/{index}" if path else str(index))
            if found is not None:
                return found
    return None


def read_json_document(path: Path, what: str = "run file", error: type[Exception] = RunFileError) -> Any:
    """The parsed JSON in ``path``, or one line naming what is wrong with it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {str(path)!r} is a folder, not a file") from None
    except OSError as exc:
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{str(path)!r} is not a {what}: it is not UTF-8 text (byte {exc.start}: {exc.reason}; binary?)"
        ) from None
    if "\x00" in text:
        raise error(f"{str(path)!r} is not a {what}: it holds NUL bytes (binary?)")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise error(
            f"{str(path)!r} is not valid JSON (truncated or not a {what}): {exc.msg} at line {exc.lineno}"
        ) from None
    except ValueError as exc:  # NaN, Infinity, -Infinity
        raise error(f"{str(path)!r} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{str(path)!r} nests too deeply to be a {what}") from None
    where = first_non_finite(data)
    if where is not None:
        raise error(f"{what} {str(path)!r} field {where}: a number too large to represent (infinite)")
    return data

"""The hostile-input reader and the strict JSON writer, in process (the CLI side is in test_faults)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import RunFileError
from harness.runfile.checks import dumps_json, first_non_finite, read_json_document


def test_dumps_json_writes_null_where_python_would_write_nan() -> None:
    value = {"p50": float("nan"), "rows": [1.0, float("inf"), -float("inf")], "ok": 2.5}
    assert json.dumps(value) == '{"p50": NaN, "rows": [1.0, Infinity, -Infinity], "ok": 2.5}'  # the trap
    assert dumps_json(value) == '{"p50": null, "rows": [1.0, null, null], "ok": 2.5}'


def test_first_non_finite_names_the_path() -> None:
    assert first_non_finite({"cells": [{"latency_ns": {"p50": 1.0}}, {"latency_ns": {"p99": 1e400}}]}) == (
        "cells/1/latency_ns/p99"
    )
    assert first_non_finite({"a": [1, 2.0, "x", None]}) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b'{"a": 1}\x00', "NUL bytes"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": [1e999]}', "field a/0: a number too large"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_read_json_document_refuses_in_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(RunFileError, match=message) as caught:
        read_json_document(path)
    assert "\n" not in str(caught.value)

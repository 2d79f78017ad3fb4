"""The strict JSON writer (the CLI side is in test_faults)."""

from __future__ import annotations

import json

from harness.runfile.json_writer import dumps_json


def test_dumps_json_writes_null_where_python_would_write_nan() -> None:
    value = {"p50": float("nan"), "rows": [1.0, float("inf"), -float("inf")], "ok": 2.5}
    assert json.dumps(value) == '{"p50": NaN, "rows": [1.0, Infinity, -Infinity], "ok": 2.5}'  # the trap
    assert dumps_json(value) == '{"p50": null, "rows": [1.0, null, null], "ok": 2.5}'

"""``siliconbench pricing``: the catalog shown, and its errors in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli import one_line_error


def test_pricing_show_and_its_errors(run_cli: Any, tmp_path: Path) -> None:
    done = run_cli("pricing", "show", "--instance-type", "inf2.xlarge", "--region", "us-east-1", "--format", "json")
    assert done.returncode == 0, done.stderr
    prices = json.loads(done.stdout)["prices"]
    assert {(p["purchase_option"], p["usd_per_hour"]) for p in prices} >= {("on-demand", 0.7582)}
    one_line_error(run_cli("pricing", "show", "--instance-type", "z99.small"), "no price in the bundled price snapshot")
    missing = tmp_path / "none.json"
    one_line_error(run_cli("pricing", "show", "--prices", str(missing)), "does not exist")

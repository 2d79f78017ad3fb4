"""The HTML report: self-contained, complete, and clean in a real (headless) browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.report.formats import render
from tests.harness.report.test_plots import sweep_run
from tests.harness.runfactory import make_cell, make_failed_cell, make_run, write_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def _runs() -> list[dict[str, Any]]:
    return [
        sweep_run("c7i.2xlarge", 0.357, "cpu", 2.0, "20261124T100000Z-cpu001", "2026-11-24T10:00:00.000000Z"),
        make_run(
            [make_cell([2_000_000 + i for i in range(200)], warnings=["a <warning> & more"]), make_failed_cell()],
            run_id="20261124T120000Z-local0",
            started_utc="2026-11-24T12:00:00.000000Z",
        ),
    ]


def test_the_report_is_one_self_contained_file() -> None:
    html = render(_runs(), "html", slo_p99_ms=10.0)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html
    external = re.findall(r'(?:src|href)="(?!data:)[^"]*"', html)
    assert external == [], external
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="[^"]+">', html)
    # Per workload (mlp, bert-base): a latency distribution, a batch sweep and a cost chart; no
    # history, as no configuration ran twice.
    assert len(images) == 6
    for heading in ('id="answer"', 'id="results"', 'id="prices"', 'id="environment"', "Figures not drawn"):
        assert heading in html
    assert "a &lt;warning&gt; &amp; more" in html  # text from run files is escaped
    assert (
        "$0.357/h c7i.2xlarge us-east-1 on-demand (https://aws.amazon.com/ec2/pricing/on-demand/, as of 2026-11-24)"
        in html
    )
    assert 'class="failed"' in html


def console_messages(page: Path) -> tuple[list[str], str]:
    """Console lines Chromium logs while loading ``page``, and the DOM it ends with."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return lines, done.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium (Debian package 'chromium'; scripts/ci-system-deps.sh installs it)",
)
def test_the_report_opens_in_headless_chromium_without_console_errors(run_cli: Any, tmp_path: Path) -> None:
    # The detector must see an error when there is one, or its silence below would prove nothing.
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        "<script>notDefinedAnywhere();</script></body></html>"
    )
    messages, _ = console_messages(broken)
    assert any("Uncaught ReferenceError" in m for m in messages), messages

    files = [str(write_run(run, tmp_path)) for run in _runs()]
    report = tmp_path / "out" / "report.html"
    done = run_cli("report", *files, "--format", "html", "--output", str(report), "--slo-p99", "10")
    assert done.returncode == 0, done.stderr
    messages, dom = console_messages(report)
    assert messages == []
    assert 'id="results"' in dom and dom.count("<img ") == 6


def test_ci_script_installs_chromium_idempotently() -> None:
    script = Path(__file__).resolve().parents[3] / "scripts" / "ci-system-deps.sh"
    text = script.read_text()
    assert "command -v chromium" in text and "apt-get install -y" in text
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0

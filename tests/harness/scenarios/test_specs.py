"""The scenario specs module: the traits and constants a report reads, with nothing that measures."""

from __future__ import annotations

import subprocess
import sys

from harness.measure.stats import min_samples
from harness.runfile.records import CellConfig, ScenarioParams
from harness.scenarios.registry import cell_id, scenario_specs, spec
from harness.scenarios.specs import MIN_SAMPLES_FOR_P99, ScenarioSpec, prompt_label
from tests.conftest import REPO_ROOT, cli_env


def test_min_samples_for_p99_is_the_order_statistic_count() -> None:
    assert MIN_SAMPLES_FOR_P99 == min_samples(0.99, 0.95)


def test_the_specs_module_imports_nothing_that_measures() -> None:
    """A report imports it: beyond the run-file records (and what they import), nothing of
    ``harness.scenarios``, ``harness.measure`` (but its statistics) or ``harness.run`` and no torch."""
    code = (
        "import sys\n"
        "import harness.runfile.records\n"
        "before = set(sys.modules)\n"
        "import harness.scenarios.specs, harness.report.slo\n"
        "new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] == 'torch'"
        " or m.startswith(('harness.measure', 'harness.run.', 'harness.scenarios.', 'backends', 'workloads')))\n"
        "allowed = ('harness.scenarios.specs', 'harness.measure', 'harness.measure.stats',"
        " 'harness.measure.dependence')\n"
        "print(','.join(m for m in new if m not in allowed))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_traits_replace_the_names_the_core_used_to_test() -> None:
    specs = scenario_specs()
    assert [s.name for s in specs.values() if s.mergeable] == ["latency", "throughput"]
    assert {s.name: s.engine for s in specs.values() if s.engine} == {"generate": "closed", "server": "open"}
    assert [s.name for s in specs.values() if s.uses_prompts] == ["generate", "server", "offline"]
    assert [s.name for s in specs.values() if s.workloads == "decoders"] == ["generate"]
    assert spec("server").budgets == 11 and spec("latency").budgets == 1


def test_a_spec_labels_its_cells() -> None:
    custom = ScenarioSpec(name="probe", help="", runner="x:y", label=prompt_label)
    assert custom.cell_label(ScenarioParams(prompt_tokens=3, output_tokens=2, loadgen=True)) == "probe-p3o2-loadgen"
    config = CellConfig("mlp", "tiny", "cpu", "fp32", "eager", 2, 8, "server", device="cuda:1")
    assert cell_id(config) == "mlp/tiny/cpu@cuda:1/fp32/eager/t2/bs8/server-p128o128-capacity"

"""A scenario from outside the package, as a plugin would ship one: ``volley``.

It times volleys of ``VOLLEY`` calls dispatched back to back and synchronized once, and records the
per-call time: the rate a caller sees when it queues a few requests before waiting. Everything it
needs is public scenario machinery (``prepare_checked``, ``measured_record``, the sampler); the
plan, the CLI and the report learn about it only from its ``SPEC``. ``test_plugin_scenario``
registers it through a ``siliconbench.scenarios`` entry point and runs it end to end.
"""

from __future__ import annotations

from harness.runfile.records import Measurement, ScenarioParams
from harness.scenarios.base import CellContext
from harness.scenarios.prepare import measured_record, prepare_checked
from harness.scenarios.specs import FORWARD_COLUMNS, ScenarioSpec, plain_label

__all__ = ["SCENARIO", "SPEC", "VOLLEY"]

#: Calls per volley: few enough that one volley of a tiny model is still a short sample.
VOLLEY = 4


class VolleyScenario:
    name = "volley"

    def run(self, ctx: CellContext) -> Measurement:
        import time

        from harness.measure.sampler import Sampling, sample

        checked = prepare_checked(ctx)
        call, synchronize = checked.prepared.call, ctx.backend.synchronize

        def volley() -> None:
            for _ in range(VOLLEY):
                call()

        ctx.phase = "measure"
        measured_at = time.perf_counter()
        volleys = sample(volley, ctx.policy, synchronize)
        sampling = Sampling(
            samples_ns=[max(1, round(ns / VOLLEY)) for ns in volleys.samples_ns],
            warmup_count=volleys.warmup_count * VOLLEY,
            warmup_ns=volleys.warmup_ns,
            elapsed_ns=volleys.elapsed_ns,
            stop_reason=volleys.stop_reason,
            rel_ci_half_width=volleys.rel_ci_half_width,
        )
        record = measured_record(ctx, checked, sampling, ctx.backend.peak_memory_bytes(), measured_at, "volleys")
        return record


def _label(params: ScenarioParams) -> tuple[str, ...]:
    return (f"v{VOLLEY}", *plain_label(params))


SCENARIO = VolleyScenario()

SPEC = ScenarioSpec(
    name="volley",
    help=f"volleys of {VOLLEY} calls, synchronized once: the per-call time of a short queue",
    runner="tests.harness.plugin_scenario:SCENARIO",
    order=50,
    columns=tuple(c for c in FORWARD_COLUMNS if c != "process_spread"),
    label=_label,
)

"""Plan a run against the silicon it meets: probe it, keep the dtypes it runs natively, measure its ceilings.

Three steps between planning the cells and measuring the first one (``run_suite``):

1. **Probe** each backend's silicon (``harness.measure.capability``): the ISA oneDNN and ATen
   dispatch to on the CPU, the compute capability of a GPU (from NVML, so the harness process
   takes no CUDA context), the NeuronCore version from ``neuron-ls``.
2. **Plan dtypes** (``harness.run.dtypes``): a default suite drops the dtypes the silicon only
   emulates, naming them and why in the run file; a dtype the user asked for stays, and its
   cells are marked ``emulated`` with a warning (``mark``).
3. **Measure the ceilings** the planned cells need (``harness.measure.ceilings``), cached per
   machine and conditions: the roofline each cell is placed on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from harness.run.dtypes import DtypePlan, plan_dtypes
from harness.runfile.records import CellConfig, CellRecord, Environment
from harness.runfile.silicon import Capability

__all__ = ["SiliconPlan", "capabilities_for", "plan_for_silicon"]


@dataclass(frozen=True)
class SiliconPlan:
    """The cells to measure, the environment with the silicon's facts, and the dtype plan."""

    cells: list[CellConfig]
    environment: Environment
    dtypes: DtypePlan

    def mark(self, record: CellRecord) -> CellRecord:
        """``record`` marked ``emulated``, with a warning, where its dtype is emulated on its silicon."""
        why = self.dtypes.emulated.get((record.config.backend, record.config.dtype))
        if why is None:
            return record
        marked = replace(record, emulated=why)
        return marked.with_warning(f"{record.config.dtype} is emulated on this silicon: {why}")


def capabilities_for(
    backends: Sequence[tuple[str, str | None]],
    environment: Environment,
    *,
    cpu: Callable[[], Capability] | None = None,
    neuron: Callable[[], Capability] | None = None,
) -> dict[str, Capability]:
    """A capability per backend named in ``backends`` ((backend, device) pairs) that has one.

    A probe that fails leaves its backend out: its dtypes are then planned as asked.
    """
    from harness.measure.capability import cuda_capability, probe_cpu, probe_neuron

    found: dict[str, Capability] = {}
    for backend, device in dict.fromkeys(backends):
        if backend in found:
            continue
        try:
            if backend == "cpu":
                found[backend] = (cpu or probe_cpu)()
            elif backend == "cuda":
                index = int((device or "cuda:0").partition(":")[2] or 0)
                gpus = environment.gpus.devices if environment.gpus is not None else ()
                facts = gpus[index] if index < len(gpus) else {}
                cc, name = facts.get("compute_capability"), facts.get("name")
                found[backend] = cuda_capability(
                    backend, cc if isinstance(cc, str) else None, name if isinstance(name, str) else None
                )
            elif backend == "neuron":
                found[backend] = (neuron or probe_neuron)()
        except Exception:  # a probe is context: without it the dtypes run as asked
            continue
    return found


def plan_for_silicon(
    cells: Sequence[CellConfig],
    environment: Environment,
    *,
    explicit_dtypes: bool,
    requested_dtypes: Sequence[str],
    capabilities: dict[str, Capability] | None = None,
    ceilings: bool = True,
) -> SiliconPlan:
    """Probe, plan the dtypes and (with ``ceilings``) measure the roofline ceilings for ``cells``."""
    in_process = [c for c in cells if c.params.engine is None]
    found = (
        capabilities
        if capabilities is not None
        else capabilities_for([(c.backend, c.device) for c in in_process], environment)
    )
    backends = list(dict.fromkeys(c.backend for c in in_process))
    dtypes = plan_dtypes(backends, requested_dtypes, explicit_dtypes, found)
    kept = [c for c in cells if c.params.engine is not None or c.dtype in dtypes.dtypes.get(c.backend, (c.dtype,))]
    environment = replace(environment, capabilities=found, dtypes_left_out=dtypes.left_out)
    if ceilings:
        from harness.measure.ceilings import run_ceilings

        computes, bandwidths = run_ceilings(environment, [(c.backend, c.device, c.dtype, c.threads) for c in kept])
        environment = replace(environment, ceilings=computes, bandwidths=bandwidths)
    return SiliconPlan(kept, environment, dtypes)

"""Accelerator chips per instance: what a per-chip figure divides by, and what one chip is.

A per-chip figure compares instances of different sizes (a trn2.48xlarge against a trn2.3xlarge,
a p5.48xlarge against a p5.4xlarge) and silicon against silicon, so the unit must be the same
thing everywhere: **a chip** (Neuron's docs also say "device"; ``neuron-ls`` lists one per chip),
never a NeuronCore. A Neuron chip holds several NeuronCores: two NeuronCore-v2 on Inferentia2 and
Trainium, eight NeuronCore-v3 on Trainium2 (which the default Logical NeuronCore configuration,
LNC=2, presents as four), so a per-core figure would be 2 to 8 times smaller and not comparable
with a GPU's.

CUDA counts come from the run file (the GPUs NVML saw); Neuron counts from the instance type, as
AWS publishes them (checked 2026-12-03):

- Inf2: "Inf2.xlarge 1, Inf2.8xlarge 1, Inf2.24xlarge 6, Inf2.48xlarge 12" Inferentia2 chips, each
  "with two NeuronCore-v2 cores" (aws-neuron-sdk about-neuron/arch/neuron-hardware/inf2-arch.rst and
  inferentia2.rst; https://awsdocs-neuron.readthedocs-hosted.com/en/latest/about-neuron/arch/neuron-hardware/inf2-arch.html).
- Trn1/Trn1n: "Trn1.2xlarge 1, Trn1.32xlarge 16, Trn1n.32xlarge 16" Trainium chips, each with two
  NeuronCore-v2 (trn1-arch.rst, trainium.rst).
- Trn2: "trn2.48xlarge / trn2u.48xlarge: 16" Trainium2 chips (trn2-arch.rst), "Every Trainium2 chip
  contains eight NeuronCore-V3 cores" (trainium2.rst). The architecture page does not list
  trn2.3xlarge; its one Trainium2 chip with 8 cores is DescribeInstanceTypes' ``NeuronInfo``
  (``NeuronDevices``: Count 1, ``CoreInfo`` Count 8, Version 3) as moto 5.2.5 records AWS's
  answer (``moto/ec2/resources/instance_types.json.gz``), which
  ``tests/harness/report/test_chips.py`` checks every entry against.

Trn3 is sold only inside UltraServers (``harness.pricing.offerings``) and has no instance type to
look up here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NEURON_CHIPS", "Chips", "neuron_chips"]

_INF2 = "aws-neuron-sdk about-neuron/arch/neuron-hardware/inf2-arch.rst, inferentia2.rst (2026-12-03)"
_TRN1 = "aws-neuron-sdk about-neuron/arch/neuron-hardware/trn1-arch.rst, trainium.rst (2026-12-03)"
_TRN2 = "aws-neuron-sdk about-neuron/arch/neuron-hardware/trn2-arch.rst, trainium2.rst (2026-12-03)"
_TRN2_3XL = "EC2 DescribeInstanceTypes NeuronInfo as moto 5.2.5 records it; trainium2.rst (2026-12-03)"


@dataclass(frozen=True)
class Chips:
    """An instance's accelerator chips: how many, which, and (Neuron) how many NeuronCores each."""

    count: int
    name: str
    neuron_cores_per_chip: int | None = None
    source: str = ""

    def describe(self) -> str:
        """``16 Trainium2 (8 NeuronCores each)``; ``1 NVIDIA L40S``."""
        cores = f" ({self.neuron_cores_per_chip} NeuronCores each)" if self.neuron_cores_per_chip else ""
        return f"{self.count} {self.name}{cores}"


#: Neuron instance types -> their chips (the module docstring gives the sources).
NEURON_CHIPS: dict[str, Chips] = {
    "inf2.xlarge": Chips(1, "Inferentia2", 2, _INF2),
    "inf2.8xlarge": Chips(1, "Inferentia2", 2, _INF2),
    "inf2.24xlarge": Chips(6, "Inferentia2", 2, _INF2),
    "inf2.48xlarge": Chips(12, "Inferentia2", 2, _INF2),
    "trn1.2xlarge": Chips(1, "Trainium", 2, _TRN1),
    "trn1.32xlarge": Chips(16, "Trainium", 2, _TRN1),
    "trn1n.32xlarge": Chips(16, "Trainium", 2, _TRN1),
    "trn2.3xlarge": Chips(1, "Trainium2", 8, _TRN2_3XL),
    "trn2.48xlarge": Chips(16, "Trainium2", 8, _TRN2),
    "trn2u.48xlarge": Chips(16, "Trainium2", 8, _TRN2),
}


def neuron_chips(instance_type: str | None) -> Chips | None:
    """The chips of a Neuron instance type, or None where the table has no such type."""
    return None if instance_type is None else NEURON_CHIPS.get(instance_type)

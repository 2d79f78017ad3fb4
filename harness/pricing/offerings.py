"""What AWS sells that the catalog cannot price per instance-hour, and why (checked 2026-12-03).

An UltraServer is not an instance: it is several instances joined by an accelerator interconnect
(NeuronLink for Trainium, NVLink for GB200) and reserved as one unit in an EC2 Capacity Block for
ML, paid up front for the block ("You can also reserve Amazon EC2 UltraServers. UltraServers
connect multiple EC2 instances using a low-latency, high-bandwidth accelerator interconnect":
EC2 API Reference, ``CapacityBlock``; ``DescribeCapacityBlockOfferings`` takes ``UltraserverType``
and ``UltraserverCount`` and answers an ``UpfrontFee``, botocore 1.44.8's EC2 model). Its member
instance types (``trn2u.48xlarge``, ``p6e-gb200.36xlarge``) appear in ``DescribeInstanceTypes``
but have no On-Demand or Spot price, and Trn3 is sold only as UltraServers and is not in botocore
1.44.8's ``InstanceType`` list at all. A price per member instance-hour is the block's fee divided
by its instances and hours: the user gives it (``--price-per-hour``), since it depends on the block.

``KNOWN_UNPRICED`` are types AWS sells (in botocore 1.44.8's ``InstanceType`` enum) that the bundled
snapshot's source (the skypilot-catalog mirror at 001367d2) has no price for, so the snapshot says
so instead of guessing; ``siliconbench pricing refresh`` reads them from the Price List API.
Searched again on 2026-12-03 for a price AWS itself publishes (the On-Demand pricing page, the
instance-type pages, What's New posts, Price List offer files, in the stored copies this project
can read): none had a figure for any of them; AWS's pricing pages render their tables from data
the stored copies do not hold. A figure found only second hand (a wiki quoting an AWS blog for
g7e.2xlarge in us-east-2) is not a source, so none was added (docs/aws-assumptions.md, 24).
Every "no price" line names the way to give one (``PRICE_OVERRIDE``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KNOWN_UNPRICED", "PRICE_OVERRIDE", "ULTRASERVERS", "UltraServer", "ultraserver_of", "unpriced_reason"]

#: How a user prices what the catalog cannot: said in every "no price" line.
PRICE_OVERRIDE = (
    "give the price with --price-per-hour USD (run or report) or usd_per_hour in the suite's [pricing] "
    "table, or a catalog with --prices FILE, or run 'siliconbench pricing refresh'"
)


@dataclass(frozen=True)
class UltraServer:
    """One UltraServer type: what it is called, the instance type of its members, and how many."""

    name: str
    member_type: str
    instances: int
    interconnect: str


#: UltraServer types (EC2 User Guide, "Amazon EC2 UltraServers"; SageMaker API Reference,
#: ``UltraServer``: "The type of UltraServer, such as ml.u-p6e-gb200x72").
ULTRASERVERS = (
    UltraServer("u-trn2x64", "trn2u.48xlarge", 4, "NeuronLink"),
    UltraServer("u-p6e-gb200x36", "p6e-gb200.36xlarge", 9, "NVLink"),
    UltraServer("u-p6e-gb200x72", "p6e-gb200.36xlarge", 18, "NVLink"),
)
#: Families sold only as UltraServers whose member type has no public name in botocore 1.44.8.
_ULTRASERVER_ONLY_FAMILIES = {"trn3": "Trn3 UltraServers (NeuronLink)"}

#: Sold, not priced by the snapshot's source: refresh them or give a price.
KNOWN_UNPRICED = (
    "trn2.3xlarge",
    "p5.4xlarge",
    "p5e.48xlarge",
    "p6-b200.48xlarge",
    "p6-b300.48xlarge",
    "g7e.2xlarge",
    "g7e.4xlarge",
    "g7e.8xlarge",
    "g7e.12xlarge",
    "g7e.24xlarge",
    "g7e.48xlarge",
)


def ultraserver_of(instance_type: str) -> str | None:
    """Why ``instance_type`` has no per-instance price (it lives only inside UltraServers), or None."""
    family = instance_type.split(".", 1)[0]
    members = [u for u in ULTRASERVERS if u.member_type == instance_type]
    if members:
        names = ", ".join(f"{u.name} ({u.instances} instances, {u.interconnect})" for u in members)
        return (
            f"{instance_type} is sold only inside an UltraServer ({names}), reserved whole as an EC2 "
            "Capacity Block for ML with an up-front fee, not On-Demand or Spot"
        )
    if family in _ULTRASERVER_ONLY_FAMILIES:
        return (
            f"{instance_type} is sold only as part of {_ULTRASERVER_ONLY_FAMILIES[family]}, reserved whole as "
            "an EC2 Capacity Block for ML with an up-front fee, not On-Demand or Spot"
        )
    return None


def unpriced_reason(instance_type: str) -> str | None:
    """A sentence on why the catalog has no price for ``instance_type``, where one is known."""
    ultra = ultraserver_of(instance_type)
    if ultra is not None:
        return f"{ultra}; give the block's fee per instance-hour with --price-per-hour"
    if instance_type in KNOWN_UNPRICED:
        return (
            f"AWS sells {instance_type} but the bundled snapshot's source has no price for it, and no "
            "price AWS publishes for it could be read on 2026-12-03"
        )
    return None

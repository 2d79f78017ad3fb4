"""Dollars per hour for the instance types siliconbench launches, each with its source and date.

A small, dated table on purpose: the EC2 Price List API is heavy, needs its own permission and
only answers in us-east-1, while a benchmark needs a handful of types. Everything that prices a run
calls ``price_for``, so a fuller price catalog can replace this module behind the same function.
Spot prices are not tabled: they move hourly, so they are read from EC2's spot price history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ON_DEMAND", "ON_DEMAND_SOURCE", "Price", "on_demand_price", "price_for", "spot_price"]

#: Where and when the on-demand figures were read.
ON_DEMAND_SOURCE = "AWS EC2 On-Demand pricing page, Linux, {region}, list prices as of 2025"

#: USD per instance-hour, on-demand, Linux, by region then instance type.
ON_DEMAND: dict[str, dict[str, float]] = {
    "us-east-1": {
        "inf2.xlarge": 0.7582,
        "inf2.8xlarge": 1.9679,
        "inf2.24xlarge": 6.4906,
        "inf2.48xlarge": 12.9813,
        "trn1.2xlarge": 1.3438,
        "trn1.32xlarge": 21.50,
        "g4dn.xlarge": 0.526,
        "g5.xlarge": 1.006,
        "g6.xlarge": 0.8048,
        "c7i.xlarge": 0.1785,
        "c7i.2xlarge": 0.357,
        "c7g.xlarge": 0.145,
        "c7g.2xlarge": 0.29,
        "m7i.xlarge": 0.2016,
    },
}


@dataclass(frozen=True)
class Price:
    """A price per hour (None when unknown) with the purchase option and where the figure came from."""

    per_hour: float | None
    purchase_option: str
    source: str


def on_demand_price(region: str, instance_type: str) -> Price:
    per_hour = ON_DEMAND.get(region, {}).get(instance_type)
    if per_hour is None:
        return Price(None, "on-demand", f"no on-demand price tabled for {instance_type} in {region} "
                                        "(add it to harness/targets/aws/prices.py)")
    return Price(per_hour, "on-demand", ON_DEMAND_SOURCE.format(region=region))


def spot_price(ec2: Any, region: str, instance_type: str, availability_zone: str | None = None) -> Price:
    """The newest spot price for the type (in ``availability_zone`` if given, else the lowest across
    zones); falls back to the on-demand price, which bounds what spot can cost."""
    from botocore.exceptions import BotoCoreError, ClientError

    kwargs: dict[str, Any] = {"InstanceTypes": [instance_type], "ProductDescriptions": ["Linux/UNIX"], "MaxResults": 50}
    if availability_zone:
        kwargs["AvailabilityZone"] = availability_zone
    try:
        history = ec2.describe_spot_price_history(**kwargs).get("SpotPriceHistory", [])
    except (ClientError, BotoCoreError):
        history = []
    newest: dict[str, dict[str, Any]] = {}
    for entry in history:
        zone = entry["AvailabilityZone"]
        if zone not in newest or entry["Timestamp"] > newest[zone]["Timestamp"]:
            newest[zone] = entry
    if not newest:
        fallback = on_demand_price(region, instance_type)
        return Price(fallback.per_hour, "spot",
                     f"no spot price history readable; on-demand price as an upper bound ({fallback.source})")
    best = min(newest.values(), key=lambda e: float(e["SpotPrice"]))
    when = best["Timestamp"]
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(when, datetime) else str(when)
    return Price(float(best["SpotPrice"]), "spot",
                 f"EC2 spot price history, {best['AvailabilityZone']}, {stamp}")


def price_for(ec2: Any | None, region: str, instance_type: str, spot: bool, availability_zone: str | None = None) -> Price:
    """The price a run is charged at; ``ec2`` may be None (offline plan), which reads no spot prices."""
    if not spot:
        return on_demand_price(region, instance_type)
    if ec2 is None:
        fallback = on_demand_price(region, instance_type)
        return Price(fallback.per_hour, "spot", f"spot price not read (offline); on-demand as an upper bound ({fallback.source})")
    return spot_price(ec2, region, instance_type, availability_zone)

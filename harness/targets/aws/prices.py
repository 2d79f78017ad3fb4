"""The hourly price an instance of an aws run is charged at, with its source and date.

On-demand prices come from the price catalog (``harness.pricing``: the bundled, dated snapshot or
``$SILICONBENCH_PRICES``), so a run and its report read the same figure. Spot prices move by the
hour, so a spot run reads EC2's spot price history for the zone it landed in, and falls back to the
catalog's indicative spot price, then to the on-demand price as an upper bound. Everything that
prices an aws run calls ``price_for``; a different source of prices replaces this one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["LaunchPrice", "on_demand_price", "price_for", "spot_price"]


@dataclass(frozen=True)
class LaunchPrice:
    """USD per hour (None when no source knows it), the purchase option, where it came from and when."""

    per_hour: float | None
    purchase_option: str
    source: str
    as_of: str | None = None


def _catalog_price(region: str, instance_type: str, option: str) -> LaunchPrice | None:
    from harness.pricing.catalog import load_catalog

    catalog = load_catalog()
    found = catalog.lookup(instance_type, region, option)
    if found is None:
        return None
    note = "" if found.confirmed else " (indicative)"
    return LaunchPrice(found.usd_per_hour, option, f"{found.source}, {catalog.origin}{note}", found.as_of)


def on_demand_price(region: str, instance_type: str) -> LaunchPrice:
    found = _catalog_price(region, instance_type, "on-demand")
    if found is not None:
        return found
    from harness.pricing.offerings import PRICE_OVERRIDE, ultraserver_of, unpriced_reason

    why = unpriced_reason(instance_type)
    if why is not None:
        # An UltraServer member's reason already says how to price it (the block's fee).
        fix = "" if ultraserver_of(instance_type) is not None else f"; {PRICE_OVERRIDE}"
        return LaunchPrice(None, "on-demand", f"no on-demand price: {why}{fix}")
    return LaunchPrice(
        None, "on-demand", f"no on-demand price for {instance_type} in {region} in the price catalog; {PRICE_OVERRIDE}"
    )


def _upper_bound(region: str, instance_type: str, why: str) -> LaunchPrice:
    indicative = _catalog_price(region, instance_type, "spot")
    if indicative is not None:
        return LaunchPrice(indicative.per_hour, "spot", f"{why}; {indicative.source}", indicative.as_of)
    fallback = on_demand_price(region, instance_type)
    return LaunchPrice(
        fallback.per_hour, "spot", f"{why}; on-demand price as an upper bound: {fallback.source}", fallback.as_of
    )


def spot_price(ec2: Any, region: str, instance_type: str, availability_zone: str | None = None) -> LaunchPrice:
    """The newest spot price for the type in ``availability_zone`` (else the lowest across zones)."""
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
        return _upper_bound(region, instance_type, "no spot price history readable")
    best = min(newest.values(), key=lambda e: float(e["SpotPrice"]))
    when = best["Timestamp"]
    when = when.astimezone(UTC) if isinstance(when, datetime) else datetime.now(UTC)
    return LaunchPrice(
        float(best["SpotPrice"]),
        "spot",
        f"EC2 spot price history, {best['AvailabilityZone']}, {when:%Y-%m-%dT%H:%M:%SZ}",
        f"{when:%Y-%m-%d}",
    )


def price_for(
    ec2: Any | None, region: str, instance_type: str, spot: bool, availability_zone: str | None = None
) -> LaunchPrice:
    """The price a run is charged at; ``ec2=None`` (an offline plan) reads no live spot prices."""
    if not spot:
        return on_demand_price(region, instance_type)
    if ec2 is None:
        return _upper_bound(region, instance_type, "spot price not read (offline plan)")
    return spot_price(ec2, region, instance_type, availability_zone)

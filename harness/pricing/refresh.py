"""Rebuild catalog prices from AWS: on-demand from the Price List API, spot from EC2.

- On-demand: ``pricing:GetProducts`` (AmazonEC2, FormatVersion aws_v1) filtered to Linux, shared
  tenancy, no pre-installed software, capacity status "Used" and the plain ``RunInstances``
  operation, which leaves exactly one product per instance type and region. Each ``PriceList``
  entry is a JSON *string*; the hourly rate is the ``OnDemand`` term's price dimension in "Hrs".
  The price is dated by the offer's ``publicationDate``.
- Spot: ``ec2:DescribeSpotPriceHistory`` for "Linux/UNIX" from now, the latest price per
  availability zone, and the lowest of those: what a request that may land in any zone pays.

Clients are passed in, so tests drive this with moto (EC2) and botocore's Stubber (the Price
List API, which moto does not serve); ``harness.targets.aws.price_list`` makes real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness.errors import ConfigError, PricingError
from harness.pricing.catalog import Catalog
from harness.runfile.price import Price

__all__ = [
    "DEFAULT_PURCHASE_OPTIONS",
    "ON_DEMAND_FILTERS",
    "RefreshResult",
    "on_demand_price",
    "pairs_to_refresh",
    "parse_on_demand",
    "parse_spot",
    "refresh_prices",
    "spot_price",
]

#: What ``pricing refresh`` fetches when no ``--purchase-option`` is named.
DEFAULT_PURCHASE_OPTIONS = ("on-demand", "spot")

PRICE_LIST_URL = "https://aws.amazon.com/ec2/pricing/on-demand/"
SPOT_URL = "https://aws.amazon.com/ec2/spot/pricing/"

#: Attribute filters that leave one Linux on-demand product per instance type and region.
ON_DEMAND_FILTERS: dict[str, str] = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "operation": "RunInstances",
}


def _filters(instance_type: str, region: str) -> list[dict[str, str]]:
    fields = {"instanceType": instance_type, "regionCode": region, **ON_DEMAND_FILTERS}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]


def parse_on_demand(price_list: Iterable[str], instance_type: str, region: str) -> Price | None:
    """The hourly on-demand price in GetProducts ``PriceList`` strings, or None if none matches."""
    found: dict[float, dict[str, Any]] = {}
    for text in price_list:
        try:
            item = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise PricingError(f"the Price List API returned an entry that is not JSON: {exc}") from None
        attributes = item.get("product", {}).get("attributes", {})
        if attributes.get("instanceType") != instance_type or attributes.get("regionCode", region) != region:
            continue
        if any(attributes.get(k, v) != v for k, v in ON_DEMAND_FILTERS.items()):
            continue
        for term in (item.get("terms", {}).get("OnDemand") or {}).values():
            for dimension in (term.get("priceDimensions") or {}).values():
                if dimension.get("unit") != "Hrs":
                    continue
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "0"))
                if usd > 0:
                    found[usd] = {"item": item, "term": term}
    if not found:
        return None
    if len(found) > 1:
        raise PricingError(
            f"the Price List API gives {len(found)} different on-demand prices for {instance_type} in {region} "
            f"({', '.join(f'${p:g}' for p in sorted(found))}); refusing to guess"
        )
    usd, match = next(iter(found.items()))
    item = match["item"]
    published = str(item.get("publicationDate") or match["term"].get("effectiveDate") or "")[:10]
    version = item.get("version", "?")
    return Price(
        instance_type,
        region,
        "on-demand",
        usd,
        PRICE_LIST_URL,
        published or datetime.now(UTC).strftime("%Y-%m-%d"),
        note=f"AWS Price List API GetProducts, AmazonEC2 offer version {version}, "
        f"term effective {str(match['term'].get('effectiveDate', '?'))[:10]}",
    )


def on_demand_price(pricing_client: Any, instance_type: str, region: str) -> Price | None:
    """Ask the Price List API (paginated) for one instance type in one region."""
    paginator = pricing_client.get_paginator("get_products")
    entries: list[str] = []
    for page in paginator.paginate(
        ServiceCode="AmazonEC2", FormatVersion="aws_v1", Filters=_filters(instance_type, region)
    ):
        entries.extend(page.get("PriceList", []))
    return parse_on_demand(entries, instance_type, region)


def parse_spot(history: Iterable[dict[str, Any]], instance_type: str, region: str) -> Price | None:
    """The lowest of the latest per-zone Linux spot prices in DescribeSpotPriceHistory entries."""
    latest: dict[str, tuple[datetime, float]] = {}
    for entry in history:
        if entry.get("InstanceType") != instance_type:
            continue
        if not str(entry.get("ProductDescription", "")).startswith("Linux/UNIX"):
            continue
        zone = str(entry.get("AvailabilityZone", "?"))
        stamp = entry.get("Timestamp")  # botocore parses it to a datetime
        if isinstance(stamp, str):
            try:
                stamp = datetime.fromisoformat(stamp)
            except ValueError:
                continue
        if not isinstance(stamp, datetime):
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        usd = float(entry.get("SpotPrice", "0"))
        if usd > 0 and (zone not in latest or stamp > latest[zone][0]):
            latest[zone] = (stamp, usd)
    if not latest:
        return None
    zone, (stamp, usd) = min(latest.items(), key=lambda item: (item[1][1], item[0]))
    newest = max(s for s, _ in latest.values())
    return Price(
        instance_type,
        region,
        "spot",
        usd,
        SPOT_URL,
        newest.strftime("%Y-%m-%d"),
        confirmed=True,
        note=f"EC2 DescribeSpotPriceHistory, Linux/UNIX: lowest current price across {len(latest)} "
        f"availability zone(s), in {zone} (priced {stamp.strftime('%Y-%m-%dT%H:%M')}Z); spot prices move",
    )


def spot_price(ec2_client: Any, instance_type: str, region: str, now: datetime | None = None) -> Price | None:
    """Ask EC2 for the current spot prices of one instance type in the client's region."""
    paginator = ec2_client.get_paginator("describe_spot_price_history")
    history: list[dict[str, Any]] = []
    for page in paginator.paginate(
        InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], StartTime=now or datetime.now(UTC)
    ):
        history.extend(page.get("SpotPriceHistory", []))
    return parse_spot(history, instance_type, region)


@dataclass(frozen=True)
class RefreshResult:
    """Prices fetched, and one line per price that could not be fetched."""

    prices: tuple[Price, ...]
    missing: tuple[str, ...]


def pairs_to_refresh(
    catalog: Catalog, instance_types: Iterable[str] = (), regions: Iterable[str] = ()
) -> set[tuple[str, str]]:
    """The (instance type, region) pairs to fetch: every named type in every named region when both
    are named, else the catalog's own pairs narrowed by what was named."""
    types, places = list(instance_types), list(regions)
    if types and places:
        return {(t, r) for t in types for r in places}
    wanted = catalog.select(types, places)
    pairs = {(p.instance_type, p.region) for p in wanted if p.instance_type and p.region}
    if not pairs:
        raise ConfigError(
            "nothing to refresh: the catalog has no such instance type or region; "
            "name both --instance-type and --region to add one"
        )
    return pairs


def refresh_prices(
    pairs: Iterable[tuple[str, str]],
    purchase_options: Iterable[str],
    pricing_client: Callable[[], Any],
    ec2_client: Callable[[str], Any],
) -> RefreshResult:
    """Fetch each (instance type, region) pair in each purchase option; clients are made on first use."""
    import botocore.exceptions

    prices: list[Price] = []
    missing: list[str] = []
    options = list(purchase_options)
    clients: dict[str, Any] = {}
    try:
        for instance_type, region in sorted(set(pairs), key=lambda pair: (pair[1], pair[0])):
            if "on-demand" in options:
                if "pricing" not in clients:
                    clients["pricing"] = pricing_client()
                found = on_demand_price(clients["pricing"], instance_type, region)
                if found is None:
                    missing.append(f"on-demand {instance_type} {region}: not in the Price List API")
                else:
                    prices.append(found)
            if "spot" in options:
                if region not in clients:
                    clients[region] = ec2_client(region)
                found = spot_price(clients[region], instance_type, region)
                if found is None:
                    missing.append(f"spot {instance_type} {region}: no spot price history (not offered as spot?)")
                else:
                    prices.append(found)
    except botocore.exceptions.NoCredentialsError:
        raise PricingError(
            "cannot refresh prices: no AWS credentials found; configure them (aws configure, or AWS_PROFILE) "
            "with pricing:GetProducts and ec2:DescribeSpotPriceHistory allowed"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PricingError(f"cannot refresh prices from AWS: {message}") from None
    return RefreshResult(tuple(prices), tuple(missing))

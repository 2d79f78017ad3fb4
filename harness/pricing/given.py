"""Prices the user gives: ``--price-per-hour`` and the suite file's ``[pricing]`` table.

A ``[pricing]`` table either states the price::

    [pricing]
    usd_per_hour = 0.42            # required unless instance_type is given
    source = "our colo contract"   # default: "suite file [pricing] table"
    as_of = "2026-11-01"           # default: the day of the run

or names an instance whose price the catalog holds::

    [pricing]
    instance_type = "c7i.2xlarge"
    region = "us-east-1"
    purchase_option = "on-demand"  # or "spot"; default on-demand

Both are checked when the suite is loaded, so a typo fails before anything is measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from harness.errors import PricingError
from harness.pricing.catalog import Catalog
from harness.runfile.price import PURCHASE_OPTIONS, Price, check_date

__all__ = ["PRICING_TABLE_KEYS", "price_from_cli", "price_from_table", "today_utc", "validate_pricing_table"]

PRICING_TABLE_KEYS: tuple[str, ...] = ("usd_per_hour", "source", "as_of", "instance_type", "region", "purchase_option")

CLI_SOURCE = "given on the command line (--price-per-hour)"
TABLE_SOURCE = "suite file [pricing] table"


def today_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def validate_pricing_table(table: Mapping[str, Any], where: str = "suite [pricing] table") -> None:
    """Raise PricingError naming the first bad key or value; an empty table is valid (no price)."""
    if not table:
        return
    unknown = sorted(set(table) - set(PRICING_TABLE_KEYS))
    if unknown:
        raise PricingError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(PRICING_TABLE_KEYS)}")
    for key in ("source", "as_of", "instance_type", "region", "purchase_option"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise PricingError(f"{where}: {key!r} must be a non-empty string, got {table[key]!r}")
    if "usd_per_hour" in table:
        value = table["usd_per_hour"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise PricingError(f"{where}: 'usd_per_hour' must be a finite positive number, got {value!r}")
    elif "instance_type" not in table:
        raise PricingError(f"{where} needs 'usd_per_hour', or 'instance_type' and 'region' to look the price up")
    elif "region" not in table:
        raise PricingError(f"{where}: 'instance_type' needs 'region' too (e.g. region = \"us-east-1\")")
    if "as_of" in table:
        try:
            check_date(table["as_of"], f"{where}: 'as_of'")
        except PricingError as exc:
            raise PricingError(str(exc)) from None
    option = table.get("purchase_option")
    if option is not None and option not in PURCHASE_OPTIONS:
        raise PricingError(f"{where}: unknown purchase_option {option!r}; use one of: {', '.join(PURCHASE_OPTIONS)}")


def price_from_table(table: Mapping[str, Any], catalog: Callable[[], Catalog], today: str | None = None) -> Price:
    """The price a valid ``[pricing]`` table means; ``catalog`` is called only for a look-up."""
    validate_pricing_table(table)
    if "usd_per_hour" in table:
        return Price(
            instance_type=table.get("instance_type"),
            region=table.get("region"),
            purchase_option=table.get("purchase_option"),
            usd_per_hour=float(table["usd_per_hour"]),
            source=table.get("source", TABLE_SOURCE),
            as_of=table.get("as_of", today or today_utc()),
        )
    return catalog().require(table["instance_type"], table["region"], table.get("purchase_option", "on-demand"))


def price_from_cli(usd_per_hour: float, today: str | None = None) -> Price:
    """The price of ``--price-per-hour``, dated today and sourced to the command line."""
    return Price(None, None, None, usd_per_hour, CLI_SOURCE, today or today_utc())

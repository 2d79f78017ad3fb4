"""The price catalog: USD per hour per instance type, region and purchase option, each dated and sourced.

A price without its source and date is a guess, so ``Price`` cannot be made without them, and a
report prints both next to every cost. The bundled snapshot (``snapshot.json``) covers the AWS
instance families users compare for inference; ``siliconbench pricing refresh`` rebuilds it from
the AWS Price List API. A local machine has no price until the user gives one.

Catalog file format (``schema: siliconbench/prices``, version 1)::

    {"schema": "siliconbench/prices", "schema_version": 1, "generated": "YYYY-MM-DD",
     "description": "...", "prices": [Price.to_dict(), ...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.errors import OutputError, PricingError
from harness.pricing.offerings import PRICE_OVERRIDE, ultraserver_of, unpriced_reason
from harness.runfile.price import Price, check_date

__all__ = [
    "CATALOG_SCHEMA",
    "CATALOG_VERSION",
    "PRICES_ENV",
    "SNAPSHOT_PATH",
    "Catalog",
    "load_catalog",
    "save_catalog",
]

CATALOG_SCHEMA = "siliconbench/prices"
CATALOG_VERSION = 1
SNAPSHOT_PATH = Path(__file__).parent / "snapshot.json"
#: Environment variable naming a catalog file to use instead of the bundled snapshot.
PRICES_ENV = "SILICONBENCH_PRICES"


class Catalog:
    """An immutable set of prices, at most one per (instance type, region, purchase option)."""

    def __init__(self, prices: Iterable[Price], generated: str, description: str = "", origin: str = "") -> None:
        self.generated = check_date(generated, "a catalog's generated date")
        self.description = description
        #: Where the catalog was read from, for messages ("bundled snapshot", a path).
        self.origin = origin or "catalog"
        table: dict[tuple[str | None, str | None, str | None], Price] = {}
        for price in prices:
            if price.instance_type is None or price.region is None or price.purchase_option is None:
                raise PricingError(
                    f"catalog entry {price.describe()} must name instance type, region and purchase option"
                )
            if price.key in table:
                raise PricingError(f"catalog has two prices for {' '.join(str(k) for k in price.key)}")
            table[price.key] = price
        self._prices = table

    def __iter__(self) -> Iterator[Price]:
        return iter(
            sorted(
                self._prices.values(), key=lambda p: (p.instance_type or "", p.region or "", p.purchase_option or "")
            )
        )

    def __len__(self) -> int:
        return len(self._prices)

    def lookup(self, instance_type: str, region: str, purchase_option: str = "on-demand") -> Price | None:
        return self._prices.get((instance_type, region, purchase_option))

    def require(self, instance_type: str, region: str, purchase_option: str = "on-demand") -> Price:
        """The price, or a one-line error that says what the catalog does have and how to fix it."""
        found = self.lookup(instance_type, region, purchase_option)
        if found is not None:
            return found
        if ultraserver_of(instance_type) is not None:
            raise PricingError(f"no {purchase_option} price: {unpriced_reason(instance_type)}")
        regions = sorted({p.region for p in self if p.instance_type == instance_type and p.region})
        known = f"it has {instance_type} in: {', '.join(regions)}" if regions else f"it has no {instance_type} at all"
        why = unpriced_reason(instance_type)
        known = f"{known} ({why})" if why and not regions else known
        raise PricingError(
            f"no {purchase_option} price for {instance_type} in {region} in the {self.origin} "
            f"(generated {self.generated}); {known}; {PRICE_OVERRIDE}"
        )

    def select(
        self, instance_types: Iterable[str] = (), regions: Iterable[str] = (), purchase_options: Iterable[str] = ()
    ) -> list[Price]:
        """Prices matching every non-empty filter."""
        types, regs, opts = set(instance_types), set(regions), set(purchase_options)
        return [
            p
            for p in self
            if (not types or p.instance_type in types)
            and (not regs or p.region in regs)
            and (not opts or p.purchase_option in opts)
        ]

    def updated(self, prices: Iterable[Price], generated: str, description: str | None = None) -> Catalog:
        """A new catalog: these prices replace any with the same key; the others are kept."""
        table = dict(self._prices)
        for price in prices:
            table[price.key] = price
        return Catalog(table.values(), generated, self.description if description is None else description, self.origin)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": CATALOG_SCHEMA,
            "schema_version": CATALOG_VERSION,
            "generated": self.generated,
            "description": self.description,
            "prices": [p.to_dict() for p in self],
        }

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> Catalog:
        if not isinstance(data, dict) or data.get("schema") != CATALOG_SCHEMA:
            raise PricingError(f"{origin} is not a siliconbench price catalog (no 'schema': {CATALOG_SCHEMA!r})")
        if data.get("schema_version") != CATALOG_VERSION:
            raise PricingError(
                f"{origin} has price-catalog version {data.get('schema_version')!r}; this siliconbench reads "
                f"version {CATALOG_VERSION}"
            )
        entries = data.get("prices")
        if not isinstance(entries, list):
            raise PricingError(f"{origin} has no 'prices' list")
        prices = [Price.from_dict(entry, f"{origin} price #{i + 1}") for i, entry in enumerate(entries)]
        try:
            return cls(prices, data.get("generated", ""), str(data.get("description", "")), origin)
        except PricingError as exc:
            raise PricingError(f"{origin}: {exc}") from None


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog at ``path``, else at $SILICONBENCH_PRICES, else the bundled snapshot."""
    chosen = path or os.environ.get(PRICES_ENV) or None
    file = Path(chosen) if chosen else SNAPSHOT_PATH
    origin = "bundled price snapshot" if chosen is None else f"price catalog {str(file)!r}"
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise PricingError(f"{origin} does not exist; pass an existing file to --prices") from None
    except OSError as exc:
        raise PricingError(f"cannot read {origin}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PricingError(
            f"{origin} is not UTF-8 text (byte {exc.start}: {exc.reason}); is it a price catalog?"
        ) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PricingError(f"{origin} is not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:
        raise PricingError(f"{origin} is not valid JSON: {exc}") from None
    return Catalog.from_dict(data, origin)


def _reject_constant(name: str) -> Any:
    """JSON has no NaN or Infinity; Python's reader accepts them unless told not to."""
    raise ValueError(f"{name} is not a JSON number")


def save_catalog(catalog: Catalog, path: str | Path) -> Path:
    """Write the catalog as JSON (atomically, so a reader never sees half a file)."""
    from harness.runfile.atomic import atomic_write_text

    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(catalog.to_dict(), indent=1))
    except OSError as exc:
        raise OutputError(f"cannot write price catalog {str(file)!r}: {exc.strerror}") from None
    return file

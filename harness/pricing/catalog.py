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
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from harness.errors import OutputError, PricingError

__all__ = [
    "CATALOG_SCHEMA",
    "CATALOG_VERSION",
    "PRICES_ENV",
    "PURCHASE_OPTIONS",
    "SNAPSHOT_PATH",
    "Catalog",
    "Price",
    "load_catalog",
    "save_catalog",
]

CATALOG_SCHEMA = "siliconbench/prices"
CATALOG_VERSION = 1
PURCHASE_OPTIONS: tuple[str, ...] = ("on-demand", "spot")
SNAPSHOT_PATH = Path(__file__).parent / "snapshot.json"
#: Environment variable naming a catalog file to use instead of the bundled snapshot.
PRICES_ENV = "SILICONBENCH_PRICES"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_date(text: str, what: str) -> str:
    if not isinstance(text, str) or not _DATE.match(text):
        raise PricingError(f"{what} must be a date like 2026-01-31, got {text!r}")
    try:
        date.fromisoformat(text)
    except ValueError:
        raise PricingError(f"{what} is not a real date: {text!r}") from None
    return text


@dataclass(frozen=True)
class Price:
    """One hourly price. ``instance_type``/``region`` are None for a machine outside a cloud.

    ``confirmed`` is False for a price that was derived or assumed rather than read from a
    published price list; ``note`` says how it was obtained.
    """

    instance_type: str | None
    region: str | None
    purchase_option: str | None
    usd_per_hour: float
    source: str
    as_of: str
    confirmed: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        value = self.usd_per_hour
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise PricingError(f"'usd_per_hour' must be a finite positive number of USD per hour, got {value!r}")
        for name in ("instance_type", "region"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise PricingError(f"{name!r} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise PricingError("'source' must name where the price comes from (a URL or who gave it)")
        if not isinstance(self.confirmed, bool):
            raise PricingError(f"'confirmed' must be true or false, got {self.confirmed!r}")
        if not isinstance(self.note, str):
            raise PricingError(f"'note' must be a string, got {self.note!r}")
        _check_date(self.as_of, "a price's as_of date")
        if self.purchase_option is not None and self.purchase_option not in PURCHASE_OPTIONS:
            raise PricingError(
                f"unknown purchase option {self.purchase_option!r}; use one of: {', '.join(PURCHASE_OPTIONS)}"
            )

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return (self.instance_type, self.region, self.purchase_option)

    def describe(self) -> str:
        """One line for a report: what it costs, for what, from where, as of when."""
        where = " ".join(p for p in (self.instance_type, self.region, self.purchase_option) if p)
        flag = "" if self.confirmed else ", unconfirmed"
        return f"${self.usd_per_hour:g}/h{' ' + where if where else ''} ({self.source}, as of {self.as_of}{flag})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "price") -> Price:
        allowed = {f for f in cls.__dataclass_fields__}
        if not isinstance(data, dict):
            raise PricingError(f"{where} must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise PricingError(f"{where} has unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")
        missing = [k for k in ("usd_per_hour", "source", "as_of") if k not in data]
        if missing:
            raise PricingError(f"{where} lacks {missing[0]!r}")
        try:
            return cls(
                instance_type=data.get("instance_type"),
                region=data.get("region"),
                purchase_option=data.get("purchase_option"),
                usd_per_hour=data["usd_per_hour"],
                source=data["source"],
                as_of=data["as_of"],
                confirmed=data.get("confirmed", True),
                note=data.get("note", ""),
            )
        except PricingError as exc:
            raise PricingError(f"{where}: {exc}") from None


class Catalog:
    """An immutable set of prices, at most one per (instance type, region, purchase option)."""

    def __init__(self, prices: Iterable[Price], generated: str, description: str = "", origin: str = "") -> None:
        self.generated = _check_date(generated, "a catalog's generated date")
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
        regions = sorted({p.region for p in self if p.instance_type == instance_type and p.region})
        known = f"it has {instance_type} in: {', '.join(regions)}" if regions else f"it has no {instance_type} at all"
        raise PricingError(
            f"no {purchase_option} price for {instance_type} in {region} in the {self.origin} "
            f"(generated {self.generated}); {known}; give the price with --price-per-hour or "
            "usd_per_hour in the suite's [pricing] table, or run 'siliconbench pricing refresh'"
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
    from harness.runfile.files import atomic_write_text

    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(catalog.to_dict(), indent=1))
    except OSError as exc:
        raise OutputError(f"cannot write price catalog {str(file)!r}: {exc.strerror}") from None
    return file

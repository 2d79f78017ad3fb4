"""A price as a run file holds it: USD per hour, what for, from where and as of when.

``harness.pricing`` keeps catalogs of these and looks them up; the record itself lives here so
that the run file depends on nothing that looks prices up (a price without its source and date is
a guess, so ``Price`` cannot be made without them).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from harness.errors import PricingError

__all__ = ["PURCHASE_OPTIONS", "Price", "check_date"]

PURCHASE_OPTIONS: tuple[str, ...] = ("on-demand", "spot")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_date(text: str, what: str) -> str:
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
        check_date(self.as_of, "a price's as_of date")
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

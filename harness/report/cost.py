"""What a measurement costs: USD per million inferences (or tokens) at a dated, sourced price.

    cost per million = price per hour / (3600 s/h × throughput per s) × 10⁶

Throughput is the cell's measured one (batch size / median latency), so the figure is what one
instance costs per million requests served back to back at that batch size. A server cell whose
capacity was searched is priced at that capacity instead, tokens included: its tokens per request,
measured at the capacity's probe, times the capacity in requests per second
(``tokens_per_s_at_capacity``), which is the rate one instance sustains within the SLO. A run's price comes,
in order, from the run file's ``pricing`` block, its ``target`` (the AWS helper writes
``price_per_hour`` there), the catalog entry for the target's instance type, and last the
``--price-per-hour`` the user gives to the report. Nothing else: a report never invents a price.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from harness.errors import PricingError
from harness.pricing.catalog import Catalog, load_catalog
from harness.runfile.price import Price

if TYPE_CHECKING:
    from harness.runfile.records import RunRecord

__all__ = ["SECONDS_PER_HOUR", "CostBasis", "PriceResolver", "tokens_per_s_at_capacity", "usd_per_million"]

SECONDS_PER_HOUR = 3600.0
#: The rate a cost is read at: the throughput the cell measured, or the capacity a server search
#: found under the SLO. Every cost in a report names its basis (in its column and field names).
CostBasis = Literal["measured", "capacity"]


def usd_per_million(usd_per_hour: float, per_second: float | None) -> float | None:
    """USD per million units (inferences or tokens) at ``per_second`` units per second; None without a rate.

    The one cost formula of the reports; the caller chooses the rate, and so the basis."""
    if per_second is None or not per_second > 0:
        return None
    return usd_per_hour / (SECONDS_PER_HOUR * per_second) * 1e6


def tokens_per_s_at_capacity(
    capacity_rps: float | None, completed_rps: float | None, tokens_per_s: float | None
) -> float | None:
    """Tokens per second at the capacity: ``tokens_per_s / completed_rps`` (tokens per request at
    the capacity's probe, whatever the request set's lengths) times ``capacity_rps``.

    None without a capacity, a completed rate or a token rate: a figure that cannot be backed.
    """
    if not capacity_rps or not completed_rps or tokens_per_s is None:
        return None
    return capacity_rps * tokens_per_s / completed_rps


def _run_date(run: RunRecord) -> str:
    return run.started_utc[:10]


class PriceResolver:
    """Finds each run's price; loads the catalog only when a run needs a look-up."""

    def __init__(
        self,
        catalog: Catalog | Callable[[], Catalog] | str | None = None,
        fallback: Price | None = None,
    ) -> None:
        """``catalog``: a Catalog, a loader, a path, or None for $SILICONBENCH_PRICES / the snapshot.
        ``fallback``: the user's price for runs that have none of their own."""
        self._catalog: Catalog | None = catalog if isinstance(catalog, Catalog) else None
        if callable(catalog) and not isinstance(catalog, Catalog):
            self._load: Callable[[], Catalog] = catalog
        else:
            path = catalog if isinstance(catalog, str) else None
            self._load = lambda: load_catalog(path)
        self.fallback = fallback

    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = self._load()
        return self._catalog

    def for_run(self, run: RunRecord) -> tuple[Price | None, str]:
        """(price or None, a note saying where it came from or why there is none)."""
        where = f"run {run.run_id}"
        if run.pricing is not None:
            return run.pricing, "recorded in the run file"
        target = run.target
        instance_type, region = target.instance_type, target.region
        option = target.purchase_option or "on-demand"
        if target.price_per_hour is not None:
            try:
                price = Price(
                    instance_type,
                    region,
                    target.purchase_option,
                    target.price_per_hour,
                    target.price_source or "recorded in the run file's target",
                    target.price_as_of or _run_date(run),
                )
            except PricingError as exc:
                raise PricingError(f"{where} target price: {exc}") from None
            return price, "recorded in the run file's target"
        if instance_type and region:
            found = self.catalog().lookup(instance_type, region, option)
            if found is not None:
                return found, f"from the {self.catalog().origin}"
            if self.fallback is not None:
                return (
                    self.fallback,
                    f"no {option} price for {instance_type} in {region} in the {self.catalog().origin}",
                )
            return None, (
                f"no {option} price for {instance_type} in {region} in the {self.catalog().origin}; "
                "give one with --price-per-hour or --prices FILE"
            )
        if self.fallback is not None:
            return self.fallback, "the run has no price of its own"
        return None, f"{where} ({target.kind}) has no price; give one with --price-per-hour"

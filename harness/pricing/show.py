"""Print catalog prices as a table, Markdown, CSV or JSON, each with its source and date."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from harness.errors import ConfigError
from harness.pricing.catalog import Catalog
from harness.runfile.price import Price

__all__ = ["render_prices"]


def render_prices(catalog: Catalog, prices: Sequence[Price], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps({**catalog.to_dict(), "prices": [p.to_dict() for p in prices]}, indent=1)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(Price.__dataclass_fields__), lineterminator="\n")
        writer.writeheader()
        for price in prices:
            writer.writerow(price.to_dict())
        return buffer.getvalue()
    if fmt not in ("table", "markdown"):
        raise ConfigError(f"unknown format {fmt!r}; use one of: table, markdown, csv, json")
    from tabulate import tabulate

    rows = [
        [
            p.instance_type,
            p.region,
            p.purchase_option,
            f"{p.usd_per_hour:g}",
            p.as_of,
            "yes" if p.confirmed else "NO",
            p.source,
        ]
        for p in prices
    ]
    headers = ["instance type", "region", "option", "USD/hour", "as of", "confirmed", "source"]
    style = "github" if fmt == "markdown" else "simple"
    text = str(tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True))
    unconfirmed = sum(not p.confirmed for p in prices)
    footer = [f"{len(prices)} prices from the {catalog.origin} (generated {catalog.generated})."]
    if unconfirmed:
        footer.append(
            f"{unconfirmed} are not confirmed (derived, assumed or indicative spot); "
            "'--format json' shows each price's note."
        )
    if catalog.description:
        footer.append(catalog.description)
    return text + "\n\n" + "\n".join(footer)

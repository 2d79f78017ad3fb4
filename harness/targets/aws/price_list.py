"""Prices fetched from AWS itself, for ``siliconbench pricing refresh``: the real clients.

``harness.pricing.refresh`` knows what to ask AWS and how to read the answers, and takes its clients
as arguments; this module makes those clients the way every other AWS call of ours is made
(``session.ClientFactory``: bounded timeouts and retries, the user's credentials and endpoints).
The Price List API is served from a few endpoints only (its API reference, "Service Endpoint":
``api.pricing.us-east-1.amazonaws.com`` and ``api.pricing.ap-south-1.amazonaws.com``), each listing
every region's prices, so it is always asked in ``us-east-1``; spot prices are per region and come
from that region's EC2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.pricing.refresh import RefreshResult, refresh_prices
from harness.targets.aws.session import ClientFactory

__all__ = ["PRICE_LIST_REGION", "refresh_from_aws"]

#: Where the Price List API (``pricing:GetProducts``) is called; it lists every region's prices.
PRICE_LIST_REGION = "us-east-1"


def refresh_from_aws(
    pairs: Iterable[tuple[str, str]],
    purchase_options: Iterable[str],
    factory: Callable[[str], ClientFactory] = ClientFactory,
) -> RefreshResult:
    """Fetch the prices of ``pairs`` in ``purchase_options``; ``factory(region)`` makes the clients."""

    def pricing_client() -> Any:
        return factory(PRICE_LIST_REGION).client("pricing")

    def ec2_client(region: str) -> Any:
        return factory(region).client("ec2")

    return refresh_prices(pairs, purchase_options, pricing_client, ec2_client)

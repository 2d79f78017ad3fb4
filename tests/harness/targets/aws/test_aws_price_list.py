"""``pricing refresh``'s real clients: EC2 in each pair's region, the Price List API in its home region.

moto serves ``DescribeSpotPriceHistory`` (a fixed 0.00001 USD in every zone that offers the type) but
not the Price List API, which the AWS Price List Service API reference ("Service Endpoint") serves
from ``api.pricing.us-east-1`` and ``api.pricing.ap-south-1`` only, each with every region's prices;
so an on-demand price for a pair in ``eu-west-1`` is still asked of ``us-east-1``.
"""

from __future__ import annotations

import pytest

from harness.errors import PricingError
from harness.targets.aws.price_list import PRICE_LIST_REGION, refresh_from_aws
from harness.targets.aws.session import ClientFactory


def _recording(moto_endpoint: str, asked: list[str]):  # type: ignore[no-untyped-def]
    def factory(region: str) -> ClientFactory:
        asked.append(region)
        return ClientFactory(region, endpoint_url=moto_endpoint, max_attempts=1)

    return factory


@pytest.mark.usefixtures("aws_env")
def test_spot_prices_come_from_each_pairs_own_region(moto_endpoint: str) -> None:
    asked: list[str] = []
    pairs = {("inf2.xlarge", "us-east-1"), ("g5.xlarge", "us-west-2")}
    result = refresh_from_aws(pairs, ["spot"], _recording(moto_endpoint, asked))
    assert asked == ["us-east-1", "us-west-2"]
    got = {(p.instance_type, p.region, p.purchase_option): p.usd_per_hour for p in result.prices}
    assert got == {("inf2.xlarge", "us-east-1", "spot"): 0.00001, ("g5.xlarge", "us-west-2", "spot"): 0.00001}


@pytest.mark.usefixtures("aws_env")
def test_on_demand_prices_are_asked_of_the_price_list_home_region(moto_endpoint: str) -> None:
    asked: list[str] = []
    with pytest.raises(PricingError, match="cannot refresh prices from AWS"):  # moto has no Price List API
        refresh_from_aws({("c7i.xlarge", "eu-west-1")}, ["on-demand"], _recording(moto_endpoint, asked))
    assert asked == [PRICE_LIST_REGION] == ["us-east-1"]

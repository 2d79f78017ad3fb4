"""Refreshing prices from AWS without AWS.

- Spot prices: ``ec2:DescribeSpotPriceHistory`` is served by moto, run as a real HTTP server on
  127.0.0.1 (moto answers every zone that offers the type, at a fixed 0.00001 USD).
- On-demand prices: moto has no Price List (``pricing``) service, so ``GetProducts`` is driven by
  botocore's Stubber with ``PriceList`` entries shaped exactly like AWS's documented output
  (aws-cli's ``examples/pricing/get-products.rst``: each entry a JSON *string* holding
  ``product.attributes`` and ``terms.OnDemand.<sku>.<offer>.priceDimensions.<rate>.pricePerUnit.USD``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.errors import PricingError
from harness.pricing.catalog import load_catalog
from harness.pricing.refresh import ON_DEMAND_FILTERS, on_demand_price, parse_spot, refresh_prices, spot_price

boto3 = pytest.importorskip("boto3")
Stubber = pytest.importorskip("botocore.stub").Stubber


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials that only moto accepts, and no user AWS config or instance metadata lookups."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    server._server.server_close()  # type: ignore[union-attr]  # stop() leaves the socket open


def product(
    instance_type: str, region: str, usd: float, operation: str = "RunInstances", operating_system: str = "Linux"
) -> str:
    """One GetProducts PriceList entry, in AWS's documented aws_v1 shape (a JSON string)."""
    sku = f"SKU{abs(hash((instance_type, region, operation))) % 10**8:08d}"
    rate = f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "location": "US East (N. Virginia)",
                    "locationType": "AWS Region",
                    "operatingSystem": operating_system,
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                    "operation": operation,
                    "usagetype": f"BoxUsage:{instance_type}",
                    "servicecode": "AmazonEC2",
                    "servicename": "Amazon Elastic Compute Cloud",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            rate: {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "beginRange": "0",
                                "appliesTo": [],
                                "rateCode": rate,
                                "description": f"${usd} per On Demand {operating_system} {instance_type} Instance Hour",
                                "pricePerUnit": {"USD": f"{usd:.10f}"},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-10-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                },
                "Reserved": {
                    f"{sku}.4NA7Y494T4": {
                        "priceDimensions": {
                            f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "description": "Linux reserved",
                                "pricePerUnit": {"USD": "0.1000000000"},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-10-01T00:00:00Z",
                        "offerTermCode": "4NA7Y494T4",
                        "termAttributes": {"LeaseContractLength": "1yr", "PurchaseOption": "No Upfront"},
                    }
                },
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def expected_request(instance_type: str, region: str, token: str | None = None) -> dict[str, Any]:
    fields = {"instanceType": instance_type, "regionCode": region, **ON_DEMAND_FILTERS}
    request: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "FormatVersion": "aws_v1",
        "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()],
    }
    if token:
        request["NextToken"] = token
    return request


def pricing_client() -> Any:
    # A new session each time: boto3's default session caches the credentials it first found.
    return boto3.Session().client("pricing", region_name="us-east-1")


def ec2_client(region: str, url: str) -> Any:
    return boto3.Session().client("ec2", region_name=region, endpoint_url=url)


def test_get_products_is_paginated_and_filtered_to_linux_on_demand() -> None:
    client = pricing_client()
    with Stubber(client) as stub:
        # Page 1 holds a Windows product (which real filters would exclude; the parser checks too).
        stub.add_response(
            "get_products",
            {
                "FormatVersion": "aws_v1",
                "NextToken": "page-2",
                "PriceList": [product("inf2.xlarge", "us-east-1", 1.1182, "RunInstances:0002", "Windows")],
            },
            expected_request("inf2.xlarge", "us-east-1"),
        )
        stub.add_response(
            "get_products",
            {
                "FormatVersion": "aws_v1",
                "PriceList": [product("inf2.xlarge", "us-east-1", 0.7582)],
            },
            expected_request("inf2.xlarge", "us-east-1", "page-2"),
        )
        price = on_demand_price(client, "inf2.xlarge", "us-east-1")
        stub.assert_no_pending_responses()
    assert price is not None
    assert (price.instance_type, price.region, price.purchase_option) == ("inf2.xlarge", "us-east-1", "on-demand")
    assert price.usd_per_hour == 0.7582  # the OnDemand term, not the Reserved one
    assert price.as_of == "2026-11-01"
    assert "offer version 20261101000000" in price.note and price.confirmed


def test_two_different_matching_prices_are_refused_rather_than_guessed() -> None:
    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response(
            "get_products",
            {
                "FormatVersion": "aws_v1",
                "PriceList": [product("g5.xlarge", "us-east-1", 1.006), product("g5.xlarge", "us-east-1", 1.2)],
            },
            expected_request("g5.xlarge", "us-east-1"),
        )
        with pytest.raises(PricingError, match="2 different on-demand prices"):
            on_demand_price(client, "g5.xlarge", "us-east-1")


def test_an_unknown_instance_type_gives_no_price() -> None:
    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response(
            "get_products", {"FormatVersion": "aws_v1", "PriceList": []}, expected_request("x9.huge", "us-east-1")
        )
        assert on_demand_price(client, "x9.huge", "us-east-1") is None


def test_spot_prices_come_from_moto_for_every_zone_that_offers_the_type(moto_url: str) -> None:
    client = ec2_client("us-east-1", moto_url)
    price = spot_price(client, "inf2.xlarge", "us-east-1")
    assert price is not None
    assert (price.purchase_option, price.usd_per_hour) == ("spot", 0.00001)  # moto's fixed spot price
    # moto offers inf2.xlarge in four us-east-1 zones (its instance-type offerings data).
    assert "across 4 availability zone(s)" in price.note
    assert spot_price(client, "trn2.48xlarge", "us-east-1") is None  # not offered there: no history


def test_spot_takes_the_latest_price_per_zone_and_then_the_lowest_zone() -> None:
    def entry(zone: str, usd: str, hour: int, product_description: str = "Linux/UNIX") -> dict[str, Any]:
        return {
            "AvailabilityZone": zone,
            "InstanceType": "g5.xlarge",
            "ProductDescription": product_description,
            "SpotPrice": usd,
            "Timestamp": datetime(2026, 11, 24, hour, tzinfo=UTC),
        }

    history = [
        entry("us-east-1a", "0.30", 1),
        entry("us-east-1a", "0.45", 5),  # a is now 0.45
        entry("us-east-1b", "0.50", 2),
        entry("us-east-1b", "0.40", 4),  # b is now 0.40
        entry("us-east-1c", "0.10", 6, "Windows"),  # not Linux: ignored
    ]
    price = parse_spot(history, "g5.xlarge", "us-east-1")
    assert price is not None and price.usd_per_hour == 0.40
    assert "in us-east-1b" in price.note and "2 availability zone(s)" in price.note
    assert price.as_of == "2026-11-24"


def test_refresh_fetches_both_options_and_lists_what_aws_lacks(moto_url: str) -> None:
    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [product("c7i.xlarge", "us-east-1", 0.1785)]},
            expected_request("c7i.xlarge", "us-east-1"),
        )
        stub.add_response(
            "get_products", {"FormatVersion": "aws_v1", "PriceList": []}, expected_request("trn2.48xlarge", "us-east-1")
        )
        result = refresh_prices(
            [("c7i.xlarge", "us-east-1"), ("trn2.48xlarge", "us-east-1")],
            ["on-demand", "spot"],
            lambda: client,
            lambda region: ec2_client(region, moto_url),
        )
    got = {(p.instance_type, p.purchase_option): p.usd_per_hour for p in result.prices}
    assert got == {("c7i.xlarge", "on-demand"): 0.1785, ("c7i.xlarge", "spot"): 0.00001}
    assert result.missing == (
        "on-demand trn2.48xlarge us-east-1: not in the Price List API",
        "spot trn2.48xlarge us-east-1: no spot price history (not offered as spot?)",
    )


def test_missing_credentials_are_a_one_line_error(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    with pytest.raises(PricingError, match="no AWS credentials found") as excinfo:
        refresh_prices(
            [("g5.xlarge", "us-east-1")], ["spot"], pricing_client, lambda region: ec2_client(region, moto_url)
        )
    assert "\n" not in str(excinfo.value)


def test_pricing_refresh_command_rewrites_spot_prices_and_keeps_the_rest(
    run_cli: Any, moto_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "prices.json"
    done = run_cli(
        "pricing",
        "refresh",
        "--purchase-option",
        "spot",
        "--instance-type",
        "inf2.xlarge",
        "--region",
        "us-east-1",
        "--output",
        str(output),
        timeout=120,
        env={
            "AWS_ENDPOINT_URL_EC2": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "1 prices refreshed" in done.stderr
    refreshed, bundled = load_catalog(output), load_catalog()
    assert len(refreshed) == len(bundled)
    spot = refreshed.require("inf2.xlarge", "us-east-1", "spot")
    assert spot.usd_per_hour == 0.00001 and "DescribeSpotPriceHistory" in spot.note
    assert refreshed.require("inf2.xlarge", "us-east-1") == bundled.require("inf2.xlarge", "us-east-1")


def test_refresh_without_names_refreshes_the_catalogs_own_pairs(run_cli: Any, moto_url: str, tmp_path: Path) -> None:
    from harness.pricing.catalog import Catalog, save_catalog
    from harness.runfile.price import Price

    small = save_catalog(
        Catalog(
            [
                Price("inf2.xlarge", "us-east-1", "on-demand", 0.7582, "s", "2026-01-01"),
                Price("g5.xlarge", "us-west-2", "on-demand", 1.006, "s", "2026-01-01"),
            ],
            "2026-01-01",
        ),
        tmp_path / "small.json",
    )
    output = tmp_path / "out.json"
    done = run_cli(
        "pricing", "refresh", "--prices", str(small), "--purchase-option", "spot", "--output", str(output),
        timeout=120,
        env={"AWS_ENDPOINT_URL_EC2": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
             "AWS_EC2_METADATA_DISABLED": "true"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    keys = {p.key for p in load_catalog(output)}
    # Spot prices for exactly the two pairs the catalog had, not for every type in every region.
    assert keys == {
        ("inf2.xlarge", "us-east-1", "on-demand"), ("inf2.xlarge", "us-east-1", "spot"),
        ("g5.xlarge", "us-west-2", "on-demand"), ("g5.xlarge", "us-west-2", "spot"),
    }  # fmt: skip


def test_pairs_to_refresh_crosses_named_types_and_regions_or_narrows_the_catalog() -> None:
    from harness.errors import ConfigError
    from harness.pricing.catalog import Catalog, Price
    from harness.pricing.refresh import pairs_to_refresh

    catalog = Catalog(
        [
            Price("inf2.xlarge", "us-east-1", "on-demand", 0.7582, "s", "2026-01-01"),
            Price("inf2.xlarge", "us-east-1", "spot", 0.3, "s", "2026-01-01"),
            Price("g5.xlarge", "us-west-2", "on-demand", 1.006, "s", "2026-01-01"),
        ],
        "2026-01-01",
    )
    assert pairs_to_refresh(catalog, ["trn2.48xlarge"], ["us-east-2"]) == {("trn2.48xlarge", "us-east-2")}
    assert pairs_to_refresh(catalog) == {("inf2.xlarge", "us-east-1"), ("g5.xlarge", "us-west-2")}
    assert pairs_to_refresh(catalog, regions=["us-west-2"]) == {("g5.xlarge", "us-west-2")}
    with pytest.raises(ConfigError, match="name both --instance-type and --region"):
        pairs_to_refresh(catalog, ["trn2.48xlarge"])

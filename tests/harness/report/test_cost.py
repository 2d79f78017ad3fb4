"""Cost arithmetic on hand-computed cases, and where each run's price comes from."""

from __future__ import annotations

import pytest

from harness.errors import RunFileError
from harness.pricing.catalog import Catalog
from harness.pricing.given import price_from_cli
from harness.report.cost import PriceResolver, usd_per_million
from harness.report.formats import render
from harness.report.rows import cell_rows
from harness.runfile.price import Price
from tests.harness.runfactory import make_cell, make_failed_cell, make_run


def test_cost_per_million_inferences_by_hand() -> None:
    # $3.60/h at 1000 inf/s: 3.6 / (3600 * 1000) * 1e6 = $1.00 per million.
    assert usd_per_million(3.6, 1000.0) == pytest.approx(1.0, rel=1e-12)
    # inf2.xlarge on demand at 250 inf/s: 0.7582 / 900000 * 1e6 = 0.842444...
    assert usd_per_million(0.7582, 250.0) == pytest.approx(0.8424444444, rel=1e-9)
    # Per token: 128 tokens per inference at 250 inf/s = 32000 tokens/s -> 0.7582 / 115.2e6 * 1e6.
    assert usd_per_million(0.7582, 250.0 * 128) == pytest.approx(0.00658159722, rel=1e-9)


def test_no_rate_means_no_cost_rather_than_infinity() -> None:
    assert usd_per_million(1.0, 0.0) is None
    assert usd_per_million(1.0, None) is None


def _cell_at(throughput_per_s: float, batch_size: int = 1, tokens: int = 0) -> dict:
    # A constant latency gives an exact median, so the throughput is exactly batch / latency.
    latency_ns = round(batch_size / throughput_per_s * 1e9)
    return make_cell([latency_ns] * 50, batch_size=batch_size, tokens_per_sample=tokens)


def test_report_rows_carry_cost_at_the_recorded_price() -> None:
    price = Price(None, None, None, 0.9, "our rack contract", "2026-10-01").to_dict()
    run = make_run([_cell_at(500.0), _cell_at(2000.0, batch_size=4, tokens=64)], pricing=price)
    first, second = cell_rows([run])
    assert first.usd_per_million_headline == pytest.approx(0.9 / (3600 * 500.0) * 1e6)  # 0.5 $/M
    assert first.usd_per_million_headline == pytest.approx(0.5)
    assert first.usd_per_million_tokens is None
    assert second.usd_per_million_headline == pytest.approx(0.125)  # 0.9 / 7.2e6 * 1e6
    assert second.usd_per_million_tokens == pytest.approx(0.125 / 64)
    assert first.price_source == "our rack contract" and first.price_as_of == "2026-10-01"


def test_markdown_report_shows_cost_with_the_price_source_and_date() -> None:
    price = Price(
        "c7i.2xlarge", "us-east-1", "on-demand", 0.357, "https://aws.amazon.com/ec2/pricing/on-demand/", "2026-11-24"
    ).to_dict()
    text = render([make_run([_cell_at(1000.0)], pricing=price)], "markdown")
    assert "$/M inf" in text
    assert "0.0992" in text  # 0.357 / 3.6e6 * 1e6 = 0.09916...
    assert (
        "$0.357/h c7i.2xlarge us-east-1 on-demand (https://aws.amazon.com/ec2/pricing/on-demand/, as of 2026-11-24)"
        in text
    )


def test_a_local_run_without_a_price_gets_no_cost_and_no_invented_price() -> None:
    run = make_run([_cell_at(1000.0)])
    (row,) = cell_rows([run])
    assert row.usd_per_million_headline is None and row.usd_per_hour is None
    assert "has no price" in row.price_note
    assert "$/M" not in render([run], "table")


def test_the_users_price_applies_only_to_runs_without_one() -> None:
    own = Price(None, None, None, 2.0, "recorded", "2026-10-01").to_dict()
    priced = make_run([_cell_at(1000.0)], run_id="20261101T100000Z-bbbbbb", pricing=own)
    local = make_run([_cell_at(1000.0)])
    resolver = PriceResolver(Catalog([], "2026-11-24"), fallback=price_from_cli(0.36, today="2026-11-24"))
    rows = {r.run_id: r for r in cell_rows([priced, local], resolver)}
    assert rows["20261101T100000Z-bbbbbb"].usd_per_hour == 2.0
    assert rows[local.run_id].usd_per_hour == 0.36
    assert rows[local.run_id].usd_per_million_headline == pytest.approx(0.1)
    assert "--price-per-hour" in rows[local.run_id].price_source


def test_an_aws_run_is_priced_from_the_catalog_for_its_instance_type() -> None:
    target = {"kind": "aws", "instance_type": "inf2.xlarge", "region": "us-east-1"}
    (row,) = cell_rows([make_run([_cell_at(250.0)], target=target)])
    assert row.usd_per_hour == 0.7582  # the bundled snapshot's on-demand price
    assert row.usd_per_million_headline == pytest.approx(0.8424444444)
    assert "bundled price snapshot" in row.price_note


def test_a_target_price_recorded_by_the_aws_helper_wins_over_the_catalog() -> None:
    target = {
        "kind": "aws",
        "instance_type": "inf2.xlarge",
        "region": "us-east-1",
        "purchase_option": "spot",
        "price_per_hour": 0.25,
        "price_source": "ec2 spot price at launch",
        "price_as_of": "2026-11-20",
    }
    (row,) = cell_rows([make_run([_cell_at(250.0)], target=target)])
    assert row.usd_per_hour == 0.25 and row.price_as_of == "2026-11-20"


def test_an_instance_type_missing_from_the_catalog_is_reported_not_guessed() -> None:
    target = {"kind": "aws", "instance_type": "x9z.huge", "region": "us-east-1"}
    (row,) = cell_rows([make_run([_cell_at(250.0)], target=target)])
    assert row.usd_per_million_headline is None
    assert "no on-demand price for x9z.huge in us-east-1" in row.price_note


def test_a_malformed_recorded_price_is_a_one_line_error_when_the_run_file_is_read() -> None:
    with pytest.raises(RunFileError, match="positive number") as info:
        make_run([_cell_at(250.0)], pricing={"usd_per_hour": -1, "source": "x", "as_of": "2026-01-01"})
    assert "\n" not in str(info.value)


def test_failed_cells_have_no_cost() -> None:
    price = Price(None, None, None, 1.0, "x", "2026-10-01").to_dict()
    (row,) = cell_rows([make_run([make_failed_cell()], pricing=price)])
    assert row.status == "failed" and row.usd_per_million_headline is None


def test_tokens_at_capacity_scale_the_measured_tokens_per_request() -> None:
    from harness.report.cost import tokens_per_s_at_capacity

    # 2 req/s completed at 100 tokens/s is 50 tokens a request; at 8 req/s that is 400 tokens/s.
    assert tokens_per_s_at_capacity(8.0, 2.0, 100.0) == pytest.approx(400.0)
    assert tokens_per_s_at_capacity(None, 2.0, 100.0) is None
    assert tokens_per_s_at_capacity(8.0, 0.0, 100.0) is None
    assert tokens_per_s_at_capacity(8.0, 2.0, None) is None

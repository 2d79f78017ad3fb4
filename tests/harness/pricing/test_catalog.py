"""The price catalog: the bundled snapshot, look-ups, files, and prices the user gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError, PricingError
from harness.pricing.catalog import PRICES_ENV, SNAPSHOT_PATH, Catalog, load_catalog, save_catalog
from harness.pricing.given import price_from_cli, price_from_table, validate_pricing_table
from harness.run.plan import DEFAULT_SUITE, load_suite_file
from harness.runfile.price import Price

FAMILIES = ("inf2", "trn1", "g5", "g6", "g6e", "p4d", "p5", "c7i", "c7g", "m7i")


def test_the_snapshot_covers_the_families_users_compare_in_both_regions() -> None:
    catalog = load_catalog(SNAPSHOT_PATH)
    for family in FAMILIES:
        for region in ("us-east-1", "us-west-2"):
            found = [
                p
                for p in catalog.select(regions=[region], purchase_options=["on-demand"])
                if p.instance_type and p.instance_type.split(".")[0] == family
            ]
            assert found, f"no on-demand {family} price in {region}"
    # trn2 is listed where AWS sells it; the entry's note says it is absent from the two regions.
    trn2 = catalog.select(instance_types=["trn2.48xlarge"])
    assert trn2 and "only in us-east-2" in trn2[0].note


def test_every_snapshot_price_has_a_source_a_date_and_says_how_it_was_obtained() -> None:
    catalog = load_catalog(SNAPSHOT_PATH)
    assert len(catalog) > 100
    for price in catalog:
        assert price.source.startswith("https://aws.amazon.com/")
        assert price.as_of <= catalog.generated
        assert price.note, f"{price.key} has no note"
        if not price.confirmed:
            assert any(word in price.note for word in ("assumed", "derived", "indicative")), price.key


def test_known_published_prices_are_in_the_snapshot() -> None:
    catalog = load_catalog()
    assert catalog.require("inf2.xlarge", "us-east-1").usd_per_hour == 0.7582
    assert catalog.require("g5.xlarge", "us-west-2").usd_per_hour == 1.006
    assert catalog.require("trn1.32xlarge", "us-west-2").usd_per_hour == 21.5
    assert catalog.require("c7g.xlarge", "us-east-1").usd_per_hour == 0.145
    spot = catalog.require("inf2.xlarge", "us-east-1", "spot")
    assert spot.usd_per_hour < 0.7582 and not spot.confirmed


def test_a_missing_price_is_a_one_line_error_that_says_what_exists_and_how_to_fix_it() -> None:
    catalog = load_catalog()
    with pytest.raises(PricingError) as excinfo:
        catalog.require("inf2.xlarge", "eu-west-1")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "no on-demand price for inf2.xlarge in eu-west-1" in message
    assert "us-east-1, us-west-2" in message and "--price-per-hour" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"usd_per_hour": 0}, "positive number"),
        ({"usd_per_hour": True}, "positive number"),
        ({"source": " "}, "must name where the price comes from"),
        ({"as_of": "24/11/2026"}, "date like"),
        ({"as_of": "2026-02-30"}, "not a real date"),
        ({"purchase_option": "reserved"}, "unknown purchase option"),
    ],
)
def test_a_price_without_a_valid_value_source_or_date_cannot_exist(changes: dict, expected: str) -> None:
    fields = {
        "instance_type": "x",
        "region": "r",
        "purchase_option": "on-demand",
        "usd_per_hour": 1.0,
        "source": "s",
        "as_of": "2026-01-01",
    } | changes
    with pytest.raises(PricingError, match=expected):
        Price(**fields)


def test_catalog_files_round_trip_and_updates_replace_only_their_keys(tmp_path: Path) -> None:
    a = Price("a.x", "r1", "on-demand", 1.0, "s", "2026-01-01")
    b = Price("b.x", "r1", "spot", 0.5, "s", "2026-01-01")
    path = save_catalog(Catalog([a, b], "2026-01-02", "test"), tmp_path / "sub" / "prices.json")
    loaded = load_catalog(path)
    assert list(loaded) == [a, b] and loaded.generated == "2026-01-02"
    newer = Price("b.x", "r1", "spot", 0.4, "s", "2026-02-01")
    updated = loaded.updated([newer], "2026-02-01")
    assert updated.lookup("b.x", "r1", "spot") == newer and updated.lookup("a.x", "r1") == a


def test_a_duplicate_key_is_refused() -> None:
    price = Price("a.x", "r1", "on-demand", 1.0, "s", "2026-01-01")
    with pytest.raises(PricingError, match="two prices"):
        Catalog([price, price], "2026-01-01")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"schema": "siliconbench/prices", "schema_version": 1, "prices": [', "not valid JSON"),
        ('{"schema": "siliconbench/prices", "schema_version": 2, "prices": []}', "version 2"),
        ('{"prices": []}', "not a siliconbench price catalog"),
        (
            '{"schema": "siliconbench/prices", "schema_version": 1, "generated": "2026-01-01", "prices": '
            '[{"usd_per_hour": 1, "source": "s", "as_of": "2026-01-01", "colour": "red"}]}',
            "unknown key 'colour'",
        ),
    ],
)
def test_bad_catalog_files_give_one_line_errors(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(PricingError, match=expected):
        load_catalog(path)


def test_the_environment_variable_selects_another_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_catalog(
        Catalog([Price("a.x", "r1", "on-demand", 1.0, "s", "2026-01-01")], "2026-01-01"), tmp_path / "p.json"
    )
    monkeypatch.setenv(PRICES_ENV, str(path))
    assert [p.instance_type for p in load_catalog()] == ["a.x"]
    monkeypatch.setenv(PRICES_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(PricingError, match="does not exist"):
        load_catalog()


def test_a_pricing_table_states_a_price_or_looks_one_up() -> None:
    stated = price_from_table({"usd_per_hour": 0.42, "source": "colo", "as_of": "2026-11-01"}, load_catalog)
    assert (stated.usd_per_hour, stated.source, stated.as_of) == (0.42, "colo", "2026-11-01")
    defaulted = price_from_table({"usd_per_hour": 1}, load_catalog, today="2026-11-24")
    assert defaulted.source == "suite file [pricing] table" and defaulted.as_of == "2026-11-24"
    looked_up = price_from_table({"instance_type": "c7i.2xlarge", "region": "us-east-1"}, load_catalog)
    assert looked_up.usd_per_hour == 0.357 and looked_up.instance_type == "c7i.2xlarge"
    with pytest.raises(PricingError, match=r"no on-demand price for c7i\.3xlarge"):
        price_from_table({"instance_type": "c7i.3xlarge", "region": "us-east-1"}, load_catalog)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"usd_per_houre": 1.0}, "unknown key 'usd_per_houre'; allowed keys: usd_per_hour"),
        ({"source": "x"}, "needs 'usd_per_hour', or 'instance_type' and 'region'"),
        ({"instance_type": "c7i.xlarge"}, "needs 'region' too"),
        ({"usd_per_hour": "0.3"}, "positive number"),
        ({"usd_per_hour": 1, "as_of": "yesterday"}, "date like"),
        ({"usd_per_hour": 1, "purchase_option": "reserved"}, "unknown purchase_option"),
    ],
)
def test_bad_pricing_tables_are_refused(table: dict, expected: str) -> None:
    with pytest.raises(PricingError, match=expected):
        validate_pricing_table(table)


def test_a_suite_file_with_a_bad_pricing_table_fails_when_loaded(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('workloads = ["mlp"]\n[pricing]\nusd_per_hour = 0.5\nsource = "lab"\n')
    assert load_suite_file(good).pricing.pricing == {"usd_per_hour": 0.5, "source": "lab"}
    bad = tmp_path / "bad.toml"
    bad.write_text('workloads = ["mlp"]\n[pricing]\nprice = 0.5\n')
    with pytest.raises(ConfigError, match="unknown key 'price'"):
        load_suite_file(bad)
    assert DEFAULT_SUITE.pricing.pricing == {}


def test_a_command_line_price_is_dated_and_sourced() -> None:
    price = price_from_cli(0.5, today="2026-11-24")
    assert Price.from_dict(json.loads(json.dumps(price.to_dict()))) == price  # survives a run file
    assert price.describe() == "$0.5/h (given on the command line (--price-per-hour), as of 2026-11-24)"


def test_the_snapshot_prices_only_what_the_harness_runs_and_what_aws_sells_today() -> None:
    """inf1 (retired torch-neuron; the harness refuses it) is gone; the larger g6e sizes and p5en
    are in, each dated and sourced (skypilot-catalog mirror 001367d2, read 2026-12-03)."""
    from harness.targets.aws.ami import validate_instance_type

    catalog = load_catalog(SNAPSHOT_PATH)
    for price in catalog:
        validate_instance_type(str(price.instance_type))  # raises for a type the harness refuses
    assert not catalog.select(instance_types=["inf1.xlarge", "inf1.24xlarge"])
    for instance_type, usd in (("g6e.16xlarge", 7.57719), ("g6e.24xlarge", 15.06559)):
        for region in ("us-east-1", "us-west-2"):
            price = catalog.require(instance_type, region)
            assert (price.usd_per_hour, price.as_of, price.confirmed) == (usd, "2026-12-03", True)
            assert "001367d2" in price.note
    p5en = catalog.require("p5en.48xlarge", "us-east-1")
    assert not p5en.confirmed and "indicative" in p5en.note


def test_the_old_catalog_would_fail_the_same_check() -> None:
    from harness.targets.aws.ami import validate_instance_type

    with pytest.raises(ConfigError, match="retired torch-neuron"):
        validate_instance_type("inf1.xlarge")


@pytest.mark.parametrize(
    ("instance_type", "fragment"),
    [
        ("trn2u.48xlarge", "u-trn2x64 (4 instances, NeuronLink)"),
        ("p6e-gb200.36xlarge", "u-p6e-gb200x72 (18 instances, NVLink)"),
        ("trn3.48xlarge", "Trn3 UltraServers"),
    ],
)
def test_an_ultraserver_member_has_no_instance_price_and_says_why(instance_type: str, fragment: str) -> None:
    catalog = load_catalog(SNAPSHOT_PATH)
    for option in ("on-demand", "spot"):
        with pytest.raises(PricingError) as excinfo:
            catalog.require(instance_type, "us-east-2", option)
        message = str(excinfo.value)
        assert "\n" not in message and fragment in message
        assert "Capacity Block" in message and "--price-per-hour" in message


def test_a_type_aws_sells_that_the_snapshot_lacks_says_so() -> None:
    from harness.pricing.offerings import KNOWN_UNPRICED

    catalog = load_catalog(SNAPSHOT_PATH)
    for instance_type in KNOWN_UNPRICED:
        assert not catalog.select(instance_types=[instance_type]), f"{instance_type} is priced now: drop it"
    with pytest.raises(PricingError, match=r"AWS sells trn2\.3xlarge but the bundled snapshot's source has no price"):
        catalog.require("trn2.3xlarge", "us-east-2")


def test_every_no_price_line_says_how_to_give_one() -> None:
    """The user can still price what the catalog cannot: the catalog's error and the plan's line
    for every known-unpriced type (and for one the catalog simply lacks) name ``--price-per-hour``."""
    from harness.pricing.offerings import KNOWN_UNPRICED
    from harness.targets.aws.prices import on_demand_price

    catalog = load_catalog(SNAPSHOT_PATH)
    for instance_type in (*KNOWN_UNPRICED, "m5.xlarge"):
        with pytest.raises(PricingError) as excinfo:
            catalog.require(instance_type, "us-east-1")
        message = str(excinfo.value)
        assert "\n" not in message and message.count("--price-per-hour USD") == 1, message
        planned = on_demand_price("us-east-1", instance_type)
        assert planned.per_hour is None and "--price-per-hour USD" in planned.source, planned.source


def test_an_aws_plan_of_an_ultraserver_member_explains_its_missing_price() -> None:
    from harness.targets.aws.prices import on_demand_price

    price = on_demand_price("us-east-2", "trn2u.48xlarge")
    assert price.per_hour is None and "UltraServer" in price.source and "--price-per-hour" in price.source

"""The bundle a run ships: a wheel of the running siliconbench and its pure-Python dependencies,
repacked from this machine's installed copies; compiled packages are named, not shipped."""

from __future__ import annotations

import json
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.targets.aws import ship


def test_bundle_holds_siliconbench_and_its_pure_dependencies(tmp_path: Path, wheel_cache: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SILICONBENCH_WHEEL_CACHE", str(wheel_cache))
    shipment = ship.build_shipment(tmp_path)
    with tarfile.open(shipment.bundle) as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile(ship.MANIFEST).read())  # type: ignore[union-attr]
    assert manifest["wheel"] == shipment.wheel_name and shipment.wheel_name.startswith("siliconbench-0.1.0-")
    assert f"wheels/{shipment.wheel_name}" in names
    shipped = {name.split("-")[0].lower() for name in manifest["dependencies"]}
    assert {"tabulate", "boto3", "botocore", "jsonschema", "transformers"} <= shipped
    assert {"torch", "numpy", "rpds-py", "tokenizers"} <= set(manifest["compiled"])
    assert not {"torch", "numpy"} & shipped, "compiled packages are never shipped"
    assert all(name.endswith("-none-any.whl") for name in manifest["dependencies"])
    with zipfile.ZipFile(next(wheel_cache.rglob(shipment.wheel_name))) as wheel:
        files = wheel.namelist()
    assert "harness/targets/aws/policies/caller-policy.json" in files and "harness/targets/aws/userdata.py" in files


def test_a_repacked_wheel_has_the_installed_files_and_a_valid_record(tmp_path: Path) -> None:
    dist = metadata.distribution("tabulate")
    assert ship.is_pure(dist) and not ship.is_pure(metadata.distribution("numpy"))
    wheel = ship.repack(dist, tmp_path)
    assert wheel.name == f"tabulate-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record = archive.read(f"tabulate-{dist.version}.dist-info/RECORD").decode().splitlines()
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if digest:
                assert len(archive.read(name)) == int(size)
    installed = {f.as_posix() for f in dist.files or () if not f.as_posix().startswith("..") and f.suffix != ".pyc"}
    installed -= {f"tabulate-{dist.version}.dist-info/{n}" for n in ("INSTALLER", "REQUESTED", "direct_url.json")}
    assert {n for n in installed if "__pycache__" not in n} == names


def test_a_given_wheel_is_shipped_as_it_is(tmp_path: Path, siliconbench_wheel: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ship, "_source_root", lambda: pytest.fail("a given wheel must not be rebuilt"))
    shipment = ship.build_shipment(tmp_path / "out", siliconbench_wheel)
    assert shipment.wheel_name == siliconbench_wheel.name
    not_a_wheel = tmp_path / "siliconbench-0.1.0-py3-none-any.whl"
    not_a_wheel.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="is not a wheel"):
        ship.build_shipment(tmp_path / "bad", not_a_wheel)


def test_a_dependency_not_installed_here_cannot_be_shipped() -> None:
    with pytest.raises(ConfigError, match="'no-such-package-xyz', which is not installed here"):
        ship.dependency_closure(["no-such-package-xyz>=1"], ())

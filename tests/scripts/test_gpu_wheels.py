"""The wheel set for the GPU machine: complete, minimal, one version each, for Python 3.12.

The resolver tests build small fake wheels (a METADATA file is all pip's resolver reads) and
let pip's own ``--dry-run`` resolve them for CPython 3.12 on manylinux x86-64, as
``scripts/gpu_wheels_check.py`` does for the real ``.whl/``.
"""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts.gpu_wheels_check import (
    IMAGE_LIST,
    OVERRIDE_MARK,
    WHEEL_LIST,
    check,
    module_level_imports,
    placeholder_version,
    read_image_list,
    read_wheel_list,
    unmet_imports,
)
from tests.conftest import REPO_ROOT


def fake_wheel(folder: Path, name: str, version: str, requires: list[str], tag: str = "py3-none-any") -> Path:
    """A wheel holding only its metadata: enough for pip's resolver and for the checker."""
    stem = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{stem}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        extras = sorted({str(r.marker).split('"')[1] for r in map(Requirement, requires) if r.marker})
        metadata += "".join(f"Provides-Extra: {e}\n" for e in extras)
        metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
        archive.writestr(f"{stem}.dist-info/METADATA", metadata)
        archive.writestr(f"{stem}.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n")
        archive.writestr(f"{stem}.dist-info/RECORD", "")
    return path


#: A small image: what the real one has for siliconbench, with some versions unknown.
IMAGE: dict[str, Version | None] = {
    "torch": Version("2.11.0"),
    "numpy": Version("2.5.2"),
    "transformers": Version("5.17.0"),
    "tabulate": None,
    "nvidia-ml-py": None,
    "matplotlib": None,
    "attrs": None,
    "pytest": None,
    "pytest-timeout": None,
    "pytest-benchmark": None,
}
SILICONBENCH = [
    "torch>=2.1",
    "numpy>=1.24",
    "tabulate>=0.9",
    "jsonschema>=4.18",
    "transformers>=4.40",
    'nvidia-ml-py>=12; extra == "cuda"',
    'matplotlib>=3.7; extra == "plot"',
    'boto3>=1.28; extra == "aws"',
]
RPDS_312 = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"


def complete_set(folder: Path) -> Path:
    folder.mkdir()
    fake_wheel(folder, "siliconbench", "0.1.0", SILICONBENCH)
    fake_wheel(folder, "jsonschema", "4.26.0", ["attrs>=22.2.0", "rpds-py>=0.25.0", 'idna; extra == "format"'])
    fake_wheel(folder, "rpds-py", "2026.9.1", [], tag=RPDS_312)
    return folder


@pytest.mark.slow
def test_a_complete_set_passes(tmp_path: Path) -> None:
    assert check(complete_set(tmp_path / "w"), IMAGE, scan=None) == []


@pytest.mark.slow
def test_a_missing_requirement_is_named(tmp_path: Path) -> None:
    folder = complete_set(tmp_path / "w")
    next(folder.glob("rpds_py-*")).unlink()
    problems = check(folder, IMAGE, scan=None)
    assert len(problems) == 1
    assert "rpds-py>=0.25.0" in problems[0]


@pytest.mark.slow
def test_a_wheel_for_another_python_does_not_count(tmp_path: Path) -> None:
    """pip's tag check, for 3.12: a cp311 build of the same project leaves it unresolved."""
    folder = complete_set(tmp_path / "w")
    next(folder.glob("rpds_py-*")).unlink()
    fake_wheel(folder, "rpds-py", "2026.9.1", [], tag="cp311-cp311-manylinux_2_17_x86_64")
    problems = check(folder, IMAGE, scan=None)
    assert any("rpds-py>=0.25.0" in p for p in problems)


@pytest.mark.slow
def test_a_known_image_version_is_held_to_the_requirement(tmp_path: Path) -> None:
    folder = complete_set(tmp_path / "w")
    fake_wheel(folder, "needs-new-torch", "1.0", ["torch>=2.12"])
    fake_wheel(folder, "siliconbench", "0.1.0", [*SILICONBENCH, "needs-new-torch"])
    problems = check(folder, IMAGE, scan=None)
    assert any("torch>=2.12" in p for p in problems), problems


@pytest.mark.slow
def test_two_versions_an_image_package_and_an_unneeded_wheel_are_each_named(tmp_path: Path) -> None:
    folder = complete_set(tmp_path / "w")
    fake_wheel(folder, "rpds-py", "0.30.0", [], tag=RPDS_312)
    fake_wheel(folder, "tabulate", "0.9.0", [])
    fake_wheel(folder, "jmespath", "1.0.1", [])
    problems = check(folder, IMAGE, scan=None)
    assert any(p.startswith("rpds-py: 2 wheels") for p in problems), problems
    assert any(p.startswith("tabulate: the image already has it") for p in problems), problems
    unneeded = "jmespath-1.0.1-py3-none-any.whl: carried but nothing needs it"
    assert any(p.startswith(unneeded) for p in problems), problems


@pytest.mark.slow
def test_an_image_package_carried_on_purpose_stands_in_for_the_image_s(tmp_path: Path) -> None:
    folder = complete_set(tmp_path / "w")
    fake_wheel(folder, "jsonschema", "4.26.0", ["attrs>=22.2.0", "rpds-py>=0.25.0", "typing-extensions>=4.16"])
    image = {**IMAGE, "typing-extensions": Version("4.12.2")}
    assert any("typing-extensions>=4.16" in p for p in check(folder, image, scan=None))
    fake_wheel(folder, "typing-extensions", "4.16.0", [])
    assert check(folder, image, scan=None, overrides=frozenset({"typing-extensions"})) == []
    assert check(folder, image, scan=None) == [
        "typing-extensions: the image already has it; carry a package only where it is missing"
    ]


@pytest.mark.slow
def test_what_is_taken_on_trust_is_said(tmp_path: Path) -> None:
    assumed: list[str] = []
    assert check(complete_set(tmp_path / "w"), IMAGE, scan=None, assumed=assumed) == []
    assert sorted(assumed) == ["attrs>=22.2.0", "matplotlib>=3.7", "nvidia-ml-py>=12", "tabulate>=0.9"]


def test_the_wheel_list_reads_pins_and_overrides(tmp_path: Path) -> None:
    listing = tmp_path / "wheels.txt"
    listing.write_text(f"# header\njsonschema==4.26.0\n\ntyping-extensions==4.16.0  {OVERRIDE_MARK}: why\n")
    assert read_wheel_list(listing) == (
        {"jsonschema": "4.26.0", "typing-extensions": "4.16.0"},
        frozenset({"typing-extensions"}),
    )


def test_an_empty_folder_says_how_to_fill_it(tmp_path: Path) -> None:
    assert check(tmp_path, IMAGE, scan=None) == [f"no wheels in {tmp_path}: run scripts/gpu-wheels.sh"]


def test_placeholder_versions_meet_every_bound_or_none_exists() -> None:
    assert placeholder_version([]) == Version("0")
    assert placeholder_version([SpecifierSet(">=22.2.0"), SpecifierSet(">21")]) == Version("22.2.0")
    assert placeholder_version([SpecifierSet(">4.4")]) == Version("4.4.1")
    assert placeholder_version([SpecifierSet(">=2"), SpecifierSet("<2")]) is None


def test_the_image_list_reads_names_and_known_versions() -> None:
    image = read_image_list(IMAGE_LIST)
    assert image["torch"] == Version("2.11.0")
    assert image["huggingface-hub"] == Version("1.33.0")
    assert image["tabulate"] is None
    assert "jsonschema" not in image


def _siliconbench_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["cuda"], *extras["plot"]]]


def test_the_wheel_list_is_pinned_and_lacks_only_what_the_image_lacks() -> None:
    image = read_image_list(IMAGE_LIST)
    pins, overrides = read_wheel_list(WHEEL_LIST)
    assert pins
    for name, version in pins.items():
        assert Version(version), name
        assert name not in image or name in overrides, f"{name}: the image has it; mark it {OVERRIDE_MARK!r} or drop it"
    carried = set(pins)
    for requirement in _siliconbench_requirements():
        name = canonicalize_name(requirement.name)
        assert name in image or name in carried, f"{name}: neither on the GPU image nor in gpu-wheels.txt"


def test_what_the_tests_import_at_module_level_is_on_the_image_or_carried() -> None:
    """pytest imports every test module to collect it: one import the image lacks stops `-m gpu`."""
    image = read_image_list(IMAGE_LIST)
    carried = set(read_wheel_list(WHEEL_LIST)[0])
    assert unmet_imports(REPO_ROOT, set(image) | carried | {"siliconbench"}) == []


def test_the_import_scan_sees_module_level_imports_only() -> None:
    source = (
        "import os, yaml.loader\nfrom moto import mock_aws\nfrom . import sibling\n"
        "if TYPE_CHECKING:\n    import boto3\ndef f():\n    import botocore\n"
    )
    assert module_level_imports(source) == {"os", "yaml", "moto"}


def test_a_module_level_import_the_image_lacks_is_caught(tmp_path: Path) -> None:
    """The wrong belief 'collecting GPU tests imports only GPU tests' fails here."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("import pytest\nimport tabulate\n")
    assert unmet_imports(tmp_path, {"tabulate"}) == [
        "tests/test_x.py imports pytest (pytest): not on the image nor carried"
    ]


@pytest.mark.slow
def test_the_real_wheel_set_when_built_here() -> None:
    wheels = REPO_ROOT / ".whl"
    if not any(wheels.glob("*.whl")):
        pytest.skip("no .whl/ in this checkout: scripts/gpu-wheels.sh builds it (needs a registry)")
    overrides = read_wheel_list(WHEEL_LIST)[1]
    assert check(wheels, read_image_list(IMAGE_LIST), overrides=overrides) == []

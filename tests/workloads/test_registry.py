"""Finding workloads: built-in names, package.module:callable, and entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError, UnknownNameError
from workloads.base import Workload
from workloads.registry import available_workloads, resolve


def test_builtin_names_are_registered() -> None:
    assert {"mlp", "resnet50", "bert-base"} <= set(available_workloads())


def test_a_module_callable_reference_builds_the_users_workload() -> None:
    workload = resolve("tests.workloads.plugin_fixtures:scale", None)
    assert workload.name == "scale"
    assert resolve("tests.workloads.plugin_fixtures:scale", "big").preset == "big"


def test_an_unknown_name_lists_the_known_ones() -> None:
    expected = "unknown workload 'resnet'; available: bert-base, gpt2, llama, mlp, resnet50"
    with pytest.raises(UnknownNameError, match=expected):
        resolve("resnet", None)


def test_an_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(UnknownNameError, match="available: large, tiny"):
        resolve("mlp", "huge")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("tests.workloads.plugin_fixtures:absent", "has no attribute 'absent'"),
        ("tests.workloads.plugin_fixtures:NOT_CALLABLE", "is not callable"),
        ("tests.workloads.plugin_fixtures:not_a_workload", "returns int by its annotation, not a workloads.Workload"),
        (":f", "must look like 'package.module:callable'"),
    ],
)
def test_bad_references_are_config_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(name, None)


def test_an_entry_point_registers_a_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real installed distribution's metadata, found by importlib.metadata on sys.path."""
    dist = tmp_path / "acme_models-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[siliconbench.workloads]\nacme-scale = tests.workloads.plugin_fixtures:scale\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available_workloads()["acme-scale"] == "tests.workloads.plugin_fixtures:scale"
    assert resolve("acme-scale", None).name == "scale"
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])


@pytest.mark.parametrize("name", ["os:system", "subprocess:run", "builtins:eval", "shutil:rmtree"])
def test_standard_library_callables_are_refused_without_being_called(name: str) -> None:
    from workloads.registry import check_factory_unseen, load_factory

    with pytest.raises(ConfigError, match="from Python's standard library, not a workload factory"):
        check_factory_unseen(name, load_factory(name), "echo called")


def test_a_factory_is_not_called_to_be_checked() -> None:
    from workloads.registry import check_factory_unseen

    calls: list[str | None] = []

    def factory(preset: str | None = None) -> Workload:
        calls.append(preset)
        raise AssertionError("called")

    check_factory_unseen("mine:factory", factory, "tiny")
    assert calls == []

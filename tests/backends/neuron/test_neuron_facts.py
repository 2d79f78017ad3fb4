"""Device facts from neuron-ls: parsing the documented JSON, and degrading to nulls with a reason."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from backends.neuron import facts
from backends.neuron.facts import device_facts, instance_type_from_header, parse_neuron_ls, run_neuron_ls

#: Two devices of the trn2 example in the "Neuron LS User Guide" (``neuron-ls -j``), verbatim fields.
TRN2_SAMPLE = """[
    {
        "neuron_device": 0, "bdf": "cc:00.0", "cpu_affinity": "48-95,144-191", "numa_node": "1",
        "connected_to": [12, 3, 4, 1], "nc_count": 4, "logical_neuroncore_config": 2,
        "memory_size": 103079215104, "neuroncore_ids": [0, 1, 2, 3],
        "neuron_processes": [
            {"pid": 113985, "command": "neuron-bench exec --run-as-cc-neff --...", "neuron_runtime_version": "2.0.0"}
        ]
    },
    {
        "neuron_device": 15, "bdf": "f7:00.0", "cpu_affinity": "48-95,144-191", "numa_node": "1",
        "connected_to": [11, 14, 3, 12], "nc_count": 4, "logical_neuroncore_config": 2,
        "memory_size": 103079215104, "neuroncore_ids": [60, 61, 62, 63], "neuron_processes": []
    }
]"""

#: The older, shorter per-device form (no core ids, no affinity), as on a two-device instance.
OLDER_SAMPLE = (
    '[{"neuron_device":0,"bdf":"00:1e.0","connected_to":null,"nc_count":2,"memory_size":34359738368,'
    '"neuron_processes":[]},{"neuron_device":1,"bdf":"00:1f.0","connected_to":null,"nc_count":2,'
    '"memory_size":34359738368,"neuron_processes":[]}]'
)


def test_parses_the_documented_trn2_sample() -> None:
    found = parse_neuron_ls(TRN2_SAMPLE, pid=1)
    assert found == {
        "instance_type": None,
        "neuron_devices": 2,
        "neuron_cores": 8,
        "cores_per_device": 4,
        "device_memory_bytes": 2 * 103079215104,
        "memory_per_device_bytes": 103079215104,
        "logical_neuroncore_config": 2,
        "runtime_version": "2.0.0",
    }


def test_parses_the_older_form_by_nc_count() -> None:
    found = parse_neuron_ls(OLDER_SAMPLE)
    assert (found["neuron_devices"], found["neuron_cores"], found["cores_per_device"]) == (2, 4, 2)
    assert found["device_memory_bytes"] == 2 * 34359738368
    assert found["logical_neuroncore_config"] is None
    assert found["runtime_version"] is None


def test_prefers_this_process_runtime_version_and_reads_instance_type() -> None:
    devices = json.loads(OLDER_SAMPLE)
    devices[0]["neuron_processes"] = [
        {"pid": 7, "command": "other", "neuron_runtime_version": "2.20.0"},
        {"pid": 8, "command": "neuron-ls", "neuron_runtime_version": "NA"},
    ]
    devices[1]["neuron_processes"] = [{"pid": 42, "command": "python", "neuron_runtime_version": "2.22.1"}]
    for device in devices:
        device["instance_type"] = "inf2.24xlarge"
    found = parse_neuron_ls(json.dumps(devices), pid=42)
    assert found["runtime_version"] == "2.22.1"
    assert found["instance_type"] == "inf2.24xlarge"
    assert parse_neuron_ls(json.dumps(devices), pid=1)["runtime_version"] == "2.20.0"


def test_reads_an_object_with_a_device_list_best_effort() -> None:
    wrapped = json.dumps({"instance": {"instance_type": "trn1.32xlarge"}, "neuron_devices": json.loads(OLDER_SAMPLE)})
    found = parse_neuron_ls(wrapped)
    assert found["instance_type"] == "trn1.32xlarge"
    assert found["neuron_cores"] == 4


def test_mixed_device_sizes_give_totals_but_no_per_device_value() -> None:
    devices = json.loads(OLDER_SAMPLE)
    devices[1]["memory_size"] = 1
    found = parse_neuron_ls(json.dumps(devices))
    assert found["memory_per_device_bytes"] is None
    assert found["device_memory_bytes"] == 34359738368 + 1


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "neuron-ls printed no JSON"), ("[]", "lists no Neuron devices"), ('{"a": 1}', "lists no Neuron")],
)
def test_unusable_output_is_a_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_neuron_ls(text)


def _completed(args: Sequence[str], code: int, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(list(args), code, out, err)


def test_falls_back_to_the_newer_output_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts.shutil, "which", lambda name: "/usr/bin/neuron-ls")
    seen: list[list[str]] = []

    def runner(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        seen.append(list(command))
        if "--json-output" in command:
            return _completed(command, 2, err="neuron-ls: error: unrecognized arguments: --json-output")
        return _completed(command, 0, out=OLDER_SAMPLE)

    text, reason = run_neuron_ls(runner)
    assert text == OLDER_SAMPLE and reason == ""
    assert seen == [["/usr/bin/neuron-ls", "--json-output"], ["/usr/bin/neuron-ls", "--output-format", "json"]]


def test_failing_tool_gives_nulls_and_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(facts.shutil, "which", lambda name: "/usr/bin/neuron-ls")
    monkeypatch.setattr(facts, "DRIVER_VERSION_FILE", tmp_path / "absent")
    monkeypatch.setattr(facts, "DMI_PRODUCT_NAME", tmp_path / "absent")
    found = device_facts(lambda command: _completed(command, 1, err="nd0: driver not loaded\nmore"))
    assert found["neuron_cores"] is None and found["instance_type"] is None and found["driver_version"] is None
    assert found["facts_error"] == "neuron-ls --output-format json exited 1: nd0: driver not loaded"


def test_absent_tool_gives_nulls_and_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(facts, "NEURON_LS_PATHS", ())
    found = device_facts()
    assert found["neuron_devices"] is None
    assert "neuron-ls not found" in found["facts_error"]


def test_instance_type_and_driver_from_sysfs_when_neuron_ls_lacks_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    product, driver = tmp_path / "product_name", tmp_path / "version"
    product.write_text("inf2.8xlarge\n")
    driver.write_text("2.19.64.0\n")
    monkeypatch.setattr(facts, "DMI_PRODUCT_NAME", product)
    monkeypatch.setattr(facts, "DRIVER_VERSION_FILE", driver)
    monkeypatch.setattr(facts.shutil, "which", lambda name: "/usr/bin/neuron-ls")
    found = device_facts(lambda command: _completed(command, 0, out=OLDER_SAMPLE))
    assert (found["instance_type"], found["driver_version"], found["facts_error"]) == (
        "inf2.8xlarge",
        "2.19.64.0",
        None,
    )
    product.write_text("Standard PC (Q35 + ICH9, 2009)\n")
    assert device_facts(lambda command: _completed(command, 0, out=OLDER_SAMPLE))["instance_type"] is None


def test_runs_the_real_command_through_the_neuron_ls_double(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    double = Path(__file__).resolve().parent / "double"
    monkeypatch.setenv("PATH", f"{double}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(facts, "DMI_PRODUCT_NAME", tmp_path / "absent")
    monkeypatch.setenv("NEURON_DOUBLE_CORES", "4")
    monkeypatch.setenv("NEURON_DOUBLE_INSTANCE", "inf2.24xlarge")
    found = device_facts()
    assert found["facts_error"] is None
    assert (found["instance_type"], found["neuron_devices"], found["neuron_cores"]) == ("inf2.24xlarge", 2, 4)


#: The header of the guide's text output on a trn2 (``neuron-ls``, no options), verbatim.
TRN2_HEADER = """instance-type: trn2n.48xlarge
instance-id: i-aabbccdd123456789
logical-neuroncore-config: 2
+--------+--------+----------+--------+---------------+--------------+---------------+------+
"""


def test_the_documented_json_has_no_instance_type_the_text_header_does() -> None:
    assert parse_neuron_ls(TRN2_SAMPLE)["instance_type"] is None
    assert instance_type_from_header(TRN2_HEADER) == "trn2n.48xlarge"
    assert instance_type_from_header("+----+\n| 0 |\n") is None


def test_instance_type_from_dmi_first_then_the_text_header(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(facts.shutil, "which", lambda name: "/usr/bin/neuron-ls")
    monkeypatch.setattr(facts, "DMI_PRODUCT_NAME", tmp_path / "absent")
    seen: list[list[str]] = []

    def runner(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        seen.append(list(command))
        return _completed(command, 0, out=TRN2_HEADER if len(command) == 1 else TRN2_SAMPLE)

    assert device_facts(runner)["instance_type"] == "trn2n.48xlarge"
    assert seen == [["/usr/bin/neuron-ls", "--json-output"], ["/usr/bin/neuron-ls"]]
    product = tmp_path / "product_name"
    product.write_text("trn2.48xlarge\n")
    monkeypatch.setattr(facts, "DMI_PRODUCT_NAME", product)
    seen.clear()
    assert device_facts(runner)["instance_type"] == "trn2.48xlarge"
    assert seen == [["/usr/bin/neuron-ls", "--json-output"]]  # no second call when DMI tells

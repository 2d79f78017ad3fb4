"""Facts about the Neuron devices for the run file, from ``neuron-ls --json-output``.

``neuron-ls`` needs neither the runtime nor a device claim nor torch, so asking it is cheap and
safe before or after a model is loaded. Its JSON (AWS Neuron docs, "Neuron LS User Guide") is a
list with one object per Neuron device::

    [{"neuron_device": 0, "bdf": "cc:00.0", "cpu_affinity": "48-95,144-191", "numa_node": "1",
      "connected_to": [12, 3, 4, 1], "nc_count": 4, "logical_neuroncore_config": 2,
      "memory_size": 103079215104, "neuroncore_ids": [0, 1, 2, 3],
      "neuron_processes": [{"pid": 113985, "command": "...", "neuron_runtime_version": "2.0.0"}]}]

Older releases omit ``cpu_affinity``, ``numa_node``, ``neuroncore_ids`` and
``logical_neuroncore_config``. The documented JSON carries no instance type: the guide shows it
only in the header of the text output (``instance-type: trn2n.48xlarge``, then ``instance-id``).
So the instance type comes from the JSON if a release ever adds it, else from the EC2 DMI product
name, else from that text header (one more, plain, ``neuron-ls`` call). The backend needs it to
refuse a mode on the wrong NeuronCore generation (``options.mode_refusal``).
``--output-format json`` is tried when ``--json-output`` fails; it is not in the 2.32 guide, so the
object it might print is read best-effort (a list of device objects under any key, an
``instance_type`` at the top or under ``instance``).
A missing tool or unreadable output never fails a cell: the facts become null with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["NEURON_LS_PATHS", "device_facts", "instance_type_from_header", "parse_neuron_ls", "run_neuron_ls"]

#: Where the Neuron packages install the tool when it is not on PATH.
NEURON_LS_PATHS: tuple[str, ...] = ("/opt/aws/neuron/bin/neuron-ls",)
#: The kernel driver reports its version here (the aws-neuronx-dkms module is named ``neuron``).
DRIVER_VERSION_FILE = Path("/sys/module/neuron/version")
#: On EC2 Nitro instances the DMI product name is the instance type (e.g. ``inf2.xlarge``).
DMI_PRODUCT_NAME = Path("/sys/devices/virtual/dmi/id/product_name")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
#: The text output's header line (Neuron LS User Guide): ``instance-type: trn2n.48xlarge``.
_HEADER_INSTANCE_TYPE = re.compile(r"^\s*instance-type:\s*(\S+)\s*$", re.MULTILINE)
_TIMEOUT_S = 30.0
_ARGUMENTS: tuple[tuple[str, ...], ...] = (("--json-output",), ("--output-format", "json"))

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _find_neuron_ls() -> str | None:
    found = shutil.which("neuron-ls")
    if found:
        return found
    return next((p for p in NEURON_LS_PATHS if os.access(p, os.X_OK)), None)


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)


def run_neuron_ls(runner: Runner = _run) -> tuple[str | None, str]:
    """The JSON text neuron-ls prints, or None and a one-line reason."""
    exe = _find_neuron_ls()
    if exe is None:
        return None, "neuron-ls not found on PATH or in /opt/aws/neuron/bin (install aws-neuronx-tools)"
    reason = ""
    for arguments in _ARGUMENTS:
        try:
            done = runner([exe, *arguments])
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"neuron-ls could not run: {exc}"
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout, ""
        detail = (done.stderr or done.stdout).strip().splitlines()
        reason = f"neuron-ls {' '.join(arguments)} exited {done.returncode}" + (f": {detail[0]}" if detail else "")
    return None, reason


def instance_type_from_header(text: str) -> str | None:
    """The instance type in the header of ``neuron-ls``'s text output, if it names one."""
    match = _HEADER_INSTANCE_TYPE.search(text)
    found = match.group(1) if match else None
    return found if found and _INSTANCE_TYPE.match(found) else None


def _instance_type_from_text(runner: Runner) -> str | None:
    exe = _find_neuron_ls()
    if exe is None:
        return None
    try:
        done = runner([exe])
    except (OSError, subprocess.SubprocessError):
        return None
    return instance_type_from_header(done.stdout) if done.returncode == 0 else None


def _device_list(data: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The per-device objects and the top-level object (empty for the list format)."""
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)], {}
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list) and value and all(isinstance(d, dict) for d in value):
                if any("nc_count" in d or "neuroncore_ids" in d for d in value):
                    return list(value), data
        return [], data
    return [], {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _cores_of(device: dict[str, Any]) -> int | None:
    """Addressable NeuronCores of one device: the ids NEURON_RT_VISIBLE_CORES indexes, if listed."""
    ids = device.get("neuroncore_ids")
    if isinstance(ids, list) and ids:
        return len(ids)
    return _int(device.get("nc_count"))


def _same_or_none(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return present[0] if present and all(v == present[0] for v in present) else None


def _instance_type(top: dict[str, Any], devices: list[dict[str, Any]]) -> str | None:
    candidates: list[Any] = [top.get("instance_type")]
    instance = top.get("instance")
    if isinstance(instance, dict):
        candidates += [instance.get("instance_type"), instance.get("type")]
    candidates += [d.get("instance_type") for d in devices]
    return next((c for c in candidates if isinstance(c, str) and c), None)


def _runtime_version(devices: list[dict[str, Any]], pid: int) -> str | None:
    """This process's Neuron runtime version if it holds a device, else any process's."""
    versions: list[tuple[bool, str]] = []
    for device in devices:
        for proc in device.get("neuron_processes") or []:
            if isinstance(proc, dict):
                version = proc.get("neuron_runtime_version")
                if isinstance(version, str) and version not in ("", "NA"):
                    versions.append((proc.get("pid") == pid, version))
    versions.sort(key=lambda item: not item[0])
    return versions[0][1] if versions else None


def parse_neuron_ls(text: str, pid: int | None = None) -> dict[str, Any]:
    """Cores, memory, instance type and runtime version from neuron-ls JSON (ValueError if unusable)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"neuron-ls printed no JSON ({exc.msg} at line {exc.lineno})") from None
    devices, top = _device_list(data)
    if not devices:
        raise ValueError("neuron-ls JSON lists no Neuron devices")
    cores = [_cores_of(d) for d in devices]
    memory = [_int(d.get("memory_size")) for d in devices]
    lnc = _same_or_none([_int(d.get("logical_neuroncore_config")) for d in devices])
    if lnc is None:
        lnc = _int(top.get("logical_neuroncore_config"))
    return {
        "instance_type": _instance_type(top, devices),
        "neuron_devices": len(devices),
        "neuron_cores": sum(cores) if all(c is not None for c in cores) else None,
        "cores_per_device": _same_or_none(cores),
        "device_memory_bytes": sum(memory) if all(m is not None for m in memory) else None,
        "memory_per_device_bytes": _same_or_none(memory),
        "logical_neuroncore_config": lnc,
        "runtime_version": _runtime_version(devices, os.getpid() if pid is None else pid),
    }


EMPTY_FACTS: dict[str, Any] = {
    "instance_type": None,
    "neuron_devices": None,
    "neuron_cores": None,
    "cores_per_device": None,
    "device_memory_bytes": None,
    "memory_per_device_bytes": None,
    "logical_neuroncore_config": None,
    "runtime_version": None,
}


def _read_line(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None


def device_facts(runner: Runner = _run) -> dict[str, Any]:
    """Every fact we can learn without the runtime; null where unknown, with ``facts_error`` saying why."""
    facts: dict[str, Any] = dict(EMPTY_FACTS)
    text, reason = run_neuron_ls(runner)
    if text is not None:
        try:
            facts.update(parse_neuron_ls(text))
            reason = ""
        except ValueError as exc:
            reason = str(exc)
    if facts["instance_type"] is None:
        product = _read_line(DMI_PRODUCT_NAME)
        if product and _INSTANCE_TYPE.match(product):
            facts["instance_type"] = product
    if facts["instance_type"] is None and text is not None:
        facts["instance_type"] = _instance_type_from_text(runner)
    facts["driver_version"] = _read_line(DRIVER_VERSION_FILE)
    facts["facts_error"] = reason or None
    return facts

"""Run records to JSON and back: the one module that knows a run file's keys.

Change log of the schema (``schema_version``):

- 1 — first version: environment, target, and per cell its configuration, status, statistics
  (nanoseconds), raw samples, FLOPs, params, compile time, peak memory and correctness; later
  grew ``environment.gpus``, ``sampling.timer``, host-clock samples, ``energy``, scenario parts
  and ``config.scenario_params`` without a version change (which a strict version-1 reader
  rejects: the reason for version 2). Read through ``harness.runfile.v1``.
- 2 — the typed records of ``harness.runfile.records``: a cell's measurement moves under
  ``measurement`` (absent on failed cells), ``config.scenario_params`` becomes ``config.params``
  on every cell, decoder token metrics of each scenario part move under ``tokens``, the run gains
  ``status_reason`` and the status ``aborted``. Readers ignore keys they do not know, so later
  additions of optional keys stay readable by this version's readers; a change of meaning bumps
  the version. Optional keys added since: ``sampling.too_few`` (the budget fit fewer samples than
  ``min_count``), ``workload.weight_bytes``/``activation_bytes``, a cell's ``emulated``, and the
  environment's ``capabilities``, ``dtypes_left_out``, ``ceilings`` and ``bandwidths``; a
  summary's ``lag1_autocorrelation`` and ``effective_n`` and an interval's ``effective_n`` (issue
  19). An interval with ``low`` and no ``high`` (a lower bound, "p99 ≥ low") is written since
  issue 19 where no upper bound holds at the nominal confidence; ``low`` keeps its meaning.

JSON is written and validated by pydantic's ``TypeAdapter`` over the frozen dataclasses, so the
record classes are the single declaration of the format; ``run-v2.schema.json`` is generated
from them (``python -m harness.runfile.codec`` rewrites it, a test checks it is current).
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import RunFileError, SiliconbenchError
from harness.runfile.records import SCHEMA_NAME, SCHEMA_VERSION, RunRecord

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = ["SCHEMA_PATH", "decode_run", "encode_run", "json_schema", "parse_run"]

SCHEMA_PATH = Path(__file__).parent / "schema" / f"run-v{SCHEMA_VERSION}.schema.json"
#: Versions this release reads; every later release must still read them (tests/harness/runfile/fixtures).
READABLE_VERSIONS = (1, 2)


def _record_classes() -> list[type]:
    """Every dataclass reachable from ``RunRecord``: they all get the same strict configuration."""
    import typing

    seen: list[type] = []

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and is_dataclass(tp):
            if tp in seen:
                return
            seen.append(tp)
            hints = typing.get_type_hints(tp)
            for f in fields(tp):
                visit(hints[f.name])
        for arg in typing.get_args(tp):
            visit(arg)

    visit(RunRecord)
    return seen


@cache
def _adapter() -> TypeAdapter[RunRecord]:
    from pydantic import ConfigDict, TypeAdapter

    # Finite numbers only: JSON has no NaN/Infinity, and a report must never print one as a figure.
    config = ConfigDict(allow_inf_nan=False, ser_json_inf_nan="null")
    for cls in _record_classes():
        cls.__pydantic_config__ = config  # type: ignore[attr-defined]
    return TypeAdapter(RunRecord)


def encode_run(run: RunRecord) -> str:
    """The JSON text of ``run``."""
    return _adapter().dump_json(run, indent=1).decode()


def _where(loc: tuple[int | str, ...]) -> str:
    return "/".join(str(part) for part in loc) or "top level"


def decode_run(data: dict[str, Any], source: str) -> RunRecord:
    """A run record from parsed JSON of version 1 or 2, or RunFileError naming the bad field."""
    from pydantic import ValidationError

    from harness.runfile.v1 import upgrade_v1

    if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
        raise RunFileError(f"{source} is not a siliconbench run file (no 'schema': {SCHEMA_NAME!r})")
    found = data.get("schema_version")
    if found not in READABLE_VERSIONS:
        raise RunFileError(
            f"{source} has run-file schema version {found!r}; this siliconbench reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}: use the siliconbench release that wrote it"
        )
    if found == 1:
        data = upgrade_v1(data)
    try:
        return _adapter().validate_json(json.dumps(data, allow_nan=True), strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise RunFileError(
            f"{source} does not match run-file schema version {found} at {_where(error['loc'])}: {error['msg']}"
        ) from None
    except (ValueError, SiliconbenchError) as exc:  # a record's own check (a price's, a cell's)
        raise RunFileError(f"{source}: {exc}") from None


def parse_run(text: str, source: str) -> RunRecord:
    """A run record from a run file's text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(
            f"{source} is not valid JSON (truncated or not a run file): {exc.msg} at line {exc.lineno}"
        ) from None
    except RecursionError:
        raise RunFileError(f"{source} is nested too deeply to be a run file") from None
    return decode_run(data, source)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the current version, generated from the records."""
    schema = _adapter().json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://siliconbench.dev/schema/run-v{SCHEMA_VERSION}.schema.json",
        **schema,
        "title": f"siliconbench run file, schema version {SCHEMA_VERSION}",
    }


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_PATH}")

"""Per-chip figures on Neuron: the chip counts are AWS's, and a figure is per chip, never per NeuronCore.

The counts are checked against EC2 ``DescribeInstanceTypes``' ``NeuronInfo`` as moto records AWS's
answer: the belief "a Neuron chip is a NeuronCore" (``neuron-ls`` and NxD Inference's
``tp_degree`` count cores) would halve inf2/trn1 figures and divide trn2's by 8, and fails here.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from importlib.resources import files
from typing import Any

import pytest

from harness.report.chips import NEURON_CHIPS, neuron_chips
from harness.report.formats import render
from harness.report.frontier import PER_CHIP, frontier_table, frontiers
from harness.report.rows import cell_rows
from harness.runfile.records import RunRecord, TargetFacts
from tests.harness.report.engine_runs import engine_cell, engine_run


def _described() -> dict[str, Any]:
    raw = files("moto.ec2").joinpath("resources/instance_types.json.gz").read_bytes()
    data: dict[str, Any] = json.loads(gzip.decompress(raw))
    return data


def test_the_chip_table_matches_what_ec2_describes() -> None:
    described = _described()
    checked = 0
    for instance_type, chips in NEURON_CHIPS.items():
        info = described.get(instance_type, {}).get("NeuronInfo")
        if info is None:  # trn2u.48xlarge: an UltraServer member moto's data does not carry
            continue
        (device,) = info["NeuronDevices"]
        assert (chips.count, chips.neuron_cores_per_chip) == (device["Count"], device["CoreInfo"]["Count"]), (
            instance_type
        )
        assert chips.name == device["Name"], instance_type
        checked += 1
    assert checked >= 9
    counted_as_cores = {t: c.count * (c.neuron_cores_per_chip or 1) for t, c in NEURON_CHIPS.items()}
    assert counted_as_cores["inf2.48xlarge"] == 24 != NEURON_CHIPS["inf2.48xlarge"].count
    assert neuron_chips("c7i.xlarge") is None and neuron_chips(None) is None


def _neuron_run(instance_type: str, run_id: str = "20261101T100000Z-aaaaaa") -> RunRecord:
    """A synthetic engine run served by vLLM on Neuron on ``instance_type``."""
    run = engine_run(
        engine_cell((("max-num-seqs", "4"),), 1, 20, 10, 95, seed=1),
        engine_cell((("max-num-seqs", "4"),), 4, 40, 15, 320, seed=2),
        run_id=run_id,
    )
    cells = []
    for cell in run.cells:
        params = cell.config.params
        assert params.engine is not None
        engine = replace(params.engine, spec=replace(params.engine.spec, silicon="neuron"))
        cells.append(replace(cell, config=replace(cell.config, params=replace(params, engine=engine))))
    target = TargetFacts(kind="aws", instance_type=instance_type, region="us-east-2")
    return replace(run, cells=tuple(cells), target=target)


def test_a_trn2_figure_is_per_trainium2_chip_not_per_neuroncore() -> None:
    (frontier,) = frontiers(cell_rows([_neuron_run("trn2.48xlarge")]))
    point = next(p for p in frontier.points if p.row.users == 4)
    assert point.chips == 16 and point.per_chip is not None
    assert point.per_chip.value == pytest.approx(320 / 16), "per chip, not per NeuronCore (320 / 128)"
    data = point.to_dict()
    assert (data["chip"], data["neuron_cores_per_chip"], data["per_chip_is"]) == ("Trainium2", 8, PER_CHIP)
    headers, body = frontier_table(frontier)
    assert "out tok/s per chip (not per NeuronCore)" in headers
    assert body[0][headers.index("chips")] == "16 Trainium2 (8 NeuronCores each)"


def test_a_one_chip_instance_has_no_per_chip_column_but_says_its_chip() -> None:
    (frontier,) = frontiers(cell_rows([_neuron_run("inf2.xlarge")]))
    assert all(p.chips == 1 and p.per_chip is None for p in frontier.points)
    headers, _ = frontier_table(frontier)
    assert not any("per chip" in h for h in headers)
    data = json.loads(render([_neuron_run("inf2.xlarge")], "json"))
    (model,) = data["frontier"]
    assert {(p["chip"], p["neuron_cores_per_chip"], p["per_chip_is"]) for p in model["points"]} == {
        ("Inferentia2", 2, None)
    }


def test_the_markdown_names_the_unit_next_to_inf2_48xlarge() -> None:
    markdown = render([_neuron_run("inf2.48xlarge")], "markdown")
    assert "out tok/s per chip (not per NeuronCore)" in markdown and "12 Inferentia2 (2 NeuronCores each)" in markdown

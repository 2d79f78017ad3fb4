"""BERT-base encoder: the published size, the analytic cost, and a cheap tiny preset."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from harness.errors import UnknownNameError
from harness.measure.flops import flop_counter
from workloads.base import Workload
from workloads.bert import BERT_BASE

#: ``bert-base-uncased`` with its pooler (BertModel, 12 x 768, vocabulary 30522).
PUBLISHED_PARAMS = 109_482_240
SEQUENCE = 128


def _analytic_flops(layers: int, hidden: int, intermediate: int, seq: int = SEQUENCE) -> int:
    """2 x MACs of the matrix products: QKV and output projections, scores, context, FFN, pooler.

    Written out again here rather than imported, so the test does not check the code against
    itself. bert-base at 128 tokens: 22,348,431,360 FLOPs (11.17 GMACs).
    """
    per_layer = 4 * seq * hidden**2 + 2 * seq**2 * hidden + 2 * seq * hidden * intermediate
    return 2 * (layers * per_layer + hidden**2)


def _forward(workload: Workload, batch_size: int) -> torch.Tensor:
    model = workload.build_model()
    with torch.no_grad():
        output = model(*workload.make_inputs(batch_size))
    assert isinstance(output, torch.Tensor)
    return output


def test_analytic_figure_for_bert_base() -> None:
    assert _analytic_flops(12, 768, 3072) == 22_348_431_360


def test_default_preset() -> None:
    workload = BERT_BASE()
    assert workload.name == "bert-base"
    assert workload.preset == "default"
    assert workload.tokens_per_sample == SEQUENCE


def test_import_does_not_import_transformers() -> None:
    code = "import sys, workloads.bert; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_tiny_inputs(batch_size: int) -> None:
    workload = BERT_BASE("tiny")
    assert workload.tokens_per_sample == SEQUENCE
    input_ids, attention_mask = workload.make_inputs(batch_size)
    assert input_ids.dtype == attention_mask.dtype == torch.int64
    assert input_ids.shape == attention_mask.shape == (batch_size, SEQUENCE)
    assert 0 <= int(input_ids.min()) and int(input_ids.max()) < workload.metadata["vocab_size"]
    assert bool((attention_mask == 1).all())


@pytest.mark.parametrize("batch_size", [1, 2])
def test_tiny_forward_shape_and_finite(batch_size: int) -> None:
    workload = BERT_BASE("tiny")
    output = _forward(workload, batch_size)
    assert output.dtype == torch.float32
    assert output.shape == (batch_size, SEQUENCE, workload.metadata["hidden"])
    assert torch.isfinite(output).all()
    assert output.std() > 0


def test_tiny_model_is_in_eval_mode() -> None:
    assert not BERT_BASE("tiny").build_model().training


def test_tiny_is_deterministic_across_builds() -> None:
    first, second = BERT_BASE("tiny"), BERT_BASE("tiny")
    for a, b in zip(first.make_inputs(2), second.make_inputs(2), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(_forward(first, 2), _forward(second, 2))


def test_tiny_flops_match_analytic() -> None:
    workload = BERT_BASE("tiny")
    model = workload.build_model()
    with torch.no_grad(), flop_counter() as counter:
        model(*workload.make_inputs(1))
    assert counter.get_total_flops() == pytest.approx(_analytic_flops(2, 128, 512), rel=0.01)


def test_published_parameter_count() -> None:
    with torch.device("meta"):
        model = BERT_BASE().build_model()
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS


@pytest.mark.slow
def test_published_flops_at_batch_1() -> None:
    # Real tensors: transformers' mask code calls .item(), which meta tensors cannot do.
    workload = BERT_BASE()
    model = workload.build_model()
    with torch.no_grad(), flop_counter() as counter:
        output = model(*workload.make_inputs(1))
    assert output.shape == (1, SEQUENCE, 768)
    assert counter.get_total_flops() == pytest.approx(_analytic_flops(12, 768, 3072), rel=0.01)


def test_unknown_preset_raises() -> None:
    with pytest.raises(UnknownNameError, match="large"):
        BERT_BASE("large")

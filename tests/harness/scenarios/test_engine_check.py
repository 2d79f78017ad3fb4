"""The engine correctness check: agreement arithmetic, the fp32 reference, and an engine without ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.engine import Endpoint, EngineRequest
from backends.engine.scripted import ScriptedServer
from harness.errors import ConfigError
from harness.scenarios.engine import EngineTarget
from harness.scenarios.engine_check import agreement, check_engine, reference_greedy, threshold_for
from workloads.request_sets import RequestSet


def test_agreement_is_position_wise_and_a_short_sequence_disagrees() -> None:
    result = agreement([[1, 2, 3, 4], [5, 6]], [[1, 2, 9, 4], [5, 6, 7, 8]], threshold=0.7)
    assert result.agreement == pytest.approx(5 / 8)
    assert result.first_divergence == (2, 2)
    assert not result.passed and result.warning is not None and "62%" in result.warning
    assert agreement([[1, 2]], [[1, 2]]).passed and agreement([[1, 2]], [[1, 2]]).warning is None
    with pytest.raises(ValueError, match="engine sequences"):
        agreement([[1]], [[1], [2]])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        initializer_range=0.3,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_reference_is_greedy_decoding_without_eos(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    prompts = [[1, 5, 9, 2], [3, 3]]
    got = reference_greedy(str(tiny_model), prompts, 6)
    net = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    for prompt, tokens in zip(prompts, got, strict=True):
        # transformers' own greedy search: no sampling, EOS never stops it (the model has none).
        expected = net.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False, eos_token_id=None)
        assert tokens == expected[0, len(prompt) :].tolist()
        assert len(tokens) == 6


@pytest.mark.slow
def test_reference_of_a_missing_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load model"):
        reference_greedy(str(tmp_path / "none"), [[1]], 1)


@pytest.mark.slow
def test_an_engine_without_token_ids_is_measured_unchecked(tiny_model: Path, tmp_path: Path) -> None:
    requests = RequestSet((EngineRequest("a", max_tokens=2, prompt=(1, 2, 3)),), "test", "3", "2", 0)
    with ScriptedServer.in_thread() as server:
        target = EngineTarget(Endpoint(server.base_url, "scripted"), requests)
        result = check_engine(target, str(_with_tokenizer(tiny_model, tmp_path)), prompts=1, tokens=2)
    assert not result.passed and result.agreement == 0
    assert result.warning is not None and "not checked" in result.warning and "sends no token ids" in result.warning


def _with_tokenizer(model: Path, tmp_path: Path) -> Path:
    """The model folder plus a trivial tokenizer, as a served folder has."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "served"
    shutil.copytree(model, folder)
    vocab = {f"w{i}": i for i in range(64)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="w0").save_pretrained(folder)
    return folder


def test_reduced_precision_engines_get_a_lower_threshold() -> None:
    assert threshold_for(None) == threshold_for("fp32") == threshold_for("float32") == 0.9
    assert threshold_for("bf16") == threshold_for("float16") == 0.5

"""Decoder workloads: published sizes, faithfulness to the reference implementations, and a KV
cache that changes nothing but the cost (cached decoding gives the tokens of uncached decoding)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from workloads.base import GenerationSession, Workload
from workloads.decoder import CausalLM, ParameterDecode, Session, greedy_uncached
from workloads.gpt2 import GPT2
from workloads.llama import LLAMA
from workloads.registry import resolve

#: From the published model cards and config.json files (tied embeddings counted once).
PUBLISHED = [
    (LLAMA, "1b", 1_235_814_400),  # Llama-3.2-1B
    (LLAMA, "8b", 8_030_261_248),  # Llama-3.1-8B
    (GPT2, "default", 124_439_808),  # gpt2 (small)
]

TINY = [pytest.param(LLAMA, id="llama"), pytest.param(GPT2, id="gpt2")]


def _model(workload: Workload) -> CausalLM:
    model = workload.build_model()
    assert isinstance(model, CausalLM)
    return model


@pytest.mark.parametrize(("family", "preset", "published"), PUBLISHED)
def test_published_parameter_counts_on_the_meta_device(family: object, preset: str, published: int) -> None:
    workload = family(preset)  # type: ignore[operator]
    with torch.device("meta"):
        model = workload.build_model()
    assert sum(p.numel() for p in model.parameters()) == published
    assert workload.metadata["params"] == published  # the analytic count agrees


def test_registry_names_and_defaults() -> None:
    llama, gpt2 = resolve("llama", None), resolve("gpt2", None)
    assert (llama.name, llama.preset, gpt2.preset) == ("llama", "1b", "default")
    for workload in (llama, gpt2, resolve("llama", "tiny"), resolve("llama", "8b")):
        assert workload.generation is not None
        assert workload.task == "text-generation"


def test_importing_decoders_does_not_import_transformers() -> None:
    code = "import sys, workloads.llama, workloads.gpt2; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("family", TINY)
def test_forward_is_a_prefill_of_the_default_prompt(family: object) -> None:
    workload = family("tiny")  # type: ignore[operator]
    (prompt,) = workload.make_inputs(2)
    assert prompt.shape == (2, workload.tokens_per_sample) and prompt.dtype == torch.int64
    with torch.inference_mode():
        logits = _model(workload)(prompt)
    assert logits.shape == (2, workload.tokens_per_sample, workload.metadata["vocab_size"])
    assert torch.isfinite(logits).all() and logits.std() > 0


@pytest.mark.parametrize("family", TINY)
def test_builds_are_deterministic(family: object) -> None:
    first, second = _model(family("tiny")), _model(family("tiny"))  # type: ignore[operator]
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("family", TINY)
@pytest.mark.parametrize("batch_size", [1, 3])
def test_cached_decoding_gives_the_tokens_of_uncached_decoding(family: object, batch_size: int) -> None:
    workload = family("tiny")  # type: ignore[operator]
    assert workload.generation is not None
    model = _model(workload)
    prompts = workload.generation.make_prompts(batch_size, 12)
    expected = greedy_uncached(model, prompts, 10)

    session = workload.generation.new_session(model, batch_size, 12, 10)
    assert isinstance(session, GenerationSession)
    session.load_prompts(prompts)
    with torch.inference_mode():
        session.prefill()
        for _ in range(9):
            session.decode()
    assert torch.equal(session.generated(), expected)


@pytest.mark.parametrize("family", TINY)
def test_every_cached_step_matches_the_uncached_logits(family: object) -> None:
    """Teacher forcing: feed a fixed random continuation, so a broken cache cannot hide behind
    a random-weight model that keeps predicting the same token."""
    workload = family("tiny")  # type: ignore[operator]
    assert workload.generation is not None
    model = _model(workload)
    prompt_tokens, steps = 8, 6
    generator = torch.Generator().manual_seed(5)
    sequence = torch.randint(0, workload.metadata["vocab_size"], (2, prompt_tokens + steps), generator=generator)
    with torch.inference_mode():
        full = model(sequence)
        session = Session(model, 2, prompt_tokens, steps + 1)
        session.load_prompts(sequence[:, :prompt_tokens])
        logits = session.prefill()
        torch.testing.assert_close(logits, full[:, prompt_tokens - 1], rtol=1e-5, atol=1e-5)
        for step in range(steps):
            position = prompt_tokens + step
            session.prefill.state.sequence[:, position] = sequence[:, position]  # force the next input
            logits = session.decode()
            torch.testing.assert_close(logits, full[:, position], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", TINY)
def test_parameter_steps_give_the_stateful_logits_with_the_state_as_parameters(family: object) -> None:
    """The steps a Neuron trace runs: the same arithmetic, the decode state held as aliased
    parameters, the prefill computing the whole state from the prompt and resetting the decode's."""
    workload = family("tiny")  # type: ignore[operator]
    assert workload.generation is not None
    model = _model(workload)
    prompts = workload.generation.make_prompts(2, 7)
    stateful, steps = Session(model, 2, 7, 5), Session(model, 2, 7, 5)
    stateful.load_prompts(prompts)
    steps.load_prompts(prompts)
    prefill, decode, prefill_inputs, decode_inputs = steps.parameter_steps()
    assert isinstance(decode, ParameterDecode) and decode_inputs == ()
    assert torch.equal(prefill_inputs[0], prompts)
    aliases = decode.state_aliases()
    assert list(aliases) == list(decode.parameters())[-len(aliases) :]  # keys are the module's parameters
    assert sorted(aliases.values()) == list(range(1, 1 + len(aliases)))
    with torch.inference_mode():
        outputs = prefill(*prefill_inputs)
        assert torch.equal(outputs[0], stateful.prefill())
        prefill.after_call(outputs)  # the reset: the decode state becomes the prefill's outputs
        for _ in range(4):
            expected = stateful.decode()
            outputs = decode()
            assert torch.equal(outputs[0], expected)
            for state, out in aliases.items():
                assert outputs[out].shape == state.shape and outputs[out].dtype == state.dtype
                state.copy_(outputs[out])  # what trace's aliasing does with each state parameter
    assert torch.equal(steps.generated(), stateful.generated())
    new_prompts = workload.generation.make_prompts(2, 7).flip(0)
    steps.load_prompts(new_prompts)  # the next request's prompt reaches the bound prefill input
    assert torch.equal(prefill_inputs[0], new_prompts)
    assert repr(prefill) != repr(decode)  # distinct artifact-cache keys for the two steps


def test_bound_state_is_where_the_session_resets_and_reads() -> None:
    model = _model(GPT2("tiny"))
    session = Session(model, 1, 3, 2)
    session.load_prompts(torch.tensor([[1, 2, 3]]))
    prefill, decode, inputs, _ = session.parameter_steps()
    assert isinstance(decode, ParameterDecode)
    elsewhere = [tensor.detach().clone() for tensor in decode.state]
    decode.bind_state(elsewhere)
    with torch.inference_mode():
        prefill.after_call(prefill(*inputs))
    assert torch.equal(decode.live_state()[0][:, :3], torch.tensor([[1, 2, 3]]))
    assert torch.equal(decode.state[0], torch.zeros_like(decode.state[0]))  # its own parameters untouched
    assert session.generated().shape == (1, 2)
    with pytest.raises(ValueError, match="do not match"):
        decode.bind_state(elsewhere[:-1])


def test_session_rejects_what_does_not_fit() -> None:
    model = _model(GPT2("tiny"))
    with pytest.raises(ValueError, match="exceed"):
        Session(model, 1, 1000, 100)
    session = Session(model, 2, 4, 2)
    with pytest.raises(ValueError, match="prompts of shape"):
        session.load_prompts(torch.zeros(1, 4, dtype=torch.int64))


def test_one_output_token_needs_no_decode_step() -> None:
    workload = LLAMA("tiny")
    model = _model(workload)
    prompts = workload.make_inputs(1)[0][:, :5]
    session = Session(model, 1, 5, 1)
    session.load_prompts(prompts)
    with torch.inference_mode():
        session.prefill()
    assert torch.equal(session.generated(), greedy_uncached(model, prompts, 1))


@pytest.mark.slow  # importing transformers takes seconds
def test_llama_matches_transformers_llama() -> None:
    """The same weights in ``transformers``' LlamaForCausalLM give the same logits: RMSNorm, RoPE
    with Llama 3 scaling, GQA and SwiGLU are the published architecture."""
    transformers = pytest.importorskip("transformers")
    workload = LLAMA("tiny")
    model = _model(workload)
    meta = workload.metadata
    config = transformers.LlamaConfig(
        vocab_size=meta["vocab_size"],
        hidden_size=meta["hidden"],
        intermediate_size=meta["intermediate"],
        num_hidden_layers=meta["layers"],
        num_attention_heads=meta["heads"],
        num_key_value_heads=meta["kv_heads"],
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
            "rope_theta": 500000.0,
        },
        rope_theta=500000.0,
        attn_implementation="eager",
    )
    reference = transformers.LlamaForCausalLM(config).eval()
    mapped = {
        "model.embed_tokens.weight": model.embed.weight,
        "model.norm.weight": model.norm.weight,
        "lm_head.weight": model.lm_head.weight,
    }
    for i, block in enumerate(model.blocks):
        prefix = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            mapped[f"{prefix}self_attn.{name}.weight"] = getattr(block.attn, name).weight
        for name in ("gate_proj", "up_proj", "down_proj"):
            mapped[f"{prefix}mlp.{name}.weight"] = getattr(block.mlp, name).weight
        mapped[f"{prefix}input_layernorm.weight"] = block.input_norm.weight
        mapped[f"{prefix}post_attention_layernorm.weight"] = block.post_attn_norm.weight
    missing, unexpected = reference.load_state_dict(mapped, strict=False)
    assert not unexpected and all("rotary" in m for m in missing)
    ids = workload.make_inputs(2)[0][:, :40]
    with torch.inference_mode():
        torch.testing.assert_close(model(ids), reference(ids).logits, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_gpt2_matches_transformers_gpt2() -> None:
    transformers = pytest.importorskip("transformers")
    workload = GPT2("tiny")
    model = _model(workload)
    meta = workload.metadata
    config = transformers.GPT2Config(
        vocab_size=meta["vocab_size"],
        n_embd=meta["hidden"],
        n_layer=meta["layers"],
        n_head=meta["heads"],
        n_inner=meta["intermediate"],
        n_positions=meta["max_positions"],
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        attn_implementation="eager",
    )
    reference = transformers.GPT2LMHeadModel(config).eval()
    mapped = {
        "transformer.wte.weight": model.embed.weight,
        "transformer.wpe.weight": model.positions.weight,
        "transformer.ln_f.weight": model.norm.weight,
        "transformer.ln_f.bias": model.norm.bias,
        "lm_head.weight": model.lm_head.weight,
    }
    for i, block in enumerate(model.blocks):
        prefix, attn, mlp = f"transformer.h.{i}.", block.attn, block.mlp
        # GPT-2's Conv1D stores (in, out): the transpose of nn.Linear.
        qkv = [attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]
        mapped[f"{prefix}attn.c_attn.weight"] = torch.cat(qkv).T
        mapped[f"{prefix}attn.c_attn.bias"] = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
        mapped[f"{prefix}attn.c_proj.weight"] = attn.o_proj.weight.T
        mapped[f"{prefix}attn.c_proj.bias"] = attn.o_proj.bias
        mapped[f"{prefix}mlp.c_fc.weight"] = mlp.c_fc.weight.T
        mapped[f"{prefix}mlp.c_fc.bias"] = mlp.c_fc.bias
        mapped[f"{prefix}mlp.c_proj.weight"] = mlp.c_proj.weight.T
        mapped[f"{prefix}mlp.c_proj.bias"] = mlp.c_proj.bias
        for ours, theirs in (("input_norm", "ln_1"), ("post_attn_norm", "ln_2")):
            mapped[f"{prefix}{theirs}.weight"] = getattr(block, ours).weight
            mapped[f"{prefix}{theirs}.bias"] = getattr(block, ours).bias
    missing, unexpected = reference.load_state_dict(mapped, strict=False)
    assert not unexpected and all(m.endswith("attn.bias") or "masked_bias" in m for m in missing)
    ids = workload.make_inputs(2)[0][:, :40]
    with torch.inference_mode():
        torch.testing.assert_close(model(ids), reference(ids).logits, rtol=1e-4, atol=1e-5)


#: torch.compile's own imports use torch.jit APIs that torch 2.13 deprecates.
COMPILE_WARNINGS = "ignore:.*torch.jit.*:DeprecationWarning"


@pytest.mark.slow
@pytest.mark.filterwarnings(COMPILE_WARNINGS)
def test_compiled_cached_decoding_gives_the_eager_tokens() -> None:
    """The same step modules under torch.compile: Dynamo tracing and functionalization of the
    in-place buffer updates are what could break, and ``aot_eager`` exercises both without
    Inductor's minute of code generation on two cores (the benchmark runs the Inductor path and
    checks its tokens too)."""
    workload = LLAMA("tiny")
    assert workload.generation is not None
    model = _model(workload)
    prompts = workload.generation.make_prompts(2, 8)
    expected = greedy_uncached(model, prompts, 6)
    session = Session(model, 2, 8, 6)
    session.load_prompts(prompts)
    prefill = torch.compile(session.prefill, backend="aot_eager")
    decode = torch.compile(session.decode, backend="aot_eager")
    with torch.inference_mode():
        for _ in range(2):  # twice: the second run must reuse the state correctly
            prefill()
            for _ in range(5):
                decode()
            assert torch.equal(session.generated(), expected)

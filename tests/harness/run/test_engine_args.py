"""``--engine-arg`` sweeps: axes multiply into configurations, each its own engine and concurrency
sweep; what the engine cannot take is refused at planning, in one line."""

from __future__ import annotations

import pytest

from backends.engine.launcher import engine_flags, vllm_command
from harness.errors import ConfigError
from harness.run.engine_args import check_silicon, configurations, parse_engine_args
from harness.run.plan import DEFAULT_SUITE, Suite
from harness.scenarios.registry import cell_id

ENGINE = {"engine": "vllm", "model": "m", "scenario": "generate"}


def suite(**flat: object) -> Suite:
    """A suite from flat keys, as the command line gives them (``engine`` is also a section's name)."""
    return DEFAULT_SUITE.with_overrides(**flat)


def test_axes_multiply_config_major_and_each_config_sweeps_its_users() -> None:
    planned = suite(engine_args=("max-num-seqs=2,8", "enable-prefix-caching=true,False"), concurrency=(1, 4), **ENGINE)
    cells = planned.engine_cells()
    assert len(cells) == 2 * 2 * 2
    configs = [c.params.engine.spec.engine_args for c in cells if c.params.engine is not None]
    # Configuration-major: one engine serves its whole sweep before the next starts (one cold start each).
    assert configs[0] == configs[1] == (("max-num-seqs", "2"), ("enable-prefix-caching", "true"))
    assert configs[2] == (("max-num-seqs", "2"), ("enable-prefix-caching", "false"))
    assert [c.params.concurrency for c in cells[:2]] == [1, 4]
    ids = [cell_id(c.to_config()) for c in cells]
    assert len(set(ids)) == len(ids), "two configurations share a cell id"
    assert "engine[max-num-seqs=8,enable-prefix-caching=false]" in ids[-1]


def test_no_axes_keep_the_cells_and_ids_they_always_had() -> None:
    (cell,) = suite(**ENGINE).engine_cells()
    assert cell.params.engine is not None and cell.params.engine.spec.engine_args == ()
    assert (
        cell_id(cell.to_config())
        == "m/in128-out128/vllm-cpu/engine-default/engine/tdefault/bs1/generate-in128-out128-c1"
    )


def test_a_dtype_axis_is_the_engines_dtype() -> None:
    (cell,) = suite(engine_args=("dtype=fp32",), **ENGINE).engine_cells()
    assert cell.dtype == "float32" and cell.params.engine is not None
    assert cell.params.engine.spec.engine_args == () and cell.params.engine.spec.config_label() == "dtype=float32"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("max-num-seqz=2",), "unknown engine argument 'max-num-seqz'; sweepable: max-num-seqs"),
        (("max-num-seqs",), "takes KEY=V1,V2"),
        (("max-num-seqs=2,x",), "max-num-seqs takes whole numbers of 1 or more, got 'x'"),
        (("max-num-seqs=0",), "whole numbers of 1 or more"),
        (("enable-prefix-caching=maybe",), "takes true or false"),
        (("dtype=int4",), "dtype takes float32, bfloat16, float16"),
        (("max-num-seqs=2", "max-num-seqs=4"), "given twice"),
        (("max-num-seqs=2,2",), "repeated"),
    ],
)
def test_bad_axes_are_one_line(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_engine_args(args)


def test_an_emulated_dtype_is_refused_on_the_cpu() -> None:
    axes = parse_engine_args(["dtype=float32,bfloat16"])

    def avx2_only() -> dict[str, tuple[bool, str]]:
        return {"fp32": (True, "FMA"), "bf16": (False, "no AVX512_BF16 or AMX"), "fp16": (False, "no fp16")}

    with pytest.raises(ConfigError, match=r"dtype=bfloat16: this CPU only emulates bf16 \(no AVX512_BF16 or AMX\)"):
        check_silicon(axes, "cpu", avx2_only)
    check_silicon(axes, "cpu", lambda: {"fp32": (True, ""), "bf16": (True, "AMX"), "fp16": (True, "")})
    check_silicon(axes, "cuda", avx2_only)  # not this CPU's: the GPU engine checks its own


def test_prefix_caching_cannot_be_swept_on_neuron() -> None:
    with pytest.raises(ConfigError, match="cannot be swept on neuron"):
        check_silicon(parse_engine_args(["enable-prefix-caching=true,false"]), "neuron")


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"engine_args": ("max-num-seqs=2",), "scenario": "generate"}, "--engine-arg applies to serving engines"),
        (
            {"engine_args": ("max-num-seqs=2",), "endpoint": "http://x:1", "model": "m", "scenario": "generate"},
            "an --endpoint is configured by its owner",
        ),
        ({**ENGINE, "engine_args": ("dtype=float32",), "dtypes": ("fp32",)}, "--dtype or --engine-arg dtype"),
    ],
)
def test_the_suite_refuses_axes_it_cannot_honour(flat: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        suite(**flat)


def test_configurations_and_flags() -> None:
    axes = parse_engine_args(["max-num-seqs=4", "enable-prefix-caching=on,off"])
    assert configurations(axes) == [
        (("max-num-seqs", "4"), ("enable-prefix-caching", "true")),
        (("max-num-seqs", "4"), ("enable-prefix-caching", "false")),
    ]
    assert configurations(()) == [()]
    pairs = (("max-num-seqs", "4"), ("enable-prefix-caching", "false"), ("enable-chunked-prefill", "true"))
    assert engine_flags(pairs) == ["--max-num-seqs", "4", "--no-enable-prefix-caching", "--enable-chunked-prefill"]
    argv = vllm_command("cpu", "m", python="py", port=1, engine_args=pairs).argv
    assert "--no-enable-prefix-caching" in argv and argv[argv.index("--max-num-seqs") + 1] == "4"

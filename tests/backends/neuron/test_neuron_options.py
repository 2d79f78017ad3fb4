"""Neuron options: modes, dtype to neuronx-cc flags, placement parsing and validation messages."""

from __future__ import annotations

import pytest

from backends.base import BackendOptions
from backends.neuron import NeuronBackend
from backends.neuron.options import (
    Placement,
    compiler_args_for,
    mode_refusal,
    neuroncore_version,
    parse_config,
    parse_placement,
    placement_from_env,
    resolve_placement,
)
from harness.errors import ConfigError


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("fp32", ("--auto-cast", "none")),
        ("bf16", ("--auto-cast", "all", "--auto-cast-type", "bf16")),
        ("fp16", ("--auto-cast", "all", "--auto-cast-type", "fp16")),
    ],
)
def test_dtype_maps_to_explicit_auto_cast_flags(dtype: str, expected: tuple[str, ...]) -> None:
    config = parse_config(BackendOptions(dtype=dtype, mode="trace"))
    assert config.compiler_args == expected
    assert config.auto_cast == expected[1]


def test_auto_cast_override_and_passthrough_arguments() -> None:
    options = BackendOptions(
        dtype="bf16", mode="trace", extra={"auto_cast": "matmult", "compiler_args": "-O2 --model-type transformer"}
    )
    config = parse_config(options)
    assert config.compiler_args == (
        "--auto-cast",
        "matmult",
        "--auto-cast-type",
        "bf16",
        "-O2",
        "--model-type",
        "transformer",
    )


@pytest.mark.parametrize(
    ("extra", "dtype", "message"),
    [
        ({"autocast": "all"}, "bf16", "unknown neuron option 'autocast'; allowed: auto_cast, compiler_args"),
        ({"auto_cast": "some"}, "bf16", "use one of: none, matmult, all"),
        ({"auto_cast": "matmult"}, "fp32", "dtype fp32 means --auto-cast none"),
        ({"auto_cast": "none"}, "bf16", "dtype bf16 needs auto-casting"),
        ({"compiler_args": "--auto-cast=all"}, "fp32", "compiler_args must not set --auto-cast"),
        ({"compiler_args": "--auto-cast-type fp8_e4m3"}, "bf16", "must not set --auto-cast-type"),
        ({"compiler_args": "'unclosed"}, "fp32", "compiler_args cannot be parsed"),
    ],
)
def test_bad_extra_options_are_one_line_config_errors(extra: dict[str, str], dtype: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BackendOptions(dtype=dtype, mode="trace", extra=extra))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_compiler_args_for_has_no_cast_type_without_casting() -> None:
    assert compiler_args_for("none", "bf16") == ("--auto-cast", "none")
    assert compiler_args_for("matmult", "fp16", ("-O3",)) == (
        "--auto-cast",
        "matmult",
        "--auto-cast-type",
        "fp16",
        "-O3",
    )


@pytest.mark.parametrize(
    ("mode", "resolved"),
    [("trace", "trace"), ("eager", "trace"), ("dataparallel", "dataparallel"), ("compile", "compile")],
)
def test_modes(mode: str, resolved: str) -> None:
    assert parse_config(BackendOptions(dtype="fp32", mode=mode)).mode == resolved


def test_compile_mode_takes_no_compiler_flags_and_one_core() -> None:
    config = parse_config(BackendOptions(dtype="bf16", mode="compile"))
    assert (config.compiler_args, config.auto_cast, config.auto_cast_type) == ((), "none", None)
    assert resolve_placement(config.placement, "compile", {}) == Placement(count=1)
    with pytest.raises(ConfigError, match="mode compile takes none"):
        NeuronBackend().validate(BackendOptions(dtype="bf16", mode="compile", extra={"auto_cast": "all"}))
    with pytest.raises(ConfigError, match="mode compile runs one compiled model on one NeuronCore"):
        NeuronBackend().validate(BackendOptions(dtype="fp32", mode="compile", device="nc:0-1"))


@pytest.mark.parametrize(
    ("instance", "version"),
    [
        ("inf2.xlarge", 2),
        ("trn1.32xlarge", 2),
        ("trn1n.32xlarge", 2),
        ("trn2.48xlarge", 3),
        ("trn2u.48xlarge", 3),
        ("trn3.48xlarge", 4),
        ("inf1.xlarge", 1),
        ("c7i.large", None),
        (None, None),
    ],
)
def test_neuroncore_version_by_instance_family(instance: str | None, version: int | None) -> None:
    assert neuroncore_version(instance) == version


def test_trace_is_refused_beyond_neuroncore_v2_and_compile_below_v3() -> None:
    """The trace API page: "Currently this only supports NeuronCore-v2 type instances (e.g. trn1, inf2)";
    TorchNeuron: "requires compilation on Trainium2 or Trainium3 (Trn2 or Trn3) instances"."""
    for mode in ("trace", "dataparallel"):
        assert mode_refusal(mode, "inf2.xlarge") is None and mode_refusal(mode, "trn1.2xlarge") is None
        reason = mode_refusal(mode, "trn2.48xlarge")
        assert reason is not None and "NeuronCore-v2 (inf2, trn1) only" in reason and "--mode compile" in reason
        assert mode_refusal(mode, "trn3.48xlarge") is not None
    assert mode_refusal("compile", "trn2.48xlarge") is None and mode_refusal("compile", "trn3.48xlarge") is None
    reason = mode_refusal("compile", "inf2.xlarge")
    assert reason is not None and "Trn2/Trn3" in reason and "--mode trace" in reason
    assert mode_refusal("trace", None) is None  # an unknown instance is not refused


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BackendOptions(dtype="int8", mode="trace"), "does not support dtype 'int8'; use one of: fp32, bf16, fp16"),
        (BackendOptions(dtype="fp32", mode="jit"), "does not support mode 'jit'; use one of: trace, dataparallel"),
        (BackendOptions(dtype="fp32", mode="trace", threads=0), "--threads must be 1 or more"),
    ],
)
def test_validate_names_the_allowed_values(options: BackendOptions, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        NeuronBackend().validate(options)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("device", "mode", "placement", "env"),
    [
        ("nc:1", "trace", Placement(first=1, last=1), {"NEURON_RT_VISIBLE_CORES": "1", "NEURON_RT_NUM_CORES": None}),
        (
            "NC:0-3",
            "dataparallel",
            Placement(first=0, last=3),
            {"NEURON_RT_VISIBLE_CORES": "0-3", "NEURON_RT_NUM_CORES": None},
        ),
        ("4", "dataparallel", Placement(count=4), {"NEURON_RT_VISIBLE_CORES": None, "NEURON_RT_NUM_CORES": "4"}),
        ("1", "trace", Placement(count=1), {"NEURON_RT_VISIBLE_CORES": None, "NEURON_RT_NUM_CORES": "1"}),
        (None, "trace", Placement(), {"NEURON_RT_VISIBLE_CORES": None, "NEURON_RT_NUM_CORES": None}),
    ],
)
def test_placement_forms_and_their_runtime_variables(
    device: str | None, mode: str, placement: Placement, env: dict[str, str | None]
) -> None:
    parsed = parse_placement(device, mode)
    assert parsed == placement
    assert parsed.env() == env


@pytest.mark.parametrize(
    ("device", "mode", "message"),
    [
        ("nc:0-1", "trace", "mode trace runs one compiled model on one NeuronCore"),
        ("2", "trace", "use nc:N for one core, or --mode dataparallel"),
        ("nc:3-1", "dataparallel", "empty range"),
        ("0", "dataparallel", "asks for no NeuronCores"),
        ("cuda:0", "trace", "not understood; use 'nc:N' (one NeuronCore), 'nc:A-B' (an inclusive range) or a count"),
        ("nc:x", "trace", "not understood"),
    ],
)
def test_bad_placements_are_rejected_before_running(device: str, mode: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        NeuronBackend().validate(BackendOptions(dtype="fp32", mode=mode, device=device))
    assert message in str(info.value)


def test_without_a_device_trace_takes_one_core_unless_the_environment_partitions() -> None:
    assert resolve_placement(Placement(), "trace", {}) == Placement(count=1)
    assert resolve_placement(Placement(), "dataparallel", {}) == Placement()
    inherited = {"NEURON_RT_VISIBLE_CORES": "2-3"}
    assert resolve_placement(Placement(), "dataparallel", inherited) == Placement(first=2, last=3)
    assert resolve_placement(Placement(first=0, last=0), "trace", inherited) == Placement(first=0, last=0)
    assert placement_from_env({"NEURON_RT_NUM_CORES": "2"}) == Placement(count=2)
    assert placement_from_env({"NEURON_RT_NUM_CORES": "0"}) == Placement()


def test_describe() -> None:
    assert Placement(first=1, last=1).describe() == "nc:1"
    assert Placement(first=0, last=3).describe() == "nc:0-3"
    assert Placement(count=1).describe() == "1 NeuronCore"
    assert Placement().describe() == "all NeuronCores"

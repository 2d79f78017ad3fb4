"""vLLM on Neuron: the environment found by probing, and each stack's command line.

The environments are laid out as the DLAMIs name them (deploy/environments/dlami.rst: 2.31's
``aws_neuronx_venv_pytorch_inference_vllm_0_16``, 2.32's ``..._vllm_0_24_0_1_1_0``; the issue's
``..._vllm_0_13`` and a PyTorch 2.9 NxD Inference venv into which the NxDI quickstart installed
vLLM). Each ``bin/python`` is this machine's Python seeing one folder of packages, so the real
probe runs in it. The vLLM stand-in is only what the probe looks at: a ``vllm`` package, and the
Neuron platform either as the ``neuron`` entry point of ``vllm.platform_plugins`` (as the
vllm-neuron plugin's setup.py declares it: ``"vllm.platform_plugins": ["neuron = ...:register"]``)
or as vLLM's built-in ``vllm.platforms.neuron`` module (vLLM before the plugin).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backends.engine.launcher import vllm_command
from backends.engine.neuron_vllm import (
    NXDI_DEFAULT_MAX_NUM_SEQS,
    find_neuron_vllm_python,
    instance_type_here,
    neuron_stack,
)
from harness.errors import ConfigError

#: The belief this replaces: one fixed path, gone from the 2.32+ images.
OLD_PATH = "aws_neuronx_venv_pytorch_2_9_nxd_inference/bin/python"


def _env(opt: Path, name: str, vllm: str | None) -> Path:
    """``vllm``: None (no vLLM), ``cpu`` (vLLM without Neuron), ``plugin`` or ``builtin``."""
    site = opt / name / "site"
    site.mkdir(parents=True)
    if vllm is not None:
        (site / "vllm").mkdir()
        (site / "vllm" / "__init__.py").write_text("")
    if vllm == "builtin":
        (site / "vllm" / "platforms").mkdir()
        (site / "vllm" / "platforms" / "__init__.py").write_text("")
        (site / "vllm" / "platforms" / "neuron.py").write_text("")
    if vllm == "plugin":
        (site / "vllm_neuron").mkdir()
        (site / "vllm_neuron" / "__init__.py").write_text("def register():\n    return 'vllm_neuron.platform'\n")
        info = site / "vllm_neuron-0.24.0.1.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-neuron\nVersion: 0.24.0.1.1.0\n")
        (info / "entry_points.txt").write_text("[vllm.platform_plugins]\nneuron = vllm_neuron:register\n")
    python = opt / name / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec {sys.executable} -S "$@"\n')
    python.chmod(0o755)
    return python


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (  # Neuron 2.32 multi-framework DLAMI: the vLLM venv has the plugin
            {"aws_neuronx_venv_jax_0_10": None, "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0": "plugin"},
            "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0",
        ),
        (  # Neuron 2.31 vLLM 0.16 DLAMI (NxD Inference through the plugin)
            {"aws_neuronx_venv_pytorch_2_9": None, "aws_neuronx_venv_pytorch_inference_vllm_0_16": "plugin"},
            "aws_neuronx_venv_pytorch_inference_vllm_0_16",
        ),
        (  # vLLM installed into the PyTorch 2.9 NxDI venv; another venv's vLLM lacks Neuron
            {
                "aws_neuronx_venv_pytorch_inference_vllm_0_13": "cpu",
                "aws_neuronx_venv_pytorch_2_9_nxd_inference": "builtin",
            },
            "aws_neuronx_venv_pytorch_2_9_nxd_inference",
        ),
    ],
)
def test_the_probe_finds_a_vllm_environment_of_any_release_name(
    tmp_path: Path, layout: dict[str, str | None], expected: str
) -> None:
    opt = tmp_path / "opt"
    for name, vllm in layout.items():
        _env(opt, name, vllm)
    assert find_neuron_vllm_python(opt) == str(opt / expected / "bin" / "python")


def test_the_fixed_path_of_old_is_absent_where_the_probe_finds_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opt = tmp_path / "opt"
    _env(opt, "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0", "plugin")
    assert not (opt / OLD_PATH).exists(), "the old belief names a Python the 2.32 image does not have"
    monkeypatch.setenv("SILICONBENCH_OPT", str(opt))
    found = find_neuron_vllm_python()
    assert found.endswith("_vllm_0_24_0_1_1_0/bin/python")
    command = vllm_command("neuron", "/m", port=9000, instance_type="trn2.48xlarge")
    assert command.argv[0] == found


def test_no_vllm_with_neuron_names_every_environment_tried(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    _env(opt, "aws_neuronx_venv_jax_0_10", None)
    _env(opt, "aws_neuronx_venv_pytorch_inference_vllm_0_13", "cpu")
    with pytest.raises(ConfigError) as error:
        find_neuron_vllm_python(opt)
    message = str(error.value)
    assert "\n" not in message
    assert "tried: aws_neuronx_venv_pytorch_inference_vllm_0_13, aws_neuronx_venv_jax_0_10" in message
    with pytest.raises(ConfigError, match="tried: none there"):
        find_neuron_vllm_python(tmp_path / "empty")


def test_stacks_follow_the_neuroncore_generation(tmp_path: Path) -> None:
    assert [neuron_stack(t) for t in ("inf2.xlarge", "trn1.2xlarge", "trn1n.32xlarge")] == ["nxd-inference"] * 3
    assert [neuron_stack(t) for t in ("trn2.3xlarge", "trn2u.48xlarge", "trn3.48xlarge")] == ["vllm-neuron"] * 3
    with pytest.raises(ConfigError, match="not a Neuron instance type"):
        neuron_stack("g6e.xlarge")
    dmi = tmp_path / "product_name"
    dmi.write_text("inf2.8xlarge\n")
    assert instance_type_here(dmi) == "inf2.8xlarge"
    dmi.write_text("Standard PC (Q35 + ICH9, 2009)\n")
    assert instance_type_here(dmi) is None and instance_type_here(tmp_path / "missing") is None


def _value(argv: tuple[str, ...], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def _nxdi_blocks_ok(argv: tuple[str, ...]) -> bool:
    """vllm-user-guide-v1.rst, Known Issues 2: with neither chunked prefill nor prefix caching,
    ``num_gpu_blocks_override`` must be exactly ``max_num_seqs``."""
    contiguous = "--no-enable-chunked-prefill" in argv and "--no-enable-prefix-caching" in argv
    blocks, seqs = _value(argv, "--num-gpu-blocks-override"), _value(argv, "--max-num-seqs")
    return not contiguous or (blocks is not None and blocks == seqs)


@pytest.mark.parametrize("instance_type", ["inf2.xlarge", "trn1.2xlarge"])
def test_nxd_inference_carries_the_blocks_override_and_its_framework(instance_type: str) -> None:
    command = vllm_command("neuron", "/m", python="/py", port=9000, max_num_seqs=8, instance_type=instance_type)
    assert _nxdi_blocks_ok(command.argv)
    assert _value(command.argv, "--num-gpu-blocks-override") == _value(command.argv, "--max-num-seqs") == "8"
    assert command.argv.count("--max-num-seqs") == 1
    assert command.env["VLLM_NEURON_FRAMEWORK"] == "neuronx-distributed-inference"
    assert command.env["NEURON_COMPILED_ARTIFACTS"].startswith("/m")
    default = vllm_command("neuron", "/m", python="/py", port=9000, instance_type=instance_type)
    assert _value(default.argv, "--num-gpu-blocks-override") == str(NXDI_DEFAULT_MAX_NUM_SEQS)
    assert _nxdi_blocks_ok(default.argv)


def test_the_old_nxd_inference_command_fails_the_documented_rule() -> None:
    """What the launcher ran before: prefix caching and chunked prefill off, no override."""
    old = ("/py", "-m", "vllm", "--no-enable-chunked-prefill", "--no-enable-prefix-caching", "--max-num-seqs", "8")
    assert not _nxdi_blocks_ok(old)


@pytest.mark.parametrize("instance_type", ["trn2.48xlarge", "trn2u.48xlarge", "trn3.3xlarge"])
def test_vllm_neuron_keeps_the_engine_defaults(instance_type: str) -> None:
    command = vllm_command("neuron", "/m", python="/py", port=9000, max_num_seqs=8, instance_type=instance_type)
    for flag in ("--no-enable-prefix-caching", "--no-enable-chunked-prefill", "--num-gpu-blocks-override"):
        assert flag not in command.argv, flag
    assert _value(command.argv, "--max-num-seqs") == "8" and "VLLM_NEURON_FRAMEWORK" not in command.env
    assert _value(command.argv, "--dtype") == "bfloat16"


def test_an_unknown_neuron_host_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SILICONBENCH_INSTANCE_TYPE", raising=False)
    monkeypatch.setattr("backends.engine.launcher.instance_type_here", lambda: None)
    with pytest.raises(ConfigError, match=r"set \$SILICONBENCH_INSTANCE_TYPE"):
        vllm_command("neuron", "/m", python="/py", port=9000)
    monkeypatch.setenv("SILICONBENCH_INSTANCE_TYPE", "inf2.xlarge")
    assert "--num-gpu-blocks-override" in vllm_command("neuron", "/m", python="/py", port=9000).argv

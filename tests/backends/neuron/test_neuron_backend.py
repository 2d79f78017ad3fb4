"""The neuron backend through the torch-neuronx double: availability, compile, cache, placement, failures.

The double follows the torch-neuronx documentation (see ``double/torch_neuronx/__init__.py``);
these tests check what the backend does with it, never timings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from backends.base import BackendOptions, PreparedModel
from backends.neuron import NeuronBackend
from backends.neuron.cache import ArtifactCache, default_cache_dir
from backends.registry import BUILTIN_BACKENDS, get_backend
from harness.errors import CellFailedError, ConfigError
from harness.measure.correctness import max_relative_error
from harness.measure.environment import collect_environment
from harness.measure.sampler import SamplingPolicy
from harness.run.cell import run_cell
from harness.runfile.files import RunWriter, load_run
from harness.runfile.records import CellConfig
from workloads.mlp import MLP

REPO = Path(__file__).resolve().parents[3]


def _workload(batch: int) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    workload = MLP("tiny")
    return workload.build_model().eval(), workload.make_inputs(batch)


def _prepare(batch: int = 2, **options: Any) -> tuple[PreparedModel, torch.Tensor]:
    model, inputs = _workload(batch)
    with torch.no_grad():
        reference = model(*inputs)
    prepared = NeuronBackend().prepare(model, inputs, BackendOptions(**{"dtype": "fp32", "mode": "trace", **options}))
    return prepared, reference


def _artifacts() -> list[Path]:
    return ArtifactCache(default_cache_dir()).artifacts()


# -- registration and availability ----------------------------------------------------------------


def test_registered_and_isolated_by_default() -> None:
    assert BUILTIN_BACKENDS["neuron"] == "backends.neuron:NeuronBackend"
    backend = get_backend("neuron")
    assert isinstance(backend, NeuronBackend)
    assert backend.isolate_by_default is True
    assert (backend.dtypes, backend.modes) == (("fp32", "bf16", "fp16"), ("trace", "dataparallel", "compile"))


def test_importing_the_backend_imports_neither_torch_nor_torch_neuronx() -> None:
    code = (
        "import sys, backends.neuron, backends.registry; "
        "print(sorted(m for m in ('torch', 'torch_neuronx') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.strip() == "[]"


def test_unavailable_without_a_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.neuron import backend as module

    monkeypatch.setattr(module, "DEVICE_GLOB", str(tmp_path / "neuron*"))
    status = NeuronBackend().availability()
    assert not status.available
    assert status.reason == f"no Neuron device ({tmp_path / 'neuron*'} absent); run on an inf2/trn1/trn2 instance"
    default = NeuronBackend(device_glob="/dev/neuron*-absent-here").availability()
    assert "run on an inf2/trn1/trn2 instance" in default.reason


def test_unavailable_without_torch_neuronx(fake_device: Path) -> None:
    status = NeuronBackend().availability()
    assert not status.available
    assert status.reason == "torch_neuronx is not installed; install torch-neuronx from the AWS Neuron pip repository"


def test_pypi_placeholder_is_recognised_without_importing_it(
    fake_device: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "torch_neuronx"
    package.mkdir(parents=True)
    # The whole of PyPI's torch-neuronx 1.0: one line that raises on import.
    (package / "__init__.py").write_text(
        'raise ImportError("WRONG PACKAGE. Please install the package from Neuron Repository - '
        'pip.repos.neuron.amazonaws.com")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    status = NeuronBackend().availability()
    assert not status.available and "PyPI's placeholder" in status.reason
    assert "torch_neuronx" not in sys.modules
    with pytest.raises(CellFailedError, match=r"^cannot import torch_neuronx: WRONG PACKAGE\."):
        _prepare()
    sys.modules.pop("torch_neuronx", None)


def test_available_with_a_device_and_the_package(neuron_double: Any) -> None:
    assert NeuronBackend().availability().available
    assert "torch_neuronx" not in sys.modules  # availability must not start the runtime


# -- compiling, bucketing and the cache ---------------------------------------------------------------


def test_trace_fp32_compiles_once_with_explicit_flags_and_matches(neuron_double: Any) -> None:
    prepared, reference = _prepare()
    assert max_relative_error(reference, prepared.call()) <= 1e-6
    (call,) = neuron_double.trace_calls
    assert call.compiler_args == ["--auto-cast", "none"]
    assert call.input_shapes == [(2, 256)]
    assert Path(call.workdir).parent == default_cache_dir() / "workdir"
    assert not Path(call.workdir).exists()  # removed after a successful compile
    details = prepared.details
    assert details["cache_hit"] is False and details["cache_recovered"] is None
    assert details["trace_s"] > 0 and prepared.compile_s >= details["trace_s"]
    assert details["neuron_mode"] == "trace" and details["neuron_cores_used"] == 1
    assert details["compiler_args"] == ["--auto-cast", "none"]
    assert details["torch_neuronx_version"] == "2.9.0.2.15.0+double"
    assert call.inline_weights_to_neff is True and call.state_aliases == {} and not call.positional
    assert Path(details["artifact"]).exists()


@pytest.mark.parametrize(("dtype", "cast_type", "tolerance"), [("bf16", "bf16", 6e-2), ("fp16", "fp16", 2e-2)])
def test_reduced_precision_is_compiler_auto_cast(
    neuron_double: Any, dtype: str, cast_type: str, tolerance: float
) -> None:
    prepared, reference = _prepare(dtype=dtype)
    (call,) = neuron_double.trace_calls
    assert (call.auto_cast, call.auto_cast_type) == ("all", cast_type)
    assert call.input_dtypes == ["torch.float32"]  # inputs stay fp32: the compiler casts inside
    output = prepared.call()
    assert output.dtype == torch.float32
    assert 0 < max_relative_error(reference, output) <= tolerance


def test_each_batch_size_gets_its_own_artifact(neuron_double: Any) -> None:
    small, _ = _prepare(batch=2)
    large, _ = _prepare(batch=4)
    assert [c.input_shapes for c in neuron_double.trace_calls] == [[(2, 256)], [(4, 256)]]
    assert small.details["cache_key"] != large.details["cache_key"]
    assert len(_artifacts()) == 2
    assert large.call().shape == (4, 512)


def test_second_prepare_reuses_the_artifact_without_compiling(neuron_double: Any) -> None:
    first, reference = _prepare(batch=2)
    second, _ = _prepare(batch=2)
    assert len(neuron_double.trace_calls) == 1
    assert second.details["cache_hit"] is True and second.details["trace_s"] == 0.0
    assert second.details["cache_key"] == first.details["cache_key"]
    assert max_relative_error(reference, second.call()) <= 1e-6
    _prepare(batch=2, dtype="bf16")
    assert len(neuron_double.trace_calls) == 2  # another precision is another artifact


def test_changed_weights_or_compiler_flags_miss_the_cache(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _prepare()
    model, inputs = _workload(2)
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1.0
    NeuronBackend().prepare(model, inputs, BackendOptions(dtype="fp32", mode="trace"))
    monkeypatch.setenv("NEURON_CC_FLAGS", "--optlevel 1")
    _prepare()
    assert len(neuron_double.trace_calls) == 3


def test_a_corrupt_artifact_is_recompiled(neuron_double: Any) -> None:
    first, reference = _prepare()
    artifact = Path(first.details["artifact"])
    artifact.write_bytes(artifact.read_bytes()[:200])
    again, _ = _prepare()
    assert len(neuron_double.trace_calls) == 2
    assert again.details["cache_hit"] is False
    assert "unusable and is recompiled" in again.details["cache_recovered"]
    assert max_relative_error(reference, again.call()) <= 1e-6
    third, _ = _prepare()
    assert third.details["cache_hit"] is True


# -- placement -----------------------------------------------------------------------------------------


def test_default_trace_asks_the_runtime_for_one_core_before_import(neuron_double: Any) -> None:
    _prepare()
    assert neuron_double.env_at_import == {"NEURON_RT_VISIBLE_CORES": None, "NEURON_RT_NUM_CORES": "1"}
    assert neuron_double.visible_cores == [0]


def test_explicit_core_is_set_before_import_and_used(neuron_double: Any) -> None:
    prepared, _ = _prepare(device="nc:1")
    assert neuron_double.env_at_import == {"NEURON_RT_VISIBLE_CORES": "1", "NEURON_RT_NUM_CORES": None}
    prepared.call()
    assert {e.core for e in neuron_double.executions} == {1}
    assert prepared.details["placement"] == "nc:1"
    info = NeuronBackend().device_info()
    assert info["visible_cores_env"] == "1" and info["num_cores_env"] is None


def test_an_inherited_partition_is_kept(neuron_double: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1")
    _prepare()
    assert neuron_double.env_at_import == {"NEURON_RT_VISIBLE_CORES": "1", "NEURON_RT_NUM_CORES": None}


def test_a_core_outside_the_instance_is_a_cell_error(neuron_double: Any) -> None:
    with pytest.raises(CellFailedError, match=r"nc:5 is outside inf2\.xlarge's cores 0-1"):
        _prepare(device="nc:5")
    with pytest.raises(CellFailedError, match="asked for 3 NeuronCores but neuron-ls reports 2"):
        _prepare(mode="dataparallel", batch=6, device="3")


def test_changing_placement_after_the_runtime_started_is_refused(neuron_double: Any) -> None:
    _prepare(device="nc:0")
    _prepare(device="nc:0")  # the same placement is fine
    with pytest.raises(CellFailedError, match=r"placement nc:1 differs .* drop --no-isolate"):
        _prepare(device="nc:1")


def test_the_backends_own_single_core_choice_is_not_mistaken_for_a_user_partition(neuron_double: Any) -> None:
    _prepare(batch=4)  # trace: the backend itself sets NEURON_RT_NUM_CORES=1 before the runtime starts
    with pytest.raises(CellFailedError, match=r"placement all NeuronCores differs .*NEURON_RT_NUM_CORES=1"):
        _prepare(batch=4, mode="dataparallel")


# -- dataparallel -----------------------------------------------------------------------------------


def test_dataparallel_compiles_the_per_core_batch_and_uses_every_core(neuron_double: Any) -> None:
    prepared, reference = _prepare(batch=4, mode="dataparallel")
    (call,) = neuron_double.trace_calls
    assert call.input_shapes == [(2, 256)]
    assert prepared.details["neuron_cores_used"] == 2 and prepared.details["per_core_batch"] == 2
    assert neuron_double.env_at_import == {"NEURON_RT_VISIBLE_CORES": None, "NEURON_RT_NUM_CORES": None}
    output = prepared.call()
    assert max_relative_error(reference, output) <= 1e-6
    assert neuron_double.dataparallel_calls[-1] == {"cores": [0, 1], "chunk": 2, "batch": 4}


def test_dataparallel_on_an_explicit_range(neuron_double: Any) -> None:
    prepared, _ = _prepare(batch=2, mode="dataparallel", device="nc:0-1")
    assert neuron_double.env_at_import["NEURON_RT_VISIBLE_CORES"] == "0-1"
    assert prepared.details["per_core_batch"] == 1


def test_dataparallel_needs_a_batch_that_divides_evenly(neuron_double: Any) -> None:
    with pytest.raises(CellFailedError, match="batch size 3 is not a multiple of 2; use a batch size such as 2"):
        _prepare(batch=3, mode="dataparallel")


def test_dataparallel_without_a_core_count_says_how_to_give_one(
    neuron_double: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from backends.neuron import facts

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(facts, "NEURON_LS_PATHS", ())
    with pytest.raises(CellFailedError, match="give --device nc:0-N or a count"):
        _prepare(batch=2, mode="dataparallel")


# -- failure messages ------------------------------------------------------------------------------------


def test_compiler_failure_message_names_the_error_and_what_to_try(neuron_double: Any) -> None:
    neuron_double.fail_compile = "compiler"
    with pytest.raises(CellFailedError) as info:
        _prepare()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("neuronx-cc could not compile the model (neuronx-cc failed with 70: ")
    assert "Tensorizer pass failed" in message and "try --dtype bf16 or a smaller batch size" in message
    workdir = Path(message.rsplit("compiler log in ", 1)[1])
    assert (workdir / "log-neuron-cc.txt").exists()  # kept for the user to read
    assert _artifacts() == []


def test_unsupported_operator_message_points_to_analyze(neuron_double: Any) -> None:
    neuron_double.fail_compile = "unsupported"
    with pytest.raises(
        CellFailedError, match=r"uses an operator neuronx-cc cannot compile \(Unsupported HLO opcode"
    ) as info:
        _prepare(dtype="bf16")
    assert "torch_neuronx.analyze(model, example_inputs)" in str(info.value)


@pytest.mark.parametrize("mode", ["trace", "dataparallel"])
def test_device_out_of_memory_message(neuron_double: Any, mode: str) -> None:
    neuron_double.fail_load = "oom"
    with pytest.raises(
        CellFailedError, match=r"NeuronCore device memory ran out while loading .*try a smaller batch size"
    ):
        _prepare(batch=2, mode=mode)


# -- device facts and the whole cell -------------------------------------------------------------------


def test_device_info_reports_neuron_ls_facts(neuron_double: Any) -> None:
    info = NeuronBackend().device_info()
    assert info["device"] == "neuron"
    assert (info["instance_type"], info["neuron_devices"], info["neuron_cores"]) == ("inf2.xlarge", 1, 2)
    assert info["memory_per_device_bytes"] == 32 * 2**30
    assert info["facts_error"] is None


def _cell(**changes: Any) -> CellConfig:
    config = {
        "workload": "mlp",
        "preset": "tiny",
        "backend": "neuron",
        "dtype": "fp32",
        "mode": "trace",
        "threads": None,
        "batch_size": 2,
    }
    return CellConfig(**{**config, **changes})


POLICY = SamplingPolicy(max_time_s=0.2, warmup_time_s=0.02, warmup_min_count=2, min_count=5, max_count=200)


def test_run_cell_end_to_end_and_the_run_file_validates(neuron_double: Any, tmp_path: Path) -> None:
    first = run_cell(_cell(), POLICY)
    assert first.status == "ok", first.error
    assert first.measurement.correctness.passed is True
    device = first.measurement.device
    assert device["cache_hit"] is False and device["trace_s"] > 0
    assert device["instance_type"] == "inf2.xlarge" and device["neuron_cores"] == 2
    assert first.measurement.latency_ns.count >= 5

    second = run_cell(_cell(), POLICY)
    assert second.status == "ok" and second.measurement.device["cache_hit"] is True
    assert second.measurement.device["trace_s"] == 0.0

    neuron_double.fail_compile = "compiler"
    failed = run_cell(_cell(batch_size=4), POLICY)
    assert failed.status == "failed"
    assert (failed.error.type, failed.error.phase) == ("CellFailedError", "prepare")
    assert failed.error.message.startswith("neuronx-cc could not compile the model")

    writer = RunWriter(tmp_path / "results", collect_environment())
    for record in (first, second, failed):
        writer.add_cell(record)
    loaded = load_run(writer.finish())
    assert [c.status for c in loaded.cells] == ["ok", "ok", "failed"]


def test_validation_errors_surface_as_config_errors_in_a_cell(neuron_double: Any) -> None:
    record = run_cell(_cell(mode="trace", device="nc:0-1"), POLICY)
    assert record.status == "failed"
    assert record.error.type == "ConfigError" and "one NeuronCore" in record.error.message
    with pytest.raises(ConfigError):
        NeuronBackend().validate(BackendOptions(dtype="fp32", mode="trace", device="nc:0-1"))


def test_cli_lists_neuron_as_unavailable_with_its_reason(run_cli: Any) -> None:
    done = run_cli("list")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("neuron "))
    assert " no " in row and "fp32, bf16, fp16" in row and "trace, dataparallel, compile" in row
    if not list(Path("/dev").glob("neuron*")):
        assert "no Neuron device (/dev/neuron* absent); run on an inf2/trn1/trn2 instance" in row


# -- NeuronCore generations: trace on v2, compile (TorchNeuron) on Trn2/Trn3 ------------------------


def test_neuron_ls_json_has_no_instance_type_and_the_header_gives_it(neuron_double: Any) -> None:
    """Neuron LS User Guide: the JSON has no instance type; the text output's header does."""
    out = subprocess.run(["neuron-ls", "--json-output"], capture_output=True, text=True, check=True).stdout
    assert all("instance_type" not in device for device in __import__("json").loads(out))
    assert NeuronBackend().device_info()["instance_type"] == "inf2.xlarge"


def test_trace_is_refused_on_trn2_before_anything_compiles(trn2: Any) -> None:
    with pytest.raises(CellFailedError, match=r"NeuronCore-v2 \(inf2, trn1\) only and trn2.48xlarge has NeuronCore-v3"):
        _prepare()
    assert trn2.trace_calls == [] and trn2.runtime_env is None  # nothing traced, the runtime never started


def test_the_double_refuses_trace_on_trn2_too(trn2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the backend's check wrong, the trace itself fails there (trace API page, NeuronCore-v2 only)."""
    monkeypatch.setattr(NeuronBackend, "_refuse_on_this_silicon", lambda self, config, facts: None)
    with pytest.raises(CellFailedError, match="NeuronCore-v2 instances"):
        _prepare()


def test_compile_mode_is_refused_on_inf2(neuron_double: Any) -> None:
    with pytest.raises(CellFailedError, match="runs on Trn2/Trn3"):
        _prepare(mode="compile")


def test_compile_mode_uses_torch_compile_with_the_neuron_backend(torchneuron: Any) -> None:
    backend = NeuronBackend()
    model, inputs = _workload(2)
    with torch.no_grad():
        reference = model(*inputs)
    prepared = backend.prepare(model, inputs, BackendOptions(dtype="fp32", mode="compile"))
    assert max_relative_error(reference, prepared.call()) <= 1e-6
    assert torchneuron.graphs and torchneuron.synchronize_calls >= 1  # compiled, and waited for
    details = prepared.details
    assert details["neuron_mode"] == "compile" and details["neuron_cores_used"] == 1
    assert details["compiler_args"] == [] and details["trace_s"] > 0
    assert os.environ["NEURON_RT_NUM_CORES"] == "1"  # one NeuronCore, set before anything ran
    before = torchneuron.synchronize_calls
    backend.synchronize()
    assert torchneuron.synchronize_calls == before + 1  # timed calls are waited for: execution is asynchronous


def test_compile_mode_keeps_buffer_updates_and_trace_does_not(neuron_double: Any) -> None:
    backend = NeuronBackend()
    assert backend.keeps_buffer_updates(BackendOptions(dtype="fp32", mode="compile")) is True
    assert backend.keeps_buffer_updates(BackendOptions(dtype="fp32", mode="trace")) is False
    assert backend.keeps_buffer_updates(BackendOptions(dtype="fp32", mode="eager")) is False

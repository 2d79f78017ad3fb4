"""The neuron backend: AWS Inferentia2 / Trainium through torch-neuronx.

Three modes. ``trace`` compiles the model with ``torch_neuronx.trace`` (neuronx-cc) for one fixed
set of input shapes and runs it on one NeuronCore; ``dataparallel`` compiles it for the per-core
share of the batch and replicates it on every visible NeuronCore with ``torch_neuronx.DataParallel``
(throughput). Both run on NeuronCore-v2 (inf2, trn1) only: the trace API page says "Currently this
only supports NeuronCore-v2 type instances" (see ``options.TRACE_NEURONCORE_VERSIONS``). ``compile``
is the PyTorch-native path of Trn2/Trn3, ``torch.compile(backend="neuron")`` (``backends.neuron.native``).
``options.mode_refusal`` refuses a mode on the wrong silicon in one line before anything compiles.

Traced artifacts are cached on disk per input shape (``backends.neuron.cache``), so only the first
run of a shape pays the compile, which is reported as ``trace_s`` apart from the measured latencies.
A traced Neuron model takes CPU tensors and returns CPU tensors: every timed call includes the
host-to-device copy of the inputs and the copy back of the outputs, as a served model would.

State (a decoder's KV cache) under ``trace``. ``trace`` compiles the weights and buffers into the
NEFF as constants (``inline_weights_to_neff=True``), so a buffer updated in place starts from its
traced value on every call. State is instead declared through ``input_output_aliases``, which
"Marks input tensors as state tensors which are device tensors" (trace API page) and is keyed on
the module's *parameters*: the T5 tutorial builds it from the decoder's ``ParameterList``
(``aliases[decoder.past_key_values_sa[i]] = i + num_outputs_from_trace``) and public torch-neuronx
source matches the keys against ``func.named_parameters()`` and keeps them in the traced module as
``states``, passed to the NEFF after the forward inputs. So a step that keeps state (a
``workloads.decoder.ParameterDecode``) lists its state parameters with ``state_aliases()``, the
backend traces with those aliases, moves the traced module's state to its NeuronCore with
``torch_neuronx.move_trace_to_device`` (the T5 tutorial does so after loading; without it the state
would cross from the host on every call), and hands the traced module's ``parameters()`` -- the
states, in alias order, as the T5 tutorial's ``zip(self.decoder.parameters(), past_key_values)``
relies on -- back to the step with ``bind_state``. A prefill step's ``after_call(outputs)`` runs
after each of its calls and resets that state for the next request (the T5 tutorial's
``state.copy_(tensor)``). ``inline_weights_to_neff`` stays ``True`` and is passed explicitly: the
tutorial, the documentation's one example of aliased state, traces with that default, and only
NxD's bucketing and SPMD tracing require ``False``. Keying the aliases on forward inputs, as this
backend once did, is not what ``trace`` accepts: the source raises KeyError for such a key.

``torch_neuronx`` is imported only inside ``prepare``, after the NeuronCore placement variables
are set, because the runtime reads them once; this is why neuron cells run in a child process.

torch-neuronx is not on PyPI (only a placeholder that raises on import), so the unit tests drive
this backend through test doubles that follow the Neuron documentation and public source
(``tests/backends/neuron/double``); the ``neuron``-marked tests run it on real hardware.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from backends.base import Availability, BackendOptions, PreparedModel
from backends.neuron.cache import ArtifactCache, cache_key, model_fingerprint
from backends.neuron.facts import Runner, device_facts
from backends.neuron.failures import compile_failure, runtime_failure
from backends.neuron.options import (
    COMPILE_MODE,
    COMPILE_NEURONCORE_VERSIONS,
    DTYPES,
    ENV_NUM_CORES,
    ENV_VISIBLE_CORES,
    MODE_ALIASES,
    MODES,
    NeuronConfig,
    Placement,
    mode_refusal,
    neuroncore_version,
    parse_config,
    resolve_placement,
)
from backends.torch_common import tensors_to_host
from harness.errors import CellFailedError, ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_GLOB", "RUNTIME", "NeuronBackend"]

#: Neuron devices appear as /dev/neuron0, /dev/neuron1, ... once the driver is loaded.
DEVICE_GLOB = "/dev/neuron*"
_PLACEMENT_KEYS = (ENV_VISIBLE_CORES, ENV_NUM_CORES)
_PLACEHOLDER_MARK = "WRONG PACKAGE"


@dataclass
class _RuntimeRecord:
    """This process's placement variables: as the user gave them, and as the runtime started with."""

    env: dict[str, str | None] | None = None
    original: dict[str, str | None] | None = None

    def reset(self) -> None:
        self.env = None
        self.original = None

    def user_env(self) -> dict[str, str]:
        """The variables before this backend first set them, so its own choice is never read as the user's."""
        source = self.original if self.original is not None else {k: os.environ.get(k) for k in _PLACEMENT_KEYS}
        return {k: v for k, v in source.items() if v is not None}


RUNTIME = _RuntimeRecord()


def _is_placeholder(spec: Any) -> bool:
    """PyPI's ``torch-neuronx`` is a one-line ``__init__`` that raises ImportError("WRONG PACKAGE ...")."""
    origin = getattr(spec, "origin", None)
    if not origin or not os.path.isfile(origin) or os.path.getsize(origin) > 4096:
        return False
    try:
        with open(origin, encoding="utf-8", errors="replace") as handle:
            return _PLACEHOLDER_MARK in handle.read()
    except OSError:
        return False


def _state_aliases(model: Any) -> dict[Any, int]:
    """A step's ``state_aliases()``: {state parameter: output index}, trace's ``input_output_aliases``.

    ``workloads.decoder.ParameterDecode`` declares it; most models have none.
    """
    declared = getattr(model, "state_aliases", None)
    aliases = declared() if callable(declared) else {}
    return dict(aliases) if isinstance(aliases, dict) else {}


def _state_names(model: Any, aliases: dict[Any, int]) -> list[tuple[str, int]]:
    """(parameter name, output index) of each state parameter, for the artifact-cache key."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    return sorted((names.get(id(key), "?"), int(out)) for key, out in aliases.items())


def _carries_state(model: Any) -> bool:
    """A step whose state lives across calls (aliased), or that resets such state after each call."""
    return bool(_state_aliases(model)) or callable(getattr(model, "after_call", None))


def _nothing_to_wait_for() -> None:
    """A traced Neuron call returns once its outputs are on the host."""


def native_synchronize() -> None:
    from backends.neuron import native

    native.synchronize()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


class NeuronBackend:
    """torch-neuronx on Inf2/Trn1 (trace) and TorchNeuron on Trn2/Trn3 (compile); each cell in its own process."""

    name = "neuron"
    dtypes: tuple[str, ...] = DTYPES
    modes: tuple[str, ...] = MODES
    isolate_by_default = True
    #: ``trace`` inlines buffers into the NEFF as constants (``inline_weights_to_neff=True``), so an
    #: in-place buffer update never reaches the next call; see ``keeps_buffer_updates``.
    stateful_buffers = False

    def __init__(
        self, device_glob: str | None = None, cache: ArtifactCache | None = None, neuron_ls: Runner | None = None
    ) -> None:
        self._device_glob = device_glob
        self._cache = cache
        self._neuron_ls = neuron_ls
        self._synchronize: Callable[[], None] = _nothing_to_wait_for
        self._facts: dict[str, Any] | None = None

    # -- availability and options ---------------------------------------------------------------

    def availability(self) -> Availability:
        """Device nodes first, then the package, without importing it (that must wait for placement)."""
        pattern = self._device_glob or DEVICE_GLOB
        if not glob.glob(pattern):
            return Availability(False, f"no Neuron device ({pattern} absent); run on an inf2/trn1/trn2 instance")
        if "torch_neuronx" in sys.modules:
            return Availability(True)
        try:
            spec = importlib.util.find_spec("torch_neuronx")
        except (ImportError, ValueError) as exc:
            return Availability(False, f"torch_neuronx cannot be imported: {exc}")
        if spec is None:
            return Availability(
                False, "torch_neuronx is not installed; install torch-neuronx from the AWS Neuron pip repository"
            )
        if _is_placeholder(spec):
            return Availability(
                False,
                "the installed torch-neuronx is PyPI's placeholder, which raises on import; install the real "
                "one from the AWS Neuron pip repository",
            )
        return Availability(True)

    def validate(self, options: BackendOptions) -> None:
        parse_config(options)

    def keeps_buffer_updates(self, options: BackendOptions) -> bool:
        """Only ``compile`` keeps in-place buffer updates (TorchNeuron keeps tensors on the device, as
        CUDA does); under ``trace`` decoders hold their state as aliased parameters instead."""
        try:
            return self._config(options, self._instance_facts()).mode == COMPILE_MODE
        except ConfigError:
            return False

    def _instance_facts(self) -> dict[str, Any]:
        """neuron-ls facts, asked once per backend object (the instance type does not change)."""
        if self._facts is None:
            self._facts = device_facts(self._neuron_ls) if self._neuron_ls else device_facts()
        return self._facts

    @staticmethod
    def _config(options: BackendOptions, facts: dict[str, Any]) -> NeuronConfig:
        """The cell's config; the default mode (``eager``) is this silicon's own path: ``trace`` on
        NeuronCore-v2, ``compile`` on Trn2/Trn3, where trace does not run."""
        config = parse_config(options)
        version = neuroncore_version(facts.get("instance_type"))
        if options.mode in MODE_ALIASES and version is not None and version >= min(COMPILE_NEURONCORE_VERSIONS):
            config = parse_config(replace(options, mode=COMPILE_MODE))
        return config

    # -- preparation ----------------------------------------------------------------------------

    def _apply_placement(self, placement: Placement) -> None:
        """Set the runtime's placement variables before torch_neuronx is imported in this process."""
        wanted = placement.env()
        if "torch_neuronx" in sys.modules:
            in_force = RUNTIME.env if RUNTIME.env is not None else {k: os.environ.get(k) for k in _PLACEMENT_KEYS}
            if any(in_force.get(k) != v for k, v in wanted.items()):
                shown = ", ".join(f"{k}={v}" for k, v in in_force.items() if v) or "the runtime default"
                raise CellFailedError(
                    f"NeuronCore placement {placement.describe()} differs from the one this process started "
                    f"the Neuron runtime with ({shown}); run neuron cells isolated (the default: drop --no-isolate)"
                )
            return
        if RUNTIME.original is None:
            RUNTIME.original = {k: os.environ.get(k) for k in _PLACEMENT_KEYS}
        for key, value in wanted.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        RUNTIME.env = {k: os.environ.get(k) for k in _PLACEMENT_KEYS}

    @staticmethod
    def _import_torch_neuronx() -> Any:
        try:
            import torch_neuronx
        except Exception as exc:  # any import failure makes the cell fail with its reason
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CellFailedError(f"cannot import torch_neuronx: {first}") from exc
        return torch_neuronx

    def _cores_for(self, config: NeuronConfig, placement: Placement, facts: dict[str, Any]) -> int:
        """How many NeuronCores this cell uses, checked against what neuron-ls reports."""
        total = facts.get("neuron_cores")
        if placement.last is not None and total is not None and placement.last >= total:
            instance = facts.get("instance_type") or "this instance"
            raise CellFailedError(
                f"NeuronCore placement {placement.describe()} is outside {instance}'s cores 0-{total - 1}; "
                "choose cores in that range"
            )
        if placement.count is not None and total is not None and placement.count > total:
            raise CellFailedError(
                f"asked for {placement.count} NeuronCores but neuron-ls reports {total}; ask for fewer"
            )
        if config.mode in ("trace", COMPILE_MODE):
            return 1
        cores = placement.core_count or total
        if cores is None:
            raise CellFailedError(
                "cannot tell how many NeuronCores dataparallel may use "
                f"({facts.get('facts_error') or 'neuron-ls gave no core count'}); give --device nc:0-N or a count"
            )
        return int(cores)

    @staticmethod
    def _example_inputs(inputs: tuple[torch.Tensor, ...], config: NeuronConfig, cores: int) -> tuple[torch.Tensor, ...]:
        """The inputs to compile for: the whole batch, or in dataparallel one core's share of it."""
        if config.mode != "dataparallel":
            return inputs
        sizes = {t.shape[0] if t.dim() else None for t in inputs}
        if len(sizes) != 1 or None in sizes:
            raise CellFailedError("dataparallel splits every input along dimension 0, but the inputs disagree on it")
        batch = int(next(iter(sizes)))  # type: ignore[arg-type]
        if batch % cores:
            raise CellFailedError(
                f"dataparallel splits the batch evenly across {cores} NeuronCores, but batch size {batch} "
                f"is not a multiple of {cores}; use a batch size such as {cores * max(1, batch // cores)}"
            )
        return tuple(t[: batch // cores] for t in inputs)

    @staticmethod
    def _versions(torch_neuronx: Any) -> dict[str, str | None]:
        import torch

        return {
            "torch": torch.__version__,
            "torch_neuronx": getattr(torch_neuronx, "__version__", None) or _package_version("torch-neuronx"),
            "neuronx_cc": _package_version("neuronx-cc"),
            "libneuronxla": _package_version("libneuronxla"),
        }

    def _compile_model(
        self,
        torch_neuronx: Any,
        model: torch.nn.Module,
        example: tuple[torch.Tensor, ...],
        config: NeuronConfig,
        cache: ArtifactCache,
        key: str,
    ) -> tuple[Any, float]:
        """Compile with ``torch_neuronx.trace`` (the Inf2/Trn1 path); returns the module and its compile time.

        The compiler's work directory is kept only when compilation fails, for its log.
        """
        workdir = cache.workdir(key)
        started = time.perf_counter()
        try:
            traced = torch_neuronx.trace(
                model,
                example,
                input_output_aliases=_state_aliases(model),
                compiler_workdir=str(workdir),
                compiler_args=list(config.compiler_args),
                inline_weights_to_neff=True,
            )
        except Exception as exc:  # every compiler failure becomes a one-line cell error
            raise compile_failure(exc, workdir, config.dtype) from exc
        elapsed = time.perf_counter() - started
        shutil.rmtree(workdir, ignore_errors=True)
        return traced, elapsed

    @staticmethod
    def _key_components(
        model: torch.nn.Module,
        example: tuple[torch.Tensor, ...],
        config: NeuronConfig,
        instance: Any,
        versions: dict[str, str | None],
    ) -> dict[str, Any]:
        """Everything that changes the compiled binary (see ``backends.neuron.cache``)."""
        aliases = _state_aliases(model)
        state_names = _state_names(model, aliases)
        components: dict[str, Any] = {
            "model": model_fingerprint(model, state={name for name, _ in state_names}),
            "inputs": [[list(t.shape), str(t.dtype)] for t in example],
            "mode": config.mode,
            "compiler_args": list(config.compiler_args),
            "neuron_cc_flags": os.environ.get("NEURON_CC_FLAGS", ""),
            "target": instance.split(".")[0] if isinstance(instance, str) else None,
            "versions": versions,
        }
        if aliases:  # only then, so the keys of models without state stay what they were
            components["state_aliases"] = state_names
        return components

    def _load_or_compile(
        self,
        torch_neuronx: Any,
        model: torch.nn.Module,
        example: tuple[torch.Tensor, ...],
        config: NeuronConfig,
        components: dict[str, Any],
    ) -> tuple[Any, dict[str, Any]]:
        """The cached artifact for these components, or a fresh compile that is then cached."""
        cache = self._cache or ArtifactCache()
        key = cache_key(components)
        try:
            module, recovered = cache.load(key)
        except Exception as exc:  # only device failures propagate out of the cache
            failure = runtime_failure(exc, "loading the cached model onto the NeuronCore")
            if failure is None:
                raise
            raise failure from exc
        details: dict[str, Any] = {
            "cache_key": key,
            "cache_hit": module is not None,
            "cache_recovered": recovered,
            "artifact": str(cache.entry(key).artifact),
            "trace_s": 0.0,
        }
        if module is None:
            module, details["trace_s"] = self._compile_model(torch_neuronx, model, example, config, cache, key)
            try:
                cache.store(key, module, {"components": components, "trace_s": details["trace_s"]})
            except OSError as exc:
                details["cache_error"] = f"compiled artifact not cached: {exc}"
        return module, details

    @staticmethod
    def _hold_state(torch_neuronx: Any, module: Any, model: Any) -> None:
        """Put a stateful traced module's state on its NeuronCore and tell the step where it lives.

        The process sees one NeuronCore in trace mode (placement), so that core is index 0. The
        traced module's ``parameters()`` are its states in alias order (T5 tutorial).
        """
        if not _state_aliases(model):
            return
        try:
            torch_neuronx.move_trace_to_device(module, 0)
            model.bind_state(list(module.parameters()))
        except Exception as exc:  # known runtime failures get their own message
            failure = runtime_failure(exc, "moving the decoder state onto the NeuronCore")
            if failure is None:
                raise CellFailedError(f"cannot hold the decoder state on the NeuronCore: {exc}") from exc
            raise failure from exc

    @staticmethod
    def _bind(
        torch_neuronx: Any, module: Any, inputs: tuple[torch.Tensor, ...], config: NeuronConfig, cores: int, model: Any
    ) -> Callable[[], Any]:
        """Replicate across cores if asked, bind the inputs, and run once (loading onto the device).

        A step's ``after_call`` (a prefill resetting the decode state) runs inside each call: it is
        part of the work a request needs.
        """
        import torch

        after = getattr(model, "after_call", None)
        try:
            if config.mode == "dataparallel":
                # Dynamic batching off: the batch must split exactly into the compiled per-core
                # batch, so every core runs the shape that was compiled, and nothing is padded.
                module = torch_neuronx.DataParallel(
                    module, device_ids=list(range(cores)), dim=0, set_dynamic_batching=False
                )

            if callable(after):

                def call() -> Any:
                    with torch.no_grad():
                        outputs = module(*inputs)
                        after(outputs)
                    return outputs

            else:

                def call() -> Any:
                    with torch.no_grad():
                        return module(*inputs)

            call()
        except Exception as exc:  # known runtime failures get their own message
            failure = runtime_failure(exc, "loading the model onto the NeuronCore and running it once")
            if failure is None:
                raise
            raise failure from exc
        return call

    def _refuse_on_this_silicon(self, config: NeuronConfig, facts: dict[str, Any]) -> None:
        reason = mode_refusal(config.mode, facts.get("instance_type"))
        if reason is not None:
            raise CellFailedError(reason)

    @staticmethod
    def _prepare_native(
        model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> tuple[PreparedModel, dict[str, Any]]:
        """``torch.compile(backend="neuron")`` (``backends.neuron.native``); failures as one-line cell errors."""
        from backends.neuron import native

        if _state_aliases(model):
            raise CellFailedError(
                "a step with aliased state is for trace; under compile decoders keep their cache in buffers"
            )

        try:
            return native.prepare_native(model, inputs, options)
        except Exception as exc:  # compile and device failures become one-line cell errors
            failure = runtime_failure(exc, "compiling with torch.compile(backend='neuron') and running once")
            if failure is not None:
                raise failure from exc
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CellFailedError(f"torch.compile(backend='neuron') failed: {first[:200]}") from exc

    def prepare(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> PreparedModel:
        """Place, compile (or load the cached artifact), bind inputs and run once on the device.

        ``compile_s`` covers all of it; ``details["trace_s"]`` is the compile alone (0 on a cache
        hit) and ``details["load_s"]`` the load onto the device with the first call.
        """
        started = time.perf_counter()
        facts = self._instance_facts()
        config = self._config(options, facts)
        placement = resolve_placement(config.placement, config.mode, RUNTIME.user_env())
        self._refuse_on_this_silicon(config, facts)
        cores = self._cores_for(config, placement, facts)  # checked before the runtime can start
        self._apply_placement(placement)
        model = model.eval()
        if _carries_state(model) and config.mode == "dataparallel":
            raise CellFailedError(
                "a model that carries state across calls (a decoder's KV cache) runs on one NeuronCore; "
                "use --mode trace (or eager)"
            )
        details: dict[str, Any] = {
            "neuron_mode": config.mode,
            "placement": placement.describe(),
            "neuron_cores_used": cores,
            "compiler_args": list(config.compiler_args),
            "auto_cast": config.auto_cast,
            "auto_cast_type": config.auto_cast_type,
        }
        if config.mode == COMPILE_MODE:
            native_prepared, compiled = self._prepare_native(model, tuple(inputs), options)
            details.update(compiled)
            native_prepared.details = details
            native_prepared.compile_s = time.perf_counter() - started
            self._synchronize = native_synchronize
            return native_prepared
        self._synchronize = _nothing_to_wait_for
        torch_neuronx = self._import_torch_neuronx()
        example = self._example_inputs(tuple(inputs), config, cores)
        versions = self._versions(torch_neuronx)
        components = self._key_components(model, example, config, facts.get("instance_type"), versions)
        module, cached = self._load_or_compile(torch_neuronx, model, example, config, components)
        loading = time.perf_counter()
        self._hold_state(torch_neuronx, module, model)
        call = self._bind(torch_neuronx, module, tuple(inputs), config, cores, model)
        details.update(
            {
                "torch_neuronx_version": versions["torch_neuronx"],
                "neuronx_cc_version": versions["neuronx_cc"],
                **cached,
                "load_s": time.perf_counter() - loading,
            }
        )
        if config.mode == "dataparallel":
            details["per_core_batch"] = int(example[0].shape[0])
        return PreparedModel(call=call, compile_s=time.perf_counter() - started, details=details)

    # -- measurement hooks ----------------------------------------------------------------------

    def synchronize(self) -> None:
        """Under trace nothing to wait for: a traced Neuron call returns only once its outputs are on
        the host. Under compile the queued device work (TorchNeuron runs asynchronously)."""
        self._synchronize()

    def to_host(self, output: Any) -> Any:
        return tensors_to_host(output)

    def device_info(self) -> dict[str, Any]:
        """neuron-ls facts (cores, memory, instance type, versions) and the placement in force."""
        facts = device_facts(self._neuron_ls) if self._neuron_ls else device_facts()
        return {
            "device": "neuron",
            **facts,
            "visible_cores_env": os.environ.get(ENV_VISIBLE_CORES),
            "num_cores_env": os.environ.get(ENV_NUM_CORES),
        }

    def reset_peak_memory(self) -> None:
        """Device memory is not tracked per process here (neuron-monitor would be needed)."""

    def peak_memory_bytes(self) -> int | None:
        return None

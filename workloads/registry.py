"""Find workloads by name: built-ins, the ``siliconbench.workloads`` entry points, or
``package.module:callable`` for a model that lives in the user's own code.

Entries are imported only when asked for, so ``siliconbench --help`` never imports torch.
"""

from __future__ import annotations

import inspect
import sys
import types
from dataclasses import dataclass

from harness.errors import ConfigError, UnknownNameError
from harness.plugins import discover, import_target
from workloads.base import Workload, WorkloadFactory, WorkloadFamily

__all__ = [
    "BUILTIN_PRESETS",
    "BUILTIN_WORKLOADS",
    "ENTRY_POINT_GROUP",
    "PresetNames",
    "available_workloads",
    "builtin_presets",
    "check_factory",
    "check_factory_unseen",
    "load_factory",
    "resolve",
]

ENTRY_POINT_GROUP = "siliconbench.workloads"

#: name -> "module:attribute"; kept as strings so listing names imports nothing.
BUILTIN_WORKLOADS: dict[str, str] = {
    "mlp": "workloads.mlp:MLP",
    "resnet50": "workloads.resnet50:RESNET50",
    "bert-base": "workloads.bert:BERT_BASE",
    "llama": "workloads.llama:LLAMA",
    "gpt2": "workloads.gpt2:GPT2",
}


@dataclass(frozen=True)
class PresetNames:
    """A workload family's preset names and its default, as data."""

    presets: tuple[str, ...]
    default: str


#: The built-in families' presets, written out so that planning a run for another machine
#: (``aws plan``) checks names and presets without importing the workloads' modules, and so torch;
#: a test holds each entry to its family's own ``presets`` and ``default_preset``.
BUILTIN_PRESETS: dict[str, PresetNames] = {
    "mlp": PresetNames(("tiny", "large"), "large"),
    "resnet50": PresetNames(("default", "tiny"), "default"),
    "bert-base": PresetNames(("default", "tiny"), "default"),
    "llama": PresetNames(("tiny", "1b", "8b"), "1b"),
    "gpt2": PresetNames(("default", "tiny"), "default"),
}


def builtin_presets(name: str) -> PresetNames | None:
    """The presets of built-in workload ``name`` without importing it; None for any other name."""
    return BUILTIN_PRESETS.get(name) if name in BUILTIN_WORKLOADS else None


def available_workloads() -> dict[str, str]:
    """Registered workload names mapped to their import targets (built-ins first)."""
    return discover(ENTRY_POINT_GROUP, BUILTIN_WORKLOADS)


def load_factory(name: str) -> WorkloadFactory:
    """The factory for a registered name or a ``package.module:callable`` reference."""
    if ":" in name:
        target = name
    else:
        known = available_workloads()
        if name not in known:
            raise UnknownNameError("workload", name, known, "or give your own as package.module:callable")
        target = known[name]
    factory = import_target(target, "workload")
    if not callable(factory):
        raise ConfigError(f"workload {name!r} is not callable; it must return a Workload")
    return factory


def _not_a_factory_of_users(name: str, factory: WorkloadFactory) -> str | None:
    """Why ``factory`` is certainly not a workload factory, seen without calling it: a builtin or
    a callable of Python's standard library (``os:system`` would run a shell command)."""
    module = str(getattr(factory, "__module__", None) or "")
    root = module.partition(".")[0]
    qualified = f"{module}.{getattr(factory, '__qualname__', type(factory).__name__)}".lstrip(".")
    if root in sys.stdlib_module_names or root == "builtins":
        return f"{qualified} from Python's standard library"
    if inspect.isbuiltin(factory) or isinstance(factory, types.BuiltinMethodType | types.MethodWrapperType):
        return f"the builtin {qualified}"
    return None


def _return_annotation_refused(factory: WorkloadFactory) -> str | None:
    """The return type a factory declares, when it declares one that is not a ``Workload``."""
    if inspect.isclass(factory):
        return None if issubclass(factory, Workload) else factory.__name__
    try:
        declared = inspect.signature(factory, eval_str=True).return_annotation
    except (NameError, SyntaxError, TypeError, ValueError, AttributeError):
        try:  # names imported only for type checkers: read the annotation as written
            declared = inspect.signature(factory).return_annotation
        except (TypeError, ValueError):
            return None
    if declared is inspect.Signature.empty:
        return None
    if isinstance(declared, str):
        return None if "Workload" in declared else declared
    if inspect.isclass(declared):
        return None if issubclass(declared, Workload) else declared.__name__
    if declared is None:
        return "None"
    return None  # a typing construct (a union, a generic): the call in the cell decides


def check_factory_unseen(name: str, factory: WorkloadFactory, preset: str | None) -> None:
    """Refuse, with one line and without calling it, what can be told not to be a workload
    factory: a builtin or standard-library callable, a signature that takes no preset, a declared
    return type that is not ``Workload``. Planning calls nothing more: a user's factory runs only
    in the cell that builds its model (``check_factory``)."""
    why = _not_a_factory_of_users(name, factory)
    if why is not None:
        raise ConfigError(
            f"workload {name!r} is {why}, not a workload factory; name a function of your own, like "
            f"def {name.rpartition(':')[2]}(preset: str | None = None) -> Workload"
        )
    args = () if preset is None else (preset,)
    try:
        inspect.signature(factory).bind(*args)
    except TypeError:
        raise ConfigError(
            f"workload {name!r} must take one optional preset argument, like def {name.rpartition(':')[2]}"
            "(preset: str | None = None) -> Workload"
        ) from None
    except ValueError:
        pass  # no signature to inspect: the call in the cell decides
    declared = _return_annotation_refused(factory)
    if declared is not None:
        raise ConfigError(
            f"workload {name!r} returns {declared} by its annotation, not a workloads.Workload "
            "(a factory returns Workload(name, preset, build_model, make_inputs, ...))"
        )


def check_factory(name: str, factory: WorkloadFactory, preset: str | None) -> Workload:
    """Call a user's factory as a cell does (after ``check_factory_unseen``), refusing with one
    line an exception or a result that is not a ``Workload``."""
    check_factory_unseen(name, factory, preset)
    args = () if preset is None else (preset,)
    try:
        workload = factory(*args)
    except ConfigError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(
            f"workload {name!r} raised {type(exc).__name__} when called with preset {preset!r}: {first}"
        ) from None
    if not isinstance(workload, Workload):
        raise ConfigError(
            f"workload {name!r} returned {type(workload).__name__}, not a workloads.Workload "
            "(a factory returns Workload(name, preset, build_model, make_inputs, ...))"
        )
    return workload


def resolve(name: str, preset: str | None) -> Workload:
    """Build the ``Workload`` for ``name`` at ``preset`` (None: the workload's default)."""
    factory = load_factory(name)
    if isinstance(factory, WorkloadFamily):
        return factory(preset)
    return check_factory(name, factory, preset)


def presets_of(name: str) -> tuple[str, str | None]:
    """(comma-separated preset names, default) for listing; plain callables have none known."""
    factory = load_factory(name)
    if isinstance(factory, WorkloadFamily):
        return ", ".join(factory.presets), factory.default_preset
    return "", None

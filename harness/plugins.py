"""Plug-in discovery shared by the workload and backend registries.

Names map to ``module:attribute`` strings, so listing what is installed imports nothing; the
target is imported only when a name is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points

from harness.errors import ConfigError

__all__ = ["discover", "import_target"]


def discover(group: str, builtins: Mapping[str, str]) -> dict[str, str]:
    """Built-in names plus those of the entry point ``group``; a built-in keeps its name."""
    found = dict(builtins)
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep.value)
    return found


def import_target(target: str, purpose: str) -> object:
    """The object named by ``package.module:attribute`` (dots allowed in the attribute)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{purpose} {target!r} must look like 'package.module:callable'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} for {purpose} {target!r}: {exc}; "
            "check the name and that the module is on PYTHONPATH"
        ) from None
    obj: object = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attribute!r} ({purpose} {target!r})") from None
    return obj

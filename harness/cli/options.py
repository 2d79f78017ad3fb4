"""The ``run`` options of the suite, built from the fields of its sections (``harness.run.config``).

Nothing here names a suite key: each field's ``Option`` gives the flag, metavar and help, its
annotation the argparse type and action, and its section the argument group. ``overrides`` reads
the parsed options back as suite keys, so a new field is a new flag and a new key with no edit here.
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.argtypes import positive_float, positive_int
from harness.run.config import FIELDS, FieldRef

__all__ = ["add_section_options", "overrides"]


def _dest(ref: FieldRef) -> str:
    return ref.option.dest or ref.name


def _choices(ref: FieldRef) -> tuple[str, ...] | None:
    choices = ref.option.choices
    if choices == "scenarios":
        from harness.scenarios.registry import scenario_names

        return scenario_names()
    return choices


def _add(group: Any, ref: FieldRef) -> None:
    option = ref.option
    assert option.flag is not None
    dest = _dest(ref)
    if ref.scalar is bool:
        if option.negative is None:
            group.add_argument(option.flag, dest=dest, action="store_const", const=True, help=option.help)
            return
        pair = group.add_mutually_exclusive_group()
        pair.add_argument(option.flag, dest=dest, action="store_const", const=True, help=option.help)
        pair.add_argument(option.negative, dest=dest, action="store_const", const=False, help=option.negative_help)
        return
    kwargs: dict[str, Any] = {"dest": dest, "help": option.help}
    kind = {int: positive_int, float: positive_float}.get(ref.scalar)
    if kind is not None:
        kwargs["type"] = kind
    if ref.repeatable:
        kwargs["action"] = "append"
    choices = _choices(ref)
    if choices is not None:
        kwargs["choices"] = list(choices)
        if option.choices == "scenarios":
            kwargs["metavar"] = "|".join(choices)
    if option.metavar is not None:
        kwargs["metavar"] = option.metavar
    group.add_argument(option.flag, **kwargs)


def add_section_options(parser: argparse.ArgumentParser, section: str, description: str | None = None) -> None:
    """Add the options of one section, in its argument group if it declares one."""
    from harness.run.config import SECTIONS

    model = SECTIONS[section]
    group: Any = parser
    if model.group is not None:
        title, text = model.group
        group = parser.add_argument_group(title, description or text)
    for ref in FIELDS.values():
        if ref.section == section and ref.option.flag is not None:
            _add(group, ref)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The suite keys the command line sets: every option the parser has and the user gave."""
    return {ref.name: getattr(args, _dest(ref), None) for ref in FIELDS.values() if ref.option.flag is not None}

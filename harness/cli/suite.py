"""The suite a ``run`` (or ``aws plan``) command asks for: defaults, then a suite file, then flags."""

from __future__ import annotations

import argparse

from harness.run.plan import Suite

__all__ = ["suite_from_args"]


def suite_from_args(args: argparse.Namespace) -> Suite:
    """The options are the suite's fields (``harness.cli.options``); those not given leave the file's."""
    from harness.cli.options import overrides
    from harness.run.plan import DEFAULT_SUITE, load_suite_file

    suite = load_suite_file(args.suite) if args.suite else DEFAULT_SUITE
    return suite.with_overrides(output=args.output, **overrides(args))

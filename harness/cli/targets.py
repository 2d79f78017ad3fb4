"""Which ``Target`` a ``run`` measures on: here (``local``) or on EC2 instances (``aws``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.cli.exits import EXIT_CELL_FAILED
from harness.errors import ConfigError, RunStoppedError
from harness.run.plan import Suite
from harness.runfile.price import Price
from harness.targets.base import Target

__all__ = ["choose_target"]


def _run_price(args: argparse.Namespace, suite: Suite) -> Price | None:
    """The machine's price from --price-per-hour or the suite's [pricing] table (checked before measuring)."""
    from harness.pricing.catalog import load_catalog
    from harness.pricing.given import price_from_cli, price_from_table

    if args.price_per_hour is not None:
        return price_from_cli(args.price_per_hour)
    if suite.pricing.pricing:
        return price_from_table(suite.pricing.pricing, load_catalog)
    return None


def choose_target(args: argparse.Namespace, suite: Suite) -> Target | None:
    """The target ``--target`` names, checked against the other options; None when ``--dry-run``
    only printed a plan."""
    from harness.cli.aws import AWS_ONLY_FLAGS, aws_target

    if getattr(args, "target", "local") == "aws":
        target: Any = aws_target(args, suite)
        return target  # type: ignore[no-any-return]
    given = [name for name in AWS_ONLY_FLAGS if getattr(args, name, None)]
    if given:
        raise ConfigError(f"--{given[0].replace('_', '-')} only applies with --target aws")
    from harness.run.limits import CellLimits
    from harness.run.progress import progress_printer
    from harness.targets.local import LocalTarget

    def announce(path: Path, cells: int) -> None:
        if not args.quiet:
            print(f"siliconbench: {cells} cells -> {path}", file=sys.stderr, flush=True)

    def hung(error: RunStoppedError) -> None:
        # Told from the watchdog thread: the main thread is stuck in the hung cell, so end here.
        print(f"siliconbench: error: {error}", file=sys.stderr, flush=True)
        os._exit(EXIT_CELL_FAILED)

    limits = CellLimits(prepare_s=suite.execution.prepare_limit)
    return LocalTarget(progress_printer(args.quiet, limits), announce, pricing=_run_price(args, suite), on_hang=hung)

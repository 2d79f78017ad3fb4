"""The ``siliconbench`` command line: the only place that prints and chooses exit codes.

A thin shell: it parses, builds the suite, picks a ``Target`` and hands over; exit codes are in
``harness.cli.exits``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from harness.cli.argtypes import non_negative_float, positive_float
from harness.cli.aws import add_commands, add_run_options, cmd_agent, cmd_aws, print_preflight_problems
from harness.cli.exits import EXIT_CELL_FAILED, EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE, exit_for_signal
from harness.cli.options import add_section_options
from harness.errors import CloudError, ConfigError, PreflightError, RunStoppedError, SiliconbenchError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line instead of usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="siliconbench",
        description="Benchmark model inference across backends and report latency, throughput and cost.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="measure a suite of cells and write a run file",
        description="Measure workloads on backends. With no options, runs the default CPU suite "
        "(mlp, resnet50, bert-base at batch 1, fp32 and bf16; about a minute on 2 cores).",
    )
    for section in ("matrix", "stopping", "execution"):
        add_section_options(run, section)
    _add_scenario_options(run)
    add_section_options(run, "engine")
    run.add_argument("--output", metavar="DIR", help="folder for the run file (default results/)")
    run.add_argument("--suite", metavar="FILE.toml", help="suite file naming the matrix; options above override it")
    run.add_argument("--format", choices=("table", "markdown"), default="table", help="final table format")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument(
        "--price-per-hour",
        type=positive_float,
        metavar="USD",
        help="this machine's price, recorded in the run file for cost reports (or a [pricing] table in the suite file)",
    )
    add_run_options(run)

    sub.add_parser("list", help="show workloads, presets and backends with availability")

    report = sub.add_parser(
        "report",
        help="report one or more run files: tables, cost, plots",
        description="Report run files as a table, Markdown (GitHub job summaries), CSV, JSON "
        "or a self-contained HTML page with figures. Never re-runs anything.",
    )
    report.add_argument("runfiles", nargs="+", metavar="RUNFILE")
    report.add_argument("--format", default="table", choices=("table", "markdown", "csv", "json", "html"))
    report.add_argument("--output", metavar="FILE", help="write the report here instead of standard output")
    report.add_argument(
        "--slo-p99",
        type=positive_float,
        metavar="MS",
        help="name the fastest and the cheapest cell per workload whose p99 meets this many ms",
    )
    report.add_argument(
        "--slo-ttft",
        type=positive_float,
        metavar="MS",
        help="engine cells: name the cheapest configuration whose p99 time to first token meets this many ms",
    )
    report.add_argument(
        "--slo-tpot",
        type=positive_float,
        metavar="MS",
        help="engine cells: name the cheapest configuration whose p99 time per output token meets this many ms",
    )
    report.add_argument(
        "--price-per-hour",
        type=positive_float,
        metavar="USD",
        help="price for runs that have none of their own (e.g. a local machine)",
    )
    report.add_argument(
        "--prices", metavar="FILE", help="price catalog (default: $SILICONBENCH_PRICES or the bundled one)"
    )

    compare = sub.add_parser(
        "compare",
        help="compare two run files cell by cell; the CI regression gate",
        description="Match cells by configuration and report the new/base ratio of medians "
        "and of p99s with bootstrap confidence intervals and a verdict. Exit 1 with "
        "--fail-if-slower when a cell is significantly slower by more than PCT percent, or "
        "failed in NEW only.",
    )
    compare.add_argument("base", metavar="BASE.json")
    compare.add_argument("new", metavar="NEW.json")
    compare.add_argument("--format", default="table", choices=("table", "markdown", "json"))
    compare.add_argument(
        "--fail-if-slower",
        type=non_negative_float,
        metavar="PCT",
        help="exit 1 if any matched cell is significantly slower by more than PCT percent",
    )
    compare.add_argument(
        "--confidence",
        type=positive_float,
        default=0.95,
        metavar="LEVEL",
        help="confidence level of the intervals (default 0.95)",
    )
    compare.add_argument("--output", metavar="FILE", help="write the comparison here instead of standard output")

    pricing = sub.add_parser("pricing", help="show or refresh the price catalog")
    pricing_sub = pricing.add_subparsers(dest="pricing_command", required=True, parser_class=_Parser, metavar="ACTION")
    show = pricing_sub.add_parser("show", help="print the catalog's prices with their sources and dates")
    refresh = pricing_sub.add_parser(
        "refresh",
        help="rebuild prices from the AWS Price List API and EC2 spot history",
        description="Fetch on-demand prices (pricing:GetProducts) and spot prices "
        "(ec2:DescribeSpotPriceHistory) and write a catalog: the current one with the "
        "fetched prices replaced. Needs AWS credentials.",
    )
    for command in (show, refresh):
        command.add_argument(
            "--prices", metavar="FILE", help="catalog to read (default: $SILICONBENCH_PRICES or bundled)"
        )
        command.add_argument(
            "--instance-type", action="append", metavar="TYPE", help="only this instance type (repeatable)"
        )
        command.add_argument("--region", action="append", metavar="REGION", help="only this region (repeatable)")
        command.add_argument(
            "--purchase-option",
            action="append",
            choices=("on-demand", "spot"),
            help="only this purchase option (repeatable)",
        )
    show.add_argument("--format", default="table", choices=("table", "markdown", "csv", "json"))
    refresh.add_argument(
        "--output",
        metavar="FILE",
        required=True,
        help="where to write the new catalog (harness/pricing/snapshot.json rebuilds the bundled one)",
    )

    export = sub.add_parser("export", help="export a run file to another tool's format")
    export_sub = export.add_subparsers(dest="export_format", required=True, parser_class=_Parser, metavar="FORMAT")
    to_pb = export_sub.add_parser(
        "pytest-benchmark", help="pytest-benchmark JSON, readable by 'pytest-benchmark compare'"
    )
    to_pb.add_argument("runfile", metavar="RUNFILE")
    to_pb.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    to_pb.add_argument("--include-data", action="store_true", help="include every raw sample (seconds)")
    add_commands(sub, run)
    return parser


def _add_scenario_options(run: argparse.ArgumentParser) -> None:
    """--scenario and the scenario parameters, the group's text from the scenarios' own help."""
    from harness.scenarios.registry import scenario_specs

    text = "How load is applied. " + " ".join(f"{s.name}: {s.help}." for s in scenario_specs().values())
    add_section_options(run, "load", text)


def _cmd_run(args: argparse.Namespace) -> int:
    """Build the suite, pick the target, run it there, report what came back."""
    from harness.cli.outcomes import finish_run
    from harness.cli.suite import suite_from_args
    from harness.cli.targets import choose_target
    from harness.errors import RunStoppedError
    from harness.targets.base import TargetInterrupted, TargetOutcome

    suite = suite_from_args(args)
    target = choose_target(args, suite)
    if target is None:  # --dry-run: the plan was printed
        return EXIT_OK
    try:
        outcomes = target.run(suite)
    except RunStoppedError as exc:
        if exc.path is not None:  # the table of what was kept, then main() prints the one line
            finish_run([TargetOutcome("local", "failed", Path(str(exc.path)))], args.format)
        raise
    except TargetInterrupted as exc:
        return finish_run(
            exc.outcomes,
            args.format,
            interrupted_by=exc.signum,
            problems=getattr(target, "teardown_problems", ()),
            per_place_lines=target.kind != "local",
        )
    return finish_run(
        outcomes, args.format, problems=getattr(target, "teardown_problems", ()), per_place_lines=target.kind != "local"
    )


def _cmd_list(_: argparse.Namespace) -> int:
    from tabulate import tabulate

    from backends.registry import available_backends, get_backend
    from workloads.registry import available_workloads, load_factory, presets_of

    rows = []
    for name, _target in available_workloads().items():
        try:
            presets, default = presets_of(name)
            description = getattr(load_factory(name), "description", "")
            rows.append([name, presets, default or "-", description])
        except SiliconbenchError as exc:
            rows.append([name, "-", "-", f"cannot load: {exc}"])
    print(tabulate(rows, headers=["workload", "presets", "default", "description"]))
    print()
    backend_rows = []
    for name in available_backends():
        try:
            backend = get_backend(name)
            status = backend.availability()
            backend_rows.append(
                [
                    name,
                    "yes" if status.available else "no",
                    ", ".join(backend.dtypes),
                    ", ".join(backend.modes),
                    status.reason,
                ]
            )
        except SiliconbenchError as exc:
            backend_rows.append([name, "no", "-", "-", str(exc)])
    print(tabulate(backend_rows, headers=["backend", "available", "dtypes", "modes", "reason"]))
    return EXIT_OK


def _emit(text: str, output: str | None, what: str) -> None:
    """Print ``text``, or write it to ``output`` and say where on stderr."""
    from harness.errors import OutputError

    if output is None:
        print(text)
        return
    from harness.runfile.atomic import atomic_write_text

    path = Path(output)
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} to {output!r}: {exc.strerror}; nothing was written; choose another --output"
        ) from None
    print(f"siliconbench: {what} written to {output}", file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.pricing.given import price_from_cli
    from harness.report.cost import PriceResolver
    from harness.report.formats import render
    from harness.runfile.files import load_run

    runs = [load_run(path) for path in args.runfiles]
    from harness.pricing.catalog import load_catalog

    fallback = price_from_cli(args.price_per_hour) if args.price_per_hour is not None else None
    # A catalog the user names is read now, so a bad file fails even if no run needs a look-up.
    prices = PriceResolver(load_catalog(args.prices) if args.prices else None, fallback)
    serving = (args.slo_ttft, args.slo_tpot)
    _emit(render(runs, args.format, prices, args.slo_p99, serving_slo_ms=serving), args.output, "report")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare_runs, regressions, render_comparison
    from harness.runfile.files import load_run

    base, new = load_run(args.base), load_run(args.new)
    comparison = compare_runs(base, new, confidence=args.confidence)
    if not comparison.cells:
        raise ConfigError(
            f"no cell of {args.new!r} has the configuration of a cell of {args.base!r}; compare runs of the same suite"
        )
    _emit(render_comparison(comparison, args.format, args.fail_if_slower), args.output, "comparison")
    if args.fail_if_slower is not None and regressions(comparison, args.fail_if_slower):
        return EXIT_CELL_FAILED
    return EXIT_OK


def _cmd_pricing(args: argparse.Namespace) -> int:
    from harness.pricing.catalog import load_catalog, save_catalog
    from harness.pricing.show import render_prices

    catalog = load_catalog(args.prices)
    if args.pricing_command == "show":
        selected = catalog.select(args.instance_type or (), args.region or (), args.purchase_option or ())
        if not selected:
            from harness.errors import PricingError

            raise PricingError(f"no price in the {catalog.origin} matches; 'siliconbench pricing show' lists them all")
        print(render_prices(catalog, selected, args.format))
        return EXIT_OK
    from harness.pricing.given import today_utc
    from harness.pricing.refresh import DEFAULT_PURCHASE_OPTIONS, pairs_to_refresh
    from harness.targets.aws.price_list import refresh_from_aws

    pairs = pairs_to_refresh(catalog, args.instance_type or (), args.region or ())
    result = refresh_from_aws(pairs, args.purchase_option or DEFAULT_PURCHASE_OPTIONS)
    for line in result.missing:
        print(f"siliconbench: warning: kept the old price (if any): {line}", file=sys.stderr)
    if not result.prices:
        raise ConfigError("AWS returned no price for anything asked; the catalog was not written")
    updated = catalog.updated(result.prices, today_utc())
    path = save_catalog(updated, args.output)
    print(
        f"siliconbench: {len(result.prices)} prices refreshed; catalog of {len(updated)} written to {path}",
        file=sys.stderr,
    )
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from harness.report.export.pytest_benchmark import to_pytest_benchmark
    from harness.runfile.files import load_run
    from harness.runfile.json_writer import dumps_json

    document = to_pytest_benchmark(load_run(args.runfile), include_data=args.include_data)
    _emit(dumps_json(document, indent=1), args.output, "pytest-benchmark JSON")
    return EXIT_OK


COMMANDS = {
    "run": _cmd_run,
    "list": _cmd_list,
    "report": _cmd_report,
    "compare": _cmd_compare,
    "pricing": _cmd_pricing,
    "export": _cmd_export,
    "aws": cmd_aws,
    "agent": cmd_agent,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    from harness.run.signals import signals_interrupt

    try:
        with signals_interrupt():  # SIGINT, SIGTERM and SIGHUP all end a command the same way
            return COMMANDS[args.command](args)
    except PreflightError as exc:  # one line per problem, each naming its fix
        return print_preflight_problems(exc)
    except (RunStoppedError, CloudError) as exc:
        print(f"siliconbench: error: {exc}", file=sys.stderr)
        if isinstance(exc, RunStoppedError) and exc.status == "timed_out":
            return EXIT_CELL_FAILED
        return EXIT_ENVIRONMENT
    except SiliconbenchError as exc:
        print(f"siliconbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"siliconbench: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return exit_for_signal(signum)


if __name__ == "__main__":
    sys.exit(main())

"""The one exception tree of siliconbench.

Library code raises these and never prints or exits; only the CLI maps them to a one-line
message and an exit code (2 for everything the user can fix)::

    SiliconbenchError                  anything siliconbench itself reports
    ├── ConfigError                    bad input: fix the command line or the suite file
    │   ├── UnknownNameError           a workload, preset or backend that is not installed
    │   ├── BackendUnavailableError    a backend that is installed but cannot run here
    │   ├── OutputError                an output path that cannot be written
    │   ├── PreflightError             an AWS account or region not ready for a run (quota, subnet,
    │   │                              permissions): one line per problem, each naming its fix
    │   └── PricingError               a price that is missing, malformed or cannot be fetched
    ├── RunFileError                   a run file that is missing, truncated or of another schema
    ├── CellFailedError                one cell failed; the run records it and goes on
    ├── RunStoppedError                a run had to stop early (a full disk, a hung cell without
    │                                  isolation); its run file keeps every finished cell and says why
    └── CloudError                     a cloud call failed or a remote run went wrong (capacity,
                                       bootstrap, an instance that stopped reporting)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BackendUnavailableError",
    "CellFailedError",
    "CloudError",
    "ConfigError",
    "OutputError",
    "PreflightError",
    "PricingError",
    "RunFileError",
    "RunStoppedError",
    "SiliconbenchError",
    "UnknownNameError",
]


class SiliconbenchError(Exception):
    """Base of every error siliconbench raises on purpose."""


class ConfigError(SiliconbenchError):
    """The user asked for something invalid; the message says how to fix it."""


class UnknownNameError(ConfigError):
    """A name that is not registered; the message lists the ones that are."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        known_list = ", ".join(sorted(known)) or "none"
        message = f"unknown {kind} {name!r}; available: {known_list}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.kind = kind
        self.name = name


class BackendUnavailableError(ConfigError):
    """A backend that is installed but cannot run on this machine."""


class OutputError(ConfigError):
    """The output folder or file cannot be created or written."""


class PreflightError(ConfigError):
    """Checks before an AWS run found problems the user must fix; nothing was created."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class PricingError(ConfigError):
    """A price the report needs is missing or malformed, or the price list cannot be fetched."""


class RunFileError(SiliconbenchError):
    """A run file that cannot be read as this version's schema."""


class RunStoppedError(SiliconbenchError):
    """A run that could not go on; ``status`` says why (``disk_full``, ``timed_out``: the run
    file says ``aborted`` with that reason) and ``path`` is that file."""

    def __init__(self, message: str, status: str, path: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class CellFailedError(SiliconbenchError):
    """A single cell failed; the harness records it as failed (a ``runfile.records.CellError``,
    the record of why a cell failed) and continues."""


class CloudError(SiliconbenchError):
    """A cloud call or a remote run failed; the message names the resource and the cause."""

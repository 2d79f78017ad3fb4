"""Turn what torch-neuronx raises into one-line errors that say what to try.

The raw failures are long: neuronx-cc prints a page of traceback into its log and torch-neuronx
raises only ``RuntimeError: neuronx-cc failed with <status>``; the runtime reports device memory
exhaustion as ``... status=4 message="Allocation Failure"`` (NRT_RESOURCE). A reader of the run file
needs the cause and the next step, so each known family gets its own message, and the compiler's
first error line is pulled from its log in the work directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import CellFailedError

__all__ = ["compile_failure", "is_device_memory_error", "runtime_failure"]

#: The neuronx-cc log inside the compiler work directory (``--logfile`` default).
COMPILER_LOG = "log-neuron-cc.txt"

_OOM = re.compile(
    r"allocation failure|failed to alloc|status=4\b|nrt_resource|out of (device )?memory|\boom\b", re.IGNORECASE
)
_UNSUPPORTED = re.compile(
    r"not supported|unsupported|no lowering|list-operators|not implemented for xla", re.IGNORECASE
)
_LOG_ERROR = re.compile(r"\bERROR\b.*?\[neuronx-cc\]:\s*(.*)$")
_NOISE = re.compile(r"^(\**|Traceback.*|File \".*|Version information:?|.*version \d.*|\s*)$", re.IGNORECASE)
_ERROR_MESSAGE = re.compile(r"^error message:\s*(\S.*)$", re.IGNORECASE)
_GENERIC = re.compile(r"internal compiler error has occurred", re.IGNORECASE)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def is_device_memory_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the Neuron runtime running out of device memory."""
    return bool(_OOM.search(str(exc)))


def compiler_log_errors(workdir: Path | None) -> list[str]:
    """The meaningful ERROR lines of the neuronx-cc log, in order (empty when there is no log)."""
    if workdir is None:
        return []
    found: list[str] = []
    for log in sorted(workdir.rglob(COMPILER_LOG)):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            match = _LOG_ERROR.search(line)
            if match and not _NOISE.match(match.group(1).strip()):
                found.append(match.group(1).strip())
    return found


def _most_telling(lines: list[str]) -> str:
    """The compiler's own error text when it gives one, else its first specific error line."""
    for line in lines:
        match = _ERROR_MESSAGE.match(line)
        if match:
            return match.group(1).strip()
    return next((line for line in lines if not _GENERIC.search(line)), lines[0] if lines else "")


def compile_failure(exc: BaseException, workdir: Path | None, dtype: str) -> CellFailedError:
    """A CellFailedError for a failed ``torch_neuronx.trace``: rejected arguments, unsupported operator,
    memory, or compiler error."""
    raised = _first_line(exc)
    if isinstance(exc, KeyError | AssertionError | TypeError | ValueError):
        # Raised by trace's Python front end (arguments, aliases), before neuronx-cc runs.
        return CellFailedError(
            f"torch_neuronx.trace rejected the model before compiling ({type(exc).__name__}: {raised[:240]})"
        )
    log_lines = compiler_log_errors(workdir)
    unsupported = next((line for line in [raised, *log_lines] if _UNSUPPORTED.search(line)), None)
    where = f"; compiler log in {workdir}" if workdir is not None else ""
    if unsupported is not None:
        return CellFailedError(
            f"the model uses an operator neuronx-cc cannot compile ({unsupported[:200]}); run "
            "torch_neuronx.analyze(model, example_inputs) to list unsupported operators, rewrite that part "
            f"with supported ones, or run this workload on cpu or cuda{where}"
        )
    if is_device_memory_error(exc):
        return CellFailedError(
            f"ran out of memory while compiling or loading the model ({raised[:200]}); "
            "try a smaller batch size or --dtype bf16"
        )
    detail = _most_telling(log_lines)
    other = "bf16" if dtype == "fp32" else "fp32"
    return CellFailedError(
        f"neuronx-cc could not compile the model ({raised[:120]}{': ' + detail[:200] if detail else ''}); "
        f"try --dtype {other} or a smaller batch size{where}"
    )


def runtime_failure(exc: BaseException, stage: str) -> CellFailedError | None:
    """A CellFailedError for a known runtime failure at ``stage`` (load, first call), else None."""
    if is_device_memory_error(exc):
        return CellFailedError(
            f"NeuronCore device memory ran out while {stage} ({_first_line(exc)[:200]}); try a smaller "
            "batch size, --dtype bf16, or --mode dataparallel to split the batch across cores"
        )
    return None

"""Recorded serving traces as request sets: each request at its recorded time, with its recorded reuse.

Two public formats are read:

- **Mooncake** (``kvcache-ai/Mooncake``, ``FAST25-release/traces``): JSON lines of ``timestamp``
  (milliseconds from the trace's start), ``input_length``, ``output_length`` and ``hash_ids``, one id
  per block of ``block_size`` prompt tokens (512 in the published traces). Ids are prefix hashes:
  equal ids at the same position mean equal tokens there and before, so the ids *are* the trace's
  prefix reuse.
- **Azure LLM inference** (``Azure/AzurePublicDataset``, ``AzureLLMInferenceTrace_*.csv``): a header
  ``TIMESTAMP,ContextTokens,GeneratedTokens`` and one row per request, its time a date-time
  (``2023-11-16 18:15:46.6805900``) or seconds. It records no content, so its prompts share nothing.

Prompts are built from token ids, never from text: each hash id becomes ``block_size`` ids drawn
from the model's ordinary tokens with a seed of its own, a prompt is the tokenizer's leading special
tokens (its BOS) followed by its blocks, cut to ``input_length``. Sent as ids (the completions API
takes them), the engine tokenizes nothing, so every block boundary survives exactly and equal hash
ids are equal cache blocks; the engine's own prompt count (``usage``) checks it per request. Text
could not promise that: decoding ids and encoding the text merges tokens across block joins.

A request whose prompt and output exceed the engine's context is counted (``over_context``) and
left out, never truncated: a truncated prompt would be another request with another reuse.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.errors import ConfigError
from harness.runfile.engine import DEFAULT_TRACE_BLOCK_SIZE, EngineRequest
from workloads.input_files import read_text_file

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["Trace", "TraceEntry", "TraceFormat", "TraceRequests", "build_trace_requests", "read_trace"]

TraceFormat = Literal["mooncake", "azure"]
_AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


@dataclass(frozen=True)
class TraceEntry:
    """One recorded request: when (seconds from the trace's first request), how long in and out,
    and (Mooncake) the ids of its prompt's blocks."""

    at_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Trace:
    """A trace as read: its entries in time order (the first ``limit``), and how many rows it held."""

    file: str
    format: TraceFormat
    entries: tuple[TraceEntry, ...]
    rows: int
    block_size: int | None


def read_trace(path: str | Path, *, block_size: int = DEFAULT_TRACE_BLOCK_SIZE, limit: int | None = None) -> Trace:
    """Read and check a Mooncake JSONL or Azure CSV trace (told apart by their first line).

    Every refusal is one ``ConfigError`` line naming the file, the line and what to fix."""
    if block_size < 1:
        raise ConfigError(f"--trace-block-size must be a whole number >= 1, got {block_size}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--trace-limit must be a whole number >= 1, got {limit}")
    text = read_text_file(path, "trace", "--trace")
    first = text.lstrip().split("\n", 1)[0]
    file = str(path)
    if first.startswith("{"):
        entries, rows = _mooncake(text, file, block_size, limit)
        fmt: TraceFormat = "mooncake"
    elif "TIMESTAMP" in first and "ContextTokens" in first:
        entries, rows = _azure(text, file, limit)
        fmt = "azure"
    else:
        raise ConfigError(
            f"{file}: not a trace this reads: give Mooncake JSON lines (timestamp, input_length, output_length, "
            f"hash_ids) or the Azure CSV (header {','.join(_AZURE_COLUMNS)})"
        )
    if not entries:
        raise ConfigError(f"{file}: the trace holds no requests")
    ordered = sorted(entries, key=lambda e: e.at_s)
    t0 = ordered[0].at_s
    shifted = tuple(TraceEntry(e.at_s - t0, e.input_tokens, e.output_tokens, e.hash_ids) for e in ordered)
    return Trace(file, fmt, shifted, rows, block_size if fmt == "mooncake" else None)


def _whole(value: object, name: str, where: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: {name} must be a whole number >= {low}, got {value!r}")
    return value


def _mooncake(text: str, file: str, block_size: int, limit: int | None) -> tuple[list[TraceEntry], int]:
    entries: list[TraceEntry] = []
    rows = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if limit is not None and rows >= limit:
            break
        rows += 1
        where = f"{file}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not a JSON line: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: expected a JSON object with timestamp, input_length, output_length, hash_ids")
        missing = [k for k in ("timestamp", "input_length", "output_length", "hash_ids") if k not in record]
        if missing:
            raise ConfigError(f"{where}: a Mooncake trace line needs {', '.join(missing)}")
        stamp = record["timestamp"]
        if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not 0 <= stamp < 1e15:
            raise ConfigError(f"{where}: timestamp must be milliseconds >= 0, got {stamp!r}")
        n_in = _whole(record["input_length"], "input_length", where)
        n_out = _whole(record["output_length"], "output_length", where)
        ids = record["hash_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ConfigError(f"{where}: hash_ids must be a list of whole numbers")
        if len(ids) * block_size < n_in:
            raise ConfigError(
                f"{where}: {len(ids)} hash ids of {block_size} tokens cover fewer than input_length {n_in}; "
                "give the trace's block size with --trace-block-size"
            )
        entries.append(TraceEntry(float(stamp) / 1000.0, n_in, n_out, tuple(ids)))
    return entries, rows


def _azure_time(value: str, where: str) -> float:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    head, dot, fraction = value.partition(".")
    try:
        stamp = datetime.fromisoformat(head)
    except ValueError:
        raise ConfigError(f"{where}: TIMESTAMP {value!r} is neither seconds nor a date-time") from None
    if dot and not fraction.isdigit():
        raise ConfigError(f"{where}: TIMESTAMP {value!r} has a malformed fraction of a second")
    return stamp.timestamp() + (float(f"0.{fraction}") if dot else 0.0)


def _azure(text: str, file: str, limit: int | None) -> tuple[list[TraceEntry], int]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    missing = [c for c in _AZURE_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"{file}:1: the Azure trace's header lacks {', '.join(missing)}")
    cols = [header.index(c) for c in _AZURE_COLUMNS]
    entries: list[TraceEntry] = []
    rows = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if limit is not None and rows >= limit:
            break
        rows += 1
        where = f"{file}:{reader.line_num}"
        if len(row) < len(header):
            raise ConfigError(f"{where}: {len(row)} columns where the header has {len(header)}")
        at = _azure_time(row[cols[0]], where)
        counts = []
        for name, col in zip(_AZURE_COLUMNS[1:], cols[1:], strict=True):
            cell = row[col].strip()
            if not cell.isdigit():
                raise ConfigError(f"{where}: {name} must be a whole number, got {cell!r}")
            counts.append(int(cell))
        # A request with no context or no output cannot be sent as recorded; it is one with 1.
        entries.append(TraceEntry(at, max(1, counts[0]), max(1, counts[1])))
    return entries, rows


@dataclass(frozen=True)
class TraceRequests:
    """A trace made into requests: each with its send time (seconds from the replay's start, at
    ``speed`` times the recorded pace); requests over the context are counted, not sent."""

    trace: Trace
    requests: tuple[EngineRequest, ...]
    schedule_s: tuple[float, ...]
    over_context: int
    speed: float


def build_trace_requests(
    trace: Trace,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_model_len: int,
    speed: float = 1.0,
    seed: int = 0,
    return_token_ids: bool = False,
) -> TraceRequests:
    """The trace's requests as token-id prompts in which equal hash ids are equal blocks."""
    from workloads.exact_prompts import PromptBuilder

    if not speed > 0:
        raise ConfigError(f"--trace-speed must be a positive number, got {speed!r}")
    builder = PromptBuilder(tokenizer)
    lead = builder._prefix
    ordinary = builder.ordinary
    if not ordinary:
        raise ConfigError("the model's tokenizer has no ordinary tokens to build trace prompts from")
    size = trace.block_size or DEFAULT_TRACE_BLOCK_SIZE
    blocks: dict[int, tuple[int, ...]] = {}

    def block(key: int) -> tuple[int, ...]:
        if key not in blocks:
            rng = random.Random(f"{seed}:{key}")
            blocks[key] = tuple(rng.choice(ordinary) for _ in range(size))
        return blocks[key]

    requests: list[EngineRequest] = []
    schedule: list[float] = []
    over = 0
    for index, entry in enumerate(trace.entries):
        if entry.input_tokens + entry.output_tokens > max_model_len:
            over += 1
            continue
        # Azure records no content: each request gets blocks of its own (keys no Mooncake id takes).
        keys = entry.hash_ids or tuple(-(index * 1_000_000 + b + 1) for b in range(-(-entry.input_tokens // size)))
        ids: list[int] = list(lead)
        for key in keys:
            if len(ids) >= entry.input_tokens:
                break
            ids.extend(block(key))
        prompt = tuple(ids[: entry.input_tokens])
        requests.append(
            EngineRequest(
                f"t{index}",
                max_tokens=entry.output_tokens,
                prompt=prompt,
                input_tokens=len(prompt),
                ignore_eos=True,
                seed=seed,
                return_token_ids=return_token_ids,
            )
        )
        schedule.append(entry.at_s / speed)
    if not requests:
        raise ConfigError(
            f"{trace.file}: all {len(trace.entries)} requests exceed the engine's max model length {max_model_len}; "
            "raise --max-model-len"
        )
    return TraceRequests(trace, tuple(requests), tuple(schedule), over, speed)

"""What the prefix cache does for conversations: later turns' TTFT with caching on against off.

A run with ``--engine-arg enable-prefix-caching=true,false`` measures the same conversations on two
engines, one after the other. A later turn (index 1 on, the second turn a user sends) resends its
whole history, which a cache holds; the first turn has nothing to reuse, so it only dilutes the
effect and is left out. Each later turn is set against the *same* turn of the *same* conversation
with caching off: TTFT grows with the history, and conversations differ in length by more than
the cache saves, so unpaired figures would bury the effect under the spread between
conversations; the pair removes it.

The figure is the median of the paired ratios (on / off), with the distribution-free
order-statistic interval of that median on the log ratios in the order the pairs were sent
(``harness.measure.stats.quantile_interval``): it holds at its nominal rate whatever their
distribution, and is widened for serial dependence (``harness.measure.dependence``; a run whose
load drifted carries less information than its count) or withheld with the reason. The two
engines cannot be interleaved (one serves at a time), so a drift of the machine between the two
runs is in the ratio, not in its interval: docs/methodology.md says more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.runfile.records import EnginePart, EngineRequestRecord, Interval

if TYPE_CHECKING:
    from harness.report.rows import CellRow

__all__ = ["CACHING_ARG", "CacheEffect", "cache_effect_lines", "cache_effects", "later_turn_pairs", "paired_ratio"]

#: The engine argument whose two values are set against each other (vLLM's flag, normalized to
#: ``true``/``false`` by ``harness.run.engine_args``).
CACHING_ARG = "enable-prefix-caching"


@dataclass(frozen=True)
class CacheEffect:
    """Later turns' TTFT with caching on over the same turns with it off, in one run.

    ``pairs`` is how many later turns were measured on both engines (matched by conversation and
    turn), ``unpaired`` those measured on one only (a failure on the other); ``ratio`` the median of
    the paired ratios and ``low``/``high`` its interval at ``confidence`` (None, with ``reason``,
    where the pairs back none)."""

    run_id: str
    model: str
    request_set: str
    users: int
    config: str
    on_cell: str
    off_cell: str
    pairs: int
    unpaired: int
    ratio: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    effective_n: float | None
    reason: str | None
    #: The first turns' paired ratio and interval: nothing to reuse, so 1 but for a change of the
    #: machine's conditions between the two engines' runs, which the ratio above carries too.
    control: Interval | None = None

    @property
    def drift(self) -> str | None:
        """What the first turns say when the two runs met different conditions (their interval
        excludes 1); None when they agree, or back no interval."""
        control = self.control
        if control is None or not control.backed or control.low is None or control.high is None:
            return None
        if control.low <= 1 <= control.high:
            return None
        return (
            f"but first turns, which have nothing to reuse, also differ on / off ({control.estimate:.3f} "
            f"[{control.low:.3f}, {control.high:.3f}]): the machine changed between the two engines' runs, "
            "and the ratio carries that, its interval does not"
        )

    @property
    def excludes_one(self) -> bool:
        """True when the interval lies wholly on one side of 1 (caching changed later turns' TTFT)."""
        return self.low is not None and self.high is not None and (self.high < 1 or self.low > 1)

    def sentence(self) -> str:
        where = f"{self.model} {self.request_set} c{self.users}" + (
            "" if self.config == "default" else f" {self.config}"
        )
        if self.ratio is None:
            return f"{where}: later turns' TTFT with prefix caching on / off not given: {self.reason}"
        text = f"{where}: later turns' TTFT with prefix caching on / off, median of {self.pairs} paired turns"
        text += f" {self.ratio:.3f}"
        if self.low is not None and self.high is not None:
            text += f" [{self.low:.3f}, {self.high:.3f}] at {self.confidence:.0%} ({self.method})"
        else:
            text += f"; no interval: {self.reason}"
        drift = self.drift
        if drift is not None:
            text += f"; {drift}"
        if self.unpaired:
            text += f"; {self.unpaired} later turns measured on one engine only are left out"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model,
            "request_set": self.request_set,
            "users": self.users,
            "engine_config": self.config,
            "caching_on_cell": self.on_cell,
            "caching_off_cell": self.off_cell,
            "pairs": self.pairs,
            "unpaired": self.unpaired,
            "ttft_ratio_on_off": self.ratio,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "method": self.method,
            "effective_n": self.effective_n,
            "reason": self.reason,
            "first_turns_ratio_on_off": None if self.control is None else self.control.estimate,
            "first_turns_low": None if self.control is None or not self.control.backed else self.control.low,
            "first_turns_high": None if self.control is None or not self.control.backed else self.control.high,
            "drift": self.drift,
            "sentence": self.sentence(),
        }


def _later_turns(
    records: Sequence[EngineRequestRecord], first: bool = False
) -> dict[tuple[int, int], tuple[int, float]]:
    """(conversation, turn) -> (sending order, TTFT ns) of each later turn that succeeded (with
    ``first``, each first turn instead)."""
    found: dict[tuple[int, int], tuple[int, float]] = {}
    for order, record in enumerate(records):
        ttft = record.ttft_ns
        if record.conversation is None or record.turn is None or (record.turn == 0) != first:
            continue
        if record.failure is None and ttft is not None and ttft > 0:
            found[(record.conversation, record.turn)] = (order, float(ttft))
    return found


def later_turn_pairs(
    on: Sequence[EngineRequestRecord], off: Sequence[EngineRequestRecord], *, first: bool = False
) -> tuple[list[tuple[float, float]], int]:
    """The (on, off) TTFTs of each later turn measured on both, in the order the caching-on run sent
    them, and how many later turns were measured on one side only (``first``: the first turns)."""
    with_cache, without = _later_turns(on, first), _later_turns(off, first)
    both = sorted(set(with_cache) & set(without), key=lambda key: with_cache[key][0])
    pairs = [(with_cache[key][1], without[key][1]) for key in both]
    return pairs, len(set(with_cache) ^ set(without))


def paired_ratio(pairs: Sequence[tuple[float, float]], confidence: float = 0.95) -> Interval | None:
    """The median of on/off over ``pairs`` (in sending order) with its order-statistic interval,
    dependence-adjusted, on the log ratios; None without pairs."""
    from harness.measure.stats import quantile_interval

    if not pairs:
        return None
    logs = np.log(np.asarray([a for a, _ in pairs], dtype=np.float64)) - np.log(
        np.asarray([b for _, b in pairs], dtype=np.float64)
    )
    found = quantile_interval(logs, 0.5, confidence)

    def back(value: float | None) -> float | None:
        return None if value is None else math.exp(value)

    return replace(found, estimate=math.exp(found.estimate), low=back(found.low), high=back(found.high))


def _part(row: CellRow) -> EnginePart | None:
    measured = row.measurement
    return None if measured is None else measured.engine


def _caching(row: CellRow) -> tuple[str, str] | None:
    """("true"/"false", the cell's key without the caching argument), or None for other cells."""
    engine = row.cell.config.params.engine
    if not row.ok or _part(row) is None or engine is None:
        return None
    args = dict(engine.spec.engine_args)
    value = args.get(CACHING_ARG)
    if value not in ("true", "false"):
        return None
    rest = tuple((k, v) for k, v in engine.spec.engine_args if k != CACHING_ARG)
    stripped = replace(engine, spec=replace(engine.spec, engine_args=rest))
    config = replace(row.cell.config, params=replace(row.cell.config.params, engine=stripped))
    return value, f"{row.run_id}|{config!r}"


def _label(row: CellRow) -> str:
    engine = row.cell.config.params.engine
    if engine is None:
        return "default"
    parts = [f"{k}={v}" for k, v in engine.spec.engine_args if k != CACHING_ARG]
    if engine.spec.dtype is not None:
        parts.append(f"dtype={engine.spec.dtype}")
    return " ".join(parts) or "default"


def _why_none(pairs: int, interval: Interval, confidence: float) -> str:
    text = f"{pairs} paired turns back no two-sided interval of the median at {confidence:.0%}"
    if interval.needs is not None:
        text += f" (it needs >= {interval.needs})"
    effective = interval.effective_n
    if effective is not None and effective < pairs:
        text += f"; they are serially dependent, worth {effective:.0f} independent ones"
    return text


def cache_effects(rows: Sequence[CellRow], confidence: float | None = None) -> list[CacheEffect]:
    """One ``CacheEffect`` per pair of conversation cells of a run that differ only in prefix
    caching, in the order their caching-on cells appear; at ``confidence``, else the caching-on
    cell's own."""
    on: dict[str, CellRow] = {}
    off: dict[str, CellRow] = {}
    order: list[str] = []
    for row in rows:
        found, part = _caching(row), _part(row)
        if found is None or part is None:
            continue
        if not any(r.turn is not None for r in part.load.request_records):
            continue
        value, key = found
        (on if value == "true" else off).setdefault(key, row)
        if key not in order:
            order.append(key)
    effects = []
    for key in order:
        if key not in on or key not in off:
            continue
        with_cache, without = on[key], off[key]
        on_part, off_part = _part(with_cache), _part(without)
        if on_part is None or off_part is None:
            continue
        pairs, unpaired = later_turn_pairs(on_part.load.request_records, off_part.load.request_records)
        measured = with_cache.measurement
        level = confidence or (measured.sampling.confidence if measured is not None else 0.95)
        interval = paired_ratio(pairs, level)
        backed = interval is not None and interval.backed
        reason = None
        if interval is None:
            reason = "no later turn (the second a user sends, or after) succeeded on both engines"
        elif not backed:
            reason = _why_none(len(pairs), interval, level)
        effects.append(
            CacheEffect(
                run_id=with_cache.run_id,
                model=with_cache.workload,
                request_set=with_cache.preset,
                users=with_cache.cell.config.params.concurrency,
                config=_label(with_cache),
                on_cell=with_cache.cell.id,
                off_cell=without.cell.id,
                pairs=len(pairs),
                unpaired=unpaired,
                ratio=None if interval is None else interval.estimate,
                low=interval.low if backed and interval is not None else None,
                high=interval.high if backed and interval is not None else None,
                confidence=level,
                method="withheld" if not backed or interval is None else interval.method,
                effective_n=None if interval is None else interval.effective_n,
                reason=reason,
                control=paired_ratio(
                    later_turn_pairs(on_part.load.request_records, off_part.load.request_records, first=True)[0], level
                ),
            )
        )
    return effects


def cache_effect_lines(rows: Sequence[CellRow]) -> list[str]:
    """The sentence of each caching on/off pair of conversation cells among ``rows``."""
    return [effect.sentence() for effect in cache_effects(rows)]

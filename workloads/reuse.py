"""What a load is designed to reuse: the leading prompt tokens an earlier request already sent.

A prefix cache (vLLM's automatic prefix caching) keeps the KV of full blocks of ``block_size``
tokens, each block keyed by its own tokens and every token before it; a request reuses the longest
run of leading blocks some earlier request computed. ``PrefixReuse`` keeps the same keys for every
prompt it is shown, in sending order, and says how many tokens of each were seen before: the reuse
a cache of unbounded size would find. Two rules of vLLM 0.32 are kept (``v1/core/kv_cache_manager.py``,
``get_computed_blocks``): only whole blocks count, and never the prompt's last token
(``max_cache_hit_length = num_tokens - 1``, so the last logits are computed), which can cost a whole
block when a prompt is all cached. The engine's own counters (``vllm:prefix_cache_hits`` over
``vllm:prefix_cache_queries``) then say what it actually found; the two side by side show eviction,
or a workload that does not reuse what it claims.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["VLLM_BLOCK_SIZE", "PrefixReuse", "engine_block_size"]

#: vLLM's default KV cache block (``CacheConfig.DEFAULT_BLOCK_SIZE`` in 0.32's ``config/cache.py``),
#: taken only where the engine does not report its own: the CPU platform makes it 128
#: (``platforms/cpu.py``), which ``backends.engine.metrics.read_cache_config`` reads.
VLLM_BLOCK_SIZE = 16


def engine_block_size(extra_args: Sequence[str]) -> int:
    """The block size asked of an engine in ``extra_args`` (``--block-size N``), else vLLM's default;
    a fallback for an engine that does not report its own."""
    args = list(extra_args)
    for i, arg in enumerate(args):
        if arg == "--block-size" and i + 1 < len(args) and args[i + 1].isdigit():
            return int(args[i + 1])
        if arg.startswith("--block-size=") and arg.split("=", 1)[1].isdigit():
            return int(arg.split("=", 1)[1])
    return VLLM_BLOCK_SIZE


class PrefixReuse:
    """The designed reuse of prompts shown in sending order, block by block.

    ``designed`` and ``prompt_tokens`` are running sums over every prompt shown, so the reuse of a
    window of the load is the difference of two readings."""

    def __init__(self, block_size: int = VLLM_BLOCK_SIZE) -> None:
        if block_size < 1:
            raise ValueError(f"a cache block holds at least one token, got {block_size}")
        self.block_size = block_size
        self._seen: set[int] = set()
        self.designed = 0
        self.prompt_tokens = 0

    def cached(self, ids: Sequence[int]) -> int:
        """Tokens of ``ids`` a cache would hold before it is sent, without recording it."""
        return self._walk(ids, record=False)

    def send(self, ids: Sequence[int]) -> int:
        """Record ``ids`` as sent; its tokens that earlier prompts had already sent."""
        hit = self._walk(ids, record=True)
        self.designed += hit
        self.prompt_tokens += len(ids)
        return hit

    def _walk(self, ids: Sequence[int], *, record: bool) -> int:
        size = self.block_size
        usable = (len(ids) - 1) // size  # whole blocks before the last token
        key = 0
        hit_blocks = 0
        matching = True
        for block in range(len(ids) // size):
            key = hash((key, tuple(ids[block * size : (block + 1) * size])))
            if matching and block < usable and key in self._seen:
                hit_blocks += 1
            else:
                matching = False
                if not record:
                    break
            if record:
                self._seen.add(key)
        return hit_blocks * size

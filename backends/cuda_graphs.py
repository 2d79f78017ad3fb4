"""CUDA graph replay: capture a module's kernels once per input shape, then replay them.

A replay launches the whole recorded sequence of kernels with one call, so the host's per-kernel
launch cost (Python, dispatcher, driver) disappears from the latency; what is left is the GPU's
own time. A graph reads its inputs from, and writes its outputs to, the memory it was captured
with, so each shape gets static input buffers that new inputs are copied into before a replay.
Graphs do not share a memory pool: a per-shape cache may replay them in any order, which pool
sharing does not allow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["CapturedGraph", "CudaGraphCache", "shape_key"]

#: Eager calls on a side stream before capture: they run lazy initialisation (cuBLAS handles and
#: workspaces, autotuned algorithm choices) that must not happen during capture.
WARMUP_CALLS = 3

ShapeKey = tuple[tuple[tuple[int, ...], str, str], ...]


def shape_key(inputs: tuple[torch.Tensor, ...]) -> ShapeKey:
    """What a captured graph is specific to: each input's shape, dtype and device."""
    return tuple((tuple(t.shape), str(t.dtype), str(t.device)) for t in inputs)


class CapturedGraph:
    """One captured graph with the static buffers it reads and writes."""

    def __init__(self, graph: Any, static_inputs: tuple[torch.Tensor, ...], static_output: Any) -> None:
        self.graph = graph
        self.static_inputs = static_inputs
        self.static_output = static_output

    def replay(self) -> Any:
        """Run the captured kernels on the static inputs; the output is overwritten in place."""
        self.graph.replay()
        return self.static_output


class CudaGraphCache:
    """A module captured once per input shape; a call copies its inputs in and replays."""

    def __init__(self, module: torch.nn.Module, warmup_calls: int = WARMUP_CALLS) -> None:
        self.module = module
        self.warmup_calls = warmup_calls
        self._graphs: dict[ShapeKey, CapturedGraph] = {}

    def __len__(self) -> int:
        return len(self._graphs)

    def capture(self, static_inputs: tuple[torch.Tensor, ...]) -> CapturedGraph:
        """The graph for these inputs' shape, captured with ``static_inputs`` as its buffers.

        A shape captured before is returned as it is: its buffers stay the ones it was made with.
        """
        key = shape_key(static_inputs)
        found = self._graphs.get(key)
        if found is not None:
            return found
        import torch

        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(self.warmup_calls):
                    self.module(*static_inputs)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_output = self.module(*static_inputs)
        captured = CapturedGraph(graph, static_inputs, static_output)
        self._graphs[key] = captured
        return captured

    def __call__(self, *inputs: torch.Tensor) -> Any:
        """Like ``module(*inputs)``, by replay: the first call of a shape captures it.

        The returned output is the graph's static buffer, overwritten by the next replay of the
        same shape; clone it to keep it.
        """
        key = shape_key(inputs)
        captured = self._graphs.get(key)
        if captured is None:
            captured = self.capture(tuple(t.clone() for t in inputs))
        else:
            for static, new in zip(captured.static_inputs, inputs, strict=True):
                static.copy_(new)
        return captured.replay()

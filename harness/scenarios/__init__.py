"""Scenarios: how load is applied to a prepared model, one module each.

========== =====================================================================================
latency    one request at a time, device synchronized after each: latency percentiles with CIs
throughput back-to-back calls at the cell's batch, synchronized once per block: the sustained rate
generate   LLM generation, closed loop: TTFT, TPOT, ITL, end-to-end, output and total tokens/s
server     open-loop Poisson arrivals: latency from the due time, goodput, capacity under an SLO
offline    one query of many samples fed through the host, batch by batch: samples/s end to end
========== =====================================================================================

``--loadgen`` runs ``latency``, ``server`` and ``offline`` through MLPerf LoadGen as its
SingleStream, Server and Offline scenarios instead (``harness.scenarios.loadgen``).

Each scenario module declares a ``SPEC`` (``harness.scenarios.registry``); plan, CLI and report read
those. Shared machinery: ``base`` (the cell context and record helpers), ``prepare`` (the checked
forward pass), ``decoding`` (decoders), ``sut`` (staged batches), ``tokens``, ``load``, ``capacity``.
"""

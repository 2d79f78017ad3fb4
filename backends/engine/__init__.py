"""Serving engines (vLLM and any OpenAI-compatible server) as backends, driven per request.

This package owns everything about an engine as a thing to talk to: ``launcher`` starts, readies and
stops one (or attaches to a server), ``serving`` turns what the user asked into one
(``open_engine``), ``pool`` keeps a run's engines open across its cells and always stops them,
``metrics`` samples the engine's ``/metrics``. ``records`` holds what goes in and comes out
(``EngineRequest``, ``TokenEvent``, ``RequestOutcome``), ``protocol`` the contract
(``EngineBackend``, ``RequestStream``, ``Endpoint``), and ``client`` the streaming HTTP client that
implements it (imported on use: it needs ``aiohttp``). How load is applied to an engine (closed and
open loops, capacity search, the correctness check) is a scenario's job: ``harness.scenarios.engine*``.
"""

from backends.engine.protocol import ClientTimeouts, Endpoint, EngineBackend, RequestStream
from backends.engine.records import FailureKind, RequestFailure, RequestOutcome, TokenEvent, Usage, build_outcome
from harness.runfile.engine import ChatMessage, EngineRequest

__all__ = [
    "ChatMessage",
    "ClientTimeouts",
    "Endpoint",
    "EngineBackend",
    "EngineRequest",
    "FailureKind",
    "RequestFailure",
    "RequestOutcome",
    "RequestStream",
    "TokenEvent",
    "Usage",
    "build_outcome",
]

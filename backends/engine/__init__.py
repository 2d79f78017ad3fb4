"""Serving engines (vLLM and any OpenAI-compatible server) as backends, driven per request.

``records`` holds what goes in and comes out (``EngineRequest``, ``TokenEvent``, ``RequestOutcome``),
``protocol`` the contract (``EngineBackend``, ``RequestStream``, ``Endpoint``), and ``client`` the
streaming HTTP client that implements it (imported on use: it needs ``aiohttp``).
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

"""Server-sent events, incrementally: bytes in as they arrive, complete ``data`` payloads out.

Only what OpenAI-compatible streams use is kept: ``data:`` fields (several lines of one event are
joined with newlines, as the SSE standard says), events ended by a blank line, ``\\n``, ``\\r\\n`` or
``\\r`` line ends, and comment lines (``:`` first) ignored. Other fields (``event:``, ``id:``,
``retry:``) are read and dropped. The parser does no I/O and keeps no clock, so the client stamps
each payload with the time of the read that completed it, and tests feed it bytes split anywhere.
"""

from __future__ import annotations

__all__ = ["SseParser"]


class SseParser:
    """Feed it bytes in any split; it returns each event's data once the event is complete."""

    __slots__ = ("_buffer", "_data", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of every event completed by ``chunk``, in order."""
        if (
            not self._buffer
            and not self._data
            and not self._pending_cr
            and chunk.startswith(b"data: ")
            and chunk.endswith(b"\n\n")
            and chunk.count(b"\n") == 2
            and b"\r" not in chunk
        ):
            # The common case, one whole ``data:`` event per read, without the general machinery.
            return [chunk[6:-2]]
        if self._pending_cr and chunk.startswith(b"\n"):
            # A CRLF split across reads: the CR already ended the line.
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if name == b"data":
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events

    def pending(self) -> bool:
        """True while an event has started but not ended: a stream cut here lost it."""
        return bool(self._data or self._buffer.strip())

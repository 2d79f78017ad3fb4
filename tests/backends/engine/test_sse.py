"""The SSE parser: events split anywhere in the byte stream come out whole, once, in order."""

from __future__ import annotations

import pytest

from backends.engine.sse import SseParser

STREAM = (
    b": keep-alive comment\n\n"
    b'data: {"a":1}\n\n'
    b"event: message\r\nid: 7\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b"data:no-space\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [b'{"a":1}', b"line one\nline two", b"no-space", b"[DONE]"]


def test_whole_stream_at_once() -> None:
    parser = SseParser()
    assert parser.feed(STREAM) == EXPECTED
    assert not parser.pending()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_split_gives_the_same_events(size: int) -> None:
    parser = SseParser()
    events: list[bytes] = []
    for start in range(0, len(STREAM), size):
        events.extend(parser.feed(STREAM[start : start + size]))
    assert events == EXPECTED


def test_crlf_split_between_reads_does_not_end_the_event() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r\n") == []
    assert parser.feed(b"\r\n") == [b"a\nb"]


def test_a_cut_event_is_pending() -> None:
    parser = SseParser()
    assert parser.feed(b'data: {"a":1}\n') == []
    assert parser.pending()

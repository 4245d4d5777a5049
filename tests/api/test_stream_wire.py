"""The frame bytes the stream writes straight to sockets, against `websockets`' own."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from cryptopulse.api._stream_wire import frame_text, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_matches_websockets_serialization(size: int) -> None:
    payload = b"y" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def test_text_frame_is_built_once_per_payload() -> None:
    a, b = b'{"n":1}', b'{"n":2}'
    first = text_frame(a)
    assert text_frame(a) is first  # every subscriber of a message gets the same object
    assert text_frame(b) != first and text_frame(a) == first


def test_frame_text_decodes_once() -> None:
    frame = '{"data":"é"}'.encode()
    assert frame_text(frame) == '{"data":"é"}'
    assert frame_text(frame) is frame_text(frame)

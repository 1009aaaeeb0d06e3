"""A minimal ISO-BMFF reader for the tests: enough to tell what a client would play."""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between start and end."""
    end = len(data) if end is None else end
    found = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
            header = 16
        elif size == 0:
            size = end - offset
        assert size >= header, f"corrupt box {kind!r} at {offset}"
        found.append((kind, offset + header, offset + size))
        offset += size
    assert offset == end, "boxes do not tile the file"
    return found


@dataclass
class Movie:
    top_level: list[bytes]
    duration: float
    handlers: list[str]
    sizes: list[tuple[int, int]]


def read(data: bytes) -> Movie:
    top = boxes(data)
    kinds = [kind for kind, _, _ in top]
    _, moov_start, moov_end = next(b for b in top if b[0] == b"moov")
    duration = 0.0
    handlers: list[str] = []
    sizes: list[tuple[int, int]] = []

    def walk(start: int, end: int) -> None:
        nonlocal duration
        for kind, payload, box_end in boxes(data, start, end):
            if kind in CONTAINERS:
                walk(payload, box_end)
            elif kind == b"mvhd":
                version = data[payload]
                if version == 1:
                    timescale, length = struct.unpack(">IQ", data[payload + 20 : payload + 32])
                else:
                    timescale, length = struct.unpack(">II", data[payload + 12 : payload + 20])
                duration = length / timescale
            elif kind == b"hdlr":
                handlers.append(data[payload + 8 : payload + 12].decode("ascii"))
            elif kind == b"tkhd":
                version = data[payload]
                # version+flags, times/ids/duration, reserved, layer..volume, matrix, then width/height
                at = payload + 4 + (32 if version == 1 else 20) + 8 + 8 + 36
                width, height = struct.unpack(">II", data[at : at + 8])
                sizes.append((width >> 16, height >> 16))

    walk(moov_start, moov_end)
    return Movie(kinds, duration, handlers, sizes)

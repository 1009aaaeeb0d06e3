"""The MP4 clips a completed task's URL serves, read once at start-up and served from memory.

Four clips ship in `mockserver/media/` (`tools/make_media.py` regenerates them): landscape or
portrait, with or without an audio track, about 7 seconds each. `serve()` answers GET and HEAD
with `video/mp4`, Content-Length, an ETag and single byte ranges (206, or 416 when the range
lies outside the file); a multi-range or malformed Range header gets the whole file, as RFC 9110
allows.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import Response

from mockserver.errors import ApiError
from mockserver.incoming import Incoming

MEDIA_DIR = Path(__file__).with_name("media")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Clip:
    name: str
    data: bytes
    width: int
    height: int
    etag: str
    duration: float  # seconds, from the movie header


def _moov(data: bytes) -> bytes:
    """The `moov` box (the movie header) of an MP4 file, found by walking the top-level boxes."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        if kind == b"moov":
            return data[offset : offset + size]
        if size < 8:
            break
        offset += size
    raise ValueError("no moov box: not an MP4 file")


def _track_size(data: bytes) -> tuple[int, int]:
    """Largest width x height among the track headers (`tkhd` boxes) of the movie."""
    moov = _moov(data)
    best = (0, 0)
    start = 0
    while (found := moov.find(b"tkhd", start)) != -1:
        start = found + 4
        version = moov[start]
        offset = start + 4 + (32 if version == 1 else 20) + 8 + 8 + 36
        width, height = struct.unpack(">II", moov[offset : offset + 8])
        best = max(best, (width >> 16, height >> 16))
    return best


def _duration(data: bytes) -> float:
    """The movie's duration in seconds, from its `mvhd` box (timescale and duration)."""
    moov = _moov(data)
    start = moov.find(b"mvhd") + 4
    if start < 4:
        raise ValueError("no mvhd box: not an MP4 file")
    if moov[start] == 1:
        timescale, duration = struct.unpack(">IQ", moov[start + 20 : start + 32])
    else:
        timescale, duration = struct.unpack(">II", moov[start + 12 : start + 20])
    return duration / timescale if timescale else 0.0


def _load_clip(name: str) -> Clip:
    data = (MEDIA_DIR / f"{name}.mp4").read_bytes()
    width, height = _track_size(data)
    return Clip(name, data, width, height, '"' + hashlib.sha256(data).hexdigest()[:16] + '"', _duration(data))


class Media:
    def __init__(self) -> None:
        self._clips = {
            (portrait, audio): _load_clip(("portrait" if portrait else "landscape") + ("_audio" if audio else ""))
            for portrait in (False, True)
            for audio in (False, True)
        }

    def clip_for(self, aspect_ratio: str, generate_audio: bool) -> Clip:
        return self._clips[(aspect_ratio == "9:16", bool(generate_audio))]


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) for a single satisfiable range; None to send the whole file."""
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            raise ApiError(416, f"Range {header!r} asks for zero bytes.", headers={"content-range": f"bytes */{size}"})
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise ApiError(
            416,
            f"Range {header!r} is outside the file ({size} bytes).",
            headers={"content-range": f"bytes */{size}"},
        )
    return start, end


def serve(request: Incoming, clip: Clip) -> Response:
    size = len(clip.data)
    headers = {"accept-ranges": "bytes", "etag": clip.etag, "cache-control": "private, max-age=86400"}
    if request.header(b"if-none-match") == clip.etag:
        return Response(status_code=304, headers=headers)
    span = None
    range_header = request.header(b"range")
    if range_header and (request.header(b"if-range") or clip.etag) == clip.etag:
        span = _byte_range(range_header, size)
    status, body = 200, clip.data
    if span is not None:
        first, last = span
        status, body = 206, clip.data[first : last + 1]
        headers["content-range"] = f"bytes {first}-{last}/{size}"
    headers["content-length"] = str(len(body))
    if request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers, media_type="video/mp4")
    return Response(body, status_code=status, headers=headers, media_type="video/mp4")

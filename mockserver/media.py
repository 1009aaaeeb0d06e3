"""The MP4 clips a completed task's URL serves, read once at start-up or made once, and served
from memory.

Four clips ship in `mockserver/media/` (`tools/make_media.py` regenerates them): landscape or
portrait, with or without an audio track, 7 seconds each. `Media.clip` gives a clip that follows
the request, 1 to 20 seconds and any even size up to 1920x1080 in either orientation, with or
without audio: the shipped clip when it fits, else one `clipmaker` makes in pure Python (the
audio is the shipped clip's, cycled). `Media.still` gives the same picture as a PNG, a JPEG or a
lossless WebP, for thumbnails and sprite sheets. What was made is kept, the last 64 clips and the
last 64 stills. `clip_spec` reads a
request's duration, size, resolution and aspect ratio, in the forms providers use, into the
seconds and size to ask for.

`serve()` answers GET and HEAD with the clip's content type, Content-Length, an ETag and single
byte ranges (206, or 416 when the range lies outside the file); a multi-range or malformed Range
header gets the whole file, as RFC 9110 allows.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from starlette.responses import Response

from mockserver import clipmaker
from mockserver.errors import ApiError
from mockserver.incoming import Incoming

MEDIA_DIR = Path(__file__).with_name("media")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 1.0, 20.0, 7.0
MAX_LONG_SIDE, MAX_SHORT_SIDE, MIN_SIDE = 1920, 1080, 16
CACHE_SIZE = 64  # clips made and kept (and as many stills)
# the stills' media types: the suffix of their names and their maker
STILL_TYPES: dict[str, tuple[str, Callable[[int, int], bytes]]] = {
    "image/png": ("", clipmaker.make_png),
    "image/jpeg": ("-jpeg", clipmaker.make_jpeg),
    "image/webp": ("-webp", clipmaker.make_webp),
}


@dataclass(frozen=True)
class Clip:
    name: str
    data: bytes
    width: int
    height: int
    etag: str
    duration: float  # seconds, from the movie header (0 for a still)
    content_type: str = "video/mp4"


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


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def _mp4_clip(name: str, data: bytes) -> Clip:
    width, height = _track_size(data)
    return Clip(name, data, width, height, _etag(data), _duration(data))


def _load_clip(name: str) -> Clip:
    return _mp4_clip(name, (MEDIA_DIR / f"{name}.mp4").read_bytes())


def _size_problem(width: int, height: int) -> str | None:
    """Why a size is out of range, or None."""
    if not all(isinstance(side, int) and not isinstance(side, bool) for side in (width, height)):
        return f"width and height are whole numbers of pixels, not {width!r} and {height!r}"
    if min(width, height) < MIN_SIDE:
        return f"{width}x{height}: each side is at least {MIN_SIDE} pixels"
    if max(width, height) > MAX_LONG_SIDE or min(width, height) > MAX_SHORT_SIDE:
        return f"{width}x{height}: the long side is at most {MAX_LONG_SIDE} pixels and the short side {MAX_SHORT_SIDE}"
    return None


class _Kept:
    """The last `size` things made, by key (least recently used first out)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[object, ...], Clip] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: tuple[object, ...]) -> Clip | None:
        with self._lock:
            return self._items.get(key)

    def get(self, key: tuple[object, ...], make: Callable[[], Clip]) -> Clip:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        made = make()  # outside the lock: two threads may make the same clip once each
        with self._lock:
            self._items[key] = made
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return made


class Media:
    def __init__(self) -> None:
        self._clips = {
            (portrait, audio): _load_clip(("portrait" if portrait else "landscape") + ("_audio" if audio else ""))
            for portrait in (False, True)
            for audio in (False, True)
        }
        self._made = _Kept(CACHE_SIZE)
        self._stills = _Kept(CACHE_SIZE)

    def clip_for(self, aspect_ratio: str, generate_audio: bool) -> Clip:
        return self._clips[(aspect_ratio == "9:16", bool(generate_audio))]

    @cached_property
    def _aac(self) -> clipmaker.AacTrack:
        """The AAC frames made clips play: the shipped landscape clip's, read once."""
        return clipmaker.AacTrack.from_mp4(self._clips[(False, True)].data)

    def clip(self, seconds: float, width: int, height: int, audio: bool) -> Clip:
        """A clip of `seconds` (1 to 20, rounded to whole frames at 24 fps; `Clip.duration` is
        the real length) and `width` x `height` (even, each at least 16, the long side at most
        1920 and the short side at most 1080), with an audio track when `audio`: the shipped
        clip for 7 s at 1280x720 or 720x1280, else one made once and kept. ValueError outside
        those ranges (`clip_spec` reads a request into values inside them)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise ValueError(f"a clip lasts {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds, not {seconds!r}")
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise ValueError(f"a clip lasts {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds, not {seconds:g}")
        problem = _size_problem(width, height)
        if problem is None and (width % 2 or height % 2):
            problem = f"{width}x{height}: both sides are even numbers of pixels (4:2:0 video)"
        if problem is not None:
            raise ValueError(f"no clip of that size: {problem}")
        frames, audio = clipmaker.frame_count(seconds), bool(audio)
        shipped = (720, 1280) if height > width else (1280, 720)
        if frames == DEFAULT_SECONDS * clipmaker.FPS and (width, height) == shipped:
            return self._clips[(height > width, audio)]
        name = f"clip-{width}x{height}-{frames}f" + ("-audio" if audio else "")
        return self._made.get(
            (frames, width, height, audio),
            lambda: _mp4_clip(name, clipmaker.make_mp4(seconds, width, height, self._aac if audio else None)),
        )

    def kept(self, seconds: float, width: int, height: int, audio: bool) -> Clip | None:
        """The clip `clip()` would give, if it needs no making (a shipped one, or one made before)."""
        frames, audio = clipmaker.frame_count(seconds), bool(audio)
        if frames == DEFAULT_SECONDS * clipmaker.FPS and (width, height) == (
            (720, 1280) if height > width else (1280, 720)
        ):
            return self._clips[(height > width, audio)]
        return self._made.peek((frames, width, height, audio))

    def kept_still(self, width: int, height: int, media_type: str = "image/png") -> Clip | None:
        """The still `still()` would give, if it was made before."""
        return self._stills.peek((width, height, media_type))

    def still(self, width: int, height: int, media_type: str = "image/png") -> Clip:
        """The clips' picture (the first frame of a clip of that size) as a `width` x `height`
        image of `media_type`, made once and kept: a `Clip` of that content type and duration 0.
        The types are those of `STILL_TYPES`: image/png (8-bit RGB), image/jpeg (baseline JFIF,
        4:2:0) and image/webp (lossless), each kept apart. Each side is at least 16 pixels, the
        long side at most 1920 and the short side at most 1080 (odd sizes allowed); ValueError
        otherwise, or for another type."""
        if media_type not in STILL_TYPES:
            raise ValueError(f"no still of type {media_type!r}: one of {', '.join(STILL_TYPES)}")
        problem = _size_problem(width, height)
        if problem is not None:
            raise ValueError(f"no still of that size: {problem}")
        suffix, make = STILL_TYPES[media_type]

        def made() -> Clip:
            data = make(width, height)
            return Clip(f"still-{width}x{height}{suffix}", data, width, height, _etag(data), 0.0, media_type)

        return self._stills.get((width, height, media_type), made)


_SECONDS = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:s|sec|secs|seconds?)?", re.IGNORECASE)
_PAIR = re.compile(r"(\d+(?:\.\d+)?)\s*[x×*:/]\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_LINES = re.compile(r"(\d+)\s*([pk]?)", re.IGNORECASE)
_MAX_RATIO_TERM = 32  # a pair of numbers both at most this is an aspect ratio, else a size


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (match := _SECONDS.fullmatch(value.strip())):
        number = float(match.group(1))
    else:
        return None
    return number if math.isfinite(number) else None


def _shape(value: object) -> tuple[str, float, float] | None:
    """("size", w, h), ("ratio", a, b) or ("lines", n, n) from a request value, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return ("lines", float(value), float(value)) if math.isfinite(value) and value > 0 else None
    if isinstance(value, list | tuple) and len(value) == 2:
        if all(isinstance(side, int | float) and not isinstance(side, bool) for side in value):
            first, second = float(value[0]), float(value[1])
            if math.isfinite(first + second) and first > 0 and second > 0:
                return "size", first, second
        return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if match := _PAIR.fullmatch(text):
        first, second = float(match.group(1)), float(match.group(2))
        if first <= 0 or second <= 0:
            return None
        kind = "ratio" if max(first, second) <= _MAX_RATIO_TERM else "size"
        return kind, first, second
    if match := _LINES.fullmatch(text):
        lines = int(match.group(1)) * (540 if match.group(2).lower() == "k" else 1)
        return ("lines", float(lines), float(lines)) if lines > 0 else None
    return None


def _even(value: float) -> int:
    return 2 * math.floor(value / 2 + 0.5)


def clip_spec(
    duration: object = None, size: object = None, resolution: object = None, aspect_ratio: object = None
) -> tuple[float, int, int]:
    """(seconds, width, height) of the clip a request asks for, always valid for `Media.clip`.

    Duration: a number (5, 5.5) or a string holding one, with an optional unit s/sec/seconds
    ("8", "5s", "10s", "7.5 s"). It is clamped into 1..20 seconds and rounded to whole frames
    at 24 fps, so the result is the clip's real duration. Missing or unreadable: 7.0.

    Size, resolution and aspect ratio: each value is read by its form, whichever of the three
    keywords carries it (a provider's field can go to the keyword its name suggests):
    - two numbers joined by "x", "*", ":" or "/" ("1280x720", "1280*720", Runway's
      "1280:720"), or a (width, height) pair, are a size; but two numbers both at most 32
      ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21") are an aspect ratio;
    - a number of lines ("480p", "540p", "720p", "1080p", "2160p", 720) or of K ("2k" is
      1080 lines, "4k" 2160: 540 lines a K) is a resolution: the short side of the picture;
    - anything else is unreadable and left out.
    When several values of a kind are readable, the first (size, then resolution, then
    aspect_ratio) wins.

    A size, when given, is the size asked for (resolution and aspect ratio are not used).
    Otherwise the short side is the resolution's (720 when missing) and the aspect ratio gives
    the long one (16:9 when missing): 16:9 at 720p is 1280x720, 9:16 is 720x1280, 1:1 is 720x720,
    4:3 is 960x720, 21:9 at 1080p is 2520x1080 before the limits below.

    Limits, applied in this order: a size over 1920 on its long side or 1080 on its short one is
    scaled down, keeping its aspect ratio, until it fits ("4k" or "2160p" 16:9 gives 1920x1080;
    21:9 at 1080p gives 1920x822); each side is rounded to the nearest even number (854x480 for
    480p 16:9) and raised to 16 when below.
    """
    seconds = _seconds(duration)
    seconds = DEFAULT_SECONDS if seconds is None else min(MAX_SECONDS, max(MIN_SECONDS, seconds))
    seconds = clipmaker.frame_count(seconds) / clipmaker.FPS
    shapes = [shape for value in (size, resolution, aspect_ratio) if (shape := _shape(value)) is not None]
    found = {kind: (first, second) for kind, first, second in reversed(shapes)}  # the first of each kind
    if "size" in found:
        width, height = found["size"]
    else:
        short = found.get("lines", (720.0, 720.0))[0]
        across, down = found.get("ratio", (16.0, 9.0))
        if across >= down:
            width, height = short * across / down, short
        else:
            width, height = short, short * down / across
    scale = min(1.0, MAX_LONG_SIDE / max(width, height), MAX_SHORT_SIDE / min(width, height))
    sides = [max(MIN_SIDE, _even(side * scale)) for side in (width, height)]
    while max(sides) > MAX_LONG_SIDE or min(sides) > MAX_SHORT_SIDE:  # rounding up past a limit
        sides[sides.index(max(sides))] -= 2
    return seconds, sides[0], sides[1]


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


def serve(request: Incoming, clip: Clip, media_type: str | None = None) -> Response:
    """The clip, or a byte range of it, as `media_type` (default: the clip's own content type)."""
    media_type = media_type or clip.content_type
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
        return Response(b"", status_code=status, headers=headers, media_type=media_type)
    return Response(body, status_code=status, headers=headers, media_type=media_type)

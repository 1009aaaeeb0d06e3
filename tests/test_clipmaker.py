"""Made clips: what a request asks for, decoded by a real decoder (FFmpeg, through PyAV) frame by
frame and pixel for pixel; the PNG, JPEG and WebP stills, decoded the same way; `clip_spec`;
serving a made clip and the stills."""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator
from itertools import pairwise

import av
import av.logging
import pytest

from mockserver import clipmaker
from mockserver.errors import ApiError
from mockserver.incoming import Incoming
from mockserver.media import CACHE_SIZE, STILL_TYPES, Clip, Media, _duration, _track_size, clip_spec, serve
from tests.mp4 import read

COMBINATIONS = [
    # seconds, width, height, audio
    (1, 1280, 720, False),
    (4, 720, 1280, True),
    (5, 1920, 1080, False),
    (8, 1080, 1920, True),
    (10, 1792, 1024, False),
    (12, 1024, 1792, False),
    (20, 854, 480, True),
    (5.5, 960, 540, False),
    (3, 720, 720, False),
]


@pytest.fixture(scope="module")
def media() -> Media:
    return Media()


@pytest.fixture(scope="module")
def ffmpeg_logs() -> Iterator[list[tuple[int, str, str]]]:
    """What FFmpeg logs at warning level or above while the module's clips decode."""
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs:
            yield logs
    finally:
        av.logging.set_level(None)


def _plane(plane: av.video.plane.VideoPlane, bytes_per_sample: int = 1) -> bytes:
    data, stride, width = bytes(plane), plane.line_size, plane.width * bytes_per_sample
    return b"".join(data[row * stride : row * stride + width] for row in range(plane.height))


def _nal_units(sample: bytes) -> list[bytes]:
    units, at = [], 0
    while at < len(sample):
        (length,) = struct.unpack(">I", sample[at : at + 4])
        units.append(sample[at + 4 : at + 4 + length])
        at += 4 + length
    assert at == len(sample)
    return units


@pytest.mark.parametrize(("seconds", "width", "height", "audio"), COMBINATIONS)
def test_a_made_clip_plays_as_asked(
    media: Media, ffmpeg_logs: list[tuple[int, str, str]], seconds: float, width: int, height: int, audio: bool
) -> None:
    clip = media.clip(seconds, width, height, audio)
    frames = round(seconds * 24)
    assert (clip.width, clip.height, clip.duration, clip.content_type) == (width, height, frames / 24, "video/mp4")
    assert _duration(clip.data) == frames / 24 and _track_size(clip.data) == (width, height)
    movie = read(clip.data)
    assert movie.top_level == [b"ftyp", b"moov", b"mdat"]  # streamable: the movie header first
    assert movie.duration == seconds and (width, height) in movie.sizes
    assert movie.handlers == (["vide", "soun"] if audio else ["vide"])

    picture = clipmaker.Picture(width, height)
    container = av.open(io.BytesIO(clip.data))
    video = container.streams.video[0]
    video.codec_context.options = {"err_detect": "explode"}  # a decoding error raises
    assert video.codec_context.profile == "Constrained Baseline"
    assert container.duration == frames * 1_000_000 // 24
    assert video.duration * video.time_base == frames / 24 == video.frames / 24
    assert len(container.streams.audio) == (1 if audio else 0)
    decoded = samples = 0
    for frame in container.decode(*container.streams):
        if isinstance(frame, av.AudioFrame):
            assert (frame.sample_rate, frame.layout.name) == (44100, "mono")
            samples += frame.samples
            continue
        assert (frame.width, frame.height, frame.format.name) == (width, height, "yuv420p")
        if decoded in (0, frames // 2):  # the first frame, and one with the bar in the middle
            expected = picture.planes(picture.bar_column(decoded, frames))
            assert [_plane(plane) for plane in frame.planes] == list(expected), f"frame {decoded}"
        decoded += 1
    assert decoded == frames
    if audio:
        sound = container.streams.audio[0]
        assert abs(sound.duration * sound.time_base - frames / 24) < 1024 / 44100  # within one AAC frame
        assert 0 <= samples - frames / 24 * 44100 < 1024
    assert not ffmpeg_logs, ffmpeg_logs


def test_nal_units_carry_emulation_prevention_bytes(media: Media) -> None:
    assert clipmaker._nal(0x01, b"\x00\x00\x00\x00\x00\x01\x00\x00\x03\x00\x00\x04") == (
        b"\x01\x00\x00\x03\x00\x00\x03\x00\x01\x00\x00\x03\x03\x00\x00\x04"
    )
    escaped = 0
    for seconds, width, height, audio in COMBINATIONS[:4]:
        container = av.open(io.BytesIO(media.clip(seconds, width, height, audio).data))
        for packet in container.demux(video=0):
            for unit in _nal_units(bytes(packet)):
                assert all(unit.find(b"\x00\x00" + bytes([byte])) == -1 for byte in range(3))
                escaped += unit.count(b"\x00\x00\x03")
    assert escaped  # the escape was needed, and the pixel checks passed


def test_the_shipped_clips_are_served_when_they_fit(media: Media) -> None:
    assert media.clip(7, 1280, 720, True) is media.clip_for("16:9", True)
    assert media.clip(7.0, 720, 1280, False) is media.clip_for("9:16", False)
    assert media.clip(7, 960, 540, True).name == "clip-960x540-168f-audio"


def test_made_clips_are_kept_and_the_oldest_dropped() -> None:
    media = Media()
    first = media.clip(1, 16, 16, False)
    assert media.clip(1.01, 16, 16, False) is first  # the same whole number of frames
    assert media.clip(1, 16, 16, True) is not first
    for width in range(18, 18 + 2 * CACHE_SIZE, 2):
        media.clip(1, width, 16, False)
    assert media.clip(1, 16, 16, False) is not first


@pytest.mark.parametrize(
    ("seconds", "width", "height", "message"),
    [
        (0.5, 1280, 720, "1 to 20 seconds, not 0.5"),
        (20.5, 1280, 720, "1 to 20 seconds, not 20.5"),
        (math.nan, 1280, 720, "1 to 20 seconds, not nan"),
        (5, 1281, 720, "1281x720: both sides are even"),
        (5, 1920, 1082, "1920x1082: the long side is at most 1920 pixels and the short side 1080"),
        (5, 2560, 1080, "2560x1080: the long side is at most 1920"),
        (5, 8, 720, "8x720: each side is at least 16 pixels"),
        (5, 1280.0, 720, "whole numbers of pixels"),
    ],
)
def test_clips_out_of_range_are_refused(media: Media, seconds: float, width: int, height: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        media.clip(seconds, width, height, False)


@pytest.mark.parametrize(
    ("request_", "spec"),
    [
        ({}, (7.0, 1280, 720)),
        ({"duration": 5}, (5.0, 1280, 720)),
        ({"duration": 5.5}, (5.5, 1280, 720)),
        ({"duration": "8"}, (8.0, 1280, 720)),
        ({"duration": "5s"}, (5.0, 1280, 720)),
        ({"duration": "10s"}, (10.0, 1280, 720)),
        ({"duration": " 7.5 seconds "}, (7.5, 1280, 720)),
        ({"duration": 5.51}, (5.5, 1280, 720)),  # whole frames at 24 fps
        ({"duration": 0}, (1.0, 1280, 720)),
        ({"duration": 60}, (20.0, 1280, 720)),
        ({"duration": "-3"}, (1.0, 1280, 720)),
        ({"duration": "long"}, (7.0, 1280, 720)),
        ({"duration": True}, (7.0, 1280, 720)),
        ({"duration": math.inf}, (7.0, 1280, 720)),
        ({"size": "1280x720"}, (7.0, 1280, 720)),
        ({"size": "1280*720"}, (7.0, 1280, 720)),
        ({"size": "720x1280"}, (7.0, 720, 1280)),
        ({"size": "1280:720"}, (7.0, 1280, 720)),  # Runway's ratio
        ({"size": "1584:672"}, (7.0, 1584, 672)),
        ({"size": "1792x1024"}, (7.0, 1792, 1024)),
        ({"size": (1024, 1792)}, (7.0, 1024, 1792)),
        ({"size": "3840x2160"}, (7.0, 1920, 1080)),  # scaled down, aspect ratio kept
        ({"size": "1000x3000"}, (7.0, 640, 1920)),
        ({"size": "1281x721"}, (7.0, 1282, 722)),  # even
        ({"size": "8x2000"}, (7.0, 16, 1920)),  # raised to 16
        ({"size": "1280x720", "resolution": "1080p", "aspect_ratio": "9:16"}, (7.0, 1280, 720)),  # a size wins
        ({"resolution": "480p"}, (7.0, 854, 480)),
        ({"resolution": "540p"}, (7.0, 960, 540)),
        ({"resolution": "720p"}, (7.0, 1280, 720)),
        ({"resolution": "1080p"}, (7.0, 1920, 1080)),
        ({"resolution": "768P"}, (7.0, 1366, 768)),
        ({"resolution": "4k"}, (7.0, 1920, 1080)),
        ({"resolution": "2160p"}, (7.0, 1920, 1080)),
        ({"resolution": 720}, (7.0, 1280, 720)),
        ({"aspect_ratio": "16:9"}, (7.0, 1280, 720)),
        ({"aspect_ratio": "9:16"}, (7.0, 720, 1280)),
        ({"aspect_ratio": "1:1"}, (7.0, 720, 720)),
        ({"aspect_ratio": "4:3"}, (7.0, 960, 720)),
        ({"aspect_ratio": "3:4"}, (7.0, 720, 960)),
        ({"aspect_ratio": "21:9"}, (7.0, 1680, 720)),
        ({"aspect_ratio": "9:21"}, (7.0, 720, 1680)),
        ({"aspect_ratio": "16:9", "resolution": "1080p"}, (7.0, 1920, 1080)),
        ({"aspect_ratio": "9:16", "resolution": "1080p"}, (7.0, 1080, 1920)),
        ({"aspect_ratio": "9:16", "resolution": "480p"}, (7.0, 480, 854)),
        ({"aspect_ratio": "1:1", "resolution": "1080p"}, (7.0, 1080, 1080)),
        ({"aspect_ratio": "21:9", "resolution": "1080p"}, (7.0, 1920, 822)),
        ({"aspect_ratio": "9:16", "resolution": "4k"}, (7.0, 1080, 1920)),
        ({"aspect_ratio": "auto", "resolution": "best"}, (7.0, 1280, 720)),
        ({"aspect_ratio": "0:0", "size": "0x720"}, (7.0, 1280, 720)),
        ({"size": "16:9"}, (7.0, 1280, 720)),  # read by its form
        ({"resolution": "1080p", "aspect_ratio": "1080p"}, (7.0, 1920, 1080)),
        ({"duration": "10s", "size": "720*1280"}, (10.0, 720, 1280)),
    ],
)
def test_clip_spec(request_: dict[str, object], spec: tuple[float, int, int]) -> None:
    assert clip_spec(**request_) == spec
    seconds, width, height = spec  # always what Media.clip takes
    assert 1 <= seconds <= 20 and seconds * 24 == round(seconds * 24)
    assert width % 2 == height % 2 == 0 and min(width, height) >= 16
    assert max(width, height) <= 1920 and min(width, height) <= 1080


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of an 8-bit RGB PNG (filters None and Up only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (1 + 3 * width)
    rows: list[bytes] = []
    for y in range(height):
        line = raw[y * (1 + 3 * width) : (y + 1) * (1 + 3 * width)]
        if line[0] == 2 and line.count(0) == len(line) - 1:  # Up, and no change: the row above again
            rows.append(rows[-1])
            continue
        if line[0] == 2:
            line = bytes([0]) + bytes((a + b) & 0xFF for a, b in zip(line[1:], rows[-1], strict=True))
        assert line[0] == 0
        rows.append(line[1:])
    return width, height, b"".join(rows)


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (320, 181), (16, 16), (1080, 1920)])
def test_the_still_is_the_clip_picture_as_a_png(media: Media, width: int, height: int) -> None:
    still = media.still(width, height)
    assert (still.content_type, still.width, still.height, still.duration) == ("image/png", width, height, 0.0)
    assert media.still(width, height) is still
    png_width, png_height, pixels = _png_pixels(still.data)
    assert (png_width, png_height) == (width, height)
    frame = next(av.open(io.BytesIO(still.data)).decode(video=0))
    assert (frame.width, frame.height) == (width, height)
    assert _plane(frame.reformat(format="rgb24").planes[0], 3) == pixels
    picture = clipmaker.Picture(width + width % 2, height + height % 2)
    top_left = clipmaker._rgb(picture.luma[0][0], picture.cb[0][0][0], picture.cr[0][0][0])
    assert pixels[:3] == top_left
    assert len({pixels[at : at + 3] for at in range(0, len(pixels), 3)}) >= 4  # a gradient, not a flat colour


def test_stills_out_of_range_are_refused(media: Media) -> None:
    with pytest.raises(ValueError, match="1921x1080: the long side is at most 1920"):
        media.still(1921, 1080)
    with pytest.raises(ValueError, match="15x15: each side is at least 16"):
        media.still(15, 15)


STILL_SIZES = [(1920, 1080), (1280, 720), (720, 1280), (854, 480), (320, 181), (33, 47), (17, 17), (16, 16), (9, 600)]


def _decode_still(data: bytes) -> av.VideoFrame:
    container = av.open(io.BytesIO(data))
    stream = container.streams.video[0]
    stream.codec_context.options = {"err_detect": "explode"}
    return next(container.decode(stream))


def _still_pixels(width: int, height: int) -> bytes:
    """The RGB pixels every still of that size shows (the PNG's), from the colours of its blocks."""
    rows = [b"".join(rgb * 8 for rgb in row)[: 3 * width] for row in clipmaker.still_colours(width, height)]
    return b"".join(rows[y // 8] for y in range(height))


def _jfif_planes(width: int, height: int) -> list[bytes]:
    """The Y, Cb and Cr planes (4:2:0) of a still of that size as a JPEG holds them: each 8x8
    block's colour in JFIF Y'CbCr, a chroma sample for every 2x2 pixels."""
    blocks = [[clipmaker._jfif(rgb) for rgb in row] for row in clipmaker.still_colours(width, height)]
    planes = []
    for component, sides, scale in ((0, (width, height), 8), (1, (-(-width // 2), -(-height // 2)), 4), (2, None, 4)):
        plane_width, plane_height = sides or (-(-width // 2), -(-height // 2))
        rows = [b"".join(bytes([block[component]]) * scale for block in row)[:plane_width] for row in blocks]
        planes.append(b"".join(rows[y // scale] for y in range(plane_height)))
    return planes


@pytest.mark.parametrize(("width", "height"), STILL_SIZES)
def test_the_jpeg_still_decodes_to_the_picture(
    ffmpeg_logs: list[tuple[int, str, str]], width: int, height: int
) -> None:
    data = clipmaker.make_jpeg(width, height)
    assert data[:2] == b"\xff\xd8" and data[6:11] == b"JFIF\0" and data[-2:] == b"\xff\xd9"
    markers, at = [], 2
    while data[at + 1] != 0xDA:  # the segments before the scan
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        markers.append(data[at + 1])
        if data[at + 1] == 0xC0:  # baseline, 8 bits, the real size, Y 2x2 and Cb, Cr 1x1
            assert data[at + 4 : at + 19] == struct.pack(">BHHB", 8, height, width, 3) + bytes(
                [1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
            )
        at += 2 + length
    assert markers == [0xE0, 0xDB, 0xC0, 0xC4]
    expected = _jfif_planes(width, height)
    for idct in ("auto", "int", "faani"):  # FFmpeg's own, libjpeg's integer one, a float one
        container = av.open(io.BytesIO(data))
        stream = container.streams.video[0]
        stream.codec_context.options = {"err_detect": "explode", "idct": idct}
        frame = next(container.decode(stream))
        assert (frame.width, frame.height, frame.format.name) == (width, height, "yuvj420p")
        assert [_plane(plane) for plane in frame.planes] == expected, idct  # exact, sample for sample
    # the colours are the PNG's, to the rounding of JFIF's Y'CbCr (at the blocks' middles, away
    # from the chroma upsampling's blending)
    rgb = _plane(frame.reformat(format="rgb24").planes[0], 3)
    pixels = _still_pixels(width, height)
    for y in range(4, height - 4, 8):
        for x in range(4, width - 4, 8):
            at = 3 * (y * width + x)
            assert all(abs(a - b) <= 2 for a, b in zip(rgb[at : at + 3], pixels[at : at + 3])), (x, y)
    # swscale warns that yuvj420p (the full-range format FFmpeg decodes JPEG to) is deprecated
    ffmpeg_logs[:] = [log for log in ffmpeg_logs if "deprecated pixel format" not in log[2]]
    assert not ffmpeg_logs, ffmpeg_logs


_BASIS = [
    [(0.5**0.5 if u == 0 else 1) * math.cos((2 * x + 1) * u * math.pi / 16) / 2 for x in range(8)] for u in range(8)
]  # the 1-D DCT's basis: sample x of frequency u


def _inverse_dct(levels: tuple[int, ...]) -> list[float]:
    """The exact inverse DCT (T.81 A.3.3) of coefficients in raster order (v * 8 + u), as samples."""
    used = [(level, _BASIS[k % 8], _BASIS[k // 8]) for k, level in enumerate(levels) if level]
    return [sum(level * across[x] * down[y] for level, across, down in used) for y in range(8) for x in range(8)]


@pytest.mark.parametrize(("width", "height"), STILL_SIZES)
def test_the_jpeg_chroma_blocks_are_fitted_within_half_a_level(width: int, height: int) -> None:
    """Every chroma block's AC levels put the exact inverse DCT within 0.5 of its samples (and
    within the fit's own figure), so an accurate decoder rounds them back exactly."""
    blocks = [[clipmaker._jfif(rgb) for rgb in row] for row in clipmaker.still_colours(width, height)]
    steps = set()  # (across, down, diagonal) of every chroma block: what its AC levels depend on
    for top, bottom in zip(blocks[::2], blocks[1::2]):
        for mx in range(0, len(top), 2):
            for component in (1, 2):
                q00, q01, q10, q11 = (block[component] for block in (top[mx], top[mx + 1], bottom[mx], bottom[mx + 1]))
                steps.add((q00 - q01 + q10 - q11, q00 + q01 - q10 - q11, q00 - q01 - q10 + q11))
    for across, down, diagonal in steps:
        error, levels = clipmaker._chroma_fit(across, down, diagonal)
        assert levels[0] == 0 and error < 0.5
        wanted = [
            (across * (1 if x < 4 else -1) + down * (1 if y < 4 else -1) + diagonal * (1 if (x < 4) == (y < 4) else -1))
            / 4
            for y in range(8)
            for x in range(8)
        ]  # each sample less the block's mean
        assert max(abs(a - b) for a, b in zip(_inverse_dct(levels), wanted)) == pytest.approx(error)


@pytest.mark.parametrize(("width", "height"), [*STILL_SIZES, (1, 1), (2, 3), (8, 8)])
def test_the_webp_still_is_the_png_pixel_for_pixel(
    ffmpeg_logs: list[tuple[int, str, str]], width: int, height: int
) -> None:
    data = clipmaker.make_webp(width, height)
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert data[8:16] == b"WEBPVP8L"
    (size,) = struct.unpack("<I", data[16:20])
    assert len(data) == 20 + size + size % 2 and data[20] == 0x2F  # the VP8L signature
    (header,) = struct.unpack("<I", data[21:25])  # 14 bits width - 1, 14 bits height - 1, alpha, version
    assert (header & 0x3FFF, (header >> 14) & 0x3FFF, header >> 28) == (width - 1, height - 1, 0)
    frame = _decode_still(data)
    assert (frame.width, frame.height) == (width, height)
    assert _plane(frame.reformat(format="rgb24").planes[0], 3) == _still_pixels(width, height)
    if width >= 16 and height >= 16:
        assert _png_pixels(clipmaker.make_png(width, height)) == (width, height, _still_pixels(width, height))
    assert not ffmpeg_logs, ffmpeg_logs


def test_the_webp_still_is_small() -> None:
    """Residuals only at the blocks' corners, the zeros between copied: far smaller than the PNG."""
    sizes = {(width, height): len(clipmaker.make_webp(width, height)) for width, height in [(1280, 720), (1920, 1080)]}
    assert sizes[(1280, 720)] < 24_000 and sizes[(1920, 1080)] < 48_000, sizes
    assert sizes[(1280, 720)] < len(clipmaker.make_png(1280, 720)) / 2


@pytest.mark.parametrize(
    "counts",
    [
        [5, 0, 3, 1, 1, 0, 9],
        [1, 1],
        [0, 7, 0],
        [2**k for k in range(30)],  # a plain Huffman code would be 29 bits long
        [1000, *range(1, 280)],
    ],
)
def test_webp_prefix_codes_are_complete_canonical_codes(counts: list[int]) -> None:
    lengths = clipmaker._code_lengths(counts, 15)
    used = [length for length, count in zip(lengths, counts) if count]
    assert all(lengths[k] == 0 for k, count in enumerate(counts) if not count)
    assert max(used) <= 15
    if len(used) > 1:
        assert sum(2.0**-length for length in used) == 1  # complete: every bit string decodes
        codes = clipmaker._canonical(lengths)
        written = sorted(code[::-1] for code in codes.values())  # as read, first bit first
        assert all(not b.startswith(a) for a, b in pairwise(written))  # prefix-free
    else:
        assert clipmaker._canonical(lengths) == {counts.index(next(c for c in counts if c)): ""}


@pytest.mark.parametrize(("value", "expected"), [(1, (0, 0, 0)), (4, (3, 0, 0)), (5, (4, 1, 0)), (7, (5, 1, 0)),
                                                 (8, (5, 1, 1)), (9, (6, 2, 0)), (3072, (22, 10, 1023)),
                                                 (4096, (23, 10, 1023)), (1280, (20, 9, 255))])  # fmt: skip
def test_webp_lengths_and_distances_are_prefix_coded(value: int, expected: tuple[int, int, int]) -> None:
    prefix, extra_bits, extra = clipmaker._prefix_value(value)
    assert (prefix, extra_bits, extra) == expected
    if prefix < 4:  # RFC 9649 3.6.2.2, as the decoder reads it
        assert value == prefix + 1
    else:
        assert value == ((2 + (prefix & 1)) << ((prefix - 2) >> 1)) + extra + 1


@pytest.mark.parametrize("media_type", list(STILL_TYPES))
@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280), (1920, 1080), (321, 17)])
def test_media_makes_stills_of_each_type(media: Media, media_type: str, width: int, height: int) -> None:
    still = media.still(width, height, media_type)
    assert (still.content_type, still.width, still.height, still.duration) == (media_type, width, height, 0.0)
    assert media.still(width, height, media_type) is still  # kept
    assert still.data == {"image/png": clipmaker.make_png, "image/jpeg": clipmaker.make_jpeg,
                          "image/webp": clipmaker.make_webp}[media_type](width, height)  # fmt: skip
    frame = _decode_still(still.data)
    assert (frame.width, frame.height) == (width, height)


def test_each_type_of_still_is_kept_apart(media: Media) -> None:
    png, jpeg, webp = (media.still(640, 360, media_type) for media_type in ("image/png", "image/jpeg", "image/webp"))
    assert media.still(640, 360) is png  # the default stays a PNG
    assert (png.data[:4], jpeg.data[:3], webp.data[8:12]) == (b"\x89PNG", b"\xff\xd8\xff", b"WEBP")
    assert len({png.etag, jpeg.etag, webp.etag}) == 3 and len({png.name, jpeg.name, webp.name}) == 3
    with pytest.raises(ValueError, match="no still of type 'image/gif'"):
        media.still(640, 360, "image/gif")
    with pytest.raises(ValueError, match="15x15: each side is at least 16"):
        media.still(15, 15, "image/webp")


def _get(clip: Clip, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": "/files/x.mp4",
        "headers": [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    response = serve(Incoming(scope, receive), clip)
    return response.status_code, dict(response.headers), bytes(response.body)


def test_a_made_clip_is_served_with_ranges(media: Media) -> None:
    clip = media.clip(2, 640, 360, True)
    size = len(clip.data)
    status, headers, body = _get(clip)
    assert (status, headers["content-type"], body) == (200, "video/mp4", clip.data)
    assert headers["content-length"] == str(size) and headers["etag"] == clip.etag
    status, headers, body = _get(clip, range="bytes=0-99")
    assert (status, headers["content-range"], body) == (206, f"bytes 0-99/{size}", clip.data[:100])
    status, headers, body = _get(clip, range="bytes=-10")
    assert (status, body) == (206, clip.data[-10:])
    status, headers, body = _get(clip, "HEAD", range="bytes=100-")
    assert (status, headers["content-length"], body) == (206, str(size - 100), b"")
    assert _get(clip, if_none_match=clip.etag)[0] == 304
    still = media.still(320, 180)
    status, headers, body = _get(still, range="bytes=0-7")
    assert (status, headers["content-type"], body) == (206, "image/png", b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("media_type", "start", "head"),
    [
        ("image/png", b"\x89PNG", b"IEND\xaeB`\x82"),
        ("image/jpeg", b"\xff\xd8\xff\xe0", b"\xff\xd9"),
        ("image/webp", b"RIFF", None),
    ],
)
def test_stills_are_served_with_ranges(media: Media, media_type: str, start: bytes, head: bytes | None) -> None:
    still = media.still(1280, 720, media_type)
    size = len(still.data)
    status, headers, body = _get(still)
    assert (status, headers["content-type"], headers["content-length"], body) == (
        200,
        media_type,
        str(size),
        still.data,
    )
    status, headers, body = _get(still, range="bytes=0-3")
    assert (status, headers["content-range"], body) == (206, f"bytes 0-3/{size}", start)
    if head is not None:
        status, _, body = _get(still, range=f"bytes=-{len(head)}")
        assert (status, body) == (206, head)
    status, headers, body = _get(still, "HEAD", range="bytes=100-")
    assert (status, headers["content-length"], headers["content-type"], body) == (206, str(size - 100), media_type, b"")
    with pytest.raises(ApiError) as refused:
        _get(still, range=f"bytes={size}-")
    assert (refused.value.status, refused.value.headers["content-range"]) == (416, f"bytes */{size}")
    assert _get(still, if_none_match=still.etag)[0] == 304
    whole = b"".join(_get(still, range=f"bytes={at}-{at + 999}")[2] for at in range(0, size, 1000))
    assert whole == still.data


def test_the_audio_is_the_shipped_clips() -> None:
    data = Media().clip_for("16:9", True).data
    aac = clipmaker.AacTrack.from_mp4(data)
    assert (aac.sample_rate, aac.frame_samples, len(aac.frames)) == (44100, 1024, 301)
    assert b"esds" in aac.stsd and aac.stsd[4:8] == b"stsd"
    assert list(aac.samples(3)) == [aac.first, aac.frames[0], aac.frames[1]]
    assert list(aac.samples(303))[-1] == aac.frames[0]  # cycled
    with pytest.raises(ValueError, match="no sound track"):
        clipmaker.AacTrack.from_mp4(Media().clip_for("16:9", False).data)

"""Generate the small sample MP4 files served by the mock server.

DEVELOPMENT-TIME ONLY.  This script is run by a developer to (re)create the
committed files in ``mockserver/media/``.  It needs PyAV (``av``) and numpy,
which are NOT runtime or test dependencies of the project; install them into
a throw-away virtualenv, e.g.::

    python -m venv /tmp/mediavenv
    /tmp/mediavenv/bin/pip install av numpy
    /tmp/mediavenv/bin/python tools/make_media.py [--out mockserver/media]

Usage::

    python tools/make_media.py [--out mockserver/media]

Four files are written, each ~7.0 s long (the fake API "extends a video by
7 seconds"), H.264 (Main profile, level 3.1, yuv420p, 24 fps, CRF 38) with
the moov atom at the front (``+faststart``) so players can stream them with
HTTP Range requests:

    landscape_audio.mp4  1280x720  (16:9)  + mono AAC sine tone
    landscape.mp4        1280x720  (16:9)  no audio stream
    portrait_audio.mp4    720x1280 (9:16)  + mono AAC sine tone
    portrait.mp4          720x1280 (9:16)  no audio stream

The picture is synthetic (a slowly drifting colour gradient, a moving bar and
a frame counter) so each file stays well under 150 KB.  After writing, every
file is re-opened and checked (duration, streams, size, codecs, moov before
mdat) and ``README.md`` in the output directory is rewritten with the
measured sizes and durations.
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
from pathlib import Path

try:
    import av
    import numpy as np
except ImportError as exc:  # pragma: no cover - dev tool only
    sys.exit(f"tools/make_media.py needs PyAV and numpy ({exc}); install them in a separate venv: pip install av numpy")

FPS = 24
DURATION_S = 7.0
N_FRAMES = round(FPS * DURATION_S)  # 168
CRF = "38"
PRESET = "veryslow"

AUDIO_RATE = 44100
AUDIO_BITRATE = 32_000
TONE_HZ = 440.0
TONE_AMPLITUDE = 0.05  # ~ -26 dBFS: quiet
AUDIO_FRAME = 1024  # AAC frame size

SPECS = [
    # (filename, width, height, with_audio)
    ("landscape_audio.mp4", 1280, 720, True),
    ("landscape.mp4", 1280, 720, False),
    ("portrait_audio.mp4", 720, 1280, True),
    ("portrait.mp4", 720, 1280, False),
]

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "mockserver" / "media"

# 3x5 bitmap digits ("1" = lit).
_DIGITS = {
    "0": ["111", "101", "101", "101", "111"],
    "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"],
    "3": ["111", "001", "111", "001", "111"],
    "4": ["101", "101", "111", "001", "001"],
    "5": ["111", "100", "111", "001", "111"],
    "6": ["111", "100", "111", "101", "111"],
    "7": ["111", "001", "010", "010", "010"],
    "8": ["111", "101", "111", "101", "111"],
    "9": ["111", "101", "111", "001", "111"],
}
_GLYPHS = {ch: np.array([[c == "1" for c in row] for row in rows], dtype=bool) for ch, rows in _DIGITS.items()}


def _draw_text(img: np.ndarray, text: str, x: int, y: int, scale: int) -> None:
    """Draw digits in white with a black box behind them (in place)."""
    gw, gh, gap = 3 * scale, 5 * scale, scale
    pad = scale
    w = len(text) * (gw + gap) - gap
    img[y - pad : y + gh + pad, x - pad : x + w + pad] = 0
    for i, ch in enumerate(text):
        glyph = np.kron(_GLYPHS[ch], np.ones((scale, scale), dtype=bool))
        x0 = x + i * (gw + gap)
        img[y : y + gh, x0 : x0 + gw][glyph] = 255


def make_frame(i: int, width: int, height: int) -> np.ndarray:
    """Return an RGB24 frame (H, W, 3) for frame index ``i``."""
    t = i / N_FRAMES
    # Slowly drifting diagonal gradient (low-frequency, cheap to encode).
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    phase = xs * 0.6 + ys * 0.4 + t * 0.5
    r = 0.5 + 0.35 * np.sin(2 * math.pi * phase)
    g = 0.5 + 0.35 * np.sin(2 * math.pi * (phase + 1 / 3))
    b = 0.5 + 0.35 * np.sin(2 * math.pi * (phase + 2 / 3))
    img = (np.stack(np.broadcast_arrays(r, g, b), axis=-1) * 255).astype(np.uint8)

    # A white bar sweeping left -> right once over the clip.
    bar_w = max(8, width // 40)
    bx = int((width - bar_w) * t)
    img[:, bx : bx + bar_w] = 235

    # Frame counter, top-left.
    scale = max(4, min(width, height) // 60)
    _draw_text(img, f"{i:03d}", 2 * scale, 2 * scale, scale)
    return img


def tone(start: int, n: int) -> np.ndarray:
    idx = np.arange(start, start + n, dtype=np.float64)
    s = TONE_AMPLITUDE * np.sin(2 * math.pi * TONE_HZ * idx / AUDIO_RATE)
    return s.astype(np.float32)[None, :]  # planar mono: (1, n)


def write_mp4(path: Path, width: int, height: int, with_audio: bool) -> None:
    container = av.open(
        str(path),
        mode="w",
        format="mp4",
        options={"movflags": "+faststart"},
    )
    x264_options = {
        "crf": CRF,
        "preset": PRESET,
        "profile": "main",
        "level": "3.1",  # caps x264 refs; veryslow alone would signal 5.0
        "tune": "animation",
        "threads": "1",  # deterministic output
    }
    if width % 64:
        # With SIMD enabled, x264's input copy reads past the row end into
        # uninitialised frame padding when the (chroma) width is not a
        # multiple of the SIMD block, which made the 720-wide portrait output
        # differ from run to run.  The C code paths are bit-exact and
        # deterministic, just slower (~35 s per portrait file).
        x264_options["x264-params"] = "asm=0"
    v = container.add_stream("libx264", rate=FPS, options=x264_options)
    v.width = width
    v.height = height
    v.pix_fmt = "yuv420p"

    a = None
    if with_audio:
        a = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        a.bit_rate = AUDIO_BITRATE

    total_samples = round(DURATION_S * AUDIO_RATE)
    audio_pos = 0

    def feed_audio(upto: int) -> None:
        """Encode tone samples up to sample index ``upto`` (interleaving)."""
        nonlocal audio_pos
        while a is not None and audio_pos < min(upto, total_samples):
            n = min(AUDIO_FRAME, total_samples - audio_pos)
            af = av.AudioFrame.from_ndarray(tone(audio_pos, n), format="fltp", layout="mono")
            af.sample_rate = AUDIO_RATE
            af.pts = audio_pos  # in the codec time base, 1/AUDIO_RATE
            container.mux(a.encode(af))
            audio_pos += n

    for i in range(N_FRAMES):
        frame = av.VideoFrame.from_ndarray(make_frame(i, width, height), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i  # in the codec time base, 1/FPS
        container.mux(v.encode(frame))
        feed_audio((i + 1) * AUDIO_RATE // FPS)
    container.mux(v.encode(None))
    if a is not None:
        feed_audio(total_samples)
        container.mux(a.encode(None))

    container.close()


def top_level_boxes(path: Path) -> list[str]:
    """Return the ISO-BMFF top-level box types in file order."""
    boxes = []
    data = path.read_bytes()
    off = 0
    while off + 8 <= len(data):
        size, typ = struct.unpack(">I4s", data[off : off + 8])
        if size == 1:
            size = struct.unpack(">Q", data[off + 8 : off + 16])[0]
        elif size == 0:
            size = len(data) - off
        boxes.append(typ.decode("latin-1"))
        if size < 8:
            raise ValueError(f"{path}: bad box size {size} at {off}")
        off += size
    return boxes


def verify(path: Path, width: int, height: int, with_audio: bool) -> dict:
    info: dict = {"file": path.name, "bytes": path.stat().st_size}
    with av.open(str(path)) as c:
        info["duration_s"] = c.duration / 1_000_000
        streams = []
        for s in c.streams:
            d = float(s.duration * s.time_base) if s.duration else None
            if s.type == "video":
                cc = s.codec_context
                streams.append(
                    f"video {cc.name} {cc.profile} {cc.width}x{cc.height} {cc.pix_fmt} {s.average_rate} fps {d:.3f}s"
                )
                assert cc.name == "h264", cc.name
                assert cc.profile == "Main", cc.profile
                assert (cc.width, cc.height) == (width, height)
                assert cc.pix_fmt == "yuv420p"
                assert s.average_rate <= FPS
            elif s.type == "audio":
                cc = s.codec_context
                streams.append(
                    f"audio {cc.name} {cc.sample_rate} Hz {cc.layout.name} {(s.bit_rate or 0) // 1000} kb/s {d:.3f}s"
                )
                assert cc.name == "aac", cc.name
            else:
                streams.append(s.type)
        info["streams"] = streams
        v = c.streams.video[0]
        info["video"] = f"h264 {v.codec_context.width}x{v.codec_context.height}"
        info["audio"] = None
        if c.streams.audio:
            au = c.streams.audio[0]
            info["audio"] = f"aac mono {au.codec_context.sample_rate} Hz {(au.bit_rate or 0) // 1000} kb/s"
        kinds = [s.type for s in c.streams]
        assert kinds == (["video", "audio"] if with_audio else ["video"]), kinds
        assert abs(info["duration_s"] - DURATION_S) < 0.15, info["duration_s"]
        # Decode everything to make sure it is genuinely playable.
        nframes = sum(1 for _ in c.decode(video=0))
        assert nframes == N_FRAMES, nframes
    boxes = top_level_boxes(path)
    info["boxes"] = boxes
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    return info


def write_readme(out: Path, infos: list[dict]) -> None:
    lines = [
        (
            "Sample ~7 s MP4 clips served by the mock server: H.264 Main@3.1, "
            "yuv420p, 24 fps, `+faststart` (moov before mdat); `*_audio.mp4` also "
            "carry a quiet mono AAC 440 Hz tone, the others have no audio stream. "
            "Measured:"
        ),
    ]
    for inf in infos:
        audio = inf["audio"] or "no audio"
        lines.append(f"- `{inf['file']}`: {inf['bytes']} bytes, {inf['duration_s']:.3f} s, {inf['video']}; {audio}")
    lines.append(
        "Regenerated (development time only, needs PyAV) with `python tools/make_media.py [--out mockserver/media]`."
    )
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = p.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    infos = []
    for name, w, h, with_audio in SPECS:
        path = out / name
        write_mp4(path, w, h, with_audio)
        inf = verify(path, w, h, with_audio)
        infos.append(inf)
        print(f"{name}: {inf['bytes']} bytes, {inf['duration_s']:.3f} s, boxes={inf['boxes']}")
        for s in inf["streams"]:
            print(f"    {s}")
    write_readme(out, infos)
    print(f"wrote {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

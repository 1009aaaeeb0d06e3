"""Playable MP4 clips and PNG stills of any size, made in pure Python when a request asks for them.

The video is H.264 Constrained Baseline, 4:2:0 8-bit, CAVLC, 24 fps: about the simplest stream
a real decoder plays. One IDR frame, every macroblock I_16x16 with DC prediction and only DC
coefficients, which is enough to paint flat tiles: one luma value per 16x16 macroblock and one
Cb/Cr pair per 8x8 block, here a diagonal colour gradient. The encoder predicts from the
neighbours as the decoder will and codes the exact difference: the quantisers are chosen so
that DC levels land on whole sample values (QP 22, chroma QP 10) and the deblocking filter is
off, so the decoded picture is `Picture`'s planes, pixel for pixel. Then P frames, all
non-reference: each skips every macroblock (a copy of the IDR frame) but one column of intra
macroblocks, a white bar sweeping left to right once over the clip, so a player shows motion.
Intra prediction is constrained to intra neighbours, so the bar costs the same few bits in every
column. Sizes that are not multiples of 16 are coded a macroblock larger and cropped in the SPS.

The container is ISO BMFF with the movie header first (`ftyp`, `moov`, `mdat`: streamable), the
SPS and PPS in `avcC`, samples as length-prefixed NAL units, video and audio interleaved in
one-second chunks. The audio track, when asked, is AAC-LC taken as it is from a shipped clip
(`AacTrack.from_mp4`): its frames are cycled to cover the video, the last one cut short in
`stts` to end with it.

`make_png` draws the same picture as an 8-bit RGB PNG (zlib), for thumbnails; `make_jpeg` as a
baseline JPEG (JFIF 4:2:0) and `make_webp` as a lossless WebP, pixel for pixel the PNG (see their
sections below).

Costs (one core): the largest clip, 20 s 1920x1080 with audio, is made in well under a tenth of
a second and weighs about 240 KB; `mockserver/media/README.md` has the measured figures.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import pairwise, product

FPS = 24
MOVIE_TIMESCALE = 600  # a frame is 25 ticks
VIDEO_TIMESCALE = 12288  # a frame is 512 ticks, as FFmpeg writes 24 fps
_TICKS = VIDEO_TIMESCALE // FPS
QP = 22  # luma: a DC level of 2d adds d to every sample of the macroblock
CHROMA_QP_OFFSET = -12  # chroma QP 10: 2x2 DC levels H r H add r exactly to each 4x4 block
BAR = (235, 128, 128)  # the moving bar: white (Y, Cb, Cr)
# (level_idc, max macroblocks per second, max frame size in macroblocks), Table A-1
_LEVELS = (
    (10, 1485, 99), (11, 3000, 396), (12, 6000, 396), (13, 11880, 396), (20, 11880, 396),
    (21, 19800, 792), (22, 20250, 1620), (30, 40500, 1620), (31, 108000, 3600),
    (32, 216000, 5120), (40, 245760, 8192), (42, 522240, 8704), (50, 589824, 22080),
)  # fmt: skip

# CAVLC tables (H.264 9.2): coeff_token by (TrailingOnes, TotalCoeff), for 0 <= nC < 2 (only
# what a lone DC level needs) and for chroma DC (nC = -1); total_zeros and run_before as far as
# a lone luma DC level and a 2x2 chroma DC block need them.
_TOKEN_NC0 = {(0, 0): "1", (0, 1): "000101", (1, 1): "01"}
_TOKEN_CHROMA_DC = {
    (0, 0): "01", (0, 1): "000111", (1, 1): "1", (0, 2): "000100", (1, 2): "000110", (2, 2): "001",
    (0, 3): "000011", (1, 3): "0000011", (2, 3): "0000010", (3, 3): "000101",
    (0, 4): "000010", (1, 4): "00000011", (2, 4): "00000010", (3, 4): "0000000",
}  # fmt: skip
_ZEROS_LUMA = {1: ("1",)}  # TotalCoeff 1, total_zeros 0 (the level is the first in scan order)
_ZEROS_CHROMA_DC = {1: ("1", "01", "001", "000"), 2: ("1", "01", "00"), 3: ("1", "0")}
_RUN_BEFORE = {1: ("1", "0"), 2: ("1", "01", "00"), 3: ("11", "10", "01", "00")}


@cache
def _ue(value: int) -> str:
    """Exp-Golomb ue(v) as a string of bits."""
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _se(value: int) -> str:
    return _ue(2 * value - 1 if value > 0 else -2 * value)


def _u(bits: int, value: int) -> str:
    return format(value, f"0{bits}b")


def _level(level: int, suffix_length: int, first_after_ones: bool) -> str:
    """One coefficient level (level_prefix and level_suffix, 9.2.2.1) as the decoder reads it."""
    code = 2 * level - 2 if level > 0 else -2 * level - 1
    if first_after_ones:
        code -= 2
    if code >= 4096 + (30 if suffix_length == 0 else 15 << suffix_length):  # past what 12 escape bits hold
        raise ValueError(f"level {level} is too large for Baseline CAVLC")
    if suffix_length == 0:
        if code < 14:
            return "0" * code + "1"
        if code < 30:
            return "0" * 14 + "1" + _u(4, code - 14)
        return "0" * 15 + "1" + _u(12, code - 30)
    if code < 15 << suffix_length:
        return "0" * (code >> suffix_length) + "1" + _u(suffix_length, code & ((1 << suffix_length) - 1))
    return "0" * 15 + "1" + _u(12, code - (15 << suffix_length))


def _residual_block(
    coeffs: Sequence[int],
    tokens: dict[tuple[int, int], str],
    total_zeros: Mapping[int, Sequence[str]],
    max_coeff: int,
) -> str:
    """residual_block_cavlc() for coefficients in scan order."""
    where = [i for i, c in enumerate(coeffs) if c]
    levels = [coeffs[i] for i in reversed(where)]  # highest frequency first
    total = len(where)
    ones = 0
    while ones < min(3, total) and abs(levels[ones]) == 1:
        ones += 1
    bits = [tokens[(ones, total)]]
    if total == 0:
        return bits[0]
    bits += ["1" if level < 0 else "0" for level in levels[:ones]]
    suffix_length = 1 if total > 10 and ones < 3 else 0
    for k, level in enumerate(levels[ones:]):
        bits.append(_level(level, suffix_length, k == 0 and ones < 3))
        if suffix_length == 0:
            suffix_length = 1
        if abs(level) > 3 << (suffix_length - 1) and suffix_length < 6:
            suffix_length += 1
    zeros_left = where[-1] + 1 - total
    if total < max_coeff:
        bits.append(total_zeros[total][zeros_left])
    positions = where[::-1]
    for k in range(total - 1):
        if zeros_left <= 0:
            break
        run = positions[k] - positions[k + 1] - 1
        bits.append(_RUN_BEFORE[zeros_left][run])  # at most 3 zeros in a 2x2 block
        zeros_left -= run
    return "".join(bits)


@cache
def _luma_dc(difference: int) -> str:
    """Intra16x16DCLevel adding `difference` to every luma sample (QP 22: level 2d)."""
    coeffs = [2 * difference] + [0] * 15
    return _residual_block(coeffs, _TOKEN_NC0, _ZEROS_LUMA, 16)


@cache
def _chroma_dc(r0: int, r1: int, r2: int, r3: int) -> str:
    """ChromaDCLevel adding r0..r3 to the four 4x4 blocks (raster order) of one chroma component:
    at chroma QP 10 the decoded residual is (H c H) / 4, so the levels are c = H r H."""
    coeffs = (r0 + r1 + r2 + r3, r0 - r1 + r2 - r3, r0 + r1 - r2 - r3, r0 - r1 - r2 + r3)
    return _residual_block(coeffs, _TOKEN_CHROMA_DC, _ZEROS_CHROMA_DC, 4)


def _chroma_prediction(top: Sequence[int] | None, left: Sequence[int] | None) -> tuple[int, int, int, int]:
    """Intra chroma DC prediction (8.3.4) of the four 4x4 blocks of a macroblock whose neighbours
    are made of flat 4x4 blocks (`top`/`left`: their four block values, raster order)."""
    if top is not None and left is not None:
        t0, t1, l0, l1 = top[2], top[3], left[1], left[3]
        return (t0 + l0 + 1) >> 1, t1, l1, (t1 + l1 + 1) >> 1
    if top is not None:
        return top[2], top[3], top[2], top[3]
    if left is not None:
        return left[1], left[1], left[3], left[3]
    return 128, 128, 128, 128


def _macroblock(
    luma: int,
    cb: Sequence[int],
    cr: Sequence[int],
    top: tuple[int, Sequence[int], Sequence[int]] | None,
    left: tuple[int, Sequence[int], Sequence[int]] | None,
    mb_type_offset: int,
) -> str:
    """macroblock_layer() of an I_16x16 macroblock (DC prediction, luma and chroma) whose decoded
    samples are exactly `luma` and the chroma blocks `cb`, `cr`, given its decoded neighbours
    (luma, cb blocks, cr blocks) above and to the left. `mb_type_offset` is 5 in a P slice."""
    if top is not None and left is not None:
        predicted = (top[0] + left[0] + 1) >> 1
    elif top is not None or left is not None:
        predicted = (top or left)[0]  # type: ignore[index]
    else:
        predicted = 128
    residual = [_luma_dc(luma - predicted)]
    chroma = ""
    planes = (
        (cb, top[1] if top else None, left[1] if left else None),
        (cr, top[2] if top else None, left[2] if left else None),
    )
    for values, above, beside in planes:
        p = _chroma_prediction(above, beside)
        chroma += _chroma_dc(values[0] - p[0], values[1] - p[1], values[2] - p[2], values[3] - p[3])
    coded_chroma = chroma != "0101"  # both components have no level: leave chroma out
    mb_type = mb_type_offset + 3 + (4 if coded_chroma else 0)  # I_16x16_2_x_0: DC prediction
    if coded_chroma:
        residual.append(chroma)
    # mb_type, intra_chroma_pred_mode DC, mb_qp_delta 0, then the residual
    return _ue(mb_type) + "11" + "".join(residual)


def _rbsp(bits: str) -> bytes:
    """Bits with rbsp_trailing_bits, as bytes."""
    bits += "1"
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


_EMULATION = re.compile(b"\x00\x00(?=[\x00-\x03])")


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit: its header byte and the payload with emulation prevention bytes (7.4.1)."""
    return bytes([header]) + _EMULATION.sub(b"\x00\x00\x03", rbsp)


_SHADES = 1024  # the gradient's colours, one per 1/1024 of its period


@cache
def _palette() -> tuple[tuple[int, int, int], ...]:
    """Y, Cb, Cr (BT.709, limited range) along one period of the gradient."""
    shades = []
    for k in range(_SHADES):
        phase = 2 * math.pi * k / _SHADES
        r, g, b = (0.5 + 0.35 * math.sin(phase + n * 2 * math.pi / 3) for n in range(3))
        luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
        shades.append(
            (round(16 + 219 * luma), round(128 + 224 * (b - luma) / 1.8556), round(128 + 224 * (r - luma) / 1.5748))
        )
    return tuple(shades)


class Picture:
    """The picture of a `width` x `height` clip on its macroblock grid: one luma value per
    macroblock, one Cb and one Cr value per 4x4 chroma block (raster order in the macroblock)."""

    def __init__(self, width: int, height: int) -> None:
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"a picture's sides are even and at least 16 pixels, not {width}x{height}")
        self.width, self.height = width, height
        self.mb_width, self.mb_height = -(-width // 16), -(-height // 16)
        self.luma: list[list[int]] = []
        self.cb: list[list[tuple[int, int, int, int]]] = []
        self.cr: list[list[tuple[int, int, int, int]]] = []
        palette = _palette()
        # the gradient's phase, 0.6 x + 0.4 y in periods, at the centres of the chroma blocks (8x8 samples)
        xs = [int(_SHADES * 0.6 * (8 * bx + 4) / width) for bx in range(2 * self.mb_width)]
        ys = [int(_SHADES * 0.4 * (8 * by + 4) / height) for by in range(2 * self.mb_height)]
        for my in range(self.mb_height):
            luma, cb, cr = [], [], []
            top, bottom = ys[2 * my], ys[2 * my + 1]
            for mx in range(self.mb_width):
                left, right = xs[2 * mx], xs[2 * mx + 1]
                y0, b0, r0 = palette[(left + top) % _SHADES]
                y1, b1, r1 = palette[(right + top) % _SHADES]
                y2, b2, r2 = palette[(left + bottom) % _SHADES]
                y3, b3, r3 = palette[(right + bottom) % _SHADES]
                luma.append((y0 + y1 + y2 + y3) // 4)
                cb.append((b0, b1, b2, b3))
                cr.append((r0, r1, r2, r3))
            self.luma.append(luma)
            self.cb.append(cb)
            self.cr.append(cr)

    def bar_column(self, frame: int, frames: int) -> int | None:
        """The macroblock column of the white bar in `frame` of `frames`; None in the IDR frame."""
        return None if frame == 0 else frame * self.mb_width // frames

    def planes(self, bar: int | None = None) -> tuple[bytes, bytes, bytes]:
        """The decoded Y, Cb and Cr planes (cropped to the picture's size), with the bar in
        macroblock column `bar` when given: what a decoder shows."""
        luma = [list(row) for row in self.luma]
        cb = [list(row) for row in self.cb]
        cr = [list(row) for row in self.cr]
        if bar is not None:
            for my in range(self.mb_height):
                luma[my][bar], cb[my][bar], cr[my][bar] = BAR[0], (BAR[1],) * 4, (BAR[2],) * 4
        y_rows = [b"".join(bytes([value]) * 16 for value in row)[: self.width] for row in luma]
        y_plane = b"".join(y_rows[i // 16] for i in range(self.height))
        chroma = []
        for blocks in (cb, cr):
            rows = []
            for row in blocks:
                top = b"".join(bytes([b[0]]) * 4 + bytes([b[1]]) * 4 for b in row)[: self.width // 2]
                bottom = b"".join(bytes([b[2]]) * 4 + bytes([b[3]]) * 4 for b in row)[: self.width // 2]
                rows += [top] * 4 + [bottom] * 4
            chroma.append(b"".join(rows[: self.height // 2]))
        return y_plane, chroma[0], chroma[1]


@dataclass(frozen=True)
class AacTrack:
    """AAC frames and their sample entry (`stsd`), taken from an MP4 file."""

    stsd: bytes  # the whole `stsd` box: mp4a with its esds
    frames: tuple[bytes, ...]  # frames to cycle (the source's last, shorter frame left out)
    first: bytes  # the source's first frame (the encoder's priming), played once at the start
    sample_rate: int
    frame_samples: int = 1024

    @classmethod
    def from_mp4(cls, data: bytes) -> AacTrack:
        """The first sound track of an MP4 file (chunk offsets from `stco`)."""
        for trak in _children(data, _child(data, b"moov", 0, len(data)), b"trak"):
            mdia = _child(data, b"mdia", *trak)
            hdlr = _child(data, b"hdlr", *mdia)
            if data[hdlr[0] + 8 : hdlr[0] + 12] != b"soun":
                continue
            mdhd = _child(data, b"mdhd", *mdia)
            at = mdhd[0] + (20 if data[mdhd[0]] == 1 else 12)
            sample_rate = struct.unpack(">I", data[at : at + 4])[0]
            stbl = _child(data, b"stbl", *_child(data, b"minf", *mdia))
            stsd = _child(data, b"stsd", *stbl)
            stsz = _child(data, b"stsz", *stbl)
            size, count = struct.unpack(">II", data[stsz[0] + 4 : stsz[0] + 12])
            sizes = [size] * count if size else _table(data, stsz, 1, skip=8)
            offsets = _table(data, _child(data, b"stco", *stbl), 1)
            runs = _table(data, _child(data, b"stsc", *stbl), 3)
            deltas = _table(data, _child(data, b"stts", *stbl), 2)
            frames: list[bytes] = []
            for k, (first_chunk, per_chunk, _) in enumerate(runs):
                last_chunk = runs[k + 1][0] if k + 1 < len(runs) else len(offsets) + 1
                for chunk in range(first_chunk, last_chunk):
                    at = offsets[chunk - 1]
                    for size in sizes[len(frames) : len(frames) + per_chunk]:
                        frames.append(data[at : at + size])
                        at += size
            frame_samples = deltas[0][1]
            if deltas[-1][1] < frame_samples:  # the last frame ends early: do not repeat it
                frames.pop()
            return cls(data[stsd[0] - 8 : stsd[1]], tuple(frames[1:]), frames[0], sample_rate, frame_samples)
        raise ValueError("no sound track in the MP4 file")

    def samples(self, count: int) -> Iterator[bytes]:
        """`count` frames: the first one, then the others over and over."""
        if count > 0:
            yield self.first
        for k in range(count - 1):
            yield self.frames[k % len(self.frames)]


def _child(data: bytes, kind: bytes, start: int, end: int) -> tuple[int, int]:
    """(payload start, end) of the first box of that kind between start and end."""
    for found in _children(data, (start, end), kind):
        return found
    raise ValueError(f"no {kind.decode()} box")


def _children(data: bytes, span: tuple[int, int], kind: bytes) -> Iterator[tuple[int, int]]:
    offset, end = span
    while offset + 8 <= end:
        size, found = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
        elif size == 0:
            size = end - offset
        if size < header:
            raise ValueError(f"corrupt {found!r} box")
        if found == kind:
            yield offset + header, offset + size
        offset += size


def _table(data: bytes, box: tuple[int, int], columns: int, skip: int = 4) -> list:
    """The entries of a full box's table: version/flags (and more, `skip` bytes), a count, rows."""
    start = box[0] + skip
    (count,) = struct.unpack(">I", data[start : start + 4])
    values = struct.unpack(f">{count * columns}I", data[start + 4 : start + 4 + 4 * count * columns])
    return list(values) if columns == 1 else [values[i : i + columns] for i in range(0, len(values), columns)]


def frame_count(seconds: float) -> int:
    """Whole frames at 24 fps nearest to `seconds` (at least one)."""
    return max(1, math.floor(seconds * FPS + 0.5))


def _level_idc(mb_width: int, mb_height: int) -> int:
    frame_size = mb_width * mb_height
    for level_idc, per_second, max_size in _LEVELS:
        side = math.isqrt(8 * max_size)
        if frame_size <= max_size and frame_size * FPS <= per_second and max(mb_width, mb_height) <= side:
            return level_idc
    return _LEVELS[-1][0]


class _Encoder:
    """The NAL units of one clip's video."""

    def __init__(self, picture: Picture, frames: int) -> None:
        self.picture, self.frames = picture, frames
        self.level = _level_idc(picture.mb_width, picture.mb_height)
        self.poc_bits = max(4, min(16, (4 * frames).bit_length()))  # POC 2n, the IDR frame the anchor
        self._bars: dict[int, str] = {}  # slice data of the P frames, by the bar's column

    def sps(self) -> bytes:
        p = self.picture
        crop_right, crop_bottom = 16 * p.mb_width - p.width, 16 * p.mb_height - p.height
        bits = [
            _u(8, 66), _u(8, 0b11000000), _u(8, self.level),  # Constrained Baseline: constraint_set0 and 1
            _ue(0), _ue(0), _ue(0), _ue(self.poc_bits - 4),  # sps id; frame_num 4 bits; POC type 0
            _ue(1), "0",  # one reference frame, no gaps in frame_num
            _ue(p.mb_width - 1), _ue(p.mb_height - 1), "1", "1",  # frames only, direct 8x8 inference
        ]  # fmt: skip
        if crop_right or crop_bottom:  # in 2-sample units for 4:2:0
            bits += ["1", _ue(0), _ue(crop_right // 2), _ue(0), _ue(crop_bottom // 2)]
        else:
            bits.append("0")
        bits += [
            "1", "0", "0",  # VUI: no sample aspect ratio, no overscan info
            "1", _u(3, 5), "0", "1", _u(8, 1), _u(8, 1), _u(8, 1),  # limited range, BT.709
            "0",  # no chroma location
            "1", _u(32, 1), _u(32, 2 * FPS), "1",  # timing: 24 fps, fixed
            "0", "0", "0",  # no HRD, no pic_struct
            "1", "1", _ue(0), _ue(0), _ue(16), _ue(16), _ue(0), _ue(1),  # no reordering, one frame buffered
        ]  # fmt: skip
        return _nal(0x67, _rbsp("".join(bits)))

    @staticmethod
    def pps() -> bytes:
        bits = [
            _ue(0), _ue(0), "0", "0", _ue(0),  # ids, CAVLC, no field POC, one slice group
            _ue(0), _ue(0), "0", "00",  # one reference index, no weighted prediction
            _se(QP - 26), _se(0), _se(CHROMA_QP_OFFSET),
            "1", "1", "0",  # deblocking control present, constrained intra prediction, no redundant pictures
        ]  # fmt: skip
        return _nal(0x68, _rbsp("".join(bits)))

    def idr(self) -> bytes:
        p = self.picture
        # first_mb 0, slice_type I, pps 0, frame_num 0, idr_pic_id 0, POC 0,
        # no_output_of_prior_pics 0, long_term_reference 0, slice_qp_delta 0, deblocking off
        bits = ["1", _ue(2), "1", _u(4, 0), "1", _u(self.poc_bits, 0), "00", "1", _ue(1)]
        above: list[tuple[int, Sequence[int], Sequence[int]]] | None = None
        for my in range(p.mb_height):
            row = list(zip(p.luma[my], p.cb[my], p.cr[my]))
            left = None
            for mx, block in enumerate(row):
                bits.append(_macroblock(*block, above[mx] if above else None, left, 0))
                left = block
            above = row  # type: ignore[assignment]
        return _nal(0x65, _rbsp("".join(bits)))

    def _bar_data(self, column: int) -> str:
        """slice_data() of a P frame: every macroblock skipped but the intra bar in `column`.
        Intra prediction is constrained to intra neighbours, so the bar's macroblocks predict
        from the one above only (the top one from nothing): the same bits in every column."""
        if column not in self._bars:
            p = self.picture
            bar = (BAR[0], (BAR[1],) * 4, (BAR[2],) * 4)
            top, below = _macroblock(*bar, None, None, 5), _macroblock(*bar, bar, None, 5)
            bits = _ue(column) + top + (_ue(p.mb_width - 1) + below) * (p.mb_height - 1)
            if column < p.mb_width - 1:
                bits += _ue(p.mb_width - 1 - column)
            self._bars[column] = bits
        return self._bars[column]

    def p_frame(self, frame: int) -> bytes:
        column = self.picture.bar_column(frame, self.frames)
        assert column is not None
        # first_mb 0, slice_type P, pps 0, frame_num 1, POC 2n, no num_ref_idx override, no list
        # modification, (non-reference: no marking), slice_qp_delta 0, deblocking off
        header = "1" + _ue(0) + "1" + _u(4, 1) + _u(self.poc_bits, (2 * frame) % (1 << self.poc_bits)) + "00" + "1"
        return _nal(0x01, _rbsp(header + _ue(1) + self._bar_data(column)))


# ---------------------------------------------------------------- ISO BMFF


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _stsc(chunk_sizes: Sequence[int]) -> bytes:
    runs: list[tuple[int, int]] = []
    for chunk, count in enumerate(chunk_sizes, 1):
        if not runs or runs[-1][1] != count:
            runs.append((chunk, count))
    return _full(b"stsc", 0, 0, struct.pack(">I", len(runs)), *(struct.pack(">III", c, n, 1) for c, n in runs))


def _trak(
    track_id: int,
    duration: int,
    timescale: int,
    media_duration: int,
    handler: bytes,
    header: bytes,
    stsd: bytes,
    stts: Sequence[tuple[int, int]],
    samples: Sequence[bytes],
    chunk_sizes: Sequence[int],
    chunk_offsets: Sequence[int],
    width: int = 0,
    height: int = 0,
    sync: bool = False,
) -> bytes:
    audio = handler == b"soun"
    tkhd = _full(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, track_id, 0, duration), bytes(8),
        struct.pack(">hhhH", 0, 0, 0x100 if audio else 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    name = b"SoundHandler\0" if audio else b"VideoHandler\0"
    stbl = [
        stsd,
        _full(b"stts", 0, 0, struct.pack(">I", len(stts)), *(struct.pack(">II", n, d) for n, d in stts)),
    ]
    if sync:
        stbl.append(_full(b"stss", 0, 0, struct.pack(">II", 1, 1)))
    stbl += [
        _stsc(chunk_sizes),
        _full(b"stsz", 0, 0, struct.pack(f">II{len(samples)}I", 0, len(samples), *map(len, samples))),
        _full(b"stco", 0, 0, struct.pack(f">I{len(chunk_offsets)}I", len(chunk_offsets), *chunk_offsets)),
    ]
    minf = _box(
        b"minf",
        header,
        _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
        _box(b"stbl", *stbl),
    )
    mdia = _box(
        b"mdia",
        _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, media_duration, 0x55C4, 0)),  # language und
        _full(b"hdlr", 0, 0, bytes(4), handler, bytes(12), name),
        minf,
    )
    return _box(b"trak", tkhd, mdia)


def make_mp4(seconds: float, width: int, height: int, audio: AacTrack | None = None) -> bytes:
    """A playable MP4 of `frame_count(seconds)` frames, `width` x `height` (even, at least 16),
    with the AAC track `audio` when given, `moov` before `mdat`."""
    frames = frame_count(seconds)
    picture = Picture(width, height)
    encoder = _Encoder(picture, frames)
    sps, pps = encoder.sps(), encoder.pps()
    nals = [encoder.idr()] + [encoder.p_frame(i) for i in range(1, frames)]
    video = [struct.pack(">I", len(nal)) + nal for nal in nals]
    movie_duration = frames * MOVIE_TIMESCALE // FPS
    avcc = _box(
        b"avcC",
        bytes([1, 66, 0b11000000, encoder.level, 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
        bytes([1]), struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    avc1 = _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
        struct.pack(">II", 0x480000, 0x480000), bytes(4), struct.pack(">H", 1), bytes(32),
        struct.pack(">Hh", 0x18, -1), avcc,
    )  # fmt: skip
    video_chunks = [min(FPS, frames - start) for start in range(0, frames, FPS)]
    tracks = [(video, video_chunks)]
    sounds: list[bytes] = []
    audio_chunks: list[int] = []
    if audio is not None:
        rate, per_frame = audio.sample_rate, audio.frame_samples
        total = frames * rate // FPS  # the audio ends with the video (to half a sample)
        count = -(-total // per_frame)
        sounds = list(audio.samples(count))
        # chunk n holds the frames that start in second n, beside the video's chunk n
        starts = [-(-n * rate // per_frame) for n in range(len(video_chunks) + 1)]
        audio_chunks = [min(b, count) - min(a, count) for a, b in pairwise(starts)]
        audio_chunks[-1] += count - sum(audio_chunks)
        tracks.append((sounds, audio_chunks))

    def moov(offsets: Sequence[Sequence[int]]) -> bytes:
        traks = [
            _trak(
                1, movie_duration, VIDEO_TIMESCALE, frames * _TICKS, b"vide", _full(b"vmhd", 0, 1, bytes(8)),
                _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1), [(frames, _TICKS)], video,
                video_chunks, offsets[0], width, height, sync=True,
            )
        ]  # fmt: skip
        if audio is not None:
            rate, per_frame = audio.sample_rate, audio.frame_samples
            total = frames * rate // FPS
            count = len(sounds)
            last = total - (count - 1) * per_frame
            stts = [(count, per_frame)] if last == per_frame else [(count - 1, per_frame), (1, last)]
            traks.append(
                _trak(
                    2, total * MOVIE_TIMESCALE // rate, rate, total, b"soun", _full(b"smhd", 0, 0, bytes(4)),
                    audio.stsd, [entry for entry in stts if entry[0]], sounds, audio_chunks, offsets[1],
                )
            )  # fmt: skip
        mvhd = _full(
            b"mvhd", 0, 0,
            struct.pack(">IIIIIH", 0, 0, MOVIE_TIMESCALE, movie_duration, 0x10000, 0x100), bytes(10), _MATRIX,
            bytes(24), struct.pack(">I", len(traks) + 1),
        )  # fmt: skip
        return _box(b"moov", mvhd, *traks)

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    placeholder = [[0] * len(chunks) for _, chunks in tracks]
    at = len(ftyp) + len(moov(placeholder)) + 8  # mdat's payload
    offsets: list[list[int]] = [[] for _ in tracks]
    payload: list[bytes] = []
    next_sample = [0] * len(tracks)
    for chunk in range(len(video_chunks)):
        for t, (samples, chunks) in enumerate(tracks):
            offsets[t].append(at)
            for sample in samples[next_sample[t] : next_sample[t] + chunks[chunk]]:
                payload.append(sample)
                at += len(sample)
            next_sample[t] += chunks[chunk]
    return b"".join([ftyp, moov(offsets), struct.pack(">I4s", 8 + sum(map(len, payload)), b"mdat"), *payload])


# ---------------------------------------------------------------- stills: PNG, JPEG, WebP


@lru_cache(maxsize=8192)
def _rgb(y: int, cb: int, cr: int) -> bytes:
    """BT.709 limited-range Y'CbCr to 8-bit R'G'B'."""
    luma, pb, pr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    r, b = luma + 1.5748 * pr, luma + 1.8556 * pb
    g = (luma - 0.2126 * r - 0.0722 * b) / 0.7152
    return bytes(min(255, max(0, round(255 * v))) for v in (r, g, b))


def _still_picture(width: int, height: int) -> Picture:
    """The picture a `width` x `height` still shows: drawn at the next even size (at least 16)
    and cropped."""
    if width < 1 or height < 1:
        raise ValueError(f"a still has at least one pixel a side, not {width}x{height}")
    return Picture(max(16, width + width % 2), max(16, height + height % 2))


def still_colours(width: int, height: int) -> list[list[bytes]]:
    """The RGB colour (3 bytes) of every 8x8 block of a `width` x `height` still, by block row
    and column, the last row and column covering the picture's macroblocks to the end (past the
    still's edge when its size is not a multiple of 16): what every pixel of the block shows."""
    picture = _still_picture(width, height)
    rows = []
    for my in range(picture.mb_height):
        for half in (0, 1):
            rows.append(
                [
                    _rgb(y, cb[2 * half + k], cr[2 * half + k])
                    for y, cb, cr in zip(picture.luma[my], picture.cb[my], picture.cr[my])
                    for k in (0, 1)
                ]
            )
    return rows


def make_png(width: int, height: int) -> bytes:
    """The clip's picture (its first frame) as an 8-bit RGB PNG of `width` x `height`: the
    picture is drawn at the next even size and cropped."""
    rows: list[bytes] = []
    same_as_above = b"\x02" + bytes(3 * width)  # filter Up: a row like the one above it
    for colours in still_colours(width, height):
        pixels = b"".join(rgb * 8 for rgb in colours)
        rows += [b"\x00" + pixels[: 3 * width]] + [same_as_above] * 7
    raw = b"".join(rows[:height])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


# JPEG (ITU-T T.81 baseline, JFIF 1.02). The still's 8x8 blocks are flat, so every luma block
# is its DC coefficient alone (quantiser 8: the level is the sample minus 128). A chroma block
# of 4:2:0 covers 16x16 pixels, four flat 8x8 blocks: its samples are four flat 4x4 quadrants,
# which takes AC coefficients too (odd frequencies along the first row and column and at odd x
# odd positions, 24 at most). Chroma quantisers are 2 (DC: exact) and 1 (AC), and the AC
# levels are searched (`_chroma_fit`) so that the exact inverse DCT lands within 0.5 of every
# sample: a decoder with an accurate IDCT (FFmpeg's, libjpeg's islow and float) gives the
# samples back exactly.

_ZIGZAG = tuple(
    row * 8 + (diagonal - row)
    for diagonal in range(15)
    for row in (
        range(min(diagonal, 7), max(0, diagonal - 7) - 1, -1)
        if diagonal % 2 == 0
        else range(max(0, diagonal - 7), min(diagonal, 7) + 1)
    )
)  # raster index (v * 8 + u) of each coefficient in zigzag order
_AC_SYMBOLS = sorted([0x00, 0xF0] + [run << 4 | size for run in range(16) for size in range(1, 11)])
# Annex K.3: code counts by length 1..16 and the symbols by code; the AC symbols' 16-bit codes
# (the tail) are the symbols not listed before them, in increasing order.
_DC_LUMA = (bytes((0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)), bytes(range(12)))
_DC_CHROMA = (bytes((0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0)), bytes(range(12)))
_AC_LUMA_HEAD = bytes.fromhex("01020300 04110512 21314106 13516107 22711432 8191a108 2342b1c1 1552d1f0 24336272 82")
_AC_CHROMA_HEAD = bytes.fromhex(
    "00010203 11040521 31061241 51076171 13223281 08144291 a1b1c109 233352f0 156272d1 0a162434 e125f1"
)
_AC_LUMA = (
    bytes((0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D)),
    _AC_LUMA_HEAD + bytes(s for s in _AC_SYMBOLS if s not in _AC_LUMA_HEAD),
)
_AC_CHROMA = (
    bytes((0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77)),
    _AC_CHROMA_HEAD + bytes(s for s in _AC_SYMBOLS if s not in _AC_CHROMA_HEAD),
)
_LUMA_QUANT = (8,) + (1,) * 63
_CHROMA_QUANT = (2,) + (1,) * 63


@cache
def _jpeg_codes(table: tuple[bytes, bytes]) -> dict[int, str]:
    """The codes (strings of bits) of a Huffman table given as counts by length and symbols."""
    counts, symbols = table
    codes, code, k = {}, 0, 0
    for length, count in enumerate(counts, 1):
        for _ in range(count):
            codes[symbols[k]] = format(code, f"0{length}b")
            code, k = code + 1, k + 1
        code <<= 1
    return codes


@cache
def _magnitude(value: int) -> tuple[int, str]:
    """A coefficient's size category and its additional bits (F.1.2.1)."""
    size = abs(value).bit_length()
    if size == 0:
        return 0, ""
    return size, format(value if value > 0 else value + (1 << size) - 1, f"0{size}b")


@cache
def _dc_bits(table: tuple[bytes, bytes], difference: int) -> str:
    size, extra = _magnitude(difference)
    return _jpeg_codes(table)[size] + extra


def _ac_bits(levels: Sequence[int], table: tuple[bytes, bytes]) -> str:
    """The AC coefficients (`levels` in raster order) of one block: run/size codes, ZRL for 16
    zeros, EOB after the last non-zero one (unless it is the 63rd)."""
    codes, bits, run = _jpeg_codes(table), [], 0
    scan = [levels[i] for i in _ZIGZAG[1:]]
    last = max((k for k, level in enumerate(scan) if level), default=-1)
    for level in scan[: last + 1]:
        if not level:
            run += 1
            continue
        while run > 15:
            bits.append(codes[0xF0])
            run -= 16
        size, extra = _magnitude(level)
        bits += [codes[run << 4 | size], extra]
        run = 0
    if last < 62:
        bits.append(codes[0x00])
    return "".join(bits)


_ODD = (1, 3, 5, 7)
_COS = tuple(tuple(math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)) for u in range(8))
_STEP = {u: sum(_COS[u][:4]) - sum(_COS[u][4:]) for u in _ODD}  # a +1 / -1 step's DCT sum
_EDGE = {u: tuple(_COS[u][x] / (4 * math.sqrt(2)) for x in range(4)) for u in _ODD}  # F(u, 0) = 1 on x = 0..3
_CROSS = {(u, v): tuple(_COS[u][x] * _COS[v][y] / 4 for x in range(4) for y in range(4)) for u in _ODD for v in _ODD}
FIT_LIMIT = 0.4  # the largest error of the exact inverse DCT a chroma block may have (0.5 rounds wrong)
# (largest error, about how many bits, levels, absolute errors at the quadrant's samples)
_Fit = tuple[float, int, tuple[int, ...], tuple[float, ...]]


def _level_bits(levels: Iterable[int]) -> int:
    """About how many bits AC levels take (each as if it followed no zeros)."""
    codes = _jpeg_codes(_AC_CHROMA)
    return sum(len(codes[size]) + size for size in (abs(level).bit_length() for level in levels) if size)


def _choices(fits: Iterable[_Fit], keep: int) -> tuple[_Fit, ...]:
    """The `keep` most exact fits, and those within `FIT_LIMIT` that no other beats on both
    error and bits."""
    ranked = sorted(set(fits))
    kept = ranked[:keep]
    for fit in ranked[keep:]:
        if fit[0] <= FIT_LIMIT and fit[1] < min(kept_fit[1] for kept_fit in kept):
            kept.append(fit)
    return tuple(kept)


@cache
def _edge_fits(step: int, keep: int) -> tuple[_Fit, ...]:
    """Choices of the four levels F(1..7 odd, 0) painting `step` / 4 on the left half of a block
    and -`step` / 4 on the right (errors at x = 0..3), each level 0 or its coefficient rounded
    down or up. The same levels on F(0, v) paint a step between the top and bottom halves."""
    exact = [step * _STEP[u] / (2 * math.sqrt(2)) for u in _ODD]
    options = [
        [(level, _level_bits((level,)), [level * b for b in _EDGE[u]]) for level in {0, math.floor(e), math.ceil(e)}]
        for u, e in zip(_ODD, exact)
    ]
    fits = []
    for picks in product(*options):
        errors = tuple(abs(a + b + c + d - step / 4) for a, b, c, d in zip(*(pick[2] for pick in picks)))
        fits.append((max(errors), sum(pick[1] for pick in picks), tuple(pick[0] for pick in picks), errors))
    return _choices(fits, keep)


@cache
def _cross_fits(step: int, keep: int) -> tuple[_Fit, ...]:
    """Choices of the sixteen levels F(u, v), u and v odd, painting `step` / 4 on the top-left
    and bottom-right quadrants and -`step` / 4 on the others (errors at x, y = 0..3): descents
    from the rounded coefficients (and from none, for small steps), their neighbours and their
    levels one fewer."""
    keys = list(_CROSS)
    exact = [step * _STEP[u] * _STEP[v] / 16 for u, v in keys]

    def fit(levels: Sequence[int]) -> _Fit:
        errors = [sum(level * _CROSS[k][i] for k, level in zip(keys, levels)) - step / 4 for i in range(16)]
        return max(map(abs, errors)), _level_bits(levels), tuple(levels), tuple(map(abs, errors))

    fits = []
    for start in [[round(e) for e in exact]] + ([[0] * 16] if abs(step) <= 2 else []):
        levels = start
        errors = [sum(level * _CROSS[k][i] for k, level in zip(keys, levels)) - step / 4 for i in range(16)]
        score = (max(map(abs, errors)), sum(e * e for e in errors))
        while True:
            best = None
            for i, key in enumerate(keys):
                for sign in (1, -1):
                    moved = [e + sign * b for e, b in zip(errors, _CROSS[key])]
                    moved_score = (max(map(abs, moved)), sum(e * e for e in moved))
                    if moved_score < (best[0] if best else score):
                        best = (moved_score, i, sign, moved)
            if best is None:
                break
            score, i, sign, errors = best
            levels[i] += sign
        fits.append(fit(levels))
        for i in range(16):
            for near in (levels[i] - 1, levels[i] + 1, 0):
                fits.append(fit(levels[:i] + [near] + levels[i + 1 :]))
    return _choices(fits, keep)


@cache
def _chroma_fit(across: int, down: int, diagonal: int) -> tuple[float, tuple[int, ...]]:
    """AC levels (raster order, quantiser 1) of a chroma block of four flat quadrants q00 q01 /
    q10 q11, given `across` = q00 - q01 + q10 - q11, `down` = q00 + q01 - q10 - q11 and
    `diagonal` = q00 - q01 - q10 + q11, and the largest error of the exact inverse DCT.

    The errors of the three parts are odd about the block's middle lines, so the largest error
    over the block is the largest over one quadrant of |across part| + |down part| + |diagonal
    part|. Of the combinations of each part's choices, the one of fewest bits within
    `FIT_LIMIT` is taken, or else the most exact."""
    within: tuple[float, _Fit, _Fit, _Fit] | None = None  # the fewest bits within the limit
    most_exact: tuple[float, _Fit, _Fit, _Fit] | None = None
    for keep in (4, 12):  # more choices only when the first few give nothing within the limit
        combinations = sorted(
            (across_fit[1] + down_fit[1] + cross_fit[1], k, across_fit, down_fit, cross_fit)
            for k, (across_fit, down_fit, cross_fit) in enumerate(
                product(_edge_fits(across, keep), _edge_fits(down, keep), _cross_fits(diagonal, keep))
            )
        )
        within_bits = 0
        for bits, _, across_fit, down_fit, cross_fit in combinations:
            if within is not None and bits > within_bits:
                break
            across_errors, down_errors, cross_errors = across_fit[3], down_fit[3], cross_fit[3]
            error = max(across_errors[x] + down_errors[y] + cross_errors[4 * x + y] for x in range(4) for y in range(4))
            if error <= FIT_LIMIT and (within is None or error < within[0]):
                within, within_bits = (error, across_fit, down_fit, cross_fit), bits
            if most_exact is None or error < most_exact[0]:
                most_exact = (error, across_fit, down_fit, cross_fit)
        if within is not None:
            break
    error, across_fit, down_fit, cross_fit = within or most_exact  # type: ignore[misc]
    levels = [0] * 64
    for u, level in zip(_ODD, across_fit[2]):
        levels[u] = level
    for v, level in zip(_ODD, down_fit[2]):
        levels[8 * v] = level
    for (u, v), level in zip(_CROSS, cross_fit[2]):
        levels[8 * v + u] = level
    return error, tuple(levels)


@cache
def _chroma_ac(across: int, down: int, diagonal: int) -> str:
    return _ac_bits(_chroma_fit(across, down, diagonal)[1], _AC_CHROMA)


@lru_cache(maxsize=8192)
def _jfif(rgb: bytes) -> tuple[int, int, int]:
    """8-bit R'G'B' to JFIF Y'CbCr (BT.601, full range)."""
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return tuple(min(255, max(0, round(v))) for v in (y, 128 + (b - y) / 1.772, 128 + (r - y) / 1.402))  # type: ignore[return-value]


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, 2 + len(payload)) + payload


def make_jpeg(width: int, height: int) -> bytes:
    """The clip's picture as a baseline JPEG (JFIF, Y'CbCr 4:2:0, 8 bits, the Huffman tables of
    Annex K) of `width` x `height`, any size from 1x1: the PNG's colours in JFIF's Y'CbCr, each
    8x8 block one luma value and a quarter of a chroma block. Sizes that are not multiples of
    16 are coded in whole 16x16 MCUs, the picture going on past the edge."""
    if width > 65535 or height > 65535:
        raise ValueError(f"a JPEG still has at most 65535 pixels a side, not {width}x{height}")
    blocks = [[_jfif(rgb) for rgb in row] for row in still_colours(width, height)]
    eob = _jpeg_codes(_AC_LUMA)[0x00]
    bits: list[str] = []
    previous = [0, 0, 0]
    for top, bottom in zip(blocks[::2], blocks[1::2]):
        for mx in range(0, len(top), 2):
            quadrants = (top[mx], top[mx + 1], bottom[mx], bottom[mx + 1])
            for luma, _, _ in quadrants:
                level = luma - 128
                bits += [_dc_bits(_DC_LUMA, level - previous[0]), eob]
                previous[0] = level
            for component in (1, 2):
                q00, q01, q10, q11 = (quadrant[component] for quadrant in quadrants)
                level = q00 + q01 + q10 + q11 - 512  # DC 8 x (mean - 128), quantiser 2
                bits += [
                    _dc_bits(_DC_CHROMA, level - previous[component]),
                    _chroma_ac(q00 - q01 + q10 - q11, q00 + q01 - q10 - q11, q00 - q01 - q10 + q11),
                ]
                previous[component] = level
    scan = "".join(bits)
    scan += "1" * (-len(scan) % 8)  # pad with 1 bits
    data = int(scan, 2).to_bytes(len(scan) // 8, "big").replace(b"\xff", b"\xff\x00")  # stuffed
    tables = b"".join(
        bytes([kind]) + counts + symbols
        for kind, (counts, symbols) in ((0x00, _DC_LUMA), (0x10, _AC_LUMA), (0x01, _DC_CHROMA), (0x11, _AC_CHROMA))
    )
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\0" + bytes([1, 2, 0]) + struct.pack(">HH", 1, 1) + bytes(2)),  # 1:1 pixels
            _segment(0xDB, bytes([0]) + bytes(_LUMA_QUANT) + bytes([1]) + bytes(_CHROMA_QUANT)),  # zigzag order
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])),
            _segment(0xC4, tables),
            _segment(0xDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])),
            data,
            b"\xff\xd9",
        ]
    )


# WebP lossless (VP8L, RFC 9649). One transform, a predictor (ClampAddSubtractFull, L + T - TL,
# everywhere, and the format's own rules on the top row and left column): on a picture of flat
# 8x8 blocks every residual is zero but at the blocks' top-left pixels, where it is a second
# difference of the colours (small, now and then zero). The zeros between are backward
# references: copies of the row above (distance code 1) as far as it is zero there, else of the
# pixel to the left (distance code 2), at most 4096 pixels each. One group of prefix codes
# (canonical, at most 15 bits, Huffman codes of the symbols' counts), no colour cache: the
# residuals' colours are as spread as their channels are (subtract green and a cache were
# tried: no smaller).

_MAX_COPY = 4096
_CODE_LENGTH_ORDER = (17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


def _prefix_value(value: int) -> tuple[int, int, int]:
    """(prefix code, extra bits count, extra bits) of a length or distance (RFC 9649 3.6.2.2)."""
    if value <= 4:
        return value - 1, 0, 0
    high = (value - 1).bit_length() - 1
    second = ((value - 1) >> (high - 1)) & 1
    return 2 * high + second, high - 1, (value - 1) & ((1 << (high - 1)) - 1)


def _code_lengths(counts: Sequence[int], limit: int) -> list[int]:
    """Huffman code lengths of at most `limit` bits for symbols of these counts (0: unused);
    when the plain Huffman code is too long the smallest counts are raised until it fits."""
    used = [symbol for symbol, count in enumerate(counts) if count]
    lengths = [0] * len(counts)
    if len(used) == 1:
        lengths[used[0]] = 1  # a lone symbol: the decoder reads no bits for it
    if len(used) <= 1:
        return lengths
    floor = 1
    while True:
        heap = [(max(counts[symbol], floor), k, [symbol]) for k, symbol in enumerate(used)]
        heapq.heapify(heap)
        depth = dict.fromkeys(used, 0)
        k = len(heap)
        while len(heap) > 1:
            first, second = heapq.heappop(heap), heapq.heappop(heap)
            for symbol in first[2] + second[2]:
                depth[symbol] += 1
            heapq.heappush(heap, (first[0] + second[0], k, first[2] + second[2]))
            k += 1
        if max(depth.values()) <= limit:
            for symbol, bits in depth.items():
                lengths[symbol] = bits
            return lengths
        floor *= 2


def _canonical(lengths: Sequence[int]) -> dict[int, str]:
    """The canonical codes of these code lengths, each as the bits to write in the order a VP8L
    writer packs them (its first bit last); a lone symbol takes no bits."""
    used = sorted((length, symbol) for symbol, length in enumerate(lengths) if length)
    if len(used) == 1:
        return {used[0][1]: ""}
    codes, code, previous = {}, 0, 0
    for length, symbol in used:
        code <<= length - previous
        codes[symbol] = format(code, f"0{length}b")[::-1]
        code, previous = code + 1, length
    return codes


class _Bits:
    """A VP8L bit writer: values are packed from the least significant bit of each byte on."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def put(self, bits: int, value: int) -> None:
        if bits:
            self.pieces.append(format(value, f"0{bits}b"))

    def code(self, bits: str) -> None:
        self.pieces.append(bits)

    def data(self) -> bytes:
        packed = "".join(reversed(self.pieces))
        return int(packed or "0", 2).to_bytes(-(-len(packed) // 8), "little")


def _prefix_code(out: _Bits, counts: Sequence[int]) -> dict[int, str]:
    """Write the prefix code for symbols of these counts (RFC 9649 3.7.2.1) and return its codes:
    a simple code for one or two symbols below 256, else a normal one."""
    used = [symbol for symbol, count in enumerate(counts) if count] or [0]
    if len(used) <= 2 and used[-1] < 256:
        out.put(1, 1)  # simple
        out.put(1, len(used) - 1)
        first_8bits = int(used[0] > 1)
        out.put(1, first_8bits)
        out.put(1 + 7 * first_8bits, used[0])
        if len(used) == 2:
            out.put(8, used[1])
            return {used[0]: "0", used[1]: "1"}
        return {used[0]: ""}
    lengths = _code_lengths(counts, 15)
    # the lengths, run-length coded: (code length code, extra bits count, extra bits)
    tokens: list[tuple[int, int, int]] = []
    at = 0
    while at < len(lengths):
        length, run = lengths[at], 1
        while at + run < len(lengths) and lengths[at + run] == length:
            run += 1
        at += run
        if length == 0:
            while run >= 11:
                tokens.append((18, 7, min(run, 138) - 11))
                run -= min(run, 138)
            if run >= 3:
                tokens.append((17, 3, run - 3))
                run = 0
        else:
            tokens.append((length, 0, 0))
            run -= 1
            while run >= 3:
                tokens.append((16, 2, min(run, 6) - 3))
                run -= min(run, 6)
        tokens += [(length, 0, 0)] * run
    length_counts = [0] * 19
    for symbol, _, _ in tokens:
        length_counts[symbol] += 1
    length_lengths = _code_lengths(length_counts, 7)
    length_codes = _canonical(length_lengths)
    count = max(4, max(k for k, symbol in enumerate(_CODE_LENGTH_ORDER) if length_lengths[symbol]) + 1)
    out.put(1, 0)  # normal
    out.put(4, count - 4)
    for symbol in _CODE_LENGTH_ORDER[:count]:
        out.put(3, length_lengths[symbol])
    out.put(1, 0)  # max_symbol: the alphabet's size
    for symbol, extra_bits, extra in tokens:
        out.code(length_codes[symbol])
        out.put(extra_bits, extra)
    return _canonical(lengths)


def _clamp(value: int) -> int:
    return 0 if value < 0 else min(value, 255)


def make_webp(width: int, height: int) -> bytes:
    """The clip's picture as a lossless WebP (RIFF, VP8L) of `width` x `height`, any size from 1x1
    to 16384x16384: pixel for pixel the PNG's colours, opaque."""
    if width > 16384 or height > 16384:
        raise ValueError(f"a WebP still has at most 16384 pixels a side, not {width}x{height}")
    colours = still_colours(width, height)
    columns, rows = -(-width // 8), -(-height // 8)
    blocks = [row[:columns] for row in colours[:rows]]
    residuals: list[tuple[int, tuple[int, int, int]]] = []  # (position, (green, red, blue)), not zero
    for by, row in enumerate(blocks):
        above = blocks[by - 1] if by else None
        for bx, (r, g, b) in enumerate(row):
            if above is None:  # top row: L; the first pixel: black
                pr, pg, pb = row[bx - 1] if bx else (0, 0, 0)
            elif bx == 0:  # left column: T
                pr, pg, pb = above[0]
            else:
                (lr, lg, lb), (tr, tg, tb), (cr, cg, cb) = row[bx - 1], above[bx], above[bx - 1]
                pr, pg, pb = lr + tr - cr, lg + tg - cg, lb + tb - cb
                if not (0 <= pr <= 255 and 0 <= pg <= 255 and 0 <= pb <= 255):
                    pr, pg, pb = _clamp(pr), _clamp(pg), _clamp(pb)
            if r != pr or g != pg or b != pb:
                residuals.append((8 * by * width + 8 * bx, ((g - pg) & 255, (r - pr) & 255, (b - pb) & 255)))
    # tokens: (green, red, blue) literals, or (length, distance code) copies
    tokens: list[tuple[int, int, int] | tuple[int, int]] = []
    nonzero = [position for position, _ in residuals]

    def zeros(start: int, end: int) -> None:
        """Tokens for the zero residuals from `start` to `end`: a copy of the row above as far as
        it is zero there (or a zero literal), then copies of the pixel to the left."""
        upward = 0
        if start >= width:
            upward = end - start
            k = bisect.bisect_left(nonzero, start - width)
            if k < len(nonzero) and nonzero[k] < start:
                upward = min(upward, nonzero[k] - (start - width))
        if upward == 0:
            tokens.append((0, 0, 0))
        for length, code in ((upward, 1), (end - start - max(upward, 1), 2)):
            while length > 0:
                tokens.append((min(length, _MAX_COPY), code))
                length -= _MAX_COPY

    at = 0
    for position, literal in residuals:
        if position > at:
            zeros(at, position)
        tokens.append(literal)
        at = position + 1
    if at < width * height:
        zeros(at, width * height)
    counts = Counter(tokens)
    green, red, blue, distance = [0] * 280, [0] * 256, [0] * 256, [0] * 40
    for token, count in counts.items():
        if len(token) == 3:
            green[token[0]] += count
            red[token[1]] += count
            blue[token[2]] += count
        else:
            green[256 + _prefix_value(token[0])[0]] += count
            distance[_prefix_value(token[1])[0]] += count

    out = _Bits()
    out.put(8, 0x2F)
    out.put(14, width - 1)
    out.put(14, height - 1)
    out.put(1, 0)  # no alpha
    out.put(3, 0)  # version
    out.put(1, 1)
    out.put(2, 0)  # predictor: blocks of 512 x 512, all ClampAddSubtractFull
    out.put(3, 7)
    out.put(1, 0)  # its image: no colour cache, one-symbol codes (no bits a pixel)
    for symbol in (12, 0, 0, 0, 0):
        _prefix_code(out, [0] * symbol + [1])
    out.put(1, 0)  # no more transforms
    out.put(1, 0)  # no colour cache
    out.put(1, 0)  # no meta prefix codes
    green_codes = _prefix_code(out, green)
    red_codes, blue_codes = _prefix_code(out, red), _prefix_code(out, blue)
    _prefix_code(out, [1])  # alpha: always 0 (255 predicted, 255 found)
    distance_codes = _prefix_code(out, distance)
    written: dict[tuple[int, ...], str] = {}  # each token's bits, as the writer packs them
    for token in counts:
        if len(token) == 3:
            pieces = [green_codes[token[0]], red_codes[token[1]], blue_codes[token[2]]]
        else:
            length_prefix, length_bits, length_extra = _prefix_value(token[0])
            distance_prefix, distance_bits, distance_extra = _prefix_value(token[1])
            pieces = [
                green_codes[256 + length_prefix],
                format(length_extra, f"0{length_bits}b") if length_bits else "",
                distance_codes[distance_prefix],
                format(distance_extra, f"0{distance_bits}b") if distance_bits else "",
            ]
        written[token] = "".join(reversed(pieces))
    out.pieces += map(written.__getitem__, tokens)
    stream = out.data()
    chunk = b"VP8L" + struct.pack("<I", len(stream)) + stream + bytes(len(stream) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk

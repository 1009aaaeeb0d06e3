"""Scenario time: real time times a speed factor, or a manual clock moved by hand.

Both modes give seconds on the Unix scale (`created` of a task is `int(now)`). The clock never
moves backward: `advance()` refuses negative steps and switching mode or speed keeps the current
reading, so lifecycle states computed from it never regress.

`Clock` is the clock of one process (the memory store's). A shared store keeps the same three
facts (mode, speed, and an anchor pair of scenario time and real time) and computes the reading
the same way, so a manual advance on any replica moves every replica.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Mode = Literal["real", "manual"]
MAX_SPEED = 1_000_000.0
LATEST = 253_402_300_799.0  # 9999-12-31T23:59:59Z: beyond it no date can be shown


class ClockError(ValueError):
    """A clock operation that would break monotonic scenario time."""


def check_speed(speed: float) -> float:
    if not (math.isfinite(speed) and 0 < speed <= MAX_SPEED):
        raise ClockError(f"speed must be above 0 and at most {MAX_SPEED:g}, got {speed}")
    return speed


def check_advance(now: float, seconds: float) -> float:
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ClockError(f"the clock only moves forward; cannot advance by {seconds}")
    if now + seconds > LATEST:
        raise ClockError(f"advancing by {seconds:g} s would pass the year 9999")
    return seconds


@dataclass(frozen=True, slots=True)
class ClockReading:
    mode: Mode
    speed: float
    now: float

    def describe(self) -> dict[str, object]:
        now = min(self.now, LATEST)
        return {
            "mode": self.mode,
            "speed": self.speed,
            "now": round(now, 3),
            "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }


class Clock:
    def __init__(
        self,
        mode: Mode = "real",
        speed: float = 1.0,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        check_speed(speed)
        self._monotonic = monotonic
        self.mode: Mode = mode
        self.speed = speed
        self._anchor_scenario = time.time() if start is None else start
        self._anchor_real = monotonic()

    def now(self) -> float:
        if self.mode == "manual":
            return self._anchor_scenario
        return self._anchor_scenario + (self._monotonic() - self._anchor_real) * self.speed

    def _reanchor(self) -> None:
        self._anchor_scenario = self.now()
        self._anchor_real = self._monotonic()

    def advance(self, seconds: float) -> float:
        check_advance(self.now(), seconds)
        self._reanchor()
        self._anchor_scenario += seconds
        return self.now()

    def configure(self, mode: Mode | None = None, speed: float | None = None) -> None:
        if speed is not None:
            check_speed(speed)
        self._reanchor()
        if mode is not None:
            self.mode = mode
        if speed is not None:
            self.speed = speed

    def reading(self) -> ClockReading:
        return ClockReading(self.mode, self.speed, self.now())

    def describe(self) -> dict[str, object]:
        return self.reading().describe()

"""Scenario time: speed factor, manual mode, and never backward."""

from __future__ import annotations

import math

import pytest

from mockserver.clock import Clock, ClockError


class Ticks:
    """A stand-in for time.monotonic that the test moves by hand."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def test_real_mode_runs_at_the_speed_factor() -> None:
    ticks = Ticks()
    clock = Clock("real", speed=60, start=1000.0, monotonic=ticks)
    ticks.value = 1.5
    assert clock.now() == 1090.0  # 1.5 real seconds = 90 scenario seconds


def test_changing_speed_keeps_the_current_reading() -> None:
    ticks = Ticks()
    clock = Clock("real", speed=60, start=0.0, monotonic=ticks)
    ticks.value = 1.0
    clock.configure(speed=1)
    assert clock.now() == 60.0
    ticks.value = 2.0
    assert clock.now() == 61.0


def test_manual_mode_stands_still_until_advanced() -> None:
    ticks = Ticks()
    clock = Clock("manual", start=500.0, monotonic=ticks)
    ticks.value = 100.0
    assert clock.now() == 500.0
    assert clock.advance(90) == 590.0


def test_switching_modes_never_jumps() -> None:
    ticks = Ticks()
    clock = Clock("real", speed=2, start=0.0, monotonic=ticks)
    ticks.value = 10.0
    clock.configure(mode="manual")
    ticks.value = 50.0
    assert clock.now() == 20.0
    clock.configure(mode="real")
    ticks.value = 51.0
    assert clock.now() == 22.0


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_the_clock_never_moves_backward_or_to_infinity(seconds: float) -> None:
    clock = Clock("manual", start=0.0)
    with pytest.raises(ClockError):
        clock.advance(seconds)
    assert clock.now() == 0.0


@pytest.mark.parametrize("speed", [0.0, -2.0, math.nan, math.inf])
def test_speed_must_be_positive_and_finite(speed: float) -> None:
    with pytest.raises(ClockError):
        Clock("real", speed=speed)
    with pytest.raises(ClockError):
        Clock("real").configure(speed=speed)

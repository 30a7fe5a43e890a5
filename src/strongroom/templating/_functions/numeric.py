"""Sprig's round, ceil and floor with Go's float64 arithmetic (math.Modf, math.Ceil, math.Floor)."""

from __future__ import annotations

import math
from collections.abc import Callable

from gotpl.funcs.sprig.numeric import to_float64


def round_(value: object, places: int, *round_on: float) -> float:
    """Sprig's round: the fraction of the float product decides, as math.Modf sees it.

    (gotpl uses the exact product, so `round 2.675 2` gives 2.67 where Go gives 2.68.)"""
    threshold = round_on[0] if round_on else 0.5
    number = to_float64(value)
    try:
        power = math.pow(10, places)
    except OverflowError:
        power = math.inf
    digit = power * number
    if not math.isfinite(digit):
        return digit / power
    fraction = math.modf(digit)[0]
    rounded = math.ceil(digit) if fraction >= threshold else math.floor(digit)
    return rounded / power


def _integral(value: object, step: Callable[[float], int]) -> float:
    """math.Ceil/math.Floor: a float, and a zero keeps the argument's sign (ceil -0.5 is -0)."""
    number = to_float64(value)
    if not math.isfinite(number):
        return number
    result = float(step(number))
    return math.copysign(result, number) if result == 0 else result


def ceil(value: object) -> float:
    return _integral(value, math.ceil)


def floor(value: object) -> float:
    return _integral(value, math.floor)

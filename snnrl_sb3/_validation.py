"""Argument checks shared by every public constructor.

Each helper raises :class:`TypeError` for a wrong type and :class:`ValueError` for a
value outside the allowed range, naming the parameter and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any, Iterable


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as a float after checking its type, finiteness and range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if not (hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        value = value.item()
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high}, got {value}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """Return ``value`` as an int after checking its type and lower bound."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = sorted(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; allowed: {choices}")
    return value

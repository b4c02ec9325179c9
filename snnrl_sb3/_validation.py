"""Argument checks shared by every public constructor.

Each helper raises :class:`TypeError` for a wrong type and :class:`ValueError` for a
value outside the allowed range, naming the parameter and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as a float after checking its type, finiteness and range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        item = getattr(value, "item", None)
        if item is None or getattr(value, "numel", lambda: 0)() != 1:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        value = item()
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high}, got {value}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """Return ``value`` as an int after checking its type and lower bound.

    NumPy integers count as ints: gymnasium spaces hand out ``np.int64`` sizes."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
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


#: Seeds are stored as int64 tensors in state dicts: ``[0, 2**63 - 1]``.
MAX_SEED = 2**63 - 1


def check_seed(name: str, value: Any) -> int:
    """A random seed: an int in ``[0, 2**63 - 1]`` (what an int64 state-dict entry holds exactly)."""
    seed = check_int(name, value, low=0)
    if seed > MAX_SEED:
        raise ValueError(f"{name} must be <= 2**63 - 1 (it is stored as an int64), got {seed}")
    return seed


def check_observations(name: str, value: Any, *, batched: bool = False) -> None:
    """Check a batch of observations: an array, tensor or nested list of numbers (or a dict of
    those, for ``Dict`` spaces), holding at least one observation, with no NaN or inf.

    :param batched: also require a leading batch axis (``ndim >= 2``)
    :raises TypeError: for non-numeric data
    :raises ValueError: for an empty batch, a missing batch axis or non-finite values
    """
    import torch

    if isinstance(value, dict):
        if not value:
            raise ValueError(f"{name} must hold at least one observation, got an empty dict")
        for key, item in value.items():
            check_observations(f"{name}[{key!r}]", item, batched=batched)
        return
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be real-valued, got a tensor of dtype {value.dtype}")
        finite = bool(torch.isfinite(value.detach()).all()) if value.is_floating_point() else True
        shape, size, ndim = tuple(value.shape), value.numel(), value.dim()
    else:
        try:
            array = np.asarray(value)
        except ValueError as error:  # ragged nested lists
            raise ValueError(f"{name} must be a rectangular array of observations: {error}") from None
        if np.issubdtype(array.dtype, np.complexfloating) or not (
                np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise TypeError(f"{name} must be numeric (an array, tensor or nested list of numbers), "
                            f"got {type(value).__name__} of dtype {array.dtype}")
        finite = bool(np.isfinite(array).all()) if np.issubdtype(array.dtype, np.inexact) else True
        shape, size, ndim = array.shape, array.size, array.ndim
    if size == 0:
        raise ValueError(f"{name} must hold at least one observation, got shape {shape}")
    if batched and ndim < 2:
        raise ValueError(f"{name} must be a batch [N, ...] of observations, got shape {shape}")
    if not finite:
        raise ValueError(f"{name} must be finite: it contains NaN or inf (shape {shape})")


#: Largest finite float32 (``torch.finfo(torch.float32).max``): the kernels run in float32.
FLOAT32_MAX = 3.4028234663852886e38


def check_float32(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                  low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """:func:`check_real`, and the value must stay finite once cast to float32.

    A parameter such as ``1e39`` is a finite Python float but ``inf`` in a float32 tensor, where
    it turns the membranes and gradients into NaN (or makes torch refuse the scalar).
    """
    value = check_real(name, value, low=low, high=high, low_inclusive=low_inclusive, high_inclusive=high_inclusive)
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{name} must be finite in float32 (|{name}| <= {FLOAT32_MAX:.8g}), got {value}")
    return value


class InvalidStateDictError(RuntimeError, ValueError):
    """A state dict (a saved model) holds a value no model may load: NaN parameters, a bad seed.

    A ``RuntimeError``, as torch's own ``load_state_dict`` errors are (SB3's ``load`` re-raises
    those unchanged, while it rewrites a bare ``ValueError``), and a ``ValueError``: a bad value.
    """

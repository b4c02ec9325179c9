r"""Linear recurrences over the leading time axis, shared by every kernel.

* :func:`reverse_discount_`: in place, :math:`\delta_t = a_t + d\,\delta_{t+1}` backwards over
  time, the membrane adjoint of every leaky neuron with a detached subtractive reset;
* :func:`gated_reverse_discount_`: in place, :math:`\delta_t = a_t + d\,k_t\,\delta_{t+1}`, the
  same with a detached hard reset (:math:`k_t = 1 - S_t`);
* :func:`decay_matrix`: ``M[t, s] = d**(t - s)`` (``s <= t``), so that ``M @ x`` solves
  :math:`y_t = d\,y_{t-1} + x_t` and ``M.T @ a`` the reverse recurrence;
* :func:`over_time`: apply a ``[T, T]`` matrix along the time axis of ``[T, B, ...]``.

:func:`decay_matrix` caches small matrices (``T <=`` :data:`DECAY_MATRIX_CACHE_MAX_STEPS`), one
per ``(T, decay, device, dtype, transpose)``, and computes larger ones on every call: a
``T = 10**4`` matrix is 400 MB in float32, which no cache should keep alive. The cached tensors are
built outside inference mode and without autograd, so a matrix first requested under
``torch.inference_mode()`` (acting) can still be saved for backward by a later training call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
from torch import Tensor

from snnrl_sb3._validation import check_int, check_real

__all__ = ["reverse_discount_", "gated_reverse_discount_", "decay_matrix", "over_time",
           "DECAY_MATRIX_CACHE_MAX_STEPS"]

#: Largest ``T`` whose decay matrices are cached (a 64 x 64 float32 matrix is 16 KiB).
DECAY_MATRIX_CACHE_MAX_STEPS = 64
#: Most matrices kept (least recently used dropped first): at most 2 MiB of float32 matrices.
DECAY_MATRIX_CACHE_SIZE = 128

_cache: OrderedDict[tuple, Tensor] = OrderedDict()
_cache_lock = threading.Lock()


def reverse_discount_(adjoint: Tensor, decay: float) -> Tensor:
    r"""In place, solve :math:`\delta_t = a_t + \mathrm{decay}\,\delta_{t+1}` backwards over time.

    One fused multiply-add per step (``add_(..., alpha=decay)``) on per-step views.
    """
    if decay != 0.0 and adjoint.shape[0] > 1:
        steps = adjoint.unbind(0)
        for t in range(len(steps) - 2, -1, -1):
            steps[t].add_(steps[t + 1], alpha=decay)
    return adjoint


def gated_reverse_discount_(adjoint: Tensor, decay: float, gate: Tensor) -> Tensor:
    r"""In place, solve :math:`\delta_t = a_t + \mathrm{decay}\,k_t\,\delta_{t+1}` backwards over time.

    ``gate`` (``adjoint``'s shape) holds :math:`k_t`, e.g. ``1 - S_t`` of a hard reset. One
    ``addcmul`` per step on per-step views.
    """
    if decay != 0.0 and adjoint.shape[0] > 1:
        steps, gates = adjoint.unbind(0), gate.unbind(0)
        for t in range(len(steps) - 2, -1, -1):
            steps[t].addcmul_(steps[t + 1], gates[t], value=decay)
    return adjoint


def _build_decay_matrix(num_steps: int, decay: float, device: torch.device, dtype: torch.dtype,
                        transpose: bool) -> Tensor:
    # powers d**0 .. d**(T-1) once, in float64 on the host (the same values on every device, correctly
    # rounded to float32), then a Toeplitz view of [0, ..., 0, 1, d, d², ...]: one [T, T] allocation
    # instead of the five temporaries of an elementwise d**(t - s)
    powers = torch.tensor([decay ** k for k in range(num_steps)], dtype=torch.float64).to(device=device, dtype=dtype)
    padded = torch.cat([powers.flip(0), torch.zeros(num_steps - 1, dtype=dtype, device=device)])
    # padded[T - 1 - t + s] = d**(t - s) for s <= t, 0 for s > t
    window = padded.as_strided((num_steps, num_steps), (1, 1))  # window[i, s] = padded[i + s]
    m = window.flip(0)  # m[t, s] = window[T - 1 - t, s]: a fresh contiguous tensor
    return m.T.contiguous() if transpose else m


def decay_matrix(num_steps: int, decay: float, *, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32, transpose: bool = False) -> Tensor:
    r"""``M[t, s] = decay**(t - s)`` for ``s <= t`` else 0 (``transpose=True`` gives ``M.T``).

    ``M @ x`` (over the time axis) solves :math:`y_t = \mathrm{decay}\, y_{t-1} + x_t`;
    ``M.T @ a`` solves the reverse recurrence :math:`\delta_t = a_t + \mathrm{decay}\,\delta_{t+1}`.
    Small matrices are cached per device and dtype and shared between callers: never modify the
    result in place. Never an inference tensor, whatever mode the caller is in.

    :param num_steps: ``T >= 1``
    :param decay: the decay factor (any finite real)
    """
    num_steps = check_int("num_steps", num_steps, low=1)
    decay = check_real("decay", decay)
    device = torch.device("cpu") if device is None else torch.device(device)
    key = (num_steps, decay, device, dtype, bool(transpose))
    cacheable = num_steps <= DECAY_MATRIX_CACHE_MAX_STEPS
    if cacheable:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
    # a normal tensor even inside torch.inference_mode(): it may be cached and saved for backward later
    with torch.inference_mode(False), torch.no_grad():
        m = _build_decay_matrix(num_steps, decay, device, dtype, bool(transpose))
    if cacheable:
        with _cache_lock:
            _cache[key] = m
            while len(_cache) > DECAY_MATRIX_CACHE_SIZE:
                _cache.popitem(last=False)
    return m


def over_time(matrix: Tensor, x: Tensor) -> Tensor:
    """Apply a ``[T, T]`` matrix along the leading time axis of ``x`` (``[T, B, ...]``)."""
    return (matrix @ x.reshape(x.shape[0], -1)).reshape(x.shape)

"""Process-level utilities."""

from __future__ import annotations

import ctypes
import platform

__all__ = ["route_mujoco_warnings", "tune_allocator"]

#: glibc ``mallopt`` parameters (``<malloc.h>``)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Make glibc keep freed large buffers in the heap instead of returning them to the OS.

    By default glibc serves blocks of 128 KiB and more with ``mmap`` and gives them back on
    ``free`` (or trims the heap top), so each fresh ``[T, B, N]`` tensor of a spiking network
    (512 KiB for ``T=8, B=64, N=256``) page-faults again on first touch: on this benchmark's
    CPU a kernel backward took about 4x longer because of it. This sets
    ``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` with ``mallopt``, the same as running with
    ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728`` in the environment.
    The cost is that the process keeps up to ``trim_threshold`` bytes of freed memory.

    Process-wide and opt-in: the library never calls it; the examples and benchmarks do. Returns ``True`` when applied,
    ``False`` (and does nothing) when the C library is not glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc without the usual soname
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


def route_mujoco_warnings() -> bool:
    """Send MuJoCo's warnings to Python's :mod:`warnings` instead of a ``MUJOCO_LOG.TXT`` in the working directory.

    MuJoCo writes every warning (e.g. gymnasium's v5 models use the deprecated ``settotalmass``) to that file
    unless a handler is installed. Process-wide and opt-in, like :func:`tune_allocator`: the examples call
    it. Returns ``False`` (and does nothing) without ``mujoco``.
    """
    try:
        import mujoco
    except ImportError:
        return False
    import warnings

    def handler(message: str) -> None:
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

    mujoco.set_mju_user_warning(handler)
    return True

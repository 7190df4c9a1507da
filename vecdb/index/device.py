"""Where array math runs: NumPy on the CPU, or CuPy on an NVIDIA GPU (``pip install vecdb[gpu]``).

The K-Means and IVF-PQ code is written once against an "array module" (``xp``)
and handed either ``numpy`` or ``cupy``, so the GPU path's logic is exercised
by the CPU tests too. CuPy is imported on first use, never at import time, so
a CPU-only install pays nothing for it.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import Any, Literal

import numpy as np

from vecdb.errors import InvalidInput, Unsupported

log = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=1)
def _cupy() -> Any:
    """The ``cupy`` module when it imports and sees at least one GPU, else None (asked once)."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        log.debug("CuPy unavailable: %s", exc)
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception as exc:  # no driver, no device
        log.debug("CuPy sees no GPU: %s", exc)
        return None
    return cupy


def gpu_available() -> bool:
    return _cupy() is not None


def resolve_device(device: str, field: str = "device") -> Device:
    """``auto`` -> ``cuda`` when CuPy sees a GPU, else ``cpu``; ``cuda`` without one is an error."""
    if device not in DEVICE_CHOICES:
        raise InvalidInput(f"{field}: expected one of {', '.join(DEVICE_CHOICES)}, got {device!r}")
    if device == "cpu":
        return "cpu"
    if gpu_available():
        return "cuda"
    if device == "cuda":
        raise Unsupported(
            f"{field}: 'cuda' needs CuPy and an NVIDIA GPU (pip install 'vecdb[gpu]'); "
            "none is usable in this process. Use 'cpu' or 'auto'."
        )
    return "cpu"


def array_module(device: Device) -> ModuleType:
    if device == "cuda":
        cupy = _cupy()
        if cupy is None:
            raise Unsupported("device 'cuda': CuPy and an NVIDIA GPU are needed (pip install 'vecdb[gpu]')")
        return cupy  # type: ignore[no-any-return]
    return np


def module_of(array: Any) -> ModuleType:
    """The array module that owns ``array`` (CuPy arrays stay on the GPU)."""
    if isinstance(array, np.ndarray):
        return np
    cupy = _cupy()
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy  # type: ignore[no-any-return]
    return np


def to_numpy(array: Any) -> np.ndarray:
    """A host copy of a NumPy or CuPy array (NumPy arrays pass through)."""
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)
    return np.asarray(get() if callable(get) else array)


__all__ = ["DEVICE_CHOICES", "Device", "array_module", "gpu_available", "module_of", "resolve_device", "to_numpy"]

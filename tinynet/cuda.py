"""``tn.cuda``: what ``torch.cuda`` answers on a machine without a GPU, so CPU scripts run.

    device = "cuda" if tn.cuda.is_available() else "cpu"   # "cpu"

tinynet runs on the CPU only. The questions a script asks get PyTorch's answers for a machine
without CUDA (``is_available()`` is False, ``device_count()`` is 0), and the calls PyTorch
silently ignores there (``manual_seed``, ``manual_seed_all``, ``empty_cache``) do nothing here.
Calls that need a GPU (``set_device``, ``synchronize``, ``get_device_name``...) raise, as in
PyTorch, naming the fix.
"""

from __future__ import annotations

from typing import Any, NoReturn

from tinynet.errors import ValueRangeError


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: Any) -> None:
    """Ignored, as PyTorch ignores it without CUDA; seed with ``tn.manual_seed``."""


def manual_seed_all(seed: Any) -> None:
    """Ignored, as PyTorch ignores it without CUDA; seed with ``tn.manual_seed``."""


def empty_cache() -> None:
    """Nothing to free (no GPU memory)."""


def _no_gpu(function: str) -> NoReturn:
    raise ValueRangeError(
        f"cuda.{function}: tinynet runs on the CPU only and has no CUDA device; guard the call "
        "with tn.cuda.is_available() (which is False)"
    )


def set_device(device: Any) -> None:
    _no_gpu("set_device")


def current_device() -> int:
    _no_gpu("current_device")


def synchronize(device: Any = None) -> None:
    _no_gpu("synchronize")


def get_device_name(device: Any = None) -> str:
    _no_gpu("get_device_name")

"""``tn.accelerator``: PyTorch's device-agnostic accelerator queries, for a CPU-only framework.

    device = tn.accelerator.current_accelerator() if tn.accelerator.is_available() else "cpu"

There is no accelerator: ``is_available()`` is False, ``current_accelerator()`` is None (as
PyTorch answers without one), ``device_count()`` is 0.
"""

from __future__ import annotations

from typing import Any


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False) -> Any:
    return None


def device_count() -> int:
    return 0

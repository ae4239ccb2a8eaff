"""``tn.backends``: PyTorch's backend switches, answered for a CPU-only framework.

``tn.backends.mps.is_available()`` and ``tn.backends.cudnn.is_available()`` are False; the
switches scripts set (``tn.backends.cudnn.benchmark = True``,
``tn.backends.cuda.matmul.allow_tf32 = True``) exist and can be set, and change nothing: they
configure backends tinynet does not have.
"""

from __future__ import annotations

from types import SimpleNamespace


def _unavailable() -> bool:
    return False


mps = SimpleNamespace(is_available=_unavailable, is_built=_unavailable)
cudnn = SimpleNamespace(is_available=_unavailable, enabled=True, benchmark=False,
                        deterministic=False, allow_tf32=True)
cuda = SimpleNamespace(is_built=_unavailable, matmul=SimpleNamespace(
    allow_tf32=False, allow_fp16_reduced_precision_reduction=True))

__all__ = ["cuda", "cudnn", "mps"]

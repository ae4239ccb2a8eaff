"""tinynet's autograd. Start with ``engine.py``: it is the whole engine (grad mode, Function,
saved tensors, topological order, the backward loop). Around it:

- ``grad_mode.py``: ``no_grad``, ``enable_grad``, ``set_grad_enabled``;
- ``functional.py``: ``backward()`` and ``grad()``, the two ways in;
- ``hooks.py``: ``register_hook`` and ``retain_grad``;
- ``watch.py``: ``trace`` and ``detect_anomaly``, for watching the engine work.

This file only re-exports.
"""

from tinynet.autograd import hooks, watch
from tinynet.autograd.engine import (
    Function,
    is_grad_enabled,
    run_backward,
    sum_to_shape,
    topological_order,
)
from tinynet.autograd.functional import backward, grad
from tinynet.autograd.grad_mode import enable_grad, no_grad, set_grad_enabled
from tinynet.autograd.watch import detect_anomaly, is_anomaly_enabled, trace

__all__ = [
    "Function", "backward", "detect_anomaly", "enable_grad", "grad", "hooks",
    "is_anomaly_enabled", "is_grad_enabled", "no_grad", "run_backward", "set_grad_enabled",
    "sum_to_shape", "topological_order", "trace", "watch",
]

from tinynet.autograd.grad_mode import inference_mode  # noqa: E402 - issue 21

__all__ += ["inference_mode"]

"""numpy's functions applied to tensors (``Tensor.__array_ufunc__``).

``np.sin(t)`` runs ``tn.sin(t)``, so it is recorded and differentiable; ``array * t`` runs
``tn.mul(array, t)``, exactly what ``t.__rmul__(array)`` runs. With ``out=`` arrays (as in
``array -= t``) the tensors' values are used and the arrays written, as numpy would. A ufunc
tinynet has no op for raises a DTypeError rather than silently leaving the graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet.errors import DTypeError
from tinynet.tensor import Tensor


def _table() -> dict[Any, Any]:
    from tinynet import ops

    def compare(ufunc: Any) -> Any:
        return lambda a, b: ops.compare(ufunc, a, b)

    return {
        np.add: ops.add, np.subtract: ops.sub, np.multiply: ops.mul,
        np.true_divide: ops.div, np.power: ops.pow, np.float_power: ops.pow,
        np.maximum: ops.maximum, np.minimum: ops.minimum, np.matmul: ops.matmul,
        np.negative: ops.neg, np.positive: lambda a: a, np.absolute: ops.abs,
        np.exp: ops.exp, np.log: ops.log, np.sqrt: ops.sqrt, np.tanh: ops.tanh,
        np.sin: ops.sin, np.cos: ops.cos, np.square: lambda a: ops.mul(a, a),
        np.less: compare(np.less), np.less_equal: compare(np.less_equal),
        np.greater: compare(np.greater), np.greater_equal: compare(np.greater_equal),
        np.equal: compare(np.equal), np.not_equal: compare(np.not_equal),
    }


_OPS: dict[Any, Any] = {}


def array_ufunc(ufunc: Any, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Dispatch ``ufunc(*inputs, **kwargs)`` with at least one Tensor among the inputs."""
    out = kwargs.get("out")
    if out is not None:
        if any(isinstance(o, Tensor) for o in out):
            raise DTypeError(
                f"np.{ufunc.__name__}: a tensor can't be numpy's out= argument; use the "
                "tensor's in-place methods (x.add_(y), x.copy_(y)) or x[...] = value"
            )
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        return getattr(ufunc, method)(*arrays, **kwargs)  # e.g. ``array -= tensor``
    if not _OPS:
        _OPS.update(_table())
    fn = _OPS.get(ufunc) if method == "__call__" and not kwargs else None
    if fn is None:
        raise DTypeError(
            f"np.{ufunc.__name__}{'' if method == '__call__' else '.' + method}: tinynet has "
            "no op for this numpy function on tensors, so it would leave the graph; use a "
            f"tensor method or tn.{ufunc.__name__} if it exists, or apply numpy to "
            "t.detach().numpy()"
        )
    return fn(*inputs)

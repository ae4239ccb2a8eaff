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
from tinynet.ops import elementwise as ew
from tinynet.ops.activation import tanh
from tinynet.ops.linalg import matmul
from tinynet.tensor import Tensor, value_reads


def _compare(ufunc: Any) -> Any:
    return lambda a, b: ew.compare(ufunc, a, b)


# numpy's function -> tinynet's op (np.square(t) is t * t, as the graph would record it)
_OPS: dict[Any, Any] = {
    np.add: ew.add, np.subtract: ew.sub, np.multiply: ew.mul,
    np.true_divide: ew.div, np.power: ew.pow, np.float_power: ew.pow,
    np.maximum: ew.maximum, np.minimum: ew.minimum, np.matmul: matmul,
    np.negative: ew.neg, np.positive: lambda a: a, np.absolute: ew.abs,
    np.exp: ew.exp, np.log: ew.log, np.sqrt: ew.sqrt, np.tanh: tanh,
    np.sin: ew.sin, np.cos: ew.cos, np.square: lambda a: ew.mul(a, a),
    np.less: _compare(np.less), np.less_equal: _compare(np.less_equal),
    np.greater: _compare(np.greater), np.greater_equal: _compare(np.greater_equal),
    np.equal: _compare(np.equal), np.not_equal: _compare(np.not_equal),
}


def array_ufunc(ufunc: Any, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Dispatch ``ufunc(*inputs, **kwargs)`` with at least one Tensor among the inputs."""
    out = kwargs.get("out")
    if out is not None:
        if any(isinstance(o, Tensor) for o in out):
            raise DTypeError(
                f"np.{ufunc.__name__}: a tensor can't be numpy's out= argument; use the "
                "tensor's in-place methods (x.add_(y), x.copy_(y)) or x[...] = value"
            )
        if method == "__call__" and len(out) == 1 and isinstance(out[0], np.ndarray):
            return _write_into_array(ufunc, inputs, kwargs)  # e.g. ``array -= tensor``
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        return getattr(ufunc, method)(*arrays, **kwargs)
    fn = _OPS.get(ufunc) if method == "__call__" and not kwargs else None
    if fn is None:
        raise DTypeError(
            f"np.{ufunc.__name__}{'' if method == '__call__' else '.' + method}: tinynet has "
            "no op for this numpy function on tensors, so it would leave the graph; use a "
            f"tensor method or tn.{ufunc.__name__} if it exists, or apply numpy to "
            "t.detach().numpy()"
        )
    return fn(*inputs)


def _write_into_array(ufunc: Any, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``ufunc(*inputs, out=(array,))`` with tensors among the inputs (``p.data += -lr *
    p.grad``), run as a recorded write (``datadep.write_in_place``) so tn.compile replays it
    with each call's values. Returns the out array, as numpy does."""
    from tinynet.ops.datadep import write_in_place

    target = kwargs["out"][0]
    rest = {k: v for k, v in kwargs.items() if k != "out"}
    places = [i for i, x in enumerate(inputs) if isinstance(x, Tensor)]

    def update(array: np.ndarray, *values: np.ndarray) -> None:
        args = [array if x is target else x for x in inputs]
        for i, value in zip(places, values, strict=True):
            args[i] = value
        ufunc(*args, out=array, **rest)

    write_in_place(update, (0,), Tensor._make(target), *(inputs[i] for i in places))
    value_reads.recorded_write = target  # (``p.data += ...`` then assigns target to p.data)
    return target

"""Layers: Linear, Identity, Flatten and the Sequential container."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from tinynet import dtypes, ops
from tinynet.errors import DTypeError, DTypeMismatchError, ValueRangeError
from tinynet.nn import init
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.tensor import Tensor


class Identity(Module):
    """y = x. Accepts and ignores any constructor arguments, as PyTorch's does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """y = x W^T + b.

    Shapes: x (..., in_features) -> y (..., out_features); ``weight`` is
    (out_features, in_features) and ``bias`` (out_features,), as in PyTorch.

    Initialisation is PyTorch's: ``kaiming_uniform_(weight, a=sqrt(5))``, which is uniform in
    +-1/sqrt(in_features), and the bias uniform in the same range; both draw from tinynet's
    global generator, so ``tn.manual_seed(n)`` makes them reproducible.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"Linear: tinynet runs on the CPU only, got device {device!r}")
        try:  # operator.index, not int(): Linear(2.5, 3) is a mistake, not Linear(2, 3)
            in_features, out_features = operator.index(in_features), operator.index(out_features)
        except TypeError as e:
            raise DTypeError(
                f"Linear: in_features and out_features must be integers, got {in_features!r} "
                f"and {out_features!r}"
            ) from e
        if in_features < 0 or out_features < 0:
            raise ValueRangeError(
                f"Linear: in_features and out_features must be >= 0, got {in_features} and "
                f"{out_features}"
            )
        if in_features * out_features > np.iinfo(np.intp).max or max(
                in_features, out_features) > np.iinfo(np.intp).max:
            raise ValueRangeError(  # numpy's own "Maximum allowed dimension exceeded" otherwise
                f"Linear: a weight of shape ({out_features}, {in_features}) has more elements "
                "than an array can hold; use smaller in_features and out_features"
            )
        dtype = dtypes.to_dtype(dtype)
        if dtype.kind != "f":
            # a ValueError, as it always was here (parameters require gradients: floats only)
            raise ValueRangeError(f"Linear: dtype must be a floating dtype, got {dtype}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((out_features,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights (PyTorch's default initialisation, see the class docstring)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        dtype = input.dtype if isinstance(input, Tensor) else None
        if dtype is not None and dtype != self.weight.dtype:  # PyTorch refuses too
            raise DTypeMismatchError(
                f"Linear: the input is {dtype} but the weight is {self.weight.dtype} (mat1 and "
                f"mat2 must have the same dtype); convert the input (x.to({self.weight.dtype})"
                f" or x.float()) or the layer (model.double())"
            )
        return ops.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 4), Sigmoid(), Linear(4, 1))``.

    Children are named ``0``, ``1``, ... (or by the keys of an ordered dict passed instead);
    ``model[0]``, ``model[-1]``, ``model[1:]`` (a new Sequential sharing the modules, keeping
    their names, as in PyTorch), ``len(model)``, iteration and ``append`` work as in PyTorch.
    """

    def __init__(self, *args: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], Mapping):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def forward(self, input: Any) -> Any:
        """Each module in turn: what you write is what runs (and what a trace shows)."""
        for module in self._modules.values():
            if module is not None:
                input = module(input)
        return input

    # ---- list-like access ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def _key(self, index: int) -> str:
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a Sequential of length {n}")
        return list(self._modules)[index % n]

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(dict(list(self._modules.items())[index]))
        return self._modules[self._key(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, self._key(index), module)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            delattr(self, key)
        # Renumber so names stay 0..len-1, as PyTorch does.
        modules = list(self._modules.values())
        for key in list(self._modules):
            delattr(self, key)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def append(self, module: Module) -> Sequential:
        """Add a module at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert a module before position ``index``; names are renumbered 0..len-1."""
        modules = list(self._modules.values())
        n = len(modules)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for a Sequential of length {n}")
        modules.insert(index + n if index < 0 else index, module)
        for key in list(self._modules):
            delattr(self, key)
        for i, m in enumerate(modules):
            self.add_module(str(i), m)
        return self

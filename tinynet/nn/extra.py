"""Modules real PyTorch scripts use that are a few lines over existing ops (issue 21's census):
``Unflatten``, ``PixelShuffle``, ``ParameterList``, ``ParameterDict``."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tinynet.errors import ShapeError
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.tensor import Tensor


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``: Unflatten(1, (2, 5)) makes (N, 10) into
    (N, 2, 5); one size may be -1."""

    def __init__(self, dim: int, unflattened_size: Iterable[int]) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        shape = tuple(input.shape)
        dim = self.dim + len(shape) if self.dim < 0 else self.dim
        if not 0 <= dim < len(shape):
            raise ShapeError(f"Unflatten: dim {self.dim} is out of range for an input of "
                             f"shape {shape}")
        return input.reshape(shape[:dim] + self.unflattened_size + shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class PixelShuffle(Module):
    """(N, C r^2, H, W) -> (N, C, H r, W r): channel blocks become r x r pixel blocks."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        r = self.upscale_factor
        *batch, channels, h, w = input.shape
        if channels % (r * r):
            raise ShapeError(
                f"PixelShuffle: the channel count {channels} (input shape "
                f"{tuple(input.shape)}) must be divisible by upscale_factor^2 = {r * r}"
            )
        c = channels // (r * r)
        x = input.reshape(-1, c, r, r, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(*batch, c, h * r, w * r)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


def _as_parameter(value: Any) -> Any:
    """Tensors are wrapped as Parameters (as PyTorch does); Parameters and None stay."""
    if value is None or isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    return value


class ParameterList(Module):
    """A list of Parameters, registered as "0", "1", ... (in ``parameters()`` and the state
    dict); plain Tensors put in it become Parameters."""

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _index(self, index: Any) -> str:
        i = operator.index(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"ParameterList: index {index} is out of range (length "
                             f"{len(self)})")
        return str(i)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ParameterList([self[i] for i in range(len(self))[index]])
        return self._parameters[self._index(index)]

    def __setitem__(self, index: int, value: Any) -> None:
        self.register_parameter(self._index(index), _as_parameter(value))  # keeps its place

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return (self._parameters[str(i)] for i in range(len(self)))

    def append(self, value: Any) -> ParameterList:
        self.register_parameter(str(self._size), _as_parameter(value))
        self._size += 1
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        for value in values:
            self.append(value)
        return self

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)


class ParameterDict(Module):
    """A dict of Parameters by name (in ``parameters()`` and the state dict, in insertion
    order); plain Tensors put in it become Parameters."""

    def __init__(self, parameters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None
                 ) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Any:
        return self._parameters[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.register_parameter(key, _as_parameter(value))  # a key already there keeps its place

    def __delitem__(self, key: str) -> None:
        if key not in self._parameters:
            raise KeyError(key)
        delattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._parameters))

    def keys(self) -> list[str]:
        return list(self._parameters)

    def values(self) -> list[Any]:
        return list(self._parameters.values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self._parameters.items())

    def get(self, key: str, default: Any = None) -> Any:
        return self._parameters.get(key, default)

    def pop(self, key: str) -> Any:
        value = self._parameters[key]
        del self[key]
        return value

    def update(self, parameters: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        pairs = parameters.items() if isinstance(parameters, Mapping) else parameters
        for key, value in pairs:
            self[key] = value

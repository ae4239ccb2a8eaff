"""Parameter: a Tensor that a Module registers as something to train."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that a ``Module`` registers when it is
    assigned as an attribute (``self.weight = Parameter(...)``).

    ``Parameter(tensor)`` shares the tensor's memory, as ``torch.nn.Parameter`` does; other
    data (arrays, lists) is copied. Operations on a Parameter give plain Tensors.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=dtypes.get_default_dtype())
        super().__init__(data)
        if isinstance(data, Tensor):
            self.data = data.data  # share memory instead of the copy Tensor() made
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

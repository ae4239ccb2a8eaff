"""nn.Embedding: a lookup table of learned vectors, one row per token id.

    out[..., :] = weight[input[...], :]          d/dweight[r] = sum of grad at positions with id r

It is ``one_hot(input) @ weight`` without building the one-hot matrix.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tinynet import dtypes
from tinynet.errors import ShapeError, ValueRangeError
from tinynet.nn import init
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.ops.sequence import embedding
from tinynet.tensor import Tensor


class Embedding(Module):
    """A table ``weight`` of shape (num_embeddings, embedding_dim), initialised N(0, 1) (as in
    PyTorch), with ``padding_idx``'s row zeroed and never updated by gradients.

    Shapes: input (*) of int64 ids -> output (*, embedding_dim).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.num_embeddings = operator.index(num_embeddings)
        self.embedding_dim = operator.index(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueRangeError(f"Embedding: padding_idx ({padding_idx}) must be within "
                                      f"num_embeddings ({self.num_embeddings})")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim),
                                             dtype=dtypes.to_dtype(dtype)),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ShapeError(f"Embedding: _weight has shape {tuple(_weight.shape)}, "
                                 f"expected ({self.num_embeddings}, {self.embedding_dim})")
            self.weight = Parameter(_weight.data if isinstance(_weight, Tensor) else _weight,
                                    requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            from tinynet.autograd import no_grad

            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose table is (a copy of) ``embeddings``; frozen unless freeze=False."""
        if embeddings.ndim != 2:
            raise ShapeError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=Tensor._make(np.array(embeddings.data)), _freeze=freeze)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s

"""Attention: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``, as PyTorch.

Each query looks at every key, turns the match scores into weights with a softmax, and
returns the weighted mix of the values:

    weights = softmax(q k^T * scale + mask)      (scale = 1/sqrt(head size); mask: 0 or -inf)
    out     = weights v

Shapes: q (..., L, E), k (..., S, E), v (..., S, Ev) -> out (..., L, Ev). Multi-head attention
projects the inputs, splits E into ``num_heads`` heads of E/num_heads, runs the same in every
head, and projects the concatenated heads back (``out_proj``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinynet import creation, dtypes, ops
from tinynet.errors import DTypeError, ShapeError, ValueRangeError
from tinynet.nn import init
from tinynet.nn.dropout import dropout
from tinynet.nn.layers import Linear
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.tensor import Tensor


def _mask_tensor(mask: Any) -> Tensor:
    """A mask as a Tensor; a numpy array or list is converted once (under ``tn.compile`` pass
    it as a Tensor argument, or build it with tensor ops, so each call's values are used)."""
    return mask if isinstance(mask, Tensor) else creation.as_tensor(mask)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` (PyTorch's F.scaled_dot_product_attention).

    ``attn_mask`` is a bool tensor (True: may attend, False: may not) or a float tensor added to
    the scores; it broadcasts to (..., L, S). ``is_causal`` lets query i see keys 0..i only
    (a lower-triangular mask; then attn_mask must be None). ``dropout_p`` drops attention
    weights (always, whatever the module's mode: pass 0.0 in evaluation, as in PyTorch).
    A query that may attend to no key gets NaN, as in PyTorch's reference formula.
    """
    if enable_gqa:
        raise ValueRangeError("scaled_dot_product_attention: enable_gqa=True (grouped-query "
                              "attention) is not supported by tinynet")
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(f"scaled_dot_product_attention: query, key and value need at least 2 "
                         f"dims (..., L, E), got {query.shape}, {key.shape}, {value.shape}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: query {query.shape}, key {key.shape} "
                         f"and value {value.shape} don't fit: query and key need the same last "
                         "dim E, key and value the same sequence length S")
    length, source = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise ValueRangeError("scaled_dot_product_attention: give attn_mask or "
                                  "is_causal=True, not both")
        # (tensor ops, not numpy: under tn.compile the mask is an op of the trace)
        attn_mask = ops.tril(creation.ones(length, source, dtype=np.bool_))
    if attn_mask is not None:
        mask = _mask_tensor(attn_mask)
        if mask.dtype == np.bool_:
            scores = ops.where(mask, scores, -np.inf)
        else:
            scores = scores + mask
    weights = scores.softmax(-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return weights @ value


def _float_mask(mask: Any, dtype: np.dtype, name: str) -> Tensor | None:
    """A bool mask (True: masked out) as 0 / -inf scores; a float mask as it is."""
    if mask is None:
        return None
    m = _mask_tensor(mask)
    if m.dtype == np.bool_:  # tensor ops, so tn.compile replays them on each call's mask
        return creation.zeros(*m.shape, dtype=dtype).masked_fill(m, -np.inf)
    if np.dtype(m.dtype).kind != "f":
        raise DTypeError(f"MultiheadAttention: only bool and floating types of {name} are "
                         f"supported, got {m.dtype}")
    return m if m.dtype == dtype else m.to(dtype)


class MultiheadAttention(Module):
    """PyTorch's nn.MultiheadAttention: ``attn_output, attn_weights = mha(query, key, value)``.

    Parameters as PyTorch's: ``in_proj_weight`` (3E, E) holding W_q, W_k, W_v stacked (xavier
    uniform), ``in_proj_bias`` (3E,) zeros, ``out_proj`` a Linear(E, E) with zero bias; with
    kdim/vdim different from E, separate ``q_proj_weight``, ``k_proj_weight``,
    ``v_proj_weight`` instead of in_proj_weight. ``add_bias_kv=True``: learned ``bias_k`` and
    ``bias_v`` (1, 1, E) (xavier normal), appended to the keys and values as one more source
    position; ``add_zero_attn=True``: one more position whose key and value are zeros (after
    the heads are split). The masks get a 0 ("may attend") column for each added position, as in
    PyTorch, and the weights returned have S + 1 or S + 2 columns.

    Shapes: query (L, N, E) (batch_first: (N, L, E); unbatched: (L, E)), key and value
    (S, N, kdim/vdim). Masks: ``attn_mask`` (L, S) or (N * num_heads, L, S) and
    ``key_padding_mask`` (N, S): bool True means "may not attend", float ones are added to the
    scores. Returns attn_output like query, and the weights (N, L, S) averaged over heads
    (``average_attn_weights=False``: (N, num_heads, L, S)), or None if ``need_weights=False``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueRangeError(f"MultiheadAttention: embed_dim and num_heads must be greater "
                                  f"than 0, got embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueRangeError(f"MultiheadAttention: embed_dim ({embed_dim}) must be "
                                  f"divisible by num_heads ({num_heads})")
        dtype = dtypes.to_dtype(dtype)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty((3 * embed_dim,), dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), dtype))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, ...]:
        e, b = self.embed_dim, self.in_proj_bias
        biases = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            if query is key and key is value:  # self-attention: one matmul for q, k and v
                return ops.linear(query, self.in_proj_weight, b).chunk(3, -1)
            w = self.in_proj_weight
            weights = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        return tuple(ops.linear(x, w, bias) for x, w, bias in zip(
            (query, key, value), weights, biases, strict=True))

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        if is_causal and attn_mask is None:
            raise ValueRangeError("MultiheadAttention: need attn_mask if specifying the "
                                  "is_causal hint (e.g. nn.Transformer."
                                  "generate_square_subsequent_mask(L))")
        batched = query.ndim == 3
        if not batched:  # (L, E): a batch of one
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:  # (N, L, E) -> (L, N, E), keeping "is" for self-attention
            same, same_kv = query is key, key is value
            query = query.transpose(0, 1)
            key = query if same else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        length, batch, e = query.shape
        source = key.shape[0]
        if e != self.embed_dim:
            raise ShapeError(f"MultiheadAttention: was expecting embedding dimension of "
                             f"{self.embed_dim}, but got {e} (query {query.shape})")
        h, d = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        extra = 0  # source positions added after the keys given (add_bias_kv, add_zero_attn)
        if self.bias_k is not None:  # one more key and value, learned, the same in every sample
            k = ops.cat([k, self.bias_k.expand(1, batch, e)])
            v = ops.cat([v, self.bias_v.expand(1, batch, e)])
            extra += 1
        # (L, N, E) -> (N * heads, L, head_dim): every head of every sample is one batch entry
        q = q.reshape(length, batch * h, d).transpose(0, 1)
        k = k.reshape(source + extra, batch * h, d).transpose(0, 1)
        v = v.reshape(source + extra, batch * h, d).transpose(0, 1)
        if self.add_zero_attn:  # one more key and value, all zeros, in every head
            zeros = creation.zeros(batch * h, 1, d, dtype=k.dtype)
            k, v = ops.cat([k, zeros], 1), ops.cat([v, zeros], 1)
            extra += 1
        mask = _float_mask(attn_mask, q.dtype, "attn_mask")
        if mask is not None:
            expected = [(length, source), (batch * h, length, source)]
            if tuple(mask.shape) not in expected:
                raise ShapeError(f"MultiheadAttention: attn_mask should have shape "
                                 f"{expected[0]} or {expected[1]}, got {tuple(mask.shape)}")
            if mask.ndim == 2:
                mask = mask.unsqueeze(0)
        padding = _float_mask(key_padding_mask, q.dtype, "key_padding_mask")
        if padding is not None:
            if tuple(padding.shape) != (batch, source):
                raise ShapeError(f"MultiheadAttention: expected key_padding_mask shape "
                                 f"{(batch, source)}, got {tuple(padding.shape)}")
            padding = padding.reshape(batch, 1, 1, source).expand(batch, h, 1, source)
            padding = padding.reshape(batch * h, 1, source)
            mask = padding if mask is None else mask + padding
        if mask is not None and extra:  # the added positions may always be attended to
            mask = ops.pad(mask, (0, extra))
        scores = (q * math.sqrt(1.0 / d)) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = scores.softmax(-1)
        if self.training and self.dropout > 0.0:
            weights = dropout(weights, self.dropout, True)
        out = (weights @ v).transpose(0, 1).reshape(length * batch, e)
        out = self.out_proj(out).reshape(length, batch, e)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not need_weights:
            return (out if batched else out.squeeze(1)), None
        weights = weights.reshape(batch, h, length, source + extra)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            return out.squeeze(1), weights.squeeze(0)
        return out, weights

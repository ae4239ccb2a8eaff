"""Lowering and fusion: trace steps become a short list of loops ("kernels").

Lowering rewrites each traced step into kernels that say exactly what happens to memory:

    s0  v4 = linear(v0, v2, v3, activation='identity')   ->  matmul_nt v4 <- v0, v2
                                                              bias_act  v4 <- v4, v3 (identity)
    s1  v5 = sigmoid(v4)                                  ->  act       v5 <- v4 (sigmoid)

Fusion then merges neighbours that touch the same elements, so each element is loaded once:

- ``linear`` + activation: the matmul writes straight into the activation's output and one
  pass adds the bias and applies the activation (``bias_act``);
- loss gradient + activation backward: ``mse_back`` then ``act_back`` is one loop;
- activation backward + bias gradient: ``act_back`` (or ``ce_back``) also sums its rows into
  the bias gradient in the same loop;
- ``clone`` of a value nobody else reads (a leaf's first gradient) writes in place of the copy.

A broadcast operand of an elementwise op ((N, D) + (D,), (x - mean) * rstd) is first read
through its broadcast strides (0 along the dims it repeats on: ``_affine_map`` of
``np.broadcast_to``, the index map the moves use) into a value of the output's shape, a
``take``. Its gradient, which the engine sums back to its shape (``sum_to_shape``: a ``sum``
over the broadcast axes, then a ``reshape``), is a ``sum`` kernel: ``np.add.reduce`` over the
same axes, the call eager mode's ``Sum`` makes, so the additions run in the same order
(pairwise along a summed last axis, row after row along the others) and give the same numbers.

A step with no lowering rule stays an ``opaque`` kernel: at replay ``interpret.py`` runs it the
eager way. If an op's forward is opaque its backward is too (the backward needs the node the
forward made), and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinynet.compile.ir import Program, Ref, Returned, Step, Value
from tinynet.kernels.conv import output_size
from tinynet.kernels.formulas import TABLE, loop_expression
from tinynet.kernels.updates import Rule

# The formula table's activations that are ops of their own (identity is only linear's).
ACTS = tuple(row.name for row in TABLE.values() if row.activation and row.name != "identity")
# ... and its arithmetic: each lowers to an elementwise loop expression, its row's formulas.
ARITHMETIC = tuple(row.name for row in TABLE.values() if not row.activation)

# Every op registered with the engine, by how compile runs it (a test checks that
# ``lowers(cls)`` or these tables cover ``Function.registry``, so a new op is thought about):
# every op of the formula table (tinynet/kernels/formulas.py) lowers, by its row; besides
# them these lower by the rules below (under the conditions in ``Lowering._op_ok``, else
# opaque) ...
LOWERED = {"Linear", "MeanSquaredError", "SoftmaxCrossEntropy", "Clone", "Sum"}
# ... and these move elements without changing them (basic indexing, reshape, permute): a copy
# in the generated code, forward and backward (an LSTM's x_proj[t] and gate chunks)
MOVES = {"GetItem": "getitem", "Reshape": "reshape", "Permute": "permute"}
LOWERED |= set(MOVES) | {"Stack"}  # stack: each input copied to its slice; back: the slices
# ... and the sequence models' ops (issue 22: embeddings, LayerNorm's means, attention), by
# the rules of "Sequence ops" below
SEQUENCE_OPS = {"EmbeddingLookup": "embedding", "Mean": "mean", "Softmax": "softmax",
                "MatMul": "matmul"}
LOWERED |= set(SEQUENCE_OPS)
# ... or run as opaque steps: the op's own forward and backward, as in eager mode.
OPAQUE = {"BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "BroadcastTo", "Cast",
          "Cat", "Clip", "LogSoftmax", "Max", "Min",
          "ScatterAdd", "Where",
          # added with the PyTorch-parity and convolution ops: run as recorded, at replay
          "Norm", "Einsum", "Gather", "ScatterAddAlong",
          # issue 21's ops (tests/opdb.py) and issue 22's sequence ops
          "Round", "NanToNum", "Remainder", "Prod", "CumProd", "Flip", "Roll", "Scatter",
          "IndexSelect", "IndexAddInto", "Triangle", "Cumsum", "ReverseCumsum", "Repeat", "Take",
          "TakeAdd", "ConstantPad",
          # issue 21's last names
          "Diagonal", "DiagEmbed"}
# (ops/datadep.py's private ops, what depends on the values: comparisons, argmax, orders,
# random draws, in-place writes of statistics, run opaque too: recomputed, drawn or written
# anew at every replay by the op's own forward)
# In-place edits through views rewrite other tensors' graphs at run time (ops/inplace.py):
# refused while tracing rather than replayed.
UNSUPPORTED = {"CopySlices"}
# Convolution and pooling (tinynet/ops/conv.py) lower by the ``_lower_conv`` family at the end
# of this file: im2col and col2im are gathers and scatter-adds through an affine map, the
# products BLAS calls in the driver, max pooling a loop.
LOWERED |= {"Convolution", "MaxPool", "Im2Col", "Col2Im"}
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def lowers(cls: type) -> bool:
    """True if steps of this op class lower to generated loops (when ``_op_ok`` agrees)."""
    return cls.__name__ in LOWERED or (cls.op in TABLE and cls.__name__ not in OPAQUE)
# Elementwise ops are expressions over their arguments {0}, {1}: what a fused loop computes
# per element, written by ``formulas.loop_expression`` from the op's row (SIGMOID/TANH become
# the scalar rules of tinynet/kernels/scalar.py, CONST(v) a number in the loop's dtype).


@dataclass
class Kernel:
    """One lowered operation: writes ``outs`` (value indices) from ``args``."""

    kind: str
    outs: list[int]
    args: list[int | None]
    attrs: dict[str, Any] = field(default_factory=dict)
    step: Step | None = None  # opaque kernels: the trace step to run eagerly
    origin: str = ""  # which trace steps it came from: "s0+s1"

    def describe(self) -> str:
        outs = ", ".join(f"v{o}" for o in self.outs) or "-"
        args = ", ".join("_" if a is None else f"v{a}" for a in self.args)
        attrs = "".join(f" {k}={v}" for k, v in self.attrs.items()
                        if k not in ("members", "params"))
        attrs += "".join(f" {k}={v!r}" for k, v in self.attrs.get("params", {}).items())
        return f"{self.origin:<10} {self.kind:<15} {outs} <- {args}{attrs}"


def _index_source(index: Any) -> str | None:
    """A basic index (integers, slices, None, ...) as source text for the generated code,
    ``(0, slice(None), slice(64, 128))`` -> ``"0, :, 64:128"``; None for any other index."""
    parts = []
    for item in index if isinstance(index, tuple) else (index,):
        if item is None or item is Ellipsis:
            parts.append("None" if item is None else "...")
        elif isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_):
            parts.append(str(int(item)))
        elif isinstance(item, slice) and all(
                v is None or (isinstance(v, int | np.integer) and not isinstance(v, bool))
                for v in (item.start, item.stop, item.step)):
            parts.append(":".join("" if v is None else str(int(v))
                                  for v in (item.start, item.stop, item.step)))
        else:
            return None
    return ", ".join(parts) or None


def _affine_map(shape: tuple[int, ...], view: Any) -> tuple[int, tuple, tuple]:
    """Where a view's elements sit in a C-contiguous array of ``shape``: element (i, j, ...)
    of ``view(array)`` is element ``base + i * strides[0] + j * strides[1] + ...`` of the flat
    array. Returns (base, sizes, strides), size-1 dims dropped and dims that run on contiguously
    merged, so the generated loop nest is as shallow as it can be."""
    positions = view(np.arange(_size(shape)).reshape(shape))
    base = int(positions.flat[0])
    dims = [(n, st // positions.itemsize) for n, st in zip(positions.shape, positions.strides,
                                                           strict=True) if n != 1]
    merged: list[tuple[int, int]] = []
    for n, st in dims:
        if merged and merged[-1][1] == st * n:  # the previous dim steps over this one whole
            merged[-1] = (merged[-1][0] * n, st)
        else:
            merged.append((n, st))
    return base, tuple(n for n, _ in merged), tuple(st for _, st in merged)


def _broadcasts(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """True if numpy broadcasts an array of ``shape`` to ``out`` (an operand of an op whose
    output has shape ``out``)."""
    return len(shape) <= len(out) and all(
        n in (1, m) for n, m in zip(shape[::-1], out[::-1], strict=False))


def _broadcast_to(shape: tuple[int, ...]) -> Any:
    """The view ``np.broadcast_to(a, shape)`` (for ``_affine_map``: strides 0 where a has a
    size-1 or missing dim)."""
    return lambda a: np.broadcast_to(a.reshape((1,) * (len(shape) - a.ndim) + a.shape), shape)


def _axes(axis: Any) -> tuple[int, ...] | None:
    """A sum's axis option as a tuple of ints (``(1,)``), or None for a full sum (or an axis
    that is not ints: then the sum is not lowered)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple | list) else (axis,)
    if not all(isinstance(d, int | np.integer) and not isinstance(d, bool) for d in items):
        return None
    return tuple(int(d) for d in items)


def _swapped(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[:-2] + (shape[-1], shape[-2])


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape of ``np.matmul`` of arrays of shapes ``a`` and ``b`` (2-d or more), or None
    if they do not multiply."""
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        return None
    try:
        return tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])
    except ValueError:
        return None


def _val(x: Any) -> int | None:
    return x.value if isinstance(x, Ref) else None


def _refs(x: Any) -> Iterator[int]:
    """The values an input or option of a step reads, however nested (gather's ``index=``,
    the tensors of ``cat``'s list)."""
    if isinstance(x, Ref):
        yield x.value
    elif isinstance(x, tuple | list):
        for item in x:
            yield from _refs(item)


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


class Lowering:
    """Turns a program's steps into kernels (``lower``), then fuses them (``fuse``)."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.values: list[Value] = list(program.values)
        self.kernels: list[Kernel] = []
        self.nodes: dict[int, dict[str, Any]] = {}  # op step -> what its backward needs

    def new_value(self, shape: tuple[int, ...], dtype: np.dtype, producer: int) -> int:
        value = Value(len(self.values), "temp", tuple(shape), np.dtype(dtype),
                      producer=producer)
        self.values.append(value)
        return value.index

    def v(self, x: Any) -> Value | None:
        i = _val(x)
        return None if i is None else self.values[i]

    # ---- lowering --------------------------------------------------------------------------

    def lower(self) -> list[Kernel]:
        lowerable = {s.index for s in self.program.steps if s.kind == "op" and self._op_ok(s)}
        for s in self.program.steps:  # a node whose backward cannot lower stays opaque whole
            if s.kind == "backward" and (s.node not in lowerable or not self._backward_ok(s)):
                lowerable.discard(s.node)
        for s in self.program.steps:
            made = None
            if s.kind == "op" and s.index in lowerable:
                made = self._lower_op(s)
            elif s.kind == "backward" and s.node in lowerable:
                made = self._lower_backward(s)
            elif s.kind == "op" and isinstance(s.options.get("rule"), Rule):
                made = self._lower_rule(s)
            if made is None:
                reads = (v for x in [*s.inputs, *s.options.values()] for v in _refs(x))
                made = [Kernel("opaque", [o.value for o in s.outputs if isinstance(o, Ref)],
                               list(dict.fromkeys(reads)), step=s)]
            for k in made:
                k.origin = k.origin or f"s{s.index}"
            self.kernels += made
        return self.kernels

    def _float2d(self, x: Any) -> bool:
        v = self.v(x)
        return v is not None and len(v.shape) == 2 and v.dtype in FLOATS

    def _float_rows(self, x: Any) -> bool:
        """A float matrix, or a batch of rows (..., features): a linear layer's input, which
        the generated code reads as the 2-d view (rows, features) of its C-contiguous array."""
        v = self.v(x)
        return v is not None and len(v.shape) >= 2 and v.dtype in FLOATS

    def _op_ok(self, s: Step) -> bool:
        ins = s.inputs
        out = self.v(s.outputs[0])
        if out is None or out.kind != "temp" or out.dtype not in FLOATS and not (
                s.name in MOVES.values() and out.dtype == np.int64):  # (targets, indices)
            return False
        if s.name in CONV_OPS:
            return _conv_ok(self, s)
        if s.name == "linear":
            x, w, b = (ins + [None])[:3]
            bv = self.v(b)
            return (self._float_rows(x) and self._float2d(w) and self.v(x).dtype == out.dtype
                    and self.v(w).dtype == out.dtype
                    and (b is None or (bv is not None and bv.shape == (self.v(w).shape[0],)
                                       and bv.dtype == out.dtype))
                    and s.options.get("activation", "identity") in ("identity", *ACTS))
        if s.name in ACTS:  # a row of the formula table; its options are the row's parameters
            return (len(ins) == 1 and self.v(ins[0]) is not None
                    and set(s.options) <= set(TABLE[s.name].defaults()))
        if s.name == "mse_loss":
            a, b = self.v(ins[0]), self.v(ins[1])
            return (a is not None and b is not None and a.shape == b.shape
                    and a.dtype == b.dtype == out.dtype
                    and s.options.get("reduction", "mean") in ("mean", "sum") and a.shape != ()
                    and int(np.prod(a.shape)) > 0)
        if s.name == "cross_entropy":
            z, t = self.v(ins[0]), self.v(ins[1])
            return (self._float2d(ins[0]) and t is not None and t.dtype == np.int64
                    and t.shape == (z.shape[0],) and z.shape[0] > 0 and z.shape[1] > 0
                    and s.options.get("reduction", "mean") in ("mean", "sum"))
        if s.name == "clone":
            return self.v(ins[0]) is not None and self.v(ins[0]).dtype == out.dtype
        if s.name in ARITHMETIC:  # operands of the output's shape, or broadcast to it
            args = [self.v(x) for x in ins]
            return not s.options and len(args) == len(TABLE[s.name].inputs) and all(
                a is not None and a.dtype == out.dtype and _broadcasts(a.shape, out.shape)
                for a in args)
        if s.name == "stack":  # inputs of one shape and the output's dtype
            args = [self.v(x) for x in ins]
            return (out.dtype in FLOATS and _size(out.shape) > 0 and all(
                a is not None and a.dtype == out.dtype and a.shape == args[0].shape
                for a in args))
        if s.name in MOVES.values():
            x = self.v(ins[0])
            return (x is not None and x.dtype == out.dtype
                    and (_size(out.shape) > 0 or s.name == "reshape")  # (a copy of nothing)
                    and (s.name != "getitem" or (out.shape != () and
                                                 _index_source(s.options.get("index")))))
        if s.name == "sum":  # all of it, or over axes (the engine's undoing of broadcasting)
            a = self.v(ins[0])
            axis = s.options.get("axis")
            return (len(ins) == 1 and a is not None and a.dtype == out.dtype
                    and set(s.options) <= {"axis", "keepdims"}
                    and (_size(out.shape) == 1 if axis is None else _axes(axis) is not None))
        if s.name in SEQUENCE_OPS.values():
            return self._sequence_op_ok(s, out)
        return False

    def _backward_ok(self, s: Step) -> bool:
        if s.name in CONV_OPS:
            return _conv_backward_ok(self, s)
        if s.name in ("linear", "cross_entropy", "mse_loss", *ACTS):
            return s.fast
        if s.name in ARITHMETIC or s.name == "sum":  # rules on Tensors: no fast path
            g = self.v(s.inputs[0]) if s.inputs else None
            if g is None:
                return False
            # add/sub/mul/neg give gradients of the upstream gradient's shape (the engine undoes
            # broadcasting after the rule); sum's rule spreads it to its input's shape
            return s.name == "sum" or all(self.v(o) is None or self.v(o).shape == g.shape
                                          for o in s.outputs)
        if s.name == "stack":  # each input's gradient: its slice of g
            g = self.v(s.inputs[0]) if s.inputs else None
            node_inputs = [self.v(x) for x in self.program.steps[s.node].inputs]
            return g is not None and len(s.outputs) == len(node_inputs) and all(
                o is None or (self.v(o) is not None and self.v(o).shape == x.shape
                              and self.v(o).dtype == g.dtype)
                for o, x in zip(s.outputs, node_inputs, strict=True))
        if s.name in MOVES.values():  # the gradient moved back: one output, the input's shape
            g = self.v(s.inputs[0]) if s.inputs else None
            node_input = self.v(self.program.steps[s.node].inputs[0])
            dx = self.v(s.outputs[0]) if len(s.outputs) == 1 else None
            return (g is not None and dx is not None and node_input is not None
                    and dx.shape == node_input.shape and dx.dtype == g.dtype)
        if s.name in SEQUENCE_OPS.values():
            return self._sequence_backward_ok(s)
        return False  # clone lowers only as gradient plumbing, where nothing differentiates

    def _lower_op(self, s: Step) -> list[Kernel]:
        out = s.outputs[0].value
        ins = [_val(x) for x in s.inputs]
        if s.name in CONV_OPS:
            return _lower_conv(self, s, ins, out)
        if s.name == "linear":
            x, w = ins[0], ins[1]
            b = ins[2] if len(ins) > 2 else None
            act = s.options.get("activation", "identity")
            # Over batches of rows (N, T, in) the products are numpy's, as eager's, however
            # small: a loop's order of additions differs from BLAS's in the last bit, and in an
            # attention layer the keys' bias has a gradient that is only rounding noise (the
            # softmax ignores a shift shared by all keys), which Adam scales up to lr per step.
            blas = {"blas": True} if len(self.values[x].shape) > 2 else {}
            self.nodes[s.index] = {"x": x, "w": w, "y": out, "act": act, "params": {},
                                   "blas": blas}
            return [Kernel("matmul_nt", [out], [x, w], dict(blas)),
                    Kernel("bias_act", [out], [out, b], {"act": act, "params": {}})]
        if s.name in ACTS:
            params = {**TABLE[s.name].defaults(), **s.options}
            self.nodes[s.index] = {"x": ins[0], "y": out, "params": params}
            return [Kernel("act", [out], [ins[0]], {"act": s.name, "params": params})]
        if s.name == "mse_loss":
            a, b = ins[0], ins[1]
            n = int(np.prod(self.values[a].shape))
            self.nodes[s.index] = {"a": a, "b": b, "n": n,
                                   "reduction": s.options.get("reduction", "mean")}
            divisor = n if s.options.get("reduction", "mean") == "mean" else 1
            return [Kernel("mse", [out], [a, b], {"divisor": divisor})]
        if s.name == "cross_entropy":
            z, t = ins[0], ins[1]
            zv = self.values[z]
            probs = self.new_value(zv.shape, zv.dtype, s.index)
            losses = self.new_value((zv.shape[0],), zv.dtype, s.index)
            mean = s.options.get("reduction", "mean") == "mean"
            ignore = int(s.options.get("ignore_index", -100))
            self.nodes[s.index] = {"probs": probs, "t": t, "mean": mean, "ignore_index": ignore}
            return [Kernel("ce", [out, probs, losses], [z, t],
                           {"mean": mean, "ignore_index": ignore})]
        if s.name == "clone":
            return [Kernel("copy", [out], [ins[0]])]
        if s.name in ARITHMETIC:
            row = TABLE[s.name]
            kernels = []
            shape = self.values[out].shape
            for i, a in enumerate(ins):  # a broadcast operand: read through its strides (0 on
                va = self.values[a]  # the broadcast dims) into a value of the output's shape
                if va.shape != shape and _size(va.shape) != 1 and _size(shape) > 0:
                    ins[i] = self.new_value(shape, va.dtype, s.index)
                    kernels.append(Kernel("take", [ins[i]], [a], {"broadcast": shape,
                                          "map": _affine_map(va.shape, _broadcast_to(shape))}))
            # the backward rule reads the operands broadcast too: it reads these
            self.nodes[s.index] = {**dict(zip(row.inputs, ins, strict=True)), "y": out}
            return kernels + [Kernel("ew", [out], ins, {"expr": loop_expression(row, "forward")})]
        if s.name == "stack":  # input i is the output's slice [..., i, ...] along dim
            shape = self.values[out].shape
            dim = int(s.options.get("dim", 0))
            lead = (slice(None),) * dim
            maps = [_affine_map(shape, lambda a, i=i: a[lead + (i,)]) for i in range(len(ins))]
            self.nodes[s.index] = {"maps": maps, "shape": shape}
            return [Kernel("stack", [out], ins, {"dim": dim, "maps": maps})]
        if s.name == "reshape":  # C-order in and out: the same elements in the same order
            self.nodes[s.index] = {}
            return [Kernel("reshape", [out], [ins[0]])]
        shape = self.values[ins[0]].shape
        if s.name == "permute":
            dims = tuple(int(d) for d in s.options["dims"])
            inverse = tuple(int(d) for d in np.argsort(dims))
            self.nodes[s.index] = {"dims": inverse, "shape": self.values[out].shape}
            return [Kernel("take", [out], [ins[0]], {"dims": dims, "map": _affine_map(
                shape, lambda a: a.transpose(dims))})]
        if s.name == "getitem":
            index = s.options["index"]
            self.nodes[s.index] = {"index": _index_source(index),
                                   "map": _affine_map(shape, lambda a: a[index])}
            return [Kernel("take", [out], [ins[0]], {"index": _index_source(index),
                                                     "map": self.nodes[s.index]["map"]})]
        if s.name == "sum":
            keepdims = bool(s.options.get("keepdims", False))
            axes = _axes(s.options.get("axis"))
            if axes is not None:  # (-1,) -> (ndim - 1,), for the backward's broadcast map
                axes = tuple(d % max(len(shape), 1) for d in axes)
            self.nodes[s.index] = {"axes": axes, "shape": shape}
            return [Kernel("sum", [out], [ins[0]], {"keepdims": keepdims} if axes is None
                           else {"axis": axes, "keepdims": keepdims})]
        if s.name in SEQUENCE_OPS.values():
            return self._lower_sequence_op(s, out, ins)
        raise AssertionError(s.name)

    def _lower_backward(self, s: Step) -> list[Kernel] | None:
        node = self.nodes.get(s.node)
        if node is None:
            return None
        g = _val(s.inputs[0])
        if g is None:
            return None
        outs = [_val(o) for o in s.outputs]
        if s.name in CONV_OPS:
            return _lower_conv_backward(self, s, node, g, outs)
        if s.name == "linear":
            dx, dw, db = (outs + [None, None, None])[:3]
            kernels = []
            dz = g
            if node["act"] != "identity":
                gv = self.values[g]
                dz = self.new_value(gv.shape, gv.dtype, s.index)
                kernels.append(Kernel("act_back", [dz], [g, node["y"]],
                                      {"act": node["act"], "params": {}}))
            if db is not None:
                kernels.append(Kernel("colsum", [db], [dz]))
            if dw is not None:
                kernels.append(Kernel("matmul_tn", [dw], [dz, node["x"]], dict(node["blas"])))
            if dx is not None:
                kernels.append(Kernel("matmul_nn", [dx], [dz, node["w"]], dict(node["blas"])))
            return kernels
        if s.name in ACTS:  # g and what the row saves (the input x or the output y)
            saved = [node[name] for name in TABLE[s.name].saves]
            return [Kernel("act_back", [outs[0]], [g, *saved],
                           {"act": s.name, "params": node["params"]})]
        if s.name == "mse_loss":
            da, db = (outs + [None, None])[:2]
            if da is None:
                return None
            scale = 2.0 / node["n"] if node["reduction"] == "mean" else 2.0
            return [Kernel("mse_back", [da] + ([db] if db is not None else []),
                           [g, node["a"], node["b"]], {"scale": scale})]
        if s.name == "cross_entropy":
            if outs[0] is None:
                return None
            return [Kernel("ce_back", [outs[0]], [g, node["probs"], node["t"]],
                           {"mean": node["mean"], "ignore_index": node["ignore_index"]})]
        if s.name == "sum":  # spreads g over its input's shape (the loop's size-1 argument,
            if outs[0] is None:  # or read through broadcast strides: 0 on the summed axes)
                return []
            shape, axes = node["shape"], node["axes"]
            if axes is None or _size(self.values[g].shape) == 1 or _size(shape) == 0:
                return [Kernel("ew", [outs[0]], [g], {"expr": "{0}"})]
            kept = tuple(1 if d in axes else n for d, n in enumerate(shape))
            return [Kernel("take", [outs[0]], [g], {"broadcast": shape, "map": _affine_map(
                kept, _broadcast_to(shape))})]
        if s.name == "reshape":
            return [Kernel("reshape", [outs[0]], [g])]
        if s.name == "permute":
            dims = node["dims"]
            return [Kernel("take", [outs[0]], [g], {"dims": dims, "map": _affine_map(
                node["shape"], lambda a: a.transpose(dims))})]
        if s.name == "stack":  # input i's gradient: slice i of g (a take, as getitem's)
            return [Kernel("take", [o], [g], {"index": "stack", "map": m})
                    for o, m in zip(outs, node["maps"], strict=True) if o is not None]
        if s.name == "getitem":  # zeros, and the gradient where the elements came from
            return [Kernel("put", [outs[0]], [g], {"index": node["index"],
                                                   "map": node["map"]})]
        if s.name in SEQUENCE_OPS.values():
            return self._lower_sequence_backward(s, node, g, outs)
        if s.name not in ARITHMETIC:
            return None
        # each input's gradient by its row (before the engine undoes broadcasting)
        row = TABLE[s.name]
        saved = [node[name] for name in row.saves]
        return [Kernel("ew", [out], [g, *saved], {"expr": loop_expression(row, i)})
                for i, out in enumerate(outs) if out is not None]

    def _lower_rule(self, s: Step) -> list[Kernel] | None:
        """An op that applies a per-element rule in place (``kernels/updates.py``: an
        optimizer's update of one parameter): one ``rule`` kernel, the loop generated from the
        rule, writing the step's outputs (the arrays the rule writes) and taking the numbers
        ``read()`` gives at each replay. Arrays of one float dtype and shape only."""
        values = [self.v(x) for x in s.inputs]
        first = values[0]
        if any(v is None for v in values) or first.dtype not in FLOATS or any(
                v.dtype != first.dtype or v.shape != first.shape for v in values):
            return None
        return [Kernel("rule", [_val(o) for o in s.outputs], [v.index for v in values],
                       {"rule": s.options["rule"], "read": s.options["read"]})]

    # ---- sequence ops (issue 22): embeddings, LayerNorm's means, attention -----------------
    # Each computes what eager mode computes, in its order: the embedding's gradient adds the
    # rows in index order (as np.add.at), a mean is numpy's sum then a division, a softmax
    # is eager's kernel (kernels.compiled.softmax_rows: rows summed pairwise, numpy's order),
    # batched matmuls are numpy's matmul.

    def _sequence_op_ok(self, s: Step, out: Value) -> bool:
        ins = [self.v(x) for x in s.inputs]
        if any(v is None or v.dtype != out.dtype for v in ins):
            return False
        if s.name == "embedding":  # rows of a table at int64 indices (no padding_idx scale)
            index = self.v(s.options.get("index"))
            return (len(ins) == 1 and len(ins[0].shape) == 2 and index is not None
                    and index.dtype == np.int64 and s.options.get("scale") is None)
        if s.name == "mean":
            axis = s.options.get("axis")
            return (len(ins) == 1 and set(s.options) <= {"axis", "keepdims"}
                    and (axis is None or _axes(axis) is not None))
        if s.name == "softmax":  # along the last axis
            shape, dim = ins[0].shape, s.options.get("dim", -1)
            return (len(ins) == 1 and set(s.options) <= {"dim"} and len(shape) >= 1
                    and _size(shape) > 0 and isinstance(dim, int | np.integer)
                    and dim % len(shape) == len(shape) - 1)
        if s.name == "matmul":  # matrices, or batches of them broadcast as numpy does
            return len(ins) == 2 and out.shape == _matmul_shape(ins[0].shape, ins[1].shape)
        return False

    def _sequence_backward_ok(self, s: Step) -> bool:
        g = self.v(s.inputs[0]) if s.inputs else None
        outs = [self.v(o) for o in s.outputs]
        node_ins = [self.v(x) for x in self.program.steps[s.node].inputs]
        if g is None or any(o is not None and o.dtype != g.dtype for o in outs):
            return False
        if s.name == "matmul":  # dA = G @ B^T, dB = A^T @ G, batch dims still broadcast
            a, b = node_ins
            shapes = (_matmul_shape(g.shape, _swapped(b.shape)),
                      _matmul_shape(_swapped(a.shape), g.shape))
            return len(outs) == 2 and all(o is None or o.shape == shape
                                          for o, shape in zip(outs, shapes, strict=True))
        # one gradient, of the node's input's shape (embedding: the table's)
        return len(outs) == 1 and outs[0] is not None and outs[0].shape == node_ins[0].shape

    def _lower_sequence_op(self, s: Step, out: int, ins: list[int]) -> list[Kernel]:
        x = ins[0]
        shape = self.values[x].shape
        if s.name == "embedding":
            index = _val(s.options["index"])
            self.nodes[s.index] = {"index": index}
            return [Kernel("gather", [out], [x, index])]
        if s.name == "mean":  # eager: np.add.reduce, then total / dtype(count)
            keepdims = bool(s.options.get("keepdims", False))
            axes = _axes(s.options.get("axis"))
            if axes is not None:
                axes = tuple(d % max(len(shape), 1) for d in axes)
            out_size = _size(self.values[out].shape)
            count = _size(shape) // out_size if out_size else 0
            self.nodes[s.index] = {"axes": axes, "shape": shape, "scale": 1.0 / (count or 1)}
            total = self.new_value(self.values[out].shape, self.values[out].dtype, s.index)
            return [Kernel("sum", [total], [x], {"keepdims": keepdims} if axes is None
                           else {"axis": axes, "keepdims": keepdims}),
                    Kernel("ew", [out], [total], {"expr": f"{{0}} / CONST({float(count)!r})"})]
        if s.name == "softmax":
            self.nodes[s.index] = {"y": out}
            return [Kernel("softmax", [out], [x])]
        self.nodes[s.index] = {"a": x, "b": ins[1]}  # matmul
        return [Kernel("bmm", [out], [x, ins[1]], {"ta": False, "tb": False})]

    def _lower_sequence_backward(self, s: Step, node: dict[str, Any], g: int,
                                 outs: list[int | None]) -> list[Kernel]:
        if s.name == "embedding":  # zeros, then each position's gradient added to its row
            return [Kernel("scatter_add", [outs[0]], [g, node["index"]])]
        if s.name == "softmax":  # dx = s * (g - sum(g * s)), row by row
            return [Kernel("softmax_back", [outs[0]], [g, node["y"]])]
        if s.name == "matmul":
            da, db = outs
            return ([Kernel("bmm", [da], [g, node["b"]], {"ta": False, "tb": True})]
                    if da is not None else []) + (
                [Kernel("bmm", [db], [node["a"], g], {"ta": True, "tb": False})]
                if db is not None else [])
        # mean: eager spreads g * (1/count) over the input's shape, as sum spreads g
        scaled = f"{{0}} * CONST({node['scale']!r})"
        shape, axes, gv = node["shape"], node["axes"], self.values[g]
        if axes is None or _size(gv.shape) == 1 or _size(shape) == 0:
            return [Kernel("ew", [outs[0]], [g], {"expr": scaled})]
        t = self.new_value(gv.shape, gv.dtype, s.index)
        kept = tuple(1 if d in axes else n for d, n in enumerate(shape))
        return [Kernel("ew", [t], [g], {"expr": scaled}),
                Kernel("take", [outs[0]], [t], {"broadcast": shape, "map": _affine_map(
                    kept, _broadcast_to(shape))})]

    # ---- fusion ----------------------------------------------------------------------------

    def readers(self, value: int) -> list[Kernel]:
        return [k for k in self.kernels if value in k.args and value not in k.outs]

    def pinned(self) -> set[int]:
        """Values the caller sees after the call (returned, or left in a ``.grad``)."""
        found = {ref.value for _, ref in self.program.final_grads if ref is not None}

        def walk(x: Any) -> None:
            if isinstance(x, Ref):
                found.add(x.value)
            elif isinstance(x, Returned) and x.value is not None:
                found.add(x.value)
            elif isinstance(x, tuple | list):
                for item in x:
                    walk(item)
            elif isinstance(x, dict):
                for item in x.values():
                    walk(item)

        walk(self.program.result)
        return found

    def fuse(self) -> list[Kernel]:
        pinned = self.pinned()
        ks = self.kernels

        def only_reader(value: int, kernel: Kernel) -> bool:
            return value not in pinned and self.readers(value) == [kernel]

        # linear + activation: matmul into the activation's output, bias and act in one pass
        for i, k in enumerate(ks):
            if k.kind == "bias_act" and k.attrs["act"] == "identity":
                y = k.outs[0]
                nxt = self.readers(y)
                if len(nxt) == 1 and nxt[0].kind == "act" and y not in pinned:
                    act = nxt[0]
                    mm = ks[i - 1]
                    mm.outs = [act.outs[0]]
                    k.outs, k.args = [act.outs[0]], [act.outs[0], k.args[1]]
                    k.attrs["act"] = act.attrs["act"]
                    k.attrs["params"] = act.attrs["params"]
                    k.origin = mm.origin = f"{k.origin}+{act.origin}"
                    ks.remove(act)
        _fuse_conv_act(self, ks, pinned)  # convolution + activation: one pass, as linear's
        # loss gradient + activation backward in one loop
        for k in list(ks):
            if k.kind == "mse_back" and len(k.outs) == 1:
                nxt = self.readers(k.outs[0])
                if len(nxt) == 1 and nxt[0].kind == "act_back" and only_reader(k.outs[0],
                                                                                nxt[0]):
                    back = nxt[0]
                    back.kind = "mse_act_back"
                    back.args = k.args + [back.args[1]]
                    back.attrs["scale"] = k.attrs["scale"]
                    back.origin = f"{k.origin}+{back.origin}"
                    ks.remove(k)
        # activation backward (or CE backward) + the bias gradient's column sums
        for k in list(ks):
            if k.kind == "colsum":
                src = k.args[0]
                producer = next((p for p in ks if src in p.outs and p.kind in (
                    "act_back", "mse_act_back", "mse_back", "ce_back") and "sums" not in p.attrs),
                    None)
                if producer is not None and len(self.values[src].shape) >= 2:
                    producer.outs.append(k.outs[0])
                    producer.attrs["sums"] = True
                    producer.origin = f"{producer.origin}+{k.origin}"
                    ks.remove(k)
        # clone of a value nobody else reads: write the clone's output in its place
        for k in list(ks):
            if k.kind == "copy":
                src = k.args[0]
                producer = next((p for p in ks if src in p.outs), None)
                if (producer is not None and producer.kind != "opaque"
                        and self.values[src].kind == "temp" and only_reader(src, k)
                        and producer.outs.count(src) == 1 and src not in producer.args):
                    producer.outs[producer.outs.index(src)] = k.outs[0]
                    producer.origin = f"{producer.origin}+{k.origin}"
                    ks.remove(k)
        self.kernels = ks = self._fuse_loops(ks, pinned)
        return ks

    # ---- elementwise loops -----------------------------------------------------------------

    def _as_expr(self, k: Kernel) -> Kernel | None:
        """An elementwise kernel in expression form (``ew``), or None if it is not one."""
        if k.kind == "ew":
            return k
        if k.kind == "act":
            expr = loop_expression(TABLE[k.attrs["act"]], "forward", k.attrs["params"])
        elif k.kind == "act_back" and "sums" not in k.attrs:
            expr = loop_expression(TABLE[k.attrs["act"]], 0, k.attrs["params"])
        elif k.kind in ("copy", "reshape"):
            expr = "{0}"
        elif k.kind == "take":  # element e read from where it sits in the source (its "map")
            return Kernel("ew", list(k.outs), list(k.args), {"expr": "{0}", "map": k.attrs["map"]},
                          origin=k.origin)
        else:
            return None
        return Kernel("ew", list(k.outs), list(k.args), {"expr": expr}, origin=k.origin)

    def _fuse_loops(self, ks: list[Kernel], pinned: set[int]) -> list[Kernel]:
        """Runs of elementwise kernels over the same number of elements become one ``loop``:
        each element is loaded once, and values only the run reads stay in registers. A
        full ``sum`` met inside a run is moved after it (nothing in the run reads its result),
        so a forward and its backward can share one loop."""
        result: list[Kernel] = []
        group: list[Kernel] = []  # the run's kernels as they are in ``ks``
        deferred: list[Kernel] = []

        def close() -> None:
            if len(group) == 1 and group[0].kind == "take":  # alone: its own nested loops
                result.append(group[0])
            elif group:
                result.append(self._loop(list(group), ks, pinned))
            group.clear()
            result.extend(deferred)
            deferred.clear()

        for k in ks:
            if self._as_expr(k) is not None:
                n = _size(self.values[k.outs[0]].shape)
                waits = {o for d in deferred for o in d.outs}
                if k.kind == "take":  # it reads other elements than e: not this run's values
                    waits |= {o for g in group for o in g.outs}
                first = self.values[group[0].outs[0]] if group else None
                if group and (n != _size(first.shape) or any(a in waits for a in k.args)
                              or self.values[k.outs[0]].dtype != first.dtype):
                    close()
                group.append(k)
            elif k.kind == "sum" and group:
                deferred.append(k)
            else:
                close()
                result.append(k)
        close()
        return result

    def _loop(self, group: list[Kernel], ks: list[Kernel], pinned: set[int]) -> Kernel:
        """One loop for ``group``: it stores the values read after it (or kept by the caller)
        and reads the values made before it."""
        made = {o for k in group for o in k.outs}
        read_elsewhere = {a for k in ks if all(k is not g for g in group) for a in k.args}
        outs = [o for o in dict.fromkeys(o for k in group for o in k.outs)
                if o in pinned or o in read_elsewhere or self.values[o].kind != "temp"]
        args = [a for a in dict.fromkeys(a for k in group for a in k.args)
                if a is not None and a not in made]
        n = _size(self.values[group[0].outs[0]].shape)
        members = [self._as_expr(k) for k in group]
        attrs: dict[str, Any] = {"n": n, "members": members}
        moved = [f"v{k.args[0]} " + " ".join(f"{a}={k.attrs[a]}" for a in ("broadcast", "dims",
                                                                          "index") if a in k.attrs)
                 for k in group if k.kind == "take"]
        if moved:  # the takes read in the loop, as explain() shows them
            attrs["reads"] = ", ".join(moved)
        return Kernel("loop", outs, args, attrs,
                      origin="+".join(dict.fromkeys(k.origin for k in group)))


# ---- convolution and pooling: the _lower_conv family -------------------------------------------
# The ops of tinynet/ops/conv.py, lowered to what eager mode runs, in the same order:
#
#   convolution  ->  [put: zeros around x]  im2col  conv_mm: W @ cols (BLAS, per sample
#                    and group, eager's np.matmul)  channel_bias: + b, then the activation
#   its backward ->  conv_mm_dx: W^T @ g, put (adding): col2im  [take: the image inside the
#                    padding];  conv_mm_dw: cols @ g^T per sample, sum over samples, take:
#                    each group's (K, O/G) block as the weight's (O/G, K);  sum: db
#   max_pool2d   ->  max_pool: each window's first maximum and where it was (argmax);
#                    its backward max_pool_back adds each gradient at its argmax
#
# im2col is a view of the (padded) image, an affine index map like a broadcast's, copied by
# a ``take`` in a segment (its loop reads from where the map starts, so LLVM vectorises it:
# codegen's ``_copy``); col2im, its adjoint, is a ``put`` that adds,
# visiting the columns in order as the eager col2im kernel does, so every pixel sums its taps
# in the same order.

CONV_OPS = ("convolution", "max_pool2d", "im2col", "col2im")


def _geometry(s: Step, kernel: tuple[int, int] | None = None) -> tuple[tuple[int, ...], ...]:
    """A step's (kernel, stride, padding (top, bottom, left, right), dilation)."""
    o = s.options
    return (tuple(kernel or o.get("kernel", (1, 1))), tuple(o.get("stride", (1, 1))),
            tuple(o.get("padding", (0, 0, 0, 0))), tuple(o.get("dilation", (1, 1))))


def _padded(shape: tuple[int, ...], padding: tuple[int, ...]) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, c, h + padding[0] + padding[1], w + padding[2] + padding[3])


def _inside_padding(shape: tuple[int, ...], padding: tuple[int, ...]) -> tuple:
    """The map of the image inside its padding: ``padded[:, :, top:top + H, left:left + W]``."""
    top, left, (h, w) = padding[0], padding[2], shape[2:]
    return _affine_map(_padded(shape, padding), lambda a: a[:, :, top:top + h, left:left + w])


def _windows(shape: tuple[int, ...], kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """im2col's map: element (n, c, i, j, p, q) of the columns (N, C*kh*kw, OH*OW) is pixel
    (n, c, p*sh + i*dh, q*sw + j*dw) of a padded image of ``shape``."""
    out_hw = [output_size(shape[2 + d], kernel[d], stride[d], 0, 0, dilation[d]) for d in (0, 1)]

    def view(a: np.ndarray) -> np.ndarray:
        s0, s1, s2, s3 = a.strides
        return as_strided(a, (*a.shape[:2], *kernel, *out_hw), (
            s0, s1, s2 * dilation[0], s3 * dilation[1], s2 * stride[0], s3 * stride[1]))
    return _affine_map(shape, view)


def _im2col(low: Lowering, step: int, x: int, cols: int, kernel: tuple, stride: tuple,
            padding: tuple, dilation: tuple) -> list[Kernel]:
    """cols <- im2col(x): a copy of x into zeros first when there is padding, then a take."""
    xv = low.values[x]
    kernels = []
    if any(padding):
        padded = low.new_value(_padded(xv.shape, padding), xv.dtype, step)
        kernels.append(Kernel("put", [padded], [x], {"pad": padding,
                                                    "map": _inside_padding(xv.shape, padding)}))
        x = padded
    return kernels + [Kernel("im2col", [cols], [x], {"windows": kernel, "map": _windows(
        low.values[x].shape, kernel, stride, dilation)})]


def _col2im(low: Lowering, step: int, cols: int, x: int, kernel: tuple, stride: tuple,
            padding: tuple, dilation: tuple) -> list[Kernel]:
    """x <- col2im(cols): every column entry added onto its pixel (of the padded image, then
    the image is taken out of the padding)."""
    xv = low.values[x]
    target = low.new_value(_padded(xv.shape, padding), xv.dtype, step) if any(padding) else x
    kernels = [Kernel("put", [target], [cols], {"windows": kernel, "add": True, "map": _windows(
        low.values[target].shape, kernel, stride, dilation)})]
    if target != x:
        kernels.append(Kernel("take", [x], [target], {"pad": padding,
                                                     "map": _inside_padding(xv.shape, padding)}))
    return kernels


def _conv_ok(low: Lowering, s: Step) -> bool:
    """Float arrays of the output's dtype, none empty; images 4-D (col2im's columns 3-D)."""
    ins = [low.v(x) for x in s.inputs]
    out = low.v(s.outputs[0])
    arrays = [v for v in ins if v is not None]
    if ins[0] is None or any(v.dtype != out.dtype or _size(v.shape) == 0
                             for v in arrays + [out]):
        return False
    if s.name == "col2im":
        return len(ins[0].shape) == 3 and len(out.shape) == 4
    if s.name == "convolution":
        w, b = ins[1], (ins + [None])[2]
        return (w is not None and len(w.shape) == 4 and len(ins[0].shape) == 4
                and (b is None or b.shape == (w.shape[0],)))
    return len(ins[0].shape) == 4


def _conv_backward_ok(low: Lowering, s: Step) -> bool:
    """A convolution's and a max pool's backward on arrays (the engine's fast path);
    im2col's and col2im's rules are each other, on Tensors."""
    g = low.v(s.inputs[0]) if s.inputs else None
    return g is not None and (s.fast or s.name in ("im2col", "col2im"))


def _lower_conv(low: Lowering, s: Step, ins: list, out: int) -> list[Kernel]:
    values = low.values
    if s.name == "convolution":
        x, w, b = (ins + [None])[:3]
        n, c = values[x].shape[:2]
        geometry = _geometry(s, values[w].shape[2:])
        kh, kw = geometry[0]
        oh, ow = values[out].shape[2:]
        cols = low.new_value((n, c * kh * kw, oh * ow), values[x].dtype, s.index)
        groups = int(s.options.get("groups", 1))
        low.nodes[s.index] = {"w": w, "cols": cols, "groups": groups, "geometry": geometry}
        return _im2col(low, s.index, x, cols, *geometry) + [
            Kernel("conv_mm", [out], [w, cols], {"groups": groups}),
            Kernel("channel_bias", [out], [out, b], {"act": "identity", "params": {}})]
    if s.name == "max_pool2d":
        argmax = low.new_value(values[out].shape, np.dtype(np.int64), s.index)
        low.nodes[s.index] = {"argmax": argmax}
        return [Kernel("max_pool", [out, argmax], [ins[0]], {"geometry": _geometry(s)})]
    low.nodes[s.index] = {"geometry": _geometry(s)}
    if s.name == "im2col":
        return _im2col(low, s.index, ins[0], out, *_geometry(s))
    return _col2im(low, s.index, ins[0], out, *_geometry(s))


def _lower_conv_backward(low: Lowering, s: Step, node: dict, g: int,
                         outs: list) -> list[Kernel]:
    dx = outs[0]
    if s.name == "max_pool2d":
        return [Kernel("max_pool_back", [dx], [g, node["argmax"]])] if dx is not None else []
    if s.name in ("im2col", "col2im"):  # each other's adjoint
        adjoint = _col2im if s.name == "im2col" else _im2col
        return adjoint(low, s.index, g, dx, *node["geometry"]) if dx is not None else []
    dw, db = (outs + [None, None])[1:3]
    cols, w, groups, dt = node["cols"], node["w"], node["groups"], low.values[g].dtype
    kernels = []
    if dx is not None:
        dcols = low.new_value(low.values[cols].shape, dt, s.index)
        kernels += [Kernel("conv_mm_dx", [dcols], [w, g], {"groups": groups}),
                    *_col2im(low, s.index, dcols, dx, *node["geometry"])]
    if dw is not None:  # as eager: one product per sample and group, cols @ g^T (G, K,
        # O/G), summed over the samples, each group's block turned to the weight's (O/G, K)
        n, rows = low.values[cols].shape[:2]
        shape = (groups, rows // groups, low.values[w].shape[0] // groups)
        products = low.new_value((n, *shape), dt, s.index)
        summed = low.new_value(shape, dt, s.index)
        kernels += [Kernel("conv_mm_dw", [products], [g, cols], {"groups": groups}),
                    Kernel("sum", [summed], [products], {"axis": (0,), "keepdims": False}),
                    Kernel("take", [dw], [summed], {"dims": (0, 2, 1), "map": _affine_map(
                        shape, lambda a: a.transpose(0, 2, 1))})]
    if db is not None:
        kernels.append(Kernel("sum", [db], [g], {"axis": (0, 2, 3), "keepdims": False}))
    return kernels


def _fuse_conv_act(low: Lowering, ks: list[Kernel], pinned: set[int]) -> None:
    """A convolution followed by an activation that alone reads it: the product writes into
    the activation's output and ``channel_bias`` adds the bias and applies it, plane by plane
    (as ``linear`` + activation)."""
    for k in list(ks):
        if k.kind != "channel_bias" or k.attrs["act"] != "identity":
            continue
        y = k.outs[0]
        readers = low.readers(y)
        if len(readers) == 1 and readers[0].kind == "act" and y not in pinned:
            act = readers[0]
            product = next(p for p in ks if p.kind == "conv_mm" and p.outs == [y])
            product.outs = [act.outs[0]]
            k.outs, k.args = [act.outs[0]], [act.outs[0], k.args[1]]
            k.attrs = {"act": act.attrs["act"], "params": act.attrs["params"]}
            k.origin = product.origin = f"{k.origin}+{act.origin}"
            ks.remove(act)

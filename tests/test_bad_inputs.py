"""Bad inputs: every public entry point, tried with what users get wrong.

Two tables drive this file:

- ``CATALOGUE``: one ``Case`` per (function, bad input), with what must happen -- a tinynet
  error of a given class whose message names the function and the shapes/dtypes involved, or
  a correct answer (checked against numpy's or PyTorch's semantics). docs/errors.md is
  generated from it: ``python tests/test_bad_inputs.py --write-docs``; a test fails when the
  file is out of date.
- ``SWEEP``: every function with an input slot x every value in ``BAD_VALUES`` (ints where
  floats are needed, object arrays, strings, None, ragged lists, NaN/inf, empty and 0-d
  tensors, non-contiguous, negative-stride and read-only arrays...). Each pair must either
  answer or raise a ``TinynetError``; nothing may escape from deep inside numpy or numba.

Three Python protocols keep their builtin exceptions, as in numpy and PyTorch: an index out of
range raises IndexError (``for`` loops rely on it), ``len()``/iteration of a 0-d tensor raise
TypeError, and a missing file raises FileNotFoundError.

A last section puts files under faults: ``tn.save`` interrupted at any byte (and in a process
killed with SIGKILL), ``os.replace`` failing, and checkpoints with missing, extra, mis-shaped,
mis-typed or NaN entries loaded into a model.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinynet as tn
import tinynet.io as tio
import tinynet.nn.functional as F
from tinynet import data, nn, optim
from tinynet.errors import (
    CompileError,
    DTypeError,
    DTypeMismatchError,
    FileFormatError,
    GraphError,
    ShapeError,
    TinynetError,
    ValueRangeError,
)
from tinynet.nn import ClassIndexError, StateDictError

REPO = Path(__file__).resolve().parents[1]
ERRORS_DOC = REPO / "docs" / "errors.md"
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / f"tinynet-bad-inputs-{os.getpid()}"

# Builtin exceptions kept for Python protocols (see the module docstring).
PROTOCOL_ERRORS = (IndexError, FileNotFoundError)


@pytest.fixture(autouse=True, scope="module")
def _remove_work_folder() -> Any:
    yield
    shutil.rmtree(WORK, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    function: str  # as users call it
    bad: str  # what is wrong with the input
    call: Callable[[], Any] = dataclasses.field(repr=False)
    error: type[BaseException] | None = None  # None: a correct answer is expected
    mentions: tuple[str, ...] = ()  # what the message must name
    check: Callable[[Any], None] | None = dataclasses.field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.function} <- {self.bad}"


def raises(error: type[BaseException], *mentions: str) -> dict[str, Any]:
    return {"error": error, "mentions": mentions}


def answers(check: Callable[[Any], None]) -> dict[str, Any]:
    return {"check": check}


def equals(expected: Any, dtype: Any = None) -> dict[str, Any]:
    """The result is a Tensor equal to ``expected`` (NaN where NaN), of ``dtype`` if given."""

    def check(result: Any) -> None:
        assert isinstance(result, tn.Tensor), type(result)
        np.testing.assert_array_equal(result.data, np.asarray(expected))
        if dtype is not None:
            assert result.dtype == np.dtype(dtype), result.dtype

    return answers(check)


def ro(values: Any, dtype: Any = np.float32) -> np.ndarray:
    """A read-only array."""
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


def strided() -> np.ndarray:
    """A non-contiguous float32 view: every other column of a (3, 4) array."""
    return np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]


def reversed_view() -> np.ndarray:
    """A view with a negative stride."""
    return np.arange(3, dtype=np.float32)[::-1]


def leaf(*shape: int) -> tn.Tensor:
    return tn.ones(*shape, requires_grad=True)


def model() -> nn.Module:
    tn.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))


def with_grad(param: nn.Parameter, grad: Any) -> nn.Parameter:
    param.grad = grad
    return param


def _state(**changes: Any) -> dict[str, Any]:
    """model()'s state dict with entries replaced (None: removed)."""
    state = model().state_dict()
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            state.pop(key)
        else:
            state[key] = value
    return state


def _nan_weight() -> np.ndarray:
    weight = model().state_dict()["0.weight"]
    weight[1, 0] = np.nan
    weight[2, 1] = np.inf
    return weight


def _read_only_model() -> nn.Module:
    m = model()
    m[0].weight = nn.Parameter(tn.from_numpy(ro(np.zeros((3, 2)))))
    return m


def _sgd_step(param: nn.Parameter, **options: Any) -> nn.Parameter:
    optim.SGD([param], lr=0.1, **options).step()
    return param


def _batches(loader: data.DataLoader) -> list[Any]:
    return list(loader)


def _path(name: str) -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    return str(WORK / name)


def _bomb() -> str:
    """A 600-byte .npz whose one entry claims 10^11 float64s."""
    path = _path("bomb.npz")
    tn.save({"w": np.zeros(4)}, path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**11,)})
    _replace_entries(path, {"w.npy": header.getvalue() + np.zeros(4).tobytes()})
    return path


def _replace_entries(path: str, replacements: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
        comment = zf.comment
    entries.update(replacements)
    with zipfile.ZipFile(path, "w") as zf:
        zf.comment = comment
        for name, content in entries.items():
            zf.writestr(name, content)


def _truncated() -> str:
    path = _path("truncated.npz")
    tn.save({"w": np.arange(100.0)}, path)
    content = Path(path).read_bytes()
    Path(path).write_bytes(content[: len(content) // 2])
    return path


def _round_trip(value: Any) -> Any:
    path = _path("round_trip.npz")
    tn.save({"value": value}, path)
    return tn.load(path)["value"]


def _same_values(expected: Any) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        np.testing.assert_array_equal(np.asarray(result), np.asarray(expected))

    return check


NAN, INF = float("nan"), float("inf")

CATALOGUE: list[Case] = [
    # ---- making tensors -------------------------------------------------------------------
    Case("tn.tensor", "ragged nested list", lambda: tn.tensor([[1.0, 2.0], [3.0]]),
         **raises(DTypeError, "tensor", "rectangular")),
    Case("tn.tensor", "string", lambda: tn.tensor("1.5"), **raises(DTypeError, "string")),
    Case("tn.tensor", "list of strings", lambda: tn.tensor(["a", "b"]),
         **raises(DTypeError, "<U1")),
    Case("tn.tensor", "object array", lambda: tn.tensor(np.array([1.0, None], dtype=object)),
         **raises(DTypeError, "object")),
    Case("tn.tensor", "complex numbers", lambda: tn.tensor([1 + 2j]),
         **raises(DTypeError, "complex128")),
    Case("tn.tensor", "None", lambda: tn.tensor(None), **raises(DTypeError, "object")),
    Case("tn.tensor", "ints with requires_grad", lambda: tn.tensor([1, 2], requires_grad=True),
         **raises(DTypeError, "requires_grad", "int64", "x.float()")),
    Case("tn.tensor", "NaN and inf", lambda: tn.tensor([NAN, INF, -INF]),
         **equals([NAN, INF, -INF], np.float32)),
    Case("tn.tensor", "empty list", lambda: tn.tensor([]), **answers(
        lambda r: (r.shape == (0,) and r.dtype == np.float32) or pytest.fail(str(r)))),
    Case("tn.tensor", "0-d (a number)", lambda: tn.tensor(2.5), **equals(2.5, np.float32)),
    Case("tn.tensor", "non-contiguous array", lambda: tn.tensor(strided()), **answers(
        lambda r: r.data.flags.c_contiguous and np.array_equal(r.data, strided())
        or pytest.fail(str(r)))),
    Case("tn.tensor", "negative-stride array", lambda: tn.tensor(reversed_view()),
         **equals([2.0, 1.0, 0.0], np.float32)),
    Case("tn.tensor", "read-only array (the copy is writable)",
         lambda: tn.tensor(ro([1.0, 2.0])).add_(1), **equals([2.0, 3.0])),
    Case("tn.from_numpy", "a list", lambda: tn.from_numpy([1.0, 2.0]),
         **raises(DTypeError, "from_numpy", "list")),
    Case("tn.from_numpy", "object array", lambda: tn.from_numpy(np.array([None])),
         **raises(DTypeError, "object")),
    Case("tn.from_numpy", "non-contiguous array (shared, not copied)",
         lambda: tn.from_numpy(strided()), **answers(
             lambda r: (not r.data.flags.c_contiguous) or pytest.fail("copied"))),
    Case("Tensor.add_", "read-only memory from tn.from_numpy",
         lambda: tn.from_numpy(ro([1.0])).add_(1), **raises(GraphError, "add_", "read-only")),
    Case("tn.as_tensor", "numpy scalar", lambda: tn.as_tensor(np.float64(2.0)),
         **equals(2.0, np.float64)),
    Case("tn.zeros", "fractional size", lambda: tn.zeros(2.5),
         **raises(DTypeError, "zeros", "integers", "2.5")),
    Case("tn.zeros", "negative size", lambda: tn.zeros(2, -1),
         **raises(ShapeError, "zeros", "non-negative", "(2, -1)")),
    Case("tn.zeros", "size 0", lambda: tn.zeros(0, 3), **answers(
        lambda r: r.shape == (0, 3) or pytest.fail(str(r.shape)))),
    Case("tn.randn", "string size", lambda: tn.randn("3"), **raises(DTypeError, "randn")),
    Case("tn.full", "non-scalar fill value", lambda: tn.full((2,), [1.0, 2.0]),
         **raises(ShapeError, "full", "fill_value", "(2,)")),
    Case("tn.full", "NaN fill value", lambda: tn.full((2,), NAN), **equals([NAN, NAN])),
    Case("tn.arange", "step 0", lambda: tn.arange(0, 5, 0),
         **raises(ValueRangeError, "arange", "step")),
    Case("tn.arange", "string", lambda: tn.arange("5"), **raises(DTypeError, "arange", "str")),
    Case("tn.linspace", "negative count", lambda: tn.linspace(0, 1, -1),
         **raises(ShapeError, "linspace", "non-negative")),
    Case("tn.linspace", "fractional count", lambda: tn.linspace(0, 1, 2.5),
         **raises(DTypeError, "linspace", "integers")),
    Case("tn.eye", "negative size", lambda: tn.eye(-1), **raises(ShapeError, "eye")),
    Case("tn.randint", "low >= high", lambda: tn.randint(5, 2, (3,)),
         **raises(ValueRangeError, "randint", "low=5", "high=2")),
    Case("tn.zeros_like", "ragged list", lambda: tn.zeros_like([[1], [2, 3]]),
         **raises(DTypeError, "zeros_like", "rectangular")),
    Case("tn.set_default_dtype", "integer dtype", lambda: tn.set_default_dtype(tn.int64),
         **raises(DTypeError, "set_default_dtype", "int64")),
    Case("Tensor.astype", "complex dtype", lambda: tn.ones(2).astype(np.complex64),
         **raises(DTypeError, "complex64")),
    # ---- arithmetic -------------------------------------------------------------------------
    Case("x + y", "shapes that don't broadcast", lambda: tn.ones(3) + tn.ones(4),
         **raises(ShapeError, "add", "(3,)", "(4,)", "cannot be broadcast")),
    Case("x + array", "numpy operand of the wrong shape", lambda: tn.ones(2, 3) + np.ones(4),
         **raises(ShapeError, "add", "(2, 3)", "(4,)")),
    Case("x * s", "string", lambda: tn.ones(2) * "a", **raises(DTypeError, "mul", "str")),
    Case("x + list", "ragged list", lambda: tn.ones(2) + [[1.0], [2.0, 3.0]],
         **raises(DTypeError, "add", "rectangular")),
    Case("x + a", "object array", lambda: tn.ones(2) + np.array([1.0, None], dtype=object),
         **raises(DTypeError, "add", "object")),
    Case("x + c", "complex number", lambda: tn.ones(2) + 1j,
         **raises(DTypeError, "add", "complex")),
    Case("x + y", "NaN and inf", lambda: tn.tensor([1.0, 2.0, 3.0]) + tn.tensor([NAN, INF, -INF]),
         **equals([NAN, INF, -INF])),
    Case("x + y", "empty and size 1", lambda: tn.zeros(0, 2) + tn.ones(1, 2), **answers(
        lambda r: r.shape == (0, 2) or pytest.fail(str(r.shape)))),
    Case("x + y", "0-d and (3,)", lambda: tn.tensor(2.0) + tn.ones(3), **equals([3.0] * 3)),
    Case("x * array", "non-contiguous operand", lambda: tn.ones(3, 2) * strided(),
         **equals(strided())),
    Case("x - array", "negative-stride operand", lambda: tn.zeros(3) - reversed_view(),
         **equals([-2.0, -1.0, -0.0])),
    Case("x + array", "read-only operand", lambda: tn.ones(2) + ro([1.0, 2.0]),
         **equals([2.0, 3.0])),
    Case("x / n", "integers (true division)", lambda: tn.tensor([1, 2]) / 2,
         **equals([0.5, 1.0], np.float32)),
    Case("x * 2.5", "float32 tensor times a float64 number", lambda: tn.ones(2) * np.float64(2.5),
         **equals([2.5, 2.5], np.float32)),
    Case("x @ y", "shapes that don't align", lambda: tn.ones(2, 3) @ tn.ones(4, 5),
         **raises(ShapeError, "matmul", "(2, 3)", "(4, 5)", "not aligned")),
    Case("x @ y", "0-d operand", lambda: tn.tensor(2.0) @ tn.ones(2),
         **raises(ShapeError, "matmul", "use * for scalars")),
    Case("x @ y", "empty batch", lambda: tn.ones(0, 3) @ tn.ones(3, 2), **answers(
        lambda r: r.shape == (0, 2) or pytest.fail(str(r.shape)))),
    Case("tn.exp", "integer tensor", lambda: tn.exp(tn.tensor([0, 1])),
         **equals(np.exp(np.array([0.0, 1.0], np.float32)), np.float32)),
    Case("tn.log", "zero and negatives", lambda: tn.log(tn.tensor([0.0, -1.0])),
         **equals([-INF, NAN])),
    Case("tn.sqrt", "negative", lambda: tn.sqrt(tn.tensor([-4.0, 4.0])), **equals([NAN, 2.0])),
    Case("tn.neg", "bool tensor", lambda: -tn.tensor([True]), **raises(DTypeError, "neg", "bool")),
    Case("tn.abs", "bool tensor", lambda: tn.abs(tn.tensor([True])),
         **raises(DTypeError, "abs", "bool")),
    Case("x ** 0", "its gradient at x = 0 (0, as PyTorch; was nan)",
         lambda: (lambda x: tn.autograd.grad((x**0).sum(), x)[0])(tn.zeros(2, requires_grad=True)),
         **equals([0.0, 0.0])),
    Case("tn.clip", "no bounds", lambda: tn.clip(tn.ones(2)),
         **raises(ValueRangeError, "clip", "min and max")),
    Case("tn.clip", "string bound", lambda: tn.clip(tn.ones(2), "0"),
         **raises(DTypeError, "clip", "string")),
    Case("tn.clip", "integer tensor, float bound", lambda: tn.clip(tn.tensor([1, 2, 3]), 1.5),
         **equals([1.5, 2.0, 3.0], np.float32)),
    Case("tn.clip", "array bounds", lambda: tn.clip(tn.tensor([1.0, 5.0]), [2.0, 0.0], 4.0),
         **equals([2.0, 4.0])),
    Case("tn.where", "ragged condition", lambda: tn.where([[True], [False, True]], 1.0, 0.0),
         **raises(DTypeError, "where", "rectangular")),
    Case("tn.where", "shapes that don't broadcast",
         lambda: tn.where(np.array([True, False]), tn.ones(3), 0.0),
         **raises(ShapeError, "where", "cannot be broadcast")),
    # ---- reductions and shapes -------------------------------------------------------------
    Case("Tensor.sum", "dim out of range", lambda: tn.ones(2, 3).sum(dim=2),
         **raises(ShapeError, "sum", "dim 2", "2 dimension")),
    Case("Tensor.sum", "fractional dim", lambda: tn.ones(2, 3).sum(dim=1.5),
         **raises(DTypeError, "sum", "dim must be an integer", "1.5")),
    Case("Tensor.sum", "repeated dim", lambda: tn.ones(2, 3).sum(dim=(1, -1)),
         **raises(ShapeError, "sum", "repeats")),
    Case("Tensor.sum", "empty tensor", lambda: tn.zeros(0).sum(), **equals(0.0)),
    Case("Tensor.mean", "empty tensor", lambda: tn.zeros(0).mean(), **equals(NAN)),
    Case("Tensor.mean", "0-d tensor with dim 0", lambda: tn.tensor(3.0).mean(dim=0),
         **equals(3.0)),
    Case("Tensor.max", "empty tensor", lambda: tn.zeros(0, 3).max(dim=0),
         **raises(ShapeError, "max", "empty", "(0, 3)")),
    Case("Tensor.argmax", "several dims", lambda: tn.ones(2, 2).argmax(dim=(0, 1)),
         **raises(ShapeError, "argmax", "single")),
    Case("Tensor.reshape", "wrong element count", lambda: tn.ones(6).reshape(4, 2),
         **raises(ShapeError, "reshape", "(6,)")),
    Case("Tensor.reshape", "fractional size", lambda: tn.ones(6).reshape(2.0, 3),
         **raises(DTypeError, "reshape", "integers")),
    Case("Tensor.permute", "not a permutation", lambda: tn.ones(2, 3).permute(0, 0),
         **raises(ShapeError, "permute", "(0, 0)")),
    Case("Tensor.transpose", "dim out of range", lambda: tn.ones(2, 3).transpose(0, 2),
         **raises(ShapeError, "transpose", "dim 2")),
    Case("Tensor.squeeze", "dim out of range", lambda: tn.ones(1, 3).squeeze(4),
         **raises(ShapeError, "squeeze", "dim 4")),
    Case("Tensor.broadcast_to", "incompatible shape", lambda: tn.ones(3).broadcast_to(4),
         **raises(ShapeError, "broadcast_to", "(3,)")),
    Case("tn.cat", "a single tensor", lambda: tn.cat(tn.ones(2, 3)),
         **raises(DTypeError, "cat", "list or tuple", "Tensor")),
    Case("tn.cat", "0-d tensors", lambda: tn.cat([tn.tensor(1.0), tn.tensor(2.0)]),
         **raises(ShapeError, "cat", "0-d", "stack")),
    Case("tn.cat", "empty list", lambda: tn.cat([]), **raises(ValueRangeError, "cat", "empty")),
    Case("tn.cat", "mismatched shapes", lambda: tn.cat([tn.ones(2, 3), tn.ones(3, 2)]),
         **raises(ShapeError, "cat", "(2, 3)", "(3, 2)")),
    Case("tn.cat", "an empty piece", lambda: tn.cat([tn.ones(2), tn.zeros(0)]),
         **equals([1.0, 1.0])),
    Case("tn.stack", "unequal shapes", lambda: tn.stack([tn.ones(2), tn.ones(3)]),
         **raises(ShapeError, "stack", "(2,)", "(3,)")),
    Case("tn.softmax", "0-d tensor", lambda: tn.softmax(tn.tensor(5.0), dim=0), **equals(1.0)),
    Case("tn.softmax", "dim out of range", lambda: tn.ones(2, 3).softmax(dim=-3),
         **raises(ShapeError, "softmax", "dim -3")),
    Case("tn.softmax", "empty rows", lambda: tn.zeros(0, 3).softmax(dim=1), **answers(
        lambda r: r.shape == (0, 3) or pytest.fail(str(r.shape)))),
    Case("tn.sigmoid", "NaN", lambda: tn.sigmoid(tn.tensor([NAN, 0.0])), **equals([NAN, 0.5])),
    Case("tn.relu", "NaN (propagated, as PyTorch)", lambda: tn.relu(tn.tensor([NAN, -1.0])),
         **equals([NAN, 0.0])),
    # ---- indexing and in-place ------------------------------------------------------------
    Case("x[i]", "index out of range", lambda: tn.ones(3)[5],
         **raises(IndexError, "index 5", "(3,)")),
    Case("x[i]", "float index tensor", lambda: tn.ones(3)[tn.tensor([0.0])],
         **raises(DTypeError, "index", "integer or bool")),
    Case("x[i]", "ragged index list", lambda: tn.ones(3)[[[0], [1, 2]]],
         **raises(DTypeError, "index", "rectangular")),
    Case("x[i]", "float", lambda: tn.ones(3)[1.5], **raises(DTypeError, "index", "1.5")),
    Case("x[i] = v", "string value", lambda: tn.ones(3).__setitem__(0, "a"),
         **raises(DTypeError, "setitem", "string")),
    Case("x[i] = v", "value of the wrong shape", lambda: tn.ones(3).__setitem__(slice(None),
                                                                                 np.ones(4)),
         **raises(ShapeError, "setitem", "(4,)", "(3,)")),
    Case("Tensor.add_", "operand that would grow the tensor",
         lambda: tn.ones(3).add_(tn.ones(2, 3)),
         **raises(ShapeError, "add_", "(3,)")),
    Case("Tensor.add_", "float into an integer tensor", lambda: tn.tensor([1, 2]).add_(0.5),
         **raises(DTypeError, "add_", "int64")),
    Case("Tensor.add_", "leaf that requires grad", lambda: leaf(2).add_(1),
         **raises(GraphError, "add_", "no_grad")),
    Case("Tensor.add_", "list of strings", lambda: tn.ones(2).add_(["a", "b"]),
         **raises(DTypeError, "add_", "<U1")),
    Case("Tensor.copy_", "source of the wrong shape", lambda: tn.ones(3).copy_(tn.ones(3, 4)),
         **raises(ShapeError, "copy_", "(3, 4)", "(3,)")),
    Case("Tensor.copy_", "non-contiguous source", lambda: tn.zeros(3, 2).copy_(strided()),
         **equals(strided())),
    Case("Tensor.fill_", "non-scalar value", lambda: tn.ones(3).fill_(tn.ones(3)),
         **raises(ShapeError, "fill_", "(3,)")),
    Case("Tensor.fill_", "NaN into an integer tensor",
         lambda: tn.zeros(2, dtype=tn.int64).fill_(NAN),
         **raises(ValueRangeError, "fill_", "NaN", "int64")),
    Case("x[i] = v", "inf into an integer tensor",
         lambda: tn.zeros(2, dtype=tn.int64).__setitem__(0, INF),
         **raises(ValueRangeError, "setitem", "int64")),
    Case("tn.full", "NaN into an integer dtype", lambda: tn.full((2,), NAN, dtype=tn.int64),
         **raises(ValueRangeError, "full", "int64")),
    Case("Tensor.clamp_", "float bounds on an integer tensor",
         lambda: tn.tensor([1, 2]).clamp_(0.5), **raises(DTypeError, "clamp_", "int64")),
    Case("Tensor.clamp_", "tensor bounds",
         lambda: tn.tensor([1.0, 5.0]).clamp_(tn.tensor([2.0, 0.0])),
         **equals([2.0, 5.0])),
    # ---- autograd ---------------------------------------------------------------------------
    Case("Tensor.backward", "non-scalar without a gradient", lambda: (leaf(3) * 2).backward(),
         **raises(GraphError, "backward", "scalar", "(3,)")),
    Case("Tensor.backward", "tensor without a graph", lambda: tn.ones(2).sum().backward(),
         **raises(GraphError, "backward", "does not require grad")),
    Case("Tensor.backward", "gradient of the wrong shape",
         lambda: (leaf(2) * 2).backward(np.ones(3)),
         **raises(ShapeError, "backward", "(3,)", "(2,)")),
    Case("Tensor.backward", "gradient of strings", lambda: (leaf(2) * 2).backward(["a", "b"]),
         **raises(DTypeError, "backward", "<U1")),
    Case("Tensor.backward", "integer gradient (converted)",
         lambda: (lambda x: ((x * 2).backward([1, 2]), x.grad)[1])(leaf(2)),
         **equals([2.0, 4.0], np.float32)),
    Case("tn.autograd.grad", "inputs None", lambda: tn.autograd.grad(leaf(2).sum(), None),
         **raises(GraphError, "grad", "inputs", "NoneType")),
    Case("Tensor.item", "several elements", lambda: tn.ones(3).item(),
         **raises(GraphError, "item", "(3,)")),
    Case("Tensor.numpy", "requires grad", lambda: leaf(2).numpy(),
         **raises(GraphError, "numpy", "detach")),
    Case("tn.gradcheck", "float32 input", lambda: tn.gradcheck(lambda t: t * 2, [leaf(2)]),
         **raises(TinynetError, "gradcheck", "float64", "float32")),
    # ---- nn -------------------------------------------------------------------------------
    Case("nn.Linear", "fractional in_features", lambda: nn.Linear(2.5, 3),
         **raises(DTypeError, "Linear", "integers", "2.5")),
    Case("nn.Linear", "negative out_features", lambda: nn.Linear(2, -1),
         **raises(ValueRangeError, "Linear", ">= 0")),
    Case("nn.Linear(3, 2)(x)", "wrong number of features", lambda: nn.Linear(3, 2)(tn.ones(4, 2)),
         **raises(ShapeError, "linear", "(4, 2)", "(2, 3)", "in_features")),
    Case("nn.Linear(3, 2)(x)", "0-d input", lambda: nn.Linear(3, 2)(tn.tensor(1.0)),
         **raises(ShapeError, "linear")),
    Case("nn.Linear(3, 2)(x)", "strings", lambda: nn.Linear(3, 2)(np.array(["a", "b", "c"])),
         **raises(DTypeError, "linear", "<U1")),
    Case("nn.Linear(3, 2)(x)", "empty batch", lambda: nn.Linear(3, 2)(tn.zeros(0, 3)), **answers(
        lambda r: r.shape == (0, 2) or pytest.fail(str(r.shape)))),
    Case("nn.Linear(3, 2)(x)", "non-contiguous input",
         lambda: (lambda m: m(tn.from_numpy(np.ones((4, 6), np.float32)[:, ::2])).data
                  - m(tn.ones(4, 3)).data)(nn.Linear(3, 2)),
         **answers(_same_values(np.zeros((4, 2))))),
    Case("nn.Linear(3, 2)(x)", "read-only input", lambda: nn.Linear(3, 2)(tn.from_numpy(
        ro(np.ones((2, 3))))), **answers(lambda r: r.shape == (2, 2) or pytest.fail(str(r)))),
    Case("nn.Sequential", "input of the wrong width", lambda: model()(tn.ones(4, 5)),
         **raises(ShapeError, "linear", "(4, 5)", "(3, 2)")),
    Case("Module.to", "integer dtype", lambda: model().to(tn.int64),
         **raises(DTypeError, "to", "floating", "int64")),
    Case("nn.init.xavier_uniform_", "1-d tensor", lambda: nn.init.xavier_uniform_(tn.ones(3)),
         **raises(ShapeError, "fewer than 2 dimensions", "(3,)")),
    Case("nn.init.uniform_", "numpy array", lambda: nn.init.uniform_(np.ones(3)),
         **raises(DTypeError, "uniform_", "ndarray")),
    Case("nn.Step", "unknown surrogate", lambda: nn.Step("tanh"),
         **raises(ValueError, "Step", "surrogate", "tanh")),
    # ---- losses -----------------------------------------------------------------------------
    Case("F.mse_loss", "target of another shape", lambda: F.mse_loss(tn.ones(3, 1), tn.ones(3)),
         **raises(ShapeError, "mse_loss", "(3,)", "(3, 1)", "reshape")),
    Case("F.mse_loss", "integer input", lambda: F.mse_loss(tn.tensor([1, 2]), [1.0, 2.0]),
         **raises(DTypeError, "mse_loss", "floating", "int64")),
    Case("F.mse_loss", "unknown reduction", lambda: F.mse_loss(tn.ones(2), tn.ones(2), "avg"),
         **raises(ValueRangeError, "mse_loss", "'avg'")),
    Case("F.mse_loss", "empty tensors (nan, as PyTorch)", lambda: F.mse_loss(tn.zeros(0),
                                                                              tn.zeros(0)),
         **equals(NAN)),
    Case("F.mse_loss", "string target", lambda: F.mse_loss(tn.ones(2), "ab"),
         **raises(DTypeError, "mse_loss", "string")),
    Case("F.cross_entropy", "float class indices", lambda: F.cross_entropy(tn.ones(2, 3),
                                                                           [0.0, 1.0]),
         **raises(DTypeError, "cross_entropy", "int64", "long()")),
    Case("F.cross_entropy", "class index out of range", lambda: F.cross_entropy(tn.ones(2, 3),
                                                                                [0, 3]),
         **raises(ClassIndexError, "cross_entropy", "target 3", "0..2")),
    Case("F.cross_entropy", "target of the wrong shape", lambda: F.cross_entropy(tn.ones(2, 3),
                                                                                 [0, 1, 2]),
         **raises(ShapeError, "cross_entropy", "(2, 3)", "(2,)", "(3,)")),
    Case("F.cross_entropy", "0-d input", lambda: F.cross_entropy(tn.tensor(1.0), 0),
         **raises(ShapeError, "cross_entropy", "0-d")),
    Case("F.cross_entropy", "ragged target", lambda: F.cross_entropy(tn.ones(2, 3), [[0], [1, 2]]),
         **raises(DTypeError, "cross_entropy", "rectangular")),
    Case("F.cross_entropy", "weight of the wrong length",
         lambda: F.cross_entropy(tn.ones(2, 3), [0, 1], weight=[1.0, 2.0]),
         **raises(ShapeError, "cross_entropy", "weight", "(3,)", "(2,)")),
    Case("F.cross_entropy", "NaN logits (nan loss, as PyTorch)",
         lambda: F.cross_entropy(tn.tensor([[NAN, 0.0]]), [1]), **equals(NAN)),
    Case("F.cross_entropy", "empty batch (nan, as PyTorch)",
         lambda: F.cross_entropy(tn.zeros(0, 3), np.zeros(0, np.int64)), **equals(NAN)),
    Case("F.cross_entropy", "non-contiguous logits",
         lambda: F.cross_entropy(tn.from_numpy(strided()), [0, 1, 0]),
         **answers(lambda r: np.isclose(r.item(), F.cross_entropy(
             tn.tensor(strided()), [0, 1, 0]).item(), rtol=1e-6) or pytest.fail(str(r)))),
    Case("F.nll_loss", "class index out of range", lambda: F.nll_loss(tn.ones(2, 3), [0, -2]),
         **raises(ClassIndexError, "nll_loss", "target -2")),
    Case("F.binary_cross_entropy", "probabilities outside [0, 1]",
         lambda: F.binary_cross_entropy(tn.tensor([0.5, 1.5]), [0.0, 1.0]),
         **raises(ValueRangeError, "binary_cross_entropy", "between 0 and 1", "logits")),
    Case("F.binary_cross_entropy", "NaN input",
         lambda: F.binary_cross_entropy(tn.tensor([NAN, 0.5]), [0.0, 1.0]),
         **raises(ValueRangeError, "binary_cross_entropy", "nan")),
    Case("F.binary_cross_entropy", "targets outside [0, 1]",
         lambda: F.binary_cross_entropy(tn.tensor([0.5]), [2.0]),
         **raises(ValueRangeError, "target", "between 0 and 1")),
    Case("F.binary_cross_entropy", "weight larger than the input",
         lambda: F.binary_cross_entropy(tn.tensor([0.5]), [1.0], weight=[1.0, 2.0]),
         **raises(ShapeError, "binary_cross_entropy", "weight", "(2,)", "(1,)")),
    Case("F.binary_cross_entropy_with_logits", "pos_weight of the wrong length",
         lambda: F.binary_cross_entropy_with_logits(tn.ones(2, 3), tn.ones(2, 3),
                                                     pos_weight=[1.0, 2.0]),
         **raises(ShapeError, "pos_weight", "(2,)", "(2, 3)")),
    Case("F.binary_cross_entropy_with_logits", "logits of 1e4",
         lambda: F.binary_cross_entropy_with_logits(tn.tensor([1e4, -1e4]), [0.0, 1.0],
                                                     reduction="none"),
         **equals([1e4, 1e4])),
    Case("nn.CrossEntropyLoss", "string weight", lambda: nn.CrossEntropyLoss(weight="abc"),
         **raises(DTypeError, "as_tensor", "string")),
    # ---- load_state_dict --------------------------------------------------------------------
    Case("Module.load_state_dict", "missing entry",
         lambda: model().load_state_dict(_state(**{"2__bias": None})),
         **raises(StateDictError, "Missing key", "'2.bias'")),
    Case("Module.load_state_dict", "extra entry",
         lambda: model().load_state_dict(_state(extra=np.ones(1))),
         **raises(StateDictError, "Unexpected key", "'extra'")),
    Case("Module.load_state_dict", "entry of the wrong shape",
         lambda: model().load_state_dict(_state(**{"0__weight": np.ones((2, 3), np.float32)})),
         **raises(ShapeError, "size mismatch for 0.weight", "(3, 2)", "(2, 3)")),
    Case("Module.load_state_dict", "float64 values beyond float32's range",
         lambda: model().load_state_dict(_state(**{"0__bias": np.array([1.0, 1e39, 2.0])})),
         **raises(ValueRangeError, "non-finite values for 0.bias", "1 inf", "float32")),
    Case("Module.load_state_dict", "string entry",
         lambda: model().load_state_dict(_state(**{"0__bias": "abc"})),
         **raises(DTypeError, "0.bias")),
    Case("Module.load_state_dict", "NaN and inf weights",
         lambda: model().load_state_dict(_state(**{"0__weight": _nan_weight()})),
         **raises(ValueRangeError, "non-finite values for 0.weight", "1 nan", "1 inf",
                  "allow_nonfinite")),
    Case("Module.load_state_dict", "a list instead of a dict", lambda: model().load_state_dict([]),
         **raises(DTypeError, "load_state_dict", "list")),
    Case("Module.load_state_dict", "read-only parameter",
         lambda: _read_only_model().load_state_dict(model().state_dict()),
         **raises(GraphError, "0.weight", "read-only")),
    # ---- optimizers ---------------------------------------------------------------------------
    Case("optim.SGD", "params None", lambda: optim.SGD(None, lr=0.1),
         **raises(DTypeError, "SGD", "NoneType")),
    Case("optim.SGD", "empty parameter list", lambda: optim.SGD([], lr=0.1),
         **raises(ValueRangeError, "SGD", "empty")),
    Case("optim.SGD", "negative learning rate", lambda: optim.SGD([leaf(1)], lr=-1.0),
         **raises(ValueRangeError, "SGD", "learning rate", "-1.0")),
    Case("optim.SGD", "NaN learning rate", lambda: optim.SGD([leaf(1)], lr=NAN),
         **raises(ValueRangeError, "SGD", "learning rate", "nan")),
    Case("optim.SGD", "string learning rate", lambda: optim.SGD([leaf(1)], lr="0.1"),
         **raises(DTypeError, "SGD", "lr", "str")),
    Case("optim.SGD", "non-leaf tensor", lambda: optim.SGD([leaf(2) * 2], lr=0.1),
         **raises(ValueRangeError, "SGD", "non-leaf")),
    Case("optim.SGD", "integer tensor", lambda: optim.SGD([tn.ones(2, dtype=tn.int64)], lr=0.1),
         **raises(DTypeError, "SGD", "floating", "int64")),
    Case("optim.Adam", "beta outside [0, 1)", lambda: optim.Adam([leaf(1)], betas=(1.5, 0.9)),
         **raises(ValueRangeError, "Adam", "beta", "1.5")),
    Case("optim.Adam", "betas None", lambda: optim.Adam([leaf(1)], betas=None),
         **raises(DTypeError, "Adam", "betas", "None")),
    Case("optimizer.step", "gradient of the wrong shape",
         lambda: _sgd_step(with_grad(nn.Parameter(tn.ones(3)), tn.ones(4))),
         **raises(ShapeError, "SGD", "(3,)", "(4,)")),
    Case("optimizer.step", "numpy array as .grad",
         lambda: _sgd_step(with_grad(nn.Parameter(tn.ones(3)), np.ones(3))),
         **raises(DTypeError, "SGD", ".grad", "ndarray")),
    Case("optimizer.step", "read-only parameter",
         lambda: _sgd_step(with_grad(nn.Parameter(tn.from_numpy(ro([1.0]))), tn.ones(1))),
         **raises(GraphError, "SGD", "read-only")),
    Case("optimizer.step", "NaN gradient (NaN parameters, as PyTorch)",
         lambda: _sgd_step(with_grad(nn.Parameter(tn.ones(2)), tn.tensor([NAN, 1.0]))),
         **equals(np.array([NAN, 0.9], np.float32))),
    Case("optimizer.step", "non-contiguous parameter (updated through the view)",
         lambda: (lambda base: (_sgd_step(with_grad(nn.Parameter(tn.from_numpy(base[:, ::2])),
                                                    tn.ones(3, 2)), momentum=0.9), base)[1])(
             np.ones((3, 4), np.float32)),
         **answers(_same_values(np.array([[0.9, 1, 0.9, 1]] * 3, np.float32)))),
    Case("optim.Adam.step", "float16 parameter, default eps",
         lambda: optim.Adam([with_grad(nn.Parameter(tn.ones(2, dtype=tn.float16)),
                                       tn.zeros(2, dtype=tn.float16))]).step(),
         **raises(ValueRangeError, "Adam", "eps=1e-08", "float16", "eps=1e-4")),
    Case("optimizer.load_state_dict", "wrong number of groups",
         lambda: optim.SGD([leaf(1)], lr=0.1).load_state_dict({"state": {}, "param_groups": []}),
         **raises(StateDictError, "SGD", "0 parameter group", "1")),
    Case("optimizer.load_state_dict", "state of the wrong shape",
         lambda: optim.SGD([leaf(2)], lr=0.1, momentum=0.9).load_state_dict(
             {"state": {0: {"momentum_buffer": np.ones(3)}},
              "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0]}]}),
         **raises(ShapeError, "SGD", "momentum_buffer", "(3,)", "(2,)")),
    # ---- saving and loading ---------------------------------------------------------------
    Case("tn.save", "object array", lambda: tn.save({"w": np.array([None])}, _path("o.npz")),
         **raises(DTypeError, "tinynet.save", "obj['w']", "pickle")),
    Case("tn.save", "a function", lambda: tn.save({"f": len}, _path("f.npz")),
         **raises(DTypeError, "tinynet.save", "builtin_function_or_method")),
    Case("tn.save", "path None", lambda: tn.save({}, None),
         **raises(DTypeError, "tinynet.save", "path", "NoneType")),
    Case("tn.save", "non-contiguous, negative-stride, read-only, empty and 0-d arrays",
         lambda: [_round_trip(a) for a in (strided(), reversed_view(), ro([1.0]), np.zeros(0),
                                           np.array(2.0))],
         **answers(lambda r: [np.testing.assert_array_equal(a, b) for a, b in zip(
             r, (strided(), reversed_view(), ro([1.0]), np.zeros(0), np.array(2.0)),
             strict=True)])),
    Case("tn.load", "missing file", lambda: tn.load(_path("missing.npz")),
         **raises(FileNotFoundError, "tinynet.load", "missing.npz")),
    Case("tn.load", "truncated file", lambda: tn.load(_truncated()),
         **raises(FileFormatError, "tinynet.load", "truncated.npz")),
    Case("tn.load", "entry claiming 10^11 values", lambda: tn.load(_bomb()),
         **raises(FileFormatError, "tinynet.load", "bomb.npz", "(100000000000,)", "32 bytes")),
    # ---- data -------------------------------------------------------------------------------
    Case("data.TensorDataset", "different numbers of rows",
         lambda: data.TensorDataset(tn.ones(3, 2), tn.ones(4)),
         **raises(ShapeError, "TensorDataset", "(3, 2)", "(4,)")),
    Case("data.TensorDataset", "0-d tensor", lambda: data.TensorDataset(tn.tensor(1.0)),
         **raises(ShapeError, "TensorDataset", "0-d")),
    Case("data.TensorDataset", "ragged list", lambda: data.TensorDataset([[1.0], [2.0, 3.0]]),
         **raises(DTypeError, "as_tensor", "rectangular")),
    Case("data.TensorDataset", "no tensors", lambda: data.TensorDataset(),
         **raises(ValueRangeError, "TensorDataset", "at least one")),
    Case("data.DataLoader", "batch_size 0",
         lambda: data.DataLoader(data.TensorDataset(tn.ones(3)), batch_size=0),
         **raises(ValueRangeError, "DataLoader", "batch_size", "0")),
    Case("data.DataLoader", "string batch_size",
         lambda: data.DataLoader(data.TensorDataset(tn.ones(3)), batch_size="2"),
         **raises(DTypeError, "DataLoader", "batch_size", "str")),
    Case("data.DataLoader", "dataset None", lambda: data.DataLoader(None),
         **raises(DTypeError, "DataLoader", "NoneType")),
    Case("data.DataLoader", "empty dataset", lambda: _batches(data.DataLoader(
        data.TensorDataset(tn.zeros(0, 2)), batch_size=4)), **answers(
            lambda r: r == [] or pytest.fail(str(r)))),
    Case("data.DataLoader", "non-contiguous and read-only data",
         lambda: _batches(data.DataLoader(data.TensorDataset(
             tn.from_numpy(strided()), tn.from_numpy(ro([0, 1, 2], np.int64))), batch_size=2)),
         **answers(lambda r: (np.testing.assert_array_equal(r[0][0].data, strided()[:2]),
                              np.testing.assert_array_equal(r[1][1].data, [2])))),
    Case("data.default_collate", "samples of different shapes",
         lambda: data.default_collate([np.ones(2), np.ones(3)]),
         **raises(ShapeError, "DataLoader", "(2,)", "(3,)")),
    Case("data.default_collate", "object field",
         lambda: data.default_collate([(np.ones(1), object())]),
         **raises(DTypeError, "DataLoader", "object")),
    Case("data.default_collate", "no samples", lambda: data.default_collate([]),
         **raises(ValueRangeError, "default_collate", "non-empty")),
    Case("data.two_moons", "n below 2", lambda: data.two_moons(1),
         **raises(ValueRangeError, "two_moons", "at least 2")),
    Case("data.two_moons", "NaN noise", lambda: data.two_moons(10, noise=NAN),
         **raises(ValueRangeError, "two_moons", "noise", "nan")),
]


# ---- seeds, huge sizes, crafted files, PyTorch's loader/load arguments (issues 11 and 12) ----


def _seed_draws(seed: Any) -> np.ndarray:
    tn.manual_seed(seed)
    return tn.randn(4, dtype=tn.float64).data


def _crafted(root: Any, name: str = "crafted.npz") -> str:
    """A tinynet file whose structure entry has ``root`` as its root node."""
    path = _path(name)
    tn.save({"w": np.ones(2)}, path)
    structure = io.BytesIO()
    text = json.dumps({"format": "tinynet", "version": 1, "root": root})
    np.lib.format.write_array(structure, np.frombuffer(text.encode(), np.uint8))
    _replace_entries(path, {tio.STRUCTURE_ENTRY + ".npy": structure.getvalue()})
    return path


def _deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _deep_node(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "none"}
    for _ in range(depth):
        node = {"kind": "list", "items": [node]}
    return node


def _inflating(nbytes: int) -> str:
    """An .npz as np.savez_compressed writes it: one entry of ``nbytes`` zero bytes."""
    path = _path("inflating.npz")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)})
            for _ in range(nbytes // 2**20):
                member.write(bytes(2**20))
    return path


def _saved_state() -> str:
    path = _path("state.npz")
    tn.save({"w": np.ones(2)}, path)
    return path


CATALOGUE += [
    # ---- tn.manual_seed: what torch.manual_seed accepts and refuses -------------------------
    Case("tn.manual_seed", "None", lambda: tn.manual_seed(None),
         **raises(DTypeError, "manual_seed", "NoneType")),
    Case("tn.manual_seed", "non-numeric string", lambda: tn.manual_seed("abc"),
         **raises(ValueRangeError, "manual_seed", "'abc'")),
    Case("tn.manual_seed", "NaN", lambda: tn.manual_seed(NAN),
         **raises(ValueRangeError, "manual_seed", "nan")),
    Case("tn.manual_seed", "infinity", lambda: tn.manual_seed(INF),
         **raises(ValueRangeError, "manual_seed", "inf")),
    Case("tn.manual_seed", "a list", lambda: tn.manual_seed([1, 2]),
         **raises(DTypeError, "manual_seed", "list")),
    Case("tn.manual_seed", "2^64 (beyond 64 bits)", lambda: tn.manual_seed(2**64),
         **raises(ValueRangeError, "manual_seed", "64 bits", "18446744073709551616")),
    Case("tn.manual_seed", "-1 (as in torch: the seed 2^64 - 1)",
         lambda: _seed_draws(-1), **answers(_same_values(_seed_draws(2**64 - 1)))),
    Case("tn.randn", "generator seed 'abc'", lambda: tn.randn(2, generator="abc"),
         **raises(ValueRangeError, "randn", "seed", "'abc'")),
    # ---- sizes no array can have, or no memory can hold ---------------------------------------
    Case("tn.zeros", "size 2^70", lambda: tn.zeros(2**70),
         **raises(ValueRangeError, "zeros", "(1180591620717411303424,)", "float32")),
    Case("tn.zeros", "size 2^40 (4 TiB)", lambda: tn.zeros(2**40),
         **raises(ValueRangeError, "zeros", "not enough memory", "4 TiB")),
    Case("tn.empty", "sizes (2^31, 2^31)", lambda: tn.empty(2**31, 2**31),
         **raises(ValueRangeError, "empty", "(2147483648, 2147483648)")),
    Case("tn.full", "size 2^70", lambda: tn.full((2**70,), 1.0),
         **raises(ValueRangeError, "full", "(1180591620717411303424,)")),
    Case("tn.randn", "size 2^70", lambda: tn.randn(2**70),
         **raises(ValueRangeError, "randn", "(1180591620717411303424,)")),
    Case("tn.randint", "size 2^70", lambda: tn.randint(0, 5, (2**70,)),
         **raises(ValueRangeError, "randint", "(1180591620717411303424,)")),
    Case("tn.randint", "high 2^70", lambda: tn.randint(0, 2**70, (2,)),
         **raises(ValueRangeError, "randint", "int64")),
    Case("tn.eye", "n 2^70", lambda: tn.eye(2**70),
         **raises(ValueRangeError, "eye", "(1180591620717411303424, 1180591620717411303424)")),
    Case("tn.linspace", "2^70 steps", lambda: tn.linspace(0, 1, 2**70),
         **raises(ValueRangeError, "linspace", "(1180591620717411303424,)")),
    Case("tn.arange", "end 2^70", lambda: tn.arange(2**70),
         **raises(ValueRangeError, "arange", "int64")),
    Case("tn.arange", "step 1e-30 (10^30 values)", lambda: tn.arange(0, 1, 1e-30),
         **raises(ValueRangeError, "arange", "float64")),
    # ---- randperm, rand_like --------------------------------------------------------------
    Case("tn.randperm", "n 2^70", lambda: tn.randperm(2**70),
         **raises(ValueRangeError, "randperm", "(1180591620717411303424,)")),
    Case("tn.randperm", "negative n", lambda: tn.randperm(-1),
         **raises(ValueRangeError, "randperm", "-1")),
    Case("tn.randperm", "float n", lambda: tn.randperm(3.0),
         **raises(DTypeError, "randperm", "float")),
    Case("tn.randperm", "dtype bool", lambda: tn.randperm(3, dtype=tn.bool_),
         **raises(DTypeError, "randperm", "bool")),
    Case("tn.randperm", "uint8 for n = 300", lambda: tn.randperm(300, dtype=tn.uint8),
         **raises(ValueRangeError, "randperm", "uint8", "299")),
    Case("tn.randperm", "n 0", lambda: tn.randperm(0), **equals(np.zeros(0), np.int64)),
    Case("tn.rand_like", "an int64 tensor", lambda: tn.rand_like(tn.ones(2, dtype=tn.int64)),
         **raises(DTypeError, "rand_like", "float dtype", "int64")),
    # ---- tn.load: crafted structures, depth, inflation, PyTorch's arguments -----------------
    Case("tn.load", "structure kind of the wrong JSON type (a list)",
         lambda: tn.load(_crafted({"kind": ["array"], "entry": "w"})),
         **raises(FileFormatError, "tinynet.load", "crafted.npz", "'kind' must be a string")),
    Case("tn.load", "array entry name of the wrong JSON type",
         lambda: tn.load(_crafted({"kind": "dict", "items": [["w", {"kind": "array",
                                                                     "entry": ["w"]}]]})),
         **raises(FileFormatError, "obj['w']", "'entry' must be a string")),
    Case("tn.load", "dict items as a JSON object",
         lambda: tn.load(_crafted({"kind": "dict", "items": {"w": 1}})),
         **raises(FileFormatError, "'items' must be a JSON list")),
    Case("tn.load", "dict key of the wrong JSON type",
         lambda: tn.load(_crafted({"kind": "dict", "items": [[["w"], {"kind": "none"}]]})),
         **raises(FileFormatError, "[key, node]", "str or int key")),
    Case("tn.load", "structure nested 101 deep",
         lambda: tn.load(_crafted(_deep_node(tio.MAX_DEPTH + 1), "deep.npz")),
         **raises(FileFormatError, "deep.npz", "more than 100 containers")),
    Case("tn.load", "compressed entry inflating 1000x (a zip bomb)",
         lambda: tn.load(_inflating(100 * 2**20)),
         **raises(FileFormatError, "inflating.npz", "104857728 bytes", "max_inflated_bytes")),
    Case("tn.load", "map_location='cuda'", lambda: tn.load(_saved_state(), map_location="cuda"),
         **raises(ValueRangeError, "tinynet.load", "CPU only", "map_location='cpu'")),
    Case("tn.load", "map_location a function (the load-to-CPU idiom: nothing to remap)",
         lambda: tn.load(_saved_state(), map_location=lambda storage, loc: storage),
         **answers(lambda r: np.testing.assert_array_equal(r["w"], np.ones(2)))),
    Case("tn.load", "map_location a list",
         lambda: tn.load(_saved_state(), map_location=["cpu"]),
         **raises(DTypeError, "map_location", "list", "drop map_location")),
    Case("tn.load", "pickle_module", lambda: tn.load(_saved_state(), pickle_module=pickle),
         **raises(DTypeError, "pickle_module", "never")),
    Case("tn.load", "map_location='cpu', weights_only=True (as torch.load)",
         lambda: tn.load(_saved_state(), map_location="cpu", weights_only=True),
         **answers(lambda r: np.testing.assert_array_equal(r["w"], np.ones(2)))),
    Case("tn.save", "a list nested 1000 deep", lambda: tn.save(_deep_list(1000), _path("d.npz")),
         **raises(ValueRangeError, "tinynet.save", "nested more than 100", "tn.load")),
    Case("tn.save", "a list that contains itself",
         lambda: (lambda x: (x.append(x), tn.save(x, _path("c.npz"))))([]),
         **raises(ValueRangeError, "tinynet.save", "contains itself")),
    # ---- DataLoader / random_split with PyTorch's arguments -------------------------------------
    Case("data.DataLoader", "num_workers=2 (accepted, loading in this process)",
         lambda: [b[0].tolist() for b in data.DataLoader(data.TensorDataset(tn.ones(3)),
                                                         num_workers=2)],
         **answers(lambda r: np.testing.assert_array_equal(r, [[1.0], [1.0], [1.0]]))),
    Case("data.DataLoader", "num_workers=-1",
         lambda: data.DataLoader(data.TensorDataset(tn.ones(3)), num_workers=-1),
         **raises(ValueRangeError, "DataLoader", "num_workers", "non-negative")),
    Case("data.DataLoader", "sampler with shuffle",
         lambda: data.DataLoader(data.TensorDataset(tn.ones(3)), sampler=[0], shuffle=True),
         **raises(ValueRangeError, "DataLoader", "sampler", "shuffle")),
    Case("data.DataLoader", "batch_sampler with batch_size",
         lambda: data.DataLoader(data.TensorDataset(tn.ones(3)), batch_sampler=[[0]],
                                 batch_size=2),
         **raises(ValueRangeError, "DataLoader", "batch_sampler", "batch_size")),
    Case("data.DataLoader", "collate_fn not callable",
         lambda: data.DataLoader(data.TensorDataset(tn.ones(3)), collate_fn="stack"),
         **raises(DTypeError, "DataLoader", "collate_fn", "str")),
    Case("data.random_split", "lengths summing to 9 of 10",
         lambda: data.random_split(range(10), [3, 6]),
         **raises(ValueRangeError, "random_split", "sum to 9", "10")),
    Case("data.random_split", "fraction above 1",
         lambda: data.random_split(range(10), [1.5, -0.5]),
         **raises(ValueRangeError, "random_split", "index 0", "1.5")),
    Case("data.random_split", "negative length (torch returns overlapping subsets)",
         lambda: data.random_split(range(10), [-1, 11]),
         **raises(ValueRangeError, "random_split", "non-negative")),
]


def _sgd() -> optim.SGD:
    return optim.SGD([nn.Parameter(tn.ones(2))], lr=0.1)


def _step_lr() -> Any:
    return optim.lr_scheduler.StepLR(_sgd(), step_size=2)


def _adam_state(optimizer: Any = None, group: Any = None, **entry: Any) -> Any:
    """Load into an Adam over one parameter of shape (2,) a state dict whose state[0] is a
    valid Adam state with ``entry``'s changes (None: key removed)."""
    opt = optimizer or optim.Adam([nn.Parameter(tn.ones(2))])
    state = {"step": 3, "exp_avg": np.ones(2), "exp_avg_sq": np.ones(2)}
    for key, value in entry.items():
        if value is None:
            state.pop(key)
        else:
            state[key] = value
    group = group if group is not None else dict(opt.state_dict()["param_groups"][0])
    return opt.load_state_dict({"state": {0: state}, "param_groups": [group]})


def _two_params_state(params: list[int]) -> Any:
    opt = optim.SGD([nn.Parameter(tn.ones(2)), nn.Parameter(tn.ones(3))], lr=0.1)
    return opt.load_state_dict({"state": {}, "param_groups": [
        dict(opt.state_dict()["param_groups"][0], params=params)]})


def _scheduler_state(scheduler: Any, **changes: Any) -> Any:
    state = scheduler.state_dict()
    state.update(changes)
    return scheduler.load_state_dict(state)


def _plateau() -> Any:
    return optim.lr_scheduler.ReduceLROnPlateau(_sgd())


def _clip_nonfinite() -> Any:
    return nn.utils.clip_grad_norm_([with_grad(nn.Parameter(tn.ones(2)), tn.tensor([1.0, INF]))],
                                    1.0, error_if_nonfinite=True)


# Optimizer and scheduler state dicts, new optimizers, schedulers, gradient clipping.
CATALOGUE += [
    Case("optim.Adam.load_state_dict", "state without exp_avg",
         lambda: _adam_state(exp_avg=None),
         **raises(StateDictError, "Adam.load_state_dict", "state[0]", "'exp_avg'")),
    Case("optim.Adam.load_state_dict", "amsgrad group, state without max_exp_avg_sq",
         lambda: _adam_state(group=dict(optim.Adam([nn.Parameter(tn.ones(2))], amsgrad=True)
                                        .state_dict()["param_groups"][0])),
         **raises(StateDictError, "Adam.load_state_dict", "'max_exp_avg_sq'")),
    Case("optim.Adam.load_state_dict", "an SGD state (unexpected key)",
         lambda: _adam_state(momentum_buffer=np.ones(2)),
         **raises(StateDictError, "Adam.load_state_dict", "unexpected", "'momentum_buffer'")),
    Case("optim.Adam.load_state_dict", "non-numeric state key",
         lambda: optim.Adam([nn.Parameter(tn.ones(2))]).load_state_dict(
             {"state": {"abc": {}}, "param_groups": [{"params": [0]}]}),
         **raises(StateDictError, "Adam.load_state_dict", "'abc'", "parameter index")),
    Case("optim.Adam.load_state_dict", "float parameter index",
         lambda: optim.Adam([nn.Parameter(tn.ones(2))]).load_state_dict(
             {"state": {}, "param_groups": [{"params": [0.5]}]}),
         **raises(StateDictError, "Adam.load_state_dict", "0.5", "param_groups[0]['params']")),
    Case("optim.Adam.load_state_dict", "string exp_avg", lambda: _adam_state(exp_avg="abc"),
         **raises(DTypeError, "Adam.load_state_dict", "state[0]['exp_avg']", "<U3")),
    Case("optim.Adam.load_state_dict", "ragged exp_avg_sq",
         lambda: _adam_state(exp_avg_sq=[[1.0], [1.0, 2.0]]),
         **raises(DTypeError, "Adam.load_state_dict", "state[0]['exp_avg_sq']")),
    Case("optim.Adam.load_state_dict", "exp_avg of the wrong shape",
         lambda: _adam_state(exp_avg=np.ones(3)),
         **raises(ShapeError, "Adam.load_state_dict", "state[0]['exp_avg']", "(3,)", "(2,)")),
    Case("optim.Adam.load_state_dict", "step not a number", lambda: _adam_state(step="abc"),
         **raises(DTypeError, "Adam.load_state_dict", "state[0]['step']", "step count")),
    Case("optim.Adam.load_state_dict", "negative or fractional step",
         lambda: _adam_state(step=-2.5),
         **raises(ValueRangeError, "Adam.load_state_dict", "state[0]['step']", "-2.5")),
    Case("optim.Adam.load_state_dict", "state entry not a dict",
         lambda: optim.Adam([nn.Parameter(tn.ones(2))]).load_state_dict(
             {"state": {0: [1, 2]}, "param_groups": [{"params": [0]}]}),
         **raises(StateDictError, "Adam.load_state_dict", "state[0]", "list")),
    Case("optim.Adam.load_state_dict", "param_groups not a list",
         lambda: optim.Adam([nn.Parameter(tn.ones(2))]).load_state_dict(
             {"state": {}, "param_groups": {"lr": 0.1}}),
         **raises(StateDictError, "Adam.load_state_dict", "'param_groups'", "list")),
    Case("optim.SGD.load_state_dict", "params repeating an index",
         lambda: _two_params_state([0, 0]),
         **raises(StateDictError, "SGD.load_state_dict", "index 0 appears twice")),
    Case("optim.SGD.load_state_dict", "state keys 0 and '0' for one parameter",
         lambda: optim.SGD([nn.Parameter(tn.ones(2))], lr=0.1, momentum=0.9).load_state_dict(
             {"state": {0: {"momentum_buffer": np.ones(2)}, "0": {"momentum_buffer": np.ones(2)}},
              "param_groups": [{"params": [0]}]}),
         **raises(StateDictError, "SGD.load_state_dict", "two state entries for parameter 0")),
    Case("optim.RMSprop.load_state_dict", "centered group, state without grad_avg",
         lambda: (lambda opt: opt.load_state_dict({
             "state": {0: {"step": 1, "square_avg": np.ones(2)}},
             "param_groups": opt.state_dict()["param_groups"]}))(
             optim.RMSprop([nn.Parameter(tn.ones(2))], centered=True)),
         **raises(StateDictError, "RMSprop.load_state_dict", "'grad_avg'")),
    Case("optim.Adagrad.load_state_dict", "state without sum",
         lambda: (lambda opt: opt.load_state_dict({
             "state": {0: {"step": 1}}, "param_groups": opt.state_dict()["param_groups"]}))(
             optim.Adagrad([nn.Parameter(tn.ones(2))])),
         **raises(StateDictError, "Adagrad.load_state_dict", "'sum'")),
    Case("optim.RMSprop", "negative alpha",
         lambda: optim.RMSprop([nn.Parameter(tn.ones(2))], alpha=-0.5),
         **raises(ValueRangeError, "RMSprop", "Invalid alpha value", "-0.5")),
    Case("optim.Adagrad", "NaN lr_decay",
         lambda: optim.Adagrad([nn.Parameter(tn.ones(2))], lr_decay=NAN),
         **raises(ValueRangeError, "Adagrad", "Invalid lr_decay value", "nan")),
    Case("optim.RMSprop.step", "float16 parameter, default eps",
         lambda: optim.RMSprop([with_grad(nn.Parameter(tn.ones(2, dtype=tn.float16)),
                                          tn.zeros(2, dtype=tn.float16))]).step(),
         **raises(ValueRangeError, "RMSprop", "eps=1e-08", "float16", "g / (sqrt(v) + eps)")),
    Case("optim.AdamW", "amsgrad as a string",
         lambda: optim.AdamW([nn.Parameter(tn.ones(2))], amsgrad="no"),
         **raises(DTypeError, "AdamW", "amsgrad must be True or False", "'no'")),
    Case("lr_scheduler.StepLR", "step_size 0", lambda: optim.lr_scheduler.StepLR(_sgd(), 0),
         **raises(ValueRangeError, "StepLR", "step_size", ">= 1")),
    Case("lr_scheduler.StepLR", "a model instead of an optimizer",
         lambda: optim.lr_scheduler.StepLR(model(), 2),
         **raises(DTypeError, "StepLR", "Sequential is not an Optimizer")),
    Case("lr_scheduler.StepLR", "resumed (last_epoch=3) without initial_lr",
         lambda: optim.lr_scheduler.StepLR(_sgd(), 2, last_epoch=3),
         **raises(optim.lr_scheduler.MissingInitialLrError, "StepLR", "'initial_lr'",
                  "param_groups[0]", "load the optimizer")),
    Case("lr_scheduler.ReduceLROnPlateau", "factor 1",
         lambda: optim.lr_scheduler.ReduceLROnPlateau(_sgd(), factor=1.0),
         **raises(ValueRangeError, "ReduceLROnPlateau", "Factor should be < 1.0")),
    Case("lr_scheduler.ReduceLROnPlateau", "unknown mode",
         lambda: optim.lr_scheduler.ReduceLROnPlateau(_sgd(), mode="lowest"),
         **raises(ValueRangeError, "ReduceLROnPlateau", "'lowest'", "'min' or 'max'")),
    Case("lr_scheduler.ReduceLROnPlateau.step", "a string metric",
         lambda: _plateau().step("low"),
         **raises(DTypeError, "ReduceLROnPlateau.step", "metrics", "str")),
    Case("scheduler.load_state_dict", "unexpected key",
         lambda: _scheduler_state(_step_lr(), surprise=1),
         **raises(StateDictError, "StepLR.load_state_dict", "unexpected key 'surprise'")),
    Case("scheduler.load_state_dict", "missing option",
         lambda: _step_lr().load_state_dict({"base_lrs": [0.1], "last_epoch": 3}),
         **raises(StateDictError, "StepLR.load_state_dict", "missing", "'step_size'",
                  "'gamma'")),
    Case("scheduler.load_state_dict", "base_lrs for another number of groups",
         lambda: _scheduler_state(_step_lr(), base_lrs=[0.1, 0.2]),
         **raises(ValueRangeError, "StepLR.load_state_dict", "'base_lrs'", "2 value(s)",
                  "1 parameter group")),
    Case("scheduler.load_state_dict", "last_epoch as text",
         lambda: _scheduler_state(_step_lr(), last_epoch="3"),
         **raises(DTypeError, "StepLR.load_state_dict", "'last_epoch'", "int", "'3'")),
    Case("scheduler.load_state_dict", "ReduceLROnPlateau state with an unknown mode",
         lambda: _scheduler_state(_plateau(), mode="median"),
         **raises(ValueRangeError, "ReduceLROnPlateau.load_state_dict", "'median'")),
    Case("scheduler.load_state_dict", "LambdaLR lr_lambdas of the wrong length",
         lambda: _scheduler_state(optim.lr_scheduler.LambdaLR(_sgd(), lambda e: 1.0),
                                  lr_lambdas=[None, None]),
         **raises(StateDictError, "LambdaLR.load_state_dict", "'lr_lambdas'", "1 entries")),
    Case("nn.utils.clip_grad_norm_", "infinite norm with error_if_nonfinite=True",
         _clip_nonfinite,
         **raises(nn.utils.NonFiniteNormError, "clip_grad_norm_", "non-finite", "inf",
                  "error_if_nonfinite=False")),
    Case("nn.utils.clip_grad_norm_", "max_norm as text",
         lambda: nn.utils.clip_grad_norm_([nn.Parameter(tn.ones(2))], "1.0"),
         **raises(DTypeError, "clip_grad_norm_", "max_norm", "str")),
    Case("nn.utils.clip_grad_norm_", "a number instead of parameters",
         lambda: nn.utils.clip_grad_norm_(1.0, 1.0),
         **raises(DTypeError, "clip_grad_norm_", "iterable of Tensors", "float")),
    Case("nn.utils.clip_grad_norm_", "NaN gradient (every gradient NaN, as PyTorch)",
         lambda: (lambda p: (nn.utils.clip_grad_norm_([p], 1.0), p.grad)[1])(
             with_grad(nn.Parameter(tn.ones(2)), tn.tensor([NAN, 1.0]))),
         **equals([NAN, NAN], "float32")),
    Case("nn.utils.clip_grad_value_", "NaN gradient (kept, as PyTorch)",
         lambda: (lambda p: (nn.utils.clip_grad_value_([p], 0.5), p.grad)[1])(
             with_grad(nn.Parameter(tn.ones(2)), tn.tensor([NAN, 3.0]))),
         **equals([NAN, 0.5], "float32")),
]


def _recorded_in_place_after_a_read() -> None:
    h = tn.ones(3, requires_grad=True) * 2
    h + 3  # noqa: B018 - an op reads h
    h *= 2


def _custom_function(forward: Callable[..., Any], backward: Callable[..., Any]) -> Any:
    return type("_MyOp", (tn.autograd.Function,), {"forward": staticmethod(forward),
                                                  "backward": staticmethod(backward)})


# PyTorch-parity idioms (issue 11)
CATALOGUE += [
    Case("tn.max", "tuple of tensors as dim", lambda: tn.max(tn.ones(2, 2), (0, 1.5)),
         **raises(DTypeError, "max", "dim must be an integer")),
    Case("tn.topk", "k larger than the dim", lambda: tn.topk(tn.ones(3), 4),
         **raises(ValueRangeError, "topk", "k (4)", "size 3")),
    Case("tn.gather", "float index", lambda: tn.gather(tn.ones(2, 2), 1, tn.ones(2, 1)),
         **raises(DTypeError, "gather", "int64", "float32")),
    Case("tn.gather", "index out of range",
         lambda: tn.gather(tn.ones(2, 2), 1, tn.tensor([[2]])),
         **raises(ValueRangeError, "gather", "out of range", "size 2")),
    Case("tn.gather", "index larger than input",
         lambda: tn.gather(tn.ones(2, 2), 1, tn.zeros(3, 1, dtype=tn.int64)),
         **raises(ShapeError, "gather", "(3, 1)", "(2, 2)")),
    Case("Tensor.masked_fill", "float mask", lambda: tn.ones(2).masked_fill(tn.ones(2), 0.0),
         **raises(DTypeError, "masked_fill", "bool")),
    Case("tn.split", "sizes not adding up", lambda: tn.split(tn.ones(5), [2, 2]),
         **raises(ShapeError, "split", "[2, 2]", "5")),
    Case("tn.chunk", "0 chunks", lambda: tn.chunk(tn.ones(5), 0),
         **raises(ValueRangeError, "chunk", "positive")),
    Case("tn.norm", "nuclear norm", lambda: tn.norm(tn.ones(2, 2), "nuc"),
         **raises(ValueRangeError, "norm", "'nuc'")),
    Case("tn.norm", "integer tensor", lambda: tn.norm(tn.ones(2, dtype=tn.int64)),
         **raises(DTypeError, "norm", "int64", "float")),
    Case("tn.var", "unbiased and correction", lambda: tn.var(tn.ones(3), 0, True,
                                                              correction=1),
         **raises(DTypeError, "var", "not both")),
    Case("tn.mm", "a vector", lambda: tn.mm(tn.ones(2), tn.ones(2, 2)),
         **raises(ShapeError, "mm", "2-D", "(2,)")),
    Case("tn.einsum", "ellipsis", lambda: tn.einsum("...i->i", tn.ones(2, 2)),
         **raises(ShapeError, "einsum", "ellipsis")),
    Case("tn.einsum", "too few operands", lambda: tn.einsum("ij,jk->ik", tn.ones(2, 2)),
         **raises(ShapeError, "einsum", "2 operand")),
    Case("tn.einsum", "subscripts and dims disagree", lambda: tn.einsum("ijk->i", tn.ones(2)),
         **raises(ShapeError, "einsum", "'ijk'", "(2,)")),
    Case("Tensor.t", "3-d tensor", lambda: tn.ones(2, 2, 2).t(),
         **raises(ShapeError, "t", "<= 2", "(2, 2, 2)")),
    Case("tn.matmul", "float32 @ float64 tensors",
         lambda: tn.ones(2, 2) @ tn.ones(2, 2, dtype=tn.float64),
         **raises(DTypeMismatchError, "matmul", "float32", "float64")),
    Case("nn.Linear(2, 2)(x)", "float64 input", lambda: nn.Linear(2, 2)(tn.ones(1, 2,
                                                                               dtype=tn.float64)),
         **raises(DTypeMismatchError, "Linear", "float64", "float32")),
    Case("Tensor.__iadd__", "leaf that requires grad", lambda: tn.ones(2, requires_grad=True
                                                                       ).__iadd__(1),
         **raises(GraphError, "add_", "leaf", "no_grad")),
    Case("Tensor.__imul__", "tensor another op already read, in a graph",
         _recorded_in_place_after_a_read,
         **raises(GraphError, "mul_", "already used", "out of place")),
    Case("Tensor.__imul__", "int tensor times a float", lambda: tn.ones(2, dtype=tn.int64
                                                                      ).__imul__(1.5),
         **raises(DTypeError, "mul_", "int64")),
    Case("Tensor.data", "assigned a list", lambda: setattr(tn.ones(2), "data", [1.0, 2.0]),
         **raises(DTypeError, "data", "Tensor or a numpy array", "list")),
    Case("Tensor.__format__", "format spec on a vector", lambda: f"{tn.ones(2):.3f}",
         **raises(DTypeError, "unsupported format string", "(2,)")),
    Case("tn.Tensor", "float size", lambda: tn.Tensor(2, 2.5),
         **raises(DTypeError, "Tensor", "sizes", "tn.empty")),
    Case("Tensor.to", "cuda", lambda: tn.ones(2).to("cuda"),
         **raises(ValueRangeError, "device", "CPU only", "cuda")),
    Case("np.arctan2(tensor, tensor)", "ufunc without a tinynet op",
         lambda: np.arctan2(tn.ones(2), tn.ones(2)),
         **raises(DTypeError, "np.arctan2", "no op")),
    Case("Function.backward", "too few gradients", lambda: _custom_function(
        lambda ctx, x, y: x * y, lambda ctx, g: g).apply(
            tn.ones(2, requires_grad=True), tn.ones(2)).sum().backward(),
         **raises(GraphError, "_MyOp.backward", "1 gradient", "2 input")),
    Case("Function.backward", "gradient of the wrong shape", lambda: _custom_function(
        lambda ctx, x: x.sum(), lambda ctx, g: tn.ones(3)).apply(
            tn.ones(2, requires_grad=True)).backward(),
         **raises(ShapeError, "_MyOp.backward", "(3,)", "(2,)")),
    Case("Function.forward", "returns a list", lambda: _custom_function(
        lambda ctx, x: [x, x], lambda ctx, g: g).apply(tn.ones(2)),
         **raises(GraphError, "_MyOp.forward", "list", "one output")),
    Case("nn.Dropout", "p above 1", lambda: nn.Dropout(1.5),
         **raises(ValueRangeError, "Dropout", "between 0 and 1", "1.5")),
    Case("F.dropout", "p below 0", lambda: F.dropout(tn.ones(2), -0.1),
         **raises(ValueRangeError, "dropout", "between 0 and 1")),
]



# ---- convolution, pooling, normalization, channel dropout (issue 14) ----


def _image(*shape: int, fill: float = 1.0, dtype: Any = np.float32) -> tn.Tensor:
    return tn.tensor(np.full(shape, fill, dtype=dtype))


def _filters(dtype: Any = np.float32) -> tn.Tensor:
    """2 filters of 3x3 over 3 input channels."""
    return _image(2, 3, 3, 3, dtype=dtype)


def _nan_at_top_left() -> tn.Tensor:
    x = np.ones((1, 3, 5, 5), dtype=np.float32)
    x[0, 0, 0, 0] = NAN
    return tn.tensor(x)


def _conv_nan_check(out: Any) -> None:
    """Only the windows that cover the NaN pixel are NaN (output (1, 2, 3, 3))."""
    assert out.shape == (1, 2, 3, 3) and out.dtype == np.float32, (out.shape, out.dtype)
    nan = np.isnan(out.data)
    assert nan[:, :, 0, 0].all() and nan.sum() == 2, nan
    np.testing.assert_array_equal(out.data[0, 0, 1:, 1:], 27.0)


def _batch_norm_nan_check(out: Any) -> None:
    """A NaN in one channel makes that channel NaN and leaves the others as PyTorch has them."""
    assert np.isnan(out.data[:, 0]).all(), out.data
    np.testing.assert_allclose(out.data[:, 1], [-1.0, 1.0], rtol=1e-5)


CATALOGUE += [
    Case("F.conv2d", "2-D input", lambda: F.conv2d(_image(3, 5), _filters()),
         **raises(ShapeError, "conv2d", "3-D (C, H, W) or 4-D (N, C, H, W)", "(3, 5)")),
    Case("F.conv2d", "5-D input", lambda: F.conv2d(_image(1, 1, 3, 5, 5), _filters()),
         **raises(ShapeError, "conv2d", "(1, 1, 3, 5, 5)")),
    Case("F.conv2d", "input channels do not match the weight",
         lambda: F.conv2d(_image(1, 4, 5, 5), _filters()),
         **raises(ShapeError, "conv2d", "(1, 4, 5, 5)", "4 channels", "(2, 3, 3, 3)",
                  "expects 3")),
    Case("F.conv2d", "3-D weight", lambda: F.conv2d(_image(1, 3, 5, 5), _image(2, 3, 3)),
         **raises(ShapeError, "conv2d", "weight must be 4-D", "(2, 3, 3)")),
    Case("F.conv2d", "empty weight (no output channel)",
         lambda: F.conv2d(_image(1, 3, 5, 5), _image(0, 3, 3, 3)),
         **raises(ShapeError, "conv2d", "(0, 3, 3, 3)", "empty")),
    Case("F.conv2d", "float64 weight, float32 input",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(np.float64)),
         **raises(DTypeError, "conv2d", "input float32", "weight float64", ".double()")),
    Case("F.conv2d", "bias of the wrong length",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), _image(3)),
         **raises(ShapeError, "conv2d", "bias must have shape (2,)", "(3,)")),
    Case("F.conv2d", "a string as input", lambda: F.conv2d("abc", _filters()),
         **raises(DTypeError, "conv2d", "string")),
    Case("F.conv2d", "stride 0", lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), stride=0),
         **raises(ValueRangeError, "conv2d", "stride must be >= 1", "0")),
    Case("F.conv2d", "fractional stride",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), stride=1.5),
         **raises(DTypeError, "conv2d", "stride", "int or a pair of ints", "1.5")),
    Case("F.conv2d", "NaN stride", lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), stride=NAN),
         **raises(DTypeError, "conv2d", "stride", "nan")),
    Case("F.conv2d", "stride of three numbers",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), stride=(1, 1, 1)),
         **raises(ShapeError, "conv2d", "stride", "(1, 1, 1)")),
    Case("F.conv2d", "negative padding",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), padding=-1),
         **raises(ValueRangeError, "conv2d", "padding must be >= 0", "-1")),
    Case("F.conv2d", "unknown padding word",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), padding="full"),
         **raises(ValueRangeError, "conv2d", "'same' or 'valid'", "'full'")),
    Case("F.conv2d", "padding='same' with stride 2",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), padding="same", stride=2),
         **raises(ValueRangeError, "conv2d", "padding='same'", "strided", "(2, 2)")),
    Case("F.conv2d", "dilation 0", lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), dilation=0),
         **raises(ValueRangeError, "conv2d", "dilation must be >= 1")),
    Case("F.conv2d", "groups 0", lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), groups=0),
         **raises(ValueRangeError, "conv2d", "groups must be >= 1")),
    Case("F.conv2d", "groups that do not divide the channels",
         lambda: F.conv2d(_image(1, 3, 5, 5), _filters(), groups=2),
         **raises(ShapeError, "conv2d", "groups=2", "expects 6")),
    Case("F.conv2d", "kernel larger than the padded image",
         lambda: F.conv2d(_image(1, 3, 2, 2), _filters()),
         **raises(ShapeError, "conv2d", "kernel 3x3", "padded input 2x2", "(1, 3, 2, 2)",
                  "more padding")),
    Case("F.conv2d", "image of height 0", lambda: F.conv2d(_image(1, 3, 0, 5), _filters()),
         **raises(ShapeError, "conv2d", "padded input 0x5")),
    Case("F.conv2d", "empty batch (as PyTorch: an empty output)",
         lambda: F.conv2d(_image(0, 3, 5, 5), _filters()),
         **equals(np.zeros((0, 2, 3, 3)), "float32")),
    Case("F.conv2d", "NaN pixel (only the windows over it are NaN)",
         lambda: F.conv2d(_nan_at_top_left(), _filters()), **answers(_conv_nan_check)),
    Case("nn.Conv2d", "0 input channels", lambda: nn.Conv2d(0, 2, 3),
         **raises(ValueRangeError, "Conv2d", "in_channels must be >= 1", "0")),
    Case("nn.Conv2d", "kernel_size 0", lambda: nn.Conv2d(1, 2, 0),
         **raises(ValueRangeError, "Conv2d", "kernel_size must be >= 1")),
    Case("nn.Conv2d", "fractional out_channels", lambda: nn.Conv2d(1, 2.5, 3),
         **raises(DTypeError, "Conv2d", "out_channels must be an integer", "2.5")),
    Case("nn.Conv2d", "channels not divisible by groups", lambda: nn.Conv2d(3, 4, 3, groups=2),
         **raises(ValueRangeError, "Conv2d", "in_channels (3)", "out_channels (4)",
                  "divisible by groups (2)")),
    Case("nn.Conv2d", "padding_mode other than zeros",
         lambda: nn.Conv2d(3, 4, 3, padding_mode="circular"),
         **raises(ValueRangeError, "Conv2d", "'circular'", "padding_mode='zeros'")),
    Case("nn.Conv2d", "NaN stride", lambda: nn.Conv2d(3, 4, 3, stride=NAN),
         **raises(DTypeError, "Conv2d", "stride", "nan")),
    Case("nn.Conv2d", "padding='same' with stride 2",
         lambda: nn.Conv2d(3, 4, 3, padding="same", stride=2),
         **raises(ValueRangeError, "Conv2d", "padding='same'", "strided")),
    Case("nn.Conv2d.forward", "wrong number of channels",
         lambda: nn.Conv2d(3, 4, 3)(_image(1, 2, 5, 5)),
         **raises(ShapeError, "conv2d", "(1, 2, 5, 5)", "2 channels", "expects 3")),
    Case("nn.Conv2d.forward", "float64 input to a float32 layer",
         lambda: nn.Conv2d(3, 4, 3)(_image(1, 3, 5, 5, dtype=np.float64)),
         **raises(DTypeError, "conv2d", "input float64", "weight float32", ".double()")),
    Case("F.max_pool2d", "kernel_size 0", lambda: F.max_pool2d(_image(1, 1, 4, 4), 0),
         **raises(ValueRangeError, "max_pool2d", "kernel_size must be >= 1")),
    Case("F.max_pool2d", "kernel_size 2.0", lambda: F.max_pool2d(_image(1, 1, 4, 4), 2.0),
         **raises(DTypeError, "max_pool2d", "kernel_size", "int or a pair of ints", "2.0")),
    Case("F.max_pool2d", "infinite kernel_size", lambda: F.max_pool2d(_image(1, 1, 4, 4), INF),
         **raises(DTypeError, "max_pool2d", "kernel_size", "inf")),
    Case("F.max_pool2d", "kernel_size as text", lambda: F.max_pool2d(_image(1, 1, 4, 4), "2"),
         **raises(DTypeError, "max_pool2d", "kernel_size", "'2'")),
    Case("F.max_pool2d", "negative stride",
         lambda: F.max_pool2d(_image(1, 1, 4, 4), 2, stride=-1),
         **raises(ValueRangeError, "max_pool2d", "stride must be >= 1", "-1")),
    Case("F.max_pool2d", "padding more than half the kernel",
         lambda: F.max_pool2d(_image(1, 1, 4, 4), 2, padding=2),
         **raises(ValueRangeError, "max_pool2d", "at most half", "pad=(2, 2)")),
    Case("F.max_pool2d", "dilation 0", lambda: F.max_pool2d(_image(1, 1, 4, 4), 2, dilation=0),
         **raises(ValueRangeError, "max_pool2d", "dilation must be >= 1")),
    Case("F.max_pool2d", "kernel larger than the image",
         lambda: F.max_pool2d(_image(1, 1, 2, 2), 3),
         **raises(ShapeError, "max_pool2d", "kernel 3x3", "padded input 2x2")),
    Case("F.max_pool2d", "2-D input", lambda: F.max_pool2d(_image(4, 4), 2),
         **raises(ShapeError, "max_pool2d", "3-D (C, H, W) or 4-D", "(4, 4)")),
    Case("F.max_pool2d", "empty batch (as PyTorch: an empty output)",
         lambda: F.max_pool2d(_image(0, 1, 4, 4), 2), **equals(np.zeros((0, 1, 2, 2)), "float32")),
    Case("F.max_pool2d", "NaN in a window (NaN wins, as PyTorch)",
         lambda: F.max_pool2d(tn.tensor([[[[1.0, NAN], [2.0, 3.0]]]]), 2),
         **equals([[[[NAN]]]], "float32")),
    Case("nn.MaxPool2d.forward", "kernel_size 0 (refused when called, as PyTorch)",
         lambda: nn.MaxPool2d(0)(_image(1, 1, 4, 4)),
         **raises(ValueRangeError, "max_pool2d", "kernel_size must be >= 1")),
    Case("F.avg_pool2d", "kernel_size 0", lambda: F.avg_pool2d(_image(1, 1, 4, 4), 0),
         **raises(ValueRangeError, "avg_pool2d", "kernel_size must be >= 1")),
    Case("F.avg_pool2d", "divisor_override 0",
         lambda: F.avg_pool2d(_image(1, 1, 4, 4), 2, divisor_override=0),
         **raises(ValueRangeError, "avg_pool2d", "divisor_override must be non-zero")),
    Case("F.avg_pool2d", "fractional divisor_override",
         lambda: F.avg_pool2d(_image(1, 1, 4, 4), 2, divisor_override=1.5),
         **raises(DTypeError, "avg_pool2d", "divisor_override must be an integer", "1.5")),
    Case("F.avg_pool2d", "padding more than half the kernel",
         lambda: F.avg_pool2d(_image(1, 1, 4, 4), 2, padding=3),
         **raises(ValueRangeError, "avg_pool2d", "at most half", "pad=(3, 3)")),
    Case("F.avg_pool2d", "5-D input", lambda: F.avg_pool2d(_image(1, 1, 1, 4, 4), 2),
         **raises(ShapeError, "avg_pool2d", "(1, 1, 1, 4, 4)")),
    Case("F.avg_pool2d", "kernel larger than the image",
         lambda: F.avg_pool2d(_image(1, 1, 2, 2), 3),
         **raises(ShapeError, "avg_pool2d", "kernel 3x3", "padded input 2x2")),
    Case("F.avg_pool2d", "inf pixels (the mean is inf)",
         lambda: F.avg_pool2d(_image(1, 1, 2, 2, fill=INF), 2), **equals([[[[INF]]]], "float32")),
    Case("F.adaptive_avg_pool2d", "output_size 0",
         lambda: F.adaptive_avg_pool2d(_image(1, 1, 4, 4), 0),
         **raises(ValueRangeError, "adaptive_avg_pool2d", "output_size must be >= 1")),
    Case("F.adaptive_avg_pool2d", "output_size of three numbers",
         lambda: F.adaptive_avg_pool2d(_image(1, 1, 4, 4), (1, 2, 3)),
         **raises(ShapeError, "adaptive_avg_pool2d", "int or a pair", "(1, 2, 3)")),
    Case("F.adaptive_avg_pool2d", "fractional output_size",
         lambda: F.adaptive_avg_pool2d(_image(1, 1, 4, 4), 2.5),
         **raises(DTypeError, "adaptive_avg_pool2d", "output_size", "2.5")),
    Case("F.adaptive_avg_pool2d", "NaN output_size",
         lambda: F.adaptive_avg_pool2d(_image(1, 1, 4, 4), NAN),
         **raises(DTypeError, "adaptive_avg_pool2d", "output_size", "nan")),
    Case("F.adaptive_avg_pool2d", "image of height 0",
         lambda: F.adaptive_avg_pool2d(_image(1, 1, 0, 4), 2),
         **raises(ShapeError, "adaptive_avg_pool2d", "non-zero height and width",
                  "(1, 1, 0, 4)")),
    Case("F.adaptive_avg_pool2d", "2-D input", lambda: F.adaptive_avg_pool2d(_image(4, 4), 2),
         **raises(ShapeError, "adaptive_avg_pool2d", "(4, 4)")),
    Case("F.batch_norm", "1-D input", lambda: F.batch_norm(_image(3), None, None, training=True),
         **raises(ShapeError, "batch_norm", "2 or more dims", "(3,)")),
    Case("F.batch_norm", "running_mean for another number of channels",
         lambda: F.batch_norm(_image(2, 3), _image(4), _image(4)),
         **raises(ShapeError, "batch_norm", "running_mean must have shape (3,)", "(4,)")),
    Case("F.batch_norm", "float64 running stats, float32 input",
         lambda: F.batch_norm(_image(2, 3), _image(3, dtype=np.float64),
                              _image(3, dtype=np.float64)),
         **raises(DTypeError, "batch_norm", "running_mean is float64", "input is float32")),
    Case("F.batch_norm", "weight of the wrong length",
         lambda: F.batch_norm(_image(2, 3), None, None, weight=_image(2), training=True),
         **raises(ShapeError, "batch_norm", "weight must have shape (3,)", "(2,)")),
    Case("F.batch_norm", "evaluation without running statistics",
         lambda: F.batch_norm(_image(2, 3), None, None),
         **raises(ValueRangeError, "batch_norm", "running_mean and running_var",
                  "training=False")),
    Case("F.batch_norm", "one value per channel when training",
         lambda: F.batch_norm(_image(1, 3), None, None, training=True),
         **raises(ValueRangeError, "batch_norm", "more than 1 value per channel", "(1, 3)")),
    Case("F.batch_norm", "NaN eps", lambda: F.batch_norm(_image(2, 3), None, None, True, eps=NAN),
         **raises(ValueRangeError, "batch_norm", "eps", "finite", "nan")),
    Case("F.batch_norm", "negative eps",
         lambda: F.batch_norm(_image(2, 3), None, None, training=True, eps=-1),
         **raises(ValueRangeError, "batch_norm", "eps", ">= 0", "-1")),
    Case("F.batch_norm", "infinite momentum",
         lambda: F.batch_norm(_image(2, 3), None, None, training=True, momentum=INF),
         **raises(ValueRangeError, "batch_norm", "momentum", "inf")),
    Case("F.batch_norm", "momentum as text",
         lambda: F.batch_norm(_image(2, 3), None, None, training=True, momentum="0.1"),
         **raises(DTypeError, "batch_norm", "momentum must be a number", "'0.1'")),
    Case("F.batch_norm", "NaN in one channel (that channel is NaN, as PyTorch)",
         lambda: F.batch_norm(tn.tensor([[NAN, 2.0], [3.0, 4.0]]), None, None, training=True),
         **answers(_batch_norm_nan_check)),
    Case("nn.BatchNorm1d", "fractional num_features", lambda: nn.BatchNorm1d(2.5),
         **raises(DTypeError, "BatchNorm1d", "num_features must be an integer", "2.5")),
    Case("nn.BatchNorm1d", "NaN eps", lambda: nn.BatchNorm1d(3, eps=NAN),
         **raises(ValueRangeError, "BatchNorm1d", "eps", "nan")),
    Case("nn.BatchNorm1d", "NaN momentum", lambda: nn.BatchNorm1d(3, momentum=NAN),
         **raises(ValueRangeError, "BatchNorm1d", "momentum", "nan")),
    Case("nn.BatchNorm1d.forward", "4-D input", lambda: nn.BatchNorm1d(3)(_image(2, 3, 4, 4)),
         **raises(ShapeError, "BatchNorm1d", "2D or 3D input", "(2, 3, 4, 4)")),
    Case("nn.BatchNorm1d.forward", "wrong number of features",
         lambda: nn.BatchNorm1d(3)(_image(2, 4)),
         **raises(ShapeError, "batch_norm", "(2, 4)", "4 channels", "(3,)")),
    Case("nn.BatchNorm1d.forward", "float64 input to a float32 layer",
         lambda: nn.BatchNorm1d(3)(_image(2, 3, dtype=np.float64)),
         **raises(DTypeError, "batch_norm", "float32", "input is float64")),
    Case("nn.BatchNorm1d.forward", "batch of one when training",
         lambda: nn.BatchNorm1d(3)(_image(1, 3)),
         **raises(ValueRangeError, "batch_norm", "more than 1 value per channel")),
    Case("nn.BatchNorm2d.forward", "2-D input", lambda: nn.BatchNorm2d(3)(_image(2, 3)),
         **raises(ShapeError, "BatchNorm2d", "expected 4D input", "(2, 3)")),
    Case("nn.BatchNorm2d.forward", "unbatched 3-D image",
         lambda: nn.BatchNorm2d(3)(_image(3, 4, 4)),
         **raises(ShapeError, "BatchNorm2d", "expected 4D input", "(3, 4, 4)")),
    Case("nn.BatchNorm2d.forward", "wrong number of channels",
         lambda: nn.BatchNorm2d(3)(_image(2, 4, 4, 4)),
         **raises(ShapeError, "batch_norm", "(2, 4, 4, 4)", "4 channels")),
    Case("F.layer_norm", "input not ending with normalized_shape",
         lambda: F.layer_norm(_image(2, 3), (4,)),
         **raises(ShapeError, "layer_norm", "(2, 3)", "does not end with", "(4,)")),
    Case("F.layer_norm", "empty normalized_shape", lambda: F.layer_norm(_image(2, 3), ()),
         **raises(ShapeError, "layer_norm", "normalized_shape ()")),
    Case("F.layer_norm", "normalized_shape 0", lambda: F.layer_norm(_image(2, 3), 0),
         **raises(ValueRangeError, "layer_norm", "normalized_shape must be >= 1")),
    Case("F.layer_norm", "normalized_shape as text", lambda: F.layer_norm(_image(2, 3), "3"),
         **raises(DTypeError, "layer_norm", "normalized_shape must be an integer", "'3'")),
    Case("F.layer_norm", "weight of the wrong shape",
         lambda: F.layer_norm(_image(2, 3), (3,), weight=_image(2)),
         **raises(ShapeError, "layer_norm", "weight must have shape (3,)", "(2,)")),
    Case("F.layer_norm", "float64 weight, float32 input",
         lambda: F.layer_norm(_image(2, 3), (3,), weight=_image(3, dtype=np.float64)),
         **raises(DTypeError, "layer_norm", "weight is float64", "input is float32")),
    Case("F.layer_norm", "NaN eps", lambda: F.layer_norm(_image(2, 3), 3, eps=NAN),
         **raises(ValueRangeError, "layer_norm", "eps", "nan")),
    Case("F.layer_norm", "a string as input", lambda: F.layer_norm("abc", 3),
         **raises(DTypeError, "layer_norm", "string")),
    Case("nn.LayerNorm", "normalized_shape as text", lambda: nn.LayerNorm("3"),
         **raises(DTypeError, "LayerNorm", "normalized_shape must be an integer", "'3'")),
    Case("nn.LayerNorm.forward", "input not ending with normalized_shape",
         lambda: nn.LayerNorm(3)(_image(2, 4)),
         **raises(ShapeError, "layer_norm", "(2, 4)", "(3,)")),
    Case("nn.LayerNorm.forward", "float64 input to a float32 layer",
         lambda: nn.LayerNorm(3)(_image(2, 3, dtype=np.float64)),
         **raises(DTypeError, "layer_norm", "float32", "input is float64")),
    Case("F.dropout2d", "p above 1", lambda: F.dropout2d(_image(1, 2, 3, 3), 1.5),
         **raises(ValueRangeError, "dropout2d", "between 0 and 1", "1.5")),
    Case("F.dropout2d", "NaN p", lambda: F.dropout2d(_image(1, 2, 3, 3), NAN),
         **raises(ValueRangeError, "dropout2d", "between 0 and 1", "nan")),
    Case("F.dropout2d", "p as text", lambda: F.dropout2d(_image(1, 2, 3, 3), "0.5"),
         **raises(DTypeError, "dropout2d", "must be a number", "'0.5'")),
    Case("F.dropout2d", "2-D input", lambda: F.dropout2d(_image(2, 3), 0.5),
         **raises(ShapeError, "dropout2d", "4-D (N, C, H, W)", "(2, 3)")),
    Case("F.dropout2d", "5-D input", lambda: F.dropout2d(_image(1, 1, 2, 3, 3), 0.5),
         **raises(ShapeError, "dropout2d", "(1, 1, 2, 3, 3)")),
    Case("nn.Dropout2d", "negative p", lambda: nn.Dropout2d(-0.1),
         **raises(ValueRangeError, "Dropout2d", "between 0 and 1", "-0.1")),
    Case("nn.Dropout2d.forward", "2-D input", lambda: nn.Dropout2d(0.5)(_image(2, 3)),
         **raises(ShapeError, "dropout2d", "(2, 3)")),
]

# ---- tn.compile: what cannot be traced (issue 13) ----


def _compile_call(body: Callable[[Any], Any]) -> Any:
    """Trace ``body`` with tn.compile on a fresh input (the first call traces)."""
    return tn.compile(body)(tn.tensor(np.ones(3)))


def _reads_item(x: Any) -> Any:
    return x * x.sum().item()


def _branches(x: Any) -> Any:
    return x * 2 if x.sum() > 0 else x


def _prints(x: Any) -> Any:
    print(x)
    return x * 2


def _reads_numpy(x: Any) -> Any:
    return x * float(x.detach().numpy().sum())


_OUTSIDE = tn.tensor(np.ones(3))


def _edits_outside(x: Any) -> Any:
    _OUTSIDE.add_(1.0)
    return x * _OUTSIDE


def _double_backward(x: Any) -> Any:
    x = x.detach().requires_grad_()
    (g,) = tn.autograd.grad((x * x).sum(), [x], create_graph=True)
    return g


CATALOGUE += [
    Case("tn.compile", ".item() while tracing", lambda: _compile_call(_reads_item),
         **raises(CompileError, "tn.compile(_reads_item)", "test_bad_inputs.py")),
    Case("tn.compile", "a Python branch on a tensor", lambda: _compile_call(_branches),
         **raises(CompileError, "tn.compile(_branches)", "test_bad_inputs.py")),
    Case("tn.compile", "printing a tensor while tracing", lambda: _compile_call(_prints),
         **raises(CompileError, "tn.compile(_prints)", "test_bad_inputs.py")),
    Case("tn.compile", ".numpy() while tracing", lambda: _compile_call(_reads_numpy),
         **raises(CompileError, "tn.compile(_reads_numpy)", "test_bad_inputs.py")),
    Case("tn.compile", "an in-place edit of an outside tensor (replayed as a recorded op)",
         lambda: _replays_in_place(_edits_outside, outside=True),
         **answers(lambda result: None)),
    Case("tn.compile", "create_graph (double backward)", lambda: _compile_call(_double_backward),
         **raises(CompileError, "create_graph")),
]


def _edits_argument(x: Any) -> Any:
    y = x * 2
    x.add_(1.0)
    return y


def _replays_in_place(body: Callable[[Any], Any], outside: bool) -> None:
    """An in-place edit under tn.compile is a recorded op: three calls (two replays) give
    what three eager calls give, the written tensor included."""
    compiled = tn.compile(body)
    start = _OUTSIDE.data.copy()
    results = []
    for run in (body, compiled):  # eager, then compiled from the same start
        _OUTSIDE.data[...] = start
        x = tn.tensor(np.arange(3.0))
        results.append([run(x).data.copy() for _ in range(3)] + [
            (_OUTSIDE if outside else x).data.copy()])
    np.testing.assert_array_equal(np.array(results[1]), np.array(results[0]))
    assert compiled.replays == 2
    _OUTSIDE.data[...] = start


_LOG: list[Any] = []


def _appends(x: Any) -> Any:
    _LOG.append(1)
    return x * 2


def _backward_through_compiled_result() -> None:
    model = tn.compile(tn.nn.Linear(3, 1).double())
    x = tn.tensor(np.ones((2, 3)))
    model(x)  # traced
    model(x).sum().backward()  # replayed: no graph


CATALOGUE += [
    Case("tn.compile", "an in-place edit of an argument (replayed as a recorded op)",
         lambda: _replays_in_place(_edits_argument, outside=False),
         **answers(lambda result: None)),
    Case("tn.compile", "a Python side effect (an append to an outside list)",
         lambda: _compile_call(_appends), **raises(CompileError, "changes an outside list")),
    Case("tn.compile", "backward() through a replayed result", _backward_through_compiled_result,
         **raises(CompileError, "backward() through the result of a compiled call")),
]


def _numpy_on_data(x: Any) -> Any:
    return x * tn.from_numpy(np.maximum(x.data, 0))


def _copies_argument(x: Any) -> Any:
    return tn.tensor(x) * 2


def _writes_into_constant(x: Any) -> Any:
    z = tn.zeros(3, dtype=tn.float64)
    z.data[0] = 1.0
    return x * z


def _masked_index(x: Any) -> Any:
    return x[x > 0].sum()


def _sampler_draw(x: Any) -> Any:
    order = list(tn.utils.data.RandomSampler(range(3)))
    return x * len(order)


CATALOGUE += [  # issue 19: every array of a replay has a source tn.compile can prove
    Case("tn.compile", "a numpy computation on .data", lambda: _compile_call(_numpy_on_data),
         **raises(CompileError, "cannot trace to its source")),
    Case("tn.compile", "tn.tensor(x) copying an argument",
         lambda: _compile_call(_copies_argument), **raises(CompileError, "tn.tensor(x)")),
    Case("tn.compile", "a write through .data into a tensor made in the step",
         lambda: _compile_call(_writes_into_constant),
         **raises(CompileError, "writes into a tensor of shape")),
    Case("tn.compile", "x[mask] (a size that depends on the values)",
         lambda: _compile_call(_masked_index), **raises(CompileError, "x[mask]")),
    Case("tn.compile", "random numbers outside tinynet's recorded draws (a sampler)",
         lambda: _compile_call(_sampler_draw), **raises(CompileError, "random numbers")),
]


def run_case(case: Case) -> BaseException | None:
    """Run one case; returns the exception it raised (None if it answered)."""
    try:
        result = case.call()
    except BaseException as e:  # noqa: BLE001 - the catalogue classifies every outcome
        return e
    if case.check is not None:
        case.check(result)
    return None


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_catalogue(case: Case) -> None:
    outcome = run_case(case)
    if case.error is None:
        assert outcome is None, f"{case.id}: expected an answer, got {outcome!r}"
        return
    assert outcome is not None, f"{case.id}: expected {case.error.__name__}, got an answer"
    if not isinstance(outcome, case.error):
        raise AssertionError(f"{case.id}: expected {case.error.__name__}, got "
                             f"{type(outcome).__name__}: {outcome}") from outcome
    message = str(outcome)
    for mention in case.mentions:
        assert mention in message, f"{case.id}: {mention!r} not in {message!r}"


def test_catalogue_errors_are_tinynet_errors_or_python_protocols() -> None:
    for case in CATALOGUE:
        if case.error is not None:
            assert issubclass(case.error, TinynetError) or case.error in PROTOCOL_ERRORS or (
                case.error is ValueError), case.id


# ---------------------------------------------------------------------------------------------
# The sweep: every function x every bad value
# ---------------------------------------------------------------------------------------------

BAD_VALUES: dict[str, Callable[[], Any]] = {
    "int tensor": lambda: tn.tensor([1, 2, 3]),
    "bool tensor": lambda: tn.tensor([True, False, True]),
    "int array": lambda: np.array([1, 2, 3]),
    "object array": lambda: np.array([1.0, None, 2.0], dtype=object),
    "string": lambda: "abc",
    "list of strings": lambda: ["a", "b", "c"],
    "bytes": lambda: b"abc",
    "None": lambda: None,
    "dict": lambda: {"a": 1},
    "complex array": lambda: np.array([1 + 2j, 3j, 1.0]),
    "ragged list": lambda: [[1.0, 2.0], [3.0]],
    "nested list": lambda: [[1.0, 2.0, 3.0]],
    "NaN/inf tensor": lambda: tn.tensor([NAN, INF, -INF]),
    "empty": lambda: tn.zeros(0),
    "empty 2-d": lambda: tn.zeros(0, 3),
    "0-d": lambda: tn.tensor(2.0),
    "non-contiguous": lambda: tn.from_numpy(strided()),
    "negative strides": lambda: tn.from_numpy(reversed_view()),
    "read-only": lambda: tn.from_numpy(ro([1.0, 2.0, 3.0])),
    "numpy non-contiguous": strided,
    "numpy read-only": lambda: ro([1.0, 2.0, 3.0]),
    "float16": lambda: tn.tensor([1.0, 2.0, 3.0], dtype=tn.float16),
    "float64 (3, 4)": lambda: tn.ones(3, 4, dtype=tn.float64),
    "requires grad": lambda: leaf(3),
    "NaN float": lambda: NAN,
    "fractional float": lambda: 2.5,
    "negative int": lambda: -2,
}


def _linear_3_2(x: Any) -> Any:
    tn.manual_seed(0)
    return nn.Linear(3, 2)(x)


SWEEP: dict[str, Callable[[Any], Any]] = {
    "tn.tensor": lambda a: tn.tensor(a),
    "tn.as_tensor": lambda a: tn.as_tensor(a),
    "tn.from_numpy": lambda a: tn.from_numpy(a),
    "tn.zeros": lambda a: tn.zeros(a),
    "tn.full": lambda a: tn.full((2,), a),
    "tn.zeros_like": lambda a: tn.zeros_like(a),
    "tn.arange": lambda a: tn.arange(a),
    "tn.linspace": lambda a: tn.linspace(0, 1, a),
    "tn.eye": lambda a: tn.eye(a),
    "tn.randn": lambda a: tn.randn(a),
    "tn.randint": lambda a: tn.randint(0, 5, a),
    "x + a": lambda a: tn.ones(3) + a,
    "a + x": lambda a: a + tn.ones(3) if isinstance(a, tn.Tensor) else tn.ones(3).__radd__(a),
    "x * a": lambda a: tn.ones(3) * a,
    "x / a": lambda a: tn.ones(3) / a,
    "x ** a": lambda a: tn.ones(3) ** a,
    "x @ a": lambda a: tn.ones(3, 3) @ a,
    "x < a": lambda a: tn.ones(3) < a,
    "tn.maximum": lambda a: tn.maximum(tn.ones(3), a),
    "tn.where(a, x, y)": lambda a: tn.where(a, tn.ones(3), tn.zeros(3)),
    "tn.where(c, a, y)": lambda a: tn.where(np.array([True, False, True]), a, tn.zeros(3)),
    "tn.exp": lambda a: tn.exp(a),
    "tn.log": lambda a: tn.log(a),
    "tn.sqrt": lambda a: tn.sqrt(a),
    "tn.abs": lambda a: tn.abs(a),
    "tn.neg": lambda a: tn.neg(a),
    "tn.sigmoid": lambda a: tn.sigmoid(a),
    "tn.tanh": lambda a: tn.tanh(a),
    "tn.relu": lambda a: tn.relu(a),
    "tn.step": lambda a: tn.step(a),
    "tn.softmax": lambda a: tn.softmax(a, dim=-1),
    "tn.log_softmax": lambda a: tn.log_softmax(a, dim=0),
    "tn.clip(a)": lambda a: tn.clip(a, 0.0, 1.0),
    "tn.clip(x, a)": lambda a: tn.clip(tn.ones(3), a),
    "tn.sum": lambda a: tn.sum(a),
    "tn.mean": lambda a: tn.mean(a),
    "tn.max": lambda a: tn.max(a),
    "tn.argmax": lambda a: tn.argmax(a),
    "x.sum(dim=a)": lambda a: tn.ones(3).sum(dim=a),
    "tn.reshape": lambda a: tn.reshape(a, (-1,)),
    "x.reshape(a)": lambda a: tn.ones(6).reshape(a),
    "tn.flatten": lambda a: tn.flatten(a),
    "tn.transpose": lambda a: tn.transpose(a),
    "tn.squeeze": lambda a: tn.squeeze(a),
    "tn.unsqueeze": lambda a: tn.unsqueeze(a, 0),
    "tn.broadcast_to": lambda a: tn.broadcast_to(a, (2, 3)),
    "x.broadcast_to(a)": lambda a: tn.ones(3).broadcast_to(a),
    "tn.cat([a, a])": lambda a: tn.cat([a, a]),
    "tn.cat(a)": lambda a: tn.cat(a),
    "tn.stack([a, a])": lambda a: tn.stack([a, a]),
    "tn.matmul(a, a)": lambda a: tn.matmul(a, a),
    "x[a]": lambda a: tn.ones(3)[a],
    "x[0] = a": lambda a: tn.ones(3).__setitem__(0, a),
    "x[:] = a": lambda a: tn.ones(3).__setitem__(slice(None), a),
    "x.add_(a)": lambda a: tn.ones(3).add_(a),
    "x.mul_(a)": lambda a: tn.ones(3).mul_(a),
    "x.copy_(a)": lambda a: tn.ones(3).copy_(a),
    "x.fill_(a)": lambda a: tn.ones(3).fill_(a),
    "x.clamp_(a)": lambda a: tn.ones(3).clamp_(a, None),
    "x.astype(a)": lambda a: tn.ones(3).astype(a),
    "y.backward(a)": lambda a: (leaf(3) * 2).backward(a),
    "tn.autograd.grad(y, a)": lambda a: tn.autograd.grad((leaf(3) * 2).sum(), a),
    "nn.Linear(a, 2)": lambda a: nn.Linear(a, 2),
    "nn.Linear(3, 2)(a)": _linear_3_2,
    "F.linear(a, W)": lambda a: F.linear(a, tn.ones(2, 3)),
    "F.mse_loss(a, t)": lambda a: F.mse_loss(a, tn.zeros(3)),
    "F.mse_loss(x, a)": lambda a: F.mse_loss(tn.zeros(3), a),
    "F.binary_cross_entropy(a, t)": lambda a: F.binary_cross_entropy(a, tn.zeros(3)),
    "F.binary_cross_entropy(x, a)": lambda a: F.binary_cross_entropy(tn.full((3,), 0.5), a),
    "F.binary_cross_entropy(weight=a)": lambda a: F.binary_cross_entropy(
        tn.full((3,), 0.5), tn.zeros(3), weight=a),
    "F.binary_cross_entropy_with_logits(a, t)": lambda a: F.binary_cross_entropy_with_logits(
        a, tn.zeros(3)),
    "F.binary_cross_entropy_with_logits(x, a)": lambda a: F.binary_cross_entropy_with_logits(
        tn.zeros(3), a),
    "F.binary_cross_entropy_with_logits(pos_weight=a)":
        lambda a: F.binary_cross_entropy_with_logits(tn.zeros(3), tn.zeros(3), pos_weight=a),
    "F.cross_entropy(a, t)": lambda a: F.cross_entropy(a, np.array([0])),
    "F.cross_entropy(x, a)": lambda a: F.cross_entropy(tn.zeros(3, 3), a),
    "F.cross_entropy(weight=a)": lambda a: F.cross_entropy(tn.zeros(2, 3), [0, 1], weight=a),
    "F.nll_loss(x, a)": lambda a: F.nll_loss(tn.zeros(3, 3), a),
    "nn.CrossEntropyLoss(weight=a)": lambda a: nn.CrossEntropyLoss(weight=a)(tn.zeros(2, 3),
                                                                            [0, 1]),
    "nn.MSELoss()(a, a)": lambda a: nn.MSELoss()(a, a),
    "optim.SGD(a)": lambda a: optim.SGD(a, lr=0.1),
    "optim.SGD(lr=a)": lambda a: optim.SGD([nn.Parameter(tn.ones(2))], lr=a),
    "optim.Adam(lr=a)": lambda a: optim.Adam([nn.Parameter(tn.ones(2))], lr=a),
    "optim.Adam(eps=a)": lambda a: optim.Adam([nn.Parameter(tn.ones(2))], eps=a),
    "optim.Adam(betas=a)": lambda a: optim.Adam([nn.Parameter(tn.ones(2))], betas=a),
    "SGD.step with param data a": lambda a: _sgd_step(
        with_grad(nn.Parameter(a), tn.ones_like(a)), momentum=0.9),
    "SGD.step with .grad a": lambda a: _sgd_step(with_grad(nn.Parameter(tn.ones(3)), a)),
    "Adam.step with .grad a": lambda a: optim.Adam(
        [with_grad(nn.Parameter(tn.ones(3)), a)]).step(),
    "nn.Parameter(a)": lambda a: nn.Parameter(a),
    "load_state_dict(0.weight=a)": lambda a: model().load_state_dict(_state(**{"0__weight": a})),
    "load_state_dict(a)": lambda a: model().load_state_dict(a),
    "SGD.load_state_dict(a)": lambda a: optim.SGD([nn.Parameter(tn.ones(2))],
                                                  lr=0.1).load_state_dict(a),
    "tn.save(a)": lambda a: tn.save(a, _path("sweep.npz")),
    "tn.save({'w': a})": lambda a: tn.save({"w": a}, _path("sweep.npz")),
    "tn.load(a)": lambda a: tn.load(a),
    "data.TensorDataset(a)": lambda a: data.TensorDataset(a),
    "data.TensorDataset(x, a)": lambda a: data.TensorDataset(tn.ones(3, 2), a),
    "data.DataLoader(a)": lambda a: _batches(data.DataLoader(a)),
    "data.DataLoader(batch_size=a)": lambda a: data.DataLoader(data.TensorDataset(tn.ones(3)),
                                                               batch_size=a),
    "data.default_collate([a, a])": lambda a: data.default_collate([a, a]),
    "data.two_moons(a)": lambda a: data.two_moons(a),
    "nn.init.uniform_(a)": lambda a: nn.init.uniform_(a),
    "nn.init.xavier_uniform_(a)": lambda a: nn.init.xavier_uniform_(a),
    "model.to(a)": lambda a: model().to(a),
    "tn.gradcheck(f, [a])": lambda a: tn.gradcheck(lambda t: t * 2, [a]),
    "tn.set_default_dtype(a)": lambda a: tn.set_default_dtype(a),
}

# Optimizers, schedulers and gradient clipping (issues 11 and 12).
SWEEP.update({
    "optim.RMSprop(lr=a)": lambda a: optim.RMSprop([nn.Parameter(tn.ones(2))], lr=a),
    "optim.RMSprop(alpha=a)": lambda a: optim.RMSprop([nn.Parameter(tn.ones(2))], alpha=a),
    "optim.Adagrad(lr_decay=a)": lambda a: optim.Adagrad([nn.Parameter(tn.ones(2))],
                                                         lr_decay=a),
    "optim.AdamW(amsgrad=a)": lambda a: optim.AdamW([nn.Parameter(tn.ones(2))], amsgrad=a),
    "RMSprop.step with .grad a": lambda a: optim.RMSprop(
        [with_grad(nn.Parameter(tn.ones(3)), a)], momentum=0.9, centered=True).step(),
    "Adagrad.step with .grad a": lambda a: optim.Adagrad(
        [with_grad(nn.Parameter(tn.ones(3)), a)]).step(),
    "Adam.load_state_dict(a)": lambda a: optim.Adam([nn.Parameter(tn.ones(2))]).load_state_dict(a),
    "Adam.load_state_dict(exp_avg=a)": lambda a: _adam_state(exp_avg=a),
    "Adam.load_state_dict(step=a)": lambda a: _adam_state(step=a),
    "StepLR.load_state_dict(a)": lambda a: _step_lr().load_state_dict(a),
    "StepLR.load_state_dict(base_lrs=a)": lambda a: _step_lr().load_state_dict(
        dict(_step_lr().state_dict(), base_lrs=a)),
    "lr_scheduler.StepLR(step_size=a)": lambda a: optim.lr_scheduler.StepLR(_sgd(), a),
    "ReduceLROnPlateau.step(a)": lambda a: optim.lr_scheduler.ReduceLROnPlateau(_sgd()).step(a),
    "clip_grad_norm_(a)": lambda a: nn.utils.clip_grad_norm_(a, 1.0),
    "clip_grad_norm_(max_norm=a)": lambda a: nn.utils.clip_grad_norm_(
        [with_grad(nn.Parameter(tn.ones(3)), tn.ones(3))], a),
    "clip_grad_value_(a)": lambda a: nn.utils.clip_grad_value_(
        [with_grad(nn.Parameter(tn.ones(3)), a)], 1.0),
})


# (function, bad value) pairs answered by a Python protocol's builtin exception, on purpose.
SWEEP_PROTOCOL = {
    ("x[a]", "int tensor"), ("x[a]", "int array"),  # index 3 of a length-3 tensor
    ("tn.load(a)", "string"), ("tn.load(a)", "bytes"),  # a file that does not exist
    ("data.DataLoader(a)", "dict"),  # dict[0]: the dataset protocol's KeyError
    ("data.DataLoader(a)", "0-d"),  # len() of a 0-d tensor
}


SWEEP.update({  # issues 11 and 12: seeds, permutations, *_like, PyTorch's load/loader arguments
    "tn.manual_seed(a)": lambda a: tn.manual_seed(a),
    "tn.randperm(a)": lambda a: tn.randperm(a),
    "tn.rand_like(a)": lambda a: tn.rand_like(a),
    "tn.load(f, map_location=a)": lambda a: tn.load(_saved_state(), map_location=a),
    "data.DataLoader(num_workers=a)": lambda a: data.DataLoader(
        data.TensorDataset(tn.ones(3)), num_workers=a),
    "data.random_split(d, a)": lambda a: data.random_split(range(3), a),
})

# Convolution, pooling, normalization and channel dropout (issue 14): each bad value as the
# input and as each size-like argument.
SWEEP.update({
    "F.conv2d(a, w)": lambda a: F.conv2d(a, _filters()),
    "F.conv2d(x, a)": lambda a: F.conv2d(_image(1, 3, 5, 5), a),
    "F.conv2d(x, w, a)": lambda a: F.conv2d(_image(1, 3, 5, 5), _filters(), a),
    "F.conv2d(stride=a)": lambda a: F.conv2d(_image(1, 3, 5, 5), _filters(), stride=a),
    "F.conv2d(padding=a)": lambda a: F.conv2d(_image(1, 3, 5, 5), _filters(), padding=a),
    "F.conv2d(dilation=a)": lambda a: F.conv2d(_image(1, 3, 5, 5), _filters(), dilation=a),
    "F.conv2d(groups=a)": lambda a: F.conv2d(_image(1, 3, 5, 5), _filters(), groups=a),
    "nn.Conv2d(a, 2, 3)": lambda a: nn.Conv2d(a, 2, 3),
    "nn.Conv2d(3, 2, a)": lambda a: nn.Conv2d(3, 2, a),
    "nn.Conv2d(3, 2, 3)(a)": lambda a: nn.Conv2d(3, 2, 3)(a),
    "F.max_pool2d(a, 2)": lambda a: F.max_pool2d(a, 2),
    "F.max_pool2d(x, a)": lambda a: F.max_pool2d(_image(1, 1, 4, 4), a),
    "F.max_pool2d(stride=a)": lambda a: F.max_pool2d(_image(1, 1, 4, 4), 2, stride=a),
    "F.avg_pool2d(a, 2)": lambda a: F.avg_pool2d(a, 2),
    "F.avg_pool2d(x, a)": lambda a: F.avg_pool2d(_image(1, 1, 4, 4), a),
    "F.avg_pool2d(padding=a)": lambda a: F.avg_pool2d(_image(1, 1, 4, 4), 2, padding=a),
    "F.adaptive_avg_pool2d(a, 2)": lambda a: F.adaptive_avg_pool2d(a, 2),
    "F.adaptive_avg_pool2d(x, a)": lambda a: F.adaptive_avg_pool2d(_image(1, 1, 4, 4), a),
    "F.batch_norm(a, training)": lambda a: F.batch_norm(a, None, None, training=True),
    "F.batch_norm(x, a, a)": lambda a: F.batch_norm(_image(2, 3), a, a),
    "F.batch_norm(eps=a)": lambda a: F.batch_norm(_image(2, 3), None, None, True, eps=a),
    "nn.BatchNorm1d(a)": lambda a: nn.BatchNorm1d(a),
    "nn.BatchNorm1d(3)(a)": lambda a: nn.BatchNorm1d(3)(a),
    "nn.BatchNorm2d(3)(a)": lambda a: nn.BatchNorm2d(3)(a),
    "F.layer_norm(a, 3)": lambda a: F.layer_norm(a, 3),
    "F.layer_norm(x, a)": lambda a: F.layer_norm(_image(2, 3), a),
    "F.layer_norm(x, 3, a)": lambda a: F.layer_norm(_image(2, 3), 3, a),
    "nn.LayerNorm(a)": lambda a: nn.LayerNorm(a),
    "nn.LayerNorm(3)(a)": lambda a: nn.LayerNorm(3)(a),
    "F.dropout2d(a)": lambda a: F.dropout2d(a),
    "F.dropout2d(x, a)": lambda a: F.dropout2d(_image(1, 2, 3, 3), a),
    "nn.Dropout2d(a)": lambda a: nn.Dropout2d(a),
})

def sweep_outcomes() -> list[tuple[str, str, BaseException | None]]:
    outcomes = []
    default = tn.get_default_dtype()
    try:
        for function, call in SWEEP.items():
            for bad, make in BAD_VALUES.items():
                try:
                    call(make())
                except Exception as e:  # noqa: BLE001 - classified by the test
                    outcomes.append((function, bad, e))
                else:
                    outcomes.append((function, bad, None))
                tn.set_default_dtype(default)  # set_default_dtype(a) may succeed
    finally:
        tn.set_default_dtype(default)
    return outcomes


def test_every_function_answers_or_raises_a_tinynet_error_for_every_bad_value() -> None:
    escaped = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's own RuntimeWarnings are not the question here
        outcomes = sweep_outcomes()
    for function, bad, outcome in outcomes:
        if outcome is None or isinstance(outcome, TinynetError):
            continue
        if (function, bad) in SWEEP_PROTOCOL:
            continue
        escaped.append(f"{function} <- {bad}: {type(outcome).__name__}: {outcome}")
    assert not escaped, f"{len(escaped)} of {len(outcomes)} escaped:\n" + "\n".join(escaped)
    assert len(outcomes) == len(SWEEP) * len(BAD_VALUES)


def test_the_sweep_has_teeth() -> None:
    """Most pairs are refused (with a tinynet error), many answered: the sweep is not vacuous."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = sweep_outcomes()
    refused = sum(isinstance(o, TinynetError) for _, _, o in outcomes)
    answered = sum(o is None for _, _, o in outcomes)
    assert refused > len(outcomes) / 3 and answered > len(outcomes) / 5, (refused, answered)


# ---------------------------------------------------------------------------------------------
# docs/errors.md, generated from the catalogue
# ---------------------------------------------------------------------------------------------

_CLASSES = [
    ("TinynetError", "Exception", "everything tinynet raises on purpose"),
    ("ShapeError", "ValueError", "shapes that do not fit (broadcasting, matmul, reshape, "
                                 "targets, state dicts...)"),
    ("DTypeError", "TypeError", "data or arguments of a dtype or Python type that cannot be "
                                "used (strings, objects, ragged lists, ints where floats "
                                "are needed...)"),
    ("ValueRangeError", "ValueError", "values outside what a function accepts (probabilities "
                                      "outside [0, 1], NaN learning rates, empty lists...)"),
    ("ClassIndexError", "ValueRangeError, IndexError", "class indices outside 0..C-1"),
    ("IndexShapeError", "ShapeError, IndexError", "boolean masks of the wrong shape, max/min "
                                                   "over an empty dim"),
    ("GraphError", "RuntimeError", "misuse of the autograd graph, in-place changes tinynet "
                                   "can't allow, read-only memory"),
    ("StateDictError", "ValueError, RuntimeError", "state dicts with missing or unexpected "
                                                   "keys, or the wrong parameter groups"),
    ("FileFormatError", "ValueError", "files that are truncated, corrupt or unsafe to load"),
    ("AnomalyError", "RuntimeError", "NaN or inf produced under detect_anomaly()"),
    ("GradcheckError", "RuntimeError", "autograd and finite differences disagree"),
    ("CompileError", "RuntimeError", "tn.compile cannot trace a function (it reads a value, "
                                     "branches on data, edits an outside tensor in place)"),
]


def render_errors_doc() -> str:
    """docs/errors.md: every message of the catalogue, grouped by function."""
    lines = [
        "# tinynet's error messages",
        "",
        "<!-- Generated by `python tests/test_bad_inputs.py --write-docs` from the catalogue "
        "in tests/test_bad_inputs.py; tests/test_bad_inputs.py fails when this file is out of "
        "date. Do not edit by hand. -->",
        "",
        "Every error tinynet raises on purpose is a `tinynet.TinynetError`, and also the "
        "Python exception a numpy or PyTorch user already catches for the same mistake, so "
        "`except ValueError:` keeps working:",
        "",
        "| class | also a | raised for |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | `{base}` | {what} |" for name, base, what in _CLASSES]
    lines += [
        "",
        "Three Python protocols keep their builtin exceptions, as in numpy and PyTorch: an "
        "index out of range raises `IndexError`, `len()` of a 0-d tensor `TypeError`, and a "
        "missing file `FileNotFoundError`. Options outside their list (an unknown "
        "`surrogate`, `device`...) raise `ValueError`.",
        "",
        "Below, each bad input of the catalogue and what tinynet says. Inputs tinynet answers "
        "instead of refusing (NaN propagates, empty and 0-d tensors work, non-contiguous, "
        "negative-stride and read-only arrays give the same numbers) are listed at the end.",
        "",
    ]
    answered: list[Case] = []
    current = None
    for case in CATALOGUE:
        if case.error is None:
            answered.append(case)
            continue
        outcome = run_case(case)
        if case.function != current:
            lines += ["", f"## `{case.function}`", ""]
            current = case.function
        message = (
            str(outcome).replace(str(WORK), "<tmp>").replace(f"{REPO}/", "").replace("\n\t", " / ")
        )
        lines.append(f"- **{case.bad}**: `{type(outcome).__name__}`")
        lines.append("")
        lines.append("  " + "\n  ".join(textwrap.wrap(
            message, 96, break_long_words=False, break_on_hyphens=False)) if message else "")
        lines.append("")
    lines += ["", "## Answered, not refused", ""]
    lines += [f"- `{case.function}`: {case.bad}" for case in answered]
    return "\n".join(line.rstrip() for line in lines).replace("\n\n\n", "\n\n") + "\n"


def test_docs_errors_md_is_up_to_date() -> None:
    expected = render_errors_doc()
    actual = ERRORS_DOC.read_text() if ERRORS_DOC.exists() else ""
    assert actual == expected, (
        "docs/errors.md is out of date; regenerate it with "
        "`.venv/bin/python tests/test_bad_inputs.py --write-docs`"
    )


# ---------------------------------------------------------------------------------------------
# Files under faults
# ---------------------------------------------------------------------------------------------

OLD = {"w": np.arange(10.0), "step": 1}
NEW = {"w": np.ones(2000), "b": np.zeros((30, 30), np.float32), "step": 2}


class Interrupted(BaseException):
    """A kill: not an Exception, so nothing may catch it on the way (like KeyboardInterrupt)."""


class _DyingFile:
    """A file whose writes die after ``budget`` bytes (a crash, a full disk, a pulled plug)."""

    def __init__(self, file: Any, budget: int, error: BaseException) -> None:
        self._file, self._budget, self._error = file, budget, error

    def write(self, chunk: Any) -> int:
        size = len(memoryview(chunk).cast("B"))
        if size > self._budget:
            self._file.write(bytes(memoryview(chunk).cast("B")[: self._budget]))
            self._budget = 0
            raise self._error
        self._budget -= size
        return self._file.write(chunk)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _DyingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _new_file_size(tmp_path: Path) -> int:
    probe = tmp_path / "probe.npz"
    tn.save(NEW, probe)
    size = probe.stat().st_size
    probe.unlink()
    return size


@pytest.mark.parametrize("error", [Interrupted(), OSError(28, "No space left on device")],
                         ids=["killed", "disk full"])
def test_save_dying_at_any_byte_never_damages_the_previous_file(tmp_path: Path,
                                                                 monkeypatch: Any,
                                                                 error: BaseException) -> None:
    size = _new_file_size(tmp_path)
    path = tmp_path / "model.npz"
    tn.save(OLD, path)
    before = path.read_bytes()
    real_fdopen = os.fdopen
    budgets = sorted({0, 1, 100, size - 1, size // 2, *np.random.default_rng(0).integers(
        0, size, 40).tolist()})
    for budget in budgets:
        monkeypatch.setattr(tio.os, "fdopen", lambda fd, mode, b=budget: _DyingFile(
            real_fdopen(fd, mode), b, error))
        with pytest.raises(type(error)):
            tn.save(NEW, path)
        monkeypatch.setattr(tio.os, "fdopen", real_fdopen)
        assert path.read_bytes() == before, f"damaged after {budget} bytes"
        assert os.listdir(tmp_path) == ["model.npz"], f"temp file left after {budget} bytes"
    loaded = tn.load(path)
    np.testing.assert_array_equal(loaded["w"], OLD["w"])
    tn.save(NEW, path)  # and a save that is not interrupted still works
    assert tn.load(path)["step"] == 2


def test_save_with_os_replace_failing_keeps_the_previous_file_then_recovers(
        tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "model.npz"
    tn.save(OLD, path)
    before = path.read_bytes()
    real_replace = os.replace
    for error in (PermissionError(13, "denied"), OSError(18, "cross-device"), Interrupted()):
        def failing(src: str, dst: str, error: BaseException = error) -> None:
            raise error
        monkeypatch.setattr(tio.os, "replace", failing)
        with pytest.raises(type(error)):
            tn.save(NEW, path)
        monkeypatch.setattr(tio.os, "replace", real_replace)
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == ["model.npz"]
    tn.save(NEW, path)
    assert tn.load(path)["step"] == 2


_SAVER = """
import sys, numpy as np, tinynet as tn
path = sys.argv[1]
step = 0
print("ready", flush=True)
while True:
    step += 1
    tn.save({"w": np.full(20000, float(step)), "step": step}, path)
"""


def test_save_in_a_process_killed_at_random_times_leaves_a_loadable_file(tmp_path: Path) -> None:
    """SIGKILL (no cleanup runs) while a process saves in a loop: the file always loads, whole,
    as one of the saved versions. Temp files of the killed write may stay behind (nothing can
    remove them); they never replace the file."""
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(0)
    for _ in range(4):
        process = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)],
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        if not path.exists():
            continue  # killed before the first save finished: there was never a file
        loaded = tn.load(path)
        step = loaded["step"]
        np.testing.assert_array_equal(loaded["w"], np.full(20000, float(step)))
    assert path.exists(), "no save finished in four runs"
    assert [p for p in os.listdir(tmp_path) if not p.startswith(".model.npz.")] == ["model.npz"]


@pytest.mark.parametrize(("change", "error", "mentions"), [
    ({"0.bias": None}, StateDictError, ("Missing key", "'0.bias'")),
    ({"extra.weight": np.ones(2, np.float32)}, StateDictError, ("Unexpected", "'extra.weight'")),
    ({"2.weight": np.ones((3, 1), np.float32)}, ShapeError, ("2.weight", "(1, 3)", "(3, 1)")),
    ({"2.bias": np.array([1e300])}, ValueRangeError,  # cast to float32 as PyTorch: inf
     ("2.bias", "float64 values beyond float32's range", "model.double()")),
    ({"0.weight": np.full((3, 2), np.nan, np.float32)}, ValueRangeError,
     ("non-finite", "0.weight", "6 nan")),
    ({"0.bias": {"nested": np.ones(3)}}, DTypeError, ("0.bias",)),
])
def test_loading_a_damaged_checkpoint_file_is_refused_naming_the_key_and_changes_nothing(
        tmp_path: Path, change: dict[str, Any], error: type[Exception],
        mentions: tuple[str, ...]) -> None:
    state = model().state_dict()
    for key, value in change.items():
        if value is None:
            state.pop(key)
        else:
            state[key] = value
    path = tmp_path / "checkpoint.npz"
    tn.save(state, path)
    target = model()
    for p in target.parameters():
        p.data[...] = 7.0
    with pytest.raises(error) as info:
        target.load_state_dict(tn.load(path))
    for mention in mentions:
        assert mention in str(info.value)
    assert all(np.all(p.data == 7.0) for p in target.parameters()), "partly loaded"


def test_nan_weights_load_only_when_asked(tmp_path: Path) -> None:
    state = model().state_dict()
    state["0.weight"][0, 0] = np.nan
    path = tmp_path / "diverged.npz"
    tn.save(state, path)
    target = model()
    target.load_state_dict(tn.load(path), allow_nonfinite=True)
    assert np.isnan(target[0].weight.data[0, 0])


def test_a_buffer_may_hold_inf(tmp_path: Path) -> None:
    """Non-finite values are refused in parameters only: a buffer such as a mask of -inf or a
    best-loss-so-far of inf is legitimate state."""
    net = model()
    net.register_buffer("best_loss", tn.tensor(np.inf))
    state = net.state_dict()
    clone = model()
    clone.register_buffer("best_loss", tn.tensor(0.0))
    clone.load_state_dict(state)
    assert clone.best_loss.item() == np.inf


def test_files_from_an_untrusted_source_cannot_run_code_or_exhaust_memory(tmp_path: Path) -> None:
    """Beyond tests/test_io.py's pickles: a structure entry naming Python callables is not
    understood, zip member names that climb out of the folder are never extracted anywhere,
    and a header declaring 10^11 values is refused before anything is allocated."""
    path = tmp_path / "evil.npz"
    tn.save({"w": np.ones(2)}, path)
    structure = io.BytesIO()
    text = ('{"format": "tinynet", "version": 1, "root": {"kind": "call", "function": '
            '"os.system", "args": ["touch ' + str(tmp_path / "ran") + '"]}}')
    np.lib.format.write_array(structure, np.frombuffer(text.encode(), np.uint8))
    _replace_entries(str(path), {tio.STRUCTURE_ENTRY + ".npy": structure.getvalue()})
    with pytest.raises(FileFormatError, match="does not understand"):
        tn.load(path)
    assert not (tmp_path / "ran").exists()

    climbing = tmp_path / "climb.npz"
    np.savez(climbing, w=np.ones(2))
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ones(2))
    with zipfile.ZipFile(climbing, "a") as zf:
        zf.writestr("../../escaped.npy", buffer.getvalue())
    before = set(os.listdir(tmp_path.parent))
    loaded = tn.load(climbing)  # a plain .npz: names are dict keys, never paths
    assert set(loaded) == {"w", "../../escaped"}
    assert set(os.listdir(tmp_path.parent)) == before

    with pytest.raises(FileFormatError, match=r"\(100000000000,\)"):
        tn.load(_bomb())


# ---------------------------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:] == ["--write-docs"]:
        ERRORS_DOC.write_text(render_errors_doc())
        shutil.rmtree(WORK, ignore_errors=True)
        print(f"wrote {ERRORS_DOC.relative_to(REPO)} ({len(CATALOGUE)} catalogue cases)")
    else:
        print("usage: python tests/test_bad_inputs.py --write-docs")


if __name__ == "__main__":
    main()

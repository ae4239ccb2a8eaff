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
import os
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
    DTypeError,
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
    Case("Module.load_state_dict", "entry of the wrong dtype",
         lambda: model().load_state_dict(_state(**{"0__bias": np.ones(3)})),
         **raises(DTypeError, "dtype mismatch for 0.bias", "float32", "float64")),
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

# (function, bad value) pairs answered by a Python protocol's builtin exception, on purpose.
SWEEP_PROTOCOL = {
    ("x[a]", "int tensor"), ("x[a]", "int array"),  # index 3 of a length-3 tensor
    ("tn.load(a)", "string"), ("tn.load(a)", "bytes"),  # a file that does not exist
    ("data.DataLoader(a)", "dict"),  # dict[0]: the dataset protocol's KeyError
    ("data.DataLoader(a)", "0-d"),  # len() of a 0-d tensor
}


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
        message = str(outcome).replace(str(WORK), "<tmp>").replace("\n\t", " / ")
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
    ({"2.bias": np.ones(1, np.int64)}, DTypeError, ("2.bias", "float32", "int64")),
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

"""tn.compile lowers elementwise formula-table ops whose operands broadcast (issue 18).

A broadcast operand is read through its broadcast strides (``fuse._affine_map`` of
``np.broadcast_to``: stride 0 on the dims it is repeated along), and its gradient, which the
engine sums back to its shape (``sum_to_shape``: a ``sum`` over the broadcast axes, then a
``reshape``), is summed by ``np.add.reduce`` over the same axes, as eager mode's ``Sum`` does:
the same order, so the same numbers. Compiled equals eager on every call, for the forward and
every gradient, and ``explain()`` shows no opaque step for an op of the formula table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from compile_support import close_typed as close
from compile_support import opaque_ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import kernels
from tinynet.compile import fuse

BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "maximum": tn.maximum, "minimum": tn.minimum}


# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


TABLE_OPS = set(fuse.ARITHMETIC) | set(fuse.ACTS) | {"sum", "reshape", "clone"}


def assert_table_ops_lowered(compiled: Any) -> str:
    """explain() lowers every op of the formula table (and the sums undoing broadcasting)."""
    text = compiled.explain()
    assert "== IR after lowering" in text
    assert not opaque_ops(text) & TABLE_OPS, opaque_ops(text) & TABLE_OPS
    return text


@st.composite
def broadcast_case(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes numpy broadcasts together: an output shape of 0-3 dims of size 0-3, each
    operand with some leading dims dropped and some dims set to 1."""
    out = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))

    def operand() -> tuple[int, ...]:
        drop = draw(st.integers(0, len(out)))
        return tuple(1 if draw(st.booleans()) else n for n in out[drop:])

    return operand(), operand()


def values(shape: tuple[int, ...], dtype: Any, rng: np.random.Generator,
           positive: bool = False) -> tn.Tensor:
    data = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return tn.tensor(np.asarray(data, dtype=dtype), requires_grad=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=broadcast_case(), op=st.sampled_from(sorted(BINARY)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_broadcast_binary_ops_match_eager_and_lower(shapes: Any, op: str, dtype: Any,
                                                    seed: int) -> None:
    fn = BINARY[op]
    a_shape, b_shape = shapes
    out_shape = np.broadcast_shapes(a_shape, b_shape)

    def step(a: Any, b: Any, w: Any) -> Any:
        y = fn(a, b).tanh()
        (y * w).sum().backward()
        return y

    compiled = tn.compile(step)
    rng = np.random.default_rng(seed)
    for call in range(4):  # the first call traces, the others replay
        a, b = values(a_shape, dtype, rng), values(b_shape, dtype, rng, positive=op == "div")
        w = tn.tensor(rng.standard_normal(out_shape).astype(dtype))
        ea, eb = (tn.tensor(t.detach().numpy().copy(), requires_grad=True) for t in (a, b))
        want = step(ea, eb, w)
        got = compiled(a, b, w)
        close(got.detach().numpy(), want.detach().numpy(), dtype, f"{op} forward, call {call}")
        close(a.grad.numpy(), ea.grad.numpy(), dtype, f"{op} d/da, call {call}")
        close(b.grad.numpy(), eb.grad.numpy(), dtype, f"{op} d/db, call {call}")
    if kernels.numba_enabled():  # (with TINYNET_NUMBA=0 the program is interpreted)
        assert_table_ops_lowered(compiled)


def test_float64_broadcast_gradients_are_the_eager_numbers_exactly() -> None:
    """The gradient of a broadcast operand is summed in eager's order (np.add.reduce over the
    same axes): the same float64 numbers, not only close ones."""
    rng = np.random.default_rng(0)

    def step(x: Any, m: Any, s: Any, b: Any) -> Any:
        y = ((x - m) * s + b).sigmoid()
        (y * y).sum().backward()
        return y

    compiled = tn.compile(step)
    for _ in range(3):
        shapes = [(5, 3, 200), (5, 1, 200), (5, 3, 1), (200,)]
        args = [values(s, np.float64, rng) for s in shapes]
        eager = [tn.tensor(t.detach().numpy().copy(), requires_grad=True) for t in args]
        got, want = compiled(*args), step(*eager)
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
        for t, e in zip(args, eager, strict=True):
            np.testing.assert_array_equal(t.grad.numpy(), e.grad.numpy())
    if kernels.numba_enabled():
        text = assert_table_ops_lowered(compiled)
        assert "broadcast=(5, 3, 200)" in text and "axis=(0, 1)" in text


def _run_training(make: Any, x: Any, y: Any, calls: int = 4, loss: Any = F.mse_loss,
                  ) -> Any:
    """A model and its copy trained side by side, one compiled and one eager; every parameter
    and loss compared on every call. Returns the compiled step."""
    models = [make(), make()]
    models[1].load_state_dict(models[0].state_dict())
    opts = [tn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in models]

    def steps(model: Any, opt: Any) -> Any:
        def train_step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            out = loss(model(x), y)
            out.backward()
            opt.step()
            return out
        return train_step

    compiled = tn.compile(steps(models[0], opts[0]))
    eager = steps(models[1], opts[1])
    for call in range(calls):
        got, want = compiled(x, y), eager(x, y)
        dtype = want.detach().numpy().dtype.type
        close(got.detach().numpy(), want.detach().numpy(), dtype, f"loss, call {call}")
        for (name, p), q in zip(models[0].named_parameters(), models[1].parameters(),
                                strict=True):
            close(p.detach().numpy(), q.detach().numpy(), dtype, f"{name}, call {call}")
            close(p.grad.numpy(), q.grad.numpy(), dtype, f"{name}.grad, call {call}")
    return compiled


def numba_only(what: str) -> None:
    if not kernels.numba_enabled():
        pytest.skip(f"{what}: asserts on numba's generated code; with TINYNET_NUMBA=0 compile "
                    "replays step by step (its numbers were checked above)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_step_lowers_every_table_op(dtype: Any) -> None:
    tn.manual_seed(0)
    rng = np.random.default_rng(1)
    x = tn.tensor(rng.standard_normal((6, 5)).astype(dtype))
    y = tn.tensor(rng.standard_normal((6, 3)).astype(dtype))

    def make() -> Any:
        return tn.nn.Sequential(tn.nn.Linear(5, 8), tn.nn.LayerNorm(8), tn.nn.Tanh(),
                                tn.nn.Linear(8, 3)).to(dtype)

    compiled = _run_training(make, x, y)
    numba_only("explain()'s fused IR")
    text = assert_table_ops_lowered(compiled)
    assert "broadcast=(6, 8)" in text


@pytest.mark.parametrize("dims", [1, 2])
def test_batchnorm_training_step_lowers_every_table_op(dims: int) -> None:
    """Per-channel statistics: (N, C) with (1, C), (N, C, H, W) with (1, C, 1, 1)."""
    tn.manual_seed(0)
    rng = np.random.default_rng(2)
    if dims == 1:
        x = tn.tensor(rng.standard_normal((6, 4)))
        y = tn.tensor(rng.standard_normal((6, 2)))

        def make() -> Any:
            return tn.nn.Sequential(tn.nn.Linear(4, 5), tn.nn.BatchNorm1d(5), tn.nn.ReLU(),
                                    tn.nn.Linear(5, 2)).double()
    else:
        x = tn.tensor(rng.standard_normal((4, 3, 5, 5)))
        y = tn.tensor(rng.standard_normal((4, 3, 5, 5)))

        def make() -> Any:
            return tn.nn.Sequential(tn.nn.BatchNorm2d(3), tn.nn.ReLU()).double()

    compiled = _run_training(make, x, y)
    numba_only("explain()'s fused IR")
    text = assert_table_ops_lowered(compiled)
    assert ("axis=(0,)" if dims == 1 else "axis=(0, 2, 3)") in text


class BiasMLP(tn.nn.Module):
    """A bias added after ``@`` ((N, D) + (D,)), as a hand-written MLP does."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = tn.nn.Parameter(tn.randn(4, 7, dtype=tn.float64) * 0.5)
        self.b1 = tn.nn.Parameter(tn.zeros(7, dtype=tn.float64) + 0.1)
        self.w2 = tn.nn.Parameter(tn.randn(7, 2, dtype=tn.float64) * 0.5)
        self.b2 = tn.nn.Parameter(tn.zeros(2, dtype=tn.float64) - 0.1)

    def forward(self, x: Any) -> Any:
        return (x @ self.w1 + self.b1).relu() @ self.w2 + self.b2


def test_bias_add_mlp_step_lowers_every_table_op() -> None:
    tn.manual_seed(0)
    rng = np.random.default_rng(3)
    x = tn.tensor(rng.standard_normal((8, 4)))
    y = tn.tensor(rng.standard_normal((8, 2)))
    compiled = _run_training(BiasMLP, x, y)
    numba_only("explain()'s fused IR")
    text = assert_table_ops_lowered(compiled)
    assert "broadcast=(8, 7)" in text and "axis=(0,)" in text


class Embeddings(tn.nn.Module):
    """Token plus position embeddings: (B, T, D) + (T, D)."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = tn.nn.Embedding(10, 6).double()
        self.pos = tn.nn.Parameter(tn.randn(5, 6, dtype=tn.float64))
        self.head = tn.nn.Linear(6, 10).double()

    def forward(self, idx: Any) -> Any:
        h = self.tok(idx) + self.pos
        return self.head(h.reshape(-1, 6))


def test_token_plus_position_embedding_step_lowers_the_add() -> None:
    tn.manual_seed(0)
    rng = np.random.default_rng(4)
    idx = tn.tensor(rng.integers(0, 10, (3, 5)))
    targets = tn.tensor(rng.integers(0, 10, 15))
    compiled = _run_training(Embeddings, idx, targets, loss=F.cross_entropy)
    numba_only("explain()'s fused IR")
    text = assert_table_ops_lowered(compiled)
    assert "broadcast=(3, 5, 6)" in text


def test_counts_divided_by_their_row_sums_lower() -> None:
    """``counts / counts.sum(1, keepdims=True)`` (a bigram model's probabilities)."""
    rng = np.random.default_rng(5)

    def step(counts: Any) -> Any:
        p = counts / counts.sum(1, keepdims=True)
        p.log().mean().backward()
        return p

    compiled = tn.compile(step)
    for call in range(3):
        data = rng.uniform(1.0, 5.0, (4, 6))
        c, e = (tn.tensor(data, requires_grad=True) for _ in range(2))
        got, want = compiled(c).detach().numpy(), step(e).detach().numpy()
        close(got, want, np.float64, f"p, call {call}")
        close(c.grad.numpy(), e.grad.numpy(), np.float64, f"d/dcounts, call {call}")
    numba_only("explain()'s fused IR")
    assert_table_ops_lowered(compiled)

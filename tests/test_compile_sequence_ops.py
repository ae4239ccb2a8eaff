"""tn.compile lowers the sequence models' ops (issue 22) into generated loops, with eager's numbers.

- ``embedding``: a gather of table rows; its gradient zeros the table and adds each position's
  gradient to its row in index order, as eager's ``np.add.at`` (the same float numbers);
- ``mean``: numpy's sum, then a division by the count (its gradient g * (1/count), spread);
- ``softmax`` along the last axis: eager's kernel ``kernels.compiled.softmax_rows`` (one row at
  a time, max, exp, a pairwise sum in numpy's order, ``row_sum``, division), which eager
  softmax runs too: bit for bit, also on a CPU where numpy's own exp (its AVX-512 code)
  differs from the C library's; its gradient s * (g - sum(g * s)) the same way;
- ``matmul`` of matrices or batches of them: numpy's matmul, the call eager makes;
- ``linear`` over a batch of rows (N, T, D): one 2-d matmul of the (N*T, D) view (eager
  multiplies each of the N matrices: BLAS may order a dot product's additions differently for
  the two shapes, so float64 agrees to RTOL, not bit for bit);
- sums over the trailing axes (LayerNorm's statistics) run inside the segments as numpy's
  pairwise sum, over the leading axes row after row: bit for bit numpy's numbers.

Every test compares the compiled call with the eager one on several calls (values and every
``.grad``, float32 and float64), and checks that ``explain()`` runs none of these ops opaque.
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

DTYPES = st.sampled_from([np.float32, np.float64])

# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


def assert_lowered(compiled: Any, ops: set[str]) -> None:
    """explain() runs none of ``ops`` opaque (with TINYNET_NUMBA=0 there is no generated code:
    the program is replayed step by step, which the numbers above checked)."""
    if kernels.numba_enabled():
        found = opaque_ops(compiled.explain())
        assert not found & ops, found & ops


def compare(step: Any, draw: Any, dtype: Any, calls: int = 3, exact: bool = False) -> Any:
    """Run ``step`` eagerly and compiled on ``calls`` fresh draws of arguments (``draw(call)``:
    a list of tensors); the results and the ``.grad`` of every argument that requires grad must
    agree. Returns the compiled function."""
    compiled = tn.compile(step)
    for call in range(calls):  # the first call traces, the others replay
        args = draw(call)
        twins = [tn.tensor(a.detach().numpy().copy(), requires_grad=a.requires_grad)
                 for a in args]
        want, got = step(*twins), compiled(*args)
        close(got.detach().numpy(), want.detach().numpy(), dtype, f"value, call {call}", exact)
        for i, (a, e) in enumerate(zip(args, twins, strict=True)):
            if e.requires_grad:
                close(a.grad.numpy(), e.grad.numpy(), dtype, f"grad {i}, call {call}", exact)
    assert compiled.replays == calls - 1
    return compiled


def normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, grad: bool = True,
           spread: float = 1.0) -> tn.Tensor:
    return tn.tensor((rng.standard_normal(shape) * spread).astype(dtype), requires_grad=grad)


shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


# ---------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------


# (each drawn shape compiles new numba segments, seconds each: 10 examples, as
# tests/test_compile_conv.py)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 5), width=st.integers(0, 4), index_shape=shapes, dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_embedding_and_its_scatter_added_gradient_are_eager_numbers(
        rows: int, width: int, index_shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def step(index: Any, table: Any, w: Any) -> Any:
        y = F.embedding(index, table)
        (y * w).sum().backward()
        return y

    def draw(call: int) -> list[Any]:  # new indices at every call, repeated ones among them
        return [tn.tensor(rng.integers(0, rows, index_shape)), normal(rng, (rows, width), dtype),
                normal(rng, index_shape + (width,), dtype, grad=False)]

    compiled = compare(step, draw, dtype, exact=True)  # a gather, then additions in order
    assert_lowered(compiled, {"embedding"})


def test_embedding_index_out_of_range_at_a_replay_raises() -> None:
    table = tn.randn(4, 3, requires_grad=True)

    def step(index: Any) -> Any:
        y = F.embedding(index, table)
        y.sum().backward()
        return y

    compiled = tn.compile(step)
    for _ in range(2):
        compiled(tn.tensor(np.array([0, 3, 1])))
    # eager's check is Python around the op, which a replay does not run: the generated gather
    # checks each index (ValueRangeError, as eager); the step-by-step replay's np.take raises
    # IndexError
    with pytest.raises((tn.nn.ValueRangeError, IndexError), match="out of range|out of bounds"):
        compiled(tn.tensor(np.array([0, 4, 1])))


# ---------------------------------------------------------------------------------------------
# mean
# ---------------------------------------------------------------------------------------------


@st.composite
def mean_case(draw: Any) -> tuple[tuple[int, ...], Any, bool]:
    """A shape and a mean's axis option: None, one dim (maybe negative) or a tuple of dims."""
    shape = draw(shapes)
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]) if ndim else st.just("none"))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        axis = tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, unique=True)))
    return shape, axis, draw(st.booleans())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mean_case(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_mean_and_its_gradient_are_eager_numbers(case: Any, dtype: Any, seed: int) -> None:
    shape, axis, keepdims = case
    rng = np.random.default_rng(seed)
    out_shape = np.sum(np.zeros(shape), axis=axis, keepdims=keepdims).shape

    def step(x: Any, w: Any) -> Any:
        y = x.mean(axis, keepdims=keepdims) if axis is not None else x.mean()
        (y * w).sum().backward()
        return y

    def draw(call: int) -> list[Any]:
        return [normal(rng, shape, dtype), normal(rng, out_shape, dtype, grad=False)]

    with np.errstate(invalid="ignore"):  # the mean of nothing is NaN, in both
        compiled = compare(step, draw, dtype, exact=True)  # numpy's sum, one division
    assert_lowered(compiled, {"mean"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_statistics_are_the_eager_numbers_exactly(dtype: Any) -> None:
    """LayerNorm's means and the engine's sums over trailing and leading axes run inside the
    segments, in numpy's order: the same numbers, not only close ones."""
    rng = np.random.default_rng(0)
    norm = tn.nn.LayerNorm(200)
    norm = norm.double() if dtype == np.float64 else norm

    def step(x: Any, w: Any) -> Any:
        y = F.layer_norm(x, (200,), norm.weight, norm.bias)
        (y * w).sum().backward()
        return y

    def draw(call: int) -> list[Any]:  # rows of 200: pairwise sums of 128 + 72 numbers
        return [normal(rng, (3, 5, 200), dtype, spread=100.0),
                normal(rng, (3, 5, 200), dtype, grad=False)]

    compiled = compare(step, draw, dtype, exact=True)
    assert_lowered(compiled, {"mean", "sum"})


# ---------------------------------------------------------------------------------------------
# softmax
# ---------------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=2).map(tuple),
       last=st.integers(1, 20), negative=st.booleans(), spread=st.sampled_from([1.0, 30.0]),
       dtype=DTYPES, seed=st.integers(0, 2**16))
def test_softmax_along_the_last_axis_and_its_gradient_match_eager(
        shape: tuple[int, ...], last: int, negative: bool, spread: float, dtype: Any,
        seed: int) -> None:
    shape = shape + (last,)
    dim = -1 if negative else len(shape) - 1
    rng = np.random.default_rng(seed)

    def step(x: Any, w: Any) -> Any:
        s = F.softmax(x, dim=dim)
        (s * w).sum().backward()
        return s

    def draw(call: int) -> list[Any]:
        return [normal(rng, shape, dtype, spread=spread), normal(rng, shape, dtype, grad=False)]

    compiled = compare(step, draw, dtype, exact=True)  # (one kernel in both modes)
    if int(np.prod(shape)):  # (a softmax of nothing is a copy, left to the eager op)
        assert_lowered(compiled, {"softmax"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_attention_weights_match_eager(dtype: Any) -> None:
    """A causal mask's -inf scores give weight 0; a row masked whole gives NaN, in both."""
    rng = np.random.default_rng(1)
    mask = np.triu(np.full((5, 5), -np.inf), 1)
    mask[2] = -np.inf  # one row with nothing to attend to

    def step(scores: Any, v: Any, mask: Any) -> Any:
        attention = F.softmax(scores + mask, dim=-1)
        out = attention @ v
        (out * out).sum().backward()
        return attention

    def draw(call: int) -> list[Any]:
        return [normal(rng, (2, 3, 5, 5), dtype), normal(rng, (2, 3, 5, 4), dtype),
                tn.tensor(mask.astype(dtype))]

    compiled = compare(step, draw, dtype)
    assert_lowered(compiled, {"softmax", "matmul", "add"})


def test_softmax_along_another_axis_is_still_eager_correct() -> None:
    """Only the last axis lowers; another runs as the eager op (opaque), with its numbers."""
    rng = np.random.default_rng(2)

    def step(x: Any) -> Any:
        s = F.softmax(x, dim=0)
        (s * s).sum().backward()
        return s

    compiled = compare(step, lambda call: [normal(rng, (3, 4), np.float64)], np.float64,
                       exact=True)
    if kernels.numba_enabled():
        assert "softmax" in opaque_ops(compiled.explain())


# ---------------------------------------------------------------------------------------------
# matmul and linear layers over batches
# ---------------------------------------------------------------------------------------------


@st.composite
def matmul_case(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of A (..., m, k) and B (..., k, n), 2-d or batched, the batch dims broadcasting
    (some dropped, some 1)."""
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    batch = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))

    def operand_batch() -> tuple[int, ...]:
        drop = draw(st.integers(0, len(batch)))
        return tuple(1 if draw(st.booleans()) else b for b in batch[drop:])

    return operand_batch() + (m, k), operand_batch() + (k, n)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=matmul_case(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_matmul_of_batches_and_its_gradients_are_eager_numbers(case: Any, dtype: Any,
                                                               seed: int) -> None:
    a_shape, b_shape = case
    rng = np.random.default_rng(seed)
    out_shape = np.matmul(np.zeros(a_shape), np.zeros(b_shape)).shape

    def step(a: Any, b: Any, w: Any) -> Any:
        y = a @ b
        (y * w).sum().backward()
        return y

    def draw(call: int) -> list[Any]:
        return [normal(rng, a_shape, dtype), normal(rng, b_shape, dtype),
                normal(rng, out_shape, dtype, grad=False)]

    compiled = compare(step, draw, dtype, exact=True)  # numpy's matmul, as eager calls it
    assert_lowered(compiled, {"matmul"})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
       features=st.integers(1, 5), out=st.integers(1, 5), bias=st.booleans(),
       act=st.sampled_from(["identity", "relu", "tanh"]), dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_linear_over_batches_of_rows_matches_eager(lead: tuple[int, ...], features: int,
                                                   out: int, bias: bool, act: str, dtype: Any,
                                                   seed: int) -> None:
    rng = np.random.default_rng(seed)
    activation = {"identity": lambda y: y, "relu": F.relu, "tanh": F.tanh}[act]

    def step(x: Any, weight: Any, *b: Any) -> Any:
        y = activation(F.linear(x, weight, *b))
        (y * y).sum().backward()
        return y

    def draw(call: int) -> list[Any]:
        return [normal(rng, lead + (features,), dtype), normal(rng, (out, features), dtype)] + (
            [normal(rng, (out,), dtype)] if bias else [])

    # over batches of rows the products are numpy's, as eager's (fuse: "blas"), so the
    # numbers are eager's exactly; a matrix's small products may be loops (the last bit)
    compiled = compare(step, draw, dtype, exact=len(lead) > 1)
    assert_lowered(compiled, {"linear"})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
       count=st.integers(1, 4), data=st.data(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_stack_and_its_gradient_are_eager_numbers(shape: tuple[int, ...], count: int,
                                                  data: Any, dtype: Any, seed: int) -> None:
    """tn.stack along any dim (an RNN layer stacks its time steps): each input copied to its
    slice, each gradient its slice of g; copies, so exactly eager's numbers. One input may
    take no part in the loss (its gradient is g's slice all the same)."""
    rng = np.random.default_rng(seed)
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))

    stacked = list(shape)
    stacked.insert(dim % (len(shape) + 1), count)

    def step(weights: Any, *xs: Any) -> Any:
        y = tn.stack(xs, dim)
        (y * weights).sum().backward()  # each input's gradient: its slice of weights
        return y

    def draw(call: int) -> list[Any]:
        return [normal(rng, tuple(stacked), dtype, grad=False)] + [
            normal(rng, shape, dtype) for _ in range(count)]

    compiled = compare(step, draw, dtype, exact=True)
    assert_lowered(compiled, {"stack"})


# ---------------------------------------------------------------------------------------------
# the summation order, and the chapter's training steps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sum_adds_in_numpys_pairwise_order(dtype: Any) -> None:
    from tinynet.kernels.compiled import row_sum

    rng = np.random.default_rng(3)
    for n in [*range(0, 140), 255, 256, 257, 1000, 4097, 20000]:
        x = (rng.standard_normal(n + 7) * 10.0 ** rng.integers(-3, 8, n + 7)).astype(dtype)
        assert row_sum(x, 5, n) == np.add.reduce(x[5:5 + n]), n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 100, 128, 129, 576, 1000, 4097])
def test_row_sums_reuse_one_scratch_and_keep_numpys_order(dtype: Any, n: int) -> None:
    """Every row of ``row_sums`` (one scratch for all rows) equals numpy's sum of that row: a
    frame left by a longer row before it must not leak into the next."""
    from tinynet.kernels.compiled import row_sums

    rng = np.random.default_rng(n)
    rows = 7
    x = (rng.standard_normal((rows, n)) * 10.0 ** rng.integers(-3, 8, (rows, n))).astype(dtype)
    out = np.full(rows, np.nan, dtype)
    row_sums(x.reshape(-1), out, rows, n)
    np.testing.assert_array_equal(out, np.add.reduce(x, axis=1))


def _paired(make: Any, x: Any, y: Any, dtype: Any, calls: int = 4) -> Any:
    """A model and its copy trained side by side with SGD, one step compiled, one eager;
    the loss, every .grad and every parameter compared on every call."""
    models = [make() for _ in range(2)]
    if dtype == np.float64:
        models = [m.double() for m in models]
    opts = [tn.optim.SGD(m.parameters(), lr=0.1) for m in models]

    def stepper(model: Any, opt: Any) -> Any:
        def step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            loss.backward()
            opt.step()
            return loss
        return step

    eager, compiled = stepper(models[0], opts[0]), tn.compile(stepper(models[1], opts[1]))
    for call in range(calls):
        want, got = eager(x, y), compiled(x, y)
        close(got.detach().numpy(), want.detach().numpy(), dtype, f"loss, call {call}")
        for (name, p), q in zip(models[0].named_parameters(), models[1].parameters(),
                                strict=True):
            close(q.grad.numpy(), p.grad.numpy(), dtype, f"{name}.grad, call {call}")
            close(q.data, p.data, dtype, f"{name}, call {call}")
    assert compiled.replays == calls - 2  # (the first step made SGD's state: not replayed)
    return compiled


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chapter_gpt_training_step_compiled_equals_eager(dtype: Any) -> None:
    from tinynet import story_sequences

    def make() -> Any:
        tn.manual_seed(0)
        return story_sequences.GPT(vocab=7, context=6, d_model=8, heads=2, layers=2, ff=16)

    tokens = np.random.default_rng(0).integers(0, 7, (5, 7))
    compiled = _paired(make, tn.tensor(tokens[:, :-1]), tn.tensor(tokens[:, 1:]), dtype)
    if kernels.numba_enabled():  # every op of the step lowers but linear over (N, T, D)
        assert opaque_ops(compiled.explain()) <= {"linear"}  # (fuse._float_rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_training_step_compiled_equals_eager(dtype: Any) -> None:
    class Classifier(tn.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            tn.manual_seed(0)
            self.lstm = tn.nn.LSTM(3, 5, batch_first=True)
            self.head = tn.nn.Linear(5, 4)

        def forward(self, x: Any) -> Any:
            return self.head(self.lstm(x)[0][:, -1])

    rng = np.random.default_rng(0)
    x = tn.tensor(rng.standard_normal((6, 4, 3)).astype(dtype))
    _paired(Classifier, x, tn.tensor(rng.integers(0, 4, 6)), dtype)


def test_benchmark_gpt_step_compiled_equals_eager_at_its_size() -> None:
    """The gpt-tiny row of python -m benchmarks (batch 64, float32): losses and gradients of
    the compiled step are eager's over several calls."""
    from benchmarks.sequence_impl import SeqSpec, TinynetSeq, initial_weights, make_data

    spec = SeqSpec("gpt-tiny", "gpt", 64)
    x, y = make_data(spec)
    weights = initial_weights(spec)
    eager, compiled = (TinynetSeq(spec, weights, x, y, compiled=c) for c in (False, True))
    for call in range(4):
        eager.step()
        compiled.step()
        close(compiled.loss_value(), eager.loss_value(), np.float32, f"loss, call {call}")
        for name, g in eager.grads().items():
            close(compiled.grads()[name], g, np.float32, f"{name}.grad, call {call}")
    assert compiled.train_step.replays == 2

"""cross_entropy's fused (N, C) path with ignore_index: the op, its kernels and tn.compile's
lowering mask ignored targets themselves, so a compiled step traced on a batch without
padding stays right when later batches hold ignore_index (and equals eager mode)."""

from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn
import tinynet.kernels as K
import tinynet.nn.functional as F
from tinynet.kernels import reference as R

N, C = 7, 4
PATTERNS = {  # which rows hold ignore_index
    "none": [],
    "some": [1, 4, 5],
    "all": list(range(N)),
}


def _case(ignore_index: int, pattern: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((N, C)) * 2.0
    classes = [c for c in range(C) if c != ignore_index]
    target = rng.choice(classes, N).astype(np.int64)
    target[PATTERNS[pattern]] = ignore_index
    return logits, target


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-10) -> None:
    scale = max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_matches_torch_values_and_gradients(ignore_index, pattern, reduction) -> None:
    torch = pytest.importorskip("torch")
    logits, target = _case(ignore_index, pattern)
    upstream = np.linspace(0.5, 2.0, N)  # a different weight per sample for "none"

    x = tn.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target, ignore_index=ignore_index, reduction=reduction)
    (loss * tn.tensor(upstream) if reduction == "none" else loss).sum().backward()

    xt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(target), ignore_index=ignore_index,
                                           reduction=reduction)
    (lt * torch.tensor(upstream) if reduction == "none" else lt).sum().backward()

    assert loss.dtype == tn.float64 and loss.shape == tuple(lt.shape)
    expected = lt.detach().numpy()
    if reduction == "mean" and pattern == "all":
        assert np.isnan(loss.data) and np.isnan(expected)
    else:
        _close(loss.data, expected)
    _close(x.grad.data, xt.grad.numpy())
    if pattern != "none":  # the ignored rows add nothing, whatever their scores
        np.testing.assert_array_equal(x.grad.data[PATTERNS[pattern]], 0.0)


def test_fused_path_is_used_with_ignored_targets() -> None:
    logits, target = _case(-100, "some")
    loss = F.cross_entropy(tn.tensor(logits, requires_grad=True), target)
    assert type(loss.grad_fn).__name__.startswith("SoftmaxCrossEntropy")


def test_float32_stays_float32_and_ignored_rows_with_nonfinite_scores_add_nothing() -> None:
    logits, target = _case(-100, "some")
    logits = logits.astype(np.float32)
    logits[1] = [np.inf, -np.inf, np.nan, 0.0]  # row 1 is ignored
    x = tn.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, target)
    loss.backward()
    assert loss.dtype == tn.float32 and x.grad.dtype == tn.float32
    kept = target != -100
    clean = tn.tensor(logits[kept], requires_grad=True)
    reference = F.cross_entropy(clean, target[kept])
    reference.backward()
    np.testing.assert_allclose(loss.data, reference.data, rtol=1e-6)
    np.testing.assert_allclose(x.grad.data[kept], clean.grad.data, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(x.grad.data[~kept], 0.0)


def test_out_of_range_target_that_is_not_ignore_index_still_raises() -> None:
    logits, target = _case(-100, "some")
    target[0] = C
    with pytest.raises(tn.errors.ClassIndexError, match="out of bounds.*ignore_index=-100"):
        F.cross_entropy(tn.tensor(logits), target)


def test_central_differences_with_ignored_targets() -> None:
    logits, target = _case(-100, "some", seed=3)
    x = tn.tensor(logits, requires_grad=True)
    assert tn.gradcheck(lambda z: F.cross_entropy(z, target), [x], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("pattern", ["some", "all"])
def test_second_derivative_matches_torch(pattern) -> None:
    torch = pytest.importorskip("torch")
    logits, target = _case(-100, pattern, seed=5)
    probe = np.random.default_rng(6).standard_normal((N, C))

    x = tn.tensor(logits, requires_grad=True)
    (g,) = tn.autograd.grad(F.cross_entropy(x, target), x, create_graph=True)
    (h,) = tn.autograd.grad((g * tn.tensor(probe)).sum(), x)

    xt = torch.tensor(logits, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.nn.functional.cross_entropy(xt, torch.tensor(target)),
                                xt, create_graph=True)
    (ht,) = torch.autograd.grad((gt * torch.tensor(probe)).sum(), xt)
    _close(g.data, gt.detach().numpy())
    _close(h.data, ht.numpy())


# ------------------------------------------------------------------ tn.compile (the bug)


@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_compiled_training_step_traced_without_padding_equals_eager(reduction, ignore_index
                                                                    ) -> None:
    rng = np.random.default_rng(1)
    x_batches = [rng.standard_normal((6, 5)) for _ in range(5)]
    # traced on the first two (the second call traces again: its parameters have a .grad)
    p = -7  # the padding, ignore_index below (1: a class that the first batches lack)
    t_batches = [np.array(t) for t in ([0, 2, 2, 0, 0, 2], [2, 0, 0, 2, 0, 2],  # no padding
                                       [0, p, 2, p, 0, 2],
                                       [2, 0, p, 0, p, p],
                                       [p] * 6)]  # all padding (mean: NaN, no step)
    t_batches = [np.where(t == p, ignore_index, t) for t in t_batches]

    def make():
        tn.manual_seed(0)
        model = tn.nn.Linear(5, 3).double()
        optimizer = tn.optim.SGD(model.parameters(), lr=0.5)

        def step(x, t):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), t, reduction=reduction, ignore_index=ignore_index)
            loss.backward()
            optimizer.step()
            return loss
        return model, step

    eager_model, eager_step = make()
    compiled_model, step = make()
    compiled_step = tn.compile(step)
    for x, t in zip(x_batches, t_batches, strict=True):
        expected = eager_step(tn.tensor(x), t)
        got = compiled_step(tn.tensor(x), t)
        if reduction == "mean" and (t == ignore_index).all():
            assert np.isnan(got.item()) and np.isnan(expected.item())
        else:
            _close(got.data, expected.data)
        for a, b in zip(compiled_model.parameters(), eager_model.parameters(), strict=True):
            _close(a.data, b.data)
            _close(a.grad.data, b.grad.data)
    # traced on the batches without padding, replayed for the others
    assert compiled_step.traces == 2 and compiled_step.replays == 3
    if K.numba_enabled():  # the fused kernels were lowered, and count the kept targets
        text = compiled_step.explain()
        assert "softmax_cross_entropy_forward(" in text and "raise IndexError" in text
        assert ("count += 1" in text) == (reduction == "mean")


# ------------------------------------------------------------------ kernels and their twins


@pytest.fixture(params=["compiled", "twin"])
def mode(request):
    if request.param == "compiled" and not K.numba_enabled():
        pytest.skip("numba kernels are disabled")
    with K.dispatch_mode(request.param):
        yield request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_kernel_matches_twin_with_ignored_targets(mode, dtype, ignore_index) -> None:
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((40, 5)) * 3).astype(dtype)
    target = rng.integers(0, 5, 40)
    target[::3] = ignore_index
    logits[3] = np.nan  # an ignored row: still loss 0 and gradient 0
    loss, probs = K.softmax_cross_entropy_forward(logits, target, ignore_index)
    expected_loss, expected_probs = R.softmax_cross_entropy_forward(logits, target, ignore_index)
    ignored = target == ignore_index
    assert loss.dtype == probs.dtype == dtype
    np.testing.assert_array_equal(loss[ignored], 0.0)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(loss, expected_loss, rtol=100 * eps, atol=100 * eps)
    np.testing.assert_allclose(probs[~ignored], expected_probs[~ignored], rtol=100 * eps,
                               atol=eps)
    grad_loss = np.linspace(0.5, 2, 40).astype(dtype)
    grad = K.softmax_cross_entropy_backward(probs, target, grad_loss, ignore_index)
    twin = R.softmax_cross_entropy_backward(probs, target, grad_loss, ignore_index)
    assert grad.dtype == twin.dtype == dtype
    np.testing.assert_array_equal(grad, twin)  # bit for bit
    np.testing.assert_array_equal(grad[ignored], 0.0)
    kept = ~ignored
    onehot = np.eye(5, dtype=dtype)[target[kept]]
    np.testing.assert_allclose(grad[kept], (probs[kept] - onehot) * grad_loss[kept, None],
                               rtol=10 * eps, atol=eps)


def test_kernel_still_refuses_a_target_out_of_range(mode) -> None:
    logits = np.zeros((40, 3))
    target = np.full(40, -100)
    target[7] = 3
    with pytest.raises(IndexError):
        K.softmax_cross_entropy_forward(logits, target, -100)

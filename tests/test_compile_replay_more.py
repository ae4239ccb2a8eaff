"""tn.compile replays more of what depends on the data (issue 18, part 3, continued):

- every random draw tinynet offers (``bernoulli``, ``normal_``, ``uniform_``, ``multinomial``,
  ``dropout2d``, ``Categorical.sample``...) draws again from tinynet's generator at each
  replay, in eager order: a compiled step equals the eager one bit for bit under the same seed;
- ``cross_entropy``/``nll_loss`` with an ``ignore_index`` mask the ignored targets with a
  recorded comparison, so any later batch (more, fewer, all targets ignored) replays right;
- an optimizer of the user's own, written as PyTorch's custom optimizers are (tensor in-place
  ops under ``no_grad``, buffers in ``self.state[p]``), compiles; numpy work on ``.data`` and
  Python counters are refused naming the line and the fix.

Each test runs an eager copy and a compiled copy of the same world over several calls."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from compile_support import cross_entropy_step

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import nn, optim


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYNET_CACHE_DIR", str(tmp_path))


def assert_close(got: Any, want: Any, what: str = "") -> None:
    """float64 agreement, 1e-10 relative to the values' magnitude (NaN where eager has NaN)."""
    got, want = np.asarray(got), np.asarray(want)
    scale = float(np.nanmax(np.abs(want))) if want.size and np.isfinite(want).any() else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * max(scale, 1e-3),
                               err_msg=what)


def assert_same_params(a: Any, b: Any) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert_close(y.data, x.data, name)


def values(out: Any) -> list[np.ndarray]:
    return [t.data for t in (out if isinstance(out, tuple | list) else (out,))]


# ---- 1. random draws -------------------------------------------------------------------------

DRAWS: dict[str, Callable[[Any], Any]] = {
    "tn.bernoulli": lambda x: tn.bernoulli(x.sigmoid()),
    "Tensor.bernoulli": lambda x: x.sigmoid().bernoulli(),
    "Tensor.bernoulli(p)": lambda x: x.bernoulli(0.3) * x,
    "bernoulli_(p)": lambda x: x.clone().bernoulli_(0.25),
    "bernoulli_(tensor p)": lambda x: tn.zeros_like(x).bernoulli_(x.sigmoid()),
    "normal_": lambda x: x.clone().normal_(1.0, 0.5) + x,
    "uniform_": lambda x: x.clone().uniform_(-2.0, 3.0) * x,
    "tn.normal(tensors)": lambda x: tn.normal(x, x.abs() + 0.1),
    "tn.normal(mean)": lambda x: tn.normal(x, 2.0),
    "multinomial": lambda x: tn.multinomial(x.exp(), 3),
    "multinomial(replacement)": lambda x: tn.multinomial(x.softmax(-1), 5, replacement=True),
    "F.dropout2d": lambda x: F.dropout2d(x.reshape(2, 2, 2, 3), 0.5),
    "nn.Dropout2d": lambda x: nn.Dropout2d(0.3)(x.reshape(2, 2, 3, 2)) * 2,
    "Categorical(probs)": lambda x: tn.distributions.Categorical(probs=x.softmax(-1)).sample(),
    "Categorical(logits)": lambda x: tn.distributions.Categorical(logits=x).sample((4,)),
    "nn.init.normal_": lambda x: nn.init.normal_(tn.zeros_like(x), 0.0, 2.0) * x,
    "nn.init.kaiming_uniform_": lambda x: nn.init.kaiming_uniform_(tn.zeros_like(x)) + x,
    "nn.init.trunc_normal_": lambda x: nn.init.trunc_normal_(tn.zeros_like(x), std=2.0),
    "nn.init.orthogonal_": lambda x: nn.init.orthogonal_(tn.zeros_like(x)) @ x.T,
    "draws in order": lambda x: (tn.bernoulli(x.sigmoid()), x.clone().normal_(),
                                 tn.rand(3, dtype=tn.float64), tn.multinomial(x.exp(), 2)),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
@pytest.mark.parametrize("backend", ["auto", "interpret"])
def test_each_draw_replays_the_eager_numbers_bit_for_bit_under_the_same_seed(
        name: str, backend: str) -> None:
    fn = DRAWS[name]
    compiled = tn.compile(fn, backend=backend)
    rng = np.random.default_rng(1)
    seen = set()
    for i in range(5):
        x = tn.tensor(rng.normal(size=(4, 6)))  # new values every call
        tn.manual_seed(100 + i)
        want = [values(fn(x)), values(fn(x))]  # two draws: the stream goes on between them
        tn.manual_seed(100 + i)
        got = [values(compiled(x)), values(compiled(x))]
        for g, w in zip(sum(got, []), sum(want, []), strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w, err_msg=name)
        seen.add(b"".join(g.tobytes() for g in got[0]))
    assert compiled.replays >= 5
    assert len(seen) == 5  # new numbers at every call, not the trace's


def test_a_generator_argument_is_read_at_every_replay() -> None:
    def draws(x: Any, gen: Any) -> Any:
        return x.clone().normal_(generator=gen) + tn.bernoulli(x.sigmoid(), generator=gen)

    mine, eager = tn.Generator().manual_seed(5), tn.Generator().manual_seed(5)
    compiled = tn.compile(lambda x: draws(x, mine))
    x = tn.zeros(3, 4, dtype=tn.float64)
    for i in range(6):
        if i == 3:  # reseeded between calls: the replay follows the generator's new stream
            mine.manual_seed(9)
            eager.manual_seed(9)
        np.testing.assert_array_equal(compiled(x).data, draws(x, eager).data)
    assert compiled.replays >= 3


def test_a_replayed_bernoulli_still_checks_its_probabilities() -> None:
    compiled = tn.compile(lambda p: tn.bernoulli(p))
    for _ in range(3):
        compiled(tn.full((3,), 0.5, dtype=tn.float64))
    with pytest.raises(tn.ValueRangeError, match="bernoulli: probabilities must be in"):
        compiled(tn.full((3,), 1.5, dtype=tn.float64))


def test_a_cnn_step_with_dropout2d_equals_eager_with_a_seed_per_call() -> None:
    tn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Dropout2d(0.4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 5 * 5, 3)).double()
    other = copy.deepcopy(model)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    other_opt = optim.SGD(other.parameters(), lr=0.05, momentum=0.9)

    compiled = tn.compile(lambda x, y: cross_entropy_step(other, other_opt, x, y))
    rng = np.random.default_rng(0)
    for i in range(5):
        x = tn.tensor(rng.normal(size=(3, 2, 5, 5)))
        y = tn.tensor(rng.integers(0, 3, size=3))
        tn.manual_seed(i % 2)  # the same seed twice: masks repeat as eager's do
        want = cross_entropy_step(model, opt, x, y)
        tn.manual_seed(i % 2)
        assert_close(compiled(x, y).data, want.data)
        assert_same_params(model, other)
    assert compiled.replays >= 3


@pytest.mark.parametrize("cast", [False, True])
def test_a_policy_gradient_step_scores_the_replayed_sample(cast: bool) -> None:
    """pytorch/examples' reinforce.py: sample actions, score them with log_prob, step. The
    sampled indices reach log_prob's gather through reshapes the compiler lowers (and, with
    ``cast``, a float round trip), and gather reads them as an option, not an input: the
    replay must still make them before gather runs (it once read a value never written)."""
    tn.manual_seed(0)
    policy = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    other = copy.deepcopy(policy)
    opt = optim.Adam(policy.parameters(), lr=0.01)
    other_opt = optim.Adam(other.parameters(), lr=0.01)

    def step(m: Any, o: Any, state: Any, reward: Any) -> Any:
        o.zero_grad()
        dist = tn.distributions.Categorical(logits=m(state))
        action = dist.sample()
        if cast:
            action = action.double().long()
        loss = -(dist.log_prob(action) * reward).sum()
        loss.backward()
        o.step()
        return loss, action

    compiled = tn.compile(lambda s, r: step(other, other_opt, s, r))
    rng = np.random.default_rng(3)
    for i in range(5):
        state, reward = tn.tensor(rng.normal(size=(6, 4))), tn.tensor(rng.normal(size=6))
        tn.manual_seed(10 + i)
        want_loss, want_action = step(policy, opt, state, reward)
        tn.manual_seed(10 + i)
        got_loss, got_action = compiled(state, reward)
        np.testing.assert_array_equal(got_action.data, want_action.data)
        assert_close(got_loss.data, want_loss.data)
        assert_same_params(policy, other)
    assert compiled.replays >= 3


# ---- 2. ignore_index -------------------------------------------------------------------------

TARGETS = [[0, 1, 2, 0, 1, 2], [1, 1, 2, 2, 1, 2], [0, 0, 0, 0, 0, 0], [2, 0, 0, 1, 0, 1],
           [0, 2, 1, 1, 0, 0]]  # row 3: every target ignored (ignore_index=0)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "weighted", "sum", "none",
                                  "smoothed", "3-d"])
def test_a_step_with_ignore_index_in_the_classes_replays_any_batch(loss: str) -> None:
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    other = copy.deepcopy(model)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    other_opt = optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    weight = tn.tensor([0.5, 2.0, 1.5], dtype=tn.float64)

    def objective(out: Any, y: Any, weight: Any) -> Any:
        if loss == "nll_loss":
            return F.nll_loss(F.log_softmax(out, 1), y, ignore_index=0)
        if loss == "3-d":  # (N, C, L) scores, (N, L) targets
            return F.cross_entropy(out.reshape(2, 3, 3).permute(0, 2, 1).contiguous()
                                   .permute(0, 2, 1), y.reshape(2, 3), ignore_index=0)
        options = {"weighted": {"weight": weight}, "sum": {"reduction": "sum"},
                   "none": {"reduction": "none"}, "smoothed": {"label_smoothing": 0.2}}
        return F.cross_entropy(out, y, ignore_index=0, **options.get(loss, {}))

    def step(m: Any, o: Any, x: Any, y: Any, weight: Any) -> Any:
        o.zero_grad()
        losses = objective(m(x), y, weight)
        total = losses.sum() if loss == "none" else losses
        (total * 1.0).backward() if loss != "none" else total.backward()
        o.step()
        return losses

    compiled = tn.compile(lambda x, y: step(other, other_opt, x, y, weight))
    rng = np.random.default_rng(2)
    for target in TARGETS:
        x, y = tn.tensor(rng.normal(size=(6, 4))), tn.tensor(target)
        want = step(model, opt, x, y, weight)
        got = compiled(x, y)
        assert_close(got.data, want.data, f"loss on {target}")
        assert_same_params(model, other)
    assert compiled.replays >= 3


def test_ignore_index_outside_the_classes_replays_once_the_trace_saw_ignored_targets() -> None:
    logits = tn.randn(6, 4, dtype=tn.float64, requires_grad=True)

    def loss(x: Any, t: Any) -> Any:
        out = F.cross_entropy(x * 2, t)  # ignore_index=-100, PyTorch's default
        out.backward()
        return out

    compiled = tn.compile(loss)
    for target in ([-100, 1, 2, 3, 0, -100], [0, 1, 2, 3, 0, 1], [-100] * 6, [3, -100, 2, 1, 0, 1]):
        t = tn.tensor(target)
        logits.grad = None
        want = F.cross_entropy(logits * 2, t)
        want.backward()
        want_grad = logits.grad.data.copy()
        logits.grad = None
        got = compiled(logits, t)
        assert_close(got.data, want.data, str(target))
        assert_close(logits.grad.data, want_grad, str(target))
    assert compiled.replays >= 2


@pytest.mark.parametrize("kind", ["weighted", "nll_loss", "3-d", "smoothed"])
def test_padding_targets_replay_even_when_the_traced_batch_held_none(kind: str) -> None:
    """The default ignore_index=-100 (padding): the trace's batch has no padding, later ones
    have some. (The fused unweighted (N, C) cross_entropy is the one path that keeps no mask.)"""
    weight = tn.tensor([0.5, 2.0, 1.5, 1.0], dtype=tn.float64)
    logits = tn.randn(6, 4, dtype=tn.float64, requires_grad=True)

    def loss(x: Any, t: Any) -> Any:
        if kind == "weighted":
            out = F.cross_entropy(x, t, weight=weight)
        elif kind == "nll_loss":
            out = F.nll_loss(F.log_softmax(x, 1), t)
        elif kind == "3-d":
            out = F.cross_entropy(x.reshape(2, 3, 4).permute(0, 2, 1), t.reshape(2, 3))
        else:
            out = F.cross_entropy(x, t, label_smoothing=0.1)
        out.backward()
        return out

    compiled = tn.compile(loss)
    for target in ([0, 1, 2, 3, 0, 1], [0, 1, 2, 3, 0, 1], [-100, 1, 2, 3, 0, -100],
                   [-100] * 6, [3, -100, 2, 1, 0, 1]):
        t = tn.tensor(target)
        logits.grad = None
        want = loss(logits, t)
        want_grad = logits.grad.data.copy()
        logits.grad = None
        got = compiled(logits, t)
        assert_close(got.data, want.data, str(target))
        assert_close(logits.grad.data, want_grad, str(target))
    assert compiled.replays >= 3


def test_every_target_ignored_gives_a_nan_mean_and_no_gradient_as_pytorch() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(3, 4))
    mine = tn.tensor(x, requires_grad=True)
    out = F.cross_entropy(mine, tn.tensor([1, 1, 1]), ignore_index=1)
    out.backward()
    theirs = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs, torch.tensor([1, 1, 1]), ignore_index=1)
    ref.backward()
    assert np.isnan(out.data) and np.isnan(ref.item())
    np.testing.assert_array_equal(mine.grad.data, theirs.grad.numpy())


@pytest.mark.parametrize("ignore_index", [0, 2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ignore_index_in_the_classes_matches_pytorch(ignore_index: int, reduction: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(ignore_index)
    x, t, w = rng.normal(size=(7, 3)), rng.integers(0, 3, size=7), rng.uniform(0.5, 2, 3)
    for weight in (None, w):
        mine = tn.tensor(x, requires_grad=True)
        out = F.cross_entropy(mine, tn.tensor(t), None if weight is None else tn.tensor(weight),
                              ignore_index=ignore_index, reduction=reduction)
        out.sum().backward()
        theirs = torch.tensor(x, requires_grad=True)
        ref = torch.nn.functional.cross_entropy(
            theirs, torch.tensor(t), None if weight is None else torch.tensor(weight),
            ignore_index=ignore_index, reduction=reduction)
        ref.sum().backward()
        assert_close(out.data, ref.detach().numpy())
        assert_close(mine.grad.data, theirs.grad.numpy())


# ---- 3. an optimizer of the user's own -------------------------------------------------------


class PlainSGD(optim.Optimizer):
    """SGD as a PyTorch tutorial writes it: ``p.add_(p.grad, alpha=-lr)`` under no_grad."""

    def __init__(self, params: Any, lr: float = 0.1, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @tn.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(p.grad, alpha=-group["lr"])
        return None


class MomentumSGD(optim.Optimizer):
    """Momentum buffers in ``self.state[p]``, made on the first step (zeros or a clone)."""

    def __init__(self, params: Any, lr: float = 0.05, momentum: float = 0.9,
                 first: str = "zeros") -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})
        self.first = first

    def step(self, closure: Any = None) -> Any:
        with tn.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.setdefault(p, {})
                    if "momentum_buffer" not in state:
                        if self.first == "clone":
                            state["momentum_buffer"] = p.grad.clone().detach()
                            p.sub_(group["lr"] * state["momentum_buffer"])
                            continue
                        state["momentum_buffer"] = tn.zeros_like(p)
                    buf = state["momentum_buffer"]
                    buf.mul_(group["momentum"]).add_(p.grad)
                    p -= group["lr"] * buf
        return None


class TensorStepAdam(optim.Optimizer):
    """Adam with its step count kept in a tensor (as PyTorch's own optimizers keep it)."""

    def __init__(self, params: Any, lr: float = 0.01, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @tn.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.advance(p)
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).add_(p.grad * p.grad, alpha=1 - beta2)
                m_hat = state["exp_avg"] / (1 - beta1 ** state["step"])
                v_hat = state["exp_avg_sq"] / (1 - beta2 ** state["step"])
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))
                p.clamp_(-3.0, 3.0)
        return None

    def advance(self, p: Any) -> dict:
        """p's state, made on its first step, with the step count advanced."""
        state = self.state.setdefault(p, {})
        if not state:
            state["step"] = tn.tensor(0.0, dtype=tn.float64)
            state["exp_avg"] = tn.zeros_like(p)
            state["exp_avg_sq"] = tn.zeros_like(p)
        state["step"] += 1
        return state


class FusedAdam(TensorStepAdam):
    """Adam written with the fused in-place ops PyTorch's own code uses: ``lerp_`` for the
    first moment, ``addcmul_`` for the second, ``addcdiv_`` for the update."""

    @tn.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.advance(p)
                state["exp_avg"].lerp_(p.grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = (state["exp_avg_sq"] / (1 - beta2 ** state["step"])).sqrt()
                denom.add_(group["eps"])
                p.addcdiv_(state["exp_avg"] / (1 - beta1 ** state["step"]), denom,
                           value=-group["lr"])
        return None


def twin_training(make_optimizer: Callable[[Any], Any], calls: int = 6,
                  between: Callable[[int, Any], None] | None = None) -> Any:
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    other = copy.deepcopy(model)
    opt, other_opt = make_optimizer(model), make_optimizer(other)

    compiled = tn.compile(lambda x, y: cross_entropy_step(other, other_opt, x, y))
    rng = np.random.default_rng(3)
    for i in range(calls):
        if between is not None:
            between(i, opt)
            between(i, other_opt)
        x, y = tn.tensor(rng.normal(size=(8, 3))), tn.tensor(rng.integers(0, 2, size=8))
        want = cross_entropy_step(model, opt, x, y)
        assert_close(compiled(x, y).data, want.data, f"loss, call {i}")
        assert_same_params(model, other)
        for p, q in zip(model.parameters(), other.parameters(), strict=True):
            for key, value in opt.state.get(p, {}).items():
                assert_close(other_opt.state[q][key].data, value.data, key)
    return compiled


@pytest.mark.parametrize("make", [
    lambda m: PlainSGD(m.parameters()),
    lambda m: PlainSGD(m.parameters(), weight_decay=0.1),
    lambda m: MomentumSGD(m.parameters()),
    lambda m: MomentumSGD(m.parameters(), first="clone"),
    lambda m: TensorStepAdam(m.parameters()),
    lambda m: FusedAdam(m.parameters()),
], ids=["sgd", "sgd-weight-decay", "momentum-zeros", "momentum-clone", "adam-tensor-step",
        "adam-lerp-addcmul-addcdiv"])
def test_a_hand_written_optimizer_with_tensor_in_place_ops_compiles_and_equals_eager(
        make: Callable[[Any], Any]) -> None:
    compiled = twin_training(make)
    assert compiled.replays >= 3


def test_a_hand_written_optimizer_reads_a_changed_lr() -> None:
    def schedule(i: int, opt: Any) -> None:
        opt.param_groups[0]["lr"] = 0.1 if i < 3 else 0.02  # (a scheduler, by hand)

    compiled = twin_training(lambda m: MomentumSGD(m.parameters()), calls=7, between=schedule)
    assert compiled.replays >= 2


def test_a_hand_written_optimizer_reads_a_changed_attribute() -> None:
    def retarget(i: int, opt: Any) -> None:
        opt.scale = 1.0 if i % 2 else 0.5

    class Scaled(PlainSGD):
        scale = 1.0

        @tn.no_grad()
        def step(self, closure: Any = None) -> Any:
            for p in self.param_groups[0]["params"]:
                p.add_(p.grad, alpha=-0.1 * self.scale)

    twin_training(lambda m: Scaled(m.parameters()), calls=6, between=retarget)


def test_numpy_work_on_data_in_an_optimizer_is_refused_naming_its_line_and_the_fix() -> None:
    class NumpySGD(PlainSGD):
        def step(self, closure: Any = None) -> Any:
            for p in self.param_groups[0]["params"]:
                p.data -= 0.1 * p.grad.data  # the refused line

    tn.manual_seed(0)
    model = nn.Linear(3, 2).double()
    opt = NumpySGD(model.parameters())

    def step(x: Any) -> Any:
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss

    with pytest.raises(tn.CompileError) as info:
        tn.compile(step)(tn.ones(4, 3, dtype=tn.float64))
    message = str(info.value)
    line = NumpySGD.step.__code__.co_firstlineno + 2
    assert f"test_compile_replay_more.py:{line}" in message
    assert "p.add_(p.grad, alpha=-lr)" in message and "tn.no_grad()" in message
    assert "_WriteInPlace" not in message and "Tracer" not in message


def test_a_python_step_count_in_a_hand_written_optimizer_is_refused_with_the_fix() -> None:
    class CountingSGD(PlainSGD):
        @tn.no_grad()
        def step(self, closure: Any = None) -> Any:
            for p in self.param_groups[0]["params"]:
                state = self.state.setdefault(p, {"step": 0})
                state["step"] += 1
                p.add_(p.grad, alpha=-0.1 / state["step"])

    tn.manual_seed(0)
    model = nn.Linear(3, 2).double()
    opt = CountingSGD(model.parameters())

    def step(x: Any) -> Any:
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss

    compiled = tn.compile(step)
    compiled(tn.ones(4, 3, dtype=tn.float64))  # the first step makes the state: runs eagerly
    with pytest.raises(tn.CompileError, match=r"'step': 1 -> 2.*state\['step'\] \+= 1"):
        compiled(tn.ones(4, 3, dtype=tn.float64))


def test_in_place_writes_into_a_tensor_made_from_numbers_start_from_the_numbers_each_call(
        ) -> None:
    def fn(x: Any) -> Any:
        with tn.no_grad():
            total = tn.zeros(3, dtype=tn.float64)
            before = total + 1  # read before the writes: still the zeros at every replay
            total += x
            total.mul_(x)
            return total * 2 + before

    compiled = tn.compile(fn)
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = tn.tensor(rng.normal(size=3))
        np.testing.assert_array_equal(compiled(x).data, fn(x).data)
    assert compiled.replays >= 2


def test_in_place_ops_on_arguments_under_no_grad_replay_with_each_call_s_arrays() -> None:
    def fn(x: Any, y: Any) -> Any:
        with tn.no_grad():
            x.mul_(y).add_(1.0).clamp_(max=y)
            x.copy_(x * 2)
            x.masked_fill_(y > 1.5, -1.0)
        return x + 0

    compiled = tn.compile(fn)
    rng = np.random.default_rng(4)
    for _ in range(4):
        a, b = rng.normal(size=5), rng.uniform(0, 3, size=5)
        want = fn(tn.tensor(a), tn.tensor(b))
        x = tn.tensor(a)
        got = compiled(x, tn.tensor(b))
        np.testing.assert_array_equal(got.data, want.data)
        np.testing.assert_array_equal(x.data, want.data)  # the argument was written too
    assert compiled.replays >= 2


@pytest.mark.parametrize("pool", ["avg", "avg_no_pad_count", "adaptive"])
def test_average_pools_compile_and_equal_eager(pool: str) -> None:
    """An average pool's divisor (and the adaptive pool's averaging matrices) follow from the
    shapes alone: constants of the trace, not arrays of unknown origin (they were refused)."""
    make = {"avg": lambda: nn.AvgPool2d(2, padding=1),
            "avg_no_pad_count": lambda: nn.AvgPool2d(2, padding=1, count_include_pad=False),
            "adaptive": lambda: nn.AdaptiveAvgPool2d((2, 3))}[pool]
    tn.manual_seed(0)
    front = nn.Sequential(nn.Conv2d(1, 2, 3), make(), nn.Flatten()).double()
    features = front(tn.zeros(1, 1, 6, 7, dtype=tn.float64)).shape[1]
    model = nn.Sequential(*front, nn.Linear(features, 1).double())
    twin = copy.deepcopy(model)
    opts = [optim.SGD(m.parameters(), lr=0.1) for m in (model, twin)]

    def step(m: Any, opt: Any, x: Any) -> Any:
        opt.zero_grad()
        loss = (m(x) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    compiled = tn.compile(lambda x: step(twin, opts[1], x))
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = tn.tensor(rng.normal(size=(3, 1, 6, 7)))
        want, got = step(model, opts[0], x), compiled(x)
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10, atol=1e-12)
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            a, b = q.detach().numpy(), p.detach().numpy()
            np.testing.assert_allclose(a, b, rtol=1e-10,
                                       atol=1e-10 * max(1.0, float(np.abs(b).max())))

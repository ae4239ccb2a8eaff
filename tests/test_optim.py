"""tinynet.optim: update rules against hand-computed steps, parameter groups, state dicts,
hyperparameter validation."""

import math
import pickle

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn, optim

F = nn.functional


def _param(values):
    return nn.Parameter(tn.tensor(np.array(values, dtype=np.float64)))


def _set_grad(p, values):
    p.grad = tn.tensor(np.array(values, dtype=p.dtype))


# ---- update rules --------------------------------------------------------------------------


def test_plain_sgd_step_is_p_minus_lr_grad():
    p = _param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1)
    _set_grad(p, [0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.95, -2.1], rtol=1e-15)
    assert opt.state == {}  # no momentum, no state (as PyTorch)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_dampening_weight_decay_by_hand(nesterov):
    lr, mu, damp, wd = 0.1, 0.9, 0.0 if nesterov else 0.3, 0.01
    p = _param([1.0, 2.0])
    opt = optim.SGD([p], lr=lr, momentum=mu, dampening=damp, weight_decay=wd,
                    nesterov=nesterov)
    expected, buf = np.array([1.0, 2.0]), None
    for grad in ([0.5, -1.0], [0.2, 0.3], [-0.4, 0.1]):
        _set_grad(p, grad)
        opt.step()
        d = np.array(grad) + wd * expected
        buf = d.copy() if buf is None else mu * buf + (1 - damp) * d
        d = d + mu * buf if nesterov else buf
        expected = expected - lr * d
        np.testing.assert_allclose(p.data, expected, rtol=1e-14)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"].data, buf, rtol=1e-14)


def test_adam_steps_by_hand():
    lr, b1, b2, eps, wd = 0.01, 0.8, 0.9, 1e-6, 0.1
    p = _param([1.0, -1.0, 0.5])
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    expected, m, v = np.array([1.0, -1.0, 0.5]), np.zeros(3), np.zeros(3)
    for t, grad in enumerate(([0.1, -0.2, 0.3], [0.0, 0.5, -0.1], [1.0, 1.0, 1.0]), start=1):
        _set_grad(p, grad)
        opt.step()
        g = np.array(grad) + wd * expected
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        expected = expected - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(p.data, expected, rtol=1e-12)
    assert opt.state[p]["step"] == 3


def test_parameters_without_grad_are_skipped():
    a, b = _param([1.0]), _param([2.0])
    for opt in (optim.SGD([a, b], lr=1.0, momentum=0.5), optim.Adam([a, b])):
        _set_grad(a, [1.0])
        b.grad = None
        opt.step()
        assert b.data[0] == 2.0 and b not in opt.state
        assert a.data[0] != 1.0


def test_step_bumps_the_version_counter_of_updated_parameters():
    p = _param([1.0])
    version = p._version.value
    opt = optim.SGD([p], lr=0.1)
    _set_grad(p, [1.0])
    opt.step()
    assert p._version.value == version + 1


def test_step_runs_the_closure_with_grad_enabled_and_returns_its_loss():
    p = _param([3.0])
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tn.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0 and p.data[0] == 3.0 - 0.25 * 6.0


def test_zero_grad_sets_to_none_or_zeros():
    p = _param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    _set_grad(p, [1.0, 1.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_float32_parameters_and_state_stay_float32():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = tn.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                optim.Adam(model.parameters(), weight_decay=0.01)):
        for _ in range(2):
            opt.zero_grad()
            F.mse_loss(model(x), np.zeros((5, 2))).backward()
            opt.step()
        assert all(p.dtype == np.float32 for p in model.parameters())
        for state in opt.state.values():
            assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, tn.Tensor))


def test_sgd_trains_xor():
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    x = tn.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]], np.float32)
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(300):
        opt.zero_grad()
        loss = F.binary_cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    np.testing.assert_array_equal(model(x).data > 0.5, y > 0.5)


# ---- parameter groups ----------------------------------------------------------------------


def test_param_groups_take_their_own_options_and_defaults():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["params"] == [b]
    _set_grad(a, [1.0])
    _set_grad(b, [1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


def test_add_param_group_and_lr_changes_take_effect():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.2})
    opt.param_groups[0]["lr"] = 1.0  # a learning-rate schedule edits the group
    _set_grad(a, [1.0])
    _set_grad(b, [1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.0) and b.data[0] == pytest.approx(0.8)


def test_parameter_in_two_groups_raises():
    a = _param([1.0])
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: optim.SGD(p, lr=-0.1), ValueError, "Invalid learning rate"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), ValueError, "Invalid momentum"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), ValueError, "Invalid weight_decay"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
         ValueError, "Nesterov"),
        (lambda p: optim.SGD(p, lr="fast"), TypeError, "lr must be a number"),
        (lambda p: optim.SGD([{"params": p, "lr": -1.0}], lr=0.1), ValueError,
         "Invalid learning rate"),
        (lambda p: optim.Adam(p, lr=-1e-3), ValueError, "Invalid learning rate"),
        (lambda p: optim.Adam(p, eps=-1e-8), ValueError, "Invalid epsilon"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), ValueError, "beta parameter at index 0"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
        (lambda p: optim.Adam(p, weight_decay=-0.1), ValueError, "Invalid weight_decay"),
        (lambda p: optim.Adam(p, amsgrad="no"), TypeError, "amsgrad must be True or False"),
        (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: optim.SGD(p[0], lr=0.1), TypeError, "iterable of Tensors"),
        (lambda p: optim.SGD(set(p), lr=0.1), TypeError, "ordered collections"),
        (lambda p: optim.SGD([p[0] * 2], lr=0.1), ValueError, "non-leaf"),
        (lambda p: optim.SGD([np.zeros(2)], lr=0.1), TypeError, "only optimize Tensors"),
        (lambda p: optim.SGD([("w", p[0])], lr=0.1), TypeError, "model.parameters()"),
    ],
)
def test_invalid_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make([_param([1.0])])


def test_hyperparameter_errors_are_tinynet_errors():
    with pytest.raises(tn.TinynetError):
        optim.SGD([_param([1.0])], lr=-1)


def test_repr_lists_the_groups_like_pytorch():
    opt = optim.SGD([_param([1.0])], lr=0.1, momentum=0.9)
    assert repr(opt) == (
        "SGD (\nParameter Group 0\n    dampening: 0\n    lr: 0.1\n    maximize: False\n"
        "    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)"
    )


# ---- state dicts ---------------------------------------------------------------------------


def _train(model, opt, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = tn.tensor(rng.standard_normal((6, 3)))
        y = rng.standard_normal((6, 2))
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()


def _model():
    tn.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 4, dtype=tn.float64), nn.ReLU(),
                         nn.Linear(4, 2, dtype=tn.float64))


@pytest.mark.parametrize(
    "make",
    [lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
     lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01)],
    ids=["sgd", "adam"],
)
def test_state_dict_round_trip_resumes_training_exactly(make):
    model = _model()
    opt = make(model.parameters())
    _train(model, opt, 3)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}  # it shares memory
    saved_opt = pickle.loads(pickle.dumps(opt.state_dict()))
    _train(model, opt, 4, seed=1)
    expected = model.state_dict()

    resumed = _model()
    resumed.load_state_dict(saved_model)
    opt2 = make(resumed.parameters())
    opt2.load_state_dict(saved_opt)
    _train(resumed, opt2, 4, seed=1)
    for key, value in resumed.state_dict().items():
        np.testing.assert_array_equal(value, expected[key])


def test_state_dict_layout_is_pytorchs():
    model = _model()
    opt = optim.Adam([{"params": [model[0].weight, model[0].bias]},
                      {"params": model[2].parameters(), "lr": 0.1}])
    _train(model, opt, 2)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    entry = sd["state"][2]
    assert entry["step"] == 2 and sorted(entry) == ["exp_avg", "exp_avg_sq", "step"]
    assert type(entry["exp_avg"]) is np.ndarray and entry["exp_avg"].shape == (2, 4)
    entry["exp_avg"][...] = 0  # a copy
    assert opt.state[model[2].weight]["exp_avg"].data.any()


def test_load_state_dict_restores_options_and_accepts_text_keys():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train(model, opt, 1)
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.01
    sd["state"] = {str(k): v for k, v in sd["state"].items()}  # as a text format stores them
    fresh = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == 0.01
    assert fresh.param_groups[0]["params"] == list(model.parameters())
    np.testing.assert_array_equal(fresh.state[model[0].weight]["momentum_buffer"].data,
                                  opt.state[model[0].weight]["momentum_buffer"].data)


def test_load_state_dict_that_does_not_fit_changes_nothing():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train(model, opt, 1)
    good = opt.state_dict()
    before = {p: s["momentum_buffer"].data.copy() for p, s in opt.state.items()}

    bad = opt.state_dict()
    bad["state"][3]["momentum_buffer"] = np.zeros(5)
    bad["param_groups"][0]["lr"] = 0.5
    with pytest.raises(tn.ShapeError, match=r"state\[3\]\['momentum_buffer'\].*\(5,\).*\(2,\)"):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == 0.1
    for p, buf in before.items():
        np.testing.assert_array_equal(opt.state[p]["momentum_buffer"].data, buf)

    wrong_size = dict(good, param_groups=[dict(good["param_groups"][0], params=[0, 1])])
    with pytest.raises(nn.StateDictError, match="has 2 parameters"):
        opt.load_state_dict(wrong_size)
    with pytest.raises(nn.StateDictError, match="2 parameter group"):
        opt.load_state_dict(dict(good, param_groups=good["param_groups"] * 2))
    with pytest.raises(ValueError, match="amsgrad"):
        opt.load_state_dict(dict(good, param_groups=[dict(good["param_groups"][0],
                                                          amsgrad=True)]))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.load_state_dict(dict(good, param_groups=[dict(good["param_groups"][0], lr=-1)]))


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    p = nn.Parameter(tn.ones(2))  # float32
    opt = optim.Adam([p])
    opt.load_state_dict({"state": {0: {"step": 4.0, "exp_avg": np.ones(2),
                                       "exp_avg_sq": np.ones(2)}},
                         "param_groups": [dict(opt.state_dict()["param_groups"][0])]})
    assert opt.state[p]["exp_avg"].dtype == np.float32 and opt.state[p]["step"] == 4
    _set_grad(p, [1.0, 1.0])
    opt.step()
    assert opt.state[p]["step"] == 5 and math.isfinite(p.data[0])


@pytest.mark.parametrize(
    "make",
    [lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1),
     lambda p: optim.Adam([{"params": p[:2]}, {"params": p[2:], "lr": 0.05}],
                          betas=(0.8, 0.99))],
    ids=["sgd", "adam-groups"],
)
def test_model_and_optimizer_state_round_trip_through_tn_save(make, tmp_path):
    model = _model()
    opt = make(list(model.parameters()))
    _train(model, opt, 3)
    tn.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt")
    _train(model, opt, 4, seed=1)
    expected = model.state_dict()

    checkpoint = tn.load(tmp_path / "ckpt")
    resumed = _model()
    resumed.load_state_dict(checkpoint["model"])
    opt2 = make(list(resumed.parameters()))
    opt2.load_state_dict(checkpoint["optimizer"])
    assert opt2.param_groups[-1]["lr"] == opt.param_groups[-1]["lr"]
    _train(resumed, opt2, 4, seed=1)
    for key, value in resumed.state_dict().items():
        np.testing.assert_array_equal(value, expected[key])


def test_load_state_dict_ignores_pytorchs_execution_switches_and_keeps_extra_keys():
    model = _model()
    opt = optim.Adam(model.parameters())
    group = dict(opt.state_dict()["param_groups"][0], foreach=True, fused=None,
                 amsgrad=False, maximize=False, initial_lr=0.001, betas=[0.5, 0.9])
    opt.load_state_dict({"state": {}, "param_groups": [group]})
    loaded = opt.param_groups[0]
    assert "foreach" not in loaded and "fused" not in loaded and loaded["amsgrad"] is False
    assert loaded["initial_lr"] == 0.001 and loaded["betas"] == (0.5, 0.9)
    sgd = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(nn.StateDictError, match="amsgrad"):
        sgd.load_state_dict({"state": {}, "param_groups": [
            dict(sgd.state_dict()["param_groups"][0], amsgrad=True)]})


def test_amsgrad_switched_on_after_some_steps_starts_its_maximum_from_zero() -> None:
    """``max_exp_avg_sq`` does not exist before amsgrad is on; made then, it starts at zero
    (not from uninitialised memory), so the first amsgrad step equals a plain Adam step
    (max(0, v) = v). PyTorch raises KeyError here; tinynet goes on."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(4)]
    ps = [tn.tensor(start.copy(), requires_grad=True) for _ in range(2)]
    opts = [optim.Adam([p], lr=0.1) for p in ps]
    for n, g in enumerate(grads):
        if n == 3:
            opts[0].param_groups[0]["amsgrad"] = True
        for p, opt in zip(ps, opts, strict=True):
            p.grad = tn.tensor(g)
            opt.step()
    state = opts[0].state[ps[0]]
    np.testing.assert_array_equal(state["max_exp_avg_sq"].numpy(), state["exp_avg_sq"].numpy())
    # (amsgrad's rule groups its product differently: equal to rounding)
    np.testing.assert_allclose(ps[0].detach().numpy(), ps[1].detach().numpy(), rtol=1e-14,
                               atol=1e-14 * float(np.abs(ps[1].detach().numpy()).max()))

"""tinynet against PyTorch: the same weights, data and hyperparameters must give the same
numbers. Training runs 50 optimizer steps in float64 and compares every parameter to 1e-10
relative and 1e-10 of its tensor's largest entry (tests/tolerance.py); losses and their
gradients are compared for every reduction; state dicts move between the two libraries in
both directions."""

import math

import numpy as np
import pytest
from tolerance import assert_close

import tinynet as tn
from tinynet import nn, optim

torch = pytest.importorskip("torch")
TF = torch.nn.functional
F = nn.functional

RTOL = 1e-10
REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds overhead (a lot of it on a busy 2-core
    machine), and one thread makes its sums deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _torch_model(layers):
    """A torch.nn.Sequential mirroring a tinynet Sequential, with the same weights."""
    mirror = []
    for layer in layers:
        if isinstance(layer, nn.Linear):
            mirror.append(torch.nn.Linear(layer.in_features, layer.out_features,
                                          bias=layer.bias is not None, dtype=torch.float64))
        else:
            mirror.append({nn.Sigmoid: torch.nn.Sigmoid, nn.Tanh: torch.nn.Tanh,
                           nn.ReLU: torch.nn.ReLU}[type(layer)]())
    model = torch.nn.Sequential(*mirror)
    model.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in layers.state_dict().items()})
    return model


def _assert_same_parameters(ours, theirs, rtol=RTOL):
    theirs = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs)
    for key, value in ours.state_dict().items():
        assert_close(value, theirs[key], rtol, err_msg=key)


# ---- training: 50 steps, every optimizer setting --------------------------------------------

# name -> (layer builder, loss on (tinynet output, targets), the same in torch, target maker)
def _targets_regression(rng, n):
    return rng.standard_normal((n, 2))


def _targets_probability(rng, n):
    return rng.uniform(0, 1, (n, 2))


def _targets_class(rng, n):
    return rng.integers(0, 3, n)


MODELS = {
    "sigmoid-mse-mean": (
        lambda: [nn.Linear(4, 6, dtype=tn.float64), nn.Sigmoid(),
                 nn.Linear(6, 2, dtype=tn.float64)],
        lambda out, y: F.mse_loss(out, y),
        lambda out, y: TF.mse_loss(out, y),
        _targets_regression,
    ),
    "tanh-bce_logits-sum": (
        lambda: [nn.Linear(4, 5, dtype=tn.float64), nn.Tanh(), nn.Linear(5, 5, dtype=tn.float64),
                 nn.Tanh(), nn.Linear(5, 2, dtype=tn.float64)],
        lambda out, y: F.binary_cross_entropy_with_logits(out, y, reduction="sum"),
        lambda out, y: TF.binary_cross_entropy_with_logits(out, y, reduction="sum"),
        _targets_probability,
    ),
    "relu-cross_entropy-mean": (
        lambda: [nn.Linear(4, 8, dtype=tn.float64), nn.ReLU(), nn.Linear(8, 3, dtype=tn.float64)],
        lambda out, y: F.cross_entropy(out, y),
        lambda out, y: TF.cross_entropy(out, y),
        _targets_class,
    ),
    "sigmoid-bce-none": (
        lambda: [nn.Linear(4, 6, dtype=tn.float64), nn.ReLU(), nn.Linear(6, 2, dtype=tn.float64),
                 nn.Sigmoid()],
        lambda out, y: F.binary_cross_entropy(out, y, reduction="none").sum(),
        lambda out, y: TF.binary_cross_entropy(out, y, reduction="none").sum(),
        _targets_probability,
    ),
    "tanh-nll-sum": (
        lambda: [nn.Linear(4, 6, dtype=tn.float64), nn.Tanh(), nn.Linear(6, 3, dtype=tn.float64)],
        lambda out, y: F.nll_loss(F.log_softmax(out, dim=1), y, reduction="sum"),
        lambda out, y: TF.nll_loss(TF.log_softmax(out, dim=1), y, reduction="sum"),
        _targets_class,
    ),
}

OPTIMIZERS = {
    "sgd": ("SGD", {"lr": 0.1}),
    "sgd-momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}),
    "sgd-dampening-decay": ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3,
                                    "weight_decay": 0.01}),
    "sgd-nesterov-decay": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                                   "weight_decay": 0.001}),
    "adam": ("Adam", {"lr": 0.01}),
    "adam-decay": ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6,
                            "weight_decay": 0.05}),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_fifty_training_steps_match_pytorch(model_name, optimizer):
    build, loss_fn, torch_loss_fn, make_targets = MODELS[model_name]
    tn.manual_seed(0)
    ours = nn.Sequential(*build())
    theirs = _torch_model(ours)
    cls, options = OPTIMIZERS[optimizer]
    opt = getattr(optim, cls)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, cls)(theirs.parameters(), **options)
    rng = np.random.default_rng(1)
    for _ in range(50):
        x, y = rng.standard_normal((8, 4)), make_targets(rng, 8)
        opt.zero_grad()
        loss = loss_fn(ours(tn.tensor(x)), y)
        loss.backward()
        opt.step()
        torch_opt.zero_grad()
        torch_loss = torch_loss_fn(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        torch_loss.backward()
        torch_opt.step()
        assert loss.item() == pytest.approx(torch_loss.item(), rel=RTOL)
    _assert_same_parameters(ours, theirs)


def test_parameter_groups_with_their_own_options_match_pytorch():
    tn.manual_seed(2)
    ours = nn.Sequential(nn.Linear(3, 4, dtype=tn.float64), nn.Tanh(),
                         nn.Linear(4, 2, dtype=tn.float64))
    theirs = _torch_model(ours)
    groups = lambda m: [{"params": list(m[0].parameters()), "lr": 0.2},  # noqa: E731
                        {"params": list(m[2].parameters()), "weight_decay": 0.1}]
    opt = optim.SGD(groups(ours), lr=0.05, momentum=0.9)
    torch_opt = torch.optim.SGD(groups(theirs), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(3)
    for _ in range(50):
        x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
        opt.zero_grad()
        F.mse_loss(ours(tn.tensor(x)), y).backward()
        opt.step()
        torch_opt.zero_grad()
        TF.mse_loss(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        torch_opt.step()
    _assert_same_parameters(ours, theirs)


# ---- every loss and reduction: values and gradients -----------------------------------------

# Fixed inputs, drawn once at import from their own seed (no generator is left for tests):
_draw = np.random.default_rng(4)
X = _draw.standard_normal((5, 3))
P = _draw.uniform(0.02, 0.98, (5, 3))
T_REAL = _draw.standard_normal((5, 3))
T_PROB = _draw.uniform(0, 1, (5, 3))
T_CLASS = np.array([0, 2, 1, 2, 0])
T_IGNORED = np.array([0, -100, 1, 2, -100])
W_CLASS = np.array([0.5, 2.0, 1.5])
W_ELEM = _draw.uniform(0.5, 2, (5, 3))
POS = np.array([0.5, 1.0, 3.0])
X_SPATIAL = _draw.standard_normal((2, 3, 4))
T_SPATIAL = _draw.integers(0, 3, (2, 4))
del _draw

# name -> (tinynet call, torch call, input, target, whether the target gets a gradient)
LOSSES = {
    "mse": (F.mse_loss, TF.mse_loss, X, T_REAL, True),
    "bce": (F.binary_cross_entropy, TF.binary_cross_entropy, P, T_PROB, True),
    "bce-weight": (
        lambda x, t, reduction: F.binary_cross_entropy(x, t, W_ELEM, reduction),
        lambda x, t, reduction: TF.binary_cross_entropy(x, t, torch.from_numpy(W_ELEM),
                                                        reduction=reduction),
        P, T_PROB, True,
    ),
    "bce_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                   X * 4, T_PROB, True),
    "bce_logits-weight-pos_weight": (
        lambda x, t, reduction: F.binary_cross_entropy_with_logits(
            x, t, W_ELEM, reduction, pos_weight=POS),
        lambda x, t, reduction: TF.binary_cross_entropy_with_logits(
            x, t, torch.from_numpy(W_ELEM), reduction=reduction,
            pos_weight=torch.from_numpy(POS)),
        X * 4, T_PROB, True,
    ),
    "cross_entropy": (F.cross_entropy, TF.cross_entropy, X * 3, T_CLASS, False),
    "cross_entropy-weight-ignore": (
        lambda x, t, reduction: F.cross_entropy(x, t, W_CLASS, reduction=reduction),
        lambda x, t, reduction: TF.cross_entropy(x, t, torch.from_numpy(W_CLASS),
                                                 reduction=reduction),
        X * 3, T_IGNORED, False,
    ),
    "cross_entropy-spatial": (F.cross_entropy, TF.cross_entropy, X_SPATIAL, T_SPATIAL, False),
    "nll": (F.nll_loss, TF.nll_loss, X, T_CLASS, False),
    "nll-weight-ignore": (
        lambda x, t, reduction: F.nll_loss(x, t, W_CLASS, ignore_index=2, reduction=reduction),
        lambda x, t, reduction: TF.nll_loss(x, t, torch.from_numpy(W_CLASS), ignore_index=2,
                                            reduction=reduction),
        X, T_CLASS, False,
    ),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_value_and_gradients_match_pytorch(name, reduction):
    ours_fn, torch_fn, x, t, target_grad = LOSSES[name]
    x_ours = tn.tensor(x, requires_grad=True)
    x_torch = torch.tensor(x, requires_grad=True)
    if target_grad:
        t_ours, t_torch = tn.tensor(t, requires_grad=True), torch.tensor(t, requires_grad=True)
    else:
        t_ours, t_torch = t, torch.from_numpy(t)
    ours = ours_fn(x_ours, t_ours, reduction=reduction)
    theirs = torch_fn(x_torch, t_torch, reduction=reduction)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=RTOL, atol=1e-14)
    seed = np.random.default_rng(5).standard_normal(ours.shape)
    ours.backward(seed)
    theirs.backward(torch.from_numpy(seed))
    np.testing.assert_allclose(x_ours.grad.data, x_torch.grad.numpy(), rtol=RTOL, atol=1e-14)
    if target_grad:
        np.testing.assert_allclose(t_ours.grad.data, t_torch.grad.numpy(), rtol=RTOL,
                                   atol=1e-14)


def test_bce_at_exact_zero_and_one_matches_pytorch():
    x = np.array([0.0, 1.0, 1e-30, 1 - 1e-16, 0.5])
    t = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    x_ours, x_torch = tn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = F.binary_cross_entropy(x_ours, t, reduction="sum")
    theirs = TF.binary_cross_entropy(x_torch, torch.from_numpy(t), reduction="sum")
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=RTOL)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(x_ours.grad.data, x_torch.grad.numpy(), rtol=RTOL)


# ---- initialisation ------------------------------------------------------------------------


def _max_abs(tensor):
    return float(np.abs(np.asarray(tensor.detach() if hasattr(tensor, "detach") and not
                                   isinstance(tensor, tn.Tensor) else tensor.data)).max())


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda w: nn.init.xavier_uniform_(w, gain=1.5),
         lambda w: torch.nn.init.xavier_uniform_(w, gain=1.5)),
        (lambda w: nn.init.kaiming_uniform_(w), lambda w: torch.nn.init.kaiming_uniform_(w)),
        (lambda w: nn.init.kaiming_uniform_(w, a=0.3, mode="fan_out"),
         lambda w: torch.nn.init.kaiming_uniform_(w, a=0.3, mode="fan_out")),
        (lambda w: nn.init.kaiming_uniform_(w, nonlinearity="tanh"),
         lambda w: torch.nn.init.kaiming_uniform_(w, nonlinearity="tanh")),
        (lambda w: nn.init.uniform_(w, -0.3, 0.7), lambda w: torch.nn.init.uniform_(w, -0.3, 0.7)),
    ],
)
def test_uniform_initialisers_use_pytorchs_bounds(ours, theirs):
    w_ours, w_torch = tn.zeros(150, 250, dtype=tn.float64), torch.zeros(150, 250,
                                                                        dtype=torch.float64)
    ours(w_ours)
    theirs(w_torch)
    lo, hi = w_ours.data.min(), w_ours.data.max()
    t_lo, t_hi = w_torch.min().item(), w_torch.max().item()
    # 37,500 samples: both extremes lie within 0.05% of the true bounds.
    span = t_hi - t_lo
    assert abs(lo - t_lo) < 1e-3 * span and abs(hi - t_hi) < 1e-3 * span


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda w: nn.init.xavier_normal_(w, gain=0.5),
         lambda w: torch.nn.init.xavier_normal_(w, gain=0.5)),
        (lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
         lambda w: torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")),
        (lambda w: nn.init.normal_(w, 1.0, 0.2), lambda w: torch.nn.init.normal_(w, 1.0, 0.2)),
    ],
)
def test_normal_initialisers_use_pytorchs_std(ours, theirs):
    tn.manual_seed(0)
    torch.manual_seed(0)
    w_ours, w_torch = tn.zeros(200, 300, dtype=tn.float64), torch.zeros(200, 300,
                                                                        dtype=torch.float64)
    ours(w_ours)
    theirs(w_torch)
    # two independent samples of n: their stds differ by std/sqrt(n) and their means by
    # std*sqrt(2/n) (one standard error); allow 5
    n, spread = w_ours.data.size, w_torch.std().item()
    assert abs(w_ours.data.std() - spread) < 5 * spread / math.sqrt(n)
    assert abs(w_ours.data.mean() - w_torch.mean().item()) < 5 * spread * math.sqrt(2 / n)


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
     ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)],
)
def test_calculate_gain_matches_pytorch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def test_linear_default_init_has_pytorchs_range():
    tn.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = nn.Linear(300, 200), torch.nn.Linear(300, 200)
    for name in ("weight", "bias"):
        a = getattr(ours, name).data
        b = getattr(theirs, name).detach().numpy()
        assert a.dtype == b.dtype == np.float32
        assert np.abs(a).max() <= 1 / math.sqrt(300) and np.abs(b).max() <= 1 / math.sqrt(300)
        assert a.std() == pytest.approx(b.std(), rel=0.1 if name == "bias" else 0.02)


# ---- state dicts between the two libraries --------------------------------------------------


@pytest.mark.parametrize("source", [np.float64, np.float16, np.int64])
def test_load_state_dict_casts_to_the_models_dtype_as_pytorch(source):
    """PyTorch's load_state_dict copies with copy_, which casts: float64 (or float16, or
    integer) values load into a float32 model, which stays float32, with the same numbers."""
    tn.manual_seed(5)
    ours = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    rng = np.random.default_rng(6)
    state = {k: (rng.standard_normal(v.shape) * 3).astype(source)
             for k, v in ours.state_dict().items()}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].dtype == value.numpy().dtype == np.float32
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())
    x = rng.standard_normal((5, 3)).astype(np.float32)
    assert ours(tn.tensor(x)).dtype == np.float32
    assert_close(ours(tn.tensor(x)), theirs(torch.from_numpy(x)), 1e-6)


def test_state_dict_round_trip_tinynet_torch_tinynet():
    tn.manual_seed(7)
    ours = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.Tanh(),
                         nn.Linear(4, 2), nn.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4),
                                 torch.nn.Tanh(), torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    assert repr(ours) == repr(theirs)
    result = theirs.load_state_dict({k: torch.from_numpy(v.numpy())
                                     for k, v in ours.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    x = np.random.default_rng(8).standard_normal((6, 3)).astype(np.float32)
    assert_close(ours(tn.tensor(x)), theirs(torch.from_numpy(x)), 1e-6)
    # Train the torch copy a little, then bring its weights back.
    torch_opt = torch.optim.SGD(theirs.parameters(), lr=0.5)
    TF.mse_loss(theirs(torch.from_numpy(x)), torch.zeros(6, 2)).backward()
    torch_opt.step()
    back = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.Tanh(),
                         nn.Linear(4, 2), nn.Sigmoid())
    back.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value.numpy())
    back.load_state_dict(theirs.state_dict())  # torch tensors are accepted directly too
    assert_close(back(tn.tensor(x)), theirs(torch.from_numpy(x)), 1e-6)


@pytest.mark.parametrize(
    ("cls", "options"),
    [("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
     ("Adam", {"lr": 0.01, "weight_decay": 0.01})],
)
def test_optimizer_state_moves_between_tinynet_and_torch(cls, options):
    tn.manual_seed(9)
    ours = nn.Sequential(nn.Linear(3, 4, dtype=tn.float64), nn.Tanh(),
                         nn.Linear(4, 2, dtype=tn.float64))
    theirs = _torch_model(ours)
    opt = getattr(optim, cls)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, cls)(theirs.parameters(), **options)
    rng = np.random.default_rng(10)
    batches = [(rng.standard_normal((5, 3)), rng.standard_normal((5, 2))) for _ in range(20)]

    def train_ours(batch_range):
        for x, y in batches[batch_range]:
            opt.zero_grad()
            F.mse_loss(ours(tn.tensor(x)), y).backward()
            opt.step()

    def train_theirs(batch_range):
        for x, y in batches[batch_range]:
            torch_opt.zero_grad()
            TF.mse_loss(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            torch_opt.step()

    # tinynet trains first; torch continues from tinynet's weights and optimizer state.
    train_ours(slice(0, 5))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    sd = opt.state_dict()
    torch_opt.load_state_dict({
        "state": {i: {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                      for k, v in entry.items()} for i, entry in sd["state"].items()},
        "param_groups": sd["param_groups"],
    })
    train_ours(slice(5, 10))
    train_theirs(slice(5, 10))
    _assert_same_parameters(ours, theirs)
    # And back: tinynet continues from torch's state dict as torch gives it.
    train_theirs(slice(10, 15))
    ours.load_state_dict(theirs.state_dict())
    opt.load_state_dict(torch_opt.state_dict())
    train_ours(slice(15, 20))
    train_theirs(slice(15, 20))
    _assert_same_parameters(ours, theirs)

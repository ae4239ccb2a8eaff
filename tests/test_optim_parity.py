"""RMSprop, Adagrad, AdamW and Adam's amsgrad/maximize against PyTorch: 50 steps in float64
agree to 1e-10 relative (parameters and every state tensor), float32 stays float32, and
optimizer state dicts move between tinynet and PyTorch in both directions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerance import assert_close

import tinynet as tn
from tinynet import nn, optim

torch = pytest.importorskip("torch")
F = nn.functional
TF = torch.nn.functional

RTOL = 1e-10
STEPS = 50


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _models(dtype=tn.float64, seed=0):
    """A tinynet MLP and a torch copy with the same weights."""
    tn.manual_seed(seed)
    ours = nn.Sequential(nn.Linear(4, 6, dtype=dtype), nn.Tanh(), nn.Linear(6, 2, dtype=dtype))
    torch_dtype = {np.float64: torch.float64, np.float32: torch.float32}[np.dtype(dtype).type]
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6, dtype=torch_dtype), torch.nn.Tanh(),
                                 torch.nn.Linear(6, 2, dtype=torch_dtype))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    return ours, theirs


def _batches(n, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((8, 4)).astype(dtype), rng.standard_normal((8, 2)).astype(dtype))
            for _ in range(n)]


def _step_ours(model, opt, x, y):
    opt.zero_grad()
    loss = F.mse_loss(model(tn.tensor(x)), tn.tensor(y))
    loss.backward()
    opt.step()
    return loss.item()


def _step_theirs(model, opt, x, y):
    opt.zero_grad()
    loss = TF.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    opt.step()
    return loss.item()


def _assert_same(ours, theirs, opt, torch_opt, rtol=RTOL):
    for key, value in ours.state_dict().items():
        assert_close(value, theirs.state_dict()[key], rtol, err_msg=key)
    ours_state, their_state = opt.state_dict()["state"], torch_opt.state_dict()["state"]
    assert sorted(ours_state) == sorted(their_state)
    for index, entry in their_state.items():
        assert list(ours_state[index]) == list(entry), index  # same keys, same order
        for key, value in entry.items():
            assert_close(ours_state[index][key], value, rtol, err_msg=f"state[{index}][{key}]")


# (tinynet/torch class name, options) -- every option of each optimizer, alone and combined
CASES = {
    "rmsprop": ("RMSprop", {}),
    "rmsprop-alpha-eps": ("RMSprop", {"lr": 0.005, "alpha": 0.9, "eps": 1e-6}),
    "rmsprop-momentum": ("RMSprop", {"lr": 0.002, "momentum": 0.9}),
    "rmsprop-centered": ("RMSprop", {"lr": 0.003, "centered": True}),
    "rmsprop-centered-momentum-decay": ("RMSprop", {"lr": 0.002, "momentum": 0.8,
                                                    "centered": True, "weight_decay": 0.05,
                                                    "alpha": 0.95}),
    "rmsprop-maximize": ("RMSprop", {"lr": 0.001, "maximize": True, "momentum": 0.5}),
    "adagrad": ("Adagrad", {}),
    "adagrad-lr_decay-decay-initial": ("Adagrad", {"lr": 0.05, "lr_decay": 0.01,
                                                   "weight_decay": 0.1,
                                                   "initial_accumulator_value": 0.5,
                                                   "eps": 1e-8}),
    "adagrad-maximize": ("Adagrad", {"lr": 0.01, "maximize": True}),
    "adam-amsgrad": ("Adam", {"lr": 0.01, "amsgrad": True}),
    "adam-amsgrad-decay": ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6,
                                    "weight_decay": 0.05, "amsgrad": True}),
    "adam-maximize": ("Adam", {"lr": 0.005, "maximize": True, "weight_decay": 0.01}),
    "adam-decoupled": ("Adam", {"lr": 0.01, "weight_decay": 0.1,
                                "decoupled_weight_decay": True}),
    "adamw": ("AdamW", {}),
    "adamw-decay": ("AdamW", {"lr": 0.02, "betas": (0.85, 0.98), "weight_decay": 0.1}),
    "adamw-amsgrad-maximize": ("AdamW", {"lr": 0.003, "amsgrad": True, "maximize": True}),
    "sgd-maximize": ("SGD", {"lr": 0.01, "momentum": 0.9, "maximize": True}),
    "adadelta": ("Adadelta", {}),
    "adadelta-rho-eps": ("Adadelta", {"lr": 0.5, "rho": 0.5, "eps": 1e-4}),
    "adadelta-decay-maximize": ("Adadelta", {"lr": 2.0, "weight_decay": 0.1, "maximize": True,
                                             "rho": 0.95}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fifty_steps_match_pytorch_in_float64(case):
    cls, options = CASES[case]
    ours, theirs = _models()
    opt = getattr(optim, cls)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, cls)(theirs.parameters(), **options)
    for x, y in _batches(STEPS):
        loss = _step_ours(ours, opt, x, y)
        assert loss == pytest.approx(_step_theirs(theirs, torch_opt, x, y), rel=RTOL)
    _assert_same(ours, theirs, opt, torch_opt)
    if cls != "SGD":  # SGD keeps only a momentum buffer
        assert opt.state_dict()["state"][0]["step"] == STEPS


@pytest.mark.parametrize("cls", ["RMSprop", "Adagrad", "AdamW", "Adadelta"])
def test_parameter_groups_with_their_own_options_match_pytorch(cls):
    ours, theirs = _models(seed=4)
    extra = {"RMSprop": {"momentum": 0.7, "centered": True}, "Adagrad": {"lr_decay": 0.05},
             "AdamW": {"weight_decay": 0.3, "amsgrad": True},
             "Adadelta": {"rho": 0.8, "weight_decay": 0.2}}[cls]

    def groups(m):
        return [{"params": list(m[0].parameters()), "lr": 0.004, **extra},
                {"params": list(m[2].parameters())}]

    opt = getattr(optim, cls)(groups(ours), lr=0.01)
    torch_opt = getattr(torch.optim, cls)(groups(theirs), lr=0.01)
    for x, y in _batches(STEPS, seed=5):
        _step_ours(ours, opt, x, y)
        _step_theirs(theirs, torch_opt, x, y)
    _assert_same(ours, theirs, opt, torch_opt)


def test_parameters_without_gradients_keep_their_state_as_in_pytorch():
    """A parameter whose grad is None is skipped: no step count, no decay (Adagrad's eager
    state stays at its initial value)."""
    ours, theirs = _models(seed=6)
    opt = optim.Adagrad(ours.parameters(), lr=0.1, initial_accumulator_value=0.2)
    torch_opt = torch.optim.Adagrad(theirs.parameters(), lr=0.1, initial_accumulator_value=0.2)
    for x, y in _batches(5, seed=7):
        _step_ours(ours, opt, x, y)
        _step_theirs(theirs, torch_opt, x, y)
        ours[2].bias.grad = None
        theirs[2].bias.grad = None
        opt.step()
        torch_opt.step()
    _assert_same(ours, theirs, opt, torch_opt)


@pytest.mark.parametrize("case", ["rmsprop-centered-momentum-decay",
                                  "adagrad-lr_decay-decay-initial", "adam-amsgrad-decay",
                                  "adamw-amsgrad-maximize", "adadelta-decay-maximize"])
def test_float32_stays_float32_and_matches_pytorch(case):
    cls, options = CASES[case]
    ours, theirs = _models(dtype=tn.float32)
    opt = getattr(optim, cls)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, cls)(theirs.parameters(), **options)
    for x, y in _batches(10, dtype=np.float32):
        _step_ours(ours, opt, x, y)
        _step_theirs(theirs, torch_opt, x, y)
    for p in ours.parameters():
        assert p.dtype == np.float32
        for key, value in opt.state[p].items():
            if key != "step":
                assert value.dtype == np.float32, key
    _assert_same(ours, theirs, opt, torch_opt, rtol=2e-5)


def _torch_state(sd):
    """A tinynet optimizer state dict as torch tensors (torch keeps non-tensors as they are)."""
    return {"state": {i: {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                          for k, v in entry.items()} for i, entry in sd["state"].items()},
            "param_groups": sd["param_groups"]}


@pytest.mark.parametrize("case", ["rmsprop-centered-momentum-decay",
                                  "adagrad-lr_decay-decay-initial", "adam-amsgrad-decay",
                                  "adamw-decay", "adamw-amsgrad-maximize", "sgd-maximize",
                                  "adadelta-decay-maximize"])
def test_state_dict_moves_between_tinynet_and_pytorch(case):
    cls, options = CASES[case]
    ours, theirs = _models(seed=9)
    opt = getattr(optim, cls)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, cls)(theirs.parameters(), **options)
    batches = _batches(20, seed=10)
    # tinynet trains first; torch continues from tinynet's weights and optimizer state
    for x, y in batches[:5]:
        _step_ours(ours, opt, x, y)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    torch_opt.load_state_dict(_torch_state(opt.state_dict()))
    for x, y in batches[5:10]:
        _step_ours(ours, opt, x, y)
        _step_theirs(theirs, torch_opt, x, y)
    _assert_same(ours, theirs, opt, torch_opt)
    # and back: tinynet continues from torch's state dict as torch gives it
    for x, y in batches[10:15]:
        _step_theirs(theirs, torch_opt, x, y)
    ours.load_state_dict(theirs.state_dict())
    opt.load_state_dict(torch_opt.state_dict())
    for x, y in batches[15:]:
        _step_ours(ours, opt, x, y)
        _step_theirs(theirs, torch_opt, x, y)
    _assert_same(ours, theirs, opt, torch_opt)


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_layout_is_pytorchs(case):
    """Same state keys, same group options, minus PyTorch's execution switches (foreach,
    fused, capturable, differentiable), which choose how PyTorch runs the same maths."""
    cls, options = CASES[case]
    ours, theirs = _models()
    opt = getattr(optim, cls)(ours.parameters(), **options)
    torch_opt = getattr(torch.optim, cls)(theirs.parameters(), **options)
    x, y = _batches(1)[0]
    _step_ours(ours, opt, x, y)
    _step_theirs(theirs, torch_opt, x, y)
    sd, torch_sd = opt.state_dict(), torch_opt.state_dict()
    switches = {"foreach", "fused", "capturable", "differentiable"}
    assert [list(g) for g in sd["param_groups"]] == [
        [k for k in g if k not in switches] for g in torch_sd["param_groups"]]
    for ours_group, their_group in zip(sd["param_groups"], torch_sd["param_groups"], strict=True):
        for key, value in ours_group.items():
            assert value == their_group[key], key
    assert {i: list(e) for i, e in sd["state"].items()} == {
        i: list(e) for i, e in torch_sd["state"].items()}


def test_adagrad_state_exists_before_the_first_step_as_in_pytorch():
    ours, theirs = _models()
    sd = optim.Adagrad(ours.parameters(), initial_accumulator_value=0.3).state_dict()
    torch_sd = torch.optim.Adagrad(theirs.parameters(), initial_accumulator_value=0.3).state_dict()
    assert sorted(sd["state"]) == sorted(torch_sd["state"]) == [0, 1, 2, 3]
    for i, entry in torch_sd["state"].items():
        assert sd["state"][i]["step"] == entry["step"].item() == 0
        np.testing.assert_array_equal(sd["state"][i]["sum"], entry["sum"].numpy())


def test_adamw_is_adam_with_decoupled_weight_decay():
    a, _ = _models(seed=11)
    b, _ = _models(seed=11)
    opt_a = optim.AdamW(a.parameters(), lr=0.01)
    opt_b = optim.Adam(b.parameters(), lr=0.01, weight_decay=0.01, decoupled_weight_decay=True)
    for x, y in _batches(5):
        _step_ours(a, opt_a, x, y)
        _step_ours(b, opt_b, x, y)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
    assert opt_a.param_groups[0]["decoupled_weight_decay"] is True
    assert isinstance(opt_a, optim.Adam)


def test_adamw_keeps_decoupled_weight_decay_when_loading_a_state_without_it():
    ours, _ = _models()
    opt = optim.AdamW(ours.parameters())
    sd = opt.state_dict()
    sd["param_groups"][0]["decoupled_weight_decay"] = False
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True  # as torch's AdamW


@pytest.mark.parametrize(
    ("make", "torch_make", "match"),
    [
        (lambda p: optim.RMSprop(p, alpha=-0.1), lambda p: torch.optim.RMSprop(p, alpha=-0.1),
         "Invalid alpha value"),
        (lambda p: optim.RMSprop(p, momentum=-1), lambda p: torch.optim.RMSprop(p, momentum=-1),
         "Invalid momentum value"),
        (lambda p: optim.RMSprop(p, eps=-1), lambda p: torch.optim.RMSprop(p, eps=-1),
         "Invalid epsilon value"),
        (lambda p: optim.Adagrad(p, lr_decay=-1), lambda p: torch.optim.Adagrad(p, lr_decay=-1),
         "Invalid lr_decay value"),
        (lambda p: optim.Adagrad(p, initial_accumulator_value=-1),
         lambda p: torch.optim.Adagrad(p, initial_accumulator_value=-1),
         "Invalid initial_accumulator_value value"),
        (lambda p: optim.AdamW(p, weight_decay=-1), lambda p: torch.optim.AdamW(p, weight_decay=-1),
         "Invalid weight_decay value"),
        (lambda p: optim.Adadelta(p, rho=1.5), lambda p: torch.optim.Adadelta(p, rho=1.5),
         "Invalid rho value"),
        (lambda p: optim.Adadelta(p, lr=-1), lambda p: torch.optim.Adadelta(p, lr=-1),
         "Invalid learning rate"),
        (lambda p: optim.AdamW(p, betas=(0.9, 1.0)),
         lambda p: torch.optim.AdamW(p, betas=(0.9, 1.0)),
         "Invalid beta parameter at index 1"),
    ],
)
def test_invalid_hyperparameters_raise_valueerror_as_in_pytorch(make, torch_make, match):
    with pytest.raises(ValueError, match=match):
        torch_make([torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(tn.ValueRangeError, match=match):
        make([nn.Parameter(tn.ones(2))])


@pytest.mark.parametrize("cls", ["RMSprop", "Adagrad", "Adam", "AdamW", "SGD", "Adadelta"])
def test_argument_names_order_kinds_and_defaults_are_pytorchs(cls):
    import inspect

    ours = inspect.signature(getattr(optim, cls)).parameters.values()
    theirs = inspect.signature(getattr(torch.optim, cls)).parameters.values()
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in theirs]


@pytest.mark.parametrize("cls", ["RMSprop", "Adagrad", "Adam", "AdamW", "SGD", "Adadelta"])
def test_execution_switches_are_accepted_and_change_nothing(cls):
    """foreach/fused choose PyTorch's kernels: accepted, no effect, not stored."""
    switches = {"foreach": True}
    if cls not in ("RMSprop", "Adadelta"):  # they have no fused kernel in PyTorch
        switches["fused"] = False
    a, _ = _models(seed=12)
    b, _ = _models(seed=12)
    opt_a = getattr(optim, cls)(a.parameters(), lr=0.01)
    opt_b = getattr(optim, cls)(b.parameters(), lr=0.01, **switches)
    for x, y in _batches(3):
        _step_ours(a, opt_a, x, y)
        _step_ours(b, opt_b, x, y)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
    assert opt_a.state_dict()["param_groups"] == opt_b.state_dict()["param_groups"]
    with pytest.raises(tn.ValueRangeError, match="differentiable=True is not supported"):
        getattr(optim, cls)(a.parameters(), differentiable=True)
    with pytest.raises(tn.DTypeError, match="foreach must be None, True or False"):
        getattr(optim, cls)(a.parameters(), foreach="yes")


_DRAWN_OPTIONS = {
    "RMSprop": st.fixed_dictionaries({
        # alpha=0 with centered=True is left out: v - gm^2 = g^2 - g^2 cancels exactly and
        # PyTorch's fused multiply-add turns the rounding of g^2 into a NaN (see RMSprop)
        "lr": st.sampled_from([1e-3, 0.01, 0.1]), "alpha": st.sampled_from([0.3, 0.5, 0.99]),
        "eps": st.sampled_from([0.0, 1e-8, 0.1]), "weight_decay": st.sampled_from([0, 0.1]),
        "momentum": st.sampled_from([0, 0.5, 0.9]), "centered": st.booleans(),
        "maximize": st.booleans()}),
    "Adagrad": st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 0.1, 1.0]), "lr_decay": st.sampled_from([0, 0.1, 2.0]),
        "weight_decay": st.sampled_from([0, 0.1]),
        "initial_accumulator_value": st.sampled_from([0, 0.1, 3.0]),
        "eps": st.sampled_from([1e-10, 0.0, 0.5]), "maximize": st.booleans()}),
    "Adam": st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 0.1]),
        "betas": st.sampled_from([(0.9, 0.999), (0.0, 0.5), (0.5, 0.0), (0.99, 0.9)]),
        "eps": st.sampled_from([1e-8, 0.1]), "weight_decay": st.sampled_from([0, 0.3]),
        "amsgrad": st.booleans(), "maximize": st.booleans(),
        "decoupled_weight_decay": st.booleans()}),
    "AdamW": st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 0.1]), "weight_decay": st.sampled_from([0, 0.01, 0.5]),
        "amsgrad": st.booleans(), "maximize": st.booleans()}),
    "Adadelta": st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 1.0, 5.0]), "rho": st.sampled_from([0.0, 0.5, 0.9, 1.0]),
        "eps": st.sampled_from([1e-6, 0.0, 0.1]), "weight_decay": st.sampled_from([0, 0.1]),
        "maximize": st.booleans()}),
}


@settings(max_examples=80, deadline=None)
@given(data=st.data(), cls=st.sampled_from(list(_DRAWN_OPTIONS)),
       start=hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-3, 3)),
       zero_grad_steps=st.sets(st.integers(0, 9), max_size=3))
def test_drawn_options_match_pytorch_for_ten_steps(data, cls, start, zero_grad_steps):
    """Every option combination, including edge values (alpha=0, eps=0, beta=0) and steps
    where the gradient is exactly 0; NaN where PyTorch gives NaN."""
    options = data.draw(_DRAWN_OPTIONS[cls])
    p = nn.Parameter(tn.tensor(start.copy()))
    q = torch.nn.Parameter(torch.from_numpy(start.copy()))
    opt = getattr(optim, cls)([p], **options)
    torch_opt = getattr(torch.optim, cls)([q], **options)
    weights = np.linspace(0.5, 2.0, start.size)
    for step in range(10):
        scale = 0.0 if step in zero_grad_steps else 1.0
        p.grad = tn.tensor(scale * (weights * p.data - 1.0))
        q.grad = torch.from_numpy(scale * (weights * q.detach().numpy() - 1.0))
        with np.errstate(all="ignore"):
            opt.step()
        torch_opt.step()
        assert_close(p.data, q, 1e-10)

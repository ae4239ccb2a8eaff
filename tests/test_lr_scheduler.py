"""tinynet.optim.lr_scheduler against torch.optim.lr_scheduler: the same learning rates at
every epoch (recursive and closed forms, resumed schedules, ReduceLROnPlateau's patience,
threshold, cooldown, min_lr and eps), the same state dicts, moving in both directions, and
load_state_dict refusing what does not fit without changing anything."""

import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import approx, assert_close

import tinynet as tn
from tinynet import nn, optim
from tinynet.optim import lr_scheduler

torch = pytest.importorskip("torch")
F = nn.functional
TF = torch.nn.functional

RTOL = 1e-10
EPOCHS = 50


class Halve:
    """A callable object with state (LambdaLR saves its __dict__)."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


# name -> (scheduler class name, options); options may hold callables made per optimizer
SCHEDULES = {
    "step": ("StepLR", {"step_size": 7}),
    "step-gamma": ("StepLR", {"step_size": 3, "gamma": 0.7}),
    "multistep": ("MultiStepLR", {"milestones": [5, 12, 12, 30]}),
    "multistep-gamma": ("MultiStepLR", {"milestones": [1, 2, 40], "gamma": 0.5}),
    "exponential": ("ExponentialLR", {"gamma": 0.93}),
    "cosine": ("CosineAnnealingLR", {"T_max": 10}),  # 50 epochs: up and down 2.5 times
    "cosine-eta_min": ("CosineAnnealingLR", {"T_max": 17, "eta_min": 0.001}),
    "lambda": ("LambdaLR", {"lr_lambda": lambda epoch: 1 / (1 + 0.1 * epoch)}),
    "lambda-per-group": ("LambdaLR", {"lr_lambda": [lambda epoch: 0.95 ** epoch, Halve(4)]}),
}


def _optimizers(lrs=(0.1, 0.03)):
    """A tinynet SGD and a torch SGD, two parameter groups each."""
    ours = optim.SGD([{"params": [nn.Parameter(tn.ones(2))], "lr": lrs[0]},
                      {"params": [nn.Parameter(tn.ones(3))], "lr": lrs[1]}], lr=0.5)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lrs[0]},
                              {"params": [torch.nn.Parameter(torch.ones(3))], "lr": lrs[1]}],
                             lr=0.5)
    return ours, theirs


def _schedulers(name, ours, theirs, **extra):
    cls, options = SCHEDULES[name]
    return (getattr(lr_scheduler, cls)(ours, **options, **extra),
            getattr(torch.optim.lr_scheduler, cls)(theirs, **options, **extra))


def _lr_scale(torch_opt):
    """A schedule computes each learning rate from the group's initial one, so its rounding is
    sized by that: a cosine schedule's lr at the bottom is 0 in one library and 1e-18 in the
    other."""
    return max(g.get("initial_lr", g["lr"]) for g in torch_opt.param_groups)


def _assert_lrs_equal(sched, torch_sched, opt, torch_opt):
    scale = _lr_scale(torch_opt)
    assert sched.get_last_lr() == approx(torch_sched.get_last_lr(), RTOL, scale=scale)
    assert [g["lr"] for g in opt.param_groups] == approx(
        [g["lr"] for g in torch_opt.param_groups], RTOL, scale=scale)
    assert sched.last_epoch == torch_sched.last_epoch


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_fifty_epochs_give_pytorchs_learning_rates(name):
    opt, torch_opt = _optimizers()
    sched, torch_sched = _schedulers(name, opt, torch_opt)
    _assert_lrs_equal(sched, torch_sched, opt, torch_opt)
    seen = set()
    for _ in range(EPOCHS):
        opt.step()
        torch_opt.step()
        sched.step()
        torch_sched.step()
        _assert_lrs_equal(sched, torch_sched, opt, torch_opt)
        seen.add(round(sched.get_last_lr()[0], 12))
    assert len(seen) > 2  # the schedule did change the rate


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_step_with_an_epoch_uses_the_closed_form_as_pytorch(name):
    opt, torch_opt = _optimizers()
    sched, torch_sched = _schedulers(name, opt, torch_opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [3, 4, 10, 9, 27, 0, 44]:
            opt.step()
            torch_opt.step()
            sched.step(epoch)
            torch_sched.step(epoch)
            _assert_lrs_equal(sched, torch_sched, opt, torch_opt)


def test_step_with_an_epoch_warns_as_pytorch():
    opt, _ = _optimizers()
    sched = lr_scheduler.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        sched.step(4)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_a_schedule_resumed_with_last_epoch_continues_as_pytorchs(name):
    opt, torch_opt = _optimizers()
    for group, torch_group in zip(opt.param_groups, torch_opt.param_groups, strict=True):
        group["initial_lr"] = torch_group["initial_lr"] = group["lr"] * 2
    sched, torch_sched = _schedulers(name, opt, torch_opt, last_epoch=12)
    _assert_lrs_equal(sched, torch_sched, opt, torch_opt)
    for _ in range(20):
        opt.step()
        torch_opt.step()
        sched.step()
        torch_sched.step()
        _assert_lrs_equal(sched, torch_sched, opt, torch_opt)


def test_resuming_without_initial_lr_raises_keyerror_as_pytorch():
    opt, torch_opt = _optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        torch.optim.lr_scheduler.StepLR(torch_opt, 3, last_epoch=4)
    with pytest.raises(KeyError) as info:
        lr_scheduler.StepLR(opt, 3, last_epoch=4)
    assert isinstance(info.value, tn.TinynetError)
    assert "param 'initial_lr' is not specified in param_groups[0]" in str(info.value)
    assert not str(info.value).startswith('"')  # readable, not KeyError's quoted repr


def test_a_schedule_drives_training_exactly_as_in_pytorch():
    """Adam + CosineAnnealingLR for 50 steps in float64: the same weights to 1e-10."""
    tn.manual_seed(0)
    ours = nn.Sequential(nn.Linear(3, 5, dtype=tn.float64), nn.Tanh(),
                         nn.Linear(5, 1, dtype=tn.float64))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5, dtype=torch.float64), torch.nn.Tanh(),
                                 torch.nn.Linear(5, 1, dtype=torch.float64))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    opt, torch_opt = optim.Adam(ours.parameters(), lr=0.05), \
        torch.optim.Adam(theirs.parameters(), lr=0.05)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=20, eta_min=1e-3)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=20, eta_min=1e-3)
    rng = np.random.default_rng(1)
    for _ in range(EPOCHS):
        x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
        opt.zero_grad()
        F.mse_loss(ours(tn.tensor(x)), y).backward()
        opt.step()
        sched.step()
        torch_opt.zero_grad()
        TF.mse_loss(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        torch_opt.step()
        torch_sched.step()
    for key, value in ours.state_dict().items():
        assert_close(value, theirs.state_dict()[key], RTOL, err_msg=key)


# ---- ReduceLROnPlateau ------------------------------------------------------------------------

PLATEAUS = {
    "defaults": {},
    "patience-0": {"patience": 0},
    "patience-cooldown": {"patience": 2, "cooldown": 3, "factor": 0.5},
    "threshold-rel": {"patience": 1, "threshold": 0.05},
    "threshold-abs": {"patience": 1, "threshold": 0.3, "threshold_mode": "abs"},
    "max-rel": {"mode": "max", "patience": 2, "threshold": 0.01},
    "max-abs-cooldown": {"mode": "max", "patience": 1, "threshold": 0.2,
                         "threshold_mode": "abs", "cooldown": 2},
    "min_lr": {"patience": 0, "factor": 0.5, "min_lr": 0.01},
    "min_lr-per-group": {"patience": 1, "factor": 0.3, "min_lr": [0.02, 0.001]},
    "eps": {"patience": 0, "factor": 0.9, "eps": 0.005},
}


def _metrics(n=EPOCHS, seed=0):
    """Noisy, mostly flat losses with a few real improvements and exact ties."""
    rng = np.random.default_rng(seed)
    values = 1 + 0.1 * rng.standard_normal(n)
    values[10:14] = values[9]  # ties: not better
    values[30] = 0.2  # a big improvement
    return [float(v) for v in values]


@pytest.mark.parametrize("name", list(PLATEAUS))
def test_reduce_lr_on_plateau_follows_pytorch(name):
    options = PLATEAUS[name]
    opt, torch_opt = _optimizers()
    sched = lr_scheduler.ReduceLROnPlateau(opt, **options)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **options)
    lrs = set()
    for metric in _metrics():
        opt.step()
        torch_opt.step()
        sched.step(metric)
        torch_sched.step(torch.tensor(metric, dtype=torch.float64))
        _assert_lrs_equal(sched, torch_sched, opt, torch_opt)
        for key in ("best", "num_bad_epochs", "cooldown_counter"):
            assert getattr(sched, key) == getattr(torch_sched, key), key
        lrs.add(sched.get_last_lr()[0])
    assert len(lrs) > 1 or name == "defaults"  # a reduction happened


def test_reduce_lr_on_plateau_takes_a_tensor_metric_and_refuses_a_non_number():
    opt, _ = _optimizers()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(tn.tensor(1.0))
    sched.step(tn.tensor([2.0]))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.003])
    with pytest.raises(TypeError, match="metrics must be a number"):
        sched.step("low")


@pytest.mark.parametrize(
    ("options", "match"),
    [({"factor": 1.0}, "Factor should be < 1.0"), ({"mode": "lowest"}, "mode 'lowest'"),
     ({"threshold_mode": "ratio"}, "threshold mode 'ratio'"),
     ({"min_lr": [0.1]}, "expected 2 min_lrs, got 1")],
)
def test_reduce_lr_on_plateau_refuses_what_pytorch_refuses(options, match):
    opt, torch_opt = _optimizers()
    with pytest.raises(ValueError):
        torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **options)
    with pytest.raises(tn.ValueRangeError, match=match):
        lr_scheduler.ReduceLROnPlateau(opt, **options)


# ---- state dicts ------------------------------------------------------------------------------

ALL = [*SCHEDULES, *(f"plateau-{name}" for name in ("patience-cooldown", "min_lr-per-group",
                                                    "max-abs-cooldown"))]


def _make(name, opt, torch_opt):
    if name.startswith("plateau-"):
        options = PLATEAUS[name.removeprefix("plateau-")]
        return (lr_scheduler.ReduceLROnPlateau(opt, **options),
                torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **options))
    return _schedulers(name, opt, torch_opt)


def _advance(sched, opt, epoch):
    opt.step()
    plateaus = lr_scheduler.ReduceLROnPlateau | torch.optim.lr_scheduler.ReduceLROnPlateau
    if isinstance(sched, plateaus):
        sched.step(_metrics()[epoch])
    else:
        sched.step()


@pytest.mark.parametrize("name", ALL)
def test_state_dict_layout_is_pytorchs(name):
    opt, torch_opt = _optimizers()
    sched, torch_sched = _make(name, opt, torch_opt)
    for epoch in range(13):
        _advance(sched, opt, epoch)
        _advance(torch_sched, torch_opt, epoch)
    ours, theirs = sched.state_dict(), torch_sched.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if isinstance(value, float) or key in ("base_lrs", "_last_lr", "min_lrs"):
            assert ours[key] == approx(value, RTOL, scale=_lr_scale(torch_opt)), key
        else:
            assert ours[key] == value, key
        assert type(ours[key]) is type(value), key


@pytest.mark.parametrize("name", ALL)
def test_state_dict_moves_between_tinynet_and_pytorch(name):
    opt, torch_opt = _optimizers()
    sched, torch_sched = _make(name, opt, torch_opt)
    for epoch in range(8):  # tinynet runs alone, then hands over to torch
        _advance(sched, opt, epoch)
    torch_opt.load_state_dict(opt.state_dict())
    torch_sched.load_state_dict(copy.deepcopy(sched.state_dict()))
    for epoch in range(8, 20):
        _advance(sched, opt, epoch)
        _advance(torch_sched, torch_opt, epoch)
        _assert_lrs_equal(sched, torch_sched, opt, torch_opt)
    for epoch in range(20, 30):  # torch runs alone, then hands back
        _advance(torch_sched, torch_opt, epoch)
    fresh_opt, _ = _optimizers()
    fresh, _ = _make(name, fresh_opt, _optimizers()[1])
    fresh_opt.load_state_dict(torch_opt.state_dict())
    fresh.load_state_dict(copy.deepcopy(torch_sched.state_dict()))
    for epoch in range(30, EPOCHS):
        _advance(fresh, fresh_opt, epoch)
        _advance(torch_sched, torch_opt, epoch)
        _assert_lrs_equal(fresh, torch_sched, fresh_opt, torch_opt)


def test_state_dict_is_a_copy():
    opt, _ = _optimizers()
    sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 4])
    sd = sched.state_dict()
    sd["base_lrs"][0] = 99.0
    sd["milestones"][7] = 1
    assert sched.base_lrs[0] == 0.1 and 7 not in sched.milestones


def test_lambda_lr_saves_callable_objects_state_but_not_functions():
    opt, torch_opt = _optimizers()
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0, Halve(3)])
    torch_sched = torch.optim.lr_scheduler.LambdaLR(torch_opt, [lambda e: 1.0, Halve(3)])
    sched.lr_lambdas[1].every = 5
    torch_sched.lr_lambdas[1].every = 5
    assert sched.state_dict()["lr_lambdas"] == torch_sched.state_dict()["lr_lambdas"] == [
        None, {"every": 5}]
    other, _ = _optimizers()
    resumed = lr_scheduler.LambdaLR(other, [lambda e: 1.0, Halve(3)])
    resumed.load_state_dict(torch_sched.state_dict())
    assert resumed.lr_lambdas[1].every == 5


def test_get_lr_outside_step_warns_to_use_get_last_lr():
    opt, _ = _optimizers()
    sched = lr_scheduler.StepLR(opt, 3)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


def _bad_cases():
    """(scheduler maker, state dict change, error class, message part)."""
    step = lambda opt: lr_scheduler.StepLR(opt, 3)  # noqa: E731
    plateau = lambda opt: lr_scheduler.ReduceLROnPlateau(opt)  # noqa: E731
    lam = lambda opt: lr_scheduler.LambdaLR(opt, lambda e: 1.0)  # noqa: E731
    return [
        (step, lambda sd: sd.update(surprise=1), tn.nn.StateDictError, "unexpected key 'surprise'"),
        (step, lambda sd: sd.pop("step_size"), tn.nn.StateDictError, "missing key(s) 'step_size'"),
        (step, lambda sd: sd.pop("base_lrs"), tn.nn.StateDictError, "'base_lrs'"),
        (step, lambda sd: sd.update(step_size="3"), tn.DTypeError, "'step_size' must be an int"),
        (step, lambda sd: sd.update(step_size=0), tn.ValueRangeError, "must be >= 1"),
        (step, lambda sd: sd.update(gamma=None), tn.DTypeError, "'gamma' must be a number"),
        (step, lambda sd: sd.update(last_epoch=2.5), tn.DTypeError, "'last_epoch' must be an int"),
        (step, lambda sd: sd.update(base_lrs=[0.1]), tn.ValueRangeError,
         "'base_lrs' has 1 value(s), the optimizer has 2"),
        (step, lambda sd: sd.update(_last_lr=[0.1, "x"]), tn.DTypeError, "'_last_lr'[1]"),
        (step, lambda sd: sd.update(_is_initial="no"), tn.DTypeError, "True or False"),
        (plateau, lambda sd: sd.update(mode="median"), tn.ValueRangeError, "mode 'median'"),
        (plateau, lambda sd: sd.update(factor=2.0), tn.ValueRangeError, "Factor should be < 1.0"),
        (plateau, lambda sd: sd.update(min_lrs=[0.0]), tn.ValueRangeError, "'min_lrs' has 1"),
        (plateau, lambda sd: sd.update(mode_worse=-np.inf), tn.nn.StateDictError,
         "'mode_worse'"),
        (plateau, lambda sd: sd.update(num_bad_epochs=-1), tn.ValueRangeError, "must be >= 0"),
        (plateau, lambda sd: sd.update(base_lrs=[0.1, 0.1]), tn.nn.StateDictError,
         "unexpected key 'base_lrs'"),
        (lam, lambda sd: sd.update(lr_lambdas=[None]), tn.nn.StateDictError, "'lr_lambdas'"),
        (lam, lambda sd: sd.update(lr_lambdas=[None, {"a": 1}]), tn.nn.StateDictError,
         "plain function"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_load_state_dict_refuses_what_does_not_fit_and_changes_nothing(case):
    make, change, error, match = _bad_cases()[case]
    opt, _ = _optimizers()
    sched = make(opt)
    for _ in range(4):
        _advance(sched, opt, 0)
    before = sched.state_dict()
    bad = sched.state_dict()
    bad["last_epoch"] = 40
    change(bad)
    with pytest.raises(error) as info:
        sched.load_state_dict(bad)
    assert match in str(info.value)
    assert type(sched).__name__ + ".load_state_dict" in str(info.value)
    assert sched.state_dict() == before


def test_load_state_dict_accepts_an_old_pytorch_state_with_verbose():
    opt, _ = _optimizers()
    sched = lr_scheduler.StepLR(opt, 3)
    sd = sched.state_dict()
    sd["verbose"] = False
    del sd["_is_initial"]
    sd["last_epoch"] = 5
    sched.load_state_dict(sd)
    assert sched.last_epoch == 5 and not hasattr(sched, "verbose")


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=0), tn.ValueRangeError, "step_size"),
        (lambda o: lr_scheduler.StepLR(o, step_size=2.5), tn.DTypeError, "step_size"),
        (lambda o: lr_scheduler.StepLR(None, 2), TypeError, "is not an Optimizer"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma="0.9"), tn.DTypeError, "gamma"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), tn.ValueRangeError, "T_max"),
        (lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, -1]), tn.ValueRangeError,
         "milestones"),
        (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError,
         "Expected 2 lr_lambdas, but got 1"),
        (lambda o: lr_scheduler.LambdaLR(o, 0.5), tn.DTypeError, "lr_lambda"),
        (lambda o: lr_scheduler.StepLR(o, 2, last_epoch=-2), tn.ValueRangeError, "last_epoch"),
    ],
)
def test_constructor_arguments_are_checked(make, error, match):
    opt, _ = _optimizers()
    with pytest.raises(error, match=match):
        make(opt)


@pytest.mark.parametrize("cls", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                                 "LambdaLR", "ReduceLROnPlateau"])
def test_argument_names_and_defaults_are_pytorchs(cls):
    import inspect

    ours = inspect.signature(getattr(lr_scheduler, cls)).parameters
    theirs = inspect.signature(getattr(torch.optim.lr_scheduler, cls)).parameters
    assert [(n, p.default) for n, p in ours.items()] == [
        (n, p.default) for n, p in theirs.items()]


@settings(max_examples=60, deadline=None)
@given(
    options=st.fixed_dictionaries({
        "mode": st.sampled_from(["min", "max"]),
        "factor": st.sampled_from([0.1, 0.5, 0.9]),
        "patience": st.integers(0, 4),
        "threshold": st.sampled_from([0.0, 1e-4, 0.1, 0.5]),
        "threshold_mode": st.sampled_from(["rel", "abs"]),
        "cooldown": st.integers(0, 3),
        "min_lr": st.sampled_from([0, 1e-3, [0.02, 0.0]]),
        "eps": st.sampled_from([1e-8, 1e-3]),
    }),
    metrics=st.lists(st.integers(-3, 3).map(lambda i: i / 2), min_size=1, max_size=40),
)
def test_reduce_lr_on_plateau_matches_pytorch_on_drawn_metrics(options, metrics):
    """Half-integer metrics: many exact ties with the best value."""
    opt, torch_opt = _optimizers()
    sched = lr_scheduler.ReduceLROnPlateau(opt, **options)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **options)
    for metric in metrics:
        sched.step(metric)
        torch_sched.step(metric)
        assert sched.get_last_lr() == torch_sched.get_last_lr()
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == (
            torch_sched.best, torch_sched.num_bad_epochs, torch_sched.cooldown_counter)
    assert sched.state_dict() == torch_sched.state_dict()


@settings(max_examples=40, deadline=None)
@given(step_size=st.integers(1, 6), milestones=st.lists(st.integers(0, 30), max_size=6),
       gamma=st.floats(0.05, 1.5), t_max=st.integers(1, 12), eta_min=st.sampled_from([0.0, 0.01]))
def test_drawn_schedules_match_pytorch(step_size, milestones, gamma, t_max, eta_min):
    makers = [("StepLR", {"step_size": step_size, "gamma": gamma}),
              ("MultiStepLR", {"milestones": milestones, "gamma": gamma}),
              ("ExponentialLR", {"gamma": gamma}),
              ("CosineAnnealingLR", {"T_max": t_max, "eta_min": eta_min})]
    for cls, options in makers:
        opt, torch_opt = _optimizers()
        sched = getattr(lr_scheduler, cls)(opt, **options)
        torch_sched = getattr(torch.optim.lr_scheduler, cls)(torch_opt, **options)
        for _ in range(35):
            opt.step()
            torch_opt.step()
            sched.step()
            torch_sched.step()
            assert sched.get_last_lr() == approx(torch_sched.get_last_lr(), RTOL,
                                                 scale=_lr_scale(torch_opt)), cls

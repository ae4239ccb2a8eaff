"""Optimizer.load_state_dict refuses what does not fit (issue 12, item 10) and changes
nothing when it does: states missing what the update reads (Adam without exp_avg), unknown
keys, non-numeric or repeated parameter indices, wrong shapes, dtypes and step counts.
Checked on fixed cases and on state dicts corrupted at random by hypothesis. Also: optimizer
and scheduler state dicts survive tn.save / tn.load."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
from tinynet import nn, optim
from tinynet.nn import StateDictError
from tinynet.optim import lr_scheduler

F = nn.functional

MAKERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "Adam": lambda p: optim.Adam(p, lr=0.01),
    "Adam-amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    "AdamW": lambda p: optim.AdamW(p, lr=0.01),
    "RMSprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.1),
}


def _trained(name, steps=2):
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, dtype=tn.float64), nn.Tanh(),
                          nn.Linear(4, 2, dtype=tn.float64))
    opt = MAKERS[name](list(model.parameters()))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(tn.tensor(rng.standard_normal((5, 3)))),
                   rng.standard_normal((5, 2))).backward()
        opt.step()
    return model, opt


def _snapshot(opt):
    return copy.deepcopy(opt.state_dict())


def _assert_unchanged(opt, before):
    after = opt.state_dict()
    assert [{k: v for k, v in g.items()} for g in after["param_groups"]] == before["param_groups"]
    assert sorted(after["state"]) == sorted(before["state"])
    for index, entry in before["state"].items():
        assert list(after["state"][index]) == list(entry)
        for key, value in entry.items():
            np.testing.assert_array_equal(after["state"][index][key], value)


def test_adam_state_without_exp_avg_is_refused_and_the_optimizer_still_steps():
    model, opt = _trained("Adam")
    before = _snapshot(opt)
    bad = opt.state_dict()
    del bad["state"][1]["exp_avg"]
    bad["param_groups"][0]["lr"] = 0.5
    with pytest.raises(StateDictError, match=r"state\[1\] lacks 'exp_avg'"):
        opt.load_state_dict(bad)
    _assert_unchanged(opt, before)
    F.mse_loss(model(tn.ones(1, 3, dtype=tn.float64)), np.zeros((1, 2))).backward()
    opt.step()  # before the fix: KeyError 'exp_avg' here


def test_non_numeric_state_keys_raise_a_named_error_not_a_raw_valueerror():
    _, opt = _trained("SGD")
    before = _snapshot(opt)
    bad = opt.state_dict()
    bad["state"]["weight"] = bad["state"].pop(0)
    with pytest.raises(StateDictError, match="'weight', which is not a parameter index"):
        opt.load_state_dict(bad)
    _assert_unchanged(opt, before)


def test_params_repeating_an_index_are_refused_instead_of_misplacing_state():
    _, opt = _trained("Adam")
    before = _snapshot(opt)
    bad = opt.state_dict()
    bad["param_groups"][0]["params"] = [0, 1, 2, 0]  # parameter 3 would get parameter 0's state
    with pytest.raises(StateDictError, match="index 0 appears twice"):
        opt.load_state_dict(bad)
    _assert_unchanged(opt, before)


def test_repeats_across_groups_are_refused_too():
    tn.manual_seed(0)
    a, b = nn.Parameter(tn.ones(2)), nn.Parameter(tn.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    sd = opt.state_dict()
    sd["param_groups"][1]["params"] = [0]
    with pytest.raises(StateDictError, match=r"again in param_groups\[1\]\['params'\]"):
        opt.load_state_dict(sd)


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_state_dict_loads_into_a_fresh_optimizer_and_training_resumes_exactly(name):
    model, opt = _trained(name)
    fresh_model, _ = _trained(name, steps=0)
    fresh_model.load_state_dict(model.state_dict())
    fresh = MAKERS[name](list(fresh_model.parameters()))
    saved = opt.state_dict()
    saved["state"] = {str(k): v for k, v in saved["state"].items()}  # text keys, as JSON gives
    fresh.load_state_dict(saved)
    for m, o in ((model, opt), (fresh_model, fresh)):
        o.zero_grad()
        F.mse_loss(m(tn.ones(2, 3, dtype=tn.float64)), np.zeros((2, 2))).backward()
        o.step()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh_model.state_dict()[key], value)


def test_pytorch_style_values_are_accepted():
    """PyTorch saves step as a 0-d float tensor and SGD's buffer as None before a step."""
    p = nn.Parameter(tn.ones(2, dtype=tn.float64))
    opt = optim.Adam([p])
    opt.load_state_dict({"state": {0: {"step": tn.tensor(4.0), "exp_avg": tn.zeros(2),
                                       "exp_avg_sq": np.zeros(2, np.float32)}},
                         "param_groups": opt.state_dict()["param_groups"]})
    assert opt.state[p]["step"] == 4 and opt.state[p]["exp_avg_sq"].dtype == np.float64
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    sgd.load_state_dict({"state": {0: {"momentum_buffer": None}},
                         "param_groups": sgd.state_dict()["param_groups"]})
    p.grad = tn.ones(2, dtype=tn.float64)
    sgd.step()
    np.testing.assert_array_equal(sgd.state[p]["momentum_buffer"].data, [1.0, 1.0])


# A random corruption: (where, how). Each must load or raise a TinynetError, never change the
# optimizer when it raises, and never leave a state the next step cannot use.
CORRUPTIONS = ["drop", "shape", "string", "object", "bool", "complex", "none", "step-nan",
               "step-negative", "rename", "extra-index", "duplicate-index", "text-index",
               "group-not-dict"]


def _corrupt(sd, how, index, key):
    state = sd["state"]
    entry = state[index]
    if how == "drop":
        del entry[key]
    elif how == "shape":
        entry[key] = np.zeros(7) if key != "step" else np.zeros(2)
    elif how == "string":
        entry[key] = "abc"
    elif how == "object":
        entry[key] = np.array([None, 1.0], dtype=object)
    elif how == "bool":
        entry[key] = np.ones(np.shape(entry[key]), dtype=bool)
    elif how == "complex":
        entry[key] = np.asarray(entry[key]) + 1j
    elif how == "none":
        entry[key] = None
    elif how == "step-nan":
        entry["step"] = float("nan")
    elif how == "step-negative":
        entry["step"] = -1
    elif how == "rename":
        entry[key + "_old"] = entry.pop(key)
    elif how == "extra-index":
        state[99] = entry
    elif how == "duplicate-index":
        sd["param_groups"][0]["params"][-1] = sd["param_groups"][0]["params"][0]
    elif how == "text-index":
        state[str(index)] = state.pop(index)
    elif how == "group-not-dict":
        sd["param_groups"][0] = list(sd["param_groups"][0].items())


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from([n for n in MAKERS if n != "SGD"]), how=st.sampled_from(CORRUPTIONS),
       index=st.integers(0, 3), key_choice=st.integers(0, 10))
def test_corrupted_state_dicts_load_correctly_or_change_nothing(name, how, index, key_choice):
    model, opt = _trained(name)
    before = _snapshot(opt)
    bad = opt.state_dict()
    keys = list(bad["state"][index])
    _corrupt(bad, how, index, keys[key_choice % len(keys)])
    try:
        opt.load_state_dict(bad)
    except tn.TinynetError:
        _assert_unchanged(opt, before)
    else:
        assert how == "text-index", f"{how} corruption was accepted"
    # whatever happened, the optimizer can still step
    opt.zero_grad()
    F.mse_loss(model(tn.ones(1, 3, dtype=tn.float64)), np.zeros((1, 2))).backward()
    opt.step()


@pytest.mark.parametrize(
    "make",
    [lambda o: lr_scheduler.MultiStepLR(o, [2, 3, 3]),
     lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.001]),
     lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5)],
    ids=["multistep", "plateau", "cosine"],
)
def test_scheduler_and_optimizer_state_survive_tn_save(make, tmp_path):
    p = nn.Parameter(tn.ones(2))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    sched = make(opt)
    for _ in range(4):
        p.grad = tn.ones(2)
        opt.step()
        sched.step(1.0) if isinstance(sched, lr_scheduler.ReduceLROnPlateau) else sched.step()
    tn.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "ckpt")
    checkpoint = tn.load(tmp_path / "ckpt")
    q = nn.Parameter(tn.ones(2))
    opt2 = optim.SGD([q], lr=0.5, momentum=0.9)
    sched2 = make(opt2)
    opt2.load_state_dict(checkpoint["optimizer"])
    sched2.load_state_dict(checkpoint["scheduler"])
    assert sched2.state_dict() == sched.state_dict()
    assert sched2.get_last_lr() == sched.get_last_lr() == [opt2.param_groups[0]["lr"]]

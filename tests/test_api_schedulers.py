"""The schedulers added for issue 21 give PyTorch's learning rates (and momenta), step by step:
LinearLR, ConstantLR, PolynomialLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR,
SequentialLR."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn


def optimizer(lib: Any, kind: str) -> Any:
    groups = [{"params": [lib.nn.Parameter(lib.zeros(2))]},
              {"params": [lib.nn.Parameter(lib.zeros(1))], "lr": 0.05}]
    if kind == "adam":
        return lib.optim.Adam(groups, lr=0.1)
    return lib.optim.SGD(groups, lr=0.1, momentum=0.9)


CASES = {
    "linear": ("sgd", lambda lr, opt: lr.LinearLR(opt, start_factor=0.25, total_iters=4), 8),
    "linear_down": ("sgd", lambda lr, opt: lr.LinearLR(opt, 1.0, 0.1, total_iters=5), 8),
    "constant": ("sgd", lambda lr, opt: lr.ConstantLR(opt, factor=0.5, total_iters=3), 6),
    "polynomial": ("sgd", lambda lr, opt: lr.PolynomialLR(opt, total_iters=6, power=2.0), 9),
    "warm_restarts": ("sgd", lambda lr, opt: lr.CosineAnnealingWarmRestarts(
        opt, T_0=3, T_mult=2, eta_min=0.001), 25),
    "warm_restarts_1": ("sgd", lambda lr, opt: lr.CosineAnnealingWarmRestarts(opt, T_0=4), 12),
    "cyclic": ("sgd", lambda lr, opt: lr.CyclicLR(opt, 0.01, 0.1, step_size_up=3,
                                                  step_size_down=2), 14),
    "cyclic_tri2": ("sgd", lambda lr, opt: lr.CyclicLR(opt, [0.01, 0.02], 0.1, step_size_up=2,
                                                       mode="triangular2"), 14),
    "cyclic_exp": ("adam", lambda lr, opt: lr.CyclicLR(opt, 0.01, 0.1, step_size_up=2,
                                                       mode="exp_range", gamma=0.9), 14),
    "cyclic_no_momentum": ("adam", lambda lr, opt: lr.CyclicLR(
        opt, 0.01, 0.1, step_size_up=2, cycle_momentum=False), 6),
    "one_cycle": ("sgd", lambda lr, opt: lr.OneCycleLR(opt, max_lr=1.0, total_steps=20), 19),
    "one_cycle_adam": ("adam", lambda lr, opt: lr.OneCycleLR(
        opt, max_lr=[0.5, 0.2], epochs=3, steps_per_epoch=4, anneal_strategy="linear"), 11),
    "one_cycle_three": ("sgd", lambda lr, opt: lr.OneCycleLR(
        opt, 0.3, total_steps=15, pct_start=0.25, three_phase=True), 14),
    "sequential": ("sgd", lambda lr, opt: lr.SequentialLR(
        opt, [lr.LinearLR(opt, 0.1, total_iters=3), lr.CosineAnnealingLR(opt, T_max=6)],
        milestones=[3]), 12),
    "sequential_3": ("sgd", lambda lr, opt: lr.SequentialLR(
        opt, [lr.ConstantLR(opt, 0.5, total_iters=2), lr.ExponentialLR(opt, 0.9),
              lr.StepLR(opt, 2, 0.5)], milestones=[2, 5]), 10),
}


def trajectory(lib: Any, name: str) -> list[tuple[float, ...]]:
    kind, make, steps = CASES[name]
    opt = optimizer(lib, kind)
    scheduler = make(lib.optim.lr_scheduler, opt)

    def snapshot() -> tuple[float, ...]:
        values = []
        for group in opt.param_groups:
            values.append(float(group["lr"]))
            values.append(float(group["betas"][0] if kind == "adam" else group["momentum"]))
        return (*values, *map(float, scheduler.get_last_lr()))

    seen = [snapshot()]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        seen.append(snapshot())
    return seen


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_torch_step_by_step(name: str) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = trajectory(tn, name), trajectory(torch, name)
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["linear", "polynomial", "cyclic", "one_cycle", "sequential",
                                  "warm_restarts"])
def test_state_dict_resumes_the_schedule(name: str) -> None:
    kind, make, steps = CASES[name]
    opt = optimizer(tn, kind)
    scheduler = make(tn.optim.lr_scheduler, opt)
    for _ in range(3):
        opt.step()
        scheduler.step()
    saved_opt, saved = opt.state_dict(), scheduler.state_dict()
    expected = []
    for _ in range(4):
        opt.step()
        scheduler.step()
        expected.append(scheduler.get_last_lr())
    fresh_opt = optimizer(tn, kind)
    fresh = make(tn.optim.lr_scheduler, fresh_opt)
    fresh_opt.load_state_dict(saved_opt)
    fresh.load_state_dict(saved)
    got = []
    for _ in range(4):
        fresh_opt.step()
        fresh.step()
        got.append(fresh.get_last_lr())
    assert got == expected


def test_warm_restarts_takes_fractional_epochs_as_pytorch() -> None:
    torch = pytest.importorskip("torch")
    seen = []
    for lib in (tn, torch):
        opt = optimizer(lib, "sgd")
        scheduler = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
        lrs = []
        for epoch in range(5):
            for i in range(4):
                opt.step()
                scheduler.step(epoch + i / 4)
                lrs.append(scheduler.get_last_lr()[0])
        seen.append(lrs)
    np.testing.assert_allclose(seen[0], seen[1], rtol=1e-13)


def test_bad_options_are_refused_naming_the_scheduler() -> None:
    lr = tn.optim.lr_scheduler
    opt = optimizer(tn, "sgd")
    with pytest.raises(tn.ValueRangeError, match="LinearLR: start_factor must be in"):
        lr.LinearLR(opt, start_factor=0.0)
    with pytest.raises(tn.ValueRangeError, match="ConstantLR: factor must be in"):
        lr.ConstantLR(opt, factor=1.5)
    with pytest.raises(tn.ValueRangeError, match="OneCycleLR: You must define either"):
        lr.OneCycleLR(opt, 0.1)
    with pytest.raises(tn.ValueRangeError, match="OneCycleLR: Tried to step 4 times"):
        one = lr.OneCycleLR(opt, 0.1, total_steps=3)
        for _ in range(4):
            one.step()
    with pytest.raises(tn.ValueRangeError, match="SequentialLR expects one milestone fewer"):
        lr.SequentialLR(opt, [lr.LinearLR(opt)], milestones=[2])
    with pytest.raises(tn.ValueRangeError, match="CyclicLR: mode 'sine' is invalid"):
        lr.CyclicLR(opt, 0.1, 1.0, mode="sine")

"""Differential test of generated training steps: compiled equals eager on every call.

Each program is a random model (Linear layers with activations, LayerNorm, Dropout and
BatchNorm1d in training or eval mode, a residual block, a layer used twice (tied parameters),
frozen layers; a convolutional front: Conv2d, BatchNorm2d, max or average pools, Dropout2d),
a loss, optionally an accuracy (argmax == y) and
a mask term, an optimizer with every option drawn (SGD, Adam, AdamW, RMSprop, Adagrad,
Adadelta; maximize, weight decay coupled and decoupled, momentum, dampening, nesterov, amsgrad,
centered...), optionally clipping, gradient accumulation and a scheduler stepped outside the
step (StepLR, ExponentialLR, OneCycleLR and CyclicLR, the last two cycling momentum or beta1
too). Every call is preceded by the same ``tn.manual_seed`` in both copies, so dropout masks
must be drawn alike (another mask shows as a mismatch; tests/test_compile_replay.py checks the
draws bit for bit). Two identical copies of the world are made: one steps eagerly, the other
through ``tn.compile``. Between calls the outside world changes the way training scripts
change it (lr, momentum, train/eval, ``requires_grad_``, ``load_state_dict`` of the model and
the optimizer, in-place writes under ``no_grad``, new batch sizes, non-contiguous inputs,
interleaved eager steps, a scheduler step), identically in both copies.

After every call every parameter, ``.grad``, optimizer state entry and the returned value must
agree (float64, 1e-10 scaled by magnitude). Outcomes are counted: a silent mismatch or a raw
error (anything but CompileError where eager mode succeeded) fails the test; CompileError is
allowed only for what tn.compile documents as refused and is counted (nothing this
generator draws is refused any more).

``TINYNET_COMPILE_PROGRAMS`` sets how many programs (default 150, CI-sized); the first
``TINYNET_COMPILE_CODEGEN`` (default 8) replay through generated numba code, the rest through
the step-by-step replay.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from typing import Any

import numpy as np
import pytest
from compile_support import RTOL, cross_entropy_step

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import kernels, nn, optim

PROGRAMS = int(os.environ.get("TINYNET_COMPILE_PROGRAMS", "150"))
CODEGEN = int(os.environ.get("TINYNET_COMPILE_CODEGEN", "8"))
CALLS = 6
# refusals tn.compile documents (docs/compile.md, "What tn.compile guarantees")
ALLOWED_REFUSALS: tuple[str, ...] = ()


# a fresh compile cache for this file (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("compile_cache_dir")


class Mismatch(AssertionError):
    pass


def close(got: Any, want: Any, what: str) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise Mismatch(f"{what}: shape {got.shape} != {want.shape}")
    scale = max(1.0, float(np.max(np.abs(np.nan_to_num(want)), initial=0.0)))
    if not np.allclose(got, want, rtol=RTOL, atol=RTOL * scale, equal_nan=True):
        raise Mismatch(f"{what}: max difference {np.nanmax(np.abs(got - want))}")


# ---------------------------------------------------------------------------------------------
# Generating a program
# ---------------------------------------------------------------------------------------------


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: Any) -> Any:
        return x + self.fc(x).tanh()


class Tied(nn.Module):
    """One Linear applied twice: its parameters get two gradients that add up."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: Any) -> Any:
        return self.fc(self.fc(x).sigmoid())


def conv_front(rng: np.random.Generator) -> tuple[list[Any], tuple[int, ...], int]:
    """Convolutional layers before the Linear ones (images of 1-2 channels, 4-6 pixels a side):
    Conv2d (padding, stride), maybe BatchNorm2d, an activation, maybe a max or average pool
    and Dropout2d, then Flatten. Returns the layers, the input's shape per sample and the
    number of features they give."""
    channels, side, maps = int(rng.integers(1, 3)), int(rng.integers(4, 7)), int(rng.integers(2, 4))
    padding, stride = int(rng.integers(0, 2)), int(rng.choice([1, 1, 2]))
    layers: list[Any] = [nn.Conv2d(channels, maps, 3, stride=stride, padding=padding)]
    if rng.random() < 0.4:
        layers.append(nn.BatchNorm2d(maps))
    layers.append(nn.ReLU() if rng.random() < 0.5 else nn.Tanh())
    out = (side + 2 * padding - 3) // stride + 1
    pool = str(rng.choice(["none", "max", "avg"])) if out >= 2 else "none"
    if pool != "none":
        layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        out //= 2
    if rng.random() < 0.3:
        layers.append(nn.Dropout2d(0.3))
    layers.append(nn.Flatten())
    return layers, (channels, side, side), maps * out * out


def make_world(rng: np.random.Generator) -> dict[str, Any]:
    seed = int(rng.integers(1 << 30))
    tn.manual_seed(seed)
    n_in, width, n_out = (int(v) for v in rng.integers(2, 6, size=3))
    in_shape: tuple[int, ...] = (n_in,)
    layers: list[Any] = []
    if rng.random() < 0.3:  # a convolutional front
        layers, in_shape, n_in = conv_front(rng)
    layers.append(nn.Linear(n_in, width))
    for _ in range(int(rng.integers(0, 3))):
        kind = rng.choice(["tanh", "sigmoid", "relu", "layernorm", "dropout", "residual",
                           "tied", "linear", "batchnorm"])
        layers.append({"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU,
                       "layernorm": lambda: nn.LayerNorm(width),
                       "dropout": lambda: nn.Dropout(0.3),
                       "batchnorm": lambda: nn.BatchNorm1d(width),
                       "residual": lambda: Residual(width), "tied": lambda: Tied(width),
                       "linear": lambda: nn.Linear(width, width)}[str(kind)]())
    layers += [nn.Tanh(), nn.Linear(width, n_out)]
    model = nn.Sequential(*layers).double()
    if rng.random() < 0.2:  # a frozen first layer
        for p in model[0].parameters():
            p.requires_grad_(False)
    if rng.random() < 0.3:
        model.eval()  # else train mode: dropout draws, batchnorm updates its running stats
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(rng, params)
    loss = str(rng.choice(["mse", "cross_entropy", "bce_logits"]))
    world = {"model": model, "opt": opt, "loss": loss, "in_shape": in_shape, "n_out": n_out,
             "accumulate": bool(rng.random() < 0.25), "scheduler": None,
             "clip": rng.choice(["none"] * 6 + ["norm", "value"]),
             "accuracy": bool(rng.random() < 0.4), "mask": bool(rng.random() < 0.3)}
    if rng.random() < 0.4:
        world["scheduler"] = make_scheduler(rng, opt)
    return world


def make_scheduler(rng: np.random.Generator, opt: Any) -> Any:
    """A scheduler stepped between calls: lr schedules, and the cycling ones that change
    momentum (SGD, RMSprop) or beta1 (Adam) too, which each replay must read."""
    kind = str(rng.choice(["step", "exponential", "onecycle", "cyclic"]))
    group = opt.param_groups[0]
    cycles = "momentum" in group and group["momentum"] > 0 or "betas" in group
    if kind == "step" or (kind == "cyclic" and not cycles):
        return optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    if kind == "exponential":
        return optim.lr_scheduler.ExponentialLR(opt, gamma=0.7)
    if kind == "onecycle":
        return optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=50,
                                             cycle_momentum=cycles)
    return optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2,
                                       base_momentum=0.6, max_momentum=0.9)


def make_optimizer(rng: np.random.Generator, params: list[Any]) -> Any:
    """An optimizer with every option drawn: maximize, weight decay (coupled or decoupled),
    momentum, dampening, nesterov, amsgrad, centered, lr_decay..."""
    kind = rng.choice(["sgd", "sgd", "sgd", "adam", "adam", "adamw", "rmsprop", "adagrad",
                       "adadelta"])
    maximize = bool(rng.random() < 0.2)
    wd = float(rng.choice([0.0, 0.0, 0.01]))
    if kind == "sgd":
        momentum = float(rng.choice([0.0, 0.9]))
        nesterov = bool(momentum and rng.random() < 0.3)
        dampening = 0.0 if nesterov else float(rng.choice([0.0, 0.1]))
        return optim.SGD(params, lr=0.05, momentum=momentum, nesterov=nesterov,
                         dampening=dampening, weight_decay=wd, maximize=maximize)
    if kind == "adam":
        return optim.Adam(params, lr=0.01, betas=(float(rng.choice([0.9, 0.3])), 0.999),
                          weight_decay=wd, maximize=maximize, amsgrad=bool(rng.random() < 0.3),
                          decoupled_weight_decay=bool(rng.random() < 0.3))
    if kind == "adamw":
        return optim.AdamW(params, lr=0.01, weight_decay=float(rng.choice([0.0, 0.01, 0.1])),
                           amsgrad=bool(rng.random() < 0.3), maximize=maximize)
    if kind == "rmsprop":
        return optim.RMSprop(params, lr=0.01, alpha=float(rng.choice([0.99, 0.3])),
                             momentum=float(rng.choice([0.0, 0.5])), weight_decay=wd,
                             centered=bool(rng.random() < 0.5), maximize=maximize)
    if kind == "adadelta":
        return optim.Adadelta(params, lr=1.0, rho=float(rng.choice([0.9, 0.5])),
                              weight_decay=wd, maximize=maximize)
    return optim.Adagrad(params, lr=0.05, lr_decay=float(rng.choice([0.0, 0.1])),
                         weight_decay=wd, initial_accumulator_value=float(rng.choice([0.0, 0.1])),
                         maximize=maximize)


def batch(rng: np.random.Generator, w: dict[str, Any], n: int, layout: str) -> tuple:
    x = rng.normal(size=(n, *w["in_shape"]))
    if layout == "transposed":  # a non-contiguous input (every axis reversed in memory)
        x = np.ascontiguousarray(x.T).T
    if w["loss"] == "cross_entropy":
        y = tn.tensor(rng.integers(0, w["n_out"], size=n))
    elif w["loss"] == "bce_logits":
        y = tn.tensor(rng.integers(0, 2, size=(n, w["n_out"])).astype(np.float64))
    else:
        y = tn.tensor(rng.normal(size=(n, w["n_out"])))
    return tn.tensor(x), y


def compute_loss(w: dict[str, Any], x: Any, y: Any) -> Any:
    out = w["model"](x)
    if w["loss"] == "cross_entropy":
        loss = F.cross_entropy(out, y)
    elif w["loss"] == "bce_logits":
        loss = F.binary_cross_entropy_with_logits(out, y)
    else:
        loss = F.mse_loss(out, y)
    if w["mask"]:  # a mask computed from the data, inside the step
        loss = loss + 0.01 * (out * (out > 0)).mean()
    return loss, out


def train_step(w: dict[str, Any], x: Any, y: Any) -> Any:
    if not w["accumulate"]:
        w["opt"].zero_grad()
    loss, out = compute_loss(w, x, y)
    loss.backward()
    if w["clip"] == "norm":
        nn.utils.clip_grad_norm_(w["model"].parameters(), 0.5)
    elif w["clip"] == "value":
        nn.utils.clip_grad_value_(w["model"].parameters(), 0.1)
    w["opt"].step()
    if w["accuracy"]:  # the accuracy of the step's own predictions
        target = y.argmax(1) if w["loss"] != "cross_entropy" else y
        return loss, (out.argmax(1) == target).float().mean()
    return loss


# ---------------------------------------------------------------------------------------------
# Changes of the outside world between calls (applied to both copies)
# ---------------------------------------------------------------------------------------------


def change_world(kind: str, w: dict[str, Any], rng_seed: int) -> None:
    rng = np.random.default_rng(rng_seed)
    model, opt = w["model"], w["opt"]
    if kind == "lr":
        opt.param_groups[0]["lr"] *= float(rng.choice([0.5, 2.0]))
    elif kind == "momentum" and "momentum" in opt.param_groups[0]:
        group = opt.param_groups[0]
        if group["momentum"] and not group.get("nesterov"):
            group["momentum"] = 0.5
    elif kind == "momentum" and "betas" in opt.param_groups[0]:
        opt.param_groups[0]["betas"] = (0.8, opt.param_groups[0]["betas"][1])
    elif kind == "hyperparameter":  # a number the rule reads, or a switch that changes its form
        group = opt.param_groups[0]
        key = str(rng.choice(["eps", "weight_decay", "maximize"]))
        if key in group:
            group[key] = (not group[key]) if key == "maximize" else group[key] * 2 + 0.001
    elif kind == "train_eval":
        model.train(not model.training)
    elif kind == "requires_grad":
        last = list(model.parameters())[-1]
        last.requires_grad_(not last.requires_grad)
        if not last.requires_grad:
            last.grad = None
    elif kind == "load_model":
        state = {k: v + 0.01 * rng.normal(size=np.shape(v)) for k, v in
                 model.state_dict().items()}
        model.load_state_dict(state)
    elif kind == "load_optimizer":
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    elif kind == "write_no_grad":
        with tn.no_grad():
            list(model.parameters())[0].mul_(0.9)
    elif kind == "zero_grad":
        opt.zero_grad()
    elif kind == "scheduler" and w["scheduler"] is not None:
        w["scheduler"].step()
    elif kind == "add_param_group":  # unfreeze the parameters no group holds, in a new group
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        new = [p for p in model.parameters() if id(p) not in held]
        if new:
            for p in new:
                p.requires_grad_(True)
            opt.add_param_group({"params": new, "lr": opt.param_groups[0]["lr"] / 2})
            # a scheduler made for the old groups does not know the new one (OneCycleLR and
            # CyclicLR fail on it, in PyTorch too): a script makes a new scheduler, or none
            w["scheduler"] = None


CHANGES = ["none", "none", "lr", "momentum", "hyperparameter", "train_eval", "requires_grad",
           "load_model",
           "load_optimizer", "write_no_grad", "zero_grad", "scheduler", "eager_step",
           "batch_size", "transposed", "add_param_group", "float32_input"]


# ---------------------------------------------------------------------------------------------
# Running one program
# ---------------------------------------------------------------------------------------------


def compare_worlds(eager: dict[str, Any], other: dict[str, Any]) -> None:
    for (name, p), q in zip(eager["model"].named_parameters(), other["model"].parameters(),
                            strict=True):
        close(q.data, p.data, name)
        if (p.grad is None) != (q.grad is None):
            raise Mismatch(f"{name}.grad: one is None")
        if p.grad is not None:
            close(q.grad.data, p.grad.data, f"{name}.grad")
    for (name, b), c in zip(eager["model"].named_buffers(), other["model"].buffers(),
                            strict=True):
        close(c.data, b.data, name)
    es, os_ = eager["opt"].state_dict()["state"], other["opt"].state_dict()["state"]
    if set(es) != set(os_):
        raise Mismatch("optimizer state: different parameters")
    for index, entries in es.items():
        for key, value in entries.items():
            close(os_[index][key], value, f"optimizer state {index}.{key}")
    for ge, go in zip(eager["opt"].param_groups, other["opt"].param_groups, strict=True):
        if {k: v for k, v in ge.items() if k != "params"} != {
                k: v for k, v in go.items() if k != "params"}:
            raise Mismatch("param_groups differ")


def run_program(seed: int, backend: str) -> str:
    """'ok', 'refused: <message>', or raises Mismatch / the raw error."""
    rng = np.random.default_rng(seed)
    eager = make_world(rng)
    other = copy.deepcopy(eager)
    world = other

    def step(x: Any, y: Any) -> Any:
        return train_step(world, x, y)

    compiled = tn.compile(step, backend=backend)
    n = int(rng.integers(2, 6))
    for call in range(CALLS):
        change = str(rng.choice(CHANGES)) if call else "none"
        layout = "contiguous"
        if change == "batch_size":
            n = int(rng.integers(2, 6))
        elif change == "transposed":
            layout = "transposed"
        elif change == "eager_step":  # an eager step of the same function, in both worlds
            x, y = batch(rng, eager, n, layout)
            tn.manual_seed(call)
            train_step(eager, x, y)
            tn.manual_seed(call)
            train_step(other, x, y)
        elif change != "none":
            change_seed = int(rng.integers(1 << 30))
            change_world(change, eager, change_seed)
            change_world(change, other, change_seed)
        x, y = batch(rng, eager, n, layout)
        if change == "float32_input":  # a new dtype: eager mode refuses it, so must compile
            x = x.float()
        seed = int(rng.integers(1 << 30))
        tn.manual_seed(seed)
        try:
            want = train_step(eager, x, y)
        except tn.CompileError:
            raise
        except Exception as e:  # noqa: BLE001 - the compiled call must raise the same
            tn.manual_seed(seed)
            with pytest.raises(type(e)):
                compiled(x, y)
            compare_worlds(eager, other)
            continue
        tn.manual_seed(seed)
        try:
            got = compiled(x, y)
        except tn.CompileError as e:
            return f"refused: {e}"
        for g, e in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,), strict=True):
            close(g.detach().data, e.detach().data, f"call {call}: returned value")
        compare_worlds(eager, other)
    return "ok"


def test_generated_training_steps_compiled_equal_eager_with_world_changes() -> None:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    refusals: list[str] = []
    for seed in range(PROGRAMS):
        backend = "auto" if seed < CODEGEN and kernels.numba_enabled() else "interpret"
        try:
            outcome = run_program(seed, backend)
        except Mismatch as e:
            outcomes["silent mismatch"] += 1
            failures.append(f"program {seed}: silent mismatch: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - every raw error is a failure, reported below
            outcomes["raw error"] += 1
            failures.append(f"program {seed}: raw {type(e).__name__}: {e}")
            continue
        if outcome.startswith("refused"):
            outcomes["refused"] += 1
            refusals.append(f"program {seed}: {outcome}")
        else:
            outcomes["ok"] += 1
    print(f"tn.compile differential test: {dict(outcomes)}")  # shown with pytest -s
    assert not failures, f"{dict(outcomes)}\n" + "\n".join(failures[:10])
    unexpected = [r for r in refusals if not any(a in r for a in ALLOWED_REFUSALS)]
    assert not unexpected, "\n".join(unexpected[:10])
    assert outcomes["ok"] >= PROGRAMS // 3, dict(outcomes)  # most programs compile


@pytest.mark.parametrize("rows", [5, 64])  # products of 80 and 1,024 multiply-adds: loops
def test_a_bias_before_batchnorm_under_adam_stays_eager_s_to_the_last_bit(rows: int) -> None:
    """Found by this generator at 300 programs (program 27): a Linear before BatchNorm1d has a
    bias whose gradient is only rounding noise (the batch mean takes any shift away), and Adam
    divides it by its own size, so any last-bit difference in the layer's products became a
    1.7e-10 step. Small products are the same loops in both modes now, and float64 tanh the
    C library's in both (eager mode ran numpy's, another last bit in a third of the values),
    so every number is equal, not merely close."""
    tn.manual_seed(4)
    model = nn.Sequential(nn.Linear(8, 2), nn.BatchNorm1d(2), nn.ReLU(), nn.Tanh(),
                          nn.Linear(2, 3))
    model = model.double()
    twin = copy.deepcopy(model)
    opt, twin_opt = optim.Adam(model.parameters(), lr=0.01), optim.Adam(twin.parameters(),
                                                                        lr=0.01)

    compiled = tn.compile(lambda x, y: cross_entropy_step(twin, twin_opt, x, y))
    rng = np.random.default_rng(rows)
    for _ in range(6):
        x, y = tn.tensor(rng.normal(size=(rows, 8))), tn.tensor(rng.integers(0, 3, rows))
        got = compiled(x, y)  # (first, as before: the compiled world, then the eager one)
        np.testing.assert_array_equal(got.data, cross_entropy_step(model, opt, x, y).data)
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            np.testing.assert_array_equal(q.data, p.data)
            np.testing.assert_array_equal(q.grad.data, p.grad.data)
    assert compiled.replays >= 3

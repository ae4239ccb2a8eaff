"""Learning-rate schedules, as ``torch.optim.lr_scheduler``: each ``step()`` (called once per
epoch, after ``optimizer.step()``) writes a new ``lr`` into every parameter group.

- ``LRScheduler``: the base. It records each group's starting lr as ``initial_lr`` (kept in
  ``base_lrs``), counts epochs in ``last_epoch`` and asks the subclass's ``get_lr`` for the
  new rates. ``get_last_lr()`` returns the rates it last wrote.
- Most schedules are *recursive*, as PyTorch's: ``get_lr`` changes the lr the group has now
  (StepLR multiplies it by gamma every step_size epochs), so a change made to ``group["lr"]``
  from outside carries on. ``step(epoch)`` (deprecated in PyTorch) jumps to an epoch with the
  schedule's *closed form* from ``base_lrs`` instead. The two give the same numbers up to
  rounding; CosineAnnealingLR's recursion is PyTorch's exact formula, rounding included.
- ``ReduceLROnPlateau`` is different: ``step(metric)`` divides the lr when the metric stops
  improving.
- ``state_dict()`` is the scheduler's attributes except the optimizer, with PyTorch's keys, so
  a scheduler's state moves between tinynet and PyTorch; ``load_state_dict`` checks every key
  and value before changing anything.
"""

from __future__ import annotations

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinynet.errors import DTypeError, StateDictError, ValueRangeError
from tinynet.optim.optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "MissingInitialLrError",
    "MultiStepLR", "ReduceLROnPlateau", "StepLR",
]


class MissingInitialLrError(StateDictError, KeyError):
    """A scheduler resumed (``last_epoch >= 0``) for an optimizer whose groups lack
    ``initial_lr`` (PyTorch raises KeyError here, so this is one too)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


# ---- checks shared by the constructors and load_state_dict ---------------------------------
# Each takes the value and a label naming it ("StepLR: step_size", or
# "StepLR.load_state_dict: 'step_size'") and returns the value, or raises naming the label.

def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    dtype = getattr(value, "dtype", None)  # numpy scalars such as np.float32(0.1)
    return isinstance(value, np.generic) and dtype is not None and dtype.kind in "fiu"


def _number(value: Any, label: str) -> Any:
    if not _is_number(value):
        raise DTypeError(f"{label} must be a number, got {value!r}")
    return value


def _positive(value: Any, label: str) -> Any:
    if not _number(value, label) > 0:
        raise ValueRangeError(f"{label} must be > 0, got {value}")
    return value


def _int(value: Any, label: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DTypeError(f"{label} must be an int, got {value!r}")
    if value < minimum:
        raise ValueRangeError(f"{label} must be >= {minimum}, got {value}")
    return int(value)


def _count(value: Any, label: str) -> int:
    return _int(value, label, 0)


def _positive_int(value: Any, label: str) -> int:
    return _int(value, label, 1)


def _epoch(value: Any, label: str) -> int:
    return _int(value, label, -1)


def _flag(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise DTypeError(f"{label} must be True or False, got {value!r}")
    return value


def _rates(value: Any, label: str, groups: int) -> list[Any]:
    """A list of one learning rate (a number) per parameter group."""
    if not isinstance(value, list | tuple):
        raise DTypeError(f"{label} must be a list of {groups} number(s), got "
                         f"{type(value).__name__}")
    if len(value) != groups:
        raise ValueRangeError(f"{label} has {len(value)} value(s), the optimizer has {groups} "
                              "parameter group(s)")
    for i, rate in enumerate(value):
        _number(rate, f"{label}[{i}]")
    return list(value)


def _milestones(value: Any, label: str) -> Counter[int]:
    """MultiStepLR's milestones: epoch -> how many times it was given (PyTorch's Counter)."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        pairs = list(Counter(value).items())
    else:
        raise DTypeError(f"{label} must be a list of epochs, got {value!r}")
    counts: Counter[int] = Counter()
    for epoch, count in pairs:
        counts[_count(epoch, f"{label} (an epoch)")] += _positive_int(count, f"{label} (a count)")
    return counts


def _mode(value: Any, label: str) -> str:
    if value not in ("min", "max"):
        raise ValueRangeError(f"{label}: mode {value!r} is unknown (use 'min' or 'max')")
    return value


def _threshold_mode(value: Any, label: str) -> str:
    if value not in ("rel", "abs"):
        raise ValueRangeError(f"{label}: threshold mode {value!r} is unknown (use 'rel' or "
                              "'abs')")
    return value


def _factor(value: Any, label: str) -> Any:
    if not _number(value, label) < 1.0:
        raise ValueRangeError(f"{label}: Factor should be < 1.0, got {value}")
    return value


def _optional_number(value: Any, label: str) -> Any:
    return None if value is None else _number(value, label)


class LRScheduler:
    """Base class of the epoch-driven schedules (all but ReduceLROnPlateau).

    Subclasses set their options, call ``super().__init__`` and implement ``get_lr`` (the
    recursive rule, from the groups' current lr) and ``_get_closed_form_lr`` (from
    ``base_lrs``, used by ``step(epoch)``)."""

    # option name -> check(value, label) used by load_state_dict; set by subclasses
    _OPTIONS: dict[str, Callable[..., Any]] = {}
    # bookkeeping PyTorch keeps in the state dict beside the options
    _BOOKKEEPING: dict[str, Callable[..., Any]] = {
        "base_lrs": _rates, "last_epoch": _epoch, "_step_count": _count,
        "_is_initial": _flag, "_get_lr_called_within_step": _flag, "_last_lr": _rates,
    }
    _REQUIRED: tuple[str, ...] = ("base_lrs", "last_epoch")  # beside the options
    _OPTIONAL: tuple[str, ...] = ()  # options a state dict may lack

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise DTypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        _epoch(last_epoch, f"{name}: last_epoch")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise MissingInitialLrError(
                        f"{name}: param 'initial_lr' is not specified in param_groups[{i}] "
                        f"when resuming a scheduler with last_epoch={last_epoch} >= 0; load the "
                        "optimizer's state dict (which holds it) first, or use last_epoch=-1 "
                        "for a fresh run"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """The constructor's step: sets the lr of epoch last_epoch + 1 (0 on a fresh run)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The next learning rate of each group (called by ``step``)."""
        raise NotImplementedError

    def _warn_if_called_outside_step(self) -> None:
        if not getattr(self, "_get_lr_called_within_step", False):
            warnings.warn("To get the last learning rate computed by the scheduler, please use "
                          "`get_last_lr()`.", UserWarning, stacklevel=3)

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler last wrote, one per parameter group."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Move to the next epoch (or, deprecated as in PyTorch, to ``epoch`` with the closed
        form) and write the new learning rates into the optimizer's groups."""
        if epoch is not None:
            _epoch(epoch, f"{type(self).__name__}.step: epoch")
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self._step_count += 1
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                values = self._get_closed_form_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    # ---- saving and loading ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (PyTorch's layout; lists are copies)."""
        return {key: _copy(value) for key, value in self.__dict__.items()
                if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by ``state_dict`` (this scheduler's or PyTorch's). Every key
        must be one this scheduler has, with a value of the right type (learning-rate lists
        one number per parameter group); nothing changes if one is not."""
        self.__dict__.update(self._checked(state_dict))

    def _checked(self, state_dict: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """state_dict's entries (but ``skip``), each checked, ready to become attributes."""
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise DTypeError(f"{where}: expected a dict (from scheduler.state_dict()), got "
                             f"{type(state_dict).__name__}")
        groups = len(self.optimizer.param_groups)
        known = {**self._OPTIONS, **self._BOOKKEEPING}
        checked = {}
        for key, value in state_dict.items():
            if key in skip or key == "verbose":  # PyTorch before 2.2 saved verbose; unused
                continue
            if key not in known:
                raise StateDictError(
                    f"{where}: unexpected key {key!r} (a {name} state holds "
                    f"{', '.join(map(repr, known))}); was it saved by another scheduler?"
                )
            label = f"{where}: {key!r}"
            check = known[key]
            # learning-rate lists must hold one number per parameter group
            checked[key] = _rates(value, label, groups) if check is _rates else check(value, label)
        missing = [k for k in (*self._OPTIONS, *self._REQUIRED) if k not in state_dict
                   and k not in self._OPTIONAL]
        if missing:
            raise StateDictError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
        return checked


_EPOCH_DEPRECATION = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where "
    "possible. Please use `scheduler.step()` to step the scheduler. During the deprecation, if "
    "epoch is different from None, the closed form is used instead of the new chainable form, "
    "where available."
)


def _copy(value: Any) -> Any:
    if isinstance(value, Counter):
        return Counter(value)
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (epoch // step_size)``."""

    _OPTIONS = {"step_size": _positive_int, "gamma": _number}

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = _positive_int(step_size, "StepLR: step_size")
        self.gamma = _number(gamma, "StepLR: gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone epoch (by gamma^n at a milestone given
    n times): ``lr = base_lr * gamma ** (number of milestones <= epoch)``."""

    _OPTIONS = {"milestones": _milestones, "gamma": _number}

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = _milestones(milestones, "MultiStepLR: milestones")
        self.gamma = _number(gamma, "MultiStepLR: gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        if self.last_epoch not in self.milestones:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``."""

    _OPTIONS = {"gamma": _number}

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _number(gamma, "ExponentialLR: gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        if self._is_initial:  # resuming: the constructor's step must not decay once more
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from base_lr down to ``eta_min`` over ``T_max`` epochs (SGDR without
    restarts; past T_max the cosine climbs back up). The closed form, used by ``step(epoch)``:

        lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2

    ``step()`` computes it recursively from the current lr, as PyTorch does:

        lr_t = eta_min + (lr_{t-1} - eta_min) (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max))

    except just after the cosine's minimum, where that ratio would be 0/0 and the step adds
    ``(base_lr - eta_min)(1 - cos(pi / T_max)) / 2`` instead."""

    _OPTIONS = {"T_max": _positive, "eta_min": _number}

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        self.T_max = _positive(T_max, "CosineAnnealingLR: T_max")
        self.eta_min = _number(eta_min, "CosineAnnealingLR: eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        groups, t, t_max, eta_min = self.optimizer.param_groups, self.last_epoch, self.T_max, \
            self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and t > 0:  # resumed: start from the closed form
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / t_max)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups, strict=True)]
        return [(1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
                * (group["lr"] - eta_min) + eta_min for group in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(epoch)``, one function for all groups or one per group.

    The state dict holds no functions: ``lr_lambdas`` is a list with, per group, None for a
    plain function or lambda, or the ``__dict__`` of a callable object (restored onto this
    scheduler's own object by ``load_state_dict``), as PyTorch does."""

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise DTypeError(f"LambdaLR: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != groups:
                raise ValueRangeError(f"LambdaLR: Expected {groups} lr_lambdas, but got "
                                      f"{len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise DTypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got "
                                 f"{type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        return [base_lr * fn(self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        state = {key: _copy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        checked = self._checked(state_dict, skip=("lr_lambdas",))
        where = "LambdaLR.load_state_dict"
        saved = state_dict.get("lr_lambdas")
        if not isinstance(saved, list | tuple) or len(saved) != len(self.lr_lambdas):
            raise StateDictError(f"{where}: 'lr_lambdas' must be a list of "
                                 f"{len(self.lr_lambdas)} entries (None, or a callable "
                                 f"object's __dict__), got {saved!r}")
        for i, (fn, entry) in enumerate(zip(self.lr_lambdas, saved, strict=True)):
            if entry is None:
                continue
            if not isinstance(entry, dict):
                raise StateDictError(f"{where}: 'lr_lambdas'[{i}] must be None or a dict, got "
                                     f"{type(entry).__name__}")
            if isinstance(fn, types.FunctionType):
                raise StateDictError(f"{where}: 'lr_lambdas'[{i}] holds a callable object's "
                                     "state, but this scheduler's lr_lambda is a plain function")
        self.__dict__.update(checked)
        for fn, entry in zip(self.lr_lambdas, saved, strict=True):
            if entry is not None:
                fn.__dict__.update(entry)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` once a metric has not improved for more than
    ``patience`` epochs: ``scheduler.step(val_loss)`` after each epoch.

    - improved: ``metric < best * (1 - threshold)`` (mode 'min', threshold_mode 'rel'),
      ``metric < best - threshold`` ('abs'); 'max' mode mirrors these. ``best`` starts at inf
      (-inf in 'max' mode), so the first metric always improves.
    - after a reduction, ``cooldown`` epochs pass without counting bad epochs.
    - the lr never goes below ``min_lr`` (one per group, or one for all), and a reduction
      smaller than ``eps`` is skipped.
    """

    _OPTIONS = {"factor": _factor, "default_min_lr": _optional_number, "min_lrs": _rates,
                "patience": _count, "cooldown": _count, "eps": _number,
                "mode_worse": _number, "mode": _mode, "threshold": _number,
                "threshold_mode": _threshold_mode, "best": _number,
                "cooldown_counter": _count, "num_bad_epochs": _count}
    _BOOKKEEPING = {"last_epoch": _epoch, "_last_lr": _rates}
    _REQUIRED = ("last_epoch",)
    _OPTIONAL = ("default_min_lr",)  # PyTorch before 2.2 did not save it

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        name = "ReduceLROnPlateau"
        self.factor = _factor(factor, name)
        if not isinstance(optimizer, Optimizer):
            raise DTypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, list | tuple):
            if len(min_lr) != groups:
                raise ValueRangeError(f"{name}: expected {groups} min_lrs, got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = _rates(min_lr, f"{name}: min_lr", groups)
        else:
            self.default_min_lr = _number(min_lr, f"{name}: min_lr")
            self.min_lrs = [min_lr] * groups
        self.patience = _count(patience, f"{name}: patience")
        self.cooldown = _count(cooldown, f"{name}: cooldown")
        self.eps = _number(eps, f"{name}: eps")
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.mode_worse = math.inf if _mode(mode, name) == "min" else -math.inf
        self.mode = mode
        self.threshold = _number(threshold, f"{name}: threshold")
        self.threshold_mode = _threshold_mode(threshold_mode, name)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record this epoch's metric (a number or one-element tensor); reduce the lr if it
        has not improved for more than ``patience`` epochs."""
        try:
            current = float(metrics)
        except (TypeError, ValueError) as e:
            raise DTypeError(f"ReduceLROnPlateau.step: metrics must be a number or a "
                             f"one-element tensor, got {type(metrics).__name__} ({e})") from None
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during a cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueRangeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups but "
                    f"min_lr gave {len(self.min_lrs)} (a group was added since); set "
                    "scheduler.min_lrs to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for i, group in enumerate(groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        checked = self._checked(state_dict)
        mode = checked["mode"]
        if checked["mode_worse"] != (math.inf if mode == "min" else -math.inf):
            raise StateDictError(
                f"ReduceLROnPlateau.load_state_dict: 'mode_worse' is {checked['mode_worse']} but "
                f"mode {mode!r} needs {'inf' if mode == 'min' else '-inf'}"
            )
        self.__dict__.update(checked)


# ---- more schedules (issue 21): PyTorch's recursive rules, numbers included ----------------


def _any(value: Any, label: str) -> Any:
    """State a scheduler computed itself (phases, cycle sizes): restored as saved."""
    return value


def _fraction(value: Any, label: str, low: float, high: float, low_open: bool = False) -> Any:
    _number(value, label)
    if value > high or value < low or (low_open and value == low):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValueRangeError(f"{label} must be in {interval}, got {value}")
    return value


def _per_group(value: Any, label: str, optimizer: Optimizer) -> list[Any]:
    """One value per parameter group: a list of that length, or one value for every group."""
    groups = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        return _rates(list(value), label, groups)
    return [_number(value, label)] * groups


def _set_momentum(optimizer: Optimizer, values: list[Any], use_beta1: bool) -> None:
    for group, momentum in zip(optimizer.param_groups, values, strict=True):
        if use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum


def _uses_beta1(optimizer: Optimizer, name: str) -> bool:
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueRangeError(f"{name}: optimizer must support momentum or beta1 with "
                              "`cycle_momentum` option enabled (or pass cycle_momentum=False)")
    return "betas" in optimizer.defaults


class ConstantLR(LRScheduler):
    """``lr = base_lr * factor`` for the first ``total_iters`` epochs, then ``base_lr``."""

    _OPTIONS = {"factor": _number, "total_iters": _count}

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        self.factor = _fraction(factor, "ConstantLR: factor", 0.0, 1.0)
        self.total_iters = _count(total_iters, "ConstantLR: total_iters")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in groups]
        if self.last_epoch != self.total_iters:
            return [group["lr"] for group in groups]
        return [group["lr"] * (1.0 / self.factor) for group in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters)
                           * (1 - self.factor)) for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor goes linearly from ``start_factor`` to ``end_factor`` over ``total_iters``
    epochs, then stays: ``lr = base_lr * (start + (end - start) min(t, total) / total)``."""

    _OPTIONS = {"start_factor": _number, "end_factor": _number, "total_iters": _positive_int}

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = _fraction(start_factor, "LinearLR: start_factor", 0.0, 1.0,
                                      low_open=True)
        self.end_factor = _fraction(end_factor, "LinearLR: end_factor", 0.0, 1.0)
        self.total_iters = _positive_int(total_iters, "LinearLR: total_iters")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        groups, t = self.optimizer.param_groups, self.last_epoch
        if t == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if self._is_initial or t > self.total_iters:
            return [group["lr"] for group in groups]
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (t - 1) * change)
        return [group["lr"] * ratio for group in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """``lr = base_lr * (1 - min(t, total_iters) / total_iters) ** power``."""

    _OPTIONS = {"total_iters": _positive_int, "power": _number}

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1) -> None:
        self.total_iters = _positive_int(total_iters, "PolynomialLR: total_iters")
        self.power = _number(power, "PolynomialLR: power")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        groups, t, total = self.optimizer.param_groups, self.last_epoch, self.total_iters
        if self._is_initial or t > total:
            return [group["lr"] for group in groups]
        decay = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [group["lr"] * decay for group in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
                ** self.power for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter 2017): cosine from base_lr to ``eta_min`` over T_i epochs,
    then restart, with T_0 first and each period ``T_mult`` times longer:

        lr = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2

    ``step(epoch)`` may take a fractional epoch (stepping once per batch:
    ``scheduler.step(epoch + i / iters)``), as in PyTorch."""

    _OPTIONS = {"T_0": _positive_int, "T_i": _any, "T_mult": _positive_int, "eta_min": _number,
                "T_cur": _any}

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,  # noqa: N803
                 eta_min: float = 0.0, last_epoch: int = -1) -> None:
        name = "CosineAnnealingWarmRestarts"
        self.T_0 = _positive_int(T_0, f"{name}: T_0")
        self.T_i = self.T_0
        self.T_mult = _positive_int(T_mult, f"{name}: T_mult")
        self.eta_min = _number(eta_min, f"{name}: eta_min")
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if not _is_number(epoch) or epoch < 0:
                raise ValueRangeError(f"CosineAnnealingWarmRestarts.step: expected a "
                                      f"non-negative epoch, got {epoch!r}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._step_count += 1
        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith 2017), stepped once per *batch*: the lr climbs from
    ``base_lr`` to ``max_lr`` over ``step_size_up`` steps and back over ``step_size_down``;
    the amplitude is scaled per cycle ('triangular': 1, 'triangular2': halved each cycle) or
    per step ('exp_range': gamma ** step), or by ``scale_fn``. Momentum (or Adam's beta1)
    cycles the opposite way between ``max_momentum`` and ``base_momentum``."""

    _OPTIONS = {"max_lrs": _any, "total_size": _any, "step_ratio": _any, "mode": _any,
                "gamma": _number, "scale_mode": _any, "cycle_momentum": _flag, "use_beta1": _flag,
                "base_momentums": _any, "max_momentums": _any}
    _OPTIONAL = ("use_beta1", "base_momentums", "max_momentums")

    def __init__(self, optimizer: Optimizer, base_lr: float | list[float],
                 max_lr: float | list[float], step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: float = 0.8, max_momentum: float = 0.9,
                 last_epoch: int = -1) -> None:
        name = "CyclicLR"
        if not isinstance(optimizer, Optimizer):
            raise DTypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        base_lrs = _per_group(base_lr, f"{name}: base_lr", optimizer)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = lr
        self.max_lrs = _per_group(max_lr, f"{name}: max_lr", optimizer)
        up = float(_positive(step_size_up, f"{name}: step_size_up"))
        down = up if step_size_down is None else float(
            _positive(step_size_down, f"{name}: step_size_down"))
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueRangeError(f"{name}: mode {mode!r} is invalid and scale_fn is None; use "
                                  "'triangular', 'triangular2' or 'exp_range'")
        self.mode, self.gamma = mode, _number(gamma, f"{name}: gamma")
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _uses_beta1(optimizer, name)
            self.base_momentums = _per_group(base_momentum, f"{name}: base_momentum", optimizer)
            self.max_momentums = _per_group(max_momentum, f"{name}: max_momentum", optimizer)
            if last_epoch == -1:
                _set_momentum(optimizer, self.max_momentums, self.use_beta1)
                for m, b, group in zip(self.max_momentums, self.base_momentums,
                                       optimizer.param_groups, strict=True):
                    group["max_momentum"], group["base_momentum"] = m, b
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        if self._scale_fn_custom is not None:
            return
        if self.mode in ("triangular", "triangular2"):
            self.scale_mode = "cycle"
        elif self.mode == "exp_range":
            self.scale_mode = "iterations"

    def scale_fn(self, x: float) -> float:
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True)]
        if self.cycle_momentum:
            momentums = [high - (high - low) * scale_factor * scale for low, high in
                         zip(self.base_momentums, self.max_momentums, strict=True)]
            _set_momentum(self.optimizer, momentums, self.use_beta1)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = (dict(fn.__dict__) if fn is not None
                                     and not isinstance(fn, types.FunctionType) else None)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        checked = self._checked(state_dict, skip=("_scale_fn_custom",))
        self.__dict__.update(checked)
        saved = state_dict.get("_scale_fn_custom")
        if saved is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(saved)
        self._init_scale_fn()


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018), stepped once per *batch* for ``total_steps``
    (or ``epochs * steps_per_epoch``) steps: the lr anneals from ``max_lr / div_factor`` up to
    ``max_lr`` over the first ``pct_start`` of the steps, then down to
    ``initial_lr / final_div_factor`` (cosine or linear); momentum (or beta1) the opposite way.
    ``three_phase=True`` comes back to the initial lr before the final descent."""

    _OPTIONS = {"total_steps": _positive_int, "_schedule_phases": _any,
                "_anneal_func_type": _any, "cycle_momentum": _flag, "use_beta1": _flag}
    _OPTIONAL = ("use_beta1",)

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise DTypeError(f"{name}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = _positive_int(total_steps, f"{name}: total_steps")
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(epochs, f"{name}: epochs")
                                * _positive_int(steps_per_epoch, f"{name}: steps_per_epoch"))
        else:
            raise ValueRangeError(f"{name}: You must define either total_steps OR (epochs AND "
                                  "steps_per_epoch)")
        _fraction(pct_start, f"{name}: pct_start", 0.0, 1.0)
        up = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if three_phase:
            self._schedule_phases = [
                {"end_step": up, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum",
                 "end_momentum": "max_momentum"},
                {"end_step": last, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": up, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": last, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        if anneal_strategy not in ("cos", "linear"):
            raise ValueRangeError(f"{name}: anneal_strategy must be one of 'cos' or 'linear', "
                                  f"instead got {anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group(max_lr, f"{name}: max_lr", optimizer)
        if last_epoch == -1:
            for top, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _uses_beta1(optimizer, name)
            highs = _per_group(max_momentum, f"{name}: max_momentum", optimizer)
            lows = _per_group(base_momentum, f"{name}: base_momentum", optimizer)
            if last_epoch == -1:
                _set_momentum(optimizer, highs, self.use_beta1)
                for high, low, group in zip(highs, lows, optimizer.param_groups, strict=True):
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        self._warn_if_called_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueRangeError(f"OneCycleLR: Tried to step {step} times. The specified "
                                  f"number of total steps is {self.total_steps}")
        lrs, momentums = [], []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]],
                                            pct))
                    if self.cycle_momentum:
                        momentums.append(self._anneal(group[phase["start_momentum"]],
                                                      group[phase["end_momentum"]], pct))
                    break
                start = phase["end_step"]
        if self.cycle_momentum:
            _set_momentum(self.optimizer, momentums, self.use_beta1)
        return lrs


class SequentialLR(LRScheduler):
    """Hand over from one scheduler to the next at each milestone epoch:
    ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt, 95)],
    milestones=[5])`` warms up for 5 epochs, then anneals. At a milestone the next scheduler
    starts from its epoch 0 (closed form), as in PyTorch."""

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1) -> None:
        name = "SequentialLR"
        if len(schedulers) < 1:
            raise ValueRangeError(f"{name} expects at least one scheduler, but got none")
        for i, scheduler in enumerate(schedulers):
            if not hasattr(scheduler, "optimizer"):
                raise DTypeError(f"{name}: the scheduler at index {i} has no optimizer")
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueRangeError(
                    f"{name} does not support ReduceLROnPlateau (index {i}): its step needs the "
                    "metric")
            if scheduler.optimizer is not optimizer:
                raise ValueRangeError(
                    f"{name} expects all schedulers to belong to the same optimizer, but the "
                    f"scheduler {type(scheduler).__name__} at index {i} has another one")
        if len(milestones) != len(schedulers) - 1:
            raise ValueRangeError(
                f"{name} expects one milestone fewer than schedulers, got {len(schedulers)} "
                f"schedulers and {len(milestones)} milestones")
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:  # undo the constructors' steps
            scheduler.last_epoch -= 1
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            _restart(scheduler)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = {key: _copy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("_schedulers")
        if not isinstance(saved, list | tuple) or len(saved) != len(self._schedulers):
            raise StateDictError(f"SequentialLR.load_state_dict: '_schedulers' must be a list "
                                 f"of {len(self._schedulers)} state dicts")
        for scheduler, state in zip(self._schedulers, saved, strict=True):
            scheduler.load_state_dict(state)
        self.__dict__.update({k: _copy(v) for k, v in state_dict.items() if k != "_schedulers"})


def _restart(scheduler: LRScheduler) -> None:
    """Set ``scheduler`` to its epoch 0 by its closed form (PyTorch's ``_update_lr(0)``)."""
    scheduler.last_epoch = 0
    scheduler._get_lr_called_within_step = True
    try:
        values = scheduler._get_closed_form_lr()
    finally:
        scheduler._get_lr_called_within_step = False
    for group, lr in zip(scheduler.optimizer.param_groups, values, strict=True):
        group["lr"] = lr
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


__all__ += ["ConstantLR", "CosineAnnealingWarmRestarts", "CyclicLR", "LinearLR", "OneCycleLR",
            "PolynomialLR", "SequentialLR"]

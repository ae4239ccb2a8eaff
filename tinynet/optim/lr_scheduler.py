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

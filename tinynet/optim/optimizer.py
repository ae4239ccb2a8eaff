"""Optimizer: the base class of SGD, Adam, AdamW, RMSprop and Adagrad, with PyTorch's
parameter groups and state.

- ``param_groups``: a list of dicts, each ``{"params": [...], "lr": ..., ...}``: every
  parameter in a group is updated with that group's options (``defaults`` fill the gaps).
- ``state``: parameter -> dict of what the update rule keeps between steps (momentum buffer,
  Adam's moments and step count), created on the parameter's first update.
- ``state_dict()`` uses PyTorch's layout: parameters become their position in the order of
  ``param_groups`` (0, 1, 2, ...), arrays become numpy copies, so it saves with ``tn.save``
  and converts to and from a PyTorch optimizer's state dict. ``load_state_dict`` checks
  everything (indices, state keys, shapes, dtypes, options) before it changes anything.

``step`` is the walk every optimizer shares (groups -> parameters -> gradient checks ->
maximize -> state creation -> the update rule -> version bump). Subclasses state only what is
theirs, and the update rule once:

- ``_rule``: the rule for one parameter, per element, as text (a ``kernels.updates.Rule``)::

      sgd_rule(momentum=True, ...) ->  g = g + weight_decay * p
                                       momentum_buffer = momentum_buffer * momentum + keep * g
                                       p = p - lr * momentum_buffer

  From that text ``tinynet/kernels/updates.py`` makes the numba loop and the numpy twin, and
  ``tn.compile`` pastes the same loop into the code it generates: one definition, no second
  copy of any optimizer anywhere;
- ``_numbers``: the numbers the rule takes from the group (lr, Adam's betas...), read at every
  step, so a scheduler's new lr is always used; what depends on the step count (Adam's bias
  corrections) the rule computes itself from the count (``Rule.counts``, ``Rule.prepare``);
- ``_form``: what of a group picks the rule's statements (``weight_decay != 0``...);
- ``_init_state`` (a parameter's state before its first update), ``_check_group``
  (hyperparameter validation) and, for ``load_state_dict``, ``_STATE_KEYS`` and
  ``_required_state`` (which state keys the update reads under a group's options).

The update of one parameter is one op, ``_Update``: it writes p and its state in place, and
``tn.compile``'s tracer records it like any other op (it sees it at ``Function.apply``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinynet.autograd import enable_grad, no_grad
from tinynet.autograd.engine import Function, observers
from tinynet.errors import DTypeError, GraphError, ShapeError, StateDictError, ValueRangeError
from tinynet.kernels import apply_rule
from tinynet.kernels.updates import Rule
from tinynet.tensor import Tensor


class _RequiredParameter:
    """Marks a hyperparameter without a default (each group must give it)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_NO_SETS = ("optimizer parameters need to be organized in ordered collections, but the ordering "
            "of tensors in sets will change between runs. Please use a list instead.")


class Optimizer:
    """Base class: holds the parameter groups and per-parameter state."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        name = type(self).__name__
        if isinstance(params, Tensor | dict) or not hasattr(params, "__iter__"):
            raise DTypeError(
                f"{name}: params should be an iterable of Tensors or dicts (e.g. "
                f"model.parameters()), got {type(params).__name__}"
            )
        if isinstance(params, set):
            raise DTypeError(f"{name}: {_NO_SETS}")
        groups = list(params)
        if not groups:
            raise ValueRangeError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (``lr``, ...); options it does not
        give come from the optimizer's defaults. A parameter may belong to one group only."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise DTypeError(f"{name}: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise DTypeError(f"{name}: {_NO_SETS}")
        elif params is None:
            raise ValueRangeError(f"{name}: a param group needs a 'params' entry")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise DTypeError(
                    f"{name}: optimizer can only optimize Tensors, but one of the params is "
                    f"{type(p).__name__}" + (" (pass model.parameters(), not "
                                             "named_parameters())" if isinstance(p, tuple) else "")
                )
            if not p.is_leaf:
                raise ValueRangeError(
                    f"{name}: can't optimize a non-leaf Tensor (shape {p.shape}); optimize the "
                    "leaf it was computed from, or a detached copy"
                )
            if p.data.dtype.kind != "f":
                raise DTypeError(f"{name}: can only optimize floating point tensors, got "
                                 f"{p.data.dtype}")
        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                f"{name}: a parameter group contains duplicate parameters; in future, this will "
                "cause an error (PyTorch's rule); pass each parameter once",
                UserWarning,
                stacklevel=3,
            )
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueRangeError(
                    f"{name}: parameter group didn't specify a value of required optimization "
                    f"parameter {key}"
                )
            group.setdefault(key, default)
        self._check_group(group)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueRangeError(
                f"{name}: some parameters appear in more than one parameter group"
            )
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise if the group's hyperparameters are invalid (overridden by each optimizer)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default, as PyTorch) or zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given.

        For each group, for each of its parameters p with a gradient g: ``-g`` if the group
        maximizes, p's state made on its first update (``_init_state``), then the optimizer's
        rule, applied as one in-place op (``_update``), and p's version bumped, so graphs that
        saved p notice. All of it under ``no_grad``: an update is not part of any graph."""
        loss = self._closure_loss(closure)
        self._check_before_step()
        name = type(self).__name__
        with no_grad():
            for group in self.param_groups:
                maximize = group.get("maximize", False)
                numbers: dict[Rule, tuple] = {}  # the group's numbers for each rule, read once
                for p in group["params"]:
                    if check_gradient(name, p) is None:
                        continue  # no gradient: no update, and the state does not decay either
                    grad = -p.grad if maximize else p.grad  # an op: traced
                    state = self.state.get(p)
                    if state is None:
                        state = self._init_state(p, group)
                        if state is not None:
                            self.state[p] = state
                    self._update(p, grad, state, group, numbers)
                    bump_version(p)
        return loss

    def _check_before_step(self) -> None:
        """Checks of the whole optimizer before any parameter changes (overridden)."""

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any] | None:
        """A parameter's state before its first update (None: this group keeps none)."""
        return {}

    # ---- the update rule -------------------------------------------------------------------
    # Each optimizer states its rule once, per element (``_rule``: a ``kernels.updates.Rule``
    # for the group's switches) and the numbers it takes (``_numbers``: read from the group
    # at every step). ``_update`` applies it as one op, ``_Update``.

    def _rule(self, group: dict[str, Any], state: dict[str, Any] | None) -> Rule:
        """The rule for this group's switches (``_form``): arrays ``p``, ``g`` and the state
        entries it names, statements per element. Overridden by each optimizer."""
        raise NotImplementedError

    def _numbers(self, group: dict[str, Any]) -> dict[str, float]:
        """The numbers the rule takes from the group, read now: once per group at every step,
        and at every replay of a compiled step, so a changed lr or momentum is always used.
        The rule's step counts (``rule.counts``) come from each parameter's state after them.
        Overridden by each optimizer."""
        raise NotImplementedError

    def _form(self, group: dict[str, Any]) -> tuple:
        """What of a group chooses the rule's statements (switches, ``weight_decay != 0``...),
        as opposed to the numbers it reads at every step. tn.compile's guard checks it."""
        return ()

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any] | None,
                group: dict[str, Any], numbers: dict[Rule, tuple]) -> None:
        """p's update: the rule applied in place to p, its gradient (already negated if the
        group maximizes) and the state arrays the rule names, as one op. ``numbers`` holds the
        group's numbers of each rule met in this step (read from the group once per step)."""
        rule = self._rule(group, state)
        tensors, arrays = [p, grad], [p._data, grad._data]
        for key in rule.arrays[2:]:
            t = state.get(key)
            if t is None:  # made here (SGD's first step writes it before reading it), as
                # zeros: a switch turned on later (Adam's amsgrad) reads it first, from zero
                t = state[key] = Tensor._make(np.zeros_like(p._data))
            tensors.append(t)
            arrays.append(t._data)
        if observers.active:  # extra: the op, so tn.compile's trace and watch.py see it
            _Update.apply(*tensors, rule=rule, read=Numbers(self, group, state, rule))
        else:  # what _Update's forward does, without the op's bookkeeping (4x the kernel's time)
            read = numbers.get(rule)
            if read is None:
                read = numbers[rule] = rule.pick(self._numbers(group))
            apply_rule(rule, arrays, read + rule.count(state))

    def _closure_loss(self, closure: Callable[[], Any] | None) -> Any:
        """Run ``closure`` (which recomputes the loss and calls backward) with grad on."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ---- saving and loading ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params": [indices]}]}``
        with numpy array copies, indices numbering the parameters in group order."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and index[id(p)] not in state:
                    state[index[id(p)]] = {
                        k: v.data.copy() if isinstance(v, Tensor) else v
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    # Keys a parameter's state may hold, and those it must hold under a group's options:
    # overridden by each optimizer (SGD keeps an optional momentum buffer only).
    _STATE_KEYS: tuple[str, ...] = ()

    def _required_state(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by ``state_dict`` (this optimizer's or PyTorch's,
        arrays as numpy arrays or tensors). Everything is checked before anything changes:
        group sizes; parameter indices (ints, or their text as some formats store keys; each
        naming one parameter); each state entry's keys (all those the update needs, e.g. Adam's
        ``exp_avg``, and no unknown ones), shapes and dtypes. State arrays are cast to their
        parameter's dtype, as PyTorch does. The saved options (lr, ...) replace the current
        ones; options the saved groups lack keep their current values."""
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise StateDictError(
                f"{where}: expected a dict with 'state' and 'param_groups' (from "
                "optimizer.state_dict())"
            )
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, list | tuple) or not all(
                isinstance(g, dict) for g in saved_groups):
            raise StateDictError(f"{where}: 'param_groups' must be a list of dicts, got "
                                 f"{type(saved_groups).__name__}")
        if not isinstance(saved_state, dict):
            raise StateDictError(f"{where}: 'state' must be a dict from parameter index to "
                                 f"that parameter's state, got {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise StateDictError(
                f"{where}: loaded state dict has {len(saved_groups)} parameter "
                f"group(s), this optimizer has {len(self.param_groups)}"
            )
        by_index: dict[int, tuple[Tensor, int]] = {}  # saved index -> (parameter, group)
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            saved_params = saved.get("params")
            if not isinstance(saved_params, list | tuple):
                raise StateDictError(f"{where}: param_groups[{i}]['params'] must be a list of "
                                     f"parameter indices, got {type(saved_params).__name__}")
            if len(saved_params) != len(group["params"]):
                raise StateDictError(
                    f"{where}: loaded parameter group {i} has "
                    f"{len(saved_params)} parameters, this optimizer's has "
                    f"{len(group['params'])}"
                )
            for saved_index, p in zip(saved_params, group["params"], strict=True):
                index = _parameter_index(saved_index, where, f"param_groups[{i}]['params']")
                if index in by_index:
                    raise StateDictError(
                        f"{where}: parameter index {index} appears twice in the saved "
                        f"param_groups (again in param_groups[{i}]['params']); each index must "
                        "name one parameter"
                    )
                by_index[index] = (p, i)
            new_groups.append(self._restore_options(group, saved, i))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, entry in saved_state.items():
            index = _parameter_index(key, where, "state")
            if index not in by_index:
                raise StateDictError(
                    f"{where}: state for parameter {index}, which no group has"
                )
            p, i = by_index[index]
            if p in new_state:
                raise StateDictError(f"{where}: two state entries for parameter {index} (keys "
                                     "such as 0 and '0')")
            if not isinstance(entry, dict):
                raise StateDictError(f"{where}: state[{index}] must be a dict, got "
                                     f"{type(entry).__name__}")
            self._check_state_keys(entry, new_groups[i], index)
            new_state[p] = {k: self._restore_value(p, index, k, v) for k, v in entry.items()}
        for group, new in zip(self.param_groups, new_groups, strict=True):
            group.clear()
            group.update(new)
        for p, _ in by_index.values():
            self.state.pop(p, None)
        self.state.update(new_state)

    def _check_state_keys(self, entry: dict[str, Any], group: dict[str, Any],
                          index: int) -> None:
        """Refuse a state entry missing what this optimizer's update reads (e.g. an Adam state
        without ``exp_avg``, which would fail later inside ``step``) or holding keys it never
        writes (a state saved by another optimizer)."""
        name = type(self).__name__
        missing = [k for k in self._required_state(group) if k not in entry]
        keeps = ", ".join(map(repr, self._STATE_KEYS))
        if missing:
            raise StateDictError(
                f"{name}.load_state_dict: state[{index}] lacks {', '.join(map(repr, missing))}, "
                f"which {name}'s update needs ({name} keeps {keeps}); was it saved by another "
                "optimizer or with other options?"
            )
        unknown = [k for k in entry if k not in self._STATE_KEYS]
        if unknown:
            raise StateDictError(
                f"{name}.load_state_dict: state[{index}] has unexpected key(s) "
                f"{', '.join(map(repr, unknown))} ({name} keeps {keeps}); was it saved by "
                "another optimizer?"
            )

    def _restore_options(self, group: dict[str, Any], saved: dict[str, Any],
                         i: int) -> dict[str, Any]:
        """The saved group's options (with this group's params), checked. PyTorch's switches
        for maths this optimizer does not implement are dropped when off and refused when on;
        its execution switches (``foreach``, ``fused``...) are dropped; other keys (a
        scheduler's ``initial_lr``, ``param_names``) are kept."""
        new = dict(group)
        for key, value in saved.items():
            if key == "params" or key in _EXECUTION_SWITCHES:
                continue
            if key in _MATH_SWITCHES and key not in self.defaults:
                if value:
                    raise StateDictError(
                        f"{type(self).__name__}.load_state_dict: parameter group {i} uses "
                        f"{key}={value!r}, which tinynet's {type(self).__name__} does not "
                        "implement"
                    )
                continue
            new[key] = tuple(value) if key == "betas" and isinstance(value, list) else value
        self._check_group(new)
        return new

    def _restore_value(self, p: Tensor, index: int, key: str, value: Any) -> Any:
        where = f"{type(self).__name__}.load_state_dict: state[{index}][{key!r}]"
        if key == "step":
            return _step_count(value, where)
        if value is None and key == "momentum_buffer":  # PyTorch's SGD before its first step
            return None
        array = value.data if isinstance(value, Tensor) else value
        try:
            array = np.asarray(array)
        except (ValueError, TypeError) as e:
            raise DTypeError(f"{where} is not an array of numbers ({e})") from None
        if array.dtype.kind not in "fiu":
            raise DTypeError(
                f"{where} has dtype {array.dtype}; optimizer state must be real numbers"
            )
        if array.shape != p.data.shape:
            raise ShapeError(
                f"{where} has shape {tuple(array.shape)} but its parameter has shape "
                f"{tuple(p.data.shape)}"
            )
        return Tensor._make(np.array(array, dtype=p.data.dtype, copy=True))

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


class _Update(Function):
    """One parameter's update, as an op: ``rule`` (a ``kernels.updates.Rule``) applied in place
    to the arrays of (p, g, *state), with the numbers ``read()`` gives now.

    It is an op like any other, so ``tn.compile``'s trace records it through the engine's
    observer hook (``Function.apply``): the written arrays (``ctx.writes``) and ``read``,
    which a replay calls again, so learning rates and step counts are never baked in."""

    op = "update"

    @staticmethod
    def forward(ctx: Any, *arrays: np.ndarray, rule: Rule, read: Callable[[], tuple]
                ) -> np.ndarray:
        ctx.writes = rule.written  # which inputs this op writes in place
        apply_rule(rule, arrays, read())
        return arrays[0]


class Numbers:
    """``read`` for one parameter's ``_Update``: the optimizer's ``_numbers`` for its group now,
    as floats in the rule's order, then the parameter's step counts, advanced (``rule.count``).
    Two are equal when they always give the same numbers (same group and rule, and no step
    counts: SGD's), so a compiled step reads them once."""

    def __init__(self, optimizer: Optimizer, group: dict[str, Any],
                 state: dict[str, Any] | None, rule: Rule) -> None:
        self.optimizer, self.group, self.state, self.rule = optimizer, group, state, rule

    def __call__(self) -> tuple[float, ...]:
        return self.rule.pick(self.optimizer._numbers(self.group)) + self.rule.count(self.state)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Numbers) and other.optimizer is self.optimizer
                and other.group is self.group and other.rule is self.rule
                and (other.state is self.state or not self.rule.counts))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        groups = self.optimizer.param_groups
        k = next((i for i, g in enumerate(groups) if g is self.group), "?")
        return f"{type(self.optimizer).__name__}.param_groups[{k}] now"


# PyTorch options that change what a step computes (refused when on if an optimizer lacks
# them), and options that only choose how PyTorch runs the same step (ignored here).
_MATH_SWITCHES = ("maximize", "amsgrad", "decoupled_weight_decay", "nesterov", "centered")
_EXECUTION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")


def _parameter_index(key: Any, where: str, place: str) -> int:
    """A saved parameter index as an int: an int, or its decimal text (formats that store dict
    keys as text give "0"); anything else is refused, naming it."""
    if isinstance(key, bool) or not isinstance(key, int | np.integer | str):
        raise StateDictError(f"{where}: {place} holds {key!r} ({type(key).__name__}), which is "
                             "not a parameter index (an int such as 0, or its text '0')")
    if isinstance(key, str):
        if not key.isdecimal():
            raise StateDictError(f"{where}: {place} holds the key {key!r}, which is not a "
                                 "parameter index (an int such as 0, or its text '0')")
        return int(key)
    if key < 0:
        raise StateDictError(f"{where}: {place} holds the negative parameter index {key}")
    return int(key)


def _step_count(value: Any, where: str) -> int:
    """A saved step count (an int, float or 0-d tensor, as PyTorch saves it) as an int."""
    raw = value.data if isinstance(value, Tensor) else value
    try:
        array = np.asarray(raw)
    except (ValueError, TypeError):
        array = np.asarray(None)
    if array.size != 1 or array.dtype.kind not in "fiu":
        raise DTypeError(f"{where} must be a step count (a number), got {value!r}")
    count = float(array.reshape(()))
    if not (math.isfinite(count) and count >= 0 and count == int(count)):
        raise ValueRangeError(f"{where} must be a whole number >= 0, got {count}")
    return int(count)


def bump_version(p: Tensor) -> None:
    """Record that p's memory changed in place, so graphs that saved p notice."""
    p._version.value += 1


def check_non_negative(group: dict[str, Any], names: tuple[tuple[str, str], ...],
                       optimizer: str) -> None:
    """Each ``(key, what)`` of ``group`` is a number >= 0, or an error in PyTorch's words.
    ``not x >= 0`` rather than ``x < 0``: NaN fails every comparison and must be refused."""
    for key, what in names:
        value = check_number(group[key], key, optimizer)
        if not value >= 0:
            raise ValueRangeError(f"{optimizer}: Invalid {what}: {value} (must be >= 0)")


def check_number(value: Any, what: str, optimizer: str) -> float:
    """A hyperparameter as a float, or a TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise DTypeError(f"{optimizer}: {what} must be a number, got {type(value).__name__}")
    return float(value)


def check_execution_switches(optimizer: str, foreach: Any = None, capturable: Any = False,
                             differentiable: Any = False, fused: Any = None) -> None:
    """PyTorch's switches that choose how it runs the same maths (``foreach``: one kernel per
    list of tensors, ``fused``: one kernel per step) are accepted so PyTorch scripts run
    unchanged; tinynet has one implementation, so they change nothing and are not stored.
    ``capturable`` (CUDA graphs) and ``differentiable`` (autograd through the step) are
    refused when on: tinynet has neither."""
    for what, value in (("capturable", capturable), ("differentiable", differentiable)):
        if value:
            raise ValueRangeError(
                f"{optimizer}: {what}=True is not supported by tinynet (it runs on the CPU, "
                "without CUDA graphs, and its optimizer steps are not recorded by autograd); "
                f"leave {what}=False"
            )
    for what, value in (("foreach", foreach), ("fused", fused)):
        if value is not None and not isinstance(value, bool):
            raise DTypeError(f"{optimizer}: {what} must be None, True or False, got {value!r}")


_FLOAT16 = np.dtype(np.float16)


@functools.lru_cache(maxsize=64)  # asked at every step, for a handful of (dtype, eps)
def _rounds_to_zero(dtype: np.dtype, eps: float) -> bool:
    return bool(dtype.type(eps) == 0)


def check_eps_fits(optimizer: Optimizer, update: str) -> None:
    """Refuse an eps that rounds to 0 in a parameter's dtype (float16 cannot hold Adam's
    default 1e-8): an update such as m / (sqrt(v) + eps) would be 0/0 = nan wherever a gradient
    has been 0, silently (PyTorch gives those nans). Checked before any parameter changes."""
    name = type(optimizer).__name__
    for group in optimizer.param_groups:
        eps = group["eps"]
        if eps <= 0 or not _rounds_to_zero(_FLOAT16, eps):  # the only dtype that loses it
            continue
        for p in group["params"]:
            if p.grad is not None and _rounds_to_zero(p._data.dtype, eps):
                raise ValueRangeError(
                    f"{name}: eps={eps} rounds to 0 in {p.data.dtype} (a parameter of shape "
                    f"{p.shape}), so the update {update} would be 0/0 = nan wherever the "
                    "gradient has been 0; use an eps the dtype can hold (e.g. eps=1e-4 for "
                    "float16) or keep the parameters in float32"
                )


def check_flag(value: Any, what: str, optimizer: str) -> bool:
    """A switch (amsgrad, maximize, ...) as a bool, or a TypeError naming it (a string such as
    "no" would otherwise count as True)."""
    if not isinstance(value, bool | np.bool_):
        raise DTypeError(f"{optimizer}: {what} must be True or False, got {value!r}")
    return bool(value)


def check_gradient(optimizer: str, p: Tensor) -> np.ndarray | None:
    """The array of ``p.grad`` for an update, or None if there is none. ``.grad`` is a plain
    attribute users may set, so it is checked here (as PyTorch checks on assignment): a tensor
    of p's shape; and p's memory must be writable (a read-only array from tn.from_numpy)."""
    grad = p.grad
    if grad is None:
        return None
    if isinstance(grad, Tensor) and grad._data.shape == p._data.shape and p._data.flags.writeable:
        return grad._data
    if not isinstance(grad, Tensor):
        raise DTypeError(
            f"{optimizer}: a parameter's .grad must be a Tensor, got {type(grad).__name__}"
        )
    if grad.data.shape != p.data.shape:
        raise ShapeError(
            f"{optimizer}: a parameter of shape {p.shape} has a .grad of shape {grad.shape}; "
            "they must be equal"
        )
    raise GraphError(
        f"{optimizer}: a parameter of shape {p.shape} has read-only memory (e.g. made with "
        "tn.from_numpy of a read-only array) and can't be updated in place; copy it first"
    )

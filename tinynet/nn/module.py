"""Module: the base class of every layer and model.

A module owns three kinds of things, each in an insertion-ordered dict (never a set, so the
order of ``parameters()`` is the order of assignment on every run, which optimizer state and
saved files rely on):

- ``_parameters``: name -> Parameter (or None), what an optimizer trains;
- ``_buffers``: name -> Tensor (or None), saved state that is not trained;
- ``_modules``: name -> Module (or None), the children.

Assigning an attribute registers it: ``self.weight = Parameter(...)`` puts it in
``_parameters``, ``self.fc = Linear(...)`` in ``_modules``. The object also stays in the
instance ``__dict__``, so reading ``self.weight`` is an ordinary attribute lookup, as fast as
on any Python object (PyTorch finds it through a ``__getattr__`` fallback, a Python call per
access; for tiny networks that overhead shows). ``__setattr__`` and ``__delattr__`` keep the
two in step.

Names are dotted paths: the weight of the first layer of a ``Sequential`` is ``0.weight``, the
same key PyTorch uses, so ``state_dict()`` loads into ``torch.nn.Sequential`` and back.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tinynet import dtypes
from tinynet.autograd.hooks import RemovableHandle
from tinynet.errors import DTypeError, GraphError, ShapeError, ValueRangeError
from tinynet.nn.errors import StateDictError
from tinynet.nn.parameter import Parameter
from tinynet.tensor import Tensor, bump_world_stamp, read_values


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"IncompatibleKeys(missing_keys={self.missing_keys}, "
                f"unexpected_keys={self.unexpected_keys})")


class ForwardHooks:
    """A module's forward hooks, each dict id -> (hook, with_kwargs, always_call) in calling
    order; ``call`` is ``Module.__call__`` while a module has some. The module holds it as the
    attribute ``_forward_hooks_of`` from its first hook until its last is removed, so a
    module's attributes say whether it has hooks (what tn.compile's guard compares)."""

    def __init__(self, module: Module) -> None:
        self.module = weakref.ref(module)
        self.pre: dict[int, tuple[Callable[..., Any], bool, bool]] = {}
        self.post: dict[int, tuple[Callable[..., Any], bool, bool]] = {}

    def _after_remove(self) -> None:
        module = self.module()
        if not (self.pre or self.post) and module is not None and (
                module.__dict__.get("_forward_hooks_of") is self):
            del module._forward_hooks_of  # (Module.__delattr__: moves the world stamp)

    def add(self, kind: str, hook: Callable[..., Any], prepend: bool, with_kwargs: bool,
            always_call: bool = False) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"register_forward_{'pre_' if kind == 'pre' else ''}hook: the hook "
                            f"must be callable, got {type(hook).__name__}")
        hooks = getattr(self, kind)
        handle = RemovableHandle(hooks, removed=self._after_remove)
        hooks[handle.id] = (hook, with_kwargs, always_call)
        if prepend:
            for key in [k for k in hooks if k != handle.id]:
                hooks[key] = hooks.pop(key)  # (moved behind the new one, in their order)
        bump_world_stamp()  # tn.compile's guards: the module's hooks changed
        return handle

    def call(self, module: Module, args: tuple, kwargs: dict[str, Any]) -> Any:
        if self.pre or self.post:
            read_values(f"calls {type(module).__name__} with forward hooks (Python code that "
                        "tn.compile would not run again at each call): remove them "
                        "(handle.remove()) or run this step without tn.compile")
        output = None
        called: set[int] = set()  # the output hooks that ran
        try:
            for hook, with_kwargs, _ in list(self.pre.values()):
                if with_kwargs:
                    result = hook(module, args, kwargs)
                    if result is not None:
                        if not (isinstance(result, tuple) and len(result) == 2):
                            raise TypeError(
                                f"forward pre-hook of {type(module).__name__} (with_kwargs="
                                f"True) returned {type(result).__name__}; it must return None "
                                "or a tuple (args, kwargs)")
                        args, kwargs = result
                else:
                    result = hook(module, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            output = module.forward(*args, **kwargs)
            for key, (hook, with_kwargs, _) in list(self.post.items()):
                called.add(key)
                result = _after(hook, with_kwargs, module, args, kwargs, output)
                if result is not None:
                    output = result
        except BaseException:
            for key, (hook, with_kwargs, always) in list(self.post.items()):
                if always and key not in called:
                    try:
                        _after(hook, with_kwargs, module, args, kwargs, output)
                    except Exception:  # the first error is the one raised (PyTorch's choice)
                        warnings.warn(f"a forward hook of {type(module).__name__} with "
                                      "always_call=True raised an error, silenced: an earlier "
                                      "error is being raised", stacklevel=2)
            raise
        return output


def _after(hook: Callable[..., Any], with_kwargs: bool, module: Module, args: tuple,
           kwargs: dict[str, Any], output: Any) -> Any:
    """Call a forward hook as it was registered (with or without the keyword arguments)."""
    return hook(module, args, kwargs, output) if with_kwargs else hook(module, args, output)


class Module:
    """Base class of layers and models: subclass it, create parameters and submodules in
    ``__init__`` (after ``super().__init__()``), and compute the output in ``forward``.

    ``module(x)`` calls ``forward(x)``.
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", {})  # an ordered "set" of names
        object.__setattr__(self, "_modules", {})

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._forward_hooks_of is None:  # (a class attribute until a hook is registered)
            return self.forward(*args, **kwargs)
        return self._forward_hooks_of.call(self, args, kwargs)

    # ---- forward hooks (PyTorch's register_forward_pre_hook / register_forward_hook) ---------

    _forward_hooks_of: ForwardHooks | None = None

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each ``forward``; a value it returns replaces the
        positional arguments (a tuple as they are, anything else as a 1-tuple). With
        ``with_kwargs=True``: ``hook(module, args, kwargs)``, returning None or a new
        ``(args, kwargs)`` pair. ``prepend``: before the hooks already registered. Returns a
        handle whose ``remove()`` unregisters it. (tn.compile refuses a step that calls a
        module with hooks: their Python code would not run again at each replay.)"""
        return self._hooks().add("pre", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False
                              ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each ``forward``; a value it returns
        replaces the output. With ``with_kwargs=True``: ``hook(module, args, kwargs,
        output)``. ``always_call``: also when ``forward`` (or a pre-hook) raised, with output
        None, before the error propagates. ``prepend`` and the handle as for
        ``register_forward_pre_hook``."""
        return self._hooks().add("post", hook, prepend, with_kwargs, always_call)

    def _hooks(self) -> ForwardHooks:
        if self._forward_hooks_of is None:
            self._forward_hooks_of = ForwardHooks(self)  # (__setattr__: moves the world stamp)
        return self._forward_hooks_of

    # ---- registration ----------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        bump_world_stamp()  # tn.compile's guards: an attribute a traced step may read
        if isinstance(value, Parameter | Module):
            is_param = isinstance(value, Parameter)
            self._check_name(name, "parameter" if is_param else "module")
            self._register(name, value, "_parameters" if is_param else "_modules")
        elif "_parameters" in self.__dict__ and (
            name in self._parameters or name in self._modules or name in self._buffers
        ):
            self._assign_registered(name, value)
        else:
            object.__setattr__(self, name, value)

    def _assign_registered(self, name: str, value: Any) -> None:
        """Assign a plain value (not a Parameter or Module) to a registered name: only None,
        or a Tensor for a buffer, make sense there."""
        kind = type(value).__name__
        if name in self._parameters and value is not None:
            raise TypeError(
                f"cannot assign '{kind}' as parameter '{name}' (Parameter or None expected); "
                f"wrap it: self.{name} = tn.nn.Parameter(value)"
            )
        if name in self._modules and value is not None:
            raise TypeError(f"cannot assign '{kind}' as child module '{name}' (Module or None "
                            "expected)")
        if name in self._buffers and value is not None and not isinstance(value, Tensor):
            raise TypeError(f"cannot assign '{kind}' as buffer '{name}' (Tensor or None "
                            "expected)")
        registry = (self._parameters if name in self._parameters
                    else self._modules if name in self._modules else self._buffers)
        registry[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        bump_world_stamp()
        self._forget(name)
        object.__delattr__(self, name)

    def _check_name(self, name: Any, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {what}s before Module.__init__() call; call "
                "super().__init__() first in your module's __init__"
            )
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{what} name can't be empty or contain '.', got {name!r}")

    def _check_free(self, name: str, registry: dict[str, Any]) -> None:
        """register_*() refuses a name already used by something else (PyTorch's rule);
        plain assignment (``self.name = ...``) replaces it instead."""
        if name not in registry and (name in self.__dict__ or hasattr(type(self), name)):
            raise KeyError(f"attribute '{name}' already exists")

    def _forget(self, name: str) -> None:
        """Drop ``name`` from every registry."""
        if "_parameters" not in self.__dict__:
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent_buffers.pop(name, None)

    def _register(self, name: str, value: Any, kind: str, persistent: bool = True) -> None:
        """Put ``value`` in the registry ``kind`` (and in no other) and in __dict__. A name
        that is already in that registry keeps its place in the order."""
        bump_world_stamp()
        registry = getattr(self, kind)
        if name not in registry:
            self._forget(name)
        registry[name] = value
        if kind == "_buffers":
            if persistent:
                self._non_persistent_buffers.pop(name, None)
            else:
                self._non_persistent_buffers[name] = None
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a declared but absent one such as ``bias=False``)."""
        self._check_name(name, "parameter")
        self._check_free(name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(tn.nn.Parameter or None required)"
            )
        self._register(name, param, "_parameters")

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is part of the module's state but not trained. Persistent buffers
        appear in ``state_dict()``; ``to(dtype)`` casts floating ones."""
        self._check_name(name, "buffer")
        self._check_free(name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(Tensor or None required)"
            )
        self._register(name, tensor, "_buffers", persistent)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as an attribute and named ``name`` in paths."""
        self._check_name(name, "module")
        self._check_free(name, self._modules)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._register(name, module, "_modules")

    register_module = add_module

    # ---- walking the tree ------------------------------------------------------------------

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first, each once (a module reachable by
        two paths is yielded under the first)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            path = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, path, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(
        self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = iter([(prefix, self)])
        for module_prefix, module in modules:
            for name, value in getattr(module, kind).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs in registration order, each parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The module at a dotted path (``"0"``, ``"encoder.fc"``); ``""`` is this one."""
        module: Module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule '{part}' "
                                     f"(looking up '{target}')")
            module = child
        return module

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every child (recursively) and then on this module; returns self.
        Typical use: custom initialisation, ``model.apply(init_weights)``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ---------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be boolean, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        bump_world_stamp()
        return self

    def eval(self) -> Module:
        """Evaluation mode: same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch gradient tracking of every parameter on or off (e.g. to freeze a part)."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default, as PyTorch) or to zeros."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.detach_()
                param.grad.data[...] = 0

    # ---- dtype -----------------------------------------------------------------------------

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Cast floating parameters and buffers to ``dtype``, in place: ``model.to(tn.float64)``;
        ``model.to(device)``, ``model.to(device, dtype)``, ``model.to(tensor)`` (its dtype) and
        the keywords ``device=``, ``dtype=``, ``non_blocking=`` (ignored) as in PyTorch.

        Each Parameter stays the same object (its ``.data``, and ``.grad`` if any, are replaced
        by cast copies), so references held elsewhere, an optimizer's for instance, stay valid.
        Optimizer state already created (momentum, Adam moments) is not cast: cast the model
        before creating the optimizer, as in PyTorch. Integer buffers keep their dtype.
        tinynet runs on the CPU only, so ``to("cpu")`` (or ``tn.device("cpu")``) is accepted
        and changes nothing; any other device is refused.
        """
        from tinynet.creation import check_device
        from tinynet.tensor import device as device_type

        kwargs.pop("non_blocking", None)
        dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword argument(s) {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, device_type) or (
                    isinstance(arg, str) and arg.split(":")[0] in _DEVICES):
                device = arg
            elif isinstance(arg, bool):  # to(dtype, non_blocking) positional flag
                continue
            else:
                dtype = arg
        check_device(device, "Module.to")
        if dtype is None:
            return self
        target = dtypes.to_dtype(dtype)
        if target.kind != "f":
            raise DTypeError(
                f"to: nn.Module.to only accepts floating point dtypes, got {target}"
            )
        for tensor in [*self.parameters(), *self.buffers()]:
            if tensor.data.dtype.kind == "f" and tensor.data.dtype != target:
                tensor.data = tensor.data.astype(target)
                tensor._version.value += 1
                if tensor.grad is not None:
                    tensor.grad.data = tensor.grad.data.astype(target)
        return self

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64 in place (see ``to``)."""
        return self.to(dtypes.float64)

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32 in place (see ``to``)."""
        return self.to(dtypes.float32)

    def half(self) -> Module:
        return self.to(dtypes.float16)

    def cpu(self) -> Module:
        """This module itself: tinynet runs on the CPU."""
        return self

    def cuda(self, device: Any = None) -> Module:
        """Refused: tinynet runs on the CPU only (``tn.cuda.is_available()`` is False)."""
        raise ValueRangeError(
            f"{type(self).__name__}.cuda: tinynet runs on the CPU only; use .to(device) with "
            "device = 'cuda' if tn.cuda.is_available() else 'cpu', or drop the call"
        )

    # ---- saving and loading ----------------------------------------------------------------

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict[str, Any]:
        """Every parameter and persistent buffer by dotted name, as a Tensor detached from the
        graph that shares the parameter's memory, as in PyTorch (``keep_vars=True``: the
        parameters themselves). Training changes the values: keep a snapshot with
        ``{k: v.clone() for k, v in sd.items()}`` or ``copy.deepcopy``.

        Keys and shapes are PyTorch's, so one call converts it for torch,
        ``torch_model.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in sd.items()})``,
        and ``model.load_state_dict(torch_model.state_dict())`` reads torch's directly."""
        out: dict[str, Any] = {}
        self._save_to(out, prefix, keep_vars)
        return out

    def _save_to(self, out: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = buffer if keep_vars else buffer.detach()
        for name, module in self._modules.items():
            if module is not None:
                module._save_to(out, prefix + name + ".", keep_vars)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, *,
        allow_nonfinite: bool = False,
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (name -> array or tensor) into this module's
        parameters and buffers, in place.

        Values of another dtype are cast to the model's, as PyTorch's ``copy_`` does (float64
        values load into a float32 model as float32, and the model stays float32; to keep
        float64, cast the model first with ``model.double()``). Everything is checked before
        anything changes: every key (with ``strict=True``, missing and unexpected keys are
        errors), every shape, and every parameter's values after the cast, which must be
        finite: NaN or inf weights (a checkpoint of a diverged run, or float64 values beyond
        float32's range) are refused unless ``allow_nonfinite=True`` (PyTorch loads them
        silently; buffers may hold them, e.g. -inf in a mask). A state dict that does not fit
        leaves the model untouched, and the error lists every problem, naming each key. Values
        may be numpy arrays, tinynet tensors or anything ``np.asarray`` takes (a PyTorch state
        dict works directly). Returns the missing and unexpected keys.
        """
        if not isinstance(state_dict, Mapping):
            raise DTypeError(
                f"load_state_dict: expected a dict of name -> array, got "
                f"{type(state_dict).__name__}"
            )
        own = self.state_dict(keep_vars=True)
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        shape_problems, value_problems, memory_problems = [], [], []
        overflow = False  # a cast to the model's dtype made finite values infinite
        arrays: dict[str, np.ndarray] = {}
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            array = _as_array(state_dict[key], key)
            if array.shape != tensor.data.shape:
                shape_problems.append(
                    f"size mismatch for {key}: the model has shape {tuple(tensor.data.shape)}, "
                    f"the state dict has shape {tuple(array.shape)}"
                )
            else:
                given = array
                if given.dtype != tensor.data.dtype:  # PyTorch's copy_ casts
                    with np.errstate(over="ignore", invalid="ignore"):
                        array = array.astype(tensor.data.dtype)
                if (isinstance(tensor, Parameter) and not allow_nonfinite
                        and array.dtype.kind == "f" and not np.isfinite(array).all()):
                    nans, infs = int(np.isnan(array).sum()), int(np.isinf(array).sum())
                    overflowed = given.dtype != array.dtype and np.isfinite(given).all()
                    overflow |= bool(overflowed)
                    why = (f"{given.dtype} values beyond {array.dtype}'s range" if overflowed
                           else "saved from a diverged run?")
                    value_problems.append(
                        f"non-finite values for {key}: {nans} nan and {infs} inf among its "
                        f"{array.size} {array.dtype} values ({why})"
                    )
            if not tensor.data.flags.writeable:
                memory_problems.append(f"{key} is read-only memory (e.g. from tn.from_numpy of "
                                       "a read-only array) and can't be loaded into")
            arrays[key] = array
        key_problems = []
        if strict and missing:
            key_problems.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            key_problems.append(
                "Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected))
            )
        problems = key_problems + shape_problems + value_problems + memory_problems
        if problems:
            hint = ""
            if overflow:
                hint = (" (cast the model first, e.g. model.double(), to load float64 values "
                        "as they are)")
            elif value_problems:
                hint = (" (load an earlier checkpoint, or pass allow_nonfinite=True to load "
                        "them anyway)")
            message = (f"Error(s) in loading state_dict for {type(self).__name__}{hint}:\n\t"
                       + "\n\t".join(problems))
            error = (StateDictError if key_problems else ShapeError if shape_problems else
                     ValueRangeError if value_problems else
                     GraphError)
            raise error(message)
        for key, array in arrays.items():
            tensor = own[key]
            np.copyto(tensor.data, array)
            tensor._version.value += 1
        return IncompatibleKeys(missing, unexpected)

    # ---- printing --------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _indent(repr(module), 2) for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"


_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta")


def _as_array(value: Any, key: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    try:
        array = np.asarray(value)
    except Exception as e:
        raise DTypeError(
            f"load_state_dict: the value for {key} ({type(value).__name__}) is not an array: {e}"
        ) from e
    if array.dtype.kind not in "biuf":
        raise DTypeError(
            f"load_state_dict: the value for {key} has dtype {array.dtype}; expected numbers"
        )
    return array


def _indent(text: str, spaces: int) -> str:
    """Indent every line but the first (nested module reprs, as PyTorch prints them)."""
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])

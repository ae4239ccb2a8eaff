"""Code generation: the fused kernels become Python source, compiled by numba and cached.

The generated code has two parts (``explain()`` prints both):

- the segments: ``@njit(cache=True)`` functions, each a run of kernels between two things
  numba should not do: an opaque step (run the eager way by ``interpret.py``) or a large
  matmul (numpy's BLAS is faster than any loop we could write; small ones are loops inside
  the segment, ``kernels.SMALL_MATMUL``). Each is written in a canonical form (``canonical``): names
  numbered locally, every array an argument or an address (workspace slices included, so no
  offset is written in), where a take/put starts a number passed with the addresses; loops
  have their sizes written in as constants. The segments of each step of an unrolled loop
  are then the same text: each distinct text is one file ``tn_seg_<hash>.py`` and one numba
  function per process (``load_segment``), compiled once however many segments share it.
- the driver, ``make_replay(...)``: plain Python that binds this call's inputs, reads the
  numbers of each optimizer update (``read``: the learning rate from its ``param_groups``, a
  step count...), calls the segments, the BLAS matmuls and the opaque steps in order, and
  bumps the version counters of the parameters the updates wrote.

An optimizer's update is a ``rule`` kernel: its loop is the function ``kernels/updates.py``
generates from the optimizer's rule, the same one eager mode runs, pasted into the segment's
file.

Every file is written to ``<cache dir>/`` (``TINYNET_CACHE_DIR``, default
``~/.cache/tinynet/compile``), named by a hash of its text, so a segment seen before, in any
program and any process, loads numba's compiled machine code from the cache next to it.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tinynet import kernels
from tinynet.compile.fuse import Kernel, Lowering
from tinynet.compile.ir import Program, Ref, Value
from tinynet.compile.plan import Plan, _tag
from tinynet.kernels import updates
from tinynet.kernels.formulas import ACTIVATIONS, TABLE, loop_expression, with_rules
from tinynet.tensor import Tensor

SEQUENCE_KERNELS = ("gather", "scatter_add", "softmax", "softmax_back")
# a loop's numba dtype -> the tag of its vectorisable sigmoid/tanh rules (formulas.FAST_RULES)
_RULES_TAG = {"np.float32": "f32", "np.float64": "f64"}
# A loop of a program that calls no BLAS splits over two threads from this many elements
# (``runtime.split``). Measured on the 2-core VM: handing half a loop to the helper thread and
# waiting for it costs 50-90 us, so a split pays from about 300 us of work; at a nanosecond an
# element (an add) that is ~3e5 elements, a float64 tanh (26 ns) pays from ~1e4.
PARALLEL_MIN = 1 << 18
ADD_RUN_MAX = 64  # a put's runs up to this long are added as one vector (runtime.add_run)
_BLAS = {"matmul_nt": "np.matmul({a}, {b}.T, out={o})",
         "matmul_tn": "np.matmul({a}.T, {b}, out={o})",
         "matmul_nn": "np.matmul({a}, {b}, out={o})"}


def cache_dir() -> Path:
    root = os.environ.get("TINYNET_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinynet")
    return Path(root) / "compile"


@functools.cache
def kernels_fingerprint() -> str:
    """A digest of the kernels' source files (``tinynet/kernels``, ``runtime.py``), written
    into every segment's text. numba's disk cache checks a cached function against its own
    file only, and a segment inlines the kernels it calls: a changed kernel (a new tinynet)
    must give the segment a new file, not replay machine code made from the old one."""
    digest = hashlib.sha256()
    for path in sorted(Path(kernels.__file__).parent.rglob("*.py")) + [
            Path(__file__).with_name("runtime.py")]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def generate(program: Program, lowering: Lowering, kernels: list[Kernel], plan: Plan) -> Any:
    """The pipeline's generate stage (``pipeline.py``): a Runner for the fused ``kernels``
    (generated, compiled code), or None where generated code would gain nothing or cannot run
    them, so the program is interpreted: every kernel opaque, or an outside array not
    C-contiguous (compiled loops index arrays flat)."""
    from tinynet.compile import interpret

    if all(k.kind == "opaque" for k in kernels):
        return None
    for v in lowering.values:
        if v.kind in ("param", "state", "const") and \
                not interpret.bind(v, ()).flags.c_contiguous:
            return None
    return Runner(program, lowering, kernels, plan)


class Runner:
    """Holds the generated module and calls its replay function."""

    def __init__(self, program: Program, lowering: Lowering, kernels: list[Kernel],
                 plan: Plan) -> None:
        self.program, self.lowering, self.kernels, self.plan = program, lowering, kernels, plan
        self.values = lowering.values
        writer = Source(program, self.values, kernels, plan)
        self.source = writer.text()
        self.segment_files = writer.segment_files  # digest -> (first segment, its file)
        self.segment_digests = writer.segment_digests
        for digest, (_, text) in writer.segment_files.items():  # before the driver loads them
            _write(cache_dir() / f"tn_seg_{digest}.py", text)
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:20]
        self.path = cache_dir() / f"tn_{digest}.py"
        module = _load(self.path, self.source, f"tinynet_compiled_{digest}")
        self.module, self.direct, self.segment_args = module, writer.direct, writer.segment_args
        self.reads, self.read_sizes = writer.reads, writer.read_sizes
        self.halves = writer.halves
        self.replay, self._refresh = module.make_replay(*self._bindings(writer))
        self.vouched = (False,) * len(self.reads)  # which reads the guard vouches for

    def refresh(self) -> None:
        """A full check passed: read the updates' numbers the guard's fast check vouches for
        (``Guard.vouches_for``, ``self.vouched``) until the next full check."""
        self._refresh(self.vouched)

    def fill_cache(self, segments: list[int] | None = None) -> None:
        """Compile segments (numbers ``segments``; default: all) in a child process, which
        leaves their machine code in numba's disk cache for ``load`` to take. The compiling
        runs in the child so that it holds neither this process's GIL nor (where another core
        is free) its core: a call replaying step by step meanwhile is not slowed
        (``api.Entry`` runs this in the background thread). The child dies with this process
        (``_stop_children``, and it exits when its stdin closes)."""
        wanted = range(len(self.segment_args)) if segments is None else segments
        kinds = {n: [self._argument_kind(name) for name in self.segment_args[n]]
                 for n in wanted}
        script = _FILL_CACHE.format(name=self.module.__name__, path=str(self.path),
                                    kinds=repr(kinds))
        root = str(Path(__file__).resolve().parent.parent.parent)  # the dir holding tinynet
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        with _children_lock:
            if _stopping:
                raise RuntimeError("the process is exiting")
            child = subprocess.Popen([sys.executable, "-c", script], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
            _children.add(child)
        try:
            error = child.stderr.read()  # until the child exits (its stdin stays open)
            child.wait()
        finally:
            child.stdin.close()
            child.stderr.close()
            with _children_lock:
                _children.discard(child)
        if child.returncode != 0:
            raise RuntimeError(f"compiling {self.path} failed: {error.decode()[-2000:]}")

    def load(self) -> list[int]:
        """Load every segment's machine code from numba's disk cache into this process, for
        the argument types of a replay, compiling nothing; returns the segments not found
        there (for ``fill_cache``). Then a replay waits for numba no more."""
        missing = []
        for n, args in enumerate(self.segment_args):
            segment = getattr(self.module, f"segment{n}")
            if not _from_disk_cache(segment, self._signature(args)):
                missing.append(n)
        return missing

    def compile_here(self) -> None:
        """Compile the segments in this process (or load them from numba's cache): when the
        child could not leave them in the disk cache (e.g. the cache folder is read-only)."""
        for n, args in enumerate(self.segment_args):
            getattr(self.module, f"segment{n}").compile(self._signature(args))

    def _signature(self, args: list[str]) -> tuple:
        return tuple(numba_type(self._argument_kind(name)) for name in args)

    def _argument_kind(self, name: str) -> tuple:
        """What argument ``name`` of a segment is at a replay, for ``fill_cache``'s child:
        ("array", shape, dtype) (C-contiguous: the replay makes the others contiguous
        first) or ("floats", n)."""
        if name.startswith("addresses"):
            return ("array", (1,), "int64")
        if name == "part":  # which half of a split loop (0 or 1; 2: after both)
            return ("int",)
        if name.startswith("halves"):  # a split sum's two parts
            return ("array", (2,), self.halves[int(name[len("halves"):])])
        if name.startswith("numbers"):  # an update's numbers: a tuple of floats
            return ("floats", self.read_sizes[int(name[len("numbers"):])])
        value = self.values[int(name[1:])]
        return ("array", value.shape or (1,), value.dtype.name)

    def use_entry_points(self) -> None:
        """Once the segments are compiled (by a replay, or loaded by ``load``): call each
        one's machine code directly where the guards fix every argument's type
        (``Source.direct``). Numba's dispatcher would type the arguments again at every call
        (~0.1 us each) to pick the same code."""
        for n, direct in enumerate(self.direct):
            segment = getattr(self.module, f"segment{n}")
            if direct and len(segment.signatures) == 1:
                compiled = segment.overloads.get(segment.signatures[0])
                entry = getattr(compiled, "entry_point", None)
                if entry is not None:
                    setattr(self.module, f"_segment{n}", entry)

    def _bindings(self, writer: Source) -> tuple:
        from tinynet.compile import interpret

        env: list[Any] = [None] * len(self.values)
        env_fixed = {}  # value index -> its workspace slice, the same every call
        workspaces = {d: np.zeros(n, dtype=d) for d, n in self.plan.sizes.items()}
        left = {ref.value for _, ref in self.program.final_grads if ref is not None}
        for v in self.values:
            slot = self.plan.slots.get(v.index)
            if slot is not None and v.index in left:  # a .grad the call leaves: an array of
                # its own, so a kept one can be let go of alone (the driver's ``move``)
                env[v.index] = env_fixed[v.index] = np.zeros(v.shape, dtype=slot.dtype)
            elif slot is not None:
                n = int(np.prod(v.shape))  # 0 for an empty value (its slot holds 1)
                flat = workspaces[slot.dtype][slot.offset:slot.offset + n]
                env[v.index] = env_fixed[v.index] = flat.reshape(v.shape)
            elif v.kind in ("param", "state", "const"):
                env[v.index] = interpret.bind(v, ())
        ws = [workspaces[d] for d in sorted(workspaces, key=lambda d: np.dtype(d).name)]
        self.arrays = (env, ws)  # the segments get some by address: keep them alive
        opaque = [k.step for k in self.kernels if k.kind == "opaque"]
        # what the call leaves: each .grad's owner and, when the .grad is a fixed workspace
        # slice, the Tensor over it (made once; the replay makes the others from env)
        made: dict[int, Tensor] = {}  # (owners of one .grad share the tensor, as in eager)
        leaves = [(owner, made.setdefault(ref.value, Tensor._make(env_fixed[ref.value]))
                   if ref is not None and ref.value in env_fixed else None)
                  for owner, ref in self.program.final_grads]
        self.leaves = leaves
        return (env, ws, writer.reads, self.program.updated, opaque,
                self.grad_sources(), interpret, leaves, self.program.result,
                interpret.build_result, self._moved)

    def _moved(self, n: int, grad: Tensor) -> None:
        """The driver gave leaf ``n``'s ``.grad`` a new array (the user keeps the last one):
        ``on_moved(owner, grad)`` tells the guard (api.Entry sets it)."""
        value = self.program.final_grads[n][1].value
        for m, (owner, ref) in enumerate(self.program.final_grads):
            if ref is not None and ref.value == value:
                self.leaves[m] = (owner, grad)
                self.on_moved(owner, grad)

    def on_moved(self, owner: Any, grad: Tensor) -> None:
        """Replaced by api.Entry: the guard's fast check compares ``.grad`` by identity."""

    def left_grads(self) -> dict[int, Any]:
        """id(outside tensor) -> the ``.grad`` every replay leaves on it (made once, over its
        workspace slice): the guard's fast check compares by identity."""
        return {id(owner): grad for owner, grad in self.leaves
                if not isinstance(owner, tuple) and grad is not None}

    def grad_sources(self) -> list[Any]:
        return [v.source for v in self.values if v.kind == "grad"]

    def describe(self) -> str:
        parts = ["== IR after lowering and fusion (kernels)"]
        parts += ["  " + k.describe() for k in self.kernels]
        parts += ["== buffer plan", self.plan.describe(self.values)]
        parts += [f"== generated source ({self.path}; its {len(self.segment_digests)} "
                  f"segment(s), {len(self.segment_files)} distinct, in tn_seg_<digest>.py "
                  "beside it)"]
        for digest, (_, text) in self.segment_files.items():
            same = [f"segment{n}" for n, d in enumerate(self.segment_digests) if d == digest]
            parts.append(f"# tn_seg_{digest}.py: {', '.join(same)}\n{text}")
        parts += ["# the driver (the file above)", self.source]
        return "\n".join(parts)


_FILL_CACHE = """
import importlib.util, os, sys, threading
# exit when the parent process is gone (its end of our stdin closes)
threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(3)), daemon=True).start()
spec = importlib.util.spec_from_file_location({name!r}, {path!r})
module = importlib.util.module_from_spec(spec)
sys.modules[{name!r}] = module
spec.loader.exec_module(module)
from tinynet.compile.codegen import numba_type
for n, kinds in {kinds}.items():
    getattr(module, "segment%d" % n).compile(tuple(numba_type(k) for k in kinds))
"""
_children: set[Any] = set()  # fill_cache's running child processes
_children_lock = threading.Lock()
_stopping = False  # set at exit: no new child


@atexit.register
def _stop_children() -> None:
    """No child outlives the process that started it (nor starts after this ran)."""
    global _stopping
    with _children_lock:
        _stopping = True
        for child in list(_children):
            child.kill()


def exiting() -> bool:
    """True once the process is exiting (``_stop_children`` ran): start no compile work."""
    return _stopping


def numba_type(kind: tuple) -> Any:
    """The numba type of a segment argument described by ``Runner._argument_kind``."""
    import numba

    if kind[0] == "floats":
        return numba.typeof(tuple([0.0] * kind[1]))
    if kind[0] == "int":
        return numba.types.int64
    return numba.typeof(np.zeros(kind[1], dtype=kind[2]))


def _from_disk_cache(segment: Any, signature: tuple) -> bool:
    """Give numba function ``segment`` its machine code for ``signature`` from numba's disk
    cache, compiling nothing; False if it is not there. (What numba's ``Dispatcher.compile``
    does before it would compile; any other numba answers False, and the child compiles.)"""
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:
        if tuple(signature) in segment.overloads:
            return True
        try:
            result = segment._cache.load_overload(signature, segment.targetctx)
            if result is None:
                return False
            segment.targetctx.insert_user_function(result.entry_point, result.fndesc,
                                                   [result.library])
            segment.add_overload(result)
        except AttributeError:  # a numba whose internals differ
            return False
        return True


def _scalar(expr: str, dt: str) -> str:
    """A loop expression with numbers in ``dt`` and sigmoid and tanh by the C library's exp
    and tanh (``_sigmoid``), for a loop with no scratch array for the vectorisable rules."""
    return with_rules(_numbers(expr, dt), None, "")


def _numbers(expr: str, dt: str) -> str:
    """CONST(v) of a loop expression as a number of the loop's dtype (``one`` and ``zero``, made
    before every loop, for 1 and 0)."""
    expr = expr.replace("CONST(1.0)", "one").replace("CONST(0.0)", "zero")
    return expr.replace("CONST(", f"{dt}(")


_NAMES = re.compile(r"\b(v|f|s|t|numbers|rule)(\d+)\b")


def canonical(function: str) -> tuple[str, dict[str, str]]:
    """``function``'s text with its names numbered locally, in order of first appearance (per
    kind: v3 v17 v4 -> v0 v1 v2; also f, s, t, numbers, rule; ``addresses7`` -> ``addresses``),
    and the renaming. Two segments that differ only by which values they touch become the same
    text: the arrays are arguments or addresses, so the values travel positionally."""
    names: dict[str, str] = {}
    counts: dict[str, int] = {}

    def rename(match: re.Match) -> str:
        name = match.group(0)
        if name not in names:
            kind = match.group(1)
            names[name] = f"{kind}{counts.get(kind, 0)}"
            counts[kind] = counts.get(kind, 0) + 1
        return names[name]

    text = re.sub(r"\baddresses\d+\b", "addresses", _NAMES.sub(rename, function))
    return text, names


_segments: dict[str, Any] = {}  # digest -> the segment's numba function, in this process


def load_segment(digest: str) -> Any:
    """The numba function of the segment file ``tn_seg_<digest>.py`` (written by the Runner):
    one per distinct text in a process, so its machine code is compiled (or loaded from numba's
    disk cache beside the file) once however many segments, programs or steps share it."""
    if digest not in _segments:
        path = cache_dir() / f"tn_seg_{digest}.py"
        _segments[digest] = _load(path, path.read_text(), f"tinynet_segment_{digest}").segment
    return _segments[digest]


def _write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)  # atomic: another process never reads half a file


def _load(path: Path, source: str, name: str) -> Any:
    """Import the generated module from its cache file (writing it first if new)."""
    _write(path, source)  # (also when loaded before: a child compiling it reads the file)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# Writing the source
# ---------------------------------------------------------------------------------------------


class Source:
    """Builds the module text: segments first, then ``make_replay``."""

    def __init__(self, program: Program, values: list[Value], kernels: list[Kernel],
                 plan: Plan) -> None:
        self.program, self.values, self.kernels, self.plan = program, values, kernels, plan
        self.rules = [k for k in kernels if k.kind == "rule"]  # optimizer updates
        # each update reads its numbers at every call; reads that are equal (one group's lr
        # and momentum for every SGD parameter) are made once
        self.reads: list[Any] = []
        self.read_sizes: list[int] = []  # how many floats each read gives (never call it to ask:
        # a read advances the parameter's step counts)
        self.read_of: dict[int, int] = {}  # rule kernel's position -> its read's
        for u, k in enumerate(self.rules):
            same = next((r for r, read in enumerate(self.reads) if read == k.attrs["read"]), None)
            if same is None:
                same = len(self.reads)
                self.reads.append(k.attrs["read"])
                rule = k.attrs["rule"]
                self.read_sizes.append(len(rule.numbers) + len(rule.counts))
            self.read_of[u] = same
        self.opaque = [k for k in kernels if k.kind == "opaque"]
        self.grads = [v.index for v in values if v.kind == "grad"]
        self.rule_names: dict[Any, str] = {}  # each distinct rule's generated loop function
        for k in self.rules:
            self.rule_names.setdefault(k.attrs["rule"], f"rule{len(self.rule_names)}")
        self.direct: list[bool] = []  # per segment: may its entry point be called directly?
        self.segment_fixed: list[list[str]] = []  # per segment: the arrays passed by address
        self.segment_bases: list[list[int]] = []  # per segment: its take/put starts (b0, b1..)
        self.segment_files: dict[str, tuple[int, str]] = {}  # digest -> (first segment, text)
        self.segment_digests: list[str] = []  # per segment: its file's digest
        self.no_blas = False  # the program calls no BLAS (``text``): large loops may split
        self._ranged: int | None = None  # the segment being generated, if it splits (its
        # loop runs one half: _loop, _sum)
        self.halves: dict[int, str] = {}  # split sum's segment -> its dtype (its two parts'
        # sums travel in the array ``halves<n>``)

    def text(self) -> str:
        head = [
            f'"""tn.compile({self.program.name}): the driver, generated by '
            'tinynet/compile/codegen.py (do not edit)."""',
            "import numpy as np",
            "from tinynet.tensor import Tensor, VersionCounter",
            "from tinynet.compile.codegen import load_segment",
            "from tinynet.compile.runtime import addresses",
            "from sys import getrefcount",
            "new = object.__new__",
        ]
        segments: list[list[Kernel]] = [[]]
        driver_items: list[Any] = []  # ("segment", n) / ("blas", kernel) / ("opaque", kernel)
        # A large elementwise loop is a segment of its own, split over two threads by
        # ``runtime.split``, in a program that calls no BLAS and no eager step: right after an
        # OpenBLAS call its threads keep spinning on the other core for milliseconds, so the
        # second half waits for that core (measured after a 256x784x512 matmul: a 740 us
        # loop took 785 us split, against 470 us split without the matmul before it).
        self.no_blas = not any(k.kind != "sum" and self._in_driver(k) for k in self.kernels)
        for k in self.kernels:
            alone = self._split([k])
            if alone or self._in_driver(k):
                if segments[-1]:
                    driver_items.append(("segment", len(segments) - 1))
                    segments.append([])
                if alone:
                    segments[-1].append(k)
                    driver_items.append(("segment", len(segments) - 1))
                    segments.append([])
                    continue
                driver_items.append(("blas" if k.kind.startswith("matmul") or k.kind == "bmm"
                                     else k.kind, k))
            else:
                segments[-1].append(k)
        if segments[-1]:
            driver_items.append(("segment", len(segments) - 1))
        else:
            segments.pop()
        if any(self._split(seg) for seg in segments):
            head.append("from tinynet.compile.runtime import split")
        body: list[str] = []
        self.segment_args: list[list[str]] = []
        self.segment_kernels = segments
        for n, seg in enumerate(segments):
            body += self._segment(n, seg)
        body += ["", ""] + self._driver(driver_items)
        return "\n".join(head + [""] + body) + "\n"

    def _segment_file(self, function: str, rules: dict[str, Any]) -> str:
        """The module of one canonical segment: its imports, the optimizer rules it calls (the
        loop eager mode runs, generated by ``kernels/updates.py``) and the function."""
        head = [
            '"""A tn.compile segment: generated by tinynet/compile/codegen.py (do not edit)."""',
            f"# the kernels it calls, as of: {kernels_fingerprint()}",
            "import math",
            "import numpy as np",
            "from numba import carray, njit",
            "from tinynet.compile.runtime import add_run, address, copy_run",
            "from tinynet.kernels.flat import flat",
            "from tinynet.kernels.small_matmul import mm_nn, mm_nt, mm_tn",
            "from tinynet.kernels.compiled import (",
            "    _sigmoid, _sigmoid_f32, _sigmoid_f64, _tanh_f32, _tanh_f64, int_view,",
            "    softmax_cross_entropy_forward,",
            ")",
        ]
        shared = [name for name in ("row_sum", "row_sums", "sum_scratch", "pairwise_sum",
                                    "softmax_rows")
                  if re.search(rf"\b{name}\(", function)]
        if shared:  # eager's kernels (only when used: other files keep their text)
            head += ["from tinynet.kernels.compiled import " + ", ".join(shared)]
        if "ValueRangeError(" in function:  # as eager's F.embedding raises
            head += ["from tinynet.errors import ValueRangeError"]
        used = [f"{prefix}{name}_forward" for name in ACTIVATIONS for prefix in ("", "bias_")
                if re.search(rf"\b{prefix}{name}_forward\(", function)]
        if used:  # the formula table's kernels (generated from kernels/formulas.py)
            head += ["from tinynet.kernels.compiled import " + ", ".join(used)]
            # numba's cache of this file refers to them by their module's name, so another
            # table must make another file (else: ModuleNotFoundError on loading the cache)
            from tinynet.kernels import compiled

            head += [f"# (from {compiled.generated_module_name()})"]
        body: list[str] = []
        for name, rule in rules.items():
            body += [f"# {rule.name}: the loop eager mode runs (kernels/updates.py)",
                     updates.source(rule, name), ""]
        return "\n".join(head + ["", ""] + body + [function]) + "\n"

    # ---- helpers ---------------------------------------------------------------------------

    def _in_driver(self, k: Kernel) -> bool:
        """Does the driver run ``k`` itself (an opaque step, numpy's matmul or sum), not a
        segment?"""
        return k.kind in ("opaque", *CONV_PRODUCTS) or self._large(k) or (
            k.kind == "sum" and not self._sum_runs(k))

    def _split(self, seg: list[Kernel]) -> bool:
        """Is ``seg`` a large loop or a large sum alone, in a program that calls no BLAS
        (``text``)? The driver then splits it over two threads."""
        if not self.no_blas or len(seg) != 1:
            return False
        k = seg[0]
        if k.kind == "loop":
            return k.attrs["n"] >= PARALLEL_MIN
        if k.kind == "sum":  # all of one run: numpy's pairwise sum, whose first split is ours
            form = self._sum_runs(k)  # (numpy splits a run of more than 128 numbers)
            return form is not None and form[:2] == ("rows", 1) and form[2] >= max(
                PARALLEL_MIN, 129)
        return False

    def _large(self, k: Kernel) -> bool:
        if k.kind == "bmm":  # batched: numpy's matmul, as eager (BLAS on each matrix)
            return True
        if not k.kind.startswith("matmul"):
            return False
        if k.attrs.get("blas"):  # a linear over batches of rows: numpy's product, as eager's
            return True
        a, b = (self._rows_cols(i) for i in k.args)  # eager's choice of loop or BLAS:
        return kernels.small_product(k.kind[-2:], a, b) is None  # kernels/small_matmul.py

    def _blas(self, k: Kernel) -> str:
        """A driver line: numpy's matmul into the kernel's output (BLAS)."""
        a, b = k.args
        if k.kind == "bmm":  # eager's own call: np.matmul(a, b) with its swapped views
            a_, b_ = (f"v{v}.swapaxes(-1, -2)" if k.attrs[t] else f"v{v}"
                      for v, t in ((a, "ta"), (b, "tb")))
            return f"np.matmul({a_}, {b_}, out=v{k.outs[0]})"
        return _BLAS[k.kind].format(a=self._mat(a), b=self._mat(b), o=self._mat(k.outs[0]))

    def _rows_cols(self, v: int) -> tuple[int, int]:
        """A matrix's shape, or a batch of rows' (..., n) as (rows, n)."""
        shape = self._shape(v)
        return (int(np.prod(shape[:-1])), shape[-1]) if len(shape) >= 2 else (1, self._size(v))

    def _mat(self, v: int) -> str:
        """A matrix, or a batch of rows (..., n) as the 2-d view (rows, n) of its C-contiguous
        array: a linear layer of a sequence model, (N, T, D) @ W^T, is one matmul."""
        if len(self._shape(v)) == 2:
            return f"v{v}"
        return f"v{v}.reshape{self._rows_cols(v)}"

    def _dt(self, v: int) -> str:
        return f"np.{self.values[v].dtype.name}"

    def _shape(self, v: int) -> tuple[int, ...]:
        return self.values[v].shape

    def _size(self, v: int) -> int:
        return int(np.prod(self._shape(v)))

    def _ws(self, dtype: np.dtype) -> str:
        return f"w{_tag(dtype)}"

    def _scalar_args(self, seg: list[Kernel]) -> list[str]:
        """The numbers of the updates in ``seg``, read by the driver just before."""
        names = [f"numbers{self.read_of[self.rules.index(k)]}" for k in seg if k.kind == "rule"]
        return list(dict.fromkeys(names))

    def _segment(self, n: int, seg: list[Kernel]) -> list[str]:
        """Segment ``n``'s function in canonical form (``canonical``): its names numbered
        locally, every array an argument or an address, so the segments of each step of an
        unrolled loop are the same text, compiled once (``load_segment``). Returns the lines
        of the driver module that load it."""
        used: list[int] = []
        for k in seg:
            for v in k.args + k.outs:
                if v is not None and v not in used:
                    used.append(v)
        planned = [v for v in used if v in self.plan.slots]
        passed = [v for v in used if v not in self.plan.slots]
        # Arrays that are the same at every call (outside tensors' arrays, constants, the
        # workspace slices) travel as one array of addresses: numba unboxes each array argument
        # at every call (~0.1 us), an address costs nothing. The guards keep each of them the
        # same object (so the same memory) for as long as the program runs.
        fixed = [v for v in passed if self.values[v].kind in ("param", "state", "const")]
        passed = [v for v in passed if v not in fixed]
        at = [f"v{v}" for v in fixed + planned]
        self.bases: list[int] = []  # where each take/put starts in its array (_strided)
        self._ranged = n if self._split(seg) else None
        code: list[str] = []
        for k in seg:
            comment = k.describe()[len(f"{k.origin:<10} "):]
            if k.kind in ("take", "put", "im2col"):  # where it starts is an argument (b0...)
                comment = re.sub(r" (index|dims|broadcast|windows|pad)=.*", "", comment) + (
                    f" at b{len(self.bases)}, sizes {k.attrs['map'][1]}, strides "
                    f"{k.attrs['map'][2]}")
            elif k.kind == "stack":  # (the same: each slice's start is an argument)
                comment = re.sub(r" maps=.*", "", comment)
            code.append(f"    # {comment}")
            code += ["    " + line for line in self._kernel(k)]
        self.segment_fixed.append(at)
        self.segment_bases.append(self.bases)
        args = ([f"v{v}" for v in passed] + ([f"addresses{n}"] if at or self.bases else [])
                + self._scalar_args(seg) + ([f"halves{n}"] if n in self.halves else [])
                + (["part"] if self._ranged is not None else []))
        self.segment_args.append(args)
        # the compiled entry point may be called directly when every argument's type is fixed
        # by the guards: inputs (dtype, shape, layout checked), outside arrays (the same
        # objects), workspaces, learning rates made float; not an opaque step's result
        self.direct.append(all(self.values[v].kind in ("input", "param", "state", "const",
                                                        "grad") for v in passed)
                           and not any(a.startswith("step") for a in args))
        types = ", ".join(f"v{v} {self.values[v].dtype.name}{list(self._shape(v))}"
                          f"{'' if self.values[v].contiguous else ' strided'}" for v in passed)
        # (a split loop runs on two threads at once: without the GIL)
        nogil = ", nogil=True" if self._ranged is not None else ""
        lines = [f"@njit(cache=True, error_model=\"numpy\"{nogil})",
                 f"def segment({', '.join(args)}):",
                 f"    # arguments: {types}"]
        for i, v in enumerate(fixed + planned):  # 0-d values are indexed as v[0]
            lines.append(f"    v{v} = carray(address(addresses{n}[{i}]), "
                         f"{self._shape(v) or (1,)}, {self._dt(v)})")
        for i in range(len(self.bases)):  # after the addresses, as numbers
            lines.append(f"    b{i} = addresses{n}[{len(at) + i}]")
        lines += code
        function, names = canonical("\n".join(lines))
        rules = {names[name]: rule for rule, name in self.rule_names.items() if name in names}
        text = self._segment_file(function, dict(sorted(rules.items())))
        digest = hashlib.sha256(text.encode()).hexdigest()[:20]
        first = self.segment_files.setdefault(digest, (n, text))[0]
        self.segment_digests.append(digest)
        origins = " ".join(k.origin for k in seg)
        same = "" if first == n else f" (the same code as segment{first})"
        return [f"# segment{n}: trace steps {origins}{same}",
                f"segment{n} = _segment{n} = load_segment({digest!r})"]

    def _flat(self, v: int) -> str:
        return f"v{v}" if len(self._shape(v)) <= 1 else f"flat(v{v})"

    def _kernel(self, k: Kernel) -> list[str]:
        o = k.outs
        a = k.args
        if k.kind in CONV_LOOPS:
            return _conv_loop(self, k)
        if k.kind.startswith("matmul"):
            fn = {"matmul_nt": "mm_nt", "matmul_tn": "mm_tn", "matmul_nn": "mm_nn"}[k.kind]
            return [f"{fn}({self._mat(a[0])}, {self._mat(a[1])}, {self._mat(o[0])})"]
        params = "".join(f", {float(v)!r}" for v in k.attrs.get("params", {}).values())
        if k.kind == "bias_act":
            act = k.attrs["act"]
            if a[1] is not None:
                return [f"bias_{act}_forward({self._mat(o[0])}, v{a[1]}{params})"]
            if act == "identity":
                return []
            return [f"{act}_forward({self._flat(o[0])}, {self._flat(o[0])}{params})"]
        if k.kind == "act":
            return [f"{k.attrs['act']}_forward({self._flat(a[0])}, {self._flat(o[0])}{params})"]
        if k.kind in ("act_back", "mse_act_back", "ce_back", "mse_back", "copy"):
            return self._elementwise(k)
        if k.kind == "loop":
            return self._loop(k)
        if k.kind in ("take", "put", "im2col"):  # basic indexing, permute (fuse.MOVES), and
            return self._strided(k)  # im2col: a take of the strided window view
        if k.kind == "stack":  # each input copied to its slice of the output
            lines = [f"dst = {self._flat(k.outs[0])}"]
            for a, map_ in zip(k.args, k.attrs["maps"], strict=True):
                lines += [f"src = {self._flat(a)}"] + self._copy(map_, take=False)
            return lines
        if k.kind in SEQUENCE_KERNELS:
            return self._sequence_kernel(k)
        if k.kind == "sum":
            return self._sum(k)
        dt = self._dt(o[0])
        if k.kind == "mse":
            n = self._size(a[0])
            return [f"x, t = {self._flat(a[0])}, {self._flat(a[1])}",
                    f"total = {dt}(0.0)",
                    f"for i in range({n}):",
                    "    d = x[i] - t[i]",
                    "    total += d * d",
                    f"v{o[0]}[0] = total / {dt}({k.attrs['divisor']})"]
        if k.kind == "ce":
            loss, probs, losses = o
            n = self._shape(a[0])[0]
            ignore = k.attrs["ignore_index"]
            lines = [f"softmax_cross_entropy_forward(v{a[0]}, v{a[1]}, v{losses}, v{probs}, "
                     f"{ignore})",
                     f"total = row_sum(v{losses}, 0, {n})  # eager's losses.sum(): numpy's order"]
            if not k.attrs["mean"]:
                return lines + [f"v{loss}[0] = total"]
            # the mean divides by this call's count of targets not equal to ignore_index
            # (none: NaN, as in PyTorch)
            return lines + ["count = 0",
                            f"for i in range({n}):",
                            f"    if v{a[1]}[i] != {ignore}:",
                            "        count += 1",
                            f"v{loss}[0] = total / {dt}(count) if count else {dt}(math.nan)"]
        if k.kind == "colsum":
            rows, cols = self._rows_cols(a[0])
            return [f"src = {self._flat(a[0])}",
                    f"v{o[0]}[:] = {dt}(0.0)",
                    f"for i in range({rows}):",
                    f"    for j in range({cols}):",
                    f"        v{o[0]}[j] += src[i * {cols} + j]"]
        if k.kind == "rule":  # in place: the rule's arrays, then this call's numbers
            arrays = ", ".join(self._flat(v) for v in a)
            return [f"{self.rule_names[k.attrs['rule']]}({arrays}, "
                    f"numbers{self.read_of[self.rules.index(k)]})"]
        raise AssertionError(k.kind)

    def _strided(self, k: Kernel) -> list[str]:
        """``take``: out = x[index] (or x.permute(dims)), read element by element from where
        each sits in x (``fuse._affine_map``); ``put``: its gradient, zeros with g written
        back there. Plain scalar loops: numba compiles them fast (array slicing it does not)."""
        take = k.kind != "put"
        lines = [f"src = {self._flat(k.args[0])}", f"dst = {self._flat(k.outs[0])}"]
        if not take:
            lines += [f"for e in range({self._size(k.outs[0])}):", "    dst[e] = 0"]
        put = "+=" if k.attrs.get("add") else "="  # (adding: col2im)
        return lines + self._copy(k.attrs["map"], take, put, fresh=k.outs[0] in self.plan.slots)

    def _copy(self, map_: tuple, take: bool, put: str = "=", fresh: bool = False
              ) -> list[str]:
        """The loops of a take (``dst[e] = src[at]``) or a put (``dst[at] = src[e]``, or
        ``+=``) over the positions ``at`` of an affine map; e runs over the dense side.
        ``fresh``: dst is a workspace slice of its own (the plan never gives a kernel's output
        the memory of what it reads), so contiguous runs are copied by memcpy, or added as one
        vector (``runtime.copy_run``, ``add_run``)."""
        base, sizes, strides = map_
        lines: list[str] = []
        start = f"b{len(self.bases)}"  # an argument: each time step's take is the same code
        self.bases.append(base)
        if not sizes:  # one element
            return lines + ([f"dst[0] = src[{start}]"] if take else [f"dst[{start}] {put} src[0]"])
        if min(strides) >= 0:  # (a flip's map steps back: its indices stay absolute)
            # the sparse side seen from where the map starts, so each index is a sum of
            # loop counters: numba then drops its wraparound of negative indices, which kept
            # the copy scalar (LeNet's im2col 1.3-1.9x slower)
            lines.append(f"view = {'src' if take else 'dst'}[{start}:]")
            start = ""
        # e: the element of the dense side (out for take, g for put); where the innermost run
        # starts on both sides is worked out once per run, so the inner loop is two plain
        # strided accesses LLVM vectorises (an `e += 1` counter kept it scalar)
        indent = ""
        for d, n in enumerate(sizes[:-1]):
            lines.append(f"{indent}for i{d} in range({n}):")
            indent += "    "
        last = len(sizes) - 1
        dense = "0"
        for d, n in enumerate(sizes[:-1]):
            dense = f"i{d}" if dense == "0" else f"({dense}) * {n} + i{d}"
        at = " + ".join(([start] if start else []) +
                        [f"i{d} * {st}" for d, st in enumerate(strides[:-1])]) or "0"
        lines += [f"{indent}at = {at}",
                  f"{indent}e = ({dense}) * {sizes[-1]}"]
        side = "view" if not start else "src" if take else "dst"  # the sparse side's array
        if fresh and strides[-1] == 1 and sizes[-1] > 1:  # each run at once (runtime.py)
            if take:
                return lines + [f"{indent}copy_run(dst, e, {side}, at, {sizes[-1]})"]
            if put == "=":
                return lines + [f"{indent}copy_run({side}, at, src, e, {sizes[-1]})"]
            if sizes[-1] <= ADD_RUN_MAX:
                return lines + [f"{indent}add_run({side}, at, src, e, {sizes[-1]})"]
        lines.append(f"{indent}for i{last} in range({sizes[-1]}):")
        sparse = (f"{side}[at + i{last}" + (f" * {strides[-1]}]" if strides[-1] != 1 else "]"))
        lines.append(f"{indent}    dst[e + i{last}] = {sparse}" if take else
                     f"{indent}    {sparse} {put} src[e + i{last}]")
        return lines

    def _sum_runs(self, k: Kernel) -> tuple[str, int, int] | None:
        """How a ``sum`` runs inside a segment in numpy's order (checked bit for bit by
        tests/test_compile_sequence_ops.py): over the trailing axes each of the ``rows`` runs of
        ``n`` numbers is summed pairwise (("rows", rows, n): ``kernels.compiled.row_sum``); over
        the leading axes the rows are added one after another (("columns", rows, n)), unless
        one number is left per row (numpy then sums the contiguous run pairwise). None: other
        axes, summed by numpy itself in the driver."""
        shape = self._shape(k.args[0])
        ndim = len(shape)
        axes = tuple(sorted(k.attrs.get("axis", range(ndim))))
        for d in range(ndim + 1):
            rows, n = int(np.prod(shape[:d])), int(np.prod(shape[d:]))
            if axes == tuple(range(d, ndim)):
                return ("rows", rows, n)
            if axes == tuple(range(d)):
                return ("columns", rows, n) if n > 1 else ("rows", 1, rows)
        return None

    def _sum(self, k: Kernel) -> list[str]:
        form, rows, n = self._sum_runs(k)
        src, dst = self._flat(k.args[0]), self._flat(k.outs[0])
        if self._ranged is not None:  # split: numpy's pairwise sum adds these parts' sums
            half = n // 2 - (n // 2) % 8
            halves = f"halves{self._ranged}"
            self.halves[self._ranged] = self.values[k.outs[0]].dtype.name
            return [f"src = {src}", f"dst = {dst}",
                    "if part == 0:", f"    {halves}[0] = row_sum(src, 0, {half})",
                    "elif part == 1:", f"    {halves}[1] = row_sum(src, {half}, {n - half})",
                    "else:  # both done", f"    dst[0] = {halves}[0] + {halves}[1]"]
        if form == "rows":
            return [f"src = {src}", f"dst = {dst}", f"row_sums(src, dst, {rows}, {n})"]
        return [f"src = {src}", f"dst = {dst}", f"for col in range({n}):",
                f"    dst[col] = {self._dt(k.outs[0])}(0.0)",
                f"for row in range({rows}):", f"    for col in range({n}):",
                f"        dst[col] += src[row * {n} + col]"]

    def _sequence_kernel(self, k: Kernel) -> list[str]:
        """The sequence models' kernels (fuse.py's "sequence ops"), as loops over rows in the
        order eager mode computes: ``gather`` (embedding: out[p] = table[index[p]]),
        ``scatter_add`` (its gradient: zeros, then g[p] added to row index[p], p in order, as
        np.add.at), ``softmax`` (eager's kernel ``softmax_rows``) and ``softmax_back`` along the
        last axis (row sums pairwise, as numpy's: ``row_sum``)."""
        o, a = k.outs[0], k.args
        dt = self._dt(o)
        if k.kind in ("gather", "scatter_add"):
            table, index = (o, a[1]) if k.kind == "scatter_add" else (a[0], a[1])
            rows, width = self._shape(table)
            positions = self._size(index)
            lines = [f"src = {self._flat(a[0])}", f"dst = {self._flat(o)}",
                     f"index = {self._flat(index)}"]
            if k.kind == "scatter_add":
                lines += [f"for e in range({self._size(o)}):", f"    dst[e] = {dt}(0.0)"]
            lines += [f"for position in range({positions}):", "    at = index[position]"]
            if k.kind == "gather":  # (the backward reads the same indices after this check)
                lines += [f"    if at < 0 or at >= {rows}:",
                          "        raise ValueRangeError('embedding: index out of range: the "
                          f"table has {rows} rows (0..{rows - 1})')",
                          f"    for col in range({width}):",
                          f"        dst[position * {width} + col] = src[at * {width} + col]"]
            else:
                lines += [f"    for col in range({width}):",
                          f"        dst[at * {width} + col] += src[position * {width} + col]"]
            return lines
        rows, n = self._rows_cols(o)
        if k.kind == "softmax":  # eager's kernel: exp(x - max) / sum, row by row
            return [f"softmax_rows({self._flat(a[0])}.reshape({rows}, {n}), "
                    f"{self._flat(o)}.reshape({rows}, {n}))"]
        lines = [f"dst = {self._flat(o)}"] + [f"a{i} = {self._flat(v)}" for i, v in enumerate(a)]
        lines += ["frames, firsts = sum_scratch(dst)",
                  f"for row in range({rows}):", f"    b = row * {n}"]
        # softmax_back: dx = s * (g - sum(g * s)); the products wait in dx's row
        return lines + [
            f"    for col in range({n}):",
            "        dst[b + col] = a0[b + col] * a1[b + col]",
            f"    row_total = pairwise_sum(dst, b, {n}, frames, firsts)",
            f"    for col in range({n}):",
            "        dst[b + col] = a1[b + col] * (a0[b + col] - row_total)"]

    def _elementwise(self, k: Kernel) -> list[str]:
        """One loop over the elements (rows x columns when it also sums columns)."""
        o, a = k.outs, k.args
        dt = self._dt(o[0])
        sums = k.attrs.get("sums", False)
        rows, cols = self._rows_cols(o[0]) if sums else (1, self._size(o[0]))
        pre: list[str] = [f"one = {dt}(1.0)", f"zero = {dt}(0.0)"]
        flat = {v: f"f{i}" for i, v in enumerate(dict.fromkeys(
            [x for x in a + o if x is not None]))}
        for v, name in flat.items():
            pre.append(f"{name} = {self._flat(v)}")
        expr: list[str] = []
        outs = o[:-1] if sums else o
        if k.kind == "act_back" or k.kind == "mse_act_back":
            if k.kind == "act_back":
                g = f"{flat[a[0]]}[e]"
                y = f"{flat[a[1]]}[e]"
            else:
                pre.append(f"gs = v{a[0]}[0] * {dt}({k.attrs['scale']!r})")
                expr.append(f"d = gs * ({flat[a[1]]}[e] - {flat[a[2]]}[e])")
                g, y = "d", f"{flat[a[3]]}[e]"
            row = TABLE[k.attrs["act"]]  # its derivative, from the formula table
            text = loop_expression(row, 0, k.attrs["params"])
            tag = _RULES_TAG.get(dt)
            if tag and ("SIGMOID(" in text or "TANH(" in text):  # (silu, gelu_tanh...)
                # the rules eager's backward kernel calls, the gradient's array their scratch;
                # g and y read first, in case that array is also one of them
                out = flat[outs[0]]
                pre.append(f"scratch_bits = int_view({out})")
                expr += [f"_g = {g}", f"_y = {y}"]
                value = with_rules(_numbers(text.format("_g", "_y"), dt), tag,
                                   f", {out}, scratch_bits, e)")
            else:
                value = _scalar(text.format(g, y), dt)
            expr.append(f"{flat[outs[0]]}[e] = r = {value}")
        elif k.kind == "mse_back":
            pre.append(f"gs = v{a[0]}[0] * {dt}({k.attrs['scale']!r})")
            expr.append(f"{flat[outs[0]]}[e] = r = gs * ({flat[a[1]]}[e] - {flat[a[2]]}[e])")
            if len(outs) > 1:
                expr.append(f"{flat[outs[1]]}[e] = -r")
        elif k.kind == "ce_back":
            g, probs, target = a
            c = self._shape(probs)[1]
            rows, cols = self._shape(probs)
            ignore = k.attrs["ignore_index"]
            if k.attrs["mean"]:  # divided by this call's count of kept targets (none: 1, the
                pre += ["count = 0",  # rows are all 0)
                        f"for i in range({rows}):",
                        f"    if v{target}[i] != {ignore}:",
                        "        count += 1",
                        f"gs = v{g}[0] * {dt}(1.0 / max(count, 1))"]
            else:
                pre.append(f"gs = v{g}[0]")
            lines = pre[:]
            if sums:
                lines.append(f"{flat[o[-1]]}[:] = zero")
            lines += [f"for i in range({rows}):",
                      f"    t = v{target}[i]",
                      f"    if t == {ignore}:",
                      f"        for j in range({cols}):",
                      f"            {flat[o[0]]}[i * {cols} + j] = zero",
                      "        continue",
                      f"    if t < 0 or t >= {c}:",
                      "        raise IndexError('cross_entropy: target index out of range')",
                      f"    for j in range({cols}):",
                      f"        e = i * {cols} + j",
                      f"        p = {flat[probs]}[e]",
                      "        r = (p - one) * gs if j == t else p * gs",
                      f"        {flat[o[0]]}[e] = r"]
            if sums:
                lines.append(f"        {flat[o[-1]]}[j] += r")
            return lines
        elif k.kind == "copy":
            expr.append(f"{flat[o[0]]}[e] = r = {flat[a[0]]}[e]")
        lines = pre[:]
        if sums:
            lines.append(f"{flat[o[-1]]}[:] = zero")
        lines += [f"for i in range({rows}):", f"    for j in range({cols}):",
                  f"        e = i * {cols} + j"]
        lines += ["        " + line for line in expr]
        if sums:
            lines.append(f"        {flat[o[-1]]}[j] += r")
        return lines

    def _position(self, map_: tuple, n: int, run: int = 1) -> str:
        """Where element e of a take sits in its source (``fuse._affine_map``: its start, an
        argument b0.., plus each dim's index times its stride; dims from e by // and %, by
        constants, so no division instruction is left). In a loop nested as rows of ``run``
        elements (``e = i * run + j``, see ``_loop``) the last dim's index is j and the others
        come from the row i."""
        base, sizes, strides = map_
        terms = [f"b{len(self.bases)}"]
        self.bases.append(base)
        inner = 1
        for size, stride in zip(reversed(sizes), reversed(strides), strict=True):
            if run > 1 and inner == 1:  # the last dim, of size run
                index = "j"
            else:
                if run > 1:  # a dim of the row
                    index = "i" if inner == run else f"(i // {inner // run})"
                else:
                    index = "e" if inner == 1 else f"(e // {inner})"
                if inner * size < n:
                    index = f"({index} % {size})"
            if stride:
                terms.append(index if stride == 1 else f"{index} * {stride}")
            inner *= size
        return " + ".join(terms)

    def _loop(self, k: Kernel) -> list[str]:
        """A fused run of elementwise kernels: one pass over the elements, every value a local
        (``t5``) and only the values read after the loop stored. Size-1 arguments are read once
        before the loop. sigmoid/tanh take the vectorisable rules of their dtype, which use the
        first array of that dtype the loop stores as scratch (written before its own store,
        never read)."""
        n, members = k.attrs["n"], k.attrs["members"]
        dt = self._dt(k.outs[0] if k.outs else members[0].outs[0])
        lines = [f"one = {dt}(1.0)", f"zero = {dt}(0.0)"]
        names: dict[int, str] = {}
        arrays: dict[int, str] = {}
        for a in k.args:
            name = arrays[a] = f"v{a}" if len(self._shape(a)) <= 1 else f"f{a}"
            if name != f"v{a}":
                lines.append(f"{name} = {self._flat(a)}")
            if self._size(a) == 1 and n != 1:
                lines.append(f"s{a} = {name}[0]")
                names[a] = f"s{a}"
            else:
                names[a] = f"{name}[e]"
        stored = {o: (f"v{o}" if len(self._shape(o)) <= 1 else f"f{o}") for o in k.outs}
        for o, name in stored.items():
            if name != f"v{o}":
                lines.append(f"{name} = {self._flat(o)}")
        # (only a loop that calls them: an unused scratch view costs numba compile time)
        calls = any("SIGMOID(" in m.attrs["expr"] or "TANH(" in m.attrs["expr"]
                    for m in members)
        tag = _RULES_TAG.get(dt)
        scratch = next((name for o, name in stored.items()
                        if calls and tag and self._dt(o) == dt), None)
        if scratch is not None:
            lines.append(f"scratch_bits = int_view({scratch})")
        # Takes (slices, transposes) read from strided positions: computed from a flat e, the
        # reads defeat LLVM's vectoriser; as rows of the last dim (e = i * run + j) a slice's
        # rows are contiguous runs and the inner loop vectorises. Same elements, same order.
        takes = [m.attrs["map"][1] for m in members
                 if "map" in m.attrs and not names.get(m.args[0], "").startswith("s")]
        run = takes[0][-1] if takes and takes[0] else 1
        if run <= 1 or n % run or any(not sizes or sizes[-1] != run for sizes in takes):
            run = 1
        body: list[str] = []
        for m in members:
            args = [names.get(a, f"t{a}") for a in m.args]
            if "map" in m.attrs and not args[0].startswith("s"):  # a take: from its position
                args[0] = f"{arrays[m.args[0]]}[{self._position(m.attrs['map'], n, run)}]"
            expr = _numbers(m.attrs["expr"].format(*args), dt)
            if scratch is not None:
                expr = with_rules(expr, tag, f", {scratch}, scratch_bits, e)")
            else:
                expr = _scalar(expr, dt)
            body.append(f"t{m.outs[0]} = {expr}")
        body += [f"{stored[o]}[e] = t{o}" for o in k.outs]
        outer = n // run if run > 1 else n
        if run > 1:
            body = [f"for j in range({run}):", f"    e = i * {run} + j"] + [
                "    " + line for line in body]
        index = "i" if run > 1 else "e"
        if self._ranged is None:
            return lines + [f"for {index} in range({outer}):"] + ["    " + ln for ln in body]
        # split over two threads: part 0 runs the first half, part 1 the rest, each loop with
        # its bounds written in (with bounds passed as numbers LLVM did not vectorise the
        # float32 activations: 6x slower)
        mid = outer // 2 // 64 * 64
        return lines + ["if part == 0:", f"    for {index} in range({mid}):"] + [
            "        " + ln for ln in body] + ["elif part == 1:", f"    for {index} in range("
                                              f"{mid}, {outer}):"] + [
            "        " + ln for ln in body]

    # ---- the driver ------------------------------------------------------------------------

    def _driver(self, items: list[Any]) -> list[str]:
        lines = [
            "def make_replay(env, workspaces, reads, params, opaque, grad_sources, interpret,",
            "                leaves, result, build_result, moved):",
            '    """Bind what stays the same across calls; return the per-call function."""',
        ]
        static = [v for v in self.values if v.index in self.plan.slots or v.kind in (
            "param", "state", "const")]
        for v in static:
            lines.append(f"    v{v.index} = env[{v.index}]")
            if v.shape == () and v.index not in self.plan.slots:  # see _scalar_arg
                lines.append(f"    v{v.index}_1 = v{v.index}.reshape(1)")
        for n, (at, bases) in enumerate(zip(self.segment_fixed, self.segment_bases,
                                            strict=True)):
            if bases:  # then each take/put's start (see _segment)
                lines.append(f"    addresses{n} = np.concatenate((addresses({', '.join(at)}), "
                             f"np.array({bases}, dtype=np.int64)))")
            elif at:
                lines.append(f"    addresses{n} = addresses({', '.join(at)})")
        for n, dtype in self.halves.items():  # a split sum's two parts
            lines.append(f"    halves{n} = np.zeros(2, np.{dtype})")
        for r in range(len(self.reads)):  # the updates' numbers (lr, momentum...)
            lines.append(f"    read{r} = reads[{r}]")
            lines.append(f"    fixed{r} = None  # its numbers while the fast check vouches "
                         "for them")
        for u in range(len(self.program.updated)):
            lines.append(f"    param{u} = params[{u}]")
            lines.append(f"    counter{u} = param{u}._version")
        for n in range(len(self.grads)):
            lines.append(f"    grad_source{n} = grad_sources[{n}]")
        first: dict[int, int] = {}  # a left .grad's value -> the first leaf it is left on
        for n, (owner, ref) in enumerate(self.program.final_grads):
            if not isinstance(owner, tuple):
                lines.append(f"    leaf{n} = leaves[{n}][0]")
            if ref is not None and ref.value in self.plan.slots and ref.value not in first:
                first[ref.value] = n
                lines.append(f"    leaf{n}_grad = leaves[{n}][1]")
        # A .grad the call leaves over an array of its own (``Runner._bindings``) is the same
        # tensor at every call; eager's backward leaves a new one. While the user keeps the
        # last one (or its array: ``.numpy()``), the next call would overwrite it: its
        # reference counts, above what the replay alone holds, tell; ``move<n>`` then gives
        # the next .grad a new array, and the kept one keeps its numbers, as in eager mode.
        watched = [(n, v) for v, n in first.items()]
        if watched:
            lines.append("    measure = True  # the counts below, at the end of the next replay")
        for n, v in watched:
            lines.append(f"    held{n} = held{n}_array = 1 << 62  # leaf{n}_grad's and v{v}'s "
                         "counts: the replay's own")
            lines += ["", f"    def move{n}():",
                      f'        """The user keeps leaf {n}\'s .grad: a new array for the '
                      'next one."""',
                      f"        nonlocal v{v}, leaf{n}_grad, measure",
                      f"        v{v} = env[{v}] = v{v}.copy()"]
            for seg, at in enumerate(self.segment_fixed):
                if f"v{v}" in at:
                    lines.append(f"        addresses{seg}[{at.index(f'v{v}')}] = "
                                 f"addresses(v{v})[0]")
            lines += [f"        leaf{n}_grad = Tensor._make(v{v})",
                      f"        moved({n}, leaf{n}_grad)", "        measure = True", ""]
        fixed = [f"fixed{r}" for r in range(len(self.reads))]
        lines += ["", "    def refresh(vouched):",
                  '        """After a full check passed: read the numbers the fast check '
                  'vouches for',
                  '        (``vouched[r]``) now, once; the others are read at every call."""']
        if fixed:
            lines.append(f"        nonlocal {', '.join(fixed)}")
        lines += [f"        fixed{r} = read{r}() if vouched[{r}] else None"
                  for r in range(len(self.reads))]
        lines += ["", "    def replay(args):"]
        # env (value index -> array) is read by opaque steps, by .grad tensors made per call
        # and by structured results; otherwise the arrays stay locals
        result = self.program.result
        keep_env = bool(self.opaque) or not (result is None or isinstance(result, Ref) and (
            result.value in self.plan.slots)) or any(
            ref is not None and ref.value not in self.plan.slots
            for _, ref in self.program.final_grads)
        into_env = (lambda v: f"v{v} = env[{v}] = ") if keep_env else (lambda v: f"v{v} = ")
        if watched:
            lines.append("        nonlocal measure, " + ", ".join(
                f"held{n}, held{n}_array" for n, _ in watched))
        # a tensor's count, not counting its owners' .grad (zero_grad() may drop those)
        own = {n: f"getrefcount(leaf{n}_grad)" + "".join(
            f" - ({f'args[{o[1]}]' if isinstance(o, tuple) else f'leaf{m}'}.grad is "
            f"leaf{n}_grad)" for m, (o, ref) in enumerate(self.program.final_grads)
            if ref is not None and ref.value == v) for n, v in watched}
        for n, v in watched:
            lines += [f"        if {own[n]} > held{n} or getrefcount(v{v}) > held{n}_array:",
                      f"            move{n}()"]
        if self.opaque:
            lines.append("        nodes = {}  # opaque steps' graph nodes, for their backward")
        for v in self.values:
            if v.kind == "input":
                if isinstance(v.source, tuple) and v.source[0] == "item":
                    lines.append(f"        {into_env(v.index)}interpret.bind_item("
                                 f"args, {v.source[1:]!r})")
                elif isinstance(v.source, tuple):
                    i, dtype = v.source
                    lines.append(f"        {into_env(v.index)}np.asarray(interpret."
                                 f"bind_input(args[{i}])).astype(np.{np.dtype(dtype).name})")
                else:
                    lines += [f"        a{v.source} = args[{v.source}]",
                              f"        {into_env(v.index)}a{v.source}._data if "
                              f"type(a{v.source}) is Tensor else interpret.bind_input("
                              f"a{v.source})"]
                if not v.contiguous:  # the guards keep the layout the trace saw
                    lines.append(f"        v{v.index} = np.ascontiguousarray(v{v.index})")
            elif v.kind == "grad":
                n = self.grads.index(v.index)
                lines.append(f"        {into_env(v.index)}interpret.grad_owner("
                             f"grad_source{n}, args).grad.data")
                if not v.contiguous:
                    lines.append(f"        v{v.index} = np.ascontiguousarray(v{v.index})")
        n_opaque = 0
        for kind, item in items:
            if kind == "segment":
                lines += [f"        {name} = fixed{name[len('numbers'):]} or read"
                          f"{name[len('numbers'):]}()  # lr, steps... (now if not fixed)"
                          for name in self._scalar_args(self.segment_kernels[item])]
                args = [self._scalar_arg(a) for a in self.segment_args[item]]
                if self._split(self.segment_kernels[item]):  # over two threads (runtime.split)
                    lines.append(f"        split(_segment{item}, ({', '.join(args[:-1])},))")
                else:
                    lines.append(f"        _segment{item}({', '.join(args)})")
            elif kind == "blas":
                lines.append("        " + self._blas(item))
            elif kind in CONV_PRODUCTS:
                lines.append("        " + _conv_product(item, self.values))
            elif kind == "sum":  # numpy's own sum, as eager's Sum: the same order, numbers
                keep = ", keepdims=True" if item.attrs["keepdims"] else ""
                lines.append(f"        v{item.outs[0]}[...] = np.add.reduce(v{item.args[0]}, "
                             f"axis={item.attrs.get('axis')}{keep})")
            else:
                step = item.step
                runner = {"op": "run_op", "backward": "run_backward"}[step.kind]
                lines.append(f"        # opaque: s{step.index} {step.describe()[:60]}")
                lines.append(f"        interpret.{runner}(opaque[{n_opaque}], env, nodes)")
                for out in step.outputs:  # (an update writes its parameter in place)
                    if isinstance(out, Ref) and self.values[out.value].kind == "temp":
                        lines.append(f"        v{out.value} = env[{out.value}]" if
                                     self.values[out.value].contiguous else
                                     f"        v{out.value} = np.ascontiguousarray(env["
                                     f"{out.value}])  # compiled loops index it flat")
                n_opaque += 1
        for u in range(len(self.program.updated)):  # as Optimizer.step bumps them
            lines.append(f"        counter{u}.value += 1")
        for n, (owner, ref) in enumerate(self.program.final_grads):  # .grad as eager leaves it
            tensor = f"args[{owner[1]}]" if isinstance(owner, tuple) else f"leaf{n}"
            if ref is None:
                grad = "None"
            elif ref.value in self.plan.slots:
                grad = f"leaf{first[ref.value]}_grad"  # made once over its own array
            else:
                grad = f"Tensor._make(env[{ref.value}])"
            lines.append(f"        {tensor}.grad = {grad}")
        if watched:
            lines.append("        if measure:  # what the replay alone holds, from now on")
            for n, v in watched:
                lines.append(f"            held{n}, held{n}_array = {own[n]}, getrefcount(v{v})")
            lines.append("            measure = False")
        if isinstance(self.program.result, Ref):  # a fresh tensor: the slice is reused
            r = self.program.result.value
            array = f"v{r}" if r in self.plan.slots else f"env[{r}]"
            lines += ["        result = new(Tensor)  # Tensor._make(copy), written out",
                      f"        result._data = {array}.copy()",
                      "        result.grad = result.grad_fn = result._hooks = None",
                      "        result._requires_grad = False",
                      "        result._version = VersionCounter()",
                      "        return result"]
        else:
            lines.append("        return build_result(result, env)")
        lines += ["", "    return replay, refresh"]
        return lines

    def _scalar_arg(self, name: str) -> str:
        """Segments index scalars as v[0]: pass 0-d arrays as 1-element views."""
        if name.startswith("v"):
            v = int(name[1:])
            value = self.values[v]
            if value.shape == () and v not in self.plan.slots:
                return f"{name}_1" if value.kind in ("param", "state", "const") else (
                    f"{name}.reshape(1)")
        return name


# ---- convolution and pooling (fuse.py's _lower_conv family) ----------------------------------

CONV_PRODUCTS = ("conv_mm", "conv_mm_dx", "conv_mm_dw")  # in the driver: numpy
CONV_LOOPS = ("channel_bias", "max_pool", "max_pool_back")  # in a segment


def _conv_product(k: Kernel, values: list[Value]) -> str:
    """The driver's line for a convolution's product: the ``np.matmul`` eager's Convolution
    calls (one BLAS product per sample and group, so the same additions in the same order),
    into the planned buffer. (im2col, a copy of the strided window view, is a take in a
    segment: ``_strided``.)
    W (O, C/G, kh, kw) is read as (G, O/G, K), the columns as (N, G, K, L), g as (N, G, O/G,
    L)."""
    groups = k.attrs["groups"]
    w = k.args[0] if k.kind != "conv_mm_dw" else None
    g = {"conv_mm": k.outs[0], "conv_mm_dx": k.args[1], "conv_mm_dw": k.args[0]}[k.kind]
    cols = {"conv_mm": k.args[1], "conv_mm_dx": k.outs[0], "conv_mm_dw": k.args[1]}[k.kind]
    n, rows, length = values[cols].shape
    per_group = values[g].shape[1] // groups
    kg = rows // groups
    cols4, g4 = f"v{cols}.reshape({n}, {groups}, {kg}, {length})", \
        f"v{g}.reshape({n}, {groups}, {per_group}, {length})"
    if k.kind == "conv_mm":  # out = W @ cols
        return f"np.matmul(v{w}.reshape({groups}, {per_group}, {kg}), {cols4}, out={g4})"
    if k.kind == "conv_mm_dx":  # dcols = W^T @ g
        return (f"np.matmul(v{w}.reshape({groups}, {per_group}, {kg}).transpose(0, 2, 1), {g4}, "
                f"out={cols4})")
    products = f"v{k.outs[0]}.reshape({n}, {groups}, {kg}, {per_group})"  # cols @ g^T
    return f"np.matmul({cols4}, {g4}.transpose(0, 1, 3, 2), out={products})"


def _conv_loop(src: Source, k: Kernel) -> list[str]:
    """The segment's lines for a convolution's bias + activation and for max pooling (the
    loops of tinynet/kernels/conv_compiled.py with the sizes written in)."""
    if k.kind == "channel_bias":  # out = act(x + b[channel]), plane by plane
        (x, b), y = k.args, k.outs[0]
        act = k.attrs["act"]
        n, c = src._shape(y)[:2]
        plane = src._size(y) // (n * c)
        params = "".join(f", {float(v)!r}" for v in k.attrs["params"].values())
        if b is None:
            return [] if act == "identity" else [
                f"{act}_forward({src._flat(x)}, {src._flat(y)}{params})"]
        lines = [f"src = {src._flat(x)}", f"dst = {src._flat(y)}",
                 f"for start in range(0, {src._size(y)}, {plane}):",
                 f"    bias = v{b}[(start // {plane}) % {c}]",
                 f"    for e in range(start, start + {plane}):"]
        dt = src._dt(y)
        expr = loop_expression(TABLE[act], "forward", k.attrs["params"]).format("x")
        if not ("SIGMOID(" in expr or "TANH(" in expr):
            # the formula in the loop, as ``_loop`` writes it (the kernel eager runs computes
            # the same expression), one pass: calling the kernel on each plane took 2x
            return [f"one = {dt}(1.0)", f"zero = {dt}(0.0)", *lines,
                    "        x = src[e] + bias", f"        dst[e] = {_scalar(expr, dt)}"]
        # sigmoid and tanh: the kernel eager runs (its vectorisable rules, which keep a
        # scratch array), on the plane while it is in cache
        return lines + ["        dst[e] = src[e] + bias",
                        f"    {act}_forward(dst[start:start + {plane}], "
                        f"dst[start:start + {plane}]{params})"]
    if k.kind == "max_pool_back":  # zeros, then each gradient added at its window's argmax
        (g, argmax), dx = k.args, k.outs[0]
        n, c, h, w = src._shape(dx)
        windows = src._size(g) // (n * c)
        return [f"src = {src._flat(g)}", f"at = {src._flat(argmax)}", f"dst = {src._flat(dx)}",
                f"for e in range({src._size(dx)}):",
                "    dst[e] = 0",
                f"for e in range({src._size(g)}):",
                f"    if at[e] < {h * w}:  # (else a window with no pixel in the image: dropped)",
                f"        dst[(e // {windows}) * {h * w} + at[e]] += src[e]"]
    # max_pool: each window's pixels in eager's order (row by row); the first maximum wins, a
    # NaN wins (the last NaN, as eager's `value > best or value != value` tap by tap). Written
    # as eager's kernel is (conv_compiled.max_pool2d_forward): the non-NaN maximum
    # branch-free, with only a flag for "a NaN in this row of windows"; a row so flagged is
    # scanned again for each window's last NaN. Bounds are tested only when padding can put a
    # tap outside the image.
    (x,), (out, argmax) = k.args, k.outs
    (kh, kw), (sh, sw), padding, (dh, dw) = k.attrs["geometry"]
    n, c, h, w = src._shape(x)
    oh, ow = src._shape(out)[2:]
    padded = any(padding)

    def windows(before: list[str], body: list[str], after: list[str]) -> list[str]:
        """Each window of this row of outputs: ``before``, ``body`` at each of its pixels
        (``here``: where, ``value``: what), ``after``."""
        lines = [f"for q in range({ow}):", f"    left = q * {sw} - {padding[2]}"]
        lines += [f"    {b}" for b in before]
        lines += [f"    for i in range({kh}):", f"        row = top + i * {dh}"]
        inner = "        "
        if padded:
            lines += [f"        if 0 <= row < {h}:"]
            inner += "    "
        lines += [f"{inner}for j in range({kw}):", f"{inner}    column = left + j * {dw}"]
        if padded:
            lines += [f"{inner}    if 0 <= column < {w}:"]
            inner += "    "
        lines += [f"{inner}    {b}" for b in [f"here = row * {w} + column",
                                               "value = src[base + here]", *body]]
        return lines + [f"    {b}" for b in after]

    lines = [f"src = {src._flat(x)}", f"dst = {src._flat(out)}", f"at = {src._flat(argmax)}",
             f"lowest = {src._dt(x)}(-np.inf)",
             f"for plane in range({n * c}):",
             f"    base = plane * {h * w}",
             f"    for p in range({oh}):",
             f"        e = (plane * {oh} + p) * {ow}",
             f"        top = p * {sh} - {padding[0]}",
             "        first = top"]
    if padded:
        lines += ["        while first < 0:", f"            first += {dh}"]
    lines.append("        nan = False")
    start = ["start = left"] + (["while start < 0:", f"    start += {dw}"] if padded else [])
    best = windows([*start, "best = lowest  # (a window with no pixel in the image keeps these)",
                    f"arg = first * {w} + start"],
                   ["better = value > best",
                    "best = value if better else best",
                    "arg = here if better else arg",
                    "nan |= value != value"],
                   ["dst[e + q] = best", "at[e + q] = arg"])
    last_nan = windows(["nan_at = -1"],
                       ["nan_at = here if value != value else nan_at"],
                       ["if nan_at >= 0:",
                        "    dst[e + q] = src[base + nan_at]",
                        "    at[e + q] = nan_at"])
    return (lines + [f"        {b}" for b in best] + ["        if nan:  # rare: a NaN wins"]
            + [f"            {b}" for b in last_nan])

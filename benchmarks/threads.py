"""``--cores N``: pin the benchmark to N cores and every library to N threads; the load check.

A ratio between two libraries says something only when both had the same cores: on a shared
two-core machine numpy's OpenBLAS, numba, torch's OpenMP pool and XLA each start their own
threads and steal each other's cores. ``limit(n)`` takes every knob there is:

- the process's CPU affinity (``os.sched_setaffinity``) to the first ``n`` usable CPUs;
- environment variables read by libraries that start later and by child processes
  (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``,
  and ``XLA_FLAGS`` for jax, which reads it when it first loads);
- BLAS pools numpy has already started, through threadpoolctl when it is installed;
- numba's ``set_num_threads`` (its parallel loops), and tinynet's (tn.compile's split loops);
- torch's intra-op and inter-op threads (``torch_threads()`` is what ``torch_ref`` sets).

Each knob's outcome is recorded (``what_was_set``), including the ones that could not be set
and why; the JSON keeps it under ``machine.threads``.

``load_warning`` says when the 1-minute load average exceeds ``LOAD_PER_CORE`` per usable
core: other work on the machine then shows up in every timing.
"""

from __future__ import annotations

import os
from typing import Any

# Without --cores: torch's intra-op threads (its default is every core; two keeps it from
# fighting OpenBLAS on a small machine, and is what earlier runs used).
DEFAULT_TORCH_THREADS = 2
LOAD_PER_CORE = 0.5
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "NUMBA_NUM_THREADS")
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

_state: dict[str, Any] = {"cores": None, "blas_limiter": None, "record": None, "torch": None}


def requested_cores() -> int | None:
    """The ``--cores`` value in force, or None (libraries' defaults)."""
    return _state["cores"]


def torch_threads() -> int:
    """Intra-op threads for torch: ``--cores`` if given, else ``DEFAULT_TORCH_THREADS``."""
    return _state["cores"] or DEFAULT_TORCH_THREADS


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity), or the CPU count where that is unknown."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _pin(n: int) -> list[int] | str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned: this platform has no os.sched_setaffinity"
    allowed = sorted(os.sched_getaffinity(0))
    if n > len(allowed):
        return f"not pinned: asked for {n} cores, only {len(allowed)} usable ({allowed})"
    chosen = allowed[:n]
    os.sched_setaffinity(0, chosen)
    return chosen


def _limit_blas(n: int) -> Any:
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return (f"{os.environ['OPENBLAS_NUM_THREADS']} for child processes only: threadpoolctl "
                "is not installed (pip install -e '.[bench]'), so numpy's already started "
                "BLAS pool keeps its threads")
    # Kept alive for the whole run: the limit holds while the object exists.
    _state["blas_limiter"] = threadpool_limits(limits=n)
    pools = [
        f"{p.get('internal_api')} {p.get('num_threads')}" for p in threadpool_info()
    ]
    return ", ".join(pools) or "no thread pool found by threadpoolctl"


def _limit_numba(n: int) -> Any:
    try:
        import numba
    except ImportError:
        return "numba not installed"
    try:
        numba.set_num_threads(n)
    except ValueError as exc:  # more than NUMBA_NUM_THREADS, fixed when numba loaded
        return f"not set: {exc}"
    return numba.get_num_threads()


def _limit_tinynet(n: int) -> Any:
    """``tn.set_num_threads``: tn.compile's split loops (the affinity alone also gives n)."""
    try:
        import tinynet as tn
    except ImportError:
        return "tinynet not importable"
    tn.set_num_threads(n)
    return tn.get_num_threads()


def limit_torch(torch: Any) -> str:
    """Set torch's threads (``torch_threads()`` intra-op; inter-op to ``--cores`` if given);
    what was set, as one line."""
    torch.set_num_threads(torch_threads())
    cores = _state["cores"]
    problem = ""
    if cores is not None and torch.get_num_interop_threads() != cores:
        try:
            torch.set_num_interop_threads(cores)
        except RuntimeError as exc:  # only allowed before torch's first parallel work
            problem = f" (inter-op not set: {exc})"
    text = (f"intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}"
            f"{problem}")
    _state["torch"] = text
    return text


def limit(n: int) -> dict[str, Any]:
    """Pin this process to ``n`` cores and every library to ``n`` threads; what was set."""
    if n < 1:
        raise ValueError(f"--cores must be at least 1, got {n}")
    _state["cores"] = n
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    if n == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
    affinity = _pin(n)
    record = {
        "cores": n,
        "affinity": affinity,
        "blas": _limit_blas(n),
        "numba": _limit_numba(n),
        "tinynet": _limit_tinynet(n),
        "torch": "not loaded",
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "env": [f"{var}={os.environ[var]}" for var in THREAD_ENV_VARS],
    }
    _state["record"] = record
    return record


def what_was_set() -> dict[str, Any]:
    """The thread settings of this run, for the JSON's ``machine.threads`` (same keys always)."""
    if _state["record"] is not None:
        return {**_state["record"], "torch": _state["torch"] or "not loaded"}
    return {
        "cores": None,
        "affinity": "not pinned (no --cores)",
        "blas": "library default",
        "numba": "library default",
        "tinynet": "library default (the usable CPUs)",
        "torch": _state["torch"] or "not loaded",
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "env": [f"{var}={os.environ[var]}" for var in THREAD_ENV_VARS if var in os.environ],
    }


def load_warning(load: float | None, cores: int) -> str | None:
    """A sentence when the 1-minute ``load`` exceeds ``LOAD_PER_CORE`` per usable core."""
    if load is None or load <= LOAD_PER_CORE * cores:
        return None
    return (f"the 1-minute load average is {load:.2f}, above {LOAD_PER_CORE} per usable core "
            f"({LOAD_PER_CORE * cores:g} for {cores}): other work is running, so times are "
            "slow and ratios rough; run again on a quiet machine before quoting them")


def reset() -> None:
    """Forget ``limit`` (tests): library defaults again; affinity and env are not undone."""
    limiter = _state["blas_limiter"]
    if limiter is not None and hasattr(limiter, "restore_original_limits"):
        limiter.restore_original_limits()
    _state.update(cores=None, blas_limiter=None, record=None, torch=None)
    try:
        from tinynet import kernels
    except ImportError:
        return
    kernels._threads = None  # (set_num_threads's default: the usable CPUs)

"""Command line: ``python -m benchmarks [--quick] [--only NAME ...] [--cores N] [--no-peers]
[--json FILE] [--plot PNG]``.

Prints the machine, then one table per workload. Ratios are speeds relative to the named
baseline measured in the same run (>1x means the row is faster).

Two more commands read saved runs:
  python -m benchmarks compare OLD.json NEW.json [--threshold PCT] [--fail-above PCT]
  python -m benchmarks plot RUN.json FILE.png
(``python -m benchmarks compare --help`` says how the comparison is made.)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import peers, threads, tinynet_impl, torch_ref
from .harness import LEGEND, Progress, Settings, WorkloadResult, format_seconds, format_table
from .report import SCHEMA_VERSION
from .tinynet_impl import REQUIREMENTS
from .workloads import (
    REPO_ROOT,
    Context,
    all_workloads,
    format_startup,
    measure_ceiling,
    measure_startup,
)

STARTUP = "startup"
CEILING = "matmul-ceiling"


def _try_import(loader: Any) -> tuple[Any, str | None]:
    try:
        return loader(), None
    except Exception as exc:  # any import failure means "skip these columns"
        return None, f"{type(exc).__name__}: {exc}"


def _cpu_info() -> dict[str, Any]:
    model, flags, physical = "unknown", set(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    package = core = ""
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and model == "unknown":
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "physical id":
            package = value
        elif key == "core id":
            core = value
            physical.add((package, core))
    return {
        "model": model or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "physical_cores": len(physical) or None,
        "simd": [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in flags],
    }


def _blas_info() -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info = {
            "name": blas.get("name"),
            "version": blas.get("version"),
            "config": blas.get("openblas configuration"),
        }
    except Exception:  # older numpy: no dict mode; leave it out
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threads"] = "unknown (threadpoolctl is not installed: pip install -e '.[bench]')"
        return info
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if pools:
        info["threads"] = pools[0].get("num_threads")
    else:
        info["threads"] = "unknown (threadpoolctl found no BLAS thread pool)"
    return info


def _load_average() -> float | None:
    """The 1-minute load average: other work on the machine shows up in every timing."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _git_revision() -> str:
    """The repository's commit, marked "+changes" when the work tree differs from it."""
    try:
        run = functools.partial(
            subprocess.run, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--", "tinynet"]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "no git"
    return f"git {commit or '?'}{' +changes' if dirty else ''}"


def machine_info(torch: Any, tinynet_importable: bool) -> dict[str, Any]:
    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = "not installed"
    tinynet_version = "not importable"
    if tinynet_importable:
        import tinynet

        tinynet_version = f"{getattr(tinynet, '__version__', '?')} ({_git_revision()})"
    return {
        "cpu": _cpu_info(),
        "blas": _blas_info(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba_version,
        "torch": torch.__version__ if torch is not None else "not installed",
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "tinynet": tinynet_version,
        "platform": platform.platform(),
        "load_average_at_start": _load_average(),
        "threads": threads.what_was_set(),
    }


def format_machine(info: dict[str, Any]) -> str:
    cpu, blas = info["cpu"], info["blas"]
    torch_threads = f" ({info['torch_threads']} threads)" if info["torch_threads"] else ""
    threads = blas.get("threads")
    threads = f"{threads} threads" if isinstance(threads, int) else f"threads {threads or '?'}"
    lines = [
        f"cpu      {cpu['model']}: {cpu['logical_cpus']} logical CPUs "
        f"({cpu['usable_cpus']} usable, {cpu['physical_cores']} physical cores), "
        f"{' '.join(cpu['simd'])}",
        f"blas     {blas.get('name', '?')} {blas.get('version', '')}, "
        f"{threads} ({blas.get('config', '')})",
        f"versions python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"torch {info['torch']}{torch_threads}, tinynet {info['tinynet']}",
        f"platform {info['platform']}",
        f"load     {info['load_average_at_start']} (1-minute load average at start)",
    ]
    pinned = info.get("threads") or {}
    if pinned.get("cores") is not None:
        lines.append(
            f"cores    --cores {pinned['cores']}: affinity {pinned['affinity']}; BLAS "
            f"{pinned['blas']}; numba {pinned['numba']}; torch {pinned['torch']}; "
            f"XLA_FLAGS {pinned['xla_flags']!r}"
        )
    return "\n".join(lines)


def loud(warning: str) -> str:
    """A warning nobody scrolls past."""
    bar = "!" * 78
    return f"{bar}\nWARNING: LOADED MACHINE: {warning}\n{bar}"


OWN_LOAD = 1.0  # the benchmark's own busy thread, in the load average at the end of a run


def load_warnings(
    load_at_start: float | None, load_at_end: float | None, cores: int
) -> str | None:
    """The run's load warning for the JSON (``load_warning``), or None when the 1-minute load
    average stayed at most ``threads.LOAD_PER_CORE`` per usable core at start and at end.
    At the end the average includes the run itself, which kept one thread busy for minutes:
    that one (``OWN_LOAD``) is taken off before judging (else every one-core run, alone on the
    machine, ended "loaded")."""
    judged = {"start": load_at_start,
              "end": None if load_at_end is None else max(load_at_end - OWN_LOAD, 0.0)}
    loads = [(when, load) for when, load in (("start", load_at_start), ("end", load_at_end))
             if threads.load_warning(judged[when], cores)]
    if not loads:
        return None
    worst = max(judged[when] for when, _ in loads)
    sentence = threads.load_warning(worst, cores)
    said = " and ".join(f"{load} at {when}" + (
        f" ({judged[when]:.2f} besides this run's own thread)" if when == "end" else "")
        for when, load in loads)
    return f"{sentence} (1-minute load average {said})"


def summary_line(result: WorkloadResult) -> str:
    """One line per finished workload for the progress stream."""
    times = ", ".join(
        f"{impl} {format_seconds(m.median)}" for impl, m in result.measurements.items()
    )
    skipped = f" (skipped: {', '.join(result.skipped)})" if result.skipped else ""
    return f"{result.name}: {times}{skipped}"


def build_report(
    started_at: str,
    info: dict[str, Any],
    settings: Settings,
    quick: bool,
    ctx: Context,
    results: list[WorkloadResult],
    startup: dict[str, Any] | None,
    elapsed: float,
    load_at_end: float | None,
    load_warning: str | None = None,
) -> dict[str, Any]:
    """The ``--json`` file's content (documented in docs/benchmarks.md, "The JSON file")."""
    return {
        "schema_version": SCHEMA_VERSION,
        "started_at": started_at,
        "machine": info,
        "settings": vars(settings),
        "quick": quick,
        "ceilings_gflops": ctx.ceilings,
        "workloads": [r.to_json() for r in results],
        "startup": startup,
        "failures": ctx.failures,
        "elapsed_s": elapsed,
        "load_average_at_end": load_at_end,
        "load_warning": load_warning,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer, shorter repeats (the whole suite in a few minutes)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        default=[],
        help="run workloads whose name contains NAME (may repeat)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write every sample as JSON (for `compare`)"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw speed relative to numpy per workload (needs matplotlib)",
    )
    parser.add_argument(
        "--cores",
        type=int,
        metavar="N",
        help="pin the process to N cores and every library (BLAS, numba, torch, XLA) to N "
        "threads; recorded in the JSON (machine.threads)",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help=f"leave out the {' and '.join(peers.NAMES)} columns (their compilation takes "
        "tens of seconds per workload)",
    )
    parser.add_argument("--list", action="store_true", help="list workload names and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "compare":
        from . import compare

        return compare.main(argv[1:])
    if argv and argv[0] == "plot":
        from . import plot

        return plot.main(argv[1:])
    return run(argv)


def run(argv: list[str]) -> int:
    """Run the suite: see the module docstring."""
    args = parse_args(argv)
    workloads = all_workloads()
    names = [CEILING] + [w.name for w in workloads] + [STARTUP]
    if args.list:
        print("\n".join(names))
        return 0

    def selected(name: str) -> bool:
        return not args.only or any(part in name for part in args.only)

    chosen = [
        w
        for w in workloads
        if selected(w.name) and (w.in_quick or not args.quick or w.name in args.only)
    ]
    run_startup = selected(STARTUP)
    run_ceiling = bool(args.only) and selected(CEILING)
    if not chosen and not run_startup and not run_ceiling:
        print(f"no workload matches {args.only}; choose from: {', '.join(names)}", file=sys.stderr)
        return 2

    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401  (fail now, not after minutes of timing)
        except ImportError:
            print("--plot needs matplotlib: pip install -e '.[plot]'", file=sys.stderr)
            return 2

    if args.cores is not None:
        try:
            threads.limit(args.cores)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    cores = threads.usable_cpus()

    started = time.perf_counter()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    torch, torch_error = _try_import(torch_ref.load_torch)
    tinynet_problems = {part: tinynet_impl.import_problem(part) for part in REQUIREMENTS}
    info = machine_info(torch, tinynet_problems["tensor"] is None)
    print(format_machine(info))
    start_warning = threads.load_warning(info["load_average_at_start"], cores)
    if start_warning:
        print(loud(start_warning), file=sys.stderr)
        print(loud(start_warning))
    if torch_error:
        print(f"torch not importable: {torch_error} (torch columns skipped)")
    parts_by_problem: dict[str, list[str]] = {}
    for part, problem in tinynet_problems.items():
        if problem:
            parts_by_problem.setdefault(problem, []).append(part)
    for problem, parts in parts_by_problem.items():
        print(
            f"tinynet not importable: {problem} (tinynet columns of the {'/'.join(parts)} "
            "workloads skipped)"
        )
    print(flush=True)

    settings = Settings.quick() if args.quick else Settings.full()
    ctx = Context(settings, Progress(), torch_error, tinynet_problems, peers=not args.no_peers)
    want_ceiling = run_ceiling or any(w.uses_ceiling for w in chosen)
    results = [measure_ceiling(ctx, "start")] if want_ceiling else []
    for workload in chosen:
        result = workload.run(ctx)
        ctx.progress.note(summary_line(result))
        results.append(result)
    if want_ceiling:
        results.append(measure_ceiling(ctx, "end"))
    startup = measure_startup(ctx) if run_startup else None

    # Tables come last so "% ceiling" can use the better of the start and end ceilings.
    print(LEGEND, end="\n\n")
    for result in results:
        if result.dtype is not None:
            result.ceiling_gflops = ctx.ceilings.get(result.dtype)
        print(format_table(result), end="\n\n")
    if startup is not None:
        print(format_startup(startup), end="\n\n")

    elapsed = time.perf_counter() - started
    load_at_end = _load_average()
    print(
        f"total {elapsed:.0f} s ({'quick' if args.quick else 'full'} settings); "
        f"1-minute load average {info['load_average_at_start']} at start, {load_at_end} at end"
    )
    warning = load_warnings(info["load_average_at_start"], load_at_end, cores)
    if warning:
        print(loud(warning))
    report = build_report(
        started_at, info, settings, args.quick, ctx, results, startup, elapsed, load_at_end,
        warning,
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"results written to {args.json}")
    if args.plot is not None:
        from . import plot

        try:
            print(f"figure written to {plot.draw(report, args.plot)}")
        except ValueError as exc:  # no workload with a numpy row, e.g. --only perceptron
            print(f"no figure: {exc}", file=sys.stderr)
    if ctx.failures:
        print("\nCORRECTNESS FAILURES:", *ctx.failures, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

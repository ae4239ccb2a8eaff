"""Timing, interleaving, progress display and result tables.

How a workload is timed:

1. Warm-up: each implementation runs until it has spent ``warmup_s`` (at least twice), so
   JIT compilation, page faults and BLAS thread start-up are out of the way.
2. Calibration: each implementation gets an inner loop count so that one sample lasts at
   least ``sample_s``; a sample's time is divided by that count.
3. Interleaved rounds: every round takes one sample of each implementation, round-robin,
   starting from a different implementation each round, so drift (thermal, frequency,
   other processes) hits all of them equally. The round count fills ``budget_s`` within
   ``[min_rounds, max_rounds]``.
4. Before every sample the harness busy-waits ``settle_s``. Thread pools spin-wait after
   their work: OpenBLAS (numpy, tinynet) for ~0.1 s, OpenMP (torch) more briefly. Without
   the pause those spinning threads steal cores from whichever library runs next; on two
   cores that made torch's small-MLP step 2-3x slower interleaved than alone. Busy-waiting
   rather than sleeping keeps the timing thread's core awake: after a sleep the first
   milliseconds of a sample ran measurably slower.
5. The reported time is the median sample; the spread is the interquartile range over the
   median.
6. Noisy rows: when an implementation's spread exceeds ``noisy_spread`` the whole
   interleaved measurement is taken again, at most ``max_remeasure`` times, and the attempt
   whose worst spread is smallest is kept. Interference from other processes only ever makes
   samples slower, so the steadiest attempt is the one closest to the machine's real speed.
   Rows still above the threshold are flagged ``noisy`` in the tables.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Skip(Exception):
    """An implementation that cannot run on this machine (a peer library absent, a compiler
    that refuses the step): the workload lists it as skipped with this reason. Not a failure,
    unlike an implementation that runs and gets the numbers wrong."""


@dataclass(frozen=True)
class Settings:
    """How long to spend on each workload."""

    warmup_s: float
    sample_s: float
    budget_s: float
    min_rounds: int
    max_rounds: int
    settle_s: float
    noisy_spread: float = 0.30  # spread (IQR / median) above which a row counts as noisy
    max_remeasure: int = 1  # extra attempts for a workload with a noisy row

    @classmethod
    def full(cls) -> Settings:
        return cls(
            warmup_s=0.5,
            sample_s=0.05,
            budget_s=8.0,
            min_rounds=7,
            max_rounds=25,
            settle_s=0.15,
            max_remeasure=2,
        )

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            warmup_s=0.1,
            sample_s=0.02,
            budget_s=1.0,
            min_rounds=3,
            max_rounds=7,
            settle_s=0.15,
            max_remeasure=1,
        )


# --------------------------------------------------------------------------- progress


class Progress:
    """A tqdm bar per timed phase when tqdm is installed, plain lines otherwise."""

    def __init__(self) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            self._tqdm: Any = None
        else:
            self._tqdm = tqdm

    def bar(self, desc: str, total: int) -> Any:
        if self._tqdm is not None:
            return self._tqdm(
                total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True
            )
        return _PlainBar(desc, total)

    def note(self, message: str) -> None:
        if self._tqdm is not None:
            self._tqdm.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)


class _PlainBar:
    """Stand-in for tqdm: one line when a phase starts and one when it ends."""

    def __init__(self, desc: str, total: int) -> None:
        self.desc = desc
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        print(f"{desc}: {total} rounds ...", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.done += n

    def close(self) -> None:
        elapsed = time.perf_counter() - self.start
        print(
            f"{self.desc}: {self.done}/{self.total} done in {elapsed:.1f} s",
            file=sys.stderr,
            flush=True,
        )


# --------------------------------------------------------------------------- timing


def _settle(seconds: float) -> None:
    """Busy-wait: let other thread pools' spinning workers time out (see module docstring)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _time_calls(fn: Callable[[], object], count: int) -> float:
    """Seconds per call of ``fn`` over ``count`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count


def measure_interleaved(
    steps: dict[str, Callable[[], object]], settings: Settings, progress: Progress, desc: str
) -> dict[str, list[float]]:
    """Per-call times of each step, sampled round-robin; see the module docstring."""
    names = list(steps)
    per_call: dict[str, float] = {}
    for name in names:
        _settle(settings.settle_s)
        start = time.perf_counter()
        warmup: list[float] = []
        while len(warmup) < 2 or time.perf_counter() - start < settings.warmup_s:
            warmup.append(_time_calls(steps[name], 1))
        per_call[name] = statistics.median(warmup[len(warmup) // 2 :])
    inner = {name: max(1, round(settings.sample_s / max(t, 1e-9))) for name, t in per_call.items()}
    round_s = sum(per_call[n] * inner[n] for n in names)
    rounds = int(settings.budget_s / max(round_s, 1e-9))
    rounds = min(settings.max_rounds, max(settings.min_rounds, rounds))

    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    bar = progress.bar(desc, rounds)
    try:
        for r in range(rounds):
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                _settle(settings.settle_s)
                samples[name].append(_time_calls(steps[name], inner[name]))
            bar.update(1)
    finally:
        bar.close()
    return samples


def measure_steady(
    steps: dict[str, Callable[[], object]], settings: Settings, progress: Progress, desc: str
) -> tuple[dict[str, list[float]], list[float]]:
    """``measure_interleaved``, repeated while a row is noisy (module docstring, point 6).

    Returns the kept samples and the worst spread of every attempt, in order.
    """
    best: dict[str, list[float]] | None = None
    worst_spreads: list[float] = []
    for attempt in range(1 + settings.max_remeasure):
        label = desc if attempt == 0 else f"{desc} (re-measure {attempt})"
        samples = measure_interleaved(steps, settings, progress, label)
        worst = max(spread(times) for times in samples.values())
        if best is None or worst < min(worst_spreads):
            best = samples
        worst_spreads.append(worst)
        if worst <= settings.noisy_spread:
            break
        if attempt < settings.max_remeasure:
            progress.note(
                f"{desc}: spread {100 * worst:.0f}% is above {100 * settings.noisy_spread:.0f}%, "
                "measuring again"
            )
    assert best is not None
    return best, worst_spreads


# --------------------------------------------------------------------------- results


def spread(times: list[float]) -> float:
    """Interquartile range over the median (the whole range for fewer than four samples)."""
    middle = statistics.median(times)
    if len(times) < 4:
        return (max(times) - min(times)) / middle
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / middle


@dataclass
class Measurement:
    """All per-call samples of one implementation on one workload, in seconds."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return spread(self.times)


_UNIT_SCALE = {"samples/s": 1.0, "GB/s": 1e9, "GFLOP/s": 1e9}


@dataclass
class WorkloadResult:
    """One workload's numbers and everything needed to print and export them.

    ``work_per_step`` is in samples, bytes or FLOPs, matching ``unit``.
    """

    name: str
    title: str
    unit: str  # "samples/s", "GB/s" or "GFLOP/s"
    work_per_step: float
    baselines: list[str]
    flops_per_step: int | None = None
    dtype: str | None = None
    ceiling_gflops: float | None = None
    measurements: dict[str, Measurement] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    noisy_spread: float = 0.30
    attempt_spreads: list[float] = field(default_factory=list)  # worst spread per attempt

    def is_noisy(self, impl: str) -> bool:
        return self.measurements[impl].spread > self.noisy_spread

    def throughput(self, impl: str) -> float:
        per_s = self.work_per_step / self.measurements[impl].median
        return per_s / _UNIT_SCALE[self.unit]

    def speed_ratio(self, impl: str, baseline: str) -> float | None:
        """How many times faster ``impl`` is than ``baseline`` (>1: impl is faster)."""
        if impl not in self.measurements or baseline not in self.measurements:
            return None
        return self.measurements[baseline].median / self.measurements[impl].median

    def gflops(self, impl: str) -> float | None:
        if self.flops_per_step is None:
            return None
        return self.flops_per_step / self.measurements[impl].median / 1e9

    def to_json(self) -> dict[str, Any]:
        impls: dict[str, Any] = {}
        for impl, m in self.measurements.items():
            gflops = self.gflops(impl)
            impls[impl] = {
                "median_s": m.median,
                "spread": m.spread,
                "times_s": m.times,
                "throughput": self.throughput(impl),
                "throughput_unit": self.unit,
                "gflops": gflops,
                "pct_of_ceiling": (
                    100 * gflops / self.ceiling_gflops
                    if gflops is not None and self.ceiling_gflops
                    else None
                ),
                "speed_vs": {b: self.speed_ratio(impl, b) for b in self.baselines},
                "noisy": self.is_noisy(impl),
            }
        return {
            "name": self.name,
            "title": self.title,
            "unit": self.unit,
            "baselines": self.baselines,
            "flops_per_step": self.flops_per_step,
            "dtype": self.dtype,
            "ceiling_gflops": self.ceiling_gflops,
            "implementations": impls,
            "skipped": self.skipped,
            "notes": self.notes,
            "noisy_spread": self.noisy_spread,
            "attempt_spreads": self.attempt_spreads,
        }


def format_seconds(t: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _format_rate(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


LEGEND = (
    "how to read the tables: vs X = X's time / this row's time, so >1x = faster than the "
    "baseline X; spread = interquartile range / median"
)

# Below this share of the matmul ceiling the FLOP columns describe overhead, not arithmetic.
FLOPS_WORTH_SHOWING = 0.001


def _flop_columns_informative(result: WorkloadResult) -> bool:
    """False when every row reaches under 0.1% of the ceiling (XOR: a 2-4-1 network's
    matmuls are a few dozen FLOPs, the step is all overhead) or nothing counts FLOPs."""
    if result.flops_per_step is None or not result.measurements:
        return False
    if not result.ceiling_gflops:
        return True
    best = max(result.gflops(impl) or 0.0 for impl in result.measurements)
    return best / result.ceiling_gflops >= FLOPS_WORTH_SHOWING


def format_table(result: WorkloadResult) -> str:
    """A plain-text table: one row per implementation, ratios against each baseline.

    Columns that say nothing for this workload are left out, with a line saying why: a
    baseline that was not measured, and GFLOP/s with % ceiling when the matmuls are too small
    to matter. Rows whose spread is over ``result.noisy_spread`` are marked ``noisy``.
    """
    baselines = [b for b in result.baselines if b in result.measurements]
    show_flops = _flop_columns_informative(result)
    header = ["impl", "time/step", "spread", result.unit]
    header += [f"vs {b}" for b in baselines]
    if show_flops:
        header += ["GFLOP/s", "% ceiling"]
    rows = [header]
    noisy = []
    for impl in result.measurements:
        m = result.measurements[impl]
        tp = result.throughput(impl)
        flag = ""
        if result.is_noisy(impl):
            flag = " noisy"
            noisy.append(impl)
        row = [
            impl,
            format_seconds(m.median),
            f"{100 * m.spread:.0f}%{flag}",
            _format_rate(tp) if result.unit == "samples/s" else f"{tp:.3g}",
        ]
        for b in baselines:
            ratio = result.speed_ratio(impl, b)
            row.append("-" if ratio is None else f"{ratio:.2f}x")
        if show_flops:
            gflops = result.gflops(impl)
            row.append(f"{gflops:.3g}")
            row.append(
                f"{100 * gflops / result.ceiling_gflops:.1f}%" if result.ceiling_gflops else "-"
            )
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"== {result.title}"]
    for j, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    for impl, reason in result.skipped.items():
        lines.append(f"{impl}: skipped ({reason})")
    if result.flops_per_step is not None and not show_flops:
        lines.append(
            "GFLOP/s and % ceiling left out: the matmuls reach under "
            f"{100 * FLOPS_WORTH_SHOWING:.1f}% of the ceiling (the step is all overhead)"
        )
    lines.extend(_noise_lines(result, noisy))
    lines.extend(result.notes)
    return "\n".join(lines)


def _noise_lines(result: WorkloadResult, noisy: list[str]) -> list[str]:
    threshold = f"{100 * result.noisy_spread:.0f}%"
    attempts = result.attempt_spreads
    lines = []
    if len(attempts) > 1:
        tried = ", ".join(f"{100 * s:.0f}%" for s in attempts)
        lines.append(
            f"re-measured: worst spread above {threshold}; worst spread per attempt {tried}; "
            "the steadiest attempt is shown"
        )
    if noisy:
        lines.append(
            f"noisy: spread above {threshold} for {', '.join(noisy)}; treat their ratios as "
            "rough (the machine was busy; run again, or compare with `compare`)"
        )
    return lines

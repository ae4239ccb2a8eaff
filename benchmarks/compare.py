"""``python -m benchmarks compare OLD.json NEW.json``: did NEW get faster or slower than OLD?

For every workload and implementation present in both runs it prints the time ratio
NEW/OLD (below 1: NEW is faster) with a confidence interval and a verdict.

The statistic, and why:

- Timings are skewed: interference from other processes only ever adds time, so a few
  samples can be far slower than the rest. A mean follows them; order statistics do not.
- A benchmark run stores only a handful of samples per row (3-7 with ``--quick``), too few
  for a bootstrap to be honest (it resamples the same three numbers) or for a t-interval
  (it assumes normal data).
- So the estimate is the Hodges-Lehmann one on log-times: the median of the ``n * m``
  ratios ``new_i / old_j`` over every pair of samples. When NEW is OLD slowed or sped up by
  a constant factor it estimates that factor, as the ratio of medians does, and it uses
  every sample. Its confidence interval is exact and distribution-free: the pairwise
  ratios ranked ``k``-th from each end, ``k`` read off the exact Mann-Whitney U
  distribution for these sample counts. It needs no normality and no resampling.
- With few samples the exact interval cannot reach 95%: three samples against three reach
  90% at best (the interval is then [smallest, largest] pairwise ratio). The level actually
  reached is printed beside each interval.

A row is ``slower`` (``faster``) when the whole interval lies above (below) 1 and the
estimate moves by more than ``--threshold`` (5% by default): the interval only sees the
noise inside each run, and two runs taken at different times commonly differ by a few
percent with no code change (CPU frequency, other processes, memory layout). The exit
status is 1 when some tinynet row (``tinynet``, ``tinynet-compiled``...) is ``slower`` by
more than ``--fail-above`` (10% by default), so the command can guard CI or a pre-merge
check; 2 when a file cannot be read. The peers' rows (numpy, torch, the matmul ceiling, the
pure-Python perceptron) get verdicts too but are only reported: tinynet's code cannot make
them slower, so when they move the machine did (``--judge all`` judges them as well).

Two runs on a machine whose speed changed between them (other load, another machine) differ
everywhere, numpy included; the output warns when the code tinynet does not touch moved.
``--relative-to numpy`` then compares each implementation's time divided by numpy's time in
the same round (every round times every implementation, and the samples are stored in round
order), which cancels what the whole machine did.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .harness import format_seconds
from .report import ReportError, describe_run, flatten, load_report

CONFIDENCE = 0.95
EXACT_UP_TO = 2500  # n * m up to which the exact U distribution is computed (50 vs 50)
LOWEST_USEFUL_LEVEL = 0.80  # below this an interval says nothing: too few samples

# Machine keys that differ between any two runs and are shown with the runs, not as a change.
_EXPECTED_TO_DIFFER = {"load_average_at_start"}


# --------------------------------------------------------------------------- statistics


@cache
def _u_counts(n: int, m: int) -> tuple[int, ...]:
    """How many of the C(n+m, n) orderings of two samples give each Mann-Whitney U.

    U counts the pairs (x from the first sample, y from the second) with x > y. Recurrence on
    the largest of the n + m values: from the first sample it beats all m values of the
    second (U shifts by m), from the second it beats nothing.
    """
    if n == 0 or m == 0:
        return (1,)
    counts = [0] * (n * m + 1)
    for u, c in enumerate(_u_counts(n - 1, m)):
        counts[u + m] += c
    for u, c in enumerate(_u_counts(n, m - 1)):
        counts[u] += c
    return tuple(counts)


def _interval_rank(n: int, m: int, confidence: float) -> tuple[int, float]:
    """The rank k for the interval [D_(k), D_(nm+1-k)] and the confidence it reaches.

    The interval covers the true shift with probability 1 - 2 P(U <= k - 1); take the
    largest k whose coverage is still >= ``confidence``, or k = 1 (the whole range of
    pairwise ratios) when even that falls short.
    """
    if n * m > EXACT_UP_TO:
        return _interval_rank_normal(n, m, confidence)
    counts = _u_counts(n, m)
    total = math.comb(n + m, n)
    k, below = 1, counts[0]  # below = #{U <= k - 1}
    while k < (n * m + 1) // 2 and 1 - 2 * (below + counts[k]) / total >= confidence:
        below += counts[k]
        k += 1
    return k, 1 - 2 * below / total


def _interval_rank_normal(n: int, m: int, confidence: float) -> tuple[int, float]:
    """``_interval_rank`` for many samples: U is close to normal with mean nm/2 and variance
    nm(n+m+1)/12 (the exact table would cost O(n^2 m^2) there)."""
    mean, sd = n * m / 2, math.sqrt(n * m * (n + m + 1) / 12)
    z = statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    k = max(1, math.floor(mean - z * sd))
    return k, 1 - 2 * statistics.NormalDist(mean, sd).cdf(k - 0.5)


@dataclass(frozen=True)
class RatioEstimate:
    """NEW/OLD time ratio: the estimate, its interval and the confidence that interval has."""

    ratio: float
    low: float
    high: float
    level: float

    @property
    def has_interval(self) -> bool:
        return self.level >= LOWEST_USEFUL_LEVEL


def time_ratio(old: list[float], new: list[float], confidence: float = CONFIDENCE) -> RatioEstimate:
    """Hodges-Lehmann estimate of new/old with its exact Mann-Whitney interval.

    Works on log-times, so the shift it estimates is a factor: ``new ~ factor * old``.
    """
    logs = sorted(math.log(b) - math.log(a) for a in old for b in new)
    k, level = _interval_rank(len(new), len(old), confidence)
    return RatioEstimate(
        ratio=math.exp(statistics.median(logs)),
        low=math.exp(logs[k - 1]),
        high=math.exp(logs[len(logs) - k]),
        level=level,
    )


# --------------------------------------------------------------------------- comparing runs


@dataclass(frozen=True)
class Row:
    workload: str
    impl: str
    old_median: float
    new_median: float
    estimate: RatioEstimate
    verdict: str  # "faster", "slower", "no significant change", "too few samples"
    noisy: bool
    speed_vs: tuple[str, float | None, float | None] | None  # baseline, old, new


@dataclass
class Comparison:
    machine_changes: list[tuple[str, Any, Any]]
    rows: list[Row]
    only_old: list[str]
    only_new: list[str]
    threshold: float
    fail_above: float
    startup: list[tuple[str, float, float]]
    relative_to: str | None = None
    reference_drift: float | None = None  # see _reference_drift
    without_baseline: list[str] = field(default_factory=list)  # relative_to: not compared
    judge_all: bool = False  # judge the peers' rows (numpy, torch...) too

    def judged(self, row: Row) -> bool:
        """Whether a slowdown of this row fails the comparison: tinynet's rows, or every row
        with ``judge_all``."""
        return self.judge_all or is_tinynet(row.impl)

    @property
    def failing(self) -> list[Row]:
        """Judged rows significantly slower by more than the ``fail_above`` margin."""
        return [
            r for r in self.rows
            if self.judged(r) and r.verdict == "slower" and r.estimate.ratio > 1 + self.fail_above
        ]


def is_tinynet(impl: str) -> bool:
    """tinynet's own implementations (eager, compiled...), as opposed to its peers."""
    return impl.startswith("tinynet")


def verdict(estimate: RatioEstimate, threshold: float) -> str:
    """``slower``/``faster`` when the interval excludes 1 and the change exceeds the threshold."""
    if not estimate.has_interval:
        return "too few samples"
    if estimate.low > 1 and estimate.ratio > 1 + threshold:
        return "slower"
    if estimate.high < 1 and estimate.ratio < 1 / (1 + threshold):
        return "faster"
    return "no significant change"


def _workloads(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in report["workloads"]}


def _first_speed_vs(
    old: dict[str, Any], new: dict[str, Any], impl: str
) -> tuple[str, float | None, float | None] | None:
    """Speed against the workload's first baseline in each run (e.g. tinynet vs numpy),
    as the tables print it: the baseline's median time over this row's."""
    baselines = new.get("baselines") or list(new["implementations"][impl].get("speed_vs") or {})
    for baseline in baselines:
        if baseline == impl:
            continue
        speeds = []
        for run in (old, new):
            impls = run["implementations"]
            speeds.append(
                statistics.median(impls[baseline]["times_s"])
                / statistics.median(impls[impl]["times_s"])
                if baseline in impls
                else None
            )
        if speeds != [None, None]:
            return baseline, speeds[0], speeds[1]
    return None


def compare_reports(
    old: dict[str, Any],
    new: dict[str, Any],
    threshold: float = 0.05,
    fail_above: float = 0.10,
    relative_to: str | None = None,
    judge_all: bool = False,
) -> Comparison:
    """Every (workload, implementation) measured in both runs, compared.

    With ``relative_to`` (e.g. "numpy") each sample is first divided by that implementation's
    sample of the same round, so what is compared is the time relative to the baseline
    measured alongside it, and a machine that got slower or faster as a whole cancels out.
    """

    def described(run: dict[str, Any]) -> dict[str, Any]:
        return {
            **flatten(run["machine"]),
            **flatten({"quick": run.get("quick"), "settings": run.get("settings") or {}}),
        }

    old_flat, new_flat = described(old), described(new)
    changes = [
        (key, old_flat.get(key), new_flat.get(key))
        for key in dict.fromkeys([*old_flat, *new_flat])
        if key not in _EXPECTED_TO_DIFFER and old_flat.get(key) != new_flat.get(key)
    ]
    old_w, new_w = _workloads(old), _workloads(new)
    rows: list[Row] = []
    only_old: list[str] = []
    only_new: list[str] = []
    without_baseline: list[str] = []
    for name in dict.fromkeys([*old_w, *new_w]):
        if name not in new_w:
            only_old.append(name)
            continue
        if name not in old_w:
            only_new.append(name)
            continue
        a, b = old_w[name]["implementations"], new_w[name]["implementations"]
        if relative_to is not None and (relative_to not in a or relative_to not in b):
            without_baseline.append(name)
            continue
        for impl in dict.fromkeys([*a, *b]):
            if impl == relative_to:
                continue
            if impl not in b:
                only_old.append(f"{name}/{impl}")
                continue
            if impl not in a:
                only_new.append(f"{name}/{impl}")
                continue
            old_times, new_times = a[impl]["times_s"], b[impl]["times_s"]
            if relative_to is not None:
                old_times = relative_times(old_times, a[relative_to]["times_s"])
                new_times = relative_times(new_times, b[relative_to]["times_s"])
            estimate = time_ratio(old_times, new_times)
            rows.append(
                Row(
                    workload=name,
                    impl=impl,
                    old_median=statistics.median(old_times),
                    new_median=statistics.median(new_times),
                    estimate=estimate,
                    verdict=verdict(estimate, threshold),
                    noisy=bool(a[impl].get("noisy") or b[impl].get("noisy")),
                    speed_vs=_first_speed_vs(old_w[name], new_w[name], impl),
                )
            )
    return Comparison(
        changes,
        rows,
        only_old,
        only_new,
        threshold,
        fail_above,
        _startup_changes(old, new),
        relative_to,
        None if relative_to is not None else _reference_drift(rows, threshold),
        without_baseline,
        judge_all,
    )


def relative_times(times: list[float], baseline: list[float]) -> list[float]:
    """Each sample over the baseline's sample of the same round (samples are stored in round
    order and every round times every implementation), so a machine that is slower as a whole
    cancels out. Runs of unequal length fall back to dividing by the baseline's median."""
    if len(times) == len(baseline):
        return [t / b for t, b in zip(times, baseline, strict=True)]
    middle = statistics.median(baseline)
    return [t / middle for t in times]


def _reference_drift(rows: list[Row], threshold: float) -> float | None:
    """How much slower the code tinynet does not touch (numpy, torch, the matmul ceiling, the
    pure-Python perceptron) got, as the median of its rows' ratios; None within the threshold.

    When that moved, the machine changed speed between the runs (load, frequency, another
    machine) and the absolute verdicts mostly measure that.
    """
    reference = [r.estimate.ratio for r in rows if not is_tinynet(r.impl)]
    if not reference:
        return None
    drift = statistics.median(reference)
    return drift if not 1 / (1 + threshold) <= drift <= 1 + threshold else None


def _startup_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, float, float]]:
    """Start-up costs in both runs: (what, old seconds, new seconds)."""
    a, b = old.get("startup") or {}, new.get("startup") or {}
    found = []
    for key, label in (("import_tinynet_s", "import tinynet"), ("import_numpy_s", "import numpy")):
        if isinstance(a.get(key), float) and isinstance(b.get(key), float):
            found.append((label, a[key], b[key]))
    for key, label in (("cold_numba_cache", "cold cache"), ("warm_numba_cache", "warm cache")):
        first_a = (a.get(key) or {}).get("first_step_s")
        first_b = (b.get(key) or {}).get("first_step_s")
        if isinstance(first_a, float) and isinstance(first_b, float):
            found.append((f"first step, {label}", first_a, first_b))
    return found


# --------------------------------------------------------------------------- output


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _verdict_text(row: Row, judged: bool = True) -> str:
    text = row.verdict
    if row.verdict in ("slower", "faster"):
        text += f" ({100 * (row.estimate.ratio - 1):+.0f}% time)"
    if row.noisy:
        text += ", noisy"
    if not judged:
        text += ", not judged"
    return text


def _ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_comparison(
    comparison: Comparison, old_desc: str, new_desc: str, old_name: str, new_name: str
) -> str:
    lines = [f"OLD  {old_name}: {old_desc}", f"NEW  {new_name}: {new_desc}", ""]
    if comparison.machine_changes:
        lines.append("the two runs differ in (machine, versions, settings):")
        for key, a, b in comparison.machine_changes:
            lines.append(f"  {key}: {_short(a)} -> {_short(b)}")
        lines.append(
            "  (timings from different machines or versions compare those too, not just the code)"
        )
    else:
        lines.append("same machine, versions and settings in both runs")
    rel = comparison.relative_to
    if comparison.reference_drift is not None:
        lines += [
            "",
            f"WARNING: code tinynet does not touch (numpy, torch, the matmul ceiling...) takes "
            f"{comparison.reference_drift:.2f}x its OLD time in NEW (median over those rows):",
            "the machine itself changed speed between the runs (load, frequency, another "
            "machine), so the verdicts below mostly measure that.",
            "`--relative-to numpy` compares each row's time relative to numpy's in the same "
            "round instead, which cancels it.",
        ]
    what = "time ratio NEW/OLD" if rel is None else f"ratio NEW/OLD of the time relative to {rel}"
    lines += [
        "",
        f"new/old = {what}, <1x = NEW is faster; estimate: median of all pairwise "
        "sample ratios (Hodges-Lehmann),",
        f"interval: exact Mann-Whitney, at the confidence shown (aim {100 * CONFIDENCE:.0f}%); "
        f"verdict: interval excludes 1 and change > {100 * comparison.threshold:.0f}%"
        + ("; `vs` = speed against that baseline in OLD -> NEW" if rel is None else ""),
        "",
    ]
    if not comparison.judge_all and any(not comparison.judged(r) for r in comparison.rows):
        lines.insert(-1, "rows of tinynet's peers are reported, `not judged`: tinynet's code "
                         "cannot make them slower (--judge all judges them too)")
    if rel is not None:
        lines.insert(
            -1,
            f"old, new = speed against {rel} measured in the same rounds ({rel} time / "
            "this time; >1x = faster than it)",
        )
    header = ["workload", "impl", "old", "new", "new/old", "interval", "conf", "verdict", "vs"]
    if rel is not None:
        header = header[:-1]
    table = [header]
    for r in comparison.rows:
        e = r.estimate
        interval = f"[{e.low:.2f}, {e.high:.2f}]" if e.has_interval else "-"
        vs = "-"
        if r.speed_vs is not None:
            baseline, a, b = r.speed_vs
            vs = f"{baseline} {_ratio_text(a)} -> {_ratio_text(b)}"
        if rel is None:
            old_text, new_text = format_seconds(r.old_median), format_seconds(r.new_median)
        else:  # relative times: show them as the tables' speeds
            old_text, new_text = f"{1 / r.old_median:.2f}x", f"{1 / r.new_median:.2f}x"
        cells = [
            r.workload,
            r.impl,
            old_text,
            new_text,
            f"{e.ratio:.2f}x",
            interval,
            f"{100 * e.level:.0f}%",
            _verdict_text(r, comparison.judged(r)),
            vs,
        ]
        table.append(cells[: len(header)])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    left = {0, 1, 7, 8}
    for j, row in enumerate(table):
        cells = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    if comparison.only_old:
        lines.append(f"only in OLD (not compared): {', '.join(comparison.only_old)}")
    if comparison.only_new:
        lines.append(f"only in NEW (not compared): {', '.join(comparison.only_new)}")
    if comparison.without_baseline:
        lines.append(
            f"without a {rel} row in both runs (not compared): "
            f"{', '.join(comparison.without_baseline)}"
        )
    if comparison.startup:
        lines.append(
            "start-up (one median of a few fresh interpreters each, so no interval or verdict): "
            + "; ".join(
                f"{what} {format_seconds(a)} -> {format_seconds(b)}"
                for what, a, b in comparison.startup
            )
        )
    counts = {
        v: sum(r.verdict == v for r in comparison.rows)
        for v in ("slower", "faster", "no significant change", "too few samples")
    }
    lines.append("")
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items() if n) or "nothing to compare")
    failing = comparison.failing
    if failing:
        names = ", ".join(f"{r.workload}/{r.impl} ({r.estimate.ratio:.2f}x)" for r in failing)
        lines.append(
            f"FAIL: slower by more than the --fail-above margin of "
            f"{100 * comparison.fail_above:.0f}%: {names}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", type=Path, metavar="OLD.json", help="the reference run")
    parser.add_argument("new", type=Path, metavar="NEW.json", help="the run to judge")
    parser.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        metavar="PCT",
        help="smallest change in percent reported as faster/slower (default 5)",
    )
    parser.add_argument(
        "--relative-to",
        metavar="IMPL",
        help="compare each implementation's time relative to IMPL's (e.g. numpy) in the same "
        "round: cancels a machine that is slower or faster as a whole",
    )
    parser.add_argument(
        "--fail-above",
        type=float,
        default=10.0,
        metavar="PCT",
        help="exit 1 when a judged row is significantly slower by more than PCT percent "
        "(default 10)",
    )
    parser.add_argument(
        "--judge",
        choices=["tinynet", "all"],
        default="tinynet",
        help="whose slowdowns fail the comparison: tinynet's rows (default; numpy's, torch's "
        "and the other peers' are reported only), or every row",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        old, new = load_report(args.old), load_report(args.new)
    except ReportError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    comparison = compare_reports(
        old, new, args.threshold / 100, args.fail_above / 100, args.relative_to,
        judge_all=args.judge == "all",
    )
    print(
        format_comparison(
            comparison, describe_run(old), describe_run(new), str(args.old), str(args.new)
        )
    )
    return 1 if comparison.failing else 0

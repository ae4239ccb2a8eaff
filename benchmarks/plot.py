"""One figure of a benchmark run: speed relative to numpy, per workload and implementation.

``python -m benchmarks --plot FILE.png`` draws it at the end of a run;
``python -m benchmarks plot RUN.json FILE.png`` draws it from a saved run. Needs matplotlib
(the ``plot`` extra).

Each bar is numpy's median time over the implementation's median time, the ratio the tables
print (>1: faster than numpy). The whisker spans the same ratio taken between the quartiles
of both (numpy's first quartile over the implementation's third, and the third over the
first; the extremes for fewer than four samples): how far the ratio could move within the
spread of this run. A hatched bar is a noisy row (spread over the run's threshold). The axis is
logarithmic, so 2x faster and 2x slower are the same distance from 1. Implementations are
whatever the run measured: numpy, torch, tinynet eager, tinynet compiled once it exists, and
any other.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from .report import ReportError, load_report

BASELINE = "numpy"
LABELS = {
    "tinynet": "tinynet eager",
    "tinynet-compiled": "tinynet compiled",
    "numba-fused": "numba by hand (the limit)",
}
PREFERRED_ORDER = ["numpy", "torch", "torch.compile", "jax.jit", "tinynet", "tinynet-compiled",
                   "numba-fused"]
COLORS = {
    "numpy": "#7f7f7f",
    "torch": "#ee4c2c",
    "torch.compile": "#f5a08f",
    "jax.jit": "#9467bd",
    "tinynet": "#1f77b4",
    "tinynet-compiled": "#2ca02c",
    "numba-fused": "#000000",
}
OTHER_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def _quartiles(times: list[float]) -> tuple[float, float]:
    if len(times) < 4:
        return min(times), max(times)
    q1, _, q3 = statistics.quantiles(times, n=4)
    return q1, q3


def speed_vs_baseline(
    baseline_times: list[float], times: list[float]
) -> tuple[float, float, float]:
    """(ratio of medians, low, high): baseline time over this implementation's time."""
    ratio = statistics.median(baseline_times) / statistics.median(times)
    b1, b3 = _quartiles(baseline_times)
    t1, t3 = _quartiles(times)
    return ratio, b1 / t3, b3 / t1


def plotted(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The workloads with a numpy row, the implementations in drawing order, the others."""
    workloads = [w for w in report["workloads"] if BASELINE in w["implementations"]]
    left_out = [w["name"] for w in report["workloads"] if BASELINE not in w["implementations"]]
    seen = list(dict.fromkeys(i for w in workloads for i in w["implementations"]))
    impls = [i for i in PREFERRED_ORDER if i in seen]
    impls += [i for i in seen if i not in PREFERRED_ORDER]
    return workloads, impls, left_out


def _ratio_label(ratio: float) -> str:
    """Two decimals near 1 (so 1.03 does not print as "1"), two significant digits apart."""
    return f"{ratio:.2f}x" if 0.1 <= ratio < 10 else f"{ratio:.2g}x"


def caption(report: dict[str, Any], left_out: list[str]) -> str:
    """The machine and run the figure comes from, as lines under it."""
    m = report["machine"]
    cpu, blas = m.get("cpu", {}), m.get("blas", {})
    settings = "quick" if report.get("quick") else "full"
    noisy = report.get("settings", {}).get("noisy_spread")
    ceiling = (report.get("ceilings_gflops") or {}).get("float32")
    busy = f"load average {m.get('load_average_at_start', '?')} at start"
    if report.get("load_average_at_end") is not None:
        busy += f", {report['load_average_at_end']} at end"
    if ceiling:
        busy += f"; float32 matmul ceiling {ceiling:.3g} GFLOP/s"
    lines = [
        f"Machine: {cpu.get('model', '?')}, {cpu.get('logical_cpus', '?')} logical CPUs, "
        f"{blas.get('name', '?')} with {blas.get('threads', '?')} threads. "
        f"Python {m.get('python', '?')}, numpy {m.get('numpy', '?')}, torch {m.get('torch', '?')}, "
        f"tinynet {m.get('tinynet', '?')}.",
        f"Run {report.get('started_at', '(date not recorded)')}, {settings} settings, 1-minute "
        f"{busy}.",
        "Bars: median time ratio (numpy / implementation) in this one interleaved run; "
        "whiskers: quartile range"
        + (f"; hatched: spread > {100 * noisy:.0f}% (noisy)." if noisy else "."),
    ]
    cores = (m.get("threads") or {}).get("cores")
    if cores is not None:
        lines[1] += f" Pinned: --cores {cores} (every library at {cores} thread(s))."
    if report.get("load_warning"):
        lines.insert(0, "WARNING: LOADED MACHINE: the 1-minute load average exceeded 0.5 per "
                     "usable core; these ratios are rough.")
    if left_out:
        lines.append(f"Not shown (no numpy row): {', '.join(left_out)}.")
    return "\n".join(lines)


def draw(report: dict[str, Any], path: Path | str) -> Path:
    """Write the figure of ``report`` to ``path`` (PNG, or any format matplotlib knows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    workloads, impls, left_out = plotted(report)
    if not workloads:
        raise ReportError("plot: no workload in this run has a numpy row to compare against")
    colors = dict(COLORS)
    for i, impl in enumerate(i for i in impls if i not in COLORS):
        colors[impl] = OTHER_COLORS[i % len(OTHER_COLORS)]

    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(workloads) + 2), 5.2))
    extremes = [1.0]
    for k, impl in enumerate(impls):
        xs, ratios, lows, highs, noisy = [], [], [], [], []
        for j, w in enumerate(workloads):
            entry = w["implementations"].get(impl)
            if entry is None:
                continue
            ratio, low, high = speed_vs_baseline(
                w["implementations"][BASELINE]["times_s"], entry["times_s"]
            )
            xs.append(j + (k - (len(impls) - 1) / 2) * width)
            ratios.append(ratio)
            lows.append(low)
            highs.append(high)
            noisy.append(bool(entry.get("noisy")))
        extremes += lows + highs
        # Bars grow from 1 (as fast as numpy): up for faster, down for slower. numpy's own
        # bar has no height; its tick and whisker show its spread.
        bars = ax.bar(
            xs,
            [r - 1 for r in ratios],
            width,
            bottom=1.0,
            color=colors[impl],
            label=LABELS.get(impl, impl),
            edgecolor="white",
            linewidth=0.5,
        )
        ax.errorbar(
            xs,
            ratios,
            yerr=[
                [r - lo for r, lo in zip(ratios, lows, strict=True)],
                [hi - r for r, hi in zip(ratios, highs, strict=True)],
            ],
            fmt="_" if impl == BASELINE else "none",
            color="black",
            markersize=8,
            elinewidth=0.8,
            capsize=2,
        )
        for bar, x, ratio, low, high, is_noisy in zip(
            bars, xs, ratios, lows, highs, noisy, strict=True
        ):
            if is_noisy:
                bar.set_hatch("///")
                bar.set_edgecolor("black")
            if impl != BASELINE:
                above = ratio >= 1
                ax.annotate(
                    _ratio_label(ratio),
                    (x, high if above else low),
                    xytext=(0, 2 if above else -2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom" if above else "top",
                    fontsize=6,
                )
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([w["name"] for w in workloads], rotation=30, ha="right")
    ax.set_ylabel("speed relative to numpy (>1 = faster, log scale)")
    title = "tinynet benchmarks: training-step speed relative to hand-written numpy"
    if report.get("load_warning"):
        ax.set_title(f"{title}\nLOADED MACHINE: ratios are rough", color="#d62728")
    else:
        ax.set_title(title)
    ax.grid(axis="y", which="both", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles[0] = Patch(color=colors[BASELINE], label="numpy (= 1; whisker: its spread)")
    if any(e.get("noisy") for w in workloads for e in w["implementations"].values()):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="noisy"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", ncols=min(len(handles), 4))
    # Room for the value labels below and above the whiskers, and for the legend on top.
    ax.set_ylim(min(extremes) / 1.6, max(extremes) * (3.0 if len(handles) <= 4 else 8.0))
    fig.text(0.01, 0.01, caption(report, left_out), fontsize=7, va="bottom", ha="left", wrap=True)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks plot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, metavar="RUN.json", help="a `--json` file")
    parser.add_argument("output", type=Path, metavar="FILE.png", help="where to write the figure")
    args = parser.parse_args(argv)
    try:
        print(f"figure written to {draw(load_report(args.run), args.output)}")
    except ReportError as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"plot: needs matplotlib (pip install -e '.[plot]'): {exc}", file=sys.stderr)
        return 2
    return 0

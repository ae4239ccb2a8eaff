"""python -m benchmarks: compare two runs, the figure, the tables, the JSON file.

Runs no real benchmark except one XOR workload with tiny settings (well under a second).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet
from benchmarks import __main__ as cli
from benchmarks import compare, harness, plot, report, tinynet_compiled, workloads
from benchmarks.harness import Measurement, Settings, WorkloadResult

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

MACHINE = {
    "cpu": {
        "model": "Test CPU",
        "logical_cpus": 2,
        "usable_cpus": 2,
        "physical_cores": 2,
        "simd": ["avx2"],
    },
    "blas": {"name": "openblas", "version": "0.3", "threads": 2},
    "python": "3.11.7",
    "numpy": "2.4.6",
    "numba": "0.68.1",
    "torch": "2.13.0+cpu",
    "torch_threads": 2,
    "tinynet": "0.1.0 (git abc1234)",
    "platform": "Linux",
    "load_average_at_start": 0.5,
}


def samples(median: float, spread: float, n: int, seed: int) -> list[float]:
    """``n`` timings around ``median`` with multiplicative (lognormal) noise of ``spread``."""
    rng = np.random.default_rng(seed)
    return [float(median * math.exp(spread * z)) for z in rng.standard_normal(n)]


def make_report(times: dict[str, dict[str, list[float]]], **machine_changes: object) -> dict:
    """A report as ``--json`` writes it, built with the real ``WorkloadResult.to_json``."""
    results = []
    for name, impls in times.items():
        result = WorkloadResult(
            name=name,
            title=name,
            unit="samples/s",
            work_per_step=4,
            baselines=["numpy", "torch"],
            measurements={impl: Measurement(t) for impl, t in impls.items()},
        )
        results.append(result.to_json())
    return {
        "schema_version": report.SCHEMA_VERSION,
        "started_at": "2026-11-29 18:00 UTC",
        "machine": {**copy.deepcopy(MACHINE), **machine_changes},
        "settings": vars(Settings.quick()),
        "quick": True,
        "workloads": results,
    }


def write(tmp_path: Path, name: str, content: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def run_compare(tmp_path: Path, old: dict, new: dict, *flags: str) -> int:
    return cli.main(
        [
            "compare",
            str(write(tmp_path, "old.json", old)),
            str(write(tmp_path, "new.json", new)),
            *flags,
        ]
    )


def row(comparison: compare.Comparison, workload: str, impl: str) -> compare.Row:
    (found,) = [r for r in comparison.rows if (r.workload, r.impl) == (workload, impl)]
    return found


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("n, m", [(1, 1), (2, 3), (3, 3), (4, 2), (5, 5)])
def test_mann_whitney_counts_match_enumerating_every_ordering(n: int, m: int) -> None:
    counts = [0] * (n * m + 1)
    for first in itertools.combinations(range(n + m), n):
        second = [v for v in range(n + m) if v not in first]
        counts[sum(x > y for x in first for y in second)] += 1
    assert list(compare._u_counts(n, m)) == counts


def test_interval_rank_matches_the_published_critical_value() -> None:
    # Tables of the Mann-Whitney test: for 5 vs 5 at two-sided 5%, reject when U <= 2, so the
    # interval drops the 2 most extreme pairwise differences at each end (k = 3), and its
    # confidence is 1 - 2 * P(U <= 2) = 1 - 2 * 4 / 252.
    k, level = compare._interval_rank(5, 5, 0.95)
    assert k == 3
    assert level == pytest.approx(1 - 8 / 252)


@pytest.mark.parametrize("n, m", [(25, 25), (20, 40), (50, 50)])
def test_the_normal_approximation_for_many_samples_agrees_with_the_exact_table(
    n: int, m: int
) -> None:
    k_exact, level_exact = compare._interval_rank(n, m, 0.95)
    k_normal, level_normal = compare._interval_rank_normal(n, m, 0.95)
    assert abs(k_exact - k_normal) <= 1
    assert level_normal == pytest.approx(level_exact, abs=0.01)


def test_three_samples_each_reach_ninety_percent_at_most() -> None:
    estimate = compare.time_ratio([1.0, 1.1, 0.9], [2.0, 2.2, 1.8])
    assert estimate.level == pytest.approx(0.9)
    assert (estimate.low, estimate.high) == pytest.approx((1.8 / 1.1, 2.2 / 0.9))


@given(
    st.lists(st.floats(1e-6, 1.0), min_size=2, max_size=9),
    st.floats(0.1, 10.0),
)
def test_a_run_scaled_by_a_constant_is_estimated_as_that_constant(
    old: list[float], factor: float
) -> None:
    estimate = compare.time_ratio(old, [factor * t for t in old])
    assert estimate.ratio == pytest.approx(factor, rel=1e-9)
    assert estimate.low <= estimate.ratio <= estimate.high


def test_noise_only_is_called_significant_about_as_often_as_the_level_allows() -> None:
    # 300 pairs of runs drawn from one distribution, 7 samples each (the quick maximum).
    # With threshold 0 the verdict is the bare interval test; its false-alarm rate should
    # be near 1 - 96.2%; allow for sampling error.
    alarms = 0
    for seed in range(300):
        old = samples(1e-3, 0.3, 7, seed)
        new = samples(1e-3, 0.3, 7, 10_000 + seed)
        alarms += compare.verdict(compare.time_ratio(old, new), 0.0) != "no significant change"
    assert alarms / 300 < 0.08


# --------------------------------------------------------------------------- compare


def test_clear_regression_is_slower_and_exits_1(tmp_path: Path, capsys) -> None:
    old = make_report(
        {"mlp": {"numpy": samples(1e-3, 0.05, 7, 1), "tinynet": samples(2e-3, 0.05, 7, 2)}}
    )
    new = make_report(
        {"mlp": {"numpy": samples(1e-3, 0.05, 7, 3), "tinynet": samples(3e-3, 0.05, 7, 4)}}
    )
    comparison = compare.compare_reports(old, new)
    slow = row(comparison, "mlp", "tinynet")
    assert slow.verdict == "slower"
    assert slow.estimate.ratio == pytest.approx(1.5, rel=0.1)
    assert row(comparison, "mlp", "numpy").verdict == "no significant change"
    assert run_compare(tmp_path, old, new) == 1
    out = capsys.readouterr().out
    assert re.search(r"mlp\s+tinynet .* slower \(\+\d+% time\)", out)
    assert "FAIL: slower by more than the --fail-above margin of 10%: mlp/tinynet" in out


def test_clear_speed_up_is_faster_and_exits_0(tmp_path: Path, capsys) -> None:
    old = make_report(
        {"mlp": {"numpy": samples(1e-3, 0.05, 7, 1), "tinynet": samples(2e-3, 0.05, 7, 2)}}
    )
    new = make_report(
        {"mlp": {"numpy": samples(1e-3, 0.05, 7, 3), "tinynet": samples(1e-3, 0.05, 7, 4)}}
    )
    assert row(compare.compare_reports(old, new), "mlp", "tinynet").verdict == "faster"
    assert run_compare(tmp_path, old, new) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert re.search(r"mlp\s+tinynet .* faster \(-\d+% time\)", out)
    # The speed against numpy is recomputed from the samples of each run: ~0.5x -> ~1x.
    assert re.search(r"numpy 0\.\d\dx -> (0\.9\d|1\.\d\d)x", out)


def interleaved_runs(median: float, spread: float, seed: int) -> tuple[list[float], list[float]]:
    """Two runs of 7 samples drawn from one pool, alternating in rank: noise and no change."""
    pool = sorted(samples(median, spread, 14, seed))
    return pool[0::2], pool[1::2]


def test_noise_only_is_no_significant_change_and_exits_0(tmp_path: Path) -> None:
    numpy_old, numpy_new = interleaved_runs(5e-5, 0.4, 5)
    tinynet_new, tinynet_old = interleaved_runs(2e-4, 0.4, 6)
    old = make_report({"xor": {"numpy": numpy_old, "tinynet": tinynet_old}})
    new = make_report({"xor": {"numpy": numpy_new, "tinynet": tinynet_new}})
    comparison = compare.compare_reports(old, new)
    assert {r.verdict for r in comparison.rows} == {"no significant change"}
    assert all(r.estimate.low < 1 < r.estimate.high for r in comparison.rows)
    assert run_compare(tmp_path, old, new) == 0


def test_fail_above_sets_the_margin_a_slowdown_must_exceed(tmp_path: Path) -> None:
    # 8% slower with tight samples: significant, but under the default 10% margin.
    old = make_report({"w": {"tinynet": samples(1e-3, 0.01, 7, 1)}})
    new = make_report({"w": {"tinynet": samples(1.08e-3, 0.01, 7, 2)}})
    assert row(compare.compare_reports(old, new), "w", "tinynet").verdict == "slower"
    assert run_compare(tmp_path, old, new) == 0
    assert run_compare(tmp_path, old, new, "--fail-above", "5") == 1
    # A threshold above the change turns the verdict into "no significant change".
    assert run_compare(tmp_path, old, new, "--threshold", "20", "--fail-above", "5") == 0


@pytest.mark.parametrize("peer", ["numpy", "torch"])
def test_peers_rows_are_reported_but_judged_only_when_asked(tmp_path: Path, capsys,
                                                            peer: str) -> None:
    """Two runs of the same commit: numpy's (or torch's) row came out 40% slower (another
    process, a frequency change), tinynet's did not move. tinynet cannot make numpy slower, so
    by default the row is shown with its verdict, marked, and the exit status stays 0."""
    old = make_report({"mlp": {peer: samples(1e-3, 0.02, 7, 1),
                               "tinynet": samples(2e-3, 0.02, 7, 2),
                               "tinynet-compiled": samples(1e-3, 0.02, 7, 5)}})
    new = make_report({"mlp": {peer: samples(1.4e-3, 0.02, 7, 3),
                               "tinynet": samples(2e-3, 0.02, 7, 4),
                               "tinynet-compiled": samples(1e-3, 0.02, 7, 6)}})
    comparison = compare.compare_reports(old, new)
    assert row(comparison, "mlp", peer).verdict == "slower"
    assert comparison.failing == []
    assert run_compare(tmp_path, old, new) == 0
    out = capsys.readouterr().out
    assert re.search(rf"mlp\s+{peer} .* slower \(\+\d+% time\), not judged", out)
    assert "not judged`: tinynet's code cannot make them slower" in out
    assert "FAIL" not in out
    assert run_compare(tmp_path, old, new, "--judge", "all") == 1
    out = capsys.readouterr().out
    assert f"FAIL: slower by more than the --fail-above margin of 10%: mlp/{peer}" in out
    assert "not judged" not in out
    # a slower tinynet-compiled row is judged by default
    new["workloads"][0]["implementations"]["tinynet-compiled"]["times_s"] = samples(
        1.5e-3, 0.02, 7, 7)
    assert run_compare(tmp_path, old, new) == 1
    assert "mlp/tinynet-compiled" in capsys.readouterr().out


def machine_twice_as_slow() -> tuple[dict, dict]:
    """NEW ran on a machine twice as slow; tinynet's code did not change."""
    old = make_report(
        {"mlp": {"numpy": samples(1e-3, 0.05, 7, 1), "tinynet": samples(2e-3, 0.05, 7, 2)}}
    )
    new = make_report(
        {"mlp": {"numpy": samples(2e-3, 0.05, 7, 3), "tinynet": samples(4e-3, 0.05, 7, 4)}}
    )
    return old, new


def test_a_machine_that_slowed_down_as_a_whole_is_called_out(tmp_path: Path, capsys) -> None:
    old, new = machine_twice_as_slow()
    comparison = compare.compare_reports(old, new)
    assert comparison.reference_drift == pytest.approx(2.0, rel=0.1)
    assert run_compare(tmp_path, old, new) == 1  # absolute times did get slower
    out = capsys.readouterr().out
    assert out.index("WARNING: code tinynet does not touch") < out.index("workload")
    assert "--relative-to numpy" in out


def test_relative_to_numpy_cancels_the_machine(tmp_path: Path, capsys) -> None:
    old, new = machine_twice_as_slow()
    comparison = compare.compare_reports(old, new, relative_to="numpy")
    assert [(r.workload, r.impl) for r in comparison.rows] == [("mlp", "tinynet")]
    assert comparison.rows[0].verdict == "no significant change"
    assert comparison.reference_drift is None
    assert run_compare(tmp_path, old, new, "--relative-to", "numpy") == 0
    assert "WARNING" not in capsys.readouterr().out


def test_relative_to_numpy_still_finds_a_tinynet_regression(tmp_path: Path, capsys) -> None:
    old, _ = machine_twice_as_slow()
    new = make_report(
        {"mlp": {"numpy": samples(2e-3, 0.05, 7, 3), "tinynet": samples(6e-3, 0.05, 7, 4)}}
    )
    row_ = row(compare.compare_reports(old, new, relative_to="numpy"), "mlp", "tinynet")
    assert row_.verdict == "slower"
    assert row_.estimate.ratio == pytest.approx(1.5, rel=0.1)
    assert run_compare(tmp_path, old, new, "--relative-to", "numpy") == 1
    assert re.search(r"mlp\s+tinynet\s+0\.\d\dx\s+0\.3\dx", capsys.readouterr().out)


def test_relative_samples_pair_up_by_round() -> None:
    assert compare.relative_times([2.0, 6.0], [1.0, 3.0]) == [2.0, 2.0]
    assert compare.relative_times([2.0, 6.0, 4.0], [1.0, 3.0]) == [1.0, 3.0, 2.0]


def test_too_few_samples_give_no_verdict_and_never_fail(tmp_path: Path, capsys) -> None:
    old = make_report({"w": {"numpy": [1e-3]}})
    new = make_report({"w": {"numpy": [3e-3]}})
    assert row(compare.compare_reports(old, new), "w", "numpy").verdict == "too few samples"
    assert run_compare(tmp_path, old, new) == 0
    assert "too few samples" in capsys.readouterr().out


def test_machine_and_version_differences_are_printed_before_the_table(
    tmp_path: Path, capsys
) -> None:
    times = {"w": {"numpy": samples(1e-3, 0.05, 5, 1)}}
    old = make_report(times)
    new = make_report(times, numpy="2.5.0", load_average_at_start=3.0)
    new["machine"]["cpu"]["model"] = "Other CPU"
    new["quick"], new["settings"] = False, vars(Settings.full())
    run_compare(tmp_path, old, new)
    out = capsys.readouterr().out
    table = out.index("workload")
    assert -1 < out.index("numpy: 2.4.6 -> 2.5.0") < table
    assert -1 < out.index("cpu.model: Test CPU -> Other CPU") < table
    assert -1 < out.index("quick: True -> False") < table
    assert -1 < out.index("settings.min_rounds: 3 -> 7") < table
    assert "load_average_at_start:" not in out  # differs between any two runs: not a change


def test_same_machine_is_said(tmp_path: Path, capsys) -> None:
    times = {"w": {"numpy": samples(1e-3, 0.05, 5, 1)}}
    run_compare(tmp_path, make_report(times), make_report(times))
    assert "same machine, versions and settings in both runs" in capsys.readouterr().out


def test_implementations_in_one_run_only_are_listed_not_compared(tmp_path: Path, capsys) -> None:
    old = make_report({"w": {"numpy": samples(1e-3, 0.05, 5, 1)}})
    new = make_report(
        {
            "w": {
                "numpy": samples(1e-3, 0.05, 5, 2),
                "tinynet-compiled": samples(1e-4, 0.05, 5, 3),
            },
            "added": {"numpy": samples(1e-3, 0.05, 5, 4)},
        }
    )
    comparison = compare.compare_reports(old, new)
    assert [(r.workload, r.impl) for r in comparison.rows] == [("w", "numpy")]
    assert comparison.only_new == ["w/tinynet-compiled", "added"]
    run_compare(tmp_path, old, new)
    assert "only in NEW (not compared): w/tinynet-compiled, added" in capsys.readouterr().out


def test_start_up_costs_are_shown_without_a_verdict(tmp_path: Path, capsys) -> None:
    old = make_report({"w": {"numpy": samples(1e-3, 0.05, 5, 1)}})
    new = copy.deepcopy(old)
    old["startup"] = {"import_numpy_s": 0.08, "import_tinynet_s": 0.14}
    new["startup"] = {"import_numpy_s": 0.08, "import_tinynet_s": 0.30}
    assert run_compare(tmp_path, old, new) == 0
    assert "import tinynet 140 ms -> 300 ms" in capsys.readouterr().out


def test_a_file_that_is_not_a_benchmark_run_exits_2_naming_the_problem(
    tmp_path: Path, capsys
) -> None:
    good = make_report({"w": {"numpy": samples(1e-3, 0.05, 5, 1)}})
    bad = copy.deepcopy(good)
    bad["workloads"][0]["implementations"]["numpy"]["times_s"] = []
    assert run_compare(tmp_path, good, bad) == 2
    err = capsys.readouterr().err
    assert (
        "workload 'w', implementation 'numpy': 'times_s' is not a list of positive seconds" in err
    )
    (tmp_path / "junk.json").write_text("{not json")
    assert cli.main(["compare", str(tmp_path / "old.json"), str(tmp_path / "junk.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_files_from_before_schema_version_are_read() -> None:
    legacy = make_report({"w": {"numpy": [1e-3, 2e-3]}})
    del legacy["schema_version"]
    assert report.check_report(legacy) is legacy
    newer = {**legacy, "schema_version": report.SCHEMA_VERSION + 1}
    with pytest.raises(report.ReportError, match="schema_version"):
        report.check_report(newer)


# --------------------------------------------------------------------------- plot


def test_plot_draws_any_number_of_implementations(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    impls = ["numpy", "torch", "tinynet", "tinynet-compiled", "someday"]
    run = make_report(
        {
            name: {
                impl: samples(1e-3 * (k + 1), 0.1 * (j + 1), 5, 10 * j + k)
                for k, impl in enumerate(impls)
            }
            for j, name in enumerate(["xor-f32", "mlp-small-f32", "chain-1e6-f32"])
        }
    )
    run["workloads"][0]["implementations"]["tinynet"]["noisy"] = True
    run["workloads"].append(
        {"name": "perceptron", "implementations": {"python": {"times_s": [1.0]}}}
    )
    workloads_drawn, order, left_out = plot.plotted(run)
    assert order == impls
    assert left_out == ["perceptron"]
    path = plot.draw(run, tmp_path / "bench.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_caption_names_the_machine_and_the_run() -> None:
    text = plot.caption(make_report({"w": {"numpy": [1.0]}}), ["perceptron"])
    assert "Test CPU, 2 logical CPUs" in text
    assert "2026-11-29 18:00 UTC, quick settings" in text
    assert "Not shown (no numpy row): perceptron" in text


def test_plot_command_writes_the_figure_from_a_saved_run(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    run = write(
        tmp_path, "run.json", make_report({"w": {"numpy": [1.0, 1.1], "tinynet": [0.5, 0.6]}})
    )
    assert cli.main(["plot", str(run), str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").stat().st_size > 0
    assert cli.main(["plot", str(tmp_path / "missing.json"), str(tmp_path / "x.png")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_speed_vs_baseline_whiskers_bracket_the_ratio() -> None:
    ratio, low, high = plot.speed_vs_baseline([1.0, 1.2, 1.4, 1.6, 2.0], [0.5, 0.6, 0.7, 0.8, 1.0])
    assert ratio == pytest.approx(1.4 / 0.7)
    assert low < ratio < high


# --------------------------------------------------------------------------- tables


def table_result(name: str, flops: int | None, ceiling: float | None, **times: list[float]):
    return WorkloadResult(
        name=name,
        title=name,
        unit="samples/s",
        work_per_step=4,
        baselines=["numpy", "torch"],
        flops_per_step=flops,
        dtype="float32",
        ceiling_gflops=ceiling,
        measurements={impl: Measurement(t) for impl, t in times.items()},
    )


def header_of(table: str) -> list[str]:
    return re.split(r"\s{2,}", table.splitlines()[1].strip())


def test_flop_columns_are_left_out_when_the_matmuls_are_negligible() -> None:
    xor = table_result("xor", 56, 150.0, numpy=[5e-5] * 4, tinynet=[2e-4] * 4)
    table = harness.format_table(xor)
    assert "% ceiling" not in header_of(table) and "GFLOP/s" not in header_of(table)
    assert "GFLOP/s and % ceiling left out" in table
    big = table_result("mlp", 10**9, 150.0, numpy=[0.01] * 4, tinynet=[0.01] * 4)
    assert header_of(harness.format_table(big))[-2:] == ["GFLOP/s", "% ceiling"]


def test_a_baseline_that_was_not_measured_gets_no_column() -> None:
    result = table_result("w", None, None, numpy=[1e-3] * 4, tinynet=[2e-3] * 4)
    result.skipped["torch"] = "torch not importable: test"
    table = harness.format_table(result)
    assert header_of(table) == ["impl", "time/step", "spread", "samples/s", "vs numpy"]
    assert "torch: skipped (torch not importable: test)" in table


def test_noisy_rows_are_flagged_and_the_re_measurement_is_reported() -> None:
    result = table_result(
        "w", None, None, numpy=[1e-3, 1e-3, 1e-3, 1e-3], tinynet=[1e-3, 1.5e-3, 2e-3, 3e-3]
    )
    result.attempt_spreads = [0.9, 0.6]
    table = harness.format_table(result)
    (tinynet_line,) = [line for line in table.splitlines() if line.startswith("tinynet")]
    assert "noisy" in tinynet_line
    assert "noisy" not in [line for line in table.splitlines() if line.startswith("numpy")][0]
    assert "re-measured: worst spread above 30%; worst spread per attempt 90%, 60%" in table
    assert "noisy: spread above 30% for tinynet" in table


def test_legend_says_which_way_ratios_go() -> None:
    assert ">1x = faster than the baseline" in harness.LEGEND


def scripted(spreads_per_attempt: list[float], monkeypatch) -> list[int]:
    """Make measure_interleaved return samples whose spread is the next scripted value."""
    calls = []

    def fake(steps, settings, progress, desc):
        s = spreads_per_attempt[len(calls)]
        calls.append(1)
        return {name: [1.0, 1.0, 1.0 + s] for name in steps}  # range/median = s

    monkeypatch.setattr(harness, "measure_interleaved", fake)
    return calls


def test_a_noisy_measurement_is_repeated_and_the_steadiest_kept(monkeypatch) -> None:
    calls = scripted([0.8, 0.1], monkeypatch)
    settings = Settings.full()
    kept, spreads = harness.measure_steady({"a": lambda: None}, settings, harness.Progress(), "w")
    assert len(calls) == 2
    assert spreads == pytest.approx([0.8, 0.1])
    assert kept["a"] == [1.0, 1.0, 1.1]


def test_re_measuring_is_bounded(monkeypatch) -> None:
    calls = scripted([0.8, 0.9, 0.7, 0.5, 0.5], monkeypatch)
    settings = Settings.full()  # max_remeasure = 2
    kept, spreads = harness.measure_steady({"a": lambda: None}, settings, harness.Progress(), "w")
    assert len(calls) == 1 + settings.max_remeasure == 3
    assert kept["a"] == pytest.approx([1.0, 1.0, 1.7])


def test_blas_threads_are_named_not_a_question_mark(monkeypatch) -> None:
    pytest.importorskip("threadpoolctl")
    assert isinstance(cli._blas_info()["threads"], int)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import now fails
    threads = cli._blas_info()["threads"]
    assert "threadpoolctl is not installed" in threads
    info = {**MACHINE, "blas": {"name": "openblas", "threads": threads}}
    assert "? threads" not in cli.format_machine(info)


# --------------------------------------------------------------------------- a tiny real run


TINY = Settings(
    warmup_s=0.0,
    sample_s=0.0005,
    budget_s=0.01,
    min_rounds=4,
    max_rounds=4,
    settle_s=0.0,
    max_remeasure=0,
)


def tiny_xor(monkeypatch, compile_fn=None) -> WorkloadResult:
    if compile_fn is not None:
        monkeypatch.setattr(tinynet, "compile", compile_fn, raising=False)
    ctx = workloads.Context(
        TINY,
        harness.Progress(),
        torch_error="left out of this test (slow to import)",
        tinynet_problems={"tensor": None, "nn": None, "perceptron": None},
    )
    (xor,) = [w for w in workloads.all_workloads() if w.name == "xor-f64"]
    result = xor.run(ctx)
    assert ctx.failures == []
    return result


def test_the_compiled_implementation_is_absent_until_tn_compile_exists(monkeypatch) -> None:
    monkeypatch.delattr(tinynet, "compile", raising=False)
    assert not tinynet_compiled.available()
    result = tiny_xor(monkeypatch)
    assert list(result.measurements) == ["numpy", workloads.MATMULS, "tinynet"]
    assert tinynet_compiled.NAME not in result.skipped


def test_the_compiled_implementation_is_checked_and_timed_once_tn_compile_exists(
    monkeypatch,
) -> None:
    compiled = []

    def fake_compile(fn, **options):  # stands in for tn.compile: runs the step eagerly
        compiled.append(fn)
        return fn

    result = tiny_xor(monkeypatch, fake_compile)
    assert list(result.measurements) == ["numpy", workloads.MATMULS, "tinynet",
                                         tinynet_compiled.NAME]
    assert len(compiled) == 1  # the train step, wrapped once


def test_a_compiled_step_with_wrong_numbers_fails_the_check(monkeypatch) -> None:
    def broken_compile(fn, **options):
        return lambda *args: fn(*args) * 2.0  # a loss off by a factor of two

    monkeypatch.setattr(tinynet, "compile", broken_compile, raising=False)
    ctx = workloads.Context(
        TINY, harness.Progress(), "left out", {"tensor": None, "nn": None, "perceptron": None}
    )
    (xor,) = [w for w in workloads.all_workloads() if w.name == "xor-f64"]
    result = xor.run(ctx)
    assert tinynet_compiled.NAME not in result.measurements
    assert [f for f in ctx.failures if tinynet_compiled.NAME in f]


# --------------------------------------------------------------------------- the JSON file


def documented_keys() -> set[str]:
    text = DOCS.read_text()
    section = text[text.index("## The JSON file") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return set(re.findall(r"^\| `([^`]+)`", section, flags=re.MULTILINE))


def test_a_real_run_writes_a_valid_report_whose_every_key_is_documented(monkeypatch) -> None:
    result = tiny_xor(monkeypatch)
    ctx = workloads.Context(TINY, harness.Progress(), None, {})
    written = cli.build_report(
        "2026-11-29 18:00 UTC",
        cli.machine_info(None, True),
        TINY,
        True,
        ctx,
        [result],
        None,
        1.0,
        0.5,
    )
    written = json.loads(json.dumps(written))  # what the file holds
    assert report.check_report(written) is written
    keys = {k.split(".")[0] for k in written}
    keys |= {f"machine.{k}" for k in report.flatten(written["machine"])}
    keys |= {f"settings.{k}" for k in written["settings"]}
    keys |= {f"workloads[].{k}" for k in written["workloads"][0]}
    keys |= {
        f"workloads[].implementations.<impl>.{k}"
        for k in written["workloads"][0]["implementations"]["numpy"]
    }
    missing = keys - documented_keys()
    assert not missing, f"docs/benchmarks.md does not document {sorted(missing)}"


# --------------------------------------------------------------------------- the conv workload


def test_the_conv_workloads_are_listed_and_quick_runs_float32_only(capsys) -> None:
    assert cli.run(["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"conv-lenet-f32", "conv-lenet-f64"} <= set(listed)
    quick = {w.name: w.in_quick for w in workloads.all_workloads()}
    assert quick["conv-lenet-f32"] and not quick["conv-lenet-f64"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tiny_conv_workload_passes_its_check_and_is_timed(monkeypatch, dtype) -> None:
    """Batch 4 of 1x16x16 images (16 -> 12 -> 6 -> 2 -> 1): numpy and tinynet agree."""
    monkeypatch.delattr(tinynet, "compile", raising=False)
    ctx = workloads.Context(
        TINY, harness.Progress(), "left out of this test (slow to import)", {"conv": None}
    )
    result = workloads.conv_workload("conv-tiny", 4, 16, dtype).run(ctx)
    assert ctx.failures == []
    assert list(result.measurements) == ["numpy", "tinynet"]
    assert result.dtype == str(np.dtype(dtype))
    assert result.to_json()["implementations"]["tinynet"]["times_s"]


def test_a_conv_step_with_a_wrong_gradient_fails_the_check(monkeypatch) -> None:
    from benchmarks import tinynet_impl

    real_grads = tinynet_impl.TinynetLeNet.grads

    def grads_off_by_a_little(self):  # the conv2 bias gradient 1% too large
        out = real_grads(self)
        out["conv2.bias"] = out["conv2.bias"] * np.float32(1.01)
        return out

    monkeypatch.setattr(tinynet_impl.TinynetLeNet, "grads", grads_off_by_a_little)
    ctx = workloads.Context(TINY, harness.Progress(), "left out", {"conv": None})
    result = workloads.conv_workload("conv-tiny", 4, 16, np.float32).run(ctx)
    assert "tinynet" not in result.measurements
    # the compiled implementation reads its gradients the same way, so it fails too
    assert "tinynet-compiled" not in result.measurements
    assert len(ctx.failures) == 2
    assert all("conv2.bias grad differs" in failure for failure in ctx.failures)

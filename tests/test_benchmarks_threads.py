"""python -m benchmarks --cores N, the load warning, and where the JSON, compare and the
figure show them. Nothing here times anything or pins the test process."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from benchmarks import __main__ as cli
from benchmarks import harness, plot, report, threads, workloads
from benchmarks.harness import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TINY = Settings(
    warmup_s=0.0, sample_s=0.0005, budget_s=0.01, min_rounds=4, max_rounds=4, settle_s=0.0,
    max_remeasure=0,
)


@pytest.fixture
def fresh_threads(monkeypatch):
    """``threads.limit`` with the process's affinity and environment left as they were."""
    pinned: list[list[int]] = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: pinned.append(list(cpus)),
                        raising=False)
    for var in (*threads.THREAD_ENV_VARS, "XLA_FLAGS"):
        monkeypatch.setenv(var, "unchanged")
    numba = pytest.importorskip("numba")
    numba_threads = numba.get_num_threads()
    yield pinned
    threads.reset()
    numba.set_num_threads(numba_threads)


def test_load_warning_fires_above_half_a_load_per_usable_core() -> None:
    assert threads.load_warning(1.0, 2) is None
    assert threads.load_warning(0.5, 1) is None
    assert threads.load_warning(None, 1) is None
    warning = threads.load_warning(1.01, 2)
    assert warning is not None and "1.01" in warning and "0.5 per usable core" in warning
    assert threads.load_warning(0.6, 1) is not None


def test_the_run_warning_names_when_the_load_was_high() -> None:
    assert cli.load_warnings(0.2, 0.9, 2) is None
    both = cli.load_warnings(3.0, 4.5, 2)
    assert "3.50" in both and "3.0 at start and 4.5 at end" in both
    end_only = cli.load_warnings(0.1, 4.5, 2)
    assert "4.5 at end" in end_only and "at start" not in end_only
    assert "LOADED MACHINE" in cli.loud(both)


def test_the_end_of_run_load_leaves_out_the_runs_own_thread() -> None:
    """A one-core run alone on the machine ends near load 1.0, all of it its own: not loaded;
    one more busy core on top of it is."""
    assert cli.load_warnings(0.2, 0.98, 1) is None
    assert cli.load_warnings(0.2, 1.5, 1) is None  # 0.5 beside its own thread: at the limit
    assert "1.9 at end" in cli.load_warnings(0.2, 1.9, 1)
    assert cli.load_warnings(0.7, 0.9, 1) is not None  # busy before it started


def test_cores_pins_the_process_and_every_library(fresh_threads) -> None:
    record = threads.limit(1)
    first = sorted(os.sched_getaffinity(0))[0]
    assert fresh_threads == [[first]]
    assert record["cores"] == 1 and record["affinity"] == [first]
    for var in threads.THREAD_ENV_VARS:
        assert os.environ[var] == "1"
        assert f"{var}=1" in record["env"]
    assert threads.XLA_ONE_THREAD in os.environ["XLA_FLAGS"]
    assert record["numba"] == 1
    import numba

    assert numba.get_num_threads() == 1
    import tinynet as tn

    assert record["tinynet"] == 1 and tn.get_num_threads() == 1
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        assert "threadpoolctl is not installed" in record["blas"]
    else:
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert threads.torch_threads() == 1
    assert threads.what_was_set()["cores"] == 1


def test_cores_above_the_usable_ones_are_not_pinned_and_say_why(fresh_threads) -> None:
    record = threads.limit(threads.usable_cpus() + 1)
    assert fresh_threads == []
    assert "not pinned" in record["affinity"]


def test_zero_cores_is_refused(capsys) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        threads.limit(0)
    assert cli.run(["--cores", "0", "--only", "xor-f32"]) == 2
    assert "at least 1" in capsys.readouterr().err


class FakeTorch:
    """torch's thread setters, recorded; inter-op refuses once set, as torch does."""

    def __init__(self) -> None:
        self.intra, self.inter, self.inter_set = 4, 4, False

    def set_num_threads(self, n: int) -> None:
        self.intra = n

    def get_num_threads(self) -> int:
        return self.intra

    def set_num_interop_threads(self, n: int) -> None:
        if self.inter_set:
            raise RuntimeError("cannot set number of interop threads twice")
        self.inter, self.inter_set = n, True

    def get_num_interop_threads(self) -> int:
        return self.inter


def test_torch_gets_two_threads_by_default_and_cores_threads_when_pinned(fresh_threads) -> None:
    torch = FakeTorch()
    assert threads.limit_torch(torch) == "intra-op 2, inter-op 4"
    threads.limit(1)
    assert threads.limit_torch(torch) == "intra-op 1, inter-op 1"
    assert threads.limit_torch(torch) == "intra-op 1, inter-op 1"  # built again: no error
    assert threads.what_was_set()["torch"] == "intra-op 1, inter-op 1"


def test_torch_inter_op_threads_that_cannot_change_are_recorded(fresh_threads) -> None:
    torch = FakeTorch()
    torch.inter_set = True
    threads.limit(1)
    assert "inter-op not set: cannot set" in threads.limit_torch(torch)


def documented_keys() -> set[str]:
    text = DOCS.read_text()
    section = text[text.index("## The JSON file") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return set(re.findall(r"^\| `([^`]+)`", section, flags=re.MULTILINE))


@pytest.mark.parametrize("pinned", [False, True])
def test_the_thread_settings_and_load_warning_are_in_the_json_and_documented(
    fresh_threads, pinned
) -> None:
    if pinned:
        threads.limit(1)
    threads.limit_torch(FakeTorch())
    info = cli.machine_info(None, True)
    ctx = workloads.Context(TINY, harness.Progress(), None, {})
    warning = cli.load_warnings(5.0, 5.0, 1)
    written = json.loads(json.dumps(
        cli.build_report("2026-12-06 10:00 UTC", info, TINY, True, ctx, [], None, 1.0, 5.0,
                         warning)
    ))
    assert written["load_warning"] == warning
    assert written["machine"]["threads"]["cores"] == (1 if pinned else None)
    keys = {k for k in written} | {f"machine.{k}" for k in report.flatten(written["machine"])}
    missing = keys - documented_keys()
    assert not missing, f"docs/benchmarks.md does not document {sorted(missing)}"
    assert ("--cores 1" in cli.format_machine(info)) is pinned


def _report(load_warning: str | None, cores: int | None) -> dict:
    machine = {"cpu": {}, "blas": {}, "tinynet": "t", "load_average_at_start": 3.2,
               "threads": {"cores": cores}}
    return {"machine": machine, "workloads": [], "load_warning": load_warning,
            "started_at": "2026-12-06 10:00 UTC", "quick": True}


def test_compare_and_the_figure_say_a_run_was_loaded_and_pinned() -> None:
    loaded = _report("the 1-minute load average is 3.20, above ...", 1)
    line = report.describe_run(loaded)
    assert "LOADED MACHINE" in line and "--cores 1" in line
    caption = plot.caption(loaded, [])
    assert caption.startswith("WARNING: LOADED MACHINE") and "--cores 1" in caption
    quiet = _report(None, None)
    assert "LOADED" not in report.describe_run(quiet) + plot.caption(quiet, [])
    assert "--cores" not in report.describe_run(quiet) + plot.caption(quiet, [])


def test_the_figure_of_a_loaded_run_says_so_in_its_title(tmp_path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    entry = {"times_s": [1e-3, 1.1e-3, 0.9e-3, 1e-3], "noisy": False}
    run = _report("loaded", 1)
    run["workloads"] = [{"name": "xor-f32", "implementations": {
        "numpy": entry, "numba-fused": {**entry, "times_s": [1e-5] * 4}}}]
    titles: list[str] = []
    import matplotlib.axes

    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, **kw: titles.append(text) or real(self, text, **kw))
    path = plot.draw(run, tmp_path / "f.png")
    assert path.stat().st_size > 0
    assert titles and "LOADED MACHINE" in titles[-1]

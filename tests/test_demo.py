"""``python -m tinynet demo``: runs, exits 0, tells the whole story, writes valid PNG figures."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = [
    "1. The McCulloch-Pitts neuron",
    "2. Rosenblatt's perceptron",
    "3. ... and fails on XOR",
    "4. Two layers of threshold units compute XOR",
    "5. Why a step network cannot learn",
    "6. A multi-layer perceptron learns XOR",
    "7. A deep network",
    "8. Convolution and pooling read digits; batch norm trains a deep net",
]


def run_tinynet(*args: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    """``python -m tinynet ARGS`` in a fresh interpreter (``prelude`` runs first)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "tinynet", *args]
    if prelude:
        command = [sys.executable, "-c", f"{prelude}\nimport runpy, sys\n"
                   f"sys.argv = ['tinynet', *{list(args)!r}]\n"
                   "runpy.run_module('tinynet', run_name='__main__', alter_sys=True)"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_demo_runs_the_whole_story_and_exits_0(tmp_path):
    start = time.perf_counter()
    proc = run_tinynet("demo", cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for title in SECTIONS:
        assert title in out
    assert out.count("converged after") == 3  # AND, OR, NAND
    assert "XOR: did not converge in 100 epochs" in out
    # The last epoch's mistake count and the final table are told apart, next to the table.
    xor_part = out[out.index("3. ... and fails on XOR"):out.index("4. Two layers")]
    table = xor_part[xor_part.index("a  b | target  learned"):]
    rows = [line.split() for line in table.splitlines()[1:5]]
    wrong = sum(row[3] != row[4] for row in rows)  # a b | target learned
    assert f"{wrong} of 4 wrong now" in xor_part
    assert "Mistakes are counted while an epoch runs" in xor_part
    assert out.count("the input closest to the line:") == 3  # the margin is said, not hidden
    assert "a  b | NAND  OR | XOR" in out
    assert "first layer moved by 0 " in out  # the step's zero derivative, shown
    assert "final loss" in out and "accuracy 100%" in out
    assert "step  500/500" in out  # training progress is printed
    assert "accuracy on 1000 new points" in out
    assert list(tmp_path.iterdir()) == []  # no files without --plots
    assert elapsed < 120  # the target is < 20 s; this only catches a hang under heavy load


def test_demo_with_plots_writes_non_empty_valid_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from tinynet.__main__ import FIGURES

    proc = run_tinynet("demo", "--plots", "figures", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert written == sorted(FIGURES)
    for name in FIGURES:
        path = tmp_path / "figures" / name
        width, height = png_size(path)
        assert width >= 300 and height >= 250, (name, width, height)
        assert path.stat().st_size > 10_000, name  # a real drawing, not a blank canvas
    assert f"Wrote {len(FIGURES)} figures to figures" in proc.stdout


def test_demo_without_matplotlib_says_how_to_install_it_and_still_runs(tmp_path):
    # sys.modules[name] = None makes ``import matplotlib`` raise ImportError. scikit-learn is
    # blocked too: the README's demo command installs only the plot extra, and chapter 8's
    # digits ship inside tinynet.
    proc = run_tinynet("demo", "--plots", "figures", cwd=tmp_path,
                       prelude="import sys; sys.modules['matplotlib'] = None; "
                               "sys.modules['sklearn'] = None")
    assert proc.returncode == 0, proc.stderr
    assert 'pip install -e ".[plot]"' in proc.stdout
    for title in SECTIONS:
        assert title in proc.stdout
    assert "skipped" not in proc.stdout
    assert "held-out accuracy" in proc.stdout
    assert not (tmp_path / "figures").exists()


def test_help_lists_the_demo_command(tmp_path):
    proc = run_tinynet("--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "python -m tinynet" in proc.stdout
    proc = run_tinynet("demo", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "--plots DIR" in proc.stdout and "--seed" in proc.stdout


def test_unknown_or_missing_command_is_a_usage_error(tmp_path):
    proc = run_tinynet(cwd=tmp_path)
    assert proc.returncode == 2 and "command" in proc.stderr
    proc = run_tinynet("dance", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_plotting_functions_draw_on_given_axes(tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np

    from tinynet import plotting
    from tinynet.perceptron import perceptron_gate

    plotting.use_agg()
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 4)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 0, 0, 1])
    ax = plotting.plot_gate(X, y, perceptron_gate("AND").decision_boundary(), ax=axes[0])
    assert ax is axes[0] and len(ax.lines) == 1  # the line
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["target 0", "target 1"] and legend[2].startswith("outputs 1")
    assert len(ax.collections) == 3  # the two point sets and the shaded half-plane
    plotting.plot_gate(X, [0, 1, 1, 0], ax=axes[1], no_line_note="none")
    assert len(axes[1].lines) == 0 and axes[1].texts[0].get_text() == "none"
    assert len(axes[1].collections) == 2  # no line, nothing shaded
    n_axes = len(fig.axes)
    plotting.plot_decision_regions(lambda g: (g.sum(axis=1) > 1).astype(float), X, y,
                                   ax=axes[2], resolution=20)
    assert len(fig.axes) == n_axes + 1  # the colorbar
    legend = [t.get_text() for t in axes[2].get_legend().get_texts()]
    assert legend == ["P(class 1) = 0.5", "class 0", "class 1"]
    plotting.plot_network([2, 3, 1], [np.ones((3, 2)), -np.ones((1, 3))], ax=axes[3])
    assert len(axes[3].lines) == 2 * 3 + 3 * 1  # one line per weight
    path = plotting.save(fig, tmp_path / "sub" / "f.png")
    assert png_size(Path(path))[0] > 0

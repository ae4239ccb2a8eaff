"""Six realistic PyTorch scripts run on tinynet with only their import lines changed (issue 21).

The scripts live in ``tests/ports/*.py`` as PyTorch users write them (``import torch``,
``import torch.nn as nn``, ``from torch.utils.data import DataLoader, TensorDataset``, ...).
Each test runs a script twice: as written, on torch (skipped when torch is absent), and with the
import lines rewritten to tinynet and nothing else changed. Inputs a script would read from disk
(the digits, a words file, a directory to save into) are handed in as globals; every script
leaves what it computed in ``RESULTS``. Where the script is deterministic (fixed initial values,
counts, idioms) the numbers must agree with PyTorch's; where it starts from random weights
(the two random number streams differ) both runs must learn about equally well.
"""

from __future__ import annotations

import io
import math
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinynet as tn

PORTS = Path(__file__).parent / "ports"

_IMPORT_AS = re.compile(r"^import torch\.([\w.]+) as (\w+)\s*$")
_IMPORT = re.compile(r"^import torch\s*$")
_FROM = re.compile(r"^from torch(\.[\w.]+)? import (.+)$")


def to_tinynet(source: str) -> str:
    """The script with its torch import lines pointing at tinynet; every other line kept."""
    lines = []
    for line in source.splitlines():
        if _IMPORT.match(line):
            line = "import tinynet as torch"
        elif m := _IMPORT_AS.match(line):
            line = f"import tinynet.{m.group(1)} as {m.group(2)}"
        elif m := _FROM.match(line):
            line = f"from tinynet{m.group(1) or ''} import {m.group(2)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_to_tinynet_rewrites_only_import_lines() -> None:
    source = ("import math\nimport torch\nimport torch.nn as nn\n"
              "import torch.nn.functional as F\nfrom torch.utils.data import DataLoader\n"
              "from torch import optim\nx = torch.zeros(3)  # import torch\n")
    assert to_tinynet(source).splitlines() == [
        "import math", "import tinynet as torch", "import tinynet.nn as nn",
        "import tinynet.nn.functional as F", "from tinynet.utils.data import DataLoader",
        "from tinynet import optim", "x = torch.zeros(3)  # import torch"]
    for name in ("mnist_cnn", "polynomial_autograd", "makemore", "adamw_schedule",
                 "early_stopping", "idioms"):
        text = (PORTS / f"{name}.py").read_text()
        changed = [(a, b) for a, b in zip(text.splitlines(), to_tinynet(text).splitlines(),
                                           strict=True) if a != b]
        assert changed and all(a.startswith(("import torch", "from torch")) for a, _ in changed)


_CACHE: dict[tuple[str, str], dict] = {}


def run_script(name: str, lib: str, tmp_path_factory: Any, **inputs: Any) -> dict:
    """Execute ``tests/ports/<name>.py`` on ``lib`` ("torch" or "tinynet"); its RESULTS."""
    key = (name, lib)
    if key not in _CACHE:
        source = (PORTS / f"{name}.py").read_text()
        if lib == "torch":
            torch = pytest.importorskip("torch")
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # two cores shared: torch's thread pool only slows it down
        else:
            source = to_tinynet(source)
        # the scripts draw unseeded starting points (as the tutorials do): seed the library, so
        # a result does not depend on which tests ran before (random order)
        (torch if lib == "torch" else tn).manual_seed(0)
        scope: dict[str, Any] = {"__name__": f"port_{name}", **inputs}
        scope.setdefault("TMP_PATH", str(tmp_path_factory.mktemp(f"{name}_{lib}")))
        with redirect_stdout(io.StringIO()):
            try:
                exec(compile(source, str(PORTS / f"{name}.py"), "exec"), scope)  # noqa: S102
            finally:
                if lib == "torch":
                    torch.set_num_threads(threads)
        _CACHE[key] = scope["RESULTS"]
    return _CACHE[key]


def both(name: str, tmp_path_factory: Any, **inputs: Any) -> tuple[dict, dict]:
    """(tinynet's RESULTS, torch's RESULTS): tinynet first, so it is checked without torch."""
    ours = run_script(name, "tinynet", tmp_path_factory, **inputs)
    theirs = run_script(name, "torch", tmp_path_factory, **inputs)
    return ours, theirs


def plain(value: Any) -> Any:
    """Tensors (either library) as numpy arrays, sizes as tuples, containers element-wise."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return np.asarray(value.detach().cpu().numpy())
    if isinstance(value, tuple) and type(value) is not tuple:  # torch.Size
        return tuple(value)
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value
    return value


def assert_same(ours: Any, theirs: Any, label: str, rtol: float = 1e-5) -> None:
    ours, theirs = plain(ours), plain(theirs)
    if isinstance(theirs, list | tuple):
        assert isinstance(ours, list | tuple) and len(ours) == len(theirs), (label, ours, theirs)
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{label}[{i}]", rtol)
        return
    if isinstance(theirs, np.ndarray) or isinstance(ours, np.ndarray):
        a, b = np.asarray(ours), np.asarray(theirs)
        assert a.shape == b.shape, (label, a.shape, b.shape)
        assert str(a.dtype) == str(b.dtype), (label, a.dtype, b.dtype)
        if a.dtype == bool or np.issubdtype(a.dtype, np.integer):
            np.testing.assert_array_equal(a, b, err_msg=label)
        else:
            scale = max(1.0, float(np.abs(b).max(initial=0.0)))
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=label)
        return
    if isinstance(theirs, float):
        assert math.isclose(ours, theirs, rel_tol=rtol, abs_tol=rtol), (label, ours, theirs)
        return
    if isinstance(theirs, str) and theirs.startswith("torch."):
        # str(x.dtype): tinynet's dtypes are numpy's, which print without the "torch." prefix
        theirs = theirs.removeprefix("torch.")
    assert ours == theirs, (label, ours, theirs)


# ----------------------------------------------------------------------------------------------
# (1) pytorch/examples mnist on the 8x8 digits


def test_mnist_cnn_example(tmp_path_factory: Any) -> None:
    digits = tn.data.load_digits()
    inputs = {"DIGITS_IMAGES": digits[0], "DIGITS_TARGET": digits[1]}
    ours = run_script("mnist_cnn", "tinynet", tmp_path_factory, **inputs)
    assert ours["train_losses"][-1] < 0.5 * ours["train_losses"][0]
    assert ours["accuracies"][-1] > 70.0
    assert math.isclose(ours["last_lr"], 1.0 * 0.7 ** 4, rel_tol=1e-9)
    theirs = run_script("mnist_cnn", "torch", tmp_path_factory, **inputs)
    assert abs(ours["accuracies"][-1] - theirs["accuracies"][-1]) < 12.0, (ours, theirs)
    assert ours["test_losses"][-1] < 2 * theirs["test_losses"][-1] + 0.05, (ours, theirs)
    assert math.isclose(ours["last_lr"], theirs["last_lr"], rel_tol=1e-9)


# ----------------------------------------------------------------------------------------------
# (2) Learning PyTorch with Examples: autograd, a custom Function, nn + RMSprop


def test_polynomial_examples(tmp_path_factory: Any) -> None:
    ours = run_script("polynomial_autograd", "tinynet", tmp_path_factory)
    for key in ("tensor_losses", "autograd_losses"):
        assert ours[key][-1] < 0.05 * ours[key][0] and ours[key][-1] < 100, key
    theirs = run_script("polynomial_autograd", "torch", tmp_path_factory)
    # The Legendre fit starts from values written in the script: the same path, step by step.
    assert_same(ours["legendre_losses"], theirs["legendre_losses"], "legendre_losses", 1e-3)
    assert_same(ours["legendre"], theirs["legendre"], "legendre", 1e-3)
    assert_same(ours["xx"], theirs["xx"], "xx")
    # Random starting points: both reach the tutorial's fit (y ~ 0.86 x - 0.09 x^3 for RMSprop).
    for key in ("tensor_losses", "autograd_losses"):
        assert ours[key][-1] < 2 * theirs[key][-1] + 20, key
    assert abs(ours["rmsprop_losses"][-1] - theirs["rmsprop_losses"][-1]) < 0.5
    assert_same(ours["rmsprop"][1:], theirs["rmsprop"][1:], "rmsprop coefficients", 0.05)


# ----------------------------------------------------------------------------------------------
# (3) makemore: bigram counts and an MLP on a words file

NAMES = ("emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily "
         "elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace chloe "
         "penelope layla riley zoey nora lily eleanor hannah lillian addison aubrey ellie stella "
         "natalie zoe leah hazel violet aurora savannah audrey brooklyn bella claire skylar liam "
         "noah william james oliver benjamin elijah lucas mason logan alexander ethan jacob "
         "michael daniel henry jackson sebastian aiden matthew samuel david joseph carter owen "
         "wyatt john jack luke jayden dylan grayson levi isaac gabriel julian mateo anthony jaxon "
         "lincoln joshua christopher andrew theodore caleb ryan asher nathan thomas leo isaiah "
         "charles josiah hudson christian hunter connor eli ezra aaron landon adrian jonathan "
         "nolan jeremiah easton elias colton cameron carson robert angel maverick nicholas "
         "dominic jaxson greyson adam ian austin santiago jordan cooper brayden roman evan ezekiel "
         "xavier jose jace jameson leonardo bryson axel everett parker kayden miles sawyer jason "
         "quinn fiona yvonne ursula xena kinsley paisley quentin zachary").split()


def test_makemore(tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("makemore") / "names.txt"
    path.write_text("\n".join(NAMES) + "\n")
    ours = run_script("makemore", "tinynet", tmp_path_factory, NAMES_FILE=str(path))
    counts = plain(ours["N"])
    assert counts.dtype == np.int32 and counts.sum() == sum(len(w) + 1 for w in NAMES)
    for sample in ours["samples"] + ours["mlp_samples"]:
        assert sample.endswith(".") and set(sample) <= set("abcdefghijklmnopqrstuvwxyz.")
    assert ours["dev_loss"] < ours["first_loss"] and ours["train_loss"] < 0.5 * ours["first_loss"]
    assert ours["net_losses"][-1] < ours["net_losses"][0]
    theirs = run_script("makemore", "torch", tmp_path_factory, NAMES_FILE=str(path))
    assert_same(ours["N"], theirs["N"], "N")
    assert_same(ours["P"], theirs["P"], "P")
    assert_same(ours["bigram_nll"], theirs["bigram_nll"], "nll", 1e-5)
    assert ours["Xtr_shape"] == theirs["Xtr_shape"]
    assert abs(ours["train_loss"] - theirs["train_loss"]) < 0.35, (ours, theirs)
    assert abs(ours["net_losses"][-1] - theirs["net_losses"][-1]) < 0.35


# ----------------------------------------------------------------------------------------------
# (4) AdamW, warmup + cosine schedule, clipping, accumulation


def test_adamw_schedule(tmp_path_factory: Any) -> None:
    ours = run_script("adamw_schedule", "tinynet", tmp_path_factory)
    assert math.isclose(ours["lrs"][-1], ours["expected_final_lr"], rel_tol=1e-6)
    assert ours["epoch_losses"][-1] < 0.75 * ours["epoch_losses"][0]
    assert ours["accuracy"] > 0.65
    theirs = run_script("adamw_schedule", "torch", tmp_path_factory)
    # The schedule does not depend on the weights: the same learning rate at every step.
    assert_same(ours["lrs"], theirs["lrs"], "lrs", 1e-6)
    assert abs(ours["accuracy"] - theirs["accuracy"]) < 0.1
    assert abs(ours["epoch_losses"][-1] - theirs["epoch_losses"][-1]) < 0.15


# ----------------------------------------------------------------------------------------------
# (5) MSE regression with early stopping, deepcopy'd state dict, torch.save / torch.load


def test_early_stopping(tmp_path_factory: Any) -> None:
    ours = run_script("early_stopping", "tinynet", tmp_path_factory)
    assert ours["restored_val"] == pytest.approx(ours["best_val"], rel=1e-6)
    assert ours["loaded_val"] == pytest.approx(ours["best_val"], rel=1e-6)
    assert ours["same"] is True and ours["checkpoint_epoch"] == ours["best_epoch"]
    assert ours["best_val"] < 0.2 * ours["baseline"]
    theirs = run_script("early_stopping", "torch", tmp_path_factory)
    assert_same(ours["baseline"], theirs["baseline"], "baseline")
    assert ours["best_val"] < 2 * theirs["best_val"] + 0.02, (ours, theirs)


# ----------------------------------------------------------------------------------------------
# (6) a page of everyday idioms: every result equals PyTorch's


def test_idioms(tmp_path_factory: Any) -> None:
    ours, theirs = both("idioms", tmp_path_factory)
    assert ours.keys() == theirs.keys()
    assert len(theirs) >= 100
    failures = []
    for name in theirs:
        try:
            assert_same(ours[name], theirs[name], name)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------------------------
# what the idioms needed that tinynet lacked: & | ^ on masks, logical_and/or/xor


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor"])
def test_bitwise_operators_match_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    symbol = {"bitwise_and": "__and__", "bitwise_or": "__or__", "bitwise_xor": "__xor__"}[name]
    cases = [(rng.random((3, 4)) > 0.5, rng.random((3, 4)) > 0.5),
             (rng.random((3, 1)) > 0.5, rng.random((4,)) > 0.5),
             (rng.integers(-9, 9, (2, 3)), rng.integers(-9, 9, (2, 3))),
             (rng.integers(0, 9, (5,)).astype(np.int32), rng.integers(0, 9, (5,)).astype(np.int32))]
    for a, b in cases:
        expected = getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        for got in (getattr(tn, name)(tn.tensor(a), tn.tensor(b)),
                    getattr(tn.tensor(a), symbol)(tn.tensor(b))):
            assert got.dtype == expected.dtype and not got.requires_grad
            np.testing.assert_array_equal(got.numpy(), expected)
    mask = rng.random(6) > 0.5
    for scalar in (True, False):
        expected = getattr(torch.from_numpy(mask), symbol)(scalar).numpy()
        np.testing.assert_array_equal(getattr(tn.tensor(mask), symbol)(scalar).numpy(), expected)
        reflected = getattr(tn.tensor(mask), symbol.replace("__", "__r", 1))(scalar)
        np.testing.assert_array_equal(reflected.numpy(), expected)


def test_bitwise_operators_refuse_floats_and_bad_shapes() -> None:
    x = tn.tensor([1.0, -2.0, 3.0])
    with pytest.raises(tn.errors.DTypeError, match=r"bitwise_and \(&\).*float32.*logical_and"):
        _ = x & (x > 0)
    with pytest.raises(tn.errors.ShapeError, match=r"bitwise_or.*\(3,\).*\(2,\)"):
        _ = (x > 0) | tn.tensor([True, False])


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_logical_ops_match_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    cases = [(rng.normal(size=(3, 4)).round(), rng.normal(size=(3, 4)).round()),
             (rng.integers(-1, 2, (3, 1)), rng.random((4,)) > 0.5),
             (rng.normal(size=5).astype(np.float32) * (rng.random(5) > 0.5), rng.random(5) > 0.5)]
    for a, b in cases:
        expected = getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        for got in (getattr(tn, name)(tn.tensor(a), tn.tensor(b)),
                    getattr(tn.tensor(a), name)(tn.tensor(b))):
            assert got.dtype == np.bool_ and not got.requires_grad
            np.testing.assert_array_equal(got.numpy(), expected)
    for a in (np.array([0.0, 2.0, -0.0]), np.array([[0, 3], [-1, 0]]), np.array([True, False])):
        expected = torch.logical_not(torch.from_numpy(a)).numpy()
        np.testing.assert_array_equal(tn.logical_not(tn.tensor(a)).numpy(), expected)
        np.testing.assert_array_equal(tn.tensor(a).logical_not().numpy(), expected)


def test_type_as_matches_torch_and_keeps_gradients() -> None:
    torch = pytest.importorskip("torch")
    values = np.array([1.25, -2.5, 3.75])
    for target in (np.float32, np.float64, np.int64):
        expected = torch.tensor(values).type_as(torch.zeros(1, dtype=getattr(torch, np.dtype(
            target).name))).numpy()
        got = tn.tensor(values).type_as(tn.zeros(1, dtype=np.dtype(target))).numpy()
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    same = tn.tensor(values)
    assert same.type_as(tn.zeros(1, dtype=tn.float64)) is same
    x = tn.tensor(values, dtype=tn.float32, requires_grad=True)
    (x.type_as(tn.zeros(1, dtype=tn.float64)) * tn.tensor([1.0, 2.0, 3.0],
                                                          dtype=tn.float64)).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="type_as: expected a Tensor.*to\\(dtype\\)"):
        tn.tensor(values).type_as(tn.float32)

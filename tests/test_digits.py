"""A real data set: the MLP of examples/digits_mlp.py reaches >= 95% held-out accuracy on
scikit-learn's 8x8 handwritten digits (1,797 images, 359 held out)."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_mlp.py"


def _example():
    spec = importlib.util.spec_from_file_location("digits_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_split_is_disjoint_standardised_and_complete():
    x_train, y_train, x_test, y_test = _example().load_digits_split()
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert set(np.unique(y_test)) == set(range(10))
    np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-5)
    train_rows = {row.tobytes() for row in x_train}
    assert sum(row.tobytes() in train_rows for row in x_test) < 10  # a few exact duplicates


def test_mlp_reaches_95_percent_held_out_accuracy():
    example = _example()
    model, accuracy = example.train()  # the example's own settings
    assert accuracy >= 0.95
    _, _, x_test, y_test = example.load_digits_split()
    assert example.accuracy(model, x_test, y_test) == accuracy
    assert all(p.dtype == np.float32 for p in model.parameters())

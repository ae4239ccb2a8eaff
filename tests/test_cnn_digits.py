"""The convolution chapter's story (examples/08_cnn_digits.py): a small CNN learns
scikit-learn's 8x8 digits, and batch norm rescues a deep sigmoid MLP that plain SGD cannot
move. The example's full run (30 epochs) reaches about 99%; here 8 epochs must reach 97.5%."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "08_cnn_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("cnn_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digit_images_are_standardised_float32_images_with_a_disjoint_split():
    x_train, y_train, x_test, y_test = _example().load_digit_images()
    assert x_train.shape == (1438, 1, 8, 8) and x_test.shape == (359, 1, 8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std()) - 1) < 1e-4
    assert set(np.unique(y_test)) == set(range(10))


def test_small_cnn_reaches_97_5_percent_held_out_accuracy_in_8_epochs():
    example = _example()
    model, accuracy, _, _ = example.train_cnn(epochs=8)
    assert accuracy >= 0.975
    _, _, x_test, y_test = example.load_digit_images()
    assert example.accuracy(model, x_test, y_test) == accuracy
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert [type(m).__name__ for m in model] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]


def test_batch_norm_trains_the_deep_sigmoid_mlp_that_plain_sgd_cannot():
    curves = _example().batch_norm_comparison(steps=80)
    plain, normed = curves.values()
    assert np.mean(plain[-10:]) > 2.0  # stuck near log(10) = 2.30: chance level
    assert np.mean(normed[-10:]) < 1.0
    assert np.mean(normed[-10:]) < 0.5 * np.mean(normed[:10])


def test_figures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    example = _example()
    model = example.small_cnn()
    curves = {"a": [2.0, 1.0], "b": [2.0, 0.5]}
    paths = example.save_figures(model, curves, str(tmp_path))
    assert [Path(p).name for p in paths] == [
        "cnn_filters.png", "cnn_feature_maps.png", "batchnorm_loss_curves.png"]
    assert all(Path(p).stat().st_size > 1000 for p in paths)


def test_demo_chapter_8_trains_the_cnn_and_shows_batch_norm_helping():
    from tinynet.__main__ import section_cnn

    lines = []
    result = section_cnn(lines.append, seed=0)
    text = "\n".join(lines)
    assert "8. Convolution and pooling read digits" in text
    assert result["accuracy"] >= 0.9  # 4 epochs of a narrower CNN: about 96%
    without, with_bn = result["curves"]["without"], result["curves"]["with batch norm"]
    assert np.mean(without[-5:]) > 2.0
    assert np.mean(with_bn[-5:]) < 0.7 * np.mean(with_bn[:5])

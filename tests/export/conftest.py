"""Fixtures of the export tests: a trained run, its CLI export, the test split."""

import keras
import pytest

from export_helpers import FASHION_MNIST, make_run, run_bin


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A lenet_bn run trained 40 steps on Fashion-MNIST (a few seconds)."""
    return make_run(tmp_path_factory.mktemp("run") / "lenet_bn", steps=40)


@pytest.fixture(scope="session")
def cli_export(trained_run, tmp_path_factory):
    """`bin/kerazoo-export --fold_batchnorm --tflite --keras_file` of `trained_run`, once.

    Returns (export_dir, keras_file, CompletedProcess).
    """
    out = tmp_path_factory.mktemp("export")
    export_dir, keras_file = str(out / "saved"), str(out / "model.keras")
    proc = run_bin("kerazoo-export", f"--model_dir={trained_run}", f"--export_dir={export_dir}",
                   "--fold_batchnorm", "--tflite", f"--keras_file={keras_file}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return export_dir, keras_file, proc


@pytest.fixture(scope="session")
def fashion_test():
    """The Fashion-MNIST test split: (x uint8 [N, 28, 28, 1], y, info)."""
    from kerazoo import data

    _, (x, y), info = data.load_arrays("fashion_mnist", FASHION_MNIST)
    return x, y, info

"""kerazoo-evaluate: its numbers against a direct NumPy computation; where its figure goes."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export_helpers import FASHION_MNIST, run_bin
from kerazoo.export import ExportError, load_run
from kerazoo.export.evaluate import EvaluateConfig, evaluate

N = 600  # first test examples; the numbers are checked, not the model


def _direct(probabilities, labels, num_classes):
    predictions = probabilities.argmax(-1)
    matrix = np.zeros((num_classes, num_classes), int)
    for true, predicted in zip(labels, predictions):
        matrix[true, predicted] += 1
    per_class = [float(np.mean(predictions[labels == c] == c)) for c in range(num_classes)]
    return float(np.mean(predictions == labels)), per_class, matrix


def test_cli_numbers_equal_a_direct_computation(cli_export, fashion_test, tmp_path):
    export_dir, _, _ = cli_export
    x, y, info = fashion_test
    png = str(tmp_path / "cm.png")
    proc = run_bin("kerazoo-evaluate", f"--saved_model={export_dir}", f"--data_dir={FASHION_MNIST}",
                   f"--max_examples={N}", "--json", f"--confusion_png={png}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    probabilities = serve(images=tf.constant(x[:N]))["probabilities"].numpy()
    accuracy, per_class, matrix = _direct(probabilities, y[:N], 10)
    assert report["num_examples"] == N and report["accuracy"] == accuracy
    assert [c["accuracy"] for c in report["per_class"]] == per_class
    assert [c["class_name"] for c in report["per_class"]] == list(info.class_names)
    assert report["confusion_matrix"] == matrix.tolist()
    assert report["confusion_png"] == png
    with Image.open(png) as image:
        assert image.format == "PNG"


def test_model_dir_evaluates_the_checkpoint(trained_run, fashion_test, tmp_path):
    x, y, _ = fashion_test
    report = evaluate(EvaluateConfig(model_dir=trained_run, max_examples=N))
    model, _, _ = load_run(trained_run)
    probabilities = keras.ops.softmax(model(x[:N] / 255.0, training=False)).numpy()
    accuracy, per_class, matrix = _direct(probabilities, y[:N], 10)
    assert report["accuracy"] == pytest.approx(accuracy, abs=2 / N)  # a near-tie may flip
    assert np.abs(np.array(report["confusion_matrix"]) - matrix).sum() <= 4
    assert report["confusion_png"] == os.path.join(trained_run, "confusion.png")
    assert os.path.isfile(report["confusion_png"])


def test_evaluate_errors(cli_export):
    export_dir, _, _ = cli_export
    with pytest.raises(ExportError, match="exactly one of saved_model or model_dir"):
        evaluate(EvaluateConfig())
    with pytest.raises(ExportError, match="max_examples must be >= 1"):
        evaluate(EvaluateConfig(saved_model=export_dir, max_examples=0))


def test_default_figure_goes_to_the_current_directory_not_the_export(cli_export, tmp_path,
                                                                     monkeypatch):
    export_dir, _, _ = cli_export
    before = sorted(os.listdir(export_dir))
    monkeypatch.chdir(tmp_path)
    report = evaluate(EvaluateConfig(saved_model=export_dir, data_dir=FASHION_MNIST,
                                     max_examples=50))
    assert report["confusion_png"] == "confusion.png"
    assert os.listdir(tmp_path) == ["confusion.png"]  # and no temporary file beside it
    assert sorted(os.listdir(export_dir)) == before  # the export is left as written


def test_cli_unwritable_figure_is_one_line(cli_export, tmp_path):
    export_dir, _, _ = cli_export
    (tmp_path / "a_file").write_text("a regular file, not a directory\n")
    png = tmp_path / "a_file" / "cm.png"
    proc = run_bin("kerazoo-evaluate", f"--saved_model={export_dir}", f"--confusion_png={png}",
                   f"--data_dir={FASHION_MNIST}", "--max_examples=10")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("kerazoo-evaluate")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines == [f"kerazoo-evaluate: error: confusion_png is not writable: {png} "
                     "(Not a directory)"]
    assert os.listdir(tmp_path) == ["a_file"] and proc.stdout == ""

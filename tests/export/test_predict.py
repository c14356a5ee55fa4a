"""kerazoo-predict: image files of any size and colour, top-k, --json, per-file errors."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export_helpers import run_bin
from kerazoo.export import ExportError
from kerazoo.export.predict import PredictConfig, format_text, predict_images, read_image


@pytest.fixture(scope="module")
def image_files(tmp_path_factory, fashion_test):
    """Files of test image 0 as grey PNG (native size), RGB PNG, RGB JPEG 50x40, grey 64x64."""
    x, _, _ = fashion_test
    out = tmp_path_factory.mktemp("images")
    grey = x[0, :, :, 0]
    files = {"grey": out / "grey.png", "rgb": out / "rgb.png", "jpeg": out / "photo.jpg",
             "large": out / "large.png", "text": out / "notes.png", "missing": out / "gone.png"}
    Image.fromarray(grey, "L").save(files["grey"])
    Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(files["rgb"])
    colour = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(colour, "RGB").save(files["jpeg"], quality=90)
    Image.fromarray(grey, "L").resize((64, 64)).save(files["large"])
    files["text"].write_text("not an image")
    return {k: str(v) for k, v in files.items()}


def test_read_image_converts_colour_and_size(image_files, fashion_test):
    x, _, _ = fashion_test
    np.testing.assert_array_equal(read_image(image_files["grey"], (28, 28, 1)), x[0])
    # Equal R, G, B -> the same grey (PIL's luma weights sum to one).
    np.testing.assert_array_equal(read_image(image_files["rgb"], (28, 28, 1)), x[0])
    assert read_image(image_files["jpeg"], (28, 28, 1)).shape == (28, 28, 1)
    assert read_image(image_files["large"], (32, 24, 1)).shape == (32, 24, 1)
    rgb = read_image(image_files["grey"], (28, 28, 3))  # grey file, colour model
    assert rgb.shape == (28, 28, 3) and (rgb == rgb[..., :1]).all()


def test_predict_images_matches_the_signature(cli_export, image_files, fashion_test):
    export_dir, _, _ = cli_export
    x, _, _ = fashion_test
    files = [image_files[k] for k in ("grey", "rgb", "jpeg", "large", "missing", "text")]
    results = predict_images(PredictConfig(export_dir, tuple(files), top_k=4))
    assert [r["file"] for r in results] == files
    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    expected = served(images=tf.constant(x[:1]))["probabilities"].numpy()[0]
    for result in results[:2]:  # the test image itself, grey and RGB
        top = result["top_k"]
        assert [c["class_id"] for c in top] == list(np.argsort(-expected)[:4])
        # predict serves the files as one batch, `expected` is a batch of 1:
        # oneDNN blocks the matmuls differently by batch size, which moves
        # float32 results by a few ulps (1.4e-6 relative seen), hence 1e-5.
        np.testing.assert_allclose([c["probability"] for c in top],
                                   np.sort(expected)[::-1][:4], rtol=1e-5)
    for result in results[2:4]:
        probabilities = [c["probability"] for c in result["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0
    assert "no such file" in results[4]["error"] and "not an image" in results[5]["error"]
    line = format_text(results[0])
    assert line.startswith(f"{files[0]}: {results[0]['top_k'][0]['class_name']} 0.")


def test_predict_errors(cli_export, image_files):
    export_dir, _, _ = cli_export
    with pytest.raises(ExportError, match="top_k must be >= 1"):
        predict_images(PredictConfig(export_dir, (image_files["grey"],), top_k=0))
    with pytest.raises(ExportError, match="not a SavedModel"):
        predict_images(PredictConfig(image_files["missing"], (image_files["grey"],)))


def test_cli_json_answers_the_good_files_and_reports_the_bad(cli_export, image_files):
    export_dir, _, _ = cli_export
    files = [image_files[k] for k in ("grey", "missing", "jpeg", "text")]
    proc = run_bin("kerazoo-predict", f"--saved_model={export_dir}", "--json", *files)
    assert proc.returncode == 1  # some files failed
    document = json.loads(proc.stdout)
    entries = document["predictions"]
    assert [e["file"] for e in entries] == files
    assert len(entries[0]["top_k"]) == 3 and len(entries[2]["top_k"]) == 3  # --top_k default
    assert {"class_id", "class_name", "probability"} == set(entries[0]["top_k"][0])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("kerazoo-predict")]
    assert errors == [f"kerazoo-predict: error: {files[1]}: no such file",
                      f"kerazoo-predict: error: {files[3]}: not an image PIL can read "
                      "(PNG, JPEG, ...)"]
    assert "Traceback" not in proc.stderr

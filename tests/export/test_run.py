"""kerazoo-export on a training run: load_run, the CLI, `.keras`, TFLite, mixed precision."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from export_helpers import make_run, run_script
from kerazoo.export import ExportConfig, ExportError, export_run, load_run


def test_load_run_rebuilds_the_trained_model(trained_run):
    model, info, config = load_run(trained_run)
    assert config["model"] == "lenet_bn" and model.name == "lenet_bn"
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert info.class_names[0] == "T-shirt/top"
    # The checkpoint's weights, not fresh ones: the BN statistics moved in training.
    means = [w.numpy() for w in model.weights if w.path.endswith("moving_mean")]
    assert any(np.abs(m).max() > 1e-3 for m in means)


def test_load_run_errors_are_one_line(tmp_path, trained_run):
    with pytest.raises(ExportError, match="run config is missing"):
        load_run(str(tmp_path))
    (tmp_path / "config.json").write_text(open(os.path.join(trained_run, "config.json")).read())
    with pytest.raises(ExportError, match="checkpoint index"):
        load_run(str(tmp_path))


def test_cli_export_writes_savedmodel_tflite_and_keras(cli_export, trained_run):
    export_dir, keras_file, proc = cli_export
    assert "folded 4 of 4 BatchNorm layers" in proc.stdout
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(export_dir, "model.tflite"))
    assert os.path.isfile(keras_file)
    # Nothing half-written left beside the outputs.
    assert sorted(os.listdir(os.path.dirname(export_dir))) == ["model.keras", "saved"]
    # The folded SavedModel serves what the unfolded checkpoint computes.
    model, _, _ = load_run(trained_run)
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    served = tf.saved_model.load(export_dir).signatures["serving_default"](
        images=tf.constant(images))["probabilities"].numpy()
    expected = keras.ops.softmax(model(images / 255.0, training=False)).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)  # fold round-off, after softmax


def test_keras_file_loads_in_a_fresh_process(cli_export, trained_run, tmp_path):
    _, keras_file, _ = cli_export
    model, _, _ = load_run(trained_run)
    x = np.random.default_rng(1).uniform(size=(4, 28, 28, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    out = run_script(tmp_path, f"""
        import json
        import numpy as np
        import keras
        import kerazoo  # registers kerazoo's layers; no custom_objects
        model = keras.saving.load_model({keras_file!r})
        y = model(np.load("x.npy"), training=False)
        print(json.dumps(np.asarray(y).tolist()))
    """)
    np.testing.assert_array_equal(np.array(out, np.float32), model(x, training=False).numpy())


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_tflite_agrees_with_the_savedmodel(cli_export, fashion_test):
    export_dir, _, _ = cli_export
    x, _, _ = fashion_test
    images = x[:1000]
    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    expected = np.concatenate([served(images=tf.constant(images[i:i + 250]))["class_ids"].numpy()
                               for i in range(0, len(images), 250)])
    runner = tf.lite.Interpreter(os.path.join(export_dir, "model.tflite")).get_signature_runner(
        "serving_default")
    got = np.concatenate([runner(images=images[i:i + 250])["class_ids"]
                          for i in range(0, len(images), 250)])
    assert np.mean(got == expected) >= 0.999


def test_mixed_precision_run_exports_uint8_in_float32_out(tmp_path):
    run = make_run(tmp_path / "mixed", steps=2, precision="mixed_float16")
    model, _, _ = load_run(run)
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    assert model.get_layer("conv1").dtype_policy.name == "mixed_float16"
    export_run(ExportConfig(model_dir=run, export_dir=str(tmp_path / "export"),
                            fold_batchnorm=True))
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    images = np.random.default_rng(2).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    out = serve(images=tf.constant(images))
    assert out["probabilities"].dtype == tf.float32 and out["class_ids"].dtype == tf.int64
    expected = keras.ops.softmax(model(images / 255.0, training=False)).numpy()
    # float16 activations in both, folded or not: ~1e-3 relative.
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-2)


def test_export_run_refuses_before_loading(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "x").write_text("")
    with pytest.raises(ExportError, match="exists and is not empty"):
        export_run(ExportConfig(model_dir=str(tmp_path / "no_run"),
                                export_dir=str(tmp_path / "export")))
    with pytest.raises(ExportError, match="must end in .keras"):
        export_run(ExportConfig(model_dir=str(tmp_path / "no_run"),
                                export_dir=str(tmp_path / "new"), keras_file="m.h5"))

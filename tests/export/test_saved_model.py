"""`export_saved_model` round trips for the book models: signatures, dtypes, values, serving."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from export_helpers import randomize_batch_norms, run_script
from kerazoo import models
from kerazoo.export import ExportError, export_saved_model

BOOK_MODELS = ("lenet", "lenet_bn", "resnet18", "densenet")
SHAPE = (32, 32, 1)  # small, and above every book model's minimum side (densenet: 29)
NAMES = tuple(f"class {i}" for i in range(10))


@pytest.fixture(scope="module")
def book_exports(tmp_path_factory):
    """{name: (keras model, export dir)} at 32x32x1, random weights and BN statistics."""
    out = tmp_path_factory.mktemp("book")
    exports = {}
    for i, name in enumerate(BOOK_MODELS):
        keras.utils.set_random_seed(i)
        model = randomize_batch_norms(models.create(name, input_shape=SHAPE), seed=i)
        path = export_saved_model(model, str(out / name), class_names=NAMES, image_shape=SHAPE)
        exports[name] = (model, path)
    return exports


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def _reference(model, images):
    # What serving must compute: the Keras model in inference mode on [0, 1] inputs.
    return keras.ops.softmax(model(images.astype("float32") / 255.0, training=False)).numpy()


@pytest.mark.parametrize("name", BOOK_MODELS)
def test_signatures_dtypes_shapes_and_values(book_exports, name):
    model, path = book_exports[name]
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "classify"} <= set(loaded.signatures)
    for key in ("serving_default", "classify"):
        spec = loaded.signatures[key].structured_input_signature[1]["images"]
        assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, *SHAPE]
    assert [n.decode() for n in loaded.class_names[0].numpy()] == list(NAMES)
    for n in (1, 3):  # any batch size
        images = _images(n, seed=n)
        out = loaded.signatures["serving_default"](images=tf.constant(images))
        assert set(out) == {"probabilities", "class_ids"}
        assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (n, 10)
        assert out["class_ids"].dtype == tf.int64 and out["class_ids"].shape == (n,)
        expected = _reference(model, images)
        # The same float32 graph, traced: only op-order round-off.
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(out["class_ids"].numpy(), expected.argmax(-1))
        named = loaded.signatures["classify"](images=tf.constant(images))
        assert named["class_names"].dtype == tf.string
        assert [s.decode() for s in named["class_names"].numpy()] == \
            [NAMES[i] for i in expected.argmax(-1)]


@pytest.mark.parametrize("name", ["lenet_bn", "resnet18"])
def test_serving_leaves_moving_statistics_unchanged(book_exports, name):
    _, path = book_exports[name]
    loaded = tf.saved_model.load(path)
    statistics = [v for v in loaded.non_trainable_variables if "moving" in v.name]
    assert statistics, "the export holds the BN moving statistics"
    before = [v.numpy().copy() for v in loaded.variables]
    for seed in (0, 1):  # serve twice, both signatures
        images = tf.constant(_images(4, seed))
        loaded.signatures["serving_default"](images=images)
        loaded.signatures["classify"](images=images)
    for v, value in zip(loaded.variables, before):
        np.testing.assert_array_equal(v.numpy(), value)


def test_serving_without_kerazoo(book_exports, tmp_path):
    """A fresh process that cannot import kerazoo serves every export."""
    images = _images(3, seed=7)
    np.save(tmp_path / "images.npy", images)
    paths = {name: path for name, (_, path) in book_exports.items()}
    result = run_script(tmp_path, f"""
        import sys
        sys.modules["kerazoo"] = None  # any import of kerazoo now fails
        import json
        import numpy as np
        import tensorflow as tf
        images = tf.constant(np.load("images.npy"))
        out = {{}}
        for name, path in {paths!r}.items():
            serve = tf.saved_model.load(path).signatures["serving_default"]
            out[name] = serve(images=images)["probabilities"].numpy().tolist()
        print(json.dumps(out))
    """)
    for name, (model, _) in book_exports.items():
        np.testing.assert_allclose(np.array(result[name]), _reference(model, images), atol=1e-5)


def test_export_refuses_an_existing_path_unless_overwrite(book_exports, tmp_path):
    model, _ = book_exports["lenet"]
    path = tmp_path / "export"
    path.mkdir()  # an empty directory is fine
    export_saved_model(model, str(path), class_names=NAMES, image_shape=SHAPE)
    with pytest.raises(ExportError, match="exists and is not empty"):
        export_saved_model(model, str(path), class_names=NAMES, image_shape=SHAPE)
    (path / "marker").write_text("old")
    export_saved_model(model, str(path), class_names=NAMES, image_shape=SHAPE, overwrite=True)
    assert not (path / "marker").exists()  # replaced whole, not merged
    assert os.listdir(tmp_path) == ["export"]  # no staging directory left behind


def test_failed_export_leaves_nothing_and_keeps_the_old_one(book_exports, tmp_path, monkeypatch):
    from kerazoo.export import saved_model

    def fail(*args):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(saved_model, "_write_tflite", fail)  # after the SavedModel is written
    model, _ = book_exports["lenet"]
    path = tmp_path / "export"
    with pytest.raises(RuntimeError):
        export_saved_model(model, str(path), class_names=NAMES, image_shape=SHAPE, tflite=True)
    assert os.listdir(tmp_path) == []
    path.mkdir()
    (path / "marker").write_text("old")
    with pytest.raises(RuntimeError):
        export_saved_model(model, str(path), class_names=NAMES, image_shape=SHAPE,
                           overwrite=True, tflite=True)
    assert os.listdir(tmp_path) == ["export"] and os.listdir(path) == ["marker"]


def test_export_checks_class_names(book_exports, tmp_path):
    model, _ = book_exports["lenet"]
    with pytest.raises(ExportError, match="3 class_names for a model with 10 outputs"):
        export_saved_model(model, str(tmp_path / "e"), class_names=NAMES[:3], image_shape=SHAPE)


def test_resize_happens_inside_the_signature(tmp_path):
    """Trained at 32x32, served at the native 28x28: the graph resizes as training did."""
    keras.utils.set_random_seed(5)
    model = randomize_batch_norms(models.create("lenet_bn", input_shape=(32, 32, 1)), seed=5)
    path = export_saved_model(model, str(tmp_path / "e"), class_names=NAMES,
                              image_shape=(28, 28, 1), resize=32)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    assert serve.structured_input_signature[1]["images"].shape.as_list() == [None, 28, 28, 1]
    images = np.random.default_rng(5).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    resized = tf.image.resize(images.astype("float32") / 255.0, (32, 32))  # bilinear, as training
    expected = keras.ops.softmax(model(resized, training=False)).numpy()
    got = serve(images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)  # same float32 ops, traced

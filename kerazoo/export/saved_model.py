"""`export_saved_model`: a SavedModel that needs neither kerazoo nor Keras to serve.

Signatures (written through Keras 3's `keras.export.ExportArchive`):

* `serving_default(images)`: `images` uint8 `[N, H, W, C]` at the dataset's
  native size, any N. Returns `probabilities` float32 `[N, num_classes]` and
  `class_ids` int64 `[N]`.
* `classify(images)`: the same plus `class_names` string `[N]`; the names
  travel inside the SavedModel.

The full list of names is also saved as the variable collection
`class_names` (`tf.saved_model.load(path).class_names[0]`, a string vector),
which is what `kerazoo-predict` reads for its top-k names.

The model's preprocessing (scaling to [0, 1], the training resize) runs inside
the graph, always in inference mode, so serving never touches the BatchNorm
moving statistics. Mixed-precision models still take uint8 and return float32.
With `tflite=True` the directory also holds `model.tflite`, the
`serving_default` signature converted by `tf.lite.TFLiteConverter`.
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

TFLITE_FILE = "model.tflite"


class ExportError(ValueError):
    """A bad export request (existing path, wrong shapes); one line for the user."""


def serving_function(model, class_names, resize=None):
    """The function both signatures run: uint8 images -> probabilities, ids, names.

    Args:
        model: Keras model taking float32 images in [0, 1] at `resize` (or native) size.
        class_names: the model's output names, in order.
        resize: side the model was trained at, None for the native size.

    Returns:
        `classify(images)`: uint8 `[N, H, W, C]` -> dict with `probabilities`
        float32 `[N, K]`, `class_ids` int64 `[N]`, `class_names` string `[N]`.
    """
    names = tf.constant(list(class_names))

    def classify(images):
        x = tf.cast(images, tf.float32) / 255.0  # uint8 [N, H, W, C] -> [0, 1]
        if resize:
            x = tf.image.resize(x, [resize, resize], method="bilinear")
        logits = tf.cast(model(x, training=False), tf.float32)
        probabilities = tf.nn.softmax(logits, axis=-1)  # [N, num_classes]
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)  # [N]
        return {"probabilities": probabilities, "class_ids": class_ids,
                "class_names": tf.gather(names, class_ids)}

    return classify


def check_export_path(path, overwrite=False):
    """Raises ExportError if `path` is an existing non-empty directory (or a file)."""
    if os.path.isfile(path):
        raise ExportError(f"export path is a file, not a directory: {path}")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise ExportError(f"export path exists and is not empty: {path} (use --overwrite)")


def export_saved_model(model, path, *, class_names, image_shape, resize=None,
                       overwrite=False, tflite=False):
    """Writes `model` as a serving SavedModel at `path`, atomically.

    Everything (and `model.tflite`) is written to a temporary directory beside
    `path` and renamed into place, so `path` never holds half an export.

    Args:
        model: a Keras model taking float32 images in [0, 1] (after `resize`).
        path: export directory; refused if it exists and is non-empty unless
            `overwrite`.
        class_names: names of the model's outputs, in order.
        image_shape: native `(H, W, C)` of the images the signature accepts.
        resize: side the model was trained at (None: native size).
        overwrite: replace an existing export.
        tflite: also write `path/model.tflite` (serving_default).

    Returns:
        `path`.
    """
    if len(class_names) != model.output_shape[-1]:
        raise ExportError(f"{len(class_names)} class_names for a model with "
                          f"{model.output_shape[-1]} outputs")
    check_export_path(path, overwrite)
    spec = [tf.TensorSpec([None, *image_shape], tf.uint8, name="images")]
    # One tf.function both signatures call: the model is traced once, not twice.
    classify = tf.function(serving_function(model, class_names, resize), input_signature=spec)

    def serving_default(images):
        return {k: v for k, v in classify(images).items() if k != "class_names"}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_default, input_signature=spec)
    archive.add_endpoint("classify", classify, input_signature=spec)
    archive.add_variable_collection("class_names", [
        tf.Variable(list(class_names), trainable=False, name="class_names")])

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", dir=parent)
    try:
        archive.write_out(staging, verbose=False)
        if tflite:
            _write_tflite(staging, os.path.join(staging, TFLITE_FILE))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the export from servers
        if os.path.exists(path):
            old = staging + ".old"
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _write_tflite(saved_model_dir, path):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default"])
    flatbuffer = converter.convert()
    with open(path, "wb") as f:
        f.write(flatbuffer)

"""From a training run directory to a model, and to the files a deployment wants.

A run directory (written by `kerazoo-train --model_dir=RUN`) holds
`config.json` (the resolved `TrainConfig`) and `checkpoints/checkpoint.json`
= {"epoch": k, "weights": "epoch-000k.weights.h5"}; `load_run` rebuilds the
model from the first and loads the weights the second names.
"""

import dataclasses
import json
import os

import keras

from kerazoo import atomic, data, models
from kerazoo.export.fold import count_batch_norms, fold_batchnorm
from kerazoo.export.saved_model import ExportError, check_export_path, export_saved_model


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What `export_run` writes.

    model_dir: the training run to export.
    export_dir: the SavedModel directory.
    overwrite: replace an existing export_dir / keras_file.
    fold_batchnorm: serve a copy with BatchNorms folded into the layers before them.
    tflite: also write export_dir/model.tflite.
    keras_file: also write the (unfolded) model as a `.keras` archive here.
    """

    model_dir: str
    export_dir: str
    overwrite: bool = False
    fold_batchnorm: bool = False
    tflite: bool = False
    keras_file: str | None = None


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ExportError(f"{what} is missing: {path}") from None
    except (OSError, ValueError) as e:
        raise ExportError(f"{what} is unreadable: {path} ({e})") from None


def run_input_shape(run_config, info):
    """`(H, W, C)` the run trained at: `resize` x `resize`, or the native size."""
    height, width, channels = info.image_shape
    resize = run_config.get("resize")
    return (resize, resize, channels) if resize else (height, width, channels)


def run_policy(run_config):
    """The dtype policy the run trained under ("auto" resolved as training resolves it)."""
    from kerazoo.train import runtime  # deferred: only needed for runs

    if run_config.get("resolved_precision"):  # recorded by kerazoo-train
        return run_config["resolved_precision"]
    return runtime.choose_precision(run_config.get("precision") or "float32")[0]


def load_run(model_dir):
    """Rebuilds the model of a training run with its latest checkpoint's weights.

    The model is built as training built it: `models.create(config.model)` with
    the dataset's class count, at the run's input size, under the run's
    precision policy (the global policy is restored afterwards).

    Returns:
        `(model, info, config)`: the Keras model, the dataset's `DatasetInfo`,
        the run's `config.json` as a dict.

    Raises:
        ExportError: no run or no checkpoint in `model_dir`.
        kerazoo.data.DataError: the run's dataset cannot be loaded.
    """
    config = _read_json(os.path.join(model_dir, "config.json"), "run config")
    checkpoints = os.path.join(model_dir, "checkpoints")
    index = _read_json(os.path.join(checkpoints, "checkpoint.json"),
                       "checkpoint index (train at least one epoch)")
    weights = os.path.join(checkpoints, str(index.get("weights")))
    if not os.path.isfile(weights):
        raise ExportError(f"checkpoint weights are missing: {weights}")
    if config.get("model") not in models.list_models():
        raise ExportError(f"run config names an unknown model: {config.get('model')!r}; "
                          f"known: {', '.join(models.list_models())}")
    # The dataset gives the class names and native image shape (loading it is ~1 s).
    *_, info = data.load_arrays(config.get("dataset", "fashion_mnist"), config.get("data_dir"))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(run_policy(config))
    try:
        model = models.create(config["model"], num_classes=info.num_classes,
                              input_shape=run_input_shape(config, info))
    finally:
        keras.config.set_dtype_policy(previous)
    try:  # the file also holds the optimizer's state; an uncompiled model skips it
        model.load_weights(weights)
    except ValueError as error:
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise ExportError(f"checkpoint does not fit the run's model: {weights} ({reason})") \
            from None
    return model, info, config


def _check_keras_file(path, overwrite):
    if not path.endswith(".keras"):
        raise ExportError(f"keras_file must end in .keras: {path}")
    if os.path.exists(path) and not overwrite:
        raise ExportError(f"keras_file exists: {path} (use --overwrite)")


def save_keras(model, path, overwrite=False):
    """Writes `model.save(path)` atomically; loads with `keras.saving.load_model`."""
    _check_keras_file(path, overwrite)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def export_run(config, print_fn=print):
    """Exports the run `config.model_dir` as `ExportConfig` asks; returns the paths written."""
    check_export_path(config.export_dir, config.overwrite)  # fail before the slow part
    if config.keras_file:
        _check_keras_file(config.keras_file, config.overwrite)
    model, info, run = load_run(config.model_dir)
    written = []
    if config.keras_file:
        written.append(save_keras(model, config.keras_file, config.overwrite))
    serving = model
    if config.fold_batchnorm:
        serving = fold_batchnorm(model)
        before, after = count_batch_norms(model), count_batch_norms(serving)
        print_fn(f"kerazoo-export: folded {before - after} of {before} BatchNorm layers")
    export_saved_model(serving, config.export_dir, class_names=info.class_names,
                       image_shape=info.image_shape, resize=run.get("resize"),
                       overwrite=config.overwrite, tflite=config.tflite)
    written.append(config.export_dir)
    return written


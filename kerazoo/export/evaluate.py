"""`evaluate`: test accuracy, per-class accuracy and a confusion matrix of an export or a run.

The model sees the test images exactly as a server would: uint8 at the
dataset's native size, through the `serving_default` signature of a SavedModel
or, for a training run, the same serving function built around its model.
"""

import dataclasses
import json
import os

import numpy as np

from kerazoo import atomic, data
from kerazoo.export.saved_model import ExportError

CONFUSION_PNG = "confusion.png"


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What `evaluate` measures.

    saved_model / model_dir: the export, or the training run, to evaluate
        (exactly one).
    dataset, data_dir: the test split's source; None: the run's (for
        model_dir), else "fashion_mnist".
    confusion_png: where the confusion-matrix figure goes; None:
        `confusion.png` in the run directory for model_dir (beside the run's
        curves.png), in the current directory for saved_model (an export is
        left exactly as it was written).
    max_examples: evaluate on the first N test examples only.
    batch_size: images per call of the model.
    """

    saved_model: str | None = None
    model_dir: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    confusion_png: str | None = None
    max_examples: int | None = None
    batch_size: int = 256


def _check(config):
    if (config.saved_model is None) == (config.model_dir is None):
        raise ExportError("give exactly one of saved_model or model_dir. Received: "
                          f"saved_model={config.saved_model!r}, model_dir={config.model_dir!r}")
    if config.max_examples is not None and config.max_examples < 1:
        raise ExportError("max_examples must be >= 1. "
                          f"Received: max_examples={config.max_examples}")
    if config.batch_size < 1:
        raise ExportError(f"batch_size must be >= 1. Received: batch_size={config.batch_size}")


def _confusion_path(config):
    """Where the figure goes (EvaluateConfig), checked writable before any evaluation."""
    if config.confusion_png:
        path = config.confusion_png
    elif config.model_dir is not None:
        path = os.path.join(config.model_dir, CONFUSION_PNG)
    else:
        path = CONFUSION_PNG
    if os.path.isdir(path):
        raise ExportError(f"confusion_png is a directory: {path}")
    directory = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(directory):  # created only when the figure is written
        directory = os.path.dirname(directory)
    try:
        atomic.check_writable(directory)
    except OSError as e:
        raise ExportError(f"confusion_png is not writable: {path} ({e.strerror})") from None
    return path


def _run_predictor(model_dir, batch_size):
    """`(probabilities_fn, image_shape, run_config)` of a training run's model."""
    import tensorflow as tf

    from kerazoo.export.run import load_run
    from kerazoo.export.saved_model import serving_function

    model, info, run = load_run(model_dir)
    spec = tf.TensorSpec([None, *info.image_shape], tf.uint8)
    serve = tf.function(serving_function(model, info.class_names, run.get("resize")),
                        input_signature=[spec])

    def probabilities(images):
        return np.concatenate([serve(images[i:i + batch_size])["probabilities"].numpy()
                               for i in range(0, len(images), batch_size)])

    return probabilities, info.image_shape, run


def confusion_matrix(labels, predictions, num_classes):
    """`[true, predicted]` counts, int64 `(num_classes, num_classes)`."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def evaluate(config):
    """Evaluates `config`'s model on its dataset's test split; writes the confusion PNG.

    Returns:
        A dict: `model`, `dataset`, `num_examples`, `accuracy`, `per_class`
        (`[{"class_id", "class_name", "examples", "accuracy"}]`, accuracy None
        for a class without examples), `confusion_matrix` (rows: true class,
        columns: predicted) and `confusion_png`.

    Raises:
        ExportError: a bad request (an unwritable confusion_png is refused
            before the model is loaded), or a model that does not fit the dataset.
        kerazoo.data.DataError: the dataset cannot be loaded.
    """
    _check(config)
    png = _confusion_path(config)
    dataset, data_dir = config.dataset, config.data_dir
    if config.saved_model is not None:
        from kerazoo.export.serving import ServedModel

        served = ServedModel(config.saved_model)
        probabilities = lambda x: served.probabilities(x, config.batch_size)  # noqa: E731
        image_shape, source = served.image_shape, config.saved_model
    else:
        probabilities, image_shape, run = _run_predictor(config.model_dir, config.batch_size)
        source = config.model_dir
        if dataset is None:
            dataset, data_dir = run.get("dataset"), data_dir or run.get("data_dir")
    _, (x_test, y_test), info = data.load_arrays(dataset or "fashion_mnist", data_dir)
    if tuple(image_shape) != tuple(info.image_shape):
        raise ExportError(f"the model takes {tuple(image_shape)} images; {info.name} has "
                          f"{tuple(info.image_shape)}")
    if config.max_examples:
        x_test, y_test = x_test[:config.max_examples], y_test[:config.max_examples]
    p = probabilities(x_test)  # [N, num_classes]
    if p.shape[-1] != info.num_classes:
        raise ExportError(f"the model has {p.shape[-1]} outputs; {info.name} has "
                          f"{info.num_classes} classes")
    predictions = np.argmax(p, axis=-1)
    matrix = confusion_matrix(y_test, predictions, info.num_classes)
    per_class = []
    for i, name in enumerate(info.class_names):
        examples = int(matrix[i].sum())
        per_class.append({"class_id": i, "class_name": name, "examples": examples,
                          "accuracy": float(matrix[i, i] / examples) if examples else None})
    report = {"model": source, "dataset": info.name, "num_examples": int(len(y_test)),
              "accuracy": float(np.mean(predictions == y_test)), "per_class": per_class,
              "confusion_matrix": matrix.tolist(), "confusion_png": png}
    try:
        draw_confusion(matrix, info.class_names, png,
                       title=f"{info.name} test: accuracy {report['accuracy']:.4f} "
                             f"({report['num_examples']} examples)")
    except OSError as e:  # e.g. the disk filled since the check
        raise ExportError(f"cannot write confusion_png: {png} ({e.strerror})") from None
    return report


def draw_confusion(matrix, class_names, path, title=""):
    """Writes the confusion matrix as a PNG (rows true, columns predicted), atomically."""
    import matplotlib
    matplotlib.use("Agg")  # no display; render to a file
    from matplotlib import pyplot as plt

    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 1.0 + 0.55 * k))
    rows = matrix.sum(axis=1, keepdims=True)
    ax.imshow(matrix / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)  # colour: row share
    if k <= 30:  # counts stay legible
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > 0.5 * max(rows[i, 0], 1) else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def format_text(report):
    """The lines kerazoo-evaluate prints: accuracy, then one per class."""
    lines = [f"{report['model']}: test accuracy {report['accuracy']:.4f} on "
             f"{report['num_examples']} {report['dataset']} examples"]
    width = max(len(c["class_name"]) for c in report["per_class"])
    for c in report["per_class"]:
        accuracy = "-" if c["accuracy"] is None else f"{c['accuracy']:.4f}"
        lines.append(f"  {c['class_id']:>3d} {c['class_name']:<{width}}  {accuracy}  "
                     f"({c['examples']} examples)")
    lines.append(f"confusion matrix: {report['confusion_png']}")
    return "\n".join(lines)


def format_json(report):
    return json.dumps(report, indent=2)

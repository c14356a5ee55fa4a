"""Keras callbacks of the training driver: evaluation, checkpoints, the book's figures."""

import csv
import io
import json
import os
import time

import keras

from kerazoo import atomic

METRIC_FIELDS = ("epoch", "loss", "train_acc", "test_acc", "test_loss", "examples_per_sec",
                 "epoch_seconds", "lr")


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and BN moving statistics every epoch.

    Files in `directory`: `epoch-NNNN.weights.h5` (Keras's weights format,
    which holds the optimizer's variables when it is built) and
    `checkpoint.json` = {"epoch": completed epochs, "weights": file name}.
    Both are written to a temporary name and renamed; `checkpoint.json` is
    renamed last, so it is the commit point: a run killed at any moment leaves
    the previous complete checkpoint in force.
    """

    def __init__(self, directory, keep=2):
        super().__init__()
        self.directory = directory
        self.keep = keep
        self._index = os.path.join(directory, "checkpoint.json")

    def latest_epoch(self):
        """Completed epochs recorded in the directory (0 if none)."""
        if not os.path.exists(self._index):
            return 0
        with open(self._index) as f:
            return int(json.load(f)["epoch"])

    def restore(self, model):
        """Loads the latest checkpoint into the compiled `model`; returns its epoch."""
        if not os.path.exists(self._index):
            return 0
        with open(self._index) as f:
            index = json.load(f)
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so its state loads too
        model.load_weights(os.path.join(self.directory, index["weights"]))
        return int(index["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        with atomic.atomic_path(os.path.join(self.directory, name), suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        atomic.write_text(self._index, json.dumps({"epoch": epoch + 1, "weights": name}))
        old = sorted(f for f in os.listdir(self.directory) if f.startswith("epoch-"))
        for stale in old[:-self.keep]:
            os.remove(os.path.join(self.directory, stale))


class EvaluateEachEpoch(keras.callbacks.Callback):
    """Evaluates on the test set after every epoch, in inference mode.

    Does what `fit(validation_data=...)` does, with one optional step first:
    `recalibrate` (a `precise_bn.PreciseBatchNorm`, or any callable) re-estimates
    the BatchNorm statistics of the trained weights before the test pass, so the
    test accuracy, the checkpoint and an export all use the same statistics.
    Adds `val_<metric>` to the epoch's logs for the callbacks after it; the
    callbacks in `listeners` get `on_test_begin`/`on_test_end` around the
    whole phase, as `fit` notifies its callbacks around validation.
    """

    def __init__(self, test_data, recalibrate=None, listeners=()):
        super().__init__()
        self.test_data = test_data
        self.recalibrate = recalibrate
        self.listeners = tuple(listeners)

    def on_epoch_end(self, epoch, logs=None):
        for listener in self.listeners:
            listener.on_test_begin()
        if self.recalibrate is not None:
            self.recalibrate()
        results = self.model.evaluate(self.test_data, verbose=0, return_dict=True)
        for listener in self.listeners:
            listener.on_test_end(results)
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in results.items()})


class StopAtStep(keras.callbacks.Callback):
    """Ends training once the optimizer has taken `max_steps` steps in all.

    Keras ends the epoch at once (its metrics and checkpoint are still
    written), so `--max_steps` need not be a multiple of the epoch length.
    """

    def __init__(self, max_steps):
        super().__init__()
        self.max_steps = max_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) >= self.max_steps:
            self.model.stop_training = True


class EpochReport(keras.callbacks.Callback):
    """The book's per-epoch figures: printed, in `metrics.csv`, in `curves.png`.

    Loss and train accuracy are Keras's running averages over the epoch (as
    the book's `train_ch5` computes them); test accuracy is a full pass over
    the test set; examples/sec counts training examples over training time
    only, epoch seconds include the test pass.
    """

    def __init__(self, model_dir, examples_per_epoch, initial_epoch=0, print_fn=print):
        super().__init__()
        self.model_dir = model_dir
        self.examples_per_epoch = examples_per_epoch
        self.print_fn = print_fn
        self.rows = self._read_rows(initial_epoch)

    def _read_rows(self, initial_epoch):
        # Rows of epochs a resumed run will redo are dropped, never duplicated.
        path = os.path.join(self.model_dir, "metrics.csv")
        if not os.path.exists(path):
            return []
        with open(path, newline="") as f:
            return [row for row in csv.DictReader(f) if int(row["epoch"]) <= initial_epoch]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_seconds = None

    def on_test_begin(self, logs=None):
        if self._train_seconds is None:  # the epoch's test phase, not a later evaluate
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        epoch_seconds = time.perf_counter() - self._epoch_start
        train_seconds = self._train_seconds or epoch_seconds
        lr = self.model.optimizer.learning_rate
        row = {
            "epoch": epoch + 1,
            "loss": logs.get("loss"),
            "train_acc": logs.get("accuracy"),
            "test_acc": logs.get("val_accuracy"),
            "test_loss": logs.get("val_loss"),
            "examples_per_sec": self.examples_per_epoch / train_seconds,
            "epoch_seconds": epoch_seconds,
            "lr": float(keras.ops.convert_to_numpy(lr)),
        }
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        self.print_fn(f"epoch {epoch + 1}, loss {row['loss']:.4f}, train acc {row['train_acc']:.3f}, "
                      f"test acc {row['test_acc']:.3f}, {row['examples_per_sec']:.1f} examples/sec, "
                      f"time {epoch_seconds:.1f} sec")
        self._write_csv()
        self._draw_curves()

    def _write_csv(self):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic.write_text(os.path.join(self.model_dir, "metrics.csv"), buffer.getvalue())

    def _draw_curves(self):
        import matplotlib
        import matplotlib.ticker
        matplotlib.use("Agg")  # no display; render to a file
        from matplotlib import pyplot as plt

        epochs = [int(r["epoch"]) for r in self.rows]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for key, label in (("loss", "train loss"), ("train_acc", "train acc"),
                           ("test_acc", "test acc")):
            ax.plot(epochs, [float(r[key]) for r in self.rows], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic.atomic_path(os.path.join(self.model_dir, "curves.png"), suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)


def _fmt(value):
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)

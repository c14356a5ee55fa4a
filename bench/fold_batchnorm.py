#!/usr/bin/env python3
"""Inference time of a model before and after `kerazoo.export.fold_batchnorm`.

Both versions run side by side in one process, alternating, on the same batch
of 256 images; each step is a `tf.function` of `model(x, training=False)`. The
BN moving statistics are random (not identity), so the fold does real work.
Prints the median seconds per batch of each, the BatchNorm layers left, and
the ratio folded/unfolded.

    python bench/fold_batchnorm.py               # lenet_bn 28x28x1, resnet18 96x96x1
    python bench/fold_batchnorm.py --repeats=30
"""

import os
import statistics
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed batches per model version.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Images per batch.")
_ONEDNN = flags.DEFINE_bool("onednn", True, "Set TF_ENABLE_ONEDNN_OPTS=1 before importing TF.")

MODELS = [("lenet_bn", (28, 28, 1)), ("resnet18", (96, 96, 1))]


def _randomize_statistics(model, rng):
    for w in model.weights:
        name = w.path.rsplit("/", 1)[-1]
        if name == "moving_mean":
            w.assign(rng.normal(0.0, 0.3, w.shape))
        elif name == "moving_variance":
            w.assign(rng.uniform(0.5, 2.0, w.shape))


def _time(step, x):
    start = time.perf_counter()
    step(x).numpy()  # wait for the result
    return time.perf_counter() - start


def main(argv):
    del argv
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if _ONEDNN.value else "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from kerazoo import models
    from kerazoo.export import count_batch_norms, fold_batchnorm

    rng = np.random.default_rng(0)
    print(f"oneDNN={_ONEDNN.value} batch={_BATCH.value} repeats={_REPEATS.value} "
          f"devices={[d.device_type for d in tf.config.list_logical_devices()]} "
          "(median seconds per inference batch)")
    print(f"{'model':10s} {'input':9s} {'BN':>9s} {'unfolded':>9s} {'folded':>9s} {'ratio':>7s}")
    for name, shape in MODELS:
        model = models.create(name, num_classes=10, input_shape=shape)
        _randomize_statistics(model, rng)
        versions = {"unfolded": model, "folded": fold_batchnorm(model)}
        x = tf.constant(rng.uniform(0.0, 1.0, (_BATCH.value, *shape)).astype("float32"))
        steps = {}
        for key, m in versions.items():
            steps[key] = tf.function(lambda x, m=m: m(x, training=False))
            _time(steps[key], x)  # trace and warm up
            _time(steps[key], x)
        gap = np.abs(steps["folded"](x).numpy() - steps["unfolded"](x).numpy()).max()
        times = {key: [] for key in steps}
        for _ in range(_REPEATS.value):  # alternate so noise hits both alike
            for key, step in steps.items():
                times[key].append(_time(step, x))
        unfolded, folded = (statistics.median(times[k]) for k in ("unfolded", "folded"))
        norms = f"{count_batch_norms(model)}->{count_batch_norms(versions['folded'])}"
        print(f"{name:10s} {'x'.join(map(str, shape)):9s} {norms:>9s} {unfolded:9.5f} "
              f"{folded:9.5f} {folded / unfolded:7.3f}   (max |diff| {gap:.1e})", flush=True)


if __name__ == "__main__":
    app.run(main)

#!/usr/bin/env python3
"""Training-step time of zoo models in float32 and in mixed_bfloat16.

For each model, two copies are built (one under each Keras dtype policy) and
compiled as `kerazoo-train` compiles them (SGD, sparse softmax cross-entropy
from logits, no XLA). Their `train_on_batch` steps then alternate on the same
random batch, so both see the same machine load. Prints the median seconds per
step of each, examples/sec, and the ratio bf16/float32 (< 1: bf16 is faster).
The first `--warmup` steps of each (graph tracing) are not timed.

Whether bf16 pays depends on the CPU: with AMX or AVX512_BF16 units oneDNN runs
bf16 convolutions natively; without them TensorFlow emulates bf16 and it is
several times slower (README, "Precision and XLA on this machine").

    python bench/precision.py                      # lenet_bn, resnet18, densenet
    python bench/precision.py --models=resnet18 --repeats=5
"""

import os
import statistics
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

_MODELS = flags.DEFINE_list("models", ["lenet_bn", "resnet18", "densenet"], "Zoo models.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed steps per precision.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps per precision first.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Images per step.")

# The book's input size for each model (28x28, or resized to 96x96).
_SIZES = {"lenet": 28, "lenet_bn": 28, "resnet18": 96, "densenet": 96}


def _compiled(models, name, size, policy):
    import keras

    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = models.create(name, input_shape=(size, size, 1))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    return model


def _step_seconds(model, x, y):
    start = time.perf_counter()
    model.train_on_batch(x, y)  # returns numpy: waits for the step
    return time.perf_counter() - start


def main(argv):
    del argv
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from kerazoo import models
    from kerazoo.train import runtime

    rng = np.random.default_rng(0)
    print(f"batch={_BATCH.value} repeats={_REPEATS.value} threads={os.cpu_count()} "
          f"native_bf16={runtime.cpu_has_native_bf16()} "
          f"oneDNN={os.environ['TF_ENABLE_ONEDNN_OPTS']} tf={tf.__version__} "
          "(median seconds per training step)")
    print(f"{'model':10s} {'input':7s} {'float32':>9s} {'bf16':>9s} "
          f"{'f32 ex/s':>9s} {'bf16 ex/s':>9s} {'bf16/f32':>8s}")
    for name in _MODELS.value:
        size = _SIZES.get(name, 96)
        x = rng.random((_BATCH.value, size, size, 1), dtype=np.float32)
        y = rng.integers(0, 10, _BATCH.value)
        pair = {p: _compiled(models, name, size, p) for p in ("float32", "mixed_bfloat16")}
        for model in pair.values():
            for _ in range(_WARMUP.value):
                model.train_on_batch(x, y)
        times = {p: [] for p in pair}
        for _ in range(_REPEATS.value):
            for policy, model in pair.items():
                times[policy].append(_step_seconds(model, x, y))
        f32 = statistics.median(times["float32"])
        bf16 = statistics.median(times["mixed_bfloat16"])
        print(f"{name:10s} {size}x{size:<4d} {f32:9.4f} {bf16:9.4f} "
              f"{_BATCH.value / f32:9.1f} {_BATCH.value / bf16:9.1f} {bf16 / f32:8.3f}",
              flush=True)


if __name__ == "__main__":
    app.run(main)

#!/usr/bin/env python3
"""Training-step time of zoo models in float32 vs mixed_bfloat16, or without vs with XLA.

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
    python bench/precision.py --vary=jit_compile   # float32, jit_compile False vs True

With `--vary=jit_compile` the pair is the same float32 model compiled without
and with XLA (`jit_compile=True`), which is what `--jit_compile=auto` decides.
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
_VARY = flags.DEFINE_enum("vary", "precision", ["precision", "jit_compile"],
                          "What the two timed copies differ in.")
_KEEP_FREED_MEMORY = flags.DEFINE_bool(
    "keep_freed_memory", True, "kerazoo.memory.keep_freed_memory(), as bin/kerazoo-train.")
_SIZE = flags.DEFINE_integer("size", None, "Input side for every model (default: the book's).")

# The book's input size for each model (28x28, or resized to 96x96).
_SIZES = {"lenet": 28, "lenet_bn": 28, "resnet18": 96, "densenet": 96}


def _compiled(models, name, size, policy, jit_compile=False):
    import keras

    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = models.create(name, input_shape=(size, size, 1))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
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
    from kerazoo.memory import keep_freed_memory
    from kerazoo.train import runtime

    kept = _KEEP_FREED_MEMORY.value and keep_freed_memory()

    rng = np.random.default_rng(0)
    print(f"batch={_BATCH.value} repeats={_REPEATS.value} threads={os.cpu_count()} "
          f"native_bf16={runtime.cpu_has_native_bf16()} "
          f"oneDNN={os.environ['TF_ENABLE_ONEDNN_OPTS']} keep_freed_memory={kept} "
          f"tf={tf.__version__} "
          "(median seconds per training step)")
    variants = ({"float32": ("float32", False), "bf16": ("mixed_bfloat16", False)}
                if _VARY.value == "precision" else
                {"plain": ("float32", False), "xla": ("float32", True)})
    first, second = variants
    print(f"{'model':10s} {'input':7s} {first:>9s} {second:>9s} "
          f"{first + ' ex/s':>11s} {second + ' ex/s':>11s} {second + '/' + first:>10s}")
    for name in _MODELS.value:
        size = _SIZE.value or _SIZES.get(name, 96)
        x = rng.random((_BATCH.value, size, size, 1), dtype=np.float32)
        y = rng.integers(0, 10, _BATCH.value)
        pair = {v: _compiled(models, name, size, *variants[v]) for v in variants}
        for model in pair.values():
            for _ in range(_WARMUP.value):
                model.train_on_batch(x, y)
        times = {v: [] for v in pair}
        for _ in range(_REPEATS.value):  # alternate so noise hits both alike
            for variant, model in pair.items():
                times[variant].append(_step_seconds(model, x, y))
        a, b = (statistics.median(times[v]) for v in variants)
        print(f"{name:10s} {size}x{size:<4d} {a:9.4f} {b:9.4f} "
              f"{_BATCH.value / a:11.1f} {_BATCH.value / b:11.1f} {b / a:10.3f}", flush=True)


if __name__ == "__main__":
    app.run(main)

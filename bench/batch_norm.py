#!/usr/bin/env python3
"""Forward + backward time of kerazoo's BatchNorm vs keras.layers.BatchNormalization.

Both layers run side by side in one process, alternating, on the same inputs;
each step is a `tf.function` computing the output in training mode (moving
statistics updated) and the gradients with respect to the input, gamma and
beta. Prints the median seconds per step of each and the ratio kerazoo/keras.

The upstream gradient `dy` is, by default, a fixed random tensor of the
output's shape, as the next layer of a network hands back (`--upstream=random`).
`--upstream=sum` differentiates `sum(y)` instead: `dy` is then all ones, built
by a broadcast inside the step, and the step also pays for that broadcast and
the sum (about 5 ms on [256,24,24,64] float32 here, charged to both layers).

    python bench/batch_norm.py                 # oneDNN on (as kerazoo-train runs)
    python bench/batch_norm.py --onednn=false  # TF's default without (AVX512_)VNNI, BF16, AMX
    python bench/batch_norm.py --keep_freed_memory=false  # glibc's default malloc
    python bench/batch_norm.py --upstream=sum  # gradients of sum(y): dy = ones

`--keep_freed_memory` (default on, as `bin/kerazoo-train` runs) keeps glibc
from unmapping freed tensor buffers of 32 MiB and more (`kerazoo.memory`); of
the listed shapes only [256,24,24,64] float32 (36 MiB) is that large.
"""

import os
import statistics
import time

from absl import app, flags

_ONEDNN = flags.DEFINE_bool("onednn", True, "Set TF_ENABLE_ONEDNN_OPTS=1 before importing TF.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed steps per layer and shape.")
_KEEP_FREED_MEMORY = flags.DEFINE_bool(
    "keep_freed_memory", True, "kerazoo.memory.keep_freed_memory(), as bin/kerazoo-train.")
_IMPLEMENTATION = flags.DEFINE_string("implementation", "auto", "kerazoo BatchNorm path.")
_UPSTREAM = flags.DEFINE_enum("upstream", "random", ["random", "sum"],
                              "The upstream gradient: a fixed random dy, or that of sum(y).")

SHAPES = [(256, 24, 24, 64), (256, 12, 12, 128), (256, 3, 3, 512), (256, 120)]
POLICIES = ["float32", "mixed_bfloat16"]


def _step_fn(layer, dy, tf):
    """One forward + backward; `dy` None means the gradients of `sum(y)`."""
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            if dy is None:
                y = tf.reduce_sum(tf.cast(y, tf.float32))
        sources = [x] + layer.trainable_variables
        return tape.gradient(y, sources, output_gradients=dy)
    return step


def _time(step, x, tf):
    start = time.perf_counter()
    for grad in step(x):
        grad.numpy()  # wait for the result
    return time.perf_counter() - start


def main(argv):
    del argv
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if _ONEDNN.value else "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from kerazoo.layers import BatchNorm
    from kerazoo.memory import keep_freed_memory

    kept = _KEEP_FREED_MEMORY.value and keep_freed_memory()
    print(f"oneDNN={_ONEDNN.value} keep_freed_memory={kept} "
          f"implementation={_IMPLEMENTATION.value} upstream={_UPSTREAM.value} "
          f"repeats={_REPEATS.value} (median seconds per forward+backward step)")
    print(f"{'policy':15s} {'shape':20s} {'keras':>9s} {'kerazoo':>9s} {'ratio':>7s}")
    for policy in POLICIES:
        keras.config.set_dtype_policy(policy)
        for shape in SHAPES:
            x = tf.random.normal(shape) * 3.0 + 2.0
            x = tf.cast(x, keras.config.dtype_policy().compute_dtype)
            dy = tf.cast(tf.random.normal(shape), x.dtype) if _UPSTREAM.value == "random" else None
            steps = {}
            for name, layer in [("keras", keras.layers.BatchNormalization()),
                                ("kerazoo", BatchNorm(implementation=_IMPLEMENTATION.value))]:
                steps[name] = _step_fn(layer, dy, tf)
                _time(steps[name], x, tf)  # trace and warm up
                _time(steps[name], x, tf)
            times = {name: [] for name in steps}
            for _ in range(_REPEATS.value):  # alternate so noise hits both alike
                for name, step in steps.items():
                    times[name].append(_time(step, x, tf))
            keras_s = statistics.median(times["keras"])
            ours_s = statistics.median(times["kerazoo"])
            print(f"{policy:15s} {str(list(shape)):20s} {keras_s:9.5f} {ours_s:9.5f} "
                  f"{ours_s / keras_s:7.3f}", flush=True)
    keras.config.set_dtype_policy("float32")


if __name__ == "__main__":
    app.run(main)

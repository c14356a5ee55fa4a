"""Helpers of the export tests: fake training runs, random BN statistics, fresh processes."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def randomize_batch_norms(model, seed=0):
    """Non-trivial BN statistics and affine weights (fresh ones are mean 0, var 1, identity).

    Without them a BatchNorm in inference mode is almost the identity, and a
    wrong fold or a serving path that ignores the statistics would still pass.
    """
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = w.path.rsplit("/", 1)[-1]
        if name == "moving_mean":
            w.assign(rng.normal(0.0, 0.3, w.shape))
        elif name == "moving_variance":
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        elif name == "gamma":
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        elif name in ("beta", "bias"):
            w.assign(rng.normal(0.0, 0.1, w.shape))
    return model


def make_run(model_dir, model="lenet_bn", steps=30, batch_size=128, precision="float32",
             resize=None, lr=1.0):
    """A training run directory as kerazoo-train writes it, trained `steps` steps.

    Written with the trainer's own pieces (`TrainConfig.to_json`, the
    `EpochCheckpoint` callback), without its driver: fast, and independent of
    the recipe tables.
    """
    from kerazoo import data, models
    from kerazoo.train.callbacks import EpochCheckpoint
    from kerazoo.train.config import TrainConfig

    (x_train, y_train), _, info = data.load_arrays("fashion_mnist", FASHION_MNIST)
    config = TrainConfig(model=model, data_dir=FASHION_MNIST, resize=resize, epochs=1,
                         batch_size=batch_size, lr=lr, precision=precision,
                         model_dir=str(model_dir), max_steps=steps)
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        f.write(config.to_json())
    keras.config.set_dtype_policy(precision)
    try:
        side = resize or info.image_shape[0]
        net = models.create(model, num_classes=info.num_classes,
                            input_shape=(side, side, info.image_shape[2]))
        n = steps * batch_size
        x = x_train[:n].astype("float32") / 255.0
        if resize:
            import tensorflow as tf
            x = tf.image.resize(x, [resize, resize]).numpy()
        net.compile(optimizer=keras.optimizers.SGD(lr),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        net.fit(x, y_train[:n], batch_size=batch_size, epochs=1, verbose=0,
                callbacks=[EpochCheckpoint(os.path.join(model_dir, "checkpoints"))])
    finally:
        keras.config.set_dtype_policy("float32")
    return str(model_dir)


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_bin(name, *args, timeout=300):
    """Runs `bin/<name> args...`; returns the CompletedProcess (text)."""
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bin", name), *args],
                          env=subprocess_env(), capture_output=True, text=True,
                          timeout=timeout)


def run_script(tmp_path, source, timeout=300):
    """Runs a Python script in a fresh interpreter; returns its stdout's last line as JSON."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(source))
    proc = subprocess.run([sys.executable, str(path)], cwd=str(tmp_path), env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"script failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])

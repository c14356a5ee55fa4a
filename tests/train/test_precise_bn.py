"""`PreciseBatchNorm`: moving statistics replaced by averages over fixed batches.

Reference: NumPy float64, per batch, of each BatchNorm's input in training
mode (a BatchNorm after another one sees the first one's batch-normalized
output), then the plain average over batches of the means and the biased
(1/m) variances. Tolerance 1e-5: float32 moments of 16-row batches.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import BatchNorm
from kerazoo.train.precise_bn import PreciseBatchNorm, batch_norm_layers

TOL = dict(rtol=1e-5, atol=1e-5)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data(num_batches=4, batch=16, features=5, seed=0):
    rng = np.random.default_rng(seed)
    # Each batch from a different distribution, so the average over batches
    # differs from any one batch and from the exponential moving average.
    x = np.concatenate([rng.normal(size=(batch, features)) * (1 + i) + 3 * i - 2
                        for i in range(num_batches)]).astype("float32")
    y = np.zeros(len(x), "int32")
    return x, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _model(features=5, momentum=0.9):
    """Input -> kerazoo BatchNorm -> Dense(3) -> keras BatchNormalization."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((features,))
    first = BatchNorm(momentum=momentum, epsilon=1e-3, name="ours")
    dense = keras.layers.Dense(3, name="dense")
    second = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3, name="keras")
    model = keras.Model(inputs, second(dense(first(inputs))))
    # Non-default affine weights, so the second layer's input depends on them.
    first.gamma.assign([0.5, 2.0, 1.5, 1.0, 0.7])
    first.beta.assign([0.1, -0.2, 0.3, 0.0, 1.0])
    return model


def _expected(model, x, batch=16):
    first, dense, second = (model.get_layer(n) for n in ("ours", "dense", "keras"))
    gamma, beta = first.gamma.numpy().astype("float64"), first.beta.numpy().astype("float64")
    kernel, bias = dense.kernel.numpy().astype("float64"), dense.bias.numpy().astype("float64")
    stats = {"ours": [], "keras": []}
    for start in range(0, len(x), batch):
        xb = x[start:start + batch].astype("float64")
        mean, var = xb.mean(0), xb.var(0)
        stats["ours"].append((mean, var))
        hidden = (gamma * (xb - mean) / np.sqrt(var + first.epsilon) + beta) @ kernel + bias
        stats["keras"].append((hidden.mean(0), hidden.var(0)))
    return {name: tuple(np.mean([s[i] for s in per_batch], axis=0) for i in (0, 1))
            for name, per_batch in stats.items()}


def test_statistics_are_averages_over_the_batches():
    x, batches = _data()
    model = _model()
    expected = _expected(model, x)
    assert PreciseBatchNorm(model, batches)() == 4
    for name in ("ours", "keras"):
        layer = model.get_layer(name)
        np.testing.assert_allclose(layer.moving_mean.numpy(), expected[name][0], **TOL)
        np.testing.assert_allclose(layer.moving_variance.numpy(), expected[name][1], **TOL)


def test_weights_and_momentum_are_unchanged_and_repeats_agree():
    x, batches = _data()
    model = _model()
    trainable = [w.numpy().copy() for w in model.trainable_weights]
    precise = PreciseBatchNorm(model, batches)
    precise()
    first = [w.numpy().copy() for w in model.non_trainable_weights]
    # Training afterwards moves the statistics; a second pass restores them,
    # whatever they were before (it does not average with the old values).
    model(x * 3.0 + 7.0, training=True)
    assert not np.allclose(model.get_layer("ours").moving_mean.numpy(), first[0])
    precise()
    for before, after in zip(first, model.non_trainable_weights):
        np.testing.assert_allclose(after.numpy(), before, **TOL)
    for before, after in zip(trainable, model.trainable_weights):
        np.testing.assert_array_equal(after.numpy(), before)
    assert [layer.momentum for layer in batch_norm_layers(model)] == [0.9, 0.9]
    # The restored momentum is the one training uses again.
    mean = model.get_layer("ours").moving_mean.numpy().astype("float64")
    model(x[:16], training=True)
    np.testing.assert_allclose(model.get_layer("ours").moving_mean.numpy(),
                               0.9 * mean + 0.1 * x[:16].astype("float64").mean(0), **TOL)


def test_frozen_batch_norm_keeps_its_statistics():
    _, batches = _data()
    model = _model()
    frozen = model.get_layer("keras")
    frozen.trainable = False
    assert batch_norm_layers(model) == [model.get_layer("ours")]
    PreciseBatchNorm(model, batches)()
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(frozen.moving_variance.numpy(), np.ones(3))


def test_model_without_batch_norm_is_left_alone():
    _, batches = _data()
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    assert PreciseBatchNorm(model, batches)() == 0


def test_empty_dataset_is_an_error():
    _, batches = _data()
    with pytest.raises(ValueError, match="at least one batch"):
        PreciseBatchNorm(_model(), batches.take(0))()


MIRRORED_SCRIPT = r'''
import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from kerazoo.layers import BatchNorm
from kerazoo.train.precise_bn import PreciseBatchNorm

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
# Replica 0 gets rows 0-7 of each batch of 16, replica 1 rows 8-15: different
# distributions, so only global (synchronized) statistics match the reference.
x = np.concatenate([np.concatenate([rng.normal(size=(8, 3)) + 2 * i,
                                    rng.normal(size=(8, 3)) * 4 - i])
                    for i in range(3)]).astype("float32")
batches = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x), "int32"))).batch(16)
with strategy.scope():
    model = keras.Sequential([keras.Input((3,)), BatchNorm(momentum=0.9, synchronized=True)])
assert PreciseBatchNorm(model, batches, strategy)() == 3
x64 = x.astype("float64").reshape(3, 16, 3)
layer = model.layers[0]
np.testing.assert_allclose(layer.moving_mean.numpy(), x64.mean(1).mean(0), rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(layer.moving_variance.numpy(), x64.var(1).mean(0), rtol=1e-5, atol=1e-5)
print("ok")
'''


def test_mirrored_replicas_average_global_batch_statistics():
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")

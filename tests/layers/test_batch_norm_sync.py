"""Synchronized statistics under MirroredStrategy on two logical CPUs.

Runs in a fresh interpreter: logical devices must be configured before
TensorFlow initializes its devices, which the rest of the test session has
already done. Reference: NumPy float64 statistics of the whole global batch
of 8, as one device would compute them; tolerance 1e-5 (float32 sums of 8
values, all-reduced: a few ulps).
"""

SCRIPT = r'''
import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from kerazoo.layers import BatchNorm

keras.utils.set_random_seed(0)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync

rng = np.random.default_rng(0)
# Different distributions per replica, so per-replica statistics differ from
# the global ones: replica 0 sees rows 0-3, replica 1 rows 4-7.
x = np.concatenate([rng.normal(size=(4, 3)) * 2.0 + 1.0,
                    rng.normal(size=(4, 3)) * 5.0 - 3.0]).astype("float32")
momentum, epsilon = 0.5, 1e-3

with strategy.scope():
    synced = BatchNorm(synchronized=True, momentum=momentum, epsilon=epsilon)
    local = BatchNorm(synchronized=False, momentum=momentum, epsilon=epsilon)
    synced.build((None, 3))
    local.build((None, 3))

dataset = tf.data.Dataset.from_tensor_slices(x).batch(8)
distributed = strategy.experimental_distribute_dataset(dataset)

@tf.function
def step(batch):
    return strategy.run(lambda b: (synced(b, training=True), local(b, training=True), b),
                        args=(batch,))

for batch in distributed:
    y_sync, _, seen = step(batch)
y_sync = np.concatenate([t.numpy() for t in strategy.experimental_local_results(y_sync)])
seen = [t.numpy() for t in strategy.experimental_local_results(seen)]
np.testing.assert_array_equal(seen[0], x[:4])
np.testing.assert_array_equal(seen[1], x[4:])

x64 = x.astype("float64")
mean, var = x64.mean(0), x64.var(0)
tol = dict(rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(synced.moving_mean.numpy(), momentum * 0 + (1 - momentum) * mean, **tol)
np.testing.assert_allclose(synced.moving_variance.numpy(), momentum * 1 + (1 - momentum) * var,
                           **tol)
# Each replica normalized with the global statistics.
np.testing.assert_allclose(y_sync, (x64 - mean) / np.sqrt(var + epsilon), **tol)

# What per-replica statistics would give: either replica's own, or their
# average (the two batch means average to the global mean, but the variances
# do not: the between-replica spread is missing).
for name, v in [("replica 0", x64[:4].var(0)), ("replica 1", x64[4:].var(0)),
                ("average", (x64[:4].var(0) + x64[4:].var(0)) / 2)]:
    unsynced = momentum + (1 - momentum) * v
    gap = np.abs(synced.moving_variance.numpy() - unsynced).min()
    assert gap > 0.1, (name, gap)
# and the unsynchronized layer really does end elsewhere.
assert np.abs(local.moving_variance.numpy() - synced.moving_variance.numpy()).min() > 0.1
print("SYNC OK")
'''


def test_synchronized_statistics_match_global_batch(run_script):
    assert "SYNC OK" in run_script(SCRIPT)

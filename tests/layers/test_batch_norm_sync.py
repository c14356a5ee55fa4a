"""Synchronized statistics under MirroredStrategy on two logical CPUs.

Runs in a fresh interpreter: logical devices must be configured before
TensorFlow initializes its devices, which the rest of the test session has
already done. Reference: NumPy float64 statistics of the whole global batch
of 8, as one device would compute them; tolerance 1e-5 (float32 sums of 8
values, all-reduced: a few ulps).

Gradients: keras.layers.BatchNormalization on one device over the whole batch
is the reference for dx (each replica's rows), and for dgamma / dbeta (the sum
of the two replicas' partial gradients). Tolerance as in
test_batch_norm_parity.py: rtol = 1e-5, atol = 1e-5 * max(1, max|ref|), since
each entry is a cancelling float32 sum of m terms the size of the largest one.
"""

# Both scripts start so: two logical CPUs and a MirroredStrategy over them.
TWO_CPUS = r"""
import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from kerazoo.layers import BatchNorm

keras.utils.set_random_seed(0)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
"""

SCRIPT = TWO_CPUS + r'''
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


GRADIENT_SCRIPT = TWO_CPUS + r"""
rng = np.random.default_rng(0)
momentum, epsilon = 0.9, 1e-5


def close(actual, expected, what):
    atol = 1e-5 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol, err_msg=what)


def loss_of(y, w):
    # A random upstream gradient dy = w: neither dx term cancels trivially.
    return tf.reduce_sum(y * w)


for shape in [(8, 3), (8, 3, 3, 4)]:
    c = shape[-1]
    # Replica 0 sees rows 0-3, replica 1 rows 4-7, from different distributions.
    half = (4,) + shape[1:]
    x = np.concatenate([rng.normal(size=half) * 2.0 + 1.0,
                        rng.normal(size=half) * 5.0 - 3.0]).astype("float32")
    w = rng.normal(size=shape).astype("float32")
    weights = [rng.uniform(0.5, 1.5, c), rng.normal(size=c), np.zeros(c), np.ones(c)]
    weights = [v.astype("float32") for v in weights]
    with strategy.scope():
        synced = BatchNorm(synchronized=True, momentum=momentum, epsilon=epsilon)
        synced.build((None,) + shape[1:])
    synced.set_weights(weights)
    ref = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    ref.build(shape)
    ref.set_weights(weights)

    def replica_step(xb, wb):
        with tf.GradientTape() as tape:
            tape.watch(xb)
            y = synced(xb, training=True)
            loss = loss_of(y, wb)
        dx, dgamma, dbeta = tape.gradient(loss, [xb, synced.gamma, synced.beta])
        return y, dx, dgamma, dbeta

    @tf.function
    def step(xb, wb):
        return strategy.run(replica_step, args=(xb, wb))

    dataset = tf.data.Dataset.from_tensor_slices((x, w)).batch(8)
    for xb, wb in strategy.experimental_distribute_dataset(dataset):
        outs = step(xb, wb)
        seen = np.concatenate([t.numpy() for t in strategy.experimental_local_results(xb)])
    np.testing.assert_array_equal(seen, x)  # replica order is row order
    y, dx, dgamma, dbeta = [[t.numpy() for t in strategy.experimental_local_results(o)]
                            for o in outs]

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y_ref = ref(xt, training=True)
        loss = loss_of(y_ref, w)
    dx_ref, dgamma_ref, dbeta_ref = [g.numpy() for g in
                                     tape.gradient(loss, [xt, ref.gamma, ref.beta])]
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.concatenate(y), y_ref.numpy(), **tol)
    for r in range(2):
        close(dx[r], dx_ref[4 * r:4 * r + 4], f"{shape}: dx, replica {r}")
    close(dgamma[0] + dgamma[1], dgamma_ref, f"{shape}: dgamma")
    close(dbeta[0] + dbeta[1], dbeta_ref, f"{shape}: dbeta")
    np.testing.assert_allclose(synced.moving_mean.numpy(), ref.moving_mean.numpy(), **tol)
    np.testing.assert_allclose(synced.moving_variance.numpy(), ref.moving_variance.numpy(),
                               **tol)

    # Per-replica statistics would give other gradients: replica 0 alone.
    local = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    local.build(half)
    local.set_weights(weights)
    x0 = tf.constant(x[:4])
    with tf.GradientTape() as tape:
        tape.watch(x0)
        loss = loss_of(local(x0, training=True), w[:4])
    assert np.abs(tape.gradient(loss, x0).numpy() - dx[0]).max() > 0.1, shape
    print("GRADIENTS OK", shape)
"""


def test_synchronized_gradients_match_global_batch(run_script):
    out = run_script(GRADIENT_SCRIPT)
    assert "GRADIENTS OK (8, 3)" in out and "GRADIENTS OK (8, 3, 3, 4)" in out

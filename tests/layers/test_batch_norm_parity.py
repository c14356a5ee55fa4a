"""BatchNorm against keras.layers.BatchNormalization, the trusted reference.

Both layers get the same arguments and the same random weights, then see the
same data with a non-zero mean and a non-unit scale (normal * 3 + 5): three
training steps (outputs and gradients each step), the moving statistics after
them, then an inference step. Over the full product of rank, axis,
momentum/epsilon, center/scale and implementation, each eagerly, inside
tf.function and with jit_compile=True (about two minutes on 2 CPU cores).

Tolerances (float32, unit roundoff 6e-8):
* outputs and moving statistics: rtol = atol = 1e-5. The outputs are O(1)
  after normalization and the statistics O(10); the two layers sum in
  different orders (fused kernel, one- vs two-pass), which costs a few ulps
  per reduction, far below 1e-5.
* gradients: rtol = 1e-5 and atol = 1e-5 * max(1, max|ref|). Each gradient
  entry is a reduction over m elements whose terms are of the size of the
  largest gradient, and dx is a difference of such sums (the mean-removal
  terms cancel), so its absolute error scales with the magnitude of the whole
  gradient tensor, not of the entry.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import BatchNorm

SHAPES = {2: (16, 4), 3: (4, 5, 3), 4: (4, 3, 3, 4)}
HYPER = {"keras": dict(momentum=0.99, epsilon=1e-3), "book": dict(momentum=0.9, epsilon=1e-5)}
STEPS = 3
TOL = dict(rtol=1e-5, atol=1e-5)


def implementations(rank, axis):
    """The implementations that apply: 'fused' needs channels last and rank >= 3."""
    impls = ["auto", "reference", "analytic"]
    if rank >= 3 and axis % rank == rank - 1:
        impls.append("fused")
    return impls


def random_weights(layer, rng):
    """Random gamma / beta / moving statistics, in the layer's weight order."""
    values = []
    for w in layer.weights:
        c = w.shape[0]
        if "gamma" in w.path:
            values.append(rng.uniform(0.5, 1.5, c))
        elif "beta" in w.path:
            values.append(rng.normal(size=c))
        elif "moving_mean" in w.path:
            values.append(rng.normal(size=c) + 4.0)
        else:
            values.append(rng.uniform(0.5, 2.0, c) * 9.0)
    return [v.astype("float32") for v in values]


def make_pair(shape, rng, implementation="auto", **kwargs):
    """(ours, keras's) built on `shape` with identical random weights."""
    ours = BatchNorm(implementation=implementation, **kwargs)
    ref = keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    ref.build(shape)
    assert [w.path.split("/")[-1] for w in ours.weights] == \
        [w.path.split("/")[-1] for w in ref.weights]
    weights = random_weights(ref, rng)
    ours.set_weights(weights)
    ref.set_weights(weights)
    return ours, ref


def train_step(layer, x):
    """One training-mode call; gradients of a non-trivial loss.

    sum(y * sin(y)) has a gradient sin(y) + y cos(y) that varies per element,
    so neither the dbeta nor the dgamma term of dx cancels trivially.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.sin(y))
    return y, tape.gradient(loss, [x] + layer.trainable_variables)


def infer_step(layer, x):
    return layer(x, training=False)


def wrap(fn, layer, mode):
    fn = functools.partial(fn, layer)
    if mode == "eager":
        return fn
    return tf.function(fn, jit_compile=(mode == "jit"))


def assert_grads_close(actual, expected, what):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        e = np.asarray(e)
        atol = 1e-5 * max(1.0, float(np.max(np.abs(e))))
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-5, atol=atol,
                                   err_msg=f"{what}: gradient {i}")


def check_against_keras(rank, axis, hyper, center, scale, implementation, mode, rng):
    shape = SHAPES[rank]
    ours, ref = make_pair(shape, rng, implementation, axis=axis, center=center, scale=scale,
                          **HYPER[hyper])
    step_ours, step_ref = wrap(train_step, ours, mode), wrap(train_step, ref, mode)
    for step in range(STEPS):
        x = tf.constant(rng.normal(size=shape).astype("float32") * 3.0 + 5.0)
        (y, grads), (y_ref, grads_ref) = step_ours(x), step_ref(x)
        np.testing.assert_allclose(y.numpy(), y_ref.numpy(), **TOL,
                                   err_msg=f"training output, step {step}")
        assert_grads_close([g.numpy() for g in grads], [g.numpy() for g in grads_ref],
                           f"step {step}")
    np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(), **TOL)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), **TOL)
    x = tf.constant(rng.normal(size=shape).astype("float32") * 3.0 + 5.0)
    y = wrap(infer_step, ours, mode)(x)
    np.testing.assert_allclose(y.numpy(), wrap(infer_step, ref, mode)(x).numpy(), **TOL,
                               err_msg="inference output")


# On rank 2, axis=1 is axis=-1 spelled differently: checked eagerly only.
CASES = [
    pytest.param(rank, axis, hyper, center, scale, impl, mode,
                 id=f"r{rank}-ax{axis}-{hyper}-c{int(center)}s{int(scale)}-{impl}-{mode}")
    for rank in (2, 3, 4) for axis in (-1, 1) for hyper in HYPER
    for center in (True, False) for scale in (True, False)
    for impl in implementations(rank, axis)
    for mode in ("eager", "function", "jit")
    if not (rank == 2 and axis == 1 and mode != "eager")
]


@pytest.mark.parametrize("rank,axis,hyper,center,scale,implementation,mode", CASES)
def test_matches_keras(rank, axis, hyper, center, scale, implementation, mode, rng):
    check_against_keras(rank, axis, hyper, center, scale, implementation, mode, rng)


def test_training_none_is_inference(rng):
    # Keras convention: a call without `training` uses the moving statistics.
    ours, ref = make_pair(SHAPES[4], rng)
    x = rng.normal(size=SHAPES[4]).astype("float32") * 3.0 + 5.0
    np.testing.assert_allclose(ours(x).numpy(), ref(x, training=False).numpy(), **TOL)
    np.testing.assert_allclose(ours(x).numpy(), ours(x, training=False).numpy(), **TOL)

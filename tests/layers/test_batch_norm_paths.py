"""The three computation paths agree, and "auto" picks the documented one.

The reference path (the formula differentiated by autodiff) is the trusted
one here; fused and analytic must match it in outputs, batch statistics and
gradients. Tolerances as in test_batch_norm_parity.py: float32 rtol/atol 1e-5
for outputs and statistics (a few ulps of reordered sums), and for gradients
atol = 1e-5 * max(1, max|ref|) because each entry is a cancelling sum over m
terms of the size of the whole gradient.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import BatchNorm, batch_norm as batch_norm_module
from kerazoo.layers import batch_norm_ops

TOL = dict(rtol=1e-5, atol=1e-5)


def run_path(implementation, x, axis, weights, steps=2):
    """Outputs, gradients and moving statistics of `steps` training steps."""
    layer = BatchNorm(axis=axis, momentum=0.9, epsilon=1e-5, implementation=implementation)
    layer.build(x[0].shape)
    layer.set_weights(weights)
    results = []
    for xs in x:
        xs = tf.constant(xs)
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = layer(xs, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        grads = tape.gradient(loss, [xs, layer.gamma, layer.beta])
        results.append((y.numpy(), [g.numpy() for g in grads]))
    return results, layer.moving_mean.numpy(), layer.moving_variance.numpy()


@pytest.mark.parametrize("shape,axis,paths", [
    ((4, 3, 3, 4), -1, ("fused", "analytic")),
    ((4, 6, 5), -1, ("fused", "analytic")),
    ((16, 4), -1, ("analytic",)),
    ((4, 3, 3, 4), 1, ("analytic",)),
    ((4, 5, 6), 1, ("analytic",)),
])
def test_paths_agree_with_reference(shape, axis, paths, rng):
    c = shape[axis]
    weights = [rng.uniform(0.5, 1.5, c), rng.normal(size=c), rng.normal(size=c),
               rng.uniform(0.5, 2.0, c)]
    weights = [w.astype("float32") for w in weights]
    x = [(rng.normal(size=shape) * 3.0 + 5.0).astype("float32") for _ in range(2)]
    expected, mean, var = run_path("reference", x, axis, weights)
    for path in paths:
        actual, path_mean, path_var = run_path(path, x, axis, weights)
        for (y, grads), (y_ref, grads_ref) in zip(actual, expected):
            np.testing.assert_allclose(y, y_ref, **TOL, err_msg=path)
            for g, g_ref in zip(grads, grads_ref):
                atol = 1e-5 * max(1.0, float(np.abs(g_ref).max()))
                np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=atol, err_msg=path)
        np.testing.assert_allclose(path_mean, mean, **TOL, err_msg=path)
        np.testing.assert_allclose(path_var, var, **TOL, err_msg=path)


@pytest.mark.parametrize("path", ["reference", "fused", "analytic"])
def test_ops_statistics_are_biased_batch_moments(path, rng):
    # NumPy float64 is the reference; the ops return the *biased* variance
    # (the fused kernel's Bessel correction must be undone).
    x = (rng.normal(size=(4, 3, 3, 4)) * 3.0 + 5.0).astype("float32")
    gamma, beta = tf.ones([4]), tf.zeros([4])
    if path == "fused":
        y, mean, var = batch_norm_ops.fused(tf.constant(x), gamma, beta, 1e-5)
    else:
        y, mean, var = getattr(batch_norm_ops, path)(tf.constant(x), gamma, beta, 3, 1e-5)
    flat = x.reshape(-1, 4).astype("float64")
    np.testing.assert_allclose(mean.numpy(), flat.mean(0), **TOL)
    np.testing.assert_allclose(var.numpy(), flat.var(0), **TOL)
    expected = (x - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5)
    np.testing.assert_allclose(y.numpy(), expected, **TOL)


@pytest.fixture
def chosen(monkeypatch):
    """Records which batch_norm_ops function each training call reaches."""
    calls = []
    for name in ("reference", "fused", "analytic"):
        original = getattr(batch_norm_ops, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(batch_norm_ops, name, spy)
    assert batch_norm_module.batch_norm_ops is batch_norm_ops
    return calls


@pytest.mark.parametrize("shape,axis,kwargs,use_mask,expected", [
    ((4, 3, 3, 4), -1, {}, False, "fused"),      # conv, channels last
    ((4, 6, 5), -1, {}, False, "fused"),         # rank 3, channels last
    ((16, 4), -1, {}, False, "analytic"),        # dense
    ((4, 3, 3, 4), 1, {}, False, "analytic"),    # channels first
    ((4, 6, 5), -1, {}, True, "reference"),      # masked sequence
    ((16, 4), -1, {"synchronized": True}, False, "reference"),
    ((4, 3, 3, 4), -1, {"synchronized": True}, False, "reference"),
])
def test_auto_choice(chosen, shape, axis, kwargs, use_mask, expected, rng):
    layer = BatchNorm(axis=axis, implementation="auto", **kwargs)
    x = rng.normal(size=shape).astype("float32")
    mask = rng.uniform(size=shape[:-1]) > 0.3 if use_mask else None
    layer(x, training=True, mask=mask)
    assert chosen == [expected]


@pytest.mark.parametrize("implementation", ["reference", "fused", "analytic"])
def test_forced_choice(chosen, implementation, rng):
    layer = BatchNorm(implementation=implementation)
    layer(rng.normal(size=(4, 3, 3, 4)).astype("float32"), training=True)
    assert chosen == [implementation]


def test_inference_uses_no_batch_path(chosen, rng):
    layer = BatchNorm()
    layer(rng.normal(size=(4, 3, 3, 4)).astype("float32"), training=False)
    assert chosen == []


@pytest.mark.parametrize("shape,implementation", [
    ((16, 4), "reference"), ((16, 4), "analytic"),
    ((4, 3, 3, 4), "reference"), ((4, 3, 3, 4), "analytic"), ((4, 3, 3, 4), "fused"),
])
def test_second_order_gradients_match_keras(shape, implementation, rng):
    # A gradient penalty differentiates the backward pass itself: the
    # analytic path's hand-written backward and the fused kernel's gradient
    # must be differentiable too. Same magnitude-scaled tolerance as above
    # (second derivatives are sums over m terms as well).
    x = tf.constant((rng.normal(size=shape) * 3.0 + 5.0).astype("float32"))
    results = []
    for layer in (BatchNorm(implementation=implementation), keras.layers.BatchNormalization()):
        layer.build(shape)
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(y * tf.sin(y))
            penalty = tf.reduce_sum(tf.square(inner.gradient(loss, x)))
        grads = outer.gradient(penalty, [x] + layer.trainable_variables)
        results.append([g.numpy() for g in grads])
    for g, g_ref in zip(*results):
        atol = 1e-5 * max(1.0, float(np.abs(g_ref).max()))
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=atol)

"""Masks and trainable=False.

References: NumPy float64 statistics over the unmasked rows only, and
keras.layers.BatchNormalization given the same mask. Keras divides by
count + 1e-7 (backend.epsilon()); with >= 10 unmasked rows per channel that
is a relative change below 1e-8, far inside the float32 rtol of 1e-5 used
here (a few ulps of reordered sums).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import BatchNorm

TOL = dict(rtol=1e-5, atol=1e-5)


def sequence_batch(rng, shape=(4, 6, 3)):
    """(batch, time, features) data with mean 5, scale 3, and a (batch, time) mask."""
    x = (rng.normal(size=shape) * 3.0 + 5.0).astype("float32")
    mask = rng.uniform(size=shape[:2]) > 0.4
    mask[:, 0] = True  # every sequence keeps at least one step
    mask[0, -1] = False  # and at least one step is masked
    # Masked steps carry outliers: leaking them into the statistics would show.
    x[~mask] += 100.0
    return x, mask


@pytest.mark.parametrize("implementation", ["auto", "reference"])
def test_mask_excludes_positions_from_statistics(implementation, rng):
    momentum = 0.5
    ours = BatchNorm(momentum=momentum, implementation=implementation)
    ref = keras.layers.BatchNormalization(momentum=momentum)
    expected_mean, expected_var = np.zeros(3), np.ones(3)
    for step in range(3):
        x, mask = sequence_batch(rng)
        with tf.GradientTape(persistent=True) as tape:
            xt = tf.constant(x)
            tape.watch(xt)
            y, y_ref = ours(xt, training=True, mask=mask), ref(xt, training=True, mask=mask)
            loss, loss_ref = tf.reduce_sum(y * tf.sin(y)), tf.reduce_sum(y_ref * tf.sin(y_ref))
        np.testing.assert_allclose(y.numpy(), y_ref.numpy(), **TOL)
        # Gradient tolerance scaled by magnitude: entries are cancelling sums
        # over the unmasked rows (see test_batch_norm_parity.py).
        g, g_ref = tape.gradient(loss, xt).numpy(), tape.gradient(loss_ref, xt).numpy()
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5 * max(1, np.abs(g_ref).max()))

        rows = x[mask].astype("float64")  # [unmasked, features]
        assert len(rows) >= 10
        # The outliers at masked steps would move the mean by > 1 if they leaked.
        assert np.all(np.abs(x.reshape(-1, 3).mean(0) - rows.mean(0)) > 1.0)
        expected_mean = momentum * expected_mean + (1 - momentum) * rows.mean(0)
        expected_var = momentum * expected_var + (1 - momentum) * rows.var(0)
        np.testing.assert_allclose(ours.moving_mean.numpy(), expected_mean, **TOL)
        np.testing.assert_allclose(ours.moving_variance.numpy(), expected_var, **TOL)
    np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(), **TOL)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), **TOL)


@pytest.mark.parametrize("fill", [np.nan, np.inf, 1e20])
@pytest.mark.parametrize("implementation", ["auto", "reference"])
def test_masked_positions_never_reach_the_statistics(fill, implementation, rng):
    # Padding may hold anything: NaN, inf, or a value whose square overflows
    # float32. Left out means selected away (Keras uses `where`), not
    # multiplied by 0 (0 * nan is nan).
    x, mask = sequence_batch(rng)
    x[~mask] = fill
    ours = BatchNorm(momentum=0.0, implementation=implementation)
    ref = keras.layers.BatchNormalization(momentum=0.0)
    y, y_ref = ours(x, training=True, mask=mask).numpy(), ref(x, training=True, mask=mask)
    rows = x[mask].astype("float64")
    np.testing.assert_allclose(ours.moving_mean.numpy(), rows.mean(0), **TOL)
    np.testing.assert_allclose(ours.moving_variance.numpy(), rows.var(0), **TOL)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), **TOL)
    assert np.isfinite(y[mask]).all()
    np.testing.assert_allclose(y[mask], y_ref.numpy()[mask], **TOL)
    if np.isfinite(fill):
        # A finite fill keeps the input gradient finite; loss over kept steps only.
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            kept = tf.boolean_mask(ours(xt, training=True, mask=mask), mask)
            loss = tf.reduce_sum(kept * tf.sin(kept))
        grad = tape.gradient(loss, xt).numpy()
        assert np.isfinite(grad).all()
        np.testing.assert_array_equal(grad[~mask], 0.0)


@pytest.mark.parametrize("dtype", ["bool", "int32", "float32", "uneven_floats"])
def test_mask_of_any_dtype_is_read_as_boolean(dtype, rng):
    # Keras casts the mask to bool: a nonzero entry keeps the position whole,
    # it does not weight it (0.2 and 1.7 both mean True).
    x, mask = sequence_batch(rng)
    if dtype == "uneven_floats":
        given = np.where(mask, rng.uniform(0.1, 2.0, mask.shape), 0.0).astype("float32")
    else:
        given = mask.astype(dtype)
    ours, ref = BatchNorm(momentum=0.0), keras.layers.BatchNormalization(momentum=0.0)
    y, y_ref = ours(x, training=True, mask=given), ref(x, training=True, mask=given)
    rows = x[mask].astype("float64")
    np.testing.assert_allclose(ours.moving_mean.numpy(), rows.mean(0), **TOL)
    np.testing.assert_allclose(ours.moving_variance.numpy(), rows.var(0), **TOL)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), **TOL)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), **TOL)


def test_mask_propagates_from_masking_layer(rng):
    # Keras hands the Masking layer's mask to the layer's `mask` argument.
    x, mask = sequence_batch(rng)
    x[~mask] = 0.0
    inputs = keras.Input((6, 3))
    bn = BatchNorm(momentum=0.0)
    model = keras.Model(inputs, bn(keras.layers.Masking(0.0)(inputs)))
    model(x, training=True)
    rows = x[mask].astype("float64")
    np.testing.assert_allclose(bn.moving_mean.numpy(), rows.mean(0), **TOL)
    np.testing.assert_allclose(bn.moving_variance.numpy(), rows.var(0), **TOL)


@pytest.mark.parametrize("shape,implementation", [
    ((16, 4), "auto"), ((4, 3, 3, 4), "auto"), ((4, 3, 3, 4), "fused"),
])
@pytest.mark.parametrize("how", ["constructor", "attribute"])
def test_trainable_false_is_inference(shape, implementation, how, rng):
    # Keras since TF 2.0: a frozen BatchNorm runs in inference mode even when
    # called with training=True, and leaves its statistics alone.
    kwargs = dict(momentum=0.9, epsilon=1e-5)
    ours = BatchNorm(implementation=implementation, **kwargs,
                     **({"trainable": False} if how == "constructor" else {}))
    ref = keras.layers.BatchNormalization(trainable=False, **kwargs)
    ours.build(shape)
    ref.build(shape)
    if how == "attribute":
        ours.trainable = False
    c = shape[-1]
    weights = [rng.uniform(0.5, 1.5, c), rng.normal(size=c), rng.normal(size=c) + 5.0,
               rng.uniform(4.0, 16.0, c)]
    weights = [w.astype("float32") for w in weights]
    ours.set_weights(weights)
    ref.set_weights(weights)
    x = (rng.normal(size=shape) * 3.0 + 5.0).astype("float32")
    y_train = ours(x, training=True).numpy()
    np.testing.assert_allclose(y_train, ours(x, training=False).numpy(), **TOL)
    np.testing.assert_allclose(y_train, ref(x, training=True).numpy(), **TOL)
    # NumPy inference formula with the moving statistics.
    gamma, beta, mean, var = weights
    np.testing.assert_allclose(y_train, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, **TOL)
    np.testing.assert_array_equal(ours.moving_mean.numpy(), weights[2])
    np.testing.assert_array_equal(ours.moving_variance.numpy(), weights[3])
    assert ours.trainable_weights == []

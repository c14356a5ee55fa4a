"""Regularizers and constraints on gamma / beta, against keras.layers.BatchNormalization.

Both layers get the same arguments and the same weights. Tolerances: the
penalties are float32 sums of 4 terms (rtol 1e-6, a few ulps; NumPy float64 is
checked too); after an optimizer step the weights are one float32 update of the
same gradients (which agree to the parity tests' 1e-5), so rtol = atol = 1e-5.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import BatchNorm

TOL = dict(rtol=1e-5, atol=1e-5)
C = 4


def make_pair(rng, **kwargs):
    ours, ref = BatchNorm(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build((None, C))
    ref.build((None, C))
    # gamma and beta with both signs, so L1 and NonNeg have something to do.
    weights = {"gamma": rng.normal(size=C), "beta": rng.normal(size=C),
               "moving_mean": np.zeros(C), "moving_variance": np.ones(C)}
    values = [weights[w.path.split("/")[-1]].astype("float32") for w in ref.weights]
    ours.set_weights(values)
    ref.set_weights(values)
    return ours, ref


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_regularization_losses_match_keras(center, scale, rng):
    kwargs = dict(center=center, scale=scale, gamma_regularizer=keras.regularizers.L2(0.1),
                  beta_regularizer=keras.regularizers.L1(0.05))
    ours, ref = make_pair(rng, **kwargs)
    x = (rng.normal(size=(8, C)) * 3.0 + 5.0).astype("float32")
    ours(x, training=True)
    ref(x, training=True)
    # A disabled weight has no penalty (Keras creates no variable for it).
    assert len(ours.losses) == len(ref.losses) == int(center) + int(scale)
    np.testing.assert_allclose([float(v) for v in ours.losses],
                               [float(v) for v in ref.losses], rtol=1e-6)
    expected = 0.0
    if scale:
        expected += 0.1 * np.sum(ours.gamma.numpy().astype("float64") ** 2)
    if center:
        expected += 0.05 * np.sum(np.abs(ours.beta.numpy().astype("float64")))
    np.testing.assert_allclose(float(sum(ours.losses)), expected, rtol=1e-6)

    # Inside a model, the penalties reach model.losses, and their gradients
    # (what fit adds to the loss) are Keras's.
    grads = []
    for layer in (ours, ref):
        inputs = keras.Input((C,))
        model = keras.Model(inputs, layer(inputs))
        with tf.GradientTape() as tape:
            penalty = tf.add_n(model.losses)
        grads.append([g.numpy() for g in tape.gradient(penalty, layer.trainable_variables)])
    for g, g_ref in zip(*grads):
        np.testing.assert_allclose(g, g_ref, **TOL)


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_non_neg_constraint_after_optimizer_step(center, scale, rng):
    kwargs = dict(momentum=0.9, epsilon=1e-5, center=center, scale=scale,
                  gamma_constraint=keras.constraints.NonNeg(),
                  beta_constraint=keras.constraints.NonNeg())
    ours, ref = make_pair(rng, **kwargs)
    before = [v.numpy() for v in ours.trainable_variables]
    # Inputs and a random upstream gradient; one SGD step of rate 1 moves
    # gamma and beta by O(1) in both directions.
    x = tf.constant((rng.normal(size=(16, C)) * 3.0 + 5.0).astype("float32"))
    w = tf.constant(rng.normal(size=(16, C)).astype("float32"))
    unconstrained = []
    for layer in (ours, ref):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True) * w)
        grads = tape.gradient(loss, layer.trainable_variables)
        unconstrained.append([b - g.numpy() for b, g in zip(before, grads)])
        keras.optimizers.SGD(learning_rate=1.0).apply_gradients(
            zip(grads, layer.trainable_variables))
    for v, v_ref, free in zip(ours.trainable_variables, ref.trainable_variables,
                              unconstrained[1]):
        # The step pushed some entries below zero; the constraint clipped them.
        assert free.min() < -0.1, v.path
        np.testing.assert_allclose(v.numpy(), np.maximum(free, 0.0), **TOL, err_msg=v.path)
        np.testing.assert_allclose(v.numpy(), v_ref.numpy(), **TOL, err_msg=v.path)
        assert v.numpy().min() == 0.0
    for u, u_ref in zip(*unconstrained):
        np.testing.assert_allclose(u, u_ref, **TOL)


def test_constraint_applied_by_fit(rng):
    # The same through compile / fit: the optimizer Keras builds applies the
    # constraint of our layer's variables after each step.
    x = (rng.normal(size=(16, C)) * 3.0 + 5.0).astype("float32")
    target = rng.normal(size=(16, C)).astype("float32") * 5.0 - 3.0
    results = []
    for make in (BatchNorm, keras.layers.BatchNormalization):
        layer = make(beta_constraint="non_neg", gamma_constraint="non_neg")
        model = keras.Sequential([keras.Input((C,)), layer])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
        model.fit(x, target, batch_size=16, epochs=2, verbose=0, shuffle=False)
        results.append([v.numpy() for v in model.trainable_variables])
    for v, v_ref in zip(*results):
        assert v.min() >= 0.0
        np.testing.assert_allclose(v, v_ref, **TOL)
    assert min(float(v.min()) for v in results[0]) == 0.0  # the constraint was active

"""BatchNorm under mixed precision, against Keras's layer under the same policy.

Tolerances. Both layers compute in float32 from the same half-precision
inputs and round their float32 results (which agree to ~1e-6) to the compute
dtype once, so two outputs can land on neighbouring half values: one ulp,
relative 2^-10 ~ 1e-3 for float16 (11 significant bits) and 2^-7 ~ 8e-3 for
bfloat16 (8 significant bits; half an ulp, 2^-8 ~ 4e-3, is the rounding of
one side alone). atol 1e-5 covers outputs near zero, where the float32
difference itself dominates. The statistics are float32 on both sides:
rtol = atol = 1e-5, as in the float32 tests.

Gradients (training mode). The loss is sum(float32(y) * w) with w already
rounded to the compute dtype, so both layers receive the same half-precision
upstream gradient dy = w, whatever their outputs' last bits. From there:
* dgamma and dbeta are float32 on both sides (float32 variables, float32
  backward from the same half x and dy): the float32 tolerance of
  test_batch_norm_parity.py, rtol = 1e-5 and atol = 1e-5 * max(1, max|ref|)
  (each entry is a reduction over m terms of the size of the whole gradient).
* dx is computed in float32 and rounded once to the compute dtype (the
  gradient of the layer's upcast), so on top of that float32 tolerance two
  results can land on neighbouring half values: rtol = one ulp, as for the
  outputs; atol as for dgamma (entries near zero are float32-difference
  dominated).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import BatchNorm

POLICIES = ["mixed_float16", "mixed_bfloat16"]
ULP = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
STAT_TOL = dict(rtol=1e-5, atol=1e-5)

CASES = [
    ((16, 4), -1, "auto"),
    ((16, 4), -1, "reference"),
    ((16, 4), -1, "analytic"),
    ((4, 3, 3, 4), -1, "auto"),
    ((4, 3, 3, 4), -1, "reference"),
    ((4, 3, 3, 4), -1, "analytic"),
    ((4, 3, 3, 4), -1, "fused"),
    ((4, 5, 6), 1, "analytic"),
]


def half_close(actual, expected, compute_dtype, what=""):
    np.testing.assert_allclose(np.asarray(actual, "float32"), np.asarray(expected, "float32"),
                               rtol=ULP[compute_dtype], atol=1e-5, err_msg=what)


@pytest.mark.parametrize("dtype_policy", POLICIES, indirect=True)
@pytest.mark.parametrize("shape,axis,implementation", CASES,
                         ids=[f"{len(s)}d-ax{a}-{i}" for s, a, i in CASES])
def test_mixed_precision_matches_keras(dtype_policy, shape, axis, implementation, rng):
    compute_dtype = keras.config.dtype_policy().compute_dtype
    kwargs = dict(axis=axis, momentum=0.9, epsilon=1e-5)
    ours = BatchNorm(implementation=implementation, **kwargs)
    ref = keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    ref.build(shape)
    c = shape[axis]
    weights = [rng.uniform(0.5, 1.5, c), rng.normal(size=c), rng.normal(size=c) + 4.0,
               rng.uniform(4.0, 16.0, c)]
    weights = [w.astype("float32") for w in weights]
    ours.set_weights(weights)
    ref.set_weights(weights)
    # All four weights are float32 state, whatever the compute dtype.
    assert [keras.backend.standardize_dtype(w.dtype) for w in ours.weights] == ["float32"] * 4

    for step in range(2):
        x = (rng.normal(size=shape) * 3.0 + 5.0).astype("float32")
        y, y_ref = ours(x, training=True), ref(x, training=True)
        assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
        half_close(y, y_ref, compute_dtype, f"training step {step}")
    for name in ("moving_mean", "moving_variance"):
        ours_stat, ref_stat = getattr(ours, name), getattr(ref, name)
        assert keras.backend.standardize_dtype(ours_stat.dtype) == "float32"
        np.testing.assert_allclose(ours_stat.numpy(), ref_stat.numpy(), **STAT_TOL, err_msg=name)

    x = (rng.normal(size=shape) * 3.0 + 5.0).astype("float32")
    y = ours(x, training=False)
    assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
    half_close(y, ref(x, training=False), compute_dtype, "inference")


@pytest.mark.parametrize("dtype_policy", POLICIES, indirect=True)
@pytest.mark.parametrize("shape,implementation", [
    ((16, 4), "auto"), ((4, 3, 3, 4), "reference"), ((4, 3, 3, 4), "analytic"),
    ((4, 3, 3, 4), "fused"),
])
def test_no_overflow_near_float16_max(dtype_policy, shape, implementation, rng):
    # float16 values in [56000, 64000] (max 65504): the deviations (~4000)
    # overflow float16 when squared, and so would the sum of the inputs.
    compute_dtype = keras.config.dtype_policy().compute_dtype
    x = (60000.0 + rng.uniform(-4000.0, 4000.0, size=shape)).astype("float16")
    layer = BatchNorm(momentum=0.5, implementation=implementation)
    y = layer(tf.constant(x), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
    assert np.isfinite(np.asarray(y, "float32")).all()
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    assert mean.dtype == var.dtype == np.float32
    assert np.isfinite(mean).all() and np.isfinite(var).all()

    # NumPy float64 reference on the inputs as the layer sees them (cast to
    # the compute dtype); moving = 0.5 * initial (0 / 1) + 0.5 * batch.
    seen = tf.cast(x, compute_dtype).numpy().astype("float64").reshape(-1, shape[-1])
    np.testing.assert_allclose(mean, 0.5 * seen.mean(0), rtol=1e-5)
    np.testing.assert_allclose(var, 0.5 + 0.5 * seen.var(0), rtol=1e-5)
    expected = (seen - seen.mean(0)) / np.sqrt(seen.var(0) + 1e-3)
    # One rounding of a float32 result to the compute dtype: half an ulp.
    np.testing.assert_allclose(np.asarray(y, "float64").reshape(-1, shape[-1]), expected,
                               rtol=ULP[compute_dtype] / 2, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_non_float32_variable_dtype_matches_keras(dtype, rng):
    # A drop-in must accept the `dtype` base-layer argument as Keras does.
    x = (rng.normal(size=(16, 4)) * 3.0 + 5.0).astype("float32")
    ours = BatchNorm(dtype=dtype)
    ref = keras.layers.BatchNormalization(dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float64" else dict(rtol=ULP[dtype], atol=1e-3)
    for training in (True, False):
        y, y_ref = ours(x, training=training), ref(x, training=training)
        assert y.dtype == y_ref.dtype
        np.testing.assert_allclose(np.asarray(y, "float64"), np.asarray(y_ref, "float64"), **tol)
    np.testing.assert_allclose(np.asarray(ours.moving_variance, "float64"),
                               np.asarray(ref.moving_variance, "float64"), **tol)


def _random_weights(layer, rng):
    """gamma, beta, moving mean, moving variance for the weights `layer` has."""
    by_name = {"gamma": lambda c: rng.uniform(0.5, 1.5, c), "beta": lambda c: rng.normal(size=c),
               "moving_mean": lambda c: rng.normal(size=c) + 4.0,
               "moving_variance": lambda c: rng.uniform(4.0, 16.0, c)}
    return [by_name[w.path.split("/")[-1]](w.shape[0]).astype("float32") for w in layer.weights]


def _grad_step(layer, x, w):
    """Training-mode output and d(sum(float32(y) * w)) / (x, gamma, beta)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * w)
    return y, tape.gradient(loss, [x] + layer.trainable_variables)


HYPER = {"keras": dict(momentum=0.99, epsilon=1e-3), "book": dict(momentum=0.9, epsilon=1e-5)}
# (shape, axis, hyper, center, scale, implementation, mode). "auto" takes the
# fused kernel on channels-last rank >= 3 and the analytic path otherwise
# (test_batch_norm_paths.py checks the choice).
GRAD_CASES = [
    ((4, 3, 3, 4), -1, "keras", True, True, "auto", "eager"),
    ((4, 3, 3, 4), -1, "book", False, True, "fused", "eager"),
    ((4, 5, 3), -1, "book", True, False, "auto", "eager"),
    ((4, 5, 3), -1, "keras", True, True, "reference", "eager"),
    ((16, 4), -1, "keras", True, True, "auto", "eager"),
    ((16, 4), -1, "book", False, False, "analytic", "eager"),
    ((4, 3, 3, 4), 1, "book", True, True, "auto", "eager"),
    ((4, 3, 3, 4), -1, "book", True, True, "auto", "function"),
    ((16, 4), -1, "keras", False, True, "analytic", "function"),
    ((4, 3, 3, 4), -1, "book", True, True, "fused", "jit"),
    ((16, 4), -1, "book", True, True, "auto", "jit"),
]


@pytest.mark.parametrize("dtype_policy", POLICIES, indirect=True)
@pytest.mark.parametrize(
    "shape,axis,hyper,center,scale,implementation,mode", GRAD_CASES,
    ids=[f"{len(s)}d-ax{a}-{h}-c{int(c)}s{int(sc)}-{i}-{m}"
         for s, a, h, c, sc, i, m in GRAD_CASES])
def test_mixed_precision_gradients_match_keras(dtype_policy, shape, axis, hyper, center, scale,
                                               implementation, mode, rng):
    compute_dtype = keras.config.dtype_policy().compute_dtype
    kwargs = dict(axis=axis, center=center, scale=scale, **HYPER[hyper])
    ours = BatchNorm(implementation=implementation, **kwargs)
    ref = keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    ref.build(shape)
    weights = _random_weights(ref, rng)
    ours.set_weights(weights)
    ref.set_weights(weights)
    assert [keras.backend.standardize_dtype(v.dtype) for v in ours.weights] == \
        ["float32"] * len(ours.weights)
    assert len(ours.weights) == 2 + int(center) + int(scale)
    steps = [_grad_step if mode == "eager" else
             tf.function(_grad_step, jit_compile=(mode == "jit")) for _ in range(2)]

    for step in range(2):
        x = tf.constant((rng.normal(size=shape) * 3.0 + 5.0).astype("float32"))
        w = tf.cast(tf.cast(rng.normal(size=shape), compute_dtype), tf.float32)
        (y, grads), (y_ref, grads_ref) = steps[0](ours, x, w), steps[1](ref, x, w)
        assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
        half_close(y, y_ref, compute_dtype, f"training output, step {step}")
        assert len(grads) == len(grads_ref) == 1 + int(center) + int(scale)
        for i, (g, g_ref) in enumerate(zip(grads, grads_ref)):
            # dx is float32 (x is); dgamma / dbeta are float32 (the variables are).
            assert keras.backend.standardize_dtype(g.dtype) == "float32"
            g, g_ref = g.numpy(), g_ref.numpy()
            atol = 1e-5 * max(1.0, float(np.abs(g_ref).max()))
            rtol = ULP[compute_dtype] if i == 0 else 1e-5
            np.testing.assert_allclose(g, g_ref, rtol=rtol, atol=atol,
                                       err_msg=f"step {step}, gradient {i}")
    assert [keras.backend.standardize_dtype(v.dtype) for v in ours.weights] == \
        ["float32"] * len(ours.weights)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(ref, name).numpy(),
                                   **STAT_TOL, err_msg=name)

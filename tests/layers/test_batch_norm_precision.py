"""BatchNorm under mixed precision, against Keras's layer under the same policy.

Tolerances. Both layers compute in float32 from the same half-precision
inputs and round their float32 results (which agree to ~1e-6) to the compute
dtype once, so two outputs can land on neighbouring half values: one ulp,
relative 2^-10 ~ 1e-3 for float16 (11 significant bits) and 2^-7 ~ 8e-3 for
bfloat16 (8 significant bits; half an ulp, 2^-8 ~ 4e-3, is the rounding of
one side alone). atol 1e-5 covers outputs near zero, where the float32
difference itself dominates. The statistics are float32 on both sides:
rtol = atol = 1e-5, as in the float32 tests.
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

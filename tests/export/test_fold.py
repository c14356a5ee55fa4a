"""`fold_batchnorm` on every registered model: same inference outputs, fewer BatchNorms."""

import keras
import numpy as np
import pytest

from export_helpers import randomize_batch_norms
from kerazoo import models
from kerazoo.export import count_batch_norms, fold_batchnorm

# Deeper variants of resnet50 / densenet121: the same block classes and the
# same pairs, only more of them; each takes 20-30 s to build and fold on two
# busy cores, so they run with `-m slow`.
DEEP = {"resnet101", "resnet152", "densenet169", "densenet201"}
# Models without any conv/dense -> BN pair.
NOTHING_TO_FOLD = {"lenet"}
SHAPE = (32, 32, 1)  # small, and above every model's minimum side (densenet: 29)


def _params():
    for name in models.list_models():
        marks = [pytest.mark.slow] if name in DEEP else []
        yield pytest.param(name, "kerazoo", id=name, marks=marks)
    yield pytest.param("resnet18", "keras", id="resnet18-keras_bn")
    yield pytest.param("lenet_bn", "keras", id="lenet_bn-keras_bn")


@pytest.mark.parametrize("name,norm", list(_params()))
def test_fold_matches_unfolded(name, norm):
    model = randomize_batch_norms(models.create(name, num_classes=10, input_shape=SHAPE,
                                                norm=norm))
    before = [w.numpy() for w in model.weights]
    folded = fold_batchnorm(model)
    x = np.random.default_rng(0).uniform(0.0, 1.0, (3, *SHAPE)).astype("float32")
    expected = model(x, training=False).numpy()
    # float32 round-off of W*s vs W then s, summed over up to 152 layers' worth
    # of accumulations; logits here are O(1-10).
    np.testing.assert_allclose(folded(x, training=False).numpy(), expected, atol=1e-4, rtol=0)
    if name in NOTHING_TO_FOLD:
        assert count_batch_norms(folded) == count_batch_norms(model)
    else:
        assert count_batch_norms(folded) < count_batch_norms(model)
    # The original is untouched (the copy owns its weights).
    for w, value in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), value)


def test_fold_removes_every_pair_of_lenet_bn_and_resnet18():
    lenet = fold_batchnorm(models.create("lenet_bn", input_shape=(28, 28, 1)))
    assert count_batch_norms(lenet) == 0
    assert len(lenet.layers) == len(models.create("lenet_bn").layers) - 4  # BN layers dropped
    # resnet18 (book): every BN follows a conv, the shortcut has none.
    assert count_batch_norms(fold_batchnorm(models.create("resnet18", input_shape=SHAPE))) == 0
    # densenet: only the stem's BN follows a conv; BN -> ReLU -> conv blocks stay.
    dense = models.create("densenet", input_shape=SHAPE)
    assert count_batch_norms(fold_batchnorm(dense)) == count_batch_norms(dense) - 1


def test_fold_keeps_conv_bn_pairs_with_an_activation_or_a_second_reader():
    inputs = keras.Input((8, 8, 2))
    a = keras.layers.Conv2D(4, 3, activation="relu")(inputs)  # activation before the BN
    a = keras.layers.BatchNormalization()(a)
    b = keras.layers.Conv2D(4, 3)(inputs)  # output read by the BN and the Add
    c = keras.layers.BatchNormalization()(b)
    outputs = keras.layers.Concatenate()([a, keras.layers.Add()([b, c])])
    model = randomize_batch_norms(keras.Model(inputs, outputs))
    folded = fold_batchnorm(model)
    assert count_batch_norms(folded) == 2
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5)


def test_fold_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = randomize_batch_norms(models.create("resnet18", input_shape=SHAPE))
    finally:
        keras.config.set_dtype_policy("float32")
    folded = fold_batchnorm(model)
    assert folded.get_layer("logits").dtype_policy.name == "float32"
    x = np.random.default_rng(2).uniform(size=(2, *SHAPE)).astype("float32")
    # float16 activations: ~1e-3 relative round-off per layer either way.
    np.testing.assert_allclose(folded(x, training=False).numpy(),
                               model(x, training=False).numpy(), atol=5e-2)


def test_fold_refuses_a_subclassed_model():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="needs a Functional model"):
        fold_batchnorm(Net())

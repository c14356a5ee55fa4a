"""Serialization: .keras round trip in a fresh process, get_config round trip.

The saved model is reloaded in a new interpreter that only does
`import kerazoo` (no custom_objects), which is how a user would load it; the
inference outputs must be bit-identical (same float32 weights, same ops, same
machine), so the check is exact equality.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import (BatchNorm, Bottleneck, ConvBlock, DenseBlock, PaddedConv2D,
                            Residual, TransitionBlock)


def build_model():
    inputs = keras.Input((8, 8, 3))
    x = BatchNorm(name="bn_default")(inputs)
    # bn_book keeps center=True: its beta_constraint needs a beta to act on.
    x = BatchNorm(momentum=0.9, epsilon=1e-5, implementation="analytic",
                  gamma_regularizer="l2", beta_constraint="non_neg", name="bn_book")(x)
    x = BatchNorm(center=False, momentum=0.5, name="bn_no_center")(x)
    x = BatchNorm(axis=1, scale=False, implementation="reference", name="bn_first")(x)
    x = PaddedConv2D(4, 3, pad=1, strides=2, name="padded")(x)        # (4, 4, 4)
    x = Residual(4, name="res")(x)
    x = Residual(6, use_1x1conv=True, strides=2, shortcut_norm=True, name="res_down")(x)
    x = Bottleneck(2, name="bottleneck_down")(x)                      # shortcut: 6 -> 8
    x = Bottleneck(2, name="bottleneck_same")(x)                      # no shortcut
    x = ConvBlock(4, bottleneck_channels=8, name="conv_block")(x)
    x = DenseBlock(2, 3, norm="keras", name="dense")(x)               # 4 + 2 * 3 = 10
    x = TransitionBlock(5, name="transition")(x)                      # (1, 1, 5)
    return keras.Model(inputs, x)


LOAD_SCRIPT = r'''
import sys
import numpy as np
import keras
import kerazoo  # registers the layers; nothing else

model = keras.saving.load_model(sys.argv[1] if len(sys.argv) > 1 else "model.keras")
data = np.load("io.npz")
y = model(data["x"], training=False).numpy()
np.testing.assert_array_equal(y, data["y"])
names = {layer.name: type(layer).__module__ + "." + type(layer).__name__ for layer in model.layers}
assert names["bn_book"] == "kerazoo.layers.batch_norm.BatchNorm", names
assert names["res_down"] == "kerazoo.layers.blocks.Residual", names
book = model.get_layer("bn_book")
np.testing.assert_array_equal(book.moving_mean.numpy(), data["bn_book_mean"])
np.testing.assert_array_equal(book.beta.numpy(), data["bn_book_beta"])
# The regularizer and the constraint came back attached to their weights.
assert isinstance(book.beta.constraint, keras.constraints.NonNeg), book.beta.constraint
np.testing.assert_array_equal(book.beta.constraint(np.array([-1.0, 2.0], "float32")), [0.0, 2.0])
assert model.get_layer("bn_no_center").beta is None
np.testing.assert_allclose(float(sum(model.losses)), float(data["losses"]), rtol=1e-6)
print("LOAD OK", model.count_params())
'''


def test_keras_file_round_trip_in_fresh_process(tmp_path, run_script, rng):
    model = build_model()
    x = (rng.normal(size=(4, 8, 8, 3)) * 3.0 + 5.0).astype("float32")
    for _ in range(3):  # move the statistics away from their initial values
        model(x + rng.normal(size=x.shape).astype("float32"), training=True)
    book = model.get_layer("bn_book")
    # One optimizer step moves beta from 0 to (-0.5, 0.5, -0.5); the NonNeg
    # constraint clips the negative entries, and beta then shifts the outputs.
    with tf.GradientTape() as tape:
        push = tf.reduce_sum(book.beta * tf.constant([1.0, -1.0, 1.0]))
    keras.optimizers.SGD(learning_rate=0.5).apply_gradients(
        zip(tape.gradient(push, [book.beta]), [book.beta]))
    np.testing.assert_array_equal(book.beta.numpy(), [0.0, 0.5, 0.0])
    y = model(x, training=False).numpy()
    assert not np.allclose(book.moving_mean.numpy(), 0.0)
    assert model.losses  # the gamma_regularizer's penalty
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "io.npz", x=x, y=y, bn_book_mean=book.moving_mean.numpy(),
             bn_book_beta=book.beta.numpy(), losses=float(sum(model.losses)))
    out = run_script(LOAD_SCRIPT)
    assert f"LOAD OK {model.count_params()}" in out


LAYERS = [
    lambda: BatchNorm(),
    lambda: BatchNorm(axis=1, momentum=0.9, epsilon=1e-5, center=False, scale=False,
                      beta_initializer="ones", gamma_initializer=keras.initializers.Constant(2.0),
                      moving_mean_initializer="random_normal",
                      moving_variance_initializer="ones", beta_regularizer="l1",
                      gamma_regularizer=keras.regularizers.L2(0.1),
                      beta_constraint="non_neg", gamma_constraint=keras.constraints.MaxNorm(2),
                      synchronized=True, implementation="analytic", name="bn", trainable=False),
    lambda: PaddedConv2D(4, 3, pad=1, strides=2, use_bias=False),
    lambda: Residual(6, use_1x1conv=True, strides=2, shortcut_norm=True, norm="keras",
                     momentum=0.8, epsilon=1e-4, use_bias=False),
    lambda: Bottleneck(16, strides=2),
    lambda: ConvBlock(4, bottleneck_channels=8),
    lambda: DenseBlock(2, 10, bottleneck_channels=12, norm="keras"),
    lambda: TransitionBlock(10, momentum=0.95),
]


@pytest.mark.parametrize("make", LAYERS, ids=["bn_default", "bn_custom", "padded_conv",
                                              "residual", "bottleneck", "conv_block",
                                              "dense_block", "transition"])
def test_get_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # The registered name is what a .keras file stores.
    assert keras.saving.get_registered_name(type(layer)).startswith("kerazoo>")


def test_config_keys_mirror_keras():
    # Drop-in: every Keras argument except renormalization, plus `implementation`.
    ours = set(BatchNorm().get_config())
    theirs = set(keras.layers.BatchNormalization().get_config())
    assert ours == (theirs - {"renorm", "renorm_clipping", "renorm_momentum"}) | {"implementation"}

"""The book's blocks (sections 5.11-5.12) and the symmetric-padding conv.

References: the book's printed shapes, NumPy for the padded convolution,
parameter counts computed by hand from the architecture, and the same blocks
built on keras.layers.BatchNormalization.
"""

import keras
import numpy as np
import pytest

from kerazoo.layers import (BatchNorm, Bottleneck, ConvBlock, DenseBlock, PaddedConv2D,
                            Residual, TransitionBlock)


def conv_params(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn_params(c):
    return 4 * c  # gamma, beta, moving mean, moving variance


def random_input(rng, shape):
    return (rng.normal(size=shape) * 3.0 + 5.0).astype("float32")


@pytest.mark.parametrize("make,in_shape,out_shape", [
    (lambda: Residual(3), (4, 6, 6, 3), (4, 6, 6, 3)),
    (lambda: Residual(6, use_1x1conv=True, strides=2), (4, 6, 6, 3), (4, 3, 3, 6)),
    (lambda: Residual(6, use_1x1conv=True, strides=2, shortcut_norm=True), (4, 7, 7, 3),
     (4, 4, 4, 6)),
    (lambda: DenseBlock(2, 10), (4, 8, 8, 3), (4, 8, 8, 23)),
    (lambda: TransitionBlock(10), (4, 8, 8, 23), (4, 4, 4, 10)),
    (lambda: Bottleneck(16), (4, 8, 8, 3), (4, 8, 8, 64)),
    (lambda: Bottleneck(16, strides=2), (4, 8, 8, 64), (4, 4, 4, 64)),
    (lambda: ConvBlock(5), (4, 6, 6, 3), (4, 6, 6, 5)),
    (lambda: ConvBlock(5, bottleneck_channels=8), (4, 6, 6, 3), (4, 6, 6, 5)),
], ids=["residual", "residual_1x1_s2", "residual_odd_s2", "dense", "transition",
        "bottleneck", "bottleneck_s2", "conv_block", "conv_block_bc"])
def test_block_shapes(make, in_shape, out_shape, rng):
    block = make()
    assert tuple(block.compute_output_shape(in_shape)) == out_shape
    x = random_input(rng, in_shape)
    assert tuple(block(x, training=True).shape) == out_shape
    assert tuple(block(x, training=False).shape) == out_shape
    # compute_output_shape also with an unknown batch size.
    assert tuple(block.compute_output_shape((None,) + in_shape[1:])) == (None,) + out_shape[1:]


def test_dense_then_transition_as_in_the_book(rng):
    x = random_input(rng, (4, 8, 8, 3))
    y = DenseBlock(2, 10)(x)
    assert tuple(y.shape) == (4, 8, 8, 23)
    assert tuple(TransitionBlock(10)(y).shape) == (4, 4, 4, 10)


@pytest.mark.parametrize("num_channels,strides,pattern", [
    (6, 1, "num_channels=6"), (3, 2, "strides=2"),
])
def test_residual_without_1x1_rejects_shape_change(num_channels, strides, pattern, rng):
    block = Residual(num_channels, strides=strides)
    with pytest.raises(ValueError, match=pattern):
        block.build((4, 6, 6, 3))
    with pytest.raises(ValueError, match=pattern):
        Residual(num_channels, strides=strides)(random_input(rng, (4, 6, 6, 3)))


def numpy_conv2d(x, kernel, bias, stride, pad):
    """Cross-correlation with `pad` zeros on every spatial side, float64."""
    x = np.pad(x.astype("float64"), [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    k = kernel.shape[0]
    n, h, w, _ = x.shape
    out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
    y = np.zeros((n, out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            y[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return y + bias


def test_padded_conv_is_symmetric(rng):
    # The book's (Gluon's) padding=1 at stride 2 on an even input pads (1, 1);
    # Keras's "same" pads (0, 1). Same 3x3 output, different values.
    x = random_input(rng, (2, 6, 6, 2))
    conv = PaddedConv2D(1, 3, pad=1, strides=2)
    y = conv(x).numpy()
    assert y.shape == (2, 3, 3, 1)
    kernel, bias = (w.numpy() for w in conv.weights)
    # float32 convolution of 18 products of O(10) terms vs float64: ~1e-5 relative.
    np.testing.assert_allclose(y, numpy_conv2d(x, kernel, bias, 2, 1), rtol=1e-5, atol=1e-4)

    same = keras.layers.Conv2D(1, 3, strides=2, padding="same")
    same.build(x.shape)
    same.set_weights([kernel, bias])
    y_same = same(x).numpy()
    assert y_same.shape == y.shape
    assert np.abs(y_same - y).max() > 1e-2
    # Keras's "same" is the asymmetric (0, 1) padding.
    np.testing.assert_allclose(
        y_same, numpy_conv2d(np.pad(x, [(0, 0), (0, 1), (0, 1), (0, 0)]), kernel, bias, 2, 0),
        rtol=1e-5, atol=1e-4)


def test_padded_conv_output_shape():
    conv = PaddedConv2D(8, 7, pad=3, strides=2)
    assert tuple(conv.compute_output_shape((None, 96, 96, 3))) == (None, 48, 48, 8)


EXPECTED_PARAMS = {
    # Residual(3) on 3 channels: two 3x3 convs with bias, two BNs.
    "residual": (lambda **kw: Residual(3, **kw), (2, 6, 6, 3),
                 2 * conv_params(3, 3, 3) + 2 * bn_params(3)),
    "residual_1x1": (lambda **kw: Residual(6, use_1x1conv=True, strides=2, **kw), (2, 6, 6, 3),
                     conv_params(3, 3, 6) + conv_params(3, 6, 6) + conv_params(1, 3, 6)
                     + 2 * bn_params(6)),
    # Bottleneck(16) on 3 channels: 1x1 3->16, 3x3 16->16, 1x1 16->64, three
    # BNs, plus the downsample 1x1 3->64 and its BN.
    "bottleneck": (lambda **kw: Bottleneck(16, **kw), (2, 6, 6, 3),
                   conv_params(1, 3, 16) + conv_params(3, 16, 16) + conv_params(1, 16, 64)
                   + bn_params(16) * 2 + bn_params(64) + conv_params(1, 3, 64) + bn_params(64)),
    "conv_block_bc": (lambda **kw: ConvBlock(5, bottleneck_channels=8, **kw), (2, 6, 6, 3),
                      bn_params(3) + conv_params(1, 3, 8) + bn_params(8) + conv_params(3, 8, 5)),
    "dense": (lambda **kw: DenseBlock(2, 10, **kw), (2, 8, 8, 3),
              bn_params(3) + conv_params(3, 3, 10) + bn_params(13) + conv_params(3, 13, 10)),
    "transition": (lambda **kw: TransitionBlock(10, **kw), (2, 8, 8, 23),
                   bn_params(23) + conv_params(1, 23, 10)),
}


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_parameter_counts(name, rng):
    make, shape, expected = EXPECTED_PARAMS[name]
    counts = {}
    for norm in ("kerazoo", "keras"):
        block = make(norm=norm)
        block(random_input(rng, shape))
        counts[norm] = block.count_params()
    assert counts["kerazoo"] == counts["keras"] == expected


def test_bottleneck_keeps_identity_shortcut_when_shapes_match(rng):
    block = Bottleneck(16)
    block(random_input(rng, (2, 6, 6, 64)))
    assert block.count_params() == (conv_params(1, 64, 16) + conv_params(3, 16, 16)
                                    + conv_params(1, 16, 64) + 2 * bn_params(16) + bn_params(64))


def test_norm_choice_builds_that_layer():
    assert all(isinstance(layer, BatchNorm) for layer in Residual(3).body[1::3])
    keras_bns = [layer for layer in Residual(3, norm="keras").body
                 if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(keras_bns) == 2


def moving_means(layer):
    return [w for w in layer.non_trainable_weights if w.path.endswith("moving_mean")]


BLOCKS = {
    "residual": (lambda: Residual(3), (4, 6, 6, 3)),
    "residual_1x1": (lambda: Residual(6, use_1x1conv=True, strides=2, shortcut_norm=True),
                     (4, 6, 6, 3)),
    "bottleneck": (lambda: Bottleneck(4, strides=2), (4, 6, 6, 3)),
    "conv_block_bc": (lambda: ConvBlock(5, bottleneck_channels=8), (4, 6, 6, 3)),
    "dense": (lambda: DenseBlock(2, 10), (4, 8, 8, 3)),
    "transition": (lambda: TransitionBlock(10), (4, 8, 8, 23)),
}


@pytest.mark.parametrize("name", list(BLOCKS))
@pytest.mark.parametrize("through_model", [False, True])
def test_training_flag_reaches_batch_norms(name, through_model, rng):
    make, shape = BLOCKS[name]
    block = make()
    x = random_input(rng, shape)
    if through_model:  # the functional model hands `training` down to the block
        inputs = keras.Input(shape[1:])
        block = keras.Model(inputs, block(inputs))
    y_infer = block(x, training=False).numpy()
    means = moving_means(block)
    assert means and all(np.all(m.numpy() == 0.0) for m in means)
    y_train = block(x, training=True).numpy()
    # Batch statistics (mean 5, scale 3 at the input) vs the initial moving
    # ones (0, 1): the outputs are far apart, and every BN updated its state.
    assert np.abs(y_train - y_infer).max() > 0.1
    assert all(np.any(m.numpy() != 0.0) for m in means)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_serializes(name, rng):
    make, shape = BLOCKS[name]
    block = make()
    x = random_input(rng, shape)
    block(x)
    clone = type(block).from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    clone(x)
    clone.set_weights(block.get_weights())
    np.testing.assert_array_equal(clone(x, training=False).numpy(),
                                  block(x, training=False).numpy())

"""Block outputs recomputed from the blocks' own weights with plain TF ops.

Each block's documented op order (blocks.py docstrings, book 5.11-5.12) is
written out again below, in float64, from the block's sub-layer weights (conv
kernels and biases, BN gamma / beta / moving statistics), in inference mode
(moving statistics) and in training mode (biased batch statistics of each BN's
own input, and the moving-average update they imply). Every BN gets random
gamma, beta and moving statistics and every conv a random bias, so a wrong
order (BN and ReLU swapped, a missing ReLU, the shortcut left out) changes the
output by O(1); `test_references_detect_wrong_order` proves that for each
mutation.

Tolerance: rtol = atol = 1e-5 against the float64 recomputation. The block
runs in float32 (unit roundoff 6e-8); its values are O(1)-O(10) and each
output is at most two convolutions (sums of <= 54 products) and two
normalizations away from the input, a few hundred roundings, well under 1e-5
(measured worst: 3e-6 absolute, on outputs up to ~17).
"""

import numpy as np
import pytest
import tensorflow as tf

from kerazoo.layers import ConvBlock, DenseBlock, Residual, TransitionBlock

TOL = dict(rtol=1e-5, atol=1e-5)
MOMENTUM, EPSILON = 0.8, 1e-3  # not the blocks' defaults, so they must be passed down


def f64(v):
    return tf.cast(tf.convert_to_tensor(v), tf.float64)


class Recompute:
    """Plain-TF float64 versions of the sub-layers, reading their weights.

    In training mode `bn` records each BN's batch statistics (by weight path)
    so the moving-average update can be checked too. `mutant` names one wrong
    op order to apply instead of the documented one.
    """

    def __init__(self, training, epsilon, mutant=None):
        self.training, self.epsilon, self.mutant, self.stats = training, epsilon, mutant, {}

    def conv(self, layer, x):
        p = layer.pad
        x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        y = tf.nn.conv2d(x, f64(layer.kernel), strides=layer.strides, padding="VALID")
        return y + f64(layer.bias) if layer.use_bias else y

    def bn(self, layer, x):
        if self.training:
            mean, var = tf.nn.moments(x, axes=[0, 1, 2])  # biased, as the book
            self.stats[layer.moving_mean.path] = mean
            self.stats[layer.moving_variance.path] = var
        else:
            mean, var = f64(layer.moving_mean), f64(layer.moving_variance)
        return f64(layer.gamma) * (x - mean) / tf.sqrt(var + self.epsilon) + f64(layer.beta)

    def bn_relu(self, layer, x):
        if self.mutant == "relu_before_bn":
            return self.bn(layer, tf.nn.relu(x))
        if self.mutant == "no_relu":
            return self.bn(layer, x)
        return tf.nn.relu(self.bn(layer, x))

    def residual(self, block, x):
        conv1, bn1, _, conv2, bn2 = block.body
        y = self.bn(bn2, self.conv(conv2, self.bn_relu(bn1, self.conv(conv1, x))))
        shortcut = x
        if block.use_1x1conv:
            shortcut = self.conv(block.shortcut[0], x)
            if block.shortcut_norm:
                shortcut = self.bn(block.shortcut[1], shortcut)
        if self.mutant == "no_shortcut":
            return tf.nn.relu(y)
        if self.mutant == "no_final_relu":
            return y + shortcut
        return tf.nn.relu(y + shortcut)

    def conv_block(self, block, x):
        chain = block.chain
        if block.bottleneck_channels:
            bn0, _, conv0 = chain[:3]
            x, chain = self.conv(conv0, self.bn_relu(bn0, x)), chain[3:]
        bn, _, conv = chain
        return self.conv(conv, self.bn_relu(bn, x))

    def dense_block(self, block, x):
        for conv_block in block.convs:
            y = self.conv_block(conv_block, x)
            x = tf.concat([y, x] if self.mutant == "concat_swapped" else [x, y], axis=-1)
        return x

    def transition_block(self, block, x):
        bn, _, conv, _ = block.chain
        y = self.conv(conv, self.bn_relu(bn, x))
        return tf.nn.avg_pool2d(y, ksize=2, strides=2, padding="VALID")


def randomize(block, rng):
    """Random BN statistics and affine weights, random conv biases."""
    for w in block.weights:
        name, c = w.path.split("/")[-1], w.shape[-1]
        values = {"gamma": lambda: rng.uniform(0.5, 1.5, c),
                  "beta": lambda: rng.normal(size=c),
                  "moving_mean": lambda: rng.normal(size=c) * 2.0 + 3.0,
                  "moving_variance": lambda: rng.uniform(0.5, 2.0, c) * 4.0,
                  "bias": lambda: rng.normal(size=c) * 0.5}.get(name)
        if values is not None:
            w.assign(values().astype("float32"))


BLOCKS = {
    "residual": (lambda: Residual(3, momentum=MOMENTUM, epsilon=EPSILON), (4, 6, 6, 3),
                 "residual"),
    "residual_1x1_s1": (lambda: Residual(5, use_1x1conv=True, momentum=MOMENTUM,
                                         epsilon=EPSILON), (4, 6, 6, 3), "residual"),
    "residual_1x1_s2": (lambda: Residual(6, use_1x1conv=True, strides=2, momentum=MOMENTUM,
                                         epsilon=EPSILON), (4, 6, 6, 3), "residual"),
    "residual_1x1_s2_odd_bn": (lambda: Residual(6, use_1x1conv=True, strides=2,
                                                shortcut_norm=True, momentum=MOMENTUM,
                                                epsilon=EPSILON), (4, 7, 7, 3), "residual"),
    "residual_book_defaults": (lambda: Residual(6, use_1x1conv=True, strides=2), (4, 6, 6, 3),
                               "residual"),
    "conv_block": (lambda: ConvBlock(5, momentum=MOMENTUM, epsilon=EPSILON), (4, 6, 6, 3),
                   "conv_block"),
    "conv_block_bc": (lambda: ConvBlock(5, bottleneck_channels=8, momentum=MOMENTUM,
                                        epsilon=EPSILON), (4, 6, 6, 3), "conv_block"),
    "dense_block": (lambda: DenseBlock(2, 4, momentum=MOMENTUM, epsilon=EPSILON), (4, 6, 6, 3),
                    "dense_block"),
    "transition_block": (lambda: TransitionBlock(4, momentum=MOMENTUM, epsilon=EPSILON),
                         (4, 6, 6, 7), "transition_block"),
}


def make_block(name, rng):
    make, shape, recompute = BLOCKS[name]
    block = make()
    block.build(shape)
    randomize(block, rng)
    x = (rng.normal(size=shape) * 3.0 + 5.0).astype("float32")
    return block, x, recompute


def hyper(block):
    # The book's defaults where the case does not pass its own.
    return (MOMENTUM, EPSILON) if block.momentum == MOMENTUM else (0.9, 1e-5)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_matches_recomputation(name, training, rng):
    block, x, recompute = make_block(name, rng)
    momentum, epsilon = hyper(block)
    moving = {w.path: w.numpy().astype("float64") for w in block.non_trainable_weights}
    ref = Recompute(training, epsilon)
    expected = getattr(ref, recompute)(block, f64(x)).numpy()  # before the call moves stats
    y = block(x, training=training).numpy()
    assert y.dtype == np.float32 and y.shape == expected.shape
    np.testing.assert_allclose(y, expected, **TOL)
    # Training: every BN moved its statistics towards those of its own input;
    # inference: nothing moved.
    assert set(ref.stats) == (set(moving) if training else set())
    for w in block.non_trainable_weights:
        want = moving[w.path]
        if training:
            want = momentum * want + (1.0 - momentum) * ref.stats[w.path].numpy()
        np.testing.assert_allclose(w.numpy(), want, **TOL, err_msg=w.path)


@pytest.mark.parametrize("name,mutant", [
    ("residual", "no_final_relu"), ("residual_1x1_s2", "no_final_relu"),
    ("residual", "relu_before_bn"), ("residual_1x1_s2", "no_shortcut"),
    ("conv_block", "relu_before_bn"), ("conv_block", "no_relu"),
    ("conv_block_bc", "relu_before_bn"), ("dense_block", "concat_swapped"),
    ("dense_block", "relu_before_bn"), ("transition_block", "relu_before_bn"),
    ("transition_block", "no_relu"), ("residual_1x1_s2_odd_bn", "no_relu"),
])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_references_detect_wrong_order(name, mutant, training, rng):
    # The block matches the documented order to 1e-5 (above); each wrong order
    # is O(0.1) or more away from it, so the comparison would catch it.
    block, x, recompute = make_block(name, rng)
    _, epsilon = hyper(block)
    right = getattr(Recompute(training, epsilon), recompute)(block, f64(x)).numpy()
    wrong = getattr(Recompute(training, epsilon, mutant), recompute)(block, f64(x)).numpy()
    assert np.abs(right - wrong).max() > 0.1

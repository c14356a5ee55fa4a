"""The blocks of book sections 5.11 (ResNet) and 5.12 (DenseNet), channels last.

Every block takes `norm` ("kerazoo" for `kerazoo.layers.BatchNorm`, "keras" for
`keras.layers.BatchNormalization`), `momentum` and `epsilon` (the book's Gluon
defaults 0.9 / 1e-5) and `use_bias` (the book's convolutions have biases; the
standard ResNet/DenseNet families drop them before a BatchNorm).
"""

import keras
from keras import ops

from kerazoo.layers.conv import PaddedConv2D, make_norm


class _Block(keras.layers.Layer):
    """Shared constructor arguments and config of the blocks."""

    def __init__(self, use_bias=True, norm="kerazoo", momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.use_bias = bool(use_bias)
        self.norm = norm
        self.momentum = momentum
        self.epsilon = epsilon
        make_norm(norm, momentum, epsilon)  # validates norm, momentum, epsilon now

    # Sub-layers take the block's dtype policy, so a mixed-precision block
    # stays mixed wherever it is rebuilt (e.g. loaded under a float32 policy).
    def _norm(self, name):
        return make_norm(self.norm, self.momentum, self.epsilon, name=name,
                         dtype=self.dtype_policy)

    def _conv(self, filters, kernel_size, strides=1, name=None):
        # pad = k // 2 is the book's "padding=1" for 3x3 and "padding=3" for 7x7.
        return PaddedConv2D(filters, kernel_size, pad=kernel_size // 2, strides=strides,
                            use_bias=self.use_bias, name=name, dtype=self.dtype_policy)

    def _relu(self):
        return keras.layers.ReLU(dtype=self.dtype_policy)

    def get_config(self):
        config = super().get_config()
        config.update(use_bias=self.use_bias, norm=self.norm,
                      momentum=self.momentum, epsilon=self.epsilon)
        return config


def _build_chain(layers, input_shape):
    """Builds `layers` in sequence; returns the output shape."""
    shape = tuple(input_shape)
    for layer in layers:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


def _run_chain(layers, x, training):
    # Keras passes `training` on only to layers whose `call` accepts it.
    for layer in layers:
        x = layer(x, training=training)
    return x


@keras.saving.register_keras_serializable(package="kerazoo")
class Residual(_Block):
    """The residual block of book 5.11 (ResNet-18/34 "basic" block).

    3x3 conv (stride `strides`) -> BN -> ReLU -> 3x3 conv -> BN, plus the
    shortcut (the input, or a 1x1 conv with `strides` when `use_1x1conv`),
    then ReLU. Input `(N, H, W, C)`; output `(N, ceil(H/s), ceil(W/s), num_channels)`.

    `shortcut_norm=True` adds a BN after the 1x1 shortcut conv (torchvision's
    ResNet; the book has none).
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, shortcut_norm=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_channels = int(num_channels)
        self.use_1x1conv = bool(use_1x1conv)
        self.strides = int(strides)
        self.shortcut_norm = bool(shortcut_norm)
        self.body = [self._conv(num_channels, 3, strides, name="conv1"), self._norm("bn1"),
                     self._relu(), self._conv(num_channels, 3, name="conv2"),
                     self._norm("bn2")]
        self.shortcut = []
        if use_1x1conv:
            self.shortcut = [self._conv(num_channels, 1, strides, name="conv3")]
            if shortcut_norm:
                self.shortcut.append(self._norm("bn3"))

    def build(self, input_shape):
        if not self.use_1x1conv and (input_shape[-1] != self.num_channels or self.strides != 1):
            raise ValueError(
                "Residual cannot add its input to its output without use_1x1conv=True: "
                f"input channels {input_shape[-1]} -> num_channels={self.num_channels}, "
                f"strides={self.strides}.")
        _build_chain(self.body, input_shape)
        _build_chain(self.shortcut, input_shape)

    def call(self, inputs, training=None):
        y = _run_chain(self.body, inputs, training)
        shortcut = _run_chain(self.shortcut, inputs, training)
        return ops.relu(y + shortcut)

    def compute_output_shape(self, input_shape):
        return self.body[0].compute_output_shape(input_shape)[:-1] + (self.num_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(num_channels=self.num_channels, use_1x1conv=self.use_1x1conv,
                      strides=self.strides, shortcut_norm=self.shortcut_norm)
        return config


@keras.saving.register_keras_serializable(package="kerazoo")
class Bottleneck(_Block):
    """ResNet-50+ bottleneck: 1x1 (width) -> 3x3 (width, stride) -> 1x1 (4 width).

    Each conv is followed by BN (ReLU after the first two); the shortcut is a
    1x1 conv + BN (torchvision's "v1.5": the stride sits on the 3x3 conv) when
    the shape changes, else the input. Output channels: `4 * width`.
    """

    expansion = 4

    def __init__(self, width, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)
        self.strides = int(strides)
        out = self.expansion * self.width
        self.body = [self._conv(width, 1, name="conv1"), self._norm("bn1"), self._relu(),
                     self._conv(width, 3, strides, name="conv2"), self._norm("bn2"),
                     self._relu(), self._conv(out, 1, name="conv3"), self._norm("bn3")]
        self.shortcut = None

    def build(self, input_shape):
        if input_shape[-1] != self.expansion * self.width or self.strides != 1:
            self.shortcut = [self._conv(self.expansion * self.width, 1, self.strides,
                                        name="downsample_conv"), self._norm("downsample_bn")]
        _build_chain(self.body, input_shape)
        _build_chain(self.shortcut or [], input_shape)

    def call(self, inputs, training=None):
        y = _run_chain(self.body, inputs, training)
        return ops.relu(y + _run_chain(self.shortcut or [], inputs, training))

    def compute_output_shape(self, input_shape):
        return _build_shapes(self.body, input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, strides=self.strides)
        return config


def _build_shapes(layers, input_shape):
    shape = tuple(input_shape)
    for layer in layers:
        shape = tuple(layer.compute_output_shape(shape))
    return shape


@keras.saving.register_keras_serializable(package="kerazoo")
class ConvBlock(_Block):
    """BN -> ReLU -> 3x3 conv, the "BN, activation, conv" block of book 5.12.

    With `bottleneck_channels` (DenseNet-BC), first BN -> ReLU -> 1x1 conv to
    that many channels. Input `(N, H, W, C)`; output `(N, H, W, num_channels)`.
    """

    def __init__(self, num_channels, bottleneck_channels=None, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = int(num_channels)
        self.bottleneck_channels = bottleneck_channels
        self.chain = []
        if bottleneck_channels:
            self.chain += [self._norm("bn0"), self._relu(),
                           self._conv(int(bottleneck_channels), 1, name="conv0")]
        self.chain += [self._norm("bn"), self._relu(),
                       self._conv(self.num_channels, 3, name="conv")]

    def build(self, input_shape):
        _build_chain(self.chain, input_shape)

    def call(self, inputs, training=None):
        return _run_chain(self.chain, inputs, training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(num_channels=self.num_channels,
                      bottleneck_channels=self.bottleneck_channels)
        return config


@keras.saving.register_keras_serializable(package="kerazoo")
class DenseBlock(_Block):
    """`num_convs` ConvBlocks, each output concatenated to its input (book 5.12).

    Input `(N, H, W, C)`; output `(N, H, W, C + num_convs * num_channels)`:
    `num_channels` is the growth rate.
    """

    def __init__(self, num_convs, num_channels, bottleneck_channels=None, **kwargs):
        super().__init__(**kwargs)
        self.num_convs = int(num_convs)
        self.num_channels = int(num_channels)
        self.bottleneck_channels = bottleneck_channels
        shared = dict(use_bias=self.use_bias, norm=self.norm, momentum=self.momentum,
                      epsilon=self.epsilon)
        self.convs = [ConvBlock(num_channels, bottleneck_channels, name=f"conv_block{i}",
                                dtype=self.dtype_policy, **shared)
                      for i in range(self.num_convs)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = shape[:-1] + (shape[-1] + self.num_channels,)

    def call(self, inputs, training=None):
        x = inputs
        for conv in self.convs:
            x = ops.concatenate([x, conv(x, training=training)], axis=-1)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + self.num_convs * self.num_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(num_convs=self.num_convs, num_channels=self.num_channels,
                      bottleneck_channels=self.bottleneck_channels)
        return config


@keras.saving.register_keras_serializable(package="kerazoo")
class TransitionBlock(_Block):
    """BN -> ReLU -> 1x1 conv -> 2x2 average pool, stride 2 (book 5.12).

    Input `(N, H, W, C)`; output `(N, H // 2, W // 2, num_channels)`.
    """

    def __init__(self, num_channels, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = int(num_channels)
        self.chain = [self._norm("bn"), self._relu(),
                      self._conv(self.num_channels, 1, name="conv"),
                      keras.layers.AveragePooling2D(pool_size=2, strides=2,
                                                    dtype=self.dtype_policy)]

    def build(self, input_shape):
        _build_chain(self.chain, input_shape)

    def call(self, inputs, training=None):
        return _run_chain(self.chain, inputs, training)

    def compute_output_shape(self, input_shape):
        return _build_shapes(self.chain, input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_channels=self.num_channels)
        return config

"""Convolution with the book's symmetric padding, and the normalization factory.

Keras's `padding="same"` pads `(0, 1)` at stride 2 on an even input, where
Gluon's `padding=1` pads `(1, 1)`; the two give different outputs and, for a
3x3/2 convolution on 96x96, the same 48x48 shape. `PaddedConv2D` pads `pad`
zeros on every side and then runs a "valid" convolution, as the book does.
"""

import keras
from keras import ops

NORMS = ("kerazoo", "keras")


@keras.saving.register_keras_serializable(package="kerazoo")
class PaddedConv2D(keras.layers.Conv2D):
    """A `Conv2D` (channels last) with `pad` zeros on each spatial side.

    Args:
        filters, kernel_size, strides, use_bias, initializers...: as Conv2D.
        pad: zeros added before and after each of height and width.

    Input shape `(N, H, W, C)`; output `(N, (H + 2 pad - k) // s + 1, ..., filters)`.
    """

    def __init__(self, filters, kernel_size, pad=0, **kwargs):
        kwargs.pop("padding", None)  # always "valid" after the explicit pad
        super().__init__(filters, kernel_size, padding="valid", **kwargs)
        self.pad = int(pad)

    def build(self, input_shape):
        super().build(self._padded_shape(input_shape))

    def _padded_shape(self, input_shape):
        grow = lambda d: None if d is None else d + 2 * self.pad  # noqa: E731
        n, h, w, c = input_shape
        return (n, grow(h), grow(w), c)

    def call(self, inputs):
        if self.pad:
            p = self.pad
            inputs = ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
        return super().call(inputs)

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(self._padded_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.pop("padding")
        config["pad"] = self.pad
        return config


def make_norm(norm="kerazoo", momentum=0.9, epsilon=1e-5, name=None, **kwargs):
    """A batch-norm layer: kerazoo's (default) or Keras's, same arguments.

    `norm="keras"` builds `keras.layers.BatchNormalization` so a model can be
    compared with, or benchmarked against, the identical Keras architecture.
    `kwargs` are base-layer arguments (`dtype`).
    """
    if norm == "kerazoo":
        from kerazoo.layers.batch_norm import BatchNorm
        return BatchNorm(momentum=momentum, epsilon=epsilon, name=name, **kwargs)
    if norm == "keras":
        return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name,
                                                  **kwargs)
    raise ValueError(f"norm must be one of {NORMS}. Received: norm={norm!r}")

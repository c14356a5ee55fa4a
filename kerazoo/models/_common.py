"""What every model shares: argument checks, the book's 7x7 stem, the head.

The common arguments of every registered model (see `kerazoo.models.create`):

    include_top: with True (default), end in the classifier; with False,
        return the features before it.
    pooling: with include_top=False, None (the feature map
        `(N, h, w, C)`), "avg" or "max" (global pooling to `(N, C)`), as
        `keras.applications` offers.
    classifier_activation: activation of the logits layer; None (default)
        returns logits, the input `from_logits=True` losses want.
    norm: "kerazoo" (default) for `kerazoo.layers.BatchNorm`, "keras" for
        `keras.layers.BatchNormalization` in the identical architecture.
    momentum, epsilon: BatchNorm's, Keras convention; the book's Gluon
        defaults 0.9 and 1e-5.
"""

import keras

from kerazoo.layers import PaddedConv2D, make_norm

POOLINGS = (None, "avg", "max")


def conv_side(n, kernel, strides=1, pad=0):
    """Output side of a "valid" conv or pool on `n` (+ `2 pad`) positions."""
    return (n + 2 * pad - kernel) // strides + 1


def smallest_side(sides, limit=4096):
    """The smallest `n` for which every side in `sides(n)` is at least 1.

    `sides(n)` lists the spatial side after each strided layer for an input
    side `n`; a side below 1 means the layer has no output position.
    """
    for n in range(1, limit):
        if min(sides(n)) >= 1:
            return n
    raise ValueError(f"No input side below {limit} fits. Received: limit={limit}")


def model_inputs(name, input_shape, min_side, num_classes, include_top, pooling):
    """Checks the common arguments; returns `keras.Input(shape=input_shape)`.

    `input_shape` is `(H, W, C)` with any channel count; H or W may be None
    (any size, checked when the model runs) where the architecture allows.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (shape is None or len(shape) != 3
            or not all(d is None or (isinstance(d, int) and d > 0) for d in shape)
            or shape[2] is None):
        raise ValueError(f"{name}: input_shape must be (height, width, channels) of positive "
                         f"integers (height/width may be None). Received: "
                         f"input_shape={input_shape!r}")
    for axis, side in zip(("height", "width"), shape[:2]):
        if side is not None and side < min_side:
            raise ValueError(f"{name}: input {axis} {side} is below the minimum {min_side} "
                             f"this architecture allows (min_input_size={min_side}). "
                             f"Received: input_shape={input_shape!r}")
    if include_top and not (isinstance(num_classes, int) and num_classes > 0):
        raise ValueError(f"{name}: num_classes must be a positive integer. "
                         f"Received: num_classes={num_classes!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"{name}: pooling must be one of {POOLINGS}. "
                         f"Received: pooling={pooling!r}")
    if include_top and pooling is not None:
        raise ValueError(f"{name}: pooling is for feature extraction and needs "
                         f"include_top=False. Received: include_top=True, pooling={pooling!r}")
    return keras.Input(shape=shape, name="image")


def norm_args(norm, momentum, epsilon):
    """The BatchNorm arguments every block takes, checked now (clear errors)."""
    make_norm(norm, momentum, epsilon)
    return dict(norm=norm, momentum=momentum, epsilon=epsilon)


def book_stem(x, use_bias, bn):
    """7x7/2 conv (64, pad 3) -> BN -> ReLU -> 3x3/2 max pool (pad 1): book 5.11-5.12.

    `(N, H, W, C)` -> `(N, ceil(H / 4), ceil(W / 4), 64)`, 56x56 at 224x224.
    """
    x = PaddedConv2D(64, 7, pad=3, strides=2, use_bias=use_bias, name="stem_conv")(x)
    x = make_norm(**bn, name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    # Gluon pads max pooling with -inf. After the ReLU every value is >= 0 and
    # each 3x3/2 window of the padded map holds at least one real value, so
    # zero padding gives the same maxima (as keras.applications does).
    x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)


def book_stem_sides(n):
    """The spatial sides after the stem's conv and pool for an input side `n`."""
    conv = conv_side(n, 7, 2, 3)
    return [conv, conv_side(conv, 3, 2, 1)]


def logits(x, num_classes, classifier_activation):
    """The classifier, computed in float32 under any mixed-precision policy."""
    return keras.layers.Dense(num_classes, activation=classifier_activation,
                              dtype="float32", name="logits")(x)


def pooled_head(x, inputs, name, *, include_top, pooling, num_classes,
                classifier_activation):
    """Global average pool + logits, or the features; returns the model.

    `(N, h, w, C)` -> `(N, num_classes)`; with include_top=False,
    `(N, h, w, C)` unchanged (pooling=None) or `(N, C)`.
    """
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = logits(x, num_classes, classifier_activation)
    else:
        x = global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)


def global_pool(x, pooling):
    """`pooling` of `POOLINGS` on a feature map: `(N, h, w, C)` -> `(N, C)`."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x

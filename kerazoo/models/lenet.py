"""LeNet (book 5.5) and LeNet with batch normalization (book 5.10)."""

import keras

from kerazoo.layers import make_norm
from kerazoo.models import _common
from kerazoo.models._registry import register_model

# (filters, kernel) of the two conv layers, then the hidden dense widths.
CONVS = ((6, 5), (16, 5))
HIDDEN = (120, 84)


def _sides(n):
    # conv 5 -> pool 2/2 -> conv 5 -> pool 2/2, all "valid" (28 -> 24 -> 12 -> 8 -> 4).
    sides = []
    for _, kernel in CONVS:
        n = _common.conv_side(n, kernel)
        sides.append(n)
        n = _common.conv_side(n, 2, 2)
        sides.append(n)
    return sides


MIN_SIDE = _common.smallest_side(_sides)  # 16


def _lenet(name, num_classes, input_shape, batch_norm, *, include_top=True, pooling=None,
           classifier_activation=None, norm="kerazoo", momentum=0.9, epsilon=1e-5):
    """Shared builder: with `batch_norm`, BN before every sigmoid but the logits'.

    `(N, H, W, C)` -> conv stack `(N, h, w, 16)` (4x4 at 28x28) -> flatten ->
    dense 120 -> dense 84 -> `(N, num_classes)`. With include_top=False the
    model ends at the conv stack: the dense layers are the classifier, as the
    fully connected layers of `keras.applications.VGG16` are.
    """
    inputs = _common.model_inputs(name, input_shape, MIN_SIDE, num_classes, include_top, pooling)
    bn = _common.norm_args(norm, momentum, epsilon)
    if include_top and None in inputs.shape[1:3]:
        raise ValueError(f"{name}: the flatten before the dense layers needs a known height "
                         f"and width. Received: input_shape={input_shape!r}")

    def activate(x, suffix):
        if batch_norm:
            x = make_norm(**bn, name=f"bn{suffix}")(x)
        return keras.layers.Activation("sigmoid", name=f"sigmoid{suffix}")(x)

    x = inputs
    for i, (filters, kernel) in enumerate(CONVS, 1):
        x = activate(keras.layers.Conv2D(filters, kernel, name=f"conv{i}")(x), i)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"pool{i}")(x)
    if not include_top:
        return keras.Model(inputs, _common.global_pool(x, pooling), name=name)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(HIDDEN, len(CONVS) + 1):
        x = activate(keras.layers.Dense(units, name=f"dense{i}")(x), i)
    return keras.Model(inputs, _common.logits(x, num_classes, classifier_activation), name=name)


@register_model(min_input_size=MIN_SIDE)
def lenet(num_classes=10, input_shape=(28, 28, 1), **kwargs):
    """LeNet-5 as book section 5.5 builds it, with sigmoid activations.

    Conv(6, 5x5, sigmoid) -> max pool 2/2 -> Conv(16, 5x5, sigmoid) ->
    max pool 2/2 -> flatten -> Dense(120, sigmoid) -> Dense(84, sigmoid) ->
    Dense(num_classes); "valid" convolutions, Xavier (Glorot) initialization.
    Input 28x28x1 (Fashion-MNIST); minimum side 16.

    Recipe (book 5.5): lr 0.9, 5 epochs, batch size 256, no resize (28x28).
    `lenet_bn` uses the same epochs and batch size (lr 1.0) for comparison.
    """
    return _lenet("lenet", num_classes, input_shape, batch_norm=False, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def lenet_bn(num_classes=10, input_shape=(28, 28, 1), **kwargs):
    """LeNet with batch normalization, book section 5.10.

    What changes from `lenet`: a BatchNorm between each conv or hidden dense
    layer and its sigmoid (Conv(6, 5) -> BN -> sigmoid -> ...), and a larger
    learning rate it makes stable. Input 28x28x1; minimum side 16.

    Recipe (book 5.10): lr 1.0, 5 epochs, batch size 256, no resize (28x28).
    """
    return _lenet("lenet_bn", num_classes, input_shape, batch_norm=True, **kwargs)

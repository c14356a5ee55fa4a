"""DenseNet: the book's DenseNet (section 5.12) and DenseNet-121/169/201 (BC)."""

import keras

from kerazoo.layers import DenseBlock, TransitionBlock, make_norm
from kerazoo.models import _common
from kerazoo.models._registry import register_model

INIT_CHANNELS = 64  # out of the stem
# variant -> (convs per dense block, growth rate, DenseNet-BC 1x1 bottleneck)
ARCHS = {
    "book": ((4, 4, 4, 4), 32, False),
    121: ((6, 12, 24, 16), 32, True),
    169: ((6, 12, 32, 32), 32, True),
    201: ((6, 12, 48, 32), 32, True),
}


def _sides(n):
    # The stem, then the 2x2/2 average pool of each of the three transitions
    # (rounding down): 29 -> 8 after the stem -> 4 -> 2 -> 1.
    sides = _common.book_stem_sides(n)
    for _ in range(3):
        sides.append(_common.conv_side(sides[-1], 2, 2))
    return sides


MIN_SIDE = _common.smallest_side(_sides)  # 29


def _densenet(name, variant, num_classes, input_shape, *, include_top=True, pooling=None,
              classifier_activation=None, norm="kerazoo", momentum=0.9, epsilon=1e-5):
    """Shared builder: stem, dense blocks with halving transitions, BN + ReLU, head.

    The book's variant keeps conv biases; DenseNet-BC (121/169/201) drops
    them (BN follows every conv) and adds a 1x1 conv to 4 x growth channels
    in front of each 3x3 conv. Each transition halves the channels
    (compression 0.5) and the size: at 224x224, 56 -> 28 -> 14 -> 7.
    Book variant channels: 64 -> 192 -> 96 -> 224 -> 112 -> 240 -> 120 -> 248.
    """
    inputs = _common.model_inputs(name, input_shape, MIN_SIDE, num_classes, include_top, pooling)
    bn = _common.norm_args(norm, momentum, epsilon)
    convs, growth, bottleneck = ARCHS[variant]
    book = variant == "book"
    x = _common.book_stem(inputs, use_bias=book, bn=bn)
    channels = INIT_CHANNELS
    for i, num_convs in enumerate(convs, 1):
        x = DenseBlock(num_convs, growth, bottleneck_channels=4 * growth if bottleneck else None,
                       use_bias=book, name=f"dense_block{i}", **bn)(x)
        channels += num_convs * growth
        if i < len(convs):
            channels //= 2
            x = TransitionBlock(channels, use_bias=book, name=f"transition{i}", **bn)(x)
    x = make_norm(**bn, name="final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    return _common.pooled_head(x, inputs, name, include_top=include_top, pooling=pooling,
                               num_classes=num_classes,
                               classifier_activation=classifier_activation)


@register_model(min_input_size=MIN_SIDE)
def densenet(num_classes=10, input_shape=(96, 96, 1), **kwargs):
    """DenseNet as book section 5.12 builds it.

    What it changes from ResNet: each block concatenates its output to its
    input instead of adding, so later layers see every earlier feature map;
    transition blocks (BN -> ReLU -> 1x1 conv -> 2x2/2 average pool) halve
    the channels and the size between the dense blocks. The ResNet stem,
    four dense blocks of four conv blocks (BN -> ReLU -> 3x3 conv, growth
    rate 32), BN -> ReLU -> global average pool -> dense. Default input
    96x96x1 (Fashion-MNIST resized); minimum side 29.

    Recipe (book 5.12): lr 0.1, 5 epochs, batch size 256, resize to 96.
    """
    return _densenet("densenet", "book", num_classes, input_shape, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def densenet121(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """DenseNet-121 (BC, growth 32): blocks [6, 12, 24, 16]; 7,978,856 trainable parameters."""
    return _densenet("densenet121", 121, num_classes, input_shape, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def densenet169(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """DenseNet-169 (BC, growth 32): blocks [6, 12, 32, 32]."""
    return _densenet("densenet169", 169, num_classes, input_shape, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def densenet201(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """DenseNet-201 (BC, growth 32): blocks [6, 12, 48, 32]."""
    return _densenet("densenet201", 201, num_classes, input_shape, **kwargs)

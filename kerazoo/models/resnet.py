"""ResNet: the book's ResNet-18 (section 5.11) and ResNet-34/50/101/152."""

from kerazoo.layers import Bottleneck, Residual
from kerazoo.models import _common
from kerazoo.models._registry import register_model

WIDTHS = (64, 128, 256, 512)  # channels of stages 1-4 (x4 at the bottleneck's output)
# depth -> (block, blocks per stage)
ARCHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _sides(n):
    # The stem, then a 3x3/2 conv (pad 1) opening stages 2-4: all round up,
    # so every side >= 1 fits (1x1 in, 1x1 out).
    sides = _common.book_stem_sides(n)
    for _ in WIDTHS[1:]:
        sides.append(_common.conv_side(sides[-1], 3, 2, 1))
    return sides


MIN_SIDE = _common.smallest_side(_sides)  # 1


def _resnet(name, depth, num_classes, input_shape, book, *, include_top=True, pooling=None,
            classifier_activation=None, norm="kerazoo", momentum=0.9, epsilon=1e-5):
    """Shared builder: the book's stem, four stages, global average pool, logits.

    `book=True` is the book's layout: convolutions with biases and no BN on
    the 1x1 shortcut. `book=False` is torchvision's: no conv biases (BN
    follows every conv) and a BN after each projection shortcut.

    Shapes at 224x224: stem 56x56x64; stages 56x56, 28x28, 14x14, 7x7 with
    64/128/256/512 channels (x4 for bottleneck blocks); `(N, num_classes)`.
    """
    inputs = _common.model_inputs(name, input_shape, MIN_SIDE, num_classes, include_top, pooling)
    bn = _common.norm_args(norm, momentum, epsilon)
    block, depths = ARCHS[depth]
    x = _common.book_stem(inputs, use_bias=book, bn=bn)
    for stage, (blocks, width) in enumerate(zip(depths, WIDTHS), 1):
        for i in range(blocks):
            strides = 2 if stage > 1 and i == 0 else 1  # stage 1 keeps the stem's 56x56
            layer_name = f"stage{stage}_block{i + 1}"
            if block == "basic":
                layer = Residual(width, use_1x1conv=strides != 1, strides=strides,
                                 shortcut_norm=not book, use_bias=book, name=layer_name, **bn)
            else:  # adds its own projection shortcut where the shape changes
                layer = Bottleneck(width, strides=strides, use_bias=book, name=layer_name, **bn)
            x = layer(x)
    return _common.pooled_head(x, inputs, name, include_top=include_top, pooling=pooling,
                               num_classes=num_classes,
                               classifier_activation=classifier_activation)


@register_model(min_input_size=MIN_SIDE)
def resnet18(num_classes=10, input_shape=(96, 96, 1), **kwargs):
    """ResNet-18 as book section 5.11 builds it.

    What it changes: residual blocks `relu(f(x) + x)`, so a block only has to
    learn the change to its input and deep stacks still train. Stem: 7x7/2
    conv 64 (pad 3) -> BN -> ReLU -> 3x3/2 max pool (pad 1); four stages of
    two `Residual` blocks, 64/128/256/512 channels, the first block of stages
    2-4 halving the size with a strided conv and a 1x1 conv shortcut; global
    average pool; dense. Convolutions keep their biases and the shortcut has
    no BN, as in the book's Gluon code (11,692,520 trainable parameters at
    224x224x3 with 1000 classes). Default input 96x96x1 (Fashion-MNIST
    resized); any side >= 1 fits.

    Recipe (book 5.11): lr 0.05, 5 epochs, batch size 256, resize to 96.
    """
    return _resnet("resnet18", 18, num_classes, input_shape, book=True, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def resnet34(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """ResNet-34, torchvision layout: basic blocks [3, 4, 6, 3]; 21,797,672 parameters."""
    return _resnet("resnet34", 34, num_classes, input_shape, book=False, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def resnet50(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """ResNet-50 (v1.5, stride on the 3x3): bottlenecks [3, 4, 6, 3]; 25,557,032 parameters."""
    return _resnet("resnet50", 50, num_classes, input_shape, book=False, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def resnet101(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """ResNet-101 (v1.5): bottlenecks [3, 4, 23, 3]; 44,549,160 parameters."""
    return _resnet("resnet101", 101, num_classes, input_shape, book=False, **kwargs)


@register_model(min_input_size=MIN_SIDE)
def resnet152(num_classes=1000, input_shape=(224, 224, 3), **kwargs):
    """ResNet-152 (v1.5): bottlenecks [3, 8, 36, 3]; 60,192,808 parameters."""
    return _resnet("resnet152", 152, num_classes, input_shape, book=False, **kwargs)

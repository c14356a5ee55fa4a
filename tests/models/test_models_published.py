"""Every model at its default shape against published numbers; the book's walk-throughs.

Parameter counts are those of torchvision (ResNets) and of
`keras.applications.DenseNet*(weights=None)` (trainable), measured by building
those models; multiply-adds are checked against torchvision's published
GFLOPS (which count multiply-adds) to their 3 significant digits.
"""

import keras
import pytest

import kerazoo.models
from kerazoo.models import summary

# name -> (trainable, non-trainable, multiply-adds per image) at the default
# input shape and class count (10 for the book models, 1000 for the families).
PINNED = {
    "lenet": (44_426, 0, 281_640),  # 28x28x1
    "lenet_bn": (44_878, 452, 281_640),
    "resnet18": (11_178_378, 7_808, 318_657_536),  # 96x96x1
    "densenet": (758_226, 6_608, 129_077_168),  # 96x96x1
    "resnet34": (21_797_672, 17_024, 3_663_761_408),  # 224x224x3 from here on
    "resnet50": (25_557_032, 53_120, 4_089_184_256),
    "resnet101": (44_549_160, 105_344, 7_801_405_440),
    "resnet152": (60_192_808, 151_424, 11_513_626_624),
    "densenet121": (7_978_856, 83_648, 2_834_161_664),
    "densenet169": (14_149_480, 158_400, 3_359_843_328),
    "densenet201": (20_013_928, 229_056, 4_291_365_888),
}
TORCHVISION_GMACS = {"resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80,
                     "resnet152": 11.51, "densenet121": 2.83, "densenet169": 3.36,
                     "densenet201": 4.29}


def test_pinned_table_covers_every_model():
    assert sorted(PINNED) == kerazoo.models.list_models()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_default_build_matches_published_counts(name):
    # Symbolic build only: no forward pass through the 224x224 models.
    num_classes = kerazoo.models.default_num_classes(name)
    model = kerazoo.models.create(name, num_classes=num_classes)
    assert model.name == name
    assert tuple(model.input.shape) == (None,) + kerazoo.models.default_input_shape(name)
    assert tuple(model.output.shape) == (None, num_classes)
    assert model.output.dtype == "float32"
    macs = summary.multiply_adds(model)
    assert summary.param_counts(model) + (macs,) == PINNED[name]
    if name in TORCHVISION_GMACS:
        assert round(macs / 1e9, 2) == TORCHVISION_GMACS[name]


def test_book_resnet18_at_imagenet_shape():
    # The book's layout (conv biases, no shortcut BN) at 224x224x3 / 1000 classes:
    # torchvision's 11,689,512 + 4,800 conv biases - 1,792 shortcut BN weights.
    model = kerazoo.models.create("resnet18", num_classes=1000, input_shape=(224, 224, 3))
    assert summary.param_counts(model)[0] == 11_692_520
    assert round(summary.multiply_adds(model) / 1e9, 2) == 1.81  # torchvision's GFLOPS


def test_lenet_multiply_adds_by_hand():
    model = kerazoo.models.create("lenet")
    convs = 5 * 5 * 1 * 6 * 24 * 24 + 5 * 5 * 6 * 16 * 8 * 8
    assert summary.multiply_adds(model) == convs + 256 * 120 + 120 * 84 + 84 * 10


def shapes(model):
    return {name: shape[1:] for name, _, shape in summary.layer_shapes(model)}


def test_resnet18_walkthrough_224():
    # Book 5.11's walk-through, channels last.
    got = shapes(kerazoo.models.create("resnet18", input_shape=(224, 224, 1)))
    assert got["stem_conv"] == (112, 112, 64)
    assert got["stem_pool"] == (56, 56, 64)
    assert [got[f"stage{s}_block2"] for s in (1, 2, 3, 4)] == [
        (56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)]
    assert got["avg_pool"] == (512,) and got["logits"] == (10,)


def test_densenet_walkthrough_224():
    # Book 5.12: 64 + 4 x 32 = 192 channels, halved by each transition.
    got = shapes(kerazoo.models.create("densenet", input_shape=(224, 224, 1)))
    assert got["stem_pool"] == (56, 56, 64)
    assert [got[f"dense_block{i}"] for i in (1, 2, 3, 4)] == [
        (56, 56, 192), (28, 28, 224), (14, 14, 240), (7, 7, 248)]
    assert [got[f"transition{i}"] for i in (1, 2, 3)] == [
        (28, 28, 96), (14, 14, 112), (7, 7, 120)]
    assert got["avg_pool"] == (248,) and got["logits"] == (10,)


def test_lenet_walkthrough_28():
    got = shapes(kerazoo.models.create("lenet_bn"))
    assert [got[n] for n in ("conv1", "pool1", "conv2", "pool2", "flatten")] == [
        (24, 24, 6), (12, 12, 6), (8, 8, 16), (4, 4, 16), (256,)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet121", "densenet169", "densenet201"])
def test_densenet_counts_are_keras_applications(name):
    # Where PINNED's DenseNet numbers come from (about 5 s each to build).
    reference = getattr(keras.applications, name.replace("densenet", "DenseNet"))(weights=None)
    assert summary.param_counts(reference)[0] == PINNED[name][0]

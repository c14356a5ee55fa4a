"""The registry, the common arguments' checks and the recipes."""

import dataclasses

import pytest

import kerazoo.models
from kerazoo.models import _registry
from models_helpers import assert_one_line

BOOK = ("lenet", "lenet_bn", "resnet18", "densenet")
FAMILIES = ("resnet34", "resnet50", "resnet101", "resnet152",
            "densenet121", "densenet169", "densenet201")


def test_list_models_and_glob():
    assert kerazoo.models.list_models() == sorted(BOOK + FAMILIES)
    assert kerazoo.models.list_models("resnet*") == [
        "resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert kerazoo.models.list_models("lenet?bn") == ["lenet_bn"]
    assert kerazoo.models.list_models("vgg*") == []


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        kerazoo.models.create("resnet19")
    assert_one_line(error, "resnet19", *kerazoo.models.list_models())
    for lookup in (kerazoo.models.default_input_shape, kerazoo.models.min_input_size,
                   kerazoo.models.recipe):
        with pytest.raises(ValueError, match="known models: densenet"):
            lookup("resnet19")


def test_duplicate_registration_raises(monkeypatch):
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))
    monkeypatch.setattr(_registry, "_MIN_SIDES", dict(_registry._MIN_SIDES))

    def tiny(num_classes=3, input_shape=(8, 8, 1)):
        return None

    kerazoo.models.register_model(min_input_size=8)(tiny)
    assert "tiny" in kerazoo.models.list_models()
    assert kerazoo.models.default_input_shape("tiny") == (8, 8, 1)
    assert kerazoo.models.min_input_size("tiny") == 8
    with pytest.raises(ValueError) as error:
        kerazoo.models.register_model(tiny)
    assert_one_line(error, "already registered", "'tiny'")

    def resnet18(num_classes=10, input_shape=(96, 96, 1)):
        return None

    with pytest.raises(ValueError, match="'resnet18' is already registered"):
        kerazoo.models.register_model(resnet18)


def test_defaults_and_minimum_sizes():
    for name in ("lenet", "lenet_bn"):
        assert kerazoo.models.default_input_shape(name) == (28, 28, 1)
        assert kerazoo.models.min_input_size(name) == 16  # 16 -> 12 -> 6 -> 2 -> 1
    for name in ("resnet18", "densenet"):
        assert kerazoo.models.default_input_shape(name) == (96, 96, 1)
    for name in FAMILIES:
        assert kerazoo.models.default_input_shape(name) == (224, 224, 3)
        assert kerazoo.models.default_num_classes(name) == 1000
    for name in BOOK:
        assert kerazoo.models.default_num_classes(name) == 10
    for name in kerazoo.models.list_models("resnet*"):
        assert kerazoo.models.min_input_size(name) == 1  # every stride rounds up
    for name in kerazoo.models.list_models("densenet*"):
        assert kerazoo.models.min_input_size(name) == 29  # stem /4 (ceil), 3 pools /2 (floor)


@pytest.mark.parametrize("name, too_small", [("lenet", 15), ("lenet_bn", 15),
                                             ("densenet", 28), ("densenet121", 28)])
def test_too_small_input_names_the_minimum(name, too_small):
    minimum = kerazoo.models.min_input_size(name)
    with pytest.raises(ValueError) as error:
        kerazoo.models.create(name, input_shape=(minimum, too_small, 1))
    assert_one_line(error, name, f"width {too_small}", f"minimum {minimum}")


@pytest.mark.parametrize("kwargs, parts", [
    (dict(input_shape=(32, 32)), ["input_shape=(32, 32)"]),
    (dict(input_shape=(32, 32, 0)), ["input_shape=(32, 32, 0)"]),
    (dict(input_shape="32,32,1"), ["input_shape='32,32,1'"]),
    (dict(num_classes=0), ["num_classes=0"]),
    (dict(pooling="mean", include_top=False), ["pooling='mean'"]),
    (dict(pooling="avg"), ["include_top=True", "pooling='avg'"]),
    (dict(norm="group"), ["norm='group'"]),
    (dict(momentum=1.0), ["momentum=1.0"]),
    (dict(epsilon=0.0), ["epsilon=0.0"]),
])
def test_bad_arguments_name_the_argument(kwargs, parts):
    with pytest.raises(ValueError) as error:
        kerazoo.models.create("lenet_bn", **kwargs)
    assert_one_line(error, *parts)


def test_lenet_head_needs_a_known_size():
    with pytest.raises(ValueError, match="known height and width"):
        kerazoo.models.create("lenet", input_shape=(None, None, 1))
    features = kerazoo.models.create("lenet", input_shape=(None, None, 1), include_top=False,
                                     pooling="avg")
    assert tuple(features.output.shape) == (None, 16)


def test_book_recipes():
    recipe = kerazoo.models.recipe
    assert recipe("lenet") == kerazoo.models.Recipe(0.9, 5, 256, None)  # book 5.5
    assert recipe("lenet_bn") == kerazoo.models.Recipe(1.0, 5, 256, None)  # book 5.10
    assert recipe("resnet18") == kerazoo.models.Recipe(0.05, 5, 256, 96)  # book 5.11
    assert recipe("densenet") == kerazoo.models.Recipe(0.1, 5, 256, 96)  # book 5.12
    assert set(kerazoo.models.BOOK_RECIPES) == set(BOOK)
    for name in FAMILIES:
        assert recipe(name) == kerazoo.models.DEFAULT_RECIPE == kerazoo.models.Recipe(
            0.1, 5, 256, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe("lenet").lr = 0.1


@pytest.mark.parametrize("name", BOOK)
def test_book_models_carry_a_model_card(name):
    card = getattr(kerazoo.models, {"lenet": "lenet", "lenet_bn": "lenet",
                                    "resnet18": "resnet", "densenet": "densenet"}[name])
    doc = getattr(card, name).__doc__
    r = kerazoo.models.recipe(name)
    assert "section 5." in doc and "Recipe (book 5." in doc, doc
    for part in (f"lr {r.lr}", f"{r.epochs} epochs", f"batch size {r.batch_size}"):
        assert part in doc, (part, doc)

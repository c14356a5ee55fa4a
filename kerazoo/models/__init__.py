"""The model zoo: the book's models (LeNet, ResNet-18, DenseNet) and standard families.

    model = kerazoo.models.create("resnet18", num_classes=10, input_shape=(96, 96, 1))
    kerazoo.models.list_models("densenet*")   # ['densenet', 'densenet121', ...]
    kerazoo.models.recipe("resnet18")         # Recipe(lr=0.05, epochs=5, ..., resize=96)

Registration is explicit: each family module imported below registers its
variants (one short function each, over a shared builder) on import.
"""

from kerazoo.models._registry import (create, default_input_shape, default_num_classes,
                                      list_models, min_input_size, register_model)
from kerazoo.models import densenet  # noqa: F401  (densenet, densenet121/169/201)
from kerazoo.models import lenet  # noqa: F401  (lenet, lenet_bn)
from kerazoo.models import resnet  # noqa: F401  (resnet18, resnet34/50/101/152)
from kerazoo.models import summary  # noqa: F401  (parameter and multiply-add counts)
from kerazoo.models.recipes import BOOK_RECIPES, DEFAULT_RECIPE, Recipe, recipe

__all__ = ["BOOK_RECIPES", "DEFAULT_RECIPE", "Recipe", "create", "default_input_shape",
           "default_num_classes", "list_models", "min_input_size", "recipe", "register_model"]

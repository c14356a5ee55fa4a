"""Training recipes: the book's hyperparameters for its four models."""

import dataclasses

from kerazoo.models._registry import _lookup


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a model is trained: SGD learning rate, epochs, batch size, input resize.

    `resize` is the side Fashion-MNIST's 28x28 images are resized to, or
    None to keep them.
    """

    lr: float
    epochs: int
    batch_size: int
    resize: int | None


BOOK_RECIPES = {
    # Book 5.5 trains LeNet with lr 0.9; 5.10 runs LeNet-BN with the same
    # epochs and batch size for comparison, at the lr 1.0 BN makes stable.
    "lenet": Recipe(lr=0.9, epochs=5, batch_size=256, resize=None),
    "lenet_bn": Recipe(lr=1.0, epochs=5, batch_size=256, resize=None),
    "resnet18": Recipe(lr=0.05, epochs=5, batch_size=256, resize=96),  # book 5.11
    "densenet": Recipe(lr=0.1, epochs=5, batch_size=256, resize=96),  # book 5.12
}

# Not from the book: a starting point for the standard families on Fashion-MNIST.
DEFAULT_RECIPE = Recipe(lr=0.1, epochs=5, batch_size=256, resize=None)


def recipe(name):
    """The book's recipe for a book model, else `DEFAULT_RECIPE`; ValueError if unknown."""
    _lookup(name)
    return BOOK_RECIPES.get(name, DEFAULT_RECIPE)

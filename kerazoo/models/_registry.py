"""The model registry: a dict of builder functions keyed by function name.

Each registered function is one variant (`resnet50`, `densenet121`, ...): a
few lines over a shared family builder, with its defaults in its signature,
where `default_input_shape` and `default_num_classes` read them back.
"""

import fnmatch
import inspect

_MODELS = {}  # name -> builder function
_MIN_SIDES = {}  # name -> smallest spatial side the architecture allows


def register_model(fn=None, *, min_input_size=1):
    """Registers `fn` under `fn.__name__`; use bare or as `@register_model(min_input_size=n)`.

    Args:
        fn: a function `fn(num_classes=..., input_shape=(H, W, C), **kwargs)`
            returning a `keras.Model`.
        min_input_size: the smallest height or width the architecture takes
            (every strided layer still has at least one output position).

    Raises:
        ValueError: if a model of that name is already registered.
    """
    def register(fn):
        name = fn.__name__
        if name in _MODELS:
            raise ValueError(f"A model named {name!r} is already registered "
                             f"(by {_MODELS[name].__module__}). Received: name={name!r}")
        _MODELS[name] = fn
        _MIN_SIDES[name] = int(min_input_size)
        return fn

    return register(fn) if fn is not None else register


def list_models(pattern=None):
    """Sorted registered names, filtered by a glob `pattern` ("resnet*") when given."""
    names = sorted(_MODELS)
    return names if pattern is None else fnmatch.filter(names, pattern)


def _lookup(name):
    if name not in _MODELS:
        raise ValueError(f"Unknown model name {name!r}; known models: "
                         f"{', '.join(list_models())}. Received: name={name!r}")
    return _MODELS[name]


def _signature_default(name, argument):
    return inspect.signature(_lookup(name)).parameters[argument].default


def default_input_shape(name):
    """The `(H, W, C)` input shape model `name` is built at by default."""
    return tuple(_signature_default(name, "input_shape"))


def default_num_classes(name):
    """The class count of the registered function's signature (10 for the book, 1000 else)."""
    return int(_signature_default(name, "num_classes"))


def min_input_size(name):
    """The smallest spatial side (height or width) model `name` accepts."""
    _lookup(name)
    return _MIN_SIDES[name]


def create(name, num_classes=10, input_shape=None, **kwargs):
    """Builds registered model `name`.

    Args:
        name: a name from `list_models()`.
        num_classes: size of the logits layer.
        input_shape: `(H, W, C)`; None for the model's default
            (`default_input_shape(name)`).
        **kwargs: the common model arguments (`include_top`, `pooling`,
            `classifier_activation`, `norm`, `momentum`, `epsilon`).

    Returns:
        An uncompiled `keras.Model` named `name`, inputs `(batch, H, W, C)`,
        outputs `(batch, num_classes)` logits (with `include_top=True`).

    Raises:
        ValueError: unknown `name`, or an invalid argument.
    """
    fn = _lookup(name)
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    return fn(num_classes=num_classes, **kwargs)

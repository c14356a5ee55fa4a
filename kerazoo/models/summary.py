"""Model summaries: parameter counts, multiply-adds, the book's shape walk-through.

Multiply-adds are counted analytically from layer shapes, per image:
`k_h * k_w * (C_in / groups) * C_out * H_out * W_out` per convolution and
`in * out` per dense layer (per position for dense layers on feature maps);
pooling, BN and activations are not counted. The walk goes inside kerazoo's
blocks through the sub-layer lists they expose:

    body, shortcut: two branches read the block's input (Residual, Bottleneck);
    chain: layers in sequence (ConvBlock, TransitionBlock);
    convs: dense connectivity, each output concatenated to its input (DenseBlock).
"""

import dataclasses

import keras
import numpy as np

from kerazoo.models import _registry


@dataclasses.dataclass(frozen=True)
class SummaryConfig:
    """What `report` describes.

    pattern: glob over registered names for the table.
    model: a name; when set, its layer-by-layer walk-through instead.
    input_shape: `(H, W, C)`, or None for each model's default.
    num_classes: logits size, or None for each model's default (10 for the
        book models, 1000 for the standard families).
    """

    pattern: str = "*"
    model: str | None = None
    input_shape: tuple | None = None
    num_classes: int | None = None


def parse_input_shape(text):
    """ "96,96,1" -> (96, 96, 1); ValueError naming the argument otherwise."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError("input_shape must be three positive integers "
                         f"'height,width,channels'. Received: input_shape={text!r}")
    return shape


def param_counts(model):
    """`(trainable, non_trainable)` scalar counts of `model`'s weights."""
    count = lambda weights: sum(int(np.prod(w.shape)) for w in weights)  # noqa: E731
    return count(model.trainable_weights), count(model.non_trainable_weights)


def _walk(layer, shape):
    """`(multiply_adds, output_shape)` of `layer` on an input of `shape`."""
    if isinstance(layer, keras.layers.Conv2D):  # includes PaddedConv2D
        out = tuple(layer.compute_output_shape(shape))
        kh, kw = layer.kernel_size
        return kh * kw * (shape[-1] // layer.groups) * out[-1] * int(np.prod(out[1:-1])), out
    if isinstance(layer, keras.layers.Dense):
        out = tuple(layer.compute_output_shape(shape))
        return int(np.prod(shape[1:])) * layer.units, out
    if hasattr(layer, "convs"):  # dense connectivity
        total = 0
        for conv in layer.convs:
            macs, out = _walk(conv, shape)
            total, shape = total + macs, shape[:-1] + (shape[-1] + out[-1],)
        return total, shape
    if hasattr(layer, "body"):  # two branches on one input, added
        macs, out = _walk_chain(layer.body, shape)
        return macs + _walk_chain(layer.shortcut or [], shape)[0], out
    if hasattr(layer, "chain"):
        return _walk_chain(layer.chain, shape)
    return 0, tuple(layer.compute_output_shape(shape))


def _walk_chain(layers, shape):
    total = 0
    for layer in layers:
        macs, shape = _walk(layer, shape)
        total += macs
    return total, shape


def multiply_adds(model):
    """Multiply-adds of one image through a functional `model` (known H and W)."""
    shape = tuple(model.input.shape)
    if None in shape[1:]:
        raise ValueError("multiply_adds needs a known input height and width. "
                         f"Received: input shape {shape}")
    total = 0
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            total += _walk(layer, (1,) + tuple(layer.input.shape[1:]))[0]
    return total


def layer_shapes(model):
    """`[(name, class name, output shape)]` of each top-level layer, in order."""
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape))
            for layer in model.layers]


def _build(name, config):
    num_classes = config.num_classes
    if num_classes is None:
        num_classes = _registry.default_num_classes(name)
    return _registry.create(name, num_classes=num_classes, input_shape=config.input_shape)


def models_table(config):
    """One row per model matching `config.pattern`: shape, parameters, multiply-adds."""
    names = _registry.list_models(config.pattern)
    if not names:
        known = ", ".join(_registry.list_models())
        raise ValueError(f"No registered model matches the pattern; known models: {known}. "
                         f"Received: pattern={config.pattern!r}")
    rows = [("model", "input", "trainable", "non-trainable", "multiply-adds")]
    for name in names:
        shape = config.input_shape or _registry.default_input_shape(name)
        if min(shape[:2]) < _registry.min_input_size(name):
            minimum = _registry.min_input_size(name)
            rows.append((name, _shape_text(shape), f"input below the minimum side {minimum}",
                         "", ""))
            continue
        model = _build(name, config)
        trainable, fixed = param_counts(model)
        rows.append((name, _shape_text(shape), f"{trainable:,}", f"{fixed:,}",
                     f"{multiply_adds(model):,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def walkthrough(config):
    """The book's walk-through for `config.model`: each top-level layer's output shape."""
    model = _build(config.model, config)
    rows = [(name, kind, _shape_text(shape[1:])) for name, kind, shape in layer_shapes(model)]
    width = max(len(name) + len(kind) + 3 for name, kind, _ in rows)
    lines = [f"{f'{name} ({kind})':<{width}} output shape: {shape}" for name, kind, shape in rows]
    trainable, fixed = param_counts(model)
    lines.append(f"parameters: {trainable:,} trainable, {fixed:,} non-trainable; "
                 f"multiply-adds per image: {multiply_adds(model):,}")
    return "\n".join(lines)


def report(config):
    """The text `bin/kerazoo-models` prints for `config`."""
    return walkthrough(config) if config.model else models_table(config)


def _shape_text(shape):
    return "x".join(str(d) for d in shape)

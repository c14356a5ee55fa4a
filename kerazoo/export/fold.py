"""`fold_batchnorm`: an inference copy with each BatchNorm merged into the layer before it.

In inference mode a BatchNorm is the per-channel affine map
`y = s * (x - mu) + beta` with `s = gamma / sqrt(var + epsilon)`. When `x` is
the output of a convolution or dense layer with no activation in between,
`x = W * in + b` and the two merge into one layer with

    W' = W * s   (per output channel, the kernel's last axis)
    b' = (b - mu) * s + beta

so inference runs one layer instead of two. Only that order is folded: a
BatchNorm *before* a convolution (DenseNet's BN -> ReLU -> conv) has a ReLU in
between and stays.

Where the pairs are found:

* the model's own graph (a Functional model: LeNet's conv/dense -> BN, the
  ResNet/DenseNet stem): a BatchNorm whose only input is such a layer's output,
  and that output feeds nothing else. The copy is made with
  `keras.models.clone_model`; the BatchNorm is dropped from the graph.
* inside kerazoo's blocks: adjacent `(conv, BN)` entries of the sequential
  sub-layer lists `body`, `shortcut` and `chain` (see `kerazoo.layers.blocks`);
  nested blocks are searched through those lists and `convs`. In the copy the
  convolution is replaced by a biased one with the folded weights and the
  BatchNorm by `keras.layers.Identity`, so the block's own `call` still runs.

The folded model is for inference: it has no BatchNorm left to train, and its
blocks' configs do not describe the fold (save the unfolded model, fold after
loading).
"""

import contextlib

import keras
import numpy as np

from kerazoo.layers import BatchNorm

_BATCH_NORMS = (BatchNorm, keras.layers.BatchNormalization)
_LINEAR = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)
CHAINS = ("body", "shortcut", "chain")  # sub-layer lists run in sequence
NESTED = CHAINS + ("convs",)  # lists that may hold blocks


def fold_batchnorm(model):
    """Returns an inference copy of `model` with conv/dense -> BatchNorm pairs folded.

    Args:
        model: a built Functional Keras model (every zoo model is one).

    Returns:
        A new `keras.Model` with the same inputs and, in inference mode
        (`training=False`), the same outputs up to float round-off; `model` is
        left unchanged.

    Raises:
        ValueError: `model` is not Functional (a subclassed model's graph is unknown).
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "operations"):
        raise ValueError("fold_batchnorm needs a Functional model. "
                         f"Received: model of type {type(model).__name__}")
    pairs = _graph_pairs(model)  # {id(bn): (bn, conv)}
    folded_convs = {id(conv): bn for bn, conv in pairs.values()}
    origin = {}  # id(clone) -> original layer

    def clone_function(layer):
        if id(layer) in pairs:  # a placeholder, never called: call_function skips it
            new = keras.layers.Identity(name=layer.name)
        else:
            config = layer.get_config()
            if id(layer) in folded_convs:
                config["use_bias"] = True
            with _global_policy(layer.dtype_policy):
                new = layer.__class__.from_config(config)
        origin[id(new)] = layer
        return new

    def call_function(layer, *args, **kwargs):
        old = origin[id(layer)]
        if id(old) in pairs:
            return args[0]  # the BatchNorm's input: the folded conv's output
        with _global_policy(old.dtype_policy):  # sub-layers made in build, too
            return layer(*args, **kwargs)

    try:
        folded = keras.models.clone_model(model, clone_function=clone_function,
                                          call_function=call_function)
    except ValueError as error:  # e.g. a Sequential model: clone_model has no call_function
        raise ValueError(f"fold_batchnorm cannot copy model {model.name!r}: {error}") from None
    for new in folded.layers:
        old = origin.get(id(new))
        if old is None:  # the InputLayer
            continue
        if id(old) in folded_convs:
            new.set_weights(folded_weights(old, folded_convs[id(old)]))
        else:
            new.set_weights(old.get_weights())
            _fold_blocks(new)
    return folded


@contextlib.contextmanager
def _global_policy(policy):
    """Runs with `policy` as the global dtype policy.

    kerazoo's blocks make their sub-layers without a `dtype`, so the sub-layers
    take the global policy in force when the block is constructed or built; a
    copy of a mixed-precision block must be made under the same policy.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def count_batch_norms(model):
    """BatchNorm layers (kerazoo's or Keras's) anywhere in `model`: one moving mean each."""
    return sum(1 for w in model.weights if w.path.endswith("moving_mean"))


def foldable(layer, norm):
    """Whether `norm` (a BatchNorm fed by `layer`) folds into `layer`'s kernel and bias."""
    if not isinstance(layer, _LINEAR) or not isinstance(norm, _BATCH_NORMS):
        return False
    if keras.activations.serialize(layer.activation) != "linear":
        return False
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return False
    if getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False):
        return False
    if tuple(norm.moving_mean.shape) != (layer.kernel.shape[-1],):
        return False
    # The BatchNorm must normalize the output-channel axis: the last one.
    rank = getattr(norm.input_spec, "ndim", None)
    return norm.axis == -1 or (rank is not None and norm.axis == rank - 1)


def folded_weights(layer, norm):
    """`[kernel, bias]` of `layer` with `norm` (inference mode) folded in, float64 math."""
    kernel = np.asarray(layer.kernel.numpy(), np.float64)
    channels = kernel.shape[-1]
    bias = (np.asarray(layer.bias.numpy(), np.float64) if layer.use_bias
            else np.zeros(channels))
    gamma = np.asarray(norm.gamma.numpy(), np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta.numpy(), np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean.numpy(), np.float64)
    variance = np.asarray(norm.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)  # [out]
    dtype = layer.kernel.dtype
    return [(kernel * scale).astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]


def _graph_pairs(model):
    """`{id(bn): (bn, conv)}` for the foldable pairs of `model`'s own graph."""
    producer, consumers = {}, {}
    for layer in model.layers:
        for tensor in keras.tree.flatten(layer.output):
            producer[id(tensor)] = layer
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    for tensor in keras.tree.flatten(model.outputs):
        consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    pairs = {}
    # A layer called more than once (shared) has one inbound node per call;
    # `layer.input` / `output` then name only the first call, so leave it be.
    for layer in model.layers:
        if not isinstance(layer, _BATCH_NORMS) or len(layer._inbound_nodes) != 1:
            continue
        inputs = keras.tree.flatten(layer.input)
        conv = producer.get(id(inputs[0])) if len(inputs) == 1 else None
        if (conv is not None and len(conv._inbound_nodes) == 1
                and consumers.get(id(inputs[0])) == 1 and foldable(conv, layer)):
            pairs[id(layer)] = (layer, conv)
    return pairs


def _fold_blocks(layer):
    """Folds the (conv, BN) pairs inside `layer`'s sub-layer lists, in place."""
    for attr in CHAINS:
        chain = getattr(layer, attr, None)
        if not isinstance(chain, list):
            continue
        for i in range(len(chain) - 1):
            conv, norm = chain[i], chain[i + 1]
            if foldable(conv, norm):
                _replace(layer, chain, i, _folded_copy(conv, norm))
                # The BN's dtype policy: an Identity under another would cast.
                _replace(layer, chain, i + 1,
                         keras.layers.Identity(name=norm.name, dtype=norm.dtype_policy))
    for attr in NESTED:
        for sub in getattr(layer, attr, None) or []:
            if isinstance(sub, keras.layers.Layer):
                _fold_blocks(sub)


def _folded_copy(conv, norm):
    """A built copy of `conv` with a bias, holding the folded weights."""
    config = conv.get_config()
    config["use_bias"] = True
    # Its weights are set right after building: skip drawing random ones.
    config["kernel_initializer"] = config["bias_initializer"] = "zeros"
    new = conv.__class__.from_config(config)
    kernel_shape = tuple(conv.kernel.shape)
    if isinstance(conv, keras.layers.Dense):
        input_shape = (None, kernel_shape[0])
    else:  # (k..., in / groups, out); only the channel count matters to build
        input_shape = (None,) * (len(kernel_shape) - 1) + (kernel_shape[-2] * conv.groups,)
    new.build(input_shape)
    new.set_weights(folded_weights(conv, norm))
    return new


def _replace(block, chain, index, new):
    """Puts `new` at `chain[index]`, a tracked sub-layer list of the built `block`.

    Keras locks a built layer's state so no sub-layer is added by accident;
    swapping one for its folded twin is deliberate, so unlock around it, as
    Keras's own `quantize()` does. pop/insert keep the tracker (and so
    `block.weights`) in step with the list.
    """
    block._tracker.unlock()
    try:
        chain.pop(index)
        chain.insert(index, new)
    finally:
        block._tracker.lock()

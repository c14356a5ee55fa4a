"""Every registered model through the same checks (timm's test_models pattern).

Small models run at 32x32x1 with a batch of 2: the checks are about wiring,
not accuracy, and the per-layer overhead of the deep variants dominates.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerazoo.models
from models_helpers import NUM_CLASSES, SMALL, every_model, small_model

NAMES = kerazoo.models.list_models()
# Channels of the last feature map (include_top=False).
FEATURES = {"lenet": 16, "lenet_bn": 16, "resnet18": 512, "resnet34": 512, "resnet50": 2048,
            "resnet101": 2048, "resnet152": 2048, "densenet": 248, "densenet121": 1024,
            "densenet169": 1664, "densenet201": 1920}


def test_feature_table_covers_every_model():
    assert sorted(FEATURES) == NAMES


@pytest.mark.parametrize("name", every_model())
def test_forward_at_a_small_shape(name, images):
    x, _ = images
    logits = small_model(name)(x, training=False)
    assert tuple(logits.shape) == (2, NUM_CLASSES)
    assert np.isfinite(logits.numpy()).all()


@pytest.mark.parametrize("name", every_model())
def test_one_training_step(name, images):
    model = small_model(name)
    x, y = images
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(loss.numpy())
    missing = [w.path for w, g in zip(model.trainable_weights, grads) if g is None]
    assert not missing, missing
    assert all(np.isfinite(g.numpy()).all() for g in grads)


@pytest.mark.parametrize("name", every_model())
def test_features_with_pooling(name, images):
    x, _ = images
    pooling = "max" if name.startswith("lenet") else "avg"  # both kinds, one build each
    model = kerazoo.models.create(name, input_shape=SMALL, include_top=False, pooling=pooling)
    assert tuple(model(x, training=False).shape) == (2, FEATURES[name])
    assert "logits" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("name, shape", [("lenet_bn", (2, 4, 4, 16)),
                                         ("resnet18", (2, 1, 1, 512)),
                                         ("densenet", (2, 1, 1, 248))])
def test_feature_map_without_pooling(name, shape):
    side = 28 if name.startswith("lenet") else 32
    model = kerazoo.models.create(name, input_shape=(side, side, 1), include_top=False)
    assert tuple(model(np.zeros((2, side, side, 1), "float32")).shape) == shape


@pytest.mark.parametrize("name", every_model())
def test_keras_file_round_trip(name, images, tmp_path):
    model = small_model(name)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)  # no custom_objects: all registered
    x, _ = images
    # Same weights, same ops, same machine: bit-identical.
    np.testing.assert_array_equal(restored(x, training=False).numpy(),
                                  model(x, training=False).numpy())


@pytest.mark.parametrize("name, side", [("lenet", 16), ("densenet", 29), ("resnet18", 1)])
def test_runs_at_its_minimum_size_and_any_channels(name, side):
    assert kerazoo.models.min_input_size(name) == side
    model = kerazoo.models.create(name, input_shape=(side, side + 3, 3))
    assert tuple(model(np.zeros((2, side, side + 3, 3), "float32")).shape) == (2, 10)


@pytest.mark.parametrize("policy, half", [("mixed_float16", "float16"),
                                          ("mixed_bfloat16", "bfloat16")])
def test_classifier_activation_and_float32_logits_under_mixed_precision(policy, half):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = kerazoo.models.create("resnet18", input_shape=SMALL,
                                      classifier_activation="softmax")
        out = model(np.ones((2,) + SMALL, "float32"), training=False)
        assert model.get_layer("stem_conv").compute_dtype == half
        assert model.get_layer("logits").compute_dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_default_logits_have_no_activation():
    model = kerazoo.models.create("lenet")
    assert model.get_layer("logits").activation is keras.activations.linear
    assert model.get_layer("logits").dtype_policy.compute_dtype == "float32"


def test_any_size_with_unknown_height_and_width():
    model = kerazoo.models.create("resnet18", input_shape=(None, None, 2))
    for shape in ((1, 40, 50, 2), (1, 64, 33, 2)):
        assert tuple(model(np.zeros(shape, "float32")).shape) == (1, 10)


def sub_layers(layer):
    """`layer` and every layer inside kerazoo's blocks (body, shortcut, chain, convs)."""
    yield layer
    for attribute in ("body", "shortcut", "chain", "convs"):
        for inner in getattr(layer, attribute, None) or []:
            yield from sub_layers(inner)


@pytest.mark.parametrize("name", ["lenet_bn", "resnet18", "densenet", "resnet50"])
def test_glorot_initialization_as_the_book(name):
    # The book initializes with Xavier; Keras's default glorot_uniform is the same.
    model = small_model(name)
    kernels = [inner for layer in model.layers for inner in sub_layers(layer)
               if isinstance(inner, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(kernels) > 2
    for layer in kernels:
        assert isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform), layer.name

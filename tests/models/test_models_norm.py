"""norm="keras": the identical architecture with keras.layers.BatchNormalization.

Weights are copied from the kerazoo-norm model (`set_weights`; the order is
checked name by name first). Inference mode is a fixed affine map per channel,
so the two agree to float32 round-off: 1e-5.

Training mode is not that well conditioned at random initialization: every BN
divides by batch statistics of a few values (at 32x32 the last stage is 1x1,
so batch x 1 x 1), and a deep stack amplifies round-off. Measured with a
batch of 8: perturbing the input by ~1 ulp moves ResNet-50's logits by ~1e-3
(ResNet-18 ~1e-5, LeNet-BN ~1e-6) in either implementation alone. So the
training-mode tolerance is 1e-5 plus ten times that measured sensitivity: a
wiring or `training`-flag difference shows up as O(1), far above it.
"""

import numpy as np
import pytest

from models_helpers import SMALL, every_model, small_model


@pytest.fixture(scope="module", params=every_model())
def pair(request):
    """The kerazoo-norm model and its keras-norm twin (weights copied by each test)."""
    return small_model(request.param), small_model(request.param, norm="keras")


def test_same_weights_in_the_same_order(pair):
    ours, theirs = pair
    # Same names and shapes weight by weight, so set_weights copies like for like.
    assert [(w.path, w.shape, w.trainable) for w in ours.weights] == [
        (w.path, w.shape, w.trainable) for w in theirs.weights]
    assert ours.count_params() == theirs.count_params()


def test_same_outputs_in_inference(pair, images):
    ours, theirs = pair
    theirs.set_weights(ours.get_weights())
    x, _ = images
    np.testing.assert_allclose(ours(x, training=False).numpy(),
                               theirs(x, training=False).numpy(), rtol=0, atol=1e-5)


def test_same_outputs_and_statistics_in_training(pair):
    ours, theirs = pair
    theirs.set_weights(ours.get_weights())
    rng = np.random.default_rng(1)
    x = rng.random((8,) + SMALL, dtype=np.float32)
    y_ours, y_theirs = ours(x, training=True).numpy(), theirs(x, training=True).numpy()
    # The first BN sees the same input in both: its moving statistics match tightly
    # (same momentum convention, both average the biased batch variance).
    for a, b in zip(ours.non_trainable_weights[:2], theirs.non_trainable_weights[:2]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6, err_msg=a.path)
    # Training-mode outputs depend on the batch only, not on the moving statistics.
    nudged = x * (1 + 1e-7 * rng.standard_normal(x.shape, dtype=np.float32))  # ~1 ulp
    sensitivity = np.abs(theirs(nudged, training=True).numpy() - y_theirs).max()
    np.testing.assert_allclose(y_ours, y_theirs, rtol=0, atol=1e-5 + 10 * sensitivity)

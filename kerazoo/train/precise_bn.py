"""Precise BatchNorm statistics: re-estimate the moving averages with fixed weights.

During training each BatchNorm keeps an exponential moving average of its
batch statistics (momentum 0.9 in the book: about the last 10 batches). At a
large learning rate (the book's LeNet-BN trains at lr 1.0) the weights move
fast, so those 10 batches were seen by 10 different networks and the average
is a noisy, lagging estimate of the statistics the *final* network produces.
On the real Fashion-MNIST this moves LeNet-BN's inference-mode test accuracy
by several points from epoch to epoch (RESULTS.md).

The remedy, "precise BN" (Wu & Johnson, "Rethinking 'Batch' in BatchNorm",
2021; on by default in FAIR's pycls with 8192 images), freezes the weights
after training and runs `num_batches` training batches through the network in
training mode, replacing each moving mean and variance with the plain average
of the per-batch means and (biased, 1/m) variances. Training itself never
reads the moving statistics, so this changes inference only.
"""

import keras
import numpy as np
import tensorflow as tf

from kerazoo.layers import BatchNorm

NORM_TYPES = (BatchNorm, keras.layers.BatchNormalization)


def batch_norm_layers(model):
    """The trainable BatchNorm layers of `model` (kerazoo's and Keras's), in order.

    Frozen (`trainable=False`) layers run in inference mode and keep their
    statistics, so they are left out.
    """
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, NORM_TYPES) and layer.trainable]


class PreciseBatchNorm:
    """Re-estimates a model's BatchNorm statistics from a fixed set of batches.

    Args:
        model: a built Keras model.
        batches: a `tf.data.Dataset` of `(images, labels)` training batches
            (labels ignored), at the training batch size: each BatchNorm
            normalizes by statistics of batches of that size in training,
            and the average is taken over batches of the same size.
        strategy: the `tf.distribute` strategy the model was built under
            (default: the current one). Each batch is split over its replicas
            as in training, so synchronized BatchNorms see global statistics.
    """

    def __init__(self, model, batches, strategy=None):
        self.model = model
        self.layers = batch_norm_layers(model)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.batches = self.strategy.experimental_distribute_dataset(batches)
        self._forward = None

    def _make_forward(self):
        @tf.function
        def forward(images):
            self.strategy.run(lambda x: self.model(x, training=True), args=(images,))
        return forward

    def __call__(self):
        """Replaces every moving mean/variance with its average over the batches.

        Returns:
            The number of batches averaged (0 when the model has no BatchNorm).
        """
        if not self.layers:
            return 0
        momenta = [layer.momentum for layer in self.layers]
        sums = [[0.0, 0.0] for _ in self.layers]
        count = 0
        try:
            # With momentum 0 a training call leaves exactly the batch's own
            # statistics in moving_mean / moving_variance; the forward
            # function is traced under momentum 0 and kept for later epochs.
            for layer in self.layers:
                layer.momentum = 0.0
            if self._forward is None:
                self._forward = self._make_forward()
            for images, _ in self.batches:
                self._forward(images)
                for total, layer in zip(sums, self.layers):
                    total[0] = total[0] + np.asarray(layer.moving_mean.numpy(), np.float64)
                    total[1] = total[1] + np.asarray(layer.moving_variance.numpy(), np.float64)
                count += 1
        finally:
            for layer, momentum in zip(self.layers, momenta):
                layer.momentum = momentum
        if not count:
            raise ValueError("PreciseBatchNorm needs at least one batch; the dataset is empty")
        for (mean_sum, variance_sum), layer in zip(sums, self.layers):
            layer.moving_mean.assign((mean_sum / count).astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(
                (variance_sum / count).astype(layer.moving_variance.dtype))
        return count

"""The batch-normalization computation, as plain functions on tensors.

Three implementations of the same training-mode formula (section 5.10 of the
book):

    mean = 1/m * sum_i x_i                  (over every axis but the channel one)
    var  = 1/m * sum_i (x_i - mean)^2       (biased, as in the book)
    y    = gamma * (x - mean) / sqrt(var + epsilon) + beta

* `reference`: the formula above written out with TensorFlow ops and
  differentiated by autodiff. Readable; handles masks and cross-replica
  (synchronized) statistics. Every other path is tested against it.
* `fused`: TensorFlow's fused kernel (`FusedBatchNormV3`), one op forward and
  one op backward. Used for channels-last inputs of rank >= 3 (convolutions).
* `analytic`: the reference forward with a hand-derived one-pass backward
  (`tf.custom_gradient`), which needs two reductions and one elementwise pass
  instead of autodiff's dozen ops. Used where the fused kernel does not apply
  or is slower (dense inputs, channels-first inputs).

All functions take float32 `x`, `gamma` and `beta` (the layer upcasts
half-precision inputs first) and return `(y, mean, variance)` where `mean` and
`variance` are the biased batch statistics of shape `[C]`, without gradient.
"""

import tensorflow as tf

def reduction_axes(rank, axis):
    """Every axis of a rank-`rank` input except the (non-negative) `axis`."""
    return [a for a in range(rank) if a != axis]


def _broadcast_shape(rank, axis, channels):
    shape = [1] * rank
    shape[axis] = channels
    return shape


def moments(x, axis, mask=None, synchronized=False):
    """Biased batch mean and variance of `x` per channel of `axis`.

    Args:
        x: float32 tensor of rank >= 2.
        axis: the channel axis (non-negative).
        mask: optional tensor of shape `x.shape[:-1]` (so only with
            `axis == rank - 1`); positions where it is false (or 0) are
            left out, as in Keras (a float mask is read as a boolean).
        synchronized: if true and called in a replica context with several
            replicas, sums and counts are all-reduced so the statistics are
            those of the global batch.

    Returns:
        `(mean, variance)`, each of shape `[C]`. Two passes (mean first, then
        squared deviations), so a large mean costs no precision.
    """
    rank = len(x.shape)
    axes = reduction_axes(rank, axis)
    replica = tf.distribute.get_replica_context() if synchronized else None
    if replica is not None and replica.num_replicas_in_sync <= 1:
        replica = None

    def all_sum(t):
        return replica.all_reduce(tf.distribute.ReduceOp.SUM, t) if replica else t

    if mask is None:
        keep = None
        count = tf.cast(tf.size(x) // tf.shape(x)[axis], x.dtype)
    else:
        keep = tf.broadcast_to(tf.expand_dims(tf.cast(mask, tf.bool), -1), tf.shape(x))
        count = tf.reduce_sum(tf.cast(keep, x.dtype), axes)
    count = all_sum(count)

    # Masked-out positions are selected away, not multiplied by 0: whatever
    # they hold (padding of NaN, inf, 1e20) never reaches the statistics or
    # their gradient. (The layer still normalizes them: NaN stays NaN there.)
    kept = x if keep is None else tf.where(keep, x, tf.zeros_like(x))
    mean = tf.math.divide_no_nan(all_sum(tf.reduce_sum(kept, axes)), count)
    squared = tf.square(kept - tf.reshape(mean, _broadcast_shape(rank, axis, -1)))
    if keep is not None:
        squared = tf.where(keep, squared, tf.zeros_like(squared))
    variance = tf.math.divide_no_nan(all_sum(tf.reduce_sum(squared, axes)), count)
    return mean, variance


def reference(x, gamma, beta, axis, epsilon, mask=None, synchronized=False):
    """The book's formula, differentiated by autodiff. See module docstring."""
    mean, variance = moments(x, axis, mask, synchronized)
    shape = _broadcast_shape(len(x.shape), axis, -1)
    x_hat = (x - tf.reshape(mean, shape)) / tf.sqrt(tf.reshape(variance, shape) + epsilon)
    y = tf.reshape(gamma, shape) * x_hat + tf.reshape(beta, shape)
    return y, tf.stop_gradient(mean), tf.stop_gradient(variance)


def analytic(x, gamma, beta, axis, epsilon):
    """Reference forward, closed-form backward. See module docstring.

    With `a = gamma / sqrt(var + eps)`, `d = x - mean` and `m` reduced elements:

        dbeta  = sum(dy)
        dgamma = sum(dy * d) / sqrt(var + eps)
        dx     = a * dy - a * dbeta / m - d * a * dgamma / (m * sqrt(var + eps))
    """
    rank = len(x.shape)
    axes = reduction_axes(rank, axis)
    shape = _broadcast_shape(rank, axis, -1)
    statistics = {}

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        count = tf.cast(tf.size(x) // tf.shape(x)[axis], x.dtype)
        mean = tf.reduce_sum(x, axes) / count
        deviation = x - tf.reshape(mean, shape)  # d, reused by the backward
        variance = tf.reduce_sum(tf.square(deviation), axes) / count
        inv_std = tf.math.rsqrt(variance + epsilon)
        scale = gamma * inv_std
        y = deviation * tf.reshape(scale, shape) + tf.reshape(beta, shape)
        statistics.update(mean=mean, variance=variance)

        def grad(dy):
            dbeta = tf.reduce_sum(dy, axes)
            dgamma = tf.reduce_sum(dy * deviation, axes) * inv_std
            k_dev = -scale * inv_std * dgamma / count  # coefficient of d
            k_const = -scale * dbeta / count
            dx = (dy * tf.reshape(scale, shape) + deviation * tf.reshape(k_dev, shape)
                  + tf.reshape(k_const, shape))
            return dx, dgamma, dbeta

        return y, grad

    y = normalize(x, gamma, beta)
    return y, tf.stop_gradient(statistics["mean"]), tf.stop_gradient(statistics["variance"])


def fused(x, gamma, beta, epsilon):
    """TensorFlow's fused kernel for a channels-last `x` of rank >= 3.

    `x` may be float32, float16 or bfloat16 (the kernel computes in float32
    and rounds only its output); `gamma` and `beta` are float32. The input is
    viewed as NHWC: `[d0, d1*...*d(r-2), 1, C]`.
    """
    shape = tf.shape(x)
    channels = x.shape[-1]
    x4 = tf.reshape(x, [shape[0], -1, 1, channels])
    empty = tf.zeros([0])  # the kernel ignores mean/variance inputs in training
    y, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x4, scale=gamma, offset=beta, mean=empty, variance=empty,
        epsilon=epsilon, data_format="NHWC", is_training=True)
    # The kernel reports the Bessel-corrected variance (for the moving
    # average, as cuDNN does); the book and Keras average the biased one.
    count = tf.cast(tf.size(x) // channels, tf.float32)
    variance = unbiased_variance * tf.math.divide_no_nan(count - 1.0, count)
    return tf.reshape(y, shape), tf.stop_gradient(mean), tf.stop_gradient(variance)


def inference(x, moving_mean, moving_variance, gamma, beta, axis, epsilon):
    """Inference mode: the same affine map with the moving statistics."""
    shape = _broadcast_shape(len(x.shape), axis, -1)
    scale = gamma * tf.math.rsqrt(moving_variance + epsilon)
    offset = beta - moving_mean * scale
    return x * tf.reshape(scale, shape) + tf.reshape(offset, shape)

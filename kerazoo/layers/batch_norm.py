"""`BatchNorm`: batch normalization written by hand (book section 5.10)."""

import operator

import keras
import tensorflow as tf

from kerazoo.layers import batch_norm_ops

IMPLEMENTATIONS = ("auto", "reference", "fused", "analytic")
_HALF_DTYPES = ("float16", "bfloat16")


@keras.saving.register_keras_serializable(package="kerazoo")
class BatchNorm(keras.layers.Layer):
    """Batch normalization, a drop-in for `keras.layers.BatchNormalization`.

    Training mode (`training=True` and the layer trainable) normalizes with the
    statistics of the current batch, taken over every axis but `axis`: over the
    batch for dense inputs `[N, C]`, over batch x height x width for conv inputs
    `[N, H, W, C]` (the book's m x p x q rule):

        mean = 1/m sum x,   var = 1/m sum (x - mean)^2   (biased, as the book)
        y = gamma * (x - mean) / sqrt(var + epsilon) + beta

    and updates the moving statistics with the Keras convention

        moving = moving * momentum + batch * (1 - momentum).

    The book's from-scratch code and Gluon use the same convention with
    momentum 0.9; PyTorch's `momentum` is the weight of the *new* batch, so
    PyTorch's 0.1 is this layer's 0.9. Inference mode (`training=False` or
    `None`, or `trainable=False`, as Keras does since TF 2.0) uses the moving
    statistics instead of the batch ones.

    Under a `mixed_float16` / `mixed_bfloat16` policy the statistics and the
    normalization are computed in float32 from upcast inputs, all four weights
    are float32, and the output is in the compute dtype.

    Args:
        axis: the channel axis (default -1, channels last; 1 for channels
            first). Statistics are per entry of this axis.
        momentum: moving-average momentum in [0, 1), Keras convention.
        epsilon: positive constant added to the variance.
        center: whether to add the learned offset `beta`.
        scale: whether to multiply by the learned scale `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: initializers of the four weights.
        beta_regularizer, gamma_regularizer: optional regularizers.
        beta_constraint, gamma_constraint: optional constraints.
        synchronized: if true, under a `tf.distribute` strategy with several
            replicas the batch statistics are all-reduced over the global
            batch, as if one device had seen it whole.
        implementation: "auto" (default) picks the fastest exact path:
            TensorFlow's fused kernel for channels-last inputs of rank >= 3,
            a closed-form backward for the others, the readable reference
            (autodiff) path for masks and synchronized statistics.
            "reference", "fused" or "analytic" force one (see
            `batch_norm_ops`); all agree to float32 round-off.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: tensor of rank >= 2 with a known size on `axis`.
        training: Python bool or None; see above.
        mask: optional boolean tensor of shape `inputs.shape[:-1]`, e.g.
            `(batch, time)` for `(batch, time, features)` inputs; masked-out
            positions are left out of the batch statistics.

    Returns:
        A tensor of the input's shape, in the layer's compute dtype.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None,
                 synchronized=False, implementation="auto", **kwargs):
        super().__init__(**kwargs)
        axis = _integer("axis", axis)
        momentum = _number("momentum", momentum)
        epsilon = _number("epsilon", epsilon)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1). Received: momentum={momentum}")
        if not epsilon > 0.0:
            raise ValueError(f"epsilon must be > 0. Received: epsilon={epsilon}")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}. "
                             f"Received: implementation={implementation!r}")
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.synchronized = bool(synchronized)
        self.implementation = implementation
        self.supports_masking = True
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def _channel_axis(self, input_shape):
        """Validates the input shape; returns the non-negative channel axis."""
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(f"BatchNorm needs inputs of rank >= 2. "
                             f"Received: input_shape={tuple(input_shape)}")
        if not -rank <= self.axis < rank:
            raise ValueError(f"axis {self.axis} is out of range for inputs of rank {rank}. "
                             f"Received: axis={self.axis}, input_shape={tuple(input_shape)}")
        axis = self.axis % rank
        if input_shape[axis] is None:
            raise ValueError(f"BatchNorm needs a known size on the normalized axis {self.axis}. "
                             f"Received: input_shape={tuple(input_shape)}")
        return axis

    def build(self, input_shape):
        # Deferred initialization (book 5.10): the channel count comes from
        # the first input, not from the constructor.
        axis = self._channel_axis(input_shape)
        if self.implementation == "fused":
            self._check_fused(input_shape)
        shape = (input_shape[axis],)
        if self.scale:
            self.gamma = self.add_weight(
                shape=shape, name="gamma", initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                trainable=True, autocast=False)
        if self.center:
            self.beta = self.add_weight(
                shape=shape, name="beta", initializer=self.beta_initializer,
                regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                trainable=True, autocast=False)
        # Statistics are float32 state, never autocast to a half compute dtype.
        self.moving_mean = self.add_weight(
            shape=shape, name="moving_mean", initializer=self.moving_mean_initializer,
            trainable=False, autocast=False)
        self.moving_variance = self.add_weight(
            shape=shape, name="moving_variance",
            initializer=self.moving_variance_initializer, trainable=False, autocast=False)
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape),
                                                 axes={self.axis: input_shape[axis]})

    def compute_output_shape(self, input_shape):
        self._channel_axis(input_shape)
        return tuple(input_shape)

    def _affine_weights(self, channels, dtype):
        """gamma and beta as `dtype` tensors (ones / zeros when disabled)."""
        gamma = tf.cast(self.gamma, dtype) if self.scale else tf.ones([channels], dtype)
        beta = tf.cast(self.beta, dtype) if self.center else tf.zeros([channels], dtype)
        return gamma, beta

    def _choose_implementation(self, inputs, axis, mask):
        if self.implementation != "auto":
            return self.implementation
        if mask is not None or self.synchronized:
            return "reference"
        if inputs.dtype == tf.float64:  # the fused kernel has no float64 variant
            return "analytic"
        channels_last = axis == len(inputs.shape) - 1
        # The fused kernel wins on conv-shaped inputs; on [N, C] its fixed
        # cost is larger than the whole analytic computation.
        if channels_last and len(inputs.shape) >= 3:
            return "fused"
        return "analytic"

    def _check_fused(self, input_shape):
        axis = self._channel_axis(input_shape)
        if axis != len(input_shape) - 1 or len(input_shape) < 3:
            raise ValueError("implementation='fused' needs channels-last inputs of rank >= 3. "
                             f"Received: axis={self.axis}, input_shape={tuple(input_shape)}")

    def _normalize_batch(self, inputs, axis, mask, dtype):
        """Training mode: returns (y, batch mean, batch variance)."""
        gamma, beta = self._affine_weights(inputs.shape[axis], dtype)
        path = self._choose_implementation(inputs, axis, mask)
        if path in ("fused", "analytic") and (mask is not None or self.synchronized):
            raise ValueError(f"implementation={path!r} supports neither masks nor "
                             "synchronized statistics; use 'reference' or 'auto'.")
        if path == "fused":
            self._check_fused(inputs.shape)
            # The kernel reads half inputs directly, in float32 internally.
            return batch_norm_ops.fused(inputs, gamma, beta, self.epsilon)
        x = tf.cast(inputs, dtype)
        if path == "analytic":
            return batch_norm_ops.analytic(x, gamma, beta, axis, self.epsilon)
        return batch_norm_ops.reference(x, gamma, beta, axis, self.epsilon,
                                        mask=mask, synchronized=self.synchronized)

    def call(self, inputs, training=None, mask=None):
        inputs = tf.convert_to_tensor(inputs)
        axis = self._channel_axis(inputs.shape)
        if mask is not None and len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError("mask must have one dimension less than the inputs. "
                             f"Received: mask.shape={tuple(mask.shape)}, "
                             f"inputs.shape={tuple(inputs.shape)}")
        # Like Keras: half inputs are upcast to float32 (BN overflows in
        # float16), float64 inputs stay float64.
        dtype = tf.float64 if inputs.dtype == tf.float64 else tf.float32
        if training and self.trainable:
            outputs, mean, variance = self._normalize_batch(inputs, axis, mask, dtype)
            self._update_moving(self.moving_mean, mean)
            self._update_moving(self.moving_variance, variance)
        else:
            gamma, beta = self._affine_weights(inputs.shape[axis], dtype)
            outputs = batch_norm_ops.inference(
                tf.cast(inputs, dtype), tf.cast(self.moving_mean, dtype),
                tf.cast(self.moving_variance, dtype), gamma, beta, axis, self.epsilon)
        return tf.cast(outputs, self.compute_dtype)

    def _update_moving(self, moving, batch):
        # moving = moving * momentum + batch * (1 - momentum), in the
        # statistic's own dtype (float32 under mixed precision).
        batch = tf.cast(batch, moving.dtype)
        moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))

    def get_config(self):
        config = super().get_config()
        s = keras.saving.serialize_keras_object
        config.update({
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            "beta_initializer": s(self.beta_initializer),
            "gamma_initializer": s(self.gamma_initializer),
            "moving_mean_initializer": s(self.moving_mean_initializer),
            "moving_variance_initializer": s(self.moving_variance_initializer),
            "beta_regularizer": s(self.beta_regularizer),
            "gamma_regularizer": s(self.gamma_regularizer),
            "beta_constraint": s(self.beta_constraint),
            "gamma_constraint": s(self.gamma_constraint),
            "synchronized": self.synchronized, "implementation": self.implementation,
        })
        return config


def _integer(name, value):
    """`value` as a Python int (ints, NumPy integers, 0-d integer arrays), else ValueError."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer. Received: {name}={value!r}") from None


def _number(name, value):
    """`value` as a Python float (any real number or 0-d numeric array), else ValueError."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number. Received: {name}={value!r}") from None

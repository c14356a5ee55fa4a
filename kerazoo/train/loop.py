"""`train_and_evaluate`: one training run, from a TrainConfig to a trained model."""

import dataclasses
import json
import math
import os

import keras
import tensorflow as tf

from kerazoo import atomic, data, models
from kerazoo.layers import BatchNorm
from kerazoo.train import augment, runtime
from kerazoo.train.callbacks import EpochCheckpoint, EpochReport, EvaluateEachEpoch, StopAtStep
from kerazoo.train.config import ConfigError, check_compatible, resolve
from kerazoo.train.precise_bn import PreciseBatchNorm


def _prepare_model_dir(config):
    """Creates model_dir, refuses a conflicting or unwanted earlier run."""
    try:
        os.makedirs(config.model_dir, exist_ok=True)
        atomic.write_text(os.path.join(config.model_dir, ".write_test"), "")
        os.remove(os.path.join(config.model_dir, ".write_test"))
    except OSError as e:
        raise ConfigError(f"model_dir is not writable: {config.model_dir} ({e.strerror})")
    config_path = os.path.join(config.model_dir, "config.json")
    checkpoint = EpochCheckpoint(os.path.join(config.model_dir, "checkpoints"))
    if os.path.exists(config_path):
        with open(config_path) as f:
            check_compatible(json.load(f), config)
    if checkpoint.latest_epoch() and not config.resume:
        raise ConfigError(f"model_dir {config.model_dir} already holds a checkpoint; pass "
                          "--resume to continue it or choose a new --model_dir")
    return checkpoint


def _check_export_dir(config):
    """Refuses, before any training, an export_dir the export at the end would refuse.

    kerazoo-train never overwrites an export, so a re-run of a finished run
    with the same --export_dir is refused here too (its training is done and
    its export exists); re-running it with a new --export_dir just exports.
    """
    if not config.export_dir:
        return
    from kerazoo.export import ExportError, check_export_path

    path = config.export_dir
    try:
        check_export_path(path)
    except ExportError as e:
        if os.path.isfile(path):
            raise
        raise ExportError(f"export_dir exists and is not empty: {path}; kerazoo-train does not "
                          "overwrite an export: choose a new --export_dir (or re-export this "
                          "run with kerazoo-export --overwrite)") from e
    parent = os.path.dirname(os.path.abspath(path))
    try:  # where export_saved_model will stage and rename
        os.makedirs(parent, exist_ok=True)
        atomic.check_writable(parent)
    except OSError as e:
        raise ExportError(f"export_dir is not writable: {path} ({e.strerror})") from None


def _save_config(config, policy):
    """Records the run's config, once its data and input shape are known good.

    Beside the config's fields, `resolved_precision` is the policy "auto"
    resolved to, so exporting the run later rebuilds it under the same policy
    on any machine.
    """
    record = dict(json.loads(config.to_json()), resolved_precision=policy)
    atomic.write_text(os.path.join(config.model_dir, "config.json"),
                      json.dumps(record, indent=2, sort_keys=True))


def _multiply_adds(name, input_shape):
    """Multiply-adds per image of a float32 probe of `name` at `input_shape`."""
    from kerazoo.models import summary

    return summary.multiply_adds(models.create(name, input_shape=input_shape))


def _input_shape(config, info):
    height, width, channels = info.image_shape
    if config.resize:
        height = width = config.resize
    minimum = models.min_input_size(config.model)
    if min(height, width) < minimum:
        raise ConfigError(f"input {height}x{width} is smaller than {config.model}'s minimum "
                          f"{minimum}x{minimum}; received resize={config.resize}")
    return (height, width, channels)


def _optimizer(config, steps_per_epoch):
    lr = config.lr
    if config.lr_schedule == "cosine":
        total = config.epochs * steps_per_epoch
        warmup = config.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.lr, decay_steps=total - warmup,
            warmup_target=config.lr if warmup else None, warmup_steps=warmup)
    return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum,
                                weight_decay=config.weight_decay or None)


def _synchronize_batch_norm(model):
    """Global batch statistics when several replicas each see part of a batch."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, BatchNorm):
            layer.synchronized = True


def _datasets(config, arrays, steps_per_epoch, initial_epoch, num_classes):
    (x_train, y_train), (x_test, y_test) = arrays
    train = data.train_dataset(x_train, y_train, config.batch_size, resize=config.resize,
                               seed=config.seed, initial_epoch=initial_epoch,
                               epochs=config.epochs, steps_per_epoch=steps_per_epoch)
    test = data.test_dataset(x_test, y_test, config.batch_size, resize=config.resize)
    if config.augment:
        train = augment.augment_dataset(train, config.seed, initial_epoch * steps_per_epoch)
    if config.label_smoothing:  # CategoricalCrossentropy wants one-hot labels
        one_hot = lambda x, y: (x, tf.one_hot(y, num_classes))  # noqa: E731
        train, test = train.map(one_hot), test.map(one_hot)
    return train, test


def _precise_batch_norm(config, arrays, steps_per_epoch, model, strategy):
    """A PreciseBatchNorm over the first `precise_bn_samples` training images, or None.

    The same batches every epoch (the epoch-0 order of `config.seed`, without
    augmentation), so the statistics depend on the weights only and a resumed
    run re-estimates them exactly as the uninterrupted one did.
    """
    if not config.precise_bn_samples:
        return None
    (x_train, y_train), _ = arrays
    num_batches = min(steps_per_epoch, math.ceil(config.precise_bn_samples / config.batch_size))
    batches = data.train_dataset(x_train, y_train, config.batch_size, resize=config.resize,
                                 seed=config.seed, epochs=1, steps_per_epoch=num_batches)
    return PreciseBatchNorm(model, batches, strategy)


def train_and_evaluate(config, print_fn=print):
    """Trains `config.model` on `config.dataset`; returns (model, final metrics dict).

    Steps: resolve the recipe, prepare model_dir and check export_dir,
    strategy, precision, data, model, restore, fit with
    checkpoints/metrics/TensorBoard, export.

    Raises:
        ConfigError, kerazoo.data.DataError, kerazoo.export.ExportError: bad
            input, before any training.
    """
    config = resolve(config)
    checkpoint = _prepare_model_dir(config)
    _check_export_dir(config)  # a refused export must cost no training
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = runtime.make_strategy(config.strategy, config.logical_cpus)
    *arrays, info = data.load_arrays(config.dataset, config.data_dir)
    input_shape = _input_shape(config, info)
    policy, reason = runtime.choose_precision(
        config.precision, multiply_adds=lambda: _multiply_adds(config.model, input_shape))
    keras.utils.set_random_seed(config.seed)  # a probe model may have drawn from it
    keras.config.set_dtype_policy(policy)  # before the model is built
    jit_compile = runtime.choose_jit_compile(config.jit_compile)
    print_fn(f"kerazoo-train: model={config.model} precision={policy} ({reason}) "
             f"jit_compile={jit_compile} replicas={strategy.num_replicas_in_sync} "
             f"lr={config.lr} epochs={config.epochs} batch_size={config.batch_size} "
             f"resize={config.resize}")

    steps_per_epoch = data.steps_per_epoch(info.num_train, config.batch_size)
    if config.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
    epochs = config.epochs
    if config.max_steps:
        steps_per_epoch = min(steps_per_epoch, config.max_steps)
        epochs = min(epochs, math.ceil(config.max_steps / steps_per_epoch))
    _save_config(config, policy)  # the user's epochs, before --max_steps shortens this run
    config = dataclasses.replace(config, epochs=epochs)

    with strategy.scope():
        model = models.create(config.model, num_classes=info.num_classes,
                              input_shape=input_shape)
        if strategy.num_replicas_in_sync > 1:
            _synchronize_batch_norm(model)
        loss = (keras.losses.CategoricalCrossentropy(from_logits=True,
                                                     label_smoothing=config.label_smoothing)
                if config.label_smoothing else
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.compile(optimizer=_optimizer(config, steps_per_epoch), loss=loss,
                      metrics=["accuracy"], jit_compile=jit_compile)
        initial_epoch = checkpoint.restore(model)
    if initial_epoch:
        print_fn(f"kerazoo-train: resuming {config.model_dir} after epoch {initial_epoch}")

    train, test = _datasets(config, arrays, steps_per_epoch, initial_epoch, info.num_classes)
    examples = min(info.num_train, steps_per_epoch * config.batch_size)
    report = EpochReport(config.model_dir, examples, initial_epoch, print_fn=print_fn)
    recalibrate = _precise_batch_norm(config, arrays, steps_per_epoch, model, strategy)
    callbacks = [EvaluateEachEpoch(test, recalibrate, listeners=[report]),
                 report, checkpoint,  # metrics first: a kill in between redoes the epoch
                 keras.callbacks.TensorBoard(os.path.join(config.model_dir, "logs"))]
    if config.max_steps:
        callbacks.insert(0, StopAtStep(config.max_steps))
    if initial_epoch < epochs:
        model.fit(train, epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch,  # EvaluateEachEpoch tests
                  callbacks=callbacks, shuffle=False,  # the dataset shuffles by (seed, epoch)
                  verbose=1 if _is_tty() else 0)
    if config.export_dir:
        from kerazoo import export
        export.export_saved_model(model, config.export_dir, class_names=info.class_names,
                                  image_shape=info.image_shape, resize=config.resize)
    final = report.rows[-1] if report.rows else {}
    keras.config.set_dtype_policy("float32")
    return model, final


def _is_tty():
    import sys
    return sys.stdout.isatty()

"""`TrainConfig`: everything a training run needs, frozen and validated.

`bin/kerazoo-train` turns its flags into a `TrainConfig`; the library never
reads flags. Fields left `None` are filled from the model's book recipe by
`resolve`, so `TrainConfig(model="resnet18")` trains as the book does.
"""

import dataclasses
import json
import os

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = ("auto", "true", "false")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
OPTIMIZERS = ("sgd",)
LR_SCHEDULES = ("constant", "cosine")
# Keys that may change between a run and its resumption: how long to train,
# where to export and how inference statistics are estimated (training never
# reads them), not what is trained.
RUN_CONTROL_KEYS = ("epochs", "max_steps", "resume", "export_dir", "steps_per_epoch",
                    "precise_bn_samples")


class ConfigError(ValueError):
    """A bad training configuration; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: str = "lenet_bn"
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    resize: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.0          # SGD momentum; the book uses plain SGD
    weight_decay: float = 0.0      # decoupled (AdamW-style) weight decay
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    augment: bool = False          # random crop (pad 4) and horizontal flip
    precise_bn_samples: int = 8192  # re-estimate BN statistics before each test; 0: book's EMA
    precision: str = "auto"
    jit_compile: str = "auto"
    strategy: str = "auto"
    logical_cpus: int = 0          # split the CPU into N logical devices (tests)
    seed: int = 0
    model_dir: str = "runs/default"
    resume: bool = True
    export_dir: str | None = None
    steps_per_epoch: int | None = None
    max_steps: int | None = None
    deterministic: bool = False

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def validate(config):
    """Raises ConfigError naming the first bad field and its value."""
    c = config
    _require(c.precision in PRECISIONS,
             f"precision must be one of {PRECISIONS}. Received: precision={c.precision!r}")
    _require(c.jit_compile in JIT_COMPILE,
             f"jit_compile must be one of {JIT_COMPILE}. Received: jit_compile={c.jit_compile!r}")
    _require(c.strategy in STRATEGIES,
             f"strategy must be one of {STRATEGIES}. Received: strategy={c.strategy!r}")
    _require(c.optimizer in OPTIMIZERS,
             f"optimizer must be one of {OPTIMIZERS}. Received: optimizer={c.optimizer!r}")
    _require(c.lr_schedule in LR_SCHEDULES,
             f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={c.lr_schedule!r}")
    _require(c.lr is None or c.lr > 0, f"lr must be > 0. Received: lr={c.lr}")
    _require(c.batch_size is None or c.batch_size >= 1,
             f"batch_size must be >= 1. Received: batch_size={c.batch_size}")
    _require(c.epochs is None or c.epochs >= 1, f"epochs must be >= 1. Received: epochs={c.epochs}")
    _require(c.resize is None or c.resize >= 1, f"resize must be >= 1. Received: resize={c.resize}")
    _require(0 <= c.momentum < 1, f"momentum must be in [0, 1). Received: momentum={c.momentum}")
    _require(c.weight_decay >= 0, f"weight_decay must be >= 0. Received: weight_decay={c.weight_decay}")
    _require(0 <= c.label_smoothing < 1,
             f"label_smoothing must be in [0, 1). Received: label_smoothing={c.label_smoothing}")
    _require(c.warmup_epochs >= 0, f"warmup_epochs must be >= 0. Received: warmup_epochs={c.warmup_epochs}")
    _require(c.steps_per_epoch is None or c.steps_per_epoch >= 1,
             f"steps_per_epoch must be >= 1. Received: steps_per_epoch={c.steps_per_epoch}")
    _require(c.max_steps is None or c.max_steps >= 1,
             f"max_steps must be >= 1. Received: max_steps={c.max_steps}")
    _require(c.precise_bn_samples >= 0,
             f"precise_bn_samples must be >= 0. Received: precise_bn_samples={c.precise_bn_samples}")
    _require(c.logical_cpus >= 0, f"logical_cpus must be >= 0. Received: logical_cpus={c.logical_cpus}")
    _require(not (c.strategy == "multi_worker" and "TF_CONFIG" not in os.environ),
             "strategy=multi_worker needs the TF_CONFIG environment variable")
    _require(not (c.logical_cpus > 1 and c.strategy in ("default",)),
             f"logical_cpus={c.logical_cpus} has no use with strategy=default; use mirrored")
    _require(bool(c.model_dir), "model_dir must not be empty")


def resolve(config):
    """Fills recipe fields left None from the model's book recipe; validates."""
    from kerazoo import models  # deferred: importing models imports TensorFlow

    validate(config)
    if config.model not in models.list_models():
        raise ConfigError(f"unknown model: {config.model!r}; known: "
                          f"{', '.join(models.list_models())}")
    recipe = models.recipe(config.model)
    resolved = dataclasses.replace(
        config,
        lr=recipe.lr if config.lr is None else config.lr,
        epochs=recipe.epochs if config.epochs is None else config.epochs,
        batch_size=recipe.batch_size if config.batch_size is None else config.batch_size,
        resize=recipe.resize if config.resize is None else config.resize,
    )
    validate(resolved)
    return resolved


def check_compatible(saved, current):
    """Refuses to continue a model_dir whose saved config differs from `current`.

    Args:
        saved: dict read from `model_dir/config.json`.
        current: the resolved TrainConfig.
    """
    now = dataclasses.asdict(current)
    conflicts = [f"{key}: saved {saved.get(key)!r} vs now {now[key]!r}"
                 for key in now if key not in RUN_CONTROL_KEYS and saved.get(key) != now[key]]
    if conflicts:
        raise ConfigError(f"model_dir {current.model_dir} holds a run with a different config "
                          f"({'; '.join(conflicts)}); use a new --model_dir")

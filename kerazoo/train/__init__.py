"""The training driver's library: a frozen config and `train_and_evaluate`."""

from kerazoo.train.config import ConfigError, TrainConfig, resolve
from kerazoo.train.loop import train_and_evaluate
from kerazoo.train.precise_bn import PreciseBatchNorm

__all__ = ["ConfigError", "PreciseBatchNorm", "TrainConfig", "resolve", "train_and_evaluate"]

"""`TrainConfig` and `resolve`: the book's recipes, overrides, flag defaults, flagfiles."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kerazoo.train import ConfigError, TrainConfig, resolve
from train_cli import PROGRAM, assert_succeeded, h5_arrays, latest_weights, run_train

# (model, lr, epochs, batch_size, resize): book sections 5.5, 5.10, 5.11, 5.12.
BOOK = [
    ("lenet", 0.9, 5, 256, None),
    ("lenet_bn", 1.0, 5, 256, None),
    ("resnet18", 0.05, 5, 256, 96),
    ("densenet", 0.1, 5, 256, 96),
]


@pytest.mark.parametrize("model, lr, epochs, batch_size, resize", BOOK)
def test_resolve_fills_the_book_recipe(model, lr, epochs, batch_size, resize):
    config = resolve(TrainConfig(model=model))
    assert (config.lr, config.epochs, config.batch_size, config.resize) == (
        lr, epochs, batch_size, resize)


def test_explicit_fields_override_the_recipe():
    given = TrainConfig(model="resnet18", lr=0.01, epochs=2, batch_size=32, resize=64)
    assert resolve(given) == given  # nothing left to fill


def test_resolve_fills_only_what_is_missing():
    config = resolve(TrainConfig(model="densenet", batch_size=64))
    assert (config.lr, config.epochs, config.batch_size, config.resize) == (0.1, 5, 64, 96)


def test_resolve_leaves_the_other_fields_alone():
    given = TrainConfig(model="resnet18", seed=7, momentum=0.9, model_dir="x")
    resolved = resolve(given)
    for field in dataclasses.fields(TrainConfig):
        if field.name not in ("lr", "epochs", "batch_size", "resize"):
            assert getattr(resolved, field.name) == getattr(given, field.name), field.name


def test_resolve_refuses_an_unknown_model_listing_the_known():
    with pytest.raises(ConfigError, match=r"unknown model: 'nope'.*lenet_bn.*resnet18"):
        resolve(TrainConfig(model="nope"))


@pytest.mark.parametrize("field, value", [
    ("lr", 0.0), ("lr", -1.0), ("batch_size", 0), ("epochs", 0), ("resize", 0),
    ("momentum", 1.0), ("weight_decay", -0.1), ("label_smoothing", 1.0),
    ("steps_per_epoch", 0), ("max_steps", 0), ("logical_cpus", -1), ("precise_bn_samples", -1),
    ("precision", "float8"), ("strategy", "tpu"), ("optimizer", "adam"),
    ("lr_schedule", "step"), ("jit_compile", "yes"),
])
def test_invalid_field_is_named_with_its_value(field, value):
    with pytest.raises(ConfigError) as info:
        resolve(TrainConfig(**{field: value}))
    message = str(info.value)
    assert f"{field}=" in message and str(value) in message, message
    assert "\n" not in message


def test_config_is_frozen_and_round_trips_through_json():
    config = resolve(TrainConfig(model="resnet18"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0
    assert TrainConfig(**json.loads(config.to_json())) == config


# --- defaults: what `kerazoo-train` with no flags would train -----------------

_FLAG_DEFAULTS = """
import importlib.machinery, importlib.util, json, sys
loader = importlib.machinery.SourceFileLoader("kerazoo_train", sys.argv[1])
spec = importlib.util.spec_from_loader("kerazoo_train", loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)  # defines the flags; main() is not run
print(json.dumps({name: module.FLAGS[name].default for name in module.FLAGS}, default=str))
"""


def test_program_flag_defaults_are_the_config_defaults():
    # Importing the program defines its flags and imports only absl, so this
    # reads the defaults without starting TensorFlow or training anything.
    proc = subprocess.run([sys.executable, "-c", _FLAG_DEFAULTS, PROGRAM], capture_output=True,
                          text=True, timeout=60, check=True)
    defaults = json.loads(proc.stdout)
    for field in dataclasses.fields(TrainConfig):  # every field is a flag, same default
        assert defaults[field.name] == field.default, field.name


def test_no_flags_trains_lenet_bn_with_the_book_recipe():
    # `kerazoo-train` alone: book 5.10's LeNet-BN, lr 1.0, 5 epochs of batch
    # 256 on 28x28 Fashion-MNIST with plain SGD. (Not run: 5 real epochs.)
    config = resolve(TrainConfig())
    assert config.model == "lenet_bn"
    assert config.dataset == "fashion_mnist"
    assert (config.lr, config.epochs, config.batch_size, config.resize) == (1.0, 5, 256, None)
    assert (config.optimizer, config.momentum, config.weight_decay) == ("sgd", 0.0, 0.0)
    assert (config.lr_schedule, config.label_smoothing, config.augment) == ("constant", 0.0, False)
    assert (config.resume, config.max_steps, config.steps_per_epoch) == (True, None, None)


# --- --flagfile, --max_steps -------------------------------------------------

@pytest.fixture(scope="module")
def flagfile_run(tmp_path_factory):
    """lenet from a flagfile, capped at 3 steps of epochs of 2: (CompletedProcess, model_dir)."""
    root = tmp_path_factory.mktemp("flagfile")
    flagfile = root / "lenet.flags"
    # lenet, not the default lenet_bn, so the file visibly took effect.
    flagfile.write_text("# book 5.5\n--model=lenet\n--epochs=3\n")
    model_dir = root / "run"
    proc = run_train(root, f"--flagfile={flagfile}", f"--model_dir={model_dir}",
                     "--steps_per_epoch=2", "--max_steps=3")
    assert_succeeded(proc)
    return proc, model_dir


def test_flagfile_sets_model_and_epochs(flagfile_run):
    proc, model_dir = flagfile_run
    assert "model=lenet " in proc.stdout
    with open(model_dir / "config.json") as f:
        config = json.load(f)
    assert config["model"] == "lenet"
    assert config["epochs"] == 3
    assert config["lr"] == 0.9  # lenet's recipe, filled because the file sets no lr
    assert config["max_steps"] == 3


def test_max_steps_caps_the_total_steps(flagfile_run):
    _, model_dir = flagfile_run
    weights, _ = latest_weights(model_dir)
    # The optimizer's step counter: its one int64 scalar variable.
    counters = [a for name, a in h5_arrays(weights, prefix="optimizer/").items()
                if a.dtype == np.int64 and a.shape == ()]
    assert len(counters) == 1, counters
    assert int(counters[0]) == 3


# --- recipes/: flagfiles that ship with the project ---------------------------

_FLAG_VALUES = """
import importlib.machinery, importlib.util, json, sys
loader = importlib.machinery.SourceFileLoader("kerazoo_train", sys.argv[1])
spec = importlib.util.spec_from_loader("kerazoo_train", loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
module.FLAGS(["kerazoo-train", *sys.argv[2:]])  # absl parsing, --flagfile included
print(json.dumps({name: module.FLAGS[name].value for name in module.FLAGS}, default=str))
"""
RECIPES_DIR = os.path.join(os.path.dirname(os.path.dirname(PROGRAM)), "recipes")


def _config_from_flags(*argv):
    proc = subprocess.run([sys.executable, "-c", _FLAG_VALUES, PROGRAM, *argv],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    values = json.loads(proc.stdout)
    return TrainConfig(**{f.name: values[f.name] for f in dataclasses.fields(TrainConfig)})


def test_modern_resnet18_recipe_parses_into_a_valid_config():
    flagfile = os.path.join(RECIPES_DIR, "resnet18_modern.flags")
    config = resolve(_config_from_flags(f"--flagfile={flagfile}", "--model_dir=unused"))
    assert config.model == "resnet18"
    # What makes it "modern" against the book's recipe (lr 0.05, constant, plain SGD).
    assert config.momentum > 0 and config.weight_decay > 0
    assert (config.lr_schedule, config.augment) == ("cosine", True)
    assert config.warmup_epochs >= 1 and config.label_smoothing > 0
    assert config.precision == "mixed_bfloat16"

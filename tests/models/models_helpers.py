"""Helpers of the model tests (fixtures live in conftest.py)."""

import functools
import os
import subprocess
import sys

import pytest

import kerazoo.models

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = os.path.join(REPO_ROOT, "bin", "kerazoo-models")
# Runs of the program (each pays TensorFlow's import): the table and one bad
# input. The walk-through and the other bad inputs are checked in-process
# through `summary.report`, whose text or one-line ValueError it prints as is.
PROGRAM_RUNS = {
    "table": ["--models=lenet*", "--input_shape=32,32,1"],
    "unknown_model": ["--model=resnet19"],
}

SMALL = (32, 32, 1)  # fits every model (min sides: lenet 16, densenet 29, resnet 1)
NUM_CLASSES = 5  # not 10 or 1000, so a hard-coded class count shows up

# Same blocks and builder as resnet50 / densenet121, only the depth table
# differs; their per-model runs (5-30 s each on 2 CPUs, mostly per-layer
# overhead and the .keras round trip) are marked slow: `pytest -m slow`.
DEEP = ("resnet101", "resnet152", "densenet169", "densenet201")


def every_model():
    """`list_models()` as pytest params, the deep variants marked slow."""
    return [pytest.param(name, marks=pytest.mark.slow) if name in DEEP else name
            for name in kerazoo.models.list_models()]


@functools.lru_cache(maxsize=None)
def small_model(name, norm="kerazoo"):
    """`name` at 32x32x1 with NUM_CLASSES classes, built once per session."""
    return kerazoo.models.create(name, num_classes=NUM_CLASSES, input_shape=SMALL, norm=norm)


def assert_one_line(error, *parts):
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert str(part) in message, (part, message)


def start_program(args):
    """bin/kerazoo-models with `args`, started in the background."""
    return subprocess.Popen([sys.executable, PROGRAM, *args], text=True,
                            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

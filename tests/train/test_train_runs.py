"""End-to-end runs of `bin/kerazoo-train`: real accuracy, artifacts, kill and resume."""

import json
import math
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image

from train_cli import (FASHION_MNIST_DIR, METRIC_HEADER, assert_succeeded, h5_arrays,
                       latest_weights, launch_train, read_metrics, run_train)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="Fashion-MNIST IDX files absent")
def test_book_recipe_one_epoch_learns_fashion_mnist(tmp_path):
    # The suite's one real-data check: one epoch (235 steps) of the book's
    # lenet_bn recipe, lr 1.0, batch 256, with the driver's default precise-BN
    # statistics (8192 images). Measured after that epoch (seeds 0-4):
    #                                 train acc (epoch mean)   test acc
    #   kerazoo-train (precise BN)     0.763 - 0.771            0.790 0.799 0.736 0.826 0.821
    #   --precise_bn_samples=0 (EMA)   same weights             0.673 0.743 0.722 0.728 0.747
    # The weights after one epoch at lr 1.0 still vary from seed to seed
    # (0.74-0.83); the default seed 0 must reach issue 4's bar of 0.75.
    model_dir = tmp_path / "lenet_bn"
    proc = run_train(tmp_path, f"--model_dir={model_dir}", f"--data_dir={FASHION_MNIST_DIR}",
                     "--epochs=1", "--seed=0")
    assert_succeeded(proc)
    _, rows = read_metrics(model_dir)
    assert [row["epoch"] for row in rows] == ["1"]
    row = {key: float(value) for key, value in rows[0].items()}
    assert row["train_acc"] >= 0.75, rows[0]
    assert row["loss"] <= 0.75, rows[0]  # measured 0.644-0.662
    assert row["test_acc"] >= 0.75, rows[0]
    assert "kerazoo-train: done: test acc" in proc.stdout


# --- artifacts of a short run -------------------------------------------------

def test_stdout_names_the_resolved_run(short_run):
    proc, _ = short_run
    assert "model=lenet_bn" in proc.stdout
    assert "lr=1.0 epochs=2 batch_size=256 resize=None" in proc.stdout
    assert "epoch 1, loss" in proc.stdout and "epoch 2, loss" in proc.stdout


def test_metrics_csv_has_one_finite_row_per_epoch(short_run):
    _, model_dir = short_run
    header, rows = read_metrics(model_dir)
    assert header == METRIC_HEADER
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for row in rows:
        values = {key: float(row[key]) for key in METRIC_HEADER}
        assert all(math.isfinite(v) for v in values.values()), row
        assert 0.0 <= values["train_acc"] <= 1.0 and 0.0 <= values["test_acc"] <= 1.0, row
        assert values["loss"] > 0 and values["test_loss"] > 0, row
        assert values["examples_per_sec"] > 0 and values["epoch_seconds"] > 0, row
        assert values["lr"] == 1.0, row  # the book's constant rate


def test_curves_png_is_a_valid_image(short_run):
    _, model_dir = short_run
    path = model_dir / "curves.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()  # checks the chunks' CRCs
    with Image.open(path) as image:
        image.load()  # decodes every pixel
        assert image.size[0] > 100 and image.size[1] > 100


def test_config_json_holds_the_resolved_recipe(short_run):
    _, model_dir = short_run
    with open(model_dir / "config.json") as f:
        config = json.load(f)
    assert config["model"] == "lenet_bn"
    assert config["lr"] == 1.0
    assert config["batch_size"] == 256
    assert config["resize"] is None
    assert config["epochs"] == 2
    assert config["steps_per_epoch"] == 5
    assert config["model_dir"] == str(model_dir)


def test_tensorboard_event_files_exist(short_run):
    _, model_dir = short_run
    events = [os.path.join(d, f) for d, _, files in os.walk(model_dir / "logs")
              for f in files if f.startswith("events.out.tfevents.")]
    assert events, f"no event files under {model_dir / 'logs'}"
    assert all(os.path.getsize(e) > 0 for e in events)


def test_checkpoint_index_points_at_the_last_epoch(short_run):
    _, model_dir = short_run
    weights, epoch = latest_weights(model_dir)
    assert epoch == 2
    assert os.path.basename(weights) == "epoch-0002.weights.h5"
    arrays = h5_arrays(weights)
    assert arrays, f"{weights} holds no datasets"
    assert all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind == "f")
    # No temporary files left by the atomic writes.
    leftovers = [f for f in os.listdir(model_dir / "checkpoints") if f.startswith(".")]
    assert leftovers == []


# --- kill -9 in epoch 2, resume ----------------------------------------------

RESUME_FLAGS = ("--epochs=3", "--steps_per_epoch=20", "--deterministic")
# Measured: with --deterministic the resumed run's metrics and final weights
# are bit-identical to the uninterrupted run's (max abs difference 0.0 over
# all weights). The order of each epoch depends on (seed, epoch) only, the
# checkpoint holds every variable including the optimizer's step, and
# op determinism fixes the reduction order, so nothing is allowed to differ.
RESUME_ATOL = 0.0


def _wait_for_epoch(proc, model_dir, epoch, timeout=240):
    index = os.path.join(model_dir, "checkpoints", "checkpoint.json")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"run exited {proc.returncode} before epoch {epoch}"
        try:
            with open(index) as f:
                if json.load(f)["epoch"] >= epoch:
                    return
        except (OSError, ValueError):  # not written yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint of epoch {epoch} after {timeout} s")


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    (tmp_path / "ra").mkdir()
    (tmp_path / "rb").mkdir()
    flags_a = (f"--model_dir={dir_a}", *RESUME_FLAGS)
    flags_b = (f"--model_dir={dir_b}", *RESUME_FLAGS)
    # A and the first attempt of B run side by side (each is mostly TF start-up).
    run_a = launch_train(tmp_path / "ra", *flags_a)
    run_b = launch_train(tmp_path / "rb", *flags_b)
    try:
        _wait_for_epoch(run_b, dir_b, 1)
        time.sleep(0.3)  # into epoch 2: an epoch of 20 steps plus the test pass takes seconds
        run_b.send_signal(signal.SIGKILL)
        run_b.wait()
    finally:
        if run_b.poll() is None:
            run_b.kill()
            run_b.wait()
    _, killed_at = latest_weights(dir_b)
    assert killed_at == 1, f"the kill came too late: epoch {killed_at} had completed"

    resumed = run_train(tmp_path, *flags_b)
    assert_succeeded(resumed)
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    assert run_a.wait(timeout=300) == 0, (tmp_path / "ra" / "launched.stderr").read_text()[-4000:]

    _, rows_a = read_metrics(dir_a)
    _, rows_b = read_metrics(dir_b)
    assert [row["epoch"] for row in rows_b] == ["1", "2", "3"]
    for row_a, row_b in zip(rows_a, rows_b):
        for key in ("loss", "train_acc", "test_acc", "test_loss"):
            np.testing.assert_allclose(float(row_b[key]), float(row_a[key]), rtol=0,
                                       atol=RESUME_ATOL, err_msg=f"epoch {row_a['epoch']} {key}")

    weights_a, epoch_a = latest_weights(dir_a)
    weights_b, epoch_b = latest_weights(dir_b)
    assert epoch_a == epoch_b == 3
    arrays_a, arrays_b = h5_arrays(weights_a), h5_arrays(weights_b)
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        np.testing.assert_allclose(arrays_b[name], arrays_a[name], rtol=0, atol=RESUME_ATOL,
                                   err_msg=name)

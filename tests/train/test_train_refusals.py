"""`bin/kerazoo-train` refuses bad input: non-zero exit, one line on stderr, no traceback.

Also what happens at the refusals' edges: an --export_dir is checked before
any training, and the per-epoch lines reach a pipe as they are printed.
"""

import os
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from train_cli import (SHORT_RUN_FLAGS, assert_refused, assert_succeeded, run_many, run_train,
                       train_command, train_env)

# Flags every case starts from, so a case that is wrongly accepted still ends
# in seconds; a case's own flags come later and win (absl keeps the last).
_QUICK = ("--steps_per_epoch=2", "--epochs=1")

# name -> (flags, words the error line must contain: the key and, where it
# helps the user, the bad value).
BAD_INPUT = {
    "unknown_model": (["--model=nope"], ["nope", "lenet_bn"]),  # lists the known ones
    "unknown_dataset": (["--dataset=nope"], ["nope", "fashion_mnist"]),
    "lr_zero": (["--lr=0"], ["lr=0"]),
    "lr_negative": (["--lr=-1"], ["lr=-1"]),
    "batch_size_zero": (["--batch_size=0"], ["batch_size=0"]),
    "epochs_zero": (["--epochs=0"], ["epochs=0"]),
    # resnet18's padded convolutions take any side >= 1 (min_input_size 1), so
    # its --resize=8 is valid; densenet's four halvings need 29.
    "densenet_resize_below_minimum": (["--model=densenet", "--resize=16"],
                                      ["densenet", "29", "resize=16"]),
    "lenet_bn_resize_below_minimum": (["--resize=4"], ["lenet_bn", "resize=4"]),
    "missing_data_dir": (["--data_dir=/nonexistent"], ["/nonexistent"]),
    "model_dir_in_proc": (["--model_dir=/proc/forbidden"], ["model_dir", "/proc/forbidden"]),
    "model_dir_under_a_file": (["--model_dir={tmp}/a_file/run"], ["model_dir", "a_file/run"]),
    "default_strategy_with_logical_cpus": (["--strategy=default", "--logical_cpus=2"],
                                           ["logical_cpus", "default"]),
    "bad_precision": (["--precision=float8"], ["precision", "float8"]),
    "export_dir_under_a_file": (["--export_dir={tmp}/a_file/export"],
                                ["export_dir", "a_file/export"]),
}

# absl's flag-parse errors (raised before main): its own message on one line, status 2.
FLAG_ERRORS = {
    "epochs_not_an_integer": (["--epochs=abc"], ["--epochs=abc", "abc"]),
    "optimizer_not_in_enum": (["--optimizer=adam"], ["--optimizer=adam", "sgd"]),
    "unknown_flag": (["--nope=1"], ["Unknown command line flag", "nope"]),
    "misspelt_flag": (["--epoch=3"], ["epoch", "Did you mean: epochs"]),
}

# Reruns in the short run's model_dir (a copy) with flags that contradict it.
CONFLICTS = {
    "different_lr": (["--lr=0.5"], ["lr", "1.0", "0.5"]),
    "different_model": (["--model=lenet"], ["model", "lenet_bn", "lenet"]),
    "noresume_over_a_checkpoint": (["--noresume"], ["checkpoint", "resume"]),
}


@pytest.fixture(scope="module")
def refusals(short_run, tmp_path_factory):
    """Runs every case, three at a time: (root folder, {name: CompletedProcess})."""
    _, model_dir = short_run
    root = tmp_path_factory.mktemp("refusals")
    (root / "a_file").write_text("a regular file, not a directory\n")
    jobs = {}
    for name, (flags, _) in BAD_INPUT.items():
        flags = [f.format(tmp=root) for f in flags]
        jobs[name] = (root, [*_QUICK, f"--model_dir={root / name}", *flags])
    for name, (flags, _) in CONFLICTS.items():
        shutil.copytree(model_dir, root / name)
        # The short run's own flags, then the contradicting one.
        jobs[name] = (root, [*SHORT_RUN_FLAGS, f"--model_dir={root / name}", *flags])
    return root, run_many(jobs)


@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_is_refused_in_one_line(refusals, name):
    _, results = refusals
    assert_refused(results[name], *BAD_INPUT[name][1])


@pytest.mark.parametrize("name", FLAG_ERRORS)
def test_flag_parse_error_is_one_line_with_status_2(tmp_path, name):
    flags, words = FLAG_ERRORS[name]
    proc = run_train(tmp_path, f"--model_dir={tmp_path / 'run'}", *flags)
    assert_refused(proc, *words)
    assert proc.returncode == 2
    assert not (tmp_path / "run").exists()  # refused before main: nothing created


@pytest.mark.parametrize("name", CONFLICTS)
def test_conflicting_model_dir_is_refused_in_one_line(refusals, name):
    _, results = refusals
    assert_refused(results[name], *CONFLICTS[name][1])


def test_refusal_leaves_the_earlier_run_untouched(refusals, short_run):
    root, _ = refusals
    _, model_dir = short_run
    for name in CONFLICTS:
        for artifact in ("config.json", "metrics.csv", "checkpoints/checkpoint.json"):
            assert (root / name / artifact).read_bytes() == (model_dir / artifact).read_bytes(), \
                f"{name}: {artifact} changed"


def test_model_dir_of_a_refused_run_can_be_reused(refusals):
    # Nothing was trained there, so fixing the typo must not need a new model_dir.
    root, results = refusals
    assert results["lenet_bn_resize_below_minimum"].returncode != 0
    model_dir = root / "lenet_bn_resize_below_minimum"
    assert not (model_dir / "checkpoints" / "checkpoint.json").exists()
    assert_succeeded(run_train(root, f"--model_dir={model_dir}", "--max_steps=1"))


def test_export_dir_is_served_and_never_overwritten(tmp_path):
    export = tmp_path / "export"
    first = tmp_path / "first"
    assert_succeeded(run_train(tmp_path, f"--model_dir={first}", f"--export_dir={export}",
                               "--max_steps=2"))
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    out = serve(images=tf.constant(images))
    assert out["probabilities"].shape == (3, 10) and out["class_ids"].dtype == tf.int64
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    before = sorted(os.listdir(export)), (export / "saved_model.pb").read_bytes()

    results = run_many({
        # The finished run again: its training is done and its export exists.
        "rerun": (tmp_path, [f"--model_dir={first}", f"--export_dir={export}",
                             "--max_steps=2"]),
        "new_run": (tmp_path, [f"--model_dir={tmp_path / 'second'}",
                               f"--export_dir={export}", "--max_steps=2"]),
        # The finished run with a new export_dir: exported without training.
        "new_export": (tmp_path, [f"--model_dir={first}",
                                  f"--export_dir={tmp_path / 'export2'}", "--max_steps=2"]),
    })
    for name in ("rerun", "new_run"):
        assert_refused(results[name], "export_dir", str(export), "new --export_dir")
        assert results[name].stdout == "", f"{name} got as far as the precision line"
    assert not (tmp_path / "second" / "checkpoints").exists()
    assert (sorted(os.listdir(export)), (export / "saved_model.pb").read_bytes()) == before
    assert_succeeded(results["new_export"])
    assert "epoch 1," not in results["new_export"].stdout
    assert (tmp_path / "export2" / "saved_model.pb").is_file()


def test_epoch_lines_reach_a_pipe_as_they_are_printed(tmp_path):
    # Block buffering would hand the reader every line at once at exit, so
    # the lines of epochs 1 and 3 would arrive together; printed as they
    # happen, they arrive about two epochs (each with a full test pass) apart.
    env = train_env()
    env.pop("PYTHONUNBUFFERED", None)  # as a user's shell has it (some CI sets it)
    proc = subprocess.Popen(
        train_command(f"--model_dir={tmp_path / 'run'}", "--steps_per_epoch=20", "--epochs=3",
                      "--precise_bn_samples=0"),
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    arrived = {}  # epoch -> (arrival time, the epoch's own "time X sec")
    with proc:
        for line in proc.stdout:
            match = re.match(r"epoch (\d+),.* time ([\d.]+) sec$", line.strip())
            if match:
                arrived[int(match[1])] = (time.monotonic(), float(match[2]))
    assert proc.returncode == 0 and sorted(arrived) == [1, 2, 3]
    gap = arrived[3][0] - arrived[1][0]
    # Half of what the run itself measured: scheduling jitter, not buffering.
    assert gap >= 0.5 * (arrived[2][1] + arrived[3][1]), (gap, arrived)

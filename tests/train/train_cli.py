"""Helpers of the training-driver tests: run `bin/kerazoo-train`, read what it wrote.

Every end-to-end test runs the program as a user would, in a fresh
interpreter: the absl flags, the strategy and logical-CPU setup and the
process exit status only exist there. Starting one costs ~10 s on the
project's 2-core CPU (importing TensorFlow), so runs are short and the
bad-input cases run a few at a time.
"""

import concurrent.futures
import csv
import json
import os
import re
import subprocess
import sys

import h5py

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = os.path.join(REPO_ROOT, "bin", "kerazoo-train")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
METRIC_HEADER = ["epoch", "loss", "train_acc", "test_acc", "test_loss", "examples_per_sec",
                 "epoch_seconds", "lr"]
# Two epochs of five steps: enough for a metrics row per epoch, a checkpoint
# rotation and both TensorBoard writers, in ~20 s.
SHORT_RUN_FLAGS = ("--steps_per_epoch=5", "--epochs=2")
RUN_TIMEOUT = 300  # seconds; a short run takes ~15 s, the full epoch ~60 s

# TensorFlow's C++ start-up logging, written before absl logging is set up, so
# TF_CPP_MIN_LOG_LEVEL does not silence it ("oneDNN custom operations are on",
# "Could not find cuda drivers", "failed call to cuInit"). Not the program's words.
_TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] .*"
    r"|To enable the following instructions: .*)$")


def train_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only, as on the project's machine
    env.pop("TF_CONFIG", None)
    return env


# Runs the program after splitting the CPU into N logical devices, before
# anything of kerazoo is imported (see test_train_devices for why).
_PRESPLIT_THEN_RUN = """
import runpy, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * {n})
sys.argv[0] = {program!r}
runpy.run_path({program!r}, run_name="__main__")
"""


def train_command(*flags, presplit_cpus=None):
    if presplit_cpus:
        code = _PRESPLIT_THEN_RUN.format(n=presplit_cpus, program=PROGRAM)
        return [sys.executable, "-c", code, *flags]
    return [sys.executable, PROGRAM, *flags]


def run_train(cwd, *flags, presplit_cpus=None, timeout=RUN_TIMEOUT):
    """Runs `kerazoo-train FLAGS` in `cwd`; returns the CompletedProcess (text)."""
    return subprocess.run(train_command(*flags, presplit_cpus=presplit_cpus), cwd=str(cwd),
                          env=train_env(), capture_output=True, text=True, timeout=timeout)


def launch_train(cwd, *flags):
    """Starts `kerazoo-train FLAGS` in `cwd` without waiting (output to files in cwd)."""
    with (open(os.path.join(cwd, "launched.stdout"), "w") as stdout,
          open(os.path.join(cwd, "launched.stderr"), "w") as stderr):
        # The child holds its own copies of the two descriptors.
        return subprocess.Popen(train_command(*flags), cwd=str(cwd), env=train_env(),
                                stdout=stdout, stderr=stderr)


def run_many(jobs, parallel=3):
    """Runs {name: (cwd, flags[, run_train options])} a few at a time.

    Returns {name: CompletedProcess}.

    A run that is refused spends ~12 s of wall time but ~8 s of CPU importing
    TensorFlow, so three at a time on two cores finish sooner than one by one.
    """
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        futures = {name: pool.submit(run_train, job[0], *job[1], **(job[2] if len(job) > 2 else {}))
                   for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_succeeded(proc):
    assert proc.returncode == 0, (f"kerazoo-train exited {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}")


def program_stderr_lines(stderr):
    """The non-empty stderr lines that are not TensorFlow's start-up logging."""
    return [line for line in stderr.splitlines() if line.strip() and not _TF_NOISE.match(line)]


def assert_refused(proc, *words):
    """Non-zero exit, no traceback, one stderr line that contains every word."""
    lines = program_stderr_lines(proc.stderr)
    assert proc.returncode != 0, f"expected a refusal; exit 0\nstdout:\n{proc.stdout[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n" + "\n".join(lines)
    assert lines[0].startswith("kerazoo-train: error: "), lines[0]
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


def read_metrics(model_dir):
    """metrics.csv as (header, rows of dicts)."""
    with open(os.path.join(model_dir, "metrics.csv"), newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return reader.fieldnames, rows


def latest_weights(model_dir):
    """The path of the checkpoint `checkpoint.json` points at, and its epoch."""
    directory = os.path.join(model_dir, "checkpoints")
    with open(os.path.join(directory, "checkpoint.json")) as f:
        index = json.load(f)
    return os.path.join(directory, index["weights"]), index["epoch"]


def h5_arrays(path, prefix=""):
    """{dataset path: numpy array} of every dataset in a .weights.h5 under `prefix`."""
    arrays = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.startswith(prefix):
                arrays[name] = obj[()]
        f.visititems(visit)
    return arrays

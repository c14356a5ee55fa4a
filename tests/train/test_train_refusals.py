"""`bin/kerazoo-train` refuses bad input: non-zero exit, one line on stderr, no traceback."""

import shutil

import pytest

from train_cli import SHORT_RUN_FLAGS, assert_refused, assert_succeeded, run_many, run_train

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

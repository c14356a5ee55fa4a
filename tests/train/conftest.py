"""Fixtures of the training-driver tests (helpers live in `train_cli`)."""

import pytest

from train_cli import SHORT_RUN_FLAGS, assert_succeeded, run_train


@pytest.fixture(scope="session")
def short_run(tmp_path_factory):
    """A short lenet_bn run with the book recipe: (CompletedProcess, model_dir).

    Shared by the artifact tests and the conflict tests; tests that could
    change the directory work on a copy.
    """
    root = tmp_path_factory.mktemp("short_run")
    model_dir = root / "model_dir"
    proc = run_train(root, f"--model_dir={model_dir}", *SHORT_RUN_FLAGS)
    assert_succeeded(proc)
    return proc, model_dir

"""Fixtures of the model tests (helpers live in `models_helpers`)."""

import numpy as np
import pytest

from models_helpers import NUM_CLASSES, PROGRAM_RUNS, SMALL, start_program


@pytest.fixture(scope="session")
def images():
    """A batch of 2 random 32x32x1 images in [0, 1) and their labels."""
    rng = np.random.default_rng(0)
    return (rng.random((2,) + SMALL, dtype=np.float32),
            rng.integers(0, NUM_CLASSES, size=2).astype(np.int32))


@pytest.fixture(scope="session", autouse=True)
def program_runs(request):
    """name -> Popen of each PROGRAM_RUNS entry, started at the first model test.

    Started early, not at the first test of test_models_program.py, so the
    programs' TensorFlow import overlaps the in-process tests on a second CPU.
    """
    wanted = any(item.path.name == "test_models_program.py" for item in request.session.items)
    procs = {name: start_program(args) for name, args in PROGRAM_RUNS.items()} if wanted else {}
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

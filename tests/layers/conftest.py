"""Fixtures shared by the layer tests: seeding, dtype policies, fresh processes."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _seed():
    # Every test starts from the same NumPy / Python / TF seeds.
    keras.utils.set_random_seed(1234)


@pytest.fixture
def dtype_policy(request):
    """Sets the global dtype policy named by `request.param`; restores float32."""
    keras.config.set_dtype_policy(request.param)
    try:
        yield request.param
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def run_script(tmp_path):
    """Runs a Python script in a fresh interpreter; returns its stdout.

    Fresh processes are needed for what must happen before TensorFlow
    initializes devices (logical CPUs) and for loading a saved model with
    nothing registered but what `import kerazoo` registers.
    """

    def run(source, timeout=240):
        path = tmp_path / "script.py"
        path.write_text(textwrap.dedent(source))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only: the logical-device setup needs CPUs
        proc = subprocess.run([sys.executable, str(path)], cwd=str(tmp_path), env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"script failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
        return proc.stdout

    return run

"""kerazoo.memory: freed large tensor buffers are reused, not page-faulted in again.

Counted in page faults (`ru_minflt`), not seconds, so the check does not
depend on the machine's load. Each case runs in a fresh interpreter, since the
setting changes the whole process.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

_FAULTS_PER_TENSOR = """
import json, resource, sys
import tensorflow as tf
from kerazoo.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
x = tf.random.normal([256, 24, 24, 64])  # 36 MiB: above glibc's 32 MiB mmap threshold
step = tf.function(lambda x: x + 1.0)
step(x).numpy()
step(x).numpy()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step(x).numpy()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"kept": kept, "faults": faults}))
"""


def _faults_per_tensor(mode):
    proc = subprocess.run([sys.executable, "-c", _FAULTS_PER_TENSOR, mode], capture_output=True,
                          text=True, timeout=120, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_stops_page_faults_on_large_tensors():
    default = _faults_per_tensor("default")
    kept = _faults_per_tensor("keep")
    assert kept["kept"] is True
    # A 36 MiB output is 9,216 pages of 4 KiB. With glibc's defaults each new
    # one is mapped afresh. How many faults that takes depends on the kernel's
    # page sizes at the time (measured on one machine: 530 faults per tensor in
    # most runs, 19.1 in one, which fits 2 MiB huge pages; not confirmed), but
    # even with 2 MiB pages a fresh 36 MiB mapping is 18 faults; kept, the same heap
    # pages serve every step (measured: 0.04-0.1).
    assert default["faults"] >= 9, default
    assert kept["faults"] < 1, kept

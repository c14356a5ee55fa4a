"""Atomic file writes: write beside the target, then rename over it.

A reader (or a run killed mid-write) sees either the old file or the new one,
never half of one.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yields a temporary path next to `path`; renames it to `path` on success.

    `suffix` ends the temporary name, for writers that check the extension
    (Keras wants ".weights.h5", ".keras").
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix,
                               dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def check_writable(directory):
    """Raises OSError unless an entry can be created in `directory` (an existing folder).

    The probe is a temporary folder, removed at once: what a later atomic
    write or a staged export will need, checked before any long work.
    """
    os.rmdir(tempfile.mkdtemp(prefix=".write_test.", dir=directory))

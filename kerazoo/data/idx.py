"""Reader for the IDX files MNIST and Fashion-MNIST ship in, and `DataError`.

IDX layout (big-endian): a 4-byte magic number whose low byte is the number
of dimensions and whose third byte is the element type (0x08 = unsigned
byte), then one 4-byte size per dimension, then the elements row-major.

    images: magic 2051 (0x00000803), sizes [N, rows, cols], N*rows*cols bytes
    labels: magic 2049 (0x00000801), sizes [N],             N bytes

Files may be gzip-compressed (`name.gz`, as upstream distributes them) or
plain (`name`). This module is NumPy only, so it imports no TensorFlow.
"""

import gzip
import os
import zlib

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions.
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension.


class DataError(ValueError):
    """Bad input data or a bad data argument; the message is always one line.

    Every loader in `kerazoo.data` raises this, so a driver can catch one type.
    Newlines in the message (e.g. from a wrapped library error) are folded
    into spaces, because a one-line message survives logs and absl flags.
    """

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


def find_idx_file(directory, name):
    """Returns the path of `name.gz` or `name` in `directory`.

    Args:
        directory: folder to look in.
        name: file name without `.gz`, e.g. "train-images-idx3-ubyte".

    Returns:
        The gzip file if present, else the plain one.

    Raises:
        DataError: neither exists.
    """
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(
        f"missing IDX file: {os.path.join(directory, name)}(.gz) not found"
    )


def _read_bytes(path):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"missing IDX file: {path} not found") from None
    except (OSError, EOFError, zlib.error) as e:
        # A cut-off .gz ends in EOFError; a corrupt one in BadGzipFile/zlib.
        raise DataError(f"cannot read IDX file {path}: {e}") from None


def read_idx(path, magic):
    """Reads one unsigned-byte IDX file.

    Args:
        path: file path; gzip-decompressed if it ends in `.gz`.
        magic: expected magic number (`IMAGES_MAGIC` or `LABELS_MAGIC`).

    Returns:
        uint8 array whose shape is the sizes in the header.

    Raises:
        DataError: unreadable file, wrong magic, or a data length that does
            not match the header (truncated or trailing bytes).
    """
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < 4:
        raise DataError(f"truncated IDX file {path}: {len(data)} bytes")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(
            f"wrong magic number in IDX file {path}: expected {magic}, "
            f"found {found}"
        )
    if len(data) < header_len:
        raise DataError(
            f"truncated IDX file {path}: header needs {header_len} bytes, "
            f"found {len(data)}"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    expected = int(np.prod(shape))
    body = len(data) - header_len
    if body < expected:
        raise DataError(
            f"truncated IDX file {path}: header says shape {shape} "
            f"({expected} bytes) but only {body} bytes follow"
        )
    if body > expected:
        raise DataError(
            f"bad IDX file {path}: header says shape {shape} ({expected} "
            f"bytes) but {body - expected} trailing bytes follow"
        )
    return np.frombuffer(data, np.uint8, offset=header_len).reshape(shape)


def read_images(path, rows=28, cols=28):
    """Reads an IDX image file as uint8 [N, rows, cols, 1].

    Raises:
        DataError: as `read_idx`, or images that are not rows x cols.
    """
    images = read_idx(path, IMAGES_MAGIC)  # [N, rows, cols]
    if images.shape[1:] != (rows, cols):
        raise DataError(
            f"wrong image shape in IDX file {path}: expected {rows}x{cols}, "
            f"found {images.shape[1]}x{images.shape[2]}"
        )
    return images[..., np.newaxis]


def read_labels(path):
    """Reads an IDX label file as int32 [N]."""
    return read_idx(path, LABELS_MAGIC).astype(np.int32)

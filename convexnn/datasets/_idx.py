"""IDX files, the format of MNIST (optionally gzipped)."""

from __future__ import annotations

import gzip
import math

import numpy as np

from convexnn.datasets._paths import PathLike, existing_file
from convexnn.exceptions import DataFormatError

_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format) into an array of its stored shape.

    The format: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the
    number of dimensions, each dimension as a big-endian uint32, then the
    values in C order, big-endian. Gzipped files are recognised by content.

    Returns
    -------
    ndarray
        In native byte order, with the stored dtype and shape.
    """
    file = existing_file(path)
    try:
        with open(file, "rb") as handle:
            content = handle.read()
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
    except (OSError, EOFError) as error:
        raise DataFormatError(
            f"{file}: could not decompress the gzipped IDX file: {error}"
        ) from error

    if len(content) < 4:
        raise DataFormatError(
            f"{file} is too short for an IDX file ({len(content)} bytes; the header alone "
            f"needs 4)"
        )
    if content[:2] != b"\x00\x00" or content[2] not in _IDX_DTYPES:
        raise DataFormatError(
            f"{file}: bad magic number 0x{content[:4].hex()}; an IDX file starts with two "
            f"zero bytes and a type code in {[hex(code) for code in _IDX_DTYPES]}"
        )
    dtype, ndim = _IDX_DTYPES[content[2]], content[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(content) < header:
        raise DataFormatError(
            f"{file}: header declares {ndim} dimension(s), needing {header} header bytes; "
            f"the file has {len(content)} bytes"
        )
    shape = tuple(int(s) for s in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    actual = len(content) - header
    if actual != expected:
        problem = "is truncated" if actual < expected else "has trailing bytes"
        raise DataFormatError(
            f"{file} {problem}: shape {shape} of {dtype.newbyteorder('=').name} needs "
            f"{expected} data bytes, found {actual}"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_idx(
    images_path: PathLike, labels_path: PathLike | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read MNIST-style IDX images and, optionally, their labels.

    Parameters
    ----------
    images_path : str or path-like
        IDX file of shape ``(n, rows, cols)`` (any ``(n, ...)``); may be
        gzipped.
    labels_path : str or path-like, optional
        IDX file of ``n`` labels.

    Returns
    -------
    X : ndarray of shape (n, rows * cols), float64
        Raw values (0-255 for MNIST), one flattened image per row; use
        :func:`read_idx` for the stored shape.
    y : ndarray of shape (n,) or None
    """
    images = read_idx(images_path)
    if images.ndim < 2:
        raise DataFormatError(
            f"{images_path}: IDX array of shape {images.shape}; expected images "
            f"(n, rows, cols) or (n, features)"
        )
    if images.size == 0:
        raise DataFormatError(
            f"{images_path}: IDX array of shape {images.shape} contains no samples or no "
            "features"
        )
    _check_finite(images, images_path, "images")
    X = images.reshape(len(images), -1).astype(np.float64)
    if labels_path is None:
        return X, None
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataFormatError(
            f"{labels_path}: labels have shape {labels.shape}; expected one dimension"
        )
    if len(labels) != len(X):
        raise DataFormatError(
            f"{labels_path} has {len(labels)} labels but {images_path} has {len(X)} "
            f"images; the counts must match"
        )
    _check_finite(labels, labels_path, "labels")
    y = labels.astype(np.int64) if labels.dtype.kind in "iu" else labels
    return X, y


def _check_finite(values: np.ndarray, path: PathLike, what: str) -> None:
    """Float IDX files can hold NaN or inf; the other loaders refuse them too."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        index = np.unravel_index(int(np.argmin(np.isfinite(values))), values.shape)
        raise DataFormatError(
            f"{path}: {what} hold the non-finite value {values[index]} at index "
            f"{tuple(int(i) for i in index)}; expected finite numbers"
        )

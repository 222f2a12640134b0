"""NumPy files: an ``.npz`` archive of ``X`` and ``y``, or one ``.npy`` table."""

from __future__ import annotations

import numbers
import zipfile

import numpy as np

from convexnn.datasets._paths import PathLike, existing_file
from convexnn.exceptions import DataFormatError, ValidationError

#: The first bytes of an .npy file and of an .npz archive (a zip file).
_NPY_SIGNATURE = b"\x93NUMPY"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # the second: an empty archive


def load_numpy(
    path: PathLike,
    *,
    x_key: str = "X",
    y_key: str | None = "y",
    target: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a NumPy ``.npz`` archive or ``.npy`` array.

    Parameters
    ----------
    path : str or path-like
    x_key, y_key : str, default "X", "y"
        Arrays to read from an ``.npz`` archive; ``y_key=None`` reads
        features only (``y`` is then ``None``; of a ``.npy`` array, every
        column).
    target : int, optional
        For a ``.npy`` file (one 2-D array, samples in rows): the column
        holding the target; ``None`` means the last column. Not used for
        ``.npz``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        Arrays with more than two dimensions (image stacks) are flattened to
        one row per sample.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs), or None

    Raises
    ------
    DataFormatError
        Unreadable file, missing keys (the message lists those present),
        non-numeric or non-finite features, or mismatched lengths.
    """
    file = existing_file(path)
    # The handle is ours: np.load leaves a file it opened itself unclosed when it fails.
    with open(file, "rb") as handle:
        X, y = _arrays(handle, file, x_key, y_key, target)

    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"{file}: X has dtype {X.dtype}; expected numbers")
    if X.ndim < 2:
        raise DataFormatError(f"{file}: X has shape {X.shape}; expected (n_samples, n_features)")
    if len(X) == 0:
        raise DataFormatError(f"{file} contains no samples (X has shape {X.shape})")
    X = X.reshape(len(X), -1).astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise DataFormatError(f"{file}: X contains NaN or infinity; expected finite numbers")
    if y is None:
        return X, None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind in "cOVmM":
        raise DataFormatError(f"{file}: y has dtype {y.dtype}; expected numbers or labels")
    if y.dtype.kind == "S":  # scikit-learn refuses byte-string labels: read them as text
        try:
            y = np.char.decode(y, "utf-8")
        except UnicodeDecodeError as error:
            raise DataFormatError(
                f"{file}: y holds byte strings that are not UTF-8 ({error}); expected "
                "numbers or text labels"
            ) from error
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataFormatError(
            f"{file}: y contains {int(np.size(y) - np.isfinite(y).sum())} NaN or infinite "
            "value(s); expected a finite target per sample (drop those samples)"
        )
    if y.ndim not in (1, 2) or len(y) != len(X):
        raise DataFormatError(
            f"{file}: y has shape {y.shape} but X has {len(X)} samples; expected one target "
            f"row per sample"
        )
    return X, y


#: What np.load and an archive's members raise for a damaged file; zipfile's RuntimeError
#: (NotImplementedError included) is a member it cannot open: encrypted, or compressed by a
#: method it lacks.
_UNREADABLE = (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError)


def _arrays(handle, file, x_key: str, y_key: str | None, target: int | None):
    """``X`` and ``y`` as stored in the open ``handle`` of ``file``, unchecked."""
    signature = handle.read(len(_NPY_SIGNATURE))
    handle.seek(0)
    if signature and not signature.startswith((_NPY_SIGNATURE, *_ZIP_SIGNATURES)):
        # np.load would try to unpickle it and speak of pickled data.
        raise DataFormatError(
            f"{file} is not a NumPy .npy/.npz file (it does not start with their "
            f"signature); if it is delimited text, name it .csv, .tsv or .txt"
        )
    try:
        loaded = np.load(handle, allow_pickle=False)
    except _UNREADABLE as error:
        raise DataFormatError(f"{file} is not a readable NumPy .npy/.npz file: {error}") from error

    if isinstance(loaded, np.lib.npyio.NpzFile):
        if target is not None:
            raise ValidationError(
                "target selects a column of a .npy array; for .npz use x_key and y_key"
            )
        with loaded:
            keys = [x_key] if y_key is None else [x_key, y_key]
            missing = [key for key in keys if key not in loaded.files]
            if missing:
                raise DataFormatError(
                    f"{file} has no array {missing[0]!r}; arrays present: {loaded.files}. "
                    f"Choose them with x_key= and y_key="
                )
            try:
                X = loaded[x_key]
                y = None if y_key is None else loaded[y_key]
            except _UNREADABLE as error:
                raise DataFormatError(f"{file}: could not read arrays: {error}") from error
    elif y_key is None:  # every column a feature
        if loaded.ndim != 2 or loaded.shape[1] == 0:
            raise DataFormatError(
                f"{file} holds an array of shape {loaded.shape}; expected a 2-D array of "
                f"feature columns"
            )
        X, y = loaded, None
    else:
        if loaded.ndim != 2 or loaded.shape[1] < 2:
            raise DataFormatError(
                f"{file} holds an array of shape {loaded.shape}; expected a 2-D array with "
                f"feature columns and a target column (or save X and y with np.savez)"
            )
        column = -1 if target is None else target
        if (
            not isinstance(column, numbers.Integral) or isinstance(column, bool)
            or not -loaded.shape[1] <= column < loaded.shape[1]
        ):
            raise ValidationError(
                f"target must be a column index of the {loaded.shape[1]} columns in {file}, "
                f"got {target!r}"
            )
        y = loaded[:, column]
        X = np.delete(loaded, int(column) % loaded.shape[1], axis=1)
    return X, y


def npy_width(path: PathLike) -> int | None:
    """The number of columns of the 2-D array in a ``.npy`` file, read from its header;
    ``None`` if it has no such header (:func:`load_numpy` says why)."""
    try:
        with open(existing_file(path), "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, _ = read_header(handle)
    except (ValueError, OSError, EOFError):
        return None
    return shape[1] if len(shape) == 2 else None

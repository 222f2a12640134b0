"""LIBSVM / svmlight files, read with scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from convexnn._validation import check_positive
from convexnn.datasets._paths import PathLike, existing_file
from convexnn.exceptions import DataFormatError, ProblemTooLargeError, ValidationError
from convexnn.solvers._memory import available_memory, format_bytes


def load_svmlight(
    path: PathLike,
    *,
    n_features: int | None = None,
    zero_based: bool | Literal["auto"] = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Read a LIBSVM / svmlight file (``label index:value ...`` per line).

    Parameters
    ----------
    path : str or path-like
        ``.gz`` and ``.bz2`` files are decompressed.
    n_features : int, optional
        Number of features; by default the largest index in the file (so
        trailing all-zero features are lost unless given).
    zero_based : bool or "auto", default "auto"
        Whether indices start at 0; ``"auto"`` assumes 1 unless an index 0
        occurs (scikit-learn's rule).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64, dense
    y : ndarray of shape (n_samples,), float64
    """
    from sklearn.datasets import load_svmlight_file

    file = existing_file(path)
    n_features = check_positive(n_features, "n_features", integer=True, allow_none=True)
    if isinstance(zero_based, (bool, np.bool_)):
        zero_based = bool(zero_based)  # (scikit-learn tests `is False`: np.False_ read True)
    elif zero_based != "auto":
        raise ValidationError(f"zero_based must be True, False or 'auto', got {zero_based!r}")
    try:
        # Without n_features: a file wider than it gets its own message below, not
        # scikit-learn's, which calls the file invalid.
        X, y = load_svmlight_file(str(file), zero_based=zero_based)
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as error:
        raise DataFormatError(
            f"{file} is not a valid svmlight/LIBSVM file ({error}); {_format_hint(file)}"
        ) from error
    except OverflowError as error:  # scikit-learn holds indices in 32-bit ints
        raise DataFormatError(
            f"{file} has a feature index beyond 2**31 - 1 ({error}); such a width cannot be "
            "held dense: check the indices"
        ) from error
    if X.shape[0] == 0:
        raise DataFormatError(f"{file} contains no samples")
    if n_features is None and X.count_nonzero() == 0:  # (scikit-learn makes one up)
        raise DataFormatError(
            f"{file} has no feature values (no 'index:value' pair other than zeros on any "
            "line); expected lines of 'label index:value index:value ...'"
        )
    if n_features is not None:
        if X.shape[1] > n_features:
            raise DataFormatError(
                f"{file} has {X.shape[1]} features (as its largest feature index says), "
                f"more than the {n_features} expected (n_features)"
            )
        X = sp.hstack([X, sp.csr_matrix((X.shape[0], n_features - X.shape[1]))], format="csr")
    for name, values in (("feature values", X.data), ("labels", y)):
        if not np.all(np.isfinite(values)):
            raise DataFormatError(
                f"{file}: {int(np.size(values) - np.isfinite(values).sum())} of its {name} "
                "are NaN or infinite; expected finite numbers"
            )
    dense, free = 8 * X.shape[0] * X.shape[1], available_memory()
    if dense > free:  # the largest index sets the width: one stray index
        raise ProblemTooLargeError(
            f"{file}: its {X.shape[0]} x {X.shape[1]} features would take "
            f"{format_bytes(dense)} dense, more than the {format_bytes(free)} "
            "available; the largest feature index sets the width: check the indices"
        )
    return X.toarray().astype(np.float64, copy=False), y


def _format_hint(file: Path) -> str:
    """What to do about a file scikit-learn could not read as svmlight."""
    with open(file, "rb") as handle:
        start = handle.read(3)
    # scikit-learn decompresses by the file name's extension only
    if start[:2] == b"\x1f\x8b" and file.suffix != ".gz":
        return "it is gzip-compressed: name it with the extension .gz"
    if start == b"BZh" and file.suffix != ".bz2":
        return "it is bzip2-compressed: name it with the extension .bz2"
    if start == b"\xef\xbb\xbf":
        return "it starts with a UTF-8 byte-order mark: save it without one"
    return "expected lines of 'label index:value index:value ...' with increasing indices"


def svmlight_zero_based(path: PathLike) -> bool:
    """Whether ``zero_based="auto"`` reads the file zero-based: some index is 0.

    A file without index 0 is read one-based; the command line records this
    for a training file, so that a model fitted on a zero-based file reads
    the zero-based files it predicts on (where index 0 may never occur) alike.
    """
    from sklearn.datasets import load_svmlight_file

    file = existing_file(path)
    try:
        X, _ = load_svmlight_file(str(file), zero_based=True)
    except (ValueError, OSError, EOFError, UnicodeDecodeError):
        return False  # load_svmlight reports what is wrong with the file
    return bool(X.shape[1] and X.getcol(0).nnz)

"""Train/test splitting, subsampling and standardisation (scikit-learn underneath)."""

from __future__ import annotations

import logging
import numbers
import warnings
from typing import Any, NamedTuple

import numpy as np

from convexnn._validation import (
    FEATURE_LIMIT,
    as_float_array,
    local_random_state,
    user_stacklevel,
)
from convexnn.exceptions import ConvexNNWarning, ValidationError

logger = logging.getLogger("convexnn")


class Standardized(NamedTuple):
    """Result of :func:`standardize` (unpacks as a 4-tuple)."""

    X_train: np.ndarray
    X_test: np.ndarray | None
    mean: np.ndarray
    scale: np.ndarray


def standardize(X_train: Any, X_test: Any = None) -> Standardized:
    """Centre and scale features with statistics of the training part only.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
    X_test : array-like of shape (n_test, n_features), optional
        Transformed with the training mean and scale.

    Returns
    -------
    Standardized
        ``(X_train, X_test, mean, scale)``; ``X_test`` is ``None`` if not
        given. Constant features get ``scale = 1`` (they are only centred).
    """
    from sklearn.preprocessing import StandardScaler

    train = as_float_array(X_train, "X_train", limit=FEATURE_LIMIT)
    scaler = StandardScaler().fit(train)
    test = None
    if X_test is not None:
        test = as_float_array(X_test, "X_test", min_samples=0, limit=FEATURE_LIMIT)
        if test.shape[1] != train.shape[1]:
            raise ValidationError(
                f"X_test must be 2-D with {train.shape[1]} features like X_train, "
                f"got shape {test.shape}"
            )
        test = scaler.transform(test) if len(test) else test
    return Standardized(scaler.transform(train), test, scaler.mean_, scaler.scale_)


def train_test_split_data(
    X: Any,
    y: Any,
    *,
    test_size: float = 0.25,
    random_state: int | None = 0,
    stratify: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into ``(X_train, X_test, y_train, y_test)`` (scikit-learn's order).

    Parameters
    ----------
    X, y : array-like
    test_size : float in (0, 1) or int, default 0.25
        Fraction or number of test samples.
    random_state : int, RandomState or None, default 0
        ``None`` draws a fresh split from a local generator (NumPy's global
        generator is never used).
    stratify : None, bool or array-like
        ``True`` stratifies by ``y``; an array stratifies by its values. The
        samples of a class with a single sample go to the training set (with
        a warning: a test sample of a class never trained on cannot be
        scored); when the other classes still cannot be stratified, the split
        falls back to a plain random one (logged at debug level).
    """
    from sklearn.model_selection import train_test_split

    check_split_size(test_size, "test_size")
    # numpy scalars (np.float32(0.3)) pass the check but not scikit-learn's
    test_size = int(test_size) if isinstance(test_size, numbers.Integral) else float(test_size)
    if X is None or np.ndim(X) == 0 or y is None or np.ndim(y) == 0:
        raise ValidationError(
            f"X and y must be arrays with one row per sample, got {type(X).__name__} and "
            f"{type(y).__name__}"
        )
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValidationError(
            f"X and y must have one row per sample alike, got {len(X)} and {len(y)} rows"
        )
    if isinstance(test_size, int) and test_size >= len(X):
        raise ValidationError(
            f"test_size must leave training samples: a count below the {len(X)} samples "
            f"or a fraction in (0, 1), got {test_size}"
        )
    if random_state is None:  # fresh entropy, not NumPy's global generator
        random_state = int(np.random.SeedSequence().generate_state(1)[0])
    else:
        local_random_state(random_state)  # the error names random_state
    if isinstance(stratify, (bool, np.bool_)):
        labels = y if stratify else None
    elif stratify is None or np.ndim(stratify) == 1 or np.ndim(stratify) == 2:
        labels = stratify
    else:
        raise ValidationError(f"stratify must be None, a bool or one label per sample; "
                              f"got {stratify!r}")
    if labels is not None and len(labels) != len(X):
        raise ValidationError(
            f"stratify must have one label per sample ({len(X)}), got {len(labels)}"
        )
    single = np.zeros(len(X), dtype=bool)
    if labels is not None and np.ndim(labels) == 1:  # (rows of a 2-D y: left to sklearn)
        values, inverse, counts = np.unique(np.asarray(labels), return_inverse=True,
                                            return_counts=True)
        single = counts[inverse.ravel()] == 1
        # Set aside only where the others can still give test_size samples (an int
        # test_size counts all of them); else the plain split's fallback below
        room = (~single).sum() - (test_size if isinstance(test_size, int) else 1)
        if single.any() and (~single).sum() >= 2 and room >= 1:
            warnings.warn(
                f"class(es) {values[counts == 1].tolist()[:5]} have a single sample, kept in "
                "the training set (a test sample of a class never trained on cannot be "
                "scored)", ConvexNNWarning, stacklevel=user_stacklevel(),
            )
        else:
            single[:] = False
    rest = ~single
    try:
        try:
            parts = train_test_split(
                X[rest], y[rest], test_size=test_size, random_state=random_state,
                stratify=None if labels is None else np.asarray(labels)[rest],
            )
        except ValueError as error:
            if labels is None:
                raise
            logger.debug("stratified split impossible (%s); splitting at random", error)
            parts = train_test_split(X[rest], y[rest], test_size=test_size,
                                     random_state=random_state)
    except ValueError as error:
        raise ValidationError(f"cannot split the data: {error}") from error
    X_train, X_test, y_train, y_test = parts
    if single.any():
        X_train = np.concatenate([X_train, X[single]])
        y_train = np.concatenate([y_train, y[single]])
    return X_train, X_test, y_train, y_test


def check_split_size(size: Any, name: str) -> None:
    """Check a test or subsample size: a fraction in (0, 1) or a positive count.

    :func:`~convexnn.datasets.load_dataset` calls it before loading any
    data, so that a bad size fails at once; booleans are rejected although
    Python counts them as integers.

    Parameters
    ----------
    size : Any
        The value given.
    name : str
        The argument's name, for the message.

    Raises
    ------
    ValidationError
        ``size`` is neither; the message names the argument.
    """
    ok = (
        isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0
    ) or (isinstance(size, numbers.Real) and not isinstance(size, bool) and 0 < size < 1)
    if not ok:
        raise ValidationError(
            f"{name} must be a fraction in (0, 1) or a positive number of samples, got {size!r}"
        )

"""The embedded data sets of :func:`load_dataset` (the table in :mod:`convexnn.datasets`)."""

from __future__ import annotations

import functools
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from convexnn._validation import check_bool, check_positive
from convexnn.datasets import DATASETS
from convexnn.datasets._planted import make_planted
from convexnn.datasets._split import check_split_size, train_test_split_data
from convexnn.datasets._split import standardize as standardize_features
from convexnn.exceptions import ValidationError


@dataclass
class Dataset:
    """A data set split into training and test parts.

    Attributes
    ----------
    name : str
    X_train, X_test : ndarray of shape (n, n_features), float64
    y_train, y_test : ndarray of shape (n,)
        Integer class labels (classification) or float targets (regression).
    task : {"classification", "regression"}
    image_shape : tuple of int or None
        ``(channels, height, width)`` of each sample, for convolutional
        models; rows of ``X`` are the flattened images.
    feature_names : list of str or None
    description : str
    """

    name: str
    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    task: Literal["classification", "regression"]
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] | None = field(default=None, repr=False)
    description: str = ""

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return self.X_train.shape[1]


_SKLEARN_LOADERS = {
    "digits": ("load_digits", "8x8 images of handwritten digits, 10 classes"),
    "breast-cancer": ("load_breast_cancer", "Wisconsin breast cancer diagnosis, 2 classes"),
    "wine": ("load_wine", "chemical analysis of wines from 3 cultivars, 3 classes"),
    "iris": ("load_iris", "Fisher's iris flowers, 3 classes"),
    "diabetes": ("load_diabetes", "diabetes disease progression after one year (regression)"),
}


_GLOBAL_RNG_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The standard MNIST-1D data (5000 x 40), generated offline.

    ``mnist1d`` seeds NumPy's and Python's global generators; their states
    are restored afterwards.
    """
    import mnist1d.data

    # Two first calls in threads: the second would save the state mnist1d just seeded.
    with _GLOBAL_RNG_LOCK:
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _dataset_key(name: Any) -> str:
    """The canonical name in :data:`DATASETS` (lower case, ``-`` for ``_``) or an error."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in DATASETS:
        raise ValidationError(f"unknown data set {name!r}; choose one of {list(DATASETS)}")
    return key


def load_dataset(
    name: str,
    *,
    test_size: float = 0.25,
    standardize: bool = True,
    random_state: int | None = 0,
    n_samples: int | None = None,
) -> Dataset:
    """Load an embedded data set, split and (by default) standardised.

    Parameters
    ----------
    name : str
        One of :data:`~convexnn.datasets.DATASETS` (see the table in
        :mod:`convexnn.datasets`); ``_`` may replace ``-``.
    test_size : float in (0, 1) or int, default 0.25
        Fraction or number of test samples. Classification data are split
        stratified by class where possible (a test part smaller than the
        number of classes is drawn at random). (``mnist1d`` is re-split too: its generator's
        fixed 4000/1000 split is not kept.)
    standardize : bool, default True
        Centre and scale features with the training part's statistics
        (targets are left as they are). ``planted`` with
        ``standardize=False`` is the authors' raw heavy-tailed data.
    random_state : int or None, default 0
        Seeds the split, the subsample, and the ``planted`` generator
        (``None``: fresh entropy; NumPy's global generator is never used).
    n_samples : int, optional
        Use a reproducible (stratified for classification) random subset of
        this many samples before splitting; for ``planted``, the number of
        samples generated (default 200).

    Returns
    -------
    Dataset
    """
    key = _dataset_key(name)
    check_bool(standardize, "standardize")
    if n_samples is not None:
        n_samples = check_positive(n_samples, "n_samples", integer=True)
    check_split_size(test_size, "test_size")

    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] | None = None
    if key in _SKLEARN_LOADERS:
        import sklearn.datasets

        loader, description = _SKLEARN_LOADERS[key]
        bunch = getattr(sklearn.datasets, loader)()
        X, y = bunch.data.astype(np.float64), bunch.target
        feature_names = [str(f) for f in bunch.feature_names]
        task = "regression" if key == "diabetes" else "classification"
        image_shape = (1, 8, 8) if key == "digits" else None
    elif key == "mnist1d":
        X, y = _mnist1d_arrays()  # read-only; the split below copies
        task, image_shape = "classification", (1, 1, 40)
        description = "MNIST-1D: 1-D digit templates, shifted, scaled, sheared and noised"
    else:
        planted = make_planted(200 if n_samples is None else n_samples, 10,
                               random_state=random_state)
        X, y, task = planted.X, planted.y, "regression"
        description = ("planted teacher: X = N(0,1)^4, 5 neurons, activation "
                       "(0.09, 0.5, 0.47), noise 0.1")
        n_samples = None  # already the requested size

    classification = task == "classification"
    y = y.astype(np.int64 if classification else np.float64)
    if n_samples is not None:
        if n_samples > len(X):
            raise ValidationError(
                f"n_samples={n_samples} exceeds the {len(X)} samples of data set {key!r}"
            )
        if n_samples < len(X):
            X, _, y, _ = train_test_split_data(
                X, y, test_size=len(X) - n_samples, random_state=random_state,
                stratify=classification,
            )
    X_train, X_test, y_train, y_test = train_test_split_data(
        X, y, test_size=test_size, random_state=random_state, stratify=classification
    )
    if standardize:
        X_train, X_test, _, _ = standardize_features(X_train, X_test)
    return Dataset(key, X_train, y_train, X_test, y_test, task, image_shape, feature_names,
                   description)

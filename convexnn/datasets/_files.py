"""Reading a data file whose format is told by its name."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from convexnn._validation import check_path
from convexnn.datasets._idx import load_idx
from convexnn.datasets._npy import load_numpy
from convexnn.datasets._paths import PathLike
from convexnn.datasets._svmlight import load_svmlight
from convexnn.datasets._text import load_csv
from convexnn.exceptions import ValidationError

_SUPPORTED = (
    "CSV/TSV/text (.csv, .tsv, .txt, optionally .gz/.bz2/.xz/.zip), NumPy (.npy, .npz), "
    "svmlight (.svm, .svmlight, .libsvm), MNIST IDX (names with 'idx' or ending in -ubyte)"
)


def load_file(
    path: PathLike, target: int | str | None = None, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Read a data file, choosing the loader from its name.

    ============================================  ================================
    file name                                     loader
    ============================================  ================================
    ``.csv`` / ``.tsv`` / ``.txt`` (+ ``.gz``)    :func:`load_csv` (``,``, tab,
                                                  whitespace)
    ``.npy`` / ``.npz``                           :func:`load_numpy`
    ``.svm`` / ``.svmlight`` / ``.libsvm``        :func:`load_svmlight`
    contains ``idx`` or ends in ``-ubyte[.gz]``   :func:`load_idx`
    ============================================  ================================

    Text files may also be compressed with bz2, xz or zip (``.csv.xz``).

    Parameters
    ----------
    path : str or path-like
    target : int or str, optional
        Target column for CSV (default the last) and ``.npy`` files.
    **kwargs
        Passed to the loader. For IDX images, ``labels_path`` names the
        labels; without it, ``...images-idx3...`` looks for the matching
        ``...labels-idx1...`` file next to it.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)
    """
    file = check_path(path)
    kind = file_format(file)
    loader = {**dict.fromkeys(TEXT_DELIMITERS, load_csv), ".npy": load_numpy,
              ".npz": load_numpy, "svmlight": load_svmlight}.get(kind)
    if loader is not None:  # options the loader does not take: one clear error
        accepted = set(inspect.signature(loader).parameters) - {"path", "target"}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ValidationError(f"unexpected option(s) {unknown} for the {kind.lstrip('.')} "
                                  f"file {file.name}; accepted: {sorted(accepted)}")
    if kind in TEXT_DELIMITERS:
        kwargs.setdefault("delimiter", TEXT_DELIMITERS[kind])
        return load_csv(file, -1 if target is None else target, **kwargs)
    if kind in (".npy", ".npz"):
        return load_numpy(file, target=target, **kwargs)
    if target is not None:
        raise ValidationError(f"target applies to CSV and .npy files, not to {file.name}")
    if kind == "svmlight":
        return load_svmlight(file, **kwargs)
    if kind == "idx":
        labels = kwargs.pop("labels_path", None) or idx_labels_for(file)
        if labels is None:
            raise ValidationError(
                f"no labels for the IDX file {file.name}: put its '...labels-idx1...' file "
                "next to it, or pass labels_path= (or read the images alone with load_idx / "
                "read_idx)"
            )
        if kwargs:
            raise ValidationError(f"unexpected options for an IDX file: {sorted(kwargs)}")
        return load_idx(file, labels)
    raise AssertionError(kind)  # pragma: no cover - file_format knows no other kind


def idx_labels_for(path: PathLike) -> Path | None:
    """The labels file next to IDX images, if there is one: ``...images-idx3...`` ->
    ``...labels-idx1...``, as MNIST's files are named, or ``...images.idx3...`` ->
    ``...labels.idx1...``, as many copies of them are."""
    file = check_path(path)
    for separator in ("-", "."):
        images = f"images{separator}idx3"
        if images in file.name:
            candidate = file.with_name(
                file.name.replace(images, f"labels{separator}idx1"))
            return candidate if candidate.exists() else None
    return None


#: The delimiter of each text format.
TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": r"\s+"}


def file_format(path: PathLike) -> str:
    """The format :func:`load_file` reads ``path`` as: ``".csv"``, ``".tsv"``, ``".txt"``,
    ``".npy"``, ``".npz"``, ``"svmlight"`` or ``"idx"``."""
    file = check_path(path)
    name = file.name.lower()
    stem = name
    for suffix in (".gz", ".bz2", ".xz", ".zip"):
        stem = stem.removesuffix(suffix)
    extension = Path(stem).suffix
    if extension in TEXT_DELIMITERS or (extension in (".npy", ".npz") and stem == name):
        return extension
    if extension in (".svm", ".svmlight", ".libsvm"):
        return "svmlight"
    if "idx" in name or stem.endswith("-ubyte"):
        return "idx"
    raise ValidationError(f"cannot tell the format of {file.name or file}; supported: "
                          f"{_SUPPORTED}")

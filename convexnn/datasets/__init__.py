"""Data: planted teacher networks, embedded data sets, and file loaders.

Embedded data sets (:func:`load_dataset`; every one works offline):

=================  ==============  =======  ========  ===========  ===============================
name               task            samples  features  image_shape  source
=================  ==============  =======  ========  ===========  ===============================
``digits``         classification  1797     64        (1, 8, 8)    scikit-learn, 10 classes
``breast-cancer``  classification  569      30        --           scikit-learn, 2 classes
``wine``           classification  178      13        --           scikit-learn, 3 classes
``iris``           classification  150      4         --           scikit-learn, 3 classes
``diabetes``       regression      442      10        --           scikit-learn
``mnist1d``        classification  5000     40        (1, 1, 40)   ``mnist1d`` generator, 10 classes
``planted``        regression      200      10        --           :func:`make_planted`
=================  ==============  =======  ========  ===========  ===============================

Loaders for the user's own files return ``(X, y)`` with ``X`` a float64
``(n_samples, n_features)`` array: :func:`load_csv` (also TSV / whitespace
text), :func:`load_numpy` (``.npy`` / ``.npz``), :func:`load_svmlight`
(LIBSVM / svmlight) and :func:`load_idx` (MNIST IDX, optionally gzipped);
:func:`load_file` picks one from the file name. A malformed file raises
:class:`~convexnn.exceptions.DataFormatError` naming the file and, where
possible, the line and what was expected.

Randomness is always local (``np.random.RandomState(random_state)``); nothing
here seeds or advances NumPy's global generator.

Generators: :func:`make_planted` (regression targets from a random teacher
network, the authors' generator) and :func:`make_digit_images` (MNIST-size
image-like digits built offline from scikit-learn's 8x8 digits: pixels in
``[0, 1]``, strongly correlated, not standardised).

The code lives in private modules by concern: ``_planted`` (the teacher
generator), ``_images`` (the digit images), ``_split`` (splitting and
standardisation), ``_embedded`` (:func:`load_dataset`), ``_text``, ``_npy``,
``_svmlight`` and ``_idx`` (one per file format, each starting with
``_paths``' check that the file exists) and ``_files`` (:func:`load_file`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convexnn._lazy import attach

#: Names accepted by :func:`load_dataset` (underscores work too: ``breast_cancer``).
#: Defined here, not in ``_embedded``, so that the command line can offer them
#: as choices without importing scikit-learn, torch or pandas.
DATASETS: tuple[str, ...] = (
    "digits",
    "breast-cancer",
    "wine",
    "iris",
    "diabetes",
    "mnist1d",
    "planted",
)

# Everything else is imported on first use (PEP 562): the modules behind these
# names pull in scikit-learn, torch (through TwoLayerPolyNet) or pandas, and
# ``import convexnn.datasets`` -- hence ``convexnn --help`` -- should not.
_LAZY: dict[str, str] = {
    "FEATURE_KINDS": "convexnn.datasets._planted",
    "PlantedData": "convexnn.datasets._planted",
    "make_planted": "convexnn.datasets._planted",
    "DigitImages": "convexnn.datasets._images",
    "make_digit_images": "convexnn.datasets._images",
    "Standardized": "convexnn.datasets._split",
    "standardize": "convexnn.datasets._split",
    "train_test_split_data": "convexnn.datasets._split",
    "Dataset": "convexnn.datasets._embedded",
    "load_dataset": "convexnn.datasets._embedded",
    "load_csv": "convexnn.datasets._text",
    "load_numpy": "convexnn.datasets._npy",
    "load_svmlight": "convexnn.datasets._svmlight",
    "read_idx": "convexnn.datasets._idx",
    "load_idx": "convexnn.datasets._idx",
    "load_file": "convexnn.datasets._files",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from convexnn.datasets._embedded import Dataset, load_dataset
    from convexnn.datasets._files import load_file
    from convexnn.datasets._idx import load_idx, read_idx
    from convexnn.datasets._images import DigitImages, make_digit_images
    from convexnn.datasets._npy import load_numpy
    from convexnn.datasets._planted import FEATURE_KINDS, PlantedData, make_planted
    from convexnn.datasets._split import Standardized, standardize, train_test_split_data
    from convexnn.datasets._svmlight import load_svmlight
    from convexnn.datasets._text import load_csv


__getattr__, __dir__ = attach("convexnn.datasets", globals(), _LAZY)

__all__ = [
    "DATASETS",
    "FEATURE_KINDS",
    "Dataset",
    "DigitImages",
    "PlantedData",
    "Standardized",
    "load_csv",
    "load_dataset",
    "load_file",
    "load_idx",
    "load_numpy",
    "load_svmlight",
    "make_digit_images",
    "make_planted",
    "read_idx",
    "standardize",
    "train_test_split_data",
]

"""The data of a comparison: loaded, split, subsampled, encoded and scaled once for every method."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from convexnn._targets import encode_labels
from convexnn._validation import as_float_array
from convexnn.datasets import (
    DATASETS,
    Dataset,
    load_dataset,
    train_test_split_data,
)
from convexnn.datasets import (
    standardize as standardize_features,
)
from convexnn.exceptions import ValidationError
from convexnn.losses import Loss
from convexnn.patches import ConvGeometry

if TYPE_CHECKING:
    from convexnn.comparison._arguments import Plan

logger = logging.getLogger("convexnn")

#: Conic nonzeros ``n * (d + 1)^2 * C`` (``n * (h + 1)^2 * R * C`` when convolutional)
#: that ``max_samples="auto"`` allows a conic back-end.
AUTO_NONZERO_BUDGET = 4_000_000
#: Back-ends that never form the conic data: ``max_samples="auto"`` never caps for them.
STRUCTURED_SOLVERS: tuple[str, ...] = ("native",)
#: ``max_samples="auto"`` never caps below this many training samples.
AUTO_MIN_SAMPLES = 100
#: ``task="auto"``: integer-valued targets with at most this many values are class labels.
MAX_AUTO_CLASSES = 20

#: What :func:`~convexnn.comparison.compare` takes as data.
DataLike = str | Dataset | Sequence[Any]


def conic_nonzeros_per_sample(
    n_features: int, n_outputs: int, geometry: ConvGeometry | None = None
) -> int:
    """Nonzeros one sample adds to the conic data: ``(d + 1)^2 C``, or ``(h + 1)^2 R C``.

    Parameters
    ----------
    n_features : int
        ``d`` (ignored when convolutional).
    n_outputs : int
        ``C``: one per class for more than two classes, else one.
    geometry : ConvGeometry, optional
        The convolutional variant: filters of ``h`` values, ``R`` pooling regions.

    Returns
    -------
    int
    """
    if geometry is None:
        return (n_features + 1) ** 2 * n_outputs
    return (geometry.patch_size + 1) ** 2 * geometry.n_regions * n_outputs


def default_max_samples(
    n_features: int, n_outputs: int, geometry: ConvGeometry | None = None
) -> int:
    """The training-set cap of ``max_samples="auto"`` for a conic back-end.

    See :mod:`convexnn.comparison`; the cap applies only when a conic
    back-end runs and the data exceed it.

    Parameters
    ----------
    n_features : int
        ``d``.
    n_outputs : int
        ``C``: one per class for more than two classes, else one.
    geometry : ConvGeometry, optional
        The convolutional variant (:func:`conic_nonzeros_per_sample`).

    Returns
    -------
    int
        ``max(AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET // nonzeros per sample)``.
    """
    per_sample = conic_nonzeros_per_sample(n_features, n_outputs, geometry)
    return max(AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET // per_sample)


@dataclass(frozen=True)
class SampleCap:
    """How many training samples a comparison uses, and why.

    Attributes
    ----------
    cap : int or None
        The cap on the training samples; None for all of them.
    reason : str
        One sentence for the report.
    """

    cap: int | None
    reason: str


def choose_sample_cap(
    max_samples: int | str | None,
    n_available: int,
    per_sample: int,
    conic_solvers: Sequence[str],
) -> SampleCap:
    """The training-set cap ``max_samples`` means here, with the reason the report gives.

    Parameters
    ----------
    max_samples : int, "auto" or None
        As given to :func:`~convexnn.comparison.compare`.
    n_available : int
        Training samples before any cap.
    per_sample : int
        Conic nonzeros per sample (:func:`conic_nonzeros_per_sample`).
    conic_solvers : sequence of str
        The requested back-ends that form the conic data (every one but
        :data:`STRUCTURED_SOLVERS`, and ``"auto"`` when it would pick a
        conic back-end). ``"auto"`` caps only for these.

    Returns
    -------
    SampleCap
    """
    if max_samples is None:
        return SampleCap(None, f"all {n_available} training samples (max_samples=None)")
    if max_samples != "auto":
        if max_samples < n_available:
            return SampleCap(int(max_samples), f"{max_samples} of {n_available} training "
                                               f"samples: the cap max_samples={max_samples}")
        return SampleCap(None, f"all {n_available} training samples (max_samples="
                               f"{max_samples} is not below them)")
    nonzeros = n_available * per_sample
    if not conic_solvers:
        return SampleCap(None, f"all {n_available} training samples: max_samples='auto' caps "
                               "only for conic back-ends, and none runs here")
    names = ", ".join(conic_solvers)
    if nonzeros <= AUTO_NONZERO_BUDGET:
        return SampleCap(None, f"all {n_available} training samples: the conic data for "
                               f"{names} ({nonzeros:,} nonzeros) fit max_samples='auto''s budget "
                               f"of {AUTO_NONZERO_BUDGET:,}")
    cap = max(AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET // per_sample)
    if cap >= n_available:  # the floor of AUTO_MIN_SAMPLES
        return SampleCap(None, f"all {n_available} training samples (max_samples='auto' "
                               f"never caps below {AUTO_MIN_SAMPLES})")
    return SampleCap(cap, f"{cap} of {n_available} training samples, for the conic back-end(s) "
                          f"{names}: all samples would make {nonzeros:,} conic nonzeros, over "
                          f"max_samples='auto''s budget of {AUTO_NONZERO_BUDGET:,} (run native "
                          "alone, or pass max_samples=None, for all samples)")


@dataclass
class Split:
    """The training and test parts as loaded: neither subsampled, encoded nor scaled."""

    name: str
    description: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    image_shape: tuple[int, ...] | None = None


@dataclass
class PreparedData:
    """Features and loss-encoded targets, as every method sees them."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray  # labels (classification) or targets, as given to the estimators
    T_train: np.ndarray  # loss-encoded targets, as given to backprop
    T_test: np.ndarray
    task: str
    classes: np.ndarray | None
    n_available: int
    cap_reason: str = ""
    geometry: ConvGeometry | None = None

    @property
    def metric(self) -> str:
        """``"accuracy"`` or ``"r2"``."""
        return "accuracy" if self.task == "classification" else "r2"

    @property
    def n_outputs(self) -> int:
        """``C``: the columns of the encoded targets."""
        return 1 if self.T_train.ndim == 1 else self.T_train.shape[1]


def load_split(data: Any, *, task: str, test_size: Any, random_state: Any) -> Split:
    """The training and test parts of ``data``, checked.

    Parameters
    ----------
    data : str, Dataset, (X, y) or (X_train, y_train, X_test, y_test)
        As given to :func:`~convexnn.comparison.compare`.
    task : {"auto", "classification", "regression"}
        ``"auto"`` takes a data set's own task, or infers it from the targets.
    test_size : float or int
        For a data set name and ``(X, y)``.
    random_state : int
        Seeds the split (and the ``planted`` generator).

    Returns
    -------
    Split

    Raises
    ------
    ValidationError
        Data of another form, or arrays whose shapes do not match.
    """
    if isinstance(data, str):
        dataset = load_dataset(data, test_size=test_size, standardize=False,
                               random_state=random_state)
        return _from_dataset(dataset, task)
    if isinstance(data, Dataset):
        return _from_dataset(data, task)
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        image_shape = _image_shape(data[0], "X" if len(data) == 2 else "X_train")
        if len(data) == 2:
            X, y = _flat_features(data[0], "X"), _target_array(data[1], "y")
            _check_same_length(X, y, "X", "y")
            kind = resolve_task(y, task)
            X_train, X_test, y_train, y_test = train_test_split_data(
                X, y, test_size=test_size, random_state=random_state,
                stratify=kind == "classification",
            )
        else:
            X_train, y_train = _flat_features(data[0], "X_train"), _target_array(data[1], "y_train")
            X_test, y_test = _flat_features(data[2], "X_test"), _target_array(data[3], "y_test")
            _check_same_length(X_train, y_train, "X_train", "y_train")
            _check_same_length(X_test, y_test, "X_test", "y_test")
            if X_test.shape[1] != X_train.shape[1]:
                raise ValidationError(
                    f"X_test has {X_test.shape[1]} features but X_train has {X_train.shape[1]}"
                )
            # Judged on both parts: integral y_train beside a real y_test is a regression
            kind = resolve_task(
                np.concatenate([y_train, y_test]) if y_train.ndim == y_test.ndim else y_train,
                task,
            )
        return Split("data", "user data", X_train, y_train, X_test, y_test, kind, image_shape)
    raise ValidationError(
        f"data must be a data set name (one of {', '.join(DATASETS)}), a Dataset, (X, y) or "
        f"(X_train, y_train, X_test, y_test); got {type(data).__name__}"
    )


def _flat_features(value: Any, name: str) -> np.ndarray:
    """Features, one row per sample: images ``(n, H, W)`` / ``(n, C, H, W)`` flattened."""
    values = as_float_array(value, name, ndims=(2, 3, 4))
    return values.reshape(len(values), -1)


def _image_shape(value: Any, name: str) -> tuple[int, ...] | None:
    """The image shape of image features (the convolutional variant's default), else None."""
    shape = np.shape(value)
    return tuple(int(size) for size in shape[1:]) if len(shape) > 2 else None


def _from_dataset(dataset: Dataset, task: str) -> Split:
    """A loaded :class:`~convexnn.datasets.Dataset` as a Split, its features as floats."""
    kind = dataset.task if task == "auto" else task
    return Split(dataset.name, dataset.description, as_float_array(dataset.X_train, "X_train"),
                 np.asarray(dataset.y_train), as_float_array(dataset.X_test, "X_test"),
                 np.asarray(dataset.y_test), kind, dataset.image_shape)


def _target_array(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D array (a single column flattened) or a 2-D one for several outputs."""
    if y is None:
        raise ValidationError(f"{name} is None; expected targets")
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim not in (1, 2):
        raise ValidationError(f"{name} must be 1-D (or 2-D for several outputs), got shape "
                              f"{values.shape}")
    return values


def _check_same_length(X: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    """Raise a ValidationError naming both arrays unless they have as many rows."""
    if len(X) != len(y):
        raise ValidationError(
            f"{y_name} has {len(y)} rows but {x_name} has {len(X)} samples; they must match"
        )


def resolve_task(y: np.ndarray, task: str) -> str:
    """``task``, or for ``"auto"`` what the targets look like (logged, so it can be overridden):
    labels (text, booleans) or 2 to ``MAX_AUTO_CLASSES`` integral values are classes; other
    numbers, a single value included, are a regression."""
    if task != "auto":
        return task
    if y.ndim == 2:
        kind = "regression"
    elif y.dtype.kind in "OUSb":
        kind = "classification"
    else:
        values = y.astype(np.float64)
        integral = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
        kind = (
            "classification"
            if integral and 2 <= len(np.unique(values)) <= MAX_AUTO_CLASSES
            else "regression"
        )
    logger.info("task='auto': treating the targets as %s (pass task= to override)", kind)
    return kind


def prepare_data(
    split: Split,
    plan: Plan,
    random_state: Any,
    standardize: bool,
    geometry: ConvGeometry | None = None,
) -> PreparedData:
    """Subsample the training part, encode the targets for ``loss`` and scale the features.

    Parameters
    ----------
    split : Split
        The data as loaded.
    plan : Plan
        The checked arguments: ``loss`` decides how class labels are
        encoded; ``max_samples`` and the ``solvers`` that form conic data
        (:func:`conic_backends`) the cap on the training samples
        (:func:`choose_sample_cap`): a random subset, stratified for
        classification. The test part stays whole.
    random_state : int
        Seeds the subsample.
    standardize : bool
        Centre and scale the features with the training part's statistics:
        per feature, or -- for the convolutional variant, whose filters slide
        over the pixels -- by one mean and one standard deviation of all pixels.
    geometry : ConvGeometry, optional
        The convolutional variant.

    Returns
    -------
    PreparedData

    Raises
    ------
    ValidationError
        Fewer than 2 training samples, a test class unseen in training, or
        a classification loss on a regression task.
    """
    classification = split.task == "classification"
    loss = plan.loss
    X_train, y_train = split.X_train, split.y_train
    n_available = len(X_train)
    # The cap depends on the number of outputs, known once the labels are encoded.
    T_train, T_test, classes = _encode_targets(y_train, split.y_test, loss, classification)
    C = 1 if T_train.ndim == 1 else T_train.shape[1]
    per_sample = conic_nonzeros_per_sample(X_train.shape[1], C, geometry)
    conic = conic_backends(plan, X_train[:2], T_train[:2], geometry) if plan.solvers else []
    cap = choose_sample_cap(plan.max_samples, n_available, per_sample, conic)
    needed = max(2, 0 if classes is None else len(classes))
    if cap.cap is not None and cap.cap < needed:
        raise ValidationError(
            f"max_samples={plan.max_samples!r} keeps {cap.cap} training sample(s), but "
            + (f"the {len(classes)} classes need at least one each" if needed > 2
               else "fitting needs at least 2") + f"; raise max_samples to {needed} or more"
        )
    if cap.cap is not None:
        X_train, _, y_train, _ = train_test_split_data(
            X_train, y_train, test_size=n_available - cap.cap, random_state=random_state,
            stratify=classification,
        )
        T_train, T_test, classes = _encode_targets(y_train, split.y_test, loss, classification)
    logger.info("compare: %s", cap.reason)
    if len(X_train) < 2:
        raise ValidationError(f"the training set has {len(X_train)} sample(s); at least 2 needed")
    X_test = split.X_test
    if standardize and geometry is not None:
        X_train, X_test = _scale_pixels(X_train, X_test)
    elif standardize:
        X_train, X_test, _, _ = standardize_features(X_train, X_test)
    return PreparedData(X_train, X_test, y_train, T_train, T_test, split.task, classes,
                        n_available, cap.reason, geometry)


def conic_backends(
    plan: Plan, X: np.ndarray, T: np.ndarray, geometry: ConvGeometry | None
) -> list[str]:
    """The requested back-ends that would form the conic data, as ``max_samples="auto"`` sees them.

    Every usable registered back-end but :data:`STRUCTURED_SOLVERS`; for
    ``"auto"``, whether it would pick a conic back-end at a size where the
    cap matters: ``auto`` puts ``native`` first on large problems whenever
    native is usable and takes the loss (and ``beta``), so ``"auto"``
    counts as conic only otherwise. Unknown and unusable names fail
    without solving anything and count as nothing.

    Parameters
    ----------
    plan : Plan
        The checked arguments (solvers, loss, beta, activation).
    X, T : ndarray
        A few training samples and their encoded targets, to build a problem
        the back-ends can judge.
    geometry : ConvGeometry, optional

    Returns
    -------
    list of str
    """
    from convexnn import solvers as registry
    from convexnn.formulations import problem_for

    registered = registry.names()

    def usable(name: str) -> bool:
        return name in registered and registry.info(name).usable

    conic = [name for name in plan.solvers
             if name not in STRUCTURED_SOLVERS and name != "auto" and usable(name)]
    if "auto" in plan.solvers:
        problem = problem_for(X, T, activation=plan.activation, beta=plan.beta, loss=plan.loss,
                              geometry=geometry)
        structured = [name for name in STRUCTURED_SOLVERS if usable(name)
                      and registry.get(name).unsupported_reason(problem) is None]
        if not structured:
            conic.append("auto")
    return conic


def _scale_pixels(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images centred and scaled by one mean and one standard deviation of the training pixels."""
    mean, std = float(X_train.mean()), float(X_train.std())
    scale = std if std > 0 else 1.0
    return (X_train - mean) / scale, (X_test - mean) / scale


def _encode_targets(
    y_train: np.ndarray, y_test: np.ndarray, loss: Loss, classification: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Loss-encoded training and test targets (and the classes), as the estimators encode."""
    if classification:
        if y_train.ndim != 1:
            raise ValidationError(
                f"class labels must be 1-D, got shape {y_train.shape}; pass task='regression' "
                "for several real targets"
            )
        classes, T_train = encode_labels(y_train, len(y_train), loss)
        both = np.concatenate([y_train, y_test])
        all_classes, T_both = encode_labels(both, len(both), loss)
        if len(all_classes) != len(classes) or not np.all(all_classes == classes):
            unseen = sorted(set(all_classes.tolist()) - set(classes.tolist()))
            raise ValidationError(
                f"y_test has label(s) {unseen[:5]} that the training set lacks; every test "
                "class must occur in training"
            )
        return T_train, T_both[len(y_train):], classes
    if loss.targets != "real":
        raise ValidationError(
            f"loss {loss.name!r} needs class labels, but the task is regression; use a "
            "regression loss (squared, huber, l1) or task='classification'"
        )
    T_train = as_float_array(y_train, "y_train", ndims=(1, 2))
    T_test = as_float_array(y_test, "y_test", ndims=(1, 2))
    loss.check_targets(T_train.reshape(len(T_train), -1))
    return T_train, T_test, None


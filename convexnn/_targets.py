"""Target handling shared by the convex and backprop estimators.

Classifiers: with two classes and an elementwise loss the model has one output and
targets -1/+1; with more classes, one output per class and -1/+1
one-vs-rest targets; row-wise losses (cross-entropy, multiclass-hinge)
always get one output per class and one-hot targets.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from convexnn._validation import (
    as_float_array,
    check_beta,
    check_targets,
    from_tensor,
    is_sparse,
    user_stacklevel,
)
from convexnn.exceptions import InputTypeError, ValidationError
from convexnn.losses import Loss, get_loss

CLASSIFICATION_LOSSES = ("squared", "hinge", "logistic", "cross-entropy", "multiclass-hinge")


def regression_targets(y: Any, n_samples: int) -> np.ndarray:
    """A regressor's targets as floats: ``(n,)`` for 1-D ``y``, ``(n, C)`` for 2-D."""
    values = as_float_array(y, "y", ndims=(1, 2))  # np.ndim(y) fails on array-likes
    targets = check_targets(values, n_samples)
    return targets[:, 0] if values.ndim == 1 else targets


def encode_labels(
    y: Any, n_samples: int, loss: Loss, classes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, targets)`` for labels ``y`` of any type; see the module doc.

    With ``classes`` (a fitted classifier's ``classes_``) the labels are
    encoded for those classes; a label outside them is an error.
    """
    if loss.name not in CLASSIFICATION_LOSSES:
        raise ValidationError(
            f"loss {loss.name!r} is not a classification loss; use one of "
            f"{', '.join(CLASSIFICATION_LOSSES)}"
        )
    y = from_tensor(y)
    if y is None:
        raise ValidationError("this estimator requires y to be passed, but the target y is None")
    if is_sparse(y):
        raise ValidationError("y is a sparse matrix; class labels must be a dense 1-d array. "
                              "Convert with y.toarray().ravel().")
    if hasattr(y, "to_numpy") and not hasattr(y, "columns"):  # a pandas Series
        y = y.to_numpy()
    try:
        labels = column_or_1d(y)
    except ValueError as error:
        raise ValidationError(
            f"y must hold one class label per sample (shape (n,)); got shape "
            f"{np.asarray(y, dtype=object).shape}. "
            "Multi-label targets are not supported (one classifier per label column, "
            "e.g. sklearn.multioutput.MultiOutputClassifier, fits them); for several "
            "real-valued targets use a regressor."
        ) from error
    if np.asarray(y).ndim == 2:
        warnings.warn(  # scikit-learn's words (its estimator checks look for them)
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().", DataConversionWarning,
            stacklevel=user_stacklevel(),
        )
    if len(labels) != n_samples:
        raise ValidationError(
            f"y has {len(labels)} labels but X has {n_samples} samples; they must match"
        )
    labels = _uniform_labels(labels)
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        # Checked here: sklearn's target-type sniffing warns on casting NaN / inf.
        kind = "NaN" if np.isnan(labels).any() else "infinity"
        raise ValidationError(
            f"y contains {kind}; class labels must be finite (drop the unlabelled samples)"
        )
    try:
        check_classification_targets(labels)
    except ValueError as error:
        raise ValidationError(
            f"{error} For real-valued targets use a regressor (ConvexPolyRegressor)."
        ) from error
    if classes is not None:
        return classes, _encode(_indices_in(labels, classes), len(classes), loss)
    classes, encoded = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        only = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]
        raise ValidationError(
            f"y has a single class ({only!r}); a classifier needs at least 2 classes "
            "(check the labels, or the split / subsample that produced them)"
        )
    return classes, _encode(encoded, len(classes), loss)


def _encode(encoded: np.ndarray, n_classes: int, loss: Loss) -> np.ndarray:
    """Targets of class indices ``encoded`` (see the module doc)."""
    if loss.row_wise:
        return np.eye(n_classes)[encoded]
    if n_classes == 2:
        return np.where(encoded == 1, 1.0, -1.0)
    return np.where(np.eye(n_classes)[encoded] == 1, 1.0, -1.0)


def _indices_in(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The index in ``classes`` of every label; a label that is not there is an error."""
    try:
        known = np.isin(labels, classes)
    except TypeError:  # labels and classes of incomparable types
        known = np.zeros(len(labels), dtype=bool)
    if not known.all():
        unknown = np.unique(labels[~known].astype(str))[:5]
        kinds = ""
        if set(unknown) <= set(map(str, classes)):  # the same when printed: 1 and "1"
            kinds = (f" (y's labels are of dtype {labels.dtype}, the classes of dtype "
                     f"{np.asarray(classes).dtype}: give the labels as the fit did)")
        raise ValidationError(
            f"y has labels the model was not fitted on: {', '.join(unknown)}; its classes "
            f"are {', '.join(map(str, classes))}{kinds}"
        )
    return np.searchsorted(classes, labels)


def _uniform_labels(labels: np.ndarray) -> np.ndarray:
    """Object labels as strings or numbers; bytes, mixed or missing labels are an error."""
    kinds = {type(value) for value in labels} if labels.dtype.kind == "O" else set()
    if labels.dtype.kind == "S" or (kinds and all(issubclass(kind, bytes) for kind in kinds)):
        raise InputTypeError(
            "y holds labels as bytes (e.g. b'pos'), which scikit-learn cannot take; decode "
            "them, e.g. y.astype(str)"
        )
    if labels.dtype.kind != "O" or len(labels) == 0:
        return labels
    import pandas as pd  # (here: only object labels need it) its isna knows pd.NA and NaT

    if pd.isna(labels).any():
        raise ValidationError(
            "y contains missing labels (None, NaN or pd.NA); drop the unlabelled samples"
        )
    if all(issubclass(kind, str) for kind in kinds):
        return labels
    if not any(issubclass(kind, (str, bytes)) for kind in kinds):
        try:
            converted = np.asarray(labels.tolist())
        except (TypeError, ValueError):
            converted = labels
        if converted.dtype.kind in "biuf":
            return converted
    names = ", ".join(sorted(kind.__name__ for kind in kinds))
    raise InputTypeError(
        f"y mixes label types ({names}); class labels must be all strings or all numbers. "
        "Convert them, e.g. y.astype(str)."
    )


def decode_scores(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Labels from model outputs (sign of a single output, else argmax)."""
    if scores.ndim == 1:
        return classes[(scores > 0).astype(int)]
    return classes[np.argmax(scores, axis=1)]


def probabilities(scores: np.ndarray, loss: Loss) -> np.ndarray:
    """Class probabilities of a logistic or cross-entropy model's outputs.

    Computed in log space, so extreme scores give 0 / 1, never NaN or overflow
    warnings.
    """
    from scipy.special import expit, log_expit, softmax

    if scores.ndim == 1:
        positive = expit(scores)
        return np.column_stack([1 - positive, positive])
    if loss.name == "logistic":  # one-vs-rest sigmoids, renormalised
        return softmax(log_expit(scores), axis=1)
    return softmax(scores, axis=1)


class FittedObjectiveMixin:
    """The ``loss`` and ``beta`` a model was fitted with.

    What the fitted network means (its certificate, its probabilities) must
    not change with a ``set_params`` after ``fit``; before any fit the
    current parameters stand in.
    """

    @contextlib.contextmanager
    def _fitting(self) -> Iterator[None]:
        """A fit's scope: it starts with no fitted attribute, and a fit that fails leaves
        none. Nothing of a previous fit may outlive a new one (new ``classes_`` beside an
        old ``network_`` would predict the old model's outputs under the new labels), and
        half a fit is no fit."""
        self._forget_fit()
        try:
            yield
        except BaseException:
            self._forget_fit()
            raise

    def _forget_fit(self) -> None:
        """Delete every fitted attribute (those ending in ``_``)."""
        for name in [name for name in vars(self) if name.endswith("_")]:
            del self.__dict__[name]

    def _remember_objective(self, beta: Any, loss: Any) -> None:
        # As given (a name or a Loss object): a saved model keeps its parameters' form.
        self._objective_at_fit_ = {"beta": beta, "loss": loss}

    def _objective_param(self, name: str) -> Any:
        """The fitted ``beta`` or ``loss`` as given (the current parameter before a fit)."""
        fitted = self.__dict__.get("_objective_at_fit_", {})
        # (a CV estimator has no ``beta`` parameter, only the fitted one)
        return fitted[name] if name in fitted else getattr(self, name)

    def _fitted_params(self) -> dict[str, Any]:
        """The parameters of the last fit or of the file it was loaded from
        (``_params_at_fit_``), whatever ``set_params`` did since; the current ones before
        a fit, during one, or for a model built from a path point (it has no fit of its
        own)."""
        return self.__dict__.get("_params_at_fit_") or self.get_params(deep=False)

    def _fitted_loss(self) -> Loss:
        return get_loss(self._objective_param("loss"))

    def _fitted_beta(self) -> float:
        return check_beta(self._objective_param("beta"))


class MultiOutputRegressorMixin:
    """``predict`` and tags of a regressor with one output per target column.

    The regressor provides ``_decision(X)`` (the network's outputs).
    """

    def predict(self, X: Any) -> np.ndarray:
        """Network outputs, ``(n,)`` or ``(n, n_targets)``."""
        return self._decision(X)  # type: ignore[attr-defined]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.target_tags.multi_output = True
        return tags


class EncodedLabelsMixin:
    """Prediction methods of a classifier whose outputs encode labels as above.

    The classifier provides ``classes_``, ``_fitted_loss()`` and ``_decision(X)``
    (the network's outputs).
    """

    classes_: np.ndarray

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores: ``(n,)`` for two classes (positive: ``classes_[1]``), else
        ``(n, n_classes)``.

        The network's outputs; a two-class model of a row-wise loss
        (cross-entropy, multiclass-hinge) has one output per class, and its
        score is their difference, scikit-learn's convention for two classes.
        """
        scores = self._decision(X)  # type: ignore[attr-defined]
        if scores.ndim == 2 and scores.shape[1] == 2 and len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        return decode_scores(self.decision_function(X), self.classes_)

    def _has_probabilities(self) -> bool:
        loss = self._fitted_loss().name  # type: ignore[attr-defined]
        if loss not in ("logistic", "cross-entropy"):
            # (an AttributeError: hasattr(estimator, "predict_proba") stays False)
            raise AttributeError(
                f"predict_proba is only available with loss='logistic' or "
                f"loss='cross-entropy', whose outputs are log-odds; this model was fitted "
                f"with loss={loss!r} (use decision_function for its scores)"
            )
        return True

    @available_if(_has_probabilities)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (logistic and cross-entropy losses only)."""
        # Two classes: the softmax of two outputs is the sigmoid of their difference.
        return probabilities(self.decision_function(X), self._fitted_loss())  # type: ignore[attr-defined]

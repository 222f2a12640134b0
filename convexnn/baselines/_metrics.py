"""Metrics recorded by the backprop baselines.

Every metric is ``metric(y, yhat) -> float`` on loss-encoded targets ``y``
and network outputs ``yhat`` of the same shape, ``(n,)`` or ``(n, C)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convexnn.exceptions import ValidationError

__all__ = ["Metric", "MetricLike", "accuracy", "check_metric", "mean_squared_error", "r2"]

Metric = Callable[[np.ndarray, np.ndarray], float]
MetricLike = str | Metric | None


def accuracy(y: np.ndarray, yhat: np.ndarray) -> float:
    """Fraction of samples whose loss-encoded target and output agree.

    One column: the signs agree (targets -1/+1); several columns: the
    argmax agrees (one-hot or -1/+1 one-vs-rest targets).

    Parameters
    ----------
    y : ndarray of shape (n,) or (n, C)
        Loss-encoded targets.
    yhat : ndarray of the same shape
        Network outputs.

    Returns
    -------
    float
    """
    y, yhat = np.asarray(y), np.asarray(yhat)
    if y.ndim == 1 or y.shape[1] == 1:
        return float(np.mean((y.reshape(-1) > 0) == (yhat.reshape(-1) > 0)))
    return float(np.mean(np.argmax(y, axis=1) == np.argmax(yhat, axis=1)))


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination (averaged uniformly over outputs)."""
    from sklearn.metrics import r2_score

    return float(r2_score(y, yhat))


def mean_squared_error(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean of ``(yhat - y)^2`` over all entries."""
    return float(np.mean((np.asarray(yhat) - np.asarray(y)) ** 2))


#: The metrics a string ``metric`` names.
METRICS: dict[str, Metric] = {"accuracy": accuracy, "r2": r2, "mse": mean_squared_error}


def check_metric(metric: MetricLike) -> Metric | None:
    """The metric ``metric`` names: None, a callable ``metric(y, yhat)`` or a :data:`METRICS` key.

    Raises
    ------
    ValidationError
        Anything else; the message lists the names.
    """
    if metric is None or callable(metric):
        return metric
    if isinstance(metric, str) and metric.lower() in METRICS:
        return METRICS[metric.lower()]
    raise ValidationError(
        f"metric must be None, a callable metric(y, yhat) or one of {', '.join(METRICS)}; "
        f"got {metric!r}"
    )

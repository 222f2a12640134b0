"""Regularisation paths.

:func:`fit_path` solves the convex problem for a decreasing sequence of
``beta`` values, warm-starting each solve from the previous solution (the
neurons engine of the native solver and any back-end that accepts a warm
start use it), and certifies every point.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from convexnn._solve import SolveResult, solve
from convexnn._validation import check_beta
from convexnn.activations import ActivationLike
from convexnn.exceptions import ValidationError
from convexnn.formulations import problem_for
from convexnn.losses import LossLike
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry

logger = logging.getLogger("convexnn")


@dataclass(frozen=True)
class PathPoint:
    """One point of a regularisation path: ``beta``, its result and network."""

    beta: float
    result: SolveResult
    network: TwoLayerPolyNet


def fit_path(
    X: Any,
    y: Any,
    betas: Iterable[float],
    *,
    activation: ActivationLike = "relu-approx",
    loss: LossLike = "squared",
    solver: str = "auto",
    solver_options: Mapping[str, Any] | None = None,
    geometry: ConvGeometry | None = None,
) -> list[PathPoint]:
    """Solve for every ``beta`` (largest first), warm-starting along the path.

    Parameters
    ----------
    X, y : array-like
        Data and loss-encoded targets, as for :func:`convexnn.make_problem`
        (images and a ``geometry`` for the convolutional variant).
    betas : iterable of float
        Regularisation strengths (> 0); solved in decreasing order.
    activation, loss, solver, solver_options
        As for the estimators.
    geometry : ConvGeometry, optional

    Returns
    -------
    list of PathPoint
        In decreasing ``beta``; each with its certified result.
    """
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Iterable):
        raise ValidationError(
            f"betas must be a list of regularisation strengths, got {betas!r}; for a single "
            "value pass [beta]"
        )
    values = sorted((check_beta(beta) for beta in betas), reverse=True)
    if not values:
        raise ValidationError("betas must contain at least one value")
    points: list[PathPoint] = []
    warm_start = None
    for beta in values:
        problem = problem_for(X, y, activation=activation, beta=beta, loss=loss, geometry=geometry)
        result, network, output = solve(problem, solver, solver_options, warm_start=warm_start)
        logger.info(
            "path: beta %.4g objective %.8g certified relative gap %.2e (%d neurons, %.2fs)",
            beta, result.objective, result.relative_gap, result.n_neurons, result.solve_time,
        )
        points.append(PathPoint(beta=beta, result=result, network=network))
        warm_start = output
    return points

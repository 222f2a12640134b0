"""Regularisation paths and certificates for arbitrary networks.

:func:`fit_path` solves the convex problem for a decreasing sequence of
``beta`` values, warm-starting each solve from the previous solution (the
neurons engine of the native solver and any back-end that accepts a warm
start use it), and certifies every point. :func:`certify` bounds the
suboptimality of *any* network -- for example one trained by backprop --
on the convex problem's objective.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from convexnn._validation import as_float_array, check_beta
from convexnn.activations import ActivationLike
from convexnn.exceptions import ValidationError
from convexnn.formulations import PolySDP, make_conv_problem, make_problem
from convexnn.losses import LossLike
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry
from convexnn._solve import Certificate, SolveResult, certify_network, solve

logger = logging.getLogger("convexnn")


@dataclass(frozen=True)
class PathPoint:
    """One point of a regularisation path: ``beta``, its result and network."""

    beta: float
    result: SolveResult
    network: TwoLayerPolyNet


def _problem(
    X: Any,
    y: Any,
    *,
    activation: ActivationLike,
    beta: float,
    loss: LossLike,
    geometry: ConvGeometry | None,
) -> PolySDP:
    if geometry is None:
        return make_problem(X, y, activation=activation, beta=beta, loss=loss)
    return make_conv_problem(X, y, geometry, activation=activation, beta=beta, loss=loss)


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
        problem = _problem(X, y, activation=activation, beta=beta, loss=loss, geometry=geometry)
        result, network, output = solve(problem, solver, solver_options, warm_start=warm_start)
        logger.info(
            "path: beta %.4g objective %.8g certified relative gap %.2e (%d neurons, %.2fs)",
            beta, result.objective, result.relative_gap, result.n_neurons, result.solve_time,
        )
        points.append(PathPoint(beta=beta, result=result, network=network))
        warm_start = output
    return points


def certify(
    network: TwoLayerPolyNet,
    X: Any,
    y: Any,
    *,
    loss: LossLike = "squared",
    beta: float = 0.1,
) -> Certificate:
    """How far ``network`` is from the global optimum of the convex problem.

    Returns the network's objective ``loss(f(X), y) + beta * sum |alpha|``,
    a certified lower bound on the optimum over all networks of the same
    activation (any width), and the gap between them -- whatever trained
    the network. ``y`` is loss-encoded as for :func:`convexnn.make_problem`.
    """
    if not isinstance(network, TwoLayerPolyNet):
        raise ValidationError(
            f"network must be a TwoLayerPolyNet (see TwoLayerPolyNet.from_neurons or "
            f"BackpropRun.network), got {type(network).__name__}"
        )
    targets = as_float_array(y, "y", ndims=(1, 2))
    if network.single_output and targets.ndim == 2 and targets.shape[1] != 1:
        raise ValidationError(
            f"the network has one output but y has {targets.shape[1]} columns"
        )
    if not network.single_output and (targets.ndim != 2 or targets.shape[1] != network.n_outputs):
        raise ValidationError(
            f"the network has {network.n_outputs} outputs; y must have shape (n, {network.n_outputs}), "
            f"got {targets.shape}"
        )
    problem = _problem(
        X, y, activation=network.activation, beta=beta, loss=loss, geometry=network.geometry
    )
    if problem.shape.n_features != network.U.shape[1]:
        raise ValidationError(
            f"X has {problem.shape.n_features} features per "
            f"{'patch' if network.geometry is not None else 'sample'} but the network's "
            f"neurons have {network.U.shape[1]}"
        )
    return certify_network(problem, network)

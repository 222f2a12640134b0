"""Regularisation paths.

:func:`fit_path` solves the convex problem for a decreasing sequence of
``beta`` values, warm-starting each solve from the previous solution, and
certifies every point. The native solver's engines use the warm start (the
interior point resumes from the previous iterate, rescaled to the new
``beta``, and reuses the scaled data and operators it prepared for the
first point; the neurons engine starts from the previous network), as does
any back-end that accepts one. Without ``betas`` it builds the
grid scikit-learn users know from ``lasso_path``: ``n_betas`` values
log-spaced from :func:`beta_max` down to ``eps * beta_max``.

:func:`beta_max` is the smallest ``beta`` at which the zero network is
optimal, computed exactly by the dual oracle at zero predictions (design
notes, section 5): the zero network is optimal iff
``v = grad loss(0)`` is dual feasible, i.e. iff
``max_{||u||=1} |v^T sigma(X u)| <= beta`` for every output (and pooling
region), a trust-region subproblem solved exactly
(:func:`convexnn.solvers.certificate.dual_oracle`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convexnn._solve import SolveResult, solve
from convexnn._validation import check_positive
from convexnn.activations import ActivationLike
from convexnn.exceptions import SolverFailedError, ValidationError
from convexnn.formulations import PolySDP, problem_for
from convexnn.losses import LossLike
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry
from convexnn.solvers._checks import is_real
from convexnn.solvers.base import Status
from convexnn.solvers.certificate import dual_oracle

logger = logging.getLogger("convexnn")

#: Default grid of :func:`fit_path` and the CV estimators (scikit-learn's
#: ``n_alphas`` / ``eps`` convention).
N_BETAS = 20
EPS = 1e-3
#: The most grid points a number of betas may ask for: each is a solve per fold, and a
#: typo (10**11) allocated the grid before anything said so.
MAX_BETAS = 10_000

#: A point the back-end converged on but certified only above ``tol``
#: (``"optimal_inaccurate"``) is used by model selection while its certified relative
#: gap is at most this: its objective is then within 0.1% of the optimum at its beta,
#: while a gap near 1 says nothing of how far its network is from the optimum's.
USABLE_GAP = 1e-3


@dataclass(frozen=True)
class PathPoint:
    """One point of a regularisation path: ``beta``, its result and network.

    Attributes
    ----------
    beta : float
    result : SolveResult
        Status and certificate of the point; ``status == "failed"`` (objective
        and gaps NaN, the error in ``message``) when the back-end failed.
    network : TwoLayerPolyNet or None
        ``None`` for a failed point.
    """

    beta: float
    result: SolveResult
    network: TwoLayerPolyNet | None

    @property
    def usable(self) -> bool:
        """Whether model selection may use the point: status ``"optimal"``, or
        ``"optimal_inaccurate"`` (the back-end converged, but the network's
        certified gap, ``result.relative_gap``, is above ``tol``) with a gap of at
        most :data:`USABLE_GAP`.

        A point that failed or stopped early (an iteration or time limit, an
        interruption), or is certified only above :data:`USABLE_GAP`, is not:
        model selection skips it.
        """
        if self.network is None:
            return False
        status = self.result.status
        return status == Status.OPTIMAL.value or (
            status == Status.OPTIMAL_INACCURATE.value
            and self.result.relative_gap <= USABLE_GAP
        )


def zero_network_beta(problem: PolySDP) -> float:
    """:func:`beta_max` of a built problem (its own ``beta`` is not used)."""
    targets = torch.as_tensor(problem.targets, dtype=torch.float64)
    v = problem.loss.project_dual(problem.loss.gradient(torch.zeros_like(targets), targets),
                                  targets)
    return dual_oracle(problem.patches, v, problem.coefficients).max_bound


def beta_max(
    X: Any,
    y: Any,
    *,
    activation: ActivationLike = "relu-approx",
    loss: LossLike = "squared",
    geometry: ConvGeometry | None = None,
) -> float:
    """The smallest ``beta`` at which the zero network is optimal.

    ``max_{||u||=1} |grad loss(0)^T sigma(X u)|``, the largest over outputs
    (and pooling regions), from the exact dual oracle. For every
    ``beta >= beta_max`` the optimum is the zero network (no neurons,
    predictions 0, a zero duality gap); just below it, at least one neuron
    carries weight. The value returned is the oracle's certified upper bound,
    exact to rounding (a few units in the last place of the largest
    eigenvalue).

    Parameters
    ----------
    X, y : array-like
        Data and loss-encoded targets, as for :func:`convexnn.make_problem`
        (-1/+1 or one-hot labels for classification losses; images and a
        ``geometry`` for the convolutional variant).
    activation, loss
        As for the estimators.
    geometry : ConvGeometry, optional

    Returns
    -------
    float

    Notes
    -----
    Exact for every loss that is differentiable at zero predictions (all
    built-in losses but ``multiclass-hinge``, and ``l1`` where a target is
    exactly 0). For those two the loss's subgradient at zero is used: the
    zero network is still optimal for every ``beta >= beta_max``, but may
    already be for much smaller values (multiclass-hinge, 3 classes of 60
    samples: still zero at 0.3 ``beta_max``, a first neuron between 0.05 and
    0.14 ``beta_max``; a third of the default grid then gives zero networks).

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn import beta_max
    >>> X = np.random.default_rng(0).normal(size=(30, 3))
    >>> y = X[:, 0] ** 2
    >>> beta_max(X, y) > 0
    True
    """
    problem = problem_for(X, y, activation=activation, beta=0.0, loss=loss, geometry=geometry)
    return zero_network_beta(problem)


def check_eps(eps: Any) -> float:
    """The smallest over the largest ``beta`` of a grid: a number in ``(0, 1)``."""
    if not is_real(eps) or not 0.0 < eps < 1.0:
        raise ValidationError(
            f"eps must be a number in (0, 1) (smallest over largest beta of the grid), "
            f"got {eps!r}"
        )
    return float(eps)


def check_betas(betas: Any) -> list[float]:
    """A non-empty list of positive regularisation strengths, decreasing, without repeats."""
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Iterable):
        raise ValidationError(
            f"betas must be a list of positive regularisation strengths, got {betas!r}; for "
            "a single value pass [beta]"
        )
    values = sorted({check_positive(beta, "betas") for beta in betas}, reverse=True)
    if not values:
        raise ValidationError("betas must contain at least one value")
    return values


def check_grid_size(value: Any, name: str) -> int:
    """A number of grid points: a positive int of at most :data:`MAX_BETAS`."""
    count = check_positive(value, name, integer=True)
    if count > MAX_BETAS:
        raise ValidationError(
            f"{name} must be at most {MAX_BETAS} grid points (each one a solve), got {value!r}"
        )
    return int(count)


def beta_grid(top: float, n_betas: int = N_BETAS, eps: float = EPS) -> np.ndarray:
    """``n_betas`` values log-spaced from ``top`` down to ``eps * top`` (decreasing).

    Raises
    ------
    ValidationError
        ``top`` not positive (all-zero targets: the zero network is optimal
        for every ``beta``), ``n_betas`` not a positive int, ``eps`` outside
        ``(0, 1)``; more than :data:`MAX_BETAS` points.
    """
    n_betas = check_grid_size(n_betas, "n_betas")
    eps = check_eps(eps)
    if not is_real(top) or top < 0:
        raise ValidationError(f"top must be a number >= 0 (a beta_max), got {top!r}")
    if top == 0:
        raise ValidationError(
            f"beta_max is {top!r}: the zero network is optimal for every beta (are the "
            "targets all zero, or the features, with an activation without a constant "
            "term?), so there is no path to build; pass betas explicitly"
        )
    if n_betas == 1:
        return np.array([float(top)])
    return float(top) * np.logspace(0.0, math.log10(eps), n_betas)


def fit_path(
    X: Any,
    y: Any,
    betas: Iterable[float] | None = None,
    *,
    activation: ActivationLike = "relu-approx",
    loss: LossLike = "squared",
    solver: str = "auto",
    solver_options: Mapping[str, Any] | None = None,
    geometry: ConvGeometry | None = None,
    n_betas: int = N_BETAS,
    eps: float = EPS,
    decomposition_rtol: float = 1e-9,
) -> list[PathPoint]:
    """Solve for every ``beta`` (largest first), warm-starting along the path.

    Parameters
    ----------
    X, y : array-like
        Data and loss-encoded targets, as for :func:`convexnn.make_problem`
        (images and a ``geometry`` for the convolutional variant).
    betas : iterable of float, optional
        Regularisation strengths (> 0); solved in decreasing order, each
        value once. Default:
        ``n_betas`` values log-spaced from :func:`beta_max` down to
        ``eps * beta_max``.
    activation, loss, solver, solver_options
        As for the estimators.
    geometry : ConvGeometry, optional
    n_betas : int, default=20
        Size of the default grid (only without ``betas``).
    eps : float in (0, 1), default=1e-3
        Smallest over largest ``beta`` of the default grid.
    decomposition_rtol : float, default=1e-9
        As for the estimators.

    Returns
    -------
    list of PathPoint
        In decreasing ``beta``; each with its certified result. A point whose
        back-end failed (:class:`~convexnn.exceptions.SolverFailedError`) is
        kept with status ``"failed"`` and no network, and the path goes on
        from the last good point; one that stopped early keeps its status
        (a :class:`~convexnn.exceptions.SolverStatusWarning` says so).
        :attr:`PathPoint.usable` tells them apart.
    """
    # Built once: every point shares the data (and, with it, what a back-end
    # prepares from the data and carries in its warm start).
    base = problem_for(X, y, activation=activation, beta=0.0, loss=loss, geometry=geometry)
    if betas is None:
        values = [float(beta) for beta in beta_grid(zero_network_beta(base), n_betas, eps)]
    else:
        values = check_betas(betas)
    points: list[PathPoint] = []
    warm_start = None
    for beta in values:
        problem = dataclasses.replace(base, beta=beta)
        start = time.perf_counter()
        try:
            result, network, output = solve(
                problem, solver, solver_options, warm_start=warm_start,
                decomposition_rtol=decomposition_rtol,
            )
        except SolverFailedError as error:
            logger.warning("path: beta %.4g failed (%s); going on from the last good point",
                           beta, error)
            points.append(PathPoint(beta, failed_result(solver, error, start), None))
            continue
        logger.info(
            "path: beta %.4g %s objective %.8g certified relative gap %.2e (%d neurons, %.2fs)",
            beta, result.status, result.objective, result.relative_gap, result.n_neurons,
            result.solve_time,
        )
        points.append(PathPoint(beta=beta, result=result, network=network))
        warm_start = output
    return points


def failed_result(solver: str, error: Exception, start: float) -> SolveResult:
    """The :class:`SolveResult` recorded for a solve that raised ``error``."""
    nan = float("nan")
    return SolveResult(
        status=Status.FAILED.value, objective=nan, lower_bound=nan, duality_gap=nan,
        relative_gap=nan, iterations=None, solve_time=time.perf_counter() - start,
        solver=solver, solver_objective=nan, n_neurons=0, message=str(error),
    )

"""Certified bounds on the global optimum for any network.

:func:`certify` bounds the suboptimality of *any* network -- for example one
trained by backprop -- on the convex problem's objective;
:func:`certify_network` does the same on a built :class:`~convexnn.PolySDP`,
optionally with extra dual candidates (a conic solver's dual variables).
Both use the exact dual oracle of :mod:`convexnn.solvers.certificate`, so a
bound never depends on what a back-end claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convexnn._validation import as_float_array
from convexnn.exceptions import ValidationError
from convexnn.formulations import PolySDP, problem_for
from convexnn.losses import LossLike
from convexnn.network import TwoLayerPolyNet
from convexnn.solvers.certificate import best_dual_bound, relative_gap


@dataclass(frozen=True)
class Certificate:
    """A network's objective and a certified lower bound on the optimum.

    Attributes
    ----------
    objective : float
        ``loss(f(X), y) + beta * sum |alpha|`` of the network.
    lower_bound : float
        A certified lower bound on the optimum over all networks (any width).
    duality_gap : float
        ``objective - lower_bound``.
    relative_gap : float
        ``duality_gap / max(|objective|, 1e-12)``.
    dual_scale, dual_constraint : float
        The scaling that made the dual point feasible, and its constraint
        value (NaN when the bound came from the back-end).
    """

    objective: float
    lower_bound: float
    duality_gap: float
    relative_gap: float
    dual_scale: float = float("nan")
    dual_constraint: float = float("nan")

    @classmethod
    def of(
        cls,
        objective: float,
        lower_bound: float,
        dual_scale: float = float("nan"),
        dual_constraint: float = float("nan"),
    ) -> Certificate:
        """The certificate of an objective and a lower bound (gaps derived)."""
        return cls(
            objective=objective,
            lower_bound=lower_bound,
            duality_gap=objective - lower_bound,
            relative_gap=relative_gap(objective, lower_bound),
            dual_scale=dual_scale,
            dual_constraint=dual_constraint,
        )


def certify_network(
    problem: PolySDP,
    network: TwoLayerPolyNet,
    extra_dual_points: tuple[np.ndarray | None, ...] = (),
) -> Certificate:
    """Objective of ``network`` on ``problem`` and the best certified lower bound.

    The dual candidates are the loss gradient at the network's predictions
    (the optimal dual point when the network is optimal) and any
    ``extra_dual_points`` (e.g. a conic solver's dual variables).
    """
    yhat = network.outputs(problem.patches)
    objective = problem.objective(yhat, network.penalty())
    gradient = problem.loss.gradient(torch.from_numpy(yhat), torch.from_numpy(problem.targets))
    candidates = [gradient.numpy()] + [v for v in extra_dual_points if v is not None]
    bound = best_dual_bound(
        problem.patches,
        problem.targets,
        candidates,
        problem.coefficients,
        problem.beta,
        problem.loss,
    )
    return Certificate.of(objective, bound.lower_bound, bound.scale, bound.constraint)


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
            f"the network has {network.n_outputs} outputs; "
            f"y must have shape (n, {network.n_outputs}), "
            f"got {targets.shape}"
        )
    problem = problem_for(
        X, y, activation=network.activation, beta=beta, loss=loss, geometry=network.geometry
    )
    if problem.shape.patch_size != network.U.shape[1]:
        raise ValidationError(
            f"X has {problem.shape.patch_size} features per "
            f"{'patch' if network.geometry is not None else 'sample'} but the network's "
            f"neurons have {network.U.shape[1]}"
        )
    return certify_network(problem, network)

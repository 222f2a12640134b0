"""Certified bounds on the global optimum, for any network and from any dual point.

Weak duality gives every result its certificate: for a dual point ``v`` with
``max_{||u||=1} |v^T sigma(X u)| <= beta`` (checked exactly by the oracle of
:mod:`convexnn.solvers.certificate`), ``-loss.conjugate(v)`` is a lower
bound on the optimum over networks of every width. So:

- :func:`certify` bounds the suboptimality of *any* network -- for example
  one trained by backprop -- on the convex problem's objective;
- :func:`certify_network` does the same on a built :class:`~convexnn.PolySDP`,
  optionally with extra dual candidates (a back-end's dual variables);
- :func:`lower_bound_from_dual` recomputes the bound of a given dual point,
  e.g. the :attr:`~convexnn.SolveResult.dual_point` a solve returns, so a
  result can be verified independently of the code that produced it.

No bound depends on what a back-end claims.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from convexnn._validation import (
    as_float_array,
    check_bool,
    check_solver,
    check_solver_options,
    user_stacklevel,
)
from convexnn.activations import ActivationLike
from convexnn.exceptions import ConvexNNWarning, ValidationError, translate_solver_error
from convexnn.formulations import PolySDP, problem_for
from convexnn.losses import LossLike
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry
from convexnn.solvers import registry
from convexnn.solvers.certificate import best_dual_bound, dual_bound, relative_gap
from convexnn.solvers.errors import SolverError


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
        ``duality_gap / |objective|``.
    dual_scale, dual_constraint : float
        The scaling that made the dual candidate feasible, and the candidate's
        constraint value ``max_u |v^T sigma(X u)|``.
    dual_point : ndarray of shape (n, C) or None
        The dual feasible point behind ``lower_bound``, in the loss's own
        scale: :func:`lower_bound_from_dual` reproduces the bound from it.
    """

    objective: float
    lower_bound: float
    duality_gap: float
    relative_gap: float
    dual_scale: float = float("nan")
    dual_constraint: float = float("nan")
    dual_point: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        objective: float,
        lower_bound: float,
        dual_scale: float = float("nan"),
        dual_constraint: float = float("nan"),
        dual_point: np.ndarray | None = None,
    ) -> Certificate:
        """The certificate of an objective and a lower bound (gaps derived)."""
        return cls(
            objective=objective,
            lower_bound=lower_bound,
            duality_gap=objective - lower_bound,
            relative_gap=relative_gap(objective, lower_bound),
            dual_scale=dual_scale,
            dual_constraint=dual_constraint,
            dual_point=dual_point,
        )


def gradient_dual(problem: PolySDP, network: TwoLayerPolyNet) -> np.ndarray:
    """The loss gradient at ``network``'s predictions: its natural dual candidate."""
    yhat = torch.from_numpy(network.outputs(problem.patches))
    return problem.loss.gradient(yhat, torch.from_numpy(problem.targets)).numpy()


def certify_network(
    problem: PolySDP,
    network: TwoLayerPolyNet,
    dual_points: Sequence[np.ndarray | None] = (),
) -> Certificate:
    """Objective of ``network`` on ``problem`` and the best certified lower bound.

    The dual candidates are the loss gradient at the network's predictions
    (the optimal dual point when the network is optimal and the loss smooth;
    for a non-smooth loss one subgradient among many) and any
    ``dual_points`` (e.g. a back-end's dual variables, or a previous
    result's :attr:`~convexnn.SolveResult.dual_point`), each scaled into the
    feasible set by the exact oracle.
    """
    if not isinstance(problem, PolySDP):
        raise ValidationError(
            f"problem must be a PolySDP (convexnn.make_problem), got {type(problem).__name__}"
        )
    if not isinstance(network, TwoLayerPolyNet):
        raise ValidationError(
            f"network must be a TwoLayerPolyNet, got {type(network).__name__}"
        )
    objective = problem.network_objective(network)
    candidates = [gradient_dual(problem, network)]
    for point in dual_points:
        if point is not None:
            candidates.append(_dual_array(point, problem.targets.shape))
    bound = best_dual_bound(
        problem.patches,
        problem.targets,
        candidates,
        problem.coefficients,
        problem.beta,
        problem.loss,
        reduce=problem.reduce if problem.communicator is not None else None,
    )
    return Certificate.of(
        objective, bound.lower_bound, bound.scale, bound.constraint, bound.point
    )


def lower_bound_from_dual(
    X: Any,
    y: Any,
    dual_point: Any,
    *,
    beta: float,
    activation: ActivationLike = "relu-approx",
    loss: LossLike = "squared",
    geometry: ConvGeometry | None = None,
) -> float:
    """The certified lower bound on the optimum given by one dual point.

    ``dual_point`` (shape ``(n,)`` or ``(n, C)``, in the loss's own scale, as
    :attr:`~convexnn.SolveResult.dual_point`) is projected onto the loss
    conjugate's domain and scaled by the exact oracle until
    ``max_{||u||=1} |v^T sigma(X u)| <= beta``; the best ``-loss.conjugate``
    on that segment is returned. Any array gives a valid bound -- a wrong
    one merely a low bound -- so this verifies a result independently of the
    solver that produced it. Its scale matters only through the projection,
    which comes first: a point far outside a bounded domain (1e6 times an
    optimal logistic one) is clamped off its direction. Cross-entropy's
    projection (onto ``v + y`` in the simplex, with targets of scale 1)
    also loses a small point's direction to rounding (1e-8 times an optimal
    point gave 0.4 of its bound); for the other losses any multiple down to
    1e-13 gives the same bound.

    Parameters
    ----------
    X, y : array-like
        Data and loss-encoded targets, as for :func:`convexnn.make_problem`
        (images and a ``geometry`` for the convolutional variant).
    dual_point : array-like of shape (n,) or (n, C)
    beta : float
        The problem's l1 penalty (required: a bound is for one ``beta``).
    activation, loss, geometry
        The problem's, as for :func:`convexnn.make_problem`.
    """
    problem = problem_for(X, y, activation=activation, beta=beta, loss=loss, geometry=geometry)
    point = _dual_array(as_float_array(dual_point, "dual_point", ndims=(1, 2)),
                        problem.targets.shape)
    bound = dual_bound(problem.patches, problem.targets, point, problem.coefficients,
                       problem.beta, problem.loss)
    return bound.lower_bound


def _dual_array(point: Any, shape: tuple[int, int]) -> np.ndarray:
    """A dual point as an ``(n, C)`` float array matching the targets."""
    array = np.asarray(point, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.shape != shape:
        expected = f"({shape[0]},) or {shape}" if shape[1] == 1 else str(shape)
        raise ValidationError(
            f"dual_point must have shape {expected} like the targets, got {np.shape(point)}"
        )
    return array


#: How to get a tighter bound, in the words of :func:`certify` and the estimators'
#: ``certify`` (the command line words it as ``--tighten``).
TIGHTER_BOUND_ADVICE = ("certify with tighten=True (or, with convexnn.certify, a solve's "
                        "dual point in dual_points) gives a tighter one")


def certify(
    network: TwoLayerPolyNet,
    X: Any,
    y: Any,
    *,
    beta: float,
    loss: LossLike = "squared",
    dual_points: Sequence[Any] = (),
    tighten: bool = False,
    solver: str = "auto",
    solver_options: Mapping[str, Any] | None = None,
) -> Certificate:
    """How far ``network`` is from the global optimum of the convex problem.

    Returns the network's objective ``loss(f(X), y) + beta * sum |alpha|``,
    a certified lower bound on the optimum over all networks of the same
    activation (any width), and the gap between them -- whatever trained
    the network. ``y`` is loss-encoded as for :func:`convexnn.make_problem`.

    Parameters
    ----------
    network : TwoLayerPolyNet
    X, y : array-like
    beta : float
        The objective's l1 penalty (required: a certificate is for one ``beta``).
    loss : str or Loss, default="squared"
        The objective's loss.
    dual_points : sequence of array-like, optional
        Extra dual candidates of shape ``(n,)`` or ``(n, C)`` (e.g. a
        :attr:`~convexnn.SolveResult.dual_point`); the best bound is kept.
    tighten : bool, default=False
        The default bound comes from the loss gradient at the network's own
        predictions. For a smooth loss it is tight at an optimum and loose for
        a network that is only close to one (a backprop-trained one; on
        heavy-tailed data even a 1e-8-suboptimal network can give a bound
        1e-4 low). For a non-smooth loss (hinge, l1, multiclass-hinge) that
        gradient is one subgradient among many, and the bound can be loose
        even at the exact optimum (relative gaps of 0.7-0.9 measured on small
        problems; a warning says so). With ``True`` the convex problem is also
        solved (``solver``, unpolished) and its dual point joins the
        candidates: the bound becomes as tight as that solve, at the cost of
        the solve. A solve's own :attr:`~convexnn.SolveResult.dual_point` in
        ``dual_points`` does the same for free.
    solver : str, default="auto"
        The back-end of the ``tighten`` solve.
    solver_options : dict, optional
        Its options (e.g. ``time_limit``), as for :func:`convexnn.solve`.
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
    options = check_solver_options(solver_options) or {}
    try:  # a bad name or option is an error whether or not the solver is used
        if check_solver(solver).lower() == "auto":
            from convexnn._solve import check_auto_options  # (it imports this module)

            check_auto_options(options)
        else:
            registry.get(solver).check_options(options)
    except SolverError as error:
        raise translate_solver_error(error) from error
    if isinstance(dual_points, np.ndarray) and dual_points.ndim <= 2:  # iterating it would
        # give its rows (a stack of points, one more dimension, iterates as it should)
        raise ValidationError(
            f"dual_points must be a sequence of dual points, e.g. [result.dual_point]; got "
            f"one array of shape {dual_points.shape}"
        )
    candidates = [as_float_array(point, f"dual_points[{i}]", ndims=(1, 2))
                  for i, point in enumerate(dual_points)]
    if check_bool(tighten, "tighten"):
        from convexnn._solve import solve, status_warnings_off

        # ("the network may be suboptimal" is not about the user's network; at beta = 0 the
        # solve's own warning gives the reason no gap can be certified)
        with status_warnings_off() if problem.beta > 0 else contextlib.nullcontext():
            result, _, _ = solve(problem, solver, solver_options, polish=False)
        if result.status != "optimal" and problem.beta > 0:
            warnings.warn(
                f"tighten: the solve for a dual point stopped with status {result.status!r} "
                f"(its own certified gap {result.relative_gap:.2e}); the bound from its dual "
                "point is valid, only maybe looser", ConvexNNWarning,
                stacklevel=user_stacklevel())
        candidates.append(result.dual_point)
    certificate = certify_network(problem, network, candidates)
    if (not problem.loss.smooth and not candidates and problem.beta > 0
            and certificate.relative_gap > 1e-6):
        warnings.warn(
            f"the {problem.loss.name} loss is not smooth: the bound from the network's own "
            f"subgradient can be loose even at the optimum (relative gap "
            f"{certificate.relative_gap:.2e} here); {TIGHTER_BOUND_ADVICE}",
            ConvexNNWarning, stacklevel=user_stacklevel())
    return certificate

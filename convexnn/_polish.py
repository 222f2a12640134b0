"""Polishing a decomposed network: the network a user gets meets the gap they asked for.

A back-end certifies *its* point (blocks ``Z``, or its own neurons); Neural
Decomposition then turns blocks into a network whose objective can exceed
the blocks' by more than the tolerance (dropped eigenvalues, trace
residuals), and interior-point methods return the maximum-rank point of the
optimal face, i.e. many more neurons than an optimal network needs.
:func:`polish_network` fixes both on the network itself:

1. **refit** (smooth losses): with the neurons' directions fixed, the
   objective is convex in the output weights. Keeping each weight's sign,
   ``min loss(yhat(w)) + beta * sum w`` over ``w >= 0`` is smooth with
   simple bounds and is solved to high accuracy by L-BFGS-B. The l1 penalty
   drives redundant neurons to exactly zero: the network moves toward a
   low-width optimal one inside the directions the back-end found;
2. **prune**: neurons whose removal does not raise the objective go (every
   loss; the only step for the non-smooth ones);
In a data-parallel solve (``problem.communicator``) every sum over samples
is completed over the ranks and the time limit is read from the agreed
clock, so every rank polishes identically.

A polished network is kept only if its objective is no higher than the
original's, so polishing never makes a result worse; :func:`convexnn.solve`
then certifies it (any certified bound is valid for every network, so the
decomposed network's dual candidates still count).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from convexnn.formulations import PolySDP
from convexnn.network import TwoLayerPolyNet

logger = logging.getLogger("convexnn")

#: L-BFGS-B iteration cap of the refit (each iteration is one pass over the data).
REFIT_MAX_ITER = 2000


@dataclass(frozen=True)
class PolishReport:
    """What polishing did to a network.

    Attributes
    ----------
    objective_before : float
        The decomposed network's objective.
    width_before, width : int
        Neurons before and after.
    refit : bool
        Whether the output weights were re-optimised (smooth losses).
    seconds : float
        Wall time of the polish.
    """

    objective_before: float
    width_before: int
    width: int
    refit: bool
    seconds: float


def polish_network(
    problem: PolySDP, network: TwoLayerPolyNet, seconds: float = float("inf")
) -> tuple[TwoLayerPolyNet, PolishReport]:
    """Refit and prune ``network`` (see the module docstring); never raises its objective.

    The refit stops after about ``seconds`` (every L-BFGS-B iterate lowers the
    objective, so an early stop keeps what was gained).
    """
    start = time.perf_counter()
    clock = _clock(problem)
    objective_before = problem.network_objective(network)
    polished = network
    refit = False
    if problem.loss.smooth and network.n_neurons:
        candidate = refit_output_weights(problem, network, deadline=clock() + seconds)
        if candidate is not None:
            polished, refit = candidate, True
    polished = drop_idle_neurons(problem, polished)
    objective = problem.network_objective(polished)
    if objective > objective_before:  # rounding in the refit: keep what came in
        polished, objective, refit = network, objective_before, False
    report = PolishReport(
        objective_before=objective_before,
        width_before=network.n_neurons,
        width=polished.n_neurons,
        refit=refit,
        seconds=time.perf_counter() - start,
    )
    logger.info(
        "polish: objective %.10g -> %.10g, %d -> %d neurons (%.2fs)",
        objective_before, objective, report.width_before, report.width, report.seconds,
    )
    return polished, report


def refit_output_weights(
    problem: PolySDP, network: TwoLayerPolyNet, deadline: float = float("inf")
) -> TwoLayerPolyNet | None:
    """The best output weights for the network's directions and weight signs.

    Returns ``None`` when the optimiser fails or finds nothing lower.
    """
    weights = network.output_weights  # (m, R, C)
    neuron, region, output = np.nonzero(weights)
    if len(neuron) == 0:  # every weight is zero: the zero network, nothing to refit
        return None
    signs = np.sign(weights[neuron, region, output])
    start = np.abs(weights[neuron, region, output])
    # Column e is what a unit weight on entry e adds to output `output[e]`.
    columns = network.pooled_activations(problem.patches)[:, region, neuron] * signs  # (n, E)
    scatter = np.zeros((len(neuron), problem.shape.n_outputs))
    scatter[np.arange(len(neuron)), output] = 1.0
    targets = torch.from_numpy(problem.targets)
    loss, beta = problem.loss, problem.beta

    def objective_and_gradient(w: np.ndarray) -> tuple[float, np.ndarray]:
        yhat = torch.from_numpy(columns @ (w[:, None] * scatter))
        gradient = loss.gradient(yhat, targets).numpy()  # (n, C)
        parts = np.concatenate([[float(loss.value(yhat, targets))],
                                np.einsum("ne,ne->e", columns, gradient[:, output])])
        parts = problem.reduce(parts)  # one all-reduce in a data-parallel solve
        return float(parts[0]) + beta * float(w.sum()), parts[1:] + beta

    before, _ = objective_and_gradient(start)
    clock = _clock(problem)

    def stop_at_deadline(intermediate_result: object) -> None:
        if clock() > deadline:
            raise StopIteration

    solution = minimize(
        objective_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * len(start),
        options={"maxiter": REFIT_MAX_ITER, "ftol": 1e-16, "gtol": 1e-14, "maxcor": 30},
        callback=stop_at_deadline,
    )
    w = np.asarray(solution.x, dtype=float)
    if not np.all(np.isfinite(w)) or not solution.fun < before:
        return None
    refitted = np.zeros_like(weights)
    refitted[neuron, region, output] = signs * w
    return _with_output_weights(network, refitted)


def drop_idle_neurons(problem: PolySDP, network: TwoLayerPolyNet) -> TwoLayerPolyNet:
    """Remove neurons whose removal does not raise the objective.

    A solver's output carries "idle" neurons with output weights at the level
    of its tolerance (for a large ``beta``, where the optimum is the all-zero
    network, every neuron is idle). Neurons are tried smallest first and
    dropped while the objective does not increase; the search stops after
    three neurons in a row are kept.
    """
    m = network.n_neurons
    if m == 0:
        return network
    pooled = network.pooled_activations(problem.patches)  # (n, R, m)
    alpha = network.output_weights  # (m, R, C)
    yhat = np.einsum("nrm,mrk->nk", pooled, alpha)
    weight = np.abs(alpha).sum(axis=(1, 2))
    penalty = float(weight.sum())
    objective = problem.objective(yhat, penalty)
    keep = weight > 0
    kept_in_a_row = 0
    largest = np.abs(pooled).max(axis=(0, 1))
    if problem.communicator is not None:  # the same order on every rank
        largest = problem.communicator.all_reduce(torch.from_numpy(largest), "max").numpy()
    size = weight * largest
    for j in np.argsort(size, kind="stable"):
        if not keep[j]:
            continue
        trial = yhat - pooled[:, :, j] @ alpha[j]
        trial_objective = problem.objective(trial, penalty - weight[j])
        if trial_objective <= objective + 4 * np.finfo(float).eps * abs(objective):
            keep[j] = False
            yhat, penalty, objective = trial, penalty - weight[j], trial_objective
            kept_in_a_row = 0
        else:
            kept_in_a_row += 1
            if kept_in_a_row >= 3:
                break
    if keep.all():
        return network
    return TwoLayerPolyNet(network.U[keep], network.alpha[keep], network.activation,
                           network.geometry)


def _clock(problem: PolySDP):
    """The clock deadlines are read from: agreed over the ranks of a data-parallel solve."""
    return time.perf_counter if problem.communicator is None else problem.communicator.now


def _with_output_weights(network: TwoLayerPolyNet, weights: np.ndarray) -> TwoLayerPolyNet:
    """``network`` with ``(m, R, C)`` output weights, neurons left without weight dropped."""
    keep = np.abs(weights).sum(axis=(1, 2)) > 0
    alpha = weights[keep]
    if network.single_output:
        alpha = alpha[..., 0]
    if network.geometry is None:
        alpha = alpha[:, 0]
    return TwoLayerPolyNet(network.U[keep], alpha, network.activation, network.geometry)

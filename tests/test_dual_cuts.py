"""Dual points moved off the cuts they violate (solvers/native/_dual.py) and their bounds."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

import convexnn
from convexnn import make_problem
from convexnn.datasets import make_digit_images
from convexnn.solvers.certificate import dual_bound
from convexnn.solvers.native import _neuron_predictions
from convexnn.solvers.native._dual import DualCuts
from convexnn.solvers.native._model import NeuronModel
from convexnn.solvers.native._neurons import NeuronSettings, solve_neurons


def _digits_problem(n: int = 200):
    images = make_digit_images(n, image_size=8, digit_size=6.0, max_shift=1.0, random_state=0)
    y = np.where(images.y % 2 == 0, 1.0, -1.0)
    return make_problem(images.X, y, activation="relu-approx", beta=1.0)


def _model(problem) -> NeuronModel:
    return NeuronModel(torch.as_tensor(problem.patches), torch.as_tensor(problem.targets),
                       problem.coefficients, problem.beta, problem.loss)


def _short_solve(problem, rounds: int, dual_cuts: bool = True):
    return solve_neurons(
        problem, tol=1e-12, max_iter=rounds, deadline=time.monotonic() + 600,
        device=torch.device("cpu"), dtype=torch.float64, max_neurons=None, warm_start=None,
        progress=None, settings=NeuronSettings(dual_cuts=dual_cuts),
    )


@pytest.mark.parametrize("outputs", [1, 3])
def test_projection_satisfies_every_cut_and_leaves_a_feasible_point_alone(outputs):
    problem = _digits_problem()
    if outputs > 1:  # cuts of block b constrain output b % C only
        X = problem.patches[:, 0, 0, :]
        problem = make_problem(X, np.eye(outputs)[np.arange(len(X)) % outputs],
                               activation="relu-approx", beta=1.0)
    model = _model(problem)
    rng = np.random.default_rng(0)
    v = torch.as_tensor(rng.standard_normal((problem.shape.n_samples, outputs)))
    cuts = DualCuts(problem.shape.patch_size)
    directions = rng.standard_normal((20, problem.shape.patch_size))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    blocks = np.arange(20) % outputs
    cuts.add(directions, blocks)
    features = model.atoms(torch.as_tensor(directions), torch.zeros(20, dtype=torch.long))

    def values(point):
        return (features * point[:, blocks]).sum(dim=0)

    assert values(v).abs().max() > 2 * problem.beta  # the cuts are violated
    moved = cuts.project(model, v, None)
    assert values(moved).abs().max() <= problem.beta * (1 + 1e-8)
    # Least change: a point that already satisfies every cut is returned as it is.
    inside = 0.5 * moved
    assert torch.equal(cuts.project(model, inside, None), inside)


def test_capacity_keeps_the_newest_cuts():
    cuts = DualCuts(3, capacity=4)
    for block in range(6):
        cuts.add(np.eye(3)[:1], [block])
    assert cuts.blocks.tolist() == [2, 3, 4, 5] and cuts.directions.shape == (4, 3)


def test_moved_gradient_certifies_more_of_the_same_network():
    """At a fixed network, the gradient moved off its violated cuts gives a higher (still
    valid) bound than the gradient itself: the point of the cuts."""
    problem = _digits_problem()
    output = _short_solve(problem, rounds=6, dual_cuts=False)
    model = _model(problem)
    yhat, _ = _neuron_predictions(model.patches, output.neurons, problem)
    gradient = problem.loss.gradient(yhat, model.targets)
    plain = dual_bound(problem.patches, problem.targets, gradient, problem.coefficients,
                       problem.beta, problem.loss)
    cuts = DualCuts(problem.shape.patch_size)
    best = plain.lower_bound
    for _ in range(4):  # a few cutting-plane rounds at the same network
        cuts.add(plain.oracle.directions, np.arange(problem.shape.n_blocks))
        moved = cuts.project(model, gradient, (output.neurons.U, output.neurons.blocks))
        plain = dual_bound(problem.patches, problem.targets, moved, problem.coefficients,
                           problem.beta, problem.loss)
        best = max(best, plain.lower_bound)
    reference, _, _ = convexnn.solve(problem, "clarabel", {"tol": 1e-9}, polish=False)
    first = dual_bound(problem.patches, problem.targets, gradient, problem.coefficients,
                       problem.beta, problem.loss).lower_bound
    assert best <= reference.objective * (1 + 1e-7)  # valid
    assert output.objective - best < 0.8 * (output.objective - first)  # and tighter


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_neurons_engines_dual_point_reproduces_its_bound(loss):
    problem = _digits_problem(120)
    if loss == "logistic":
        problem = make_problem(problem.patches[:, 0, 0, :], problem.targets[:, 0],
                               activation="relu-approx", beta=1.0, loss="logistic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", convexnn.SolverStatusWarning)  # 4 rounds: not optimal
        result, _, output = convexnn.solve(
            problem, "native", {"engine": "neurons", "max_iter": 4}, polish=False
        )
    assert output.dual_point is not None and output.dual_point.shape == (120, 1)
    recomputed = convexnn.lower_bound_from_dual(
        problem.patches[:, 0, 0, :], problem.targets, output.dual_point,
        activation="relu-approx", beta=1.0, loss=loss,
    )
    assert recomputed == pytest.approx(output.lower_bound, rel=1e-9, abs=1e-12)
    assert result.lower_bound >= output.lower_bound - 1e-12


def test_a_stall_is_a_limit_only_at_the_users_or_memorys_cap():
    """At the engine's own cap (4 (h + 1) per block, twice what an optimum needs) a stall
    was reported as iteration_limit "at the width cap", advising more iterations; it is
    the accuracy floor, where a larger tol helps."""
    from convexnn.solvers.base import Status
    from convexnn.solvers.native._neurons import stall_status

    assert stall_status(44, None, None) == (Status.OPTIMAL_INACCURATE, "")
    assert stall_status(44, None, 1000) == (Status.OPTIMAL_INACCURATE, "")
    assert stall_status(10, 10, None) == (Status.ITERATION_LIMIT,
                                          " at the width cap (max_neurons)")
    assert stall_status(7, 10, 7) == (Status.ITERATION_LIMIT, " at the width cap (memory)")
    assert stall_status(6, 10, 7)[0] is Status.OPTIMAL_INACCURATE


def test_a_width_capped_stall_is_a_limit_and_a_wide_warm_start_is_cut_to_the_cap():
    """Held at max_neurons, the engine has not converged: a limit status (the path and
    CV skip it), not the accuracy floor's optimal_inaccurate; a warm start keeps at most
    max_neurons neurons."""
    import dataclasses

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X[:, 0] ** 2 - X[:, 1] + X[:, 2] ** 2 + 0.1 * rng.normal(size=40)
    problem = convexnn.make_problem(X, y, beta=0.05, loss="huber")
    capped = {"engine": "neurons", "max_neurons": 1}
    with pytest.warns(convexnn.SolverStatusWarning):
        result, _, _ = convexnn.solve(problem, "native", capped)
    assert result.status == "iteration_limit" and result.relative_gap > 0.1
    assert "at the width cap" in result.message
    with pytest.warns(convexnn.SolverStatusWarning):
        point = convexnn.fit_path(X, y, [0.05], loss="huber", solver="native",
                                  solver_options=capped)[0]
    assert not point.usable
    _, wide, output = convexnn.solve(problem, "native", {"engine": "neurons"})
    assert wide.n_neurons > 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", convexnn.SolverStatusWarning)
        _, network, _ = convexnn.solve(dataclasses.replace(problem, beta=0.04), "native",
                                       {"engine": "neurons", "max_neurons": 2},
                                       warm_start=output)
    assert network.n_neurons <= 2


def test_refining_in_the_span_certifies_in_fewer_rounds(monkeypatch):
    """8x8 digits (n = 800, h = 64, 10 neurons at the optimum; Newton-CG local steps):
    with steps within the neurons' span the certified gap reaches 1e-8 in 7 rounds,
    without them in 22. Far from the optimum a round's local steps stop at a multiple
    of the rest of the round's measured time: without that the rounds do not depend on
    timing (with it, 15-19 rounds against 23-26)."""
    import math

    from sklearn.datasets import load_digits

    from convexnn.solvers.native import _neurons

    monkeypatch.setattr(_neurons, "LOCAL_SHARE", math.inf)
    X, y = load_digits(return_X_y=True)
    problem = make_problem(X[:800] / 16.0, np.where(y[:800] % 2 == 0, 1.0, -1.0),
                           activation="relu-approx", beta=1.0)
    outputs = {
        flag: solve_neurons(
            problem, tol=1e-8, max_iter=80, deadline=math.inf,
            device=torch.device("cpu"), dtype=torch.float64, max_neurons=None,
            warm_start=None, progress=None, settings=NeuronSettings(refine_in_span=flag))
        for flag in (True, False)
    }
    for output in outputs.values():
        assert output.stats["relative_gap"] <= 1e-8
    assert outputs[True].objective == pytest.approx(outputs[False].objective, rel=1e-8)
    assert 2 * outputs[True].iterations <= outputs[False].iterations, (
        outputs[True].iterations, outputs[False].iterations)

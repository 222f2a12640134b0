"""The interior-point engine along a path: prepared workspace and warm starts."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from conftest import planted_teacher
from convexnn import make_problem, solvers
from convexnn.solvers.base import Status
from convexnn.solvers.native._ipm import IPMWarmStart, SquaredWorkspace, solve_squared

COEFFICIENTS = (0.09375, 0.5, 0.46875)


def data(n=80, d=5, outputs=1, seed=3):
    t = planted_teacher(n=n, d=d, seed=seed, noise=0.3,
                        n_outputs=None if outputs == 1 else outputs)
    problem = make_problem(t.X, t.y, beta=1.0, loss="squared")
    patches = torch.as_tensor(problem.patches, dtype=torch.float64)
    targets = torch.as_tensor(problem.targets, dtype=torch.float64)
    return problem, patches, targets


def ipm(patches, targets, beta, **kwargs):
    return solve_squared(patches, targets, COEFFICIENTS, beta, tol=1e-7, max_iter=100,
                         deadline=math.inf, **kwargs)


def objective(problem, output, beta):
    from convexnn.solvers.native import _block_predictions

    blocks = [(z.numpy(), zn.numpy()) for z, zn in output.blocks]
    yhat = _block_predictions(torch.as_tensor(problem.patches), blocks, COEFFICIENTS)
    penalty = sum(float(z[-1, -1] + zn[-1, -1]) for z, zn in blocks)
    return 0.5 * float(((yhat.numpy() - problem.targets) ** 2).sum()) + beta * penalty


@pytest.mark.parametrize("outputs", [1, 3])
def test_warm_started_path_reaches_the_cold_optimum_in_fewer_iterations(outputs):
    problem, patches, targets = data(outputs=outputs)
    betas = [4.0 * 0.6**k for k in range(8)]
    cold_iterations = warm_iterations = 0
    previous = None
    for beta in betas:
        cold = ipm(patches, targets, beta)
        warm = ipm(patches, targets, beta, warm_start=previous)
        # (the accuracy floor of rounding can stop either just short of tol)
        converged = (Status.OPTIMAL, Status.OPTIMAL_INACCURATE)
        assert cold.status in converged and warm.status in converged
        assert warm.warm_started == (0 if previous is None else outputs)
        cold_objective, warm_objective = (objective(problem, o, beta) for o in (cold, warm))
        assert warm_objective == pytest.approx(cold_objective, rel=1e-6)
        cold_iterations += cold.iterations
        warm_iterations += warm.iterations
        previous = warm.warm_start
        assert isinstance(previous, IPMWarmStart) and previous.beta == beta
    assert warm_iterations < cold_iterations


def test_prepared_workspace_gives_bit_identical_solves():
    _, patches, targets = data(outputs=2)
    workspace = SquaredWorkspace.prepare(patches, targets, COEFFICIENTS)
    for beta in (2.0, 0.5):
        fresh = ipm(patches, targets, beta)
        reused = ipm(patches, targets, beta, workspace=workspace)
        assert fresh.iterations == reused.iterations
        for (z, zn), (w, wn) in zip(fresh.blocks, reused.blocks):
            assert torch.equal(z, w) and torch.equal(zn, wn)
        assert torch.equal(fresh.dual, reused.dual)
        assert reused.warm_start.workspace is workspace  # handed on along the path


def test_workspace_and_warm_start_of_other_data_are_ignored():
    _, patches, targets = data()
    _, other_patches, other_targets = data(seed=4)
    other = ipm(other_patches, other_targets, 1.0)
    cold = ipm(patches, targets, 1.0)
    for kwargs in ({"warm_start": other.warm_start}, {"workspace": other.warm_start.workspace}):
        result = ipm(patches, targets, 1.0, **kwargs)
        assert result.warm_started == 0 and result.iterations == cold.iterations
        assert all(torch.equal(a[0], b[0]) for a, b in zip(result.blocks, cold.blocks))
    assert not other.warm_start.workspace.matches(patches, targets, COEFFICIENTS)
    assert not SquaredWorkspace.prepare(patches, targets, COEFFICIENTS).matches(
        patches, targets, (1.0, 0.0, 0.0))


def test_native_solver_carries_the_warm_start_between_solves():
    problem, _, _ = data()
    native = solvers.get("native")
    first = native.solve(dataclasses.replace(problem, beta=2.0), engine="ipm")
    assert isinstance(first.engine_state, IPMWarmStart)
    assert first.stats["warm_started_outputs"] == 0
    second_problem = dataclasses.replace(problem, beta=1.2)
    warm = native.solve(second_problem, engine="ipm", warm_start=first)
    cold = native.solve(second_problem, engine="ipm")
    assert warm.stats["warm_started_outputs"] == 1
    assert warm.status is Status.OPTIMAL and cold.status is Status.OPTIMAL
    assert warm.objective == pytest.approx(cold.objective, rel=1e-7)
    assert warm.stats["relative_gap"] <= 1e-6
    # a warm start of another data set is not used
    other, _, _ = data(seed=4)
    stranger = native.solve(dataclasses.replace(other, beta=1.2), engine="ipm")
    unrelated = native.solve(second_problem, engine="ipm", warm_start=stranger)
    assert unrelated.stats["warm_started_outputs"] == 0
    assert unrelated.iterations == cold.iterations

"""Factored Newton along a path (solvers/native/_factored.py), checked against the interior
point solved cold and against Clarabel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ipm_warm import COEFFICIENTS, data, ipm  # the same small problems and solves

from conftest import planted_teacher
from convexnn import fit_path, make_problem, solve
from convexnn.solvers.base import Status
from convexnn.solvers.native import _factored
from convexnn.solvers.native._ipm import SquaredWorkspace
from convexnn.solvers.native._lifted import GramOperator, LiftedOperator


def objective(patches, targets, output, beta):
    """The SDP objective of an output's blocks on ``(patches, targets)``."""
    from convexnn.solvers.native import _block_predictions

    blocks = [(z.numpy(), zn.numpy()) for z, zn in output.blocks]
    yhat = _block_predictions(patches, blocks, COEFFICIENTS).numpy()
    penalty = sum(float(z[-1, -1] + zn[-1, -1]) for z, zn in blocks)
    return 0.5 * float(((yhat - targets.numpy()) ** 2).sum()) + beta * penalty


def test_apply_factor_of_both_operators_is_A_i_times_U():
    rng = np.random.default_rng(0)
    patches = torch.as_tensor(rng.normal(size=(30, 1, 4)))
    U = torch.as_tensor(rng.normal(size=(5, 3)))
    gram, lifted = GramOperator(patches[:, 0], COEFFICIENTS), LiftedOperator(patches,
                                                                              COEFFICIENTS)
    expected = lifted.matrices @ U  # the stored A_i, formed independently
    torch.testing.assert_close(gram.apply_factor(U), expected)
    torch.testing.assert_close(lifted.apply_factor(U), expected)
    # and tr(U^T A_i U) is the operator applied to U U^T
    torch.testing.assert_close((expected * U).sum(dim=(1, 2)), gram.apply(U @ U.T))


@pytest.mark.parametrize("outputs", [1, 3])
def test_path_points_are_certified_by_factored_newton_at_the_cold_optimum(outputs):
    _, patches, targets = data(outputs=outputs)
    previous, factored = None, 0
    for beta in [4.0 * 0.7**k for k in range(10)]:
        warm = ipm(patches, targets, beta, warm_start=previous)
        cold = ipm(patches, targets, beta)
        assert warm.status is Status.OPTIMAL
        assert objective(patches, targets, warm, beta) == pytest.approx(
            objective(patches, targets, cold, beta), rel=1e-7)
        for z, z_neg in warm.blocks:  # blocks are PSD and meet the trace constraint
            for block in (z, z_neg):
                assert float(torch.linalg.eigvalsh(block)[0]) >= -1e-9 * max(
                    1.0, float(block.abs().max()))
        factored += warm.factored
        previous = warm.warm_start
    # the path's rank changes are in there too: most points never reach the interior point
    assert factored >= 0.7 * 9 * outputs


def test_rank_growth_is_found_from_a_far_warm_start():
    """From the optimum at a large beta (few neurons) straight to a small one."""
    _, patches, targets = data(n=60, d=4, seed=5)
    start = ipm(patches, targets, 8.0)
    far = ipm(patches, targets, 0.05, warm_start=start.warm_start)
    cold = ipm(patches, targets, 0.05)
    assert far.status is Status.OPTIMAL
    assert objective(patches, targets, far, 0.05) == pytest.approx(
        objective(patches, targets, cold, 0.05), rel=1e-7)
    assert far.factored == 1

    def rank(output):
        values = torch.cat([torch.linalg.eigvalsh(b) for pair in output.blocks for b in pair])
        return int((values > 1e-6 * float(values.max())).sum())

    assert rank(start) == 2 and rank(far) == 6  # columns added where the slacks asked


def test_a_failed_factored_solve_falls_back_to_the_interior_point(monkeypatch):
    _, patches, targets = data()
    start = ipm(patches, targets, 2.0)
    monkeypatch.setattr(_factored, "MAX_ROUNDS", 0)  # no round at all: never certifies
    warm = ipm(patches, targets, 1.0, warm_start=start.warm_start)
    assert warm.status is Status.OPTIMAL and warm.factored == 0 and warm.iterations > 0
    assert objective(patches, targets, warm, 1.0) == pytest.approx(
        objective(patches, targets, ipm(patches, targets, 1.0), 1.0), rel=1e-7)


def test_factors_wider_than_the_interior_points_system_are_left_to_it():
    _, patches, targets = data(n=12, d=5, seed=2)
    start = ipm(patches, targets, 0.01)  # many neurons: (h+1) * rank > n
    output = ipm(patches, targets, 0.007, warm_start=start.warm_start)
    assert output.status is Status.OPTIMAL and output.factored == 0


def test_factors_are_left_to_the_interior_point_when_its_iteration_is_cheaper():
    from convexnn.solvers.native._factored import _too_large

    # Breast-cancer's shape: 455 samples, 8 neurons of 31 entries (a Newton step ~33 MFlop).
    factors, n = [torch.zeros((31, 8), dtype=torch.float64)], 455
    assert not _too_large(factors, n, iteration_flops=8.3e7)  # n x n side: ~83 MFlop
    assert _too_large(factors, n, iteration_flops=2e6)  # a cheap lifted side
    assert not _too_large(factors, n, iteration_flops=float("inf"))
    assert _too_large([torch.zeros((31, 15), dtype=torch.float64)], n, float("inf"))  # > n


def test_pooled_path_is_certified_by_factored_newton():
    rng = np.random.default_rng(1)
    patches = torch.as_tensor(rng.normal(size=(50, 2, 3, 3)))
    targets = torch.as_tensor(rng.normal(size=(50, 1)))
    workspace = SquaredWorkspace.prepare(patches, targets, COEFFICIENTS)
    previous, factored = None, 0
    for beta in (3.0, 2.0, 1.4, 1.0):
        warm = ipm(patches, targets, beta, warm_start=previous, workspace=workspace)
        cold = ipm(patches, targets, beta)
        assert warm.status is Status.OPTIMAL
        assert objective(patches, targets, warm, beta) == pytest.approx(
            objective(patches, targets, cold, beta), rel=1e-7)
        factored += warm.factored
        previous = warm.warm_start
    assert factored >= 2


def test_fit_path_agrees_with_clarabel_and_reports_factored_outputs():
    t = planted_teacher(n=60, d=4, seed=7, noise=0.2)
    betas = [2.0, 1.2, 0.7, 0.4]
    points = fit_path(t.X, t.y, betas, solver="native")
    assert sum(p.result.stats.get("factored_outputs", 0) for p in points) >= 2
    for point in points:
        reference, _, _ = solve(make_problem(t.X, t.y, beta=point.beta), solver="clarabel")
        assert point.result.status == "optimal"
        assert point.result.objective == pytest.approx(reference.objective, rel=1e-6)
        assert point.result.relative_gap <= 1e-6


def test_ctrl_c_in_factored_newton_stops_the_solve_with_its_iterate(monkeypatch):
    _, patches, targets = data(outputs=2)
    start = ipm(patches, targets, 2.0)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_factored, "_newton", interrupted)
    output = ipm(patches, targets, 1.0, warm_start=start.warm_start)
    # no fall-back to the interior point after Ctrl-C, and the next output is not started
    assert output.status is Status.INTERRUPTED and output.iterations == 0
    assert all(float(z.abs().sum()) == 0.0 for z in output.blocks[1])

"""Neural Decomposition (design.md, section 3).

Two levels:

* the rank-one decomposition itself, on random PSD matrices with
  ``trace(Z1) = Z4`` (full rank, rank deficient, with eigenvalues spread over
  many orders of magnitude, slightly indefinite as a solver returns them):
  ``P P^T`` reconstructs ``Z``, every column has ``p^T G p ~ 0``, nothing is
  ever NaN;
* the networks recovered from solved SDPs: same predictions as the blocks,
  same objective as the SDP, unit-norm neurons, width at most ``2(h+1)`` per
  block pair.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import (
    onehot_targets,
    planted_conv_teacher,
    planted_teacher,
    solve_checked,
    tight_options,
)
from convexnn._solve import network_from_output
from convexnn.decomposition import decompose_blocks, neural_decomposition, neurons_from_factor
from convexnn.exceptions import ValidationError
from convexnn.formulations import make_conv_problem, make_problem


def feasible_psd(rng: np.random.Generator, h: int, rank: int, scales=None) -> np.ndarray:
    """A random PSD ``(h+1) x (h+1)`` matrix of rank ``rank`` with ``trace(Z1) = Z4``.

    ``Z = D A A^T D`` with ``D = diag(1, ..., 1, s)``: congruence keeps it PSD
    and of the same rank, and ``s`` fixes the trace condition.
    """
    A = rng.standard_normal((h + 1, rank))
    if scales is not None:
        A = A * scales
    Z = A @ A.T
    if rank == 0 or Z[h, h] <= 0:
        return np.zeros((h + 1, h + 1))
    D = np.ones(h + 1)
    D[h] = np.sqrt(np.trace(Z[:h, :h]) / Z[h, h])
    return Z * D[:, None] * D[None, :]


def g_norms(P: np.ndarray) -> np.ndarray:
    """``p_j^T G p_j`` of every column, ``G = diag(I_h, -1)``."""
    return np.sum(P[:-1] ** 2, axis=0) - P[-1] ** 2


def check_decomposition(Z: np.ndarray, rtol: float, slack: float = 0.0) -> np.ndarray:
    """Assert the invariants; ``slack`` is the size of any perturbation put into ``Z``."""
    P = neural_decomposition(Z, rtol)
    h = Z.shape[0] - 1
    assert np.all(np.isfinite(P)), "decomposition produced NaN / inf"
    assert P.shape[0] == h + 1
    assert P.shape[1] <= h + 1
    scale = max(np.linalg.norm(Z, 2), 1e-300)
    # Dropping eigenvalues below rtol * max costs at most (h + 1) * rtol * ||Z||.
    budget = (h + 1) * max(rtol, 1e-15) + 1e-10 + (h + 1) * slack
    assert np.linalg.norm(P @ P.T - Z, 2) <= budget * scale
    assert np.all(np.abs(g_norms(P)) <= budget * scale)
    filters, weights = neurons_from_factor(P, 1.0)
    assert np.all(np.isfinite(filters)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(np.linalg.norm(filters, axis=1), 1.0, rtol=1e-12)
    assert np.all(weights >= 0)
    return P


@pytest.mark.parametrize("h", [1, 2, 4, 7])
@pytest.mark.parametrize("seed", range(5))
def test_full_rank(h, seed):
    Z = feasible_psd(np.random.default_rng(seed), h, h + 1)
    P = check_decomposition(Z, rtol=1e-9)
    # Exact data: columns are balanced to rounding, not just to the cut-off.
    np.testing.assert_allclose(P @ P.T, Z, atol=1e-11 * np.linalg.norm(Z, 2))
    assert np.abs(g_norms(P)).max() <= 1e-11 * np.linalg.norm(Z, 2)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_deficient(rank):
    Z = feasible_psd(np.random.default_rng(rank), 6, rank)
    P = check_decomposition(Z, rtol=1e-9)
    assert P.shape[1] <= rank


def test_zero_matrix_gives_no_neurons():
    P = neural_decomposition(np.zeros((4, 4)))
    assert P.shape == (4, 0)
    filters, weights = neurons_from_factor(P, -1.0)
    assert filters.shape == (0, 3) and weights.shape == (0,)


def test_two_by_two_hand_case():
    """``Z = I_2`` splits into two neurons ``u = +-1`` with weight 1/2 each."""
    P = neural_decomposition(np.eye(2))
    filters, weights = neurons_from_factor(P, 1.0)
    np.testing.assert_allclose(np.sort(filters.ravel()), [-1.0, 1.0])
    np.testing.assert_allclose(weights, [0.5, 0.5])


@pytest.mark.parametrize("rtol", [0.0, 1e-15, 1e-12, 1e-9])
@pytest.mark.parametrize("tiny", [1e-8, 1e-12, 1e-15, 1e-17])
def test_near_zero_eigenvalues_never_give_nan(rtol, tiny):
    """Eigenvalues at and below the cut-off (the authors' code returns NaN here)."""
    rng = np.random.default_rng(7)
    Z = feasible_psd(rng, 5, 4, scales=np.array([1.0, 1.0, np.sqrt(tiny), np.sqrt(tiny) / 10]))
    check_decomposition(Z, rtol)


@pytest.mark.parametrize("seed", range(5))
def test_slightly_indefinite_solver_output(seed):
    """A symmetric perturbation of 1e-10 makes eigenvalues negative; still no NaN."""
    rng = np.random.default_rng(seed)
    Z = feasible_psd(rng, 5, 2)
    noise = rng.standard_normal(Z.shape) * 1e-10 * np.abs(Z).max()
    Z = Z + noise + noise.T
    assert np.linalg.eigvalsh(Z).min() < 0
    check_decomposition(Z, rtol=1e-9, slack=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 8),
    rank_fraction=st.floats(0.0, 1.0),
    spread=st.floats(0.0, 16.0),
    magnitude=st.floats(-8.0, 8.0),
    rtol=st.sampled_from([0.0, 1e-12, 1e-9, 1e-6]),
)
def test_decomposition_invariants_property(seed, h, rank_fraction, spread, magnitude, rtol):
    rng = np.random.default_rng(seed)
    rank = int(round(rank_fraction * (h + 1)))
    scales = 10.0 ** rng.uniform(-spread / 2, 0, rank)
    Z = feasible_psd(rng, h, rank, scales) * 10.0**magnitude
    check_decomposition(Z, rtol)


def test_invalid_input_is_rejected_by_name():
    with pytest.raises(ValidationError, match="square"):
        neural_decomposition(np.ones((2, 3)))
    with pytest.raises(ValidationError, match="NaN"):
        neural_decomposition(np.full((3, 3), np.nan))
    with pytest.raises(ValidationError, match="rtol"):
        neural_decomposition(np.eye(3), rtol=2.0)


# -- networks recovered from solved SDPs ---------------------------------------


def _scalar():
    t = planted_teacher(n=40, d=5, seed=1)
    return make_problem(t.X, t.y, beta=0.1), t.X


def _quadratic():
    t = planted_teacher(n=40, d=5, activation="quadratic", seed=2)
    return make_problem(t.X, t.y, activation="quadratic", beta=0.1), t.X


def _custom_activation():
    t = planted_teacher(n=40, d=4, activation=(0.5, -1.0, 2.0), seed=3)
    return make_problem(t.X, t.y, activation=(0.5, -1.0, 2.0), beta=0.05, loss="huber"), t.X


def _vector():
    t = planted_teacher(n=40, d=4, n_outputs=3, seed=4)
    return make_problem(t.X, onehot_targets(t), beta=0.1, loss="cross-entropy"), t.X


def _conv_global():
    images, y, geometry, _ = planted_conv_teacher(n=30, filter_size=2, seed=5)
    return make_conv_problem(images, y, geometry, beta=0.1), images


def _conv_pooled():
    images, y, geometry, _ = planted_conv_teacher(n=30, filter_size=2, pool_size=2, seed=6)
    return make_conv_problem(images, y, geometry, beta=0.1), images


CASES = {
    "scalar": _scalar,
    "quadratic": _quadratic,
    "custom-huber": _custom_activation,
    "vector-ce": _vector,
    "conv-global": _conv_global,
    "conv-2x2": _conv_pooled,
}


@pytest.fixture(scope="module", params=list(CASES))
def solved(request):
    problem, inputs = CASES[request.param]()
    # The decomposition itself, unpolished: tests/test_polish.py covers polishing.
    result, network, output = solve_checked(problem, "clarabel", polish=False)
    return problem, inputs, result, network, output


def test_network_reproduces_the_sdp_predictions(solved):
    problem, inputs, result, network, output = solved
    sdp = problem.predict_blocks(output.blocks)
    predicted = network.predict(inputs).reshape(sdp.shape)
    scale = max(np.abs(sdp).max(), 1.0)
    assert np.abs(predicted - sdp).max() <= 1e-5 * scale


def test_network_attains_the_sdp_objective(solved):
    problem, inputs, result, network, output = solved
    sdp_objective = problem.objective(
        problem.predict_blocks(output.blocks), problem.block_penalty(output.blocks)
    )
    assert sdp_objective == pytest.approx(output.objective, rel=1e-6)
    assert result.objective == pytest.approx(output.objective, rel=1e-5)
    assert network.penalty() == pytest.approx(problem.block_penalty(output.blocks), rel=1e-6)
    if problem.geometry is None:
        y = problem.targets if problem.targets.shape[1] > 1 else problem.targets[:, 0]
        own = network.objective(inputs, y, loss=problem.loss, beta=problem.beta)
        assert own == pytest.approx(output.objective, rel=1e-5)
    # ... and the certificate agrees that this is the optimum.
    assert result.lower_bound <= result.objective + 1e-9
    assert result.relative_gap < 1e-5


def test_neurons_have_unit_norm_and_bounded_width(solved):
    problem, _, _, network, output = solved
    neurons = decompose_blocks(output.blocks)
    np.testing.assert_allclose(np.linalg.norm(neurons.U, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(network.U, axis=1), 1.0, rtol=1e-12)
    h = problem.shape.patch_size
    counts = np.bincount(neurons.blocks, minlength=problem.shape.n_blocks)
    assert counts.max() <= 2 * (h + 1)
    for index, (z_pos, z_neg) in enumerate(output.blocks):
        owned = neurons.alpha[neurons.blocks == index]
        # Z gives the positive output weights, Z' the negative ones.
        assert owned[owned > 0].sum() == pytest.approx(z_pos[-1, -1], rel=1e-6, abs=1e-9)
        assert -owned[owned < 0].sum() == pytest.approx(z_neg[-1, -1], rel=1e-6, abs=1e-9)
    assert network.n_neurons == len(neurons.alpha) <= 2 * (h + 1) * problem.shape.n_blocks


def test_zero_rtol_gives_a_finite_network(solved):
    problem, inputs, _, _, output = solved
    network = network_from_output(problem, output, rtol=0.0)
    assert np.all(np.isfinite(network.U)) and np.all(np.isfinite(network.alpha))
    sdp = problem.predict_blocks(output.blocks)
    assert np.abs(network.predict(inputs).reshape(sdp.shape) - sdp).max() <= 1e-5 * max(
        np.abs(sdp).max(), 1.0
    )


def test_scs_solution_decomposes_too():
    problem, inputs = _scalar()
    _, network, output = solve_checked(
        problem, "scs", tight_options("scs"), accept=("optimal",), polish=False
    )
    sdp = problem.predict_blocks(output.blocks)
    assert np.abs(network.predict(inputs) - sdp[:, 0]).max() <= 1e-5 * np.abs(sdp).max()

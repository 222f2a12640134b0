"""The interior point's Newton systems on the lifted side (``m < n``: many samples,
small blocks), against the assembled ``n x n`` matrix and the conic optimum.

* the symmetric-vector pieces are exact: ``svec_kron`` is the matrix of
  ``D -> (X D Y + Y D X)/2``, ``svec_rows`` reproduce ``A``;
* a lifted-side solve equals a solve with the assembled ``M`` (both
  operators; more and fewer samples than lifted entries);
* the interior point reaches the same optimum on either side, and Clarabel's;
* the cost model and the memory estimate follow the sizes: the MNIST-size
  CNN of issue 11 no longer needs its ``n x n`` matrices;
* a network's pooled activations are computed in chunks, identically.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import convexnn.network
import convexnn.solvers.native._ipm as ipm_module
from conftest import planted_conv_teacher, planted_teacher, relative_difference, solve_checked
from convexnn import make_conv_problem, make_problem, solvers
from convexnn._solve import solve
from convexnn.solvers.native._ipm import SquaredWorkspace, _Cone
from convexnn.solvers.native._lifted import (
    GramOperator,
    LiftedOperator,
    LiftedSystem,
    iteration_flops,
    svec_indices,
    svec_kron,
)

DTYPE = torch.float64


def _positive_definite(generator: torch.Generator, size: int) -> torch.Tensor:
    A = torch.randn(size, size, dtype=DTYPE, generator=generator)
    return A @ A.T + 0.1 * torch.eye(size, dtype=DTYPE)


def _svec_pair(side: int):
    rows, cols, weights = svec_indices(side, DTYPE, "cpu")

    def svec(A):
        return A[rows, cols] * weights

    def smat(v):
        A = torch.zeros((side, side), dtype=DTYPE)
        A[rows, cols] = v / weights
        A[cols, rows] = v / weights
        return A

    return svec, smat


def _operators(n: int, coefficients=(0.09, 0.5, 0.47)):
    generator = torch.Generator().manual_seed(n)
    return [
        GramOperator(torch.randn(n, 4, dtype=DTYPE, generator=generator), coefficients),
        LiftedOperator(torch.randn(n, 3, 4, dtype=DTYPE, generator=generator), coefficients),
    ]


def test_svec_kron_is_the_symmetrised_kronecker_product():
    generator = torch.Generator().manual_seed(0)
    side = 5
    X, Y = _positive_definite(generator, side), _positive_definite(generator, side)
    svec, smat = _svec_pair(side)
    basis = torch.eye(side * (side + 1) // 2, dtype=DTYPE)
    expected = torch.stack([svec(0.5 * (X @ smat(e) @ Y + Y @ smat(e) @ X)) for e in basis], 1)
    scale = float(expected.abs().max())
    assert torch.allclose(svec_kron(X, Y), expected, rtol=0, atol=1e-12 * scale)
    A, B = _positive_definite(generator, side), _positive_definite(generator, side)
    assert float(svec(A) @ svec(B)) == pytest.approx(float(torch.trace(A @ B)), rel=1e-14)


@pytest.mark.parametrize("coefficients", [(0.09, 0.5, 0.47), (0.0, 1.0, 0.3), (1.0, 0.0, 0.0)])
def test_svec_rows_reproduce_the_operator(coefficients):
    generator = torch.Generator().manual_seed(1)
    for op in _operators(30, coefficients):
        svec, _ = _svec_pair(op.h + 1)
        W = _positive_definite(generator, op.h + 1)
        assert torch.allclose(op.svec_rows() @ svec(W), op.apply(W), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [40, 8], ids=["more-samples", "fewer-samples"])
def test_lifted_solve_equals_the_assembled_schur_complement(n):
    generator = torch.Generator().manual_seed(2)
    for op in _operators(n):
        side = op.h + 1
        cones = [_Cone(0, sign, _positive_definite(generator, side),
                       _positive_definite(generator, side)) for sign in (1.0, -1.0)]
        S_inv = [torch.linalg.inv(c.S) for c in cones]
        M = torch.eye(n, dtype=DTYPE)
        for c, Si in zip(cones, S_inv):
            op.add_schur(M, c.X, Si)
        b = torch.randn(n, 3, dtype=DTYPE, generator=generator)
        x = LiftedSystem([op]).solver(cones, S_inv)(b)
        assert float((M @ x - b).norm()) <= 1e-10 * float(b.norm())


def _tall_problem():
    """Many samples, few features: the lifted side is preferred."""
    t = planted_teacher(n=400, d=4, seed=3)
    return make_problem(t.X, t.y, beta=0.05)


def _tall_conv_problem():
    images, y, geometry, _ = planted_conv_teacher(n=200, filter_size=2, pool_size=2, seed=5)
    return make_conv_problem(images, y, geometry, beta=0.05)


@pytest.mark.parametrize("build", [_tall_problem, _tall_conv_problem], ids=["dense", "conv"])
def test_ipm_on_the_lifted_side_reaches_the_assembled_sides_and_clarabels_optimum(
    build, monkeypatch
):
    problem = build()
    patches = torch.from_numpy(problem.patches)
    workspace = SquaredWorkspace.prepare(patches, torch.from_numpy(problem.targets),
                                         problem.coefficients)
    assert workspace.lifted is not None  # the cost model picks the lifted side here
    on_lifted, _, _ = solve(problem, "native", {"engine": "ipm"})
    monkeypatch.setattr(ipm_module, "iteration_flops", lambda *sizes: (0.0, math.inf))
    assert SquaredWorkspace.prepare(patches, torch.from_numpy(problem.targets),
                                    problem.coefficients).lifted is None
    assembled, _, _ = solve(problem, "native", {"engine": "ipm"})
    conic, _, _ = solve_checked(problem, "clarabel")
    for result in (on_lifted, assembled):
        assert result.status == "optimal" and result.relative_gap <= 1e-6
    assert relative_difference(on_lifted.objective, assembled.objective) <= 1e-7
    assert relative_difference(on_lifted.objective, conic.objective) <= 1e-6
    assert on_lifted.lower_bound <= conic.objective * (1 + 1e-9)


def _lifted_side_preferred(*sizes) -> bool:
    n_side, lifted_side = iteration_flops(*sizes)
    return lifted_side < n_side


def test_cost_model_and_memory_follow_the_sizes():
    # The issue-11 CNN (12000 images, 5x5 filters, 4 pooling regions of 144 patches).
    assert _lifted_side_preferred(12000, 4, 144, 26)
    # Fully connected 2000 x 100 (the solver benchmark): n x n is smaller than m x m.
    assert not _lifted_side_preferred(2000, 1, 1, 101)
    # The solver benchmark's conv-400x8x8 (9 regions of 4 patches, 3x3 filters): measured
    # 0.35 s on the n x n side against 0.48 s on the lifted side, with 495 entries > 400.
    assert not _lifted_side_preferred(400, 9, 4, 10)
    # Tall and narrow: 60000 x 10.
    assert _lifted_side_preferred(60000, 1, 1, 11)
    native = solvers.get("native")
    problem = _tall_problem()
    n = problem.patches.shape[0]
    assert native.ipm_bytes(problem) < 8 * 5 * n * n
    assert native.ipm_bytes(problem) >= LiftedSystem.bytes(n, 1, 5)


@pytest.mark.parametrize("m", [2, 40], ids=["direct", "by-moments"])
def test_pooled_activations_in_chunks_equal_the_direct_formula(m, monkeypatch):
    images, _, geometry, _ = planted_conv_teacher(n=25, filter_size=2, pool_size=2, seed=7)
    patches = make_conv_problem(images, np.zeros(25), geometry).patches
    rng = np.random.default_rng(7)
    network = convexnn.network.TwoLayerPolyNet(
        rng.standard_normal((m, geometry.patch_size)),
        rng.standard_normal((m, geometry.n_regions)), "relu-approx", geometry)
    direct = network.activation(patches @ network.U.T).mean(axis=2)
    monkeypatch.setattr(convexnn.network, "PREACTIVATION_CHUNK", 50)
    chunked = network.pooled_activations(patches)
    np.testing.assert_allclose(chunked, direct, rtol=1e-12, atol=1e-12)

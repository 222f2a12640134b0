"""SCS and Clarabel agree on the optimum for every loss and every variant.

Small planted problems (n = 30-40, d = 4-5, 5x5 images with 2x2 filters), tight
tolerances, and three numbers compared per case: the objectives of the two
decomposed networks (1e-4 relative), and each back-end's objective against
the other's *certified* lower bound (so neither can be wrong in the same
direction as the other without the certificate noticing). SCS must report
"optimal"; Clarabel may report "optimal_inaccurate" at its 1e-8 gap target
(with the SolverStatusWarning, see ``conftest.solve_checked``).

A loss a user defines (a subclass of ``convexnn.losses.Loss``) is taken by
every back-end whose needs it meets, and solved to the same optimum.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch

from conftest import (
    onehot_targets,
    planted_conv_teacher,
    planted_teacher,
    relative_difference,
    sign_targets,
    solve_checked,
    tight_options,
)
from convexnn import solve, solvers
from convexnn.formulations import make_conv_problem, make_problem
from convexnn.losses import Loss

BETA = 0.1


def scalar_case(loss):
    t = planted_teacher(n=40, d=5, seed=31)
    y = sign_targets(t) if loss in ("hinge", "logistic") else t.y
    return make_problem(t.X, y, beta=BETA, loss=loss)


def vector_case(loss):
    t = planted_teacher(n=40, d=4, n_outputs=3, seed=32)
    y = onehot_targets(t) if loss != "squared" else t.y
    return make_problem(t.X, y, beta=BETA, loss=loss)


def conv_case(loss, pool_size):
    images, y, geometry, _ = planted_conv_teacher(
        n=30, image=(1, 5, 5), filter_size=2, pool_size=pool_size, seed=33
    )
    if loss != "squared":
        y = np.where(y > np.median(y), 1.0, -1.0)
    return make_conv_problem(images, y, geometry, beta=BETA, loss=loss)


CASES = {
    "scalar-squared": lambda: scalar_case("squared"),
    "scalar-l1": lambda: scalar_case("l1"),
    "scalar-huber": lambda: scalar_case("huber"),
    "scalar-hinge": lambda: scalar_case("hinge"),
    "scalar-logistic": lambda: scalar_case("logistic"),
    "vector-squared": lambda: vector_case("squared"),
    "vector-cross-entropy": lambda: vector_case("cross-entropy"),
    "vector-multiclass-hinge": lambda: vector_case("multiclass-hinge"),
    "conv-global-squared": lambda: conv_case("squared", None),
    "conv-global-logistic": lambda: conv_case("logistic", None),
    "conv-2x2-squared": lambda: conv_case("squared", 2),
    "conv-2x2-hinge": lambda: conv_case("hinge", 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_scs_and_clarabel_agree(case):
    problem = CASES[case]()
    results = {}
    for name in ("scs", "clarabel"):
        # Unpolished: the decomposed network is the solver's point (same predictions
        # and objective); tests/test_polish.py covers polishing.
        result, network, output = solve_checked(problem, name, tight_options(name), polish=False)
        assert name == "clarabel" or result.stats["solver_status"] == "optimal"
        sdp = problem.predict_blocks(output.blocks)
        assert np.abs(network.outputs(problem.patches) - sdp).max() <= 1e-5 * max(
            np.abs(sdp).max(), 1.0
        )
        assert relative_difference(result.objective, output.objective) <= 1e-5
        results[name] = result
    scs, clarabel = results["scs"], results["clarabel"]
    assert relative_difference(scs.objective, clarabel.objective) <= 1e-4
    # Cross-certification: each objective is above the other's certified bound,
    # and both certificates are tight.
    slack = 1e-9 * abs(scs.objective)
    assert scs.objective >= clarabel.lower_bound - slack
    assert clarabel.objective >= scs.lower_bound - slack
    assert scs.relative_gap <= 1e-4 and clarabel.relative_gap <= 1e-4


class ScaledSquaredLoss(Loss):
    """``scale/2 sum (yhat - y)^2``, written as a user would: no back-end knows its name."""

    name = "scaled-squared"
    smooth = True
    cones = frozenset({"soc"})

    def __init__(self, scale: float) -> None:
        self.scale = float(scale)

    def value(self, yhat, y):
        return 0.5 * self.scale * torch.sum((yhat - y) ** 2)

    def gradient(self, yhat, y):
        return self.scale * (yhat - y)

    def hessian_vector(self, yhat, y, w):
        return self.scale * w

    def conjugate(self, v, y):
        return torch.sum(v * v / (2 * self.scale) + v * y)

    def cvxpy(self, yhat, y):
        return 0.5 * self.scale * cp.sum_squares(yhat - y)


def test_a_user_defined_loss_is_solved_by_every_back_end_whose_needs_it_meets():
    scale = 3.0
    t = planted_teacher(n=40, d=5, seed=31)
    problem = make_problem(t.X, t.y, beta=BETA, loss=ScaledSquaredLoss(scale))
    taking = [s.name for s in solvers.available([problem.loss]) if s.losses == ("scaled-squared",)]
    assert {"native", "clarabel", "scs", "cvxopt"} <= set(taking)
    # Independently: scale/2 ||r||^2 + beta * p = scale * (1/2 ||r||^2 + (beta/scale) p), so
    # the optimum is scale times the squared loss's optimum at beta / scale (native's
    # interior-point engine, which the user's loss does not reach).
    reference, _, _ = solve(make_problem(t.X, t.y, beta=BETA / scale), "native", {"engine": "ipm"})
    assert reference.status == "optimal"
    expected = scale * reference.objective
    for name in ("native", "clarabel"):
        result, _, _ = solve_checked(problem, name, tight_options(name))
        assert relative_difference(result.objective, expected) <= 1e-5, name
        if name == "native":  # a smooth loss that is not the plain squared error
            assert result.stats["engine"] == "neurons"
            assert result.relative_gap <= 1e-6

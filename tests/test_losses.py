"""Losses: value, gradient, curvature, conjugate, dual projection and cvxpy form agree.

Every loss is checked against torch autograd (gradient and Hessian-vector
products), the Fenchel-Young inequality ``l(yhat) + l*(v) >= <v, yhat>``
(with equality at ``v = grad l(yhat)``, which is what makes the dual bound of
an optimal network tight), its dual projection, and its cvxpy expression,
whose cones must be the ones the loss declares (back-ends choose by them).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch

from convexnn.exceptions import ValidationError
from convexnn.losses import LOSSES, HuberLoss, get_loss, project_rows_to_simplex
from convexnn.solvers.base import ConicLoss, LossProtocol, SmoothLoss

ELEMENTWISE = ["squared", "huber", "l1", "logistic", "hinge"]
ROW_WISE = ["cross-entropy", "multiclass-hinge"]
ALL = ELEMENTWISE + ROW_WISE
SMOOTH = [name for name in ALL if LOSSES[name].smooth]


def sample(name: str, seed: int = 0, n: int = 12, outputs: int = 3):
    """Predictions, loss-encoded targets and a random direction, as float64 tensors."""
    rng = np.random.default_rng(seed)
    loss = get_loss(name)
    yhat = 2.0 * rng.standard_normal((n, outputs))
    if loss.targets == "sign":
        y = rng.choice([-1.0, 1.0], size=(n, outputs))
    elif loss.targets == "onehot":
        y = np.eye(outputs)[rng.integers(0, outputs, size=n)]
    else:
        y = rng.standard_normal((n, outputs))
    w = rng.standard_normal((n, outputs))
    return loss, *(torch.tensor(a, dtype=torch.float64) for a in (yhat, y, w))


def test_every_loss_is_listed():
    assert sorted(ALL) == sorted(LOSSES)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", range(3))
def test_gradient_matches_autograd(name, seed):
    loss, yhat, y, _ = sample(name, seed)
    yhat.requires_grad_(True)
    loss.value(yhat, y).backward()
    # Random points are almost surely away from the kinks of l1 / hinge / max.
    np.testing.assert_allclose(loss.gradient(yhat.detach(), y), yhat.grad, rtol=1e-12, atol=1e-12)


def autograd_gradient(loss, yhat, y):
    point = yhat.detach().clone().requires_grad_(True)
    loss.value(point, y).backward()
    return point.grad


@pytest.mark.parametrize("name", SMOOTH)
def test_hessian_vector_matches_autograd(name):
    # Central differences of autograd gradients (exact for the piecewise quadratic
    # losses, O(eps^2) otherwise); double backward would pull in torch._functorch,
    # several seconds of imports.
    loss, yhat, y, w = sample(name, seed=1)
    eps = 1e-6
    expected = (
        autograd_gradient(loss, yhat + eps * w, y) - autograd_gradient(loss, yhat - eps * w, y)
    ) / (2 * eps)
    np.testing.assert_allclose(loss.hessian_vector(yhat, y, w), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", [n for n in ALL if n not in SMOOTH])
def test_nonsmooth_losses_have_no_hessian(name):
    loss, yhat, y, w = sample(name)
    with pytest.raises(NotImplementedError):
        loss.hessian_vector(yhat, y, w)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", range(3))
def test_fenchel_young_equality_at_the_gradient(name, seed):
    loss, yhat, y, _ = sample(name, seed)
    v = loss.gradient(yhat, y)
    lhs = float(loss.value(yhat, y) + loss.conjugate(v, y))
    rhs = float(torch.sum(v * yhat))
    assert np.isfinite(lhs)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", range(5))
def test_fenchel_young_inequality_for_feasible_duals(name, seed):
    loss, yhat, y, w = sample(name, seed)
    v = loss.project_dual(3.0 * w, y)
    conjugate = float(loss.conjugate(v, y))
    assert np.isfinite(conjugate), "project_dual must land in the conjugate's domain"
    assert float(loss.value(yhat, y)) + conjugate >= float(torch.sum(v * yhat)) - 1e-10


@pytest.mark.parametrize("name", ALL)
def test_project_dual_lands_in_the_domain_and_is_idempotent(name):
    loss, _, y, w = sample(name, seed=4)
    for scale in (0.1, 1.0, 10.0, 1e3):
        v = loss.project_dual(scale * w, y)
        assert np.isfinite(float(loss.conjugate(v, y)))
        np.testing.assert_allclose(loss.project_dual(v, y), v, atol=1e-12)
    if name in ("squared",):
        np.testing.assert_array_equal(loss.project_dual(w, y), w)  # unconstrained


@pytest.mark.parametrize(
    "name, outside",
    [
        ("huber", lambda y: torch.full_like(y, 1.5)),
        ("l1", lambda y: torch.full_like(y, 1.5)),
        ("logistic", lambda y: 0.5 * y),  # -v y < 0
        ("hinge", lambda y: -2.0 * y),  # -v y > 1
        ("cross-entropy", lambda y: torch.zeros_like(y) + 0.5),  # rows of v + y sum to > 1
        ("multiclass-hinge", lambda y: -2.0 * y),  # v + y negative
    ],
)
def test_conjugate_is_infinite_outside_its_domain(name, outside):
    loss, _, y, _ = sample(name)
    assert float(loss.conjugate(outside(y), y)) == np.inf


@pytest.mark.parametrize("name", ["huber", "l1", "logistic", "hinge", "cross-entropy",
                                  "multiclass-hinge"])
def test_conjugate_of_a_point_rounding_put_just_outside_is_its_projections(name):
    """Within the rounding tolerance outside the domain the conjugate is the value at the
    projection: evaluated at the point itself it was up to 1e-12 relative too small (L1,
    Huber, hinge; 1e-9 for the simplex's row sums), and certified bounds of a network
    exactly at the optimum came out above its objective."""
    loss, _, y, _ = sample(name, outputs=3 if name in ROW_WISE else 1)
    inside = loss.project_dual(torch.randn(y.shape, dtype=y.dtype,
                                           generator=torch.Generator().manual_seed(3)) * 5, y)
    if name in ROW_WISE:  # rows of v + y summing to 1 + 1e-10: counted at the normalised row
        nudged = inside + 1e-10 * (y == 0)
        rows = nudged + y
        on_domain = rows / rows.sum(dim=1, keepdim=True) - y
    else:
        nudged = inside * (1 + 5e-13)
        on_domain = loss.project_dual(nudged, y)
    assert float(loss.conjugate(nudged, y)) < np.inf
    assert float(loss.conjugate(nudged, y)) == float(loss.conjugate(on_domain, y))


def test_the_bound_of_an_exactly_optimal_zero_network_is_not_above_its_objective():
    import convexnn as cnn

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), 1e6 * rng.standard_normal(30)
    zero = cnn.TwoLayerPolyNet(np.ones((1, 4)), np.zeros(1), "relu-approx")
    for loss in ("l1", "huber"):
        certificate = cnn.certify(zero, X, y, beta=2 * cnn.beta_max(X, y, loss=loss), loss=loss)
        assert certificate.lower_bound <= certificate.objective  # was 1e-12 relative above


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("outputs", [1, 3])
def test_cvxpy_expression_equals_torch_value(name, outputs):
    if name in ROW_WISE and outputs == 1:
        pytest.skip("row-wise losses need at least two outputs")
    loss, yhat, y, _ = sample(name, seed=2, outputs=outputs)
    expression = loss.cvxpy(cp.Constant(yhat.numpy()), y.numpy())
    assert expression.is_convex()
    assert float(expression.value) == pytest.approx(float(loss.value(yhat, y)), rel=1e-10)
    # The numpy convenience call is the same number, and 1-D input is a column.
    assert loss(yhat.numpy(), y.numpy()) == pytest.approx(float(loss.value(yhat, y)), rel=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_cvxpy_expression_is_minimised_where_torch_says(name):
    """Minimising the cvxpy loss plus a linear term matches the conjugate's value."""
    loss, _, y, w = sample(name, seed=3, n=6)
    v = loss.project_dual(0.5 * w, y)
    z = cp.Variable(tuple(y.shape))
    # min_z l(z) - <v, z> = -l*(v)
    problem = cp.Problem(cp.Minimize(loss.cvxpy(z, y.numpy()) - cp.sum(cp.multiply(v.numpy(), z))))
    problem.solve(solver="CLARABEL")
    assert problem.value == pytest.approx(-float(loss.conjugate(v, y)), rel=1e-5, abs=1e-6)


#: cvxpy's conic constraint types under the cone names losses declare.
CONE_NAMES = {"Inequality": "nonneg", "NonNeg": "nonneg", "SOC": "soc", "ExpCone": "exp",
              "PowCone3D": "pow", "PSD": "psd"}


@pytest.mark.parametrize("name", ALL)
def test_declared_cones_are_those_of_the_cvxpy_expression(name):
    """What CVXOPT (no exponential cone) and the others decide by must be true."""
    from cvxpy.reductions.dcp2cone.dcp2cone import Dcp2Cone

    loss, _, y, _ = sample(name, seed=4, n=5)
    z = cp.Variable(tuple(y.shape))
    # Without a quadratic objective: the pure conic form every conic back-end accepts.
    conic, _ = Dcp2Cone(quad_obj=False).apply(cp.Problem(cp.Minimize(loss.cvxpy(z, y.numpy()))))
    used = {CONE_NAMES[type(c).__name__] for c in conic.constraints
            if type(c).__name__ not in ("Equality", "Zero")}
    assert used == set(loss.cones)


@pytest.mark.parametrize("name", ALL)
def test_every_loss_has_the_capabilities_back_ends_check(name):
    loss = get_loss(name)
    assert isinstance(loss, LossProtocol) and isinstance(loss, ConicLoss)
    assert isinstance(loss, SmoothLoss)  # the method exists; `smooth` says whether it works
    assert loss.squared_error == (name == "squared")


def test_squared_loss_is_half_the_sum_of_squares():
    loss = get_loss("squared")
    assert loss(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 0.0])) == pytest.approx(7.0)


def test_huber_values_and_delta():
    loss = HuberLoss(delta=0.5)
    residual = np.array([0.2, -0.4, 2.0, -3.0])
    expected = 0.5 * 0.2**2 + 0.5 * 0.4**2 + 0.5 * (2.0 - 0.25) + 0.5 * (3.0 - 0.25)
    assert loss(residual, np.zeros(4)) == pytest.approx(expected)
    with pytest.raises(ValidationError, match="delta"):
        HuberLoss(delta=0)


def test_simplex_projection():
    points = torch.tensor(
        [[0.2, 0.3, 0.5], [2.0, -1.0, 0.0], [-5.0, -5.0, -5.0]], dtype=torch.float64
    )
    projected = project_rows_to_simplex(points)
    np.testing.assert_allclose(projected.sum(dim=1), 1.0)
    assert torch.all(projected >= 0)
    np.testing.assert_allclose(projected[0], points[0])
    np.testing.assert_allclose(projected[1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(projected[2], [1 / 3] * 3)


def test_get_loss_names_and_aliases():
    assert get_loss("cross_entropy").name == "cross-entropy"
    assert get_loss("softmax").name == "cross-entropy"
    assert get_loss("Multiclass_Hinge").name == "multiclass-hinge"
    assert get_loss("absolute").name == "l1"
    custom = HuberLoss(2.0)
    assert get_loss(custom) is custom
    with pytest.raises(ValidationError, match="unknown loss 'nope'"):
        get_loss("nope")


def test_check_targets_messages():
    with pytest.raises(ValidationError, match=r"hinge loss needs targets in \{-1, \+1\}"):
        get_loss("hinge").check_targets(np.array([[0.0], [1.0]]))
    with pytest.raises(ValidationError, match="one-hot targets of at least 2 columns.*classifier"):
        get_loss("cross-entropy").check_targets(np.array([[1.0], [1.0]]))
    with pytest.raises(ValidationError, match="one-hot"):
        get_loss("multiclass-hinge").check_targets(np.array([[1.0, 1.0], [0.0, 1.0]]))
    get_loss("squared").check_targets(np.array([[0.3], [-7.0]]))  # any real target

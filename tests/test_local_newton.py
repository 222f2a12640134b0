"""The neurons engine's direct local solver: exact second-order blocks, checked against the
Hessian-vector products, and what they buy over Gauss-Newton."""

from __future__ import annotations

import math

import pytest
import torch

from convexnn.losses import get_loss
from convexnn.solvers.native import _local
from convexnn.solvers.native._model import NeuronModel, NeuronState

COEFFICIENTS = (0.09375, 0.5, 0.46875)


def model_and_state(n, regions, pool, h, outputs, loss, seed=0, width=5):
    generator = torch.Generator().manual_seed(seed)
    patches = torch.randn(n, regions, pool, h, dtype=torch.float64, generator=generator)
    if loss == "cross-entropy":
        labels = torch.randint(0, outputs, (n,), generator=generator)
        targets = torch.nn.functional.one_hot(labels, outputs).double()
    elif loss == "logistic":
        targets = torch.sign(torch.randn(n, 1, dtype=torch.float64, generator=generator))
    else:
        targets = torch.randn(n, outputs, dtype=torch.float64, generator=generator)
    model = NeuronModel(patches, targets, COEFFICIENTS, 0.3, get_loss(loss))
    state = NeuronState(
        torch.randn(width, h, dtype=torch.float64, generator=generator),
        torch.tensor([1.0, -1.0] * (width // 2) + [1.0] * (width % 2), dtype=torch.float64),
        torch.randint(0, regions, (width,), generator=generator),
        torch.randint(0, outputs, (width,), generator=generator),
    )
    return model, state


@pytest.mark.parametrize("shape", [
    (40, 1, 1, 5, 3, "cross-entropy"),  # fully connected, three outputs
    (30, 3, 4, 4, 1, "logistic"),  # pooled, three regions
    (25, 1, 1, 6, 1, "huber"),
])
def test_curvature_blocks_are_the_hessian_products_second_order_term(shape):
    model, state = model_and_state(*shape)
    yhat, cache = model.forward(state)
    D = torch.randn(state.V.shape, dtype=torch.float64)
    exact = model.hessian_product(state, yhat, cache)(D)
    gauss_newton = model.vjp(state, cache,
                             model.loss.hessian_vector(yhat, model.targets,
                                                       model.jvp(state, cache, D)))
    blocks = model.curvature_blocks(state, yhat, cache)
    assembled = gauss_newton + torch.einsum("mhj,mj->mh", blocks, D) + 2 * model.beta * D
    torch.testing.assert_close(assembled, exact, rtol=1e-12, atol=1e-12 * float(exact.abs().max()))


def test_second_order_blocks_take_fewer_steps_than_gauss_newton(monkeypatch):
    """Cross-entropy keeps large residuals at the optimum: Gauss-Newton converges linearly."""
    model, state = model_and_state(120, 1, 1, 4, 3, "cross-entropy", seed=3, width=4)

    def local_solve():
        result = _local.gauss_newton(model, state, max_steps=200, rtol=1e-15,
                                     deadline=math.inf)
        return result.steps, result.objective, model.gradient(result.state, result.yhat,
                                                              result.cache).norm()

    newton_steps, newton_objective, newton_gradient = local_solve()
    monkeypatch.setattr(NeuronModel, "curvature_blocks",
                        lambda self, state, yhat, cache: torch.zeros(
                            (state.width, self.h, self.h), dtype=torch.float64))
    gn_steps, gn_objective, _ = local_solve()
    assert newton_objective == pytest.approx(gn_objective, rel=1e-9)
    assert newton_gradient <= 1e-6
    assert 3 * newton_steps < gn_steps, (newton_steps, gn_steps)  # measured 26 and 151


@pytest.mark.parametrize("shape", [
    (40, 1, 1, 5, 3, "cross-entropy"),  # fully connected, three outputs
    (30, 3, 4, 4, 2, "squared"),  # pooled, two outputs
])
def test_gauss_newton_matrix_assembled_per_output_is_j_transpose_h_j(shape):
    model, state = model_and_state(*shape, seed=2, width=6)
    yhat, cache = model.forward(state)
    J = model.jacobian(state, cache)  # (n, C, p)
    root = model.loss_curvature_root(yhat)
    weighted = (root @ J).reshape(-1, J.shape[2])
    expected = weighted.T @ weighted
    system = _local._DirectSystem(model, state, yhat, cache, mu=0.0)
    assert system.primal
    assert torch.allclose(system.gram, expected, rtol=1e-12,
                          atol=1e-12 * float(expected.abs().max()))
    step = torch.randn(state.V.shape, dtype=torch.float64)
    # Before any solve the model is Gauss-Newton's (no second-order blocks), mu = 0 here.
    expected_quadratic = float((weighted @ step.reshape(-1)).norm()) ** 2
    assert system.quadratic(step) == pytest.approx(expected_quadratic, rel=1e-10)

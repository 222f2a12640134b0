"""The neurons engine's direct local solver: exact second-order blocks, checked against the
Hessian-vector products, and what they buy over Gauss-Newton."""

from __future__ import annotations

import math

import numpy as np
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


def test_shifted_cholesky_takes_the_smallest_power_of_ten_that_is_positive_definite():
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(0)))

    def with_eigenvalues(*values):
        return Q @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ Q.T

    definite = with_eigenvalues(0.5, 1, 2, 3, 4, 250)
    factor, exponent, _ = _local._shifted_cholesky(definite.clone())
    torch.testing.assert_close(factor @ factor.T, definite)
    assert exponent is None  # no shift
    # The smallest eigenvalue is -0.01: the shift is the first power of ten times the
    # largest diagonal entry above 0.01.
    indefinite = with_eigenvalues(-0.01, 1, 2, 3, 4, 250)
    largest = float(indefinite.diagonal().max())
    factor, exponent, shift = _local._shifted_cholesky(indefinite.clone())
    assert shift == largest * 10.0 ** exponent
    assert shift > 0.01 and shift / 10 < 0.01
    eye = torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(factor @ factor.T, indefinite + shift * eye)
    # A search that starts above the smallest sufficient shift takes its first power.
    assert _local._shifted_cholesky(indefinite.clone(), exponent + 1)[1] == exponent + 1
    # More negative than the largest diagonal entry is positive: Gauss-Newton's case.
    assert _local._shifted_cholesky(with_eigenvalues(-300, 1, 2, 3, 4, 250)) == (None, None, None)


def test_direct_steps_converge_quadratically_where_the_exact_hessian_is_indefinite():
    """Near the breast-cancer logistic optimum the exact Hessian has slightly negative
    eigenvalues; the shifted exact steps still converge like Newton's, where Gauss-Newton
    (measured: gradient 4.5e-4 after the same five steps) crawls."""
    from sklearn.datasets import load_breast_cancer

    from convexnn import make_problem, solve

    data = load_breast_cancer()
    X = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    problem = make_problem(X, np.where(data.target == 1, 1.0, -1.0), beta=0.69, loss="logistic")
    _, network, _ = solve(problem, "native")
    alpha = network.alpha.reshape(-1)
    V = torch.from_numpy(network.U * np.sqrt(np.abs(alpha))[:, None])
    blocks = torch.zeros(len(alpha), dtype=torch.long)
    state = NeuronState(V, torch.from_numpy(np.sign(alpha)), blocks, blocks)
    model = NeuronModel(torch.from_numpy(problem.patches), torch.from_numpy(problem.targets),
                        problem.coefficients, problem.beta, get_loss("logistic"))
    noise = torch.randn(V.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    start = state.moved(V * (1 + 1e-2 * noise))
    yhat, cache = model.forward(start)
    system = _local._DirectSystem(model, start, yhat, cache, 2 * model.beta)
    # The premises (measured: 6 neurons, 180 unknowns): direct steps with the exact blocks ...
    assert system.primal and system.curvature is not None, network.n_neurons
    indefinite = torch.linalg.eigvalsh(
        system.gram + system.curvature
        + 2 * model.beta * torch.eye(V.numel(), dtype=torch.float64))[0] < 0
    assert indefinite  # ... on an indefinite exact Hessian
    before = float(model.gradient(start, yhat, cache).norm())
    result = _local.gauss_newton(model, start, max_steps=5, rtol=0.0, deadline=math.inf)
    after = float(model.gradient(result.state, result.yhat, result.cache).norm())
    assert after < 1e-9 * before, (before, after)  # measured 0.70 -> 1.2e-11


def test_direct_steps_are_taken_only_where_their_jacobian_fits_the_memory_left(monkeypatch):
    """The memory plan does not count the direct steps' dense Jacobian (five copies of
    ``n C x m h`` entries, up to 1.3 GB): ``auto`` must not take them where they do not
    fit in what the plan leaves, but fall back to Newton-CG."""
    model, state = model_and_state(40, 1, 1, 5, 1, "squared", width=5)
    needed = _local.direct_bytes(40, state.V.numel())
    assert needed == 8 * (_local.JACOBIAN_COPIES * 40 * 25 + 3 * 25**2)
    assert _local.uses_direct(model, state)
    assert _local.uses_direct(model, state, memory_left=needed)
    assert not _local.uses_direct(model, state, memory_left=needed - 1)
    used = []
    originals = {name: getattr(_local, name) for name in ("gauss_newton", "newton_cg")}
    for name in originals:
        def spy(*args, _name=name, **options):
            used.append(_name)
            return originals[_name](*args, **options)

        monkeypatch.setattr(_local, name, spy)
    for left in (needed, needed - 1):
        _local.refine(model, state, method="auto", max_steps=1, max_products=5, rtol=1e-12,
                      deadline=math.inf, memory_left=left)
    assert used == ["gauss_newton", "newton_cg"]


def test_a_shifted_dual_form_step_solves_the_system_its_factor_holds():
    """Wider than tall (J^T J + s I solved through J J^T + s I): when Cholesky needs an
    extra shift, the Woodbury step must divide by the shift the factor holds, not the one
    asked for (with a float32 working-precision shift, steps came out far too long)."""
    model, state = model_and_state(6, 1, 1, 4, 1, "squared", width=4)
    duplicated = torch.cat([model.patches[:3], model.patches[:3]])  # J J^T is singular
    model = NeuronModel(duplicated, model.targets, COEFFICIENTS, 0.3, get_loss("squared"))
    yhat, cache = model.forward(state)
    system = _local._DirectSystem(model, state, yhat, cache, mu=0.0)
    assert not system.primal
    g = torch.randn(state.V.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    step = system.solve(g, damping=0.0).reshape(-1)
    J = system.J
    gram = J @ J.T
    for exponent in range(-10, 1):  # the shift _shifted_cholesky took
        added = float(gram.diagonal().abs().max()) * 10.0 ** exponent
        if int(torch.linalg.cholesky_ex(gram + added * torch.eye(len(gram),
                                                                 dtype=gram.dtype))[1]) == 0:
            break
    residual = J.T @ (J @ step) + added * step + g.reshape(-1)
    # (a system shifted by 1e-10 of its scale: rounding is amplified 1e10-fold)
    assert float(residual.norm()) <= 1e-4 * float(g.norm())


@pytest.mark.parametrize("shape", [
    (300, 1, 1, 200, 2, "cross-entropy"),  # fully connected, two outputs
    (200, 3, 4, 150, 3, "squared"),  # pooled, three regions, three outputs
])
def test_refining_in_the_span_makes_the_network_stationary_within_its_span(shape):
    """The model of the projected patches is the same objective (exact), so steps in it
    lower the full objective, keep the neurons in their span, and drive the full
    gradient's component within that span to zero. Here the full problem is too large
    for direct steps and its span (4 dimensions) is not."""
    model, state = model_and_state(*shape, width=4)
    assert not _local.uses_direct(model, state)
    basis = _local.span_basis(state.V)
    assert basis.shape[1] == 4
    yhat, cache = model.forward(state)
    start = _local.LocalResult(state, yhat, cache, model.objective(state, yhat), 0, 0)
    before = float((model.gradient(state, yhat, cache) @ basis).norm())
    result = _local.refine_in_span(model, start, method="auto", max_steps=100,
                                   max_products=1000, rtol=1e-13, deadline=math.inf)
    V = result.state.V
    assert float((V - V @ basis @ basis.T).norm()) <= 1e-12 * float(V.norm())
    assert result.objective == pytest.approx(model.objective(result.state, result.yhat))
    assert result.objective < start.objective
    gradient = model.gradient(result.state, result.yhat, result.cache)
    within = float((gradient @ basis).norm())
    assert within <= 1e-6 * before, (before, within)
    # ... while the full gradient is not zero: the steps could not leave the span.
    assert float(gradient.norm()) > 1e3 * within


@pytest.mark.parametrize("h, method", [
    (6, "newton-cg"),  # a span of 4 dimensions is most of 6
    (20, "direct"),  # the full problem's steps were exact Newton already
    (20, "auto"),  # ... taken by auto on this small problem
])
def test_refining_in_the_span_is_skipped_where_it_cannot_help(h, method):
    model, state = model_and_state(40, 1, 1, h, 1, "squared", width=4)
    yhat, cache = model.forward(state)
    start = _local.LocalResult(state, yhat, cache, model.objective(state, yhat), 0, 0)
    result = _local.refine_in_span(model, start, method=method, max_steps=10,
                                   max_products=100, rtol=0.0, deadline=math.inf)
    assert result is start

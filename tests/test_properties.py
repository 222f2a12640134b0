"""Property-based tests (hypothesis) of solve -> decompose -> certify.

Over random sizes (n, d, outputs), activations (presets and random
``(a, b, c)``), betas and losses, on problems small enough for Clarabel and
the native solver to take milliseconds:

* Neural Decomposition reproduces every block ``Z = P P^T`` with balanced
  columns ``p^T G p = 0``, and the network reproduces the SDP's predictions;
* the network's neurons have unit norm, and nothing is NaN;
* the objective never drops below the certified lower bound -- neither the
  solver's network's nor that of any other network (the bound is on the
  optimum over all networks of the activation), and the estimator's
  ``result_`` agrees with its own network's objective.

(test_decomposition.py already runs a property test of the decomposition on
synthetic feasible matrices; these start from solver output.)
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convexnn as cnn
from convexnn import certify_network, solve
from convexnn.decomposition import neural_decomposition
from convexnn.exceptions import SolverStatusWarning

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples on every run: no flaky CI
    suppress_health_check=[HealthCheck.too_slow],
)

coefficient = st.floats(-1.0, 1.0).filter(lambda v: abs(v) > 0.05)
activations = st.one_of(
    st.sampled_from(["relu-approx", "quadratic", (0.09, 0.5, 0.47)]),
    st.tuples(coefficient, st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)),
)
betas = st.floats(-2.5, 1.0).map(lambda exponent: float(10.0**exponent))


def quietly(function, *args, **kwargs):
    """Run without failing on a reported non-optimal status (checked separately)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverStatusWarning)
        return function(*args, **kwargs)


def g_norms(P: np.ndarray) -> np.ndarray:
    return (P[:-1] ** 2).sum(axis=0) - P[-1] ** 2


def random_network(rng, problem_shape, activation):
    h, C = problem_shape.patch_size, problem_shape.n_outputs
    m = int(rng.integers(1, 6))
    U = rng.standard_normal((m, h))
    alpha = rng.standard_normal((m,) if C == 1 else (m, C)) * 10.0 ** rng.uniform(-2, 1)
    return cnn.TwoLayerPolyNet(U, alpha, activation)


@SETTINGS
@given(
    n=st.integers(3, 14),
    d=st.integers(1, 4),
    outputs=st.sampled_from([1, 1, 2]),
    activation=activations,
    beta=betas,
    seed=st.integers(0, 2**31 - 1),
)
def test_solve_decompose_certify(n, d, outputs, activation, beta, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n if outputs == 1 else (n, outputs))
    problem = cnn.make_problem(X, y, activation=activation, beta=beta)
    result, network, output = quietly(solve, problem, "clarabel", {"tol": 1e-9})

    # Neural Decomposition reproduces every block, with balanced columns. The
    # solver's accuracy is relative to the size of the solution: the largest
    # block, or objective / beta, which bounds trace(Z) + trace(Z') (blocks of
    # a zero network are pure solver noise).
    scale = max(max(np.linalg.norm(Z, 2) for pair in output.blocks for Z in pair),
                result.objective / beta, 1e-12)
    for z_pos, z_neg in output.blocks:
        for Z in (z_pos, z_neg):
            P = neural_decomposition(Z)
            assert np.all(np.isfinite(P))
            assert P.shape[1] <= Z.shape[0]
            assert np.linalg.norm(P @ P.T - Z, 2) <= 1e-6 * scale
            assert np.all(np.abs(g_norms(P)) <= 1e-6 * scale)

    # ... and the network reproduces the SDP's predictions.
    yhat_sdp = problem.predict_blocks(output.blocks)
    yhat = network.predict(X).reshape(n, -1)
    assert np.all(np.isfinite(yhat))
    size = max(np.abs(yhat_sdp).max(), 1.0)
    np.testing.assert_allclose(yhat, yhat_sdp, rtol=0, atol=1e-5 * size)

    # Unit-norm neurons; no NaN anywhere in the result.
    if network.n_neurons:
        np.testing.assert_allclose(np.linalg.norm(network.U, axis=1), 1.0, rtol=1e-12)
    for value in (result.objective, result.lower_bound, result.duality_gap, result.relative_gap):
        assert np.isfinite(value)

    # No objective drops below the certified lower bound.
    slack = 1e-9 * max(abs(result.objective), 1.0)
    assert result.lower_bound <= result.objective + slack
    for _ in range(3):
        other = random_network(rng, problem.shape, problem.activation)
        assert certify_network(problem, other).objective >= result.lower_bound - slack


@SETTINGS
@given(
    n=st.integers(4, 14),
    d=st.integers(1, 4),
    activation=activations,
    beta=betas,
    loss=st.sampled_from(["squared", "huber", "logistic"]),
    solver=st.sampled_from(["clarabel", "native"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_estimators_report_a_consistent_certified_result(n, d, activation, beta, loss, solver,
                                                          seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "logistic":
        y = np.arange(n) % 2  # both classes present
        estimator = cnn.ConvexPolyClassifier(activation=activation, beta=beta, loss=loss,
                                             solver=solver)
        targets = np.where(y == 1, 1.0, -1.0)
    else:
        y = targets = rng.standard_normal(n)
        estimator = cnn.ConvexPolyRegressor(activation=activation, beta=beta, loss=loss,
                                            solver=solver)
    quietly(estimator.fit, X, y)
    result, network = estimator.result_, estimator.network_
    assert result.n_neurons == network.n_neurons
    if network.n_neurons:
        np.testing.assert_allclose(np.linalg.norm(network.U, axis=1), 1.0, rtol=1e-12)
    outputs = network.predict(X)
    assert np.all(np.isfinite(outputs))
    objective = network.objective(X, targets, loss=loss, beta=beta)
    assert np.isfinite(objective)
    assert abs(objective - result.objective) <= 1e-9 * max(abs(objective), 1.0)
    # The lower bound may be -inf in one known case (test_edge_cases: bounded
    # conjugates at a huge beta); it is never above the objective, never NaN.
    assert not np.isnan(result.lower_bound)
    assert result.lower_bound <= objective + 1e-9 * max(abs(objective), 1.0)

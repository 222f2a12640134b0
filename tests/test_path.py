"""Regularisation paths (``fit_path``) and certificates of arbitrary networks (``certify``).

Issue 4: a path over a decreasing list of beta values that reuses each
solution, with the certificate at every beta; ``certify(network, X, y)``
usable on any network. Tiny Gaussian problems keep this fast.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

import convexnn
import convexnn.path
from conftest import planted_conv_teacher, planted_teacher, relative_difference, solve_checked
from convexnn import ValidationError, certify, fit_path, make_conv_problem, make_problem
from convexnn._solve import solve

#: Given unsorted on purpose; fit_path returns them in decreasing order.
BETAS = [0.05, 0.2, 0.1]
NEURONS = {"engine": "neurons"}


@functools.cache
def data():
    t = planted_teacher(n=50, d=5, seed=6)
    return t.X, t.y


@functools.cache
def conic(beta: float):
    """Clarabel at tol 1e-9 on the problem at ``beta``."""
    X, y = data()
    result, _, _ = solve_checked(make_problem(X, y, beta=beta), "clarabel", {"tol": 1e-9})
    return result


@functools.cache
def neurons_path():
    X, y = data()
    return fit_path(X, y, BETAS, solver="native", solver_options=NEURONS)


@functools.cache
def cold(beta: float):
    X, y = data()
    return solve(make_problem(X, y, beta=beta), "native", NEURONS)[0]


# -- fit_path --------------------------------------------------------------------
def test_fit_path_returns_decreasing_betas_each_certified():
    X, y = data()
    points = neurons_path()
    assert [p.beta for p in points] == sorted(BETAS, reverse=True) == [0.2, 0.1, 0.05]
    for point in points:
        result = point.result
        reference = conic(point.beta)
        assert isinstance(point, convexnn.PathPoint)
        assert result.status == "optimal" and result.solver == "native"
        assert result.stats["engine"] == "neurons"
        assert 0 <= result.relative_gap <= 2e-6
        assert math.isfinite(result.lower_bound)
        assert result.lower_bound <= reference.objective * (1 + 1e-9)
        assert reference.lower_bound <= result.objective * (1 + 1e-9)
        assert relative_difference(result.objective, reference.objective) <= 1e-5
        # The point's network is the certified one, at its own beta.
        check = certify(point.network, X, y, beta=point.beta)
        assert check.objective == pytest.approx(result.objective, rel=1e-10)
        assert check.relative_gap <= 1e-4
        assert point.network.n_neurons == result.n_neurons > 0
    # The optimum increases with beta (strictly here: every network has weight).
    objectives = [p.result.objective for p in points]
    assert objectives[0] > objectives[1] > objectives[2]


def test_fit_path_warm_starts_each_solve_from_the_previous_one(monkeypatch):
    X, y = data()
    calls = []

    def spy(problem, solver, options, *, warm_start=None, **kwargs):
        out = solve(problem, solver, options, warm_start=warm_start, **kwargs)
        calls.append((problem.beta, warm_start, out[2]))
        return out

    monkeypatch.setattr(convexnn.path, "solve", spy)
    points = fit_path(X, y, BETAS, solver="native", solver_options=NEURONS)
    assert [beta for beta, _, _ in calls] == [0.2, 0.1, 0.05]
    assert calls[0][1] is None
    assert calls[1][1] is calls[0][2] and calls[2][1] is calls[1][2]
    # The warm start saves rounds of the neurons engine and reaches the same optimum.
    path_rounds = [p.result.iterations for p in points]
    cold_rounds = [cold(p.beta).iterations for p in points]
    # (The first point is a cold solve: its round count varies by one with the machine's
    # load, as the engine's round budgets are measured in time.)
    assert all(w <= c for w, c in zip(path_rounds[1:], cold_rounds[1:])), (path_rounds, cold_rounds)
    assert sum(path_rounds[1:]) < sum(cold_rounds[1:]), (path_rounds, cold_rounds)
    for point in points:
        assert relative_difference(point.result.objective, cold(point.beta).objective) <= 1e-7


def test_fit_path_with_the_default_solver_uses_native_and_accepts_arrays():
    X, y = data()
    points = fit_path(X, y, np.array([0.1, 0.2]))
    assert [p.beta for p in points] == [0.2, 0.1]
    for point in points:
        assert point.result.solver == "native" and point.result.stats["engine"] == "ipm"
        assert point.result.status == "optimal" and point.result.relative_gap <= 1e-6
        assert relative_difference(point.result.objective, conic(point.beta).objective) <= 1e-5


def test_fit_path_convolutional():
    images, y, geometry, _ = planted_conv_teacher(n=30, filter_size=2, seed=2)
    points = fit_path(images, y, [0.05, 0.2], geometry=geometry)
    assert [p.beta for p in points] == [0.2, 0.05]
    for point in points:
        assert point.network.geometry == geometry
        assert point.result.status == "optimal" and point.result.relative_gap <= 1e-6
        reference, _, _ = solve_checked(
            make_conv_problem(images, y, geometry, beta=point.beta), "clarabel", {"tol": 1e-9}
        )
        assert relative_difference(point.result.objective, reference.objective) <= 1e-5
        assert point.result.lower_bound <= reference.objective * (1 + 1e-9)
    assert points[0].result.objective > points[1].result.objective


@pytest.mark.parametrize(
    "betas",
    [[-0.1], [float("nan")], [], [0.1, float("inf")], [0.1, -1.0], ["0.1"], [True]],
    ids=["negative", "nan", "empty", "inf", "one-negative", "string", "bool"],
)
def test_fit_path_rejects_invalid_betas(betas):
    X, y = data()
    with pytest.raises(ValidationError, match="beta"):
        fit_path(X, y, betas)


def test_fit_path_rejects_an_empty_generator_and_a_bare_number():
    X, y = data()
    with pytest.raises(ValidationError, match="beta"):
        fit_path(X, y, (b for b in []))
    with pytest.raises(ValidationError, match="beta"):
        fit_path(X, y, 0.1)


def test_fit_path_solves_a_repeated_beta_once():
    X, y = data()
    points = fit_path(X, y, [0.1, 0.2, 0.1], solver="native")
    assert [p.beta for p in points] == [0.2, 0.1]


def test_fit_path_zero_beta_is_rejected_or_solved():
    """The docstring asks for beta > 0; beta=0 must be refused by name or solved.
    (The native ipm engine fails at beta=0 -- see test_native -- and ``auto`` falls
    back to a conic solver.)"""
    X, y = data()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", convexnn.SolverStatusWarning)
            points = fit_path(X, y, [0.0])
    except ValidationError as error:
        assert "beta" in str(error)
        return
    reference, _, _ = solve_checked(make_problem(X, y, beta=0.0), "clarabel", {"tol": 1e-9})
    assert relative_difference(points[0].result.objective, reference.objective) <= 1e-5


# -- certify ---------------------------------------------------------------------
def test_certify_the_optimal_network_has_a_tiny_gap():
    X, y = data()
    result, network, _ = solve(make_problem(X, y, beta=0.1), "native", {"engine": "ipm"})
    certificate = certify(network, X, y, beta=0.1)
    assert certificate.objective == pytest.approx(result.objective, rel=1e-12)
    assert 0 <= certificate.duality_gap <= 1e-7 * certificate.objective
    assert certificate.relative_gap <= 1e-7
    assert certificate.lower_bound <= conic(0.1).objective * (1 + 1e-9)
    assert certificate.dual_constraint <= 0.1 * (1 + 1e-6)  # the gradient is dual feasible
    # dual points stacked in one array (one more dimension than a point) are points
    stacked = certify(network, X, y, beta=0.1,
                      dual_points=np.stack([result.dual_point, result.dual_point]))
    assert stacked.lower_bound == pytest.approx(
        certify(network, X, y, beta=0.1, dual_points=[result.dual_point]).lower_bound)


def test_certify_a_suboptimal_network_gives_a_positive_gap_and_a_valid_bound():
    X, y = data()
    teacher = planted_teacher(n=50, d=5, seed=6).network  # the data's own generator
    certificate = certify(teacher, X, y, beta=0.1)
    optimum = conic(0.1)
    assert certificate.objective > optimum.objective * (1 + 1e-3)
    assert certificate.relative_gap > 1e-3
    assert math.isfinite(certificate.lower_bound)
    assert certificate.lower_bound <= optimum.objective * (1 + 1e-9)


def test_certify_a_convolutional_network():
    images, y, geometry, teacher = planted_conv_teacher(n=30, filter_size=2, pool_size=2, seed=7)
    problem = make_conv_problem(images, y, geometry, beta=0.1)
    result, network, _ = solve(problem, "native", {"engine": "ipm"})
    optimal = certify(network, images, y, beta=0.1)
    assert optimal.objective == pytest.approx(result.objective, rel=1e-10)
    assert optimal.relative_gap <= 1e-6
    # Flattened images work too and give the same certificate.
    flat = certify(network, images.reshape(len(images), -1), y, beta=0.1)
    assert flat.lower_bound == pytest.approx(optimal.lower_bound, rel=1e-12)
    loose = certify(teacher, images, y, beta=0.1)
    assert loose.relative_gap > 1e-3
    assert math.isfinite(loose.lower_bound)
    assert loose.lower_bound <= result.objective * (1 + 1e-9)


def test_certify_a_vector_output_network_with_cross_entropy():
    t = planted_teacher(n=40, d=4, n_outputs=3, seed=0)
    labels = np.eye(3)[np.argmax(t.clean, axis=1)]
    problem = make_problem(t.X, labels, beta=0.1, loss="cross-entropy")
    result, network, _ = solve(problem, "native")
    certificate = certify(network, t.X, labels, loss="cross-entropy", beta=0.1)
    assert certificate.objective == pytest.approx(result.objective, rel=1e-10)
    assert certificate.relative_gap <= 1e-5
    # The same network judged with the wrong loss is (correctly) far from optimal there.
    squared = certify(network, t.X, labels, loss="squared", beta=0.1)
    assert squared.relative_gap > 1e-3


def _networks():
    t = planted_teacher(n=30, d=4, seed=1)
    v = planted_teacher(n=30, d=4, n_outputs=3, seed=1)
    images, y, _, conv = planted_conv_teacher(n=20, filter_size=2, seed=1)
    return t, v, (images, y, conv)


@pytest.mark.parametrize(
    "case, match",
    [
        ("not-a-network", "network must be a TwoLayerPolyNet"),
        ("too-few-features", "features"),
        ("too-few-rows", "rows"),
        ("two-columns-for-one-output", "one output"),
        ("one-column-for-three-outputs", "3 outputs"),
        ("wrong-image-size", "images of shape"),
        ("images-for-a-dense-network", "X must be 2-D"),
        ("negative-beta", "beta"),
        # one array, not a list of them: its rows were taken for dual points of shape (1,)
        ("one-dual-point-not-in-a-list", r"a sequence of dual points, e.g. \[result"),
    ],
)
def test_certify_rejects_mismatched_inputs(case, match):
    t, v, (images, y_conv, conv) = _networks()
    calls = {
        "not-a-network": lambda: certify(t.network.U, t.X, t.y, beta=0.1),
        "too-few-features": lambda: certify(t.network, t.X[:, :3], t.y, beta=0.1),
        "too-few-rows": lambda: certify(t.network, t.X, t.y[:10], beta=0.1),
        "two-columns-for-one-output": lambda: certify(t.network, t.X, np.c_[t.y, t.y], beta=0.1),
        "one-column-for-three-outputs": lambda: certify(v.network, v.X, v.y[:, 0], beta=0.1),
        "wrong-image-size": lambda: certify(conv, np.zeros((20, 1, 6, 6)), y_conv, beta=0.1),
        "images-for-a-dense-network": lambda: certify(t.network, images, y_conv, beta=0.1),
        "negative-beta": lambda: certify(t.network, t.X, t.y, beta=-0.1),
        "one-dual-point-not-in-a-list": lambda: certify(t.network, t.X, t.y, beta=0.1,
                                                        dual_points=np.zeros((30, 1))),
    }
    with pytest.raises(ValidationError, match=match):
        calls[case]()

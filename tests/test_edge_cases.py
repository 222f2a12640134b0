"""Numerical edge cases, solver faults and reproducibility.

Edge cases: badly scaled features (a clear warning before any solve),
duplicated columns, a huge ``beta`` (the all-zero network: no neurons,
predictions exactly 0, certified), a tiny ``beta`` (near interpolation),
``d = 1``, ``n < d``, rank-deficient data (rank-deficient ``Z`` in the
decomposition), constant and all-zero columns, all-zero targets, ``beta = 0``.
In every case the user sees no NaN.

Solver faults not covered by ``test_solver_contract`` / ``test_registry``: a
back-end raising its own exception type (wrapped with context; ``auto`` moves
on), a ``time_limit`` / ``optimal_inaccurate`` status (in the result and a
warning).

Reproducibility: the same ``random_state`` gives the same result, and nothing
reads or advances the global random state of NumPy, torch or ``random``.
"""

from __future__ import annotations

import logging
import random
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import convexnn as cnn
import convexnn.estimators
from conftest import planted_conv_teacher, planted_teacher, solve_checked
from convexnn._solve import solve
from convexnn.decomposition import neural_decomposition
from convexnn.exceptions import FeatureScalingWarning, SolverFailedError, SolverStatusWarning
from convexnn.solvers import registry
from convexnn.solvers.base import Solver, SolverOutput, Status


def assert_finite(*arrays) -> None:
    for array in arrays:
        assert np.all(np.isfinite(np.asarray(array, dtype=float))), "NaN / inf reached the user"


def assert_certified(result, rtol: float = 1e-5) -> None:
    assert np.isfinite(result.lower_bound) and np.isfinite(result.objective)
    assert result.lower_bound <= result.objective + 1e-9 * max(1.0, abs(result.objective))
    assert result.relative_gap <= rtol, result


# -- badly scaled features ------------------------------------------------------------------
class _Stop(Exception):
    """Raised in place of the solve: the warning must come before it."""


@pytest.fixture
def no_solve(monkeypatch):
    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(convexnn.estimators, "solve", stop)


@pytest.mark.parametrize(
    "estimator", [cnn.ConvexPolyClassifier(), cnn.BackpropPolyClassifier(epochs=1)],
    ids=["convex", "backprop"],
)
def test_raw_breast_cancer_warns_to_standardise_before_solving(estimator, no_solve):
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(FeatureScalingWarning) as caught:
        try:
            estimator.fit(X, y)
        except _Stop:
            pass
    message = str(caught[0].message)
    assert "badly scaled" in message and "StandardScaler" in message
    assert caught[0].filename == __file__  # the caller of fit
    ratio = float(message.split("a ratio of ")[1].split(" ")[0])
    scales = np.sqrt((X**2).mean(axis=0))
    assert ratio == pytest.approx(scales.max() / scales.min(), rel=0.05) and ratio > 1e4
    assert caught[0].filename == __file__  # points at the caller's fit


def test_standardised_breast_cancer_does_not_warn(no_solve):
    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureScalingWarning)
        with pytest.raises(_Stop):
            make_pipeline(StandardScaler(), cnn.ConvexPolyClassifier()).fit(X, y)


def test_scales_below_the_limit_and_zero_columns_do_not_warn(no_solve):
    X = np.random.default_rng(0).standard_normal((20, 4)) * np.array([1e-2, 1.0, 50.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureScalingWarning)
        with pytest.raises(_Stop):
            cnn.ConvexPolyRegressor().fit(X, X[:, 1])


def test_uniformly_huge_features_warn_before_solving(no_solve):
    """Every column at scale 1e6: their ratio is fine, but the activation's quadratic and
    constant parts are 1e12 apart (every back-end failed or stopped far from the optimum)."""
    X = np.random.default_rng(0).standard_normal((40, 3)) * 1e6
    with pytest.warns(FeatureScalingWarning, match="column [0-2] has scale .* > 1000, so the "
                      "activation's quadratic and constant parts are 1e\\+12 apart"):
        with pytest.raises(_Stop):
            cnn.ConvexPolyRegressor().fit(X, X[:, 0] / 1e6)


def test_images_are_checked_by_the_scales_their_filters_see(no_solve):
    """A faint border pixel (lit in one image of 3000) made the per-pixel ratio 1.6e4 and
    the warning advised a StandardScaler, which would blow it up to 55; the filters see it
    as one of many positions of a patch entry, whose scales are alike: no warning. A
    pixel column a million times brighter than the rest still warns, with image advice."""
    rng = np.random.default_rng(0)
    X = np.zeros((3000, 8, 8))
    X[:, 1:7, 1:7] = np.round(rng.random((3000, 6, 6)) * 255) / 255
    X[0, 0, 0] = 0.5 / 255
    y = X[:, 3, 3] - X[:, 4, 4]
    pixel_scales = np.sqrt((X ** 2).mean(axis=0))
    assert pixel_scales.max() / pixel_scales[0, 0] > 1e4  # what warned per pixel
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureScalingWarning)
        with pytest.raises(_Stop):
            cnn.ConvexPolyConvRegressor(filter_size=3, pool_size=3).fit(X, y)
    bright = rng.random((50, 1, 6, 6))
    bright[:, 0, :, 0] *= 1e6
    with pytest.warns(FeatureScalingWarning, match=r"filter entry scales .*\(channel 0, filter "
                      r"row [0-2], column 0\), a ratio .*Bring the pixels to one scale"
                      ) as caught, pytest.raises(_Stop):
        cnn.ConvexPolyConvRegressor(filter_size=3).fit(bright, rng.random(50))
    assert "StandardScaler()" not in str(caught[0].message)
    assert caught[0].filename == __file__


def test_a_conv_cv_estimator_warns_about_its_images_once():
    # its fit built the geometry and its refit built it again: every warning came twice
    rng = np.random.default_rng(3)
    images = rng.random((24, 1, 4, 4))
    images[:, 0, :, 0] *= 1e6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cnn.ConvexPolyConvRegressorCV(filter_size=2, betas=2, cv=2).fit(images, rng.random(24))
    assert [w.category for w in caught].count(FeatureScalingWarning) == 1


def test_patch_scales_are_the_root_mean_squares_of_the_patch_entries():
    from convexnn.patches import ConvGeometry

    images = np.random.default_rng(1).random((7, 2, 5, 6)) * np.arange(1, 7)
    geometry = ConvGeometry((2, 5, 6), (2, 3), (1, 2), None)
    patches = geometry.patches(images).reshape(-1, geometry.patch_size)
    np.testing.assert_allclose(geometry.patch_scales(images),
                               np.sqrt((patches ** 2).mean(axis=0)), rtol=1e-12)


def test_channels_last_images_warn_that_they_are_read_channels_first(no_solve):
    images = np.random.default_rng(1).standard_normal((20, 8, 8, 3))
    with pytest.warns(cnn.ConvexNNWarning, match="read channels-first, as 8 channels of 8 x 3 "
                      "images; .* X.transpose\\(0, 3, 1, 2\\)"):
        with pytest.raises(_Stop):
            cnn.ConvexPolyConvRegressor(filter_size=3).fit(images, images.sum(axis=(1, 2, 3)))
    with warnings.catch_warnings():  # channels-first: no warning
        warnings.simplefilter("error", cnn.ConvexNNWarning)
        with pytest.raises(_Stop):
            cnn.ConvexPolyConvRegressor(filter_size=3).fit(images.transpose(0, 3, 1, 2),
                                                           images.sum(axis=(1, 2, 3)))


def test_status_warnings_point_at_the_users_line_however_deep_the_call():
    t = planted_teacher(n=30, d=3, seed=3)
    for call in (lambda: cnn.ConvexPolyRegressor(solver_options={"max_iter": 1}).fit(t.X, t.y),
                 lambda: cnn.solve(cnn.make_problem(t.X, t.y), "native", {"max_iter": 1})):
        with pytest.warns(SolverStatusWarning) as caught:
            call()
        assert caught[0].filename == __file__


def test_badly_scaled_fit_reports_its_status_and_returns_no_nan():
    """Columns scaled 1e-4 .. 1e4: warned, solved as far as the solver can, finite.

    Whether SCS gets there within 2000 iterations depends on its release; what
    must hold is that the status warning fires exactly when the status is not
    optimal, and that the certificate is consistent either way.
    """
    t = planted_teacher(n=30, d=4, seed=3)
    X = t.X * np.array([1e-4, 1.0, 1e4, 1.0])
    reg = cnn.ConvexPolyRegressor(beta=0.1, solver="scs", solver_options={"max_iter": 2000})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.fit(X, t.y)
    categories = [w.category for w in caught]
    assert FeatureScalingWarning in categories
    assert (SolverStatusWarning in categories) == (reg.result_.status != "optimal")
    assert reg.result_.status in ("optimal", "optimal_inaccurate", "iteration_limit")
    assert_finite(reg.predict(X), reg.network_.U, reg.network_.alpha)
    assert reg.result_.lower_bound <= reg.result_.objective
    assert np.isfinite(reg.result_.relative_gap)


# -- duplicated columns, d = 1, n < d, rank-deficient data -------------------------------------
def test_duplicated_columns():
    t = planted_teacher(n=30, d=3, seed=4)
    X = np.column_stack([t.X, t.X[:, 0], t.X[:, 0]])
    reg = cnn.ConvexPolyRegressor(beta=0.1, solver="clarabel", solver_options={"tol": 1e-9})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverStatusWarning)
        reg.fit(X, t.y)
    assert_finite(reg.predict(X))
    assert_certified(reg.result_)
    np.testing.assert_allclose(np.linalg.norm(reg.network_.U, axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("solver", ["clarabel", "scs", "native"])
def test_a_single_feature(solver):
    t = planted_teacher(n=25, d=1, seed=5)
    reg = cnn.ConvexPolyRegressor(beta=0.05, solver=solver).fit(t.X, t.y)
    assert_finite(reg.predict(t.X))
    np.testing.assert_allclose(np.abs(reg.network_.U), 1.0, rtol=1e-12)  # u = +-1
    assert_certified(reg.result_, rtol=1e-4)


@pytest.mark.parametrize("solver", ["clarabel", "native"])
def test_fewer_samples_than_features(solver):
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((5, 12)), rng.standard_normal(5)
    reg = cnn.ConvexPolyRegressor(beta=0.1, solver=solver).fit(X, y)
    assert_finite(reg.predict(X))
    assert_certified(reg.result_, rtol=1e-4)


def test_rank_deficient_data_gives_rank_deficient_z_that_decomposes():
    """X of rank 2 in R^5: the solution's Z has rank 2 of 6 (its other eigenvalues
    are at the solver's precision); the decomposition reproduces every block with
    at most rank(Z) neurons, and the network the SDP's predictions."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 5))
    y = (X @ rng.standard_normal(5)) ** 2 + 0.1 * rng.standard_normal(30)
    problem = cnn.make_problem(X, y, beta=0.1)
    result, network, output = solve_checked(problem, "clarabel", {"tol": 1e-9})
    ranks = []
    for z_pos, z_neg in output.blocks:
        for Z in (z_pos, z_neg):
            eigenvalues = np.linalg.eigvalsh(Z)
            rank = int((eigenvalues > 1e-7 * max(eigenvalues.max(), 1e-300)).sum())
            ranks.append(rank)
            P = neural_decomposition(Z, rtol=1e-7)
            assert P.shape[1] <= rank
            assert np.linalg.norm(P @ P.T - Z, 2) <= 1e-6 * max(np.linalg.norm(Z, 2), 1e-12)
    assert min(ranks) < 6
    assert_finite(network.predict(X))
    yhat = problem.predict_blocks(output.blocks)[:, 0]
    np.testing.assert_allclose(network.predict(X), yhat, atol=1e-5 * np.abs(yhat).max())


def test_constant_and_all_zero_columns_and_all_zero_data():
    t = planted_teacher(n=30, d=3, seed=8)
    X = np.column_stack([t.X, np.ones(30), np.zeros(30)])
    reg = cnn.ConvexPolyRegressor(beta=0.1, solver="clarabel").fit(X, t.y)
    assert_finite(reg.predict(X))
    assert_certified(reg.result_, rtol=1e-4)
    zero = cnn.ConvexPolyRegressor(beta=0.1, solver="clarabel").fit(np.zeros((30, 3)), t.y)
    assert_finite(zero.predict(np.zeros((5, 3))))
    # sigma(0) = c is all the network can use: the fit is a constant.
    assert np.ptp(zero.predict(t.X[:, :3] * 0)) == 0


# -- huge / tiny / zero beta ----------------------------------------------------------------
HUGE = 1e6


@pytest.mark.parametrize("solver", ["clarabel", "scs", "native"])
def test_huge_beta_gives_the_certified_all_zero_network(solver):
    t = planted_teacher(n=30, d=4, seed=9)
    reg = cnn.ConvexPolyRegressor(beta=HUGE, solver=solver).fit(t.X, t.y)
    assert reg.network_.n_neurons == reg.result_.n_neurons == 0
    assert np.array_equal(reg.predict(t.X), np.zeros(30))  # exactly 0, no NaN
    assert reg.result_.objective == pytest.approx(0.5 * np.sum(t.y**2), rel=1e-12)
    assert_certified(reg.result_, rtol=1e-9)


@pytest.mark.parametrize("solver", ["clarabel", "scs"])
def test_huge_beta_zero_network_for_a_vector_conv_classifier(solver):
    images, y, _, _ = planted_conv_teacher(n=24, filter_size=2, seed=10)
    labels = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    clf = cnn.ConvexPolyConvClassifier(filter_size=2, beta=HUGE, solver=solver)
    clf.fit(images, labels)
    assert clf.network_.n_neurons == 0
    assert np.array_equal(clf.decision_function(images), np.zeros((24, 3)))
    assert_certified(clf.result_, rtol=1e-9)  # squared loss: certified exactly


@pytest.mark.parametrize("loss", ["logistic", "cross-entropy"])
def test_huge_beta_zero_network_for_probabilistic_losses(loss):
    t = planted_teacher(n=30, d=4, seed=11)
    labels = np.digitize(t.y, np.quantile(t.y, [1 / 3, 2 / 3]))
    clf = cnn.ConvexPolyClassifier(beta=HUGE, loss=loss, solver="clarabel").fit(t.X, labels)
    assert clf.network_.n_neurons == 0
    proba = clf.predict_proba(t.X)
    assert_finite(proba)
    np.testing.assert_allclose(proba, 1 / 3)  # the zero network cannot prefer a class


@pytest.mark.parametrize("loss", ["logistic", "huber"])
def test_huge_beta_zero_network_is_certified_for_bounded_conjugates(loss):
    t = planted_teacher(n=30, d=4, seed=12)
    if loss == "huber":
        est = cnn.ConvexPolyRegressor(beta=HUGE, loss=loss, solver="clarabel").fit(t.X, t.y)
    else:
        est = cnn.ConvexPolyClassifier(beta=HUGE, loss=loss, solver="clarabel").fit(t.X, t.y > 0)
    assert est.network_.n_neurons == 0
    assert_certified(est.result_, rtol=1e-9)


def test_tiny_beta_nearly_interpolates():
    """10 samples, 4 features: the 15 quadratic features can interpolate."""
    t = planted_teacher(n=10, d=4, seed=13, noise=0.5)
    reg = cnn.ConvexPolyRegressor(beta=1e-7, solver="clarabel", solver_options={"tol": 1e-10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverStatusWarning)
        reg.fit(t.X, t.y)
    assert_finite(reg.predict(t.X))
    assert reg.result_.objective <= 1e-4 * 0.5 * np.sum(t.y**2)
    np.testing.assert_allclose(reg.predict(t.X), t.y, atol=1e-2 * np.abs(t.y).max())
    assert reg.result_.lower_bound <= reg.result_.objective


def test_zero_beta_is_solved_and_auto_moves_past_a_crashing_back_end(caplog):
    """beta = 0 (plain least squares over quadratic features): the certificate is
    degenerate (lower bound 0) but the fit is finite. The native interior-point
    engine divides by zero here (see test_native); ``auto`` logs that and moves on."""
    t = planted_teacher(n=30, d=3, seed=14)
    problem = cnn.make_problem(t.X, t.y, beta=0.0)
    with caplog.at_level(logging.WARNING, logger="convexnn"), pytest.warns(
        SolverStatusWarning, match="beta=0 no duality gap.*Use beta > 0 for a certified"
    ):
        result, network, _ = solve(problem, "auto")
    assert result.status == "optimal_inaccurate"
    assert_finite(network.predict(t.X), [result.objective, result.lower_bound])
    assert 0 <= result.lower_bound <= result.objective
    for record in caplog.records:
        if "trying the next solver" in record.getMessage():
            assert "native failed on the scalar problem" in record.getMessage()


def test_all_zero_targets_give_the_zero_network():
    t = planted_teacher(n=30, d=3, seed=15)
    for solver in ("clarabel", "scs"):
        reg = cnn.ConvexPolyRegressor(beta=0.1, solver=solver).fit(t.X, np.zeros(30))
        assert reg.network_.n_neurons == 0 and reg.result_.objective == 0.0
        assert np.array_equal(reg.predict(t.X), np.zeros(30))


def test_probabilities_of_extreme_outputs_are_finite():
    """Sigmoids / softmax in log space: no overflow warning, no 0 / 0."""
    from convexnn._targets import probabilities

    scores = np.array([[-2000.0, -1500.0, -1800.0], [800.0, 900.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss in ("logistic", "cross-entropy"):
            proba = probabilities(scores, cnn.get_loss(loss))
            assert_finite(proba)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)
            assert np.argmax(proba[0]) == 1
        binary = probabilities(np.array([-1000.0, 1000.0]), cnn.get_loss("logistic"))
    np.testing.assert_array_equal(binary, [[1.0, 0.0], [0.0, 1.0]])


# -- solver faults --------------------------------------------------------------------------
class RaisingSolver(Solver):
    """A plug-in that crashes with its own exception type (not a SolverError)."""

    name = "raising"
    description = "test double raising RuntimeError"
    package = "numpy"

    def solve(self, problem, *, warm_start=None, **options):
        raise RuntimeError("plug-in exploded")


class LimitedSolver(Solver):
    """Clarabel's answer reported with a given status (a limit or inaccuracy)."""

    name = "limited"
    description = "test double with a non-optimal status"
    package = "numpy"
    status = Status.TIME_LIMIT

    def solve(self, problem, *, warm_start=None, **options):
        output = registry.get("clarabel").solve(problem)
        output.status = self.status
        return output


class FarOffSolver(Solver):
    """Clarabel's blocks scaled up 1000x, as a back-end stopped far from the optimum."""

    name = "far-off"
    description = "test double returning a network worse than the zero network"
    package = "numpy"

    def solve(self, problem, *, warm_start=None, **options):
        output = registry.get("clarabel").solve(problem)
        output.blocks = [(1e3 * plus, 1e3 * minus) for plus, minus in output.blocks]
        output.status = Status.ITERATION_LIMIT
        return output


@pytest.fixture(scope="module")
def small_problem():
    t = planted_teacher(n=20, d=3, seed=16)
    return cnn.make_problem(t.X, t.y, beta=0.1)


def test_a_back_end_exception_is_wrapped_with_context(small_problem, isolated_registry):
    isolated_registry.register(RaisingSolver)
    with pytest.raises(cnn.SolverFailedError) as caught:
        solve(small_problem, "raising")
    message = str(caught.value)
    for words in ("raising failed on the scalar problem", "n=20", "h=3", "squared loss",
                  "RuntimeError: plug-in exploded", "Try another solver"):
        assert words in message
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_auto_moves_past_a_back_end_exception_and_logs_why(
    small_problem, isolated_registry, monkeypatch, caplog
):
    isolated_registry.register(RaisingSolver)
    monkeypatch.setattr(RaisingSolver, "auto_priority", lambda self, problem: -1)
    with caplog.at_level(logging.WARNING, logger="convexnn"):
        result, _, _ = solve(small_problem, "auto", {"tol": 1e-7})
    assert result.solver != "raising"
    assert any("raising failed" in r.getMessage() and "RuntimeError" in r.getMessage()
               and "trying the next solver" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", [Status.TIME_LIMIT, Status.ITERATION_LIMIT,
                                    Status.INTERRUPTED])
def test_limit_statuses_reach_the_result_and_a_warning(
    status, small_problem, isolated_registry, monkeypatch
):
    isolated_registry.register(LimitedSolver)
    monkeypatch.setattr(LimitedSolver, "status", status)
    # A tol no network meets: a limit's status stands (one certified within tol would be
    # "optimal", see test_polish.py) and the warning says it.
    with pytest.warns(SolverStatusWarning, match=f"stopped with status '{status.value}'"):
        result, network, _ = solve(small_problem, "limited", {"tol": 1e-15})
    assert result.status == status.value and not result.optimal
    assert result.stats["solver_status"] == status.value
    assert_finite(network.predict(np.zeros((2, 3))), [result.lower_bound])


def test_an_inaccurate_answer_certified_within_tol_is_optimal(
    small_problem, isolated_registry, monkeypatch
):
    """The status speaks for the network: the independent certificate upgrades a
    back-end's "inaccurate" when the network is within tol, and downgrades its
    "optimal" (with the warning) when the network misses tol."""
    isolated_registry.register(LimitedSolver)
    monkeypatch.setattr(LimitedSolver, "status", Status.OPTIMAL_INACCURATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SolverStatusWarning)
        result, _, _ = solve(small_problem, "limited", {"tol": 1e-4})
    assert result.status == "optimal" and result.relative_gap <= 1e-4
    assert result.stats["solver_status"] == "optimal_inaccurate"
    monkeypatch.setattr(LimitedSolver, "status", Status.OPTIMAL)
    with pytest.warns(SolverStatusWarning, match="above tol=1e-15"):
        result, _, _ = solve(small_problem, "limited", {"tol": 1e-15})
    assert result.status == "optimal_inaccurate" and result.relative_gap > 1e-15
    assert result.stats["solver_status"] == "optimal"


def test_a_network_worse_than_the_zero_network_is_never_returned(
    small_problem, isolated_registry
):
    isolated_registry.register(FarOffSolver)
    with pytest.warns(SolverStatusWarning, match="iteration_limit"):
        result, network, _ = solve(small_problem, "far-off", polish=False)
    zero_objective = small_problem.objective(np.zeros_like(small_problem.targets), 0.0)
    reached = re.search(r"its network \(objective ([0-9.e+]+)\) was worse than the zero "
                        r"network", result.message)
    assert float(reached.group(1)) > 100 * zero_objective
    assert network.n_neurons == 0 and result.n_neurons == 0
    assert result.objective == pytest.approx(zero_objective, rel=1e-12)
    assert result.lower_bound <= result.objective
    np.testing.assert_array_equal(network.predict(np.ones((2, 3))), 0.0)


def test_the_estimator_reports_the_status_too(isolated_registry, monkeypatch):
    isolated_registry.register(LimitedSolver)
    t = planted_teacher(n=20, d=3, seed=17)
    with pytest.warns(SolverStatusWarning, match="time_limit"):
        reg = cnn.ConvexPolyRegressor(solver="limited", solver_options={"tol": 1e-15}).fit(
            t.X, t.y
        )
    assert reg.result_.status == "time_limit"


# -- reproducibility --------------------------------------------------------------------------
def global_random_state():
    return (np.random.get_state(), torch.get_rng_state().clone(), random.getstate())


def assert_untouched(before) -> None:
    numpy_state, torch_state, python_state = before
    now_numpy, now_torch, now_python = global_random_state()
    assert numpy_state[0] == now_numpy[0] and np.array_equal(numpy_state[1], now_numpy[1])
    assert numpy_state[2:] == now_numpy[2:], "numpy's global generator was used"
    assert torch.equal(torch_state, now_torch), "torch's global generator was used"
    assert python_state == now_python, "python's random module was used"


@pytest.mark.parametrize("solver", ["clarabel", "native"])
def test_convex_estimators_are_deterministic_and_leave_global_state_alone(solver):
    t = planted_teacher(n=30, d=3, seed=18)
    before = global_random_state()
    first = cnn.ConvexPolyRegressor(beta=0.05, solver=solver).fit(t.X, t.y)
    second = cnn.ConvexPolyRegressor(beta=0.05, solver=solver).fit(t.X, t.y)
    assert_untouched(before)
    np.testing.assert_array_equal(first.predict(t.X), second.predict(t.X))
    assert first.result_.objective == second.result_.objective


@pytest.mark.parametrize("estimator", [cnn.BackpropPolyRegressor, cnn.BackpropPolyClassifier])
def test_backprop_estimators_same_random_state_same_weights(estimator):
    t = planted_teacher(n=30, d=3, seed=19)
    y = t.y if estimator is cnn.BackpropPolyRegressor else t.y > np.median(t.y)
    before = global_random_state()
    runs = [
        estimator(epochs=15, optimizer="sgd", random_state=seed).fit(t.X, y) for seed in (7, 7, 8)
    ]
    fresh = [estimator(epochs=2, random_state=None).fit(t.X, y) for _ in range(2)]
    legacy = estimator(epochs=2, random_state=np.random.RandomState(3)).fit(t.X, y)
    assert_untouched(before)
    np.testing.assert_array_equal(runs[0].W_, runs[1].W_)
    np.testing.assert_array_equal(runs[0].predict(t.X), runs[1].predict(t.X))
    assert not np.array_equal(runs[0].W_, runs[2].W_)
    assert not np.array_equal(fresh[0].W_, fresh[1].W_)  # None: fresh entropy each time
    assert legacy.W_.shape == runs[0].W_.shape


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # sgd diverges
def test_train_backprop_make_planted_and_load_dataset_leave_global_state_alone():
    before = global_random_state()
    planted = [cnn.datasets.make_planted(20, 3, random_state=5) for _ in range(2)]
    np.testing.assert_array_equal(planted[0].y, planted[1].y)
    runs = [cnn.train_backprop(planted[0].X, planted[0].y, epochs=5, optimizer=opt, seed=2,
                               batch_size=None if opt == "lbfgs" else 8)
            for opt in ("sgd", "sgd", "lbfgs")]
    np.testing.assert_array_equal(runs[0].W, runs[1].W)
    cnn.datasets.load_dataset("iris", random_state=None)
    cnn.datasets.make_planted(10, 2, random_state=None)
    assert_untouched(before)


def test_compare_is_reproducible_and_leaves_global_state_alone():
    t = planted_teacher(n=40, d=3, seed=20)
    kwargs = dict(solvers=["clarabel"], optimizers=["sgd", "adam"], seeds=2, epochs=10,
                  progress=False, random_state=3)
    before = global_random_state()
    first, second = (cnn.compare((t.X, t.y), **kwargs) for _ in range(2))
    assert_untouched(before)
    columns = ["objective", "lower_bound", "train_metric", "test_metric", "neurons", "epochs"]
    np.testing.assert_array_equal(first.table()[columns].to_numpy(float),
                                  second.table()[columns].to_numpy(float))


# -- found by a fuzz of random small instances against Clarabel -------------------------


def test_wide_data_whose_factor_has_a_weightless_column_decomposes_cleanly():
    """A balanced factor column with t = 0 carries no neuron; it used to become a zero
    row and then NaN neurons (28% of random wide instances)."""
    X = np.array([[1.24500416, 1.74882245, -0.5160724, 1.29518729],
                  [-0.56678996, 0.05390108, 1.07298982, -0.32850624]])
    y = np.array([2.37256979, -2.53476968])
    beta = 0.3 * cnn.beta_max(X, y, activation="quadratic")
    problem = cnn.make_problem(X, y, activation="quadratic", beta=beta)
    native, network, _ = solve(problem, "native")
    reference, _, _ = solve(problem, "clarabel", {"tol": 1e-9})
    assert native.status == "optimal" and np.all(np.isfinite(network.U))
    assert native.objective == pytest.approx(reference.objective, rel=1e-7)


def test_factor_columns_without_weight_are_not_neurons():
    from convexnn.decomposition import neurons_from_factor
    from convexnn.solvers.native._consolidate import balanced_neurons

    factor = np.array([[0.6, 1e-9], [0.8, 0.0], [1.0, 0.0]])  # columns [v; t]: t = 0 in the 2nd
    filters, weights = neurons_from_factor(factor, 1.0)
    assert len(weights) == 1 and weights[0] == pytest.approx(1.0)
    np.testing.assert_allclose(filters[0], [0.6, 0.8])
    assert len(balanced_neurons(factor)) == 1


def test_above_beta_max_a_zero_weight_decomposition_is_the_zero_network():
    """SCS's blocks above beta_max decompose into neurons of weight exactly 0: no neurons,
    and polishing has nothing to refit (it used to hand L-BFGS-B no variables)."""
    rng = np.random.default_rng(21)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    beta = 1.5 * cnn.beta_max(X, y, activation="quadratic")
    problem = cnn.make_problem(X, y, activation="quadratic", beta=beta)
    for polish in (False, True):
        result, network, _ = solve(problem, "scs", polish=polish)
        assert network.n_neurons == 0 and result.status == "optimal"
        assert result.objective == pytest.approx(0.5 * float(y @ y))


@pytest.mark.parametrize("activation", [(0.0, 1.0, 0.0), (0.0, -2.0, 0.0)])
def test_a_linear_activation_goes_to_the_neurons_engine(activation):
    """sigma(t) = b t makes the interior point's Newton systems singular: auto takes
    the neurons engine, engine='ipm' says why it cannot."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    y = X[:, 0] + 0.5 + 0.1 * rng.normal(size=30)
    problem = cnn.make_problem(X, y, activation=activation, beta=1e-3)
    native, _, output = solve(problem, "native")
    reference, _, _ = solve(problem, "clarabel", {"tol": 1e-9})
    assert output.stats["engine"] == "neurons" and native.status == "optimal"
    assert native.objective == pytest.approx(reference.objective, rel=1e-6)
    with pytest.raises(cnn.InvalidSolverOptionError, match="is linear: use engine='neurons'"):
        solve(problem, "native", {"engine": "ipm"})


def test_features_no_neuron_can_use_give_beta_max_zero():
    X, y = np.zeros((10, 3)), np.random.default_rng(0).normal(size=10)
    assert cnn.beta_max(X, y, activation="quadratic") == 0.0  # was 1e-314, from a margin
    with pytest.raises(cnn.ValidationError, match="beta_max is 0.0"):
        cnn.fit_path(X, y, activation="quadratic", n_betas=3)
    assert cnn.beta_max(X, y) > 0  # relu-approx's constant term still fits the mean


class NonFiniteSolver(Solver):
    """Claims optimal, returns NaN blocks."""

    name = "nonfinite"
    description = "test double with a NaN solution"
    package = "numpy"

    def solve(self, problem, *, warm_start=None, **options):
        h = problem.patches.shape[-1] + 1
        blocks = [(np.full((h, h), np.nan), np.zeros((h, h)))] * problem.shape.n_blocks
        return SolverOutput(status=Status.OPTIMAL, objective=1.0, iterations=1,
                            solve_time=0.0, blocks=blocks)


def test_a_non_finite_solution_is_a_back_end_failure(isolated_registry, monkeypatch, caplog):
    isolated_registry.register(NonFiniteSolver)
    teacher = planted_teacher(n=20, d=3)
    problem = cnn.make_problem(teacher.X, teacher.y, beta=0.1)
    with pytest.raises(cnn.SolverFailedError, match="NaN or infinite entries"):
        solve(problem, "nonfinite")
    monkeypatch.setattr(NonFiniteSolver, "auto_priority", lambda self, problem: -1)
    with caplog.at_level(logging.WARNING, logger="convexnn"):
        result, _, _ = solve(problem, "auto")
    assert result.solver != "nonfinite" and result.status == "optimal"
    assert any("nonfinite returned a solution with NaN" in r.getMessage() for r in caplog.records)


def test_auto_goes_on_with_the_neurons_engine_where_the_interior_point_stalls(caplog):
    """Features of scale 3000: the interior point stalls at gap ~0.5; auto hands its point
    to the neurons engine, which certifies (and the scale is warned about)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 4))
    U = rng.standard_normal((4, 3))
    Z = X @ (U / np.linalg.norm(U, axis=0))
    y = (0.09 * Z ** 2 + 0.5 * Z + 0.47) @ np.array([1.0, -1.0, 0.5]) + 0.1 * rng.normal(size=600)
    with pytest.warns(FeatureScalingWarning, match="above|> 1000"):
        model = cnn.ConvexPolyRegressor(beta=0.1)
        with caplog.at_level(logging.INFO, logger="convexnn"), warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverStatusWarning)
            model.fit(3000.0 * X, y)
    # At this scale the rounding of the oracle's sums alone is about 1e-7 of beta.
    reference, _, _ = solve(cnn.make_problem(3000.0 * X, y, beta=0.1), "clarabel")
    assert any("going on with the neurons engine" in r.getMessage() for r in caplog.records)
    # Where the neurons engine stops above 1e-3 (under load) auto's second opinion may win.
    assert model.result_.solver != "native" or model.result_.stats["engine"] == "neurons"
    # The interior point's own: 2.3e-3. Where the neurons engine stalls depends on how many
    # rounds its clock-driven schedule certifies (8.5e-4 to 1.9e-3 seen under load; 1e-5).
    assert model.result_.relative_gap < 1e-2
    assert model.result_.objective == pytest.approx(reference.objective, rel=1e-3)


@pytest.mark.parametrize("seed", [0, 5])
def test_auto_goes_on_with_the_neurons_engine_where_the_interior_point_fails(seed):
    """Five samples in two dimensions at beta 1e-6 (the optimum nearly interpolates): the
    interior point's Newton system turns singular (seed 0: a SolverFailedError before) or
    it stalls at gap 0.96 after its 100 iterations (seed 5: objective 1.29 against 0.0456
    returned as the result); auto now goes on with the neurons engine."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((5, 2)), rng.standard_normal(5)
    problem = cnn.make_problem(X, y, beta=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverStatusWarning)
        result, _, _ = solve(problem, "native")
        reference, _, _ = solve(problem, "clarabel")
    assert result.status == "optimal" and result.stats["engine"] == "neurons"
    assert result.lower_bound <= reference.objective * (1 + 1e-9)
    assert result.objective <= reference.objective * (1 + 1e-5)


def test_auto_certifies_huber_on_badly_scaled_columns(caplog):
    """Huber on 20 x 5 features of scales 30 to 0.03: the native solver, timing-adaptive,
    mostly stalls at a certified gap of 0.8-0.9 (and sometimes certifies, after about 190
    rounds); auto then lets the next candidate solve it too (returned the stall before)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5)) * [30, 0.03, 1, 1, 1]
    y = 300 * rng.standard_normal(20)
    problem = cnn.make_problem(X, y, beta=5e-3, loss="huber")
    with caplog.at_level(logging.WARNING, logger="convexnn"), warnings.catch_warnings():
        warnings.simplefilter("error", SolverStatusWarning)  # the kept result is optimal
        result, _, _ = solve(problem, "auto")
    tried = [r.getMessage() for r in caplog.records if "solves it too" in r.getMessage()]
    assert result.status == "optimal" and result.relative_gap <= 1e-6
    assert len(tried) == (result.solver != "native")


def test_auto_asks_a_second_solver_where_the_native_one_stalls(monkeypatch, caplog):
    """A native stop far above tol: auto lets the next candidate solve it too and keeps
    the better certificate."""
    problem, ran = _stalled_native(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="convexnn"), warnings.catch_warnings():
        warnings.simplefilter("error", SolverStatusWarning)  # the kept result is optimal
        result, _, _ = solve(problem, "auto")
    tried = [r.getMessage() for r in caplog.records if "solves it too" in r.getMessage()]
    assert len(tried) == 1 and tried[0].startswith("auto: native stopped at certified")
    assert ran == ["native"] and result.solver == "clarabel"
    assert result.status == "optimal" and result.relative_gap <= 1e-6


def _stalled_native(monkeypatch, status=Status.OPTIMAL_INACCURATE):
    """The native solver made to stop after one round of its neurons engine (a gap far
    above 1e-3) with ``status``; returns the problem and the list of back-ends run."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 4))
    problem = cnn.make_problem(X, X[:, 0] ** 2 - X[:, 1], beta=1e-3, loss="huber")
    native = type(cnn.solvers.get("native"))
    real = native.solve
    ran = []

    def stalled(self, problem, **options):
        ran.append("native")
        output = real(self, problem, **dict(options, engine="neurons", max_iter=1))
        output.status = status
        return output

    monkeypatch.setattr(native, "solve", stalled)
    # the same candidates with or without a MOSEK license
    usable = [cnn.solvers.get(name) for name in ("native", "clarabel", "scs")]
    monkeypatch.setattr(cnn.solvers, "auto_candidates", lambda problem: usable)
    return problem, ran


@pytest.mark.parametrize("failure", [SolverFailedError("it broke"), RuntimeError("a bug")])
def test_the_first_result_stands_when_the_second_opinion_fails(monkeypatch, failure):
    problem, ran = _stalled_native(monkeypatch)
    clarabel = type(cnn.solvers.get("clarabel"))

    def broken(self, problem, **options):
        ran.append("clarabel")
        raise failure

    monkeypatch.setattr(clarabel, "solve", broken)
    with pytest.warns(SolverStatusWarning, match="native stopped"):
        result, _, _ = solve(problem, "auto")
    assert ran == ["native", "clarabel"]  # not the candidates after it too
    assert result.solver == "native" and result.relative_gap > 1e-3


def test_ctrl_c_during_the_second_opinion_stops_the_solve(monkeypatch):
    problem, ran = _stalled_native(monkeypatch)

    def interrupted(self, problem, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(cnn.solvers.get("clarabel")), "solve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        solve(problem, "auto")


@pytest.mark.parametrize("status, options", [
    (Status.INTERRUPTED, {}),  # the user pressed Ctrl-C: no other solver starts
    (Status.ITERATION_LIMIT, {"max_iter": 5}),  # the caller's own limit
    (Status.ITERATION_LIMIT, {"max_iters": 5}),  # ... in SCS's own name
    (Status.OPTIMAL_INACCURATE, {"time_limit": 60.0}),  # the caller's own clock
    # a width cap no conic back-end keeps to (Clarabel's 10 neurons replaced 5, silently)
    (Status.ITERATION_LIMIT, {"max_neurons": 5}),
    (Status.OPTIMAL_INACCURATE, {"max_neurons": 5}),
])
def test_no_second_opinion_after_a_stop_the_caller_asked_for(monkeypatch, status, options):
    problem, ran = _stalled_native(monkeypatch, status)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverStatusWarning)
        result, _, _ = solve(problem, "auto", options)
    assert ran == ["native"] and result.solver == "native"


def test_a_tiny_beta_is_certified_by_the_interior_point():
    """Dual infeasibility is measured against the cost (beta): measured in absolute
    terms, the interior point stopped 'converged' with a dual point 8% off at 1e-9 beta_max."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((100, 5)), rng.standard_normal(100)
    problem = cnn.make_problem(X, y, beta=cnn.beta_max(X, y) * 1e-9)
    result, _, output = solve(problem, "native")
    assert output.stats["engine"] == "ipm" and result.status == "optimal"


def test_an_oracle_that_overflows_certifies_only_the_zero_dual_point():
    """Activation (1e306, 0, 0): the oracle's sums overflow and its eigenvalues came out
    NaN, which the scaling read as 'feasible unscaled' -- a 'certified' lower bound of 1156
    above a network of objective 790 (and 459 for a better one). Dual points of 1e308
    crashed the oracle's eigensolver instead."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1000, 3)), 1.0 + rng.random(1000)
    activation = (1e306, 0.0, 0.0)
    t2 = X[:, 0] ** 2
    network = cnn.TwoLayerPolyNet(np.array([[1.0, 0.0, 0.0]]),
                                  np.array([(t2 @ y) / (t2 @ t2) / 1e306]), activation)
    objective = network.objective(X, y, beta=0.1)
    bound = cnn.lower_bound_from_dual(X, y, -y, beta=0.1, activation=activation)
    assert bound <= objective
    certificate = cnn.certify(network, X, y, beta=0.1)
    assert certificate.lower_bound <= objective and certificate.relative_gap > 0.5
    X, y = X[:20], rng.standard_normal(20)
    for huge in (1e308, -1e308):
        assert cnn.lower_bound_from_dual(X, y, np.full(20, huge), beta=0.1) <= 0.5 * y @ y


def test_the_certificate_covers_the_rounding_of_the_oracles_sums():
    """Features of scale 1e4 (a zero column), huber: the scaled dual point of a solve
    exceeded beta by 6.7e-6 relative in exact arithmetic -- the eigenvalue margin covered
    the sphere maximisation, nothing covered the rounding of the sums over samples."""
    X = np.array([[0.0, 2681.356044835186], [0.0, -9565.119515923316],
                  [0.0, 280.55402053512967], [0.0, 13337.404701787094]])
    y = np.array([[-0.22703181185738514, 0.8176877063292608],
                  [-0.8078346541049306, 0.3852992717230891],
                  [1.8083745465291263, 0.32684870438381985],
                  [1.7852604735787714, -1.3754142407748213]])
    beta, activation = 0.0008494862343120501, (0.5, 0.0, -1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the feature scale, and a certificate floor above tol
        result, _, _ = solve(cnn.make_problem(X, y, activation=activation, beta=beta,
                                              loss="huber"), "native")
    # max_u |sum_i v_i sigma(x_i^T u)| over the unit circle, in extended precision
    theta = np.linspace(0.0, np.pi, 2_000_001, dtype=np.longdouble)
    t = np.outer(X[:, 0].astype(np.longdouble), np.cos(theta)) + np.outer(
        X[:, 1].astype(np.longdouble), np.sin(theta))  # (n, grid)
    a, b, c = (np.longdouble(value) for value in activation)
    atoms = a * t * t + b * t + c
    dual = np.asarray(result.dual_point, dtype=np.longdouble)
    largest = max(float(np.abs(dual[:, k] @ atoms).max()) for k in range(dual.shape[1]))
    assert largest <= beta
    assert result.lower_bound <= result.objective


def test_a_tiny_objective_gets_a_relative_gap_not_a_free_pass():
    """Targets of scale 1e-10 make objectives of 1e-19: the gap's absolute floor (1e-12 in
    the denominator) certified any network, even the zero network a conic solver
    returned at 12.77 where the optimum is 11.29 (x 1e-20), as optimal."""
    from convexnn.solvers.certificate import relative_gap

    assert relative_gap(2e-20, 1e-20) == pytest.approx(0.5)
    assert relative_gap(0.0, 0.0) == 0.0
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), 1e-10 * rng.standard_normal(30)
    beta = 0.01 * cnn.beta_max(X, y)
    for solver in ("clarabel", "native"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = cnn.ConvexPolyRegressor(beta=beta, solver=solver).fit(X, y).result_
        gap = (result.objective - result.lower_bound) / result.objective
        assert result.relative_gap == pytest.approx(gap, rel=1e-9)
        optimal = result.relative_gap <= result.tol
        assert (result.status == "optimal") == optimal, solver
        assert any(issubclass(w.category, SolverStatusWarning) for w in caught) != optimal
    assert result.status == "optimal"  # the native solver certifies it, relatively
    assert result.objective == pytest.approx(11.2909e-20, rel=1e-4)


# -- review of the modelling API (helper-60) ---------------------------------------------


def _hinge_optimum():
    import convexnn as cnn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.sign(X[:, 0] + 0.3 * rng.normal(size=40))
    result, network, _ = cnn.solve(cnn.make_problem(X, y, beta=0.5, loss="hinge"), "clarabel")
    return X, y, result, network


def test_certify_warns_that_a_non_smooth_losss_own_bound_can_be_loose_at_the_optimum():
    """At the exact optimum of a hinge problem the network's subgradient certified a gap of
    0.69 while the docs called that bound tight; the solve's dual point certifies 1e-9."""
    import convexnn as cnn
    from convexnn.exceptions import ConvexNNWarning

    X, y, result, network = _hinge_optimum()
    with pytest.warns(ConvexNNWarning, match="hinge loss is not smooth.*tighten=True") \
            as caught:
        loose = cnn.certify(network, X, y, beta=0.5, loss="hinge")
    assert caught[0].filename == __file__ and loose.relative_gap > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tight = cnn.certify(network, X, y, beta=0.5, loss="hinge",
                            dual_points=[result.dual_point])
        smooth = cnn.certify(network, X, y, beta=0.5, loss="squared")  # no warning
    assert tight.relative_gap < 1e-6 and smooth.lower_bound <= smooth.objective


def test_tightening_that_stops_early_says_the_bound_is_valid_not_the_network_suboptimal():
    import convexnn as cnn
    from convexnn.exceptions import ConvexNNWarning

    X, y, _, network = _hinge_optimum()
    with pytest.warns(ConvexNNWarning, match="tighten: the solve for a dual point stopped"):
        certificate = cnn.certify(network, X, y, beta=0.5, loss="hinge", tighten=True,
                                  solver="clarabel", solver_options={"max_iter": 2})
    assert certificate.lower_bound <= certificate.objective


def test_neural_decomposition_warns_about_blocks_no_solve_gives():
    from convexnn.decomposition import neural_decomposition
    from convexnn.exceptions import ConvexNNWarning

    with pytest.warns(ConvexNNWarning, match=r"Z: trace\(Z\[:h, :h\]\) - Z\[h, h\] = 1, not 0"):
        neural_decomposition(np.eye(3))
    with pytest.warns(ConvexNNWarning, match="Z: not positive semidefinite"):
        assert neural_decomposition(-np.eye(3)).shape == (3, 0)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 2))
    Z = np.zeros((3, 3))
    for a in A:  # a solution's block: sum of p p^T with p^T G p = 0
        p = np.r_[a, np.linalg.norm(a)]
        Z += np.outer(p, p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = neural_decomposition(Z)
    np.testing.assert_allclose(P @ P.T, Z, atol=1e-12)


def test_nuclear_norm_program_checks_the_targets_as_make_problem_does():
    from convexnn.exceptions import ValidationError
    from convexnn.formulations import nuclear_norm_program

    X = np.random.default_rng(2).normal(size=(20, 3))
    for loss in ("logistic", "hinge"):
        with pytest.raises(ValidationError, match=r"needs targets in \{-1, \+1\}"):
            nuclear_norm_program(X, (X[:, 0] > 0).astype(float), beta=0.1, loss=loss)


def test_network_directions_of_extreme_scale_are_kept():
    from convexnn import TwoLayerPolyNet

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the norm of a row of 1e200s overflowed
        network = TwoLayerPolyNet(np.array([[1e200, 1e200], [1e-170, 0.0]]), np.ones(2),
                                  "quadratic")
    np.testing.assert_allclose(network.U, [[2 ** -0.5, 2 ** -0.5], [1.0, 0.0]])


def test_a_dual_point_of_the_wrong_shape_is_told_the_one_shape_it_may_have():
    import convexnn as cnn
    from convexnn.exceptions import ValidationError

    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 2))
    Y = np.where(np.eye(3)[rng.integers(0, 3, 30)] == 1, 1.0, -1.0)
    with pytest.raises(ValidationError, match=r"must have shape \(30, 3\) like the targets, "
                                              r"got \(30,\)"):
        cnn.lower_bound_from_dual(X, Y, np.ones(30), beta=0.1)


def test_bad_values_given_past_the_constructors_get_clear_errors():
    import dataclasses

    import convexnn as cnn
    from convexnn import TwoLayerPolyNet
    from convexnn.exceptions import ValidationError
    from convexnn.path import beta_grid
    from convexnn.solvers.base import Neurons

    X = np.random.default_rng(4).normal(size=(20, 3))
    problem = cnn.make_problem(X, X[:, 0], beta=0.1)
    for beta in (float("nan"), "0.1"):  # a NaN objective and a raw TypeError before
        with pytest.raises(ValidationError, match="beta must be a finite non-negative"):
            cnn.solve(dataclasses.replace(problem, beta=beta))
    for top in ("1", None, -1.0):
        with pytest.raises(ValidationError, match="top must be a number >= 0"):
            beta_grid(top)
    neurons = Neurons(U=np.eye(3)[:2], alpha=np.ones(2), blocks=np.array([0, 5]))
    with pytest.raises(ValidationError, match=r"neuron blocks must be in \[0, 2\)"):
        TwoLayerPolyNet.from_neurons(neurons, n_regions=1, n_outputs=2, single_output=False,
                                     activation="quadratic")
    with pytest.raises(ValidationError, match="single_output=True needs n_outputs=1"):
        TwoLayerPolyNet.from_neurons(Neurons(U=np.eye(3)[:2], alpha=np.ones(2),
                                             blocks=np.array([0, 1])),
                                     n_regions=1, n_outputs=2, single_output=True,
                                     activation="quadratic")
    with pytest.raises(ValidationError, match="remove or impute them$"):
        cnn.lower_bound_from_dual(X, X[:, 0], np.full(20, np.nan), beta=0.1)


def test_an_empty_block_of_a_solution_is_judged_against_the_largest_block():
    """A solution's empty block is rounding noise of its own size: alone it fails the
    checks, beside the solution's real block it does not; every problem of a call is
    named in one warning."""
    from convexnn.decomposition import decompose_blocks, neural_decomposition
    from convexnn.exceptions import ConvexNNWarning

    rng = np.random.default_rng(5)
    Z = np.zeros((3, 3))
    for a in rng.normal(size=(3, 2)):
        p = np.r_[a, np.linalg.norm(a)]
        Z += np.outer(p, p)
    noise = 1e-14 * rng.normal(size=(3, 3))
    noise = noise + noise.T
    with pytest.warns(ConvexNNWarning, match="Z: not positive semidefinite"):
        neural_decomposition(noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neurons = decompose_blocks([(Z, noise)])
    assert len(neurons.alpha) >= 1
    with pytest.warns(ConvexNNWarning) as caught:
        decompose_blocks([(-Z, Z), (Z, -Z)])
    assert len(caught) == 1
    assert re.search(r"blocks\[0\]\[0\].*blocks\[1\]\[1\]", str(caught[0].message))


def test_at_beta_0_certify_gives_the_solves_reason_not_its_own_advice():
    """At beta = 0 no gap can be certified: the tightening solve's status warning says
    so, and no advice to tighten is given."""
    import convexnn as cnn
    from convexnn.exceptions import ConvexNNWarning, SolverStatusWarning

    X, y, _, network = _hinge_optimum()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cnn.certify(network, X, y, beta=0.0, loss="hinge")
        cnn.certify(network, X, y, beta=0.0, loss="hinge", tighten=True, solver="clarabel")
    messages = [str(w.message) for w in caught]
    assert not any("tighter one" in m or "tighten:" in m for m in messages), messages
    assert any(issubclass(w.category, SolverStatusWarning) and "beta" in str(w.message)
               for w in caught), messages
    assert all(issubclass(w.category, (ConvexNNWarning, SolverStatusWarning))
               for w in caught)

"""The exact oracle's trust-region subproblem, checked by the optimality conditions."""

from __future__ import annotations

import numpy as np
import pytest

from convexnn.solvers.certificate import sphere_quadratic_max


def random_instances(count: int, h: int = 14, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        A = rng.normal(size=(h, h))
        Q = A + A.T
        # Linear terms from 1e-3 to 1e3 of the quadratic's scale: small ones put the root
        # of the secular equation next to its pole at the top eigenvalue.
        q = rng.normal(size=h) * 10 ** rng.uniform(-3, 3)
        yield Q, q
        yield -Q, -q
        # Nearly the hard case: q almost orthogonal to the top eigenvector and short, so
        # the root sits 1e-13 above the pole (dual points near the optimum give these).
        mu, V = np.linalg.eigh(Q)
        top = V[:, -1]
        q = 0.1 * (mu[-1] - mu[-2]) * rng.normal(size=h) / np.sqrt(h)
        yield Q, q - (q @ top) * top + 1e-12 * np.abs(mu).max() * top


def ascended(Q: np.ndarray, q: np.ndarray, u: np.ndarray, steps: int = 100) -> float:
    """The objective after projected gradient ascent from ``u``: a lower bound on the
    maximum, computed independently of the secular equation."""
    step = 0.5 / max(np.abs(np.linalg.eigvalsh(Q)).max(), 1e-300)
    for _ in range(steps):
        u = u + step * (2 * Q @ u + q)
        u /= np.linalg.norm(u)
    return float(u @ Q @ u + q @ u)


@pytest.mark.parametrize("seed", [0, 1])
def test_sphere_maximum_is_bracketed_tightly(seed):
    """``value`` is the objective at a unit ``direction`` and ``upper`` (the dual function
    at the secular equation's root, valid at any ``lam > lambda_max``) lies above every
    point ascent finds and within rounding of ``value`` (2.7e-10 relative at worst here,
    in the nearly hard cases). Near the secular equation's
    pole Newton overshoots its bracket: the secant steps, the stop at a bracket's end and
    the geometric bisection handle it."""
    for Q, q in random_instances(100, seed=seed):
        mu, V = np.linalg.eigh(Q)
        found = sphere_quadratic_max(mu, V, q)
        u = found.direction
        scale = max(np.abs(mu).max(), np.linalg.norm(q))
        assert abs(np.linalg.norm(u) - 1) <= 1e-12
        assert found.value == pytest.approx(u @ Q @ u + q @ u, rel=1e-12, abs=1e-12 * scale)
        assert found.value <= found.upper <= found.value + 1e-9 * scale
        starts = [u, V[:, -1], -V[:, -1], q / max(np.linalg.norm(q), 1e-300)]
        assert max(ascended(Q, q, start) for start in starts) <= found.upper


@pytest.mark.parametrize("loss_name", ["squared", "logistic", "cross-entropy", "huber"])
def test_dual_bound_is_the_best_on_its_feasible_segment(loss_name):
    """The bound maximises ``-conjugate(t v)`` over the feasible ``t`` (both signs): it is
    searched only on the side where that concave function rises from 0, which must find
    the same maximum as a dense grid over the whole segment."""
    import torch

    from convexnn import make_problem
    from convexnn.losses import get_loss
    from convexnn.solvers.certificate import dual_bound

    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    outputs = 3 if loss_name == "cross-entropy" else 1
    if loss_name == "cross-entropy":
        y = np.eye(3)[rng.integers(0, 3, 30)]
    elif loss_name == "logistic":
        y = np.where(X[:, 0] > 0, 1.0, -1.0)
    else:
        y = X[:, 0] ** 2
    problem = make_problem(X, y, beta=0.5, loss=loss_name)
    loss = get_loss(loss_name)
    targets = torch.as_tensor(problem.targets)
    for trial in range(6):
        yhat = torch.as_tensor(rng.normal(size=(30, outputs)) * (trial + 1))
        # The gradient rises along +t; its negative (trial odd) along -t.
        v = loss.gradient(yhat, targets) * (1 if trial % 2 == 0 else -1)
        bound = dual_bound(problem.patches, problem.targets, v, problem.coefficients,
                           problem.beta, loss)
        projected = loss.project_dual(v, targets)
        # (a dual point projected to 0, e.g. a sign-flipped logistic gradient: t_max = 1)
        t_max = problem.beta / bound.constraint if bound.constraint > 0 else 1.0
        grid = np.linspace(-t_max, t_max, 4001)
        values = [-float(loss.conjugate(t * projected, targets)) for t in grid]
        best = max(value for value in values if np.isfinite(value))
        assert bound.lower_bound >= best - 1e-9 * max(abs(best), 1.0), (trial, loss_name)
        assert bound.lower_bound <= max(best, -float(loss.conjugate(
            bound.scale * projected, targets))) + 1e-12
        assert abs(bound.scale) <= t_max * (1 + 1e-12)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_sphere_maximum_scales_with_its_data_without_underflow():
    """At scale 1e-300 squared eigenvalue gaps underflowed: 0 / 0 warnings (from
    beta_max of targets of 1e-300, or a logistic fit at beta 1e-300) and a hard-case test
    decided by NaN; at 1e160 the scale, ``||q||``, overflowed (value NaN)."""
    for Q, q in random_instances(20, seed=4):
        mu, V = np.linalg.eigh(Q)
        unit = sphere_quadratic_max(mu, V, q)
        for factor in (1e-300, 1e160):
            scaled = sphere_quadratic_max(factor * mu, V, factor * q)
            assert scaled.value == pytest.approx(factor * unit.value, rel=1e-9, abs=1e-12 * factor)
            assert scaled.upper == pytest.approx(factor * unit.upper, rel=1e-9, abs=1e-12 * factor)


@pytest.mark.parametrize("ratio", [3e10, 1e11])
def test_the_bound_is_found_on_a_segment_a_trillion_times_longer_than_its_maximiser(ratio):
    """At beta = 1e11 beta_max the feasible segment of the zero network's dual point runs
    to t = 1e11 while the best t is 1: Brent's tolerance, relative to the segment, missed
    it and the bound fell to 0 (a certified gap of 1 for the optimal zero network)."""
    import warnings

    import convexnn as cnn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X[:, 0] ** 2 + 0.1 * rng.normal(size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cnn.SolverStatusWarning)
        result = cnn.ConvexPolyRegressor(solver="native", beta=ratio * cnn.beta_max(X, y)).fit(
            X, y).result_
    assert result.status == "optimal" and result.n_neurons == 0
    assert result.lower_bound == pytest.approx(0.5 * float(y @ y), rel=1e-12)


@pytest.mark.parametrize("n, regions, pool, h, outputs", [(15, 1, 1, 300, 1), (6, 2, 3, 80, 2)])
def test_the_oracle_on_wide_data_is_solved_in_the_patches_span(monkeypatch, n, regions, pool,
                                                               h, outputs):
    """Fewer patches than features: the eigenproblems were h x h (3001 x 3001 took
    seconds each, 20 s of certificates after a 0.3 s solve); in the span of the m
    patches, with one coordinate for the rest of the sphere, they are (m + 1) x (m + 1)
    and give the same maximum."""
    import torch

    from convexnn.solvers import certificate

    rng = np.random.default_rng(0)
    patches = rng.normal(size=(n, regions, pool, h))
    patches[-1] = patches[0]  # a repeated sample: patches of lower rank than their count
    v = rng.normal(size=(n, outputs))
    coefficients = (0.09, 0.5, 0.47)
    sizes = []
    eigh = torch.linalg.eigh

    def recording(matrices):
        sizes.append(matrices.shape[-1])
        return eigh(matrices)

    monkeypatch.setattr(torch.linalg, "eigh", recording)
    reduced = certificate.dual_oracle(patches, v, coefficients)
    assert sizes == [n * regions * pool + 1]
    # A data-parallel reduction (each rank holds its own patches) keeps all h features
    certificate.dual_oracle(patches, v, coefficients, reduce=lambda part: part)
    assert sizes[-1] == h
    monkeypatch.setattr(certificate, "_patch_span", lambda patches: None)
    full = certificate.dual_oracle(patches, v, coefficients)
    assert sizes[-1] == h
    # The same maximum, and bounds above it (by their rounding margins alone)
    np.testing.assert_allclose(reduced.values, full.values, rtol=1e-12)
    assert np.all(reduced.bounds >= full.values)
    np.testing.assert_allclose(reduced.bounds, full.bounds, rtol=1e-10)
    # Its directions are unit neurons of the original features that attain the values
    np.testing.assert_allclose(np.linalg.norm(reduced.directions, axis=1), 1.0, atol=1e-12)
    a, b, c = coefficients
    for block, direction in enumerate(reduced.directions):
        region, output = divmod(block, outputs)
        t = patches[:, region] @ direction
        value = v[:, output] @ (a * t**2 + b * t + c).mean(axis=1)
        assert abs(value) == pytest.approx(reduced.values[block], rel=1e-10)


@pytest.mark.parametrize("loss", ["squared", "logistic", "l1"])
def test_a_dual_point_gives_its_bound_at_any_moderate_scale_and_stays_in_the_domain(loss):
    """The scale search worked near t = 1 with a cap of t <= 1e12: a squared-loss point
    1e-13 times the optimal one gave 0.28 of the bound. And the certificate's l1 point
    had max |v| = 1 + 1e-12, +inf to an exact conjugate."""
    import convexnn as cnn

    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 3))
    y = rng.choice([-1.0, 1.0], size=12) if loss == "logistic" else rng.normal(size=12)
    result, _, _ = cnn.solve(cnn.make_problem(X, y, beta=0.5, loss=loss), "clarabel")
    point = result.dual_point[:, 0]
    for scale in (1e-13, 1e-6, 1.0):
        assert cnn.lower_bound_from_dual(X, y, scale * point, beta=0.5, loss=loss) == (
            pytest.approx(result.lower_bound, rel=1e-8))
    if loss == "l1":
        assert np.abs(point).max() <= 1.0
    if loss == "logistic":
        assert np.all(point * y <= 0) and np.all(point * y >= -1)


def test_a_dual_point_with_a_zero_constraint_keeps_its_full_length():
    """Features all zero: the oracle's constraint is 0 and the whole of t in [0, 1] is
    feasible for the point as given. Counted in units of its largest entry (2 here) the
    segment was cut at half of it: a bound of 3.75 for an optimum of 5."""
    import convexnn as cnn

    X, y = np.zeros((4, 3)), np.array([1.0, -1.0, 2.0, -2.0])
    result, _, _ = cnn.solve(cnn.make_problem(X, y, beta=0.1, activation="quadratic"),
                             "native")
    assert result.status == "optimal" and result.relative_gap == 0.0
    assert result.lower_bound == pytest.approx(5.0)

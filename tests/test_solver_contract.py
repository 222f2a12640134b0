"""The contract every solver back-end keeps, run against each usable one.

The back-ends are read from the registry at collection time, so a new
built-in (``native``) or an installed plug-in is tested without touching
this file. Problems a back-end reports unsupported (``unsupported_reason``)
are skipped with that reason. Each back-end gets the options of
``conftest.TIGHT_OPTIONS`` when it has an entry there, else its defaults.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import convexnn
import convexnn.solvers._memory
from conftest import (
    onehot_targets,
    planted_conv_teacher,
    planted_teacher,
    relative_difference,
    solve_checked,
    tight_options,
    usable_solvers,
)
from convexnn import solvers
from convexnn._solve import solve
from convexnn.formulations import make_conv_problem, make_problem
from convexnn.solvers.base import ProblemShape, SolverOutput, Status

BACKENDS = usable_solvers()
REFERENCE_SOLVER = "clarabel" if "clarabel" in BACKENDS else "scs"


def _scalar():
    t = planted_teacher(n=40, d=5, seed=51)
    return make_problem(t.X, t.y, beta=0.1)


def _vector():
    t = planted_teacher(n=30, d=4, n_outputs=3, seed=52)
    return make_problem(t.X, onehot_targets(t), beta=0.1, loss="cross-entropy")


def _conv():
    images, y, geometry, _ = planted_conv_teacher(n=30, filter_size=2, pool_size=2, seed=53)
    return make_conv_problem(images, np.where(y > np.median(y), 1.0, -1.0), geometry,
                             beta=0.1, loss="hinge")


def _conv_global():
    images, y, geometry, _ = planted_conv_teacher(n=30, filter_size=2, seed=54)
    return make_conv_problem(images, y, geometry, beta=0.1, loss="huber")


PROBLEMS = {
    "scalar-squared": _scalar(),
    "vector-cross-entropy": _vector(),
    "conv-2x2-hinge": _conv(),
    "conv-global-huber": _conv_global(),
}
_references: dict[str, float] = {}


def reference_objective(name: str) -> float:
    if name not in _references:
        result, _, _ = solve_checked(PROBLEMS[name], REFERENCE_SOLVER)
        _references[name] = result.objective
    return _references[name]


def supported(backend: str, name: str):
    problem = PROBLEMS[name]
    reason = solvers.get(backend).unsupported_reason(problem)
    if reason is not None:
        pytest.skip(reason)
    return problem


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_solves_small_planted_problem_to_optimality(backend, name):
    """Optimal on the scalar problem; on the others "optimal_inaccurate" is allowed
    (Clarabel at its 1e-8 gap target) if it is reported with a warning."""
    problem = supported(backend, name)
    if name == "scalar-squared":
        result, network, output = solve(problem, backend, tight_options(backend))
        assert result.status == Status.OPTIMAL.value and result.optimal
    else:
        result, network, output = solve_checked(problem, backend, tight_options(backend))
    assert result.solver == backend
    assert relative_difference(result.objective, reference_objective(name)) <= 1e-4
    assert relative_difference(result.solver_objective, result.objective) <= 1e-4
    # Certified independently of the back-end's own claims.
    assert result.lower_bound <= result.objective + 1e-9 * abs(result.objective)
    assert 0 <= result.relative_gap + 1e-9 and result.relative_gap <= 1e-4
    assert result.solve_time > 0
    assert result.iterations is None or result.iterations > 0
    assert result.n_neurons == network.n_neurons > 0
    assert isinstance(output, SolverOutput)


def test_solver_output_shapes(backend):
    conv = [n for n in PROBLEMS if n.startswith("conv")]
    usable = [n for n in conv if solvers.get(backend).unsupported_reason(PROBLEMS[n]) is None]
    problem = supported(backend, (usable or conv)[0])
    output = solvers.get(backend).solve(problem, **tight_options(backend))
    shape = ProblemShape.of(problem)
    assert output.status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE)
    assert (output.blocks is None) != (output.neurons is None), "exactly one of blocks / neurons"
    if output.blocks is not None:
        assert len(output.blocks) == shape.n_blocks
        for z_pos, z_neg in output.blocks:
            assert z_pos.shape == z_neg.shape == (shape.patch_size + 1,) * 2
            assert np.all(np.isfinite(z_pos)) and np.all(np.isfinite(z_neg))
    else:
        neurons = output.neurons
        np.testing.assert_allclose(np.linalg.norm(neurons.U, axis=1), 1.0, rtol=1e-9)
        assert neurons.U.shape[1] == shape.patch_size
        assert len(neurons.alpha) == len(neurons.blocks) == len(neurons.U)
        assert neurons.blocks.min() >= 0 and neurons.blocks.max() < shape.n_blocks
    if output.dual_point is not None:
        assert output.dual_point.shape == (shape.n_samples, shape.n_outputs)
    assert np.isfinite(output.objective)


def test_unknown_option_is_rejected(backend):
    problem = PROBLEMS["scalar-squared"]
    with pytest.raises(
        convexnn.InvalidSolverOptionError, match="definitely_not_an_option"
    ) as caught:
        solve(problem, backend, {"definitely_not_an_option": 1})
    assert "accepted:" in str(caught.value) and "tol" in str(caught.value)
    assert isinstance(caught.value, solvers.errors.InvalidSolverOptionError)


@pytest.mark.parametrize(
    "option, value",
    [
        ("tol", -1e-6),
        ("tol", 0.0),
        ("tol", 2.0),
        ("tol", "tight"),
        ("tol", float("nan")),
        ("max_iter", 0),
        ("max_iter", 2.5),
        ("max_iter", True),
        ("time_limit", -1.0),
        ("time_limit", float("inf")),
        ("verbose", "yes"),
    ],
)
def test_bad_option_values_are_rejected(backend, option, value):
    with pytest.raises(convexnn.InvalidSolverOptionError, match=f"'{option}'"):
        solve(PROBLEMS["scalar-squared"], backend, {option: value})


def test_iteration_limit_is_reported_never_hidden(backend):
    problem = PROBLEMS["scalar-squared"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", convexnn.SolverStatusWarning)
        try:
            result, _, _ = solve(problem, backend, {"max_iter": 2})
        except convexnn.SolverFailedError as error:
            # Allowed when the back-end returns no point at all.
            assert backend in str(error)
            return
    status_warnings = [w for w in caught if issubclass(w.category, convexnn.SolverStatusWarning)]
    assert len(status_warnings) == 1
    assert result.status != Status.OPTIMAL.value and not result.optimal
    assert result.status in {s.value for s in Status if s.has_solution}
    message = str(status_warnings[0].message)
    assert f"stopped with status {result.status!r}" in message
    # Still a certified, honest result: the gap says how far from optimal it may be.
    assert f"{result.relative_gap:.2e}" in message
    reference = reference_objective("scalar-squared")
    assert result.lower_bound <= reference * (1 + 1e-6)
    assert result.objective >= reference * (1 - 1e-6)


def test_memory_guard_refuses_problems_that_do_not_fit(backend, monkeypatch):
    problem = PROBLEMS["scalar-squared"]
    monkeypatch.setattr(solvers._memory, "available_memory", lambda: 100)
    with pytest.raises(convexnn.ProblemTooLargeError) as caught:
        solve(problem, backend, tight_options(backend))
    message = str(caught.value)
    assert re.search(r"\d+(\.\d+)? ?(B|kB|MB|GB|TB)\b", message), f"no size in: {message}"
    assert isinstance(caught.value, MemoryError)
    assert isinstance(caught.value, solvers.errors.ProblemTooLargeError)


def test_verbose_false_is_quiet(backend, capfd):
    solve(PROBLEMS["scalar-squared"], backend, dict(tight_options(backend), verbose=False))
    out, _ = capfd.readouterr()
    assert out == ""


def test_an_out_of_memory_back_end_gets_advice_that_fits_it(backend, monkeypatch):
    """A MemoryError inside a back-end becomes ProblemTooLargeError; native is not told to
    use native."""
    def out_of_memory(self, problem, **options):
        raise MemoryError

    monkeypatch.setattr(type(solvers.get(backend)), "solve", out_of_memory)
    with pytest.raises(convexnn.ProblemTooLargeError, match="out of memory") as caught:
        solve(PROBLEMS["scalar-squared"], backend)
    advice = "dtype='float32'" if backend == "native" else "use solver='native'"
    assert advice in str(caught.value)


def test_conic_memory_advice_suggests_native_only_for_a_loss_it_takes(monkeypatch):
    # the native solver refuses the hinge loss, so it is suggested with a smooth loss instead
    if not solvers.info("clarabel").usable:
        pytest.skip("clarabel is not installed")
    monkeypatch.setattr(solvers._memory, "available_memory", lambda: 100)
    with pytest.raises(convexnn.ProblemTooLargeError, match="use a smooth loss"):
        solve(PROBLEMS["conv-2x2-hinge"], "clarabel")
    with pytest.raises(convexnn.ProblemTooLargeError, match="or use solver='native'"):
        solve(PROBLEMS["scalar-squared"], "clarabel")

    def out_of_memory(self, problem, **options):
        raise MemoryError

    monkeypatch.setattr(type(solvers.get("clarabel")), "solve", out_of_memory)
    with pytest.raises(convexnn.ProblemTooLargeError, match="use a smooth loss"):
        solve(PROBLEMS["conv-2x2-hinge"], "clarabel")

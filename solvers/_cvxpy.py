"""Shared machinery of the conic back-ends that go through cvxpy.

Each conic back-end is one small subclass of :class:`CvxpySolver`: the cvxpy
solver name, how to probe it, how the common options translate to its own,
and how much memory it needs per nonzero of the problem data.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from convexnn.solvers._memory import ensure_fits
from convexnn.solvers.base import ProblemShape, SDPProblem, Solver, SolverOutput, Status
from convexnn.solvers.errors import InvalidSolverOptionError, SolverFailedError

logger = logging.getLogger("convexnn")

#: cvxpy's status strings (it normalises every back-end's own codes to these).
_CVXPY_STATUS: Mapping[str, Status] = {
    "optimal": Status.OPTIMAL,
    "optimal_inaccurate": Status.OPTIMAL_INACCURATE,
    "infeasible": Status.INFEASIBLE,
    "infeasible_inaccurate": Status.INFEASIBLE,
    "unbounded": Status.UNBOUNDED,
    "unbounded_inaccurate": Status.UNBOUNDED,
    "infeasible_or_unbounded": Status.INFEASIBLE,
    "user_limit": Status.ITERATION_LIMIT,
    "solver_error": Status.FAILED,
}


#: Messages of back-end exceptions that mean an option value was refused.
_BAD_SETTING = re.compile(
    r"bad settings|bad value for field|incorrect type for setting|must be (a )?(bool|"
    r"nonnegative|positive|in \(|an int)|cannot be interpreted as an integer|argument \d+ "
    r"must be|unexpected keyword",
    re.IGNORECASE,
)

OptionCheck = tuple[str, Callable[[Any], bool]]


def _real(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
    )


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


#: Reusable value checks for back-end options: (what is expected, test).
BOOL: OptionCheck = ("a bool", lambda v: isinstance(v, (bool, np.bool_)))
POSITIVE: OptionCheck = ("a positive number", lambda v: _real(v) and v > 0)
NON_NEGATIVE: OptionCheck = ("a non-negative number", lambda v: _real(v) and v >= 0)
POSITIVE_INT: OptionCheck = ("a positive int", lambda v: _integer(v) and v > 0)
NON_NEGATIVE_INT: OptionCheck = ("a non-negative int", lambda v: _integer(v) and v >= 0)
STRING: OptionCheck = ("a string", lambda v: isinstance(v, str))
MAPPING: OptionCheck = ("a dict", lambda v: isinstance(v, Mapping))


def one_of(*choices: Any) -> OptionCheck:
    return (f"one of {', '.join(map(repr, choices))}", lambda v: v in choices)


def in_interval(low: float, high: float, *, closed_high: bool = False) -> OptionCheck:
    bracket = "]" if closed_high else ")"
    return (
        f"a number in ({low:g}, {high:g}{bracket}",
        lambda v: _real(v) and low < v and (v <= high if closed_high else v < high),
    )


def problem_nonzeros(shape: ProblemShape) -> int:
    """Nonzeros of the conic data: every prediction touches a full block per region."""
    side = shape.n_features + 1
    return shape.n_samples * shape.n_outputs * shape.n_regions * side * side


def lifted_feature_bytes(shape: ProblemShape) -> int:
    """Bytes of the pooled lifted features the formulation materialises."""
    side = shape.n_features + 1
    return 8 * shape.n_samples * shape.n_regions * side * (side + 1) // 2


class CvxpySolver(Solver):
    """A conic back-end reached through ``cvxpy.Problem.solve(solver=...)``."""

    cvxpy_name: ClassVar[str]
    #: Peak bytes per nonzero of the conic data (measured, see benchmarks/).
    bytes_per_nonzero: ClassVar[int] = 400
    #: Value checks of back-end specific options (name -> (expected, test)).
    native_option_checks: ClassVar[Mapping[str, OptionCheck]] = {}

    def check_options(self, options: Mapping[str, Any]) -> None:
        """The common checks, then the back-end's own option values."""
        super().check_options(options)
        for key, (expected, test) in self.native_option_checks.items():
            if key in options and not test(options[key]):
                raise InvalidSolverOptionError(
                    f"{self.name} option {key!r} must be {expected}, got {options[key]!r}"
                )

    def is_installed(self) -> bool:
        if not super().is_installed():
            return False
        try:
            import cvxpy as cp
        except ImportError:  # pragma: no cover - cvxpy is a hard dependency
            return False
        return self.cvxpy_name in cp.installed_solvers()

    def estimate_memory(self, problem: SDPProblem) -> int:
        shape = ProblemShape.of(problem)
        return self.bytes_per_nonzero * problem_nonzeros(shape) + 2 * lifted_feature_bytes(
            shape
        )

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Map :data:`convexnn.solvers.base.COMMON_OPTIONS` to this back-end's names."""
        return {key: value for key, value in options.items() if key != "verbose"}

    def solve(
        self,
        problem: SDPProblem,
        *,
        warm_start: SolverOutput | None = None,
        **options: Any,
    ) -> SolverOutput:
        """Build the cvxpy problem, solve it and read back the blocks.

        ``warm_start`` is ignored: cvxpy only warm-starts a problem object it
        has solved before, and every call builds a new one.
        """
        self.check_options(options)
        shape = ProblemShape.of(problem)
        ensure_fits(
            self.estimate_memory(problem),
            f"the {self.name} solve of this problem (n={shape.n_samples}, "
            f"h={shape.n_features}, {shape.n_blocks} PSD block pair(s))",
            "Use solver='native', which never forms the lifted problem, or "
            "subsample the data.",
        )
        start = time.perf_counter()
        program = problem.to_cvxpy()
        build_time = time.perf_counter() - start
        solver_kwargs = self.translate_options(options)
        logger.info("%s: solving %s SDP with %s", self.name, shape.variant, solver_kwargs)
        try:
            with warnings.catch_warnings():
                # cvxpy warns on inaccurate solutions; convexnn reports the status itself.
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                program.problem.solve(
                    solver=self.cvxpy_name,
                    verbose=bool(options.get("verbose", False)),
                    **solver_kwargs,
                )
        except Exception as error:  # every back-end raises its own types
            if _BAD_SETTING.search(str(error)):
                raise InvalidSolverOptionError(
                    f"{self.name} refused its options {solver_kwargs}: "
                    f"{type(error).__name__}: {error}"
                ) from error
            raise SolverFailedError(
                f"{self.name} failed on the {shape.variant} SDP "
                f"(n={shape.n_samples}, h={shape.n_features}): "
                f"{type(error).__name__}: {error}"
            ) from error
        elapsed = time.perf_counter() - start
        stats = program.problem.solver_stats
        status = self.map_status(program.problem.status, stats, options)
        blocks = None
        dual_point = None
        if status.has_solution:
            blocks = [
                (np.asarray(z.value, dtype=float), np.asarray(z_neg.value, dtype=float))
                for z, z_neg in program.blocks
            ]
            if program.link.dual_value is not None:
                dual_point = -np.asarray(program.link.dual_value, dtype=float).reshape(
                    shape.n_samples, shape.n_outputs
                )
        value = program.problem.value
        return SolverOutput(
            status=status,
            objective=float(value) if value is not None and np.isfinite(value) else float("nan"),
            iterations=stats.num_iters,
            solve_time=elapsed,
            blocks=blocks,
            dual_point=dual_point,
            message=f"cvxpy status {program.problem.status!r}",
            stats={
                "cvxpy_status": program.problem.status,
                "build_time": build_time,
                "setup_time": stats.setup_time,
                "solver_time": stats.solve_time,
                "extra": stats.extra_stats,
            },
        )

    def map_status(
        self, cvxpy_status: str, stats: Any, options: Mapping[str, Any]
    ) -> Status:
        """Normalise cvxpy's status; a user limit is told apart by elapsed time."""
        status = _CVXPY_STATUS.get(cvxpy_status, Status.FAILED)
        limit = options.get("time_limit")
        if status is Status.ITERATION_LIMIT and limit is not None:
            spent = stats.solve_time or 0.0
            if spent >= 0.9 * limit:
                return Status.TIME_LIMIT
        return status

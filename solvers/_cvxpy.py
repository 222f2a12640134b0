"""Shared machinery of the conic back-ends that go through cvxpy.

Each conic back-end is one small subclass of :class:`CvxpySolver`: the cvxpy
solver name, how to probe it, the cones it supports, how the common options
translate to its own, and how much memory it needs per nonzero of the
problem data. The cvxpy model itself is built by :mod:`._conic_model`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from convexnn.solvers._checks import without_unset
from convexnn.solvers._conic_model import (
    build_program,
    is_large,
    lifted_feature_bytes,
    problem_nonzeros,
)
from convexnn.solvers._memory import ensure_fits, lifted_problem_advice
from convexnn.solvers._warnings import ignoring
from convexnn.solvers.base import (
    ConicLoss,
    LossNeed,
    ProblemShape,
    SDPProblem,
    Solver,
    SolverOutput,
    Status,
)
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


@functools.cache
def _imports(package: str) -> bool:
    """Whether ``package`` imports: cvxpy's own test of a back-end, made here without
    importing cvxpy, which costs 0.3-0.6 s (more than a small solve) in a process
    where ``auto`` then picks the native solver."""
    try:
        importlib.import_module(package)
    except Exception:  # noqa: BLE001 - as cvxpy's own probe: any failure is "not installed"
        return False
    return True


class CvxpySolver(Solver):
    """A conic back-end reached through ``cvxpy.Problem.solve(solver=...)``."""

    cvxpy_name: ClassVar[str]
    #: Cones the back-end takes through cvxpy besides equalities (names as in
    #: :class:`~convexnn.solvers.base.ConicLoss`).
    cones: ClassVar[frozenset[str]] = frozenset({"nonneg", "soc", "exp", "pow", "psd"})
    #: Peak bytes per nonzero of the conic data (measured, see benchmarks/).
    bytes_per_nonzero: ClassVar[int] = 400
    #: Peak bytes per entry of a dense ``svec x svec`` matrix per PSD cone: what an
    #: interior point forms and factors for each cone (grows as ``h^4``; measured for
    #: Clarabel and CVXOPT: 45-100, so h = 120 took 6.5 GB against an estimate of 0.6).
    dense_cone_bytes: ClassVar[int] = 0
    #: Peak bytes per entry of a dense ``n x n`` matrix (CVXOPT's dense KKT solves).
    dense_sample_bytes: ClassVar[int] = 0
    #: ``auto``'s rank for conic data above
    #: :data:`~convexnn.solvers._conic_model.LARGE_CONIC_NONZEROS`.
    large_problem_priority: ClassVar[int] = 1
    #: ``tol`` bounds the certified gap of the *decomposed network*, which sits
    #: above the back-end's own gap measure (decomposition residuals, another
    #: gap definition): the back-end is asked for this fraction of it. For an
    #: interior-point method a tenth costs one or two iterations.
    tol_fraction: ClassVar[float] = 0.1

    def backend_tol(self, options: Mapping[str, Any]) -> float | None:
        """The accuracy handed to the back-end when the caller set ``tol``, else None."""
        return self.tol_fraction * float(options["tol"]) if "tol" in options else None

    def loss_needs(self) -> tuple[LossNeed, ...]:
        """A cvxpy expression of the loss, in cones this back-end supports."""
        return (
            (
                "a cvxpy expression with its cones declared (cvxpy, cones)",
                lambda loss: isinstance(loss, ConicLoss),
            ),
            (
                f"cones among {', '.join(sorted(self.cones))}",
                lambda loss: not isinstance(loss, ConicLoss) or loss.cones <= self.cones,
            ),
        )

    def auto_priority(self, problem: SDPProblem) -> int:
        """``large_problem_priority`` on large conic data, else the default."""
        if is_large(problem):
            return self.large_problem_priority
        return super().auto_priority(problem)

    def is_installed(self) -> bool:
        return importlib.util.find_spec("cvxpy") is not None and _imports(self.package)

    def install_command(self) -> str:
        missing = [package for package in ("cvxpy", self.package)
                   if importlib.util.find_spec(package) is None]
        return f"pip install {' '.join(missing or [self.package])}"

    def estimate_memory(self, problem: SDPProblem) -> int:
        shape = ProblemShape.of(problem)
        svec = (shape.patch_size + 1) * (shape.patch_size + 2) // 2
        cones = 2 * shape.n_blocks
        return (
            self.bytes_per_nonzero * problem_nonzeros(shape)
            + 2 * lifted_feature_bytes(shape)
            + self.dense_cone_bytes * cones * svec * svec
            + self.dense_sample_bytes * shape.n_samples * shape.n_samples
        )

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The back-end specific options; subclasses add the common ones under their own
        names (:data:`convexnn.solvers.base.COMMON_OPTIONS`)."""
        return {key: value for key, value in options.items() if key in self.native_options}

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
        options = without_unset(options)
        self.check_options(options)
        # Imported before the memory check: under an address-space limit (RLIMIT_AS) the
        # libraries cvxpy loads count against the room the check sees.
        import cvxpy  # noqa: F401

        shape = ProblemShape.of(problem)
        ensure_fits(
            self.estimate_memory(problem),
            f"the {self.name} solve of this problem (n={shape.n_samples}, "
            f"h={shape.patch_size}, {shape.n_blocks} PSD block pair(s))",
            lifted_problem_advice(problem.loss),
        )
        start = time.perf_counter()
        program = build_program(problem)
        build_time = time.perf_counter() - start
        if options.get("time_limit") is not None:
            # Building the model counts against the limit (cvxpy's compilation and the
            # back-end's own set-up cannot be bounded; the README says so).
            options = dict(options, time_limit=max(float(options["time_limit"]) - build_time,
                                                   0.01))
        solver_kwargs = self.translate_options(options)
        logger.info("%s: solving %s SDP with %s", self.name, shape.variant, solver_kwargs)
        try:
            # cvxpy warns on inaccurate solutions; convexnn reports the status itself.
            # cvxpy attributes it to the first frame outside cvxpy: this module.
            with ignoring(UserWarning, "Solution may be inaccurate", module=r"convexnn\.solvers\."):
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
                f"(n={shape.n_samples}, h={shape.patch_size}): "
                f"{type(error).__name__}: {str(error).rstrip('.')}{self.failure_hint(options)}"
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

    def failure_hint(self, options: Mapping[str, Any]) -> str:
        """What to add to the message of a solve the back-end ended without a solution."""
        return ""

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

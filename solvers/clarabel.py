"""Clarabel: interior-point conic solver (Goulart & Chen), through cvxpy."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from convexnn.solvers._checks import (
    BOOL,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    STRING,
    in_interval,
)
from convexnn.solvers._cvxpy import CvxpySolver
from convexnn.solvers.base import SDPProblem, SolverOutput
from convexnn.solvers.errors import SolverFailedError

logger = logging.getLogger("convexnn")


class ClarabelSolver(CvxpySolver):
    name = "clarabel"
    description = "Clarabel interior-point conic solver (accurate, memory grows fast)"
    package = "clarabel"
    cvxpy_name = "CLARABEL"
    bytes_per_nonzero = 400
    dense_cone_bytes = 64
    #: Above ``LARGE_CONIC_NONZEROS`` Clarabel is slower than SCS (measured in
    #: benchmarks/bench_solvers.py), so ``auto`` tries SCS first there.
    large_problem_priority = 2
    native_option_checks = MappingProxyType(
        {
            "tol_gap_abs": POSITIVE,
            "tol_gap_rel": POSITIVE,
            "tol_feas": POSITIVE,
            "tol_ktratio": POSITIVE,
            "max_iter": POSITIVE_INT,
            "time_limit": POSITIVE,
            "equilibrate_enable": BOOL,
            "equilibrate_max_iter": NON_NEGATIVE_INT,
            "direct_solve_method": STRING,
            "presolve_enable": BOOL,
            "static_regularization_enable": BOOL,
            "static_regularization_constant": POSITIVE,
            "max_step_fraction": in_interval(0.0, 1.0, closed_high=True),
        }
    )

    #: Clarabel's default static KKT regularisation (1e-8) makes it stop with
    #: "InsufficientProgress" (cvxpy: SolverError) on some ill-conditioned
    #: problems: standardised breast cancer (426 x 30, squared loss with beta
    #: 1e-3 and 0.1, logistic with 1e-3), iris with cross-entropy and beta 1e-3.
    #: With 1e-7 each returned a solution (breast cancer squared: certified
    #: relative gap 3e-9; standardised iris: objective 6e-5 above SCS's; raw
    #: iris only "optimal_inaccurate", certified gap 0.1). As a *default* it is not
    #: better: on 140 planted problems (every loss, n 40/100, d 5/10, beta
    #: 0.1/1e-3) it changed the share of "optimal_inaccurate" little (39 -> 37)
    #: and made some certified gaps worse (cross-entropy, beta 1e-3: 3e-6 ->
    #: 2e-4). Turning equilibration off fixed breast cancer but not iris;
    #: presolve, step length, iterative refinement, chordal decomposition and
    #: the KKT solver made no difference; tol 1e-7 cut "optimal_inaccurate" to
    #: 10 of 140 but let objective errors grow to 8e-6. So the larger
    #: regularisation is only a retry after a numerical failure (see ``solve``).
    retry_static_regularization = 1e-7

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super().translate_options(options)
        tol = self.backend_tol(options)
        if tol is not None:
            kwargs.setdefault("tol_gap_abs", tol)
            kwargs.setdefault("tol_gap_rel", tol)
            kwargs.setdefault("tol_feas", tol)
        return kwargs

    def solve(
        self,
        problem: SDPProblem,
        *,
        warm_start: SolverOutput | None = None,
        **options: Any,
    ) -> SolverOutput:
        """Solve; after a numerical failure retry once with more KKT regularisation."""
        try:
            return super().solve(problem, warm_start=warm_start, **options)
        except SolverFailedError as error:
            if "static_regularization_constant" in options or not _numerical_failure(error):
                raise
            constant = self.retry_static_regularization
            logger.warning(
                "clarabel: %s; retrying with static_regularization_constant=%g", error, constant
            )
            output = super().solve(
                problem, warm_start=warm_start, static_regularization_constant=constant, **options
            )
            output.message += f" (retried with static_regularization_constant={constant:g})"
            output.stats["retried_after"] = str(error)
            return output


def _numerical_failure(error: SolverFailedError) -> bool:
    """Whether cvxpy reported the solve itself as failed (not a bug or a bad option)."""
    try:
        from cvxpy.error import SolverError
    except ImportError:  # pragma: no cover - cvxpy is a hard dependency
        return False
    return isinstance(error.__cause__, SolverError)

"""CVXOPT: primal-dual interior-point conic solver (Andersen, Dahl, Vandenberghe)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from convexnn.solvers._checks import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, one_of
from convexnn.solvers._cvxpy import CvxpySolver
from convexnn.solvers._warnings import caller_stacklevel


class CVXOPTSolver(CvxpySolver):
    name = "cvxopt"
    description = "CVXOPT interior-point conic solver (dense linear algebra, small problems)"
    package = "cvxopt"
    cvxpy_name = "CVXOPT"
    bytes_per_nonzero = 500
    dense_cone_bytes = 64
    dense_sample_bytes = 40  # n = 3200 at h = 20: 1.1 GB, 1.55x the estimate without it
    #: cvxpy's CVXOPT interface has no exponential (nor power) cone, which the
    #: logistic and cross-entropy losses need ("The solver CVXOPT cannot solve
    #: this problem").
    cones = frozenset({"nonneg", "soc", "psd"})
    #: Dense linear algebra keeps it the last resort on large conic data too
    #: (Clarabel's priority drops there; equal priorities keep the registry order).
    large_problem_priority = 2
    native_option_checks = MappingProxyType(
        {
            "abstol": POSITIVE,
            "reltol": POSITIVE,
            "feastol": POSITIVE,
            "max_iters": POSITIVE_INT,
            "refinement": NON_NEGATIVE_INT,
            "kktsolver": one_of("chol", "robust"),
        }
    )
    option_aliases = MappingProxyType({"max_iters": "max_iter"})

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super().translate_options(options)
        # cvxpy's default "chol" path probes A A^T with ARPACK, which fails to
        # converge on these problems; the LDL ("robust") KKT solver does not.
        kwargs.setdefault("kktsolver", "robust")
        tol = self.backend_tol(options)
        if tol is not None:
            kwargs.setdefault("abstol", tol)
            kwargs.setdefault("reltol", tol)
        if "max_iter" in options:
            kwargs["max_iters"] = int(options["max_iter"])
        # CVXOPT has no time limit; a warning, not an error, as "auto" may land here.
        if "time_limit" in options:
            warnings.warn("cvxopt has no time limit; time_limit is ignored (use max_iter)",
                          UserWarning, stacklevel=caller_stacklevel())
        return kwargs

    def failure_hint(self, options: Mapping[str, Any]) -> str:
        # cvxpy turns CVXOPT's "unknown" (iteration cap reached, or stuck short of the
        # accuracy asked for) into a solver error, so no iterate or status comes back.
        limits = {key: options[key] for key in ("max_iter", "max_iters", "tol", "abstol",
                                                "reltol", "feastol") if key in options}
        asked = f" ({', '.join(f'{k}={v}' for k, v in limits.items())})" if limits else ""
        return (
            f". CVXOPT returns no solution when it stops at its iteration limit or short of "
            f"its accuracy target{asked}: raise max_iter, loosen tol, or use another solver"
        )

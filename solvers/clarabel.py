"""Clarabel: interior-point conic solver (Goulart & Chen), through cvxpy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from solvers._cvxpy import CvxpySolver


class ClarabelSolver(CvxpySolver):
    name = "clarabel"
    description = "Clarabel interior-point conic solver (accurate, memory grows fast)"
    package = "clarabel"
    cvxpy_name = "CLARABEL"
    bytes_per_nonzero = 400
    native_options = frozenset(
        {
            "tol_gap_abs",
            "tol_gap_rel",
            "tol_feas",
            "tol_ktratio",
            "max_iter",
            "time_limit",
            "equilibrate_enable",
            "direct_solve_method",
        }
    )

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = {k: v for k, v in options.items() if k in self.native_options}
        if "tol" in options:
            kwargs.setdefault("tol_gap_abs", options["tol"])
            kwargs.setdefault("tol_gap_rel", options["tol"])
            kwargs.setdefault("tol_feas", options["tol"])
        return kwargs

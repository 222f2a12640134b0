"""MOSEK: commercial interior-point conic solver, through cvxpy.

MOSEK installs from PyPI but refuses to optimise without a license file, and
cvxpy lists it as installed regardless. :meth:`MosekSolver.license_problem`
checks a license out (milliseconds, nothing solved) and caches the answer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from convexnn.solvers._checks import BOOL, MAPPING, STRING
from convexnn.solvers._cvxpy import CvxpySolver
from convexnn.solvers.base import Status

LICENSE_HELP = (
    "MOSEK is installed but has no usable license: {reason}. Free academic "
    "and trial licenses: https://www.mosek.com/products/academic-licenses/ "
    "(put mosek.lic in ~/mosek/ or point MOSEKLM_LICENSE_FILE at it; a file that is "
    "there but expired or for another machine gives err_flexlm or err_license_*)."
)


@functools.lru_cache(maxsize=1)
def _probe_license() -> str | None:
    import mosek

    try:
        with mosek.Env() as env:
            env.checkoutlicense(mosek.feature.pts)
    except mosek.Error as error:
        # (MOSEK's message is often empty: then the code alone, e.g. err_flexlm)
        message = str(error.msg or "").strip()
        return LICENSE_HELP.format(reason=f"{error.errno}: {message}" if message else
                                   str(error.errno))
    return None


class MosekSolver(CvxpySolver):
    name = "mosek"
    description = "MOSEK interior-point conic solver (commercial, needs a license)"
    package = "mosek"
    cvxpy_name = "MOSEK"
    bytes_per_nonzero = 400
    dense_cone_bytes = 64
    needs_license = True
    native_option_checks = MappingProxyType(
        {
            "mosek_params": MAPPING,
            "save_file": STRING,
            "bfs": BOOL,
            "accept_unknown": BOOL,
        }
    )

    def license_problem(self) -> str | None:
        return _probe_license()

    #: The MOSEK parameters the common options set.
    option_aliases = MappingProxyType({"MSK_IPAR_INTPNT_MAX_ITERATIONS": "max_iter",
                                       "MSK_DPAR_OPTIMIZER_MAX_TIME": "time_limit"})

    def native_settings(self, options: Mapping[str, Any]) -> set[str]:
        params = options.get("mosek_params")
        return super().native_settings(options) | set(
            params if isinstance(params, Mapping) else ())

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super().translate_options(options)
        params = dict(kwargs.pop("mosek_params", {}) or {})
        tol = self.backend_tol(options)
        if tol is not None:
            params.setdefault("MSK_DPAR_INTPNT_CO_TOL_REL_GAP", tol)
        if "max_iter" in options:
            params["MSK_IPAR_INTPNT_MAX_ITERATIONS"] = int(options["max_iter"])
        if "time_limit" in options:
            params["MSK_DPAR_OPTIMIZER_MAX_TIME"] = float(options["time_limit"])
        if params:
            kwargs["mosek_params"] = params
        if {"max_iter", "time_limit"} & set(options):
            # A stop at a limit leaves MOSEK's solution status "unknown", which cvxpy
            # turns into an error without a point unless told to accept it.
            kwargs.setdefault("accept_unknown", True)
        return kwargs

    def map_status(self, cvxpy_status: str, stats: Any, options: Mapping[str, Any]) -> Status:
        """cvxpy reads an accepted "unknown" as inaccurate: a limit that stopped MOSEK is
        told apart by its iterations or its time."""
        status = super().map_status(cvxpy_status, stats, options)
        if status is Status.OPTIMAL_INACCURATE:
            limit = options.get("time_limit")
            if limit is not None and (stats.solve_time or 0.0) >= 0.9 * limit:
                return Status.TIME_LIMIT
            if "max_iter" in options and (stats.num_iters or 0) >= options["max_iter"]:
                return Status.ITERATION_LIMIT
        return status

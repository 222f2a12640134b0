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
from convexnn.solvers.errors import InvalidSolverOptionError

LICENSE_HELP = (
    "MOSEK is installed but has no usable license: {reason}. Free academic "
    "and trial licenses: https://www.mosek.com/products/academic-licenses/ "
    "(put mosek.lic in ~/mosek/ or point MOSEKLM_LICENSE_FILE at it)."
)


@functools.lru_cache(maxsize=1)
def _probe_license() -> str | None:
    import mosek

    try:
        with mosek.Env() as env:
            env.checkoutlicense(mosek.feature.pts)
    except mosek.Error as error:
        return LICENSE_HELP.format(reason=f"{error.errno}: {error.msg}".strip())
    return None


#: The MOSEK parameters the common options set.
MOSEK_PARAMETER_FOR_COMMON_OPTION = MappingProxyType({
    "max_iter": "MSK_IPAR_INTPNT_MAX_ITERATIONS",
    "time_limit": "MSK_DPAR_OPTIMIZER_MAX_TIME",
})


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

    def check_options(self, options: Mapping[str, Any]) -> None:
        super().check_options(options)
        params = options.get("mosek_params") or {}
        for common, parameter in MOSEK_PARAMETER_FOR_COMMON_OPTION.items():
            if common in options and parameter in params:
                raise InvalidSolverOptionError(
                    f"solver 'mosek' got both {common!r} and mosek_params' {parameter!r}, "
                    f"which set the same limit; pass one of them"
                )

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super().translate_options(options)
        params = dict(kwargs.pop("mosek_params", {}) or {})
        tol = self.backend_tol(options)
        if tol is not None:
            params.setdefault("MSK_DPAR_INTPNT_CO_TOL_REL_GAP", tol)
        if "max_iter" in options:
            params[MOSEK_PARAMETER_FOR_COMMON_OPTION["max_iter"]] = int(options["max_iter"])
        if "time_limit" in options:
            params[MOSEK_PARAMETER_FOR_COMMON_OPTION["time_limit"]] = float(options["time_limit"])
        if params:
            kwargs["mosek_params"] = params
        return kwargs

"""SCS: first-order splitting conic solver (O'Donoghue et al.), through cvxpy."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from convexnn.solvers._checks import (
    BOOL,
    INT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    in_interval,
)
from convexnn.solvers._cvxpy import CvxpySolver
from convexnn.solvers.base import Status


class SCSSolver(CvxpySolver):
    name = "scs"
    description = "SCS splitting conic solver (first order, low memory, moderate accuracy)"
    package = "scs"
    cvxpy_name = "SCS"
    bytes_per_nonzero = 350
    native_option_checks = MappingProxyType(
        {
            "eps_abs": NON_NEGATIVE,
            "eps_rel": NON_NEGATIVE,
            "eps_infeas": NON_NEGATIVE,
            "max_iters": POSITIVE_INT,
            "time_limit_secs": NON_NEGATIVE,
            "normalize": BOOL,
            "scale": POSITIVE,
            "adaptive_scale": BOOL,
            "rho_x": POSITIVE,
            "alpha": in_interval(0.0, 2.0),
            "acceleration_lookback": INT,
            "acceleration_interval": POSITIVE_INT,
            "use_indirect": BOOL,
        }
    )

    option_aliases = MappingProxyType({"max_iters": "max_iter",
                                       "time_limit_secs": "time_limit"})

    #: First order: a tenth of tol would cost several times the iterations, so
    #: SCS gets tol itself and polishing closes what it can.
    tol_fraction = 1.0

    def translate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super().translate_options(options)
        # SCS's own default (1e-4) leaves decomposed networks visibly suboptimal
        # (4% above the optimum on the 100 x 20 planted problem); 1e-6 does not.
        tol = self.target_tol(options)
        kwargs.setdefault("eps_abs", tol)
        kwargs.setdefault("eps_rel", tol)
        if "max_iter" in options:
            kwargs["max_iters"] = int(options["max_iter"])
        if "time_limit" in options:
            kwargs["time_limit_secs"] = float(options["time_limit"])
        return kwargs

    def map_status(self, cvxpy_status: str, stats: Any, options: Mapping[str, Any]) -> Status:
        # SCS calls a run stopped by a limit "solved (inaccurate - reached ...)".
        info = (
            (stats.extra_stats or {}).get("info", {})
            if isinstance(stats.extra_stats, dict)
            else {}
        )
        raw = str(info.get("status", ""))
        if "reached max_iters" in raw:
            return Status.ITERATION_LIMIT
        if "reached time_limit" in raw:
            return Status.TIME_LIMIT
        return super().map_status(cvxpy_status, stats, options)

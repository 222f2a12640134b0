"""convexnn: globally optimal two-layer networks with degree-two polynomial activations.

Trains by solving the exact convex (semidefinite) reformulation of Bartan &
Pilanci, "Neural Spectrahedra and Semidefinite Lifts", recovers the weights
by Neural Decomposition, and certifies every result with a duality gap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from convexnn._lazy import attach
from convexnn._version import __version__

# A library leaves output to the application: without a handler of its own,
# Python would print the "convexnn" logger's warnings through its last-resort
# handler. Configure logging (or pass verbose=True) to see them.
logging.getLogger("convexnn").addHandler(logging.NullHandler())

# Public names are imported on first use (PEP 562): ``import convexnn`` and
# ``convexnn --help`` stay fast, and torch, cvxpy, pandas and matplotlib load
# only when something needs them.
_LAZY: dict[str, str] = {
    "baselines": "convexnn.baselines",
    "comparison": "convexnn.comparison",
    "datasets": "convexnn.datasets",
    "distributed": "convexnn.distributed",
    "solvers": "convexnn.solvers",
    "Activation": "convexnn.activations",
    "get_activation": "convexnn.activations",
    "BackpropPolyClassifier": "convexnn.baselines",
    "BackpropPolyRegressor": "convexnn.baselines",
    "BackpropRun": "convexnn.baselines",
    "run_seeds": "convexnn.baselines",
    "train_backprop": "convexnn.baselines",
    "ConvexNNError": "convexnn.exceptions",
    "ConvexNNWarning": "convexnn.exceptions",
    "DataFormatError": "convexnn.exceptions",
    "DistributedSolveError": "convexnn.exceptions",
    "FeatureScalingWarning": "convexnn.exceptions",
    "IncompatibleVersionError": "convexnn.exceptions",
    "InputTypeError": "convexnn.exceptions",
    "InvalidSolverOptionError": "convexnn.exceptions",
    "LongSolveWarning": "convexnn.exceptions",
    "MissingFileError": "convexnn.exceptions",
    "NotFittedError": "convexnn.exceptions",
    "ProblemTooLargeError": "convexnn.exceptions",
    "SolverError": "convexnn.exceptions",
    "SolverFailedError": "convexnn.exceptions",
    "SolverNotInstalledError": "convexnn.exceptions",
    "SolverNotLicensedError": "convexnn.exceptions",
    "ShardError": "convexnn.exceptions",
    "SolverStatusWarning": "convexnn.exceptions",
    "UnknownSolverError": "convexnn.exceptions",
    "UnsupportedProblemError": "convexnn.exceptions",
    "ValidationError": "convexnn.exceptions",
    "ConvexPolyClassifier": "convexnn.estimators",
    "ConvexPolyConvClassifier": "convexnn.estimators",
    "ConvexPolyConvRegressor": "convexnn.estimators",
    "ConvexPolyRegressor": "convexnn.estimators",
    "ConvexPolyClassifierCV": "convexnn.cv",
    "ConvexPolyConvClassifierCV": "convexnn.cv",
    "ConvexPolyConvRegressorCV": "convexnn.cv",
    "ConvexPolyRegressorCV": "convexnn.cv",
    "PathCurves": "convexnn._path_report",
    "plot_path": "convexnn._path_report",
    "Comparison": "convexnn.comparison",
    "compare": "convexnn.comparison",
    "PolySDP": "convexnn.formulations",
    "make_conv_problem": "convexnn.formulations",
    "make_problem": "convexnn.formulations",
    "nuclear_norm_program": "convexnn.formulations",
    "Loss": "convexnn.losses",
    "get_loss": "convexnn.losses",
    "TwoLayerPolyNet": "convexnn.network",
    "ConvGeometry": "convexnn.patches",
    "PathPoint": "convexnn.path",
    "beta_max": "convexnn.path",
    "certify": "convexnn.certificates",
    "fit_path": "convexnn.path",
    "Certificate": "convexnn.certificates",
    "SolveResult": "convexnn._solve",
    "certify_network": "convexnn.certificates",
    "lower_bound_from_dual": "convexnn.certificates",
    "Solution": "convexnn._solve",
    "solve": "convexnn._solve",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from convexnn import baselines, comparison, datasets, distributed, solvers
    from convexnn._path_report import PathCurves, plot_path
    from convexnn._solve import Solution, SolveResult, solve
    from convexnn.activations import Activation, get_activation
    from convexnn.baselines import (
        BackpropPolyClassifier,
        BackpropPolyRegressor,
        BackpropRun,
        run_seeds,
        train_backprop,
    )
    from convexnn.certificates import (
        Certificate,
        certify,
        certify_network,
        lower_bound_from_dual,
    )
    from convexnn.comparison import Comparison, compare
    from convexnn.cv import (
        ConvexPolyClassifierCV,
        ConvexPolyConvClassifierCV,
        ConvexPolyConvRegressorCV,
        ConvexPolyRegressorCV,
    )
    from convexnn.estimators import (
        ConvexPolyClassifier,
        ConvexPolyConvClassifier,
        ConvexPolyConvRegressor,
        ConvexPolyRegressor,
    )
    from convexnn.exceptions import (
        ConvexNNError,
        ConvexNNWarning,
        DataFormatError,
        DistributedSolveError,
        FeatureScalingWarning,
        IncompatibleVersionError,
        InputTypeError,
        InvalidSolverOptionError,
        LongSolveWarning,
        MissingFileError,
        NotFittedError,
        ProblemTooLargeError,
        ShardError,
        SolverError,
        SolverFailedError,
        SolverNotInstalledError,
        SolverNotLicensedError,
        SolverStatusWarning,
        UnknownSolverError,
        UnsupportedProblemError,
        ValidationError,
    )
    from convexnn.formulations import PolySDP, make_conv_problem, make_problem, nuclear_norm_program
    from convexnn.losses import Loss, get_loss
    from convexnn.network import TwoLayerPolyNet
    from convexnn.patches import ConvGeometry
    from convexnn.path import PathPoint, beta_max, fit_path


__getattr__, __dir__ = attach("convexnn", globals(), _LAZY)

__all__ = [
    "Activation",
    "BackpropPolyClassifier",
    "BackpropPolyRegressor",
    "BackpropRun",
    "Certificate",
    "Comparison",
    "ConvGeometry",
    "ConvexNNError",
    "ConvexNNWarning",
    "ConvexPolyClassifier",
    "ConvexPolyClassifierCV",
    "ConvexPolyConvClassifier",
    "ConvexPolyConvClassifierCV",
    "ConvexPolyConvRegressor",
    "ConvexPolyConvRegressorCV",
    "ConvexPolyRegressor",
    "ConvexPolyRegressorCV",
    "DataFormatError",
    "DistributedSolveError",
    "FeatureScalingWarning",
    "IncompatibleVersionError",
    "InputTypeError",
    "InvalidSolverOptionError",
    "LongSolveWarning",
    "Loss",
    "MissingFileError",
    "NotFittedError",
    "PathCurves",
    "PathPoint",
    "PolySDP",
    "ProblemTooLargeError",
    "Solution",
    "SolveResult",
    "SolverError",
    "SolverFailedError",
    "SolverNotInstalledError",
    "SolverNotLicensedError",
    "ShardError",
    "SolverStatusWarning",
    "TwoLayerPolyNet",
    "UnknownSolverError",
    "UnsupportedProblemError",
    "ValidationError",
    "__version__",
    "baselines",
    "beta_max",
    "certify",
    "certify_network",
    "compare",
    "comparison",
    "datasets",
    "distributed",
    "fit_path",
    "get_activation",
    "get_loss",
    "lower_bound_from_dual",
    "make_conv_problem",
    "make_problem",
    "nuclear_norm_program",
    "plot_path",
    "run_seeds",
    "solve",
    "solvers",
    "train_backprop",
]

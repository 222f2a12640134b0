"""convexnn: globally optimal two-layer networks with degree-two polynomial activations.

Trains by solving the exact convex (semidefinite) reformulation of Bartan &
Pilanci, "Neural Spectrahedra and Semidefinite Lifts", recovers the weights
by Neural Decomposition, and certifies every result with a duality gap.
"""

from convexnn._version import __version__
from convexnn import datasets
from convexnn.activations import Activation, get_activation
from convexnn.baselines import (
    BackpropPolyClassifier,
    BackpropPolyRegressor,
    BackpropRun,
    run_seeds,
    train_backprop,
)
from convexnn.exceptions import (
    ConvexNNError,
    ConvexNNWarning,
    DataFormatError,
    FeatureScalingWarning,
    IncompatibleVersionError,
    InputTypeError,
    InvalidSolverOptionError,
    MissingFileError,
    NotFittedError,
    ProblemTooLargeError,
    SolverError,
    SolverFailedError,
    SolverNotInstalledError,
    SolverNotLicensedError,
    SolverStatusWarning,
    UnknownSolverError,
    UnsupportedProblemError,
    ValidationError,
)
from convexnn.estimators import (
    ConvexPolyClassifier,
    ConvexPolyConvClassifier,
    ConvexPolyConvRegressor,
    ConvexPolyRegressor,
)
from convexnn.compare import Comparison, compare
from convexnn.formulations import PolySDP, make_conv_problem, make_problem, nuclear_norm_program
from convexnn.losses import Loss, get_loss
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry
from convexnn.path import PathPoint, certify, fit_path
from convexnn.solve import Certificate, SolveResult, certify_network, solve

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
    "ConvexPolyConvClassifier",
    "ConvexPolyConvRegressor",
    "ConvexPolyRegressor",
    "DataFormatError",
    "FeatureScalingWarning",
    "IncompatibleVersionError",
    "InputTypeError",
    "InvalidSolverOptionError",
    "Loss",
    "MissingFileError",
    "NotFittedError",
    "PathPoint",
    "PolySDP",
    "ProblemTooLargeError",
    "SolveResult",
    "SolverError",
    "SolverFailedError",
    "SolverNotInstalledError",
    "SolverNotLicensedError",
    "SolverStatusWarning",
    "TwoLayerPolyNet",
    "UnknownSolverError",
    "UnsupportedProblemError",
    "ValidationError",
    "__version__",
    "certify",
    "certify_network",
    "compare",
    "datasets",
    "fit_path",
    "get_activation",
    "get_loss",
    "make_conv_problem",
    "make_problem",
    "nuclear_norm_program",
    "run_seeds",
    "solve",
    "train_backprop",
]

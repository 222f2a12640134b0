"""Every bad input at every public entry point: the error class and what it says.

One table (:data:`CASES`): each row is an entry point, a bad input, the
exception expected (``None``: accepted) and key words its message must
contain -- the argument's name, what was received and what to do. Each row is
its own test id (``entry-point: input``). The CLI has its own small table
(:data:`CLI_CASES`): exit code 2 and one line on stderr, never a traceback.

The README's "Troubleshooting" table summarises these rows; the last test
checks that every exception it names is one this table expects.

Nothing here solves more than a 12 x 3 problem, so the file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import DataConversionWarning

import convexnn as cnn
from conftest import planted_conv_teacher
from convexnn import datasets as ds
from convexnn._solve import solve
from convexnn.cli import main
from convexnn.decomposition import decompose_blocks, neural_decomposition
from convexnn.exceptions import (
    ConvexNNError,
    DataFormatError,
    IncompatibleVersionError,
    InputTypeError,
    InvalidSolverOptionError,
    MissingFileError,
    NotFittedError,
    UnknownSolverError,
    UnsupportedProblemError,
    ValidationError,
)
from convexnn.formulations import nuclear_norm_program

# -- data ------------------------------------------------------------------------------
_rng = np.random.default_rng(123)
X = _rng.standard_normal((12, 3))
Y = X[:, 0] ** 2 - X[:, 1]
LABELS = np.where(Y > np.median(Y), "yes", "no")
SIGNS = np.where(Y > np.median(Y), 1.0, -1.0)
FAST = dict(solver="clarabel")


def with_value(array: np.ndarray, value: float) -> np.ndarray:
    out = np.array(array, dtype=float)
    out.flat[0] = value
    return out


@functools.cache
def fitted_regressor() -> cnn.ConvexPolyRegressor:
    return cnn.ConvexPolyRegressor(beta=0.1, **FAST).fit(X, Y)


@functools.cache
def problem() -> cnn.PolySDP:
    return cnn.make_problem(X, Y, beta=0.1)


NET = cnn.TwoLayerPolyNet(np.eye(3), np.array([1.0, -0.5, 0.25]), "quadratic")
IMAGES, IMAGE_Y, GEOMETRY, _ = planted_conv_teacher(n=8, image=(1, 4, 4), filter_size=2, seed=5)


def _npz(path: Path, **arrays: Any) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _one_based_width(loaded: tuple[np.ndarray, np.ndarray]) -> None:
    assert loaded[0].shape == (2, 3), loaded[0].shape


# -- the table ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    entry: str  # the entry point
    bad: str  # what is wrong with the input
    call: Callable[[Path], Any]  # runs the entry point (gets a temporary folder)
    error: type[BaseException] | None  # None: the input is accepted
    words: tuple[str, ...] = ()  # each must occur in the message

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.bad}"


R = cnn.ConvexPolyRegressor
C = cnn.ConvexPolyClassifier
BR = cnn.BackpropPolyRegressor
BC = cnn.BackpropPolyClassifier


def RCV(**params: Any) -> cnn.ConvexPolyRegressorCV:
    """A CV regressor that would run fast if its parameters were valid."""
    return cnn.ConvexPolyRegressorCV(**{"betas": 2, "cv": 2, **FAST, **params})


CASES: list[Case] = [
    # -- convex estimators: data -------------------------------------------------------
    Case("ConvexPolyRegressor.fit", "1-D X", lambda t: R(**FAST).fit(X[:, 0], Y),
         ValidationError, ("X must be 2-D", "shape (12,)", "reshape(-1, 1)")),
    Case("ConvexPolyRegressor.fit", "3-D X", lambda t: R(**FAST).fit(X[:, :, None], Y),
         ValidationError, ("X must be 2-D", "(12, 3, 1)")),
    Case("ConvexPolyRegressor.fit", "mismatched lengths", lambda t: R(**FAST).fit(X, Y[:-1]),
         ValidationError, ("y has 11 rows", "X has 12 samples")),
    Case("ConvexPolyConvRegressor.fit", "an int image_shape",
         lambda t: cnn.ConvexPolyConvRegressor(image_shape=16, **FAST).fit(X, Y),
         ValidationError, ("image_shape must be None or a tuple (H, W) or (C, H, W)", "16")),
    Case("ConvexPolyRegressor.fit", "targets whose squares overflow",
         lambda t: R(**FAST).fit(X, Y * 1e200),
         ValidationError, ("y has values up to", "overflows float64", "Rescale y")),
    Case("ConvexPolyRegressor.fit", "NaN in X", lambda t: R(**FAST).fit(with_value(X, np.nan), Y),
         ValidationError, ("X contains 1 non-finite", "NaN", "impute")),
    Case("ConvexPolyRegressor.fit", "inf in X", lambda t: R(**FAST).fit(with_value(X, np.inf), Y),
         ValidationError, ("X contains", "infinity")),
    Case("ConvexPolyRegressor.fit", "NaN in y", lambda t: R(**FAST).fit(X, with_value(Y, np.nan)),
         ValidationError, ("y contains", "NaN")),
    Case("ConvexPolyRegressor.fit", "empty data",
         lambda t: R(**FAST).fit(np.zeros((0, 3)), np.zeros(0)),
         ValidationError, ("X has 0 sample(s)", "at least 2", "empty")),
    Case("ConvexPolyRegressor.fit", "a single sample", lambda t: R(**FAST).fit(X[:1], Y[:1]),
         ValidationError, ("X has 1 sample(s)", "at least 2")),
    Case("ConvexPolyRegressor.fit", "no features",
         lambda t: R(**FAST).fit(np.zeros((12, 0)), Y),
         ValidationError, ("no features", "0 feature(s)")),
    Case("ConvexPolyRegressor.fit", "string X",
         lambda t: R(**FAST).fit(np.array([["a", "b", "c"]] * 12), Y),
         InputTypeError, ("X must be numeric", "<U1", "Encode categorical")),
    Case("ConvexPolyRegressor.fit", "object X with a string",
         lambda t: R(**FAST).fit(np.column_stack([X[:, :2], ["x"] * 12]).astype(object), Y),
         InputTypeError, ("X must be numeric", "object")),
    Case("ConvexPolyRegressor.fit", "complex X", lambda t: R(**FAST).fit(X + 1j, Y),
         InputTypeError, ("Complex data not supported", "X")),
    Case("ConvexPolyRegressor.fit", "string y", lambda t: R(**FAST).fit(X, LABELS),
         InputTypeError, ("y must be numeric",)),
    Case("ConvexPolyRegressor.fit", "y is None", lambda t: R(**FAST).fit(X, None),
         ValidationError, ("requires y to be passed",)),
    Case("ConvexPolyRegressor.fit", "sparse X", lambda t: R(**FAST).fit(sp.csr_matrix(X), Y),
         ValidationError, ("X is a sparse matrix", "X.toarray()")),
    Case("ConvexPolyRegressor.fit", "pandas X and y (accepted)",
         lambda t: R(**FAST).fit(pd.DataFrame(X, columns=list("abc")), pd.Series(Y)), None),
    Case("ConvexPolyRegressor.fit", "pandas X with a missing value",
         lambda t: R(**FAST).fit(pd.DataFrame(X).astype("Float64").mask(X > 1.5), Y),
         ValidationError, ("X contains", "NaN")),
    Case("ConvexPolyRegressor.fit", "constant targets (accepted)",
         lambda t: R(**FAST).fit(X, np.ones(12)), None),
    Case("ConvexPolyRegressor.fit", "real targets with the hinge loss",
         lambda t: R(loss="hinge", **FAST).fit(X, Y),
         ValidationError, ("hinge loss needs targets in {-1, +1}", "Use a classifier")),
    # -- convex estimators: parameters ---------------------------------------------------
    Case("ConvexPolyRegressor.fit", "negative beta", lambda t: R(beta=-1.0, **FAST).fit(X, Y),
         ValidationError, ("beta must be a finite non-negative number", "-1.0")),
    Case("ConvexPolyRegressor.fit", "NaN beta", lambda t: R(beta=float("nan"), **FAST).fit(X, Y),
         ValidationError, ("beta", "nan")),
    Case("ConvexPolyRegressor.fit", "infinite beta",
         lambda t: R(beta=float("inf"), **FAST).fit(X, Y), ValidationError, ("beta", "inf")),
    Case("ConvexPolyRegressor.fit", "string beta", lambda t: R(beta="0.1", **FAST).fit(X, Y),
         ValidationError, ("beta", "'0.1'")),
    Case("ConvexPolyRegressor.fit", "unknown activation",
         lambda t: R(activation="relu", **FAST).fit(X, Y),
         ValidationError, ("unknown activation 'relu'", "relu-approx", "(a, b, c)")),
    Case("ConvexPolyRegressor.fit", "activation of 2 numbers",
         lambda t: R(activation=(1.0, 2.0), **FAST).fit(X, Y),
         ValidationError, ("activation must be", "(a, b, c)")),
    Case("ConvexPolyRegressor.fit", "all-zero activation",
         lambda t: R(activation=(0, 0, 0), **FAST).fit(X, Y),
         ValidationError, ("activation coefficients", "must not all be zero")),
    Case("ConvexPolyRegressor.fit", "activation of scale 1e300",  # failed deep in solvers
         lambda t: R(activation=(1e300, 0.0, 0.0), **FAST).fit(X, Y),
         ValidationError, ("have scale 1e+300", "pass (1, 0, 0) with beta / 1e+300")),
    Case("ConvexPolyRegressor.fit", "activation of scale 1e-9",
         lambda t: R(activation=(0.0, 1e-9, 5e-10), **FAST).fit(X, Y),
         ValidationError, ("have scale 1e-09", "pass (0, 1, 0.5)")),
    Case("ConvexPolyRegressor.fit", "NaN activation",
         lambda t: R(activation=(np.nan, 0.5, 0.0), **FAST).fit(X, Y),
         ValidationError, ("activation coefficients", "finite")),
    Case("ConvexPolyRegressor.fit", "unknown loss", lambda t: R(loss="kl", **FAST).fit(X, Y),
         ValidationError, ("unknown loss 'kl'", "squared", "huber")),
    Case("ConvexPolyRegressor.fit", "unknown solver", lambda t: R(solver="gurobi").fit(X, Y),
         UnknownSolverError, ("unknown solver 'gurobi'", "clarabel", "auto")),
    Case("ConvexPolyRegressor.fit", "solver not a string", lambda t: R(solver=3).fit(X, Y),
         ValidationError, ("solver must be", "3")),
    Case("ConvexPolyRegressor.fit", "unknown solver option",
         lambda t: R(solver_options={"bogus": 1}, **FAST).fit(X, Y),
         InvalidSolverOptionError, ("does not accept option(s) bogus", "accepted:", "tol")),
    Case("ConvexPolyRegressor.fit", "negative tol",
         lambda t: R(solver_options={"tol": -1e-6}, **FAST).fit(X, Y),
         InvalidSolverOptionError, ("'tol'", "positive float")),
    Case("ConvexPolyRegressor.fit", "back-end option of the wrong type",
         lambda t: R(solver="scs", solver_options={"max_iters": "many"}).fit(X, Y),
         InvalidSolverOptionError, ("scs option 'max_iters'", "positive int", "'many'")),
    Case("ConvexPolyRegressor.fit", "back-end option value refused by the back-end",
         lambda t: R(solver_options={"direct_solve_method": "nope"}, **FAST).fit(X, Y),
         InvalidSolverOptionError, ("clarabel refused its options", "direct_solve_method")),
    Case("ConvexPolyRegressor.fit", "native option out of range",
         lambda t: R(solver="native", solver_options={"engine": "simplex"}).fit(X, Y),
         InvalidSolverOptionError, ("'engine'", "ipm", "neurons")),
    Case("ConvexPolyRegressor.fit", "solver_options not a dict",
         lambda t: R(solver_options=[("tol", 1e-3)], **FAST).fit(X, Y),
         ValidationError, ("solver_options must be a dict",)),
    Case("ConvexPolyRegressor.fit", "a solver option named by a number (was a TypeError)",
         lambda t: R(solver_options={"tol": 1e-5, 1: 2}, **FAST).fit(X, Y),
         ValidationError, ("solver_options keys must be option names", "got 1")),
    Case("ConvexPolyRegressor.fit", "limits of None: the defaults (accepted; were refused)",
         lambda t: R(solver_options={"tol": None, "time_limit": None, "max_iter": None},
                     solver="native").fit(X, Y), None),
    Case("ConvexPolyRegressor.fit", "decomposition_rtol of 2",
         lambda t: R(decomposition_rtol=2.0, **FAST).fit(X, Y),
         ValidationError, ("decomposition_rtol", "[0, 1)")),
    Case("ConvexPolyRegressor.fit", "verbose not a bool",
         lambda t: R(verbose="loud", **FAST).fit(X, Y),
         ValidationError, ("verbose must be True or False",)),
    Case("ConvexPolyRegressor.predict", "before fit", lambda t: R().predict(X),
         NotFittedError, ("not fitted yet", "fit")),
    Case("ConvexPolyRegressor.predict", "wrong number of features",
         lambda t: fitted_regressor().predict(X[:, :2]),
         ValidationError, ("X has 2 features", "expecting 3", "same columns")),
    Case("ConvexPolyRegressor.predict", "NaN in X",
         lambda t: fitted_regressor().predict(with_value(X, np.nan)),
         ValidationError, ("X contains", "NaN")),
    Case("ConvexPolyRegressor.save", "before fit", lambda t: R().save(t / "m"),
         NotFittedError, ("not fitted yet",)),
    Case("ConvexPolyRegressor.load", "missing file", lambda t: R.load(t / "none.npz"),
         MissingFileError, ("no such file", "none.npz")),
    Case("ConvexPolyRegressor.load", "a saved network, not an estimator",
         lambda t: R.load(NET.save(t / "net")),
         ValidationError, ("not a saved convexnn estimator", "TwoLayerPolyNet.load")),
    Case("ConvexPolyClassifier.load", "a saved regressor",
         lambda t: C.load(fitted_regressor().save(t / "reg")),
         ValidationError, ("holds a ConvexPolyRegressor", "ConvexPolyRegressor.load")),
    Case("ConvexPolyRegressor.load", "a file from a newer format",
         lambda t: R.load(_npz(t / "future.npz", U=np.eye(2), alpha=np.ones(2),
                               metadata=np.array(json.dumps({
                                   "format": "convexnn.estimator", "format_version": 99,
                                   "convexnn_version": "9.0", "class": "ConvexPolyRegressor"})))),
         IncompatibleVersionError, ("file format 99", "convexnn 9.0", "Upgrade convexnn")),
    # -- classifiers ---------------------------------------------------------------------
    Case("ConvexPolyClassifier.fit", "a single class",
         lambda t: C(**FAST).fit(X, np.zeros(12, dtype=int)),
         ValidationError, ("single class (0)", "at least 2 classes")),
    Case("ConvexPolyClassifier.fit", "continuous labels", lambda t: C(**FAST).fit(X, Y),
         ValidationError, ("Unknown label type", "continuous", "regressor")),
    Case("ConvexPolyClassifier.fit", "2-D labels",
         lambda t: C(**FAST).fit(X, np.column_stack([LABELS, LABELS])),
         ValidationError, ("one class label per sample", "(12, 2)")),
    Case("ConvexPolyClassifier.fit", "NaN label",
         lambda t: C(**FAST).fit(X, with_value(SIGNS, np.nan)),
         ValidationError, ("y contains NaN", "drop the unlabelled samples")),
    Case("ConvexPolyClassifier.fit", "mixed label types",
         lambda t: C(**FAST).fit(X, np.array([1, "a"] * 6, dtype=object)),
         InputTypeError, ("mixes label types", "int", "str")),
    Case("ConvexPolyClassifier.fit", "bytes labels",
         lambda t: C(**FAST).fit(X, np.array([b"pos", b"neg"] * 6)),
         InputTypeError, ("labels as bytes", "y.astype(str)")),
    Case("ConvexPolyClassifier.fit", "bytes labels in an object array",
         lambda t: C(**FAST).fit(X, np.array([b"pos", b"neg"] * 6, dtype=object)),
         InputTypeError, ("labels as bytes", "y.astype(str)")),
    Case("ConvexPolyClassifier.fit", "missing label",
         lambda t: C(**FAST).fit(X, np.array(["a", None] * 6, dtype=object)),
         ValidationError, ("missing labels",)),
    Case("ConvexPolyClassifier.fit", "pd.NA label (was: 'mixes label types')",
         lambda t: C(**FAST).fit(X, np.array(["a", pd.NA] * 6, dtype=object)),
         ValidationError, ("missing labels", "pd.NA")),
    Case("ConvexPolyClassifier.fit", "pandas string labels with pd.NA",
         lambda t: C(**FAST).fit(X, pd.Series(["a", None] * 6, dtype="string")),
         ValidationError, ("missing labels",)),
    Case("ConvexPolyClassifier.fit", "integer labels as objects (accepted)",
         lambda t: C(**FAST).fit(X, (Y > 0).astype(int).astype(object)), None),
    Case("ConvexPolyClassifier.fit", "pandas labels (accepted)",
         lambda t: C(**FAST).fit(pd.DataFrame(X), pd.Series(LABELS)), None),
    Case("ConvexPolyClassifier.fit", "regression loss",
         lambda t: C(loss="l1", **FAST).fit(X, LABELS),
         ValidationError, ("not a classification loss", "hinge")),
    Case("ConvexPolyClassifier.fit", "sparse X", lambda t: C(**FAST).fit(sp.csc_matrix(X), LABELS),
         ValidationError, ("sparse matrix",)),
    # -- convolutional estimators ----------------------------------------------------------
    Case("ConvexPolyConvRegressor.fit", "stride None",
         lambda t: cnn.ConvexPolyConvRegressor(filter_size=2, stride=None, **FAST)
         .fit(IMAGES, IMAGE_Y),
         ValidationError, ("stride must be a positive int or a pair", "None")),
    Case("ConvexPolyConvRegressor.fit", "fractional filter size",
         lambda t: cnn.ConvexPolyConvRegressor(filter_size=1.5, **FAST).fit(IMAGES, IMAGE_Y),
         ValidationError, ("filter_size", "1.5")),
    Case("ConvexPolyConvRegressor.fit", "filter larger than the image",
         lambda t: cnn.ConvexPolyConvRegressor(filter_size=9, **FAST).fit(IMAGES, IMAGE_Y),
         ValidationError, ("filter_size (9, 9) is larger than the images",)),
    Case("ConvexPolyConvRegressor.fit", "image_shape not a shape",
         lambda t: cnn.ConvexPolyConvRegressor(image_shape="x", **FAST).fit(IMAGES, IMAGE_Y),
         ValidationError, ("image_shape must be", "'x'")),
    Case("ConvexPolyConvRegressor.fit", "fractional image_shape",
         lambda t: cnn.ConvexPolyConvRegressor(image_shape=(1.5, 4), **FAST).fit(IMAGES, IMAGE_Y),
         ValidationError, ("image_shape must be", "positive ints")),
    Case("ConvexPolyConvRegressor.fit", "images of another shape",
         lambda t: cnn.ConvexPolyConvRegressor(image_shape=(3, 3), filter_size=2, **FAST)
         .fit(IMAGES, IMAGE_Y), ValidationError, ("images of shape (1, 3, 3)", "(8, 1, 4, 4)")),
    Case("ConvexPolyConvClassifier.fit", "pool larger than the output",
         lambda t: cnn.ConvexPolyConvClassifier(filter_size=2, pool_size=9, **FAST)
         .fit(IMAGES, IMAGE_Y > np.median(IMAGE_Y)),
         ValidationError, ("pool_size", "smaller pool")),
    # -- backprop estimators -----------------------------------------------------------------
    Case("BackpropPolyRegressor.fit", "sparse X", lambda t: BR(epochs=2).fit(sp.csr_matrix(X), Y),
         ValidationError, ("sparse matrix", "toarray")),
    Case("BackpropPolyRegressor.fit", "NaN in X",
         lambda t: BR(epochs=2).fit(with_value(X, np.nan), Y), ValidationError, ("NaN",)),
    Case("BackpropPolyRegressor.fit", "a single sample", lambda t: BR(epochs=2).fit(X[:1], Y[:1]),
         ValidationError, ("1 sample(s)",)),
    Case("BackpropPolyRegressor.fit", "unknown optimizer",
         lambda t: BR(optimizer="adamw").fit(X, Y),
         ValidationError, ("optimizer must be one of", "sgd", "'adamw'")),
    # a seed past 2**64 failed inside torch with "Overflow when unpacking long long"
    Case("BackpropPolyRegressor.fit", "a seed past NumPy's range",
         lambda t: BR(epochs=1, random_state=2**64).fit(X, Y),
         ValidationError, ("random_state must be an int in [0, 2**32 - 1]",)),
    Case("train_backprop", "a seed past NumPy's range",
         lambda t: cnn.train_backprop(X, Y, seed=2**64, epochs=1),
         ValidationError, ("seed must be an int in [0, 2**32 - 1]",)),
    Case("BackpropPolyRegressor.fit", "negative lr", lambda t: BR(lr=-1.0).fit(X, Y),
         ValidationError, ("lr must be a positive finite number", "-1.0")),
    Case("BackpropPolyRegressor.fit", "batch_size with L-BFGS",
         lambda t: BR(optimizer="lbfgs", batch_size=4).fit(X, Y),
         ValidationError, ("batch_size must be None for optimizer='lbfgs'",)),
    Case("BackpropPolyRegressor.fit", "random_state not a seed",
         lambda t: BR(random_state="seed").fit(X, Y),
         ValidationError, ("random_state must be", "'seed'")),
    Case("BackpropPolyRegressor.fit", "negative beta", lambda t: BR(beta=-0.1).fit(X, Y),
         ValidationError, ("beta",)),
    Case("BackpropPolyRegressor.predict", "before fit", lambda t: BR().predict(X),
         NotFittedError, ("not fitted yet",)),
    Case("BackpropPolyClassifier.fit", "a single class",
         lambda t: BC(epochs=2).fit(X, np.full(12, "a")), ValidationError, ("single class",)),
    Case("BackpropPolyClassifier.fit", "pandas input (accepted)",
         lambda t: BC(epochs=5, random_state=0).fit(pd.DataFrame(X), pd.Series(LABELS)), None),
    Case("train_backprop", "X_test without y_test",
         lambda t: cnn.train_backprop(X, Y, epochs=1, X_test=X),
         ValidationError, ("X_test and y_test must be given together",)),
    Case("train_backprop", "X_test with other features",
         lambda t: cnn.train_backprop(X, Y, epochs=1, X_test=X[:, :2], y_test=Y),
         ValidationError, ("X_test has 2 features but X has 3",)),
    Case("run_seeds", "no seeds", lambda t: cnn.run_seeds(X, Y, [], epochs=1),
         ValidationError, ("seeds is empty",)),
    # -- formulations -----------------------------------------------------------------------
    Case("make_problem", "X is None", lambda t: cnn.make_problem(None, Y),
         ValidationError, ("X is None",)),
    Case("make_problem", "3-D y", lambda t: cnn.make_problem(X, Y[:, None, None]),
         ValidationError, ("y must be 1-D or 2-D", "(12, 1, 1)")),
    Case("make_problem", "cross-entropy with one output",
         lambda t: cnn.make_problem(X, SIGNS, loss="cross-entropy"),
         ValidationError, ("cross-entropy loss needs one-hot targets of at least 2 columns",
                           "classifier")),
    Case("make_problem", "boolean beta", lambda t: cnn.make_problem(X, Y, beta=True),
         ValidationError, ("beta", "True")),
    Case("make_problem", "loss of the wrong type", lambda t: cnn.make_problem(X, Y, loss=3),
         ValidationError, ("unknown loss 3",)),
    Case("make_conv_problem", "no geometry", lambda t: cnn.make_conv_problem(IMAGES, IMAGE_Y, None),
         ValidationError, ("geometry must be a convexnn.ConvGeometry", "NoneType")),
    Case("make_conv_problem", "images that do not match the geometry",
         lambda t: cnn.make_conv_problem(X, Y, GEOMETRY),
         ValidationError, ("images of shape (1, 4, 4)", "(12, 3)")),
    # -- decomposition -----------------------------------------------------------------------
    Case("neural_decomposition", "non-square Z", lambda t: neural_decomposition(np.ones((2, 3))),
         ValidationError, ("square matrix", "(2, 3)")),
    Case("neural_decomposition", "non-symmetric Z",
         lambda t: neural_decomposition(np.array([[1.0, 2.0], [0.0, 1.0]])),
         ValidationError, ("not symmetric", "max |Z - Z^T|")),
    Case("neural_decomposition", "NaN in Z",
         lambda t: neural_decomposition(np.full((3, 3), np.nan)),
         ValidationError, ("NaN",)),
    Case("neural_decomposition", "string Z",
         lambda t: neural_decomposition(np.array([["a", "b"], ["c", "d"]])),
         InputTypeError, ("real numeric matrix",)),
    Case("neural_decomposition", "sparse Z", lambda t: neural_decomposition(sp.eye(3)),
         ValidationError, ("sparse matrix", "toarray")),
    Case("neural_decomposition", "rtol of 2", lambda t: neural_decomposition(np.eye(3), rtol=2.0),
         ValidationError, ("rtol must be a number in [0, 1)",)),
    Case("decompose_blocks", "matrices instead of pairs", lambda t: decompose_blocks([np.eye(3)]),
         ValidationError, ("blocks[0] must be a pair (Z, Z')",)),
    Case("decompose_blocks", "Z and Z' of different sides",
         lambda t: decompose_blocks([(np.eye(3), np.eye(4))]),
         ValidationError, ("side 3 and 4", "same side")),
    # -- the network ----------------------------------------------------------------------------
    Case("TwoLayerPolyNet", "an all-zero neuron",
         lambda t: cnn.TwoLayerPolyNet(np.zeros((2, 2)), np.ones(2), "quadratic"),
         ValidationError, ("all-zero row (row 0)",)),
    Case("TwoLayerPolyNet", "alpha of the wrong length",
         lambda t: cnn.TwoLayerPolyNet(np.eye(2), np.ones(3), "quadratic"),
         ValidationError, ("alpha must have one row per neuron (2)", "(3,)")),
    Case("TwoLayerPolyNet", "string alpha",
         lambda t: cnn.TwoLayerPolyNet(np.eye(2), np.array(["a", "b"]), "quadratic"),
         InputTypeError, ("alpha must be a real numeric array",)),
    Case("TwoLayerPolyNet", "NaN in U",
         lambda t: cnn.TwoLayerPolyNet(with_value(np.eye(2), np.nan), np.ones(2), "quadratic"),
         ValidationError, ("U contains", "NaN")),
    Case("TwoLayerPolyNet", "geometry of the wrong type",
         lambda t: cnn.TwoLayerPolyNet(np.eye(2), np.ones(2), "quadratic", geometry="conv"),
         ValidationError, ("geometry must be a ConvGeometry or None",)),
    Case("TwoLayerPolyNet.predict", "wrong number of features", lambda t: NET.predict(X[:, :2]),
         ValidationError, ("X has 2 features", "expects 3")),
    Case("TwoLayerPolyNet.predict", "sparse X", lambda t: NET.predict(sp.csr_matrix(X)),
         ValidationError, ("sparse matrix",)),
    Case("TwoLayerPolyNet.outputs", "samples instead of patches (was a bare unpacking error)",
         lambda t: NET.outputs(X), ValidationError, ("patches must have shape (n, R, P, 3)",
                                                     "got shape (", "predict")),
    Case("TwoLayerPolyNet.objective", "y with more columns than outputs",
         lambda t: NET.objective(X, np.column_stack([Y, Y]), beta=0.1),
         ValidationError, ("y has 2 column(s)", "1 output(s)", "shape (n,)")),
    Case("TwoLayerPolyNet.objective", "real targets with the hinge loss",
         lambda t: NET.objective(X, Y, loss="hinge", beta=0.1), ValidationError, ("{-1, +1}",)),
    Case("TwoLayerPolyNet.objective", "negative beta", lambda t: NET.objective(X, Y, beta=-1),
         ValidationError, ("beta",)),
    Case("TwoLayerPolyNet.save", "path of the wrong type", lambda t: NET.save(3),
         InputTypeError, ("path must be a file path",)),
    Case("TwoLayerPolyNet.save", "a folder that does not exist",
         lambda t: NET.save(t / "no" / "net"), MissingFileError, ("folder", "does not exist")),
    Case("TwoLayerPolyNet.load", "missing file", lambda t: cnn.TwoLayerPolyNet.load(t / "no.npz"),
         MissingFileError, ("no such file", "no.npz")),
    Case("TwoLayerPolyNet.load", "not an npz file",
         lambda t: cnn.TwoLayerPolyNet.load(_text(t / "text.npz", "hello")),
         ValidationError, ("is not a saved TwoLayerPolyNet",)),
    Case("TwoLayerPolyNet.load", "metadata without the activation",
         lambda t: cnn.TwoLayerPolyNet.load(_npz(
             t / "partial.npz", U=np.eye(2), alpha=np.ones(2), metadata=np.array(json.dumps(
                 {"format": "convexnn.TwoLayerPolyNet", "format_version": 1})))),
         ValidationError, ("damaged TwoLayerPolyNet metadata", "activation")),
    Case("TwoLayerPolyNet.load", "a file from a newer format",
         lambda t: cnn.TwoLayerPolyNet.load(_npz(
             t / "future.npz", U=np.eye(2), alpha=np.ones(2),
             metadata=np.array(json.dumps(NET.to_dict() | {"format_version": 99})))),
         IncompatibleVersionError, ("file format 99", "Upgrade convexnn")),
    # -- solve -------------------------------------------------------------------------------------
    Case("solve", "an array instead of a problem", lambda t: solve(X),
         ValidationError, ("problem must be a PolySDP", "make_problem", "ndarray")),
    Case("solve", "options not a dict", lambda t: solve(problem(), "clarabel", [("tol", 1)]),
         ValidationError, ("options must be a dict",)),
    Case("solve", "solver name None", lambda t: solve(problem(), None),
         ValidationError, ("solver must be a back-end name or 'auto'",)),
    Case("solve", "a loss the back-end cannot solve",
         lambda t: solve(cnn.make_problem(X, SIGNS, loss="hinge"), "native"),
         UnsupportedProblemError, ("native does not support the 'hinge' loss", "Usable instead")),
    Case("solve", "decomposition_rtol of 5",
         lambda t: solve(problem(), "clarabel", decomposition_rtol=5),
         ValidationError, ("decomposition_rtol must be a number in [0, 1)",)),
    # -- paths and certificates --------------------------------------------------------------------
    Case("fit_path", "a single beta instead of a list", lambda t: cnn.fit_path(X, Y, 0.1),
         ValidationError, ("betas must be a list", "[beta]")),
    Case("fit_path", "no betas", lambda t: cnn.fit_path(X, Y, []),
         ValidationError, ("betas must contain at least one value",)),
    Case("fit_path", "a negative beta", lambda t: cnn.fit_path(X, Y, [0.1, -1.0]),
         ValidationError, ("betas must be a positive finite number", "-1.0")),
    # beta = 0 (no penalty) was solved, as a point the path calls optimal_inaccurate
    Case("fit_path", "a zero beta", lambda t: cnn.fit_path(X, Y, [0.1, 0.0]),
         ValidationError, ("betas must be a positive finite number", "0.0")),
    Case("fit_path", "eps of 1 for the default grid", lambda t: cnn.fit_path(X, Y, eps=1.0),
         ValidationError, ("eps must be a number in (0, 1)", "1.0")),
    Case("fit_path", "n_betas of 0", lambda t: cnn.fit_path(X, Y, n_betas=0),
         ValidationError, ("n_betas must be a positive int", "0")),
    Case("beta_max", "mismatched lengths", lambda t: cnn.beta_max(X, Y[:-1]),
         ValidationError, ("y has 11 rows", "X has 12 samples")),
    Case("beta_max", "a loss that does not suit the targets",
         lambda t: cnn.beta_max(X, Y, loss="logistic"),
         ValidationError, ("logistic loss needs targets in {-1, +1}",)),
    # -- choosing beta: the CV estimators ----------------------------------------------------------
    Case("ConvexPolyRegressorCV.fit", "betas of 0", lambda t: RCV(betas=0).fit(X, Y),
         ValidationError, ("betas must be a positive int", "0")),
    Case("ConvexPolyRegressorCV.fit", "a negative beta in betas",
         lambda t: RCV(betas=[1.0, -1.0]).fit(X, Y),
         ValidationError, ("betas must be a positive finite number", "-1.0")),
    Case("ConvexPolyRegressorCV.fit", "eps of 2", lambda t: RCV(eps=2).fit(X, Y),
         ValidationError, ("eps must be a number in (0, 1)", "2")),
    Case("ConvexPolyRegressorCV.fit", "cv of 1 fold", lambda t: RCV(cv=1).fit(X, Y),
         ValidationError, ("cv must be at least 2 folds", "1")),
    Case("ConvexPolyRegressorCV.fit", "more folds than samples", lambda t: RCV(cv=20).fit(X, Y),
         ValidationError, ("cv=20", "n_splits=20", "n_samples=12")),
    Case("ConvexPolyRegressorCV.fit", "unknown scoring", lambda t: RCV(scoring="acc").fit(X, Y),
         ValidationError, ("scoring='acc' is not a scorer name", "get_scorer_names")),
    Case("ConvexPolyRegressorCV.fit", "n_jobs of 0", lambda t: RCV(n_jobs=0).fit(X, Y),
         ValidationError, ("n_jobs must be None or a non-zero int", "0")),
    Case("ConvexPolyClassifierCV.fit", "a single class",
         lambda t: cnn.ConvexPolyClassifierCV(**FAST).fit(X, np.zeros(12)),
         ValidationError, ("single class",)),
    Case("ConvexPolyClassifierCV.load", "the file a CV estimator saves",
         lambda t: cnn.ConvexPolyClassifierCV.load(
             cnn.ConvexPolyClassifier(**FAST).fit(X, LABELS).save(t / "m")),
         ValidationError, ("holds a ConvexPolyClassifier", "ConvexPolyClassifier.load")),
    Case("ConvexPolyRegressor.certify", "before fit", lambda t: R().certify(X, Y),
         NotFittedError, ("not fitted",)),
    Case("ConvexPolyClassifier.certify", "a label it was not fitted on",
         lambda t: cnn.ConvexPolyClassifier(**FAST).fit(X, LABELS).certify(X[:2], ["yes", "ja"]),
         ValidationError, ("labels the model was not fitted on: ja", "yes")),
    Case("plot_path", "a plain estimator", lambda t: cnn.plot_path(fitted_regressor(), t / "p"),
         ValidationError, ("cross-validated convexnn estimator", "ConvexPolyRegressor")),
    Case("certify", "not a network", lambda t: cnn.certify("net", X, Y, beta=0.1),
         ValidationError, ("network must be a TwoLayerPolyNet", "str")),
    Case("certify", "wrong number of features", lambda t: cnn.certify(NET, X[:, :2], Y, beta=0.1),
         ValidationError, ("X has 2 features", "neurons have 3")),
    Case("certify", "string targets", lambda t: cnn.certify(NET, X, LABELS, beta=0.1),
         InputTypeError, ("y must be numeric",)),
    # -- data sets and loaders ---------------------------------------------------------------------
    Case("load_dataset", "unknown name", lambda t: ds.load_dataset("mnist"),
         ValidationError, ("unknown data set 'mnist'", "digits")),
    Case("load_dataset", "test_size of 1.5", lambda t: ds.load_dataset("iris", test_size=1.5),
         ValidationError, ("test_size must be a fraction in (0, 1)", "1.5")),
    Case("load_dataset", "negative random_state",
         lambda t: ds.load_dataset("iris", random_state=-1),
         ValidationError, ("random_state must be an int in [0, 2**32 - 1]", "-1")),
    Case("load_dataset", "standardize not a bool",
         lambda t: ds.load_dataset("iris", standardize="yes"),
         ValidationError, ("standardize must be True or False",)),
    Case("make_planted", "no samples", lambda t: ds.make_planted(0, 3),
         ValidationError, ("n_samples must be a positive int", "0")),
    Case("make_planted", "negative noise", lambda t: ds.make_planted(10, 3, noise=-1.0),
         ValidationError, ("noise must be a finite non-negative number",)),
    Case("standardize", "NaN features", lambda t: ds.standardize(with_value(X, np.nan)),
         ValidationError, ("X_train contains", "NaN")),
    Case("train_test_split_data", "a stratify of another length",
         lambda t: ds.train_test_split_data(X, Y, stratify=[0, 1]),
         ValidationError, ("stratify must have one label per sample (12), got 2",)),
    Case("train_test_split_data", "X None", lambda t: ds.train_test_split_data(None, Y),
         ValidationError, ("X and y must be arrays", "NoneType")),
    Case("make_digit_images", "a scale_range that is one number",
         lambda t: ds.make_digit_images(10, scale_range=1),
         ValidationError, ("scale_range must be (low, high)", "1")),
    Case("make_digit_images", "an infinite scale_range",
         lambda t: ds.make_digit_images(10, scale_range=(1, float("inf"))),
         ValidationError, ("both finite",)),
    Case("standardize", "string features", lambda t: ds.standardize(np.array([["a"]])),
         InputTypeError, ("X_train must be numeric",)),
    Case("load_csv", "missing file", lambda t: ds.load_csv(t / "none.csv"),
         MissingFileError, ("data file not found", "none.csv")),
    Case("load_csv", "non-numeric feature",
         lambda t: ds.load_csv(_text(t / "s.csv", "1,2,3\nx,5,6\n")),
         DataFormatError, ("non-numeric feature column 0", "'x' at line 2", "encode categorical")),
    Case("load_csv", "a header with a number in it",
         lambda t: ds.load_csv(_text(t / "h.csv", "f1,2020,label\n1,2,3\n")),
         DataFormatError, ("'f1' at line 1", "if line 1 is a header, pass header=True",
                           "or rename its column names that read as numbers")),
    Case("load_csv", "missing value", lambda t: ds.load_csv(_text(t / "m.csv", "1,2,3\n4,,6\n")),
         DataFormatError, ("missing value in column 1 at line 2",)),
    Case("load_csv", "infinite target", lambda t: ds.load_csv(_text(t / "i.csv", "1,2\n3,inf\n")),
         DataFormatError, ("column 1 has the value 'inf' at line 2", "not a finite float64")),
    Case("load_csv", "feature beyond float64",
         lambda t: ds.load_csv(_text(t / "o.csv", "1e400,2\n3,4\n")),
         DataFormatError, ("column 0 has the value '1e400' at line 1",)),
    Case("load_csv", "empty file", lambda t: ds.load_csv(_text(t / "e.csv", "")),
         DataFormatError, ("is empty",)),
    Case("load_numpy", "NaN targets",
         lambda t: ds.load_numpy(_npz(t / "y.npz", X=np.ones((3, 2)), y=np.array([1, np.nan, 2]))),
         DataFormatError, ("y contains 1 NaN or infinite value(s)",)),
    Case("load_numpy", "string features",
         lambda t: ds.load_numpy(_npz(t / "x.npz", X=np.array([["a", "b"]] * 3), y=np.ones(3))),
         DataFormatError, ("X has dtype <U1", "expected numbers")),
    Case("load_numpy", "no samples",
         lambda t: ds.load_numpy(_npz(t / "n.npz", X=np.ones((0, 2)), y=np.ones(0))),
         DataFormatError, ("n.npz contains no samples", "(0, 2)")),
    Case("load_svmlight", "NaN feature value",
         lambda t: ds.load_svmlight(_text(t / "f.svm", "1 1:nan\n-1 2:1\n")),
         DataFormatError, ("1 of its feature values are NaN or infinite",)),
    Case("load_svmlight", "infinite label",
         lambda t: ds.load_svmlight(_text(t / "l.svm", "inf 1:1\n-1 2:1\n")),
         DataFormatError, ("1 of its labels are NaN or infinite",)),
    Case("certify", "NaN dual point",
         lambda t: cnn.certify(NET, X, Y, beta=0.1, dual_points=[np.full(len(X), np.nan)]),
         ValidationError, ("dual_points[0] contains 12 non-finite value(s)",)),
    Case("certify", "unknown solver, not tightening",
         lambda t: cnn.certify(NET, X, Y, beta=0.1, solver="foo"),
         UnknownSolverError, ("unknown solver 'foo'",)),
    Case("load_file", "unknown extension", lambda t: ds.load_file(_text(t / "d.xyz", "1")),
         ValidationError, ("cannot tell the format of d.xyz", ".csv")),
    Case("load_file", "path None", lambda t: ds.load_file(None),
         InputTypeError, ("path must be a file path", "None")),
    # -- compare -----------------------------------------------------------------------------------
    Case("compare", "unknown optimizer",
         lambda t: cnn.compare((X, Y), solvers=[], optimizers=["adamw"], progress=False),
         ValidationError, ("optimizers: unknown optimizer 'adamw'", "sgd")),
    Case("compare", "data of the wrong type", lambda t: cnn.compare(42, progress=False),
         ValidationError, ("data must be a data set name", "int")),
    Case("compare", "a rate search asked of backprop_options",
         lambda t: cnn.compare((X, Y), backprop_options={"lr": "tune"}, progress=False),
         ValidationError, ("backprop_options['lr'] must be a number", "tune_lr=True")),
    Case("compare", "negative beta", lambda t: cnn.compare((X, Y), beta=-1, progress=False),
         ValidationError, ("beta",)),
    Case("compare", "unknown solver option",
         lambda t: cnn.compare((X, Y), solvers=["clarabel"], optimizers=[],
                               solver_options={"bogus": 1}, progress=False),
         InvalidSolverOptionError, ("bogus",)),
    Case("compare", "classification loss on real targets",
         lambda t: cnn.compare((X, Y), loss="hinge", progress=False),
         ValidationError, ("needs class labels", "task='classification'")),
    Case("compare", "NaN in X", lambda t: cnn.compare((with_value(X, np.nan), Y), progress=False),
         ValidationError, ("X contains", "NaN")),
    Case("compare", "a single class",
         lambda t: cnn.compare((X, np.zeros(12, dtype=int)), task="classification", progress=False),
         ValidationError, ("single class",)),
    # None drew a fresh split that the report recorded as None: not reproducible from it
    Case("compare", "random_state=None",
         lambda t: cnn.compare((X, Y), solvers=[], optimizers=["sgd"], random_state=None,
                               progress=False),
         ValidationError, ("random_state must be an int in [0, 2**32 - 1]", "None")),
    Case("compare", "negative seed",
         lambda t: cnn.compare((X, Y), solvers=[], optimizers=["sgd"], seeds=[-1], progress=False),
         ValidationError, ("each seed must be an int in [0, 2**32 - 1]",)),
    # -- review of 2026-12-01: values that crashed inside numpy, torch or scikit-learn ----
    Case("ConvexPolyRegressor", "an int beta beyond float's range (OverflowError)",
         lambda t: R(beta=10**400, **FAST).fit(X, Y), ValidationError, ("beta must be",)),
    Case("ConvexPolyRegressor", "activation with an int beyond float's range",
         lambda t: R(activation=(10**400, 0, 0), **FAST).fit(X, Y),
         ValidationError, ("activation coefficients",)),
    Case("HuberLoss", "an int delta beyond float's range (TypeError)",
         lambda t: cnn.losses.HuberLoss(10**400), ValidationError, ("huber delta",)),
    Case("HuberLoss", "a numpy float32 delta", lambda t: cnn.losses.HuberLoss(np.float32(0.5)),
         None),
    Case("load_dataset", "an int test_size of every sample or more (OverflowError at 10**400)",
         lambda t: ds.load_dataset("iris", test_size=10**400),
         ValidationError, ("test_size must leave training samples", "150 samples")),
    Case("fit_path", "n_betas of 10**11 (a 745 GiB grid)",
         lambda t: cnn.fit_path(X, Y, n_betas=10**11),
         ValidationError, ("n_betas must be at most 10000",)),
    Case("ConvexPolyRegressorCV.fit", "betas=10**11",
         lambda t: RCV(betas=10**11).fit(X, Y), ValidationError, ("betas must be at most 10000",)),
    Case("load_svmlight", "a feature index beyond 2**31 - 1 (OverflowError in scikit-learn)",
         lambda t: ds.load_svmlight(_text(t / "big.svm", "1 3000000000:1\n0 1:2\n")),
         DataFormatError, ("beyond 2**31 - 1",)),
    Case("load_svmlight", "zero_based='yes' (blamed the file)",
         lambda t: ds.load_svmlight(_text(t / "ok.svm", "1 1:1\n0 2:2\n"), zero_based="yes"),
         ValidationError, ("zero_based must be True, False or 'auto'",)),
    Case("load_svmlight", "zero_based=np.False_ (read as True: one column more)",
         lambda t: _one_based_width(ds.load_svmlight(
             _text(t / "one.svm", "1 1:0.5 3:1\n0 2:1\n"), zero_based=np.False_)), None),
    Case("compare", "an option no back-end takes, under auto (checked after every method ran)",
         lambda t: cnn.compare((X, Y), optimizers=["sgd"], solver_options={"bogus": 1},
                               progress=False),
         InvalidSolverOptionError, ("no solver accepts option(s) bogus",)),
    Case("compare", "a bad native option under auto",
         lambda t: cnn.compare((X, Y), optimizers=["sgd"], solver_options={"engine": "bogus"},
                               progress=False),
         InvalidSolverOptionError, ("engine", "bogus")),
    Case("compare", "threads=2**40 (an OverflowError in torch)",
         lambda t: cnn.compare((X, Y), solvers=[], optimizers=["sgd"], threads=2**40,
                               progress=False),
         ValidationError, ("threads must be", "per CPU")),
    Case("compare", "a backprop width that cannot fit (ran minutes, then torch's error)",
         lambda t: cnn.compare((X, Y), solvers=[], optimizers=["sgd"], width=10**9,
                               progress=False),
         cnn.ProblemTooLargeError, ("backprop training of width 1000000000", "max_samples")),
    Case("compare", "a regression's test part of one sample (R^2 NaN on every row)",
         lambda t: cnn.compare((X, Y), optimizers=["sgd"], test_size=1, progress=False),
         ValidationError, ("R^2 needs at least 2",)),
    Case("certify", "a bad solver option without tighten (ignored)",
         lambda t: cnn.certify(fitted_regressor().network_, X, Y, beta=0.1,
                               solver_options={"tol": -1}),
         InvalidSolverOptionError, ("tol",)),
    Case("certify", "an unknown solver option without tighten (ignored)",
         lambda t: cnn.certify(fitted_regressor().network_, X, Y, beta=0.1, solver="clarabel",
                               solver_options={"engine": "ipm"}),
         InvalidSolverOptionError, ("engine",)),
    Case("TwoLayerPolyNet.to_torch", "dtype as a string",
         lambda t: NET.to_torch("float32"), ValidationError, ("floating-point torch dtype",)),
    Case("TwoLayerPolyNet.to_torch", "an integer dtype",
         lambda t: NET.to_torch(torch.int64), ValidationError, ("floating-point torch dtype",)),
    Case("BackpropRun.to_torch", "dtype as a string",
         lambda t: BR(epochs=2).fit(X, Y).run_.to_torch("float32"),
         ValidationError, ("floating-point torch dtype",)),
    Case("TwoLayerPolyNet", "alpha a tensor that requires grad",
         lambda t: cnn.TwoLayerPolyNet(torch.eye(3), torch.ones(3, requires_grad=True),
                                       "quadratic"), None),
    Case("ConvexPolyClassifier.fit", "y a tensor that requires grad (RuntimeError in torch)",
         lambda t: C(**FAST).fit(X, torch.tensor(SIGNS, requires_grad=True)), None),
    Case("ConvexPolyClassifier.fit", "y a bfloat16 tensor (numpy has no bfloat16)",
         lambda t: C(**FAST).fit(torch.tensor(X), torch.tensor(SIGNS, dtype=torch.bfloat16)),
         None),
    Case("PolySDP", "NaN in hand-built patches (failed inside eigh after every back-end)",
         lambda t: dataclasses.replace(problem(), patches=with_value(problem().patches, np.nan)),
         ValidationError, ("finite real numbers", "1 NaN or infinite")),
    Case("PolySDP", "integer targets (+-1 labels)", lambda t: dataclasses.replace(
        problem(), targets=np.sign(problem().targets).astype(np.int64)), None),
    Case("PolySDP", "complex patches (solved 'optimal' with a ComplexWarning)",
         lambda t: dataclasses.replace(problem(), patches=problem().patches.astype(complex)),
         ValidationError, ("complex128",)),
    Case("PolySDP", "no samples", lambda t: dataclasses.replace(
        problem(), patches=problem().patches[:0], targets=problem().targets[:0]),
         ValidationError, ("non-empty",)),
    Case("ConvexPolyRegressor.fit", "y with no columns (said 'y has no features')",
         lambda t: R(**FAST).fit(X, np.zeros((12, 0))), ValidationError,
         ("y has no columns (outputs)",)),
    Case("PolySDP", "a negative beta", lambda t: dataclasses.replace(problem(), beta=-1.0),
         ValidationError, ("beta must be a finite non-negative number",)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    if case.error is None:
        case.call(tmp_path)  # accepted: no exception
        return
    with pytest.raises(case.error) as caught:
        case.call(tmp_path)
    error = caught.value
    assert isinstance(error, ConvexNNError), f"{type(error).__name__} is not a ConvexNNError"
    if isinstance(error, ValidationError):
        assert isinstance(error, ValueError)
    message = str(error)
    for word in case.words:
        assert word in message, f"{word!r} not in: {message}"


def test_every_row_has_a_distinct_id():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


# -- the command line ------------------------------------------------------------------------------
CLI_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("unknown command", ["frobnicate"], ("invalid choice: 'frobnicate'", "--help")),
    ("unknown data set", ["compare", "--dataset", "mnist"], ("invalid choice: 'mnist'",)),
    ("missing data file", ["compare", "--data", "/nonexistent/d.csv"],
     ("MissingFileError", "data file not found")),
    ("negative beta", ["compare", "--dataset", "iris", "--beta", "-1"],
     ("ValidationError", "beta must be a finite non-negative number")),
    ("NaN beta", ["demo", "--beta", "nan"], ("ValidationError", "beta", "nan")),
    ("bad seeds", ["compare", "--dataset", "iris", "--seeds", "x"],
     ("argument --seeds", "comma-separated")),
    ("unknown solver", ["demo", "--solver", "gurobi"], ("UnknownSolverError", "gurobi")),
    ("bad activation", ["compare", "--dataset", "iris", "--activation", "1,2"],
     ("three numbers a,b,c",)),
    ("target without a file", ["compare", "--dataset", "iris", "--target", "3"],
     ("--target applies to --data files",)),
    ("fit without --out", ["fit", "--data", "d.csv"],
     ("the following arguments are required: --out",)),
    ("fit with a missing file", ["fit", "--data", "/nonexistent/d.csv", "--out", "m.npz"],
     ("MissingFileError", "data file not found")),
    ("predict with a missing model", ["predict", "/nonexistent/m.npz", "--data", "d.csv"],
     ("MissingFileError", "no such file")),
    ("cv with one fold", ["cv", "--dataset", "iris", "--folds", "1"],
     ("ValidationError", "--folds must be a number of folds, at least 2")),
]


@pytest.mark.parametrize("argv, words", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_reports_one_line_and_exit_code_2(argv, words, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("convexnn: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert out == ""  # nothing (a banner, a table) before the error
    for word in words:
        assert word in err


# -- the README table matches this one -------------------------------------------------------------
def _markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """``{first header cell: rows of cells}`` of the markdown tables in ``text``."""
    tables: dict[str, list[list[str]]] = {}
    block: list[list[str]] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif block:
            tables[block[0][0]] = [row for row in block[2:]]
            block = []
    return tables


def test_readme_troubleshooting_matches_the_hierarchy_and_this_table():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Troubleshooting")
    tables = _markdown_tables(readme[start: readme.index("\n## ", start + 1)])
    # The hierarchy table lists exactly the library's error classes.
    documented = {re.sub(r"`", "", row[0]) for row in tables["class"]}
    classes = {
        name for name, value in vars(cnn.exceptions).items()
        if isinstance(value, type) and issubclass(value, ConvexNNError)
    }
    assert documented == classes, documented ^ classes
    # The bad-input table names only those, and every one this file expects.
    named = {name for row in tables["input"] for name in re.findall(r"`(\w+)`", row[1])}
    assert named <= classes, named - classes
    expected = {case.error.__name__ for case in CASES if case.error is not None}
    assert expected <= named, expected - named


@pytest.mark.parametrize("argv", [["--debug", "demo", "--beta", "-1"],
                                  ["demo", "--debug", "--beta", "-1"]])
def test_cli_debug_shows_the_traceback_before_or_after_the_command(argv, capsys):
    assert main(argv) == 2  # the documented exit code (a re-raised error gave Python's 1)
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "ValidationError" in err and "beta" in err


def test_cli_unexpected_errors_say_how_to_see_the_traceback(monkeypatch, capsys):
    import convexnn.cli

    def crash(args):
        raise RuntimeError("something\ninternal")

    monkeypatch.setattr(convexnn.cli, "_solvers_command", crash)
    assert main(["solvers"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: something internal" in err
    assert "--debug" in err


def test_cli_output_into_a_closed_pipe_ends_quietly():
    """``convexnn solvers | head -0``: exit code 141 (SIGPIPE), nothing on stderr."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run([sys.executable, "-m", "convexnn.cli", "solvers"], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""


def test_solve_refuses_a_warm_start_that_is_not_a_solver_output():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    problem = cnn.make_problem(X, X[:, 0] ** 2, beta=0.1)
    result, _, _ = cnn.solve(problem, "native")
    for solver in ("native", "auto"):  # auto must not hide it by moving to a conic back-end
        with pytest.raises(ValidationError, match="warm_start must be the SolverOutput"):
            cnn.solve(problem, solver, warm_start=result)


def test_a_warm_start_of_another_width_starts_the_wide_reduction_cold():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 4))
    _, _, output = cnn.solve(cnn.make_problem(X, X[:, 0] ** 2, beta=0.1), "native")
    wide = cnn.make_problem(rng.standard_normal((5, 12)), rng.standard_normal(5), beta=0.05)
    cold, _, _ = cnn.solve(wide, "native")
    warm, _, _ = cnn.solve(wide, "native", warm_start=output)
    assert warm.solver == "native" and warm.status == "optimal"
    assert warm.objective == pytest.approx(cold.objective, rel=1e-6)


def test_a_certificate_or_objective_needs_its_beta():
    """A network certified at a default beta it was not fitted at gave a valid bound of
    another objective, silently: beta is required."""
    for call in (lambda: cnn.certify(NET, X, Y), lambda: NET.objective(X, Y),
                 lambda: cnn.lower_bound_from_dual(X, Y, np.zeros(len(Y)))):
        with pytest.raises(TypeError, match="required keyword-only argument: 'beta'"):
            call()


def test_public_helpers_refuse_wrong_types_with_validation_errors():
    problem = cnn.make_problem(X, Y, beta=0.1)
    with pytest.raises(ValidationError, match="problem must be a PolySDP"):
        cnn.certify_network("p", NET)
    with pytest.raises(ValidationError, match="network must be a TwoLayerPolyNet"):
        cnn.certify_network(problem, "n")
    with pytest.raises(ValidationError, match="missing: image_shape, filter_size, stride"):
        cnn.ConvGeometry.from_dict({})
    with pytest.raises(ValidationError, match="solver_options must be a dict"):
        cnn.solve(problem, "native", solver_options=[("tol", 1e-6)])


def test_a_problem_built_by_hand_is_checked_at_construction():
    """A PolySDP given a name for its activation, or samples without their patch axes,
    failed at solve time inside the back-end with an AttributeError."""
    problem = cnn.make_problem(X, Y, beta=0.1)
    parts = dict(patches=problem.patches, targets=problem.targets,
                 activation=problem.activation, beta=0.1, loss=problem.loss)
    for wrong, match in (
        ({"activation": "relu-approx"}, "activation must be a convexnn.Activation, got str"),
        ({"loss": "squared"}, "loss must be a convexnn.Loss, got str"),
        ({"patches": X}, r"shape \(n, R, P, h\).*make_problem"),
        ({"targets": problem.targets[:-1]}, "targets one of shape"),
        ({"geometry": (8, 8)}, "geometry must be a ConvGeometry or None"),
    ):
        with pytest.raises(ValidationError, match=match):
            cnn.PolySDP(**{**parts, **wrong})
    assert cnn.PolySDP(**parts).shape == problem.shape


def test_features_too_large_for_float64_are_refused_everywhere():
    """Features of 1e160 gave NaN predictions (a logistic classifier answered class 0 for
    every row), certificates with objective inf and gap NaN, and beta_max inf, with no
    convexnn error; fits failed deep inside every back-end."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), rng.standard_normal(30)
    model = cnn.ConvexPolyRegressor(solver="native").fit(X, y)
    backprop = cnn.train_backprop(X, y, epochs=1)
    huge = X * 1e60
    calls = {
        "fit": lambda: cnn.ConvexPolyRegressor(solver="native").fit(huge, y),
        "predict": lambda: model.predict(huge),
        "network": lambda: model.network_.predict(huge),
        "certify": lambda: cnn.certify(model.network_, huge, y, beta=0.1),
        "beta_max": lambda: cnn.beta_max(huge, y),
        "make_problem": lambda: cnn.make_problem(huge, y, beta=0.1),
        "backprop": lambda: cnn.train_backprop(huge, y, epochs=1),
        "backprop predict": lambda: backprop.predict(huge),
        "nuclear norm": lambda: nuclear_norm_program(huge, y, beta=0.1),
    }
    for name, call in calls.items():
        with pytest.raises(cnn.ValidationError, match=r"X has values up to 2\.3\d*e\+60; beyond"
                                                       r" 1e\+50 .*Rescale the features"):
            call()
            pytest.fail(f"{name} accepted features of 1e60")
    assert np.isfinite(model.predict(X * 1e40)).all()  # within the limit: finite


def test_masked_dates_mixed_column_names_and_unknown_loader_options(tmp_path):
    """Accepted silently (a masked array's masked values fitted, dates as day counts) or
    raised from deep inside scikit-learn / the loader (raw TypeError)."""
    rng = np.random.default_rng(40)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    mask = np.arange(90).reshape(30, 3) < 8
    with pytest.raises(cnn.ValidationError, match="masked array with 8 masked value"):
        cnn.ConvexPolyRegressor().fit(np.ma.masked_array(X, mask=mask), y)
    unmasked = cnn.ConvexPolyRegressor(solver="native").fit(np.ma.masked_array(X), y)
    assert unmasked.n_features_in_ == 3
    dates = np.arange(90).reshape(30, 3).astype("datetime64[D]")
    with pytest.raises(cnn.InputTypeError, match="got dtype datetime64.*Convert dates"):
        cnn.ConvexPolyRegressor().fit(dates, y)
    with pytest.raises(cnn.InputTypeError, match="X's column names: Feature names are only "):
        cnn.ConvexPolyRegressor().fit(pd.DataFrame(X, columns=[0, "a", 2.5]), y)
    (tmp_path / "ok.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(cnn.ValidationError,
                       match=r"unexpected option\(s\) \['bogus'\] for the csv file ok.csv; "
                             r"accepted: \['allow_missing_target', 'columns', 'delimiter'"):
        ds.load_file(tmp_path / "ok.csv", bogus=1)


@pytest.mark.parametrize("column", [
    pd.Series(pd.date_range("2020", periods=30)),
    pd.Series(pd.date_range("2020", periods=30, tz="UTC")),
    pd.Series(pd.to_timedelta(np.arange(30), unit="s")),
    pd.Series(np.arange(30) + 1j),
], ids=["dates", "dates-with-time-zone", "durations", "complex"])
def test_pandas_columns_of_dates_or_complex_numbers_are_refused(column):
    """A float cast would give nanosecond counts or drop the imaginary part (silently,
    or with numpy's warning only); numpy arrays of these dtypes are refused alike."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(30, 2)), columns=["a", "b"])
    y = X["a"].to_numpy()
    pattern = r"X must be numeric|Complex data not supported: X"
    with pytest.raises(InputTypeError, match=pattern):
        cnn.ConvexPolyRegressor(beta=0.1).fit(X.assign(c=column), y)
    model = cnn.ConvexPolyRegressor(beta=0.1, solver="native").fit(X.assign(c=1.0), y)
    with pytest.raises(InputTypeError, match=pattern):
        model.predict(X.assign(c=column))
    with pytest.raises(InputTypeError, match=r"y must be numeric|Complex data not supported: y"):
        cnn.ConvexPolyRegressor(beta=0.1).fit(X, column)


def test_a_pandas_index_is_taken_as_an_array():
    # (it has a dtype, not the dtypes the date check read first)
    X = np.random.default_rng(6).normal(size=(20, 2))
    model = cnn.ConvexPolyRegressor(beta=0.1, solver="native").fit(X, pd.Index(X[:, 0]))
    assert model.result_.status == "optimal"
    with pytest.raises(InputTypeError, match="Convert dates"):
        cnn.ConvexPolyRegressor(beta=0.1).fit(X, pd.date_range("2020", periods=20))


def test_a_failed_refit_leaves_nothing_of_the_previous_fit():
    """New classes_ beside the old network_ would predict the old model's outputs under
    the new labels; after a failed fit the estimator is not fitted."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    model = cnn.ConvexPolyClassifier(beta=0.1, solver="native").fit(
        X, np.where(X[:, 0] > 0, "a", "b"))
    model.set_params(solver_options={"bogus_option": 1})
    with pytest.raises(InvalidSolverOptionError):
        model.fit(X, np.array(["x", "y", "z"])[np.arange(30) % 3])
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.set_params(solver_options=None).fit(X, np.where(X[:, 0] > 0, "a", "b"))
    model.set_params(beta=-1.0)  # refused by fit's parameter check: unfitted too
    with pytest.raises(ValidationError, match="beta"):
        model.fit(X, np.where(X[:, 0] > 0, "a", "b"))
    assert not [name for name in vars(model) if name.endswith("_")]


@pytest.mark.parametrize("estimator", [cnn.BackpropPolyClassifier, cnn.BackpropPolyRegressor])
def test_a_failed_refit_of_a_backprop_estimator_leaves_it_unfitted(estimator):
    """The backprop estimators kept the old run_ beside the new n_features_in_ (then
    predict refused both feature counts) or the old model under old classes_."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    model = estimator(epochs=3, random_state=0).fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(ValidationError):
        model.fit(np.hstack([X, X]), np.full(30, np.nan))
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_label_shapes_get_advice_that_points_at_the_caller():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    labels = np.where(X[:, 0] > 0, "a", "b")
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed") as seen:
        cnn.ConvexPolyClassifier(beta=0.1, solver="native").fit(X, labels[:, None])
    assert seen[0].filename == __file__
    with pytest.raises(ValidationError, match="Multi-label targets are not supported"):
        cnn.ConvexPolyClassifier(beta=0.1).fit(X, np.eye(2)[(X[:, 0] > 0).astype(int)])


def test_predict_proba_of_a_loss_without_probabilities_says_why():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    model = cnn.ConvexPolyClassifier(beta=0.1, solver="native").fit(X, X[:, 0] > 0)
    assert not hasattr(model, "predict_proba")
    with pytest.raises(AttributeError) as caught:
        model.predict_proba(X)
    assert "only available with loss='logistic' or loss='cross-entropy'" in str(
        caught.value.__cause__)


def test_sparse_targets_get_a_convexnn_error_that_speaks_of_targets():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20, 3))
    with pytest.raises(ValidationError, match=r"y is a sparse matrix.*y.toarray\(\).ravel\(\)"):
        cnn.ConvexPolyClassifier(beta=0.1).fit(X, sp.csr_matrix((X[:, :1] > 0).astype(float)))
    with pytest.raises(ValidationError, match=r"y is a sparse matrix.*dense arrays") as caught:
        cnn.ConvexPolyRegressor(beta=0.1).fit(X, sp.csr_matrix(X[:, :1]))
    assert "features" not in str(caught.value)


def test_labels_that_print_like_the_classes_but_are_of_another_type_say_so():
    # "y has labels the model was not fitted on: 0, 1; its classes are 0, 1" contradicted itself
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 2))
    model = cnn.ConvexPolyClassifier(beta=0.1, solver="native").fit(
        X, np.where(X[:, 0] > 0, "1", "0"))
    with pytest.raises(ValidationError, match=r"labels are of dtype int64, the classes of dtype "
                                              r"<U1: give the labels as the fit did"):
        model.certify(X, (X[:, 0] > 0).astype(np.int64))


def test_convolutional_training_patches_that_cannot_fit_are_refused(monkeypatch):
    """20 images of 300 x 300 with 20 x 20 filters and 1 x 1 pooling (79000 regions) raised
    numpy's bare MemoryError while building the patches, before any solver's check."""
    from convexnn.solvers import _memory

    monkeypatch.setattr(_memory, "available_memory", lambda: 10**9)
    geometry = cnn.ConvGeometry((1, 300, 300), 20, pool_size=1)
    with pytest.raises(cnn.ProblemTooLargeError, match=r"building the training patches "
                       r"\(20 images x 78961 pooling regions x 1 patches x 400 values\) needs "
                       r"about 10.1 GB.*pool_size"):
        cnn.make_conv_problem(np.zeros((20, 1, 300, 300)), np.zeros(20), geometry)


def test_a_problem_built_by_hand_matches_its_geometry():
    """Without a geometry, patches of several regions solved with region 0's weights only
    and crashed in the polish with numpy's matmul error."""
    X = np.random.default_rng(0).normal(size=(6, 1, 4, 4))
    geometry = cnn.ConvGeometry((1, 4, 4), 2, pool_size=1)  # 9 regions of one patch
    problem = cnn.make_conv_problem(X, np.ones(6), geometry)
    parts = dict(patches=problem.patches, targets=problem.targets,
                 activation=problem.activation, beta=0.1, loss=problem.loss)
    with pytest.raises(ValidationError, match="several regions or patches per sample but no "
                       "geometry"):
        cnn.PolySDP(**parts)
    with pytest.raises(ValidationError, match=r"do not match its geometry \(1 regions"):
        cnn.PolySDP(**parts, geometry=cnn.ConvGeometry((1, 4, 4), 2))
    assert cnn.PolySDP(**parts, geometry=geometry).shape == problem.shape


def test_outputs_that_no_pooling_window_covers_are_warned_about():
    """5 x 6 images, 3 x 3 filters, 2 x 2 pooling: the 3 x 4 outputs' last row was ignored
    (image row 4 changed no prediction), silently."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 5, 6)), rng.normal(size=12)
    with pytest.warns(cnn.ConvexNNWarning, match=r"pool_size \(2, 2\) does not tile the "
                      r"convolution's 3 x 4 outputs: the last 1 row\(s\) and 0 column"):
        cnn.ConvexPolyConvRegressor(filter_size=3, pool_size=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cnn.ConvexNNWarning)
        cnn.ConvexPolyConvRegressor(filter_size=(2, 3), pool_size=2).fit(X, y)  # 4 x 4


def test_geometry_sizes_and_counts_of_any_integer_kind():
    geometry = cnn.ConvGeometry((1, 8, 8), np.array(3), stride=np.array(1))
    assert geometry.filter_size == (3, 3) and geometry.stride == (1, 1)
    assert cnn.ConvGeometry((2**32, 2**32), 1).n_pixels == 2**64  # wrapped to 0 in int64
    with pytest.raises(ValidationError) as error:
        cnn.ConvexPolyConvRegressor().fit(np.zeros((4, 1, 1, 5, 6)), np.zeros(4))
    assert "convolutional estimator" not in str(error.value)  # it is one

"""scikit-learn estimators that train by solving the exact convex program.

``fit`` builds the SDP (:mod:`convexnn.formulations`), solves it
(:func:`convexnn.solve`) and keeps the decomposed, polished and certified
network (see :mod:`convexnn._polish`). The estimators follow scikit-learn's contract:
parameters are stored untouched by ``__init__`` and validated in ``fit``;
fitted attributes end in an underscore; they clone, pickle, and work in
``Pipeline`` and ``GridSearchCV``.

``fit`` warns (:class:`~convexnn.exceptions.FeatureScalingWarning`) when
feature scales differ by more than 1e4; ``save`` / ``load`` write and read a
portable ``.npz`` file (see :mod:`convexnn._persistence`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from convexnn import _persistence
from convexnn._solve import solve
from convexnn._targets import (
    EncodedLabelsMixin,
    FittedObjectiveMixin,
    MultiOutputRegressorMixin,
    encode_labels,
    regression_targets,
)
from convexnn._validation import (
    check_beta,
    check_bool,
    check_fitted,
    check_interval,
    check_solver,
    check_solver_options,
    estimator_features,
    user_stacklevel,
    warn_if_badly_scaled,
)
from convexnn.activations import get_activation
from convexnn.certificates import Certificate, certify
from convexnn.exceptions import ConvexNNWarning, ValidationError
from convexnn.formulations import problem_for
from convexnn.losses import Loss, get_loss
from convexnn.patches import ConvGeometry
from convexnn.solvers._distributed import communicator_for, is_distributed_option

logger = logging.getLogger("convexnn")


class _ConvexPolyBase(FittedObjectiveMixin, BaseEstimator):
    """Shared parameters, validation and fitting of the convex estimators."""

    _input_ndims: tuple[int, ...] = (2,)

    def __init__(
        self,
        *,
        activation: Any = "relu-approx",
        beta: float = 0.1,
        loss: str | Loss = "squared",
        solver: str = "auto",
        solver_options: Mapping[str, Any] | None = None,
        decomposition_rtol: float = 1e-9,
        verbose: bool = False,
    ) -> None:
        self.activation = activation
        self.beta = beta
        self.loss = loss
        self.solver = solver
        self.solver_options = solver_options
        self.decomposition_rtol = decomposition_rtol
        self.verbose = verbose

    # -- validation, in one place -------------------------------------------
    #: Each parameter's check: takes the raw value, returns it validated or raises
    #: a ValidationError that names the parameter (scikit-learn's
    #: ``_parameter_constraints``, as functions). Checked in ``fit``, never in
    #: ``__init__``, as scikit-learn's contract requires.
    _parameter_constraints: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "activation": get_activation,
        "beta": check_beta,
        "loss": get_loss,
        "solver": check_solver,
        "solver_options": check_solver_options,
        "decomposition_rtol": lambda value: check_interval(
            value, "decomposition_rtol", low=0.0, high=1.0
        ),
        "verbose": lambda value: check_bool(value, "verbose"),
    }

    def _check_params(self) -> dict[str, Any]:
        """Every parameter validated by :attr:`_parameter_constraints`."""
        return {
            name: check(getattr(self, name)) for name, check in self._parameter_constraints.items()
        }

    def _geometry(self, X: np.ndarray) -> ConvGeometry | None:
        return None

    def _features(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validated features; records / checks ``n_features_in_`` and feature names."""
        return estimator_features(self, X, reset=reset, ndims=self._input_ndims)

    def _targets(self, y: Any, n_samples: int, loss: Loss, *, reset: bool) -> np.ndarray:
        """Loss-encoded targets of ``y``; ``reset`` (in ``fit``) records what ``y`` defines
        (a classifier's ``classes_``), otherwise the fitted encoding is used."""
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> Any:
        """Solve the convex program for ``(X, y)``.

        Parameters
        ----------
        X : array-like
            Features (images for the convolutional estimators).
        y : array-like
            Targets, one or several columns (regressors), or class labels of
            any type (classifiers; encoded as the class docstring says).

        Returns
        -------
        self
        """
        with self._fitting():
            params = self._check_params()
            distributed = (params["solver_options"] or {}).get("distributed")
            parallel = (distributed is not None and distributed is not False
                        and is_distributed_option(distributed)
                        and str(params["solver"]).lower() in ("auto", "native"))
            if parallel and isinstance(self, ClassifierMixin):
                # Each rank would encode its own labels: another problem per rank
                raise ValidationError(
                    "a data-parallel fit of a classifier needs every rank's classes: use "
                    "convexnn.distributed.fit(X, y, task='classification', ...)"
                )
            # A rank whose own rows fail the checks tells the others at once (they waited
            # for the group's timeout, then failed without a cause); an option the solve
            # refuses is left to its own checks and words
            with communicator_for(distributed if parallel else None).guard():
                features = self._features(X, reset=True)
                self._solve(features,
                            self._targets(y, len(features), params["loss"], reset=True),
                            params)
        return self

    def certify(self, X: Any, y: Any, *, tighten: bool = False) -> Certificate:
        """How far the fitted network is from the global optimum on ``(X, y)``.

        The network's objective ``loss(f(X), y) + beta * sum |alpha|`` on the
        given data (e.g. held-out data, or the training data again), a
        certified lower bound on the optimum over all networks of this
        activation on that data, and the gap between them
        (:func:`convexnn.certify`). ``y`` is given as for ``fit`` (class
        labels for a classifier, encoded with the fitted ``classes_``). The
        fit's ``result_.dual_point`` is one of the dual candidates when it
        has one row per sample of ``X`` (on the training data it reproduces
        ``result_.lower_bound``; elsewhere any dual point gives a valid bound).

        Parameters
        ----------
        X, y : array-like
        tighten : bool, default=False
            Also solve the convex problem on ``(X, y)`` (with the estimator's
            ``solver`` and ``solver_options``) and use its dual point (see
            :func:`convexnn.certify`).

        Returns
        -------
        Certificate

        Raises
        ------
        NotFittedError
            The estimator has not been fitted.
        ValidationError
            ``X`` or ``y`` do not match the fitted model (a label that is not
            in ``classes_``, other columns).
        """
        check_fitted(self, "network_")
        features = self._features(X, reset=False)
        loss = self._fitted_loss()
        targets = self._targets(y, len(features), loss, reset=False)
        fitted = self.result_.dual_point
        candidates = [] if fitted is None or len(fitted) != len(features) else [fitted]
        return certify(self.network_, features, targets, loss=loss, beta=self._fitted_beta(),
                       dual_points=candidates, tighten=tighten, solver=self.solver,
                       solver_options=self.solver_options)

    def _solve(self, X: np.ndarray, targets: np.ndarray, params: dict[str, Any],
               geometry: ConvGeometry | None = None) -> None:
        # (a CV estimator's refit passes the geometry its fit built, and warned about)
        geometry = self._geometry(X) if geometry is None else geometry
        problem = problem_for(X, targets, activation=params["activation"], beta=params["beta"],
                              loss=params["loss"], geometry=geometry)
        self.result_, self.network_, _ = solve(
            problem, self.solver, self._options(), decomposition_rtol=self.decomposition_rtol
        )
        self.geometry_ = geometry
        self._remember_objective(params["beta"], self.loss)
        # What save writes: the parameters of this fit, whatever set_params does since.
        self._params_at_fit_ = self.get_params(deep=False)

    def _options(self) -> dict[str, Any]:
        """The solver options of a solve (``verbose=True`` shows the solver's progress)."""
        options = dict(self.solver_options or {})
        if self.verbose:
            options.setdefault("verbose", True)
        return options

    def _decision(self, X: Any) -> np.ndarray:
        check_fitted(self, "network_")
        features = self._features(X, reset=False)
        return self.network_.predict(features)

    # -- persistence -----------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to a portable ``.npz`` file; returns its path.

        The file holds the network's arrays, the class labels and JSON metadata
        (the estimator's class and parameters, ``n_features_in_``, the solve's
        result, the file format and the convexnn version) -- nothing is
        pickled. ``.npz`` is appended to ``path`` unless it ends in it.
        Load with ``<EstimatorClass>.load(path)``; predictions are reproduced
        exactly.

        Raises
        ------
        NotFittedError
            The estimator has not been fitted.
        ValidationError
            A parameter cannot be stored as JSON (e.g. a custom loss object).
        """
        check_fitted(self, "network_")
        return _persistence.save_estimator(self, path)

    @classmethod
    def load(cls, path: str | Path):
        """Read an estimator written by :meth:`save` (it must be of this class).

        Raises
        ------
        MissingFileError
            No such file.
        ValidationError
            Not a saved estimator of this class, or a damaged file.
        IncompatibleVersionError
            Written in a newer file format than this version of convexnn reads.
        """
        return _persistence.load_estimator(cls, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags


class ConvexPolyRegressor(MultiOutputRegressorMixin, RegressorMixin, _ConvexPolyBase):
    """Two-layer polynomial-activation network trained to its global optimum.

    Solves ``min loss(f(X), y) + beta * sum_j |alpha_j|`` over networks
    ``f(x) = sum_j alpha_j sigma(u_j^T x)``, ``||u_j|| = 1``, of any width,
    through its exact semidefinite reformulation.

    Parameters
    ----------
    activation : {"relu-approx", "quadratic"} or (a, b, c), default="relu-approx"
        ``sigma(t) = a t^2 + b t + c``.
    beta : float, default=0.1
        Strength of the l1 penalty on the output weights (>= 0).
    loss : {"squared", "huber", "l1"} or Loss, default="squared"
        Summed over samples; squared is ``1/2 sum (f(x) - y)^2``.
    solver : str, default="auto"
        A back-end name (see ``solvers.available()``) or ``"auto"``.
    solver_options : dict, optional
        ``tol``, ``max_iter``, ``time_limit``, ``verbose`` or back-end options.
    decomposition_rtol : float, default=1e-9
        Eigenvalues below this fraction of the largest count as zero in
        Neural Decomposition.
    verbose : bool, default=False
        Show the solver's progress.

    Attributes
    ----------
    result_ : SolveResult
        Status, objective, certified lower bound and gap, time, solver.
    network_ : TwoLayerPolyNet
        The recovered network.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    geometry_ : ConvGeometry or None
        The image and filter geometry of the convolutional estimators; ``None``
        for the dense ones.

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn import ConvexPolyRegressor
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> y = X[:, 0] ** 2 - X[:, 1]
    >>> reg = ConvexPolyRegressor(beta=1e-3, solver="clarabel").fit(X, y)
    >>> reg.result_.relative_gap < 1e-5
    True
    >>> path = reg.save("model")  # doctest: +SKIP
    >>> ConvexPolyRegressor.load(path).predict(X)  # doctest: +SKIP
    """

    def _targets(self, y: Any, n_samples: int, loss: Loss, *, reset: bool) -> np.ndarray:
        return regression_targets(y, n_samples)


class ConvexPolyClassifier(EncodedLabelsMixin, ClassifierMixin, _ConvexPolyBase):
    """Classifier from a globally optimal two-layer polynomial-activation network.

    Labels of any type are encoded for the loss: with two classes, a single
    output with targets -1/+1 (squared, hinge, logistic); with more, one
    output per class with -1/+1 one-vs-rest targets; the row-wise losses
    (cross-entropy, multiclass-hinge) always use one output per class with
    one-hot targets.

    Parameters
    ----------
    activation, beta, solver, solver_options, decomposition_rtol, verbose
        As for :class:`ConvexPolyRegressor`.
    loss : {"squared", "hinge", "logistic", "cross-entropy", "multiclass-hinge"}, default="squared"

    Attributes
    ----------
    classes_ : ndarray
    result_ : SolveResult
    network_ : TwoLayerPolyNet
    n_features_in_ : int
    geometry_ : ConvGeometry or None
        As for :class:`ConvexPolyRegressor`.
    """

    def _targets(self, y: Any, n_samples: int, loss: Loss, *, reset: bool) -> np.ndarray:
        if reset:
            self.classes_, targets = encode_labels(y, n_samples, loss)
            return targets
        return encode_labels(y, n_samples, loss, classes=self.classes_)[1]


class _ConvMixin:
    """Convolution + average pooling parameters shared by the conv estimators."""

    _input_ndims = (2, 3, 4)

    def _features(self, X: Any, *, reset: bool) -> np.ndarray:
        # their patches' scales are checked with the geometry (_checked)
        try:
            return estimator_features(self, X, reset=reset, ndims=self._input_ndims,
                                      scale_check=False)
        except ValidationError as error:
            if reset or not hasattr(self, "geometry_") or "features, but" not in str(error):
                raise
            if np.ndim(X) > 2:  # images of another shape: say so in terms of images
                self.geometry_.as_images(np.asarray(X))
            # flat rows (scikit-learn's own message, which its checks expect), or one image
            raise ValidationError(
                f"{error} (images: flat rows of {self.geometry_.n_pixels} pixels, or an "
                f"array of images of shape {self.geometry_.image_shape})"
            ) from error

    def __init__(
        self,
        *,
        image_shape: Any = None,
        filter_size: Any = 3,
        stride: Any = 1,
        pool_size: Any = None,
        activation: Any = "relu-approx",
        beta: float = 0.1,
        loss: str | Loss = "squared",
        solver: str = "auto",
        solver_options: Mapping[str, Any] | None = None,
        decomposition_rtol: float = 1e-9,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            activation=activation, beta=beta, loss=loss, solver=solver,
            solver_options=solver_options, decomposition_rtol=decomposition_rtol,
            verbose=verbose,
        )
        self.image_shape = image_shape
        self.filter_size = filter_size
        self.stride = stride
        self.pool_size = pool_size

    def _geometry(self, X: np.ndarray) -> ConvGeometry:
        if self.image_shape is not None and not isinstance(self.image_shape,
                                                           (tuple, list, np.ndarray)):
            raise ValidationError(
                f"image_shape must be None or a tuple (H, W) or (C, H, W), got "
                f"{self.image_shape!r}"
            )
        if self.image_shape is None and X.ndim == 4 and X.shape[3] <= 4 < X.shape[1]:
            warnings.warn(
                f"X of shape {X.shape} is read channels-first, as {X.shape[1]} channels of "
                f"{X.shape[2]} x {X.shape[3]} images; if its last axis holds the channels, "
                "pass X.transpose(0, 3, 1, 2) (or image_shape=(C, H, W))",
                ConvexNNWarning, stacklevel=user_stacklevel(),
            )
        if self.image_shape is not None or X.ndim > 2:
            shape = self.image_shape if self.image_shape is not None else X.shape[1:]
            return self._checked(
                ConvGeometry(tuple(shape), self.filter_size, self.stride, self.pool_size), X)
        # 2-D X without image_shape: one-channel 1-D signals; a positive int size acts
        # along the signal (anything else goes to ConvGeometry's checks as given).
        def along(value: Any) -> Any:
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
                return (1, int(value))
            return value

        filter_size = along(self.filter_size)
        # Only a length along() turned into a pair is cut: a pair is the user's geometry.
        if filter_size is not self.filter_size and filter_size[1] > X.shape[1]:
            warnings.warn(
                f"filter_size={self.filter_size} is longer than the {X.shape[1]}-sample "
                f"signals of 2-D X: cut to {X.shape[1]}, a dense network (pass image_shape "
                "if X holds images)",
                ConvexNNWarning, stacklevel=user_stacklevel(),
            )
            filter_size = (1, X.shape[1])
        return self._checked(ConvGeometry(
            (1, 1, X.shape[1]),
            filter_size,
            self.stride,
            None if self.pool_size is None else along(self.pool_size),
        ), X)

    @staticmethod
    def _checked(geometry: ConvGeometry, X: np.ndarray) -> ConvGeometry:
        """``geometry``, after warnings about what it makes of ``X``: training patches
        badly scaled (their entries, not the pixels: the filters share their weights over
        the image), or outputs that no pooling region covers."""
        channels, (height, width) = geometry.image_shape[0], geometry.filter_size
        labels = [f"channel {c}, filter row {r}, column {k}" for c in range(channels)
                  for r in range(height) for k in range(width)]  # the patches' order
        warn_if_badly_scaled(X, entries=(geometry.patch_scales(X), labels))
        if geometry.pool_size is not None:
            (rows, cols), (pool_rows, pool_cols) = geometry.pooled_grid, geometry.pool_size
            outputs = geometry.output_grid
            left_out = (outputs[0] - rows * pool_rows, outputs[1] - cols * pool_cols)
            if any(left_out):
                warnings.warn(
                    f"pool_size {geometry.pool_size} does not tile the convolution's "
                    f"{outputs[0]} x {outputs[1]} outputs: the last {left_out[0]} row(s) and "
                    f"{left_out[1]} column(s) of them, and the pixels only they see, are "
                    "ignored (as by torch's AvgPool2d). Choose a pool_size that divides the "
                    "output grid, or pool_size=None (global pooling).",
                    ConvexNNWarning, stacklevel=user_stacklevel(),
                )
        return geometry


_CONV_DOC = """
    image_shape : (channels, height, width) or (height, width), optional
        Shape of one image. When None, 2-D ``X`` holds one-channel 1-D
        signals and 3-D / 4-D ``X`` gives the shape itself.
    filter_size : int or (int, int), default=3
        On 1-D signals an int is the filter's length; one longer than the
        signals is cut to their length, with a warning (the network is then
        dense).
    stride : int or (int, int), default=1
    pool_size : int or (int, int) or None, default=None
        Average-pooling window over the convolution's output; None pools
        globally (the SDP then has the size of the filter, not the image).
        Windows tile the output grid from its corner without overlap; the
        rows and columns of outputs left over are ignored, as by torch's
        ``AvgPool2d`` (with a warning at ``fit``).
"""


class ConvexPolyConvClassifier(_ConvMixin, ConvexPolyClassifier):
    __doc__ = (
        "Convolutional classifier (conv + polynomial activation + average pooling +"
        " linear), trained to its global optimum.\n\n    Parameters\n    ----------"
        + _CONV_DOC
        + "    Other parameters as for :class:`ConvexPolyClassifier`.\n"
    )


class ConvexPolyConvRegressor(_ConvMixin, ConvexPolyRegressor):
    __doc__ = (
        "Convolutional regressor (conv + polynomial activation + average pooling +"
        " linear), trained to its global optimum.\n\n    Parameters\n    ----------"
        + _CONV_DOC
        + "    Other parameters as for :class:`ConvexPolyRegressor`.\n"
    )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Shared filters + average pooling are (near) translation invariant: on
        # generic tabular data with one informative column (sklearn's
        # make_regression checks) R^2 > 0.5 is not to be expected.
        tags.regressor_tags.poor_score = True
        return tags

"""scikit-learn estimators around the backprop baselines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from convexnn._targets import (
    EncodedLabelsMixin,
    FittedObjectiveMixin,
    MultiOutputRegressorMixin,
    encode_labels,
    regression_targets,
)
from convexnn._validation import (
    check_bool,
    check_fitted,
    check_seed,
    estimator_features,
    is_int,
    local_random_state,
)
from convexnn.baselines._metrics import Metric, accuracy, r2
from convexnn.baselines._settings import TrainingSettings, check_training_settings
from convexnn.baselines._training import TrainingProblem, run_training
from convexnn.certificates import Certificate, certify
from convexnn.exceptions import ValidationError
from convexnn.losses import Loss

__all__ = ["BackpropPolyClassifier", "BackpropPolyRegressor"]


class _BackpropPolyBase(FittedObjectiveMixin, BaseEstimator):
    """Shared parameters, validation and fitting of the backprop estimators."""

    def __init__(
        self,
        *,
        width: int | None = None,
        activation: Any = "relu-approx",
        beta: float = 0.1,
        loss: str | Loss = "squared",
        objective: str = "convex",
        optimizer: str = "adam",
        lr: float | str | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        schedule: str = "constant",
        init: str = "kaiming",
        init_scale: float = 1.0,
        time_limit: float | None = None,
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.width = width
        self.activation = activation
        self.beta = beta
        self.loss = loss
        self.objective = objective
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.init = init
        self.init_scale = init_scale
        self.time_limit = time_limit
        self.random_state = random_state
        self.verbose = verbose

    _metric: Metric = staticmethod(r2)  # type: ignore[assignment]

    # -- validation, in one place -------------------------------------------
    def _check_params(self) -> tuple[TrainingSettings, int]:
        """Validate every parameter (the error names it); returns the settings and the seed."""
        settings = check_training_settings(
            width=self.width, activation=self.activation, loss=self.loss, beta=self.beta,
            objective=self.objective, optimizer=self.optimizer, lr=self.lr, epochs=self.epochs,
            batch_size=self.batch_size, schedule=self.schedule, init=self.init,
            init_scale=self.init_scale, time_limit=self.time_limit,
        )
        check_bool(self.verbose, "verbose")
        return settings, self._seed()

    def _seed(self) -> int:
        """A torch seed: the int itself, else drawn from the random state.

        ``None`` draws from fresh entropy, never from NumPy's global generator.
        """
        state = self.random_state
        if is_int(state):
            return check_seed(state, "random_state")
        return int(local_random_state(state).randint(np.iinfo(np.int32).max))

    def _features(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validated features; records / checks ``n_features_in_`` and feature names."""
        return estimator_features(self, X, reset=reset)

    def _fit(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        single_output: bool,
        settings: TrainingSettings,
        seed: int,
    ) -> None:
        problem = TrainingProblem.create(
            features, targets.reshape(len(features), -1), settings, single_output=single_output,
            score=self._metric,
        )
        self.run_ = run_training(problem, seed, progress=bool(self.verbose))
        self._remember_objective(self.beta, self.loss)
        self.network_ = self.run_.network
        self.W_ = self.run_.W
        self.alpha_ = self.run_.alpha

    def _decision(self, X: Any) -> np.ndarray:
        check_fitted(self, "run_")
        return self.run_.predict(self._features(X, reset=False))

    def certify(self, X: Any, y: Any, *, tighten: bool = False, solver: str = "auto",
                solver_options: Mapping[str, Any] | None = None) -> Certificate:
        """How far the trained network is from the global optimum of the convex problem
        on ``(X, y)`` (:func:`convexnn.certify`; ``y`` as for ``fit``).

        Backprop's gradient at its own network is a valid but often loose dual
        point; ``tighten=True`` also solves the convex problem (``solver``,
        with ``solver_options``) for its dual point.

        Raises
        ------
        NotFittedError
            Not fitted.
        ValidationError
            ``objective="weight-decay"``: that run trains no network of the
            convex problem.
        """
        check_fitted(self, "run_")
        if self.network_ is None:
            raise ValidationError(
                "objective='weight-decay' trains no network of the convex problem; certify "
                "needs objective='convex'"
            )
        features = self._features(X, reset=False)
        loss = self._fitted_loss()
        targets = self._encoded_targets(y, len(features), loss)
        return certify(self.network_, features, targets, loss=loss, beta=self._fitted_beta(),
                       tighten=tighten, solver=solver, solver_options=solver_options)

    def _encoded_targets(self, y: Any, n_samples: int, loss: Loss) -> np.ndarray:
        """``y`` encoded as ``fit`` encodes it (a classifier: with the fitted classes)."""
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags


_PARAMS_DOC = """
    width : int, optional
        Number of neurons; default ``2 * C * (d + 1)`` (C outputs).
    activation : {"relu-approx", "quadratic"} or (a, b, c), default="relu-approx"
    beta : float, default=0.1
        Penalty strength (l1 on the output weights, or weight decay).
    objective : {"convex", "weight-decay"}, default="convex"
        The convex problem's objective (unit-norm first layer by
        reparametrisation) or ``(beta / 2) (||W||^2 + ||alpha||^2)``.
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs"}
        Default ``"adam"``.
    lr : float or "tune", optional
        Default :func:`convexnn.baselines.default_lr` of the optimizer and
        width; ``"tune"`` searches a log-spaced grid first (``run_.lr_search``).
    epochs : int, optional
        Default :data:`convexnn.baselines.DEFAULT_EPOCHS`.
    batch_size : int, optional
        None for full batch.
    schedule : {"constant", "step", "cosine", "exponential"}, default="constant"
    init : {"kaiming", "xavier", "normal"}, default="kaiming"
    init_scale : float, default=1.0
    time_limit : float, optional
        Training seconds.
    random_state : int, RandomState or None
        An int is the torch seed itself (so ``run_`` equals
        ``train_backprop(..., seed=random_state)``); a RandomState gives a
        seed drawn from it; None a seed from fresh entropy (NumPy's global
        generator is never used).
    verbose : bool, default=False
        Show a progress bar.
"""


class BackpropPolyRegressor(MultiOutputRegressorMixin, RegressorMixin, _BackpropPolyBase):
    __doc__ = (
        "Two-layer polynomial-activation network trained by backprop (a local method).\n\n"
        "    The baseline for :class:`convexnn.ConvexPolyRegressor`: the same model and, with\n"
        "    ``objective=\"convex\"``, the same objective.\n\n"
        "    Parameters\n    ----------\n"
        "    loss : {\"squared\", \"huber\", \"l1\"} or Loss, default=\"squared\""
        + _PARAMS_DOC
        + "\n    Attributes\n    ----------\n"
        "    run_ : BackpropRun\n        History, final objectives, timing, divergence flag.\n"
        "    network_ : TwoLayerPolyNet or None\n        For the convex objective.\n"
        "    W_, alpha_ : ndarray\n        Raw weights.\n"
        "    n_features_in_ : int\n"
    )

    def fit(self, X: Any, y: Any) -> BackpropPolyRegressor:
        """Train on ``(X, y)``; ``y`` may have several columns."""
        with self._fitting():
            settings, seed = self._check_params()
            features = self._features(X, reset=True)
            targets = self._encoded_targets(y, len(features), settings.loss)
            settings.loss.check_targets(targets.reshape(len(features), -1))
            self._fit(features, targets, targets.ndim == 1, settings, seed)
        return self

    def _encoded_targets(self, y: Any, n_samples: int, loss: Loss) -> np.ndarray:
        return regression_targets(y, n_samples)


class BackpropPolyClassifier(EncodedLabelsMixin, ClassifierMixin, _BackpropPolyBase):
    __doc__ = (
        "Classifier from a two-layer polynomial-activation network trained by backprop.\n\n"
        "    The baseline for :class:`convexnn.ConvexPolyClassifier`, with the same label\n"
        "    encoding (:mod:`convexnn._targets`).\n\n"
        "    Parameters\n    ----------\n"
        "    loss : {\"squared\", \"hinge\", \"logistic\", \"cross-entropy\", "
        "\"multiclass-hinge\"}, "
        "default=\"squared\""
        + _PARAMS_DOC
        + "\n    Attributes\n    ----------\n"
        "    classes_ : ndarray\n"
        "    run_ : BackpropRun\n        Its metric is the training accuracy.\n"
        "    network_ : TwoLayerPolyNet or None\n"
        "    W_, alpha_ : ndarray\n"
        "    n_features_in_ : int\n"
    )

    _metric = staticmethod(accuracy)

    def fit(self, X: Any, y: Any) -> BackpropPolyClassifier:
        """Encode the labels and train."""
        with self._fitting():
            settings, seed = self._check_params()
            features = self._features(X, reset=True)
            self.classes_, targets = encode_labels(y, len(features), settings.loss)
            self._fit(features, targets, targets.ndim == 1, settings, seed)
        return self

    def _encoded_targets(self, y: Any, n_samples: int, loss: Loss) -> np.ndarray:
        return encode_labels(y, n_samples, loss, classes=self.classes_)[1]

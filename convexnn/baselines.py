"""Backprop baselines: the same two-layer polynomial-activation network, trained locally.

The network is ``f(x) = sum_j alpha_j sigma(u_j^T x)`` with first-layer
weights ``W`` of shape ``(m, d)`` and output weights ``alpha`` of shape
``(m,)`` or ``(m, C)``, any width ``m``. Two training objectives:

``objective="convex"``
    Exactly the convex problem's objective (design notes, section 1):
    ``loss(f(X), y) + beta * sum_j ||alpha_j||_1`` with ``u_j = w_j / ||w_j||``
    (the unit-norm constraint by reparametrisation). Its values are directly
    comparable with the convex optimum, and the returned
    :class:`~convexnn.network.TwoLayerPolyNet` has exactly this objective.
``objective="weight-decay"``
    ``loss(f(X), y) + (beta / 2) * (||W||_F^2 + ||alpha||_F^2)`` with
    unnormalised ``W`` (``u_j = w_j`` in ``f``).

Losses are sums over samples (squared loss is ``1/2 sum (yhat - y)^2``) and
are the :mod:`convexnn.losses` objects the convex solvers use, so
objectives are identical.

Every run records, at epoch 0, every ``record_every`` epochs and at the
end: the training objective, the *convex objective* (objective (a)
evaluated at the current weights ``U = W / ||W||`` (rows), ``alpha`` --
for weight-decay runs this is the objective of the feasible point of the
convex problem obtained by normalising the rows of ``W``; it is not the
same function as the trained network unless the rows have unit norm, but
it is always >= the convex optimum), train / test metrics and the training
wall time (evaluation for the records is not counted).

Learning rates
--------------
Optimizers step on the objective divided by the number of samples ``n``
(the same minimisers; a mini-batch ``B`` contributes
``loss_B / |B| + penalty / n``, an unbiased estimate), so learning rates do
not depend on ``n``. The recorded objectives are always the plain sums.
Defaults (``lr=None``):

=========  =======  ======================================================
optimizer  lr       why
=========  =======  ======================================================
sgd        see      ``min(1e-2, 3 / width)`` (:func:`default_lr`): plain
           right    SGD's stable step shrinks like 1 / width (the
                    curvature in the output weights grows with the number
                    of neurons). Measured at the default width
                    ``2 C (d + 1)``, standardised features, squared loss,
                    full batch: iris (width 30) stable at 1e-2; digits
                    (width 1300) diverges at 7e-3 (9 / width) and 1e-2,
                    stable at 5e-3; mnist1d (width 820) stable at 7e-3 for
                    300 epochs and at 3 / width for 1000. ``3 / width``
                    keeps a factor of 2-3 from divergence; the cap 1e-2 is
                    the old default (stable up to 3e-2 on narrow networks).
                    On heavy-tailed features (planted data ``X = N^4``,
                    n=100, d=20) SGD diverges for every lr >= 1e-5 and
                    crawls below; such runs stop with ``diverged=True``
momentum   1e-3     momentum 0.9 multiplies the effective step by ~10
nesterov   1e-3     as momentum
adagrad    5e-2     best or near best on the three problems above
rmsprop    1e-3     stable everywhere above (1e-2 overshoots on digits)
adam       1e-2     normalised steps of ~lr per parameter; best or near
                    best on the three problems above
lbfgs      1.0      the strong-Wolfe line search picks the step
=========  =======  ======================================================

Default epochs are 1000 (full-batch first-order steps are cheap) and 200
for L-BFGS, where one epoch is one L-BFGS iteration (a strong-Wolfe line
search of up to 25 evaluations).

Divergence: a run stops as soon as a mini-batch objective, a parameter or a
recorded objective is non-finite, or a recorded objective exceeds
``1e12 * max(1, initial objective)``; it is marked ``diverged=True`` and
returns the weights (and values) of the last finite record -- never NaN.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score

from convexnn._targets import EncodedLabelsMixin, MultiOutputRegressorMixin, encode_labels
from convexnn._validation import (
    as_float_array,
    check_beta,
    check_choice,
    check_positive,
    check_seed,
    check_fitted,
    check_targets,
    estimator_features,
    local_random_state,
)
from convexnn.activations import Activation, ActivationLike, get_activation
from convexnn.exceptions import ValidationError
from convexnn.losses import Loss, LossLike, get_loss
from convexnn.network import TwoLayerPolyNet

logger = logging.getLogger("convexnn")

__all__ = [
    "BackpropPolyClassifier",
    "BackpropPolyRegressor",
    "BackpropRun",
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "SGD_LR_WIDTH_SCALE",
    "INITS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainingHistory",
    "TrainingSettings",
    "accuracy",
    "check_training_settings",
    "default_lr",
    "mean_squared_error",
    "r2",
    "run_seeds",
    "train_backprop",
]

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs")
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine", "exponential")
INITS: tuple[str, ...] = ("kaiming", "xavier", "normal")
OBJECTIVES: tuple[str, ...] = ("convex", "weight-decay")

#: Learning rates used when ``lr=None`` (see the module notes); for ``sgd`` the
#: cap of ``min(DEFAULT_LR["sgd"], SGD_LR_WIDTH_SCALE / width)`` (:func:`default_lr`).
DEFAULT_LR: dict[str, float] = {
    "sgd": 1e-2,
    "momentum": 1e-3,
    "nesterov": 1e-3,
    "adagrad": 5e-2,
    "rmsprop": 1e-3,
    "adam": 1e-2,
    "lbfgs": 1.0,
}
#: Plain SGD's default step is at most this divided by the width.
SGD_LR_WIDTH_SCALE = 3.0


def default_lr(optimizer: str, width: int) -> float:
    """The learning rate ``lr=None`` means for ``optimizer`` at ``width`` neurons.

    :data:`DEFAULT_LR`, except plain ``sgd``: ``min(1e-2, 3 / width)``, since its
    stable step shrinks like ``1 / width`` (see the module notes).
    """
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    width = check_positive(width, "width", integer=True)
    if optimizer == "sgd":
        return min(DEFAULT_LR["sgd"], SGD_LR_WIDTH_SCALE / width)
    return DEFAULT_LR[optimizer]


#: Epochs used when ``epochs=None``.
DEFAULT_EPOCHS: dict[str, int] = {name: 1000 for name in OPTIMIZERS} | {"lbfgs": 200}

#: Final learning rate / initial learning rate of the "exponential" schedule.
EXPONENTIAL_DECAY = 1e-2
#: A recorded objective above this times max(1, initial objective) counts as divergence.
BLOWUP_FACTOR = 1e12

Metric = Callable[[np.ndarray, np.ndarray], float]
MetricLike = Union[str, Metric, None]


# -- metrics -------------------------------------------------------------------
def accuracy(y: np.ndarray, yhat: np.ndarray) -> float:
    """Fraction of samples whose loss-encoded target and output agree.

    One column: the signs agree (targets -1/+1); several columns: the
    argmax agrees (one-hot or -1/+1 one-vs-rest targets).
    """
    y, yhat = np.asarray(y), np.asarray(yhat)
    if y.ndim == 1 or y.shape[1] == 1:
        return float(np.mean((y.reshape(-1) > 0) == (yhat.reshape(-1) > 0)))
    return float(np.mean(np.argmax(y, axis=1) == np.argmax(yhat, axis=1)))


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination (averaged uniformly over outputs)."""
    return float(r2_score(y, yhat))


def mean_squared_error(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean of ``(yhat - y)^2`` over all entries."""
    return float(np.mean((np.asarray(yhat) - np.asarray(y)) ** 2))


_METRICS: dict[str, Metric] = {"accuracy": accuracy, "r2": r2, "mse": mean_squared_error}


# -- results -------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingHistory:
    """What a run recorded, one entry per record (epoch 0 first).

    Attributes
    ----------
    epoch : ndarray of int
        Epochs completed at each record.
    wall_time : ndarray
        Training seconds so far (record evaluations not counted).
    objective : ndarray
        The training objective (convex or weight decay), summed over samples.
    convex_objective : ndarray
        ``loss(f_U(X), y) + beta * sum |alpha|`` with ``U = W / ||W||`` rows.
    train_metric, test_metric : ndarray
        ``metric`` on the training / test data; NaN when there is no metric
        (or no test data).
    """

    epoch: np.ndarray
    wall_time: np.ndarray
    objective: np.ndarray
    convex_objective: np.ndarray
    train_metric: np.ndarray
    test_metric: np.ndarray

    def __len__(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON."""
        return {
            name: np.asarray(getattr(self, name)).tolist() for name in self.__dataclass_fields__
        }


@dataclass
class BackpropRun:
    """One backprop training run.

    Attributes
    ----------
    optimizer : str
    seed : int
    objective : {"convex", "weight-decay"}
        Which objective was trained.
    history : TrainingHistory
    final_objective : float
        Training objective of the returned weights.
    final_convex_objective : float
        Convex objective of the returned weights (``network.objective`` for
        convex runs).
    final_train_metric, final_test_metric : float
        NaN when not computed.
    train_time : float
        Training seconds (record evaluations not counted).
    diverged : bool
        The run hit a non-finite or exploding objective and stopped; the
        returned weights are those of the last finite record.
    stop_reason : {"epochs", "time_limit", "diverged"}
    epochs_run : int
        Epochs completed by the returned weights.
    lr : float
        Initial learning rate used.
    W : ndarray of shape (m, d)
        Raw first-layer weights (unnormalised).
    alpha : ndarray of shape (m,) or (m, C)
    activation : Activation
    loss : Loss
    beta : float
    network : TwoLayerPolyNet or None
        For ``objective="convex"``: the trained network (``U = W / ||W||``,
        ``alpha``), whose ``objective(X, y, loss, beta)`` equals
        ``final_convex_objective``. None for weight-decay runs, whose
        function is not a unit-norm network (see :meth:`predict`).
    """

    optimizer: str
    seed: int
    objective: str
    history: TrainingHistory
    final_objective: float
    final_convex_objective: float
    final_train_metric: float
    final_test_metric: float
    train_time: float
    diverged: bool
    stop_reason: str
    epochs_run: int
    lr: float
    W: np.ndarray = field(repr=False)
    alpha: np.ndarray = field(repr=False)
    activation: Activation = field(repr=False)
    loss: Loss = field(repr=False)
    beta: float = field(repr=False)
    network: TwoLayerPolyNet | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return int(self.W.shape[0])

    def predict(self, X: Any) -> np.ndarray:
        """Outputs of the trained network: ``(n,)`` for one output, else ``(n, C)``."""
        features = as_float_array(X, "X", min_samples=0)
        if features.shape[1] != self.W.shape[1]:
            raise ValidationError(
                f"X has {features.shape[1]} features but the network expects {self.W.shape[1]}"
            )
        W = self.W
        if self.objective == "convex":
            W = W / np.linalg.norm(W, axis=1, keepdims=True)
        return self.activation(features @ W.T) @ self.alpha

    def summary(self) -> dict[str, Any]:
        """The scalar results, as one flat record."""
        return {
            "optimizer": self.optimizer,
            "seed": self.seed,
            "objective_kind": self.objective,
            "width": self.width,
            "lr": self.lr,
            "epochs": self.epochs_run,
            "final_objective": self.final_objective,
            "final_convex_objective": self.final_convex_objective,
            "train_metric": self.final_train_metric,
            "test_metric": self.final_test_metric,
            "train_time": self.train_time,
            "diverged": self.diverged,
            "stop_reason": self.stop_reason,
        }


# -- validation ----------------------------------------------------------------
@dataclass(frozen=True)
class TrainingSettings:
    """Validated backprop settings (see :func:`check_training_settings`).

    ``lr`` is None when the default of :func:`default_lr` applies (it depends
    on the width, known once the data are); ``width`` is None for the
    default ``2 C (d + 1)``.
    """

    activation: Activation
    loss: Loss
    beta: float
    objective: str
    optimizer: str
    lr: float | None
    epochs: int
    batch_size: int | None
    schedule: str
    init: str
    init_scale: float
    width: int | None
    time_limit: float | None
    record_every: int

    def lr_for(self, width: int) -> float:
        """The learning rate used at ``width`` neurons."""
        return self.lr if self.lr is not None else default_lr(self.optimizer, width)


def check_training_settings(
    *,
    width: Any,
    activation: Any,
    loss: Any,
    beta: Any,
    objective: Any,
    optimizer: Any,
    lr: Any,
    epochs: Any,
    batch_size: Any,
    schedule: Any,
    init: Any,
    init_scale: Any,
    time_limit: Any = None,
    record_every: Any = 1,
) -> TrainingSettings:
    """Validate backprop training settings, as :func:`train_backprop` does.

    Every argument is the :func:`train_backprop` argument of the same name;
    ``None`` for ``width``, ``lr`` and ``epochs`` means the defaults.
    Shared by the backprop estimators and :func:`convexnn.compare`, which
    checks everything before anything runs.

    Raises
    ------
    ValidationError
        An invalid setting; the message names it.
    """
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    batch_size = check_positive(batch_size, "batch_size", integer=True, allow_none=True)
    if optimizer == "lbfgs" and batch_size is not None:
        raise ValidationError(
            "batch_size must be None for optimizer='lbfgs' (L-BFGS with a line search is a "
            f"full-batch method); got batch_size={batch_size}"
        )
    lr = check_positive(lr, "lr", allow_none=True)
    epochs = check_positive(epochs, "epochs", integer=True, allow_none=True)
    return TrainingSettings(
        activation=get_activation(activation),
        loss=get_loss(loss),
        beta=check_beta(beta),
        objective=check_choice(objective, "objective", OBJECTIVES),
        optimizer=optimizer,
        lr=lr,
        epochs=DEFAULT_EPOCHS[optimizer] if epochs is None else epochs,
        batch_size=batch_size,
        schedule=check_choice(schedule, "schedule", SCHEDULES),
        init=check_choice(init, "init", INITS),
        init_scale=check_positive(init_scale, "init_scale"),
        width=check_positive(width, "width", integer=True, allow_none=True),
        time_limit=check_positive(time_limit, "time_limit", allow_none=True),
        record_every=check_positive(record_every, "record_every", integer=True),
    )


def _check_metric(metric: MetricLike) -> Metric | None:
    if metric is None or callable(metric):
        return metric
    if isinstance(metric, str) and metric.lower() in _METRICS:
        return _METRICS[metric.lower()]
    raise ValidationError(
        f"metric must be None, a callable metric(y, yhat) or one of {', '.join(_METRICS)}; "
        f"got {metric!r}"
    )


# -- the model -----------------------------------------------------------------
def _initial_weights(
    m: int, d: int, C: int, init: str, scale: float, generator: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``W`` (m, d) then ``alpha`` (m, C), drawn in that order from ``generator``."""
    if init == "kaiming":  # He normal, fan-in: gain sqrt(2) / sqrt(fan_in)
        std_w, std_alpha = math.sqrt(2.0 / d), math.sqrt(2.0 / m)
    elif init == "xavier":  # Glorot normal
        std_w, std_alpha = math.sqrt(2.0 / (d + m)), math.sqrt(2.0 / (m + C))
    else:
        std_w = std_alpha = 1.0
    W = torch.randn(m, d, generator=generator, dtype=dtype) * (std_w * scale)
    alpha = torch.randn(m, C, generator=generator, dtype=dtype) * (std_alpha * scale)
    return W, alpha


def _outputs(
    X: torch.Tensor, W: torch.Tensor, alpha: torch.Tensor, coefficients: tuple[float, float, float],
    normalise: bool,
) -> torch.Tensor:
    if normalise:
        W = W / torch.linalg.vector_norm(W, dim=1, keepdim=True)
    a, b, c = coefficients
    t = X @ W.T
    return (a * t * t + b * t + c) @ alpha


class _Objectives:
    """The training objective (scaled for the optimizer) and the recorded values."""

    def __init__(self, settings: TrainingSettings) -> None:
        self.coefficients = settings.activation.coefficients
        self.loss = settings.loss
        self.beta = settings.beta
        self.convex = settings.objective == "convex"

    def penalty(self, W: torch.Tensor, alpha: torch.Tensor, convex: bool) -> torch.Tensor:
        if convex:
            return self.beta * alpha.abs().sum()
        return 0.5 * self.beta * (W.pow(2).sum() + alpha.pow(2).sum())

    def training(
        self, X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, alpha: torch.Tensor, n: int
    ) -> torch.Tensor:
        """``loss_B / |B| + penalty / n`` on the (mini-)batch ``(X, y)``."""
        yhat = _outputs(X, W, alpha, self.coefficients, self.convex)
        return self.loss.value(yhat, y) / len(X) + self.penalty(W, alpha, self.convex) / n

    @torch.no_grad()
    def evaluate(
        self, X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[float, float, torch.Tensor]:
        """``(objective, convex objective, outputs of the trained function)``."""
        normalised = _outputs(X, W, alpha, self.coefficients, True)
        convex_value = float(self.loss.value(normalised, y) + self.penalty(W, alpha, True))
        if self.convex:
            return convex_value, convex_value, normalised
        raw = _outputs(X, W, alpha, self.coefficients, False)
        return float(self.loss.value(raw, y) + self.penalty(W, alpha, False)), convex_value, raw


def _make_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    # One L-BFGS iteration per epoch; the curvature memory persists across calls.
    # max_eval bounds the line search (max_ls = max_eval - 1): torch's default
    # max_eval = max_iter * 5 // 4 would leave it no evaluations at max_iter=1.
    return torch.optim.LBFGS(
        params, lr=lr, max_iter=1, max_eval=26, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-12, tolerance_change=1e-15,
    )


def _make_schedule(
    name: str, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if name == "step":  # halve every epochs / 4
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 4), gamma=0.5)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "exponential":  # lr * EXPONENTIAL_DECAY after the last epoch
        gamma = EXPONENTIAL_DECAY ** (1 / epochs)
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    return None


def _finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


# -- training ------------------------------------------------------------------
def train_backprop(
    X: Any,
    y: Any,
    *,
    width: int | None = None,
    activation: ActivationLike = "relu-approx",
    loss: LossLike = "squared",
    beta: float = 0.1,
    objective: str = "convex",
    optimizer: str = "adam",
    lr: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    schedule: str = "constant",
    init: str = "kaiming",
    init_scale: float = 1.0,
    seed: int = 0,
    X_test: Any = None,
    y_test: Any = None,
    metric: MetricLike = None,
    time_limit: float | None = None,
    record_every: int = 1,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> BackpropRun:
    """Train the two-layer polynomial-activation network by backprop.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,) or (n, C)
        Targets as the loss expects them (-1/+1 or one-hot for
        classification), as for :func:`convexnn.formulations.make_problem`.
    width : int, optional
        Number of neurons ``m``; default ``2 * C * (d + 1)``, a width at
        which the convex optimum is attainable.
    activation : str or (a, b, c) or Activation, default="relu-approx"
    loss : str or Loss, default="squared"
        A :mod:`convexnn.losses` loss (sum over samples).
    beta : float, default=0.1
    objective : {"convex", "weight-decay"}, default="convex"
        See the module notes.
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs"}, default="adam"
        ``momentum`` / ``nesterov`` use momentum 0.9; ``lbfgs`` is full batch
        with a strong-Wolfe line search, one iteration per epoch.
    lr : float, optional
        Initial learning rate on the objective divided by ``n``; default
        :func:`default_lr` of the optimizer and width.
    epochs : int, optional
        Passes over the data; default :data:`DEFAULT_EPOCHS`.
    batch_size : int, optional
        None for full batch; otherwise mini-batches reshuffled every epoch
        (the last one may be smaller). Not allowed with ``lbfgs``.
    schedule : {"constant", "step", "cosine", "exponential"}, default="constant"
        Per-epoch learning rate: ``step`` halves it every ``epochs // 4``
        epochs, ``cosine`` anneals it to 0, ``exponential`` decays it to
        ``1e-2 * lr`` at the last epoch.
    init : {"kaiming", "xavier", "normal"}, default="kaiming"
        Gaussian initialisation; standard deviations ``sqrt(2 / fan_in)``
        (kaiming), ``sqrt(2 / (fan_in + fan_out))`` (xavier), each times
        ``init_scale``, or ``init_scale`` itself (normal).
    init_scale : float, default=1.0
    seed : int, default=0
        Seeds a local ``torch.Generator`` for the initialisation and the
        shuffling; the global RNGs are neither used nor changed.
    X_test, y_test : array-like, optional
        Held-out data for ``test_metric`` (both or neither).
    metric : callable or {"accuracy", "r2", "mse"}, optional
        ``metric(y, yhat)`` on loss-encoded targets and raw outputs (both
        ``(n, C)``); None records NaN.
    time_limit : float, optional
        Stop after this many training seconds (checked after every step).
    record_every : int, default=1
        Record every this many epochs (plus epoch 0 and the last).
    dtype : torch.dtype, default=torch.float64
        Training precision; the recorded objectives are computed in it too
        (float32 agrees with the float64 ``network.objective`` to ~1e-7).
    device : str or torch.device, optional
        Where to train (default CPU). The initialisation and the shuffling
        are drawn on CPU, so runs with one seed start alike on every device.
    progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    BackpropRun

    Notes
    -----
    The thread count is the caller's (``torch.set_num_threads``); a summary
    is logged at INFO level on the ``"convexnn"`` logger.
    """
    settings = check_training_settings(
        width=width, activation=activation, loss=loss, beta=beta, objective=objective,
        optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, schedule=schedule,
        init=init, init_scale=init_scale, time_limit=time_limit, record_every=record_every,
    )
    seed = check_seed(seed)
    score = _check_metric(metric)
    if dtype not in (torch.float32, torch.float64):
        raise ValidationError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    features = as_float_array(X, "X")
    values = as_float_array(y, "y", ndims=(1, 2))
    single_output = values.ndim == 1
    targets = check_targets(values, len(features))
    settings.loss.check_targets(targets)
    test = _check_test_data(X_test, y_test, features.shape[1], targets.shape[1], settings.loss)
    return _train(
        features, targets, single_output, test, settings, seed, score, dtype, device, progress
    )


def _check_test_data(
    X_test: Any, y_test: Any, d: int, C: int, loss: Loss
) -> tuple[np.ndarray, np.ndarray] | None:
    if X_test is None and y_test is None:
        return None
    if X_test is None or y_test is None:
        raise ValidationError("X_test and y_test must be given together (or both left out)")
    features = as_float_array(X_test, "X_test")
    if features.shape[1] != d:
        raise ValidationError(f"X_test has {features.shape[1]} features but X has {d}")
    targets = check_targets(y_test, len(features), "y_test")
    if targets.shape[1] != C:
        raise ValidationError(f"y_test has {targets.shape[1]} columns but y has {C}")
    loss.check_targets(targets)
    return features, targets


def _train(
    features: np.ndarray,
    targets: np.ndarray,
    single_output: bool,
    test: tuple[np.ndarray, np.ndarray] | None,
    settings: TrainingSettings,
    seed: int,
    score: Metric | None,
    dtype: torch.dtype,
    device: str | torch.device | None,
    progress: bool,
) -> BackpropRun:
    n, d = features.shape
    C = targets.shape[1]
    m = settings.width if settings.width is not None else 2 * C * (d + 1)
    device = torch.device("cpu") if device is None else torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    W0, alpha0 = _initial_weights(m, d, C, settings.init, settings.init_scale, generator, dtype)
    W = W0.to(device).requires_grad_(True)
    alpha = alpha0.to(device).requires_grad_(True)
    # Read-only arrays (pandas' copy-on-write views, memory maps): torch warns on those.
    X_t = torch.as_tensor(_writable(features), dtype=dtype, device=device)
    y_t = torch.as_tensor(_writable(targets), dtype=dtype, device=device)
    if test is not None:
        X_test_t = torch.as_tensor(_writable(test[0]), dtype=dtype, device=device)
        y_test_np = test[1]
    lr = settings.lr_for(m)
    objectives = _Objectives(settings)
    optimizer = _make_optimizer(settings.optimizer, [W, alpha], lr)
    scheduler = _make_schedule(settings.schedule, optimizer, settings.epochs)

    records: dict[str, list[float]] = {name: [] for name in TrainingHistory.__dataclass_fields__}
    snapshot: dict[str, Any] = {}
    state: dict[str, float | None] = {"initial": None}

    def record(epoch: int, elapsed: float) -> bool:
        """Evaluate and store; False (and nothing stored) when the weights diverged."""
        if not _finite(W, alpha):
            return False
        value, convex_value, outputs = objectives.evaluate(X_t, y_t, W, alpha)
        reference = state["initial"] if state["initial"] is not None else value
        limit = BLOWUP_FACTOR * max(1.0, abs(reference))
        if not (math.isfinite(value) and math.isfinite(convex_value)) or value > limit:
            return False
        if state["initial"] is None:
            state["initial"] = value
        train_value = test_value = math.nan
        if score is not None:
            train_value = float(score(targets, outputs.detach().cpu().numpy()))
            if test is not None:
                test_outputs = (
                    _outputs(X_test_t, W, alpha, objectives.coefficients, objectives.convex)
                    .detach().cpu().numpy()
                )
                test_value = float(score(y_test_np, test_outputs))
        for name, entry in zip(
            records, (epoch, elapsed, value, convex_value, train_value, test_value)
        ):
            records[name].append(entry)
        snapshot.update(W=W.detach().clone(), alpha=alpha.detach().clone(), epoch=epoch)
        return True

    if not record(0, 0.0):
        raise ValidationError(
            "the objective at the initial weights is not finite; reduce init_scale or "
            "standardise X"
        )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = objectives.training(X_t, y_t, W, alpha, n)
        value.backward()
        return value

    elapsed = 0.0
    stop_reason = "epochs"
    epoch = 0
    bar = _progress_bar(settings.epochs, progress, settings.optimizer, seed)
    try:
        for epoch in range(1, settings.epochs + 1):
            start = time.perf_counter()
            ok = True
            if settings.optimizer == "lbfgs":
                value = optimizer.step(closure)
                ok = bool(torch.isfinite(value)) and _finite(W, alpha)
            else:
                batch_size = settings.batch_size or n
                order = (
                    torch.randperm(n, generator=generator).to(device)
                    if batch_size < n
                    else None
                )
                for begin in range(0, n, batch_size):
                    if order is None:
                        X_b, y_b = X_t, y_t
                    else:
                        index = order[begin : begin + batch_size]
                        X_b, y_b = X_t[index], y_t[index]
                    optimizer.zero_grad()
                    value = objectives.training(X_b, y_b, W, alpha, n)
                    if not torch.isfinite(value):
                        ok = False
                        break
                    value.backward()
                    optimizer.step()
                    if (
                        settings.time_limit is not None
                        and elapsed + time.perf_counter() - start > settings.time_limit
                    ):
                        break
                ok = ok and _finite(W, alpha)
            if scheduler is not None:
                scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed += time.perf_counter() - start
            out_of_time = settings.time_limit is not None and elapsed >= settings.time_limit
            due = epoch % settings.record_every == 0 or epoch == settings.epochs or out_of_time
            if not ok or (due and not record(epoch, elapsed)):
                stop_reason = "diverged"
                break
            if bar is not None:
                bar.update(1)
                if due:
                    bar.set_postfix(objective=f"{records['objective'][-1]:.6g}", refresh=False)
            if out_of_time:
                stop_reason = "time_limit"
                break
    finally:
        if bar is not None:
            bar.close()

    diverged = stop_reason == "diverged"
    if diverged:
        logger.warning(
            "backprop %s (seed %d, lr %g) diverged at epoch %d; returning the weights of epoch %d",
            settings.optimizer, seed, lr, epoch, snapshot["epoch"],
        )
    history = TrainingHistory(**{name: np.asarray(values) for name, values in records.items()})
    history = TrainingHistory(
        epoch=history.epoch.astype(int), wall_time=history.wall_time, objective=history.objective,
        convex_objective=history.convex_objective, train_metric=history.train_metric,
        test_metric=history.test_metric,
    )
    W_final = snapshot["W"].cpu().numpy().astype(np.float64)
    alpha_final = snapshot["alpha"].cpu().numpy().astype(np.float64)
    if single_output:
        alpha_final = alpha_final[:, 0]
    network = None
    if settings.objective == "convex" and np.all(np.linalg.norm(W_final, axis=1) > 0):
        network = TwoLayerPolyNet(W_final, alpha_final, settings.activation)
    run = BackpropRun(
        optimizer=settings.optimizer,
        seed=seed,
        objective=settings.objective,
        history=history,
        final_objective=float(history.objective[-1]),
        final_convex_objective=float(history.convex_objective[-1]),
        final_train_metric=float(history.train_metric[-1]),
        final_test_metric=float(history.test_metric[-1]),
        train_time=float(history.wall_time[-1]) if not diverged else elapsed,
        diverged=diverged,
        stop_reason=stop_reason,
        epochs_run=int(snapshot["epoch"]),
        lr=lr,
        W=W_final,
        alpha=alpha_final,
        activation=settings.activation,
        loss=settings.loss,
        beta=settings.beta,
        network=network,
    )
    logger.info(
        "backprop %s (%s objective, seed %d, width %d, lr %g): objective %.6g, convex objective "
        "%.6g after %d epochs in %.3g s%s",
        run.optimizer, run.objective, seed, m, run.lr, run.final_objective,
        run.final_convex_objective, run.epochs_run, run.train_time,
        " (diverged)" if diverged else "",
    )
    return run


def _writable(array: np.ndarray) -> np.ndarray:
    return array if array.flags.writeable else array.copy()


def _progress_bar(total: int, enabled: bool, optimizer: str, seed: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{optimizer} seed {seed}", unit="epoch", leave=False)


def run_seeds(X: Any, y: Any, seeds: int | Iterable[int], **kwargs: Any) -> list[BackpropRun]:
    """:func:`train_backprop` once per seed (an int ``k`` means seeds ``0..k-1``).

    Keyword arguments are passed on unchanged.
    """
    if "seed" in kwargs:
        raise ValidationError("pass the seeds as `seeds`, not `seed`")
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, (bool, np.bool_)):
        seed_list = list(range(check_positive(seeds, "seeds", integer=True)))
    else:
        try:
            seed_list = [check_seed(s, "each seed") for s in seeds]  # type: ignore[union-attr]
        except TypeError:
            raise ValidationError(
                f"seeds must be an int or a list of ints, got {seeds!r}"
            ) from None
        if not seed_list:
            raise ValidationError("seeds is empty; give at least one seed")
    return [train_backprop(X, y, seed=seed, **kwargs) for seed in seed_list]


# -- scikit-learn estimators -----------------------------------------------------
class _BackpropPolyBase(BaseEstimator):
    """Shared parameters, validation and fitting of the backprop estimators."""

    def __init__(
        self,
        width: int | None = None,
        activation: Any = "relu-approx",
        beta: float = 0.1,
        loss: str | Loss = "squared",
        objective: str = "convex",
        optimizer: str = "adam",
        lr: float | None = None,
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
        if not isinstance(self.verbose, (bool, np.bool_)):
            raise ValidationError(f"verbose must be True or False, got {self.verbose!r}")
        return settings, self._seed()

    def _seed(self) -> int:
        """A torch seed: the int itself, else drawn from the random state.

        ``None`` draws from fresh entropy, never from NumPy's global generator.
        """
        state = self.random_state
        if isinstance(state, numbers.Integral) and not isinstance(state, (bool, np.bool_)):
            return check_seed(state, "random_state")
        if state is not None and not isinstance(state, np.random.RandomState):
            raise ValidationError(
                "random_state must be None, a non-negative int or a numpy RandomState; "
                f"got {state!r}"
            )
        generator = local_random_state(state)
        return int(generator.randint(np.iinfo(np.int32).max))

    def _features(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validated features; records / checks ``n_features_in_`` and feature names."""
        return estimator_features(self, X, reset=reset)

    def _fit(
        self, features: np.ndarray, targets: np.ndarray, single_output: bool, settings: TrainingSettings,
        seed: int,
    ) -> None:
        self.run_ = _train(
            features, targets.reshape(len(features), -1), single_output, None, settings, seed,
            self._metric, torch.float64, None, bool(self.verbose),
        )
        self.network_ = self.run_.network
        self.W_ = self.run_.W
        self.alpha_ = self.run_.alpha

    def _decision(self, X: Any) -> np.ndarray:
        check_fitted(self, "run_")
        return self.run_.predict(self._features(X, reset=False))

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
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs"}, default="adam"
    lr : float, optional
        Default :func:`convexnn.baselines.default_lr` of the optimizer and width.
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
        settings, seed = self._check_params()
        features = self._features(X, reset=True)
        values = as_float_array(y, "y", ndims=(1, 2))
        targets = check_targets(values, len(features))
        settings.loss.check_targets(targets)
        self._fit(features, targets, values.ndim == 1, settings, seed)
        return self


class BackpropPolyClassifier(EncodedLabelsMixin, ClassifierMixin, _BackpropPolyBase):
    __doc__ = (
        "Classifier from a two-layer polynomial-activation network trained by backprop.\n\n"
        "    The baseline for :class:`convexnn.ConvexPolyClassifier`, with the same label\n"
        "    encoding (:mod:`convexnn._targets`).\n\n"
        "    Parameters\n    ----------\n"
        "    loss : {\"squared\", \"hinge\", \"logistic\", \"cross-entropy\", \"multiclass-hinge\"}, "
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
        settings, seed = self._check_params()
        features = self._features(X, reset=True)
        self.classes_, targets = encode_labels(y, len(features), settings.loss)
        self._fit(features, targets, targets.ndim == 1, settings, seed)
        return self

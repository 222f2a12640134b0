"""Backprop training settings: the choices, their defaults and their validation.

The reasons behind the default learning rates and epochs are in the
:mod:`convexnn.baselines` notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convexnn._validation import (
    as_float_array,
    check_beta,
    check_choice,
    check_positive,
    check_targets,
)
from convexnn.activations import Activation, get_activation
from convexnn.exceptions import ValidationError
from convexnn.losses import Loss, get_loss

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "INITS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "SCHEDULES",
    "SETTING_DEFAULTS",
    "SGD_LR_WIDTH_SCALE",
    "TUNE",
    "UNBOUNDED_EPOCHS",
    "TrainingSettings",
    "check_test_data",
    "check_training_settings",
    "default_lr",
]

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs")
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine", "exponential")
INITS: tuple[str, ...] = ("kaiming", "xavier", "normal")
OBJECTIVES: tuple[str, ...] = ("convex", "weight-decay")

#: Learning rates used when ``lr=None`` (see the package notes); for ``sgd`` the
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

#: The ``lr`` that asks for a learning-rate search (:mod:`convexnn.baselines._tuning`).
TUNE = "tune"

#: Epochs of a run that only its time limit stops (:func:`convexnn.compare`'s ``budget``):
#: searches and reports treat this many epochs or more as no bound.
UNBOUNDED_EPOCHS = 10**9

#: The defaults of the settings :func:`check_training_settings` validates, as
#: :func:`~convexnn.baselines.train_backprop` gives them.
SETTING_DEFAULTS: dict[str, Any] = {
    "width": None, "activation": "relu-approx", "loss": "squared", "beta": 0.1,
    "objective": "convex", "optimizer": "adam", "lr": None, "lr_grid": None, "epochs": None,
    "batch_size": None, "schedule": "constant", "init": "kaiming", "init_scale": 1.0,
    "time_limit": None, "record_every": 1, "record_interval": None,
}

#: Epochs used when ``epochs=None``.
DEFAULT_EPOCHS: dict[str, int] = {name: 1000 for name in OPTIMIZERS} | {"lbfgs": 200}


def default_lr(optimizer: str, width: int) -> float:
    """The learning rate ``lr=None`` means for ``optimizer`` at ``width`` neurons.

    :data:`DEFAULT_LR`, except plain ``sgd``: ``min(1e-2, 3 / width)``, since its
    stable step shrinks like ``1 / width`` (see the package notes).

    Parameters
    ----------
    optimizer : str
        One of :data:`OPTIMIZERS`.
    width : int
        Number of neurons.

    Returns
    -------
    float
    """
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    width = check_positive(width, "width", integer=True)
    if optimizer == "sgd":
        return min(DEFAULT_LR["sgd"], SGD_LR_WIDTH_SCALE / width)
    return DEFAULT_LR[optimizer]


@dataclass(frozen=True)
class TrainingSettings:
    """Validated backprop settings (see :func:`check_training_settings`).

    ``lr`` is None when the default of :func:`default_lr` applies (it depends
    on the width, known once the data are) and :data:`TUNE` (``"tune"``)
    when a learning-rate search picks it (over ``lr_grid``, or the default
    grid when None); ``width`` is None for the default ``2 C R (h + 1)``
    (``2 C (d + 1)`` when fully connected). ``objective`` is the objective
    to train, ``"convex"`` or ``"weight-decay"``. ``record_every`` (epochs)
    and ``record_interval`` (training seconds) say when to record; either
    may be None.
    """

    activation: Activation
    loss: Loss
    beta: float
    objective: str
    optimizer: str
    lr: float | str | None
    epochs: int
    batch_size: int | None
    schedule: str
    init: str
    init_scale: float
    width: int | None
    time_limit: float | None
    record_every: int | None
    record_interval: float | None = None
    lr_grid: tuple[float, ...] | None = None

    def lr_for(self, width: int) -> float:
        """The learning rate used at ``width`` neurons (once a search has replaced ``"tune"``)."""
        if self.lr == TUNE:
            raise ValidationError("lr='tune' has no rate until the search has run")
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
    record_interval: Any = None,
    lr_grid: Any = None,
) -> TrainingSettings:
    """Validate backprop training settings, as :func:`~convexnn.baselines.train_backprop` does.

    Every argument is the :func:`~convexnn.baselines.train_backprop`
    argument of the same name; ``None`` for ``width``, ``lr`` and ``epochs``
    means the defaults, ``lr="tune"`` a learning-rate search. Shared by the backprop estimators and
    :func:`convexnn.compare`, which checks everything before anything runs.

    Returns
    -------
    TrainingSettings

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
    lr = _check_lr(lr)
    if lr_grid is not None and lr != TUNE:
        raise ValidationError(
            f"lr_grid is the grid lr='tune' searches; with lr={lr!r} it would be ignored "
            "(pass lr='tune', or drop lr_grid)"
        )
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
        record_every=check_positive(record_every, "record_every", integer=True, allow_none=True),
        record_interval=check_positive(record_interval, "record_interval", allow_none=True),
        lr_grid=check_lr_grid(lr_grid),
    )


def _check_lr(lr: Any) -> float | str | None:
    """A positive rate, None (the default) or ``"tune"``."""
    if isinstance(lr, str):
        if lr.strip().lower() == TUNE:
            return TUNE
        raise ValidationError(f"lr must be a positive number, None or 'tune'; got {lr!r}")
    return check_positive(lr, "lr", allow_none=True)


def check_lr_grid(grid: Any) -> tuple[float, ...] | None:
    """The rates a learning-rate search tries: None (the default grid) or >= 2 positive numbers.

    Raises
    ------
    ValidationError
        Anything else; the message names ``lr_grid``.
    """
    if grid is None:
        return None
    if isinstance(grid, (str, bytes)) or not isinstance(grid, (Sequence, np.ndarray)):
        raise ValidationError(f"lr_grid must be a list of positive numbers or None, got {grid!r}")
    rates = tuple(sorted({check_positive(rate, "each rate of lr_grid") for rate in grid}))
    if len(rates) < 2:
        raise ValidationError(f"lr_grid needs at least 2 distinct rates, got {grid!r}")
    return rates


def check_test_data(
    X_test: Any, y_test: Any, d: int, C: int, loss: Loss
) -> tuple[np.ndarray, np.ndarray] | None:
    """Validated held-out data ``(features, loss-encoded targets)``, or None when both are.

    Parameters
    ----------
    X_test, y_test : array-like or None
        Both or neither.
    d, C : int
        Features and target columns of the training data.
    loss : Loss
        Checks the targets' encoding.

    Raises
    ------
    ValidationError
        Only one given, or shapes that do not match the training data.
    """
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

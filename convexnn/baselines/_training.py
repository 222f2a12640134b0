"""Backprop training: a training state with init and step functions, and the drivers.

:func:`init_training` draws the initial weights and records epoch 0;
:func:`training_step` runs one epoch and records when due;
:func:`finish_training` turns the final state into a :class:`BackpropRun`.
:func:`train_backprop` validates its arguments and runs the three.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from convexnn._torch_model import TorchPolyNet
from convexnn._validation import (
    FEATURE_LIMIT,
    as_float_array,
    check_device,
    check_seed,
    check_seeds,
    check_targets,
    user_stacklevel,
)
from convexnn.activations import ActivationLike
from convexnn.baselines._metrics import Metric, MetricLike, check_metric
from convexnn.baselines._results import BackpropRun, HistoryRecord, TrainingHistory, as_tensor
from convexnn.baselines._settings import (
    SETTING_DEFAULTS,
    TUNE,
    TrainingSettings,
    check_test_data,
    check_training_settings,
)
from convexnn.exceptions import ValidationError
from convexnn.losses import LossLike
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry

logger = logging.getLogger("convexnn")

__all__ = [
    "BLOWUP_FACTOR",
    "EXPONENTIAL_DECAY",
    "Checkpoint",
    "TrainingProblem",
    "TrainingState",
    "finish_training",
    "init_training",
    "run_seeds",
    "run_training",
    "train_backprop",
    "training_problem",
    "training_step",
]

#: Final learning rate / initial learning rate of the "exponential" schedule.
EXPONENTIAL_DECAY = 1e-2
#: A recorded objective above this times max(1, initial objective) counts as divergence.
BLOWUP_FACTOR = 1e12


# -- what a run minimises ------------------------------------------------------
@dataclass(frozen=True)
class TrainingProblem:
    """The data, settings and objectives of a run: fixed while it trains.

    Build it with :meth:`create`.

    Attributes
    ----------
    settings : TrainingSettings
    X : Tensor of shape (n, d)
        Training features (flattened images when convolutional), in the
        training dtype and on the training device.
    y : Tensor of shape (n, C)
        Loss-encoded training targets, likewise.
    X_numpy : ndarray of shape (n, d)
        The training features as given (float64): the returned network's
        objective is computed on them, whatever the training dtype.
    y_numpy : ndarray of shape (n, C)
        The targets ``score`` compares with.
    X_test : Tensor or None
        Held-out features.
    y_test_numpy : ndarray or None
        Held-out loss-encoded targets.
    score : callable or None
        ``score(y, yhat)``, recorded on the training and held-out data.
    width : int
        Number of neurons (filters when convolutional).
    single_output : bool
        The targets were one column given as ``(n,)``: the run reports
        ``alpha`` of shape ``(m,)`` (``(m, R)`` when convolutional).
    device : torch.device
    geometry : ConvGeometry or None
        Makes the network convolutional with average pooling
        (:class:`~convexnn._torch_model.TorchPolyNet`'s conv forward pass).
    """

    settings: TrainingSettings
    X: torch.Tensor
    y: torch.Tensor
    X_numpy: np.ndarray
    y_numpy: np.ndarray
    X_test: torch.Tensor | None
    y_test_numpy: np.ndarray | None
    score: Metric | None
    width: int
    single_output: bool
    device: torch.device
    geometry: ConvGeometry | None = None

    @classmethod
    def create(
        cls,
        features: np.ndarray,
        targets: np.ndarray,
        settings: TrainingSettings,
        *,
        single_output: bool,
        test: tuple[np.ndarray, np.ndarray] | None = None,
        score: Metric | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
        geometry: ConvGeometry | None = None,
    ) -> TrainingProblem:
        """The problem of validated arrays.

        Parameters
        ----------
        features : ndarray of shape (n, d)
            Flattened images (``d = geometry.n_pixels``) when convolutional.
        targets : ndarray of shape (n, C)
            Loss-encoded, checked against ``settings.loss``.
        settings : TrainingSettings
        single_output : bool
            Report one output as ``(n,)`` / ``alpha`` as ``(m,)`` (``C`` must be 1).
        test : (features, targets), optional
            Validated held-out data (:func:`check_test_data`).
        score : callable, optional
            The metric to record.
        dtype : torch.float32 or torch.float64
        device : str or torch.device, optional
            Default CPU.
        geometry : ConvGeometry, optional
            Train the convolutional network with average pooling.

        Raises
        ------
        ValidationError
            Features that are not images of ``geometry``'s shape.
        """
        d, C = features.shape[1], targets.shape[1]
        device = check_device(device)
        if geometry is None:
            default_width = 2 * C * (d + 1)
        else:
            if d != geometry.n_pixels:
                raise ValidationError(
                    f"X has {d} features but images of shape {geometry.image_shape} have "
                    f"{geometry.n_pixels} pixels"
                )
            default_width = 2 * C * geometry.n_regions * (geometry.patch_size + 1)
        return cls(
            settings=settings,
            X=as_tensor(features, dtype, device),
            y=as_tensor(targets, dtype, device),
            X_numpy=features,
            y_numpy=targets,
            X_test=None if test is None else as_tensor(test[0], dtype, device),
            y_test_numpy=None if test is None else test[1],
            score=score,
            width=settings.width if settings.width is not None else default_width,
            single_output=single_output,
            device=device,
            geometry=geometry,
        )

    def with_settings(self, **changes: Any) -> TrainingProblem:
        """The same data with some settings replaced (e.g. ``lr``, ``epochs``)."""
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **changes))

    @property
    def n_regions(self) -> int:
        """Pooling regions ``R`` (1 when fully connected)."""
        return 1 if self.geometry is None else self.geometry.n_regions

    @property
    def n_samples(self) -> int:
        return len(self.X)

    @property
    def lr(self) -> float:
        """The initial learning rate."""
        return self.settings.lr_for(self.width)

    @property
    def convex(self) -> bool:
        """Whether the trained objective is the convex problem's (else weight decay)."""
        return self.settings.objective == "convex"

    def penalty(self, model: TorchPolyNet, convex: bool) -> torch.Tensor:
        """``beta * sum |alpha|`` (convex) or ``(beta / 2) (||W||^2 + ||alpha||^2)``."""
        beta = self.settings.beta
        if convex:
            return beta * model.alpha.abs().sum()
        return 0.5 * beta * (model.first.weight.pow(2).sum() + model.alpha.pow(2).sum())

    def batch_objective(
        self, model: TorchPolyNet, X: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """``loss_B / |B| + penalty / n`` on a (mini-)batch ``(X, y)``: what the optimizer steps on.

        Dividing by the sample count keeps learning rates independent of
        ``n``; a mini-batch gives an unbiased estimate of the full value.
        """
        return (
            self.settings.loss.value(model(X), y) / len(X)
            + self.penalty(model, self.convex) / self.n_samples
        )

    @torch.no_grad()
    def evaluate(self, model: TorchPolyNet) -> tuple[float, float, torch.Tensor]:
        """``(objective, convex objective, outputs of the trained function)`` on the training data.

        Plain sums over samples; the convex objective uses unit-norm neurons
        whatever the trained objective.
        """
        loss = self.settings.loss
        normalised = model(self.X, unit_norm=True)
        convex_value = float(loss.value(normalised, self.y) + self.penalty(model, True))
        if self.convex:
            return convex_value, convex_value, normalised
        raw = model(self.X, unit_norm=False)
        return float(loss.value(raw, self.y) + self.penalty(model, False)), convex_value, raw


# -- the state and its steps -----------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    """Weights at a record: what a run returns (those of its lowest objective if it
    diverges)."""

    weight: torch.Tensor
    alpha: torch.Tensor
    epoch: int


@dataclass(eq=False)
class TrainingState:
    """Everything that changes while a run trains.

    Torch optimizers update tensors in place, so :func:`training_step`
    advances this object and returns it; keep one state per run.

    Attributes
    ----------
    seed : int
        The seed of the initial weights and of ``generator``.
    model : TorchPolyNet
        The network being trained (``unit_norm`` for the convex objective).
    optimizer : torch.optim.Optimizer
    schedule : torch.optim.lr_scheduler.LRScheduler or None
        Steps once per epoch.
    generator : torch.Generator
        Draws the mini-batch order (after the initial weights).
    epoch : int
        Epochs run so far, the last one included even if it diverged.
    elapsed : float
        Training seconds so far (record evaluations not counted).
    history : list of HistoryRecord
        One record per recorded epoch, epoch 0 first.
    checkpoint : Checkpoint or None
        Weights at the last record.
    best : Checkpoint or None
        Weights at the record of the lowest training objective, ``history[best_index]``.
    stop_reason : {"epochs", "time_limit", "diverged"} or None
        None while the run goes on.
    """

    seed: int
    model: TorchPolyNet
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator
    epoch: int = 0
    elapsed: float = 0.0
    history: list[HistoryRecord] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    best: Checkpoint | None = None
    best_index: int = 0
    stop_reason: str | None = None

    def recorded_last_epoch(self) -> bool:
        """Whether the last :func:`training_step` made a record."""
        return bool(self.history) and self.history[-1].epoch == self.epoch


def init_training(problem: TrainingProblem, seed: int) -> TrainingState:
    """The state at epoch 0: initial weights drawn from ``seed``, optimizer, schedule, first record.

    Parameters
    ----------
    problem : TrainingProblem
    seed : int
        Seeds a local ``torch.Generator`` for the initialisation and the
        shuffling; the global RNGs are neither used nor changed.

    Returns
    -------
    TrainingState

    Raises
    ------
    ValidationError
        The objective at the initial weights is not finite.
    """
    settings = problem.settings
    h = problem.X.shape[1] if problem.geometry is None else problem.geometry.patch_size
    generator = torch.Generator().manual_seed(seed)
    weight, alpha = _initial_weights(
        problem.width, h, problem.n_regions, problem.y.shape[1], settings.init,
        settings.init_scale, generator, problem.X.dtype,
    )
    model = TorchPolyNet(
        weight.to(problem.device), alpha.to(problem.device), settings.activation.coefficients,
        geometry=problem.geometry, single_output=False, unit_norm=problem.convex,
    )
    # (weight, alpha) in this order: L-BFGS works on their concatenation, and
    # model.parameters() would list alpha first.
    optimizer = _make_optimizer(settings.optimizer, [model.first.weight, model.alpha], problem.lr)
    schedule = _make_schedule(settings.schedule, optimizer, settings.epochs)
    state = TrainingState(seed, model, optimizer, schedule, generator)
    if not _record(state, problem):
        raise ValidationError(
            "the objective at the initial weights is not finite; reduce init_scale or "
            "standardise X"
        )
    return state


def training_step(state: TrainingState, problem: TrainingProblem) -> TrainingState:
    """One epoch: a pass of optimizer steps, a schedule step, a record when due.

    Records every ``record_every`` epochs, every ``record_interval``
    training seconds, at the last epoch and when the time limit is
    reached. Sets ``stop_reason`` when the run is over:
    ``"diverged"`` (a non-finite mini-batch objective or parameter, or a
    record that is not finite or exceeds :data:`BLOWUP_FACTOR` times the
    initial objective), ``"time_limit"`` or ``"epochs"``.

    Parameters
    ----------
    state : TrainingState
        A state whose ``stop_reason`` is None; advanced in place.
    problem : TrainingProblem
        The problem ``state`` was initialised on.

    Returns
    -------
    TrainingState
        ``state`` itself.
    """
    if state.stop_reason is not None:
        raise ValidationError(f"the run has stopped ({state.stop_reason}); start a new state")
    settings = problem.settings
    state.epoch += 1
    start = time.perf_counter()
    finite = _optimizer_pass(state, problem, start)
    if state.schedule is not None:
        state.schedule.step()
    if problem.device.type == "cuda":  # kernels run asynchronously: time them whole
        torch.cuda.synchronize(problem.device)
    state.elapsed += time.perf_counter() - start
    out_of_time = settings.time_limit is not None and state.elapsed >= settings.time_limit
    due = (
        state.epoch == settings.epochs
        or out_of_time
        or (settings.record_every is not None and state.epoch % settings.record_every == 0)
        or (
            settings.record_interval is not None
            and state.elapsed - state.history[-1].wall_time >= settings.record_interval
        )
    )
    if not finite or (due and not _record(state, problem)):
        state.stop_reason = "diverged"
    elif out_of_time:
        state.stop_reason = "time_limit"
    elif state.epoch == settings.epochs:
        state.stop_reason = "epochs"
    return state


def finish_training(
    state: TrainingState, problem: TrainingProblem, *, quiet: bool = False
) -> BackpropRun:
    """The run of a stopped state: the weights and values of its last record (of its
    lowest training objective, for a diverged run: its last finite one can be 1e12 times
    worse than where it started).

    A diverged run, or one that ends above its starting objective, issues a
    ``ConvergenceWarning`` (scikit-learn's), a finished one logs an INFO summary
    on the ``"convexnn"`` logger; ``quiet`` (the short trial runs of a
    learning-rate search) logs all of them at DEBUG level.
    """
    settings = problem.settings
    diverged = state.stop_reason == "diverged"
    chosen = state.best_index if diverged else len(state.history) - 1
    checkpoint = state.best if diverged else state.checkpoint
    start, end = state.history[0].objective, state.history[-1].objective
    message = None
    if diverged:
        message = (f"backprop {settings.optimizer} (seed {state.seed}, lr {problem.lr:g}) "
                   f"diverged at epoch {state.epoch}; returning the weights of epoch "
                   f"{checkpoint.epoch}, its lowest recorded objective. Lower the learning "
                   "rate (or let a search pick it)")
    elif end > start:
        message = (f"backprop {settings.optimizer} (seed {state.seed}, lr {problem.lr:g}) "
                   f"ended above its starting objective ({start:.6g} -> {end:.6g}): the "
                   "learning rate is likely too large (or let a search pick it)")
    if message is not None:
        if quiet:
            logger.debug(message)
        else:  # a warning, not only a log record: an application may configure no logging
            warnings.warn(message, ConvergenceWarning, stacklevel=user_stacklevel())
    history = TrainingHistory.from_records(state.history)
    W = checkpoint.weight.flatten(1).cpu().numpy().astype(np.float64)
    alpha = checkpoint.alpha.cpu().numpy().astype(np.float64)  # (m, R, C)
    if problem.single_output:
        alpha = alpha[..., 0]
    if problem.geometry is None:
        alpha = alpha[:, 0]
    network = None
    if problem.convex and np.all(np.linalg.norm(W, axis=1) > 0):
        network = TwoLayerPolyNet(W, alpha, settings.activation, problem.geometry)
    # In float64 on the data as given: a float32 history's last value can fall below the
    # convex optimum's certified bound by rounding alone.
    convex_objective = (
        float(history.convex_objective[chosen]) if network is None
        else network.objective(problem.X_numpy, problem.y_numpy, loss=settings.loss,
                               beta=settings.beta)
    )
    run = BackpropRun(
        optimizer=settings.optimizer,
        seed=state.seed,
        objective_kind=settings.objective,
        history=history,
        final_objective=(convex_objective if problem.convex
                         else float(history.objective[chosen])),
        final_convex_objective=convex_objective,
        final_train_metric=float(history.train_metric[chosen]),
        final_test_metric=float(history.test_metric[chosen]),
        train_time=float(history.wall_time[-1]) if not diverged else state.elapsed,
        diverged=diverged,
        stop_reason=state.stop_reason,
        epochs_run=checkpoint.epoch,
        lr=problem.lr,
        W=W,
        alpha=alpha,
        activation=settings.activation,
        loss=settings.loss,
        beta=settings.beta,
        network=network,
        geometry=problem.geometry,
    )
    logger.log(
        logging.DEBUG if quiet else logging.INFO,
        "backprop %s (%s objective, seed %d, width %d, lr %g): objective %.6g, convex objective "
        "%.6g after %d epochs in %.3g s%s",
        run.optimizer, run.objective_kind, run.seed, run.width, run.lr, run.final_objective,
        run.final_convex_objective, run.epochs_run, run.train_time,
        " (diverged)" if diverged else "",
    )
    return run


def run_training(
    problem: TrainingProblem, seed: int, *, progress: bool = False, quiet: bool = False
) -> BackpropRun:
    """Initialise, step until the run stops, finish; ``progress`` shows a tqdm bar.

    With ``lr="tune"`` a learning-rate search on this seed
    (:func:`~convexnn.baselines._tuning.search_learning_rate`) picks the rate
    first; the run carries it as ``lr_search``. ``quiet`` logs at DEBUG level
    only (the search's own trial runs).
    """
    if problem.settings.lr == TUNE:
        from convexnn.baselines._tuning import search_learning_rate

        search = search_learning_rate(problem, seed)
        run = run_training(problem.with_settings(lr=search.rate_to_run), seed, progress=progress)
        run.lr_search = search
        return run
    state = init_training(problem, seed)
    bar = _progress_bar(problem.settings.epochs, progress, problem.settings.optimizer, seed)
    try:
        while state.stop_reason is None:
            state = training_step(state, problem)
            if bar is not None and state.stop_reason != "diverged":
                bar.update(1)
                if state.recorded_last_epoch():
                    bar.set_postfix(objective=f"{state.history[-1].objective:.6g}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return finish_training(state, problem, quiet=quiet)


# -- the steps' parts ------------------------------------------------------------
def _initial_weights(
    m: int,
    h: int,
    R: int,
    C: int,
    init: str,
    scale: float,
    generator: torch.Generator,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``W`` (m, h) then ``alpha`` (m, R, C), drawn in that order from ``generator``.

    ``h`` is the fan-in of a neuron (features, or a filter's values), ``R``
    the pooling regions (1 when fully connected): the output layer's fan-in
    is ``m R``.
    """
    if init == "kaiming":  # He normal, fan-in: gain sqrt(2) / sqrt(fan_in)
        std_w, std_alpha = math.sqrt(2.0 / h), math.sqrt(2.0 / (m * R))
    elif init == "xavier":  # Glorot normal
        std_w, std_alpha = math.sqrt(2.0 / (h + m)), math.sqrt(2.0 / (m * R + C))
    else:
        std_w = std_alpha = 1.0
    # Drawn in float64 and cast: torch's streams differ by dtype, and a seed must give
    # float32 and float64 runs the same start.
    W = torch.randn(m, h, generator=generator, dtype=torch.float64) * (std_w * scale)
    alpha = torch.randn(m, R, C, generator=generator, dtype=torch.float64) * (std_alpha * scale)
    return W.to(dtype), alpha.to(dtype)


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


def _optimizer_pass(state: TrainingState, problem: TrainingProblem, start: float) -> bool:
    """One epoch of optimizer steps; False when an objective or a parameter is not finite.

    ``start`` is when the epoch began, for the time limit (checked after
    every mini-batch step).
    """
    model, optimizer = state.model, state.optimizer
    if problem.settings.optimizer == "lbfgs":

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            value = problem.batch_objective(model, problem.X, problem.y)
            value.backward()
            return value

        value = optimizer.step(closure)
        return bool(torch.isfinite(value)) and _finite(model)
    time_limit = problem.settings.time_limit
    for X_batch, y_batch in _batches(state, problem):
        optimizer.zero_grad()
        value = problem.batch_objective(model, X_batch, y_batch)
        if not torch.isfinite(value):
            return False
        value.backward()
        optimizer.step()
        if time_limit is not None and state.elapsed + time.perf_counter() - start > time_limit:
            break
    return _finite(model)


def _batches(
    state: TrainingState, problem: TrainingProblem
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The epoch's mini-batches, shuffled by the run's generator (a full batch draws nothing)."""
    n = problem.n_samples
    batch_size = problem.settings.batch_size or n
    if batch_size >= n:
        yield problem.X, problem.y
        return
    order = torch.randperm(n, generator=state.generator).to(problem.device)
    for begin in range(0, n, batch_size):
        index = order[begin : begin + batch_size]
        yield problem.X[index], problem.y[index]


def _record(state: TrainingState, problem: TrainingProblem) -> bool:
    """Evaluate and store a record and checkpoint; False (nothing stored) when diverged."""
    model = state.model
    if not _finite(model):
        return False
    value, convex_value, outputs = problem.evaluate(model)
    reference = state.history[0].objective if state.history else value
    limit = BLOWUP_FACTOR * max(1.0, abs(reference))
    if not (math.isfinite(value) and math.isfinite(convex_value)) or value > limit:
        return False
    train_value = test_value = math.nan
    if problem.score is not None:
        train_value = float(problem.score(problem.y_numpy, outputs.cpu().numpy()))
        if problem.X_test is not None:
            with torch.no_grad():
                test_outputs = model(problem.X_test).cpu().numpy()
            test_value = float(problem.score(problem.y_test_numpy, test_outputs))
    state.history.append(
        HistoryRecord(state.epoch, state.elapsed, value, convex_value, train_value, test_value)
    )
    state.checkpoint = Checkpoint(
        model.first.weight.detach().clone(), model.alpha.detach().clone(), state.epoch
    )
    if value < state.history[state.best_index].objective or state.best is None:
        state.best, state.best_index = state.checkpoint, len(state.history) - 1
    return True


def _finite(model: TorchPolyNet) -> bool:
    return all(bool(torch.isfinite(parameter).all()) for parameter in model.parameters())


def _progress_bar(total: int, enabled: bool, optimizer: str, seed: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{optimizer} seed {seed}", unit="epoch", leave=False)


# -- the public drivers ------------------------------------------------------------
def training_problem(
    X: Any,
    y: Any,
    *,
    X_test: Any = None,
    y_test: Any = None,
    metric: MetricLike = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    geometry: ConvGeometry | None = None,
    **settings: Any,
) -> TrainingProblem:
    """The validated :class:`TrainingProblem` of :func:`train_backprop`'s arguments.

    Every argument is :func:`train_backprop`'s of the same name; ``settings``
    are those :func:`check_training_settings` validates (``width``,
    ``optimizer``, ``lr``, ``epochs``, ...), :data:`SETTING_DEFAULTS` for
    those not given. The drivers (:func:`train_backprop`,
    :func:`convexnn.compare`) build the problem once and run it per seed.

    Returns
    -------
    TrainingProblem

    Raises
    ------
    ValidationError
        An invalid or unknown argument; the message names it.
    """
    unknown = sorted(set(settings) - set(SETTING_DEFAULTS))
    if unknown:
        raise ValidationError(
            f"unknown training setting(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(SETTING_DEFAULTS)}"
        )
    settings = check_training_settings(**{**SETTING_DEFAULTS, **settings})
    score = check_metric(metric)
    if dtype not in (torch.float32, torch.float64):
        raise ValidationError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    if geometry is not None and not isinstance(geometry, ConvGeometry):
        raise ValidationError(
            f"geometry must be a ConvGeometry or None, got {type(geometry).__name__}"
        )
    features = _flat_features(X, "X", geometry)
    values = as_float_array(y, "y", ndims=(1, 2))
    single_output = values.ndim == 1
    targets = check_targets(values, len(features))
    settings.loss.check_targets(targets)
    test_features = None if X_test is None else _flat_features(X_test, "X_test", geometry)
    test = check_test_data(
        test_features, y_test, features.shape[1], targets.shape[1], settings.loss
    )
    return TrainingProblem.create(
        features, targets, settings, single_output=single_output, test=test, score=score,
        dtype=dtype, device=device, geometry=geometry,
    )


def _flat_features(X: Any, name: str, geometry: ConvGeometry | None) -> np.ndarray:
    """``X`` as a float ``(n, d)`` array; images of ``geometry`` flattened to their pixels."""
    if geometry is None:
        return as_float_array(X, name, limit=FEATURE_LIMIT)
    images = geometry.as_images(
        as_float_array(X, name, ndims=(2, 3, 4), limit=FEATURE_LIMIT), name)
    return images.reshape(len(images), -1)


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
    lr: float | str | None = None,
    lr_grid: Sequence[float] | None = None,
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
    record_every: int | None = 1,
    record_interval: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    geometry: ConvGeometry | None = None,
    progress: bool = False,
) -> BackpropRun:
    """Train the two-layer polynomial-activation network by backprop.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Features; with ``geometry``, images (flat ``(n, pixels)``,
        ``(n, H, W)`` or ``(n, C, H, W)``).
    y : array-like of shape (n,) or (n, C)
        Targets as the loss expects them (-1/+1 or one-hot for
        classification), as for :func:`convexnn.formulations.make_problem`.
    width : int, optional
        Number of neurons ``m`` (filters when convolutional); default
        ``2 * C * (d + 1)``, or ``2 * C * R * (h + 1)`` for ``R`` pooling
        regions and filters of ``h`` values: widths at which the convex
        optimum is attainable.
    activation : str or (a, b, c) or Activation, default="relu-approx"
    loss : str or Loss, default="squared"
        A :mod:`convexnn.losses` loss (sum over samples).
    beta : float, default=0.1
    objective : {"convex", "weight-decay"}, default="convex"
        See the :mod:`convexnn.baselines` notes.
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lbfgs"}
        Default ``"adam"``. ``momentum`` / ``nesterov`` use momentum 0.9;
        ``lbfgs`` is full batch with a strong-Wolfe line search, one
        iteration per epoch.
    lr : float or "tune", optional
        Initial learning rate on the objective divided by ``n``; default
        :func:`default_lr` of the optimizer and width. ``"tune"``: a
        learning-rate search on this seed picks it first (see the
        :mod:`convexnn.baselines` notes; the run's ``lr_search`` holds
        every rate tried and its objective).
    lr_grid : sequence of float, optional
        The rates ``lr="tune"`` tries; default :func:`lr_grid` (9 rates
        over 4 decades around the default rate).
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
    record_every : int or None, default=1
        Record every this many epochs (plus epoch 0 and the last); None:
        not by epochs.
    record_interval : float, optional
        Also record whenever this many training seconds have passed since
        the last record (for runs bounded by ``time_limit``).
    dtype : torch.dtype, default=torch.float64
        Training precision; the recorded objectives are computed in it too
        (float32 agrees with the float64 ``network.objective`` to ~1e-7).
    device : str or torch.device, optional
        Where to train (default CPU). The initialisation and the shuffling
        are drawn on CPU, so runs with one seed start alike on every device.
    geometry : ConvGeometry, optional
        Train the convolutional network with average pooling
        (:class:`convexnn.patches.ConvGeometry`: image shape, filter size,
        stride, pooling window) -- the network of
        :class:`convexnn.ConvexPolyConvClassifier`.
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
    seed = check_seed(seed)
    problem = training_problem(
        X, y, width=width, activation=activation, loss=loss, beta=beta, objective=objective,
        optimizer=optimizer, lr=lr, lr_grid=lr_grid, epochs=epochs, batch_size=batch_size,
        schedule=schedule, init=init, init_scale=init_scale, X_test=X_test, y_test=y_test,
        metric=metric, time_limit=time_limit, record_every=record_every,
        record_interval=record_interval, dtype=dtype, device=device, geometry=geometry,
    )
    return run_training(problem, seed, progress=progress)


def run_seeds(X: Any, y: Any, seeds: int | Iterable[int], **kwargs: Any) -> list[BackpropRun]:
    """:func:`train_backprop` once per distinct seed (an int ``k`` means seeds ``0..k-1``).

    Keyword arguments are passed on unchanged, except ``lr="tune"``: the
    search runs once, on the first seed, and every seed trains with the
    rate it picked (each run's ``lr_search`` is that search).
    """
    if "seed" in kwargs:
        raise ValidationError("pass the seeds as `seeds`, not `seed`")
    seed_list = check_seeds(seeds)
    progress = kwargs.pop("progress", False)
    problem = training_problem(X, y, **kwargs)
    if problem.settings.lr != TUNE:
        return [run_training(problem, seed, progress=progress) for seed in seed_list]
    first = run_training(problem, seed_list[0], progress=progress)
    tuned = problem.with_settings(lr=first.lr_search.rate_to_run)
    runs = [first] + [run_training(tuned, seed, progress=progress) for seed in seed_list[1:]]
    for run in runs[1:]:
        run.lr_search = first.lr_search
    return runs

"""Learning-rate search: short trial runs over a log-spaced grid, the best by training objective.

:func:`search_learning_rate` runs the problem once per rate of the grid
(:func:`lr_grid`: 9 rates over 4 decades around :func:`default_lr`, or
``lr_grid``) for a short budget -- :data:`TUNING_FRACTION` of the run's
epochs (at least :data:`MIN_TUNING_EPOCHS`) and of its time limit -- from
the run's own seed, and keeps the rate whose trial ends with the lowest
training objective. Diverged trials are never chosen (their last finite
objective is not a result). When the best rate lies on the grid's edge, or
every rate diverged, the grid is extended one step beyond that edge at a
time, at most :data:`MAX_EXTENSIONS` times, so that the choice is not an
artefact of where the grid stops.

L-BFGS has no rate to tune: its strong-Wolfe line search picks every step
(``lr`` only scales the first trial step, which the search expands or
shrinks). Its search runs no trials and keeps ``lr=1``.

:func:`choose_rate` and :func:`search_rates` hold the selection rule apart
from training, so it can be checked on problems whose best rate is known.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sklearn.exceptions import ConvergenceWarning

from convexnn._validation import user_stacklevel
from convexnn.baselines._settings import DEFAULT_LR, UNBOUNDED_EPOCHS, default_lr

if TYPE_CHECKING:
    from convexnn.baselines._training import TrainingProblem

logger = logging.getLogger("convexnn")

__all__ = [
    "GRID_DECADES",
    "GRID_STEP",
    "LBFGS_NOTE",
    "MAX_EXTENSIONS",
    "MIN_TUNING_EPOCHS",
    "TUNING_FRACTION",
    "RateSearch",
    "RateTrial",
    "choose_rate",
    "lr_grid",
    "search_learning_rate",
    "search_rates",
]

#: The default grid spans ``default_lr * 10**k`` for ``k`` from the first to the last value.
GRID_DECADES: tuple[float, float] = (-2.5, 1.5)
#: Decades between neighbouring rates of the grid (9 rates over 4 decades).
GRID_STEP = 0.5
#: A trial's share of the full run's epochs (and time limit).
TUNING_FRACTION = 0.1
#: A trial runs at least this many epochs.
MIN_TUNING_EPOCHS = 5
#: At most this many rates are added beyond the grid's edge.
MAX_EXTENSIONS = 4
#: Why L-BFGS runs no search.
LBFGS_NOTE = (
    "not tuned: the strong-Wolfe line search picks every L-BFGS step (lr=1 only scales the "
    "first trial step)"
)


@dataclass(frozen=True)
class RateTrial:
    """One short run of a search.

    Attributes
    ----------
    lr : float
    objective : float
        Training objective at the end of the trial (of its lowest record
        when it diverged).
    diverged : bool
    epochs : int
        Epochs the trial completed.
    time : float
        Its training seconds.
    """

    lr: float
    objective: float
    diverged: bool
    epochs: int = 0
    time: float = 0.0

    @property
    def usable(self) -> bool:
        """Whether the trial may be chosen: it did not diverge and its objective is finite."""
        return not self.diverged and math.isfinite(self.objective)


@dataclass(frozen=True)
class RateSearch:
    """The outcome of a learning-rate search.

    Attributes
    ----------
    optimizer : str
    lr : float or None
        The rate chosen; None when every trial diverged.
    trials : tuple of RateTrial
        Every rate tried, in increasing order (empty for L-BFGS).
    seed : int
        The seed of every trial.
    epochs, time_limit : int or None, float or None
        Each trial's budget (None: no bound of that kind).
    note : str
        Why nothing was tuned, or how the grid was extended.
    """

    optimizer: str
    lr: float | None
    trials: tuple[RateTrial, ...]
    seed: int
    epochs: int | None = None
    time_limit: float | None = None
    note: str = ""

    @property
    def tuned(self) -> bool:
        """Whether trials ran (False for L-BFGS)."""
        return bool(self.trials)

    @property
    def rate_to_run(self) -> float:
        """``lr``, or the smallest rate tried when every trial diverged (that run will say so)."""
        if self.lr is not None:
            return self.lr
        return min(trial.lr for trial in self.trials)

    @property
    def time(self) -> float:
        """Training seconds of all trials together."""
        return float(sum(trial.time for trial in self.trials))

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "tuned": self.tuned,
            "seed": self.seed,
            "epochs": self.epochs,
            "time_limit": self.time_limit,
            "note": self.note,
            "time": self.time,
            "trials": [
                {"lr": t.lr, "objective": t.objective, "diverged": t.diverged,
                 "epochs": t.epochs, "time": t.time}
                for t in self.trials
            ],
        }


def lr_grid(optimizer: str, width: int) -> list[float]:
    """The default rates of a search: ``default_lr * 10**k``, ``k`` in :data:`GRID_DECADES`.

    Parameters
    ----------
    optimizer : str
        One of :data:`~convexnn.baselines.OPTIMIZERS`.
    width : int
        Number of neurons (plain SGD's default rate depends on it).

    Returns
    -------
    list of float
        9 rates, half a decade apart, increasing.
    """
    centre = default_lr(optimizer, width)
    low, high = GRID_DECADES
    steps = round((high - low) / GRID_STEP)
    return [centre * 10 ** (low + i * GRID_STEP) for i in range(steps + 1)]


def choose_rate(trials: Sequence[RateTrial]) -> RateTrial | None:
    """The usable trial with the lowest objective (the smaller rate on a tie); None if none is."""
    usable = [trial for trial in trials if trial.usable]
    if not usable:
        return None
    return min(usable, key=lambda trial: (trial.objective, trial.lr))


def search_rates(
    trial: Callable[[float], RateTrial],
    grid: Sequence[float],
    *,
    max_extensions: int = MAX_EXTENSIONS,
    step: float = 10**GRID_STEP,
) -> tuple[list[RateTrial], RateTrial | None, int]:
    """Try every rate of ``grid``, extending it past an edge that holds the best rate.

    Parameters
    ----------
    trial : callable
        ``trial(lr) -> RateTrial``: one short run at rate ``lr``.
    grid : sequence of float
        The rates to try.
    max_extensions : int, default :data:`MAX_EXTENSIONS`
        Rates that may be added beyond the grid: while the best rate is the
        largest (smallest) tried, the next one is ``step`` times larger
        (smaller); while every trial diverged, smaller.
    step : float, default ``10**GRID_STEP``

    Returns
    -------
    trials : list of RateTrial
        Every trial, in increasing rate.
    best : RateTrial or None
        :func:`choose_rate` of them.
    extensions : int
        Rates added beyond the grid.
    """
    trials = [trial(float(lr)) for lr in sorted(grid)]
    extensions = 0
    while extensions < max_extensions:
        best = choose_rate(trials)
        rates = [t.lr for t in trials]
        if best is not None and best.lr == max(rates):
            next_rate = max(rates) * step
        elif best is None or best.lr == min(rates):
            next_rate = min(rates) / step
        else:
            break
        trials.append(trial(next_rate))
        extensions += 1
    trials.sort(key=lambda t: t.lr)
    return trials, choose_rate(trials), extensions


def search_learning_rate(problem: TrainingProblem, seed: int) -> RateSearch:
    """Pick ``problem``'s learning rate by short trial runs from ``seed``.

    Parameters
    ----------
    problem : TrainingProblem
        Its settings give the optimizer, the grid (``lr_grid``, else
        :func:`lr_grid`) and the full run's epochs and time limit, of which
        each trial gets :data:`TUNING_FRACTION`.
    seed : int
        The initialisation (and batch order) of every trial.

    Returns
    -------
    RateSearch
    """
    from convexnn.baselines._training import run_training

    settings = problem.settings
    if settings.optimizer == "lbfgs":
        return RateSearch("lbfgs", DEFAULT_LR["lbfgs"], (), seed, note=LBFGS_NOTE)
    epochs = max(MIN_TUNING_EPOCHS, round(TUNING_FRACTION * settings.epochs))
    epochs = min(epochs, settings.epochs)
    time_limit = None if settings.time_limit is None else TUNING_FRACTION * settings.time_limit
    grid = settings.lr_grid or lr_grid(settings.optimizer, problem.width)

    def trial(lr: float) -> RateTrial:
        short = problem.with_settings(lr=lr, epochs=epochs, time_limit=time_limit,
                                      record_every=None, record_interval=None)
        run = run_training(short, seed, quiet=True)
        return RateTrial(lr, run.final_objective, run.diverged, run.epochs_run, run.train_time)

    trials, best, extensions = search_rates(trial, grid)
    note = ""
    if extensions:
        note = f"grid extended by {extensions} rate(s) past its edge"
    search = RateSearch(settings.optimizer, None if best is None else best.lr, tuple(trials),
                        seed, None if epochs >= UNBOUNDED_EPOCHS * TUNING_FRACTION else epochs,
                        time_limit, note)
    diverged = sum(t.diverged for t in trials)
    if best is None:
        warnings.warn(
            f"learning-rate search for {settings.optimizer}: all {len(trials)} rates from "
            f"{trials[0].lr:.3g} to {trials[-1].lr:.3g} diverged; running the smallest",
            ConvergenceWarning, stacklevel=user_stacklevel(),
        )
    else:
        logger.info(
            "learning-rate search for %s: lr %.3g (objective %.6g after %d epochs) of %d rates "
            "from %.3g to %.3g, %d diverged", settings.optimizer, best.lr, best.objective,
            best.epochs, len(trials), trials[0].lr, trials[-1].lr, diverged,
        )
    return search

"""Backprop baselines: the same two-layer polynomial-activation network, trained locally.

The network is ``f(x) = sum_j alpha_j sigma(u_j^T x)`` with first-layer
weights ``W`` of shape ``(m, d)`` and output weights ``alpha`` of shape
``(m,)`` or ``(m, C)``, any width ``m`` -- or, with ``geometry`` (a
:class:`~convexnn.patches.ConvGeometry`), the convolutional network with
average pooling ``f(x) = sum_j sum_r alpha_jr (1/P) sum_{p in r}
sigma(u_j^T x_rp)`` of :class:`convexnn.ConvexPolyConvClassifier`: filters
``W`` of shape ``(m, h)``, ``alpha`` of shape ``(m, R)`` or ``(m, R, C)``
over ``R`` pooling regions. Two training objectives:

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

Learning-rate search (``lr="tune"``)
------------------------------------
The defaults above are measured on a few problems; no fixed rate suits
every problem, so ``lr="tune"`` searches (:mod:`~convexnn.baselines._tuning`):
the run's seed is trained once per rate of a log-spaced grid --
:func:`lr_grid`: ``default_lr * 10**k`` for ``k = -2.5, -2, ..., 1.5`` (9
rates over 4 decades), or ``lr_grid`` -- for a tenth of the run's epochs
(at least 5) and of its time limit. The rate whose trial ends with the
lowest training objective wins; diverged trials are never chosen. When the
winner is on the grid's edge (or every rate diverged) the grid grows half a
decade at a time past that edge, at most 4 times. The full run then uses the
winner; ``run.lr_search`` (:class:`RateSearch`) keeps every trial.
:func:`run_seeds` and :func:`convexnn.compare` search once (on the first
seed) and train every seed at the chosen rate. L-BFGS is not tuned: its
strong-Wolfe line search picks every step.

Package layout: :mod:`~convexnn.baselines._settings` (choices, defaults,
validation), :mod:`~convexnn.baselines._training` (the training state with
its init / step functions, :func:`train_backprop`, :func:`run_seeds`),
:mod:`~convexnn.baselines._tuning` (the learning-rate search),
:mod:`~convexnn.baselines._results`, :mod:`~convexnn.baselines._metrics` and
:mod:`~convexnn.baselines._estimators`. The network trained is
:class:`convexnn._torch_model.TorchPolyNet`, the module
:meth:`TwoLayerPolyNet.to_torch <convexnn.network.TwoLayerPolyNet.to_torch>`
returns.

Divergence: a run stops as soon as a mini-batch objective, a parameter or a
recorded objective is non-finite, or a recorded objective exceeds
``1e12 * max(1, initial objective)``; it is marked ``diverged=True`` and
returns the weights (and values) of its record of lowest training objective
-- never NaN (its last finite record can be 1e12 times worse than its start).
A run that ends above its starting objective without blowing up warns too.
"""

from convexnn.baselines._estimators import BackpropPolyClassifier, BackpropPolyRegressor

# The "X as X" imports: constants and type aliases outside __all__, importable
# from here as they were before the module became a package.
from convexnn.baselines._metrics import Metric as Metric
from convexnn.baselines._metrics import MetricLike as MetricLike
from convexnn.baselines._metrics import accuracy, mean_squared_error, r2
from convexnn.baselines._results import BackpropRun, TrainingHistory
from convexnn.baselines._settings import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    INITS,
    OBJECTIVES,
    OPTIMIZERS,
    SCHEDULES,
    SGD_LR_WIDTH_SCALE,
    TUNE,
    TrainingSettings,
    check_training_settings,
    default_lr,
)
from convexnn.baselines._training import BLOWUP_FACTOR as BLOWUP_FACTOR
from convexnn.baselines._training import EXPONENTIAL_DECAY as EXPONENTIAL_DECAY
from convexnn.baselines._training import run_seeds, train_backprop
from convexnn.baselines._tuning import RateSearch, RateTrial, lr_grid

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "INITS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD_LR_WIDTH_SCALE",
    "TUNE",
    "BackpropPolyClassifier",
    "BackpropPolyRegressor",
    "BackpropRun",
    "RateSearch",
    "RateTrial",
    "TrainingHistory",
    "TrainingSettings",
    "accuracy",
    "check_training_settings",
    "default_lr",
    "lr_grid",
    "mean_squared_error",
    "r2",
    "run_seeds",
    "train_backprop",
]

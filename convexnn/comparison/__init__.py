"""Side by side: the certified convex optimum against backprop on one data set.

:func:`compare` trains the same two-layer polynomial-activation network on
the same (standardised) data, with the same loss, ``beta`` and activation,
in two ways:

* by the convex back-ends named in ``solvers`` (each solves the exact SDP
  once; deterministic), through :class:`~convexnn.ConvexPolyClassifier` /
  :class:`~convexnn.ConvexPolyRegressor`, so labels are encoded exactly as
  the estimators encode them;
* by backprop (:func:`convexnn.baselines.train_backprop`) with each
  optimizer in ``optimizers``, once per seed, on the convex problem's own
  objective (``objective="convex"``) or with weight decay -- at the
  learning rate a search picked (``tune_lr=True``), and for a number of
  epochs or the same wall-time ``budget`` per run (``"match"``: the convex
  solve's).

``conv=`` compares the convolutional network with average pooling instead
(:class:`~convexnn.ConvexPolyConvClassifier` and the same network by backprop).

Every row of the result reports the *convex objective*
``loss(f(X), y) + beta * sum_j |alpha_j|`` of the trained network on the
training data, so all rows are comparable, and the best certified lower
bound of the convex rows bounds every one of them from below. Each row also
gives the time its method took to come within 1% and 0.1% of that bound
(``time_to_1pct``, ``time_to_0.1pct``; ``inf``, "never" in the tables, when
it did not).

A method that fails (an unknown or unlicensed solver, a problem too large
for a conic back-end, a diverged optimizer, any exception) does not stop
the comparison: its row says ``status="failed"`` (or ``"diverged"``) with
the error text, a warning is logged, and the next method runs. Bad
*arguments* (an unknown optimizer, a negative ``beta``, ...) raise
:class:`~convexnn.exceptions.ValidationError` before anything runs.

Default sizes (``max_samples="auto"``)
--------------------------------------
Conic back-ends see an SDP with about ``n * (d + 1)^2 * C`` nonzeros
(``C`` outputs: one per class for more than two classes; convolutional:
``n * (h + 1)^2 * R * C`` for filters of ``h`` values and ``R`` pooling
regions); their time and memory grow with it. The ``native`` solver never
forms these data. With ``max_samples="auto"`` the *training* set is capped
(a stratified random subset; the test set is kept whole) only when a conic
back-end runs -- one named in ``solvers``, or ``"auto"`` when it would pick
one (for a loss or ``beta`` native cannot take) -- and the data exceed
:data:`AUTO_NONZERO_BUDGET`; the cap is then::

    max(AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET // nonzeros per sample)

= ``max(100, 4_000_000 // ((d + 1)^2 * C))``. Every method sees the same
data, so native run beside a conic back-end gets the capped set too; run it
alone for all samples. The report (``settings["sample_cap"]`` and the
markdown) says which cap applied and why. For the embedded data sets
(squared loss, the default 25% test split), with a conic back-end:

=================  ========  ===  ==========  =====================
data set           features  C    training    auto cap (conic)
=================  ========  ===  ==========  =====================
``digits``         64        10   1347        100
``mnist1d``        40        10   3750        237
``breast-cancer``  30        1    426         none (4162)
``wine``           13        3    133         none (6802)
``iris``           4         3    112         none (53333)
``diabetes``       10        1    331         none (33057)
``planted``        10        1    150         none (33057)
=================  ========  ===  ==========  =====================

Convex solves also get ``time_limit=DEFAULT_SOLVER_TIME_LIMIT`` (60 s)
unless ``solver_options`` says otherwise: a solve stopped by the limit is
still certified (its row has status ``"time_limit"``, a lower bound and a
gap). ``max_samples=None`` and ``solver_options={"time_limit": None}`` lift
both. (On ``digits`` every conic back-end needs minutes whatever ``n``: 20
PSD blocks of size 65 -- SCS stops at the time limit with a relative gap
of about 5e-4, Clarabel takes over 4 minutes even for 50 samples -- while
the structure-exploiting ``native`` solver, which ``"auto"`` prefers, takes
seconds.)

Threads
-------
Backprop on small problems is several times faster single-threaded on a
few cores (thread overhead drowns the small matrix products). With
``threads="auto"`` backprop runs with one torch thread and one BLAS thread
when ``n * width * (d + C) <= SMALL_PROBLEM_WORK``; the previous settings
are restored afterwards. Convex back-ends keep their own threading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convexnn._lazy import attach

# Each concern lives in a private module, as in sklearn.datasets. Public names
# are imported on first use (PEP 562), as convexnn's own are: the modules behind
# them need scikit-learn (which itself imports pandas) and torch, and
# `import convexnn.comparison` should load neither until a name is used.
_LAZY: dict[str, str] = {
    "AUTO_MIN_SAMPLES": "convexnn.comparison._data",
    "AUTO_NONZERO_BUDGET": "convexnn.comparison._data",
    "COLUMNS": "convexnn.comparison._records",
    "Comparison": "convexnn.comparison._report",
    "DEFAULT_SOLVER_TIME_LIMIT": "convexnn.comparison._arguments",
    "SMALL_PROBLEM_WORK": "convexnn.comparison._runners",
    "compare": "convexnn.comparison._compare",
    "default_max_samples": "convexnn.comparison._data",
    # Public by name, though never in __all__, before the module became a package.
    "DataLike": "convexnn.comparison._data",
    "MAX_AUTO_CLASSES": "convexnn.comparison._data",
    "RECORDS_PER_RUN": "convexnn.comparison._runners",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from convexnn.comparison._arguments import DEFAULT_SOLVER_TIME_LIMIT
    from convexnn.comparison._compare import compare
    from convexnn.comparison._data import AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET, default_max_samples
    from convexnn.comparison._data import MAX_AUTO_CLASSES as MAX_AUTO_CLASSES
    from convexnn.comparison._data import DataLike as DataLike
    from convexnn.comparison._records import COLUMNS
    from convexnn.comparison._report import Comparison
    from convexnn.comparison._runners import RECORDS_PER_RUN as RECORDS_PER_RUN
    from convexnn.comparison._runners import SMALL_PROBLEM_WORK


__getattr__, __dir__ = attach("convexnn.comparison", globals(), _LAZY)

__all__ = [
    "AUTO_MIN_SAMPLES",
    "AUTO_NONZERO_BUDGET",
    "COLUMNS",
    "DEFAULT_SOLVER_TIME_LIMIT",
    "SMALL_PROBLEM_WORK",
    "Comparison",
    "compare",
    "default_max_samples",
]

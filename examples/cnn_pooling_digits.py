"""A convolutional network with average pooling on the 8x8 digits: convex optimum vs backprop.

    python examples/cnn_pooling_digits.py [--classes 3,8] [--out DIR] [--seeds 2] [--small]

The network: 3x3 filters (stride 1) on the 8x8 image, activation
``sigma(t) = a t^2 + b t + c`` (``relu-approx``), average pooling over 3x3
windows of the 6x6 output (a 2x2 grid of regions), and a linear output:
``f(x)_k = sum_j sum_r alpha_jrk * mean_{p in region r} sigma(u_j^T x_p)``
with unit-norm filters ``u_j`` and the penalty ``beta * sum |alpha_jrk|``.

Its exact convex program (:class:`convexnn.ConvexPolyConvClassifier`) has one
pair of 10 x 10 PSD blocks per pooling region and class -- the size of the
*filter*, not of the image. :func:`convexnn.compare` with ``conv=...``
solves it (``native``) and trains the same CNN by backprop
(:func:`convexnn.baselines.train_backprop` with a ``geometry``: the
library's one torch model of the network) with SGD, Adam and L-BFGS after
a learning-rate search, each run for the same wall-time budget (20 s,
about three times the convex fit's 7 s here; ``--budget match`` gives every
run the convex fit's time, about 2 minutes in all), from 2 seeds. All 10
classes and every training sample by default (claim 3 of the paper's
experiments, see ``paper_accuracy.py``); ``--classes 3,8`` for a binary
task. Squared loss on -1/+1 targets, beta 0.1; pixels centred and
scaled by one mean and one standard deviation (per-pixel standardisation
would break the translation structure convolutions rely on).

Writes ``comparison.md`` / ``.csv`` / ``.json``, ``objective_vs_time.png``
and ``test_metric.png`` to DIR (default
``examples/results/accuracy/digits-cnn/``, next to ``paper_accuracy.py``'s
cases) and rewrites that folder's ``summary.md``.
"""

from __future__ import annotations

import numpy as np
from _paper import ACCURACY_INTRO, RESULTS, parser, save_case, setup, write_summary

from convexnn.comparison import compare
from convexnn.datasets import load_dataset

arguments = parser(__doc__, RESULTS / "accuracy" / "digits-cnn")
arguments.add_argument("--classes", default=None,
                       help="comma-separated digits to tell apart (default: all 10)")
arguments.add_argument("--budget", type=lambda text: text if text == "match" else float(text),
                       default=20.0, help="training seconds per backprop run, or 'match': the "
                       "convex fit's wall time (default 20)")
args = arguments.parse_args()
setup()

seeds, budget, max_samples = args.seeds or 2, args.budget, "auto"
if args.small:
    seeds, budget, max_samples = args.seeds or 2, 0.3, 60

data, name = "digits", "digits-cnn"
if args.classes:
    kept = [int(c) for c in args.classes.split(",")]
    digits = load_dataset("digits", standardize=False)
    train, test = np.isin(digits.y_train, kept), np.isin(digits.y_test, kept)
    data = (digits.X_train[train], digits.y_train[train], digits.X_test[test],
            digits.y_test[test])
    name = f"digits-cnn-{'-'.join(map(str, kept))}"
    if not args.out_given:  # beside the 10-class results, not over them
        args.out = args.out.with_name(name)

comparison = compare(
    data, solvers=("native",), optimizers=("sgd", "adam", "lbfgs"), seeds=seeds,
    budget=budget, tune_lr=True, loss="squared", beta=0.1, activation="relu-approx",
    conv={"filter_size": 3, "pool_size": 3, "image_shape": (1, 8, 8)},
    max_samples=max_samples, task="classification", threads=1, progress=False,
    solver_options={"time_limit": 900},  # not compare's default 60 s
    name=f"{name} (3x3 filters, 3x3 average pooling)",
)
save_case(comparison, args.out, args.out.name)
print(comparison.to_markdown())
# Next to the paper's other accuracy cases (a relative --out included).
if args.out.resolve().parent == (RESULTS / "accuracy").resolve():
    write_summary(args.out.parent, ACCURACY_INTRO)
print(f"wrote comparison.md, comparison.csv, comparison.json, objective_vs_time.png, "
      f"test_metric.png to {args.out}/")

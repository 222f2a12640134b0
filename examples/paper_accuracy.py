"""The paper's accuracy experiments on full data: the convex network vs tuned backprop.

    python examples/paper_accuracy.py [--datasets breast-cancer,wine,digits] [--out DIR] [--small]

Claim 3 of Bartan & Pilanci, checked on the embedded data sets at full
size (every training sample: the ``native`` solver takes them all, so
``max_samples="auto"`` caps nothing): the test accuracy and the training
time of the globally optimal network (activation ``relu-approx``, squared
loss on -1/+1 one-vs-rest targets, beta = 0.1, standardised features) vs
the same network trained by SGD, Adam and L-BFGS after a learning-rate
search (:func:`convexnn.compare` with ``tune_lr=True``), each for the same
wall-time budget per run and from several seeds. The convolutional network
with average pooling on digits is ``cnn_pooling_digits.py``; both write
their cases into the same folder, whose ``summary.md`` lists them all.

Budgets per run (seconds) and seeds, chosen to keep the default run to
about five minutes on two busy cores: breast-cancer 5 (3 seeds), wine 5
(3), digits 20 (2), mnist1d 30 (2). ``mnist1d`` (3750 training samples,
10 classes) is not in the default list -- its convex solve alone takes
2-5 minutes -- run it with ``--datasets mnist1d`` (about 10 minutes).

Writes ``DIR/<data set>/`` (``comparison.md`` / ``.csv`` / ``.json``,
``objective_vs_time.png``, ``test_metric.png``) and ``DIR/summary.md``
(default DIR: ``examples/results/accuracy``).
"""

from __future__ import annotations

from _paper import ACCURACY_INTRO, RESULTS, parser, save_case, setup, write_summary

from convexnn.comparison import compare

#: Seconds of training per backprop run, and seeds.
BUDGETS = {"breast-cancer": 5.0, "wine": 5.0, "digits": 20.0, "mnist1d": 30.0}
SEEDS = {"breast-cancer": 3, "wine": 3, "digits": 2, "mnist1d": 2}

arguments = parser(__doc__, RESULTS / "accuracy")
arguments.add_argument("--datasets", default="breast-cancer,wine,digits",
                       help=f"comma-separated, among {', '.join(BUDGETS)}")
args = arguments.parse_args()
setup()

names = [name.strip() for name in args.datasets.split(",") if name.strip()]
unknown = sorted(set(names) - set(BUDGETS))
if unknown:
    arguments.error(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(BUDGETS)}")

for name in names:
    budget, seeds, max_samples = BUDGETS[name], args.seeds or SEEDS[name], "auto"
    if args.small:
        budget, seeds, max_samples = 0.2, args.seeds or 2, 60
    comparison = compare(
        name, solvers=("native",), optimizers=("sgd", "adam", "lbfgs"), seeds=seeds,
        budget=budget, tune_lr=True, loss="squared", beta=0.1, activation="relu-approx",
        max_samples=max_samples, threads=1, progress=False,
        solver_options={"time_limit": 900},  # compare's default 60 s stops mnist1d's solve
    )
    save_case(comparison, args.out / name, name)
    print(comparison.to_markdown())

print(write_summary(args.out, ACCURACY_INTRO))
print(f"wrote {', '.join(names)} and summary.md to {args.out}/")

"""Planted data as in Bartan & Pilanci: the certified convex optimum vs SGD, Adam and L-BFGS.

    python examples/planted_convex_vs_backprop.py [--out DIR] [--seeds 5] [--small]

The authors' generator (:func:`convexnn.datasets.make_planted`): heavy-tailed
features ``X = N(0, 1)^4``, a random teacher of 5 neurons with activation
``0.09 t^2 + 0.5 t + 0.47``, noise 0.1, beta = 0.1, squared loss. The
features are used raw, as in the paper (``--standardize`` to change that).
Every backprop run minimises the convex problem's own objective, so its
curve can be read against the certified optimum. Each optimizer runs at the
learning rate a search picked (``tune_lr=True``: a log-spaced grid of short
runs; on these raw heavy-tailed features SGD diverges at most rates, and
the search says which). ``paper_planted.py`` runs the paper's full set of
planted cases.

Writes to DIR (default ``examples/output/planted_convex_vs_backprop/``):
``comparison.md`` / ``.csv`` / ``.json``, ``objective_vs_time.png`` (every
run's training objective against wall time, the certified optimum as a
dashed line) and ``test_metric.png`` (test R^2 per method).
"""

import argparse
import logging
from pathlib import Path

from convexnn.comparison import compare
from convexnn.datasets import make_planted

ACTIVATION = (0.09, 0.5, 0.47)  # the paper's rounded least-squares fit of ReLU

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument(
    "--out", type=Path,
    default=Path(__file__).parent / "output" / "planted_convex_vs_backprop",
)
parser.add_argument("--samples", type=int, default=133, help="samples (a quarter for testing)")
parser.add_argument("--features", type=int, default=20)
parser.add_argument("--seeds", type=int, default=5, help="backprop initialisations")
parser.add_argument(
    "--solvers", default="native,clarabel,scs", help="comma-separated convex back-ends"
)
parser.add_argument("--standardize", action="store_true", help="standardise the features")
parser.add_argument("--small", action="store_true", help="a tiny, quick run (for tests)")
args = parser.parse_args()
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

samples, features, seeds, epochs = args.samples, args.features, args.seeds, None
if args.small:
    samples, features, seeds, epochs = 40, 5, 2, 50

planted = make_planted(samples, features, activation=ACTIVATION, noise=0.1, random_state=0)
comparison = compare(
    (planted.X, planted.y),
    task="regression",
    solvers=args.solvers.split(","),
    optimizers=("sgd", "adam", "lbfgs"),
    seeds=seeds,
    epochs=epochs,
    beta=0.1,
    activation=ACTIVATION,
    loss="squared",
    standardize=args.standardize,
    tune_lr=True,
    progress=not args.small,
    name=f"planted (n={samples}, d={features}, X = N(0,1)^4)",
)
paths = comparison.save(args.out)
print(comparison.to_markdown())

# Reading the result: how close does each optimizer get to the certified optimum?
bound = comparison.lower_bound
for record in comparison.records:
    if record["kind"] == "backprop":
        print(
            f"{record['method']:>6} seed {record['seed']}: {record['status']:>9}, objective "
            f"{record['objective']:.6g} = {record['objective'] / bound:.3g} x the certified optimum"
        )
print(f"wrote {', '.join(p.name for p in paths.values())} to {args.out}/")

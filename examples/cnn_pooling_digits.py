"""A convolutional network with average pooling on the 8x8 digits: convex optimum vs backprop.

    python examples/cnn_pooling_digits.py [--classes 3,8] [--out DIR] [--small]

The network: 3x3 filters (stride 1) on the 8x8 image, activation
``sigma(t) = a t^2 + b t + c``, average pooling over 3x3 windows of the 6x6
output (a 2x2 grid of regions), and a linear output:
``f(x) = sum_j sum_r alpha_jr * mean_{p in region r} sigma(u_j^T x_p)``
with unit-norm filters ``u_j`` and the penalty ``beta * sum |alpha_jr|``.

Its exact convex program (:class:`convexnn.ConvexPolyConvClassifier`) has one
pair of 10 x 10 PSD blocks per pooling region -- the size of the *filter*,
not of the image -- so conic solvers handle it easily. The baselines module
has no convolutional network, so this script trains the *same* CNN by
backprop itself (a few lines of torch below: same architecture, same
objective, unit-norm filters by reparametrisation; ``Conv2d`` ->
``sigma`` -> ``AvgPool2d`` -> linear, as one writes any CNN) with SGD, Adam
and L-BFGS from several initialisations, in float32 (the recorded objectives
are evaluated in float64).

Binary task (two digit classes, -1/+1 targets, squared loss), pixel values
scaled to [0, 1] (no per-pixel standardisation, which would break the
translation structure convolutions rely on).

Writes to DIR (default ``examples/output/cnn_pooling_digits/``):
``comparison.md``, ``comparison.csv``, ``objective_vs_time.png`` and
``test_accuracy.png``.
"""

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from convexnn import ConvexPolyConvClassifier, get_activation  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument(
    "--out", type=Path, default=Path(__file__).parent / "output" / "cnn_pooling_digits"
)
parser.add_argument("--classes", default="3,8", help="the two digits to tell apart")
parser.add_argument("--samples", type=int, default=200, help="training samples")
parser.add_argument("--seeds", type=int, default=3, help="backprop initialisations")
parser.add_argument("--beta", type=float, default=0.1)
parser.add_argument("--solver", default="auto", help="convex back-end")
parser.add_argument("--small", action="store_true", help="a tiny, quick run (for tests)")
args = parser.parse_args()

ACTIVATION = get_activation("relu-approx")
FILTER, POOL = 3, 3
EPOCHS = {"sgd": 300, "adam": 300, "lbfgs": 100}
LR = {"sgd": 1e-2, "adam": 1e-2, "lbfgs": 1.0}
samples, seeds = args.samples, args.seeds
if args.small:
    samples, seeds, EPOCHS = 60, 2, {"sgd": 30, "adam": 30, "lbfgs": 10}
torch.set_num_threads(1)  # tiny tensors: one thread is several times faster on a few cores

# -- data: two digit classes, pixels in [0, 1] ----------------------------------------
first, second = (int(c) for c in args.classes.split(","))
digits = load_digits()
keep = np.isin(digits.target, (first, second))
X, labels = digits.data[keep] / 16.0, digits.target[keep]
X_train, X_test, y_train, y_test = train_test_split(
    X, labels, test_size=0.25, random_state=0, stratify=labels
)
X_train, y_train = X_train[:samples], y_train[:samples]

# -- the convex CNN: solved once, certified -------------------------------------------
start = time.perf_counter()
convex = ConvexPolyConvClassifier(
    image_shape=(1, 8, 8), filter_size=FILTER, pool_size=POOL, beta=args.beta,
    activation=ACTIVATION, solver=args.solver,
).fit(X_train, y_train)
convex_time = time.perf_counter() - start
result = convex.result_
geometry = convex.geometry_
targets = np.where(y_train == convex.classes_[1], 1.0, -1.0)  # the encoding the estimator uses
print(
    f"convex CNN ({result.solver}): {result.status}, objective {result.objective:.6g}, "
    f"certified lower bound {result.lower_bound:.6g}, {result.n_neurons} filters, "
    f"{convex_time:.2f} s; {geometry.n_regions} pooling regions of {geometry.pool_area} patches"
)


# -- the same CNN by backprop: Conv2d -> sigma -> AvgPool2d -> linear ---------------------
def outputs(images, W, alpha):
    """f(x) for images (n, 1, 8, 8); filters normalised to unit norm."""
    U = W / torch.linalg.vector_norm(W, dim=1, keepdim=True)
    z = F.conv2d(images, U.view(len(U), *FILTER_SHAPE))  # (n, m, 6, 6)
    a, b, c = ACTIVATION.coefficients
    hidden = F.avg_pool2d(a * z * z + b * z + c, POOL)  # (n, m, 2, 2): the pooling regions
    return (hidden.flatten(2) * alpha).sum(dim=(1, 2))  # alpha: (m, regions)


def objective(images, t, W, alpha):
    """The convex program's objective: 1/2 sum (f - y)^2 + beta * sum |alpha|."""
    return 0.5 * torch.sum((outputs(images, W, alpha) - t) ** 2) + args.beta * alpha.abs().sum()


FILTER_SHAPE = (1, FILTER, FILTER)
DTYPE = torch.float32  # training precision; the recorded objectives are float64
train_images = torch.as_tensor(X_train.reshape(-1, 1, 8, 8))
test_images = torch.as_tensor(X_test.reshape(-1, 1, 8, 8))
t = torch.as_tensor(targets)
n, regions, h = len(X_train), geometry.n_regions, geometry.patch_size
width = 2 * (h + 1) * regions  # a width at which the convex optimum is attainable

# Sanity check: the convex network has the same objective in this torch code.
U_convex = torch.as_tensor(convex.network_.U)
alpha_convex = torch.as_tensor(convex.network_.alpha).reshape(len(U_convex), regions)
assert math.isclose(
    float(objective(train_images, t, U_convex, alpha_convex)), result.objective, rel_tol=1e-6
)


def recorded_objective(W, alpha):
    with torch.no_grad():
        return float(objective(train_images, t, W.double(), alpha.double()))


def train(optimizer_name, seed):
    generator = torch.Generator().manual_seed(seed)
    W = torch.randn(width, h, generator=generator, dtype=torch.float64) * math.sqrt(2 / h)
    alpha = torch.randn(width, regions, generator=generator, dtype=torch.float64)
    alpha = alpha * math.sqrt(2 / width)
    W, alpha = W.to(DTYPE).requires_grad_(True), alpha.to(DTYPE).requires_grad_(True)
    images, t_train = train_images.to(DTYPE), t.to(DTYPE)
    if optimizer_name == "lbfgs":
        optimizer = torch.optim.LBFGS([W, alpha], lr=LR["lbfgs"], max_iter=1, max_eval=26,
                                      history_size=20, line_search_fn="strong_wolfe")
    else:
        optimizer_class = torch.optim.SGD if optimizer_name == "sgd" else torch.optim.Adam
        optimizer = optimizer_class([W, alpha], lr=LR[optimizer_name])

    def closure():  # steps on objective / n, as convexnn.baselines does
        optimizer.zero_grad()
        value = objective(images, t_train, W, alpha) / n
        value.backward()
        return value

    epochs = EPOCHS[optimizer_name]
    every = max(1, epochs // 100)
    elapsed, history, status = 0.0, [(0.0, recorded_objective(W, alpha))], "completed"
    for epoch in range(1, epochs + 1):
        begin = time.perf_counter()
        optimizer.step(closure)
        elapsed += time.perf_counter() - begin
        if epoch % every == 0 or epoch == epochs:
            value = recorded_objective(W, alpha)
            if not math.isfinite(value):
                status = "diverged"
                break
            history.append((elapsed, value))
    with torch.no_grad():
        W64, alpha64 = W.double(), alpha.double()
        train_out = outputs(train_images, W64, alpha64).numpy()
        test_out = outputs(test_images, W64, alpha64).numpy()
    train_acc = float(((train_out > 0) == (targets > 0)).mean())
    test_acc = float(((test_out > 0) == (y_test == convex.classes_[1])).mean())
    return history, status, train_acc, test_acc, elapsed


rows = [
    {
        "method": f"convex ({result.solver})", "seed": None, "status": result.status,
        "objective": result.objective, "lower_bound": result.lower_bound,
        "train_accuracy": convex.score(X_train, y_train),
        "test_accuracy": convex.score(X_test, y_test), "time": convex_time,
        "filters": result.n_neurons,
    }
]
histories = {}
for name in ("sgd", "adam", "lbfgs"):
    for seed in range(seeds):
        history, status, train_acc, test_acc, elapsed = train(name, seed)
        histories[(name, seed)] = history
        rows.append(
            {
                "method": f"backprop {name}", "seed": seed, "status": status,
                "objective": history[-1][1], "lower_bound": math.nan,
                "train_accuracy": train_acc, "test_accuracy": test_acc, "time": elapsed,
                "filters": width,
            }
        )

# -- table and figures ----------------------------------------------------------------
args.out.mkdir(parents=True, exist_ok=True)
table = pd.DataFrame(rows)
table["objective / optimum"] = table["objective"] / result.lower_bound
table.to_csv(args.out / "comparison.csv", index=False)
columns = list(table.columns)
lines = [
    f"## CNN with average pooling, digits {first} vs {second}: convex vs backprop",
    "",
    f"{len(X_train)} training / {len(X_test)} test images; {FILTER}x{FILTER} filters, "
    f"{POOL}x{POOL} average pooling ({regions} regions), activation {ACTIVATION}, "
    f"beta {args.beta}, squared loss; backprop width {width}.",
    "",
    "| " + " | ".join(columns) + " |",
    "|" + "|".join("---" for _ in columns) + "|",
]
for row in table.itertuples(index=False):
    cells = []
    for value in row:
        if isinstance(value, float):
            cells.append("" if math.isnan(value) else f"{value:.6g}")
        else:
            cells.append("" if value is None else str(value))
    lines.append("| " + " | ".join(cells) + " |")
markdown = "\n".join(lines) + "\n"
(args.out / "comparison.md").write_text(markdown, encoding="utf-8")
print(markdown)

colors = {"sgd": "tab:orange", "adam": "tab:red", "lbfgs": "tab:purple"}
figure, axes = plt.subplots(figsize=(7, 4.5), layout="constrained")
for (name, seed), history in histories.items():
    times, values = zip(*history)
    axes.plot(times, values, color=colors[name], alpha=0.8, label=name if seed == 0 else None)
axes.scatter([convex_time], [result.objective], marker="*", s=200, color="tab:blue",
             edgecolor="black", zorder=5, label=f"convex ({result.solver})")
axes.axhline(result.lower_bound, color="black", ls="--", lw=1,
             label=f"certified optimum (≥ {result.lower_bound:.6g})")
axes.set_yscale("log")
top = max(h[0][1] for h in histories.values() if math.isfinite(h[0][1]))
axes.set_ylim(result.lower_bound / 1.3, top * 1.5)
axes.set(xlabel="wall time (s)", ylabel="training objective",
         title=f"CNN with average pooling, digits {first} vs {second}")
axes.legend(fontsize=8)
figure.savefig(args.out / "objective_vs_time.png", dpi=110)
plt.close(figure)

figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
methods = list(dict.fromkeys(table["method"]))
for position, method in enumerate(methods):
    values = table.loc[table["method"] == method, "test_accuracy"].to_numpy()
    if len(values) > 1:
        axes.boxplot([values], positions=[position], widths=0.5, manage_ticks=False)
    axes.scatter(np.full(len(values), position), values, zorder=3,
                 marker="*" if method.startswith("convex") else "o", s=120 if
                 method.startswith("convex") else 30)
axes.set_xticks(range(len(methods)), methods)
axes.set(ylabel="test accuracy", title="test accuracy (spread over seeds)")
axes.grid(axis="y", alpha=0.3)
figure.savefig(args.out / "test_accuracy.png", dpi=110)
plt.close(figure)
print(f"wrote comparison.md, comparison.csv, objective_vs_time.png, test_accuracy.png to "
      f"{args.out}/")

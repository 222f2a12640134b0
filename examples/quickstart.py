"""Quickstart: fit a globally optimal two-layer network, predict, read its certificate.

    python examples/quickstart.py [--out DIR]

Writes ``quickstart.md`` / ``quickstart.csv`` (the certificate and test
accuracy) and ``decision_values.png`` to DIR (default
``examples/output/quickstart/``).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from convexnn import ConvexPolyClassifier  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path(__file__).parent / "output" / "quickstart")
parser.add_argument("--solver", default="auto", help="a back-end name or 'auto'")
args = parser.parse_args()

# -- the 20 lines: data, fit, predict, certificate ---------------------------------
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

model = ConvexPolyClassifier(beta=0.1, activation="relu-approx", solver=args.solver)
model.fit(X_train, y_train)  # solves the exact convex program (an SDP)
labels = model.predict(X_test)  # class labels, like any scikit-learn classifier

result = model.result_  # SolveResult: the certificate of global optimality
print(f"solver            {result.solver} ({result.status}) in {result.solve_time:.2f} s")
print(f"objective         {result.objective:.8g}   (loss + beta * sum |alpha|)")
print(f"lower bound       {result.lower_bound:.8g}   (certified: no network does better)")
print(f"relative gap      {result.relative_gap:.1e}")
print(f"neurons           {model.network_.n_neurons}  (network_.U, network_.alpha)")
print(f"test accuracy     {(labels == y_test).mean():.4f}")
# -----------------------------------------------------------------------------------

args.out.mkdir(parents=True, exist_ok=True)
table = pd.DataFrame(
    [
        {
            "solver": result.solver,
            "status": result.status,
            "objective": result.objective,
            "lower_bound": result.lower_bound,
            "relative_gap": result.relative_gap,
            "neurons": model.network_.n_neurons,
            "solve_time": result.solve_time,
            "train_accuracy": model.score(X_train, y_train),
            "test_accuracy": model.score(X_test, y_test),
        }
    ]
)
table.to_csv(args.out / "quickstart.csv", index=False)
header = "| " + " | ".join(table.columns) + " |"
rule = "|" + "|".join("---" for _ in table.columns) + "|"
cells = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in table.iloc[0]]
row = "| " + " | ".join(cells) + " |"
(args.out / "quickstart.md").write_text(
    "## Quickstart: breast cancer, convex two-layer network\n\n" + "\n".join([header, rule, row])
    + "\n", encoding="utf-8"
)

scores = model.decision_function(X_test)
figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
for label, name in zip(model.classes_, ("malignant", "benign")):
    axes.hist(scores[y_test == label], bins=20, alpha=0.6, label=f"{name} (class {label})")
axes.axvline(0, color="black", lw=1)
axes.set(xlabel="network output f(x) (sign = predicted class)", ylabel="test samples",
         title=f"globally optimal network, certified gap {result.relative_gap:.0e}")
axes.legend()
figure.savefig(args.out / "decision_values.png", dpi=110)
plt.close(figure)
print(f"wrote quickstart.md, quickstart.csv, decision_values.png to {args.out}/")

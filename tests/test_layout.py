"""The package's shape: one installed top-level name, a one-way dependency, a lazy namespace."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import convexnn

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> list[str]:
    """Absolute module names imported by one file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = "convexnn.solvers." + ".".join(path.relative_to(ROOT / "solvers").parent.parts)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
    return names


def test_the_solver_layer_imports_nothing_of_the_modelling_layer():
    files = sorted((ROOT / "solvers").rglob("*.py"))
    assert files, "no solver modules found"
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in _imported_modules(path)
        if (name == "convexnn" or name.startswith("convexnn."))
        and not (name == "convexnn.solvers" or name.startswith("convexnn.solvers."))
    }
    assert not offending, f"solvers/ must not import the modelling layer: {sorted(offending)}"


def test_the_import_check_sees_a_violation(tmp_path, monkeypatch):
    """The rule above would catch an import of the modelling layer."""
    fake_root = tmp_path
    (fake_root / "solvers").mkdir()
    bad = fake_root / "solvers" / "bad.py"
    bad.write_text("from convexnn.losses import get_loss\nfrom . import base\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    assert _imported_modules(bad) == ["convexnn.losses", "convexnn.solvers"]


def test_the_wheel_installs_one_top_level_package(tmp_path):
    """``pip install convexnn`` must not claim ``solvers`` (or any other global name)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("convexnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"convexnn"}
    assert "convexnn/solvers/registry.py" in names
    assert "convexnn/solvers/native/_ipm.py" in names
    assert "convexnn/solvers/py.typed" in names and "convexnn/py.typed" in names


def test_no_global_solvers_module_is_importable_from_the_install():
    """Outside the repository, ``import solvers`` finds nothing of ours."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.find_spec('solvers')\n"
        "print('none' if spec is None else spec.origin)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True,
                         text=True, check=True, timeout=60).stdout.strip()
    assert out == "none" or not out.startswith(str(ROOT))


def test_every_public_name_resolves_to_its_object_after_all_submodules_load():
    """Lazy names must not be shadowed by a submodule of the same name."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(convexnn.__path__, "convexnn."):
        importlib.import_module(module.name)
    for name in convexnn.__all__:
        value = getattr(convexnn, name)
        if name in ("baselines", "comparison", "datasets", "distributed", "solvers"):
            assert value.__name__ == f"convexnn.{name}"
        elif name != "__version__":
            assert not isinstance(value, type(convexnn)), f"convexnn.{name} is a module"
    assert callable(convexnn.solve) and callable(convexnn.compare)


def _printed_by(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (outside the repository)."""
    return subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True,
                          text=True, check=True, timeout=120).stdout.strip()


def test_import_is_light():
    """``import convexnn`` loads neither torch, cvxpy, pandas nor matplotlib."""
    code = (
        "import sys, convexnn\n"
        "heavy = [m for m in ('torch', 'cvxpy', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    assert _printed_by(code) == ""


def test_a_native_fit_does_not_load_cvxpy():
    """cvxpy (0.3-0.6 s to import, and a handler on its own logger) is for the conic
    back-ends: a fit with solver="native" loaded it through the losses' module and
    through the 'usable instead' list of a solver that was usable."""
    code = (
        "import sys, numpy as np, convexnn\n"
        "X = np.random.default_rng(0).normal(size=(30, 3))\n"
        "convexnn.ConvexPolyRegressor(solver='native').fit(X, X[:, 0] ** 2)\n"
        "print('cvxpy' in sys.modules)\n"
    )
    assert _printed_by(code) == "False"


def test_the_library_logs_nothing_to_stderr_unless_logging_is_configured():
    """A NullHandler on "convexnn" keeps Python's last-resort handler from printing the
    library's warnings into an application that configured no logging."""
    code = "import logging, convexnn; logging.getLogger('convexnn.solvers').warning('noise')"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""
    configured = subprocess.run([sys.executable, "-c", "import logging; logging.basicConfig(); "
                                 + code.replace("import logging, ", "import ")],
                                capture_output=True, text=True)
    assert "noise" in configured.stderr


def test_results_unpack_by_name_and_print_briefly():
    """solve returns a named (result, network, output); reprs leave arrays out."""
    import numpy as np

    data = convexnn.datasets.make_planted(300, 20, random_state=0)
    problem = convexnn.make_problem(data.X, data.y, beta=0.1)
    solution = convexnn.solve(problem, "native", solver_options={"tol": 1e-6})
    result, network, output = solution
    assert isinstance(solution, convexnn.Solution)
    assert solution.result is result and solution.network is network
    assert solution.output is output
    for value in (result, network, output, problem, data,
                  convexnn.datasets.load_dataset("wine")):
        assert len(repr(value)) < 600, type(value).__name__
    assert np.shape(data.X) == (300, 20)


def test_compare_draws_its_bar_only_on_a_terminal(monkeypatch, capsys):
    import numpy as np

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    X = np.random.default_rng(0).normal(size=(40, 3))
    convexnn.compare((X, X[:, 0] ** 2), solvers=["native"], optimizers=[])
    assert "compare" not in capsys.readouterr().err

"""Backprop baselines: optimizers, objectives, reproducibility, divergence, estimators."""

from __future__ import annotations

import dataclasses
import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from convexnn import (
    ConvexPolyConvRegressor,
    ConvexPolyRegressor,
    TwoLayerPolyNet,
    ValidationError,
    get_activation,
)
from convexnn.baselines import (
    OPTIMIZERS,
    SCHEDULES,
    BackpropPolyClassifier,
    BackpropPolyRegressor,
    BackpropRun,
    RateTrial,
    accuracy,
    check_training_settings,
    default_lr,
    lr_grid,
    run_seeds,
    train_backprop,
)
from convexnn.baselines._training import (
    TrainingProblem,
    TrainingState,
    finish_training,
    init_training,
    training_step,
)
from convexnn.baselines._tuning import choose_rate, search_rates
from convexnn.losses import get_loss
from convexnn.patches import ConvGeometry

ACTIVATION = get_activation("relu-approx")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny problems: torch's thread pool only adds overhead (and noise) on 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def planted(n: int = 60, d: int = 5, *, seed: int = 0, heavy: bool = False, outputs: int = 0):
    """A teacher network with 3 neurons; ``heavy`` uses X = N(0,1)^4 as the authors do."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if heavy:
        X = X**4
    teacher = rng.normal(size=(3, d))
    weights = rng.normal(size=(3, outputs) if outputs else 3)
    y = ACTIVATION(X @ teacher.T) @ weights + 0.1 * rng.normal(size=(n, outputs) if outputs else n)
    return X, y


@pytest.fixture(scope="module")
def data():
    return planted()


def fast(**kwargs):
    """Small, quick settings; overridden by ``kwargs``."""
    settings = dict(width=8, epochs=40, beta=0.1)
    settings.update(kwargs)
    return settings


# -- optimizers and settings -------------------------------------------------------
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_decreases_the_objective(data, optimizer):
    X, y = data
    run = train_backprop(
        X, y, **fast(optimizer=optimizer, epochs=15 if optimizer == "lbfgs" else 40)
    )
    assert isinstance(run, BackpropRun)
    assert not run.diverged and run.stop_reason == "epochs"
    initial, final = run.history.objective[0], run.final_objective
    assert final < 0.8 * initial, (optimizer, initial, final)
    assert run.optimizer == optimizer and run.objective_kind == "convex"
    assert run.W.shape == (8, 5) and run.alpha.shape == (8,)
    assert np.all(np.isfinite(run.history.objective))


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_mini_batch_training_decreases_the_objective(data, optimizer):
    X, y = data
    run = train_backprop(X, y, **fast(optimizer=optimizer, batch_size=16, epochs=15))
    assert not run.diverged
    assert run.final_objective < 0.8 * run.history.objective[0]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules(data, schedule):
    X, y = data
    run = train_backprop(X, y, **fast(schedule=schedule, epochs=40))
    assert run.final_objective < 0.8 * run.history.objective[0]


def test_schedules_change_the_trajectory(data):
    X, y = data
    runs = [train_backprop(X, y, **fast(schedule=s, epochs=20)) for s in SCHEDULES]
    finals = {run.final_objective for run in runs}
    assert len(finals) == len(SCHEDULES)
    # The first step uses the same learning rate in every schedule.
    assert len({run.history.objective[1] for run in runs}) == 1


@pytest.mark.parametrize("init", ["kaiming", "xavier", "normal"])
def test_initialisations(data, init):
    X, y = data
    run = train_backprop(X, y, **fast(init=init, init_scale=0.5 if init == "normal" else 1.0))
    assert run.final_objective < run.history.objective[0]


def test_initialisations_differ(data):
    X, y = data
    starts = {
        train_backprop(X, y, **fast(init=init, epochs=1)).history.objective[0]
        for init in ("kaiming", "xavier", "normal")
    }
    assert len(starts) == 3
    small = train_backprop(X, y, **fast(init="normal", init_scale=1e-3, epochs=1))
    # Tiny output weights: the initial objective is the loss of f = 0 (plus almost no penalty).
    assert small.history.objective[0] == pytest.approx(0.5 * np.sum(y**2), rel=1e-2)


def test_default_width_and_vector_output():
    X, y = planted(outputs=2)
    run = train_backprop(X, y, epochs=3)
    assert run.W.shape == (2 * 2 * (5 + 1), 5) and run.alpha.shape == (24, 2)
    assert run.predict(X).shape == (60, 2)


def test_record_every_and_time_limit(data):
    X, y = data
    run = train_backprop(X, y, **fast(epochs=23, record_every=5))
    np.testing.assert_array_equal(run.history.epoch, [0, 5, 10, 15, 20, 23])
    assert len(run.history) == 6
    assert np.all(np.diff(run.history.wall_time) > 0)
    assert run.train_time == run.history.wall_time[-1]

    limited = train_backprop(X, y, **fast(epochs=10_000, time_limit=1e-9))
    assert limited.stop_reason == "time_limit" and limited.epochs_run == 1
    np.testing.assert_array_equal(limited.history.epoch, [0, 1])


def test_metrics_on_train_and_test_data(data):
    X, y = data
    X_test, y_test = planted(n=30, seed=1)
    run = train_backprop(X, y, **fast(metric="r2", X_test=X_test, y_test=y_test))
    assert np.all(np.isfinite(run.history.train_metric))
    assert np.all(np.isfinite(run.history.test_metric))
    assert run.final_train_metric > run.history.train_metric[0]
    np.testing.assert_allclose(
        run.final_test_metric, 1 - np.sum((run.predict(X_test) - y_test) ** 2)
        / np.sum((y_test - y_test.mean()) ** 2), rtol=1e-10,
    )
    no_metric = train_backprop(X, y, **fast(epochs=2))
    assert np.all(np.isnan(no_metric.history.train_metric))
    custom = train_backprop(
        X, y, **fast(epochs=2, metric=lambda t, p: float(np.max(np.abs(t - p))))
    )
    assert custom.final_train_metric > 0


# -- reproducibility -------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [None, 16])
def test_same_seed_same_run_different_seed_different_run(data, batch_size):
    X, y = data
    settings = fast(epochs=10, batch_size=batch_size, optimizer="momentum")
    first = train_backprop(X, y, seed=3, **settings)
    again = train_backprop(X, y, seed=3, **settings)
    other = train_backprop(X, y, seed=4, **settings)
    np.testing.assert_array_equal(first.history.objective, again.history.objective)
    np.testing.assert_array_equal(first.history.convex_objective, again.history.convex_objective)
    np.testing.assert_array_equal(first.W, again.W)
    np.testing.assert_array_equal(first.alpha, again.alpha)
    assert not np.array_equal(first.history.objective, other.history.objective)
    assert not np.array_equal(first.W, other.W)


def test_mini_batch_shuffling_depends_on_the_seed_only(data):
    X, y = data
    # The mini-batch order comes from the run's own generator: identical for one seed,
    # whatever else used random numbers in between.
    first = train_backprop(X, y, seed=5, **fast(epochs=5, batch_size=7, optimizer="sgd"))
    torch.randperm(10)
    np.random.permutation(10)
    second = train_backprop(X, y, seed=5, **fast(epochs=5, batch_size=7, optimizer="sgd"))
    runs = [first, second]
    np.testing.assert_array_equal(runs[0].history.objective, runs[1].history.objective)


def test_global_rng_state_untouched(data):
    X, y = data
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    train_backprop(X, y, seed=11, **fast(epochs=3, batch_size=10))
    BackpropPolyRegressor(width=4, epochs=2, random_state=2).fit(X, y)
    assert torch.equal(torch_state, torch.get_rng_state())
    np.testing.assert_array_equal(numpy_state, np.random.get_state()[1])


def test_run_seeds(data):
    X, y = data
    runs = run_seeds(X, y, [0, 7], **fast(epochs=3))
    assert [run.seed for run in runs] == [0, 7]
    assert runs[0].history.objective[0] != runs[1].history.objective[0]
    assert [run.seed for run in run_seeds(X, y, 3, **fast(epochs=1))] == [0, 1, 2]
    # a repeated seed is the same run: trained once, as compare does
    assert [run.seed for run in run_seeds(X, y, [7, 0, 7], **fast(epochs=1))] == [7, 0]
    with pytest.raises(ValidationError, match="seed"):
        run_seeds(X, y, [], **fast(epochs=1))
    with pytest.raises(ValidationError, match="seed"):
        run_seeds(X, y, [0], seed=1)


# -- objectives ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss, outputs",
    [("squared", 0), ("squared", 2), ("logistic", 0), ("cross-entropy", 3), ("hinge", 0)],
)
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_convex_objective_equals_the_network_objective(loss, outputs, optimizer):
    X, raw = planted(outputs=outputs)
    if loss in ("logistic", "hinge"):
        y = np.where(raw > np.median(raw), 1.0, -1.0)
    elif loss == "cross-entropy":
        y = np.eye(3)[np.argmax(raw, axis=1)]
    else:
        y = raw
    run = train_backprop(X, y, loss=loss, optimizer=optimizer, **fast(epochs=10, beta=0.3))
    assert isinstance(run.network, TwoLayerPolyNet)
    np.testing.assert_allclose(np.linalg.norm(run.network.U, axis=1), 1.0, rtol=1e-12)
    expected = run.network.objective(X, y, loss=loss, beta=0.3)
    assert run.final_convex_objective == pytest.approx(expected, rel=1e-10)
    assert run.final_objective == run.final_convex_objective
    np.testing.assert_array_equal(run.history.objective, run.history.convex_objective)
    np.testing.assert_allclose(run.predict(X), run.network.predict(X), rtol=1e-10, atol=1e-10)


def test_weight_decay_objective_and_its_convex_objective(data):
    X, y = data
    beta = 0.2
    run = train_backprop(X, y, objective="weight-decay", **fast(beta=beta, epochs=30))
    assert run.objective_kind == "weight-decay" and run.network is None
    assert run.final_objective < 0.8 * run.history.objective[0]
    assert len(run.history.convex_objective) == len(run.history.objective)
    assert np.all(np.isfinite(run.history.convex_objective))
    # The training objective: raw first-layer weights and weight decay.
    outputs = ACTIVATION(X @ run.W.T) @ run.alpha
    np.testing.assert_allclose(run.predict(X), outputs, rtol=1e-12)
    expected = 0.5 * np.sum((outputs - y) ** 2) + beta / 2 * (
        np.sum(run.W**2) + np.sum(run.alpha**2)
    )
    assert run.final_objective == pytest.approx(expected, rel=1e-10)
    # The convex objective of the same weights with normalised rows.
    normalised = TwoLayerPolyNet(run.W, run.alpha, ACTIVATION)
    assert run.final_convex_objective == pytest.approx(
        normalised.objective(X, y, loss="squared", beta=beta), rel=1e-10
    )
    assert run.final_convex_objective != pytest.approx(run.final_objective)


def test_convex_optimum_is_below_every_backprop_run():
    """The project's key claim: no backprop run beats the certified convex optimum."""
    X, y = planted(n=40, d=4, seed=2)
    beta = 0.1
    convex = ConvexPolyRegressor(
        beta=beta, solver="clarabel", solver_options={"tol": 1e-8}
    ).fit(X, y)
    lower = convex.result_.lower_bound
    assert convex.result_.objective - lower <= 1e-5 * max(1.0, abs(lower))
    runs = [
        train_backprop(
            X, y, beta=beta, optimizer=name, epochs=60 if name != "lbfgs" else 40, seed=seed
        )
        for name in ("sgd", "adam", "lbfgs")
        for seed in (0, 1)
    ]
    runs.append(train_backprop(X, y, beta=beta, objective="weight-decay", epochs=60))
    for run in runs:
        assert not run.diverged
        assert lower <= run.final_convex_objective + 1e-9 * abs(lower), (run.optimizer, run.seed)
        assert np.all(lower <= run.history.convex_objective + 1e-9 * abs(lower))


# -- divergence --------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer, batch_size", [("sgd", None), ("sgd", 10), ("momentum", None)])
def test_divergence_is_reported_not_raised(optimizer, batch_size):
    from sklearn.exceptions import ConvergenceWarning

    X, y = planted(heavy=True)
    # A warning, not only a log record: the library's logger has no handler of its own.
    with pytest.warns(ConvergenceWarning, match=f"backprop {optimizer} .* diverged at epoch"):
        run = train_backprop(
            X, y, optimizer=optimizer, lr=1.0, batch_size=batch_size, **fast(epochs=200)
        )
    assert run.diverged and run.stop_reason == "diverged"
    assert run.epochs_run < 200
    for values in (run.history.objective, run.history.convex_objective, run.history.wall_time):
        assert np.all(np.isfinite(values))
    assert np.isfinite(run.final_objective) and np.isfinite(run.final_convex_objective)
    assert np.all(np.isfinite(run.W)) and np.all(np.isfinite(run.alpha))
    assert np.all(np.isfinite(run.predict(X)))
    # the weights of its lowest record, not of its last (up to 1e12 times its start)
    best = int(np.argmin(run.history.objective))
    assert run.final_objective == pytest.approx(run.history.objective[best], rel=1e-12)
    assert run.final_objective <= run.history.objective[0]
    assert run.epochs_run == run.history.epoch[best]


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_a_run_that_ends_above_its_start_warns(optimizer):
    # these blew the objective up 400-80000x without tripping the 1e12 divergence test
    from sklearn.exceptions import ConvergenceWarning

    X = np.random.RandomState(0).randn(100, 5)
    with pytest.warns(ConvergenceWarning, match="ended above its starting objective"):
        run = train_backprop(X, X[:, 0], optimizer=optimizer, lr=1e3, epochs=100, seed=0)
    assert not run.diverged and run.final_objective > run.history.objective[0]


def test_a_rate_search_where_every_rate_diverges_warns():
    from sklearn.exceptions import ConvergenceWarning

    X, y = planted(heavy=True)
    with pytest.warns(ConvergenceWarning) as caught:  # the search's, then the run's own
        train_backprop(X, y, optimizer="sgd", lr="tune", lr_grid=[1e8, 1e9], **fast(epochs=20))
    messages = [str(warning.message) for warning in caught]
    assert re.match("learning-rate search for sgd: all 6 rates .* diverged", messages[0])
    assert "diverged at epoch" in messages[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_cuda_device_is_refused_before_training():
    from convexnn import compare

    X, y = planted()
    with pytest.raises(ValidationError, match="device 'cuda': torch sees no CUDA device"):
        train_backprop(X, y, device="cuda")
    with pytest.raises(ValidationError, match="backprop_options\\['device'\\]: device 'cuda'"):
        compare((X, y), solvers=[], optimizers=["adam"], backprop_options={"device": "cuda"},
                progress=False)


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"optimizer": "adamw"}, "optimizer"),
        ({"beta": -1.0}, "beta"),
        ({"width": 0}, "width"),
        ({"width": 2.5}, "width"),
        ({"lr": 0.0}, "lr"),
        ({"epochs": -3}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "lbfgs", "batch_size": 10}, "batch_size"),
        ({"schedule": "linear"}, "schedule"),
        ({"init": "orthogonal"}, "init"),
        ({"init_scale": -1}, "init_scale"),
        ({"objective": "l2"}, "objective"),
        ({"loss": "nope"}, "loss"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"metric": "f1"}, "metric"),
        ({"record_every": 0}, "record_every"),
        ({"time_limit": 0}, "time_limit"),
        ({"dtype": torch.int64}, "dtype"),
        ({"X_test": np.zeros((3, 5))}, "y_test"),
        ({"lr": "fast"}, "lr"),
        ({"lr": "tune", "lr_grid": [0.1]}, "lr_grid"),
        ({"lr": "tune", "lr_grid": [0.1, -1.0]}, "lr_grid"),
        ({"lr": "tune", "lr_grid": "0.1,1"}, "lr_grid"),
        ({"lr": 0.01, "lr_grid": [0.1, 1.0]}, "lr_grid is the grid lr='tune' searches; with "
         "lr=0.01 it would be ignored"),
        ({"record_interval": 0}, "record_interval"),
        ({"geometry": (1, 8, 8)}, "geometry"),
        ({"geometry": ConvGeometry((1, 2, 2), 1)}, "X must hold images of shape"),
    ],
)
def test_train_backprop_rejects_bad_settings(data, kwargs, name):
    X, y = data
    with pytest.raises(ValidationError, match=name):
        train_backprop(X, y, **{"epochs": 1, **kwargs})


def test_train_backprop_rejects_bad_data(data):
    X, y = data
    with pytest.raises(ValidationError, match="y"):
        train_backprop(X, y[:-1], epochs=1)
    with pytest.raises(ValidationError, match="X_test"):
        train_backprop(X, y, epochs=1, X_test=np.zeros((3, 4)), y_test=np.zeros(3))
    with pytest.raises(ValidationError, match="-1, \\+1"):
        train_backprop(X, y, loss="logistic", epochs=1)


# -- the training state ----------------------------------------------------------------------
def tiny_problem(X, y, objective: str = "convex") -> TrainingProblem:
    """The problem ``train_backprop(X, y, width=8, epochs=2, objective=objective)`` trains."""
    settings = check_training_settings(
        width=8, activation="relu-approx", loss="squared", beta=0.1, objective=objective,
        optimizer="adam", lr=None, epochs=2, batch_size=None, schedule="constant",
        init="kaiming", init_scale=1.0,
    )
    return TrainingProblem.create(X, y.reshape(-1, 1), settings, single_output=True)


def test_training_state_init_and_steps(data):
    X, y = data
    problem = tiny_problem(X, y)
    state = init_training(problem, seed=0)
    assert dataclasses.is_dataclass(state) and isinstance(state, TrainingState)
    assert state.epoch == 0 and state.stop_reason is None
    assert [record.epoch for record in state.history] == [0]
    state = training_step(state, problem)
    assert state.epoch == 1 and state.stop_reason is None
    state = training_step(state, problem)
    assert state.epoch == 2 and state.stop_reason == "epochs"  # epochs=2 reached
    objectives = [record.objective for record in state.history]
    assert objectives[2] < objectives[1] < objectives[0]
    assert state.checkpoint.epoch == 2 and state.elapsed > 0
    with pytest.raises(ValidationError, match="stopped"):
        training_step(state, problem)
    # train_backprop is exactly these steps.
    run = finish_training(state, problem)
    direct = train_backprop(X, y, width=8, epochs=2, seed=0)
    np.testing.assert_array_equal(run.history.objective, direct.history.objective)
    np.testing.assert_array_equal(run.W, direct.W)
    np.testing.assert_array_equal(run.alpha, direct.alpha)


@pytest.mark.parametrize("objective", ["convex", "weight-decay"])
def test_the_baselines_train_the_module_to_torch_returns(data, objective):
    """One torch model of the network: no second copy of the forward pass."""
    X, y = data
    problem = tiny_problem(X, y, objective=objective)
    state = init_training(problem, seed=1)
    exported = TwoLayerPolyNet(np.eye(2), np.ones(2), "quadratic").to_torch()
    assert type(state.model) is type(exported)
    assert state.model.unit_norm == (objective == "convex") and not exported.unit_norm
    while state.stop_reason is None:
        state = training_step(state, problem)
    run = finish_training(state, problem)
    with torch.no_grad():
        trained = state.model(torch.from_numpy(X))[:, 0].numpy()
    np.testing.assert_allclose(trained, run.predict(X), rtol=1e-12, atol=1e-12)
    if objective == "convex":
        with torch.no_grad():
            outputs = run.network.to_torch()(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(outputs, trained, rtol=1e-12, atol=1e-12)


# -- estimators ----------------------------------------------------------------------------
def test_regressor_fit_predict_shapes(data):
    X, y = data
    reg = BackpropPolyRegressor(width=6, epochs=30, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (60,)
    assert reg.n_features_in_ == 5
    assert isinstance(reg.run_, BackpropRun) and isinstance(reg.network_, TwoLayerPolyNet)
    assert reg.W_.shape == (6, 5) and reg.alpha_.shape == (6,)
    assert reg.score(X, y) == pytest.approx(reg.run_.final_train_metric)
    # An int random_state is the torch seed: the same run as train_backprop's.
    direct = train_backprop(X, y, width=6, epochs=30, seed=0)
    np.testing.assert_array_equal(reg.run_.history.objective, direct.history.objective)

    X2, y2 = planted(outputs=2)
    multi = BackpropPolyRegressor(width=6, epochs=5, objective="weight-decay").fit(X2, y2)
    assert multi.predict(X2).shape == (60, 2) and multi.network_ is None
    with pytest.raises(ValueError, match="features"):  # scikit-learn's own check and message
        reg.predict(X[:, :3])


def test_random_state_semantics(data):
    X, y = data
    fits = [BackpropPolyRegressor(width=4, epochs=2, random_state=None).fit(X, y) for _ in range(2)]
    assert fits[0].run_.seed != fits[1].run_.seed  # drawn from numpy's global state, like sklearn
    a = BackpropPolyRegressor(width=4, epochs=2, random_state=np.random.RandomState(3)).fit(X, y)
    b = BackpropPolyRegressor(width=4, epochs=2, random_state=np.random.RandomState(3)).fit(X, y)
    assert a.run_.seed == b.run_.seed
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    with pytest.raises(ValidationError, match="random_state"):
        BackpropPolyRegressor(epochs=1, random_state="x").fit(X, y)


def test_classifier_on_iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = BackpropPolyClassifier(width=12, optimizer="adam", epochs=200, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.score(X, y) > 0.9
    assert clf.decision_function(X).shape == (150, 3)
    assert clf.predict(X).shape == (150,)
    assert clf.run_.final_train_metric == pytest.approx(clf.score(X, y))
    assert not hasattr(clf, "predict_proba")  # squared loss: no probabilities

    soft = BackpropPolyClassifier(
        width=12, loss="cross-entropy", epochs=100, random_state=0
    ).fit(X, y)
    proba = soft.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert soft.score(X, y) > 0.9


def test_binary_classifier_with_string_labels(data):
    X, raw = data
    labels = np.where(raw > np.median(raw), "yes", "no")
    clf = BackpropPolyClassifier(width=6, loss="logistic", epochs=60, random_state=1).fit(X, labels)
    assert clf.decision_function(X).shape == (60,)
    assert set(clf.predict(X)) <= {"no", "yes"}
    assert clf.predict_proba(X).shape == (60, 2)
    assert clf.score(X, labels) > 0.6
    assert accuracy(
        np.where(labels == "yes", 1.0, -1.0), clf.decision_function(X)
    ) == clf.score(X, labels)


def test_clone_get_params_and_pickle(data):
    X, y = data
    reg = BackpropPolyRegressor(width=5, optimizer="rmsprop", lr=1e-3, epochs=3, random_state=4)
    params = reg.get_params()
    assert params["optimizer"] == "rmsprop" and params["width"] == 5 and params["random_state"] == 4
    twin = clone(reg)
    assert twin.get_params() == params and not hasattr(twin, "run_")
    twin.set_params(optimizer="adagrad")
    assert twin.optimizer == "adagrad"
    reg.fit(X, y)
    restored = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(restored.predict(X), reg.predict(X))


@pytest.mark.parametrize("estimator", [BackpropPolyRegressor, BackpropPolyClassifier])
@pytest.mark.parametrize(
    "params, name",
    [
        ({"optimizer": "adamw"}, "optimizer"),
        ({"beta": -0.5}, "beta"),
        ({"width": 0}, "width"),
        ({"schedule": "warmup"}, "schedule"),
        ({"verbose": "yes"}, "verbose"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_estimators_reject_bad_parameters(data, estimator, params, name):
    X, y = data
    target = y if estimator is BackpropPolyRegressor else (y > 0).astype(int)
    with pytest.raises(ValidationError, match=name):
        estimator(**params).fit(X, target)


def test_loss_objects_match_the_library_losses(data):
    """Objectives are the convexnn.losses sums: squared loss is 1/2 sum r^2."""
    X, y = data
    run = train_backprop(X, y, **fast(epochs=1, beta=0.0))
    outputs = run.predict(X)
    expected = get_loss("squared")(outputs.reshape(-1, 1), y.reshape(-1, 1))
    assert run.final_objective == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.5 * np.sum((outputs - y) ** 2), rel=1e-12)


# -- learning-rate search ------------------------------------------------------------------
def gradient_descent_trial(curvature: float, steps: int = 20):
    """Trials of gradient descent on ``curvature / 2 * w^2`` from ``w = 1``: the best rate is
    ``1 / curvature`` (one step to the minimum), rates above ``2 / curvature`` diverge and
    much smaller ones crawl."""

    def trial(lr: float) -> RateTrial:
        w = 1.0
        for _ in range(steps):
            w -= lr * curvature * w
        value = 0.5 * curvature * w * w
        diverged = not np.isfinite(value) or value > 1e12
        return RateTrial(lr, 0.5 * curvature if diverged else value, diverged, steps)

    return trial


def test_search_picks_the_known_rate_of_a_quadratic():
    grid = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]  # 5 rates over 4 decades
    trials, best, extensions = search_rates(gradient_descent_trial(10.0), grid)
    assert best.lr == pytest.approx(0.1) and best.objective == 0.0 and not best.diverged
    assert extensions == 0 and [t.lr for t in trials] == grid
    by_rate = {t.lr: t for t in trials}
    assert by_rate[1.0].diverged  # |1 - 10| > 1
    assert by_rate[1e-4].objective > by_rate[1e-3].objective > by_rate[1e-2].objective > 0  # crawl


def test_search_extends_the_grid_past_an_edge_holding_the_best_rate():
    trials, best, extensions = search_rates(gradient_descent_trial(10.0), [1e-4, 1e-3, 1e-2])
    # 1e-2 is on the edge: 10^-1.5, 10^-1, 10^-0.5 (diverges) are tried, then 10^-1 wins.
    assert best.lr == pytest.approx(0.1) and extensions == 3
    assert trials[-1].lr == pytest.approx(10**-0.5) and trials[-1].diverged
    # Everything diverging: the search looks below the grid for a rate that does not
    # (10^-0.5 diverges, 10^-1 converges, 10^-1.5 crawls: 10^-1 is inside, the search stops).
    trials, best, extensions = search_rates(gradient_descent_trial(10.0), [1.0, 10.0])
    assert extensions == 3 and best.lr == pytest.approx(0.1) and not best.diverged


def test_search_never_selects_a_diverged_run():
    trials = [
        RateTrial(1e-3, 5.0, False),
        RateTrial(1e-2, 1.0, True),  # lowest objective, but diverged: not a result
        RateTrial(1e-1, float("nan"), False),
        RateTrial(1.0, 0.5, True),
    ]
    assert choose_rate(trials).lr == 1e-3
    assert choose_rate([RateTrial(1.0, 0.1, True)]) is None

    def trial(lr: float) -> RateTrial:  # the diverged trials "end" lower than the others
        return RateTrial(lr, 0.0 if lr > 0.05 else 1.0 / lr, lr > 0.05)

    _, best, _ = search_rates(trial, [1e-3, 1e-2, 1e-1, 1.0])
    assert best.lr == 1e-2 and not best.diverged


def linear_problem(n: int = 40, seed: int = 3):
    """One feature, width 1, identity activation: the convex objective is a lasso in ``alpha``.

    With ``u = w / |w| = +-1`` fixed (its gradient in ``w`` is 0), ``f(x) = c x`` with
    ``c = +-alpha``; on standardised ``x`` the curvature of the objective / n in ``alpha``
    is ``mean(x^2) = 1``, so full-batch SGD converges in one step at lr 1, diverges above 2
    and crawls well below 1.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x = (x - x.mean()) / x.std()
    y = 3.0 * x + 0.3 * rng.normal(size=n)
    return x[:, None], y


def test_tuning_picks_the_known_rate_in_training_and_reaches_the_optimum():
    X, y = linear_problem()
    beta = 0.1
    run = train_backprop(
        X, y, width=1, activation=(0.0, 1.0, 0.0), beta=beta, optimizer="sgd", lr="tune",
        lr_grid=[1e-3, 1e-2, 1e-1, 1.0, 10.0], epochs=100,
    )
    search = run.lr_search
    assert search.tuned and search.lr == 1.0 and run.lr == 1.0 and not run.diverged
    assert search.epochs == 10  # a tenth of the run
    by_rate = {trial.lr: trial for trial in search.trials}
    assert by_rate[10.0].diverged
    usable = [t for t in search.trials if not t.diverged]
    assert by_rate[1.0].objective == min(t.objective for t in usable)
    assert by_rate[1e-3].objective > by_rate[1e-2].objective > by_rate[1e-1].objective
    # The optimum, computed independently: c* = soft-threshold(sum x y, beta) / sum x^2.
    x = X[:, 0]
    c = np.sign(x @ y) * max(abs(x @ y) - beta, 0.0) / (x @ x)
    optimum = 0.5 * np.sum((c * x - y) ** 2) + beta * abs(c)
    assert run.final_objective == pytest.approx(optimum, rel=1e-10)


def test_default_grid_spans_four_decades_around_the_default_rate():
    for optimizer in ("sgd", "adam", "momentum"):
        grid = lr_grid(optimizer, 30)
        assert len(grid) == 9 and np.all(np.diff(grid) > 0)
        assert np.log10(grid[-1] / grid[0]) == pytest.approx(4.0)
        assert any(rate == pytest.approx(default_lr(optimizer, 30)) for rate in grid)


def test_lbfgs_is_not_tuned(data):
    X, y = data
    run = train_backprop(X, y, optimizer="lbfgs", lr="tune", **fast(epochs=5))
    assert not run.lr_search.tuned and run.lr_search.trials == () and run.lr == 1.0
    assert "line search" in run.lr_search.note


def test_run_seeds_tunes_once_and_trains_every_seed_at_the_chosen_rate(data):
    X, y = data
    runs = run_seeds(X, y, 2, optimizer="adam", lr="tune", **fast(epochs=20))
    search = runs[0].lr_search
    assert search.tuned and search.seed == 0 and len(search.trials) >= 9
    assert all(run.lr_search is search and run.lr == search.lr for run in runs)
    plain = train_backprop(X, y, optimizer="adam", lr=search.lr, seed=1, **fast(epochs=20))
    np.testing.assert_array_equal(runs[1].history.objective, plain.history.objective)


def test_record_interval_records_by_training_time(data):
    X, y = data
    run = train_backprop(X, y, record_every=None, record_interval=0.05, time_limit=0.3,
                         **fast(epochs=10**6))
    assert run.stop_reason == "time_limit"
    gaps = np.diff(run.history.wall_time)
    assert 4 <= len(gaps) <= 8 and np.all(gaps[:-1] >= 0.05)


# -- the convolutional network ---------------------------------------------------------------
def small_images(n: int = 40, seed: int = 0):
    """6x6 one-channel images whose target depends on a local pattern."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 36))
    images = X.reshape(n, 6, 6)
    y = images[:, 1:3, 1:3].sum(axis=(1, 2)) ** 2 / 4 - images[:, 3:5, 3:5].sum(axis=(1, 2))
    return X, y


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_conv_network_trains_on_the_convex_objective(optimizer):
    X, y = small_images()
    geometry = ConvGeometry((1, 6, 6), 3, 1, 2)  # 4x4 outputs, 2x2 pooling: 4 regions
    epochs = 15 if optimizer == "lbfgs" else 60
    run = train_backprop(X, y, geometry=geometry, optimizer=optimizer, epochs=epochs, beta=0.1)
    assert not run.diverged and run.geometry == geometry
    assert run.width == 2 * 1 * 4 * (9 + 1)  # 2 C R (h + 1)
    assert run.W.shape == (80, 9) and run.alpha.shape == (80, 4)
    assert run.history.objective[-1] < run.history.objective[0]
    # The numpy forward pass (patches) agrees with the torch conv2d / avg_pool2d one.
    assert run.network.geometry == geometry
    np.testing.assert_allclose(run.predict(X), run.network.predict(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(run.predict(X.reshape(-1, 6, 6)), run.predict(X), rtol=1e-12)
    assert run.network.objective(X, y, loss="squared", beta=0.1) == pytest.approx(
        run.final_convex_objective, rel=1e-10
    )
    # ... and the certified convex optimum of the same network bounds it from below.
    convex = ConvexPolyConvRegressor(image_shape=(1, 6, 6), filter_size=3, pool_size=2,
                                     beta=0.1, solver="clarabel",
                                     solver_options={"tol": 1e-8}).fit(X, y)
    assert convex.result_.lower_bound <= run.final_convex_objective


def test_conv_network_with_several_outputs_and_global_pooling():
    X, y = small_images(seed=1)
    Y = np.stack([y, -y], axis=1)
    geometry = ConvGeometry((1, 6, 6), 3)
    run = train_backprop(X, Y, geometry=geometry, width=6, epochs=5)
    assert run.alpha.shape == (6, 1, 2) and run.predict(X).shape == (40, 2)
    np.testing.assert_allclose(run.predict(X), run.network.predict(X), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pool_size", [None, 2, (1, 3)])
def test_conv_forward_pass_equals_conv2d_sigma_avgpool(pool_size):
    """The module's moment-based pass is the plain Conv2d -> sigma -> AvgPool2d -> linear."""
    from convexnn._torch_model import TorchPolyNet

    generator = torch.Generator().manual_seed(5)
    geometry = ConvGeometry((2, 7, 6), (3, 2), (1, 1), pool_size)
    m, C = 4, 3
    weight = torch.randn(m, geometry.patch_size, generator=generator, dtype=torch.float64)
    alpha = torch.randn(m, geometry.n_regions, C, generator=generator, dtype=torch.float64)
    images = torch.randn(9, 2, 7, 6, generator=generator, dtype=torch.float64)
    a, b, c = ACTIVATION.coefficients
    for unit_norm in (False, True):
        module = TorchPolyNet(weight, alpha, (a, b, c), geometry=geometry, single_output=False,
                              unit_norm=unit_norm)
        W = weight / weight.norm(dim=1, keepdim=True) if unit_norm else weight
        t = torch.nn.functional.conv2d(images, W.reshape(m, 2, 3, 2))
        act = a * t**2 + b * t + c
        if pool_size is None:
            pooled = act.mean(dim=(2, 3))[:, :, None]
        else:
            pooled = torch.nn.functional.avg_pool2d(act, pool_size).flatten(2)
        expected = torch.einsum("nmr,mrk->nk", pooled, alpha)
        with torch.no_grad():
            np.testing.assert_allclose(module(images.flatten(1)).numpy(), expected.numpy(),
                                       rtol=1e-12, atol=1e-12)


def test_run_seeds_rejects_unknown_settings(data):
    X, y = data
    with pytest.raises(ValidationError, match="unknown training setting.*momentum"):
        run_seeds(X, y, 2, momentum=0.9)


def test_a_float32_run_reports_its_networks_float64_objective_on_the_data_as_given():
    """The float32 history rounds: its last objective once fell below the optimum's
    certified bound (by 1.6e-7 relative) in a comparison table."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 2))
    y = X[:, 0] ** 2 - 0.5 * X[:, 1] + 0.3 * rng.standard_normal(80)
    run = train_backprop(X, y, optimizer="lbfgs", epochs=50, seed=2, dtype=torch.float32)
    exact = run.network.objective(X, y, loss="squared", beta=0.1)
    assert run.final_convex_objective == pytest.approx(exact, rel=1e-13)
    assert run.final_convex_objective != pytest.approx(run.history.convex_objective[-1],
                                                        rel=1e-12)


def test_fit_and_predict_on_read_only_arrays_raise_no_torch_warning():
    """pandas' copy-on-write arrays are read-only; torch warns when it wraps one."""
    import warnings

    import pandas as pd

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.standard_normal((30, 3)), columns=["a", "b", "c"])
    values = frame.to_numpy()
    values.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = BackpropPolyRegressor(epochs=3, random_state=0).fit(frame, frame["a"])
        predictions = model.run_.predict(values)
    np.testing.assert_allclose(predictions, model.predict(frame), rtol=1e-12)


def test_backprop_estimators_certify_their_network_with_labels_as_for_fit():
    """String labels are encoded with the fitted classes; the bound never passes the convex
    optimum, and tightening reaches it."""
    from convexnn import ConvexPolyClassifier

    X, raw = planted()
    labels = np.where(raw > np.median(raw), "up", "down")
    model = BackpropPolyClassifier(epochs=50, beta=1.0, random_state=0).fit(X, labels)
    loose, tight = model.certify(X, labels), model.certify(X, labels, tighten=True)
    assert loose.objective == pytest.approx(model.run_.final_convex_objective, rel=1e-12)
    optimum = ConvexPolyClassifier(beta=1.0).fit(X, labels).result_
    assert loose.lower_bound <= tight.lower_bound <= optimum.objective * (1 + 1e-9)
    assert tight.lower_bound == pytest.approx(optimum.lower_bound, rel=1e-6)
    regressor = BackpropPolyRegressor(epochs=20, random_state=0).fit(X, raw)
    assert regressor.certify(X, raw).lower_bound <= regressor.run_.final_convex_objective
    decayed = BackpropPolyRegressor(epochs=5, objective="weight-decay").fit(X, raw)
    with pytest.raises(ValidationError, match="certify needs objective='convex'"):
        decayed.certify(X, raw)


def test_a_seed_gives_float32_and_float64_runs_the_same_start():
    # torch's random streams differ by dtype: the starts were 144.2 and 62.2
    X, y = planted()
    runs = [train_backprop(X, y, seed=0, dtype=dtype, **fast(epochs=1))
            for dtype in (torch.float64, torch.float32)]
    assert runs[1].history.objective[0] == pytest.approx(runs[0].history.objective[0],
                                                         rel=1e-5)

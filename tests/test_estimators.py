"""The scikit-learn estimators: sklearn's own contract checks and everyday use.

``parametrize_with_checks`` runs every applicable check of scikit-learn on the
four estimators. They use Clarabel (deterministic, fast on sklearn's small
check data sets) with ``tol=1e-6``. No check is listed as an expected failure:
each one that failed at first was a real bug and was fixed. The conv
regressor carries sklearn's ``poor_score`` tag (see ``estimators.py``): a
translation-invariant conv + pooling model is not expected to reach R^2 > 0.5
on tabular data with a single informative column; the check still runs, only
its score threshold is skipped.

Then: clone, Pipeline, GridSearchCV, pandas input with feature names, string
labels, binary and multiclass with every classification loss,
``predict_proba`` availability, save / load and ``to_torch`` round trips,
parameter validation messages.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import convexnn
from conftest import planted_conv_teacher, planted_teacher
from convexnn import (
    ConvexPolyClassifier,
    ConvexPolyConvClassifier,
    ConvexPolyConvRegressor,
    ConvexPolyRegressor,
    TwoLayerPolyNet,
)
from convexnn.exceptions import IncompatibleVersionError, ValidationError

OPTIONS = {"tol": 1e-6}
FAST = dict(solver="clarabel", solver_options=OPTIONS)

#: Checks that cannot apply, with the reason (none so far; see the module doc).
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


@parametrize_with_checks(
    [
        ConvexPolyRegressor(**FAST),
        ConvexPolyClassifier(**FAST),
        # A row-wise loss: one output per class, even for two classes.
        ConvexPolyClassifier(loss="cross-entropy", **FAST),
        ConvexPolyConvRegressor(filter_size=2, **FAST),
        ConvexPolyConvClassifier(filter_size=2, **FAST),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_contract(estimator, check):
    check(estimator)


# -- data ------------------------------------------------------------------------


def regression_data(n=40, d=4, seed=61):
    t = planted_teacher(n=n, d=d, seed=seed)
    return t.X, t.y


def classification_data(n_classes, n=45, d=4, seed=62):
    """Balanced classes: quantile bins of a planted teacher's output."""
    t = planted_teacher(n=n, d=d, seed=seed, noise=0.0)
    edges = np.quantile(t.clean, np.arange(1, n_classes) / n_classes)
    labels = np.array(["cat", "dog", "eel", "fox"])[np.digitize(t.clean, edges)]
    return t.X, labels


# -- everyday use -------------------------------------------------------------------


def test_regressor_fit_predict_and_fitted_attributes():
    X, y = regression_data()
    reg = ConvexPolyRegressor(beta=0.05, loss="huber", **FAST).fit(X, y)
    assert reg.n_features_in_ == 4
    assert reg.result_.status == "optimal" and reg.result_.relative_gap < 1e-5
    assert reg.result_.solver == "clarabel"
    assert isinstance(reg.network_, TwoLayerPolyNet)
    prediction = reg.predict(X)
    assert prediction.shape == (40,)
    np.testing.assert_allclose(prediction, reg.network_.predict(X))
    assert reg.score(X, y) > 0.9
    assert reg.result_.objective == pytest.approx(
        reg.network_.objective(X, y, loss="huber", beta=0.05), rel=1e-10
    )


def test_multi_output_regression():
    t = planted_teacher(n=40, d=4, n_outputs=2, seed=63)
    reg = ConvexPolyRegressor(beta=0.05, **FAST).fit(t.X, t.y)
    assert reg.predict(t.X).shape == (40, 2)
    assert reg.network_.alpha.shape[1] == 2
    assert reg.score(t.X, t.y) > 0.9


def test_clone_keeps_parameters_and_drops_the_fit():
    X, y = regression_data()
    reg = ConvexPolyRegressor(activation=(1.0, 0.0, 0.0), beta=0.3, **FAST).fit(X, y)
    copy = clone(reg)
    assert copy.get_params() == reg.get_params()
    assert not hasattr(copy, "network_") and not hasattr(copy, "result_")
    copy.set_params(beta=0.01)
    assert copy.beta == 0.01 and reg.beta == 0.3


def test_pipeline_with_standard_scaler():
    X, y = regression_data()
    X = 5.0 * X + 3.0
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("net", ConvexPolyRegressor(beta=0.05, **FAST))]
    )
    pipeline.fit(X, y)
    direct = ConvexPolyRegressor(beta=0.05, **FAST).fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(pipeline.predict(X),
                               direct.predict(StandardScaler().fit_transform(X)),
                               rtol=1e-6, atol=1e-6)
    assert pipeline.score(X, y) > 0.9


def test_grid_search_over_beta():
    X, y = regression_data(n=45)
    search = GridSearchCV(ConvexPolyRegressor(**FAST), {"beta": [1e-3, 1.0, 30.0]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["beta"] in (1e-3, 1.0)
    scores = search.cv_results_["mean_test_score"]
    assert scores[2] < scores.max()  # heavy penalty underfits
    assert search.best_estimator_.result_.status == "optimal"


def test_pandas_input_with_feature_names():
    X, labels = classification_data(2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = ConvexPolyClassifier(beta=0.05, **FAST).fit(frame, pd.Series(labels))
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.warns(UserWarning, match="feature names"):
        ConvexPolyClassifier(beta=0.05, **FAST).fit(X, labels).predict(frame)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["b", "a", "c", "d"]])


@pytest.mark.parametrize(
    "loss", ["squared", "hinge", "logistic", "cross-entropy", "multiclass-hinge"]
)
def test_binary_string_labels_with_every_loss(loss):
    X, labels = classification_data(2)
    clf = ConvexPolyClassifier(beta=0.05, loss=loss, **FAST).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog"])
    predicted = clf.predict(X)
    assert predicted.dtype.kind == "U" and set(predicted) <= {"cat", "dog"}
    assert clf.score(X, labels) >= 0.9
    scores = clf.decision_function(X)
    assert scores.shape == (45,)  # every loss: scikit-learn's two-class convention
    assert clf.result_.status == "optimal"


@pytest.mark.parametrize(
    "loss", ["squared", "hinge", "logistic", "cross-entropy", "multiclass-hinge"]
)
def test_multiclass_with_every_loss(loss):
    X, labels = classification_data(3, n=45)
    clf = ConvexPolyClassifier(beta=0.02, loss=loss, **FAST).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "eel"])
    assert clf.decision_function(X).shape == (45, 3)
    assert clf.score(X, labels) >= 0.85
    assert clf.result_.status == "optimal"


@pytest.mark.parametrize(
    "loss", ["squared", "hinge", "logistic", "cross-entropy", "multiclass-hinge"]
)
def test_predict_proba_only_for_probabilistic_losses(loss):
    X, labels = classification_data(3, n=45)
    clf = ConvexPolyClassifier(beta=0.05, loss=loss, **FAST)
    probabilistic = loss in ("logistic", "cross-entropy")
    assert hasattr(clf, "predict_proba") is probabilistic
    if probabilistic:
        clf.fit(X, labels)
        proba = clf.predict_proba(X)
        assert proba.shape == (45, 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_binary_logistic_probabilities_are_the_sigmoid():
    X, labels = classification_data(2)
    clf = ConvexPolyClassifier(beta=0.05, loss="logistic", **FAST).fit(X, labels)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-clf.decision_function(X))))


def test_integer_and_boolean_labels():
    X, labels = classification_data(2)
    ints = np.where(labels == "cat", 3, 7)
    clf = ConvexPolyClassifier(beta=0.05, **FAST).fit(X, ints)
    np.testing.assert_array_equal(clf.classes_, [3, 7])
    assert set(clf.predict(X)) <= {3, 7}
    bools = ConvexPolyClassifier(beta=0.05, **FAST).fit(X, labels == "cat")
    assert bools.predict(X).dtype == bool


# -- conv estimators ----------------------------------------------------------------------


def test_conv_regressor_on_images():
    images, y, geometry, teacher = planted_conv_teacher(n=30, filter_size=2, pool_size=2, seed=64)
    reg = ConvexPolyConvRegressor(filter_size=2, pool_size=2, beta=0.05, **FAST).fit(images, y)
    assert reg.n_features_in_ == 25
    assert reg.geometry_ == geometry
    np.testing.assert_allclose(reg.predict(images), reg.network_.predict(images))
    np.testing.assert_allclose(reg.predict(images.reshape(30, -1)), reg.predict(images))
    assert reg.score(images, y) > 0.9
    assert reg.result_.objective <= teacher.objective(images, y, loss="squared", beta=0.05) + 1e-6
    # images of another shape are named as images (it said "X has 20 features, expecting 25")
    for other in (images[:, :, :4], images[0, 0]):  # 20 pixels; one image read as 5 rows
        with pytest.raises(ValidationError, match=r"images of shape \(1, 5, 5\)"):
            reg.predict(other)


def test_conv_classifier_with_global_pooling():
    images, y, _, _ = planted_conv_teacher(n=30, filter_size=3, seed=65)
    labels = np.where(y > np.median(y), "hi", "lo")
    clf = ConvexPolyConvClassifier(image_shape=(5, 5), filter_size=3, beta=0.05, **FAST)
    clf.fit(images.reshape(30, -1), labels)
    assert clf.network_.U.shape[1] == 9
    assert clf.score(images.reshape(30, -1), labels) >= 0.8


def test_conv_estimator_on_1d_signals_says_when_it_cuts_the_filter():
    """A filter longer than 2-D X's signals was silently cut to their length: a dense
    network where the user asked for a convolution."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5))
    y = X[:, 0] ** 2
    with pytest.warns(convexnn.ConvexNNWarning, match="filter_size=40 is longer than the 5"):
        reg = ConvexPolyConvRegressor(filter_size=40, beta=1.0, **FAST).fit(X, y)
    assert reg.geometry_.filter_size == (1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", convexnn.ConvexNNWarning)
        assert ConvexPolyConvRegressor(filter_size=3, beta=1.0, **FAST).fit(
            X, y).geometry_.filter_size == (1, 3)
    # A pair is the user's exact geometry: too long is an error, as for images.
    with pytest.raises(convexnn.ValidationError, match="larger than"):
        ConvexPolyConvRegressor(filter_size=(1, 40), beta=1.0, **FAST).fit(X, y)


@pytest.mark.parametrize("name", ["pool_size", "filter_size", "stride"])
def test_conv_geometry_errors_on_1d_signals_echo_what_the_user_passed(name):
    """pool_size=0 was reported as 'got (1, 0)', a value the user never wrote."""
    X = np.random.default_rng(0).normal(size=(20, 6))
    with pytest.raises(convexnn.ValidationError, match=rf"{name} must .*got 0$"):
        ConvexPolyConvRegressor(beta=1.0, **{name: 0}, **FAST).fit(X, X[:, 0])


def test_conv_estimator_takes_an_array_image_shape():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 30))
    reg = ConvexPolyConvRegressor(image_shape=np.array([1, 5, 6]), beta=1.0, **FAST)
    assert reg.fit(X, X[:, 0]).geometry_.image_shape == (1, 5, 6)


# -- saving and exporting -------------------------------------------------------------------


def test_save_load_round_trip_reproduces_predictions_exactly(tmp_path):
    X, y = regression_data()
    net = ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).network_
    path = net.save(tmp_path / "model")
    assert path.suffix == ".npz"
    loaded = TwoLayerPolyNet.load(path)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    np.testing.assert_array_equal(loaded.U, net.U)
    assert loaded.activation == net.activation


def test_save_load_round_trip_of_a_conv_network(tmp_path):
    images, y, _, _ = planted_conv_teacher(
        n=30, image=(2, 5, 5), filter_size=2, pool_size=2, seed=66
    )
    reg = ConvexPolyConvRegressor(
        image_shape=(2, 5, 5), filter_size=2, pool_size=2, beta=0.05, **FAST
    )
    net = reg.fit(images, y).network_
    loaded = TwoLayerPolyNet.load(net.save(tmp_path / "conv.npz"))
    assert loaded.geometry == net.geometry
    np.testing.assert_array_equal(loaded.predict(images), net.predict(images))


def test_load_rejects_other_files_and_versions(tmp_path):
    np.savez(tmp_path / "other.npz", U=np.eye(2))
    with pytest.raises(ValidationError, match="not a saved TwoLayerPolyNet"):
        TwoLayerPolyNet.load(tmp_path / "other.npz")
    net = TwoLayerPolyNet(np.eye(2), np.ones(2), "quadratic")
    metadata = net.to_dict() | {"format_version": 99}
    with pytest.raises(IncompatibleVersionError, match="format 99"):
        TwoLayerPolyNet.from_saved(net.U, net.alpha, metadata, "somefile")


@pytest.mark.parametrize("outputs", [None, 3])
def test_to_torch_reproduces_fully_connected_predictions(outputs):
    t = planted_teacher(n=20, d=4, n_outputs=outputs, activation=(0.3, -0.5, 0.7))
    module = t.network.to_torch()
    assert isinstance(module, torch.nn.Module)
    with torch.no_grad():
        out = module(torch.from_numpy(t.X)).numpy()
    np.testing.assert_allclose(out, t.network.predict(t.X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "filter_size, stride, pool_size",
    [(2, 1, None), (2, 1, 2), (2, 1, (1, 3)), (3, 2, None), ((3, 2), (2, 1), (1, 2))],
)
def test_to_torch_reproduces_conv_predictions(filter_size, stride, pool_size):
    images, _, geometry, net = planted_conv_teacher(
        n=10, image=(2, 7, 6), filter_size=filter_size, stride=stride, pool_size=pool_size,
        m=3, seed=67,
    )
    module = net.to_torch()
    assert isinstance(module.first, torch.nn.Conv2d)
    with torch.no_grad():
        out = module(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(out, net.predict(images), rtol=1e-12, atol=1e-12)


def test_to_torch_of_the_zero_network_is_silent_and_zero():
    """torch warned "Initializing zero-element tensors is a no-op" for a network without
    neurons (what a fit above beta_max returns)."""
    import warnings

    net = TwoLayerPolyNet(np.zeros((0, 3)), np.zeros(0), "quadratic")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = net.to_torch()
    assert model(torch.ones(4, 3, dtype=torch.float64)).abs().max().item() == 0.0


def test_to_torch_of_a_fitted_classifier_gives_the_same_decisions():
    X, labels = classification_data(3, n=45)
    clf = ConvexPolyClassifier(beta=0.05, loss="cross-entropy", **FAST).fit(X, labels)
    with torch.no_grad():
        logits = clf.network_.to_torch()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(logits, clf.decision_function(X), rtol=1e-10, atol=1e-10)


# -- parameter validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(beta=-1.0), "beta"),
        (dict(beta="big"), "beta"),
        (dict(activation="relu"), "activation"),
        (dict(activation=(1.0, 2.0)), "activation"),
        (dict(loss="hinge"), "hinge loss needs targets"),  # real targets
        (dict(loss="kl"), "unknown loss"),
        (dict(solver=3), "solver"),
        (dict(solver_options=[("tol", 1e-3)]), "solver_options"),
        (dict(decomposition_rtol=2.0), "decomposition_rtol"),
        (dict(verbose="loud"), "verbose"),
    ],
)
def test_parameter_validation_names_the_parameter(params, match):
    X, y = regression_data(n=10)
    with pytest.raises(ValueError, match=match):
        ConvexPolyRegressor(**params).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(loss="l1"), "not a classification loss"),
        (dict(loss="huber"), "not a classification loss"),
        (dict(solver="nope"), "unknown solver 'nope'"),
        (dict(solver_options={"bogus": 1}), "bogus"),
    ],
)
def test_classifier_parameter_validation(params, match):
    X, labels = classification_data(2, n=10)
    with pytest.raises(ValueError, match=match):
        ConvexPolyClassifier(**params).fit(X, labels)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(filter_size=0), "filter_size"),
        (dict(filter_size=9), "filter_size"),
        (dict(stride=-1), "stride"),
        (dict(pool_size=9), "pool_size"),
        (dict(pool_size="global"), "pool_size"),
        (dict(image_shape=(4, 4)), "images of shape"),
    ],
)
def test_conv_parameter_validation(params, match):
    images, y, _, _ = planted_conv_teacher(n=10)
    with pytest.raises(ValueError, match=match):
        ConvexPolyConvRegressor(**{"filter_size": 2, **params}).fit(images, y)


def test_errors_are_convexnn_errors():
    X, y = regression_data(n=10)
    with pytest.raises(convexnn.ConvexNNError):
        ConvexPolyRegressor(beta=-1).fit(X, y)
    with pytest.raises(convexnn.InvalidSolverOptionError):
        ConvexPolyRegressor(solver="scs", solver_options={"tol": -1}).fit(X, y)


@pytest.mark.parametrize("loss", ["cross-entropy", "multiclass-hinge"])
@pytest.mark.parametrize("kind", ["convex", "backprop"])
def test_two_class_scores_of_a_row_wise_loss_are_one_column(loss, kind):
    """scikit-learn's convention: (n,) scores for two classes, positive for classes_[1]
    (a row-wise loss has one output per class: the score is their difference)."""
    from sklearn.metrics import get_scorer

    from convexnn import BackpropPolyClassifier

    X, labels = classification_data(2)
    if kind == "convex":
        model = ConvexPolyClassifier(loss=loss, beta=0.5, solver="clarabel",
                                     solver_options={"tol": 1e-4})
    else:
        model = BackpropPolyClassifier(loss=loss, epochs=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", convexnn.SolverStatusWarning)
        model.fit(X, labels)
    scores = model.decision_function(X)
    outputs = model.network_.predict(X)
    assert scores.shape == (len(X),) and outputs.shape == (len(X), 2)
    np.testing.assert_allclose(scores, outputs[:, 1] - outputs[:, 0])
    np.testing.assert_array_equal(model.predict(X), model.classes_[(scores > 0).astype(int)])
    assert 0.5 < get_scorer("roc_auc")(model, X, labels) <= 1.0
    if loss == "cross-entropy":
        np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-scores)))


def test_set_params_after_fit_does_not_change_what_the_fitted_model_means(tmp_path):
    """certify, predict_proba and save use the loss and beta of the fit."""
    X, labels = classification_data(2)
    model = ConvexPolyClassifier(beta=0.1, loss="logistic", solver="native").fit(X, labels)
    gap = model.certify(X, labels).relative_gap
    probabilities = model.predict_proba(X)
    model.set_params(beta=1.0, loss="squared")
    assert model.certify(X, labels).relative_gap == gap <= 1e-6
    assert hasattr(model, "predict_proba")
    np.testing.assert_array_equal(model.predict_proba(X), probabilities)
    loaded = ConvexPolyClassifier.load(model.save(tmp_path / "model"))
    assert (loaded.beta, loaded.loss) == (0.1, "logistic")
    assert loaded.certify(X, labels).relative_gap == gap
    assert not hasattr(clone(model), "predict_proba")  # a new model: the parameters count

    squared = ConvexPolyClassifier(beta=0.1, solver="native").fit(X, labels)
    squared.set_params(loss="logistic")
    assert not hasattr(squared, "predict_proba")


def test_backprop_certify_uses_the_fitted_beta():
    from convexnn import BackpropPolyRegressor

    X, y = regression_data()
    model = BackpropPolyRegressor(beta=0.1, epochs=50, random_state=0).fit(X, y)
    before = model.certify(X, y)
    model.set_params(beta=5.0)
    assert model.certify(X, y) == before


def test_estimator_parameters_are_keyword_only():
    """As in scikit-learn: positions meant different things per class (the second was
    beta for the plain estimator, betas for the CV one, the activation for backprop)."""
    from convexnn import BackpropPolyRegressor, ConvexPolyRegressorCV

    for estimator in (ConvexPolyRegressor, ConvexPolyRegressorCV, ConvexPolyConvRegressor,
                      BackpropPolyRegressor):
        with pytest.raises(TypeError, match="positional argument"):
            estimator("quadratic", 1.0)
        assert estimator(activation="quadratic").activation == "quadratic"

"""Saving and loading fitted estimators: portable files, exact round trips.

``estimator.save(path)`` writes one ``.npz`` file (the network's arrays, the
class labels, JSON metadata with the class, the parameters, the solve's result,
the file format and the convexnn version) and ``EstimatorClass.load(path)``
reads it back; the loaded estimator predicts *exactly* what the saved one did.
Files are read with ``allow_pickle=False``. (``TwoLayerPolyNet.save`` / ``load``
are tested in test_estimators.py; bad files are rows of test_bad_inputs.py.)
"""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import convexnn as cnn
from conftest import planted_conv_teacher, planted_teacher
from convexnn import _persistence
from convexnn.activations import Activation
from convexnn.exceptions import IncompatibleVersionError, ValidationError
from convexnn.losses import HuberLoss, SquaredLoss

# tol 1e-6: polish has a wall-clock budget, so on a loaded machine the network can end a
# hair above a tighter tol (a status warning, an error here); these tests are about files.
FAST = dict(solver="clarabel", solver_options={"tol": 1e-6})


def regression(n=30, d=3, outputs=None, seed=0):
    t = planted_teacher(n=n, d=d, n_outputs=outputs, seed=seed)
    return t.X, t.y


def labels(kind: str, n=36, seed=1):
    t = planted_teacher(n=n, d=3, seed=seed, noise=0.0)
    bins = np.digitize(t.clean, np.quantile(t.clean, [1 / 3, 2 / 3]))
    values = {
        "str3": np.array(["ant", "bee", "cat"])[bins],
        "int2": (bins > 0).astype(np.int64) * 5 - 2,
        "bool": bins > 0,
        "float3": bins.astype(float) * 2.0,
        "object-str": np.array(["ant", "bee", "cat"], dtype=object)[bins],
    }[kind]
    return t.X, values


def round_trip(estimator, X, tmp_path, name="model"):
    path = estimator.save(tmp_path / name)
    loaded = type(estimator).load(path)
    assert type(loaded) is type(estimator)
    return path, loaded


def assert_same_fitted(a, b) -> None:
    assert a.get_params() == b.get_params()
    assert a.n_features_in_ == b.n_features_in_
    assert dataclasses.asdict(a.result_).keys() == dataclasses.asdict(b.result_).keys()
    for field in ("status", "objective", "lower_bound", "duality_gap", "relative_gap",
                  "iterations", "solver", "solver_objective", "n_neurons", "message"):
        assert getattr(a.result_, field) == getattr(b.result_, field), field
    np.testing.assert_array_equal(a.network_.U, b.network_.U)
    np.testing.assert_array_equal(a.network_.alpha, b.network_.alpha)
    assert a.network_.activation == b.network_.activation
    assert a.geometry_ == b.geometry_


# -- exact round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("outputs", [None, 2])
def test_regressor_round_trip_is_exact(outputs, tmp_path):
    X, y = regression(outputs=outputs)
    reg = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y)
    path, loaded = round_trip(reg, X, tmp_path)
    assert path == tmp_path / "model.npz"
    assert_same_fitted(reg, loaded)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.score(X, y) == reg.score(X, y)


@pytest.mark.parametrize(
    "kind, loss",
    [("str3", "squared"), ("int2", "hinge"), ("bool", "logistic"), ("float3", "cross-entropy"),
     ("object-str", "multiclass-hinge")],
)
def test_classifier_round_trip_is_exact(kind, loss, tmp_path):
    X, y = labels(kind)
    clf = cnn.ConvexPolyClassifier(beta=0.05, loss=loss, **FAST).fit(X, y)
    _, loaded = round_trip(clf, X, tmp_path, "clf.npz")
    assert_same_fitted(clf, loaded)
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype == clf.classes_.dtype
    predicted = loaded.predict(X)
    np.testing.assert_array_equal(predicted, clf.predict(X))
    assert predicted.dtype == clf.predict(X).dtype
    np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))
    if loss in ("logistic", "cross-entropy"):
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_conv_regressor_round_trip_is_exact(tmp_path):
    images, y, _, _ = planted_conv_teacher(n=24, image=(2, 5, 5), filter_size=2, pool_size=2,
                                           seed=2)
    reg = cnn.ConvexPolyConvRegressor(image_shape=(2, 5, 5), filter_size=2, pool_size=(2, 2),
                                      beta=0.05, **FAST).fit(images, y)
    _, loaded = round_trip(reg, images, tmp_path)
    assert_same_fitted(reg, loaded)
    assert loaded.pool_size == (2, 2) and loaded.image_shape == (2, 5, 5)
    np.testing.assert_array_equal(loaded.predict(images), reg.predict(images))
    np.testing.assert_array_equal(loaded.predict(images.reshape(24, -1)), reg.predict(images))


def test_conv_classifier_round_trip_is_exact(tmp_path):
    images, y, _, _ = planted_conv_teacher(n=24, filter_size=2, seed=3)
    classes = np.array(["lo", "hi"])[(y > np.median(y)).astype(int)]
    clf = cnn.ConvexPolyConvClassifier(filter_size=2, beta=0.05, **FAST).fit(images, classes)
    _, loaded = round_trip(clf, images, tmp_path)
    assert_same_fitted(clf, loaded)
    np.testing.assert_array_equal(loaded.predict(images), clf.predict(images))


def test_feature_names_survive_and_are_checked(tmp_path):
    X, y = regression()
    frame = pd.DataFrame(X, columns=["height", "weight", "age"])
    reg = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(frame, y)
    _, loaded = round_trip(reg, X, tmp_path)
    np.testing.assert_array_equal(loaded.feature_names_in_, reg.feature_names_in_)
    np.testing.assert_array_equal(loaded.predict(frame), reg.predict(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"age": "years"}))


def test_a_model_saves_the_parameters_it_was_fitted_with(tmp_path):
    """After set_params the file held the fitted beta but the new activation: a mix that a
    refit of the loaded model would have followed."""
    t = planted_teacher(n=30, d=3, seed=4)
    model = cnn.ConvexPolyRegressor(beta=0.5, solver="native", decomposition_rtol=1e-8)
    model.fit(t.X, t.y)
    model.set_params(activation="quadratic", beta=3.0, decomposition_rtol=0.0)
    loaded = cnn.ConvexPolyRegressor.load(model.save(tmp_path / "m.npz"))
    params = loaded.get_params()
    assert (params["activation"], params["beta"], params["decomposition_rtol"]) == (
        "relu-approx", 0.5, 1e-8)
    np.testing.assert_array_equal(loaded.predict(t.X), model.predict(t.X))


def test_parameters_of_every_kind_round_trip(tmp_path):
    X, y = regression()
    reg = cnn.ConvexPolyRegressor(
        activation=Activation(0.3, -0.2, 0.1, name="mine"), beta=np.float64(0.05),
        loss=HuberLoss(delta=0.5), solver="clarabel",
        solver_options={"tol": 1e-7, "max_iter": np.int64(200), "verbose": False},
        decomposition_rtol=1e-10,
    ).fit(X, y)
    _, loaded = round_trip(reg, X, tmp_path)
    params = loaded.get_params()
    assert params["activation"] == reg.activation and params["activation"].name == "mine"
    assert params["loss"] == HuberLoss(delta=0.5)
    assert params["solver_options"] == {"tol": 1e-7, "max_iter": 200, "verbose": False}
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_a_loaded_estimator_clones_refits_pickles_and_saves_again(tmp_path):
    X, y = regression()
    reg = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y)
    _, loaded = round_trip(reg, X, tmp_path)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict(X), reg.predict(X))
    refit = clone(loaded).fit(X, y)
    np.testing.assert_allclose(refit.predict(X), reg.predict(X), rtol=1e-12, atol=1e-12)
    _, again = round_trip(loaded, X, tmp_path, "again")
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))


def test_the_all_zero_network_round_trips(tmp_path):
    X, y = regression()
    reg = cnn.ConvexPolyRegressor(beta=1e6, **FAST).fit(X, y)
    assert reg.network_.n_neurons == 0
    _, loaded = round_trip(reg, X, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), np.zeros(len(X)))


# -- the file ---------------------------------------------------------------------------------
def test_the_file_is_npz_with_json_metadata_and_no_pickle(tmp_path):
    X, y = labels("str3")
    clf = cnn.ConvexPolyClassifier(beta=0.05, **FAST).fit(X, y)
    path = clf.save(tmp_path / "clf")
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"metadata", "U", "alpha", "classes", "dual_point"}
        metadata = json.loads(str(data["metadata"]))
        np.testing.assert_array_equal(data["classes"], ["ant", "bee", "cat"])
        # The dual point behind the certified bound, to verify the result later.
        np.testing.assert_array_equal(data["dual_point"], clf.result_.dual_point)
    assert metadata["format"] == "convexnn.estimator"
    assert metadata["format_version"] == _persistence.FORMAT_VERSION
    assert metadata["convexnn_version"] == cnn.__version__
    assert metadata["class"] == "ConvexPolyClassifier"
    assert metadata["params"]["beta"] == 0.05
    assert metadata["result"]["status"] == clf.result_.status
    assert metadata["n_features_in_"] == 3


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    metadata = json.loads(str(arrays.pop("metadata"))) | changes
    with open(path, "wb") as handle:
        np.savez(handle, metadata=np.array(json.dumps(metadata)), **arrays)
    return path


def test_versions_are_checked(tmp_path):
    X, y = regression()
    path = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).save(tmp_path / "m")
    older_library = _rewrite(path, convexnn_version="0.0.1")  # same format: read
    assert cnn.ConvexPolyRegressor.load(older_library).n_features_in_ == 3
    future = _rewrite(path, format_version=_persistence.FORMAT_VERSION + 1,
                      convexnn_version="99.0")
    with pytest.raises(IncompatibleVersionError, match="written by convexnn 99.0"):
        cnn.ConvexPolyRegressor.load(future)
    with pytest.raises(ValidationError, match="format_version"):
        cnn.ConvexPolyRegressor.load(_rewrite(path, format_version="one"))


def test_a_newer_network_inside_an_estimator_file_asks_for_an_upgrade(tmp_path):
    X, y = regression()
    path = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).save(tmp_path / "m")
    with np.load(path, allow_pickle=False) as data:
        network = json.loads(str(data["metadata"]))["network"]
    newer = _rewrite(path, network=network | {"format_version": network["format_version"] + 1})
    with pytest.raises(IncompatibleVersionError, match="Upgrade convexnn") as caught:
        cnn.ConvexPolyRegressor.load(newer)
    assert "damaged" not in str(caught.value)


def test_a_loaded_estimator_saves_the_parameters_of_its_network(tmp_path):
    X, y = regression()
    model = cnn.ConvexPolyRegressor(beta=0.05, activation="relu-approx", **FAST).fit(X, y)
    loaded = cnn.ConvexPolyRegressor.load(model.save(tmp_path / "a"))
    loaded.set_params(activation="quadratic")
    again = cnn.ConvexPolyRegressor.load(loaded.save(tmp_path / "b"))
    assert again.get_params()["activation"] == "relu-approx"
    np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-12)


def test_damaged_files_give_a_validation_error(tmp_path):
    X, y = regression()
    path = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).save(tmp_path / "m")
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
    del metadata["n_features_in_"]
    with pytest.raises(ValidationError, match="damaged.*n_features_in_"):
        cnn.ConvexPolyRegressor.load(_rewrite(path, **{"n_features_in_": None}))
    path = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).save(tmp_path / "m")
    with pytest.raises(ValidationError, match="invalid ConvexPolyRegressor.*beta must be"):
        cnn.ConvexPolyRegressor.load(_rewrite(path, params=metadata["params"] | {"beta": -1}))
    with pytest.raises(ValidationError, match="damaged.*nope"):
        cnn.ConvexPolyRegressor.load(_rewrite(path, params=metadata["params"] | {"nope": 1}))


def test_files_that_contradict_themselves_or_nest_deep_are_damaged(tmp_path):
    """A network computing t^2 under parameters saying relu-approx, an empty result, a
    numeric feature_names entry and 600-deep parameters loaded (the last with a raw
    RecursionError)."""
    X, y = regression()
    model = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y)
    path = model.save(tmp_path / "m")
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
    quadratic = metadata["network"] | {"activation": [1.0, 0.0, 0.0]}
    for changes, words in (({"network": quadratic}, "activation is not its parameters'"),
                           ({"result": {}}, "result status")):
        with pytest.raises(ValidationError, match=f"damaged.*{words}"):
            cnn.ConvexPolyRegressor.load(_rewrite(model.save(tmp_path / "m"), **changes))
    deep = metadata["params"] | {"solver_options": json.loads("[" * 600 + "]" * 600)}
    with pytest.raises(ValidationError, match="damaged: RecursionError"):
        cnn.ConvexPolyRegressor.load(_rewrite(model.save(tmp_path / "m"), params=deep))
    named = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(
        pd.DataFrame(X, columns=["a", "b", "c"]), y)
    numeric = _with_arrays(named.save(tmp_path / "n"), feature_names=np.arange(3))
    with pytest.raises(ValidationError, match="damaged.*feature_names"):
        cnn.ConvexPolyRegressor.load(numeric)


def test_labels_that_would_not_read_back_are_refused_at_save(tmp_path):
    """numpy's text arrays drop trailing NULs: 'pos\\x00' loaded as 'pos' (predictions
    changed), and ['a', 'a\\x00'] saved a file that could not be loaded."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    labels = np.array(["neg", "pos\x00"], dtype=object)[(X[:, 0] > 0).astype(int)]
    model = cnn.ConvexPolyClassifier(beta=0.05, **FAST).fit(X, labels)
    with pytest.raises(ValidationError, match="trailing NUL"):
        model.save(tmp_path / "m")


def test_only_the_arrays_a_file_should_hold_are_read(tmp_path):
    """An extra compressed entry (a decompression bomb) was read in full: 380 KB on disk,
    380 MB in memory. Here a marker entry: it must not be read at all."""
    from convexnn import network as network_module

    X, y = regression()
    net = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).network_
    path = _with_arrays(net.save(tmp_path / "net"), extra=np.zeros(3))
    read = []
    original = np.lib.npyio.NpzFile.__getitem__

    def recording(self, key):
        read.append(key)
        return original(self, key)

    import unittest.mock

    with unittest.mock.patch.object(np.lib.npyio.NpzFile, "__getitem__", recording):
        loaded = cnn.TwoLayerPolyNet.load(path)
    assert "extra" not in read and set(read) <= {*network_module.SAVED_ARRAYS, "metadata"}
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_saving_to_a_folder_or_an_empty_name_is_refused(tmp_path):
    X, y = regression()
    net = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y).network_
    (tmp_path / "outdir").mkdir()
    for path in (tmp_path / "outdir", f"{tmp_path / 'outdir'}/", f"{tmp_path / 'new'}/", ""):
        with pytest.raises(ValidationError, match="folder|path"):
            net.save(path)
    assert not (tmp_path / "outdir.npz").exists()  # it was written beside the folder
    assert not (tmp_path / "new.npz").exists()
    assert net.save(tmp_path / "x.NPZ").name == "x.NPZ"


def test_outputs_that_overflow_are_an_error_not_inf():
    """Finite inputs below the feature limit with huge weights predicted [inf] or [nan]
    and an objective of inf, silently."""
    huge = cnn.TwoLayerPolyNet(np.eye(3), np.full(3, 1e230), "quadratic")
    with pytest.raises(ValidationError, match="overflow float64"):
        huge.predict(np.full((1, 3), 1e40))
    with pytest.raises(ValidationError, match="objective overflows"):
        cnn.TwoLayerPolyNet(np.eye(3), np.full(3, 1e308), "quadratic").objective(
            np.zeros((2, 3)), np.ones(2), beta=10.0)  # outputs 0, penalty inf
    # Inside a solve the raw outputs stay values to compare (the zero network wins there)
    assert np.isinf(huge.outputs(np.full((1, 1, 1, 3), 1e40))).all()


def _with_arrays(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files} | changes
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def test_hand_edited_classes_or_feature_names_that_do_not_fit_the_network_are_refused(
        tmp_path):
    """A binary network saved with 1 or 3 classes, or with the wrong number of feature
    names, loaded and predicted silently."""
    import pandas as pd

    X, y = regression()
    labels = np.where(y > np.median(y), "hi", "lo")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    path = cnn.ConvexPolyClassifier(beta=0.05, **FAST).fit(frame, labels).save(tmp_path / "m")
    assert list(cnn.ConvexPolyClassifier.load(path).classes_) == ["hi", "lo"]
    for classes in (["hi"], ["hi", "lo", "mid"]):
        edited = _with_arrays(tmp_path / "m.npz", classes=np.array(classes))
        with pytest.raises(ValidationError, match=f"damaged: {len(classes)} classes for a "
                                                  "network with 1 output"):
            cnn.ConvexPolyClassifier.load(edited)
    path = cnn.ConvexPolyClassifier(beta=0.05, **FAST).fit(frame, labels).save(tmp_path / "m")
    edited = _with_arrays(path, feature_names=np.array(["a", "b"]))
    with pytest.raises(ValidationError, match="damaged: 2 feature names for 3 features"):
        cnn.ConvexPolyClassifier.load(edited)


def test_hand_edited_classes_out_of_order_repeated_or_nan_and_a_scalar_dual_are_refused(
        tmp_path):
    """Output k scores classes_[k]: classes [2, 1, 0] or [0, 0, 1] loaded and predicted
    permuted labels, [0, nan, 2] predicted NaN; a 0-d dual point broke certify."""
    X, y = regression(n=36)
    labels = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    model = cnn.ConvexPolyClassifier(beta=0.05, **FAST).fit(X, labels)
    path = model.save(tmp_path / "m")
    assert cnn.ConvexPolyClassifier.load(path).classes_.tolist() == [0, 1, 2]
    for classes in ([2, 1, 0], [0, 0, 1], [0.0, np.nan, 2.0]):
        edited = _with_arrays(tmp_path / "m.npz", classes=np.array(classes))
        with pytest.raises(ValidationError, match="damaged: classes .* are not sorted, "
                                                  "distinct and finite"):
            cnn.ConvexPolyClassifier.load(edited)
    edited = _with_arrays(model.save(tmp_path / "m"), dual_point=np.array(1.0))
    with pytest.raises(ValidationError, match=r"damaged: a dual point of shape \(\)"):
        cnn.ConvexPolyClassifier.load(edited)


def test_saving_onto_a_folder_is_refused_before_writing(tmp_path):
    X, y = regression()
    (tmp_path / "model.npz").mkdir()
    model = cnn.ConvexPolyRegressor(beta=0.05, **FAST).fit(X, y)
    with pytest.raises(ValidationError, match="model.npz: it is a folder"):
        model.save(tmp_path / "model")


@pytest.mark.parametrize("loss", ["squared", "logistic", "cross-entropy"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("pool_size", [None, 2])
def test_every_conv_and_dense_classifier_reloads_with_its_classes(loss, classes, pool_size,
                                                                 tmp_path):
    """The classes-vs-outputs check read the pooling regions of a conv network's (m, R, C)
    output weights as its outputs: pooled or multi-class conv classifiers were refused."""
    if loss == "logistic" and classes == 3:
        pytest.skip("logistic takes two classes")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(36, 1, 6, 6))
    labels = np.arange(36) % classes
    conv = cnn.ConvexPolyConvClassifier(loss=loss, beta=0.5, filter_size=3,
                                        pool_size=pool_size, **FAST).fit(images, labels)
    loaded = cnn.ConvexPolyConvClassifier.load(conv.save(tmp_path / "conv"))
    np.testing.assert_array_equal(loaded.predict(images), conv.predict(images))
    flat = images.reshape(36, -1)
    dense = cnn.ConvexPolyClassifier(loss=loss, beta=0.5, **FAST).fit(flat, labels)
    loaded = cnn.ConvexPolyClassifier.load(dense.save(tmp_path / "dense"))
    np.testing.assert_array_equal(loaded.predict(flat), dense.predict(flat))


def test_parameters_without_a_portable_form_are_refused(tmp_path):
    class MyLoss(SquaredLoss):
        name = "squared"

    X, y = regression()
    reg = cnn.ConvexPolyRegressor(beta=0.05, loss=MyLoss(), **FAST).fit(X, y)
    with pytest.raises(ValidationError, match="cannot save parameter loss.*not a built-in"):
        reg.save(tmp_path / "m")

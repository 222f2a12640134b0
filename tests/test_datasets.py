"""Tests of convexnn.datasets: planted data, embedded sets, file loaders."""

from __future__ import annotations

import gzip
import random
import re
import struct
import zipfile

import numpy as np
import pytest

from convexnn.datasets import (
    DATASETS,
    Dataset,
    load_csv,
    load_dataset,
    load_file,
    load_idx,
    load_numpy,
    load_svmlight,
    make_planted,
    read_idx,
    standardize,
    train_test_split_data,
)
from convexnn.datasets._text import csv_header
from convexnn.exceptions import ConvexNNWarning, DataFormatError, ValidationError
from convexnn.network import TwoLayerPolyNet


def _same_state(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


# -- planted -----------------------------------------------------------------
def _authors_generator(n: int, d: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(seed)
    a, b, c = 0.09, 0.5, 0.47
    X = rs.normal(0, 1, (n, d)) ** 4
    U = rs.normal(0, 1, (d, m))
    alpha = rs.normal(0, 1, (m,))
    noise = rs.normal(0, 0.1, (n, 1))
    y = noise[:, 0].copy()
    for j in range(m):
        t = X @ U[:, j]
        y += alpha[j] * (a * t**2 + b * t + c)
    return X, y


def test_planted_reproduces_authors_generator():
    X, y = _authors_generator(50, 7, 5, seed=0)
    data = make_planted(50, 7, random_state=0)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_allclose(data.y, y, rtol=1e-12, atol=1e-12)
    assert data.teacher_U.shape == (7, 5) and data.teacher_alpha.shape == (5,)
    assert data.teacher is None


def test_planted_reproducible_and_leaves_global_rng_alone():
    state = np.random.get_state()
    first = make_planted(30, 4, random_state=3)
    again = make_planted(30, 4, random_state=3)
    other = make_planted(30, 4, random_state=4)
    make_planted(30, 4)  # random_state=None must not use the global generator either
    assert _same_state(state, np.random.get_state())
    np.testing.assert_array_equal(first.X, again.X)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.allclose(first.y, other.y)


def test_planted_unit_norm_teacher_and_gaussian_features():
    data = make_planted(40, 6, n_neurons=3, features="gaussian", unit_norm_teacher=True,
                        random_state=1)
    assert isinstance(data.teacher, TwoLayerPolyNet)
    np.testing.assert_allclose(np.linalg.norm(data.teacher_U, axis=0), 1.0)
    np.testing.assert_allclose(data.teacher.predict(data.X), data.y - data.noise, atol=1e-10)
    assert data.X.min() < 0  # Gaussian, not a fourth power
    noiseless = make_planted(10, 3, noise=0.0, random_state=2)
    assert np.all(noiseless.noise == 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_features": 2.5}, "n_features"),
        ({"n_neurons": -1}, "n_neurons"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"features": "uniform"}, "features"),
        ({"random_state": "seed"}, "random_state"),
        ({"unit_norm_teacher": "no"}, "unit_norm_teacher"),  # was read as True
    ],
)
def test_planted_validates_arguments(kwargs, match):
    arguments = {"n_samples": 10, "n_features": 3, **kwargs}
    with pytest.raises(ValidationError, match=match):
        make_planted(**arguments)


# -- helpers -----------------------------------------------------------------
def test_standardize_uses_training_statistics():
    rs = np.random.RandomState(0)
    train, test = rs.normal(3, 2, (100, 4)), rs.normal(3, 2, (20, 4))
    train[:, 2] = 5.0  # constant feature: centred, scale 1
    X_train, X_test, mean, scale = standardize(train, test)
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(mean, train.mean(axis=0))
    assert scale[2] == 1.0
    np.testing.assert_allclose(X_test, (test - mean) / scale)
    assert standardize(train).X_test is None


def test_train_test_split_data_stratifies():
    X = np.arange(40.0).reshape(20, 2)
    y = np.array([0] * 16 + [1] * 4)
    X_train, X_test, y_train, y_test = train_test_split_data(X, y, test_size=0.5, stratify=True)
    assert len(X_test) == 10 and np.sum(y_test == 1) == 2
    again = train_test_split_data(X, y, test_size=0.5, stratify=True)
    np.testing.assert_array_equal(again[1], X_test)
    with pytest.raises(ValidationError, match="test_size"):
        train_test_split_data(X, y, test_size=1.5)


def test_train_test_split_data_checks_lengths_and_counts_every_sample():
    """Unequal lengths gave numpy's IndexError (or, stratified, a message about labels the
    user never passed); an int test_size was checked against the samples left after
    a single-sample class was set aside (19 of 20 'too many')."""
    X, y = np.zeros((20, 2)), np.arange(20) % 2
    for stratify in (False, True):
        with pytest.raises(ValidationError, match="X and y must have one row per sample "
                           "alike, got 20 and 5 rows"):
            train_test_split_data(X, y[:5], stratify=stratify)
    y[0] = 5  # a class of one sample
    X_train, X_test, _, _ = train_test_split_data(X, y, test_size=19, stratify=True)
    assert (len(X_train), len(X_test)) == (1, 19)
    with pytest.warns(ConvexNNWarning, match=r"class\(es\) \[5\] have a single sample"):
        _, X_test, _, y_test = train_test_split_data(X, y, test_size=4, stratify=True)
    assert len(X_test) == 4 and 5 not in y_test


def test_standardize_refuses_values_its_variance_overflows_on():
    """A column [1e160, -1e160, 0] overflowed the variance to inf, was taken as constant
    and left unscaled, with only numpy's RuntimeWarning."""
    with pytest.raises(ValidationError, match="X_train has values up to 1e\\+160"):
        standardize(np.array([[1e160], [-1e160], [0.0]]))


# -- embedded data sets --------------------------------------------------------
EXPECTED = {
    "digits": ("classification", 64, (1, 8, 8)),
    "breast-cancer": ("classification", 30, None),
    "wine": ("classification", 13, None),
    "iris": ("classification", 4, None),
    "diabetes": ("regression", 10, None),
    "mnist1d": ("classification", 40, (1, 1, 40)),
    "planted": ("regression", 10, None),
}


@pytest.fixture(scope="module")
def mnist1d_generation():
    """Generate MNIST-1D once (1000 samples instead of 5000, for speed).

    Returns the global RNG states before and after the generation.
    """
    import mnist1d.data

    import convexnn.datasets._embedded as embedded

    def small_args(as_dict=False):
        args = original(as_dict=True)
        args["num_samples"] = 1000
        return args if as_dict else mnist1d.utils.ObjectView(args)

    original = mnist1d.data.get_dataset_args
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist1d.data, "get_dataset_args", small_args)
        embedded._mnist1d_arrays.cache_clear()
        np.random.seed(123)
        random.seed(123)
        before = np.random.get_state(), random.getstate()
        embedded._mnist1d_arrays()
        after = np.random.get_state(), random.getstate()
        yield before, after
    embedded._mnist1d_arrays.cache_clear()


@pytest.mark.parametrize("name", DATASETS)
def test_embedded_datasets_load(name, request):
    if name == "mnist1d":
        request.getfixturevalue("mnist1d_generation")
    data = load_dataset(name, test_size=0.2)
    task, n_features, image_shape = EXPECTED[name]
    assert isinstance(data, Dataset) and data.name == name
    assert (data.task, data.n_features, data.image_shape) == (task, n_features, image_shape)
    assert data.X_test.shape[1] == n_features and data.X_train.dtype == np.float64
    assert len(data.X_train) == len(data.y_train) and len(data.X_test) == len(data.y_test)
    n = len(data.X_train) + len(data.X_test)
    assert abs(len(data.X_test) - 0.2 * n) <= 1
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-10)
    if task == "classification":
        assert data.y_train.dtype == np.int64
        assert set(np.unique(data.y_test)) <= set(np.unique(data.y_train))
    if data.feature_names is not None:
        assert len(data.feature_names) == n_features


def test_load_dataset_options():
    raw = load_dataset("breast_cancer", standardize=False)
    assert raw.name == "breast-cancer" and raw.X_train.mean() > 1
    small = load_dataset("iris", n_samples=60, random_state=1)
    assert len(small.X_train) + len(small.X_test) == 60
    assert np.bincount(np.concatenate([small.y_train, small.y_test])).tolist() == [20, 20, 20]
    again = load_dataset("iris", n_samples=60, random_state=1)
    np.testing.assert_array_equal(small.X_test, again.X_test)
    planted = load_dataset("planted", n_samples=80, standardize=False, random_state=5)
    reference = make_planted(80, 10, random_state=5)
    assert np.isin(planted.X_train[:, 0], reference.X[:, 0]).all()
    with pytest.raises(ValidationError, match="digits"):
        load_dataset("cifar")
    with pytest.raises(ValidationError, match="n_samples"):
        load_dataset("iris", n_samples=1000)


def test_mnist1d_restores_global_random_state(mnist1d_generation):
    (numpy_before, python_before), (numpy_after, python_after) = mnist1d_generation
    assert _same_state(numpy_before, numpy_after)
    assert python_before == python_after
    data = load_dataset("mnist1d", n_samples=500)
    assert len(data.X_train) + len(data.X_test) == 500
    assert set(np.unique(data.y_train)) == set(range(10))


def test_mnist1d_generated_in_threads_at_once_restores_global_random_state(monkeypatch):
    """Two first loads in threads: the second saved the state mnist1d had just seeded and
    'restored' it last (2 of 3 runs left NumPy's global generator changed)."""
    import threading

    import mnist1d.data

    import convexnn.datasets._embedded as embedded

    original = mnist1d.data.get_dataset_args

    def small_args(as_dict=False):
        args = original(as_dict=True)
        args["num_samples"] = 300
        return args if as_dict else mnist1d.utils.ObjectView(args)

    monkeypatch.setattr(mnist1d.data, "get_dataset_args", small_args)
    np.random.seed(7)
    random.seed(7)
    before = np.random.get_state(), random.getstate()
    generate = embedded._mnist1d_arrays.__wrapped__  # every thread generates
    threads = [threading.Thread(target=generate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _same_state(before[0], np.random.get_state())
    assert before[1] == random.getstate()


# -- file loaders: round trips -----------------------------------------------
def test_csv_with_header_target_by_name(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,label,b\n1.5,cat,-2\n0.25,dog,3e-3\n7,cat,8\n")
    X, y = load_csv(path, target="label")
    np.testing.assert_array_equal(X, [[1.5, -2], [0.25, 3e-3], [7, 8]])
    assert X.dtype == np.float64 and y.tolist() == ["cat", "dog", "cat"]
    X2, y2 = load_file(path, target="label")
    np.testing.assert_array_equal(X2, X)


def test_csv_written_by_pandas_without_column_names_has_its_header_read_as_one(tmp_path):
    """pandas writes a frame without column names under the header 0,1,...,k-1, which was
    read as a sample (7 samples from 6 rows, and a phantom class 3.0 from the header)."""
    import pandas as pd

    data = np.column_stack([np.random.default_rng(0).normal(size=(6, 3)), [0, 1] * 3])
    path = tmp_path / "frame.csv"
    pd.DataFrame(data).to_csv(path, index=False)
    assert path.read_text().startswith("0,1,2,3\n")
    with pytest.warns(ConvexNNWarning, match="line 1 numbers the columns 0 to 3"):
        X, y = load_csv(path)
    np.testing.assert_allclose(X, data[:, :3], rtol=1e-15)
    assert y.tolist() == [0, 1] * 3
    assert len(load_csv(path, header=False)[0]) == 7  # the user's word decides
    # A first row of other numbers is data, as before; so is 0,1 of two columns (a first
    # sample x = 0, y = 1 is too common to take for pandas' header).
    (tmp_path / "data.csv").write_text("1,2,3,4\n5,6,7,8\n")
    assert load_csv(tmp_path / "data.csv")[1].tolist() == [4, 8]
    (tmp_path / "pairs.csv").write_text("0,1\n1,3\n2,5\n")
    assert load_csv(tmp_path / "pairs.csv")[1].tolist() == [1, 3, 5]


def test_csv_without_header(tmp_path):
    rs = np.random.RandomState(0)
    data = np.column_stack([rs.normal(size=(6, 3)), rs.randint(0, 3, 6)])
    path = tmp_path / "plain.csv"
    np.savetxt(path, data, delimiter=",", fmt="%.17g")
    X, y = load_csv(path)  # last column is the target
    np.testing.assert_array_equal(X, data[:, :3])
    np.testing.assert_array_equal(y, data[:, 3])
    X0, y0 = load_csv(path, target=0)
    np.testing.assert_array_equal(y0, data[:, 0])
    np.testing.assert_array_equal(X0, data[:, 1:])
    text = tmp_path / "plain.txt"
    np.savetxt(text, data, fmt="%.17g")  # whitespace separated
    np.testing.assert_array_equal(load_file(text)[0], data[:, :3])


def test_numpy_npz_and_npy(tmp_path):
    rs = np.random.RandomState(1)
    X, y = rs.normal(size=(8, 3)), rs.randint(0, 2, 8)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X_read, y_read = load_numpy(tmp_path / "d.npz")
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)
    np.savez(tmp_path / "other.npz", features=X, labels=y)
    X_read, _ = load_file(tmp_path / "other.npz", x_key="features", y_key="labels")
    np.testing.assert_array_equal(X_read, X)
    table = np.column_stack([X[:, :1], y, X[:, 1:]])
    np.save(tmp_path / "t.npy", table)
    X_read, y_read = load_numpy(tmp_path / "t.npy", target=1)
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)
    X_last, y_last = load_file(tmp_path / "t.npy")
    np.testing.assert_array_equal(y_last, table[:, -1])


def test_a_text_file_named_npy_is_refused_for_what_it_is(tmp_path):
    """np.load tries to unpickle a file without NumPy's signature and speaks of pickled
    data; the message names the signature and the text extensions instead."""
    path = tmp_path / "table.npy"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataFormatError, match="does not start with their signature") as caught:
        load_file(path)
    assert "pickle" not in str(caught.value)


def test_a_truncated_npz_is_refused_and_its_file_closed(tmp_path):
    """np.load left the file it had opened unclosed when the archive was unreadable."""
    import gc
    import warnings

    path = tmp_path / "full.npz"
    np.savez(path, X=np.ones((500, 4)), y=np.zeros(500))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:1000])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            load_file(truncated)
        except DataFormatError as error:
            assert "truncated.npz" in str(error)
        else:
            pytest.fail("a truncated archive was read")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_csv_that_starts_with_blank_lines_is_read_with_its_line_numbers(tmp_path):
    """pandas finds no columns in a file whose first line is blank: it was reported as
    empty."""
    path = tmp_path / "blank.csv"
    path.write_text("\n\nx1,x2,label\n1,2,a\n3,4,b\n")
    X, y = load_csv(path, target="label")
    np.testing.assert_array_equal(X, [[1.0, 2.0], [3.0, 4.0]])
    assert y.tolist() == ["a", "b"]
    compressed = tmp_path / "blank.csv.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(load_file(compressed)[0], X)
    path.write_text("\n1,2,0\n3,x,1\n")
    with pytest.raises(DataFormatError, match="at line 3"):
        load_csv(path)
    path.write_text("\n  \n\n")
    with pytest.raises(DataFormatError, match="is empty"):
        load_csv(path)


def test_svmlight(tmp_path):
    from sklearn.datasets import dump_svmlight_file

    rs = np.random.RandomState(2)
    # dump_svmlight_file writes "%.16g", exact only for short decimals: use eighths
    X, y = rs.randint(1, 800, (7, 4)) / 8, rs.randint(0, 3, 7).astype(float)
    path = tmp_path / "d.svm"
    dump_svmlight_file(X, y, str(path))
    X_read, y_read = load_svmlight(path)
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)
    np.testing.assert_array_equal(load_file(path)[0], X)


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def idx_files(tmp_path):
    rs = np.random.RandomState(3)
    images = rs.randint(0, 256, (5, 4, 3)).astype(np.uint8)
    labels = rs.randint(0, 10, 5).astype(np.uint8)
    image_path = tmp_path / "train-images-idx3-ubyte"
    label_path = tmp_path / "train-labels-idx1-ubyte"
    image_path.write_bytes(_idx_bytes(images, 0x08))
    label_path.write_bytes(_idx_bytes(labels, 0x08))
    return images, labels, image_path, label_path


def test_idx_round_trip(idx_files, tmp_path):
    images, labels, image_path, label_path = idx_files
    X, y = load_idx(image_path, label_path)
    np.testing.assert_array_equal(X, images.reshape(5, 12))
    np.testing.assert_array_equal(y, labels)
    assert X.dtype == np.float64 and read_idx(image_path).shape == (5, 4, 3)
    X_file, y_file = load_file(image_path)  # finds the labels file next to it
    np.testing.assert_array_equal(y_file, labels)

    gz_images = tmp_path / "gz-images-idx3-ubyte.gz"
    gz_images.write_bytes(gzip.compress(image_path.read_bytes()))
    np.testing.assert_array_equal(load_idx(gz_images)[0], X)

    values = np.random.RandomState(4).normal(size=(3, 2))
    for dtype, code in [(np.float64, 0x0E), (np.float32, 0x0D), (np.int16, 0x0B),
                        (np.int32, 0x0C), (np.int8, 0x09)]:
        path = tmp_path / f"values-{code}.idx"
        array = (values * 50).astype(dtype)
        path.write_bytes(_idx_bytes(array, code))
        np.testing.assert_array_equal(read_idx(path), array)


# -- file loaders: broken files ----------------------------------------------
def test_idx_rejects_broken_files(idx_files, tmp_path):
    images, labels, image_path, label_path = idx_files
    truncated = tmp_path / "truncated-idx3-ubyte"
    truncated.write_bytes(image_path.read_bytes()[:-7])
    with pytest.raises(DataFormatError, match=r"truncated.*60 data bytes, found 53"):
        load_idx(truncated)
    bad_magic = tmp_path / "bad-idx3-ubyte"
    bad_magic.write_bytes(b"\x01\x02" + image_path.read_bytes()[2:])
    with pytest.raises(DataFormatError, match="bad magic number"):
        read_idx(bad_magic)
    few_labels = tmp_path / "few-labels-idx1-ubyte"
    few_labels.write_bytes(_idx_bytes(labels[:4], 0x08))
    with pytest.raises(DataFormatError, match="4 labels but .* 5 images"):
        load_idx(image_path, few_labels)
    broken_gz = tmp_path / "broken-idx3-ubyte.gz"
    broken_gz.write_bytes(gzip.compress(image_path.read_bytes())[:20])
    with pytest.raises(DataFormatError, match="gzip"):
        read_idx(broken_gz)


def test_csv_rejects_text_feature_and_missing_value(tmp_path):
    text = tmp_path / "text.csv"
    text.write_text("a,b,y\n1,2,0\n3,red,1\n")
    with pytest.raises(DataFormatError, match=r"non-numeric feature column 'b'.*'red' at line 3"):
        load_csv(text)
    missing = tmp_path / "missing.csv"
    missing.write_text("1,2,0\n3,4,1\n5,,1\n")
    with pytest.raises(DataFormatError, match=r"missing value in column 1 at line 3"):
        load_csv(missing)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,0\n3,4,1,9\n")
    with pytest.raises(DataFormatError, match="ragged.csv.*line 2"):
        load_csv(ragged)
    with pytest.raises(ValidationError, match="not a column"):
        load_csv(text, target="z")


def test_csv_reads_a_target_with_empty_cells_when_asked(tmp_path):
    """For files to predict on: empty target cells are NaN (numbers) or "" (labels);
    empty feature cells are still refused."""
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b,y\n1,2,0\n3,4,\n5,6,2\n")
    X, y = load_csv(numbers, allow_missing_target=True)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(y, [0.0, np.nan, 2.0])
    full = tmp_path / "full.csv"
    full.write_text("a,b,y\n1,2,0\n3,4,1\n")
    assert load_csv(full, allow_missing_target=True)[1].dtype.kind == "i"  # stay integers
    labels = tmp_path / "labels.csv"
    labels.write_text("a,b,y\n1,2,cat\n3,4,\n5,6,dog\n")
    assert load_csv(labels, allow_missing_target=True)[1].tolist() == ["cat", "", "dog"]
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,y\n1,2,\n3,4,\n")
    y = load_csv(empty, allow_missing_target=True)[1]
    assert y.dtype == np.float64 and np.isnan(y).all()
    with pytest.raises(DataFormatError, match="missing value in column 'y' at line 3"):
        load_csv(numbers)
    features = tmp_path / "features.csv"
    features.write_text("a,b,y\n1,,0\n")
    with pytest.raises(DataFormatError, match="missing value in column 'b'"):
        load_csv(features, allow_missing_target=True)


def test_numpy_rejects_missing_keys(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.ones((3, 2)), y=np.ones(3))
    with pytest.raises(DataFormatError, match=r"no array 'X'.*\['features', 'y'\]"):
        load_numpy(path)
    short = tmp_path / "short.npz"
    np.savez(short, X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(DataFormatError, match="3 samples"):
        load_numpy(short)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy at all")
    with pytest.raises(DataFormatError, match="garbage.npy"):
        load_numpy(garbage)


def test_svmlight_rejects_garbage(tmp_path):
    path = tmp_path / "garbage.svm"
    path.write_text("this is not\nan svmlight file\n")
    with pytest.raises(DataFormatError, match="garbage.svm.*svmlight"):
        load_svmlight(path)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        load_csv(tmp_path / "nowhere.csv")
    with pytest.raises(ValidationError, match=r"supported: .*\.npz"):
        load_file(tmp_path / "data.xlsx")


def test_every_public_name_resolves_and_is_listed():
    """``__all__`` and the lazy table name the same objects, each where it is defined."""
    from convexnn import datasets

    assert set(datasets.__all__) == {"DATASETS", *datasets._LAZY}
    for name in datasets.__all__:
        value = getattr(datasets, name)
        if callable(value):
            assert value.__module__ == datasets._LAZY[name]
    with pytest.raises(AttributeError, match="no attribute 'load_everything'"):
        datasets.load_everything  # noqa: B018 - the attribute access is the test


def test_an_empty_test_part_and_numpy_scalar_sizes_are_fine():
    from convexnn.datasets import load_dataset, standardize, train_test_split_data

    assert standardize(np.ones((3, 3)), np.ones((0, 3))).X_test.shape == (0, 3)
    size = np.float32(0.3)  # passed our check, then scikit-learn refused it
    np.testing.assert_array_equal(load_dataset("iris", test_size=size).X_test,
                                  load_dataset("iris", test_size=float(size)).X_test)
    parts = train_test_split_data(np.ones((8, 2)).tolist(), list(range(8)))
    assert all(isinstance(part, np.ndarray) for part in parts)


def test_an_svmlight_file_too_wide_for_memory_is_refused_before_densifying(
        tmp_path, monkeypatch):
    """One stray index (2e9) made the dense array 16 GB: allocated, or a MemoryError deep
    in scipy, instead of an error that says why."""
    import convexnn.datasets._svmlight as svmlight
    from convexnn.exceptions import ProblemTooLargeError

    path = tmp_path / "stray.svm"
    path.write_text("1 1:0.5 2000000000:1\n-1 2:1\n")
    monkeypatch.setattr(svmlight, "available_memory", lambda: 10**9)
    with pytest.raises(ProblemTooLargeError, match="2 x 2000000000 features .* check the indices"):
        load_svmlight(path)


def test_complex_targets_in_an_npz_are_refused(tmp_path):
    np.savez(tmp_path / "c.npz", X=np.ones((3, 2)), y=np.array([1j, 2, 3]))
    with pytest.raises(DataFormatError, match="y has dtype complex128"):
        load_numpy(tmp_path / "c.npz")


def test_idx_without_samples_or_with_non_finite_values_is_refused(tmp_path):
    """An empty IDX array crashed in numpy's reshape; float IDX files returned NaN, which
    the other loaders refuse."""
    empty = tmp_path / "empty-images-idx3-ubyte"
    empty.write_bytes(_idx_bytes(np.zeros((0, 2, 2), dtype=np.uint8), 0x08))
    with pytest.raises(DataFormatError, match=r"shape \(0, 2, 2\) contains no samples"):
        load_idx(empty)
    images = np.ones((4, 2, 2), dtype=np.float32)
    images[3, 1, 0] = np.nan
    nan_images = tmp_path / "nan-images-idx3-ubyte"
    nan_images.write_bytes(_idx_bytes(images, 0x0D))
    with pytest.raises(DataFormatError, match=r"images hold the non-finite value nan at index "
                                              r"\(3, 1, 0\)"):
        load_idx(nan_images)
    finite = tmp_path / "finite-images-idx3-ubyte"
    finite.write_bytes(_idx_bytes(np.ones((4, 2, 2), dtype=np.float32), 0x0D))
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(_idx_bytes(np.array([1, np.inf, 0, 1]), 0x0E))
    with pytest.raises(DataFormatError, match="labels hold the non-finite value inf"):
        load_idx(finite, labels)


def test_csv_header_with_a_number_among_its_names_is_not_read_as_a_sample(tmp_path):
    """Line 1 "2019,2020,label" was a training sample of class 'label'."""
    path = tmp_path / "years.csv"
    path.write_text("2019,2020,label\n" + "".join(f"{i},{i + 1},{i % 2}\n" for i in range(6)))
    with pytest.raises(DataFormatError, match="'label' at line 1 and numbers in every other "
                                              "line; if line 1 is a header"):
        load_csv(path)
    X, y = load_csv(path, header=True)
    assert X.shape == (6, 2) and y.tolist() == [0, 1, 0, 1, 0, 1]
    labels = tmp_path / "labels.csv"  # labels in every line are labels, line 1's too
    labels.write_text("".join(f"{i},{i + 1},{'ab'[i % 2]}\n" for i in range(4)))
    assert load_csv(labels)[1].tolist() == ["a", "b", "a", "b"]
    # Nothing to compare line 1 with, or a header ruled out by the caller: a sample.
    one = tmp_path / "one.csv"
    one.write_text("0.5,1.2,cat\n")
    assert load_csv(one)[1].tolist() == ["cat"]
    partly = tmp_path / "partly.csv"
    partly.write_text("0.5,1.2,cat\n0.1,0.3,\n0.2,0.2,\n")
    assert load_csv(partly, allow_missing_target=True)[1].tolist() == ["cat", "", ""]
    assert load_csv(path, header=False)[1].tolist() == ["label", "0", "1", "0", "1", "0", "1"]


def test_csv_target_named_twice_or_a_delimiter_of_the_wrong_type_is_refused(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("a,y,y\n1,2,0\n3,4,1\n")
    with pytest.raises(ValidationError, match="target 'y' names 2 columns"):
        load_csv(path, target="y")
    assert load_csv(path, target=2)[1].tolist() == [0, 1]
    with pytest.raises(ValidationError, match="delimiter must be a non-empty string or None"):
        load_csv(path, delimiter=5)


def test_csv_without_a_target_column_reads_every_column_as_a_feature(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("a\n1.5\n2\n")
    X, y = load_csv(path, target=None)
    assert y is None and X.tolist() == [[1.5], [2.0]]
    path.write_text("a,b\n1,x\n")
    with pytest.raises(DataFormatError, match="non-numeric feature column 'b'"):
        load_csv(path, target=None)


def test_svmlight_with_a_byte_order_mark_says_so(tmp_path):
    path = tmp_path / "bom.svm"
    path.write_bytes(b"\xef\xbb\xbf1 1:0.5 2:1\n-1 1:0.2\n")
    with pytest.raises(DataFormatError, match="starts with a UTF-8 byte-order mark"):
        load_svmlight(path)
    path.write_bytes(b"1 1:0.5 x\n")
    with pytest.raises(DataFormatError, match="expected lines of 'label index:value"):
        load_svmlight(path)


def test_npy_features_only_and_its_width_from_the_header(tmp_path):
    from convexnn.datasets._npy import npy_width

    table = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "t.npy", table)
    X, y = load_numpy(tmp_path / "t.npy", y_key=None)
    np.testing.assert_array_equal(X, table)
    assert y is None
    np.save(tmp_path / "column.npy", table[:, :1])
    np.testing.assert_array_equal(load_numpy(tmp_path / "column.npy", y_key=None)[0],
                                  table[:, :1])
    assert npy_width(tmp_path / "t.npy") == 3
    np.save(tmp_path / "flat.npy", table[:, 0])
    assert npy_width(tmp_path / "flat.npy") is None
    (tmp_path / "text.npy").write_text("1,2\n")
    assert npy_width(tmp_path / "text.npy") is None
    with pytest.raises(DataFormatError, match="feature columns"):
        load_numpy(tmp_path / "flat.npy", y_key=None)


@pytest.mark.parametrize("name, content", [
    ("cr.csv", b"\r\r1,2,0\r3,4,1\r5,6,0\r"),  # old Mac line ends: C engine lost a row
    ("bom.csv", b"\xef\xbb\xbf\n1,2,0\n3,4,1\n5,6,0\n"),
    ("quoted.txt", b'\n1 2 "0"\n3 4 "1"\n5 6 "0"\n'),  # the python engine ignores quotes
])
def test_leading_blank_lines_lose_no_sample(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    X, y = load_file(path)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    assert y.tolist() == [0, 1, 0]


@pytest.mark.parametrize("suffix", [".xz", ".zip"])
def test_compressed_csv_with_leading_blank_lines(tmp_path, suffix):
    import lzma
    import zipfile

    text = b"\n\n1,2,0\n3,4,1\n"
    path = tmp_path / f"d.csv{suffix}"
    if suffix == ".xz":
        path.write_bytes(lzma.compress(text))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("d.csv", text)
    np.testing.assert_array_equal(load_csv(path)[0], [[1, 2], [3, 4]])


def test_a_zip_of_two_files_is_refused_by_pandas_message(tmp_path):
    import zipfile

    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "1,2,0\n")
        archive.writestr("b.csv", "3,4,1\n")
    with pytest.raises(DataFormatError, match="Multiple files"):
        load_csv(path)


def test_npy_without_columns_and_an_empty_archive_get_their_own_messages(tmp_path):
    np.save(tmp_path / "none.npy", np.zeros((4, 0)))
    with pytest.raises(DataFormatError, match="feature columns"):
        load_numpy(tmp_path / "none.npy", y_key=None)
    np.savez(tmp_path / "empty.npz")  # a zip without members: PK 05 06
    with pytest.raises(DataFormatError, match="no array 'X'"):
        load_numpy(tmp_path / "empty.npz")
    (tmp_path / "pk.npy").write_text("PKG,1,2\n")  # text that starts like a zip's "PK"
    with pytest.raises(DataFormatError, match="does not start with their signature"):
        load_numpy(tmp_path / "pk.npy")


@pytest.mark.parametrize("suffix, words", [
    (".gz", "gzip"), (".bz2", "stream"), (".xz", "format"), (".zip", "zip file"),
])
def test_a_compressed_csv_that_is_not_what_its_name_says_is_one_clear_error(
        tmp_path, suffix, words):
    """It was a raw BadGzipFile / LZMAError / BadZipFile / OSError; a real I/O error (with an
    errno) stays what it is."""
    path = tmp_path / f"d.csv{suffix}"
    path.write_text("1,2,0\n3,4,1\n")
    with pytest.raises(DataFormatError, match=f"could not be read: .*{words}"):
        load_csv(path)


@pytest.mark.parametrize("patch, words", [
    ({"flags": 0x1}, "encrypted"),  # an encrypted member
    ({"method": 9}, "compression method"),  # deflate64, which zipfile cannot read
])
def test_a_zip_member_zipfile_cannot_open_is_one_clear_error(tmp_path, patch, words):
    """Both were a raw RuntimeError / NotImplementedError from inside pandas or NumPy."""

    def damaged(path):
        data = bytearray(path.read_bytes())
        # The flags and method fields: 6 and 8 bytes into a local header, 8 and 10 into a
        # central-directory entry.
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            for found in re.finditer(re.escape(signature), bytes(data)):
                if "flags" in patch:
                    struct.pack_into("<H", data, found.start() + offset, patch["flags"])
                else:
                    struct.pack_into("<H", data, found.start() + offset + 2, patch["method"])
        path.write_bytes(bytes(data))
        return path

    csv_zip = tmp_path / "d.csv.zip"
    with zipfile.ZipFile(csv_zip, "w") as archive:
        archive.writestr("d.csv", "1,2,0\n3,4,1\n")
    with pytest.raises(DataFormatError, match=f"could not be read: .*{words}"):
        load_csv(damaged(csv_zip))
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.arange(3))
    with pytest.raises(DataFormatError, match=f"could not read arrays: .*{words}"):
        load_numpy(damaged(tmp_path / "d.npz"))


def test_a_target_column_of_zero_padded_codes_is_read_as_labels(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,code\n1,02134\n2,2134\n3,-07\n")
    _, codes = load_csv(path)
    assert codes.tolist() == ["02134", "2134", "-07"]
    path.write_text("a,t\n1,0\n2,0.5\n3,-10\n")  # zeros, but no padding: numbers
    _, values = load_csv(path)
    assert values.tolist() == [0.0, 0.5, -10.0]
    # padding that merges nothing (minutes written %03d, a signed +01): numbers, as before
    for cells, numbers in (("057,120,003", [57, 120, 3]), ("-0.5,+01,2.5", [-0.5, 1.0, 2.5])):
        path.write_text("a,t\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells.split(","))))
        _, values = load_csv(path)
        assert values.dtype.kind in "if" and values.tolist() == numbers
    path.write_text("007,1\n2,3\n")  # a feature column is numbers, padded or not
    X, _ = load_csv(path, header=False)
    assert X[:, 0].tolist() == [7.0, 2.0]


def test_the_row_index_pandas_writes_is_warned_about(tmp_path):
    """It was used as a feature without a word (to_csv writes it by default)."""
    import warnings

    import pandas as pd

    from convexnn.exceptions import ConvexNNWarning

    frame = pd.DataFrame({"a": [0.5, -1.0, 2.0, 0.25], "b": [1.0, 0.0, 3.0, 2.5],
                          "y": ["u", "v", "u", "v"]})
    frame.iloc[1:].to_csv(tmp_path / "index.csv")  # the index of a slice: 1, 2, 3
    frame[["a", "b"]].iloc[1:].to_csv(tmp_path / "features.csv")
    for name, target in (("index.csv", "y"), ("features.csv", None)):
        with pytest.warns(ConvexNNWarning, match="first column has no name .* \\(1, 2, ...\\)"):
            X, _ = load_csv(tmp_path / name, target=target)
        assert X[:, 0].tolist() == [1.0, 2.0, 3.0]
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.rename(columns={"a": ""}).to_csv(tmp_path / "unnamed.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvexNNWarning)
        load_csv(tmp_path / "plain.csv")
        load_csv(tmp_path / "unnamed.csv")  # no name, but not counting: a feature
        (tmp_path / "time.csv").write_text(",a,y\n1600000000,0.5,u\n1600000060,1.5,v\n")
        load_csv(tmp_path / "time.csv")  # time stamps count up, but not from 0 or 1


def test_a_boolean_feature_column_reads_as_ones_and_zeros(tmp_path):
    """pandas writes bool columns as True / False, which were refused as non-numeric."""
    import pandas as pd

    frame = pd.DataFrame({"x": [0.5, 1.5, -2.0], "flag": [True, False, True],
                          "y": [True, True, False]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    X, y = load_csv(tmp_path / "d.csv")
    assert X.tolist() == [[0.5, 1.0], [1.5, 0.0], [-2.0, 1.0]]
    assert y.tolist() == ["True", "True", "False"]  # a target: two classes, as written
    (tmp_path / "mixed.csv").write_text("x,flag,y\n1,True,0\n2,3,1\n")
    with pytest.raises(DataFormatError, match="non-numeric feature column 'flag'") as caught:
        load_csv(tmp_path / "mixed.csv")
    assert "is a header" not in str(caught.value)  # line 2 follows a header: no such hint
    # without a header, a first line of booleans is a sample, not a header
    (tmp_path / "bare.csv").write_text("True,False,cat\nTrue,True,dog\nFalse,True,cat\n")
    X, y = load_csv(tmp_path / "bare.csv")
    assert X.tolist() == [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    assert y.tolist() == ["cat", "dog", "cat"]


def test_a_header_with_a_number_is_named_with_its_line(tmp_path):
    """A target named in such a header was "a column name but the file has no header row;
    give the target column's index", whose index then met the hint for line 1 -- also
    where blank lines come first."""
    for blank in ("", "\n\n"):
        (tmp_path / "d.csv").write_text(blank + "a,b,2020,label\n1,2,3,x\n4,5,6,y\n")
        line = 1 + blank.count("\n")
        with pytest.raises(ValidationError, match=f"'label' is in line {line} .* number\\(s\\) "
                           f"\\['2020'\\]; if line {line} is a header, pass header=True"):
            load_csv(tmp_path / "d.csv", target="label")
        with pytest.raises(DataFormatError, match=f"at line {line}; .* if line {line} is a header"):
            load_csv(tmp_path / "d.csv", target=3)
        X, y = load_csv(tmp_path / "d.csv", target="label", header=True)
        assert X.shape == (2, 3) and y.tolist() == ["x", "y"]


def test_a_delimiter_that_is_not_a_valid_regular_expression_is_named(tmp_path):
    """pandas takes a delimiter longer than one character as a regular expression: '**'
    raised a raw re.error."""
    (tmp_path / "d.csv").write_text("a**b**y\n1**2**3\n4**5**6\n")
    with pytest.raises(ValidationError, match=r"delimiter '\*\*': .* regular expression"):
        load_csv(tmp_path / "d.csv", delimiter="**")
    X, y = load_csv(tmp_path / "d.csv", delimiter=r"\*\*")
    assert X.tolist() == [[1.0, 2.0], [4.0, 5.0]] and y.tolist() == [3, 6]


def test_a_class_with_a_single_sample_is_kept_for_training():
    """The stratified split fell back to a random one, which put the sample in the test set
    for some seeds: compare then stopped with "y_test has label(s) ['fis'] that the
    training set lacks"."""
    from convexnn.datasets import train_test_split_data
    from convexnn.exceptions import ConvexNNWarning

    X = np.arange(120.0).reshape(60, 2)
    y = np.array(["a"] * 30 + ["b"] * 29 + ["fis"])
    for seed in range(8):
        with pytest.warns(ConvexNNWarning, match=r"\['fis'\] have a single sample"):
            X_train, X_test, y_train, y_test = train_test_split_data(
                X, y, random_state=seed, stratify=True)
        assert "fis" in y_train and "fis" not in y_test
        assert len(y_test) == 15 and {"a", "b"} <= set(y_test)  # still stratified
        assert sorted(X_train[:, 0].tolist() + X_test[:, 0].tolist()) == X[:, 0].tolist()


def test_a_truncated_gzip_csv_is_one_clear_error_and_an_io_error_stays_one(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "d.csv.gz"
    rows = np.random.default_rng(0).random((2000, 3))
    whole = gzip.compress("".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in rows).encode())
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match="could not be read"):
        load_csv(path)
    import pandas as pd

    def failing(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pd, "read_csv", failing)
    with pytest.raises(OSError, match="Input/output error") as caught:
        load_csv(tmp_path / "d.csv.gz")
    assert not isinstance(caught.value, DataFormatError)


def test_idx_labels_are_found_under_the_dotted_names_of_mnist_copies(tmp_path):
    images = np.random.RandomState(4).randint(0, 256, (3, 2, 2)).astype(np.uint8)
    labels = np.array([1, 7, 3], dtype=np.uint8)
    (tmp_path / "train-images.idx3-ubyte").write_bytes(_idx_bytes(images, 0x08))
    (tmp_path / "train-labels.idx1-ubyte").write_bytes(_idx_bytes(labels, 0x08))
    X, y = load_file(tmp_path / "train-images.idx3-ubyte")
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(X, images.reshape(3, 4))


def test_missing_value_words_are_labels_in_a_column_of_labels(tmp_path):
    """pandas reads "None", "NA", "null" as missing; in a column of labels they are labels,
    in a header a name; among numbers (feature or target) they are still missing."""
    (tmp_path / "severity.csv").write_text("a,b,severity\n1,2,None\n3,4,Low\n5,6,NA\n")
    X, y = load_csv(tmp_path / "severity.csv", target="severity")
    assert y.tolist() == ["None", "Low", "NA"] and X.shape == (3, 2)
    (tmp_path / "named.csv").write_text("NA,b,y\n1,2,3\n3,4,5\n")
    assert csv_header(tmp_path / "named.csv") == ["NA", "b", "y"]
    X, y = load_csv(tmp_path / "named.csv", target="NA")
    assert y.tolist() == [1, 3]
    (tmp_path / "feature.csv").write_text("a,b,y\n1,null,3\n3,4,5\n")
    with pytest.raises(DataFormatError, match=r"missing value in column 'b' at line 2"):
        load_csv(tmp_path / "feature.csv")
    (tmp_path / "target.csv").write_text("a,b,y\n1,2,NA\n3,4,5\n")
    with pytest.raises(DataFormatError, match=r"missing value in column 'y' at line 2"):
        load_csv(tmp_path / "target.csv")
    X, y = load_csv(tmp_path / "target.csv", allow_missing_target=True)
    assert np.isnan(y[0]) and y[1] == 5


def test_load_csv_reads_only_the_named_columns(tmp_path):
    (tmp_path / "ids.csv").write_text("id,b,note,a,label\nx1,1,hello,2,cat\nx2,3,,4,dog\n")
    X, y = load_csv(tmp_path / "ids.csv", target="label", columns=["a", "b"])
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])  # the file's order: b, a
    assert y.tolist() == ["cat", "dog"]
    X, y = load_csv(tmp_path / "ids.csv", target=None, columns=["a"])
    np.testing.assert_array_equal(X, [[2], [4]])
    assert y is None
    with pytest.raises(ValidationError, match=r"has no column\(s\) \['c'\]"):
        load_csv(tmp_path / "ids.csv", target="label", columns=["c"])
    with pytest.raises(ValidationError, match="name the target"):
        load_csv(tmp_path / "ids.csv", target=-1, columns=["a"])
    (tmp_path / "plain.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValidationError, match="has no header"):
        load_csv(tmp_path / "plain.csv", target=None, columns=["a"])


def test_loader_mistakes_get_messages_that_say_what_to_do(tmp_path):
    (tmp_path / "pipes.csv").write_text("1||2||3\n4||5||6\n")
    with pytest.raises(ValidationError, match=r"matches the empty string; escape it"):
        load_csv(tmp_path / "pipes.csv", delimiter="||")
    (tmp_path / "libsvm.txt").write_text("1 1:0.5 2:1.5\n-1 1:0.1 3:2.0\n")
    with pytest.raises(DataFormatError, match=r"index:value pairs.*name the file \.svm"):
        load_file(tmp_path / "libsvm.txt")
    (tmp_path / "times.csv").write_text("a,start,y\n1,12:30,1\n2,13:45,0\n")
    with pytest.raises(DataFormatError, match=r"non-numeric feature column 'start'") as caught:
        load_file(tmp_path / "times.csv")  # a time in a CSV is not an svmlight pair
    assert "svmlight" not in str(caught.value)
    (tmp_path / "wide.csv").write_bytes("a,b,y\n1,2,3\n4,5,6\n".encode("utf-16"))
    with pytest.raises(DataFormatError, match="is not UTF-8 text.*save it as UTF-8"):
        load_csv(tmp_path / "wide.csv")


def test_compressed_text_files_of_every_kind_load_csv_reads_are_loaded(tmp_path):
    import lzma

    with lzma.open(tmp_path / "data.csv.xz", "wt") as handle:
        handle.write("a,b,y\n1,2,3\n4,5,6\n")
    X, y = load_file(tmp_path / "data.csv.xz")
    np.testing.assert_array_equal(X, [[1, 2], [4, 5]])
    assert y.tolist() == [3, 6]


def test_stratify_takes_numpy_booleans():
    X = np.arange(40.0).reshape(20, 2)
    y = np.r_[np.zeros(16, int), np.ones(4, int)]
    for seed in range(5):  # stratified: always one of the 4 ones among the 5 test samples
        y_test = train_test_split_data(X, y, stratify=np.True_, random_state=seed)[3]
        assert np.bincount(y_test, minlength=2).tolist() == [4, 1]
    with pytest.raises(ValidationError, match="stratify must be None, a bool"):
        train_test_split_data(X, y, stratify=3)


def test_an_svmlight_file_of_labels_alone_is_refused(tmp_path):
    # scikit-learn made up one all-zero feature: the CLI fitted and saved a model of it
    path = tmp_path / "labels.svm"
    for text in ("1\n-1\n1\n-1\n", "1 1:0\n-1 2:0\n"):  # (explicit zeros are stored)
        path.write_text(text)
        with pytest.raises(DataFormatError, match="has no feature values"):
            load_svmlight(path)


def test_a_compressed_svmlight_file_without_its_extension_says_so(tmp_path):
    path = tmp_path / "data.svm"
    path.write_bytes(gzip.compress(b"1 1:0.5 2:1\n-1 1:0.2\n"))
    with pytest.raises(DataFormatError, match="gzip-compressed: name it with the extension .gz"):
        load_svmlight(path)
    named = tmp_path / "data.svm.gz"
    named.write_bytes(path.read_bytes())
    assert load_svmlight(named)[0].shape == (2, 2)


def test_a_first_row_of_missing_features_is_a_sample_not_a_header(tmp_path):
    # (read as a header, the sample vanished without a word)
    path = tmp_path / "data.csv"
    path.write_text(",,cat\n1,2,dog\n3,4,cat\n")
    with pytest.raises(DataFormatError, match="missing value in column 0 at line 1"):
        load_csv(path)
    path.write_text(",a,b,label\n0,1,2,x\n1,3,4,y\n")  # pandas' unnamed index column
    with pytest.warns(ConvexNNWarning, match="index"):
        X, y = load_csv(path)
    assert X.shape == (2, 3) and list(y) == ["x", "y"]
    for header in ("a,,label", "a,b,"):  # a spreadsheet's unnamed column is still a header
        path.write_text(header + "\n1,2,0\n3,4,1\n")
        X, y = load_csv(path)
        assert X.tolist() == [[1.0, 2.0], [3.0, 4.0]] and y.tolist() == [0, 1], header


def test_a_sniffed_delimiter_reads_past_a_byte_order_mark(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("\ufeffa;b;label\n1;2;0\n3;4;1\n".encode())
    X, y = load_csv(path, target="a", delimiter=None)
    assert X.tolist() == [[2.0, 0.0], [4.0, 1.0]] and y.tolist() == [1.0, 3.0]


def test_npz_byte_string_labels_are_read_as_text_and_dates_refused(tmp_path):
    X = np.arange(8.0).reshape(4, 2)
    np.savez(tmp_path / "bytes.npz", X=X, y=np.array([b"a", b"b", b"a", b"b"]))
    assert load_numpy(tmp_path / "bytes.npz")[1].tolist() == ["a", "b", "a", "b"]
    np.savez(tmp_path / "dates.npz", X=X, y=np.arange(4).astype("datetime64[D]"))
    with pytest.raises(DataFormatError, match="y has dtype datetime64"):
        load_numpy(tmp_path / "dates.npz")

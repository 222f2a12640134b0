"""The image-like digits generator (convexnn.datasets.make_digit_images)."""

from __future__ import annotations

import numpy as np
import pytest

import convexnn
from convexnn.datasets import DigitImages, make_digit_images


def test_images_are_mnist_shaped_pixels_in_unit_interval_with_digit_labels():
    images = make_digit_images(300, random_state=0)
    assert isinstance(images, DigitImages)
    assert images.X.shape == (300, 784) and images.X.dtype == np.float64
    assert images.image_shape == (1, 28, 28)
    assert images.X.min() >= 0.0 and images.X.max() <= 1.0
    assert set(np.unique(images.y)) <= set(range(10)) and len(np.unique(images.y)) >= 8
    # MNIST-like: a mostly dark background, bright strokes, not standardised.
    assert 0.05 < images.X.mean() < 0.35
    assert (images.X == 0).mean() > 0.2 and (images.X > 0.8).mean() > 0.01


def test_neighbouring_pixels_are_strongly_correlated():
    X = make_digit_images(1000, random_state=1).X.reshape(-1, 28, 28)
    centre = X[:, 8:20, 8:20]
    right = X[:, 8:20, 9:21]
    correlation = np.corrcoef(centre.ravel(), right.ravel())[0, 1]
    assert correlation > 0.7


def test_generator_is_reproducible_and_leaves_global_random_state_alone():
    state = np.random.get_state()
    first = make_digit_images(50, random_state=3)
    second = make_digit_images(50, random_state=3)
    other = make_digit_images(50, random_state=4)
    after = np.random.get_state()
    assert np.array_equal(first.X, second.X) and np.array_equal(first.y, second.y)
    assert not np.array_equal(first.X, other.X)
    assert all(np.array_equal(a, b) for a, b in zip(state[1:2], after[1:2]))


def test_options_change_the_images_as_documented():
    plain = make_digit_images(20, noise=0.0, max_shift=0.0, max_rotation=0.0,
                              scale_range=(1.0, 1.0), random_state=0)
    small = make_digit_images(20, image_size=16, digit_size=10.0, random_state=0)
    assert small.X.shape == (20, 256) and small.image_shape == (1, 16, 16)
    # Without noise the border stays black.
    border = plain.X.reshape(-1, 28, 28)[:, :2, :]
    assert np.all(border == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        ({"scale_range": (1.2, 0.8)}, "scale_range"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    arguments = {"n_samples": 5, **kwargs}
    with pytest.raises(convexnn.ValidationError, match=match):
        make_digit_images(**arguments)

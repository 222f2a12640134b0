"""The exact convex programs: predictions, conv patches, nuclear-norm form, global optimality.

* the symmetric-storage lifted features, the conic back-ends' cvxpy
  expression and ``predict_blocks`` all compute ``yhat`` of design.md sections 2 and 4,
  checked against a brute-force evaluation of ``F^T M(Z - Z') F``;
* convolution patches match ``torch.nn.functional.unfold`` and the pooling
  regions of ``AvgPool2d``;
* quadratic activation: SDP optimum = nuclear-norm program optimum;
* on planted unit-norm teachers the SDP optimum is below the teacher's own
  objective and below a gradient-trained network's (global optimality).
"""

from __future__ import annotations

import dataclasses

import cvxpy as cp
import numpy as np
import pytest
import torch

import convexnn.patches as patches_module
from conftest import (
    onehot_targets,
    planted_conv_teacher,
    planted_teacher,
    relative_difference,
    sign_targets,
    solve_checked,
)
from convexnn import certify_network, solve
from convexnn.exceptions import ValidationError
from convexnn.formulations import make_conv_problem, make_problem, nuclear_norm_program
from convexnn.losses import get_loss
from convexnn.patches import ConvGeometry
from convexnn.solvers._conic_model import build_program, lifted_features


def random_psd(rng, side):
    A = rng.standard_normal((side, side))
    return A @ A.T / side


def random_blocks(rng, problem):
    side = problem.shape.patch_size + 1
    return [(random_psd(rng, side), random_psd(rng, side)) for _ in range(problem.shape.n_blocks)]


def brute_force_predictions(problem, blocks):
    """``yhat_ik = sum_r (1/P) sum_p F^T M(Z_rk - Z'_rk) F``, one sample at a time."""
    a, b, c = problem.coefficients
    n, regions, pool, h = problem.patches.shape
    outputs = problem.shape.n_outputs
    yhat = np.zeros((n, outputs))
    for i in range(n):
        for r in range(regions):
            for k in range(outputs):
                z_pos, z_neg = blocks[r * outputs + k]
                D = z_pos - z_neg
                for p in range(pool):
                    x = problem.patches[i, r, p]
                    yhat[i, k] += (a * x @ D[:h, :h] @ x + b * x @ D[:h, h] + c * D[h, h]) / pool
    return yhat


def _problems():
    t = planted_teacher(n=12, d=3, seed=0)
    tv = planted_teacher(n=12, d=3, n_outputs=3, seed=1)
    images, y, geometry, _ = planted_conv_teacher(n=8, image=(2, 4, 5), filter_size=2, seed=2)
    images_p, y_p, geometry_p, _ = planted_conv_teacher(n=8, filter_size=2, pool_size=2, seed=3)
    return {
        "scalar": make_problem(t.X, t.y, activation=(0.3, -0.7, 1.1)),
        "vector": make_problem(tv.X, tv.y),
        "conv-global-2ch": make_conv_problem(images, y, geometry, activation=(1.0, 0.5, -0.2)),
        "conv-2x2": make_conv_problem(images_p, y_p, geometry_p),
    }


PROBLEMS = _problems()


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_predict_blocks_matches_brute_force(name):
    problem = PROBLEMS[name]
    blocks = random_blocks(np.random.default_rng(0), problem)
    np.testing.assert_allclose(
        problem.predict_blocks(blocks),
        brute_force_predictions(problem, blocks),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_cvxpy_expression_matches_predict_blocks(name):
    problem = PROBLEMS[name]
    blocks = random_blocks(np.random.default_rng(1), problem)
    program = build_program(problem)
    assert len(program.blocks) == problem.shape.n_blocks
    for (z_pos, z_neg), (value_pos, value_neg) in zip(program.blocks, blocks):
        z_pos.value, z_neg.value = value_pos, value_neg
    lhs, rhs = program.link.args
    expression = rhs if lhs is program.predictions else lhs
    np.testing.assert_allclose(
        expression.value, problem.predict_blocks(blocks), rtol=1e-10, atol=1e-12
    )
    # The symmetric storage: one row per sample of (h+1)(h+2)/2 pooled lifted features.
    side = problem.shape.patch_size + 1
    lifted = lifted_features(problem.patches[:, 0], problem.coefficients)
    assert lifted.shape == (problem.shape.n_samples, side * (side + 1) // 2)


def test_scalar_predictions_match_the_authors_lifted_formula():
    """``yhat_i = a x^T Z1 x + b x^T Z2 + c Z4`` (design.md, section 2)."""
    problem = PROBLEMS["scalar"]
    a, b, c = problem.coefficients
    rng = np.random.default_rng(2)
    blocks = random_blocks(rng, problem)
    X = problem.patches[:, 0, 0]
    D = blocks[0][0] - blocks[0][1]
    h = X.shape[1]
    expected = a * np.einsum("ni,ij,nj->n", X, D[:h, :h], X) + b * X @ D[:h, h] + c * D[h, h]
    np.testing.assert_allclose(problem.predict_blocks(blocks)[:, 0], expected, rtol=1e-12)
    assert problem.block_penalty(blocks) == pytest.approx(
        blocks[0][0][h, h] + blocks[0][1][h, h]
    )


def test_problem_shapes_and_variants():
    assert PROBLEMS["scalar"].shape.variant == "scalar"
    assert PROBLEMS["vector"].shape.variant == "vector"
    assert PROBLEMS["vector"].shape.n_outputs == 3
    conv = PROBLEMS["conv-global-2ch"]
    assert conv.shape.variant == "conv"
    # global pooling: one region, the SDP has the size of the filter (2 channels x 2 x 2)
    assert conv.shape.n_regions == 1 and conv.shape.patch_size == 8
    # its 3 x 4 positions' patches held as patch_size + 1 = 9 of the same moments
    assert conv.geometry.pool_area == 3 * 4 and conv.shape.pool_size == 9
    pooled = PROBLEMS["conv-2x2"]
    assert (pooled.shape.n_regions, pooled.shape.pool_size) == (4, 4)
    assert pooled.shape.n_blocks == 4


# -- patches -------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, filter_size, stride",
    [((1, 5, 5), 2, 1), ((3, 6, 5), (2, 3), 1), ((2, 7, 7), 3, 2), ((1, 4, 6), (1, 2), (2, 1))],
)
def test_patches_match_torch_unfold(image, filter_size, stride):
    geometry = ConvGeometry(image, filter_size, stride)
    images = np.random.default_rng(0).standard_normal((4, *geometry.image_shape))
    patches = geometry.patches(images)
    unfolded = torch.nn.functional.unfold(
        torch.from_numpy(images), geometry.filter_size, stride=geometry.stride
    )  # (n, patch, positions) in (channel, row, column) order
    assert patches.shape == (4, 1, unfolded.shape[2], geometry.patch_size)
    np.testing.assert_array_equal(patches[:, 0], unfolded.transpose(1, 2).numpy())
    # Flat rows and (n, H, W) for one channel are accepted too.
    np.testing.assert_array_equal(geometry.patches(images.reshape(4, -1)), patches)
    if image[0] == 1:
        np.testing.assert_array_equal(geometry.patches(images[:, 0]), patches)


def test_pooling_regions_follow_avgpool2d():
    """Region (i, j) holds the conv outputs that AvgPool2d averages into cell (i, j)."""
    geometry = ConvGeometry((1, 6, 7), 2, 1, (2, 3))  # 5x6 conv grid -> 2x2 pooled cells
    assert geometry.output_grid == (5, 6) and geometry.pooled_grid == (2, 2)
    images = np.random.default_rng(1).standard_normal((3, 1, 6, 7))
    u = np.random.default_rng(2).standard_normal(geometry.patch_size)
    conv = torch.nn.functional.conv2d(
        torch.from_numpy(images), torch.from_numpy(u.reshape(1, 1, 2, 2))
    )
    pooled = torch.nn.functional.avg_pool2d(conv, (2, 3)).flatten(1).numpy()  # (n, R)
    np.testing.assert_allclose((geometry.patches(images) @ u).mean(axis=2), pooled, rtol=1e-12)


@pytest.mark.parametrize("pool_size", [None, (3, 5), (4, 2)])
def test_training_patches_keep_each_regions_mean_and_second_moment(pool_size, monkeypatch):
    monkeypatch.setattr(patches_module, "TRAINING_PATCH_CHUNK", 500)  # several chunks
    # h = 8; one region of 30 patches, two of 15 (both reduced to 9), or four of 8 (kept)
    geometry = ConvGeometry((2, 7, 6), 2, 1, pool_size)
    images = np.random.default_rng(3).random((7, *geometry.image_shape))
    patches, training = geometry.patches(images), geometry.training_patches(images)
    h = geometry.patch_size
    assert training.shape == (7, geometry.n_regions, min(geometry.pool_area, h + 1), h)
    if geometry.pool_area <= h + 1:
        np.testing.assert_array_equal(training, patches)
    second = np.einsum("nrpi,nrpj->nrij", patches, patches) / patches.shape[2]
    np.testing.assert_allclose(
        np.einsum("nrpi,nrpj->nrij", training, training) / training.shape[2], second,
        rtol=0, atol=1e-13 * np.abs(second).max(),
    )
    np.testing.assert_allclose(training.mean(axis=2), patches.mean(axis=2), rtol=0, atol=1e-14)


def test_training_patches_give_the_problem_of_every_patch():
    """The solve on the reduced patches reaches the optimum of the problem on all of them,
    and its network predicts the same on both."""
    geometry = ConvGeometry((1, 6, 6), 2, 1, None)  # 25 patches of 4 values -> 5
    images = np.random.default_rng(4).standard_normal((30, *geometry.image_shape))
    y = np.random.default_rng(5).standard_normal(30)
    problem = make_conv_problem(images, y, geometry, beta=0.5)
    every_patch = dataclasses.replace(problem, patches=geometry.patches(images))
    assert problem.shape.pool_size == 5 and every_patch.shape.pool_size == 25
    reduced, network, _ = solve(problem, "native")
    full, _, _ = solve(every_patch, "native")
    assert reduced.relative_gap < 1e-6 and full.relative_gap < 1e-6
    assert relative_difference(reduced.objective, full.objective) < 1e-6
    np.testing.assert_allclose(network.outputs(problem.patches),
                               network.outputs(every_patch.patches), rtol=1e-10, atol=1e-12)
    on_every_patch = certify_network(every_patch, network)
    assert relative_difference(on_every_patch.objective, reduced.objective) < 1e-12
    assert on_every_patch.relative_gap < 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_shape=(1, 3, 3), filter_size=4), "filter_size"),
        (dict(image_shape=(1, 5, 5), filter_size=2, pool_size=5), "pool_size"),
        (dict(image_shape=(1, 5, 5), filter_size=0), "filter_size"),
        (dict(image_shape=(1, 5, 5), filter_size=2, stride=0), "stride"),
        (dict(image_shape=(0, 5), filter_size=2), "image_shape"),
    ],
)
def test_geometry_validation_names_the_parameter(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        ConvGeometry(**kwargs)


def test_geometry_round_trips_through_dict():
    geometry = ConvGeometry((2, 6, 6), (2, 3), (1, 2), (2, 1))
    assert ConvGeometry.from_dict(geometry.to_dict()) == geometry


# -- quadratic activation = nuclear norm ------------------------------------------


@pytest.mark.parametrize("loss", ["squared", "huber", "l1"])
def test_quadratic_activation_equals_nuclear_norm_program(loss):
    t = planted_teacher(n=30, d=5, activation="quadratic", seed=11)
    beta = 0.2
    problem = make_problem(t.X, t.y, activation="quadratic", beta=beta, loss=loss)
    result, network, _ = solve_checked(problem, "clarabel")
    program, W = nuclear_norm_program(t.X, t.y, beta=beta, loss=loss)
    program.solve(solver="CLARABEL")
    assert program.status == "optimal"
    assert relative_difference(result.objective, program.value) <= 1e-5
    # The eigen-decomposition of W is a network with the same objective.
    eigenvalues, eigenvectors = np.linalg.eigh(W.value)
    keep = np.abs(eigenvalues) > 1e-8 * np.abs(eigenvalues).max()
    yhat = ((t.X @ eigenvectors[:, keep]) ** 2) @ eigenvalues[keep]
    from_w = get_loss(loss)(yhat, t.y) + beta * np.abs(eigenvalues[keep]).sum()
    assert relative_difference(from_w, result.objective) <= 1e-5
    objective = network.objective(t.X, t.y, loss=loss, beta=beta)
    assert relative_difference(objective, program.value) <= 1e-5


def test_nuclear_norm_program_rejects_vector_targets():
    t = planted_teacher(n=10, d=3, n_outputs=2)
    with pytest.raises(ValidationError, match="scalar target"):
        nuclear_norm_program(t.X, t.y, beta=0.1)


# -- global optimality on planted teachers ---------------------------------------------


def gradient_trained_objective(X, y, activation, beta, loss, width, seed, steps=400, lr=0.03):
    """Adam on ``loss(f(X), y) + beta * sum |alpha|`` with ``u_j = w_j / ||w_j||``."""
    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.reshape(len(y), -1))
    a, b, c = activation.coefficients
    W = torch.randn(width, X.shape[1], dtype=torch.float64, requires_grad=True)
    alpha = (0.1 * torch.randn(width, yt.shape[1], dtype=torch.float64)).requires_grad_(True)
    optimiser = torch.optim.Adam([W, alpha], lr=lr)

    def objective():
        t = Xt @ (W / W.norm(dim=1, keepdim=True)).T
        return loss.value((a * t * t + b * t + c) @ alpha, yt) + beta * alpha.abs().sum()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than the maths
    try:
        for _ in range(steps):
            optimiser.zero_grad()
            value = objective()
            value.backward()
            optimiser.step()
        with torch.no_grad():
            return float(objective())
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "loss, targets",
    [("squared", "real"), ("logistic", "sign"), ("cross-entropy", "onehot")],
)
def test_sdp_optimum_beats_teacher_and_gradient_training(loss, targets):
    beta = 0.05
    if targets == "onehot":
        t = planted_teacher(n=40, d=4, m=3, n_outputs=3, seed=21)
        y = onehot_targets(t)
    else:
        t = planted_teacher(n=40, d=4, m=3, seed=21)
        y = sign_targets(t) if targets == "sign" else t.y
    problem = make_problem(t.X, y, beta=beta, loss=loss)
    result, network, _ = solve_checked(problem, "clarabel")
    slack = 1e-6 * abs(result.objective)
    teacher_objective = t.network.objective(t.X, y, loss=loss, beta=beta)
    assert result.objective <= teacher_objective + slack
    assert result.lower_bound <= teacher_objective
    loss_object = get_loss(loss)
    trained = [
        gradient_trained_objective(t.X, y, problem.activation, beta, loss_object, width, seed)
        for width, seed in ((3, 0), (10, 1))
    ]
    for value in trained:
        assert result.objective <= value + slack
        assert result.lower_bound <= value  # the certificate bounds every network
    # The certificate (with the solver's dual point) is tight at the SDP optimum.
    assert result.relative_gap < 1e-5
    # From the network alone (loss gradient as the dual point) it is looser for
    # the entropy-type conjugates, but still a valid bound.
    certificate = certify_network(problem, network)
    assert certificate.lower_bound <= result.objective
    assert certificate.relative_gap < (1e-5 if loss == "squared" else 1e-3)


def test_certified_lower_bound_is_below_the_teacher_on_conv_data():
    images, y, geometry, teacher = planted_conv_teacher(n=30, filter_size=2, pool_size=2, seed=4)
    problem = make_conv_problem(images, y, geometry, beta=0.1)
    certificate = certify_network(problem, teacher)
    result, _, _ = solve_checked(problem, "clarabel")
    assert certificate.lower_bound <= result.objective + 1e-9
    assert result.objective <= certificate.objective + 1e-6
    assert result.lower_bound <= certificate.objective


# -- input validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=np.zeros(5)), "y has 5 rows but X has 12"),
        (dict(beta=-1.0), "beta"),
        (dict(beta=float("nan")), "beta"),
        (dict(loss="nope"), "unknown loss"),
        (dict(activation="relu"), "unknown activation"),
        (dict(activation=(0, 0, 0)), "activation"),
        (dict(loss="hinge"), "hinge loss needs targets"),
        (dict(X=np.full((12, 3), np.nan)), "X contains"),
    ],
)
def test_make_problem_validation_names_the_argument(kwargs, match):
    t = planted_teacher(n=12, d=3)
    arguments = dict(X=t.X, y=t.y)
    arguments.update(kwargs)
    X, y = arguments.pop("X"), arguments.pop("y")
    with pytest.raises(ValidationError, match=match):
        make_problem(X, y, **arguments)


def test_conv_problem_rejects_images_of_the_wrong_shape():
    geometry = ConvGeometry((1, 5, 5), 2)
    with pytest.raises(ValidationError, match=r"images of shape \(1, 5, 5\)"):
        make_conv_problem(np.zeros((4, 1, 4, 4)), np.zeros(4), geometry)


def test_cvxpy_program_is_dcp_and_uses_psd_blocks():
    problem = PROBLEMS["vector"]
    program = build_program(problem)
    assert program.problem.is_dcp()
    for z_pos, z_neg in program.blocks:
        assert z_pos.is_psd() and z_neg.is_psd()
    assert program.predictions.shape == (problem.shape.n_samples, problem.shape.n_outputs)
    assert isinstance(program.link, cp.constraints.Equality)

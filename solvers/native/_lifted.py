"""The linear map ``A`` from PSD blocks to predictions, and what the IPM needs of it.

For one block (region ``r``) ``A(W)_i = tr(A_i W)`` with
``A_i = (1/P) sum_p B_ip K B_ip^T``, ``B_ip = [[x_irp, 0], [0, 1]]`` and
``K = [[a, b/2], [b/2, c]]``. The interior-point method needs ``A``, its
adjoint and the Schur complement ``M_ij = tr(A_i X A_j S^{-1})``.

Two implementations share one interface:

* :class:`GramOperator` (fully connected, ``P = 1``): ``M`` is assembled from
  the ``n x n`` Gram-like matrices ``X Z11 X^T`` and ``X S^{-1}_11 X^T`` in
  ``O(n^2 h + n h^2)`` without ever forming the lifted matrices;
* :class:`LiftedOperator` (pooling, small patches): the pooled matrices
  ``A_i`` are stored (``n (h+1)^2`` numbers) and ``M`` costs
  ``O(n h^3 + n^2 h^2)``.

When the blocks have fewer entries than there are samples (many samples,
small patches: ``m = R (h+1)(h+2)/2 < n``), :class:`LiftedSystem` solves
with ``M`` without forming it: ``M = I + B W B^T`` with ``B`` the ``n x m``
matrix of the ``A_i`` in symmetric-vector coordinates and ``W`` the
block-diagonal ``X ⊗_s S^{-1}``, an ``m x m`` system per iteration.
"""

from __future__ import annotations

import math

import torch

from convexnn.solvers.base import coefficient_matrix


class GramOperator:
    """``A`` for one fully connected block, data ``X`` of shape ``(n, h)``."""

    def __init__(self, X: torch.Tensor, coefficients: tuple[float, float, float]) -> None:
        self.X = X
        self.a, self.b, self.c = coefficients
        self.n, self.h = X.shape

    def apply(self, W: torch.Tensor) -> torch.Tensor:
        """``(tr(A_i W))_i`` (only the symmetric part of ``W`` matters)."""
        h = self.h
        quadratic = ((self.X @ W[:h, :h]) * self.X).sum(dim=1)
        linear = self.X @ (W[:h, h] + W[h, :h])
        return self.a * quadratic + (0.5 * self.b) * linear + self.c * W[h, h]

    def adjoint(self, lam: torch.Tensor) -> torch.Tensor:
        """``sum_i lam_i A_i``."""
        h = self.h
        out = torch.empty((h + 1, h + 1), dtype=lam.dtype, device=lam.device)
        out[:h, :h] = self.a * ((self.X.T * lam) @ self.X)
        linear = (0.5 * self.b) * (self.X.T @ lam)
        out[:h, h] = linear
        out[h, :h] = linear
        out[h, h] = self.c * lam.sum()
        return out

    def add_schur(self, M: torch.Tensor, Xm: torch.Tensor, S_inv: torch.Tensor) -> None:
        """``M += [tr(A_i Xm A_j S_inv)]_ij`` (Xm, S_inv symmetric).

        With ``Phi_ij = B_i^T Xm B_j`` and ``Psi_ij = B_i^T S_inv B_j`` (2x2) the
        entry is ``<Phi_ij, K Psi_ij K>``. For ``a != 0`` this collapses to
        ``a^2 (Xt Xm Xt^T) o (Xt S_inv Xt^T) + w 1^T + 1 w^T`` with augmented
        rows ``xt_i = [x_i; b/(2a)]`` (one Hadamard product, few passes over
        the ``n x n`` matrix); ``a = 0`` (no quadratic term) uses the expanded form.
        """
        X, h = self.X.to(M.dtype), self.h
        k00, k01, k11 = self.a, 0.5 * self.b, self.c
        if k00 != 0.0:
            rho = k01 / k00
            augmented = torch.cat(
                [X, torch.full((self.n, 1), rho, dtype=X.dtype, device=X.device)], dim=1
            )
            P = (augmented @ Xm) @ augmented.T
            Q = (augmented @ S_inv) @ augmented.T
            M.addcmul_(P, Q, value=k00 * k00)
            p, p22 = X @ Xm[:h, h], float(Xm[h, h])
            q, q22 = X @ S_inv[:h, h], float(S_inv[h, h])
            det = k00 * k11 - k01 * k01
            w = (
                det * (p * q + rho * (q22 * p + p22 * q))
                + 0.5 * det / k00 * (k11 + k01 * rho) * p22 * q22
            )
            M.add_(w[:, None]).add_(w[None, :])
            return
        P = (X @ Xm[:h, :h]) @ X.T
        Q = (X @ S_inv[:h, :h]) @ X.T
        p, p22 = X @ Xm[:h, h], float(Xm[h, h])
        q, q22 = X @ S_inv[:h, h], float(S_inv[h, h])
        # a = 0: <Phi, K Psi K> with K = [[0, b/2], [b/2, c]]
        Q.mul_((k01 * k01) * p22)
        P.mul_((k01 * k01) * q22).add_(Q)
        P.addr_(p, q, alpha=k01 * k01).addr_(q, p, alpha=k01 * k01)
        z = k01 * k11 * (q22 * p + p22 * q) + 0.5 * k11 * k11 * p22 * q22
        P.add_(z[:, None]).add_(z[None, :])
        M.add_(P)

    def apply_factor(self, U: torch.Tensor) -> torch.Tensor:
        """``(A_i U)_i`` of shape ``(n, h+1, r)`` for ``U`` of shape ``(h+1, r)``."""
        h = self.h
        q = self.X @ U[:h]  # (n, r)
        top = self.X[:, :, None] * (self.a * q + (0.5 * self.b) * U[h])[:, None, :]
        last = (0.5 * self.b) * q + self.c * U[h]
        return torch.cat([top, last[:, None, :]], dim=1)

    def svec_rows(self) -> torch.Tensor:
        """``(svec(A_i))_i`` of shape ``(n, (h+1)(h+2)/2)`` (see :func:`svec_indices`)."""
        dtype, device = self.X.dtype, self.X.device
        rows, cols, weights = svec_indices(self.h + 1, dtype, device)
        augmented = torch.cat([self.X, torch.ones((self.n, 1), dtype=dtype, device=device)], 1)
        pattern = torch.as_tensor(coefficient_matrix((self.a, self.b, self.c), self.h),
                                  dtype=dtype, device=device)
        return augmented[:, rows] * augmented[:, cols] * (pattern[rows, cols] * weights)


class LiftedOperator:
    """``A`` for one pooled block, from patches of shape ``(n, P, h)``."""

    def __init__(self, patches: torch.Tensor, coefficients: tuple[float, float, float]) -> None:
        n, pool, h = patches.shape
        ones = torch.ones((n, pool, 1), dtype=patches.dtype, device=patches.device)
        F = torch.cat([patches, ones], dim=2)  # (n, P, h+1)
        # A_i = (1/P) sum_p F_p F_p^T scaled entrywise by the activation pattern
        pattern = torch.as_tensor(coefficient_matrix(coefficients, h), dtype=patches.dtype,
                                  device=patches.device)
        self.matrices = torch.einsum("npi,npj->nij", F, F).div_(pool).mul_(pattern)
        self.n, self.h = n, h

    def apply(self, W: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nij,ij->n", self.matrices, W)

    def adjoint(self, lam: torch.Tensor) -> torch.Tensor:
        return torch.einsum("n,nij->ij", lam, self.matrices)

    def add_schur(self, M: torch.Tensor, Xm: torch.Tensor, S_inv: torch.Tensor) -> None:
        matrices = self.matrices.to(M.dtype)
        transformed = Xm @ matrices @ S_inv  # (n, N, N)
        M.add_(matrices.reshape(self.n, -1) @ transformed.reshape(self.n, -1).T)

    def apply_factor(self, U: torch.Tensor) -> torch.Tensor:
        """``(A_i U)_i`` of shape ``(n, h+1, r)`` for ``U`` of shape ``(h+1, r)``."""
        return self.matrices @ U

    def svec_rows(self) -> torch.Tensor:
        """``(svec(A_i))_i`` of shape ``(n, (h+1)(h+2)/2)`` (see :func:`svec_indices`)."""
        rows, cols, weights = svec_indices(self.h + 1, self.matrices.dtype,
                                           self.matrices.device)
        return self.matrices[:, rows, cols] * weights


def iteration_flops(n: int, regions: int, pool_size: int, side: int) -> tuple[float, float]:
    """Operations of one interior-point iteration with the assembled ``n x n`` matrix and
    on the lifted side (its QR factorisation amortised over a typical solve; ``inf``
    unless there are fewer lifted entries ``m`` than samples: measured, with as many
    samples as entries the ``n x n`` side is faster)."""
    assembly = (2 * n * n * side * side + 4 * n * side ** 3 if pool_size > 1
                else 4 * n * n * side + 4 * n * side * side + 4 * n * n)
    n_side = n ** 3 / 3 + 2 * regions * assembly
    block = side * (side + 1) // 2
    m = regions * block
    if m >= n:
        return n_side, math.inf
    lifted = 2 * m * m * block + 2 * m ** 3 + m ** 3 / 3 + 40 * n * m + 0.15 * n * m * m
    return n_side, lifted


def svec_indices(side: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row and column of each entry ``a <= b`` of a symmetric ``side x side`` matrix, and
    its weight in ``svec`` (``1`` on the diagonal, ``sqrt(2)`` off it): then
    ``tr(A B) = svec(A) . svec(B)``."""
    rows, cols = torch.triu_indices(side, side, device=device)
    weights = torch.full(rows.shape, math.sqrt(2.0), dtype=dtype, device=device)
    weights[rows == cols] = 1.0
    return rows, cols, weights


def svec_kron(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The matrix of ``D -> (X D Y + Y D X) / 2`` in ``svec`` coordinates.

    Entry ``(ab, cd)`` is ``w_ab w_cd (X_ac Y_bd + X_bd Y_ac + X_ad Y_bc + X_bc Y_ad) / 2``
    with ``w = 1/sqrt(2)`` on diagonal pairs and ``1`` off them.
    """
    a, b, weights = svec_indices(X.shape[0], X.dtype, X.device)
    w = weights / math.sqrt(2.0)
    a_, b_ = a[:, None], b[:, None]
    c, d = a[None, :], b[None, :]
    total = X[a_, c] * Y[b_, d] + X[b_, d] * Y[a_, c] + X[a_, d] * Y[b_, c] + X[b_, c] * Y[a_, d]
    return (0.5 * w[:, None] * w[None, :]) * total


def jittered_cholesky(M: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of the interior point's positive definite Newton matrix ``M``
    (modified in place), with ``1e-12`` of its largest diagonal entry added where
    rounding at the accuracy floor makes it numerically indefinite."""
    factor, info = torch.linalg.cholesky_ex(M)
    if int(info) != 0:
        M.diagonal().add_(1e-12 * float(M.diagonal().max()))
        factor = torch.linalg.cholesky(M)
    return factor


#: Iterative refinements of a lifted-side solve, each with the exact ``M``.
REFINEMENTS = 6


class LiftedSystem:
    """The interior point's Newton system on the lifted side, for ``m < n`` (see above).

    With the thin QR factorisation ``B = Q R`` of the ``n x m`` matrix of the
    ``A_i`` (``svec`` coordinates, regions side by side; computed once per
    data set), ``M = I + B W B^T = Q (I + R W R^T) Q^T + (I - Q Q^T)``: a
    solve with ``M`` is one with the ``m x m`` matrix ``I + R W R^T``, whose
    eigenvalues are those of ``M`` on the range of ``B``. Every solve is then
    refined against the exact ``M`` (:data:`REFINEMENTS`): near the end of an
    interior-point solve ``M`` is ill-conditioned, and without refinement
    the interior point stalled at relative gaps of 1e-6 to 1e-3 (planted
    2000 x 10 and 5000 x 20) where the assembled ``n x n`` matrix reached
    1e-8. The two cones of a region (``Z`` and ``Z'``) enter ``M`` with the
    same ``B_r``, so they share one block ``W_r``.
    """

    def __init__(self, operators: list) -> None:
        rows = torch.cat([op.svec_rows() for op in operators], dim=1)
        self.basis, self.triangle = torch.linalg.qr(rows)
        self.regions = len(operators)
        self.block = rows.shape[1] // self.regions

    @staticmethod
    def bytes(n: int, regions: int, side: int) -> int:
        """Memory of its matrices (float64)."""
        m = regions * side * (side + 1) // 2
        return 8 * (2 * n * m + 4 * m * m)

    def solver(self, cones, S_inv: list):
        """``b -> M^{-1} b`` for the cones' current ``X`` and ``S^{-1}``."""
        R, block = self.triangle, self.block
        W = [torch.zeros((block, block), dtype=R.dtype, device=R.device)
             for _ in range(self.regions)]
        for c, Si in zip(cones, S_inv):
            W[c.region] += svec_kron(c.X, Si)
        RW = torch.cat([R[:, r * block:(r + 1) * block] @ Wr for r, Wr in enumerate(W)], dim=1)
        K = RW @ R.T
        K = 0.5 * (K + K.T)
        K.diagonal().add_(1.0)
        factor = jittered_cholesky(K)

        def once(b: torch.Tensor) -> torch.Tensor:
            c = self.basis.T @ b
            return b + self.basis @ (torch.cholesky_solve(c, factor) - c)

        def apply_M(x: torch.Tensor) -> torch.Tensor:
            z = R.T @ (self.basis.T @ x)
            Wz = torch.cat([Wr @ z[r * block:(r + 1) * block] for r, Wr in enumerate(W)])
            return x + self.basis @ (R @ Wz)

        def solve(b: torch.Tensor) -> torch.Tensor:
            # Refined while the residual (of the exact M) at least halves: near the end
            # of a solve M is so ill-conditioned that rounding sets the residual's floor.
            x = once(b)
            residual = b - apply_M(x)
            error = float(residual.norm())
            for _ in range(REFINEMENTS):
                refined = x + once(residual)
                new_residual = b - apply_M(refined)
                new_error = float(new_residual.norm())
                if not new_error <= 0.5 * error:
                    break
                x, residual, error = refined, new_residual, new_error
            return x

        return solve


def make_operator(patches: torch.Tensor, coefficients: tuple[float, float, float]):
    """The cheaper exact operator for one region's patches ``(n, P, h)``."""
    if patches.shape[1] == 1:
        return GramOperator(patches[:, 0], coefficients)
    return LiftedOperator(patches, coefficients)

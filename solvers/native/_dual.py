"""Better dual points for the certificate: the loss gradient moved off the cuts it violates.

The certificate scales a dual point ``v`` into the feasible set
``{v : |h_b(u)| <= beta for every block b and unit u}`` (see
:mod:`convexnn.solvers.certificate`). At a network near the optimum the
gradient violates that set mostly along a few directions (next to the
network's neurons and to the oracle's maximisers), yet the scaling pays for
the worst of them on all of ``v``: the certified gap then lags far behind
the true one (measured on image-like digits, n = 2000: a network 1.5e-6
from the optimum certified only to 1e-3).

:class:`DualCuts` keeps a working set of such directions ("cuts") across
certificates and moves ``v``, by least squares, until ``|h_b(u)| <= beta``
holds on every cut: a cutting-plane step on the dual problem, in the spirit
of the dual extrapolation of celer for the Lasso. The moved point is only a
candidate; the exact oracle certifies whatever it gives, so the bound stays
valid whatever the cuts are. Every sum over samples goes through
``model.reduce`` (``K x K`` and ``K`` arrays for ``K`` cuts).
"""

from __future__ import annotations

import numpy as np
import torch

from convexnn.solvers.native._consolidate import nonnegative_quadratic_min
from convexnn.solvers.native._model import NeuronModel

#: Cuts kept across certificates (the newest; each costs an ``n``-vector in a projection).
CAPACITY = 256

#: Projections per call (each adds the cuts the previous one pushed past their other side).
PASSES = 4

#: Features computed at once (bounds the ``n R P x chunk`` temporary of the projections).
CHUNK_ENTRIES = 2_000_000


def memory_bytes(samples: int, patches_per_sample: int) -> tuple[int, int]:
    """Peak bytes of :meth:`DualCuts.project`: a fixed part and a part per neuron.

    Fixed: the float64 features of ``CAPACITY`` cuts (an ``n``-vector each) and one
    chunk of :meth:`NeuronModel.atoms`'s temporaries (four ``n R P x chunk`` arrays,
    no larger than the cuts themselves); per neuron: its own cut's features.
    """
    chunk = min(CHUNK_ENTRIES, samples * patches_per_sample * CAPACITY)
    return 8 * samples * CAPACITY + 8 * 4 * chunk, 8 * samples


class DualCuts:
    """A working set of unit directions, per block, for :meth:`project`."""

    def __init__(self, h: int, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.directions = np.zeros((0, h))
        self.blocks = np.zeros(0, dtype=int)

    def add(self, directions: np.ndarray, blocks: np.ndarray) -> None:
        """Remember ``directions`` (rows, unit) of ``blocks``; the oldest go past capacity."""
        directions = np.asarray(directions, dtype=float).reshape(-1, self.directions.shape[1])
        self.directions = np.vstack([self.directions, directions])[-self.capacity :]
        self.blocks = np.concatenate([self.blocks, np.asarray(blocks, dtype=int)])[
            -self.capacity :
        ]

    def project(
        self, model: NeuronModel, v: torch.Tensor, extra: tuple[np.ndarray, np.ndarray] | None
    ) -> torch.Tensor:
        """``v`` moved least (in the Euclidean norm) so that no cut is violated.

        ``extra`` are directions and blocks used this time only (the current
        neurons, where the constraint is tight at the optimum).
        """
        directions, blocks = self.directions, self.blocks
        if extra is not None:
            directions = np.vstack([directions, extra[0]])
            blocks = np.concatenate([blocks, extra[1]])
        if not len(blocks):
            return v
        C = model.n_outputs
        outputs = torch.as_tensor(blocks % C, device=v.device)
        features = self._features(model, directions, blocks, v.dtype)  # (n, K)
        own = torch.zeros((len(blocks), C), dtype=v.dtype, device=v.device)
        own[torch.arange(len(blocks), device=v.device), outputs] = 1.0
        gram = model.reduce(features.T @ features)
        gram = gram * (outputs[:, None] == outputs[None, :]).to(v.dtype)
        # Each cut's value is its feature against its own output's column of the point:
        # products with the (n, K) features through BLAS, no (n, K) temporaries.
        start = model.reduce(((features.T @ v) * own).sum(dim=1))
        # Constraints (cut, side) violated at v; moving v can push a cut past its other side,
        # so sides violated by the moved point join and v is moved again from the start.
        active = torch.zeros((2, len(blocks)), dtype=torch.bool, device=v.device)
        values = start
        moved = v
        for _ in range(PASSES):
            violated = torch.stack([values > model.beta, values < -model.beta])
            if not bool((violated & ~active).any()):
                break
            active |= violated
            sides, cuts = torch.nonzero(active, as_tuple=True)
            signs = 1.0 - 2.0 * sides.to(v.dtype)
            excess = (signs * start[cuts] - model.beta).cpu().numpy()
            G = gram[cuts][:, cuts] * signs[:, None] * signs[None, :]
            steps = nonnegative_quadratic_min(G.double().cpu().numpy(), -excess)
            step = torch.zeros(len(blocks), dtype=v.dtype, device=v.device)
            step.index_add_(0, cuts, torch.as_tensor(steps, dtype=v.dtype, device=v.device)
                            * signs)
            moved = v - features @ (step[:, None] * own)
            values = start - gram @ step
        return moved

    @staticmethod
    def _features(model: NeuronModel, directions: np.ndarray, blocks: np.ndarray,
                  dtype: torch.dtype) -> torch.Tensor:
        U = torch.as_tensor(directions, dtype=model.dtype, device=model.patches.device)
        regions = torch.as_tensor(blocks // model.n_outputs, device=U.device)
        features = torch.empty((model.n, len(U)), dtype=dtype, device=U.device)
        chunk = max(1, CHUNK_ENTRIES // max(model.n * model.n_regions * model.pool, 1))
        for i in range(0, len(U), chunk):
            features[:, i : i + chunk] = model.atoms(U[i : i + chunk], regions[i : i + chunk])
        return features

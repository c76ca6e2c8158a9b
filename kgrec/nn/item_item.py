"""Closed-form item-item models: ``scores(u) = x_u W`` with an item-item matrix ``W [I, I]``.

``x_u [I]`` is the user's history row, binary or weighted by recency (``decay ** age``, see
:mod:`kgrec.data.history`). Every model here is fitted in closed form from the training history
in seconds, which makes them the strongest baselines on MovieLens-like data (Ferrari Dacrema
et al., RecSys'19) and the members of kgrec's distillation teacher:

- :func:`ease`: EASE^R (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW'19),
  ``W = I - P diagMat(1 / diag(P))``, ``P = (X^T X + lambda I)^-1``, ``diag(W) = 0``. With a
  recency-weighted ``x_u`` at scoring time it is the *recency-aware EASE* baseline.
- :func:`itemknn`: item-based cosine k-nearest neighbours with a shrink term (Sarwar et al.,
  WWW'01).
- :func:`rp3beta`: RP3beta (Paudel et al., "Updatable, Accurate, Diverse, and Scalable
  Recommendations for Interactive Applications", TiiS'16): the 3-step random-walk probability
  ``P_iu^alpha P_ui^alpha`` divided by the target's popularity ``pop(j)^beta``.
- :func:`transition`: an item-to-next-item model in SLIT's closed form (Choi et al.,
  "Session-aware Linear Item-Item Models for Session-based Recommendation", WWW'21):
  ``W = (S^T S + lambda I)^-1 S^T T`` where each row of ``S`` is a decayed window of the items
  before an interaction and the row of ``T`` is that interaction's item.
- :func:`entity_similarity`: items sharing knowledge-graph entities, each shared entity weighted
  ``1 / log2(1 + degree)``; :func:`text_similarity`: cosine of item text embeddings, ``k``
  nearest per item. Both let the teacher see what interactions alone cannot.

An :class:`ItemItem` keeps ``W`` as a sparse matrix with at most ``k`` targets per source item
(the strongest weights), which is what training, serving and explanations read: the score of
item ``i`` is a sum of per-history-item contributions ``x_u[j] W[j, i]``, exact and additive.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.data.history import History, Prefix
from kgrec.errors import KgrecError

MAX_DENSE_ITEMS = 40_000
"""Fitting keeps dense ``[num_items, num_items]`` matrices up to this catalogue size."""
DENSE_SCORING_ITEMS = 4_096
"""Up to this catalogue size the model keeps ``W`` dense too (faster products)."""
FLOAT32_SOLVE_ITEMS = 16_384
"""EASE solves active blocks larger than this in float32: half the memory and half the time of
float64 (Amazon-Book, 24,915 items, 2 cores: 157 s instead of 302 s). ``G + lambda I`` is well
conditioned for the penalties the configs try (``lambda >= 10``): the weights agree with the
float64 solve within 1e-5 of the largest weight (checked in ``tests/nn/test_item_item.py``)."""
SPARSE_ROWS_DENSITY = 0.08
"""Input rows denser than this (non-zeros / (rows x items)) are multiplied as a dense matrix.
Measured on this project's 2-core machine, ``I = 1682``: sparse rows take 0.3x the time of
dense ones at 3% density, 0.65x at 6%, 1.5x at 15%."""


def _check_dense(num_items: int, name: str) -> None:
    if num_items > MAX_DENSE_ITEMS:
        gib = num_items**2 * 8 / 2**30
        raise KgrecError(
            f"{name} fits a dense item x item matrix: {num_items:,} items exceed the limit of "
            f"{MAX_DENSE_ITEMS:,} ({gib:.0f} GiB in float64)"
        )


def _csr(history: History, decay: float = 1.0) -> sp.csr_matrix:
    """``X [num_users, num_items]`` (float64, ``decay ** age`` per interaction) for scipy."""
    weight = (decay ** history.age.double()).numpy()
    shape = (history.num_users, history.num_items)
    return sp.csr_matrix((weight, (history.user().numpy(), history.item.numpy())), shape=shape)


def gram(history: History, decay: float = 1.0) -> Tensor:
    """``X^T X`` ``[I, I]`` (float64) of the (weighted) user-item matrix ``X``."""
    _check_dense(history.num_items, "the item Gram matrix")
    x = _csr(history, decay)
    return torch.from_numpy((x.T @ x).toarray())


def ease(history: History, l2: float) -> Tensor:
    """EASE^R weights ``[I, I]`` (zero diagonal) for the L2 penalty ``l2 > 0``.

    Solved in float64, or float32 above :data:`FLOAT32_SOLVE_ITEMS` active items.
    """
    if l2 <= 0:
        raise KgrecError(f"EASE needs a positive l2 penalty, got {l2}")
    g = gram(history)
    # An item nobody interacted with has a zero row and column in G, so its block of
    # (G + l2 I)^-1 is 1 / l2 on the diagonal and its weights are exactly zero: solving for the
    # active items alone gives the same matrix, in (active / I)^3 of the time.
    active = g.diagonal().nonzero().squeeze(1)
    everyone = active.numel() == g.size(0)
    if not everyone:
        g = g[active][:, active]
    if g.size(0) > FLOAT32_SOLVE_ITEMS:
        g = g.float()
    g.diagonal().add_(l2)
    p = torch.cholesky_inverse(torch.linalg.cholesky(g))
    p /= -p.diagonal().unsqueeze(0)
    p.fill_diagonal_(0.0)
    if everyone:
        return p.float()
    w = torch.zeros(history.num_items, history.num_items)
    w[active.unsqueeze(1), active] = p.float()
    return w


def itemknn(history: History, k: int, shrink: float, g: Tensor | None = None) -> Tensor:
    """Cosine ``S[j, i] = |U_j n U_i| / (sqrt(|U_j| |U_i|) + shrink)``, top-``k`` per target.

    ``g`` is ``gram(history)`` when the caller already has it (a grid over ``k`` and
    ``shrink`` computes it once); it is not modified.
    """
    g = (gram(history) if g is None else g).float()
    norm = g.diagonal().sqrt()
    s = g / (norm.unsqueeze(1) * norm.unsqueeze(0) + shrink).clamp(min=1e-12)
    s.fill_diagonal_(0.0)
    if k < s.size(0):
        # S is symmetric, so the k most similar sources j of each target i (column i) are the
        # top k of row i: a row-wise top-k over contiguous memory, then transposed back
        values, top = s.topk(k, dim=1)
        s = torch.zeros_like(s).scatter_(1, top, values).t().contiguous()
    return s


def rp3beta(history: History, alpha: float, beta: float) -> Tensor:
    """RP3beta ``W[j, i] = sum_u P(u|j)^alpha P(i|u)^alpha / pop(i)^beta`` (zero diagonal)."""
    _check_dense(history.num_items, "RP3beta")
    x = _csr(history)
    pop = np.maximum(np.asarray(x.sum(0)).ravel(), 1.0)
    by_user = np.maximum(np.asarray(x.sum(1)).ravel(), 1.0)
    p_ui = sp.diags(1.0 / by_user) @ x
    p_iu = (x @ sp.diags(1.0 / pop)).T.tocsr()
    p_ui.data **= alpha
    p_iu.data **= alpha
    w = torch.from_numpy((p_iu @ p_ui).toarray() / pop**beta)
    w.fill_diagonal_(0.0)
    return w.float()


def transition(history: History, l2: float, window: int = 30, decay: float = 0.8) -> Tensor:
    """Item-to-next-item weights ``[I, I]`` (SLIT's closed form, see the module docstring).

    ``S[p, j] = sum decay ** (p - q - 1)`` over the ``window`` interactions ``q`` before ``p``
    with item ``j``; ``T[p, i] = 1`` for ``p``'s item. Untimed histories give no pairs (zeros).
    """
    if l2 <= 0:
        raise KgrecError(f"the transition model needs a positive l2 penalty, got {l2}")
    _check_dense(history.num_items, "the transition model")
    n, num_items = history.num_interactions, history.num_items
    row, item, weight, target = history.transitions(window, decay)
    s = sp.csr_matrix((weight.double().numpy(), (row.numpy(), item.numpy())), shape=(n, num_items))
    t = sp.csr_matrix((np.ones(n), (np.arange(n), target.numpy())), shape=(n, num_items))
    st = s.T.tocsr()
    sts = torch.from_numpy((st @ s).toarray())
    stt = torch.from_numpy((st @ t).toarray())
    sts.diagonal().add_(l2)
    return torch.cholesky_solve(stt, torch.linalg.cholesky(sts)).float()


def entity_similarity(
    item_entity: Tensor, num_items: int, num_entities: int, min_degree: int = 2
) -> Tensor:
    """``W[j, i] = sum_e 1 / log2(1 + deg(e))`` over entities ``e`` shared by items ``j, i``.

    Args:
        item_entity: ``(item, entity)`` pairs ``[2, E]`` in one entity index space.
        num_items, num_entities: Sizes.
        min_degree: Entities linked to fewer items are ignored (they link nothing).
    """
    _check_dense(num_items, "the entity similarity")
    item, entity = item_entity.long()
    deg = torch.bincount(entity, minlength=num_entities).double()
    keep = deg[entity] >= min_degree
    item, entity = item[keep], entity[keep]
    weight = deg[entity].add(1).log2().reciprocal().sqrt()  # sqrt on both sides of the product
    a = sp.csr_matrix(
        (weight.numpy(), (item.numpy(), entity.numpy())), shape=(num_items, num_entities)
    )
    w = torch.from_numpy((a @ a.T).toarray())
    w.fill_diagonal_(0.0)
    return w.float()


def text_similarity(text: Tensor, k: int = 50, batch_size: int = 2048) -> Tensor:
    """Cosine of item text embeddings ``text [I, d]``, the ``k`` nearest sources per target."""
    _check_dense(text.size(0), "the text similarity")
    t = torch.nn.functional.normalize(text.float(), dim=-1)
    num_items = t.size(0)
    out = torch.zeros(num_items, num_items)
    k = min(k, num_items - 1)
    for start in range(0, num_items, batch_size):
        sim = t[start : start + batch_size] @ t.t()  # [b, I]: targets x sources
        sim[torch.arange(sim.size(0)), torch.arange(start, start + sim.size(0))] = -1.0
        top = sim.topk(k, dim=1)
        out[top.indices, torch.arange(start, start + sim.size(0)).unsqueeze(1)] = top.values.clamp(
            min=0.0
        )
    return out


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ItemItem:
    """A fitted item-item model: sparse ``W`` and the recency decay of its input rows.

    Attributes:
        weight: Sparse CSR ``[I, I]``, row ``j`` = the targets that history item ``j`` scores.
        decay: Input rows are ``decay ** age`` weighted (``1.0``: binary).
    """

    weight: Tensor
    decay: float
    dense: Tensor | None = field(default=None, repr=False, compare=False)
    """``weight`` as a dense matrix for small catalogues (scoring speed), else ``None``."""
    csr: sp.csr_matrix | None = field(default=None, repr=False, compare=False)
    """``weight`` as a scipy CSR matrix for large catalogues, else ``None``. Sparse rows times
    sparse ``W`` in scipy: a validation pass of an RP3beta member on Amazon-Book (24,915 items,
    1,000 weights a row) takes 9.8 s on this project's 2-core machine against 15.6 s with
    torch's COO x COO (``benchmarks/teacher_scoring.py``; torch's CSR x CSR leaks memory on
    every call on CPU, pytorch#109445)."""

    def __post_init__(self) -> None:
        if self.dense is None and self.num_items <= DENSE_SCORING_ITEMS:
            object.__setattr__(self, "dense", self.weight.to_dense())
        elif self.dense is None and self.csr is None:
            shape = (self.num_items, self.num_items)
            parts = (
                self.weight.values().numpy(),
                self.weight.col_indices().numpy(),
                self.weight.crow_indices().numpy(),
            )
            object.__setattr__(self, "csr", sp.csr_matrix(parts, shape=shape))

    def with_decay(self, decay: float) -> ItemItem:
        """The same weights with another input decay (no copy)."""
        return ItemItem(self.weight, float(decay), self.dense, self.csr)

    @classmethod
    def from_dense(cls, weight: Tensor, decay: float, k: int | None = None) -> ItemItem:
        """Keep at most ``k`` largest weights per source row (``None``: every non-zero)."""
        weight = weight.float()
        if k is not None and k < weight.size(1):
            top = weight.topk(k, dim=1)
            sparse = torch.zeros_like(weight).scatter_(1, top.indices, top.values)
            weight = sparse
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return cls(weight.to_sparse_csr(), float(decay))

    @property
    def num_items(self) -> int:
        return int(self.weight.size(0))

    def score(self, prefix: Prefix) -> Tensor:
        """Scores ``[B, I]`` of the prefix rows: ``X_decay @ W``, ``X_decay`` sparse and ``W``
        dense (small catalogues) or sparse. A sparse ``X`` costs ``nnz(X) * I`` against
        ``B * I * I`` for a dense one (see :data:`SPARSE_ROWS_DENSITY`)."""
        if self.dense is not None and prefix.item.numel() > SPARSE_ROWS_DENSITY * (
            prefix.num_rows * self.num_items
        ):
            return prefix.dense(self.num_items, self.decay) @ self.dense
        weight = (
            self.decay ** prefix.age.float()
            if self.decay != 1.0
            else torch.ones(prefix.age.numel())
        )
        size = (prefix.num_rows, self.num_items)
        if self.dense is not None:
            x = torch.sparse_coo_tensor(
                torch.stack([prefix.row, prefix.item]), weight, size, check_invariants=False
            ).coalesce()
            return torch.sparse.mm(x, self.dense)
        assert self.csr is not None
        rows = sp.csr_matrix((weight.numpy(), (prefix.row.numpy(), prefix.item.numpy())), size)
        return torch.from_numpy((rows @ self.csr).toarray())

    def state(self) -> dict[str, Tensor]:
        """Plain tensors for a checkpoint (CSR parts)."""
        return {
            "crow": self.weight.crow_indices(),
            "col": self.weight.col_indices(),
            "value": self.weight.values(),
            "size": torch.tensor(self.num_items),
            "decay": torch.tensor(self.decay),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Tensor]) -> ItemItem:
        n = int(state["size"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            weight = torch.sparse_csr_tensor(state["crow"], state["col"], state["value"], (n, n))
        return cls(weight, float(state["decay"]))

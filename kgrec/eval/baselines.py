"""Collaborative-filtering baselines with the evaluator's ``score_fn`` interface.

Every baseline is fitted on the ``train`` split only (LightGCN uses ``val`` for early
stopping) and exposes ``score(users [B]) -> [B, num_items]``, so it runs through
:func:`kgrec.eval.metrics.evaluate_ranking` exactly like the GNN.

* :class:`Random` - uniform scores (the floor).
* :class:`MostPopular` - training-interaction counts, the same list for everyone.
* :class:`ItemKNN` - item-based k-nearest-neighbour CF with cosine similarity (Sarwar et
  al., "Item-based collaborative filtering recommendation algorithms", WWW'01), with a
  shrink term in the denominator.
* :class:`EASE` - closed-form shallow autoencoder (Steck, "Embarrassingly Shallow
  Autoencoders for Sparse Data", WWW'19).
* :class:`LightGCN` - PyG's :class:`torch_geometric.nn.models.LightGCN` (He et al.,
  "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
  SIGIR'20) trained with BPR, early-stopped on validation NDCG@20.

:func:`fit_baseline` builds any of them by name.
"""

from __future__ import annotations

import copy
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from kgrec.data.hetero import GraphArtifact
from kgrec.errors import KgrecError
from kgrec.eval.metrics import UserItemIndex, evaluate_ranking

MAX_DENSE_ITEMS = 20_000
"""Item-item baselines keep a dense ``[num_items, num_items]`` matrix up to this size."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Baseline(ABC):
    """A fitted recommender: ``score(users [B]) -> [B, num_items]`` (higher is better)."""

    name: str = "baseline"

    def __init__(self, artifact: GraphArtifact, device: str | torch.device = "cpu") -> None:
        self.num_users = artifact.num_nodes["user"]
        self.num_items = artifact.num_nodes["item"]
        self.device = resolve_device(device)
        self.train_edges = artifact.split_edge_index["train"].long()

    @abstractmethod
    def score(self, users: Tensor) -> Tensor:
        """Scores ``[B, num_items]`` for ``users [B]`` (on :attr:`device`)."""

    def __call__(self, users: Tensor) -> Tensor:
        return self.score(users)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_users={self.num_users}, num_items={self.num_items})"


class Random(Baseline):
    """Uniform random scores; reproducible for a given seed and order of calls."""

    name = "random"

    def __init__(
        self, artifact: GraphArtifact, seed: int = 0, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(artifact, device)
        self.generator = torch.Generator().manual_seed(seed)

    def score(self, users: Tensor) -> Tensor:
        out = torch.rand(users.numel(), self.num_items, generator=self.generator)
        return out.to(self.device)


class MostPopular(Baseline):
    """Number of training interactions of each item, identical for every user."""

    name = "popular"

    def __init__(self, artifact: GraphArtifact, device: str | torch.device = "cpu") -> None:
        super().__init__(artifact, device)
        counts = torch.bincount(self.train_edges[1], minlength=self.num_items)
        self.counts = counts.to(self.device, torch.float32)
        """Training interactions per item ``[num_items]``."""

    def score(self, users: Tensor) -> Tensor:
        return self.counts.unsqueeze(0).expand(users.numel(), -1)


def _check_dense(num_items: int, max_items: int, name: str) -> None:
    if num_items > max_items:
        raise KgrecError(
            f"{name} keeps a dense item x item matrix: {num_items} items exceed the limit of "
            f"{max_items} (pass max_items=... if the memory, {num_items**2 * 4 / 2**30:.1f} GiB "
            "in float32, is available)"
        )


def item_gram(
    history: UserItemIndex, num_items: int, device: torch.device, chunk: int = 4096
) -> Tensor:
    """``X^T X`` ``[num_items, num_items]`` of the binary user-item matrix ``X``, by user chunks."""
    gram = torch.zeros(num_items, num_items, device=device)
    for start in range(0, history.num_users, chunk):
        users = torch.arange(start, min(start + chunk, history.num_users), device=device)
        rows = history.dense(users, num_items, torch.float32)
        gram += rows.t() @ rows
    return gram


class _HistoryBaseline(Baseline):
    """Scores ``X[users] @ W`` for an item-item matrix ``W [num_items, num_items]``."""

    weights: Tensor

    def __init__(self, artifact: GraphArtifact, device: str | torch.device = "cpu") -> None:
        super().__init__(artifact, device)
        self.history = UserItemIndex(self.train_edges, self.num_users, self.device)

    def score(self, users: Tensor) -> Tensor:
        rows = self.history.dense(users.to(self.device).long(), self.num_items, torch.float32)
        return rows @ self.weights


class EASE(_HistoryBaseline):
    """EASE^R: ``B = I - P diagMat(1 / diag(P))``, ``P = (X^T X + lambda I)^-1``, ``diag(B) = 0``.

    Args:
        artifact: Training interactions (binary).
        l2: The L2 penalty ``lambda`` (Steck used 100-1000 on ML-20M/Netflix/MSD).
        max_items: Refuse catalogues larger than this (dense ``I x I`` inverse).
        device: Where the inverse is computed and scores are produced.
    """

    name = "ease"

    def __init__(
        self,
        artifact: GraphArtifact,
        l2: float = 500.0,
        max_items: int = MAX_DENSE_ITEMS,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(artifact, device)
        _check_dense(self.num_items, max_items, "EASE")
        if l2 <= 0:
            raise KgrecError(f"EASE needs a positive l2 penalty, got {l2}")
        gram = item_gram(self.history, self.num_items, self.device).double()
        gram.diagonal().add_(l2)
        precision = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        precision.div_(-precision.diagonal().unsqueeze(0))
        precision.fill_diagonal_(0.0)
        self.weights = precision.float()
        """``B [num_items, num_items]``: item j's weight in the score of item i is ``B[j, i]``."""


def cosine_similarity(gram: Tensor, shrink: float = 0.0) -> Tensor:
    """``S[i, j] = |U_i n U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink)`` from ``gram = X^T X``."""
    norm = gram.diagonal().sqrt()
    return gram / (norm.unsqueeze(1) * norm.unsqueeze(0) + shrink).clamp(min=1e-12)


class ItemKNN(_HistoryBaseline):
    """Item-based CF: ``score(u, i) = sum_{j in N_k(i), j in I_u} S[j, i]`` (cosine ``S``).

    Args:
        artifact: Training interactions (binary).
        k: Neighbours kept per item (its ``k`` most similar items; ``None`` keeps all).
        shrink: Added to the cosine denominator; damps similarities backed by few users.
        max_items: Refuse catalogues larger than this (dense ``I x I`` similarity).
        device: Where similarities and scores are computed.
    """

    name = "itemknn"

    def __init__(
        self,
        artifact: GraphArtifact,
        k: int | None = 100,
        shrink: float = 10.0,
        max_items: int = MAX_DENSE_ITEMS,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(artifact, device)
        _check_dense(self.num_items, max_items, "ItemKNN")
        similarity = cosine_similarity(item_gram(self.history, self.num_items, self.device), shrink)
        similarity.fill_diagonal_(0.0)
        self.similarity = similarity
        """Symmetric cosine similarity ``[num_items, num_items]`` (zero diagonal)."""
        if k is not None and k < self.num_items:
            top = similarity.topk(k, dim=0).indices  # neighbours j of each target item i
            weights = torch.zeros_like(similarity)
            weights.scatter_(0, top, similarity.gather(0, top))
            self.weights = weights
        else:
            self.weights = similarity


class LightGCN(Baseline):
    """PyG's LightGCN trained with BPR on the training split, early-stopped on val NDCG@20.

    Nodes are ``[users..., items...]``; the graph is the training interactions in both
    directions. One step samples a batch of training pairs, one uniform negative item per
    pair (re-drawn once if it is a training positive), propagates over the whole graph and
    minimises ``recommendation_loss`` (BPR + ``lambda_reg`` * L2 of the batch's embeddings).

    Args:
        artifact: The graph and its splits.
        embedding_dim: Embedding size.
        num_layers: Propagation layers (the paper uses 3).
        lr: Adam learning rate.
        lambda_reg: L2 weight of the batch's ego embeddings.
        epochs: Upper bound on epochs.
        batch_size: Training pairs per step.
        patience: Evaluations without a better val NDCG@20 before stopping.
        eval_every: Epochs between evaluations.
        seed: Seeds initialisation and sampling.
        device: ``cpu``, ``cuda`` or ``auto``.
        log: Called with one dict per evaluated epoch (e.g. ``print``), or ``None``.
    """

    name = "lightgcn"
    monitor = "ndcg@20"

    def __init__(
        self,
        artifact: GraphArtifact,
        embedding_dim: int = 64,
        num_layers: int = 3,
        lr: float = 0.005,
        lambda_reg: float = 1e-4,
        epochs: int = 200,
        batch_size: int = 2048,
        patience: int = 10,
        eval_every: int = 1,
        seed: int = 0,
        device: str | torch.device = "auto",
        log: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        from torch_geometric.nn.models import LightGCN as PygLightGCN

        super().__init__(artifact, device)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        nu, ni = self.num_users, self.num_items
        users, items = self.train_edges
        from torch_geometric.utils import to_torch_csr_tensor

        edge_index = torch.cat(
            [torch.stack([users, items + nu]), torch.stack([items + nu, users])], dim=1
        )
        # a sparse adjacency makes LGConv use one SpMM per layer (~10x faster than scatter)
        edge_index = to_torch_csr_tensor(edge_index, size=(nu + ni, nu + ni)).to(self.device)
        self.edge_index = edge_index
        self.model = PygLightGCN(nu + ni, embedding_dim, num_layers).to(self.device)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        positive_keys = torch.unique(users * ni + items)

        self.history: list[dict[str, Any]] = []
        self.best_epoch = -1
        best_value, best_state, bad = -math.inf, copy.deepcopy(self.model.state_dict()), 0
        num_pairs = users.numel()
        for epoch in range(epochs):
            self.model.train()
            perm = torch.randperm(num_pairs, generator=generator)
            total, steps = 0.0, 0
            for start in range(0, num_pairs, batch_size):
                idx = perm[start : start + batch_size]
                u, pos = users[idx], items[idx]
                neg = torch.randint(ni, (idx.numel(),), generator=generator)
                clash = torch.isin(u * ni + neg, positive_keys)
                neg[clash] = torch.randint(ni, (int(clash.sum()),), generator=generator)
                label_index = torch.stack([torch.cat([u, u]), torch.cat([pos, neg]) + nu]).to(
                    self.device
                )
                rank = self.model(edge_index, label_index)
                pos_rank, neg_rank = rank.chunk(2)
                loss = self.model.recommendation_loss(
                    pos_rank, neg_rank, node_id=label_index.unique(), lambda_reg=lambda_reg
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                steps += 1
            record: dict[str, Any] = {"epoch": epoch, "loss": total / max(steps, 1)}
            if (epoch + 1) % max(eval_every, 1) == 0 or epoch == epochs - 1:
                self._cache_embeddings()
                metrics = evaluate_ranking(self.score, artifact, "val", device=self.device)
                record["val"] = metrics.values
                value = metrics.values[self.monitor]
                if value > best_value:
                    best_value, self.best_epoch, bad = value, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    bad += 1
            self.history.append(record)
            if log is not None:
                log(record)
            if bad >= patience:
                break
        self.model.load_state_dict(best_state)
        self._cache_embeddings()

    def _cache_embeddings(self) -> None:
        self.model.eval()
        with torch.no_grad():
            emb = self.model.get_embedding(self.edge_index)
        self.user_emb = emb[: self.num_users]
        self.item_emb = emb[self.num_users :]

    def score(self, users: Tensor) -> Tensor:
        return self.user_emb[users.to(self.device).long()] @ self.item_emb.t()


BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (Random, MostPopular, ItemKNN, EASE, LightGCN)
}
"""Baselines by name (``random``, ``popular``, ``itemknn``, ``ease``, ``lightgcn``)."""


def fit_baseline(name: str, artifact: GraphArtifact, **params: Any) -> Baseline:
    """Fit the baseline called ``name`` on ``artifact``'s training split.

    ``params`` are the class's keyword arguments (e.g. ``l2=500`` for ``ease``, ``k=50`` for
    ``itemknn``, ``epochs=100, device="cuda"`` for ``lightgcn``).
    """
    try:
        cls = BASELINES[name.lower()]
    except KeyError:
        raise KgrecError(
            f"unknown baseline {name!r} (known: {', '.join(sorted(BASELINES))})"
        ) from None
    try:
        inspect.signature(cls).bind(artifact, **params)
    except TypeError as exc:
        raise KgrecError(f"baseline {name!r}: {exc}") from None
    return cls(artifact, **params)

"""The LightGCN baseline: PyG's model trained with BPR on one history, early-stopped on validation.

LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR'20) is :class:`torch_geometric.nn.models.LightGCN` over the bipartite
graph of a :class:`~kgrec.data.history.History` (nodes ``[users..., items...]``, every
interaction in both directions). One step samples ``batch_size`` interactions, one uniform
negative item each (re-drawn once when it is one of the user's items), propagates over the whole
graph and minimises ``recommendation_loss`` (BPR plus ``lambda_reg`` times the L2 norm of the
batch's ego embeddings). Propagation is :func:`propagate`: PyG's ``get_embedding`` with the
normalised adjacency built once and its symmetry used in backward (the same numbers, fewer
seconds a step: ``benchmarks/lightgcn_step.py``). Epochs run through
:func:`kgrec.train.loop.fit`, the loop kgrec's own trainer uses: with a ``validate`` callback
the best epoch by validation NDCG@20 is kept and ``patience`` evaluations without a better one
stop the run; without one the run is exactly ``epochs`` long (the refit on training +
validation for the chosen number of epochs).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.eval.metrics import ScoreFn
from kgrec.progress import Reporter
from kgrec.train.loop import MONITOR, fit_keeping_best


class _SymmetricSpMM(torch.autograd.Function):
    """``y = A x`` for a symmetric sparse ``A`` (``[N, N]``, CSR): backward is ``A g``.

    Autograd's own backward of a CSR product multiplies by ``A^T``, which it first builds by
    transposing the CSR tensor on every call: most of a LightGCN step on a large graph.
    """

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, ctx.adj @ grad


def bipartite_graph(history: History) -> Tensor:
    """``[2, 2E]``: every interaction of ``history`` in both directions, nodes ``[users, items]``
    (item ``i`` is node ``num_users + i``)."""
    users, items = history.edge_index()
    items = items + history.num_users
    return torch.cat([torch.stack([users, items]), torch.stack([items, users])], 1)


def normalized_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``D^-1/2 A D^-1/2`` of an undirected graph as CSR ``[N, N]`` (LGConv's normalisation).

    Args:
        edge_index: ``[2, E]``, every edge in both directions (so the result is symmetric).
        num_nodes: ``N``.
    """
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    index, weight = gcn_norm(edge_index, None, num_nodes, add_self_loops=False)
    size = (num_nodes, num_nodes)
    coo = torch.sparse_coo_tensor(index, weight, size, check_invariants=False).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        return coo.to_sparse_csr()


def propagate(model: Any, adj: Tensor) -> Tensor:
    """``sum_l alpha_l A^l E`` for PyG's ``LightGCN`` ``model``: its ``get_embedding`` on ``adj``.

    Args:
        model: A ``torch_geometric.nn.models.LightGCN`` (its ``embedding`` and ``alpha``).
        adj: :func:`normalized_adjacency` of the graph, ``[N, N]``.

    Returns:
        ``[N, embedding_dim]``, differentiable in ``model.embedding.weight``.
    """
    x = model.embedding.weight
    out = x * model.alpha[0]
    for layer in range(model.num_layers):
        x = _SymmetricSpMM.apply(adj, x)
        out = out + x * model.alpha[layer + 1]
    return out


@dataclass(frozen=True)
class LightGCNScorer:
    """Fitted LightGCN embeddings: ``score(u, i) = <e_u, e_i>`` after propagation.

    Attributes:
        user_emb: ``[num_users, embedding_dim]``.
        item_emb: ``[num_items, embedding_dim]``.
        num_interactions: Size of the history it was trained on (its graph).
        best_epoch: The epoch kept (0-based; the last one of a fixed-length run).
        curve: ``(epoch, validation NDCG@20)`` after every validation, epochs 1-based (empty
            without early stopping).
    """

    user_emb: Tensor
    item_emb: Tensor
    num_interactions: int
    best_epoch: int
    curve: tuple[tuple[int, float], ...] = ()

    def score_fn(self, history: History) -> ScoreFn:
        """``users [B] -> [B, num_items]``; ``history`` must be the one it was trained on.

        LightGCN is transductive: a user's scores come from the embedding learnt on its graph,
        so scoring another history (e.g. training + validation with a model fitted on training
        alone) would silently ignore the new interactions. Refit instead.
        """
        if history.num_interactions != self.num_interactions:
            raise KgrecError(
                f"LightGCN was trained on {self.num_interactions:,} interactions and cannot "
                f"score a history of {history.num_interactions:,}: refit it on that history"
            )
        user_emb, item_emb = self.user_emb, self.item_emb
        return lambda users: user_emb[users.to(user_emb.device).long()] @ item_emb.t()


def fit_lightgcn(
    history: History,
    *,
    embedding_dim: int,
    lr: float,
    num_layers: int = 3,
    lambda_reg: float = 1e-4,
    batch_size: int = 2048,
    epochs: int = 300,
    validate: Callable[[ScoreFn], float] | None = None,
    eval_every: int = 5,
    patience: int = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    reporter: Reporter | None = None,
) -> LightGCNScorer:
    """Train LightGCN on ``history`` (see the module docstring).

    Args:
        history: The interactions (training, or training + validation for the refit).
        embedding_dim, num_layers: PyG's ``LightGCN`` arguments (the paper uses 3 layers).
        lr: Adam learning rate.
        lambda_reg: L2 weight of the batch's ego embeddings.
        batch_size: Interactions per step.
        epochs: Upper bound (with ``validate``) or exact number of epochs (without).
        validate: Validation NDCG@20 of a score function over ``history``; ``None``: no early
            stopping, the last epoch is kept.
        eval_every: Epochs between validations.
        patience: Validations without a better NDCG@20 before stopping.
        seed: Seeds initialisation and sampling.
        device: Where the model trains.
    """
    from torch_geometric.nn.models import LightGCN

    if history.num_interactions == 0:
        raise KgrecError("LightGCN needs at least one interaction to train on")
    device = torch.device(device)
    num_users, num_items = history.num_users, history.num_items
    users, items = history.edge_index()
    adj = normalized_adjacency(bipartite_graph(history), num_users + num_items).to(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = LightGCN(num_users + num_items, embedding_dim, num_layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    positive = torch.unique(users * num_items + items)

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        order = torch.randperm(users.numel(), generator=generator)
        total, steps = 0.0, 0
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size]
            u, pos = users[idx], items[idx]
            neg = torch.randint(num_items, (idx.numel(),), generator=generator)
            clash = torch.isin(u * num_items + neg, positive)
            neg[clash] = torch.randint(num_items, (int(clash.sum()),), generator=generator)
            label = torch.stack([torch.cat([u, u]), torch.cat([pos, neg]) + num_users]).to(device)
            emb = propagate(model, adj)
            pos_rank, neg_rank = (emb[label[0]] * emb[label[1]]).sum(-1).chunk(2)
            loss = model.recommendation_loss(
                pos_rank, neg_rank, node_id=label.unique(), lambda_reg=lambda_reg
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        return {"loss": total / max(steps, 1)}

    def scorer(best_epoch: int) -> LightGCNScorer:
        model.eval()
        with torch.no_grad():
            emb = propagate(model, adj)
        return LightGCNScorer(
            emb[:num_users], emb[num_users:], history.num_interactions, best_epoch
        )

    result, curve = fit_keeping_best(
        model,
        train_epoch,
        epochs,
        validate=(
            (lambda: {MONITOR: validate(scorer(-1).score_fn(history))})
            if validate is not None
            else None
        ),
        eval_every=eval_every,
        patience=patience,
        reporter=reporter,
        label=f"LightGCN d={embedding_dim} lr={lr:g}",
    )
    return replace(scorer(result.best_epoch), curve=curve)

"""Full-ranking top-K metrics: every user is ranked against the whole item catalogue.

The protocol is the "all-ranking" one of NGCF/KGAT/LightGCN (no sampled candidates):

* ``score_fn(users [B]) -> scores [B, num_items]`` scores every item for a batch of users.
* Items the user met in earlier splits are masked with ``-inf`` before ranking: the
  training positives for ``split="val"``, the training and validation positives for
  ``split="test"``. A masked item is never ranked and never counted as relevant (a held-out
  pair that also appears in a masked split is dropped from the relevant set).
* The evaluated users are those with at least one relevant item in the target split
  (optionally restricted to a given subset, e.g. cold users). Metrics are computed per user
  and then averaged over users (macro average).

Definitions (``rel``: the user's relevant items, ``hits@K``: relevant items in the top K,
ranks 1-based); they match :mod:`torch_geometric.metrics` (``LinkPred*``):

* ``recall@K = hits@K / |rel|`` (not ``/ min(|rel|, K)``) - ``LinkPredRecall``.
* ``precision@K = hits@K / K`` - ``LinkPredPrecision``.
* ``hit@K = 1[hits@K > 0]`` - ``LinkPredHitRatio``.
* ``ndcg@K``: binary relevance, ``DCG = sum_{hits} 1 / log2(rank + 1)``, ideal DCG over
  ``min(|rel|, K)`` relevant items at the top - ``LinkPredNDCG``.
* ``mrr@K``: reciprocal rank of the first relevant item if it is in the top K, else 0 -
  ``LinkPredMRR``.
* ``mrr``: reciprocal rank of the first relevant item over the *full* ranking (no cut-off).
  Ties with non-relevant items count half, as in OGB: ``rank = 1 + #higher + #tied / 2``.
  Without ties this equals ``LinkPredMRR(k=num_items)``.
* ``coverage@K``: fraction of the catalogue in the top K of at least one evaluated user -
  ``LinkPredCoverage`` (masked ``-inf`` slots, possible when a user has fewer than K
  unmasked items, are not counted).

Ties inside the top K are broken by :func:`torch.topk`. Memory is bounded by the batch:
one ``[batch_size, num_items]`` score matrix (and a boolean relevance matrix of the same
shape) at a time; only the top ``max(ks)`` indices are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.data.hetero import GraphArtifact
from kgrec.errors import KgrecError
from kgrec.nn.scoring import ScoreFn as ScoreFn  # re-exported for the evaluators

DEFAULT_KS: tuple[int, ...] = (10, 20, 50)
MASKED_SPLITS: dict[str, tuple[str, ...]] = {"val": ("train",), "test": ("train", "val")}
"""Per target split, the splits whose positives are masked before ranking."""


@dataclass(frozen=True)
class RankingMetrics:
    """Full-ranking metrics of one split.

    Attributes:
        values: Averages over the evaluated users: ``recall@K``, ``precision@K``, ``hit@K``,
            ``ndcg@K``, ``mrr@K``, ``coverage@K`` per cut-off, and ``mrr`` (full ranking).
        num_users: Users evaluated (those with at least one relevant item).
        ks: The cut-offs.
        per_user: With ``keep_per_user=True``: ``user [U]``, ``num_relevant [U]``,
            ``rank [U]`` (full-ranking rank of the first relevant item) and one ``[U]`` tensor
            per per-user metric (every key of ``values`` but ``coverage@K``), for slicing
            (e.g. by user activity). ``None`` otherwise.
    """

    values: dict[str, float]
    num_users: int
    ks: tuple[int, ...]
    per_user: dict[str, Tensor] | None = None


class UserItemIndex:
    """The items of each user in an edge set ``[2, E]`` (user row, item row), CSR layout."""

    def __init__(
        self, edge_index: Tensor, num_users: int, device: torch.device | str = "cpu"
    ) -> None:
        users, items = edge_index.long()
        order = torch.argsort(users, stable=True)
        ptr = torch.zeros(num_users + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(torch.bincount(users, minlength=num_users), 0)
        self.num_users = num_users
        self.ptr = ptr.to(device)
        self.items = items[order].to(device)

    def degree(self, users: Tensor) -> Tensor:
        """Items per user ``[B]``."""
        return self.ptr[users + 1] - self.ptr[users]

    def gather(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """Pairs ``(row [P], item [P])``: ``item`` belongs to ``users[row]``."""
        start = self.ptr[users]
        count = self.ptr[users + 1] - start
        row = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), count)
        first = torch.cumsum(count, 0) - count
        pos = torch.arange(row.numel(), device=users.device) - first[row] + start[row]
        return row, self.items[pos]

    def dense(self, users: Tensor, num_items: int, dtype: torch.dtype = torch.bool) -> Tensor:
        """Indicator rows ``[B, num_items]`` of the users' items."""
        out = torch.zeros(users.numel(), num_items, dtype=dtype, device=users.device)
        row, item = self.gather(users)
        out[row, item] = 1
        return out


def pair_keys(edge_index: Tensor, num_items: int) -> Tensor:
    """One integer per ``(user, item)`` pair of ``edge_index [2, E]``: ``user * I + item``."""
    return edge_index[0].long() * num_items + edge_index[1].long()


def evaluate_edges(
    score_fn: ScoreFn,
    target: Tensor,
    num_users: int,
    num_items: int,
    *,
    exclude: Tensor | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    users: Tensor | None = None,
    keep_per_user: bool = False,
) -> RankingMetrics:
    """Full-ranking metrics of ``score_fn`` on held-out pairs (see the module docstring).

    Args:
        score_fn: ``users [B] -> scores [B, num_items]`` (``users`` on ``device``).
        target: Relevant ``(user, item)`` pairs ``[2, E]``.
        num_users: Users in the index space.
        num_items: Items in the catalogue.
        exclude: Pairs ``[2, E']`` masked with ``-inf`` (earlier splits), or ``None``.
        ks: Cut-offs.
        batch_size: Users scored at once.
        device: Where scores are masked and ranked.
        users: Evaluate only these users (those among them with a relevant item).
        keep_per_user: Also return the per-user values.
    """
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] <= 0:
        raise KgrecError(f"eval.ks: cut-offs must be positive integers, got {ks}")
    if batch_size <= 0:
        raise KgrecError(f"eval.batch_size must be positive, got {batch_size}")
    dev = torch.device(device)
    target = torch.unique(target.long().cpu(), dim=1)
    exclude = exclude.long().cpu() if exclude is not None else torch.empty(2, 0, dtype=torch.long)
    if exclude.numel() and target.numel():
        target = target[:, ~torch.isin(pair_keys(target, num_items), pair_keys(exclude, num_items))]
    eval_users = torch.unique(target[0])
    if users is not None:
        eval_users = eval_users[torch.isin(eval_users, users.long().cpu())]
    relevant = UserItemIndex(target, num_users, dev)
    masked = UserItemIndex(exclude, num_users, dev)

    max_k = min(ks[-1], num_items)
    discount = 1.0 / torch.arange(2, max_k + 2, dtype=torch.float64, device=dev).log2()
    idcg = torch.cat([discount.new_zeros(1), torch.cumsum(discount, 0)])
    reciprocal = 1.0 / torch.arange(1, max_k + 1, dtype=torch.float64, device=dev)
    covered = {k: torch.zeros(num_items, dtype=torch.bool, device=dev) for k in ks}
    parts: dict[str, list[Tensor]] = {}

    def keep(name: str, value: Tensor) -> None:
        parts.setdefault(name, []).append(value.detach().to("cpu", torch.float64))

    with torch.no_grad():
        for start in range(0, eval_users.numel(), batch_size):
            batch = eval_users[start : start + batch_size].to(dev)
            scores = score_fn(batch).to(device=dev, dtype=torch.float32, copy=True)
            if scores.shape != (batch.numel(), num_items):
                raise KgrecError(
                    f"score_fn returned shape {tuple(scores.shape)}, "
                    f"expected ({batch.numel()}, {num_items})"
                )
            row, item = masked.gather(batch)
            scores[row, item] = float("-inf")
            rel = relevant.dense(batch, num_items)
            num_rel = relevant.degree(batch).to(torch.float64)

            top_val, top_idx = scores.topk(max_k, dim=1)
            valid = top_val > float("-inf")
            hit = rel.gather(1, top_idx) & valid
            for k in ks:
                kk = min(k, max_k)
                h = hit[:, :kk].to(torch.float64)
                hits = h.sum(1)
                keep(f"recall@{k}", hits / num_rel)
                keep(f"precision@{k}", hits / k)
                keep(f"hit@{k}", (hits > 0).to(torch.float64))
                keep(f"ndcg@{k}", (h * discount[:kk]).sum(1) / idcg[num_rel.long().clamp(max=kk)])
                keep(f"mrr@{k}", (h * reciprocal[:kk]).amax(1))
                covered[k][top_idx[:, :kk][valid[:, :kk]]] = True

            best = scores.masked_fill(~rel, float("-inf")).amax(1, keepdim=True)
            higher = (scores > best).sum(1)
            tied = ((scores == best) & ~rel).sum(1)
            rank = 1.0 + higher.to(torch.float64) + tied.to(torch.float64) / 2
            keep("mrr", 1.0 / rank)
            keep("rank", rank)
            keep("num_relevant", num_rel)

    per_user = {name: torch.cat(chunks) for name, chunks in parts.items()}
    n = int(eval_users.numel())
    values: dict[str, float] = {}
    for k in ks:
        for name in ("recall", "ndcg", "hit", "precision", "mrr"):
            key = f"{name}@{k}"
            values[key] = float(per_user[key].mean()) if n else 0.0
        values[f"coverage@{k}"] = float(covered[k].to(torch.float64).mean()) if n else 0.0
    values["mrr"] = float(per_user["mrr"].mean()) if n else 0.0
    kept = None
    if keep_per_user:
        kept = {"user": eval_users.clone()}
        kept.update(per_user if n else {})
    return RankingMetrics(values=values, num_users=n, ks=ks, per_user=kept)


def evaluate_ranking(
    score_fn: ScoreFn,
    artifact: GraphArtifact,
    split: str = "val",
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    users: Tensor | None = None,
    keep_per_user: bool = False,
) -> RankingMetrics:
    """Full-ranking metrics of ``score_fn`` on ``artifact``'s ``val`` or ``test`` split.

    Training positives (and, for ``test``, validation positives) are masked. ``users``
    restricts the evaluation to a subset (e.g. cold users); see :func:`evaluate_edges`.
    """
    if split not in MASKED_SPLITS:
        raise KgrecError(f"cannot evaluate split {split!r}: expected one of val, test")
    edges = artifact.split_edge_index
    exclude = torch.cat([edges[s].long() for s in MASKED_SPLITS[split]], dim=1)
    return evaluate_edges(
        score_fn,
        edges[split],
        artifact.num_nodes["user"],
        artifact.num_nodes["item"],
        exclude=exclude,
        ks=ks,
        batch_size=batch_size,
        device=device,
        users=users,
        keep_per_user=keep_per_user,
    )

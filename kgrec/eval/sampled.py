"""OGB-style sampled-negative metrics: MRR and Hits@K of each held-out pair.

Each held-out ``(user, item)`` pair of the target split is ranked against ``num_negatives``
items drawn uniformly (with replacement) among the items the user never interacted with in
any split. The negatives come from a generator seeded with ``seed`` alone, so every model
evaluated with the same seed sees the same candidates. Ranks follow OGB's
``ogbl-citation2`` convention (ties count half: ``rank = 1 + #higher + #tied / 2``) and the
figures are computed by :class:`ogb.linkproppred.Evaluator` itself (Hu et al., "Open Graph
Benchmark", NeurIPS'20).

These numbers are *not* comparable with full-ranking ones (:mod:`kgrec.eval.metrics`):
sampled metrics are inflated and can even order models differently (Krichene & Rendle,
"On Sampled Metrics for Item Recommendation", KDD'20). They are reported for comparison
with papers that use this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ogb.linkproppred import Evaluator
from torch import Tensor

from kgrec.data.hetero import GraphArtifact
from kgrec.errors import KgrecError
from kgrec.eval.metrics import pair_keys
from kgrec.nn.scoring import ScoreFn

OGB_EVALUATOR = "ogbl-citation2"
"""The OGB dataset whose evaluator takes ``y_pred_pos [N]`` and ``y_pred_neg [N, K]``."""
OGB_HITS = (1, 3, 10)
"""The cut-offs the OGB MRR evaluator reports."""
_MAX_REJECTION_ROUNDS = 32


def sample_negatives(
    users: Tensor,
    known: Tensor,
    num_items: int,
    num_negatives: int,
    generator: torch.Generator,
) -> Tensor:
    """``[N, num_negatives]`` items that ``users [N]`` never met in ``known [2, E]``.

    Uniform with replacement among each user's unseen items (rejection sampling, then an
    exact draw for rows still rejected after a few rounds). Runs on the CPU.
    """
    users = users.long().cpu()
    known_keys = torch.unique(pair_keys(known.cpu(), num_items))
    out = torch.randint(num_items, (users.numel(), num_negatives), generator=generator)

    def seen(candidates: Tensor, rows: Tensor) -> Tensor:
        keys = users[rows].unsqueeze(1) * num_items + candidates
        return torch.isin(keys, known_keys)

    rows = torch.arange(users.numel())
    bad = seen(out, rows)
    for _ in range(_MAX_REJECTION_ROUNDS):
        if not bad.any():
            return out
        redraw = torch.randint(num_items, (int(bad.sum()),), generator=generator)
        out[bad] = redraw
        bad[bad.clone()] = seen(out, rows)[bad]
    for r in torch.nonzero(bad.any(1)).flatten().tolist():
        user = int(users[r])
        allowed = torch.ones(num_items)
        mine = known_keys[(known_keys >= user * num_items) & (known_keys < (user + 1) * num_items)]
        allowed[mine - user * num_items] = 0
        if allowed.sum() == 0:
            raise KgrecError(f"user {user} has interacted with every item: no negatives to sample")
        draw = torch.multinomial(allowed, num_negatives, replacement=True, generator=generator)
        out[r, bad[r]] = draw[bad[r]]
    return out


def ogb_metrics(pos: Tensor, neg: Tensor) -> dict[str, float]:
    """``ogb_mrr`` and ``ogb_hits@{1,3,10}`` from OGB's evaluator.

    Args:
        pos: Scores of the held-out pairs ``[N]``.
        neg: Scores of their negatives ``[N, num_negatives]``.
    """
    result = Evaluator(name=OGB_EVALUATOR).eval(
        {"y_pred_pos": pos.float().cpu(), "y_pred_neg": neg.float().cpu()}
    )
    out = {"ogb_mrr": float(result["mrr_list"].mean())}
    out.update({f"ogb_hits@{k}": float(result[f"hits@{k}_list"].mean()) for k in OGB_HITS})
    return out


def sampled_metrics(pos: Tensor, neg: Tensor, ks: Sequence[int] = OGB_HITS) -> dict[str, float]:
    """The same figures computed here (any cut-offs): ``ogb_mrr``, ``ogb_hits@K``."""
    pos = pos.float().unsqueeze(1)
    neg = neg.float()
    rank = 1.0 + (neg > pos).sum(1) + 0.5 * (neg == pos).sum(1)
    out = {"ogb_mrr": float((1.0 / rank).mean())}
    out.update({f"ogb_hits@{k}": float((rank <= k).float().mean()) for k in ks})
    return out


def score_pairs(
    score_fn: ScoreFn,
    users: Tensor,
    items: Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Scores ``[N, C]`` of ``items [N, C]`` for ``users [N]`` via full-catalogue ``score_fn``."""
    dev = torch.device(device)
    chunks = []
    with torch.no_grad():
        for start in range(0, users.numel(), batch_size):
            batch = users[start : start + batch_size].to(dev)
            unique, inverse = torch.unique(batch, return_inverse=True)
            scores = score_fn(unique).to(dev, torch.float32)
            chosen = items[start : start + batch_size].to(dev)
            chunks.append(scores[inverse.unsqueeze(1), chosen].cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, items.size(1))


def evaluate_sampled(
    score_fn: ScoreFn,
    artifact: GraphArtifact,
    split: str = "test",
    *,
    num_negatives: int = 100,
    seed: int = 0,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """OGB MRR and Hits@{1,3,10} of ``split``'s pairs against sampled negatives.

    Returns ``{"ogb_mrr", "ogb_hits@1", "ogb_hits@3", "ogb_hits@10", "num_pairs"}``.
    """
    if split not in artifact.split_edge_index:
        raise KgrecError(f"unknown split {split!r}")
    if num_negatives <= 0:
        raise KgrecError(f"eval.num_negatives must be positive, got {num_negatives}")
    held_out = artifact.split_edge_index[split].long()
    known = torch.cat([e.long() for e in artifact.split_edge_index.values()], dim=1)
    generator = torch.Generator().manual_seed(seed)
    negatives = sample_negatives(
        held_out[0], known, artifact.num_nodes["item"], num_negatives, generator
    )
    candidates = torch.cat([held_out[1].unsqueeze(1), negatives], dim=1)
    scores = score_pairs(score_fn, held_out[0], candidates, batch_size=batch_size, device=device)
    if not held_out.size(1):
        out = {"ogb_mrr": 0.0, **{f"ogb_hits@{k}": 0.0 for k in OGB_HITS}}
    else:
        out = ogb_metrics(scores[:, 0], scores[:, 1:])
    out["num_pairs"] = float(held_out.size(1))
    return out

"""Benchmark a teacher member's validation pass on a large catalogue: scipy against torch.

A teacher member (:class:`kgrec.nn.item_item.ItemItem`) above ``DENSE_SCORING_ITEMS`` items
keeps ``W`` sparse (``teacher.top_k`` weights a row) and scores a batch of users as sparse
rows times sparse ``W``. The teacher is validated once per grid point and per weight tried, and
scores every training batch for distillation, so this product sets the pace of ``kgrec train``
on catalogues such as Amazon-Book (24,915 items). This script fits RP3beta on an artifact's
training split, keeps ``--top-k`` weights a row, and times a whole validation pass
(:func:`kgrec.eval.metrics.evaluate_ranking` on ``val``: scoring, masking, top-k) with

- ``scipy``: :meth:`ItemItem.score` as shipped (scipy CSR x CSR);
- ``torch-coo``: the previous implementation, torch's COO x COO ``torch.sparse.mm``;

alternating the two ``--repeats`` times, and checks that both give the same metrics.

Usage (an artifact built by ``kgrec build-graph`` or ``benchmarks/quality.py``)::

    python benchmarks/teacher_scoring.py --artifacts artifacts/kgat-given --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History, Prefix
from kgrec.eval.metrics import evaluate_ranking
from kgrec.nn import item_item
from kgrec.nn.item_item import ItemItem


def torch_coo_score(model: ItemItem, coo: torch.Tensor, prefix: Prefix) -> torch.Tensor:
    """The previous sparse path: ``torch.sparse.mm`` of COO rows and COO ``W``."""
    weight = model.decay ** prefix.age.float()
    x = torch.sparse_coo_tensor(
        torch.stack([prefix.row, prefix.item]),
        weight,
        (prefix.num_rows, model.num_items),
        check_invariants=False,
    ).coalesce()
    return torch.sparse.mm(x, coo).to_dense()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="artifact folder")
    parser.add_argument("--alpha", type=float, default=0.5, help="RP3beta alpha")
    parser.add_argument("--beta", type=float, default=0.5, help="RP3beta beta")
    parser.add_argument("--top-k", type=int, default=1000, help="weights kept a row")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024, help="users a batch")
    args = parser.parse_args()

    artifact = GraphArtifact.load(args.artifacts)
    history = History.from_artifact(artifact, ("train",))
    if history.num_items <= item_item.DENSE_SCORING_ITEMS:
        raise SystemExit(
            f"{args.artifacts}: {history.num_items} items keep W dense (sparse path from "
            f"{item_item.DENSE_SCORING_ITEMS + 1})"
        )
    start = time.perf_counter()
    model = ItemItem.from_dense(item_item.rp3beta(history, args.alpha, args.beta), 1.0, args.top_k)
    fit = time.perf_counter() - start
    coo = model.weight.to_sparse_coo().coalesce()
    print(
        f"{args.artifacts}: {history.num_users:,} users, {history.num_items:,} items, "
        f"{history.num_interactions:,} training rows; RP3beta fit + top-{args.top_k} {fit:.1f} s, "
        f"W nnz {model.weight.values().numel():,}"
    )
    paths = {
        "scipy": lambda users: model.score(history.select(users)),
        "torch-coo": lambda users: torch_coo_score(model, coo, history.select(users)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    values: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for name, score_fn in paths.items():
            start = time.perf_counter()
            result = evaluate_ranking(
                score_fn, artifact, "val", ks=(20,), batch_size=args.batch_size
            )
            seconds[name].append(time.perf_counter() - start)
            values[name] = result.values
    for name, times in seconds.items():
        print(
            f"{name:>10}: validation pass median {statistics.median(times):.1f} s "
            f"(runs {', '.join(f'{t:.1f}' for t in times)}); NDCG@20 {values[name]['ndcg@20']:.4f}"
        )
    ratio = statistics.median(seconds["torch-coo"]) / statistics.median(seconds["scipy"])
    print(f"torch-coo / scipy: {ratio:.2f}x")
    same = all(abs(values["scipy"][k] - values["torch-coo"][k]) < 1e-6 for k in values["scipy"])
    print("same metrics:", same)


if __name__ == "__main__":
    main()

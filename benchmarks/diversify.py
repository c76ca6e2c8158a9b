"""Benchmark ``recommend --diversify``: intra-list diversity against NDCG@20 for a few λ.

For every test user of an artifact (its ``test`` split; training and validation items
masked, as in ``kgrec evaluate``), the scorer's best :data:`~kgrec.serve.diversify.POOL`
items are re-ranked by MMR (:func:`kgrec.serve.diversify.mmr`, the code behind
``--diversify``) at each λ, and the top 20 is scored:

- NDCG@20 and Recall@20 against the user's test items;
- ILD@20 (intra-list diversity: mean ``1 - similarity`` over the list's pairs) with the KG
  attribute similarity (shared genres, people, ...), and with the model's embedding
  similarity when the scorer has item embeddings;
- distinct genres in the top 20, and coverage@20 (share of the catalogue in some list).

Scorer: a kgrec checkpoint (``--checkpoint``: the served hybrid, ``teacher + alpha * z(GNN)``
over each user's training + validation history, as ``recommend`` scores), or ``--model ease``
(any baseline of :mod:`kgrec.eval.baselines` with its default parameters, refitted on training
+ validation, when no trained model is at hand). The embedding similarity uses the GNN's output
item embeddings (none when the checkpoint serves the item-item teacher alone).

Usage::

    python benchmarks/diversify.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k \\
        --checkpoint artifacts/ml-100k/model/model.pt
    python benchmarks/diversify.py -c configs/ml-100k.yaml --artifacts artifacts/ml-100k \\
        --model ease
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.build import load_artifact
from kgrec.config import load_config
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.serve.diversify import (
    POOL,
    attribute_similarity,
    embedding_similarity,
    intra_list_diversity,
    item_attributes,
    mmr,
)

K = 20


def scores_and_embeddings(
    artifact: GraphArtifact, checkpoint: Path | None, model: str, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``[num_users, num_items]`` scores over each user's training + validation history, and
    the GNN's output item embeddings (``None`` for a baseline or a teacher-only model)."""
    if checkpoint is not None:
        from kgrec.train.checkpoint import load_checkpoint, read_serving

        hybrid, meta = load_checkpoint(checkpoint)
        score_fn = hybrid.score_fn(History.from_artifact(artifact, ("train", "val")))
        items = read_serving(checkpoint).item_output if meta.kind != "teacher" else None
        embeddings = items.float().numpy() if items is not None else None
        name = f"kgrec {meta.kind} {checkpoint}"
    else:
        from kgrec.eval.baselines import fit_baseline

        score_fn = fit_baseline(model, artifact).score_fn()
        embeddings, name = None, model
    users = torch.arange(artifact.num_nodes["user"])
    scores = torch.cat([score_fn(chunk) for chunk in users.split(batch_size)])
    return scores.float().numpy(), embeddings, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--artifacts", type=Path, default=None)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--model", default="ease", help="baseline scorer without --checkpoint")
    parser.add_argument("--lambdas", default="0,0.1,0.3,0.5,0.7,0.9")
    parser.add_argument("--by", default="kg", help="MMR similarity: kg, an entity type, embedding")
    opts = parser.parse_args()

    overrides = {"artifacts": str(opts.artifacts)} if opts.artifacts else {}
    config = load_config(opts.config, overrides)
    artifact = load_artifact(config.artifacts_dir)
    scores, embeddings, name = scores_and_embeddings(artifact, opts.checkpoint, opts.model)
    split = artifact.split_edge_index
    for part in ("train", "val"):
        edges = split[part].numpy()
        scores[edges[0], edges[1]] = -np.inf
    test = split["test"].numpy()
    relevant = pd.Series(test[1]).groupby(test[0]).agg(set)
    item_ids = [str(i) for i in artifact.id_map.ids["item"]]
    kg = attribute_similarity(*item_attributes(config.artifacts_dir, item_ids))
    emb = embedding_similarity(embeddings) if embeddings is not None else None
    if opts.by == "embedding" and emb is None:
        parser.error(
            "--by embedding needs a --checkpoint with a GNN (baselines and a teacher-only "
            "model have no item embeddings)"
        )
    similarity = emb if opts.by == "embedding" and emb is not None else kg
    if opts.by not in ("kg", "embedding"):
        similarity = attribute_similarity(*item_attributes(config.artifacts_dir, item_ids, opts.by))
    triples = pd.read_parquet(config.artifacts_dir / "tables" / "triples.parquet")
    genre_rows = triples[triples["tail_type"] == "genre"]
    position = pd.Index(item_ids).get_indexer(genre_rows["head"].astype(str))
    genres_of = pd.Series(genre_rows["tail"].to_numpy()).groupby(position).agg(set).to_dict()

    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    print(f"scorer: {name}; {len(relevant)} test users; pool {POOL}; k {K}\n")
    print(
        "| λ | NDCG@20 | Recall@20 | ILD@20 (KG) | ILD@20 (embedding) | genres in top 20 | "
        "coverage@20 | ms per list |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lam in [float(x) for x in opts.lambdas.split(",")]:
        ndcg, recall, ild_kg, ild_emb, genres, shown, seconds = [], [], [], [], [], set(), 0.0
        for user, items in relevant.items():
            row = scores[user]
            pool = np.argpartition(-row, POOL)[:POOL]
            pool = pool[np.isfinite(row[pool])]
            start = time.perf_counter()
            order = mmr(row[pool], similarity(pool), lam, K)
            seconds += time.perf_counter() - start
            top = pool[order]
            hits = np.array([i in items for i in top.tolist()], dtype=float)
            ideal = discounts[: min(len(items), K)].sum()
            ndcg.append(float((hits * discounts[: len(top)]).sum() / ideal))
            recall.append(hits.sum() / len(items))
            ild_kg.append(intra_list_diversity(top, kg))
            if emb is not None:
                ild_emb.append(intra_list_diversity(top, emb))
            genres.append(len(set().union(*(genres_of.get(i, set()) for i in top.tolist()))))
            shown.update(top.tolist())
        emb_text = f"{np.mean(ild_emb):.4f}" if ild_emb else "-"
        print(
            f"| {lam:g} | {np.mean(ndcg):.4f} | {np.mean(recall):.4f} | {np.mean(ild_kg):.4f} | "
            f"{emb_text} | {np.mean(genres):.2f} | {len(shown) / len(item_ids):.4f} | "
            f"{seconds / len(relevant) * 1e3:.2f} |"
        )
    print(f"\nMMR similarity: {opts.by}; 1-minute load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Items added without retraining (``kgrec add-items``): are they placed where their users are?

Protocol (item cold start, no leakage):

1. Hold out ``--holdout`` of the items with at least ``--min-users`` interactions (seeded).
2. Remove them, their interactions and their KG triples from the dataset; build the artifact
   (no database), compute the text features and train kgrec on what is left (the GNN, distilled
   from the item-item teacher as configured, served alone: ``train.serve gnn``, since the
   teacher cannot score an item without interactions).
3. Add the held-out items back with :func:`kgrec.add_items.add_items`, from their
   catalogue rows (title, genres, tags, ...) and their triples to entities the reduced graph
   still has: what a new item would come with.
4. For every user who interacted with a held-out item, rank **the held-out items** by the
   user's GNN vector (the normalised decayed sum of their history's input item embeddings:
   the serving bundle's ``user_embedding``) against each placement (text + KG, text only, KG
   only, the average item, random vectors of the same norm) and report NDCG@10, Recall@10
   and AUC;
   then rank **the whole catalogue** (trained items the user has not seen plus all the new
   ones) and report the held-out positives' Recall@20, and how many of every user's top-20
   slots go to new items (exposure; compare with the held-out items' share of interactions).

Usage::

    python benchmarks/new_items.py -c configs/ml-latest-small.yaml --holdout 0.1
    python benchmarks/new_items.py -c configs/demo.yaml --holdout 0.1 --min-users 3

Prints a Markdown table; writes the figures as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgrec.add_items import add_items
from kgrec.build import build_graph, read_dataset
from kgrec.config import load_config
from kgrec.data.added_items import load_added
from kgrec.data.contract import write_folder
from kgrec.data.hetero import load_artifact
from kgrec.eval.protocol import validator
from kgrec.progress import RichReporter
from kgrec.serve.export import item_entities, open_bundle
from kgrec.serve.placement import place_items
from kgrec.text.features import compute_features, load_features
from kgrec.train.trainer import train

PLACEMENTS: dict[str, dict[str, Any]] = {
    "text + KG (kgrec)": {},
    "text + KG, whole norm rescaled": {"scale": "norm"},
    "text + KG, plain average": {"scale": "none"},
    "text only": {"kg_neighbours": 0},
    "KG only": {"text_neighbours": 0},
    "average item": {"text_neighbours": 0, "kg_neighbours": 0},
}


def hold_out(tables: Any, share: float, min_users: int, seed: int) -> list[str]:
    """Item ids to hold out: ``share`` of the items with ``>= min_users`` users."""
    inter = tables.interactions.frame
    users_per_item = inter.groupby("item_id")["user_id"].nunique()
    eligible = np.sort(users_per_item[users_per_item >= min_users].index.astype(str).to_numpy())
    rng = np.random.default_rng(seed)
    count = max(1, round(share * len(eligible)))
    return sorted(rng.choice(eligible, size=count, replace=False).tolist())


def without(tables: Any, held: set[str]) -> Any:
    """The dataset minus the held-out items, their interactions and triples."""

    def keep(table: Any, mask: pd.Series) -> Any:
        return replace(table, frame=table.frame[mask].reset_index(drop=True), lines=None)

    inter = tables.interactions
    items = tables.items
    out = replace(
        tables,
        interactions=keep(inter, ~inter.frame["item_id"].astype(str).isin(held)),
        items=keep(items, ~items.frame["item_id"].astype(str).isin(held)),
    )
    if tables.triples is not None:
        t = tables.triples.frame
        mask = ~(t["head"].astype(str).isin(held) | t["tail"].astype(str).isin(held))
        out = replace(out, triples=keep(tables.triples, mask))
    return out


def ranking_metrics(scores: np.ndarray, relevant: list[np.ndarray], k: int = 10) -> dict:
    """Mean NDCG@k, Recall@k and AUC of ``scores [U, H]`` against each user's relevant
    columns."""
    ndcg, recall, auc = [], [], []
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    for row, rel in zip(scores, relevant, strict=True):
        order = np.argsort(-row, kind="stable")
        hits = np.isin(order[:k], rel)
        ideal = discount[: min(len(rel), k)].sum()
        ndcg.append(float((hits * discount[: hits.size]).sum() / ideal))
        recall.append(float(hits.sum() / min(len(rel), k)))
        negative = np.ones(row.size, dtype=bool)
        negative[rel] = False
        if negative.any():  # share of (relevant, other) pairs ranked the right way round
            others = row[negative]
            pairs = [(others < row[r]).mean() + 0.5 * (others == row[r]).mean() for r in rel]
            auc.append(float(np.mean(pairs)))
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"recall@{k}": float(np.mean(recall)),
        "auc": float(np.mean(auc)),
    }


def prepare(tables: Any, held: set[str], work: Path, reduced: Any) -> tuple[float, float]:
    """Build, embed and train without the held-out items, then add them back; seconds."""
    shutil.rmtree(work, ignore_errors=True)
    write_folder(without(tables, held), work / "data")
    reporter = RichReporter()
    clock = time.perf_counter()
    build_graph(reduced, reporter)
    compute_features(work / "art", reduced.features, reduced.state_path / "text-cache", reporter)
    x_dict, _ = load_features(work / "art")
    artifact = load_artifact(work / "art")
    result = train(
        artifact,
        x_dict,
        reduced,
        validate=validator(artifact, reduced.eval.batch_size),
        out=work / "art" / "model",
        reporter=reporter,
    )
    train_seconds = time.perf_counter() - clock

    # the held-out items, as a new-items file and a triples file to known entities
    items = tables.items.frame
    items[items["item_id"].astype(str).isin(held)].to_csv(work / "new_items.csv", index=False)
    entities = set(
        pd.read_parquet(work / "art" / "tables" / "entities.parquet")["entity_id"].astype(str)
    )
    links_path = None
    if tables.triples is not None:
        t = tables.triples.frame
        links = t[t["head"].astype(str).isin(held) & t["tail"].astype(str).isin(entities)]
        links_path = work / "new_links.csv"
        links[["head", "relation", "tail"]].to_csv(links_path, index=False)
    clock = time.perf_counter()
    add_items(work / "new_items.csv", work / "art", reduced.features, links_path)
    open_bundle(result.checkpoint, work / "art")
    return train_seconds, time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--min-users", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--work", default=None, help="scratch folder (default: artifacts/<ds>-cold)"
    )
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate the model and added items already in --work (no retraining)",
    )
    args = parser.parse_args()

    config = load_config(args.config, {"train.device": args.device})
    tables = read_dataset(config)
    held = hold_out(tables, args.holdout, args.min_users, args.seed)
    held_set = set(held)
    work = Path(args.work or f"{config.artifacts_dir}-cold")
    reduced = load_config(
        args.config,
        {
            "dataset.path": str(work / "data"),
            "dataset.adapter": "contract",
            "dataset.kg_path": None,
            "artifacts": str(work / "art"),
            "store.enabled": False,
            "train.device": args.device,
            "train.serve": "gnn",  # new items have no interactions: only the GNN scores them
        },
    )
    checkpoint = work / "art" / "model" / "model.pt"
    train_seconds = add_seconds = float("nan")
    if not (args.reuse and checkpoint.exists() and load_added(work / "art") is not None):
        train_seconds, add_seconds = prepare(tables, held_set, work, reduced)
    x_dict, _ = load_features(work / "art")
    bundle = open_bundle(checkpoint, work / "art")
    items = tables.items.frame

    added = load_added(work / "art")
    assert added is not None
    trained = bundle.meta.num_trained_items
    item_emb = np.asarray(bundle.item_embedding[:trained])
    linked = item_entities(work / "art", bundle.item_ids[:trained])
    item_text = x_dict["item"].numpy()

    inter = tables.interactions.frame
    column = {item: k for k, item in enumerate(added.item_ids)}
    rows = inter[inter["item_id"].astype(str).isin(held_set)]
    per_user = rows.groupby(rows["user_id"].astype(str))["item_id"].agg(
        lambda s: np.unique([column[str(i)] for i in s])
    )
    per_user = per_user[[bundle.user_index(u) is not None for u in per_user.index]]
    users = np.asarray([bundle.user_index(u) for u in per_user.index])
    z_user = np.asarray(bundle.user_embedding)[users]  # [U, d]
    relevant = list(per_user.to_numpy())

    all_users = np.asarray(bundle.user_embedding)  # [U_all, d]

    def catalogue_metrics(placed: np.ndarray) -> dict[str, float]:
        """Full-catalogue Recall@20 of held-out positives, and new items per top-20."""
        scores = all_users @ np.concatenate([item_emb, placed]).T  # [U_all, I + H]
        for user in range(len(all_users)):
            scores[user, bundle.seen(user)] = -np.inf
        top = np.argpartition(-scores, 19, axis=1)[:, :20]
        new_slots = float((top >= trained).sum(1).mean())
        hits = [
            np.isin(rel + trained, top[u]).sum() / min(len(rel), 20)
            for u, rel in zip(users, relevant, strict=True)
        ]
        return {"catalogue_recall@20": float(np.mean(hits)), "new_in_top20": new_slots}

    table: list[dict[str, Any]] = []
    for name, params in PLACEMENTS.items():
        placed = place_items(added, item_emb, item_text, linked, **params).embedding
        row = {"placement": name, **ranking_metrics(z_user @ placed.T, relevant)}
        table.append({**row, **catalogue_metrics(placed)})
    rng = np.random.default_rng(args.seed)
    noise = rng.normal(size=(len(added), item_emb.shape[1]))
    noise *= np.median(np.linalg.norm(item_emb, axis=1)) / np.linalg.norm(
        noise, axis=1, keepdims=True
    )
    row = {"placement": "random (median norm)", **ranking_metrics(z_user @ noise.T, relevant)}
    table.append({**row, **catalogue_metrics(noise.astype(np.float32))})
    held_share = float(inter["item_id"].astype(str).isin(held_set).mean())

    dataset = config.dataset.name or Path(config.dataset.path).name
    print(
        f"\n{dataset}: {len(held)} held-out items (of {len(items)}, ≥{args.min_users} users, "
        f"seed {args.seed}), {len(users)} users ranking them; model trained without them in "
        f"{train_seconds:.0f} s; add-items + bundle export {add_seconds:.1f} s\n"
    )
    print(
        f"Among the new items | | | | whole catalogue (held-out items are {held_share:.1%} of "
        "interactions) | |"
    )
    print("| placement | NDCG@10 | Recall@10 | AUC | Recall@20 | new items per top-20 |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in table:
        print(
            f"| {row['placement']} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} "
            f"| {row['auc']:.3f} | {row['catalogue_recall@20']:.4f} | {row['new_in_top20']:.2f} |"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "dataset": dataset,
                    "held_out": len(held),
                    "users": len(users),
                    "train_seconds": train_seconds,
                    "add_seconds": add_seconds,
                    "held_out_share_of_interactions": held_share,
                    "rows": table,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()

"""Writing the serving bundle from a checkpoint (the one serving module that needs torch).

:func:`export_bundle` reads the checkpoint and the ``build-graph`` artifact it was trained on
and writes what :mod:`kgrec.serve.bundle`, :mod:`kgrec.serve.scorer` and
:mod:`kgrec.serve.graph` read with numpy alone: the scorer (teacher matrices, GNN item
embeddings), every user's time-ordered history, the GNN's user vectors, ids and titles, items
added since training (placed in the GNN's item space, :mod:`kgrec.serve.placement`) and the
graph the model used, for explanation paths.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.data.added_interactions import (
    AddedInteractions,
    interactions_stamp,
    load_added_interactions,
)
from kgrec.data.added_items import added_stamp, load_added
from kgrec.data.edges import INTERACTS
from kgrec.data.hetero import GraphArtifact, load_artifact
from kgrec.data.history import History
from kgrec.data.layout import TABLES_DIR
from kgrec.data.split import SPLITS
from kgrec.errors import KgrecError
from kgrec.files import DamagedFileError, checksums, remove_stale, staging_dir, swap_dir
from kgrec.naming import ITEM, USER
from kgrec.serve.bundle import (
    SCORER_DIR,
    Bundle,
    BundleMeta,
    artifact_stamp,
    file_stamp,
    fresh_bundle,
    load_bundle,
    model_id_of,
    recorded_artifacts,
    serving_dir,
)
from kgrec.serve.export_graph import (
    Placed,
    csr,
    explanation_graph,
    title_of,
    user_rows,
    write_json,
)
from kgrec.serve.graph import GRAPH_DIR
from kgrec.serve.live import Histories, fold_in
from kgrec.serve.placement import place_items
from kgrec.serve.scorer import EmbeddingPart, HybridScorer, ItemItemPart, save_scorer
from kgrec.text.features import load_features
from kgrec.train.checkpoint import ServingArrays, read_serving


def open_bundle(
    checkpoint: Path | str,
    artifacts_dir: Path | str | None = None,
    notes: list[str] | None = None,
) -> Bundle:
    """The bundle of ``checkpoint``, exported first when missing, stale or damaged.

    Args:
        checkpoint: A ``model.pt`` written by ``kgrec train``.
        artifacts_dir: Its artifact folder; default: the one recorded in an existing bundle.
        notes: Receives a line when a damaged bundle was re-exported.
    """
    checkpoint = Path(checkpoint)
    artifacts = artifacts_dir or recorded_artifacts(serving_dir(checkpoint))
    try:
        bundle = fresh_bundle(checkpoint, artifacts_dir)
    except DamagedFileError as exc:
        if artifacts is None:
            raise
        if notes is not None:
            notes.append(f"{exc.path} was damaged: re-exported the bundle from {checkpoint}")
        bundle = None
    if bundle is not None:
        return bundle
    if artifacts is None:
        raise KgrecError(f"no serving bundle for {checkpoint}: give the artifact folder")
    return load_bundle(export_bundle(checkpoint, artifacts))


def export_bundle(checkpoint: Path | str, artifacts_dir: Path | str) -> Path:
    """Write the serving bundle of ``checkpoint`` (:mod:`kgrec.serve.bundle`); returns its
    folder.

    ``artifacts_dir`` is the ``build-graph`` artifact the model was trained on: it gives the
    id maps, item titles, every user's interactions (all splits: the scorer's input, never
    recommended again) and the graph. The folder is replaced atomically (staging folder,
    then renames); ``meta.json`` records the sha256 of every file.
    """
    checkpoint, artifacts_dir = Path(checkpoint), Path(artifacts_dir)
    serving = read_serving(checkpoint)
    artifact = load_artifact(artifacts_dir)
    num_users, num_items = artifact.num_nodes[USER], artifact.num_nodes[ITEM]
    if serving.num_items != num_items:
        raise KgrecError(
            f"{checkpoint} scores {serving.num_items} items but the artifact in "
            f"{artifacts_dir} has {num_items}: was the model trained on another dataset? "
            "(retrain with kgrec train, or pass --checkpoint)"
        )
    history = History.from_artifact(artifact, SPLITS)
    seen = user_rows(np.concatenate([e.numpy() for e in artifact.split_edge_index.values()], 1))
    seen_indptr, seen_indices = csr(seen, num_users)

    item_ids = [str(x) for x in artifact.id_map.ids[ITEM]]
    titles = _titles(artifacts_dir, item_ids)
    user_emb, item_emb = _gnn_vectors(serving, history)
    added = _place_added(artifacts_dir, item_ids, item_emb) if item_emb.shape[1] else None
    if added is None and load_added(artifacts_dir) is not None and not item_emb.shape[1]:
        raise KgrecError(
            f"{checkpoint} serves the item-item teacher alone, which cannot score the items "
            "of kgrec add-items (they have no interactions): train with --serve hybrid or gnn"
        )
    if added is not None:
        item_emb = np.concatenate([item_emb, added.embedding])
        item_ids = item_ids + added.items.item_ids
        titles = titles + [item.title for item in added.items.items]
    scorer = scorer_of(serving, added.embedding if added is not None else None)
    live = Histories(
        user_ids=[str(x) for x in artifact.id_map.ids[USER]],
        history_indptr=history.ptr.numpy().astype(np.int64),
        history_items=history.item.numpy().astype(np.int64),
        history_ages=history.age.numpy().astype(np.int64),
        seen_indptr=seen_indptr,
        seen_indices=seen_indices,
        user_embedding=user_emb,
        history_liked=_history_liked(artifact, history),
    )
    live = replay(live, load_added_interactions(artifacts_dir), item_ids, scorer, item_emb)

    edge_types = [INTERACTS, *serving.edge_types]  # the history edges, then the KG's
    graph = explanation_graph(artifact, artifacts_dir, set(edge_types), added)

    target = serving_dir(checkpoint)
    remove_stale(target.parent)
    staging = staging_dir(target)
    try:
        arrays = {
            "user_embedding": live.user_embedding,
            "item_embedding": item_emb.astype(np.float32),
            "seen_indptr": live.seen_indptr,
            "seen_indices": live.seen_indices,
            "history_indptr": live.history_indptr,
            "history_items": live.history_items,
            "history_ages": live.history_ages,
            "history_liked": live.liked_or_all(),
        }
        for name, values in arrays.items():
            np.save(staging / f"{name}.npy", values)
        write_json(staging / "users.json", live.user_ids)
        write_json(staging / "items.json", {"ids": item_ids, "titles": titles})
        graph.save(staging / GRAPH_DIR)
        save_scorer(scorer, staging / SCORER_DIR)
        files = sorted(str(f.relative_to(staging)) for f in staging.rglob("*") if f.is_file())
        bundle_meta = BundleMeta(
            model_id=model_id_of(checkpoint),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            checkpoint=str(checkpoint.resolve()),
            checkpoint_stamp=file_stamp(checkpoint),
            artifacts=str(artifacts_dir.resolve()),
            artifact_stamp=artifact_stamp(artifacts_dir),
            added_stamp=added_stamp(artifacts_dir),
            interactions_stamp=interactions_stamp(artifacts_dir),
            num_users=live.num_users,
            num_items=len(item_ids),
            num_trained_items=num_items,
            num_added_items=len(item_ids) - num_items,
            dim=int(user_emb.shape[1]),
            num_seen=int(live.seen_indices.size),
            edge_types=edge_types,
            kind=serving.kind,
            files=checksums(staging, files),
        )
        write_json(staging / "meta.json", bundle_meta.to_json())
        swap_dir(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def replay(
    live: Histories,
    added: AddedInteractions,
    item_ids: list[str],
    scorer: HybridScorer,
    item_embedding: np.ndarray,
) -> Histories:
    """``live`` with the interactions of ``kgrec add-interactions`` folded in, in the order
    added (:func:`kgrec.serve.live.fold_in`); rows whose item the bundle lacks are left out."""
    index = {item: k for k, item in enumerate(item_ids)}
    keep = [k for k, item in enumerate(added.item_ids) if item in index]
    if not keep:
        return live
    users = [added.user_ids[k] for k in keep]
    items = np.asarray([index[added.item_ids[k]] for k in keep], dtype=np.int64)
    return fold_in(live, users, items, scorer, item_embedding).histories


def scorer_of(serving: ServingArrays, added_output: np.ndarray | None = None) -> HybridScorer:
    """The :class:`HybridScorer` of a checkpoint's :class:`ServingArrays`.

    Args:
        serving: :func:`kgrec.train.checkpoint.read_serving` of the checkpoint.
        added_output: ``[n, d]`` output embeddings of items placed after training (scored by
            the GNN part only; the teacher has no rows or columns for them).
    """
    teacher: list[ItemItemPart] = []
    state = serving.teacher
    if state is not None:
        for member, weight in zip(state["components"], state["weights"], strict=True):
            if not weight:
                continue
            model = member["model"]
            teacher.append(
                ItemItemPart(
                    name=str(member["name"]),
                    indptr=model["crow"].numpy().astype(np.int64),
                    indices=model["col"].numpy().astype(np.int64),
                    data=model["value"].float().numpy(),
                    decay=float(model["decay"]),
                    weight=float(weight),
                )
            )
    gnn = None
    num_trained = teacher[0].num_items if teacher else 0
    if serving.item_input is not None and serving.item_output is not None and serving.alpha:
        item_input = serving.item_input.float().numpy()
        item_output = serving.item_output.float().numpy()
        num_trained = item_input.shape[0]
        if added_output is not None and added_output.shape[0]:
            item_output = np.concatenate([item_output, added_output.astype(np.float32)])
        gnn = EmbeddingPart(item_input, item_output, serving.decay, serving.alpha)
    num_items = num_trained + (0 if added_output is None else int(added_output.shape[0]))
    return HybridScorer(tuple(teacher), gnn, num_items, num_trained, standardize=bool(teacher))


def liked_mask(users: np.ndarray, rating: np.ndarray, num_users: int) -> np.ndarray:
    """``[E]`` bool: each interaction's rating is at or above its user's mean rating; an
    interaction without a rating (NaN) counts as liked, so does every one of a dataset
    without ratings."""
    rating = np.asarray(rating, dtype=np.float64)
    known = ~np.isnan(rating)
    sums = np.bincount(users[known], weights=rating[known], minlength=num_users)
    counts = np.bincount(users[known], minlength=num_users)
    mean = sums / np.maximum(counts, 1)
    liked = np.ones(rating.shape[0], dtype=bool)
    liked[known] = rating[known] >= mean[users[known]] - 1e-9
    return liked


def _history_liked(artifact: GraphArtifact, history: History) -> np.ndarray:
    """:func:`liked_mask` of the interactions in ``history``'s order (that of
    :meth:`History.from_artifact` over every split)."""
    edges = torch.cat([artifact.split_edge_index[s] for s in SPLITS], dim=1).long()
    time = torch.cat([artifact.split_edge_time[s] for s in SPLITS]).long()
    rating = torch.cat([artifact.split_edge_rating[s] for s in SPLITS]).double()
    order = torch.argsort(time, stable=True)
    order = order[torch.argsort(edges[0][order], stable=True)]
    if not torch.equal(edges[1][order], history.item):
        raise KgrecError("internal: the ratings do not line up with the histories")
    users = edges[0][order].numpy()
    return liked_mask(users, rating[order].numpy(), history.num_users)


def _gnn_vectors(serving: ServingArrays, history: History) -> tuple[np.ndarray, np.ndarray]:
    """``(user vectors [U, d], item output embeddings [I, d])`` of the GNN, float32:
    ``norm(sum_h decay ** age_h E_in[h])`` per user; ``d = 0`` without a GNN."""
    if serving.item_input is None or serving.item_output is None or not serving.alpha:
        return (
            np.zeros((history.num_users, 0), dtype=np.float32),
            np.zeros((history.num_items, 0), dtype=np.float32),
        )
    users = history.sparse(serving.decay) @ serving.item_input.float()  # [U, d]
    users = torch.nn.functional.normalize(users, dim=-1)
    return users.numpy().astype(np.float32), serving.item_output.float().numpy()


def _place_added(
    artifacts_dir: Path, item_ids: list[str], item_embedding: np.ndarray
) -> Placed | None:
    """The added items of ``artifacts_dir`` (those the catalogue does not have now: a
    rebuild may have given them interactions) placed among the trained items."""
    added = load_added(artifacts_dir)
    known = set(item_ids)
    keep = [k for k, item in enumerate(added.items) if item.item_id not in known] if added else []
    if added is None or not keep:
        return None
    added = added.select(keep)
    x_dict, features_meta = load_features(artifacts_dir)
    if added.text_model != features_meta["model_id"]:
        raise KgrecError(
            f"the added items in {artifacts_dir} were embedded with {added.text_model!r} but "
            f"the item features with {features_meta['model_id']!r}: remove added_items/ and "
            "run kgrec add-items again"
        )
    entities = item_entities(artifacts_dir, item_ids)
    placement = place_items(added, item_embedding, x_dict[ITEM].numpy(), entities)
    return Placed(added, placement.embedding)


def item_entities(artifacts_dir: Path | str, item_ids: list[str]) -> list[set[str]]:
    """Per trained item (in ``item_ids`` order), the ids of the entities it links to."""
    triples = pd.read_parquet(
        Path(artifacts_dir) / TABLES_DIR / "triples.parquet", columns=["head", "tail", "head_type"]
    )
    index = {item: k for k, item in enumerate(item_ids)}
    linked: list[set[str]] = [set() for _ in item_ids]
    heads = triples[triples["head_type"] == ITEM]
    for head, tail in zip(heads["head"].astype(str), heads["tail"].astype(str), strict=True):
        if head in index:
            linked[index[head]].add(tail)
    return linked


def _titles(artifacts_dir: Path, item_ids: list[str]) -> list[str]:
    """Item titles (the id when an item has none)."""
    path = artifacts_dir / TABLES_DIR / "items.parquet"
    if not path.exists():
        return list(item_ids)
    frame = pd.read_parquet(path)
    if "title" not in frame.columns:
        return list(item_ids)
    named = dict(zip(frame["item_id"].astype(str), frame["title"], strict=False))
    return [title_of(named.get(i), i) for i in item_ids]

"""The scrubbed artifact files of a forget, and the rebuild filter of forgotten users."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.contract import DatasetTables, Table
from kgrec.data.hetero import GraphArtifact
from kgrec.data.layout import GRAPH_FILE, ID_MAP_FILE, MANIFEST, TABLES_DIR
from kgrec.data.lifecycle import (
    ForgetList,
    lifecycle_dir,
    now,
    tombstone_of,
)
from kgrec.data.mapping import IdMap
from kgrec.files import checksums, load_torch, save_torch
from kgrec.text.features import FEATURES_FILE, _digest
from kgrec.text.templates import DEFAULT_TEMPLATES, attribute_template, render_many


@dataclass(frozen=True)
class Prepared:
    """The scrubbed files written into the staging folder (relative paths, in the order to
    move them: the manifest last), the rows removed, and the users' old texts."""

    files: list[str] = field(default_factory=list)
    interactions: int = 0
    user_rows: int = 0
    features: bool = False
    texts: list[str] = field(default_factory=list)


def prepare_files(
    folder: Path, staging: Path, scrub: list[str], tokens: dict[str, str]
) -> Prepared:
    """Write the scrubbed artifact files into ``staging`` (same relative paths)."""
    artifact = GraphArtifact.load(folder)
    user_ids = artifact.id_map.ids["user"].copy()
    rows = np.flatnonzero(np.isin(user_ids.astype(str), scrub))
    texts = _user_texts(folder, user_ids)
    old_texts = [texts[r] for r in rows if texts and texts[r]]
    for r in rows:
        user_ids[r] = tombstone_of(tokens[str(user_ids[r])])
    ids = {**artifact.id_map.ids, "user": user_ids}
    keep = {
        split: ~np.isin(edges[0].numpy(), rows)
        for split, edges in artifact.split_edge_index.items()
    }
    scrubbed = GraphArtifact(
        num_nodes=artifact.num_nodes,
        kg_edge_index=artifact.kg_edge_index,
        split_edge_index={s: e[:, keep[s]] for s, e in artifact.split_edge_index.items()},
        split_edge_time={s: t[keep[s]] for s, t in artifact.split_edge_time.items()},
        split_edge_rating={s: r[keep[s]] for s, r in artifact.split_edge_rating.items()},
        id_map=IdMap(ids),
    )
    scrubbed.save(staging)
    files = [GRAPH_FILE, ID_MAP_FILE]
    (staging / TABLES_DIR).mkdir()
    counts = {}
    for name in ("interactions", "users"):
        path = folder / TABLES_DIR / f"{name}.parquet"
        if not path.exists():
            continue
        frame = pd.read_parquet(path)
        mask = frame["user_id"].astype(str).isin(scrub)
        counts[name] = int(mask.sum())
        frame.loc[~mask].to_parquet(staging / TABLES_DIR / f"{name}.parquet", index=False)
        files.append(f"{TABLES_DIR}/{name}.parquet")
    features = (folder / FEATURES_FILE).exists()
    if features:
        _scrub_features(folder, staging, rows, user_ids, texts)
    _manifest(folder, staging, files, scrubbed, len(scrub))
    files.append(MANIFEST)  # last: it vouches for the others
    if features:
        files.insert(0, FEATURES_FILE)
    return Prepared(
        files, counts.get("interactions", 0), counts.get("users", 0), features, old_texts
    )


def _user_texts(folder: Path, user_ids: np.ndarray) -> list[str]:
    """Each user's text as ``kgrec embed`` renders it (``[]``: users have no attributes)."""
    path = folder / TABLES_DIR / "users.parquet"
    users = pd.read_parquet(path) if path.exists() else None
    columns = [c for c in users.columns if c != "user_id"] if users is not None else []
    if users is None or not columns:
        return []
    template = DEFAULT_TEMPLATES["user"]
    if not template.fields & set(columns):
        template = attribute_template(columns)
    frame = users.assign(user_id=users["user_id"].astype(str)).set_index("user_id")
    return render_many(template, frame.reindex(user_ids.astype(str)).reset_index())


def _scrub_features(
    folder: Path, staging: Path, rows: np.ndarray, user_ids: np.ndarray, texts: list[str]
) -> None:
    """``features.pt`` with the users' rows zeroed and marked as without text."""
    payload = load_torch(folder / FEATURES_FILE, "kgrec embed", map_location="cpu")
    payload.pop("checksum", None)
    if "user" in payload.get("x_dict", {}):
        payload["x_dict"]["user"][rows] = 0.0
        if "has_text" in payload and "user" in payload["has_text"]:
            payload["has_text"]["user"][rows] = False
        payload.setdefault("ids_sha256", {})["user"] = _digest(user_ids)
        if texts:
            kept = ["" if k in set(rows.tolist()) else t for k, t in enumerate(texts)]
            payload.setdefault("texts_sha256", {})["user"] = _digest(kept)
    save_torch(payload, staging / FEATURES_FILE)


def _manifest(
    folder: Path, staging: Path, files: list[str], artifact: GraphArtifact, forgotten: int
) -> None:
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    manifest.setdefault("files", {}).update(checksums(staging, files))
    counts = manifest.setdefault("counts", {})
    for split, edges in artifact.split_edge_index.items():
        counts[f"interactions:{split}"] = int(edges.size(1))
    counts["interactions"] = sum(int(e.size(1)) for e in artifact.split_edge_index.values())
    manifest.setdefault("notes", []).append(
        f"{now()}: forgot {forgotten} user(s) (kgrec users forget; see lifecycle/audit.log)"
    )
    (staging / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


# ------------------------------------------------------------------------------ rebuilds


def drop_forgotten(tables: DatasetTables, artifacts_dir: Path | str) -> DatasetTables:
    """``tables`` without the rows of forgotten users (their interactions, their row of
    ``users``, triples whose user end names them), with a note; used by ``build-graph``."""
    forget = ForgetList.load(artifacts_dir)
    if not forget.users:
        return tables

    def forgotten(values: pd.Series) -> np.ndarray:
        values = values.astype(str)
        unique = values.unique().tolist()
        gone = {u for u, k in zip(unique, forget.keep(unique), strict=True) if not k}
        return values.isin(gone).to_numpy() if gone else np.zeros(len(values), dtype=bool)

    def without(table: Table | None, drop: np.ndarray) -> Table | None:
        if table is None or not drop.any():
            return table
        keep = ~drop
        lines = table.lines[keep] if table.lines is not None else np.flatnonzero(keep) + 2
        source_of = table.source_of[keep] if table.source_of is not None else None
        kept = table.frame.loc[keep].reset_index(drop=True)
        return replace(table, frame=kept, lines=lines, source_of=source_of)

    drop_inter = forgotten(tables.interactions.frame["user_id"])
    drop_users = (
        forgotten(tables.users.frame["user_id"])
        if tables.users is not None
        else np.zeros(0, dtype=bool)
    )
    drop_triples = np.zeros(0, dtype=bool)
    if tables.triples is not None:
        frame = tables.triples.frame
        drop_triples = np.zeros(len(frame), dtype=bool)
        for end in ("head", "tail"):  # only ends typed as users (ids of items may collide)
            kind = f"{end}_type"
            if kind in frame.columns:
                drop_triples |= (frame[kind].astype(str) == "user").to_numpy() & forgotten(
                    frame[end]
                )
    counts = [int(drop_users.sum()), int(drop_inter.sum()), int(drop_triples.sum())]
    if not any(counts):
        return tables
    interactions = without(tables.interactions, drop_inter)
    assert interactions is not None
    note = (
        f"left out the users forgotten with kgrec users forget ({lifecycle_dir(artifacts_dir)}): "
        f"{counts[0]} user row(s), {counts[1]} interaction(s), {counts[2]} triple(s)"
    )
    return replace(
        tables,
        interactions=interactions,
        users=without(tables.users, drop_users),
        triples=without(tables.triples, drop_triples),
        notes=(*tables.notes, note),
    )

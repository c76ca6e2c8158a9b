"""The text-feature stage: one sentence per node, embedded once, stored beside the graph.

``node_texts`` renders every node of a ``build-graph`` artifact folder with the templates of
:mod:`kgrec.text.templates`, in the id maps' index order. Items also name a few of their
knowledge-graph neighbours ("directed by: Michael Mann; actor: Al Pacino, ..."), so the text
carries what the graph knows. ``compute_features`` embeds them through the cache and writes
``features.pt`` atomically::

    {"model_id": str, "embedding_dim": int, "num_nodes": {type: int},
     "x_dict": {node_type: Tensor[num_nodes, embedding_dim]}}

Users get features only when the dataset has user attributes (the model has learnable user
id embeddings anyway). ``load_features`` refuses features whose node counts no longer match
``graph.pt`` (stale after a rebuild).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from kgrec.config import FeatureConfig
from kgrec.errors import KgrecError
from kgrec.progress import Reporter

FEATURES_FILE = "features.pt"
MAX_NEIGHBOURS_PER_RELATION = 3
MAX_RELATIONS = 5
RELATION_PRIORITY = (
    "directed_by", "written_by", "has_tag", "actor", "starring", "fb_genre", "subject",
    "produced_by", "country", "language",
)  # fmt: skip
"""Relations named first in item texts (others follow alphabetically)."""
SKIPPED_RELATIONS = frozenset({"has_genre", "character"})
"""Already in the item's own columns, or noisy (character names in many scripts)."""


@dataclass(frozen=True)
class FeatureReport:
    """What ``kgrec embed`` did."""

    path: str
    model_id: str
    embedding_dim: int
    texts: dict[str, int]
    computed: int
    reused: int
    seconds: float
    examples: dict[str, str] = field(default_factory=dict)


def features_path(artifacts_dir: Path | str) -> Path:
    """Where the features of an artifact folder live."""
    return Path(artifacts_dir) / FEATURES_FILE


def node_texts(artifacts_dir: Path | str) -> dict[str, list[str]]:
    """One text per node ``{node_type: [num_nodes]}``, in index order.

    Users get texts only when the dataset has user attributes.
    """
    import pandas as pd

    from kgrec.data.hetero import ID_MAP_FILE
    from kgrec.data.mapping import IdMap
    from kgrec.text.templates import DEFAULT_TEMPLATES, join_names, render_many

    folder = Path(artifacts_dir)
    tables = folder / "tables"
    if not (folder / ID_MAP_FILE).exists():
        raise KgrecError(f"no graph artifact in {folder}: run `kgrec build-graph` first")
    id_map = IdMap.load(folder / ID_MAP_FILE)
    items = pd.read_parquet(tables / "items.parquet")
    users = pd.read_parquet(tables / "users.parquet")
    entities = pd.read_parquet(tables / "entities.parquet")
    triples = pd.read_parquet(tables / "triples.parquet")

    names = dict(
        zip(entities["entity_id"], entities.get("name", entities["entity_id"]), strict=True)
    )
    names = {k: (v if isinstance(v, str) and v.strip() else "") for k, v in names.items()}
    item_kg = triples[
        (triples["head_type"] == "item")
        & (triples["tail_type"] != "item")
        & ~triples["relation"].isin(SKIPPED_RELATIONS)
    ]
    item_kg = item_kg.assign(name=item_kg["tail"].map(names).fillna(""))
    item_kg = item_kg[item_kg["name"] != ""]
    neighbours: dict[str, str] = {}
    for item_id, group in item_kg.groupby("head", sort=False):
        parts = []
        ordered = sorted(group.groupby("relation", sort=True), key=lambda g: _priority(g[0]))
        for relation, rel_group in ordered[:MAX_RELATIONS]:
            joined = join_names(rel_group["name"], MAX_NEIGHBOURS_PER_RELATION)
            parts.append(f"{str(relation).replace('_', ' ')}: {joined}")
        neighbours[str(item_id)] = "; ".join(parts)

    out: dict[str, list[str]] = {}
    frame = items.set_index("item_id").reindex(id_map.ids["item"]).reset_index()
    frame["neighbours"] = frame["item_id"].map(neighbours).fillna("")
    if "year" in frame and "title" in frame:  # "Heat (1995)" already carries its year
        titled = frame["title"].astype(str).str.strip()
        year = frame["year"].astype(str)
        carried = [t.endswith(f"({y})") for t, y in zip(titled, year, strict=True)]
        frame["year"] = year.where(~pd.Series(carried, index=frame.index), "")
    out["item"] = render_many(DEFAULT_TEMPLATES["item"], frame)

    attributes = [c for c in users.columns if c != "user_id"]
    if attributes:
        frame = users.set_index("user_id").reindex(id_map.ids["user"]).reset_index()
        out["user"] = render_many(DEFAULT_TEMPLATES["user"], frame)

    for node_type in id_map.node_types:
        if node_type in ("user", "item"):
            continue
        ids = pd.Series(id_map.ids[node_type], dtype=object)
        frame = pd.DataFrame(
            {
                "name": ids.map(names)
                .fillna("")
                .where(lambda n: n != "", "unnamed " + node_type.replace("_", " "))
                .to_numpy(),
                "type": node_type.replace("_", " "),
                "neighbours": "",
            }
        )
        template = DEFAULT_TEMPLATES.get(node_type, DEFAULT_TEMPLATES["entity"])
        out[node_type] = render_many(template, frame)
    return out


def _priority(relation: object) -> tuple[int, str]:
    name = str(relation)
    rank = RELATION_PRIORITY.index(name) if name in RELATION_PRIORITY else len(RELATION_PRIORITY)
    return rank, name


def compute_features(
    artifacts_dir: Path | str,
    config: FeatureConfig,
    cache_dir: Path | str | None,
    reporter: Reporter | None = None,
    encoder: Any = None,
) -> FeatureReport:
    """Embed every node's text and write ``features.pt``; see the module docstring.

    Args:
        encoder: Anything with ``model_id``, ``embedding_dim`` and ``encode`` (default: a
            :class:`~kgrec.text.encoder.TextEncoder` built from ``config``).
    """
    import time

    import torch

    from kgrec.text.cache import EmbeddingCache, embed_with_cache
    from kgrec.text.encoder import TextEncoder

    reporter = reporter or Reporter()
    clock = time.perf_counter()
    with reporter.stage("Rendering node texts"):
        texts = node_texts(artifacts_dir)
    if encoder is None:
        with reporter.stage(f"Loading text model {config.model}"):
            encoder = TextEncoder(
                config.model,
                pooling=config.pooling,
                max_length=config.max_length,
                batch_size=config.batch_size,
                device=config.device,
            )
    cache = EmbeddingCache(Path(cache_dir)) if cache_dir is not None else None
    flat = [t for node_texts_ in texts.values() for t in node_texts_]
    with reporter.stage(f"Embedding {len(flat):,} texts ({encoder.model_id})"):
        vectors, stats = embed_with_cache(encoder, flat, cache, progress=False)
    x_dict: dict[str, Tensor] = {}
    start = 0
    for node_type, values in texts.items():
        x_dict[node_type] = vectors[start : start + len(values)].contiguous()
        start += len(values)
    payload = {
        "model_id": encoder.model_id,
        "embedding_dim": int(encoder.embedding_dim),
        "num_nodes": {t: len(v) for t, v in texts.items()},
        "x_dict": x_dict,
    }
    path = features_path(artifacts_dir)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return FeatureReport(
        path=str(path),
        model_id=encoder.model_id,
        embedding_dim=int(encoder.embedding_dim),
        texts={t: len(v) for t, v in texts.items()},
        computed=stats.computed,
        reused=stats.reused,
        seconds=round(time.perf_counter() - clock, 2),
        examples={t: v[0] for t, v in texts.items() if v},
    )


def load_features(artifacts_dir: Path | str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(x_dict, meta)`` from ``features.pt``; an error when missing or stale."""
    import torch

    from kgrec.data.hetero import GraphArtifact

    path = features_path(artifacts_dir)
    if not path.exists():
        raise KgrecError(f"no text features in {Path(artifacts_dir)}: run `kgrec embed` first")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    num_nodes = GraphArtifact.load(Path(artifacts_dir)).num_nodes
    stale = {
        t: (n, num_nodes.get(t)) for t, n in payload["num_nodes"].items() if num_nodes.get(t) != n
    }
    if stale:
        raise KgrecError(
            f"{path} is stale (nodes per type changed since it was computed: {stale}); "
            "run `kgrec embed` again"
        )
    meta = {k: v for k, v in payload.items() if k != "x_dict"}
    return dict(payload["x_dict"]), meta

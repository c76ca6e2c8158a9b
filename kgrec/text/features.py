"""The text-feature stage (``kgrec embed``): one text per node, embedded once, stored beside
the graph.

:func:`node_texts` renders every node of a ``build-graph`` artifact folder with the templates
of :mod:`kgrec.text.templates`, in the id maps' index order. Item texts also name a few of
the item's knowledge-graph neighbours (``"directed by: Michael Mann; starring: Al Pacino"``)
unless the item table already has a column for that entity type (``genres`` for ``genre``).
Entities are ``"name (type)"`` (plus their description when the entities table has one).

**Text only where there is text.** A node whose text would carry no words gets none: an entity
with neither a name nor a description (on ml-100k about 50k of the 68k Freebase entities are
bare ids such as ``actor:g.119x7353d``), and any node whose template renders empty. Its text
is ``""`` in :func:`node_texts`, it is not encoded, its row of ``x_dict`` is zeros and its
``has_text`` entry is ``False``: the model gives such a node its node type's embedding
instead. Unnamed KG neighbours are left out of item texts for the same reason.

Users get texts only when the users table has attribute columns (``age``, ``gender``,
``occupation``, ...; other columns are used as ``"<column> <value>"`` when none of those is
present). Without attributes there is no ``"user"`` entry: every user would get the same
vector, and the model has learnable user id embeddings anyway.

:func:`compute_features` embeds the texts through the cache and writes ``features.pt``
atomically; :func:`load_features` reads it back (``weights_only=True``)::

    {"format": 2, "model_id": str, "pooling": str | None, "max_length": int | None,
     "embedding_dim": int, "num_nodes": {type: int}, "ids_sha256": {type: str},
     "texts_sha256": {type: str},
     "x_dict": {type: float32 Tensor[num_nodes, embedding_dim]},
     "has_text": {type: bool Tensor[num_nodes]}}

``x_dict[t][i]`` is the L2-normalised text embedding of node ``i`` of type ``t`` when
``has_text[t][i]``, else a row of zeros (no text: use the type embedding). Only the
``has_text`` rows were encoded. Format 1 files (no ``has_text``; every row encoded) still
load: :func:`load_features` fills ``meta["has_text"]`` with all ``True``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from kgrec.config import FeatureConfig
from kgrec.data.contract import MISSING_STRINGS
from kgrec.data.layout import ID_MAP_FILE, TABLES_DIR
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.files import load_torch, save_torch
from kgrec.naming import relation_name
from kgrec.progress import Reporter
from kgrec.text.cache import embed_with_cache
from kgrec.text.encoder import Encoder, TextEncoder
from kgrec.text.templates import DEFAULT_TEMPLATES, Template, attribute_template, render_many

FEATURES_FILE = "features.pt"
FORMAT = 2
FORMATS = (1, 2)
"""Formats :func:`load_features` reads."""
MAX_RELATIONS = 4
"""KG relations named in an item's text (the most frequent per item first)."""
MAX_NEIGHBOURS_PER_RELATION = 3


@dataclass(frozen=True)
class FeatureReport:
    """What ``kgrec embed`` did.

    Attributes:
        texts: Nodes per node type; ``with_text``: how many of them have a text (the others
            take their type embedding and are not encoded).
        computed: Distinct texts embedded now; ``reused``: found in the cache.
        texts_per_second: ``computed`` / encoding time (``None`` when nothing was computed).
        examples: The first text of each node type.
    """

    path: str
    model_id: str
    embedding_dim: int
    texts: dict[str, int]
    with_text: dict[str, int]
    computed: int
    reused: int
    seconds: float
    texts_per_second: float | None = None
    examples: dict[str, str] = field(default_factory=dict)


def features_path(artifacts_dir: Path | str) -> Path:
    """Where the features of an artifact folder live."""
    return Path(artifacts_dir) / FEATURES_FILE


def node_texts(
    artifacts_dir: Path | str, templates: dict[str, Template] | None = None
) -> dict[str, list[str]]:
    """One text per node, ``{node_type: [num_nodes]}`` in the id maps' index order; ``""``
    for a node without text (see the module docstring).

    Args:
        templates: Per node type, overriding :data:`~kgrec.text.templates.DEFAULT_TEMPLATES`
            (``"entity"`` is the fallback of every entity type).
    """

    folder = Path(artifacts_dir)
    if not (folder / ID_MAP_FILE).exists():
        raise KgrecError(f"no graph artifact in {folder}: run `kgrec build-graph` first")
    templates = {**DEFAULT_TEMPLATES, **(templates or {})}
    id_map = IdMap.load(folder / ID_MAP_FILE)
    tables = {
        name: pd.read_parquet(folder / TABLES_DIR / f"{name}.parquet")
        for name in ("items", "users", "entities", "triples")
    }
    entities = tables["entities"]
    entity_name = named_entities(entities)

    out: dict[str, list[str]] = {}
    for node_type, ids in id_map.ids.items():
        if node_type == "item":
            items = tables["items"].set_index("item_id").reindex(ids)
            texts = item_texts(items, tables["triples"], entity_name, templates["item"])
        elif node_type == "user":
            users = tables["users"]
            columns = [c for c in users.columns if c != "user_id"]
            if not columns:
                continue
            template = templates["user"]
            if not template.fields & set(columns):
                template = attribute_template(columns)
            texts = render_many(template, users.set_index("user_id").reindex(ids).reset_index())
        else:
            frame = pd.DataFrame({"entity_id": ids})
            frame["name"] = frame["entity_id"].map(entity_name)
            wordy = frame["name"].notna()
            if "description" in entities:
                described = entities.loc[~_missing(entities["description"])]
                frame["description"] = frame["entity_id"].map(
                    dict(zip(described["entity_id"], described["description"], strict=True))
                )
                wordy |= frame["description"].notna()
            frame["name"] = frame["name"].fillna(frame["entity_id"])
            frame["type"] = node_type.replace("_", " ")
            template = templates.get(node_type, templates["entity"])
            rendered = iter(render_many(template, frame.loc[wordy]))
            texts = [next(rendered) if w else "" for w in wordy.tolist()]
        out[node_type] = list(texts)
    return out


def named_entities(entities: pd.DataFrame) -> dict[str, str]:
    """``{entity_id: name}`` for the entities with a name that is not just their id."""
    if "name" not in entities:
        return {}
    named = entities.loc[
        ~_missing(entities["name"])
        & (entities["name"].astype(str).str.strip() != entities["entity_id"].astype(str))
    ]
    return dict(zip(named["entity_id"].astype(str), named["name"].astype(str), strict=True))


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype(str).str.strip().isin(MISSING_STRINGS)


def item_texts(
    items: pd.DataFrame,
    triples: pd.DataFrame,
    entity_name: dict[str, str],
    template: Template | None = None,
) -> list[str]:
    """One text per row of ``items`` (indexed by ``item_id``, in that order).

    The item template gets the item's columns plus ``neighbours``, its KG neighbours from
    ``triples`` (``head``, ``relation``, ``tail``, ``head_type``, ``tail_type``) named through
    ``entity_name``. Also used by ``kgrec add-items``, so added items read like trained ones.
    """

    items = items.copy()
    neighbours = _neighbour_texts(triples, entity_name, set(items.columns))
    items["neighbours"] = items.index.map(neighbours)
    if "title" in items and "year" in items:  # "Heat (1995)" already has its year
        year = items["year"].astype(str).str.removesuffix(".0")
        title = items["title"].astype(str).str.rstrip()
        carried = [t.endswith(f"({y})") for t, y in zip(title, year, strict=True)]
        items["year"] = items["year"].where(~pd.Series(carried, index=items.index))
    return render_many(template or DEFAULT_TEMPLATES["item"], items.reset_index())


def require_same_model(encoder: Encoder, meta: dict[str, Any]) -> None:
    """Refuse to embed new text with another model than the one behind ``features.pt``
    (``meta`` from :func:`load_features`): the vectors would not be comparable."""
    if encoder.model_id != meta["model_id"]:
        raise KgrecError(
            f"the item features were computed with {meta['model_id']!r} but features.model "
            f"gives {encoder.model_id!r}: use the same text model, or run `kgrec embed` again"
        )


def _neighbour_texts(
    triples: pd.DataFrame, entity_name: dict[str, str], item_columns: set[str]
) -> dict[str, str]:
    """``{item_id: "<relation>: <name>, <name>; ..."}`` from the items' KG edges to entities.

    Entity types the item table already covers (column ``genre`` or ``genres``) are skipped;
    per item, the relations with the most neighbours come first.
    """
    covered = item_columns | {c.removesuffix("s") for c in item_columns}
    edges = triples[
        (triples["head_type"] == "item")
        & (triples["tail_type"] != "item")
        & ~triples["tail_type"].isin(covered)
    ]
    edges = edges.assign(
        name=edges["tail"].map(entity_name),
        relation=edges["relation"].map(lambda r: relation_name(str(r)).replace("_", " ")),
    ).dropna(subset=["name"])
    texts: dict[str, str] = {}
    for item_id, group in edges.groupby("head", sort=False):
        by_relation = {str(r): list(dict.fromkeys(g["name"])) for r, g in group.groupby("relation")}
        ranked = sorted(by_relation.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        texts[str(item_id)] = "; ".join(
            f"{rel}: {', '.join(names[:MAX_NEIGHBOURS_PER_RELATION])}"
            for rel, names in ranked[:MAX_RELATIONS]
        )
    return texts


def compute_features(
    artifacts_dir: Path | str,
    feature_config: FeatureConfig,
    cache_dir: Path | str | None,
    reporter: Reporter | None = None,
    encoder: Encoder | None = None,
) -> FeatureReport:
    """Embed every node's text and write ``features.pt`` (see the module docstring).

    Args:
        cache_dir: Embedding cache folder (:mod:`kgrec.text.cache`); ``None``: no cache.
        encoder: Overrides the :class:`~kgrec.text.encoder.TextEncoder` built from
            ``feature_config`` (tests pass a :class:`~kgrec.text.encoder.HashingEncoder`).
    """

    reporter = reporter or Reporter()
    folder = Path(artifacts_dir)
    clock = time.perf_counter()
    with reporter.stage("Rendering node texts"):
        texts = node_texts(folder)
        id_map = IdMap.load(folder / ID_MAP_FILE)
    if encoder is None:
        with reporter.stage(f"Opening text model {feature_config.model}"):
            encoder = TextEncoder.from_config(feature_config)
    import torch

    has_text = {
        node_type: torch.tensor([bool(t) for t in values], dtype=torch.bool)
        for node_type, values in texts.items()
    }
    flat = [t for values in texts.values() for t in values if t]
    distinct = len(set(flat))
    encode_clock = time.perf_counter()
    with reporter.stage(f"Embedding {distinct:,} texts", total=distinct) as advance:
        vectors, stats = embed_with_cache(encoder, flat, cache_dir, progress=advance)
    encode_seconds = time.perf_counter() - encode_clock

    x_dict: dict[str, Tensor] = {}
    start = 0
    for node_type, mask in has_text.items():
        rows = int(mask.sum())
        x = torch.zeros(mask.numel(), encoder.embedding_dim)
        x[mask] = vectors[start : start + rows]
        x_dict[node_type] = x
        start += rows
    payload = {
        "format": FORMAT,
        "model_id": encoder.model_id,
        "pooling": getattr(encoder, "pooling", None),
        "max_length": getattr(encoder, "max_length", None),
        "embedding_dim": encoder.embedding_dim,
        "num_nodes": {t: len(v) for t, v in texts.items()},
        "ids_sha256": {t: _digest(id_map.ids[t]) for t in texts},
        "texts_sha256": {t: _digest(v) for t, v in texts.items()},
        "x_dict": x_dict,
        "has_text": has_text,
    }
    path = features_path(folder)
    save_torch(payload, path)
    return FeatureReport(
        path=str(path),
        model_id=encoder.model_id,
        embedding_dim=encoder.embedding_dim,
        texts={t: len(v) for t, v in texts.items()},
        with_text={t: int(m.sum()) for t, m in has_text.items()},
        computed=stats.misses,
        reused=stats.hits,
        seconds=round(time.perf_counter() - clock, 2),
        texts_per_second=round(stats.misses / encode_seconds, 1) if stats.misses else None,
        examples={t: next(x for x in v if x) for t, v in texts.items() if any(v)},
    )


def load_features(artifacts_dir: Path | str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(x_dict, meta)`` from ``features.pt``: ``x_dict[type]`` is ``[num_nodes, dim]``,
    ``meta["has_text"][type]`` a bool ``[num_nodes]`` (rows without text are zeros).

    Raises:
        KgrecError: When the file is missing or unreadable, or stale: its node types, counts
            or ids no longer match the artifact's id maps (``build-graph`` ran again since).
    """
    folder = Path(artifacts_dir)
    path = features_path(folder)
    if not path.exists():
        raise KgrecError(f"no text features in {folder}: run `kgrec embed` first")
    payload = load_torch(path, "kgrec embed", map_location="cpu")  # checksum verified
    try:
        x_dict: dict[str, Tensor] = dict(payload["x_dict"])
        num_nodes: dict[str, int] = dict(payload["num_nodes"])
        fmt = payload.get("format")
    except (KeyError, TypeError) as exc:
        raise KgrecError(f"{path} is not a features file ({exc}): run `kgrec embed` again") from exc
    if fmt not in FORMATS:
        raise KgrecError(
            f"{path} has format {fmt!r}, not one of {FORMATS}: run `kgrec embed` again"
        )
    if not (folder / ID_MAP_FILE).exists():
        raise KgrecError(f"no graph artifact in {folder}: run `kgrec build-graph` first")
    ids = IdMap.load(folder / ID_MAP_FILE).ids
    digests = payload.get("ids_sha256") or {}
    stale = sorted(
        node_type
        for node_type, x in x_dict.items()
        if node_type not in ids
        or num_nodes.get(node_type) != len(ids[node_type])
        or x.size(0) != len(ids[node_type])
        or (node_type in digests and digests[node_type] != _digest(ids[node_type]))
    )
    if stale:
        counts = {t: (num_nodes.get(t), len(ids[t]) if t in ids else None) for t in stale}
        raise KgrecError(
            f"{path} is stale: the nodes of {', '.join(stale)} changed since it was computed "
            f"(features vs graph: {counts}); run `kgrec embed` again"
        )
    meta = {k: v for k, v in payload.items() if k != "x_dict"}
    if "has_text" not in meta:  # format 1: every row was encoded
        meta["has_text"] = {t: torch.ones(x.size(0), dtype=torch.bool) for t, x in x_dict.items()}
    return x_dict, meta


def _digest(values: Iterable[object]) -> str:
    return hashlib.sha256("\x1f".join(map(str, values)).encode("utf-8")).hexdigest()

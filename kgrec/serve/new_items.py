"""Items added after training (``kgrec add-items``): recommendable without retraining.

A new item has text and attributes but no interactions, so the model has no embedding for
it. It is *placed* in the model's item space from what it shares with trained items:

- **text neighbours**: its text (rendered with the same item template as ``kgrec embed``,
  embedded by the same language model) is compared with every trained item's text feature;
  the ``k`` most similar items are averaged, weighted by ``softmax(cosine / tau)``;
- **KG neighbours**: trained items linked to the same entities (the ``genres`` column matched
  to genre entities by name, or explicit triples) are averaged, each shared entity weighted
  ``1 / log2(1 + degree)`` so rare entities (a director) count more than common ones (Drama).

The placed vector is the mean of the two estimates (or the one available). Averaging keeps
what neighbours share, above all the mean item direction (in a dot-product model, the
popularity direction), and shrinks what makes each of them specific. So the component along
the mean item direction is kept as averaged, and the rest is stretched back to the
neighbours' typical length: the new item is as popular as its neighbours on average, and as
specific as one of them. (Rescaling the whole vector to the neighbours' norm instead
inflates the popularity part: on the demo new items then take 9 of every user's top-20
slots; the plain average takes fewer than one. ``benchmarks/new_items.py`` measures both.)
This is the inductive recipe of
content-based cold start (e.g. DropoutNet, NeurIPS'17, without its training step).

What ``add-items`` writes lives in the artifact folder, ``<artifacts>/added_items/``, so it
outlives any checkpoint: every bundle export (a new model included) places the items again::

    items.json   [{"item_id", "title", "text", "links": [[relation, entity_type, entity_id]],
                   "source": "file:line", "added": ISO-8601}]
    text.npy     float32 [num_added, text_dim]: the items' text embeddings
    meta.json    {"format": 1, "model_id": text encoder id, "count": num_added}

The folder is replaced atomically (staging folder + rename); a failed add leaves it as it was.
Reading and placing use numpy only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import KgrecError, Problem, ValidationError
from kgrec.files import staging_dir, swap_dir

if TYPE_CHECKING:
    import pandas as pd

    from kgrec.config import FeatureConfig
    from kgrec.store.base import GraphPayload, GraphStore
    from kgrec.text.encoder import Encoder

ADDED_DIR = "added_items"
FORMAT = 1
TEXT_NEIGHBOURS = 10
KG_NEIGHBOURS = 20
TEMPERATURE = 0.05
RESERVED_COLUMNS = frozenset({"item_id", "title", "year", "description", "tags"})


@dataclass(frozen=True)
class AddedItems:
    """The items added to an artifact after training.

    Attributes:
        records: One dict per item (see the module docstring), in the order added.
        text: ``[num_added, text_dim]`` float32 text embeddings.
        meta: ``meta.json`` (``model_id`` of the text encoder, ``count``).
    """

    records: list[dict[str, Any]]
    text: np.ndarray
    meta: dict[str, Any]

    @property
    def item_ids(self) -> list[str]:
        return [str(r["item_id"]) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def triples(self) -> pd.DataFrame:
        """The items' KG links as contract triples (``head``, ``relation``, ``tail``,
        ``head_type``, ``tail_type``), one row per link."""
        import pandas as pd

        rows = [
            (r["item_id"], relation, entity, "item", entity_type)
            for r in self.records
            for relation, entity_type, entity in r["links"]
        ]
        return pd.DataFrame(rows, columns=["head", "relation", "tail", "head_type", "tail_type"])


@dataclass(frozen=True)
class Placement:
    """Where added items landed in the model's item space.

    Attributes:
        embedding: ``[n, d]`` float32 placed item embeddings.
        anchors: Per item, the trained item indices it was placed from (best first).
    """

    embedding: np.ndarray
    anchors: list[list[int]]


def added_dir(artifacts_dir: Path | str) -> Path:
    """``<artifacts>/added_items``."""
    return Path(artifacts_dir) / ADDED_DIR


def added_stamp(artifacts_dir: Path | str) -> list[int]:
    """``[mtime_ns, size]`` of ``added_items/meta.json`` (``[0, 0]`` when nothing was added)."""
    try:
        st = (added_dir(artifacts_dir) / "meta.json").stat()
    except FileNotFoundError:
        return [0, 0]
    return [st.st_mtime_ns, st.st_size]


def load_added(artifacts_dir: Path | str) -> AddedItems | None:
    """The added items of an artifact folder, ``None`` when there are none."""
    folder = added_dir(artifacts_dir)
    if not (folder / "meta.json").exists():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        records = json.loads((folder / "items.json").read_text(encoding="utf-8"))
        text = np.load(folder / "text.npy")
    except (OSError, ValueError) as exc:
        raise KgrecError(f"{folder}: unreadable added items ({exc})") from exc
    if meta.get("format") != FORMAT or len(records) != text.shape[0]:
        raise KgrecError(f"{folder}: inconsistent added items (remove the folder and add again)")
    return AddedItems(records, text.astype(np.float32, copy=False), meta)


def read_new_items(
    items_path: Path,
    triples_path: Path | None,
    artifacts_dir: Path,
    previous: AddedItems | None,
    entities: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[str, list[tuple[str, str, str]]], dict[str, str]]:
    """Read and check the new items and their KG links against the artifact's catalogue,
    the ``previous`` additions and its ``entities`` table.

    Returns ``(items indexed by item_id, {item_id: [(relation, entity_type, entity_id)]},
    {item_id: "file:line"})``. Every problem (missing column, empty or duplicate id, an id the
    catalogue or an earlier add already has, a triple whose head is not a new item or whose
    tail is not a known entity) is reported with its file, line and field.
    """

    from kgrec.data.contract import read_table
    from kgrec.data.mapping import IdMap
    from kgrec.text.templates import MISSING_STRINGS

    if not items_path.is_file():
        raise KgrecError(f"no such items file: {items_path}")
    table = read_table(items_path, "items")
    frame = table.frame
    problems: list[Problem] = []
    if "item_id" not in frame.columns:
        raise ValidationError([Problem(items_path, 1, "item_id", "required column is missing")])
    text_columns = [c for c in frame.columns if c != "item_id"]
    if not text_columns:
        raise ValidationError(
            [Problem(items_path, 1, None, "no text columns (title, description, genres, ...)")]
        )
    id_map = IdMap.load(artifacts_dir / "id_maps.parquet")
    known = set(map(str, id_map.ids["item"]))
    earlier = set(previous.item_ids) if previous is not None else set()
    seen: dict[str, int] = {}
    for row, raw in enumerate(frame["item_id"].tolist()):
        item_id, line = str(raw).strip(), table.line_of(row)
        if not item_id:
            problems.append(Problem(items_path, line, "item_id", "empty item id"))
        elif item_id in seen:
            first = seen[item_id]
            message = f"duplicate {item_id!r} (first on line {first})"
            problems.append(Problem(items_path, line, "item_id", message))
        elif item_id in known:
            problems.append(
                Problem(items_path, line, "item_id", f"{item_id!r} is already in the catalogue")
            )
        elif item_id in earlier:
            problems.append(Problem(items_path, line, "item_id", f"{item_id!r} was added before"))
        else:
            seen[item_id] = line
        values = [str(frame.iloc[row][c]).strip() for c in text_columns]
        if item_id and all(v in MISSING_STRINGS for v in values):
            problems.append(Problem(items_path, line, None, f"{item_id!r} has no text at all"))
    if problems:
        raise ValidationError(problems)
    frame = frame.assign(item_id=frame["item_id"].astype(str).str.strip()).set_index("item_id")
    sources = {i: f"{items_path}:{line}" for i, line in seen.items()}

    entity_type = dict(zip(entities["entity_id"].astype(str), entities["type"], strict=True))
    links: dict[str, list[tuple[str, str, str]]] = {i: [] for i in frame.index}
    _links_from_columns(frame, entities, artifacts_dir, links)
    if triples_path is not None:
        problems = _links_from_triples(triples_path, set(frame.index), entity_type, links)
        if problems:
            raise ValidationError(problems)
    return frame, {i: list(dict.fromkeys(v)) for i, v in links.items()}, sources


def _links_from_columns(
    frame: pd.DataFrame,
    entities: pd.DataFrame,
    artifacts_dir: Path,
    links: dict[str, list[tuple[str, str, str]]],
) -> None:
    """Link attribute columns (``genres``: ``Western|Drama``) to entities of that type by name.

    A column matches an entity type by name (``genres`` or ``genre`` -> ``genre``); values are
    ``|``-separated and matched by entity name or id, case-insensitively. The relation is the
    one trained items use for that entity type (e.g. ``has_genre``). Unmatched values are
    kept in the text only.
    """
    import pandas as pd

    triples = pd.read_parquet(
        artifacts_dir / "tables" / "triples.parquet", columns=["relation", "head_type", "tail_type"]
    )
    item_edges = triples[triples["head_type"] == "item"]
    relation_of = item_edges.groupby("tail_type")["relation"].agg(lambda r: r.mode().iloc[0])
    types = set(map(str, entities["type"]))
    names = entities["name"] if "name" in entities else entities["entity_id"]
    for column in frame.columns:
        if column in RESERVED_COLUMNS:
            continue
        entity_type = next((t for t in (column, column.removesuffix("s")) if t in types), None)
        if entity_type is None or entity_type not in relation_of.index:
            continue
        of_type = entities["type"] == entity_type
        lookup = {
            str(k).casefold(): str(e)
            for key in (names[of_type], entities["entity_id"][of_type])
            for k, e in zip(key, entities["entity_id"][of_type], strict=True)
        }
        relation = str(relation_of[entity_type])
        for item_id, value in frame[column].items():
            for part in str(value).split("|"):
                entity = lookup.get(part.strip().casefold())
                if entity is not None:
                    links[str(item_id)].append((relation, entity_type, entity))


def _links_from_triples(
    path: Path,
    new_ids: set[str],
    entity_type: dict[str, str],
    links: dict[str, list[tuple[str, str, str]]],
) -> list[Problem]:
    """Add ``head`` (a new item) -> ``tail`` (a known entity) links from a contract triples
    file; returns the problems found."""
    from kgrec.data.contract import read_table

    if not path.is_file():
        raise KgrecError(f"no such triples file: {path}")
    table = read_table(path, "triples")
    frame = table.frame
    missing = [c for c in ("head", "relation", "tail") if c not in frame.columns]
    if missing:
        return [Problem(path, 1, c, "required column is missing") for c in missing]
    problems: list[Problem] = []
    for row, (head, relation, tail) in enumerate(
        zip(frame["head"], frame["relation"], frame["tail"], strict=True)
    ):
        line = table.line_of(row)
        head, relation, tail = str(head).strip(), str(relation).strip(), str(tail).strip()
        if head not in new_ids:
            problems.append(Problem(path, line, "head", f"{head!r} is not one of the new items"))
        elif not relation:
            problems.append(Problem(path, line, "relation", "empty relation"))
        elif tail not in entity_type:
            problems.append(
                Problem(path, line, "tail", f"unknown entity {tail!r} (not in the graph)")
            )
        else:
            links[head].append((relation, str(entity_type[tail]), tail))
    return problems


def add_items(
    items_path: Path | str,
    artifacts_dir: Path | str,
    feature_config: FeatureConfig,
    triples_path: Path | str | None = None,
    encoder: Encoder | None = None,
    store: GraphStore | None = None,
) -> AddedItems:
    """Check, render, embed and store new items (see the module docstring); returns the items
    of this call (``meta["count"]``: all added so far).

    With ``store`` the new items and their KG links are also upserted into the graph
    database (before ``added_items/`` is written: a failure there leaves the folder as it
    was, and the upsert is idempotent, so the same call can simply be repeated).

    Raises:
        ValidationError: A problem in the files (file, line and field named); nothing is
            written.
        KgrecError: No text features, or a text model other than the features' one.
    """
    import pandas as pd

    from kgrec.text.encoder import TextEncoder
    from kgrec.text.features import (
        item_texts,
        load_features,
        named_entities,
        require_same_model,
    )

    artifacts_dir = Path(artifacts_dir)
    previous = load_added(artifacts_dir)
    entities = pd.read_parquet(artifacts_dir / "tables" / "entities.parquet")
    frame, links, sources = read_new_items(
        Path(items_path),
        Path(triples_path) if triples_path else None,
        artifacts_dir,
        previous,
        entities,
    )
    _, features_meta = load_features(artifacts_dir)
    if encoder is None:
        encoder = TextEncoder.from_config(feature_config)
    require_same_model(encoder, features_meta)

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    titles = frame["title"] if "title" in frame else pd.Series(frame.index, index=frame.index)
    records = [
        {
            "item_id": item_id,
            "title": _text(titles.get(item_id), item_id),
            "links": [list(link) for link in links[item_id]],
            "source": sources[item_id],
            "added": now,
        }
        for item_id in frame.index
    ]
    linked = AddedItems(records, np.empty((len(records), 0), dtype=np.float32), {})
    texts = item_texts(frame, linked.triples(), named_entities(entities))
    for record, text in zip(records, texts, strict=True):
        record["text"] = text
    vectors = encoder.encode(texts).numpy().astype(np.float32)  # [n, text_dim]

    count = len(records) + (len(previous) if previous is not None else 0)
    meta = {"format": FORMAT, "model_id": encoder.model_id, "count": count}
    fresh = AddedItems(records, vectors, meta)
    if store is not None:
        from kgrec.store.payload import upsert_payload

        upsert_payload(store, added_graph(fresh, set(), None))
    if previous is not None:
        records = [*previous.records, *records]
        vectors = np.concatenate([previous.text, vectors])
    _write(added_dir(artifacts_dir), records, vectors, meta)
    return fresh


def added_graph(
    added: AddedItems, known_items: set[str], known_entities: set[str] | None
) -> GraphPayload:
    """The ``:Item`` nodes (``title``, ``added_at``) and KG relationships of added items.

    Items in ``known_items`` (the catalogue has them now) are left out, and so are links to
    entities not in ``known_entities`` (``None``: keep all links).
    """
    import pandas as pd

    from kgrec.store.base import (
        GraphPayload,
        NodeSet,
        RelationshipSet,
        label_for_type,
        rel_type_for_relation,
    )

    records = [r for r in added.records if r["item_id"] not in known_items]
    nodes = pd.DataFrame(
        {
            "id": [r["item_id"] for r in records],
            "title": [r["title"] for r in records],
            "added_at": [r["added"] for r in records],
        }
    )
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in records:
        for relation, entity_type, entity in r["links"]:
            if known_entities is None or entity in known_entities:
                key = (rel_type_for_relation(relation), label_for_type(entity_type))
                groups.setdefault(key, []).append((r["item_id"], entity))
    item = label_for_type("item")
    relationships = tuple(
        RelationshipSet(rel_type, item, label, pd.DataFrame(pairs, columns=["source", "target"]))
        for (rel_type, label), pairs in sorted(groups.items())
    )
    return GraphPayload(nodes=(NodeSet(item, nodes),), relationships=relationships)


def _text(value: Any, fallback: str) -> str:
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return fallback
    return str(value)


def _write(target: Path, records: list[dict[str, Any]], text: np.ndarray, meta: dict) -> None:
    """Replace ``target`` atomically with the three files."""
    staging = staging_dir(target)
    try:
        np.save(staging / "text.npy", text.astype(np.float32))
        (staging / "items.json").write_text(
            json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        swap_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def place_items(
    added: AddedItems,
    item_embedding: np.ndarray,
    item_text: np.ndarray,
    item_entities: list[set[str]],
    *,
    text_neighbours: int = TEXT_NEIGHBOURS,
    kg_neighbours: int = KG_NEIGHBOURS,
    temperature: float = TEMPERATURE,
    scale: str = "residual",
) -> Placement:
    """Place added items among the trained ones (see the module docstring).

    Args:
        item_embedding: ``[I, d]`` trained item embeddings (the serving ones).
        item_text: ``[I, text_dim]`` the trained items' text features.
        item_entities: Per trained item, the entity ids it links to.

        text_neighbours: Text neighbours averaged (0: ignore the text).
        kg_neighbours: Items sharing entities averaged (0: ignore the KG links).
        temperature: Softmax temperature over the text neighbours' cosines.
        scale: ``residual`` (default): keep the average's component along the mean item
            direction (its popularity) and give the rest the neighbours' typical length;
            ``norm``: rescale the whole vector to the neighbours' mean norm; ``none``: the
            plain weighted average.

    Returns:
        The placed embeddings ``[len(added), d]`` and each item's anchor items. An item with
        neither estimate gets the average item.
    """
    emb = np.asarray(item_embedding, dtype=np.float32)
    text = np.asarray(item_text, dtype=np.float32)
    text = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    if scale not in ("residual", "norm", "none"):
        raise KgrecError(f"unknown scale {scale!r}: use residual, norm or none")
    norms = np.linalg.norm(emb, axis=1)  # [I]
    common = emb.mean(axis=0)
    common /= max(float(np.linalg.norm(common)), 1e-12)  # [d] unit mean item direction
    residual_norms = np.linalg.norm(emb - np.outer(emb @ common, common), axis=1)  # [I]
    holders: dict[str, list[int]] = {}
    for index, linked in enumerate(item_entities):
        for entity in linked:
            holders.setdefault(entity, []).append(index)

    out = np.zeros((len(added), emb.shape[1]), dtype=np.float32)
    anchors: list[list[int]] = []
    for row, record in enumerate(added.records):
        estimates: list[tuple[np.ndarray, np.ndarray]] = []
        if text_neighbours > 0:
            query = added.text[row] / max(float(np.linalg.norm(added.text[row])), 1e-12)
            similarity = text @ query  # [I]
            k = min(text_neighbours, len(similarity))
            near = np.argpartition(-similarity, k - 1)[:k]
            near = near[np.argsort(-similarity[near], kind="stable")]
            weights = np.exp((similarity[near] - similarity[near].max()) / temperature)
            estimates.append((near, weights / weights.sum()))

        shared: dict[int, float] = {}
        for _, _, entity in record["links"] if kg_neighbours > 0 else []:
            items = holders.get(entity, [])
            for index in items:
                shared[index] = shared.get(index, 0.0) + 1.0 / np.log2(1.0 + len(items))
        if shared:
            ranked = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:kg_neighbours]
            kg_near = np.asarray([i for i, _ in ranked], dtype=np.int64)
            kg_weights = np.asarray([w for _, w in ranked], dtype=np.float64)
            estimates.append((kg_near, kg_weights / kg_weights.sum()))

        if not estimates:  # nothing to go on: the average item
            everything = np.arange(len(emb))
            estimates.append((everything, np.full(len(emb), 1.0 / len(emb))))
        vector = np.zeros(emb.shape[1], dtype=np.float64)
        norm = residual_norm = 0.0
        for indices, w in estimates:
            vector += w @ emb[indices] / len(estimates)
            norm += float(w @ norms[indices]) / len(estimates)
            residual_norm += float(w @ residual_norms[indices]) / len(estimates)
        if scale == "norm" and np.linalg.norm(vector) > 0:
            vector *= norm / float(np.linalg.norm(vector))
        elif scale == "residual":
            along = float(vector @ common)
            rest = vector - along * common
            length = float(np.linalg.norm(rest))
            if length > 0:
                vector = along * common + rest * (residual_norm / length)
        out[row] = vector
        ordered = [int(i) for indices, _ in estimates for i in indices]
        anchors.append(list(dict.fromkeys(ordered))[:5])
    return Placement(out, anchors)


def item_entities(artifacts_dir: Path | str, item_ids: list[str]) -> list[set[str]]:
    """Per trained item (in ``item_ids`` order), the ids of the entities it links to."""
    import pandas as pd

    triples = pd.read_parquet(
        Path(artifacts_dir) / "tables" / "triples.parquet", columns=["head", "tail", "head_type"]
    )
    index = {item: k for k, item in enumerate(item_ids)}
    linked: list[set[str]] = [set() for _ in item_ids]
    heads = triples[triples["head_type"] == "item"]
    for head, tail in zip(heads["head"].astype(str), heads["tail"].astype(str), strict=True):
        if head in index:
            linked[index[head]].add(tail)
    return linked


def place_added(
    artifacts_dir: Path | str, item_ids: list[str], item_embedding: np.ndarray
) -> tuple[AddedItems | None, np.ndarray]:
    """The added items of ``artifacts_dir`` placed among a model's trained items.

    Args:
        item_ids: The trained items, ``[I]``; added ids among them (a rebuild gave them
            interactions) are left to the trained item.
        item_embedding: Their embeddings ``[I, d]``.

    Returns:
        The added items still to place (``None`` when there are none) and their embeddings
        ``[n, d]``.
    """
    from kgrec.text.features import load_features

    added = load_added(artifacts_dir)
    known = set(item_ids)
    keep = [k for k, r in enumerate(added.records) if r["item_id"] not in known] if added else []
    if added is None or not keep:
        return None, np.empty((0, item_embedding.shape[1]), dtype=np.float32)
    added = AddedItems([added.records[k] for k in keep], added.text[keep], added.meta)
    x_dict, features_meta = load_features(artifacts_dir)
    if added.meta.get("model_id") != features_meta["model_id"]:
        raise KgrecError(
            f"the added items in {artifacts_dir} were embedded with "
            f"{added.meta.get('model_id')!r} but the item features with "
            f"{features_meta['model_id']!r}: remove added_items/ and run kgrec add-items again"
        )
    entities = item_entities(artifacts_dir, item_ids)
    placement = place_items(added, item_embedding, x_dict["item"].numpy(), entities)
    return added, placement.embedding

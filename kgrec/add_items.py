"""``kgrec add-items``: items with only text and attributes, recommendable without retraining.

A new item has text and attributes but no interactions, so the model has no embedding for
it. This stage checks the file (:mod:`kgrec.data.new_items`), renders each item's text with
the catalogue's item template, embeds it with the same language model as the catalogue's
text features, writes the items and their links into the graph database (optional) and
keeps them in the artifact's catalogue of added items (:mod:`kgrec.data.added_items`). Every
bundle export then *places* them in the model's item space (:mod:`kgrec.serve.placement`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgrec.config import FeatureConfig
from kgrec.data.added_items import AddedItem, AddedItems, load_added, save_added
from kgrec.data.layout import TABLES_DIR
from kgrec.data.new_items import links_table, read_new_items
from kgrec.errors import KgrecError
from kgrec.store.added_items import added_graph
from kgrec.store.base import GraphStore
from kgrec.store.payload import upsert_payload
from kgrec.store.queries import load_query
from kgrec.text.encoder import Encoder, TextEncoder
from kgrec.text.features import item_texts, load_features, named_entities, require_same_model


@dataclass(frozen=True)
class AddResult:
    """What one ``add-items`` call did: ``added`` (this call's items) and ``total`` (all
    items added to the artifact so far)."""

    added: AddedItems
    total: int


def add_items(
    items_path: Path | str,
    artifacts_dir: Path | str,
    feature_config: FeatureConfig,
    triples_path: Path | str | None = None,
    encoder: Encoder | None = None,
    store: GraphStore | None = None,
) -> AddResult:
    """Check, render, embed and keep new items (see the module docstring).

    With ``store`` the new items and their KG links are also upserted into the graph
    database (before ``added_items/`` is written: a failure there leaves the folder as it
    was, and the upsert is idempotent, so the same call can simply be repeated).

    Raises:
        ValidationError: A problem in the files (file, line and field named); nothing is
            written.
        KgrecError: No text features, a text model other than the features' one, or a graph
            database without the dataset.
    """
    artifacts_dir = Path(artifacts_dir)
    previous = load_added(artifacts_dir)
    entities = pd.read_parquet(artifacts_dir / TABLES_DIR / "entities.parquet")
    found = read_new_items(
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
    if store is not None:
        require_dataset(store)

    frame = found.items
    links = links_table((item_id, found.links[item_id]) for item_id in frame.index)
    texts = item_texts(frame, links, named_entities(entities))
    vectors = encoder.encode(texts).numpy().astype(np.float32)  # [n, text_dim]

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    titles = frame["title"] if "title" in frame else pd.Series(frame.index, index=frame.index)
    items = tuple(
        AddedItem(
            item_id=str(item_id),
            title=_text(titles.get(item_id), str(item_id)),
            text=text,
            links=found.links[item_id],
            source=found.sources[item_id],
            added=now,
        )
        for item_id, text in zip(frame.index, texts, strict=True)
    )
    fresh = AddedItems(items, vectors, encoder.model_id)
    if store is not None:
        upsert_payload(store, added_graph(fresh, set(), None))
    everything = previous + fresh if previous is not None else fresh
    save_added(artifacts_dir, everything)
    return AddResult(fresh, len(everything))


def require_dataset(store: GraphStore) -> None:
    """Refuse a graph database without items (the dataset was never loaded into it)."""
    rows = store.query(load_query("serve/count_items")).rows
    if not rows or not int(rows[0][0]):
        raise KgrecError(
            "the graph database has no items: run kgrec build-graph for this dataset first, "
            "or pass --no-db"
        )


def _text(value: Any, fallback: str) -> str:
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return fallback
    return str(value)

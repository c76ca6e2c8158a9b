"""The Neo4j backend against a real Neo4j 5 (only when ``KGREC_NEO4J_URI`` is set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kgrec.config import SplitConfig, StoreConfig
from kgrec.data.contract import read_folder
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.errors import StoreError
from kgrec.store.factory import open_store
from kgrec.store.payload import payload_from_dataset

pytestmark = [
    pytest.mark.neo4j,
    pytest.mark.skipif(not os.environ.get("KGREC_NEO4J_URI"), reason="KGREC_NEO4J_URI is not set"),
]
DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def test_load_is_idempotent_and_reads_are_read_only(tmp_path: Path) -> None:
    dataset = validate(read_folder(DEMO))
    payload = payload_from_dataset(dataset, split_interactions(dataset.interactions, SplitConfig()))
    store = open_store(StoreConfig(backend="neo4j"), tmp_path)
    try:
        store.query("MATCH (n) DETACH DELETE n", write=True)
        counts = store.load(payload, batch_size=5_000)
        assert counts == payload.expected_counts()
        assert store.load(payload) == counts
        with pytest.raises(StoreError):
            store.query("CREATE (:Tag {id: 'x'})")
        hostile = "x'}) MATCH (n) DETACH DELETE n //"
        assert store.query("MATCH (n:User {id: $id}) RETURN n", {"id": hostile}).rows == []
    finally:
        store.close()


def test_missing_uri_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGREC_NEO4J_URI")
    with pytest.raises(StoreError, match="KGREC_NEO4J_URI"):
        open_store(StoreConfig(backend="neo4j"), tmp_path)

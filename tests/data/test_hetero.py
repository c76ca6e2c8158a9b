"""The HeteroData artifact: node/edge counts, reverse edges, no leakage, safe round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.hetero import INTERACTS, GraphArtifact, build_graph_artifact, build_id_map
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate


@pytest.fixture
def artifact(tmp_path: Path) -> GraphArtifact:
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,rating,timestamp\n"
        + "".join(f"u{u},i{(u + k) % 6},4,{k}\n" for u in range(5) for k in range(4)),
        encoding="utf-8",
    )
    (tmp_path / "items.csv").write_text(
        "item_id,title\n" + "".join(f"i{k},Film {k}\n" for k in range(6)), encoding="utf-8"
    )
    (tmp_path / "triples.csv").write_text(
        "head,relation,tail,head_type,tail_type\n"
        "i0,directed_by,d0,item,director\ni1,directed_by,d0,item,director\n"
        "i2,has_genre,g0,item,genre\nu1,has_occupation,o0,user,occupation\n",
        encoding="utf-8",
    )
    (tmp_path / "entities.csv").write_text(
        "entity_id,type,name\nd0,director,Ann\ng0,genre,Noir\no0,occupation,Nurse\n",
        encoding="utf-8",
    )
    dataset = validate(read_folder(tmp_path))
    split = split_interactions(dataset.interactions, SplitConfig())
    return build_graph_artifact(dataset, split, build_id_map(dataset))


def test_node_and_edge_types(artifact: GraphArtifact) -> None:
    data = artifact.to_hetero_data()
    assert set(data.node_types) == {"user", "item", "director", "genre", "occupation"}
    assert data["user"].num_nodes == 5 and data["item"].num_nodes == 6
    assert ("item", "directed_by", "director") in data.edge_types
    assert ("director", "rev_directed_by", "item") in data.edge_types
    assert ("user", "has_occupation", "occupation") in data.edge_types
    fwd = data["item", "directed_by", "director"].edge_index
    rev = data["director", "rev_directed_by", "item"].edge_index
    assert torch.equal(fwd.flip(0), rev)
    data.validate(raise_on_error=True)


def test_no_validation_or_test_edge_in_training_graph(artifact: GraphArtifact) -> None:
    data = artifact.to_hetero_data()
    train = {tuple(e) for e in data[INTERACTS].edge_index.t().tolist()}
    reverse = {
        tuple(e) for e in data["item", "rev_interacts", "user"].edge_index.flip(0).t().tolist()
    }
    for split in ("val", "test"):
        held_out = {tuple(e) for e in artifact.split_edge_index[split].t().tolist()}
        assert held_out, split
        assert not held_out & train
        assert not held_out & reverse
    total = sum(e.size(1) for e in artifact.split_edge_index.values())
    assert total == 20


def test_round_trip_with_weights_only(artifact: GraphArtifact, tmp_path: Path) -> None:
    artifact.save(tmp_path / "a")
    payload = torch.load(tmp_path / "a" / "graph.pt", weights_only=True)
    assert payload["format"] == 1
    loaded = GraphArtifact.load(tmp_path / "a")
    assert loaded.num_nodes == artifact.num_nodes
    for key, value in artifact.kg_edge_index.items():
        assert torch.equal(loaded.kg_edge_index[key], value)
    for key, value in artifact.split_edge_index.items():
        assert torch.equal(loaded.split_edge_index[key], value)
    assert loaded.id_map.id_of("item", 3) == artifact.id_map.id_of("item", 3)
    assert loaded.id_map.index("user", ["u4", "u0"]).tolist() == [4, 0]


def test_id_map_orders_numeric_ids_numerically() -> None:
    from kgrec.data.mapping import IdMap

    ids = IdMap.from_ids({"item": ["10", "9", "100", "9"]})
    assert ids.ids["item"].tolist() == ["9", "10", "100"]
    with pytest.raises(KeyError, match="unknown item id '7'"):
        ids.index("item", ["7"])

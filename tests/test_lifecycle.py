"""Retiring items and forgetting users, end to end through the CLI against the real embedded
FalkorDB server: build, train, retire/forget, recommend, rebuild, retrain."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.config import load_config
from kgrec.data.lifecycle import ForgetList, lifecycle_dir, tombstone_of
from kgrec.store.factory import open_store
from kgrec.text.cache import text_key
from kgrec.text.encoder import HashingEncoder
from kgrec.text.features import compute_features, load_features, node_texts

from .conftest import REPO

runner = CliRunner()
DEMO = REPO / "data" / "demo"
SMALL = {  # the small demo model of conftest.small_demo_config, as YAML sections
    "model": {"embedding_dim": 16, "use_text": False, "min_relation_edges": 1},
    "teacher": {
        "components": ["ease", "entity"],
        "decays": [1.0],
        "ease_l2": [50.0],
        "weight_grid": [0.0, 0.5],
    },
    "train": {
        "device": "cpu",
        "epochs": 1,
        "eval_every": 1,
        "cuts_per_epoch": 1,
        "refit": False,
        "batch_size": 64,
        "blend_grid": [1.0],
    },
}


class World:
    """A demo artifact folder with a trained model, its graph in the real database, text
    features with an embedding cache, and a config file the CLI reads."""

    def __init__(self, root: Path, home: Path, graph: str) -> None:
        self.art = root / "art"
        self.home = home
        self.config_file = root / "kgrec.yaml"
        body: dict[str, Any] = {
            "dataset": {"path": str(DEMO), "name": "demo"},
            "artifacts": str(self.art),
            "state_dir": str(home),
            "store": {"graph": graph},
            **SMALL,
        }
        self.config_file.write_text(yaml.safe_dump(body), encoding="utf-8")
        self.config = load_config(self.config_file, {})

    def cli(self, *args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, [*args, "-c", str(self.config_file)])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def build(self) -> None:
        self.cli("build-graph", "--json")

    def embed(self) -> None:
        cache = self.home / "text-cache"
        compute_features(self.art, self.config.features, cache, encoder=HashingEncoder(32))

    def train(self) -> None:
        self.cli("train", "--promote", "always", "--json")

    def recommend(self, user: str, k: int = 10, *extra: str) -> list[str]:
        out = self.cli("recommend", "--user", user, "-k", str(k), "-f", "json", *extra).stdout
        return [r["item_id"] for r in json.loads(out.splitlines()[-1])["recommendations"]]

    def query(self, cypher: str, **params: Any) -> list[list[Any]]:
        store = open_store(self.config.store, self.config.state_path)
        try:
            return store.query(cypher, params).rows
        finally:
            store.close()


def _demo_users() -> list[str]:
    return sorted(pd.read_csv(DEMO / "users.csv", dtype=str)["user_id"])


def _served_all(world: World, k: int) -> set[str]:
    users_file = world.art.parent / "users.txt"
    users_file.write_text("\n".join(_demo_users()) + "\n", encoding="utf-8")
    out = world.cli("recommend", "--users-file", str(users_file), "-k", str(k), "-f", "json")
    lists = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(lists) == len(_demo_users())
    return {r["item_id"] for row in lists for r in row["recommendations"]}


@pytest.fixture(scope="module")
def world(falkordb_home: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    """One trained world for the module: the tests that write nothing run first, then the
    retire test (which leaves nothing retired), then the forget test."""
    made = World(tmp_path_factory.mktemp("lifecycle"), falkordb_home, "t_lifecycle")
    made.build()
    made.embed()
    made.train()
    return made


# ------------------------------------------------------------------------ bad input first


def test_retiring_an_unknown_item_names_it_and_writes_nothing(world: World) -> None:
    result = world.cli("items", "retire", "i0001", "nope-42", ok=False)
    assert result.exit_code == 1
    assert "nope-42" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (lifecycle_dir(world.art) / "retired.json").exists()
    assert world.query("MATCH (i:Item {id: 'i0001'}) RETURN i.retired") == [[None]]


def test_forgetting_an_unknown_user_names_it_and_writes_nothing(world: World) -> None:
    result = world.cli("users", "forget", "u0001", "ghost-7", "--yes", ok=False)
    assert result.exit_code == 1 and "ghost-7" in result.output
    assert "Traceback" not in result.output
    assert not (lifecycle_dir(world.art) / "forgotten.json").exists()
    assert world.query("MATCH (u:User {id: 'u0001'}) RETURN count(u)") == [[1]]


# ------------------------------------------------------------------------------ retire


def test_retired_item_is_never_recommended_keeps_history_and_survives_rebuild_and_retrain(
    world: World,
) -> None:
    item = world.recommend("u0001", 1)[0]
    world.cli("recommend", "--user", "u0001", "-k", "3", "--record", "--request-id", "r1")
    num_items = len(pd.read_csv(DEMO / "items.csv"))
    assert item in _served_all(world, 10)

    out = world.cli("items", "retire", item, "--json").stdout
    assert json.loads(out)["retired"] == [item]
    assert json.loads(out)["graph_items"] == 1
    retired = lifecycle_dir(world.art) / "retired.json"
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600

    def check_retired() -> None:
        assert item not in world.recommend("u0001", num_items)
        assert item not in _served_all(world, 20)
        assert item not in world.recommend("u0001", num_items, "--seed-items", "i0001")
        assert world.query("MATCH (i:Item {id: $id}) RETURN i.retired", id=item) == [[True]]
        served = world.query(
            "MATCH (:User {id: 'u0001'})-[r:RECOMMENDED]->(i:Item {id: $id}) RETURN count(r)",
            id=item,
        )
        assert served == [[1]]  # the served record is kept
        assert (
            world.query("MATCH (:User)-[r:INTERACTED]->(:Item {id: $id}) RETURN count(r)", id=item)[
                0
            ][0]
            > 0
        )  # so are its interactions

    check_retired()
    world.build()  # the same data: the model is kept; the list and the property come back
    check_retired()
    world.train()
    check_retired()

    out = world.cli("items", "unretire", item, "--json").stdout
    assert json.loads(out)["unretired"] == [item]
    assert item in world.recommend("u0001", num_items)
    assert world.query("MATCH (i:Item {id: $id}) RETURN i.retired", id=item) == [[None]]
    audit = (lifecycle_dir(world.art) / "audit.log").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["action"] for line in audit] == ["retire", "unretire"]


# ------------------------------------------------------------------------------ forget


def test_a_killed_forget_changes_nothing_or_is_finished_by_running_it_again(
    world: World,
) -> None:
    user = "u0005"
    built = [world.art / n for n in ("graph.pt", "id_maps.parquet", "manifest.json")]
    built += [*sorted((world.art / "tables").glob("*.parquet")), world.art / "features.pt"]
    before = {p: p.read_bytes() for p in built}
    args = ["users", "forget", user, "--yes", "-c", str(world.config_file)]

    killed = subprocess.run(
        [sys.executable, "-m", "kgrec", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), "KGREC_FAULT_AT": "forget-prepared"},
        capture_output=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL
    assert {p: p.read_bytes() for p in built} == before  # nothing changed
    assert not (lifecycle_dir(world.art) / "forgotten.json").exists()
    assert world.query("MATCH (u:User {id: $u}) RETURN count(u)", u=user) == [[1]]

    killed = subprocess.run(
        [sys.executable, "-m", "kgrec", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), "KGREC_FAULT_AT": "forget-graph"},
        capture_output=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL
    assert world.query("MATCH (u:User {id: $u}) RETURN count(u)", u=user) == [[0]]
    failed = world.cli("recommend", "--user", user, ok=False)  # refused already
    assert failed.exit_code != 0 and "forgotten" in failed.output

    world.cli("users", "forget", user, "--yes")  # the same command finishes the job
    ids = pd.read_parquet(world.art / "id_maps.parquet")
    assert user not in set(ids["id"])
    assert not [p for p in world.art.iterdir() if p.name.startswith(".forget")]
    assert world.recommend("u0001")


def test_forgotten_user_leaves_graph_artifacts_bundle_and_cache_and_stays_gone(
    world: World,
) -> None:
    user = "u0002"
    world.cli("recommend", "--user", user, "-k", "3", "--record", "--request-id", "r2")
    before = world.query("MATCH (:User {id: $u})-[r]->() RETURN count(r)", u=user)[0][0]
    assert before > 3
    texts_before = _cache_keys(world)
    user_text = _user_text(world, user)
    assert text_key(user_text) in texts_before

    users_before = json.loads((world.art / "model" / "serving" / "users.json").read_text())
    out = json.loads(world.cli("users", "forget", user, "--yes", "--json").stdout)
    removed = out["removed"]
    assert removed["graph"]["users"] == 1 and removed["graph"]["recommended"] == 3
    assert removed["graph"]["interacted"] == removed["interactions"] == before - 3
    assert "retrain" in out["a_retrain_would_also_remove"]

    def check_gone(trained: bool) -> None:
        assert world.query("MATCH (u:User {id: $u}) RETURN count(u)", u=user) == [[0]]
        ids = pd.read_parquet(world.art / "id_maps.parquet")
        assert user not in set(ids["id"])
        for name in ("interactions", "users"):
            table = pd.read_parquet(world.art / "tables" / f"{name}.parquet")
            assert user not in set(table["user_id"])
        if trained:
            assert world.recommend("u0001")  # everyone else is served (re-exported first)
            bundle = world.art / "model" / "serving"
            assert user not in json.loads((bundle / "users.json").read_text())
            failed = world.cli("recommend", "--user", user, ok=False)
            assert failed.exit_code != 0 and "forgotten" in failed.output
            assert len(failed.output.strip().splitlines()) == 1
            seeded = world.cli("recommend", "--user", user, "--seed-items", "i0001", ok=False)
            assert seeded.exit_code != 0 and "forgotten" in seeded.output
            listed = world.art.parent / "forgotten-users.txt"
            listed.write_text(f"u0001\n{user}\n", encoding="utf-8")
            batch = world.cli("recommend", "--users-file", str(listed), "-f", "csv", ok=False)
            errors = {r["user_id"]: r["error"] for r in csv.DictReader(io.StringIO(batch.stdout))}
            assert errors["u0001"] == "" and "forgotten" in errors[user]

    check_gone(trained=True)
    # the tombstone keeps every other index; the bundle's row of the user is empty and zero
    users = json.loads((world.art / "model" / "serving" / "users.json").read_text())
    row = [users_before.index(user)]
    assert users[row[0]] == tombstone_of(ForgetList.load(world.art).token(user))
    assert [u for k, u in enumerate(users) if k != row[0]] == [
        u for k, u in enumerate(users_before) if k != row[0]
    ]
    vectors = np.load(world.art / "model" / "serving" / "user_embedding.npy")
    assert not vectors[row[0]].any()
    graph = torch.load(world.art / "graph.pt", weights_only=True)
    assert all(row[0] not in e[0].tolist() for e in graph["split_edge_index"].values())
    x_dict, meta = load_features(world.art)
    assert not x_dict["user"][row[0]].any() and not meta["has_text"]["user"][row[0]]
    assert text_key(user_text) not in _cache_keys(world)

    private = lifecycle_dir(world.art)
    audit = private / "audit.log"
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600
    for path in private.iterdir():
        assert user not in path.read_text(encoding="utf-8")  # hashes only, never the id
    line = json.loads(audit.read_text(encoding="utf-8").splitlines()[-1])
    assert line["action"] == "forget" and line["users"] == out["hashes"]
    assert ForgetList.load(world.art).contains(user)

    world.build()  # from the raw files, which still hold the user
    check_gone(trained=False)
    manifest = json.loads((world.art / "manifest.json").read_text())
    assert any("forgotten" in note for note in manifest["notes"])
    world.train()
    check_gone(trained=True)


def _user_text(world: World, user: str) -> str:
    ids = pd.read_parquet(world.art / "id_maps.parquet")
    index = int(ids[(ids["node_type"] == "user") & (ids["id"] == user)]["index"].iloc[0])
    return node_texts(world.art)["user"][index]


def _cache_keys(world: World) -> set[bytes]:
    keys: set[bytes] = set()
    for path in (world.home / "text-cache").glob("*.pt"):
        payload = torch.load(path, weights_only=True)
        keys |= {bytes(k) for k in payload["keys"].numpy()}
    return keys

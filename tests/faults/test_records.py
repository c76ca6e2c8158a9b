"""Served records under faults: written during rebuilds (failure 1) and before ``kill -9`` of
the server (failure 2), and retried with the same request id (failure 10)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from kgrec.build import build_graph
from kgrec.config import Config, load_config
from kgrec.errors import KgrecError
from kgrec.serve.recommend import Recommendation
from kgrec.serve.record import record_served, served
from kgrec.store.factory import open_store
from tests.faults.helpers import kill_server, server_pid, write_config

ITEMS = [f"i{n:04d}" for n in range(1, 201)]
USERS = [f"u{n:04d}" for n in range(1, 401)]
K = 5


def served_list(n: int) -> list[Recommendation]:
    """The ``n``-th request's list: ``K`` items."""
    items = [ITEMS[(n * 7 + j * 13) % len(ITEMS)] for j in range(K)]
    return [Recommendation(i, i, 1.0 / r, r) for r, i in enumerate(items, start=1)]


def recorder(config: Config, worker: int, stop: str, acked: str, most_s: float = 60) -> None:
    """Record lists until ``stop`` exists (at most ``most_s`` seconds); append each
    acknowledged request id to ``acked``."""
    store = open_store(config.store, config.state_path)
    n = 0
    deadline = time.monotonic() + most_s
    try:
        with open(acked, "a", encoding="utf-8") as out:
            while not Path(stop).exists() and time.monotonic() < deadline:
                request_id = f"w{worker}-{n}"
                record_served(store, USERS[n % len(USERS)], served_list(n), "m1", None, request_id)
                out.write(request_id + "\n")  # acknowledged: record_served returned
                out.flush()
                n += 1
    finally:
        store.close()


def recorded(config: Config) -> dict[str, list[str]]:
    """Every recorded request id with its items (in rank order)."""
    store = open_store(config.store, config.state_path)
    try:
        rows = store.query(
            "MATCH (:User)-[r:RECOMMENDED]->(i:Item) RETURN r.request_id, r.rank, i.id"
        ).rows
    finally:
        store.close()
    out: dict[str, list[tuple[int, str]]] = {}
    for request_id, rank, item in rows:
        out.setdefault(str(request_id), []).append((int(rank), str(item)))
    return {k: [i for _, i in sorted(v)] for k, v in out.items()}


@pytest.fixture
def config(home: Path, tmp_path: Path) -> Config:
    config = load_config(write_config(tmp_path / "c.yaml", home, tmp_path / "art", "g"))
    build_graph(config)
    return config


def test_records_during_rebuilds_land_exactly_once(config: Config, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    stop = tmp_path / "stop"
    logs = [tmp_path / f"acked-{w}.txt" for w in range(3)]
    workers = [
        ctx.Process(target=recorder, args=(config, w, str(stop), str(log)))
        for w, log in enumerate(logs)
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        rebuilds = 0
        # rebuilds while the workers record: at least 3, more while the machine is so loaded
        # that fewer than 30 records were acknowledged (at most 10)
        while rebuilds < 3 or (_count(logs) < 30 and rebuilds < 10):
            report = build_graph(config)
            assert report.store_counts is not None
            rebuilds += 1
    finally:
        stop.touch()
        for worker in workers:
            worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]

    acked = [line for log in logs for line in log.read_text().split()]
    found = recorded(config)
    lost = [r for r in acked if r not in found]
    wrong = {r: items for r, items in found.items() if items != _items(r)}
    assert len(acked) >= 30, "too few records to test anything"
    assert lost == []  # nothing acknowledged is lost,
    assert wrong == {}  # none duplicated (more than K) or partial (fewer than K)


def _count(logs: list[Path]) -> int:
    """Records acknowledged so far."""
    return sum(len(log.read_text().split()) for log in logs if log.exists())


def _items(request_id: str) -> list[str]:
    n = int(request_id.split("-")[1])
    return [r.item_id for r in served_list(n)]


def test_an_acknowledged_record_survives_kill_9_of_the_server(config: Config, home: Path) -> None:
    store = open_store(config.store, config.state_path)
    record_served(store, "u0001", served_list(1), "m1", None, "req-durable")
    store.close()
    pid = server_pid(home)
    kill_server(home)

    store = open_store(config.store, config.state_path)  # restarts from the append-only log
    try:
        assert server_pid(home) != pid
        assert recorded(config) == {"req-durable": _items("x-1")}
        assert [s.request_id for s in served(store, "u0001", _items("x-1")[0])] == ["req-durable"]
        assert store.counts().relationships["INTERACTED"] == 19_448  # the graph is whole
    finally:
        store.close()


def test_a_retried_request_id_records_once_and_a_reused_one_is_refused(
    config: Config,
) -> None:
    store = open_store(config.store, config.state_path)
    try:
        for _ in range(2):  # the client retries after a timeout
            assert record_served(store, "u0002", served_list(3), "m1", None, "req-7") == K
        with pytest.raises(KgrecError, match="'req-7' of user 'u0002' was already recorded"):
            record_served(store, "u0002", served_list(4), "m1", None, "req-7")
    finally:
        store.close()
    assert recorded(config) == {"req-7": _items("x-3")}

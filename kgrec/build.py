"""``build-graph``: raw files -> validated tables -> id maps -> artifacts and graph database.

One writer at a time: the build holds the artifact folder's lock and the database graph's
lock (:mod:`kgrec.locks`) from start to end; a second build fails fast naming the holder, or
waits (``wait=True``). Nothing is written until the input has passed validation. Artifacts
are written into a staging sibling folder (with a sha256 of every file in ``manifest.json``,
verified by :func:`load_artifact`) and the database into a staging graph; then a journal is
written and both are swapped (:mod:`kgrec.swap`). A failure at any step leaves both as they
were, and a ``kill -9`` at any step is finished or rolled back by the next command.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from kgrec.config import Config
from kgrec.data.adapters import load_adapter
from kgrec.data.added_interactions import (
    ADDED_INTERACTIONS_DIR,
    carry_over_interactions,
    load_added_interactions,
)
from kgrec.data.added_items import ADDED_DIR, load_added
from kgrec.data.contract import DatasetTables, read_folder
from kgrec.data.hetero import GraphArtifact, build_graph_artifact, build_id_map
from kgrec.data.layout import GRAPH_FILE, ID_MAP_FILE, MANIFEST, TABLES_DIR
from kgrec.data.lifecycle import LIFECYCLE_DIR
from kgrec.data.split import SPLITS, facts_known_in_training, split_interactions
from kgrec.data.validate import Dataset, validate
from kgrec.errors import KgrecError
from kgrec.faults import fault_point
from kgrec.files import DamagedFileError, old_dir, staging_dir
from kgrec.lifecycle import drop_forgotten, with_retired
from kgrec.locks import writer_locks
from kgrec.manifest import rebuild_command, verify_artifact, write_manifest
from kgrec.progress import Reporter
from kgrec.store.added_interactions import added_interactions_graph
from kgrec.store.added_items import added_graph
from kgrec.store.base import GraphCounts, GraphPayload, StagedStore
from kgrec.store.payload import payload_from_dataset
from kgrec.swap import (
    SwapJournal,
    clear_journal,
    journal_path,
    new_journal,
    recover,
    swap_artifacts,
    tidy,
    write_journal,
)


@dataclass(frozen=True)
class BuildReport:
    """What ``build-graph`` loaded, as counted in the input, the artifact and the database."""

    dataset: str
    artifacts: str
    input_counts: dict[str, int]
    graph_counts: dict[str, int]
    store: str | None
    store_counts: GraphCounts | None
    expected_store_counts: GraphCounts | None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_dataset(config: Config) -> DatasetTables:
    """Read the configured dataset into contract tables (through its adapter)."""
    ds = config.dataset
    path = Path(ds.path)
    if ds.adapter == "contract":
        return read_folder(path, name=ds.name)
    kg_path = Path(ds.kg_path) if ds.kg_path else None
    tables = load_adapter(ds.adapter, path, kg_path=kg_path)
    if ds.name:
        tables = replace(tables, name=ds.name)
    return tables


def input_counts(dataset: Dataset, split: pd.Series) -> dict[str, int]:
    """Counts straight from the validated tables (the ground truth for the report)."""
    counts = {
        "users": len(dataset.users),
        "items": len(dataset.items),
        "entities": len(dataset.entities),
        "interactions": len(dataset.interactions),
        "triples": len(dataset.triples),
    }
    labels = split.value_counts()
    for name in SPLITS:
        counts[f"interactions:{name}"] = int(labels.get(name, 0))
    return counts


def graph_counts(artifact: GraphArtifact) -> dict[str, int]:
    """The same counts as :func:`input_counts`, read back from the graph artifact."""
    counts = {
        "users": artifact.num_nodes["user"],
        "items": artifact.num_nodes["item"],
        "entities": sum(n for t, n in artifact.num_nodes.items() if t not in ("user", "item")),
        "interactions": sum(int(e.size(1)) for e in artifact.split_edge_index.values()),
        "triples": sum(int(e.size(1)) for e in artifact.kg_edge_index.values()),
    }
    for name in SPLITS:
        counts[f"interactions:{name}"] = int(artifact.split_edge_index[name].size(1))
    return counts


def config_locks(
    config: Config, reporter: Reporter, *, wait: bool = False, database: bool | None = None
) -> AbstractContextManager[None]:
    """The writer locks of ``config``'s artifact folder and (when ``database``, default:
    when the database is enabled) its graph; see :func:`kgrec.locks.writer_locks`."""
    use_db = config.store.enabled if database is None else database
    return writer_locks(
        config.artifacts_dir,
        config.state_path if use_db else None,
        config.store.graph,
        wait=wait,
        on_wait=lambda holder: reporter.note(
            f"waiting for {holder or 'another process'} to finish"
        ),
    )


def build_graph(
    config: Config, reporter: Reporter | None = None, *, wait: bool = False
) -> BuildReport:
    """Run the whole ``build-graph`` stage for ``config``; see the module docstring.

    Args:
        wait: Queue behind another writer of the same artifact folder or graph instead of
            failing with :class:`~kgrec.locks.BusyError`.
    """
    reporter = reporter or Reporter()
    with config_locks(config, reporter, wait=wait):
        fault_point("locked")
        target = config.artifacts_dir
        for note in recover(target, config.store) + tidy(target):
            reporter.note(note)
        return _build(config, reporter)


def _build(config: Config, reporter: Reporter) -> BuildReport:
    seconds: dict[str, float] = {}
    dataset, split, artifact = _prepare(config, reporter, seconds)
    counts = input_counts(dataset, split)
    built = graph_counts(artifact)
    if built != counts:  # an indexing bug, never a user error
        raise KgrecError(f"graph artifact counts {built} differ from the input {counts}")

    target = config.artifacts_dir
    staging = staging_dir(target)
    try:
        clock = time.perf_counter()
        with reporter.stage("Writing artifacts"):
            artifact.save(staging)
            _write_tables(dataset, split, staging / TABLES_DIR)
            carried = _carry_over(target, staging)
            carried += carry_over_interactions(target, staging, *_known(dataset, target))
            write_manifest(staging, config, dataset.name, counts, [*dataset.notes, *carried])
        seconds["artifacts"] = time.perf_counter() - clock
        fault_point("artifacts-written")

        journal = new_journal(target, staging, old_dir(target))
        loaded = None
        if config.store.enabled:
            clock = time.perf_counter()
            payload = _with_added_items(payload_from_dataset(dataset, split), dataset, target)
            payload = with_retired(payload, target)
            payload = _with_added_interactions(payload, dataset, staging)
            loaded, journal = _load_database(config, payload, journal, reporter)
            seconds["store"] = time.perf_counter() - clock
        write_journal(journal)
        swap_artifacts(journal, between=lambda: fault_point("artifacts-half-swapped"))
        clear_journal(target)
        fault_point("swapped")
    except BaseException:
        if journal_path(target).exists():  # failed mid-swap: finish or roll back now
            with suppress(KgrecError):  # e.g. the database is down: the next command recovers
                recover(target, config.store)
        raise
    finally:
        if staging.exists() and not journal_path(target).exists():
            shutil.rmtree(staging, ignore_errors=True)
    return BuildReport(
        dataset=dataset.name,
        artifacts=str(target),
        input_counts=counts,
        graph_counts=built,
        store=loaded[0] if loaded else None,
        store_counts=loaded[1] if loaded else None,
        expected_store_counts=payload.expected_counts() if loaded else None,
        seconds=seconds,
        notes=[*dataset.notes, *carried],
    )


def _prepare(
    config: Config, reporter: Reporter, seconds: dict[str, float]
) -> tuple[Dataset, pd.Series, GraphArtifact]:
    """Read, validate, split and index the dataset (nothing written yet)."""
    clock = time.perf_counter()
    with reporter.stage("Reading input"):
        tables = drop_forgotten(read_dataset(config), config.artifacts_dir)
    seconds["read"] = time.perf_counter() - clock
    clock = time.perf_counter()
    with reporter.stage("Validating"):
        dataset = validate(tables)
    for note in dataset.notes:
        reporter.note(note)
    seconds["validate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    with reporter.stage("Splitting and indexing"):
        split = split_interactions(dataset.interactions, config.split)
        dataset = facts_known_in_training(dataset, split)
        artifact = build_graph_artifact(dataset, split, build_id_map(dataset))
    seconds["index"] = time.perf_counter() - clock
    return dataset, split, artifact


def _load_database(
    config: Config, payload: GraphPayload, journal: SwapJournal, reporter: Reporter
) -> tuple[tuple[str, GraphCounts], SwapJournal]:
    """Load ``payload`` into a staging graph, journal, swap it in; returns
    ``((store name, counts read back), journal)``."""
    from kgrec.store.factory import open_store

    expected = payload.expected_counts()
    total = sum(expected.nodes.values()) + sum(expected.relationships.values())
    store = open_store(config.store, config.state_path)
    try:
        with reporter.stage(f"Loading {store.name}", total=total) as advance:
            progress = _faulting(advance)
            batch_size = config.store.batch_size
            if not isinstance(store, StagedStore):  # Neo4j: one transaction, committed here
                counts = store.load(payload, batch_size=batch_size, progress=progress)
                return (store.name, counts), replace(journal, db_done=True)
            staging_graph = store.staging_name(_tag(Path(journal.target)))
            store.stage(payload, batch_size=batch_size, progress=progress, staging=staging_graph)
        fault_point("store-loaded")
        journal = replace(
            journal,
            graph=config.store.graph,
            staging_graph=staging_graph,
            state_dir=str(config.state_path.absolute()),
        )
        write_journal(journal)
        fault_point("journal-written")
        counts = store.commit(staging_graph)
        fault_point("db-swapped")
        return (store.name, counts), replace(journal, db_done=True)
    finally:
        store.close()


def _faulting(advance: Callable[[int], None]) -> Callable[[int], None]:
    """``advance`` plus the ``store-batch`` fault point after the first batch."""

    def progress(n: int) -> None:
        advance(n)
        fault_point("store-batch")

    return progress


def _tag(target: Path) -> str:
    """A short tag of the artifact folder, so builds of different folders into one graph
    never share a staging graph."""
    return hashlib.sha256(str(Path(target).absolute()).encode()).hexdigest()[:8]


def _write_tables(dataset: Dataset, split: pd.Series, folder: Path) -> None:
    """Validated tables for later stages (text features, explanations)."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset.interactions.assign(split=split.to_numpy()).to_parquet(
        folder / "interactions.parquet", index=False
    )
    for name in ("items", "users", "entities", "triples"):
        frame: pd.DataFrame = getattr(dataset, name)
        frame.astype({c: str for c in frame.columns if frame[c].dtype == object}).to_parquet(
            folder / f"{name}.parquet", index=False
        )


def _with_added_items(payload: GraphPayload, dataset: Dataset, target: Path) -> GraphPayload:
    """``payload`` plus the items of ``kgrec add-items`` kept in ``target`` (and their links
    to entities the dataset still has), so a rebuilt graph holds them too."""
    added = load_added(target)
    if added is None:
        return payload
    extra = added_graph(
        added, set(dataset.items["item_id"].astype(str)), set(dataset.entities["entity_id"])
    )
    return GraphPayload(
        nodes=payload.nodes + extra.nodes, relationships=payload.relationships + extra.relationships
    )


def _known(dataset: Dataset, target: Path) -> tuple[set[tuple[str, str]], set[str]]:
    """The ``(user, item)`` pairs of ``dataset`` and its items plus the added ones."""
    inter = dataset.interactions
    pairs = set(zip(inter["user_id"].astype(str), inter["item_id"].astype(str), strict=True))
    added = load_added(target)
    items = set(dataset.items["item_id"].astype(str)) | set(added.item_ids if added else [])
    return pairs, items


def _with_added_interactions(
    payload: GraphPayload, dataset: Dataset, staging: Path
) -> GraphPayload:
    """``payload`` plus the interactions of ``kgrec add-interactions`` carried into
    ``staging`` (and their users the dataset lacks), so a rebuilt graph holds them too."""
    added = load_added_interactions(staging)
    if not len(added):
        return payload
    users = set(dataset.users["user_id"].astype(str))
    extra = added_interactions_graph(added, [u for u in added.user_ids if u not in users])
    return GraphPayload(
        nodes=payload.nodes + extra.nodes, relationships=payload.relationships + extra.relationships
    )


BUILD_OUTPUTS = frozenset({GRAPH_FILE, ID_MAP_FILE, MANIFEST, TABLES_DIR})
"""What ``build-graph`` writes; anything else in the artifact folder was made from it."""


def _carry_over(target: Path, staging: Path) -> list[str]:
    """Keep what later stages made from the previous build; returns notes for the report.

    The items of ``kgrec add-items`` and the lifecycle lists (retired items, forgotten
    users, the audit log) are always kept. Everything else (text features,
    trained models, benchmark runs) is kept only when the new graph, id maps and tables are
    byte-identical to the old ones, i.e. the same data was rebuilt (to reload the database,
    say); otherwise it would describe other data and is dropped, with a note.
    """
    if not target.is_dir():
        return []
    kept = (ADDED_DIR, LIFECYCLE_DIR)
    for name in kept:
        if (target / name).is_dir():
            shutil.copytree(target / name, staging / name)
    derived = sorted(
        p
        for p in target.iterdir()
        if p.name not in BUILD_OUTPUTS | set(kept) and p.name != ADDED_INTERACTIONS_DIR
    )
    if not derived:
        return []
    names = ", ".join(p.name for p in derived)
    if _build_digest(target) != _build_digest(staging):
        return [
            f"the data changed, so the previous {names} were removed: run kgrec embed and "
            "kgrec train again"
        ]
    for path in derived:
        if path.is_dir():
            shutil.copytree(path, staging / path.name)
        else:
            shutil.copy2(path, staging / path.name)
    return [f"same data as before: kept {names}"]


def _build_digest(folder: Path) -> str:
    """sha256 over the graph, the id maps and the tables of an artifact folder."""
    digest = hashlib.sha256()
    files = [folder / GRAPH_FILE, folder / ID_MAP_FILE]
    files += sorted((folder / TABLES_DIR).glob("*.parquet"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"\0missing")
    return digest.hexdigest()


def load_artifact(folder: Path | str) -> GraphArtifact:
    """Load the graph artifact written by ``build-graph`` (verified; clear error when absent)."""
    folder = Path(folder)
    if not (folder / "graph.pt").exists():
        raise KgrecError(f"no graph artifact in {folder}: run `kgrec build-graph` first")
    verify_artifact(folder)
    try:
        return GraphArtifact.load(folder)
    except DamagedFileError:
        raise
    except Exception as exc:  # torch and pyarrow raise several types on damaged files
        raise DamagedFileError(folder, f"unreadable: {exc}", rebuild_command(folder)) from exc

"""``build-graph``: raw files -> validated tables -> id maps -> artifacts and graph database.

Nothing is written until the input has passed validation. Artifacts are written into a
temporary sibling folder and swapped into place only after the database load succeeded (the
store's own load is all-or-nothing), so a failure at any step leaves both as they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from kgrec import __version__
from kgrec.config import Config
from kgrec.data.adapters import load_adapter
from kgrec.data.added_items import ADDED_DIR, load_added
from kgrec.data.contract import DatasetTables, read_folder
from kgrec.data.hetero import GraphArtifact, build_graph_artifact, build_id_map
from kgrec.data.hetero import load_artifact as load_artifact  # moved to data; kept importable
from kgrec.data.layout import GRAPH_FILE, ID_MAP_FILE, MANIFEST, TABLES_DIR
from kgrec.data.split import SPLITS, facts_known_in_training, split_interactions
from kgrec.data.validate import Dataset, validate
from kgrec.errors import KgrecError
from kgrec.files import staging_dir, swap_dir
from kgrec.progress import Reporter
from kgrec.store.added_items import added_graph
from kgrec.store.base import GraphCounts, GraphPayload
from kgrec.store.factory import open_store
from kgrec.store.payload import payload_from_dataset


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


def build_graph(config: Config, reporter: Reporter | None = None) -> BuildReport:
    """Run the whole ``build-graph`` stage for ``config``; see the module docstring."""
    reporter = reporter or Reporter()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    with reporter.stage("Reading input"):
        tables = read_dataset(config)
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
        id_map = build_id_map(dataset)
        artifact = build_graph_artifact(dataset, split, id_map)
    counts = input_counts(dataset, split)
    built = graph_counts(artifact)
    if built != counts:  # an indexing bug, never a user error
        raise KgrecError(f"graph artifact counts {built} differ from the input {counts}")
    seconds["index"] = time.perf_counter() - clock
    clock = time.perf_counter()

    target = config.artifacts_dir
    staging = staging_dir(target)
    try:
        with reporter.stage("Writing artifacts"):
            artifact.save(staging)
            _write_tables(dataset, split, staging / TABLES_DIR)
        seconds["artifacts"] = time.perf_counter() - clock
        clock = time.perf_counter()

        store_name = None
        store_counts = expected = None
        if config.store.enabled:
            payload = _with_added_items(payload_from_dataset(dataset, split), dataset, target)
            expected = payload.expected_counts()
            total = sum(expected.nodes.values()) + sum(expected.relationships.values())
            store = open_store(config.store, config.state_path)
            store_name = store.name
            try:
                with reporter.stage(f"Loading {store.name}", total=total) as advance:
                    store_counts = store.load(
                        payload, batch_size=config.store.batch_size, progress=advance
                    )
            finally:
                store.close()
            seconds["store"] = time.perf_counter() - clock
            clock = time.perf_counter()

        carried = _carry_over(target, staging)
        report = BuildReport(
            dataset=dataset.name,
            artifacts=str(target),
            input_counts=counts,
            graph_counts=built,
            store=store_name,
            store_counts=store_counts,
            expected_store_counts=expected,
            seconds=seconds,
            notes=[*dataset.notes, *carried],
        )
        _write_manifest(staging / MANIFEST, config, report)
        swap_dir(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return report


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


def _write_manifest(path: Path, config: Config, report: BuildReport) -> None:
    manifest = {
        "kgrec_version": __version__,
        "dataset": report.dataset,
        "config": asdict(config),
        "counts": report.input_counts,
        "store": report.store,
        "notes": report.notes,
    }
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


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


BUILD_OUTPUTS = frozenset({GRAPH_FILE, ID_MAP_FILE, MANIFEST, TABLES_DIR})
"""What ``build-graph`` writes; anything else in the artifact folder was made from it."""


def _carry_over(target: Path, staging: Path) -> list[str]:
    """Keep what later stages made from the previous build; returns notes for the report.

    The items of ``kgrec add-items`` are always kept. Everything else (text features,
    trained models, benchmark runs) is kept only when the new graph, id maps and tables are
    byte-identical to the old ones, i.e. the same data was rebuilt (to reload the database,
    say); otherwise it would describe other data and is dropped, with a note.
    """
    if not target.is_dir():
        return []
    if (target / ADDED_DIR).is_dir():
        shutil.copytree(target / ADDED_DIR, staging / ADDED_DIR)
    derived = sorted(
        p for p in target.iterdir() if p.name not in BUILD_OUTPUTS and p.name != ADDED_DIR
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

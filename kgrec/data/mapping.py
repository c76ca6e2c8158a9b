"""Id maps: external ids (strings) <-> contiguous node indices, one map per node type."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def _ordered(ids: Iterable[str]) -> np.ndarray:
    """Unique ids in a stable order: numerically when every id is an integer, else lexically."""
    unique = pd.unique(pd.Series(list(ids), dtype=object))
    values = pd.Series(unique, dtype=object)
    if len(values) and values.str.fullmatch(r"-?\d+").all():
        order = np.argsort(values.astype("int64").to_numpy(), kind="stable")
    else:
        order = np.argsort(values.to_numpy(dtype=str), kind="stable")
    return values.to_numpy(dtype=object)[order]


@dataclass(frozen=True)
class IdMap:
    """Maps of every node type. ``ids[node_type][index]`` is the external id of a node."""

    ids: Mapping[str, np.ndarray]

    @classmethod
    def from_ids(cls, ids_by_type: Mapping[str, Iterable[str]]) -> IdMap:
        return cls({node_type: _ordered(ids) for node_type, ids in ids_by_type.items()})

    @property
    def node_types(self) -> list[str]:
        return list(self.ids)

    def num_nodes(self, node_type: str) -> int:
        return len(self.ids[node_type])

    def index(self, node_type: str, ids: Iterable[str] | pd.Series) -> np.ndarray:
        """Indices ``[len(ids)]`` (int64) of external ``ids``; ``KeyError`` on an unknown id."""
        lookup = pd.Index(self.ids[node_type])
        series = ids if isinstance(ids, pd.Series) else pd.Series(list(ids), dtype=object)
        positions = lookup.get_indexer(series)
        if (positions < 0).any():
            missing = series.iloc[int(np.flatnonzero(positions < 0)[0])]
            raise KeyError(f"unknown {node_type} id {missing!r}")
        return positions.astype(np.int64)

    def id_of(self, node_type: str, index: int) -> str:
        return str(self.ids[node_type][index])

    def to_frame(self) -> pd.DataFrame:
        """Long form: ``node_type``, ``index``, ``id``."""
        parts = [
            pd.DataFrame({"node_type": t, "index": np.arange(len(ids)), "id": ids.astype(str)})
            for t, ids in self.ids.items()
        ]
        return pd.concat(parts, ignore_index=True)

    def save(self, path: Path) -> None:
        self.to_frame().to_parquet(path, index=False)

    @classmethod
    def load(cls, path: Path) -> IdMap:
        frame = pd.read_parquet(path)
        ids: dict[str, np.ndarray] = {}
        for node_type, group in frame.groupby("node_type", sort=False):
            ids[str(node_type)] = group.sort_values("index")["id"].to_numpy(dtype=object)
        return cls(ids)

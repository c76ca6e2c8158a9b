"""What ``build-graph`` writes into an artifact folder (file names only; torch-free)."""

from __future__ import annotations

GRAPH_FILE = "graph.pt"
"""The graph tensors (:class:`kgrec.data.hetero.GraphArtifact`)."""
ID_MAP_FILE = "id_maps.parquet"
"""External id <-> index per node type (:class:`kgrec.data.mapping.IdMap`)."""
TABLES_DIR = "tables"
"""The validated tables, ``<name>.parquet`` (interactions with their split)."""
MANIFEST = "manifest.json"
"""The build's configuration, counts and notes."""

"""kgrec: a knowledge-graph recommender.

Triples go into a graph database (FalkorDB embedded, or Neo4j) and into a PyTorch Geometric
``HeteroData``; a relation-aware GNN learns from them. Importing this package has no side
effects and imports nothing heavy.

For analysts, :func:`query` and :func:`connect` return Cypher results as pandas DataFrames
(see :mod:`kgrec.store.frame`)::

    import kgrec
    genres = kgrec.query("interactions_per_genre", config="configs/ml-100k.yaml")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import pandas as pd

    from kgrec.config import Config
    from kgrec.store.frame import Graph

__version__ = "0.1.0"
__all__ = ["__version__", "connect", "query"]


def query(
    query: str,
    params: Mapping[str, Any] | None = None,
    /,
    *,
    config: Config | str | Path | None = None,
    write: bool = False,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run a library query, a ``.cypher`` file or Cypher text; its rows as a DataFrame.

    Parameters are keyword arguments (``user="196", limit=5``) or a dict; ``config`` is a
    config path or :class:`~kgrec.config.Config` (default: ``$KGREC_CONFIG``). Read-only
    unless ``write=True``. See :mod:`kgrec.store.frame`.
    """
    from kgrec.store.frame import query as run

    return run(query, params, config=config, write=write, **kwargs)


def connect(config: Config | str | Path | None = None) -> Graph:
    """A connection whose ``.query(...)`` returns DataFrames and ``.schema()`` the graph's
    schema; use it in a ``with`` block. See :mod:`kgrec.store.frame`."""
    from kgrec.store.frame import connect as open_graph

    return open_graph(config)

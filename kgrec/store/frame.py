"""Query results as pandas DataFrames: the analysts' Python API, ``kgrec.query`` and
``kgrec.connect``::

    import kgrec

    kgrec.query("top_items_per_genre", genre="Drama", limit=3, config="configs/ml-100k.yaml")
    with kgrec.connect("configs/ml-100k.yaml") as graph:
        ages = graph.query("MATCH (u:User) RETURN u.age AS age")
        labels = graph.schema().labels

A query is a library name (``kgrec cypher list``), a ``.cypher`` file or Cypher text, exactly
as for ``kgrec cypher run``; parameters are keyword arguments (or a dict), sent as Cypher
parameters with the types Python gives them, and converted to the types a library query's
header declares. Reads are read-only unless ``write=True``. On FalkorDB a query whose counts
the engine gets wrong (see :mod:`kgrec.store.guard`) raises a :class:`RowMergeWarning` first.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from kgrec.config import Config, config_file, load_config
from kgrec.store.base import QueryResult
from kgrec.store.factory import open_store
from kgrec.store.guard import row_merge_risk
from kgrec.store.library import bind_params, resolve_query
from kgrec.store.schema import GraphSchema, read_schema


class RowMergeWarning(UserWarning):
    """The query has a shape whose counts FalkorDB 4.16 gets wrong (see the message)."""


def to_frame(result: QueryResult) -> pd.DataFrame:
    """``result`` as a DataFrame: one column per returned column, in order."""
    return pd.DataFrame(result.rows, columns=result.columns)


class Graph:
    """A connection to the configured graph database that answers with DataFrames.

    Args:
        config: A :class:`~kgrec.config.Config`, the path of a YAML config, or ``None`` for
            ``$KGREC_CONFIG`` (else ``configs/demo.yaml`` when it exists, else defaults),
            like the ``kgrec`` commands. The embedded server is started if needed.
    """

    def __init__(self, config: Config | str | Path | None = None) -> None:
        if not isinstance(config, Config):
            config = load_config(config_file(Path(config) if config is not None else None))
        self.config = config
        self.store = open_store(config.store, config.state_path)

    def query(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        write: bool = False,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Run ``query`` with ``params`` and ``kwargs`` as its parameters; rows as a DataFrame."""
        return to_frame(self.result(query, params, write=write, **kwargs))

    def result(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        write: bool = False,
        **kwargs: Any,
    ) -> QueryResult:
        """Like :meth:`query`, as a plain :class:`~kgrec.store.base.QueryResult`."""
        resolved = resolve_query(query)
        bound = bind_params(resolved, {**(params or {}), **kwargs})
        if self.store.name == "falkordb":
            risk = row_merge_risk(resolved.text)
            if risk is not None:
                message = risk.message().removeprefix("warning: ")
                warnings.warn(message, RowMergeWarning, stacklevel=3)
        return self.store.query(resolved.text, bound, write=write)

    def schema(self) -> GraphSchema:
        """Labels, relationship types, properties and name coverage (``kgrec db schema``)."""
        return read_schema(self.store)

    def close(self) -> None:
        """Close the connection (an embedded server keeps running)."""
        self.store.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def connect(config: Config | str | Path | None = None) -> Graph:
    """A :class:`Graph` for ``config`` (see :class:`Graph`); close it, or use ``with``."""
    return Graph(config)


def query(
    query: str,
    params: Mapping[str, Any] | None = None,
    /,
    *,
    config: Config | str | Path | None = None,
    write: bool = False,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run one query on the configured graph and return its rows as a DataFrame.

    ``kgrec.query("similar_users", user="196", config="configs/ml-100k.yaml")``
    """
    with Graph(config) as graph:
        return graph.query(query, params, write=write, **kwargs)

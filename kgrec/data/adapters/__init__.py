"""Adapters: public dataset formats -> the dataset contract (:mod:`kgrec.data.contract`).

Each adapter reads raw files in place and returns :class:`~kgrec.data.contract.DatasetTables`
whose tables remember the raw file and line of every row, so validation errors point at the
original input (``u.data:57 [rating] ...``).

==================  ===========================================================================
name                input
==================  ===========================================================================
``ml-100k``         MovieLens 100K folder (u.data, u.item, u.user, u.genre); ``kg_path``: the
                    ml-100k Freebase KG folder (triples.csv, entities.csv)
``ml-latest-small`` MovieLens latest-small (ratings.csv, movies.csv, tags.csv)
``ml-1m``           MovieLens 1M (ratings.dat, movies.dat, users.dat; ``::``, Latin-1)
``kgat``            KGAT format (train.txt, test.txt, kg_final.txt, *_list.txt)
==================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kgrec.data.contract import DatasetTables
from kgrec.errors import KgrecError

Adapter = Callable[..., DatasetTables]


def _registry() -> dict[str, Adapter]:
    from kgrec.data.adapters.kgat import read_kgat
    from kgrec.data.adapters.movielens import read_ml1m, read_ml100k, read_ml_latest

    return {
        "ml-100k": read_ml100k,
        "ml-latest-small": read_ml_latest,
        "ml-1m": read_ml1m,
        "kgat": read_kgat,
    }


ADAPTERS = ("ml-100k", "ml-latest-small", "ml-1m", "kgat")
"""Names accepted by :func:`load_adapter` (besides ``contract``)."""


def load_adapter(name: str, path: Path, *, kg_path: Path | None = None) -> DatasetTables:
    """Read ``path`` (and the optional KG folder ``kg_path``) with the adapter ``name``."""
    registry = _registry()
    if name not in registry:
        raise KgrecError(
            f"unknown adapter {name!r}; choose one of: contract, {', '.join(ADAPTERS)}"
        )
    if kg_path is not None and name != "ml-100k":
        raise KgrecError(f"--kg is only supported with the ml-100k adapter, not {name!r}")
    if name == "ml-100k":
        return registry[name](Path(path), kg_path=Path(kg_path) if kg_path else None)
    return registry[name](Path(path))

"""Adapters: public dataset formats -> the dataset contract (:mod:`kgrec.data.contract`).

Each adapter reads the raw files in place (nothing is copied) and returns
:class:`~kgrec.data.contract.DatasetTables` whose tables remember the raw file and line of
every row, so validation errors point at the original input (``u.data:57 [rating] ...``).
Ids are strings. The formats are described in :mod:`.movielens`, :mod:`.lastfm` and :mod:`.kgat`.

==================  ===========================================================================
name                input
==================  ===========================================================================
``ml-100k``         MovieLens 100K folder (u.data, u.item, u.user, u.genre); ``kg_path``: the
                    ml-100k Freebase KG folder (triples.csv, entities.csv, item_map.csv)
``ml-latest-small`` MovieLens latest-small (ratings.csv, movies.csv, optional tags.csv)
``ml-1m``           MovieLens 1M (ratings.dat, movies.dat, users.dat; ``::``, Latin-1)
``lastfm``          HetRec 2011 Last.fm 2K (user_artists.dat, artists.dat, optional
                    user_taggedartists.dat + tags.dat, user_friends.dat)
``kgat``            KGAT format (train.txt, test.txt, item_list.txt, optional user_list.txt,
                    kg_final.txt, entity_list.txt, relation_list.txt); given train/test split
==================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kgrec.data.adapters.kgat import read_kgat
from kgrec.data.adapters.lastfm import read_lastfm
from kgrec.data.adapters.movielens import read_ml1m, read_ml100k, read_ml_latest
from kgrec.data.contract import DatasetTables
from kgrec.errors import KgrecError

Adapter = Callable[[Path], DatasetTables]
"""Reads one dataset folder into contract tables."""

ADAPTERS: dict[str, Adapter] = {
    "ml-100k": read_ml100k,
    "ml-latest-small": read_ml_latest,
    "ml-1m": read_ml1m,
    "kgat": read_kgat,
    "lastfm": read_lastfm,
}
"""Adapter name (``dataset.adapter`` in a config) -> reader."""
KG_ADAPTERS: dict[str, Callable[..., DatasetTables]] = {"ml-100k": read_ml100k}
"""Adapters that also take an extra knowledge-graph folder (``kg_path``)."""

__all__ = ["ADAPTERS", "KG_ADAPTERS", "load_adapter"]


def load_adapter(name: str, path: Path, *, kg_path: Path | None = None) -> DatasetTables:
    """Read the folder ``path`` (and the KG folder ``kg_path``) with the adapter ``name``.

    Raises :class:`~kgrec.errors.KgrecError` for an unknown name or a ``kg_path`` the adapter
    cannot use, and :class:`~kgrec.errors.ValidationError` for missing or unreadable files.
    """
    if name not in ADAPTERS:
        raise KgrecError(
            f"unknown adapter {name!r}; choose one of: contract, {', '.join(ADAPTERS)}"
        )
    if kg_path is None:
        return ADAPTERS[name](Path(path))
    if name not in KG_ADAPTERS:
        raise KgrecError(
            f"adapter {name!r} takes no extra KG folder (kg_path / --kg); "
            f"only {', '.join(KG_ADAPTERS)} does"
        )
    return KG_ADAPTERS[name](Path(path), kg_path=Path(kg_path))

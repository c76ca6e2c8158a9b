"""The record of what was served: ``(:User)-[:RECOMMENDED {...}]->(:Item)`` in the graph store.

Each served list is written by one parameterised query (``cypher/serve/
record_recommended.cypher``), whole or not at all: ``UNWIND $rows ... MERGE`` on
``request_id``, so recording the same request twice (a retry with ``--request-id``) creates
nothing new, and concurrent requests (different ids) never lose or duplicate each other's
relationships. The store returns only once the record is durable (see
:mod:`kgrec.store.falkordb`). Relationship properties: ``rank`` (1 = best), ``score``,
``model_id`` (see :mod:`kgrec.serve.bundle`), ``at`` (ISO-8601 UTC of the first recording),
``reasons`` (the customer-facing sentences, a list of strings, strongest first), ``shares``
(each reason's share of the score, a list of floats), ``paths`` (the same reasons as
explanation paths with their hops, a JSON string, for staff) and ``request_id``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kgrec.errors import KgrecError
from kgrec.serve.graph_path import GraphPath, paths_json
from kgrec.serve.recommend import Recommendation
from kgrec.store.queries import load_query

if TYPE_CHECKING:  # the protocol's module imports pandas; recording does not need it
    from kgrec.store.base import GraphStore


@dataclass(frozen=True)
class Served:
    """One recorded recommendation of an item to a user."""

    request_id: str
    rank: int
    score: float
    model_id: str
    at: str
    paths: list[GraphPath]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_request_id() -> str:
    """A fresh random request id."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ServedList:
    """One served list to record: whose, what, by which model, why, under which request id."""

    user_id: str
    recs: Sequence[Recommendation]
    model_id: str
    paths: Mapping[str, Sequence[GraphPath]] | None = None
    request_id: str | None = None


def record_served(
    store: GraphStore,
    user_id: str,
    recs: Sequence[Recommendation],
    model_id: str,
    paths: Mapping[str, Sequence[GraphPath]] | None = None,
    request_id: str | None = None,
) -> int:
    """Record ``recs`` served to ``user_id``; returns how many relationships the query matched.

    Args:
        store: An open graph store.
        user_id: External user id (a ``:User`` in the store).
        recs: The served list.
        model_id: The serving bundle's model id.
        paths: Per item id, its explanation paths.
        request_id: Id of this request (default: a fresh one); re-recording it is a no-op.

    Raises:
        KgrecError: when the user or some item is not in the graph store, or this user's
            ``request_id`` was recorded with other items (nothing is written then).
    """
    served_list = ServedList(str(user_id), recs, model_id, paths, request_id)
    outcome = record_served_many(store, [served_list])[0]
    if isinstance(outcome, KgrecError):
        raise outcome
    return outcome[1]


def record_served_many(
    store: GraphStore, lists: Sequence[ServedList]
) -> list[tuple[str, int] | KgrecError]:
    """Record several served lists, each whole or not at all, acknowledged together: one
    query per list, then one wait until all are durable (:meth:`GraphStore.write_many`).

    Returns, per list, ``(request_id, relationships recorded)`` or the
    :class:`~kgrec.errors.KgrecError` saying why that list was not recorded (its user or an
    item is missing, or its request id was used with other items). A store failure raises:
    then no list of the group is acknowledged.
    """
    at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    query = load_query("serve/record_recommended")
    ids = [served_list.request_id or new_request_id() for served_list in lists]
    statements = [
        (query, _params(served_list, request_id, at))
        for served_list, request_id in zip(lists, ids, strict=True)
        if served_list.recs
    ]
    results = iter(store.write_many(statements))
    out: list[tuple[str, int] | KgrecError] = []
    for served_list, request_id in zip(lists, ids, strict=True):
        if not served_list.recs:
            out.append((request_id, 0))
            continue
        result = next(results)
        recorded = int(result.rows[0][0]) if result.rows else 0
        if recorded != len(served_list.recs):
            why = _why_not_recorded(store, served_list.user_id, served_list.recs, request_id)
            out.append(KgrecError(why))
        else:
            out.append((request_id, recorded))
    return out


def _params(served_list: ServedList, request_id: str, at: str) -> dict[str, Any]:
    """The parameters of ``record_recommended.cypher`` for one list."""
    rows = []
    for rec in served_list.recs:
        reasons = list((served_list.paths or {}).get(rec.item_id, []))
        rows.append(
            {
                "user_id": served_list.user_id,
                "item_id": rec.item_id,
                "request_id": request_id,
                "rank": int(rec.rank),
                "score": float(rec.score),
                "model_id": served_list.model_id,
                "at": at,
                "paths": paths_json(reasons),
                "reasons": [p.sentence for p in reasons],
                "shares": [float(p.share) for p in reasons],
            }
        )
    return {"rows": rows, "user_id": served_list.user_id, "request_id": request_id}


def served(store: GraphStore, user_id: str, item_id: str) -> list[Served]:
    """Every recorded recommendation of ``item_id`` to ``user_id``, newest first."""
    query = load_query("serve/served")
    result = store.query(query, {"user_id": str(user_id), "item_id": str(item_id)})
    out = []
    for request_id, rank, score, model_id, at, paths in result.rows:
        recorded = _parse_paths(paths)
        out.append(
            Served(str(request_id), int(rank), float(score), str(model_id), str(at), recorded)
        )
    return out


def _parse_paths(text: str | None) -> list[GraphPath]:
    """Recorded paths (unreadable or older records: none)."""
    try:
        return [GraphPath.from_dict(p) for p in json.loads(text or "[]")]
    except (ValueError, TypeError, KeyError):
        return []


def _why_not_recorded(
    store: GraphStore, user_id: str, recs: Sequence[Recommendation], request_id: str
) -> str:
    """Why the record query wrote nothing: missing ids, or a request id already used."""
    from kgrec.store.queries import load_query

    check = store.query(
        load_query("serve/missing_ids"),
        {"user_id": user_id, "item_ids": [rec.item_id for rec in recs]},
    )
    users, missing = check.rows[0] if check.rows else (0, [])
    if not users or missing:
        what = [f"user {user_id!r}"] if not users else []
        what += [f"item {i!r}" for i in missing]
        return (
            f"nothing recorded: {', '.join(what)} not in the graph database (run kgrec "
            "build-graph for this dataset; items from kgrec add-items are written there when "
            "the database is enabled)"
        )
    before = store.query(
        load_query("serve/request_items"), {"user_id": user_id, "request_id": request_id}
    )
    if before.rows:
        items = ", ".join(str(r[0]) for r in before.rows)
        return (
            f"nothing recorded: request {request_id!r} of user {user_id!r} was already recorded "
            f"with other items ({items}); a retry must serve the same list, a new list needs "
            "a new request id"
        )
    return f"nothing recorded for user {user_id!r}: the graph changed meanwhile, retry"


def _plain(path: Any) -> Any:
    return path.to_dict() if hasattr(path, "to_dict") else path

"""Forgetting users everywhere kgrec keeps them (``kgrec users forget``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgrec.data.layout import ID_MAP_FILE
from kgrec.data.lifecycle import (
    ForgetList,
    audit,
    now,
    save_forgotten,
    tombstone_of,
)
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.faults import fault_point
from kgrec.files import load_torch, remove_stale, save_torch, staging_dir
from kgrec.lifecycle.retire import shown_ids
from kgrec.lifecycle.scrub import Prepared, prepare_files
from kgrec.manifest import verify_artifact
from kgrec.store.base import GraphStore
from kgrec.store.queries import load_query
from kgrec.text.cache import text_key

RETRAIN_NOTE = (
    "the trained model holds no per-user rows (a user is their history), so nothing of "
    "theirs was left in it to zero; their past interactions still shaped the item-item "
    "teacher's weights and the GNN's item embeddings: `kgrec train` retrains without them and "
    "removes that influence (add --promote always to serve the retrained model even if it "
    "scores lower on validation)"
)


# ---------------------------------------------------------------------------- forget users


@dataclass(frozen=True)
class ForgetResult:
    """What one forget call removed.

    Attributes:
        tokens: Per user given, the 16-hex-digit prefix of their token (what the audit log
            names).
        already: Users that had been forgotten before (removed again where anything was
            left).
        removed: Where what was removed lived, with counts.
        retrain: What a retrain would additionally remove.
        audit_log: The audit log's path.
        bundles: The serving bundles removed (``recommend`` re-exports them).
    """

    tokens: list[str]
    already: list[str]
    removed: dict[str, Any]
    retrain: str = RETRAIN_NOTE
    audit_log: str = ""
    bundles: list[str] = field(default_factory=list)


def forget_users(
    artifacts_dir: Path | str,
    user_ids: Sequence[str],
    store: GraphStore | None = None,
    cache_dir: Path | str | None = None,
) -> ForgetResult:
    """Forget ``user_ids`` everywhere kgrec keeps them (module docstring).

    Order: every rewritten file is prepared first (nothing touched yet); then the forget
    list is written (from here serving refuses them), then the graph database is changed in
    one query (on failure the forget list is put back and nothing else was touched), then
    the prepared files replace the old ones, the embedding cache is cleaned and the serving
    bundles removed. A failure in that last step leaves the users refused and out of the
    graph; running the same command again finishes the job (it is idempotent).

    Raises:
        KgrecError: An id that is neither a user of the artifact nor forgotten before
            (nothing is written then).
    """
    folder = Path(artifacts_dir)
    ids = list(dict.fromkeys(str(u).strip() for u in user_ids))
    if not ids or any(not u for u in ids):
        raise KgrecError("give one or more user ids")
    if not (folder / ID_MAP_FILE).exists():
        raise KgrecError(f"no graph artifact in {folder}: run `kgrec build-graph` first")
    remove_stale(folder)  # the staging folder of a killed forget
    verify_artifact(folder)
    before = ForgetList.load(folder)
    users = [str(u) for u in IdMap.load(folder / ID_MAP_FILE).ids["user"]]
    present = set(users)
    already = [u for u in ids if before.contains(u)]
    unknown = [u for u in ids if u not in present and u not in already]
    if unknown:
        raise KgrecError(f"unknown user id(s) {shown_ids(unknown)}: not in {folder}")

    forget = ForgetList.load(folder, create_key=True)
    tokens = {u: forget.token(u) for u in ids}
    scrub = [u for u in ids if u in present]
    staging = staging_dir(folder / ".forget")
    try:
        prepared = prepare_files(folder, staging, scrub, tokens) if scrub else Prepared()
        fault_point("forget-prepared")
        entries = dict(forget.users)
        for user in ids:
            entries.setdefault(tokens[user], {"at": now(), "tombstone": tombstone_of(tokens[user])})
        save_forgotten(folder, entries)
        try:
            graph = _forget_in_graph(store, ids) if store is not None else None
        except BaseException:
            save_forgotten(folder, dict(before.users))
            raise
        fault_point("forget-graph")
        moved = _commit(folder, staging, prepared.files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dropped_texts = _clean_cache(cache_dir, prepared.texts) if cache_dir is not None else 0
    bundles = _remove_bundles(folder)  # also on a re-run: a killed run may have left them
    removed: dict[str, Any] = {
        "graph": graph,
        "interactions": prepared.interactions,
        "user_rows": prepared.user_rows,
        "files": moved,
        "text_features": prepared.features,
        "text_cache_entries": dropped_texts,
        "serving_bundles": len(bundles),
    }
    short = [tokens[u][:16] for u in ids]
    log = audit(folder, {"action": "forget", "users": short, "removed": removed})
    return ForgetResult(
        tokens=short,
        already=already,
        removed=removed,
        audit_log=str(log),
        bundles=bundles,
    )


def _forget_in_graph(store: GraphStore, ids: list[str]) -> dict[str, int]:
    rows = store.query(load_query("lifecycle/forget_users"), {"ids": ids}, write=True).rows
    users, relationships, interacted, recommended = rows[0] if rows else (0, 0, 0, 0)
    left = store.query(load_query("lifecycle/count_users"), {"ids": ids}).rows
    if left and int(left[0][0]):
        raise KgrecError(f"the graph database still holds {left[0][0]} of the users: retry")
    return {
        "users": int(users or 0),
        "relationships": int(relationships or 0),
        "interacted": int(interacted or 0),
        "recommended": int(recommended or 0),
    }


def _commit(folder: Path, staging: Path, files: list[str]) -> list[str]:
    """Move the prepared files over the artifact's (each rename is atomic)."""
    for name in files:
        os.replace(staging / name, folder / name)
    return files


def _clean_cache(cache_dir: Path | str, texts: list[str]) -> int:
    """Drop the vectors of ``texts`` from every file of the embedding cache."""
    if not texts:
        return 0
    keys = {text_key(t) for t in texts}
    dropped = 0
    for path in sorted(Path(cache_dir).glob("*.pt")):
        try:
            payload = load_torch(path, "kgrec embed", map_location="cpu")
            stored = [bytes(k) for k in payload["keys"].numpy()]
        except Exception:  # an unreadable cache file is ignored by kgrec embed: remove it
            path.unlink(missing_ok=True)
            continue
        keep = [k not in keys for k in stored]
        if all(keep):
            continue
        dropped += len(keep) - sum(keep)
        payload.pop("checksum", None)
        payload["keys"] = payload["keys"][keep]
        payload["vectors"] = payload["vectors"][keep]
        save_torch(payload, path)
    return dropped


def _remove_bundles(folder: Path) -> list[str]:
    """Remove every serving bundle under the artifact folder (they hold per-user arrays);
    ``recommend`` re-exports one from its checkpoint and the scrubbed artifact."""
    found = sorted({p.parent for p in folder.rglob("meta.json") if p.parent.name == "serving"})
    for bundle in found:
        shutil.rmtree(bundle)
    return [str(b) for b in found]

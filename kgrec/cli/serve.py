"""Serving command: ``recommend`` (``explain`` is in :mod:`kgrec.cli.explain`).

``kgrec recommend`` reads only the serving bundle (numpy + json), so one user is answered
without importing torch or pandas; the bundle is (re)exported from the checkpoint first when it
is missing or stale.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from kgrec.cli.apps import app
from kgrec.cli.common import (
    ArtifactsOption,
    CheckpointOption,
    ConfigOption,
    check_format,
    friendly_errors,
    load_cli_config,
    open_graph_store,
    print_table,
)
from kgrec.config import Config
from kgrec.errors import KgrecError
from kgrec.files import DamagedFileError
from kgrec.serve.bundle import Bundle, fresh_bundle
from kgrec.serve.paths import Explainer
from kgrec.serve.recommend import Recommendation, Recommender, parse_seed_items
from kgrec.serve.record import ServedList, new_request_id, record_served, record_served_many

FORMATS = ("table", "json", "csv")
BATCH = 256
RECORD_BATCH = 1_024
"""Users per batch with ``--record``: their lists are acknowledged together after one wait for
the database's log (fsynced once a second), so fewer, larger batches wait less."""
CSV_HEADER = ["user_id", "model_id", "item_ids", "scores", "error"]


def _note(text: str) -> None:
    typer.secho(f"note: {text}", err=True)


def serve_config(config_path: Path | None, artifacts: Path | None) -> Config:
    return load_cli_config(config_path, {"artifacts": str(artifacts) if artifacts else None})


def checkpoint_path(config: Config, checkpoint: Path | None) -> Path:
    return checkpoint or config.artifacts_dir / "model" / "model.pt"


def open_served_bundle(config: Config, checkpoint: Path | None) -> Bundle:
    """The serving bundle of the model, exported first when missing or stale."""
    path = checkpoint_path(config, checkpoint)
    try:
        bundle = fresh_bundle(path, config.artifacts_dir)
    except DamagedFileError:
        bundle = None  # re-exported below, with a note
    if bundle is None:
        # Writing a bundle needs torch and pandas: only a missing or stale bundle pays for them.
        from kgrec.serve.export import open_bundle

        notes: list[str] = []
        bundle = open_bundle(path, config.artifacts_dir, notes)
        for note in notes:
            _note(note)
    return bundle


def _user_lines(path: Path) -> Iterator[str]:
    """User ids from a file, one per line (blank lines and ``#`` comments skipped), streamed."""
    try:
        stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    except OSError as exc:
        raise KgrecError(f"cannot read --users-file {path}: {exc.strerror}") from exc
    with stream:
        for number, raw in enumerate(stream, start=1):
            try:
                user = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise KgrecError(
                    f"--users-file {path}:{number}: byte 0x{raw[exc.start]:02x} is not UTF-8 "
                    "text (re-save the file as UTF-8)"
                ) from exc
            if user and not user.startswith("#"):
                yield user


@app.command("recommend")
@friendly_errors
def recommend_command(
    user: str | None = typer.Option(None, "--user", "-u", help="External user id."),
    k: int = typer.Option(10, "-k", "--k", help="Items per user.", min=1),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    users_file: Path | None = typer.Option(
        None, "--users-file", help="Batch mode: one user id per line ('-' = stdin)."
    ),
    seed_items: str | None = typer.Option(
        None, "--seed-items", help="Cold start: comma-separated item ids the user likes."
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="Cold start from free text: the items whose text is closest become seed items.",
    ),
    record: bool = typer.Option(
        False, "--record", help="Record the served lists (with their reasons) in the database."
    ),
    all_users: bool = typer.Option(
        False, "--all", help="Batch mode over every user the model knows (like --users-file)."
    ),
    diversify: float = typer.Option(
        0.0,
        "--diversify",
        min=0.0,
        max=1.0,
        help="Trade score for variety (MMR, 0-1): 0 = by score, 0.3 = a mix of genres, ...",
    ),
    diversify_by: str = typer.Option(
        "kg",
        "--diversify-by",
        help="Similarity for --diversify: kg (shared KG neighbours), an entity type such as "
        "genre (only those count), or embedding.",
    ),
    request_id: str | None = typer.Option(
        None,
        "--request-id",
        help="Id of this request for --record (default: a fresh one); retrying with the same "
        "id records nothing twice. With --users-file each user gets <id>/<user>.",
    ),
    checkpoint: Path | None = CheckpointOption,
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Recommend the top-k unseen items for a user (or for every user of a file).

    Scores are the trained hybrid's (item-item teacher + GNN), recomputed from the user's
    time-ordered history, so their latest items weigh most; --seed-items adds items a known
    user just consumed (new behaviour counts at once, no retraining) or serves a new user.
    Items a user has interacted with are never recommended. Batch mode streams --users-file
    and writes one line (json: one JSON object; csv: one row; table: one line) per user.
    --record writes (:User)-[:RECOMMENDED {rank, score, model_id, at, reasons, shares,
    paths, request_id}]->(:Item) and returns once the record is durable; give --request-id to
    make a retry safe (the same id is recorded once; reusing it for another list is refused).
    Recorded reasons are the customer-facing ones: they cite only items the user liked and
    name no other user (support reads them with `kgrec cypher run why_recommended`). In
    batch mode --record draws a progress bar on stderr and ends with a one-line summary.

    Examples:

      kgrec recommend --user u0001

      kgrec recommend --user u0001 -k 5 --format json

      kgrec recommend --seed-items i0001,i0042 --format json

      kgrec recommend --profile "slow-burning westerns about lone riders" -k 5

      kgrec recommend --users-file users.txt --format csv > recs.csv

      kgrec recommend --user u0001 --record

      kgrec recommend --user u0001 --record --request-id 7f3c9a   # safe to retry

      kgrec recommend --all --record --format csv > recs.csv   # every user, recorded

      kgrec recommend --user u0001 -k 10 --diversify 0.3 --diversify-by genre
    """
    # the serving options read the config's serve section (and faiss when indexed)
    from kgrec.serve.options import serving_options

    check_format(fmt, FORMATS)
    if all_users and (user is not None or users_file is not None or seed_items or profile):
        raise KgrecError("--all serves every user: give no --user, --users-file or seeds")
    if profile is not None and (seed_items is not None or users_file is not None):
        raise KgrecError("--profile replaces --seed-items and applies to one user")
    if (
        (user is None) == (users_file is None)
        and not ((seed_items or profile is not None) and users_file is None)
        and not all_users
    ):
        raise KgrecError("give exactly one of --user or --users-file (or --seed-items)")
    if users_file is not None and seed_items:
        raise KgrecError("--seed-items applies to one user: do not combine it with --users-file")
    seeds = parse_seed_items(seed_items) if seed_items is not None else None
    if record and user is None and users_file is None and not all_users:
        raise KgrecError("--record needs --user (the user the list is served to)")
    if request_id is not None and not record:
        raise KgrecError("--request-id names a recorded request: add --record")
    if request_id is not None and not request_id.strip():
        raise KgrecError("--request-id is empty")
    config = serve_config(config_path, artifacts)
    bundle = open_served_bundle(config, checkpoint)
    recommender = Recommender(
        bundle, **serving_options(config, bundle, diversify, diversify_by, note=_note)
    )
    if profile is not None:
        # embedding free text needs torch and the language model
        from kgrec.text.search import items_like

        seeds = items_like(profile, config.artifacts_dir, config.features)
    recorder = _Recorder(config, recommender, request_id) if record else None
    try:
        if users_file is None and not all_users:
            recs = recommender.recommend(user, k, seed_items=seeds)
            request_id = recorder.record(user, recs) if recorder and user else None
            _emit_one(user, recs, recommender.model_id, request_id, fmt)
            return
        total: int | None
        if all_users or users_file is None:
            users, total = iter(bundle.user_ids), len(bundle.user_ids)
        else:
            users, total = _user_lines(users_file), _count_lines(users_file)
        failed = _emit_batch(recommender, users, k, fmt, recorder, total)
    finally:
        if recorder is not None:
            recorder.close()
    if failed:
        typer.secho(f"error: {failed} user(s) could not be served", fg="red", err=True)
        raise typer.Exit(1)


class _Recorder:
    """Records served lists (with their customer-facing reasons) in the graph store."""

    def __init__(
        self, config: Config, recommender: Recommender, request_id: str | None = None
    ) -> None:
        self.model_id = recommender.model_id
        self.request_id = request_id
        self.explainer = Explainer(recommender.bundle)
        self.store = open_graph_store(config)
        self.lists = self.reasons = 0
        self.started = time.perf_counter()

    def record(self, user: str, recs: list[Recommendation]) -> str:
        """Record one served list under ``--request-id`` (or a fresh id); its request id."""
        served_list = self._explained(user, recs, self.request_id or new_request_id())
        record_served(
            self.store, user, recs, self.model_id, served_list.paths, served_list.request_id
        )
        self.lists += 1
        return str(served_list.request_id)

    def record_many(
        self, lists: Sequence[tuple[str, list[Recommendation]]]
    ) -> list[str | KgrecError]:
        """Record the served lists of a batch (request ids ``<--request-id>/<user>`` or
        fresh ones), acknowledged together (one wait for the log); per list its request id,
        or why it was not recorded."""
        group = [
            self._explained(user, recs, f"{self.request_id}/{user}" if self.request_id else None)
            for user, recs in lists
        ]
        out: list[str | KgrecError] = []
        for outcome in record_served_many(self.store, group):
            if isinstance(outcome, KgrecError):
                out.append(outcome)
            else:
                self.lists += 1
                out.append(outcome[0])
        return out

    def _explained(
        self, user: str, recs: list[Recommendation], request_id: str | None
    ) -> ServedList:
        """``recs`` with the customer-facing reasons of each item, ready to record."""
        found = self.explainer.explain_many(user, [r.item_id for r in recs])
        self.reasons += sum(len(p) for p in found)
        paths = {r.item_id: p for r, p in zip(recs, found, strict=True)}
        return ServedList(user, recs, self.model_id, paths, request_id)

    def summary(self, users: int, failed: int) -> str:
        """``recorded 943 lists of 943 users (27,974 reasons) in 7.1 s (7.5 ms per user)``."""
        seconds = time.perf_counter() - self.started
        what = f"recorded {self.lists:,} lists of {users:,} users ({self.reasons:,} reasons)"
        per_user = f"{1000 * seconds / max(users, 1):.1f} ms per user"
        tail = f", {failed:,} failed" if failed else ""
        return f"{what} in {seconds:.1f} s ({per_user}){tail}"

    def close(self) -> None:
        self.store.close()


def _count_lines(path: Path | None) -> int | None:
    """User lines in a file (``None`` for stdin: the bar then counts without a total)."""
    if path is None or str(path) == "-":
        return None
    try:
        return sum(1 for _ in _user_lines(path))
    except KgrecError:
        return None  # reported when the file is read for real


def _as_dict(
    user: str | None, recs: list[Recommendation], model_id: str, request_id: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user_id": user,
        "model_id": model_id,
        "recommendations": [r.to_dict() for r in recs],
    }
    if request_id:
        out["request_id"] = request_id
    return out


def _csv_row(
    user: str | None, recs: list[Recommendation], model_id: str, error: str = ""
) -> list[str]:
    return [
        user or "",
        model_id,
        " ".join(r.item_id for r in recs),
        " ".join(f"{r.score:.6g}" for r in recs),
        error,
    ]


def _emit_one(
    user: str | None, recs: list[Recommendation], model_id: str, request_id: str | None, fmt: str
) -> None:
    if fmt == "json":
        typer.echo(json.dumps(_as_dict(user, recs, model_id, request_id), ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["user_id", "rank", "item_id", "title", "score", "model_id"])
        for r in recs:
            writer.writerow([user or "", r.rank, r.item_id, r.title, f"{r.score:.6g}", model_id])
    else:
        who = f"user {user}" if user else "seed items"
        rows = [(r.rank, r.item_id, r.title, f"{r.score:.4f}") for r in recs]
        title = f"top {len(recs)} for {who} (model {model_id})"
        print_table(("rank", "item", "title", "score"), rows, title, right=("rank", "score"))
        if request_id:
            typer.echo(f"recorded as request {request_id}")


def _emit_batch(
    recommender: Recommender,
    users: Iterator[str],
    k: int,
    fmt: str,
    recorder: _Recorder | None,
    total: int | None = None,
) -> int:
    """Serve ``users`` in chunks of :data:`BATCH` (:data:`RECORD_BATCH` with a recorder),
    one output line/row per user; failures.
    With a ``recorder``: a progress bar of ``total`` users on stderr, then a summary line."""
    if recorder is None:
        return _serve_chunks(recommender, users, k, fmt, None, lambda n: None)[0]
    # rich only when recording: plain `recommend` starts without it
    from kgrec.progress import RichReporter

    with RichReporter().stage("Recording served lists", total) as advance:
        failed, served = _serve_chunks(recommender, users, k, fmt, recorder, advance)
    typer.echo(recorder.summary(served, failed), err=True)
    return failed


def _serve_chunks(
    recommender: Recommender,
    users: Iterator[str],
    k: int,
    fmt: str,
    recorder: _Recorder | None,
    advance: Callable[[int], None],
) -> tuple[int, int]:
    """:func:`_emit_batch`'s work: ``(failed, users served)``."""
    writer = csv.writer(sys.stdout) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_HEADER)
    failed = served = 0
    chunk: list[str] = []

    def flush() -> None:
        nonlocal failed, served
        known = [u for u in chunk if recommender.knows(u)]
        lists = dict(zip(known, recommender.recommend_many(known, k), strict=True))
        recorded: dict[str, str | KgrecError] = {}
        if recorder is not None and lists:
            try:
                outcomes = recorder.record_many(list(lists.items()))
            except KgrecError as exc:  # the store failed: nothing of this batch acknowledged
                outcomes = [exc] * len(lists)
            recorded = dict(zip(lists, outcomes, strict=True))
        for user in chunk:
            recs = lists.get(user)
            error = "" if recs is not None else recommender.unknown_reason(user)
            request_id = None
            outcome = recorded.get(user)
            if isinstance(outcome, KgrecError):
                error, recs = str(outcome), None
            elif outcome is not None:
                request_id = outcome
            failed += bool(error)
            if writer is not None:
                writer.writerow(_csv_row(user, recs or [], recommender.model_id, error))
            elif fmt == "json":
                row = (
                    {"user_id": user, "error": error}
                    if error
                    else _as_dict(user, recs or [], recommender.model_id, request_id)
                )
                typer.echo(json.dumps(row, ensure_ascii=False))
            else:
                shown = error or " | ".join(f"{r.item_id} {r.title}" for r in recs or [])
                typer.echo(f"{user}\t{shown}")
        sys.stdout.flush()
        served += len(chunk)
        advance(len(chunk))
        chunk.clear()

    for user in users:
        chunk.append(user)
        if len(chunk) == (BATCH if recorder is None else RECORD_BATCH):
            flush()
    if chunk:
        flush()
    return failed, served

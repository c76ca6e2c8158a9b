"""``kgrec users forget``: remove a user from everything kgrec keeps."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from kgrec.cli.apps import users_app
from kgrec.cli.common import ArtifactsOption, ConfigOption, friendly_errors, open_graph_store
from kgrec.cli.serve import checkpoint_path, open_served_bundle, serve_config
from kgrec.errors import KgrecError


@users_app.command("forget")
@friendly_errors
def forget_command(
    user_ids: list[str] = typer.Argument(..., help="User ids (as in the dataset)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
    no_db: bool = typer.Option(False, "--no-db", help="Do not touch the graph database."),
    wait: bool = typer.Option(
        False, "--wait", help="Queue behind another writer of the same folder or graph."
    ),
    artifacts: Path | None = ArtifactsOption,
    config_path: Path | None = ConfigOption,
) -> None:
    """Forget users: remove them from the graph, the artifacts, serving and the text cache.

    For each user: the :User node with its interactions and served records is deleted from
    the graph database in one query; their interactions and attributes leave the artifact's
    tables and graph (their index keeps a tombstone id, so no other user's index moves under
    the trained model); their text-feature row is zeroed and their text's vector dropped
    from the embedding cache; every serving bundle is removed and the served one re-exported
    without them (their row of user vectors is zero). From then on recommend refuses them by
    name, and build-graph leaves them out of the raw files on every rebuild.

    Kept: a keyed hash of the id (HMAC-SHA256 under a secret in <artifacts>/lifecycle/key)
    in lifecycle/forgotten.json, so rebuilds can recognise them, and one audit line in
    lifecycle/audit.log (time, the hash, what was removed): never the id itself. Not
    removed: the raw input files (delete the user there too) and their influence on the
    trained weights, which a retrain (kgrec train) removes; the command says so. Running it
    again for the same user is harmless (it finishes an interrupted forget).

    Examples:

      kgrec users forget u0042

      kgrec users forget u0042 u0043 --yes --json

      kgrec train   # also removes their influence on the model's weights
    """
    # the stage rewrites the artifact (torch, pandas) and talks to the database
    from kgrec.build import config_locks
    from kgrec.cli.common import reporter
    from kgrec.lifecycle import forget_users

    if not yes and not typer.confirm(
        f"forget {len(user_ids)} user(s) everywhere kgrec keeps them? This cannot be undone"
    ):
        raise KgrecError("nothing forgotten (confirm, or pass --yes)")
    config = serve_config(config_path, artifacts)
    store = open_graph_store(config) if config.store.enabled and not no_db else None
    try:
        with config_locks(config, reporter(True), wait=wait, database=store is not None):
            result = forget_users(
                config.artifacts_dir, user_ids, store, config.state_path / "text-cache"
            )
            model = checkpoint_path(config, None)
            exported = None
            if result.bundles and model.exists():  # serve again at once, without them
                exported = str(open_served_bundle(config, None).path)
    finally:
        if store is not None:
            store.close()
    out = {
        "forgotten": len(user_ids),
        "hashes": result.tokens,
        "already_forgotten": len(result.already),
        "removed": result.removed,
        "re_exported_bundle": exported,
        "audit_log": result.audit_log,
        "a_retrain_would_also_remove": result.retrain,
    }
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    removed = result.removed
    graph = removed["graph"]
    typer.echo(f"forgot {len(user_ids)} user(s) (audit hashes {', '.join(result.tokens)})")
    if graph is None:
        typer.echo("  graph database: not written (--no-db or disabled)")
    else:
        typer.echo(
            f"  graph database: {graph['users']} :User node(s), {graph['interacted']} "
            f"interaction(s), {graph['recommended']} served record(s) deleted"
        )
    typer.echo(
        f"  artifacts: {removed['interactions']} interaction(s), {removed['user_rows']} user "
        f"row(s) removed; rewritten: {', '.join(removed['files']) or 'nothing left to remove'}"
    )
    typer.echo(
        f"  text cache: {removed['text_cache_entries']} vector(s) dropped; serving bundles "
        f"removed: {removed['serving_bundles']}" + (f", re-exported {exported}" if exported else "")
    )
    typer.echo(f"  audit line written to {result.audit_log}")
    typer.echo(f"a retrain would additionally remove their influence: {result.retrain}")

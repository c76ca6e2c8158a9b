"""The Typer applications and the registry of their commands.

Command modules register their commands on these apps; each app imports a command's module
only when that command is used (:mod:`kgrec.cli.lazy`), so ``kgrec --help`` and ``kgrec
recommend`` never import torch. A new command: define it in a module with
``@app.command("name")`` and add one line ``"name": Lazy(module, first sentence of its
help)`` to the registry of its app below.
"""

from __future__ import annotations

from kgrec.cli.lazy import Lazy, lazy_typer

COMMANDS = {
    "recommend": Lazy(
        "kgrec.cli.serve",
        "Recommend the top-k unseen items for a user (or for every user of a file).",
    ),
    "explain": Lazy(
        "kgrec.cli.explain",
        "Explain why an item suits a user: the items of their past that carry the score.",
    ),
    "build-graph": Lazy(
        "kgrec.cli.graph",
        "Validate a dataset, then load it into the graph database and a PyG HeteroData.",
    ),
    "add-items": Lazy(
        "kgrec.cli.items",
        "Add items that have only text and attributes; recommendable at once, no retraining.",
    ),
    "add-interactions": Lazy(
        "kgrec.cli.interactions",
        "Add what users did since training; the next recommend reflects it, no retraining.",
    ),
    "embed": Lazy(
        "kgrec.cli.learn",
        "Compute language-model text features for every node (cached by text hash).",
    ),
    "train": Lazy(
        "kgrec.cli.learn",
        "Train kgrec: an item-item teacher, a GNN distilled from it, their blend, all chosen "
        "on validation, then refitted on training + validation.",
    ),
    "evaluate": Lazy(
        "kgrec.cli.learn",
        "Full-ranking metrics (seen items masked) and OGB sampled-negative MRR/Hits.",
    ),
}
"""``kgrec <command>``: the module that defines it and the one line ``kgrec --help`` shows."""

DB_COMMANDS = {
    "start": Lazy(
        "kgrec.cli.db",
        "Start the embedded FalkorDB server (127.0.0.1, password in the state folder).",
    ),
    "stop": Lazy("kgrec.cli.db", "Stop the embedded server, saving the graph to disk first."),
    "status": Lazy(
        "kgrec.cli.db",
        "Say whether the embedded server runs, where, which graphs it holds, and how to "
        "connect to the config's graph (commands you can paste: kgrec, Python, redis-cli).",
    ),
    "schema": Lazy(
        "kgrec.cli.db",
        "Show what the graph holds: node labels with counts, property names and types and the "
        "share of nodes with a human-readable name (a name or title that is not just the id); "
        "relationship types with the labels at both ends, counts and properties.",
    ),
    "export": Lazy(
        "kgrec.cli.db_export",
        "Export the graph as CSV files for Neo4j's offline importer (neo4j-admin database "
        "import): one file per label and per relationship type, typed headers, ids kept as "
        "the id property.",
    ),
}
"""``kgrec db <command>``."""

CYPHER_COMMANDS = {
    "list": Lazy(
        "kgrec.cli.graph",
        "List the query library in cypher/analyst and cypher/support, with parameters.",
    ),
    "run": Lazy(
        "kgrec.cli.graph", "Run a Cypher query (read-only unless --write) and print its rows."
    ),
}
"""``kgrec cypher <command>``."""

ITEMS_COMMANDS = {
    "retire": Lazy(
        "kgrec.cli.items",
        "Retire items: never recommended again, to anyone, by any model; history kept.",
    ),
    "unretire": Lazy(
        "kgrec.cli.items",
        "Undo kgrec items retire: the items can be recommended again from the next request.",
    ),
}
"""``kgrec items <command>``."""

USERS_COMMANDS = {
    "forget": Lazy(
        "kgrec.cli.users",
        "Forget users: remove them from the graph, the artifacts, serving and the text cache.",
    ),
}
"""``kgrec users <command>``."""

app = lazy_typer(
    COMMANDS,
    name="kgrec",
    help=(
        "Knowledge-graph recommender: load user-item-attribute triples into a graph database "
        "and a PyG heterograph, train a hybrid of item-item models and a GNN, serve explained"
        " recommendations.\n\n"
        "Examples:\n\n"
        "  kgrec build-graph                      # the demo dataset in data/demo\n\n"
        "  kgrec build-graph -c configs/ml-100k.yaml\n\n"
        "  kgrec cypher run 'MATCH (i:Item) RETURN count(i) AS items'\n\n"
        "  kgrec db status"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
db_app = lazy_typer(
    DB_COMMANDS,
    help="Manage the embedded graph database (FalkorDB) kgrec starts on 127.0.0.1.",
    no_args_is_help=True,
)
cypher_app = lazy_typer(
    CYPHER_COMMANDS, help="Run Cypher against the graph database.", no_args_is_help=True
)
items_app = lazy_typer(
    ITEMS_COMMANDS,
    help="Manage the catalogue's items: retire items so they are never recommended again.",
    no_args_is_help=True,
)
users_app = lazy_typer(
    USERS_COMMANDS,
    help="Manage users: forget a user who asked to be forgotten.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(cypher_app, name="cypher")
app.add_typer(items_app, name="items")
app.add_typer(users_app, name="users")

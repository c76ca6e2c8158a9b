"""The Typer applications; command modules register their commands on them."""

from __future__ import annotations

import typer

app = typer.Typer(
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
db_app = typer.Typer(
    help="Manage the embedded graph database (FalkorDB) kgrec starts on 127.0.0.1.",
    no_args_is_help=True,
)
cypher_app = typer.Typer(help="Run Cypher against the graph database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cypher_app, name="cypher")

"""Retiring items and forgetting users (``kgrec items retire``, ``kgrec users forget``).

A *retired* item keeps its node, interactions and served records (history is kept, and
training still learns from it), but is never recommended again: serving excludes it like an
item the user has seen (:class:`kgrec.serve.recommend.Recommender`), ``build-graph`` keeps
the list (:mod:`kgrec.data.lifecycle`) and sets ``retired: true`` on its ``:Item`` again.

A *forgotten* user is removed from the graph database (node, interactions, served records:
one query), from the artifact (their interactions and attributes leave the tables and
``graph.pt``; their index keeps a tombstone id, so no other user's index shifts under a
trained model), from the text features and the embedding cache, and every serving bundle of
the folder is removed (the CLI re-exports the served one). The trained checkpoint holds no
per-user rows (a user is their history), so nothing of theirs is left in it to zero; their
past influence on the item-item teacher and the GNN's weights goes only with a retrain.
"""

from kgrec.lifecycle.forget import RETRAIN_NOTE, ForgetResult, forget_users
from kgrec.lifecycle.retire import RetireResult, catalogue, retire_items, with_retired
from kgrec.lifecycle.scrub import drop_forgotten

__all__ = [
    "RETRAIN_NOTE",
    "ForgetResult",
    "RetireResult",
    "catalogue",
    "drop_forgotten",
    "forget_users",
    "retire_items",
    "with_retired",
]

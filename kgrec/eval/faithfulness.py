"""Deletion faithfulness: do explanations cite what the model relies on?

For a served (user, item) pair the explanation's top path is deleted and the score recomputed
by the checkpoint's own scorer (:class:`~kgrec.nn.hybrid.Hybrid`, torch; independent of the
numpy serving code that ranked the paths); the same is done for random paths of the same
length between the same user and item. kgrec's scorer reads a user's history, so deleting a
path means deleting its first edge, ``user -INTERACTED-> h``: the history item through which
its whole contribution flows (its KG or co-consumption edges are fixed weights of the model).
A faithful ranking makes the top path's deletion cost more than a random one's
(``benchmarks/faithfulness.py`` reports the share of pairs where it does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgrec.data.edges import ArtifactEdge
from kgrec.data.hetero import load_artifact
from kgrec.data.history import History, Prefix
from kgrec.data.split import SPLITS
from kgrec.naming import ITEM, USER
from kgrec.train.checkpoint import load_checkpoint


@dataclass(frozen=True)
class Faithfulness:
    """Score drops when deleting the top path vs. random paths of the same length.

    Attributes:
        user, item: The pair (indices).
        hops: Length of the top path.
        base_score: The item's score for the user over the unchanged history.
        top_drop: ``base_score - s'`` after deleting the top path.
        random_drops: Drops after deleting each random path (same length, same endpoints).
    """

    user: int
    item: int
    hops: int
    base_score: float
    top_drop: float
    random_drops: tuple[float, ...]

    @property
    def random_drop(self) -> float:
        """Mean of :attr:`random_drops`."""
        return float(np.mean(self.random_drops))

    @property
    def top_beats_random(self) -> bool:
        """Whether deleting the top path lowers the score more than a random path (mean)."""
        return self.top_drop > self.random_drop

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "random_drop": self.random_drop}


class ScoreOracle:
    """Recomputes a user's score of an item with a checkpoint's scorer after deleting
    ``user -> item`` interaction edges from the user's history (torch).

    Args:
        checkpoint: ``model.pt``.
        artifacts_dir: The artifact it was trained on (every split is history at serving).
    """

    def __init__(self, checkpoint: Path | str, artifacts_dir: Path | str) -> None:
        self.hybrid, _ = load_checkpoint(checkpoint)
        self.history = History.from_artifact(load_artifact(artifacts_dir), SPLITS)

    def score(self, user: int, item: int, removed: Sequence[ArtifactEdge] = ()) -> float:
        """The score after deleting the ``user -> item`` edges among ``removed`` (other
        edges do not change the scorer's input)."""
        gone = {
            e.target if e.edge_type[0] == USER else e.source
            for e in removed
            if {e.edge_type[0], e.edge_type[2]} == {USER, ITEM}
            and (e.source if e.edge_type[0] == USER else e.target) == user
        }
        lo, hi = int(self.history.ptr[user]), int(self.history.ptr[user + 1])
        items, ages = self.history.item[lo:hi], self.history.age[lo:hi]
        keep = torch.tensor([int(i) not in gone for i in items.tolist()], dtype=torch.bool)
        prefix = Prefix(torch.zeros(int(keep.sum()), dtype=torch.long), items[keep], ages[keep], 1)
        return float(self.hybrid.score(prefix)[0, item])


def deletion_test(
    oracle: ScoreOracle,
    user: int,
    item: int,
    top: Sequence[ArtifactEdge],
    randoms: Sequence[Sequence[ArtifactEdge]],
) -> Faithfulness:
    """Delete the ``top`` path, then each of the ``randoms`` (same length), and compare."""
    if not randoms:
        raise ValueError("deletion_test needs at least one random path to compare with")
    base = oracle.score(user, item)
    return Faithfulness(
        user=user,
        item=item,
        hops=len(top),
        base_score=base,
        top_drop=base - oracle.score(user, item, top),
        random_drops=tuple(base - oracle.score(user, item, path) for path in randoms),
    )

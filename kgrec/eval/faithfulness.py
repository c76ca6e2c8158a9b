"""Deletion faithfulness: do explanations cite what the model relies on?

For a served (user, item) pair the explanation's top path is deleted from the model's graph
(its edges and their reverses) and the score ``s(u, i) = z_u . z_i`` recomputed by a full
propagation of the checkpoint's model; the same is done for random paths of the same length
between the same user and item. A faithful ranking makes the top path's deletion cost more
than a random one's (``benchmarks/faithfulness.py`` reports the share of pairs where it does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kgrec.data.edges import ArtifactEdge, EdgeType, reverse
from kgrec.data.hetero import load_artifact
from kgrec.naming import ITEM, USER
from kgrec.text.features import load_features
from kgrec.train.checkpoint import load_checkpoint


@dataclass(frozen=True)
class Faithfulness:
    """Score drops when deleting the top path vs. random paths of the same length.

    Attributes:
        user, item: The pair (indices).
        hops: Length of the top path.
        base_score: ``s(u, i)`` from a full propagation over the unchanged graph.
        top_drop: ``base_score - s'`` after deleting the top path's edges.
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
    """Recomputes ``s(u, i)`` with a checkpoint's model over an edited graph (torch).

    Args:
        checkpoint: ``model.pt``.
        artifacts_dir: The artifact it was trained on.
        x_dict: Text features ``{node_type: [n, text_dim]}`` for a text model; default: read
            from the artifact when the model needs them.
    """

    def __init__(
        self,
        checkpoint: Path | str,
        artifacts_dir: Path | str,
        x_dict: Mapping[str, Tensor] | None = None,
    ) -> None:
        self.model, _ = load_checkpoint(checkpoint)
        self.edge_index_dict: dict[EdgeType, Tensor] = dict(
            load_artifact(artifacts_dir).to_hetero_data().edge_index_dict
        )
        if x_dict is None and self.model.text_dim:
            x_dict = load_features(artifacts_dir)[0]
        self.x_dict = x_dict

    def score(self, user: int, item: int, removed: Sequence[ArtifactEdge] = ()) -> float:
        """``z_u . z_i`` after deleting ``removed`` edges (and their reverses)."""
        edges = dict(self.edge_index_dict)
        for edge in removed:
            forward = (edge.edge_type, edge.source, edge.target)
            backward = (reverse(edge.edge_type), edge.target, edge.source)
            for edge_type, a, b in (forward, backward):
                if edge_type in edges:
                    index = edges[edge_type]
                    edges[edge_type] = index[:, ~((index[0] == a) & (index[1] == b))]
        with torch.no_grad():
            final = self.model(edges, self.x_dict)
        return float(final[USER][user] @ final[ITEM][item])


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

"""The numpy scorer of a checkpoint (:mod:`kgrec.serve.scorer`), read with torch."""

from __future__ import annotations

import numpy as np

from kgrec.serve.scorer import EmbeddingPart, HybridScorer, ItemItemPart
from kgrec.train.checkpoint import ServingArrays


def scorer_of(serving: ServingArrays, added_output: np.ndarray | None = None) -> HybridScorer:
    """The :class:`HybridScorer` of a checkpoint's :class:`ServingArrays`.

    Args:
        serving: :func:`kgrec.train.checkpoint.read_serving` of the checkpoint.
        added_output: ``[n, d]`` output embeddings of items placed after training (scored by
            the GNN part only; the teacher has no rows or columns for them).
    """
    teacher: list[ItemItemPart] = []
    state = serving.teacher
    if state is not None:
        for member, weight in zip(state["components"], state["weights"], strict=True):
            if not weight:
                continue
            model = member["model"]
            teacher.append(
                ItemItemPart(
                    name=str(member["name"]),
                    indptr=model["crow"].numpy().astype(np.int64),
                    indices=model["col"].numpy().astype(np.int64),
                    data=model["value"].float().numpy(),
                    decay=float(model["decay"]),
                    weight=float(weight),
                )
            )
    gnn = None
    num_trained = teacher[0].num_items if teacher else 0
    if serving.item_input is not None and serving.item_output is not None and serving.alpha:
        item_input = serving.item_input.float().numpy()
        item_output = serving.item_output.float().numpy()
        num_trained = item_input.shape[0]
        if added_output is not None and added_output.shape[0]:
            item_output = np.concatenate([item_output, added_output.astype(np.float32)])
        gnn = EmbeddingPart(item_input, item_output, serving.decay, serving.alpha)
    num_items = num_trained + (0 if added_output is None else int(added_output.shape[0]))
    return HybridScorer(tuple(teacher), gnn, num_items, num_trained, standardize=bool(teacher))

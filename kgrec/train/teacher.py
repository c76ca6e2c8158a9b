"""The distillation teacher: a validation-weighted ensemble of closed-form item-item models.

Distillation only helps a student beat its teacher when the teacher is an ensemble or the
student sees what the teacher cannot (HetComp, Bidirectional Distillation). kgrec's teacher is
such an ensemble, fitted in seconds from the training history (:mod:`kgrec.nn.item_item`):

- ``ease``: recency-aware EASE (EASE weights, a recency-weighted history row);
- ``transition``: the item-to-next-item model (SLIT's closed form);
- ``rp3beta``: RP3beta on a recency-weighted row;
- ``itemknn``: cosine ItemKNN on a recency-weighted row;
- ``entity``: items sharing knowledge-graph entities;
- ``text``: items with similar text embeddings.

Each component's hyper-parameters are chosen on validation NDCG@20 alone (grids in
:class:`~kgrec.config.TeacherConfig`), then the ensemble weights by coordinate ascent on
validation NDCG@20 of the blend ``sum_k w_k z(x_u^{decay_k} W_k)``, where ``z`` standardises
each user's score row (mean 0, standard deviation 1 over the catalogue) so the weights compare
models with different score scales. The first component's weight is fixed at 1.

:meth:`Teacher.refit` fits the same components with the same hyper-parameters and weights on
another history (training + validation before the test), the protocol of Ferrari Dacrema et
al. (RecSys'19): choose on validation, retrain on everything before the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor

from kgrec.config import TeacherConfig
from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.nn import item_item
from kgrec.nn.ensemble import Component, Ensemble
from kgrec.nn.item_item import ItemItem
from kgrec.nn.scoring import ScoreFn
from kgrec.progress import Reporter

COMPONENTS = ("ease", "transition", "rp3beta", "itemknn", "entity", "text")
"""Teacher components, in the order they are tuned (the first one listed anchors weight 1)."""

Validate = Callable[[ScoreFn], float]
"""Validation NDCG@20 of a score function (training history, validation targets)."""


@dataclass(frozen=True)
class Side:
    """What the teacher may read besides the history: item-entity edges and item text."""

    item_entity: Tensor | None = None  # [2, E] (item, entity) in one entity index space
    num_entities: int = 0
    item_text: Tensor | None = None  # [num_items, text_dim]


def fit_weight(name: str, params: Mapping[str, float], history: History, side: Side) -> Tensor:
    """The dense item-item matrix ``[I, I]`` of component ``name`` (see the module docstring)."""
    if name == "ease":
        return item_item.ease(history, params["l2"])
    if name == "transition":
        return item_item.transition(
            history, params["l2"], int(params.get("window", 30)), params["step_decay"]
        )
    if name == "rp3beta":
        return item_item.rp3beta(history, params["alpha"], params["beta"])
    if name == "itemknn":
        return item_item.itemknn(history, int(params["k"]), params["shrink"])
    if name == "entity":
        if side.item_entity is None:
            raise KgrecError("teacher component 'entity' needs knowledge-graph item edges")
        return item_item.entity_similarity(side.item_entity, history.num_items, side.num_entities)
    if name == "text":
        if side.item_text is None:
            raise KgrecError("teacher component 'text' needs item text features (kgrec embed)")
        return item_item.text_similarity(side.item_text, int(params.get("k", 50)))
    raise KgrecError(f"unknown teacher component {name!r} (known: {', '.join(COMPONENTS)})")


def fit_component(
    name: str, params: Mapping[str, float], history: History, side: Side, top_k: int | None
) -> Component:
    """Fit component ``name`` with ``params`` (its input ``decay`` included) on ``history``."""
    weight = fit_weight(name, params, history, side)
    return Component(
        name, dict(params), ItemItem.from_dense(weight, params.get("decay", 1.0), top_k)
    )


def component_grid(name: str, config: TeacherConfig) -> list[dict[str, float]]:
    """The hyper-parameter points tried for ``name``."""
    decays = list(config.decays)
    if name == "ease":
        return [{"l2": l2, "decay": d} for l2, d in itertools.product(config.ease_l2, decays)]
    if name == "transition":
        return [
            {"l2": l2, "step_decay": s, "decay": d, "window": config.transition_window}
            for l2, s, d in itertools.product(config.transition_l2, (0.5, 0.8), decays)
        ]
    if name == "rp3beta":
        return [
            {"alpha": a, "beta": b, "decay": d}
            for a, b, d in itertools.product(config.rp3_alpha, config.rp3_beta, decays)
        ]
    if name == "itemknn":
        return [
            {"k": k, "shrink": s, "decay": d}
            for k, s, d in itertools.product(config.knn_k, config.knn_shrink, decays)
        ]
    return [{"decay": d} for d in decays]  # entity, text: only the input decay


def refit(teacher: Ensemble, history: History, side: Side, top_k: int | None) -> Ensemble:
    """The same members, hyper-parameters and weights, fitted on ``history``."""
    members = [fit_component(c.name, c.params, history, side, top_k) for c in teacher.components]
    return Ensemble(members, list(teacher.weights), dict(teacher.validation))


def tune_teacher(
    history: History,
    side: Side,
    config: TeacherConfig,
    validate: Validate,
    reporter: Reporter | None = None,
) -> Ensemble:
    """Choose each member's hyper-parameters, then the blend weights, on validation."""
    reporter = reporter or Reporter()
    names = [n for n in config.components if _available(n, side)]
    if not names:
        raise KgrecError("teacher.components: none of the listed components can be fitted")
    members: list[Component] = []
    scores: dict[str, float] = {}
    total = sum(len(component_grid(n, config)) for n in names)
    with reporter.stage("Tuning the teacher", total=total) as advance:
        for name in names:
            best: tuple[float, Component] | None = None
            for fit_params, decays in _fits(component_grid(name, config)):
                sparse = ItemItem.from_dense(
                    fit_weight(name, fit_params, history, side), 1.0, config.top_k
                )
                for decay in decays:
                    params = {**fit_params, "decay": decay}
                    component = Component(name, params, sparse.with_decay(decay))
                    value = validate(_score_fn(component, history))
                    if best is None or value > best[0]:
                        best = (value, component)
                    advance(1)
            assert best is not None
            scores[name] = best[0]
            members.append(best[1])
    weights = [1.0] + [0.0] * (len(members) - 1)
    current = validate(Ensemble(members, weights).score_fn(history))
    with reporter.stage("Weighting the teacher", total=2 * (len(members) - 1)) as advance:
        for _ in range(2):  # coordinate ascent over the other members' weights
            for k in range(1, len(members)):
                for value in config.weight_grid:
                    trial = list(weights)
                    trial[k] = float(value)
                    if trial == weights:
                        continue
                    score = validate(Ensemble(members, trial).score_fn(history))
                    if score > current + 1e-6:
                        current, weights = score, trial
                advance(1)
    validation = {**{f"ndcg@20:{k}": v for k, v in scores.items()}, "ndcg@20": current}
    teacher = Ensemble(members, weights, validation)
    reporter.note(
        "teacher: "
        + ", ".join(f"{c.name} x{w:g}" for c, w in zip(members, weights, strict=True) if w)
        + f" (validation NDCG@20 {current:.4f})"
    )
    return teacher


def _available(name: str, side: Side) -> bool:
    if name == "entity":
        return side.item_entity is not None and side.item_entity.numel() > 0
    if name == "text":
        return side.item_text is not None
    return True


def _fits(grid: Sequence[dict[str, float]]) -> list[tuple[dict[str, float], list[float]]]:
    """Grid points grouped by the fit they share: only the input ``decay`` varies within."""
    groups: dict[tuple[tuple[str, float], ...], list[float]] = {}
    for params in grid:
        key = tuple(sorted((k, v) for k, v in params.items() if k != "decay"))
        groups.setdefault(key, []).append(float(params.get("decay", 1.0)))
    return [(dict(key), decays) for key, decays in groups.items()]


def _score_fn(component: Component, history: History) -> ScoreFn:
    return lambda users: component.score(history.select(users.cpu()))

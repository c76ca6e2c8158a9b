"""Allowed ranges of the numeric settings of :mod:`kgrec.config`, checked wherever a value
enters (a YAML file or a command-line option)."""

from __future__ import annotations

from typing import Any

from kgrec.errors import KgrecError

BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    # "Class.field": (lowest, highest, highest included); None = unbounded
    **{
        f"{name}": (1, None, True)
        for name in (
            "SplitConfig.min_train",
            "StoreConfig.batch_size",
            "FeatureConfig.max_length",
            "FeatureConfig.batch_size",
            "ModelConfig.embedding_dim",
            "ModelConfig.min_entity_degree",
            "ModelConfig.min_relation_edges",
            "TeacherConfig.transition_window",
            "TeacherConfig.knn_k",
            "TeacherConfig.top_k",
            "TrainConfig.epochs",
            "TrainConfig.batch_size",
            "TrainConfig.cuts_per_epoch",
            "TrainConfig.num_targets",
            "TrainConfig.patience",
            "TrainConfig.eval_every",
            "TrainConfig.num_negatives",
            "EvalConfig.ks",
            "EvalConfig.num_negatives",
            "EvalConfig.batch_size",
        )
    },
    **{
        f"{name}": (0, None, True)
        for name in (
            "SplitConfig.seed",
            "TeacherConfig.ease_l2",
            "TeacherConfig.transition_l2",
            "TeacherConfig.rp3_alpha",
            "TeacherConfig.rp3_beta",
            "TeacherConfig.knn_shrink",
            "TeacherConfig.weight_grid",
            "TrainConfig.weight_decay",
            "TrainConfig.kd_weight",
            "TrainConfig.cl_weight",
            "TrainConfig.cl_eps",
            "TrainConfig.blend_grid",
            "TrainConfig.seed",
            "EvalConfig.seed",
        )
    },
    "SplitConfig.val_ratio": (0, 1, False),
    "SplitConfig.test_ratio": (0, 1, False),
    "ModelConfig.decay": (1e-12, 1, True),
    "TeacherConfig.decays": (1e-12, 1, True),
    "StoreConfig.port": (1, 65_535, True),
    "ModelConfig.temperature": (1e-12, None, True),
    "TrainConfig.lr": (1e-12, None, True),
    "TrainConfig.kd_temperature": (1e-12, None, True),
    "TrainConfig.cl_temperature": (1e-12, None, True),
    "StoreConfig.query_timeout": (1e-3, None, True),
}
"""Allowed ranges of numeric settings, checked wherever a value enters (YAML or CLI)."""


def check_bounds(cls: type, key: str, value: Any, where: str) -> Any:
    """``value`` if it lies in the range :data:`BOUNDS` gives ``cls.key``, else a clear error."""
    bound = BOUNDS.get(f"{cls.__name__}.{key}")
    if bound is None or value is None:
        return value
    low, high, high_included = bound
    for item in value if isinstance(value, tuple) else (value,):
        too_low = low is not None and item < low
        too_high = high is not None and (item > high if high_included else item >= high)
        if too_low or too_high:
            if high is None:
                rule = "positive" if 0 < low < 1 else f"at least {low:g}"  # type: ignore[operator]
            else:
                rule = f"from {low:g} to {high:g}" + ("" if high_included else " (exclusive)")
            raise KgrecError(f"{where}.{key}: must be {rule}, got {item!r}")
    return value

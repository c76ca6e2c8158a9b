"""Configuration: frozen dataclasses read from YAML (``configs/*.yaml``), overridable from the CLI.

Every key is documented in the YAML files under ``configs/``. Relative paths written in a
config file (``dataset.path``, ``dataset.kg_path``, ``artifacts``, ``state_dir``, a checkpoint
in ``train.kd_teacher``, a ``./``-folder in ``features.model``) are relative to the file's own
folder, so a config works from any working directory; paths given as overrides (command-line
options) are relative to the working directory, the way a shell user reads them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from kgrec.bounds import check_bounds
from kgrec.errors import KgrecError

Adapter = Literal["contract", "ml-100k", "ml-latest-small", "ml-1m", "kgat", "lastfm"]
SplitMethod = Literal["temporal_loo", "temporal_ratio", "given"]
Backend = Literal["falkordb", "neo4j"]


@dataclass(frozen=True)
class DatasetConfig:
    """Where the raw data is and how to read it."""

    path: str = "data/demo"
    adapter: Adapter = "contract"
    kg_path: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class SplitConfig:
    """How interactions are split into train / validation / test."""

    method: SplitMethod = "temporal_loo"
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    min_train: int = 1
    seed: int = 0


@dataclass(frozen=True)
class StoreConfig:
    """Which graph database to use and how to reach it.

    The Neo4j password is never stored here: it is read from ``KGREC_NEO4J_PASSWORD``.
    """

    backend: Backend = "falkordb"
    graph: str = "kgrec"
    uri: str | None = None
    user: str = "neo4j"
    database: str | None = None
    port: int | None = None
    batch_size: int = 5_000
    enabled: bool = True
    query_timeout: float = 30.0


@dataclass(frozen=True)
class FeatureConfig:
    """Language-model text features for the nodes (``kgrec embed``)."""

    model: str = "default"
    pooling: Literal["mean", "cls", "last"] = "mean"
    max_length: int = 64
    batch_size: int = 256
    device: str = "auto"


@dataclass(frozen=True)
class ModelConfig:
    """The GNN's shape (plain arguments of :class:`kgrec.nn.model.KGRec`)."""

    embedding_dim: int = 256
    use_text: bool = True
    use_kg: bool = True
    decay: float = 0.9
    temperature: float = 0.1
    min_entity_degree: int = 2
    min_relation_edges: int = 20


@dataclass(frozen=True)
class TeacherConfig:
    """The item-item ensemble: its members and the grids searched on validation."""

    components: tuple[str, ...] = ("ease", "transition", "rp3beta", "entity", "text")
    decays: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
    ease_l2: tuple[float, ...] = (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
    transition_l2: tuple[float, ...] = (100.0, 1000.0, 5000.0)
    transition_window: int = 30
    rp3_alpha: tuple[float, ...] = (0.3, 0.5, 0.8)
    rp3_beta: tuple[float, ...] = (0.3, 0.5, 0.7)
    knn_k: tuple[int, ...] = (20, 50, 200)
    knn_shrink: tuple[float, ...] = (0.0, 10.0, 100.0)
    weight_grid: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    top_k: int | None = 1000


@dataclass(frozen=True)
class TrainConfig:
    """Training loop: softmax ranking loss, distillation, contrastive views, blend, refit."""

    device: str = "auto"
    epochs: int = 60
    batch_size: int = 128
    cuts_per_epoch: int = 4
    num_targets: int = 1
    lr: float = 0.002
    weight_decay: float = 0.0
    kd_weight: float = 1.0
    kd_temperature: float = 1.0
    cl_weight: float = 0.0
    cl_eps: float = 0.1
    cl_temperature: float = 0.2
    blend_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
    serve: Literal["hybrid", "gnn", "teacher"] = "hybrid"
    refit: bool = True
    keep_unused_gnn: bool = False
    patience: int = 3
    eval_every: int = 5
    amp: bool = False
    item_sampling: Literal["auto", "full", "sampled"] = "auto"
    num_negatives: int = 4096
    seed: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol: full ranking at ``ks`` plus OGB-style sampled negatives."""

    ks: tuple[int, ...] = (10, 20, 50)
    num_negatives: int = 100
    batch_size: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class ServeConfig:
    """Serving large catalogues: the approximate index of :mod:`kgrec.serve.ann`."""

    ann_min_items: int = 200_000
    ann_target_recall: float = 0.95
    candidates: int = 200


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    artifacts: str = "artifacts/demo"
    state_dir: str | None = None

    @property
    def artifacts_dir(self) -> Path:
        return Path(self.artifacts)

    @property
    def state_path(self) -> Path:
        """kgrec's state folder: config, else ``$KGREC_HOME``, else ``~/.kgrec``."""
        return state_dir(self.state_dir)


def state_dir(configured: str | None = None) -> Path:
    """Resolve kgrec's state folder (database files, password, pid)."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("KGREC_HOME")
    return Path(env).expanduser() if env else Path.home() / ".kgrec"


T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if key not in known:
            raise KgrecError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            if not isinstance(value, dict):
                raise KgrecError(f"{where}.{key}: expected a mapping, got {value!r}")
            kwargs[key] = _build(type(default), value, f"{where}.{key}")
        else:
            kwargs[key] = _check_value(cls, key, value, where)
    return cls(**kwargs)


@cache
def _hints(cls: type) -> dict[str, Any]:
    """``get_type_hints(cls)``, computed once per class (it costs ~0.3 ms a call)."""
    return get_type_hints(cls)


def _check_value(cls: type, key: str, value: Any, where: str) -> Any:
    """Reject values of the wrong kind or range with the key's path (``split.method: 'foo'``)."""
    return check_bounds(cls, key, _check_kind(cls, key, value, where), where)


def _check_kind(cls: type, key: str, value: Any, where: str) -> Any:
    """Reject values of the wrong kind with the key's path, e.g. ``split.method: 'foo'``."""
    hint = _hints(cls)[key]
    if get_origin(hint) in (Literal, tuple):
        allowed: list[Any] = [hint]
    else:
        allowed = [a for a in get_args(hint) if a is not type(None)] or [hint]
    if value is None and type(None) in get_args(hint):
        return value
    choices = [c for a in allowed if get_origin(a) is Literal for c in get_args(a)]
    if choices:
        if value in choices:
            return value
        raise KgrecError(f"{where}.{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    for kind in allowed:
        if get_origin(kind) is tuple and isinstance(value, list | tuple):
            return _check_tuple(get_args(kind)[0], value, f"{where}.{key}")
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(kind, type) and isinstance(value, kind):
            if kind is int and isinstance(value, bool):
                continue
            return value
    names = " or ".join(getattr(a, "__name__", str(a)) for a in allowed)
    raise KgrecError(f"{where}.{key}: expected {names}, got {value!r}")


def _check_tuple(element: type, value: list[Any] | tuple[Any, ...], where: str) -> tuple[Any, ...]:
    """A YAML list as a tuple of ``element`` (ints accepted for floats)."""
    if element is float:
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        if not ok:
            raise KgrecError(f"{where}: expected a list of numbers, got {value!r}")
        return tuple(float(v) for v in value)
    if element is int:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise KgrecError(f"{where}: expected a list of integers, got {value!r}")
        return tuple(value)
    if not all(isinstance(v, element) for v in value):
        raise KgrecError(f"{where}: expected a list of {element.__name__}, got {value!r}")
    return tuple(value)


CONFIG_ENV = "KGREC_CONFIG"
"""Environment variable naming the config file used when none is given."""


def config_file(path: Path | None = None) -> Path | None:
    """The config file to read: ``path``, else ``$KGREC_CONFIG``, else ``configs/demo.yaml``
    when it exists under the working directory, else ``None`` (the defaults).

    Raises:
        KgrecError: when ``$KGREC_CONFIG`` names no file.
    """
    if path is not None:
        return path
    named = os.environ.get(CONFIG_ENV)
    if named:
        found = Path(named).expanduser()
        if not found.is_file():
            raise KgrecError(f"{CONFIG_ENV} names no config file: {found}")
        return found
    demo = Path("configs/demo.yaml")
    return demo if demo.exists() else None


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``path`` (YAML) into a :class:`Config`, then apply dotted ``overrides``.

    ``overrides`` maps ``"section.key"`` (or a top-level key) to a value; ``None`` values are
    ignored so CLI options that were not given leave the file's value alone.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise KgrecError(f"config file not found: {path}")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KgrecError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise KgrecError(
                f"{path}:{line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text "
                "(re-save the file as UTF-8)"
            ) from exc
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present
            data = yaml.load(text, Loader=loader) or {}
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())
            raise KgrecError(f"{path}: not valid YAML: {first}") from exc
        if not isinstance(data, dict):
            raise KgrecError(f"{path}: expected a mapping at the top level")
    config = _build(Config, data, str(path or "config"))
    if path is not None:
        config = _paths_relative_to(config, path.parent)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            config = set_key(config, dotted, value)
    return config


def _paths_relative_to(config: Config, folder: Path) -> Config:
    """``config`` with the relative paths its file wrote made relative to ``folder``."""

    def at(value: str) -> str:
        path = Path(value).expanduser()
        return str(path) if path.is_absolute() else os.path.normpath(folder / path)

    dataset = config.dataset
    dataset = replace(
        dataset,
        path=at(dataset.path),
        kg_path=at(dataset.kg_path) if dataset.kg_path else dataset.kg_path,
    )
    model = config.features.model
    if model.startswith(("./", "../", "~")):
        config = replace(config, features=replace(config.features, model=at(model)))
    return replace(
        config,
        dataset=dataset,
        artifacts=at(config.artifacts),
        state_dir=at(config.state_dir) if config.state_dir else config.state_dir,
    )


def parse_overrides(items: list[str], what: str = "--set") -> dict[str, Any]:
    """``["a.b=[1, 2]", "c=true"]`` -> ``{"a.b": [1, 2], "c": True}``: ``key=value`` settings
    from the command line, one YAML value each (for :func:`load_config`'s ``overrides``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value:
            raise KgrecError(f"{what} expects key=value (a YAML value), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def set_key(config: Config, dotted: str, value: Any) -> Config:
    """Return a copy of ``config`` with ``dotted`` (``"store.batch_size"``) set to ``value``."""
    head, _, rest = dotted.partition(".")
    if not rest:
        if head not in {f.name for f in fields(config)}:
            raise KgrecError(f"unknown config key {dotted!r}")
        return replace(config, **{head: _check_value(Config, head, value, "config")})
    section = getattr(config, head, None)
    if section is None or not dataclasses.is_dataclass(section):
        raise KgrecError(f"unknown config section {head!r}")
    if rest not in {f.name for f in fields(section)}:
        raise KgrecError(f"unknown config key {dotted!r}")
    value = _check_value(type(section), rest, value, head)
    new_section: Any = replace(section, **{rest: value})  # type: ignore[type-var]
    return replace(config, **{head: new_section})

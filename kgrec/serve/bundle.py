"""The serving bundle: what ``recommend`` and ``explain`` read, as ``.npy`` + JSON.

:func:`kgrec.serve.export.export_bundle` writes ``<checkpoint dir>/serving/``:

=======================  ==================================================================
file                     content
=======================  ==================================================================
``scorer/``              the trained scorer in numpy (:mod:`kgrec.serve.scorer`): the
                         teacher's sparse item-item matrices and the GNN's item embeddings
``history_*.npy``        every user's interactions, oldest first (CSR: ``indptr [U + 1]``,
                         ``items [E]``, ``ages [E]``, 0 = latest), all splits, then the
                         interactions of ``kgrec add-interactions``: the input of the
                         scorer; ``liked [E]`` (bool): rated at or above the user's own mean
                         rating (every interaction when there are no ratings; added ones
                         count as liked), the items a customer-facing reason may cite
``user_embedding.npy``   float32 ``[num_users, d]``: the GNN's user vectors (``d = 0`` when
                         the teacher is served alone); the approximate index queries them
``item_embedding.npy``   float32 ``[num_items, d]``: the GNN's output item embeddings
                         (trained items, then placed added items)
``seen_indptr.npy``      int64 ``[num_users + 1]``: CSR row pointers of the items each user
                         interacted with (all splits: never recommended again)
``seen_indices.npy``     int64 ``[nnz]``: item indices, sorted within each row
``users.json``           external user ids in index order
``items.json``           ``{"ids": [...], "titles": [...]}`` in index order
``graph/``               the model's graph (edge types it used), for explanation paths
                         (:mod:`kgrec.serve.graph`)
``meta.json``            :class:`BundleMeta`, with ``files``: the sha256 and size of every
                         other file
=======================  ==================================================================

:func:`load_bundle` uses only numpy and json (arrays are memory-mapped), so serving starts
without torch or pandas; it verifies every file against ``meta.json`` (a damaged file is a
:class:`~kgrec.files.DamagedFileError`). :func:`kgrec.serve.export.open_bundle` re-exports
first when the bundle is missing, stale or damaged (that path imports torch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.data.added_interactions import interactions_stamp
from kgrec.data.added_items import added_stamp
from kgrec.data.edges import EdgeType
from kgrec.data.layout import GRAPH_FILE
from kgrec.errors import KgrecError
from kgrec.files import DamagedFileError, verify_checksums
from kgrec.serve.scorer import HybridScorer, load_scorer

FORMAT = 5
"""5: ``history_liked`` (4: the hybrid scorer and time-ordered histories)."""
SERVING_DIR = "serving"
SCORER_DIR = "scorer"
ARRAYS = (
    "user_embedding",
    "item_embedding",
    "seen_indptr",
    "seen_indices",
    "history_indptr",
    "history_items",
    "history_ages",
    "history_liked",
)
DATA_FILES = (*(f"{name}.npy" for name in ARRAYS), "users.json", "items.json")
FILES = (*DATA_FILES, "meta.json")
MODEL_ID_LENGTH = 16


@dataclass(frozen=True)
class BundleMeta:
    """``meta.json`` of a bundle.

    Attributes:
        model_id: sha256 of the checkpoint's bytes, 16 hex digits.
        created: ISO-8601 UTC of the export.
        checkpoint, artifacts: Absolute paths of what it was exported from.
        checkpoint_stamp, artifact_stamp, added_stamp: ``[mtime_ns, size]`` of the
            checkpoint, the artifact's ``graph.pt`` and its added items, to tell when the
            bundle is stale.
        interactions_stamp: The same of its added interactions, folded into the histories
            (:mod:`kgrec.serve.live`).
        num_users, num_items: Rows of the embeddings (items: trained + added).
        num_trained_items, num_added_items: The two parts of ``num_items``.
        dim: Embedding size ``d`` (0: no GNN, the teacher is served alone).
        kind: What the checkpoint serves: ``hybrid``, ``gnn`` or ``teacher``.
        num_seen: Stored (user, item) pairs.
        edge_types: The edge types the model propagated over, ``(src, rel, dst)``
            (the user-item type, then the KG types the scorer reads); explanations walk only
            these.
        format: The bundle format (:data:`FORMAT`).
        files: ``{relative path: {"sha256", "bytes"}}`` of every other file.
    """

    model_id: str
    created: str
    checkpoint: str
    checkpoint_stamp: list[int]
    artifacts: str
    artifact_stamp: list[int]
    added_stamp: list[int]
    num_users: int
    num_items: int
    num_trained_items: int
    num_added_items: int
    dim: int
    num_seen: int
    edge_types: list[EdgeType]
    kind: str = "hybrid"
    interactions_stamp: list[int] = field(default_factory=lambda: [0, 0])
    format: int = FORMAT
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BundleMeta:
        values = dict(data)
        values["edge_types"] = [tuple(e) for e in values.get("edge_types", [])]
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Bundle:
    """A loaded serving bundle (arrays are read-only memory maps).

    Attributes:
        user_embedding: ``[num_users, d]`` float32.
        item_embedding: ``[num_items, d]`` float32.
        seen_indptr: ``[num_users + 1]`` CSR row pointers into ``seen_indices``.
        seen_indices: ``[nnz]`` item indices each user has interacted with (any split).
        history_indptr, history_items, history_ages: Each user's interactions oldest first
            with their ages (CSR ``[num_users + 1]``, ``[E]``, ``[E]``).
        history_liked: ``[E]`` bool, whether the user liked each of them (rating at or above
            their own mean; every interaction without a rating counts as liked).
        scorer: The trained score (:class:`~kgrec.serve.scorer.HybridScorer`); ``None``
            for an embeddings-only bundle (scores are dot products).
        user_ids: External user ids, ``user_ids[index]``.
        item_ids: External item ids, ``item_ids[index]``.
        titles: Item titles (the id when an item has none), ``titles[index]``.
        meta: ``meta.json``.
        path: The bundle folder.
    """

    user_embedding: np.ndarray
    item_embedding: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    meta: BundleMeta
    path: Path
    scorer: HybridScorer | None = None
    history_indptr: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    history_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    history_ages: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    history_liked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _user_index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _item_index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def model_id(self) -> str:
        return self.meta.model_id

    @property
    def num_users(self) -> int:
        return int(self.user_embedding.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_embedding.shape[0])

    def user_index(self, user_id: str) -> int | None:
        """Index of an external user id, ``None`` when unknown."""
        if not self._user_index and self.user_ids:
            self._user_index.update((u, k) for k, u in enumerate(self.user_ids))
        return self._user_index.get(user_id)

    def item_index(self, item_id: str) -> int | None:
        """Index of an external item id, ``None`` when unknown."""
        if not self._item_index and self.item_ids:
            self._item_index.update((i, k) for k, i in enumerate(self.item_ids))
        return self._item_index.get(item_id)

    def seen(self, user: int) -> np.ndarray:
        """Item indices ``[n]`` user ``user`` (an index) has interacted with."""
        return np.asarray(self.seen_indices[self.seen_indptr[user] : self.seen_indptr[user + 1]])

    def history(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items [n], ages [n])`` of user ``user`` (an index), oldest first (empty for a
        bundle without histories)."""
        if self.history_indptr.shape[0] <= user + 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        lo, hi = int(self.history_indptr[user]), int(self.history_indptr[user + 1])
        return np.asarray(self.history_items[lo:hi]), np.asarray(self.history_ages[lo:hi])

    def liked(self, user: int) -> np.ndarray:
        """``[n]`` bool aligned with :meth:`history`: which of those items the user liked
        (all of them where the bundle has no such flags)."""
        if self.history_liked.shape[0] != self.history_items.shape[0]:
            return np.ones(self.history(user)[0].shape[0], dtype=bool)
        lo, hi = int(self.history_indptr[user]), int(self.history_indptr[user + 1])
        return np.asarray(self.history_liked[lo:hi], dtype=bool)


def serving_dir(checkpoint: Path | str) -> Path:
    """Where the bundle of ``checkpoint`` lives: ``<checkpoint dir>/serving``."""
    return Path(checkpoint).parent / SERVING_DIR


def model_id_of(checkpoint: Path | str) -> str:
    """sha256 of the checkpoint file's bytes, truncated to 16 hex digits."""
    digest = hashlib.sha256()
    with Path(checkpoint).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:MODEL_ID_LENGTH]


def file_stamp(path: Path) -> list[int]:
    """``[mtime_ns, size]`` of a file (``[0, 0]`` when absent)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return [0, 0]
    return [st.st_mtime_ns, st.st_size]


def artifact_stamp(artifacts_dir: Path) -> list[int]:
    """:func:`file_stamp` of the artifact's graph (it changes with every build)."""
    return file_stamp(artifacts_dir / GRAPH_FILE)


def read_meta(folder: Path) -> BundleMeta | None:
    """``meta.json`` of a bundle folder; ``None`` when missing, unreadable or of another
    format."""
    try:
        data = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return None
        return BundleMeta.from_json(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def is_fresh(folder: Path, checkpoint: Path, artifacts_dir: Path | None = None) -> bool:
    """Whether ``folder`` holds a complete bundle of this very checkpoint (and artifact).

    Only file stamps are compared (no hashing), so the check costs a few ``stat`` calls.
    """
    if not all((folder / name).exists() for name in FILES):
        return False
    meta = read_meta(folder)
    if meta is None or meta.checkpoint_stamp != file_stamp(checkpoint):
        return False
    if artifacts_dir is not None:
        return (
            meta.artifact_stamp == artifact_stamp(artifacts_dir)
            and meta.added_stamp == added_stamp(artifacts_dir)
            and meta.interactions_stamp == interactions_stamp(artifacts_dir)
        )
    return True


def fresh_bundle(checkpoint: Path | str, artifacts_dir: Path | str | None = None) -> Bundle | None:
    """The bundle of ``checkpoint`` when it is complete and fresh, else ``None`` (export it
    with :func:`kgrec.serve.export.open_bundle`).

    Args:
        checkpoint: A ``model.pt`` written by ``kgrec train``.
        artifacts_dir: Its artifact folder; default: the one recorded in the bundle.

    Raises:
        KgrecError: no checkpoint at ``checkpoint``.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise KgrecError(f"no checkpoint at {checkpoint}: run `kgrec train` first")
    folder = serving_dir(checkpoint)
    artifacts = Path(artifacts_dir) if artifacts_dir is not None else recorded_artifacts(folder)
    if not is_fresh(folder, checkpoint, artifacts):
        return None
    return load_bundle(folder)


def recorded_artifacts(folder: Path) -> Path | None:
    """The artifact folder an existing bundle was exported from (``None``: no bundle)."""
    meta = read_meta(folder)
    return Path(meta.artifacts) if meta is not None else None


def _rebuild(folder: Path) -> str:
    return f"kgrec recommend (it re-exports {folder} from the checkpoint)"


def load_bundle(folder: Path | str) -> Bundle:
    """Read a bundle written by :func:`kgrec.serve.export.export_bundle` (numpy and json
    only, memory-mapped).

    Raises:
        DamagedFileError: a file does not match the sha256 in ``meta.json``.
    """
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).exists()]
    if missing:
        raise KgrecError(f"{folder} is not a complete serving bundle (missing {missing})")
    meta = read_meta(folder)
    if meta is None:
        raise KgrecError(f"{folder}: unreadable or outdated serving bundle (re-export it)")
    verify_checksums(folder, meta.files, _rebuild(folder))
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        users = json.loads((folder / "users.json").read_text(encoding="utf-8"))
        items = json.loads((folder / "items.json").read_text(encoding="utf-8"))
        scorer = load_scorer(folder / SCORER_DIR)
    except (OSError, ValueError, KgrecError) as exc:
        raise DamagedFileError(folder, f"unreadable: {exc}", _rebuild(folder)) from exc
    bundle = Bundle(
        user_embedding=arrays["user_embedding"],
        item_embedding=arrays["item_embedding"],
        seen_indptr=arrays["seen_indptr"],
        seen_indices=arrays["seen_indices"],
        history_indptr=arrays["history_indptr"],
        history_items=arrays["history_items"],
        history_ages=arrays["history_ages"],
        history_liked=arrays["history_liked"],
        scorer=scorer,
        user_ids=[str(u) for u in users],
        item_ids=[str(i) for i in items["ids"]],
        titles=[str(t) for t in items["titles"]],
        meta=meta,
        path=folder,
    )
    if (
        bundle.user_embedding.shape[0] != len(bundle.user_ids)
        or bundle.item_embedding.shape[0] != len(bundle.item_ids)
        or bundle.seen_indptr.shape[0] != len(bundle.user_ids) + 1
        or bundle.history_indptr.shape[0] != len(bundle.user_ids) + 1
        or (scorer is not None and scorer.num_items != len(bundle.item_ids))
    ):
        raise DamagedFileError(folder, "its arrays disagree in size", _rebuild(folder))
    return bundle

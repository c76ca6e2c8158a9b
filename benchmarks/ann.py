"""Benchmark catalogue-scale serving: exact scoring against the approximate index.

A synthetic catalogue of ``--items`` item embeddings (``--dim``, default 64) shaped like
trained ones: items around ``--topics`` topic directions, norms log-normal (popularity);
users mix two or three topics; each user has seen ``--seen`` items, a few of them among
their best. The embedding and seen-item arrays of a serving bundle are written to a temp
folder and memory-mapped, as ``kgrec recommend`` maps them (no scorer: a score is the dot
product, the GNN-only bundle); the index is built by :func:`kgrec.serve.ann.open_index`.

Reports the index build time and chosen ``nprobe``, recall@k against exact search over
``--users`` users that were not in the tuning sample, and warm one-user latency (p50 /
p99 of :meth:`Recommender.recommend`, after a warm-up) for exact scoring and the index.
Seen items are checked never to appear.

Latency is measured with one thread per query (``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``
default to 1 here), as a server running one query per worker would.

Usage::

    python benchmarks/ann.py --items 1000000 --users 500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from kgrec.serve.ann import open_index  # noqa: E402
from kgrec.serve.bundle import Bundle, BundleMeta  # noqa: E402
from kgrec.serve.recommend import Recommender  # noqa: E402


def write_bundle(
    folder: Path, items: int, users: int, dim: int, topics: int, seen: int, seed: int
) -> Bundle:
    """A GNN-only serving bundle with synthetic embeddings, its arrays memory-mapped from
    ``folder``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dim)).astype(np.float32)
    item_topic = rng.integers(0, topics, items)
    item_emb = np.empty((items, dim), dtype=np.float32)
    for start in range(0, items, 200_000):  # bounded temporaries
        stop = min(start + 200_000, items)
        block = centres[item_topic[start:stop]]
        block += 0.7 * rng.standard_normal((stop - start, dim)).astype(np.float32)
        block *= rng.lognormal(0.0, 0.35, (stop - start, 1)).astype(np.float32)
        item_emb[start:stop] = block
    mix = rng.integers(0, topics, (users, 3))
    weights = rng.dirichlet(np.ones(3), users).astype(np.float32)
    user_emb = np.einsum("uk,ukd->ud", weights, centres[mix]).astype(np.float32)
    user_emb += 0.3 * rng.standard_normal((users, dim)).astype(np.float32)
    seen_lists = []
    for u in range(users):
        best = np.argpartition(-(item_emb @ user_emb[u]), 20)[:20]
        seen_lists.append(
            np.unique(np.concatenate([best[::4], rng.choice(items, seen, replace=False)]))
        )
    indptr = np.zeros(users + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seen_lists], out=indptr[1:])
    folder.mkdir(parents=True)
    arrays = {
        "user_embedding": user_emb,
        "item_embedding": item_emb,
        "seen_indptr": indptr,
        "seen_indices": np.concatenate(seen_lists).astype(np.int64),
    }
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    del user_emb, item_emb
    mapped = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in arrays}
    ids = [f"i{i}" for i in range(items)]
    meta = BundleMeta(
        model_id=f"synthetic-{seed}",
        created="2026-01-01T00:00:00+00:00",
        checkpoint="",
        checkpoint_stamp=[0, 0],
        artifacts="",
        artifact_stamp=[0, 0],
        added_stamp=[0, 0],
        num_users=users,
        num_items=items,
        num_trained_items=items,
        num_added_items=0,
        dim=dim,
        num_seen=int(mapped["seen_indices"].shape[0]),
        edge_types=[],
        kind="gnn",
    )
    return Bundle(
        user_embedding=mapped["user_embedding"],
        item_embedding=mapped["item_embedding"],
        seen_indptr=mapped["seen_indptr"],
        seen_indices=mapped["seen_indices"],
        user_ids=[f"u{u}" for u in range(users)],
        item_ids=ids,
        titles=ids,
        meta=meta,
        path=folder,
    )


def latency_ms(recommender: Recommender, users: list[str], k: int) -> tuple[float, float]:
    """p50 and p99 of one-user ``recommend`` in milliseconds (after one warm-up call each)."""
    for user in users[:20]:
        recommender.recommend(user, k)
    times = []
    for user in users:
        start = time.perf_counter()
        recommender.recommend(user, k)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=500, help="users measured (beyond tuning)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--topics", type=int, default=500)
    parser.add_argument("--seen", type=int, default=50)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kgrec-ann-") as tmp:
        folder = Path(tmp) / "serving"
        clock = time.perf_counter()
        tuning = 200
        bundle = write_bundle(
            folder, opts.items, tuning + opts.users, opts.dim, opts.topics, opts.seen, opts.seed
        )
        print(f"bundle written in {time.perf_counter() - clock:.0f} s", file=sys.stderr)
        exact = Recommender(bundle)
        index = open_index(
            bundle, min_items=1, target_recall=opts.target_recall, tuning_users=tuning,
            note=lambda text: print(text, file=sys.stderr),
        )  # fmt: skip
        assert index is not None
        approximate = Recommender(bundle, index=index)
        # measure on users the index was not tuned on (open_index samples with seed 0)
        tuned = set(np.random.default_rng(0).choice(bundle.num_users, tuning, False).tolist())
        users = [u for k, u in enumerate(bundle.user_ids) if k not in tuned][: opts.users]
        recalls, leaked = [], 0
        for user in users:
            got = approximate.recommend(user, opts.k)
            want = exact.recommend(user, opts.k)
            seen = set(bundle.seen(bundle.user_index(user)).tolist())  # type: ignore[arg-type]
            leaked += sum(bundle.item_index(r.item_id) in seen for r in got)
            recalls.append(len({r.item_id for r in got} & {r.item_id for r in want}) / opts.k)
        exact_p50, exact_p99 = latency_ms(exact, users, opts.k)
        ann_p50, ann_p99 = latency_ms(approximate, users, opts.k)
    meta = index.meta
    load = os.getloadavg()[0]
    print(
        "| items | dim | index | build s | nprobe / lists | recall@20 (tuning) | "
        "recall@20 (other users) | p50 ms | p99 ms | seen items returned |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    exact_row = f"| {opts.items:,} | {opts.dim} | exact | - | - | 1 | 1 | {exact_p50:.2f} | "
    print(exact_row + f"{exact_p99:.2f} | 0 |")
    print(
        f"| {opts.items:,} | {opts.dim} | IVF-flat | {meta.build_seconds:.0f} | "
        f"{meta.nprobe} / {meta.nlist} | {meta.recall:.3f} | {np.mean(recalls):.3f} | "
        f"{ann_p50:.2f} | {ann_p99:.2f} | {leaked} |"
    )
    print(f"\n{len(users)} users, k={opts.k}, seed {opts.seed}, 1-minute load average {load:.1f}")


if __name__ == "__main__":
    main()

"""Benchmark one LightGCN training step: PyG's ``LightGCN.forward`` against :func:`propagate`.

The LightGCN baseline (:mod:`kgrec.eval.lightgcn`) propagates over the whole user-item graph
at every step, so on Amazon-Book (95.6k nodes, 1.3M directed edges) a step costs the same at
any batch size and sets the pace of the baseline. Two ways of computing the same step (BPR loss
on ``--batch-size`` sampled triples, backward, Adam):

- ``pyg``: ``LightGCN(adj, label)`` on the raw CSR adjacency, as the baseline did before:
  ``LGConv`` normalises the adjacency on every layer and autograd's backward of the CSR product
  transposes it on every call;
- ``propagate``: :func:`kgrec.eval.lightgcn.propagate` on the normalised adjacency built once,
  whose backward multiplies by the same (symmetric) matrix.

The two alternate ``--repeats`` times (``--steps`` steps each, the first of each block not
timed); the script first checks that both give the same embeddings and gradient.

Usage (an artifact built by ``kgrec build-graph`` or ``benchmarks/quality.py``)::

    python benchmarks/lightgcn_step.py --artifacts artifacts/kgat-given --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.eval.lightgcn import bipartite_graph, normalized_adjacency, propagate


def main(argv: list[str] | None = None) -> None:
    from torch_geometric.nn.models import LightGCN
    from torch_geometric.utils import to_torch_csr_tensor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, required=True, help="artifact folder")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8192, help="triples a step")
    parser.add_argument("--steps", type=int, default=6, help="steps a block (first untimed)")
    parser.add_argument("--repeats", type=int, default=3, help="blocks of each path")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    history = History.from_artifact(GraphArtifact.load(args.artifacts), ("train",))
    num_users, num_items = history.num_users, history.num_items
    num_nodes = num_users + num_items
    users, items = history.edge_index()
    graph = bipartite_graph(history)
    raw = to_torch_csr_tensor(graph, size=(num_nodes, num_nodes))
    normalized = normalized_adjacency(graph, num_nodes)
    torch.manual_seed(0)
    model = LightGCN(num_nodes, args.embedding_dim, num_layers=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    weights = torch.randn(num_nodes, args.embedding_dim)
    grads = []
    for embedding in (lambda: model.get_embedding(raw), lambda: propagate(model, normalized)):
        model.zero_grad(set_to_none=True)
        out = embedding()
        (out * weights).sum().backward()
        grads.append((out.detach(), model.embedding.weight.grad.clone()))
    max_diff = max(float((a - b).abs().max()) for a, b in zip(*grads, strict=True))

    generator = torch.Generator().manual_seed(0)

    def step(embed: Callable[[Tensor], Tensor]) -> float:
        idx = torch.randint(users.numel(), (args.batch_size,), generator=generator)
        neg = torch.randint(num_items, (args.batch_size,), generator=generator)
        label = torch.stack([torch.cat([users[idx]] * 2), torch.cat([items[idx], neg]) + num_users])
        start = time.perf_counter()
        rank = embed(label)
        pos, neg_rank = rank.chunk(2)
        loss = model.recommendation_loss(pos, neg_rank, node_id=label.unique(), lambda_reg=1e-4)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    def ours(label: Tensor) -> Tensor:
        emb = propagate(model, normalized)
        return (emb[label[0]] * emb[label[1]]).sum(-1)

    paths: dict[str, Callable[[Tensor], Tensor]] = {
        "pyg": lambda label: model(raw, label),
        "propagate": ours,
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, embed in paths.items():
            block = [step(embed) for _ in range(args.steps)]
            times[name] += block[1:]
    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "nodes": num_nodes,
        "directed_edges": int(graph.size(1)),
        "embedding_dim": args.embedding_dim,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "max_abs_difference": max_diff,
        "median_step_s": {name: round(m, 4) for name, m in medians.items()},
        "steps_timed": {name: len(t) for name, t in times.items()},
        "speedup": round(medians["pyg"] / medians["propagate"], 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
